"""ContinuousNet: a ResNet made continuous in depth (Queiruga, Erichson, Taylor & Mahoney, "Continuous-in-depth
neural networks", arXiv:2008.02389, 2020).

Each stage of residual blocks becomes an OdeBlock,

    x_out = x_in + int_0^1 R(x(t), theta(t)) dt,   theta(t) = sum_b phi_b(t) theta_b,

integrated with a fixed-step explicit Runge-Kutta scheme of N steps (h = 1 / N), through the scheme's step plan
(:mod:`dynlearn.integration.step_plan`, the stage loop rollouts use too):

    k_i = R(x_n + h sum_j a_ij k_j, theta((n + c_i) h)),   x_{n+1} = x_n + h sum_i b_i k_i.

R is conv3x3 - BN - ReLU - conv3x3 - BN (the residual unit of the ResNet it generalises). Every weight is a
basis expansion in depth (:mod:`dynlearn.continuousnet.depth_basis`), batch-norm scale and shift included. With the
piecewise-constant basis of K pieces, forward Euler and N = K, step n reads piece n and the network is exactly
a ResNet of K blocks x + h R_n(x) (:meth:`ContinuousNet.to_resnet`).

Batch norm across depth (the stateful approach): the running mean and variance are basis coefficients too.
In training, the batch statistics s of every stage are projected back onto the basis and blended into the
running coefficients C with momentum m: C <- C + m pinv(W) (s - W C), W the stage weights (n_stages x size).
At evaluation the statistics at a stage are W C, for any scheme and N, so a re-manifested or compressed network
reads statistics consistent with its own stage times. When training uses fewer stages than basis functions,
W has a null space (pieces no stage visits): pinv updates only the visited directions and the others keep
their previous (initial) statistics; train with at least as many steps as pieces.

Re-manifestation: :meth:`ContinuousNet.manifest` returns the same weights as another graph (scheme, N, and
optionally another basis by L2 projection: refinement is exact, coarsening is the L2 projection).
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dynlearn._checks import as_integer
from dynlearn.continuousnet.depth_basis import DepthBasis, make_basis, project
from dynlearn.integration.step_plan import StepPlan, step_plan
from dynlearn.integration.tableaus import get_tableau

__all__ = ["OdeBlock", "ContinuousNet", "DepthBatchNorm", "ResNetBlock", "to_channels_last"]


# ReLU as in the ResNet; a smooth activation makes R smooth in x, which the order of a scheme needs (with ReLU
# the field has kinks and RK4 re-manifestations converge at about second order)
_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "tanh": torch.tanh, "softplus": F.softplus}


def to_channels_last(module: nn.Module) -> nn.Module:
    """Store every 4-D parameter and buffer of ``module`` channels_last (in place; returns ``module``).

    ``module.to(memory_format=torch.channels_last)`` refuses a ContinuousNet: its OdeBlock kernels are basis
    coefficients of shape (K, out, in, 3, 3). Those stay as they are (the kernel theta(t) evaluated from them is
    an ordinary (out, in, 3, 3) tensor, and cuDNN takes it with channels_last inputs); the stem, the
    downsampling convolutions and every kernel of a ResNet become channels_last.
    """
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            if tensor.dim() == 4:
                tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
    return module


def _explicit_tableau(scheme: str):
    tableau = get_tableau(scheme)
    if not tableau.is_explicit:
        raise ValueError(f"scheme {scheme!r} is implicit; an OdeBlock needs an explicit scheme")
    return tableau


class DepthBatchNorm(nn.Module):
    """Batch norm whose scale, shift and running statistics are basis expansions in depth (module docstring)."""

    def __init__(self, channels: int, basis: DepthBasis, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.basis, self.momentum, self.eps = basis, momentum, eps
        self.scale = nn.Parameter(torch.ones(basis.size, channels) if basis.name != "legendre"
                                  else torch.cat([torch.ones(1, channels), torch.zeros(basis.size - 1, channels)]))
        self.shift = nn.Parameter(torch.zeros(basis.size, channels))
        constant = project(torch.ones(1, channels, dtype=torch.float64), make_basis("piecewise_constant", 1), basis)
        self.register_buffer("running_mean", torch.zeros(basis.size, channels))
        self.register_buffer("running_var", constant.float())  # the constant 1 in this basis
        self._stage_means: list[torch.Tensor] = []
        self._stage_vars: list[torch.Tensor] = []

    def stage_parameters(self, stage_weights: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        """Scale and shift at every stage of a forward pass, and at evaluation the running mean and variance:
        one product with the basis coefficients for all stages (``stage_weights``: (n_stages, size)) instead
        of four per stage, which matters where small networks are launch-bound."""
        with torch.autocast(stage_weights.device.type, enabled=False):  # normalisation stays float32 under bf16
            weights = stage_weights.to(self.scale.dtype)
            tensors = [weights @ self.scale, weights @ self.shift]
            if not self.training:
                # a projected variance can dip below zero between nodes (Legendre): it is a variance, clamp it
                tensors += [weights @ self.running_mean, (weights @ self.running_var).clamp(min=0.0)]
        return list(zip(*(t.unbind(0) for t in tensors)))

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``x`` (batch, C, H, W) at one stage with basis weights ``weights`` (size,)."""
        return self.normalise(x, self.stage_parameters(weights[None])[0])

    def normalise(self, x: torch.Tensor, parameters: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Batch norm of ``x`` with one stage's entry of :meth:`stage_parameters`; in training the stage's batch
        mean and unbiased variance are kept for :meth:`update_statistics`."""
        if self.training:
            scale, shift = parameters
            # the fused kernel with scratch buffers and momentum 1 leaves exactly this stage's batch mean and
            # unbiased variance in them
            mean = torch.zeros(x.shape[1], device=x.device, dtype=self.running_mean.dtype)
            var = torch.ones(x.shape[1], device=x.device, dtype=self.running_var.dtype)
            out = F.batch_norm(x, mean, var, scale, shift, training=True, momentum=1.0, eps=self.eps)
            self._stage_means.append(mean)
            self._stage_vars.append(var)
            return out
        scale, shift, running_mean, running_var = parameters
        return F.batch_norm(x, running_mean, running_var, scale, shift, training=False, eps=self.eps)

    @torch.no_grad()
    def update_statistics(self, stage_weights: torch.Tensor, inverse: torch.Tensor) -> None:
        """Project the statistics of the stages seen in this forward pass onto the basis (``inverse``: the
        pseudo-inverse of ``stage_weights``, (size, n_stages))."""
        if not self._stage_means:
            return
        w, inverse = stage_weights.to(self.running_mean), inverse.to(self.running_mean)
        for running, seen in ((self.running_mean, self._stage_means), (self.running_var, self._stage_vars)):
            observed = torch.stack(seen)
            running += self.momentum * inverse @ (observed - w @ running)
        self._stage_means.clear()
        self._stage_vars.clear()


class OdeBlock(nn.Module):
    """x_out = x_in + int_0^1 R(x, theta(t)) dt with ``scheme`` and ``n_steps`` (module docstring)."""

    def __init__(self, channels: int, basis: DepthBasis, scheme: str = "euler", n_steps: int | None = None,
                 activation: str = "relu") -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        self.channels, self.basis, self.activation = channels, basis, activation
        self.scheme = scheme
        self.tableau = _explicit_tableau(scheme)
        self.n_steps = basis.pieces if n_steps is None else as_integer("n_steps", n_steps)
        # independent random coefficients for every basis function (never one draw copied to all)
        self.conv1 = nn.Parameter(torch.stack([nn.init.kaiming_normal_(torch.empty(channels, channels, 3, 3))
                                               for _ in range(basis.size)]))
        self.conv2 = nn.Parameter(torch.stack([nn.init.kaiming_normal_(torch.empty(channels, channels, 3, 3))
                                               for _ in range(basis.size)]))
        self.norm1 = DepthBatchNorm(channels, basis)
        self.norm2 = DepthBatchNorm(channels, basis)
        self._refresh_weights()

    def _refresh_weights(self) -> None:
        """The stage weights of this graph (scheme, steps, basis): phi_b at every distinct stage node of every step
        (what theta is evaluated at) and at every evaluated stage (what the batch-norm statistics are projected
        from; stages sharing a node appear once per evaluation)."""
        self.plan = plan = step_plan(self.tableau)  # the scheme's stage loop (dynlearn.integration.step_plan)
        weights = self.basis.stage_weights(self.n_steps, plan.exact_nodes)  # (n_steps * n_nodes, size)
        width = len(plan.nodes)
        evaluated = [n * width + node for n in range(self.n_steps) for node in plan.stage_nodes]
        device = self.conv1.device  # a re-manifested block stays where its weights are
        self.register_buffer("node_weights", weights.float().to(device), persistent=False)
        self.register_buffer("stage_weights", weights[evaluated].float().to(device), persistent=False)
        # for the batch-norm statistics: computed once per graph, not at every forward
        self.register_buffer("stage_inverse", torch.linalg.pinv(weights[evaluated]).float().to(device),
                             persistent=False)

    def residual(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """R(x, theta(t)) at one stage with basis weights ``weights`` (size,)."""
        return self._residual(x, self._stage_parameters(weights[None])[0])

    def _stage_parameters(self, stage_weights: torch.Tensor) -> list[tuple]:
        """theta at every stage, ``stage_weights`` (n_stages, size): the two kernels (out, in, 3, 3) and both
        normalisations' parameters, each from one product with the basis coefficients."""
        kernels = [(stage_weights.to(w.dtype) @ w.flatten(1)).view(-1, *w.shape[1:]).unbind(0)
                   for w in (self.conv1, self.conv2)]
        return list(zip(*kernels, self.norm1.stage_parameters(stage_weights), self.norm2.stage_parameters(stage_weights)))

    def _residual(self, x: torch.Tensor, parameters: tuple) -> torch.Tensor:
        w1, w2, norm1, norm2 = parameters
        y = _ACTIVATIONS[self.activation](self.norm1.normalise(F.conv2d(x, w1, padding=1), norm1))
        return self.norm2.normalise(F.conv2d(y, w2, padding=1), norm2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x_out from x_in (batch, C, H, W): ``n_steps`` steps of the block's step plan with h = 1 / n_steps, each
        stage's residual reading theta at its node (one product with the coefficients for all nodes)."""
        plan: StepPlan = self.plan
        width, alphas = len(plan.nodes), plan.scaled(1.0 / self.n_steps)
        parameters = self._stage_parameters(self.node_weights)
        for n in range(self.n_steps):  # step by step: an inference pass keeps one state, not all of them
            x = plan.advance(self._stage_residual, x, parameters[n * width:(n + 1) * width], alphas)
        if self.training:
            self.norm1.update_statistics(self.stage_weights, self.stage_inverse)
            self.norm2.update_statistics(self.stage_weights, self.stage_inverse)
        return x

    def _stage_residual(self, parameters: tuple, x: torch.Tensor) -> torch.Tensor:
        """R(x, theta) with theta one node's parameters: the plan's f(tau, x)."""
        return self._residual(x, parameters)

    def manifest(self, scheme: str | None = None, n_steps: int | None = None, basis: DepthBasis | None = None) -> "OdeBlock":
        """The same weights (projected onto ``basis`` if given) as another graph."""
        block = copy.deepcopy(self)
        if basis is not None and basis != self.basis:
            block.basis = basis
            with torch.no_grad():  # projected in float64, kept in each tensor's own dtype and device

                def projected(tensor: torch.Tensor) -> torch.Tensor:
                    return project(tensor.double(), self.basis, basis).to(tensor.dtype)

                for name in ("conv1", "conv2"):
                    setattr(block, name, nn.Parameter(projected(getattr(self, name))))
                for norm_name in ("norm1", "norm2"):
                    source, target = getattr(self, norm_name), getattr(block, norm_name)
                    target.basis = basis
                    target.scale = nn.Parameter(projected(source.scale))
                    target.shift = nn.Parameter(projected(source.shift))
                    target.running_mean = projected(source.running_mean)
                    # coefficients, not values (Legendre's may be negative): the values are clamped at use
                    target.running_var = projected(source.running_var)
        if scheme is not None:
            block.scheme, block.tableau = scheme, _explicit_tableau(scheme)
        if n_steps is not None:
            block.n_steps = as_integer("n_steps", n_steps)
        block._refresh_weights()
        return block


class ResNetBlock(nn.Module):
    """x + h R(x): one residual block of the discrete network (conv-BN-ReLU-conv-BN, ordinary batch norm)."""

    def __init__(self, channels: int, step: float, activation: str = "relu") -> None:
        super().__init__()
        self.step, self.activation = step, activation
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.step * self.bn2(self.conv2(_ACTIVATIONS[self.activation](self.bn1(self.conv1(x)))))


class ContinuousNet(nn.Module):
    """Stem, three OdeBlocks (``widths``, 16/32/64 by default) with stride-2 downsampling between them, global
    average pooling and a linear head, for CIFAR-style inputs (any size, ``in_channels`` channels).

    Args:
        basis: "piecewise_constant", "piecewise_linear" or "legendre"; ``pieces`` functions per block.
        scheme, n_steps: the integrator of every OdeBlock (n_steps defaults to the number of pieces).
        activation: of the residual units ("relu" as in the ResNet; "gelu", "tanh", "softplus" are smooth).
    """

    def __init__(self, n_classes: int = 10, in_channels: int = 3, widths: Sequence[int] = (16, 32, 64),
                 pieces: int = 4, basis: str = "piecewise_constant", scheme: str = "euler",
                 n_steps: int | None = None, activation: str = "relu") -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) < 1 or any(w < 1 for w in widths):
            raise ValueError(f"widths must be positive integers, got {widths}")
        self.widths, self.n_classes = widths, n_classes
        self._settings = {"n_classes": n_classes, "in_channels": in_channels, "widths": list(widths), "pieces": pieces,
                          "basis": basis, "scheme": scheme, "n_steps": n_steps, "activation": activation}
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]),
                                  nn.ReLU())
        self.blocks = nn.ModuleList(OdeBlock(w, make_basis(basis, pieces), scheme, n_steps, activation) for w in widths)
        self.downsample = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, b, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU())
            for a, b in zip(widths[:-1], widths[1:]))
        self.head = nn.Linear(widths[-1], n_classes)

    def config(self) -> dict:
        """The constructor's arguments for this graph (scheme, steps and basis as manifested now)."""
        block = self.blocks[0]
        return {**self._settings, "pieces": block.basis.pieces, "basis": block.basis.name, "scheme": block.scheme,
                "n_steps": block.n_steps}

    @classmethod
    def from_config(cls, config: dict) -> "ContinuousNet":
        return cls(**config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index < len(self.downsample):
                x = self.downsample[index](x)
        return self.head(x.mean(dim=(2, 3)))

    def manifest(self, scheme: str | None = None, n_steps: int | None = None, basis: str | None = None,
                 pieces: int | None = None) -> "ContinuousNet":
        """The same network as another graph: another scheme, number of steps, or depth basis (``basis``: a family
        name, ``pieces``: its number of pieces). A new basis gets the L2 projection of every theta(t) (the kernels,
        the batch-norm scale and shift, the running mean and variance; a variance that dips below 0 between nodes is
        clamped where it is used): exact where the new basis contains the old one (refinement), the L2-optimal
        coefficients where it is smaller (compression without retraining; re-estimate the statistics with
        :func:`dynlearn.continuousnet.training.recalibrate_statistics`, the projected ones do not match)."""
        model = copy.deepcopy(self)
        target = None
        if basis is not None or pieces is not None:
            current = self.blocks[0].basis
            target = make_basis(basis or current.name, pieces or current.pieces)
        model.blocks = nn.ModuleList(block.manifest(scheme, n_steps, target) for block in self.blocks)
        return model

    def refined(self) -> "ContinuousNet":
        """The next graph of incremental-in-depth training: steps and pieces doubled. The basis refinement is
        exact (theta(t), the batch-norm statistics included, is the same function of depth), so the refined network
        is this one manifested with twice the steps: it differs from this one only by the scheme's discretisation
        error of halving the step."""
        block = self.blocks[0]
        return self.manifest(n_steps=2 * block.n_steps, pieces=2 * block.basis.pieces)

    def to_resnet(self) -> nn.Module:
        """The equivalent discrete ResNet (piecewise-constant basis, Euler, one step per piece): the same
        weights copied into K ordinary blocks x + h R_k(x) per stage, ordinary batch norm with the running
        statistics of each piece."""
        for block in self.blocks:
            if block.basis.name != "piecewise_constant" or block.scheme != "euler" or block.n_steps != block.basis.pieces:
                raise ValueError("to_resnet needs the piecewise-constant basis, euler and one step per piece; "
                                 "manifest(scheme='euler', n_steps=pieces) first")
        resnet = copy.deepcopy(self)
        stages = nn.ModuleList()
        for block in self.blocks:
            pieces = block.basis.pieces
            sequence = nn.Sequential()
            for k in range(pieces):
                unit = ResNetBlock(block.channels, 1.0 / pieces, block.activation)
                with torch.no_grad():
                    unit.conv1.weight.copy_(block.conv1[k])
                    unit.conv2.weight.copy_(block.conv2[k])
                    for bn, norm in ((unit.bn1, block.norm1), (unit.bn2, block.norm2)):
                        bn.weight.copy_(norm.scale[k])
                        bn.bias.copy_(norm.shift[k])
                        bn.running_mean.copy_(norm.running_mean[k])
                        bn.running_var.copy_(norm.running_var[k])
                        bn.eps = norm.eps
                sequence.append(unit)
            stages.append(sequence)
        resnet.blocks = stages
        return resnet
