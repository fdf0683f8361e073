"""Learned dynamics: vector fields, models embedded in integrators, discrete maps, hybrids, neural ODEs.

The central object is a learned vector field G(x) that is only ever used through an integrator:

    EmbeddedModel (the "ODE-Net"):  x_{k+1} = x_k + dt * sum_i b_i k_i,  k_i = G(x_k + dt sum_j a_ij k_j)

Its scheme and step are arguments of every call, not frozen into the model: a G trained inside forward Euler
at dt = 0.1 can be evaluated inside RK4 at dt = 0.001. That is what the convergence study does to tell a
continuous model from a discrete map. Baselines that are discrete by construction (``DiscreteMap``,
``SkipMap``, ``LinearMap``) have no dt to change.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn

from dynlearn._checks import as_flag, as_integer, as_positive_step, as_step_count
from dynlearn.integration.adaptive import odeint
from dynlearn.integration.rollout import rollout, step
from dynlearn.integration.tableau import ButcherTableau
from dynlearn.integration.tableaus import get_tableau

__all__ = [
    "MLP",
    "NeuralVectorField",
    "TimeDependentVectorField",
    "LinearVectorField",
    "AffineVectorField",
    "LinearMap",
    "EmbeddedModel",
    "DiscreteMap",
    "SkipMap",
    "HybridVectorField",
    "NeuralODE",
    "iterate_map",
]

#: the activations an MLP (and an EnsembleMLP) accepts, by name
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
}


class MLP(nn.Sequential):
    """in -> width (activation) -> ... -> out: ``depth`` hidden layers (default one of 50 tanh units, the
    network of the learned-integrator study). Acts on the last axis of ``(*batch, in_features)``."""

    def __init__(
        self, in_features: int, out_features: int, width: int = 50, depth: int = 1, activation: str = "tanh"
    ) -> None:
        for name, value in (("in_features", in_features), ("out_features", out_features), ("width", width),
                            ("depth", depth)):
            as_integer(name, value)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        layers: list[nn.Module] = []
        features = in_features
        for _ in range(depth):
            layers += [nn.Linear(features, width), ACTIVATIONS[activation]()]
            features = width
        layers.append(nn.Linear(features, out_features))
        super().__init__(*layers)


class NeuralVectorField(nn.Module):
    """An autonomous learned vector field G(x) = network(x), called as ``G(t, x)`` like any vector field."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


class TimeDependentVectorField(nn.Module):
    """A non-autonomous learned vector field G(t, x) = network([x, features(t)]) for states ``(*batch, d)``.

    ``periods`` (P_1, ...): the features are sin(2 pi t / P_j), cos(2 pi t / P_j) for each, a field periodic in t
    with periods the user knows (a forcing's: the double gyre's 2 pi / omega), which stays periodic beyond the
    training times; with no periods the feature is t itself. ``network`` takes d + 2 len(periods) inputs (d + 1
    without periods) and returns d. ``t`` is a 0-dim tensor or one time per batch element (``(batch,)``, as
    :func:`dynlearn.rollout` passes with a t0 or dt per element), broadcast over the state's further batch axes.
    """

    def __init__(self, network: nn.Module, periods: tuple[float, ...] = ()) -> None:
        super().__init__()
        self.network = network
        self.periods = tuple(as_positive_step("periods", period) for period in periods)

    @property
    def time_features(self) -> int:
        """How many inputs the time takes: 2 per period, or 1 (t itself)."""
        return 2 * len(self.periods) if self.periods else 1

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        t = t.reshape(tuple(t.shape) + (1,) * max(0, x.ndim - 1 - t.ndim)).expand(x.shape[:-1])
        if self.periods:
            angles = torch.stack([2 * math.pi * t / period for period in self.periods], dim=-1)
            features = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
        else:
            features = t[..., None]
        return self.network(torch.cat([x, features], dim=-1))


