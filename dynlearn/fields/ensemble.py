"""Ensembles: M networks of one architecture as one batched computation, each member with its own data and step.

A sweep trains many copies of one small network (a 2-50-2 MLP) on different data, steps and seeds. Trained one
after another each costs a few tiny matrix products per iteration, launch-bound; stacked, the M members are one
batched product (``torch.baddbmm``) of the same launch count. Members never interact: the ensemble's loss is the
sum of its members' losses, so each member's gradient is its own.

    EnsembleMLP          the weights of M MLPs stacked along a leading member axis: (M, B, in) -> (M, B, out)
    ensemble_embedded_loss   per-member one-step loss inside one or several schemes, each member at its own dt

A member is exactly the MLP it was stacked from (:meth:`EnsembleMLP.from_networks`, :meth:`EnsembleMLP.member`),
so a member trained in an ensemble can be used, saved and evaluated like one trained alone.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from dynlearn._checks import as_integer
from dynlearn.fields.models import ACTIVATIONS, MLP
from dynlearn.integration.step_plan import step_plan
from dynlearn.integration.tableau import ButcherTableau

__all__ = ["EnsembleMLP", "EnsembleVectorField", "EnsembleLoss", "ensemble_embedded_loss"]

#: loss(indices) -> per-member losses (M,); indices (M, B) selects each member's minibatch (-1: no sample), None all
#: of each member's samples.
EnsembleLoss = Callable[[torch.Tensor | None], torch.Tensor]


class EnsembleMLP(nn.Module):
    """M MLPs of one architecture with their parameters stacked: layer l holds ``weight_l`` (M, fan_in, fan_out)
    and ``bias_l`` (M, 1, fan_out) (lists: :attr:`weights`, :attr:`biases`); member m maps ``x[m]`` (B, in) to
    (B, out) exactly as its own MLP would.

    Constructed directly, every parameter is zero. Build it from trained or freshly initialised MLPs with
    :meth:`from_networks` (a member's initial weights are then those of the MLP, e.g. ``torch.manual_seed(seed);
    MLP(2, 2)``) and take a member back with :meth:`member`.
    """

    def __init__(self, members: int, in_features: int, out_features: int, width: int = 50, depth: int = 1,
                 activation: str = "tanh", dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        for name, value in (("members", members), ("in_features", in_features), ("out_features", out_features),
                            ("width", width), ("depth", depth)):
            as_integer(name, value)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self.shape = (in_features, out_features, width, depth)
        sizes = [in_features] + [width] * depth + [out_features]  # zeros: no draw from torch's generator
        self.layers = len(sizes) - 1
        for index, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
            self.register_parameter(f"weight_{index}", nn.Parameter(torch.zeros(members, fan_in, fan_out, dtype=dtype)))
            self.register_parameter(f"bias_{index}", nn.Parameter(torch.zeros(members, 1, fan_out, dtype=dtype)))
        self._names = tuple((f"weight_{index}", f"bias_{index}") for index in range(self.layers))
        self.nonlinearity = ACTIVATIONS[activation]()

    @property
    def weights(self) -> list[nn.Parameter]:
        """The stacked weights, one (M, fan_in, fan_out) per layer."""
        return [self._parameters[weight] for weight, _ in self._names]

    @property
    def biases(self) -> list[nn.Parameter]:
        """The stacked biases, one (M, 1, fan_out) per layer."""
        return [self._parameters[bias] for _, bias in self._names]

    @property
    def members(self) -> int:
        return self.weights[0].shape[0]

    @classmethod
    def from_networks(cls, networks: Sequence[MLP]) -> "EnsembleMLP":
        """Stack MLPs of one architecture (same layer sizes and activation) into an ensemble, in that order."""
        if not networks:
            raise ValueError("an ensemble needs at least one network")
        shapes = {tuple((layer.in_features, layer.out_features) for layer in net if isinstance(layer, nn.Linear))
                  for net in networks}
        kinds = {tuple(type(layer).__name__ for layer in net) for net in networks}
        if len(shapes) != 1 or len(kinds) != 1:
            raise ValueError("every network of an ensemble must have the same layers and activation")
        linears = [layer for layer in networks[0] if isinstance(layer, nn.Linear)]
        activations = {type(layer) for layer in networks[0] if not isinstance(layer, nn.Linear)}
        name = next((key for key, make in ACTIVATIONS.items() if {make().__class__} == activations), "tanh")
        dtype = linears[0].weight.dtype
        ensemble = cls(len(networks), linears[0].in_features, linears[-1].out_features,
                       linears[0].out_features, len(linears) - 1, name, dtype)
        with torch.no_grad():
            for index in range(len(linears)):
                layers = [[layer for layer in net if isinstance(layer, nn.Linear)][index] for net in networks]
                ensemble.weights[index].copy_(torch.stack([layer.weight.T for layer in layers]))
                ensemble.biases[index].copy_(torch.stack([layer.bias[None, :] for layer in layers]))
        return ensemble.to(linears[0].weight.device)

    def member(self, index: int) -> MLP:
        """Member ``index`` as a stand-alone :class:`MLP` (a copy, on the ensemble's device and dtype)."""
        in_features, out_features, width, depth = self.shape
        weight = self.weights[0]
        network = MLP(in_features, out_features, width, depth, self.activation).to(weight.device, weight.dtype)
        with torch.no_grad():
            for layer, w, b in zip([m for m in network if isinstance(m, nn.Linear)], self.weights, self.biases):
                layer.weight.copy_(w[index].T)
                layer.bias.copy_(b[index, 0])
        return network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(M, B, in) -> (M, B, out): x_{l+1} = sigma(x_l W_l + b_l) per member, the last layer linear."""
        if x.ndim != 3 or x.shape[0] != self.members:
            raise ValueError(f"an ensemble of {self.members} takes (members, batch, features), got {tuple(x.shape)}")
        parameters, last = self._parameters, self.layers - 1
        for index, (weight, bias) in enumerate(self._names):  # plain dict look-ups: a rollout is launch-bound
            x = torch.baddbmm(parameters[bias], x, parameters[weight])
            if index < last:
                x = self.nonlinearity(x)
        return x


class EnsembleVectorField(nn.Module):
    """G_m(x) for every member at once, called as ``f(t, x)`` with x (M, B, d): the ensemble inside a rollout
    (every member at the same dt)."""

    def __init__(self, ensemble: EnsembleMLP) -> None:
        super().__init__()
        self.ensemble = ensemble

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.ensemble(x)


def ensemble_embedded_loss(
    ensemble: EnsembleMLP,
    starts: torch.Tensor,
    successors: torch.Tensor,
    dts: torch.Tensor | Sequence[float],
    schemes: Sequence[str | ButcherTableau] = ("rk4",),
    counts: Sequence[int] | None = None,
) -> EnsembleLoss:
    """Per member m, the one-step loss of G_m inside each scheme at its own step dt_m, summed over schemes:

        L_m = sum_schemes mean_{n, i} (Phi_{dt_m}(x_{m, n})_i - y_{m, n, i})^2,

    the loss :func:`dynlearn.fields.embedded_loss` gives member m alone (one step, S = 1). ``starts`` and
    ``successors`` are (M, N, d): member m's pairs are the first ``counts[m]`` rows (default: all N; shorter
    data padded at the end). ``dts`` (M,), or (M, N) for a step per pair (irregularly sampled data: pair n of
    member m is dt_{m, n} apart). Each step enters as the field dt G_m stepped at dt = 1, the same Runge-Kutta
    step (:func:`dynlearn.step_plan`): k~_i = dt k_i (the field is autonomous, so its stage times do not matter).
    """
    members = ensemble.members
    if starts.shape != successors.shape or starts.ndim != 3 or starts.shape[0] != members:
        raise ValueError(f"starts and successors must both be (members={members}, N, d), got "
                         f"{tuple(starts.shape)} and {tuple(successors.shape)}")
    plans = [step_plan(scheme) for scheme in schemes]
    if not plans:
        raise ValueError("schemes is empty")
    steps = torch.as_tensor(dts, dtype=starts.dtype, device=starts.device)
    if tuple(steps.shape) not in {(members,), (members, starts.shape[1])}:
        raise ValueError(f"dts must be (members,) = ({members},) or (members, N) = ({members}, {starts.shape[1]}), "
                         f"got shape {tuple(steps.shape)}")
    per_pair = steps.ndim == 2
    steps = steps[:, :, None] if per_pair else steps.reshape(members, 1, 1)
    if not bool(torch.all(steps > 0)) or not bool(torch.isfinite(steps).all()):
        raise ValueError(f"every dt must be finite and > 0, got values from {float(steps.min()):.6g} to "
                         f"{float(steps.max()):.6g}")
    size = starts.shape[1]
    lengths = torch.as_tensor([size] * members if counts is None else list(counts), device=starts.device)
    if lengths.shape != (members,) or bool(torch.any(lengths < 1)) or bool(torch.any(lengths > size)):
        raise ValueError(f"counts must give each of the {members} members 1..{size} samples, got {lengths.tolist()}")
    full = bool(torch.all(lengths == size))
    mask = (torch.arange(size, device=starts.device)[None, :] < lengths[:, None]).to(starts.dtype)

    stage_arguments = {id(plan): plan.stage_times(0.0, 1.0, 0, 1, starts)[0] for plan in plans}

    def loss(index: torch.Tensor | None) -> torch.Tensor:
        if index is None:
            x, y, weight, step_sizes = starts, successors, mask, steps
        else:  # (M, B): member m's sample numbers, -1 where it has fewer than B
            valid = index >= 0
            gather = index.clamp(min=0)[:, :, None].expand(-1, -1, starts.shape[2])
            x, y = torch.gather(starts, 1, gather), torch.gather(successors, 1, gather)
            step_sizes = torch.gather(steps, 1, index.clamp(min=0)[:, :, None]) if per_pair else steps
            weight = valid.to(starts.dtype)  # no data-dependent branch: the loss compiles to one graph

        def scaled(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            return step_sizes * ensemble(x)

        total = starts.new_zeros(members)
        for plan in plans:
            predicted = plan.advance(scaled, x, stage_arguments[id(plan)], plan.scaled(1.0))
            squared = (predicted - y) ** 2
            if index is None and full:
                total = total + squared.mean(dim=(1, 2))
            else:
                total = total + (squared * weight[:, :, None]).sum(dim=(1, 2)) / (weight.sum(1) * starts.shape[2])
        return total

    return loss
