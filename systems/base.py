"""The common interface of physical systems.

A system knows its parameters (validated on construction), its exact vector field f(t, x) as a torch
function (so it can sit inside any integrator as the "true G" baseline), the layout and names of its state,
an analytical solution where one exists (vectorised over trajectories and times, float64), a reference
numerical solution, a conserved or monitored energy, and a documented distribution of initial conditions.
"""

from __future__ import annotations

import abc
import dataclasses
import warnings
from typing import Any, ClassVar, Sequence

import torch

from dynlearn._checks import as_positive_number
from dynlearn.integration.adaptive import odeint

__all__ = ["Parameter", "PrecisionWarning", "System", "as_times", "check_positive"]


@dataclasses.dataclass(frozen=True)
class Parameter:
    """A physical parameter: name, default, unit and meaning (used for validation, ``--help`` and files)."""

    name: str
    default: Any
    unit: str
    description: str


def check_positive(system: str, name: str, value: float) -> float:
    """``value`` as a float, finite and > 0, or a ValueError naming the system and the parameter."""
    return as_positive_number(f"{system}: {name}", value)


class System(abc.ABC):
    """Base class of the physical systems. Subclasses set ``name``, ``PARAMETERS`` and ``state_names`` and
    implement :meth:`vector_field`; those with an analytical solution implement :meth:`solution`."""

    name: ClassVar[str]
    PARAMETERS: ClassVar[tuple[Parameter, ...]]
    #: what generates the analytical solution, recorded in dataset files
    analytical_method: ClassVar[str] = ""
    #: whether the vector field is independent of t (False: G(t, x) is needed, e.g. the double gyre)
    autonomous: ClassVar[bool] = True

    @property
    @abc.abstractmethod
    def state_names(self) -> tuple[str, ...]:
        """Names of the state's components, in order (the last axis of a state)."""

    @property
    def state_shape(self) -> tuple[int, ...]:
        return (len(self.state_names),)

    def parameters(self) -> dict[str, Any]:
        """The parameter values, by name (JSON-serialisable)."""
        return {p.name: getattr(self, p.name) for p in self.PARAMETERS}

    @abc.abstractmethod
    def vector_field(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """dx/dt at time ``t`` for states ``x`` of shape ``(*batch, *state_shape)``."""

    def __call__(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.vector_field(t, x)

    @property
    def has_solution(self) -> bool:
        return type(self).solution is not System.solution

    def solution(self, x0: torch.Tensor, times: torch.Tensor | Sequence[float]) -> torch.Tensor:
        """The exact state at each time from x(0) = x0: ``x0`` is ``(*batch, *state_shape)``, ``times`` is
        ``(n,)``; returns ``(n, *batch, *state_shape)`` in float64."""
        raise NotImplementedError(f"{self.name} has no analytical solution; use numerical_solution")

    def numerical_solution(
        self, x0: torch.Tensor, times: torch.Tensor | Sequence[float], *, rtol: float = 1e-12, atol: float = 1e-12
    ) -> torch.Tensor:
        """Reference numerical solution from x(0) = x0 through torchdiffeq's dopri5, stepping to every output
        time, in float64, with the given error tolerances per step (agreement with the exact pendulum solution:
        about 1e-10 over 5 s). Same shapes as :meth:`solution`; times must increase from t >= 0.

        Not dopri8: torchdiffeq's dopri8 missed rtol = 1e-11 by four orders of magnitude on a batch of four
        pendulum trajectories (error 4.7e-7, where dopri5 gave 4e-10)."""
        x0 = self.check_state(torch.as_tensor(x0, dtype=torch.float64), "x0")
        times = as_times(times)
        prepend = times.numel() == 0 or float(times[0]) != 0.0
        grid = torch.cat([times.new_zeros(1), times]) if prepend else times
        if grid.numel() == 1:
            return x0.unsqueeze(0).clone()
        states = odeint(self.vector_field, x0, grid, method="dopri5", rtol=rtol, atol=atol)
        return states[1:] if prepend else states

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """The system's energy per state, shape ``x.shape[:-len(state_shape)]``."""
        raise NotImplementedError(f"{self.name} defines no energy")

    @abc.abstractmethod
    def sample_initial_conditions(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` initial states ``(n, *state_shape)`` from the system's documented distribution."""

    def analytical_trajectories(
        self, times: torch.Tensor, initial_conditions: torch.Tensor | None, n: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Initial states ``(n, *state_shape)`` (given, or sampled) and their exact trajectories
        ``(n, n_times, *state_shape)``: what a dataset of this system holds."""
        x0 = self.sample_initial_conditions(n, generator) if initial_conditions is None else initial_conditions
        return x0, self.solution(x0, times).movedim(0, 1)

    def numerical_details(self) -> dict[str, Any]:
        """How :meth:`numerical_solution` computes, recorded in dataset files."""
        return {"method": "torchdiffeq dopri5 on the vector field, stepping to every output time",
                "rtol": 1e-12, "atol": 1e-12}

    def analytical_details(self) -> dict[str, Any]:
        """How the analytical solution is computed, recorded in dataset files."""
        return {"method": self.analytical_method}

    def trajectory_parameters(self, x0: torch.Tensor) -> dict[str, torch.Tensor]:
        """Numbers that characterise each trajectory from its initial state, ``(n,)`` each (default: energy)."""
        try:
            return {"energy": self.energy(x0)}
        except NotImplementedError:
            return {}

    def check_state(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{self.name}: {name} must be a torch.Tensor, got {type(x).__name__}")
        shape = self.state_shape
        if tuple(x.shape[len(x.shape) - len(shape) :]) != shape or x.ndim < len(shape):
            raise ValueError(
                f"{self.name}: {name} must have shape (*batch, {', '.join(map(str, shape))}) "
                f"(state {', '.join(self.state_names) if len(self.state_names) < 8 else '...'}), got {tuple(x.shape)}"
            )
        return x

    def describe(self) -> str:
        lines = [f"{self.name}: state ({', '.join(self.state_names[:6])}{', ...' if len(self.state_names) > 6 else ''})"]
        for p in self.PARAMETERS:
            lines.append(f"  {p.name} = {getattr(self, p.name)} {p.unit}  ({p.description})")
        return "\n".join(lines)


class PrecisionWarning(UserWarning):
    """Times given in less than float64: exact solutions are evaluated at the rounded times."""


def as_times(times: torch.Tensor | Sequence[float]) -> torch.Tensor:
    """Times as a 1-D float64 tensor. Warns when given a lower-precision tensor (``torch.arange(n) * 0.1`` is
    float32: its times are off by ~1e-8 relative, and so is an exact solution evaluated at them)."""
    if isinstance(times, torch.Tensor) and times.is_floating_point() and torch.finfo(times.dtype).bits < 64:
        warnings.warn(
            f"times given as {times.dtype}: the exact solution is evaluated at these rounded times; pass float64 "
            f"times (e.g. torch.arange(n, dtype=torch.float64) * dt) for full precision",
            PrecisionWarning,
            stacklevel=3,
        )
    tensor = torch.as_tensor(times, dtype=torch.float64)
    if tensor.ndim != 1:
        raise ValueError(f"times must be one-dimensional, got shape {tuple(tensor.shape)}")
    return tensor