class LinearVectorField(nn.Module):
    """A learned linear operator Lambda (d x d): G(t, x) = Lambda x, for states ``(*batch, d)``.

    Initialised at zero unless ``initial`` is given, so training starts from no dynamics at all.
    """

    def __init__(self, dimension: int, initial: torch.Tensor | None = None, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        start = torch.zeros(dimension, dimension, dtype=dtype) if initial is None else torch.as_tensor(initial, dtype=dtype)
        if start.shape != (dimension, dimension):
            raise ValueError(f"initial must have shape ({dimension}, {dimension}), got {tuple(start.shape)}")
        self.operator = nn.Parameter(start.clone())

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x @ self.operator.T


class AffineVectorField(nn.Module):
    """A learned affine field G(t, x) = Lambda x + beta (Lambda d x d, beta d), for states ``(*batch, d)``.

    The linear model of data whose coordinates are not centred on the attractor: POD coefficients taken
    about the mean of a finite record, whose fixed point (or limit cycle's centre) -Lambda^-1 beta is not 0.
    """

    def __init__(self, operator: torch.Tensor, offset: torch.Tensor, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        operator, offset = torch.as_tensor(operator, dtype=dtype), torch.as_tensor(offset, dtype=dtype)
        if operator.ndim != 2 or operator.shape[0] != operator.shape[1] or offset.shape != operator.shape[:1]:
            raise ValueError(f"operator must be (d, d) and offset (d,), got {tuple(operator.shape)} and "
                             f"{tuple(offset.shape)}")
        self.operator = nn.Parameter(operator.clone())
        self.offset = nn.Parameter(offset.clone())

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x @ self.operator.T + self.offset


class LinearMap(nn.Module):
    """A learned discrete linear map Omega (d x d): x_{k+1} = Omega x_k. Initialised at the identity."""

    def __init__(self, dimension: int, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.operator = nn.Parameter(torch.eye(dimension, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.operator.T


class DiscreteMap(nn.Module):
    """The direct discrete map x_{k+1} = N(x_k): no vector field, no dt."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


class SkipMap(nn.Module):
    """The ResNet-like map x_{k+1} = x_k + dt N(x_k) with a fixed dt: forward Euler with a frozen step."""

    def __init__(self, network: nn.Module, dt: float) -> None:
        super().__init__()
        self.network = network
        self.dt = as_positive_step("dt", dt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dt * self.network(x)


class HybridVectorField(nn.Module):
    """Known physics plus a learned correction, dx/dt = N(t, x) + G(t, x): a universal differential equation.

    ``known`` is a vector field N(t, x) (e.g. the undamped pendulum) and ``correction`` a learned vector field
    G(t, x) (a :class:`NeuralVectorField`, a :class:`LinearVectorField`, ...) that learns what the known part
    leaves out (e.g. the damping).
    """

    def __init__(self, known: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], correction: nn.Module) -> None:
        super().__init__()
        self.known = known
        self.correction = correction

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.known(t, x) + self.correction(t, x)


class EmbeddedModel(nn.Module):
    """A vector field inside an explicit Runge-Kutta scheme: the ODE-Net.

    ``scheme`` and ``dt`` are the training defaults; every method takes others, so a trained field can be
    evaluated with any registered tableau at any step.
    """

    def __init__(self, vector_field: nn.Module, scheme: str | ButcherTableau = "rk4", dt: float = 0.1) -> None:
        super().__init__()
        self.vector_field = vector_field
        self.scheme = get_tableau(scheme).name if isinstance(scheme, str) else scheme
        self.dt = as_positive_step("dt", dt)

    def forward(self, x: torch.Tensor, dt: float | torch.Tensor | None = None,
                scheme: str | ButcherTableau | None = None) -> torch.Tensor:
        """One step x_k -> x_{k+1}; ``dt`` a number or a ``(batch,)`` tensor, one step per element (see
        :func:`dynlearn.step`)."""
        return step(self.vector_field, 0.0, x, self.dt if dt is None else dt, self.scheme if scheme is None else scheme)

    def rollout(
        self,
        x0: torch.Tensor,
        n_steps: int,
        dt: float | torch.Tensor | None = None,
        scheme: str | ButcherTableau | None = None,
        **options,
    ) -> torch.Tensor:
        """``(n_steps + 1, *x0.shape)`` from x0 (see :func:`dynlearn.rollout` for ``options``; ``dt`` may be a
        ``(batch,)`` tensor, each element on its own grid)."""
        return rollout(self.vector_field, x0, 0.0, self.dt if dt is None else dt, n_steps,
                       self.scheme if scheme is None else scheme, **options)


def iterate_map(model: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor, n_steps: int) -> torch.Tensor:
    """x_{k+1} = model(x_k) for ``n_steps``: ``(n_steps + 1, *x0.shape)``."""
    n_steps = as_step_count("n_steps", n_steps)
    states = [x0]
    for _ in range(n_steps):
        states.append(model(states[-1]))
    return torch.stack(states)


class NeuralODE(nn.Module):
    """dx/dt = G(x) solved adaptively by torchdiffeq (optionally with the adjoint), the continuous reference.

    With ``augment = a > 0`` the state is padded with a zero dimensions before solving and the padding is
    dropped from the output (augmented neural ODEs, Dupont et al. 2019): G then acts on d + a dimensions.
    """

    def __init__(
        self,
        vector_field: nn.Module,
        augment: int = 0,
        method: str = "dopri5",
        rtol: float = 1e-7,
        atol: float = 1e-9,
        adjoint: bool = False,
    ) -> None:
        super().__init__()
        self.vector_field = vector_field
        self.augment = as_step_count("augment", augment)
        self.method, self.rtol, self.atol, self.adjoint = method, rtol, atol, as_flag("adjoint", adjoint)

    def forward(self, x0: torch.Tensor, times: torch.Tensor | Sequence[float]) -> torch.Tensor:
        """States at ``times`` from x0 at ``times[0]``: ``(len(times), *x0.shape)``."""
        state = x0
        if self.augment:
            state = torch.cat([x0, x0.new_zeros(*x0.shape[:-1], self.augment)], dim=-1)
        solution = odeint(self.vector_field, state, times, method=self.method, rtol=self.rtol, atol=self.atol,
                          adjoint=self.adjoint)
        return solution[..., : x0.shape[-1]] if self.augment else solution
