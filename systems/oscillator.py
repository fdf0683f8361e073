"""The harmonic oscillator du/dt = Lambda u, Lambda = [[0, 1], [-omega^2, -2 zeta omega]].

State (u, u'): displacement and velocity of u'' + 2 zeta omega u' + omega^2 u = 0 (undamped by default).
Exact solution u(t) = exp(t Lambda) u0 through the matrix exponential, and the exact one-step map
exp(dt Lambda) that a linear model trained on data at step dt should learn.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from .base import Parameter, System, as_times, check_positive
from .linear import LinearSystem, harmonic_oscillator_matrix

__all__ = ["HarmonicOscillator"]


class HarmonicOscillator(System):
    """u'' + 2 zeta omega u' + omega^2 u = 0 as the first-order system (u, u')' = Lambda (u, u').

    Energy (per unit mass) E = (u'^2 + omega^2 u^2) / 2: conserved when undamped, and dE/dt =
    -2 zeta omega u'^2 otherwise. Initial conditions: u ~ U[-1, 1], u' ~ omega U[-1, 1] (independent).
    """

    name = "oscillator"
    PARAMETERS = (
        Parameter("frequency", 1.0, "rad/s", "natural angular frequency omega"),
        Parameter("damping_ratio", 0.0, "1", "zeta >= 0; 0 is undamped, 1 critically damped"),
    )
    analytical_method = "matrix exponential exp(t Lambda) u0"

    def __init__(self, frequency: float = 1.0, damping_ratio: float = 0.0) -> None:
        self.frequency = check_positive(self.name, "frequency", frequency)
        damping_ratio = float(damping_ratio)
        if not math.isfinite(damping_ratio) or damping_ratio < 0:
            raise ValueError(f"{self.name}: damping_ratio must be a finite number >= 0, got {damping_ratio!r}")
        self.damping_ratio = damping_ratio
        self.linear = LinearSystem(harmonic_oscillator_matrix(self.frequency, self.damping_ratio))

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("u", "du/dt")

    @property
    def matrix(self) -> torch.Tensor:
        """Lambda, (2, 2), float64."""
        return self.linear.matrix

    def vector_field(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.linear.vector_field(t, self.check_state(x))

    def solution(self, x0: torch.Tensor, times: torch.Tensor | Sequence[float]) -> torch.Tensor:
        x0 = self.check_state(torch.as_tensor(x0, dtype=torch.float64), "x0")
        return self.linear.solution(x0, as_times(times))

    def step_map(self, dt: float) -> torch.Tensor:
        """The exact one-step map exp(dt Lambda), (2, 2), float64."""
        return self.linear.step_map(check_positive(self.name, "dt", dt))

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_state(x)
        return 0.5 * (x[..., 1] ** 2 + self.frequency**2 * x[..., 0] ** 2)

    def sample_initial_conditions(self, n: int, generator: torch.Generator) -> torch.Tensor:
        uniform = 2 * torch.rand(n, 2, generator=generator, dtype=torch.float64) - 1
        return uniform * torch.tensor([1.0, self.frequency], dtype=torch.float64)
