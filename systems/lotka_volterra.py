"""The Lotka-Volterra prey-predator equations, with their invariant and the period of every orbit.

    x' = alpha x - beta x y,     y' = delta x y - gamma y,     x, y > 0

(x prey, y predators, in units of a reference population; time in the units of 1/alpha). Every orbit with
x, y > 0 is closed around the coexistence point (gamma / delta, alpha / beta), on a level set of the invariant

    V(x, y) = delta x - gamma ln x + beta y - alpha ln y,

which is smallest at that point. Defaults alpha = 2/3, beta = 4/3, gamma = delta = 1: the textbook example (the
phase portraits of the Wikipedia article and of many courses), not the journal paper's values, which are not
published. There is no closed-form solution: the reference is a tight adaptive solve (dopri5 at rtol = atol =
1e-12, stepping to every output time), whose invariant drifts by about 1e-11 over ten periods
(tests/test_lotka_volterra_gyre.py measures it). The period of an orbit comes from an independent quadrature
(:meth:`LotkaVolterra.period`): in logarithmic coordinates u = ln x, v = ln y the level set of V is a convex closed
curve around the fixed point, r(phi) found by root finding for every polar angle phi, and
T = integral over phi of dphi / |dphi/dt|, with scipy's adaptive quadrature.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import integrate, optimize

from .base import Parameter, System, check_positive

__all__ = ["LotkaVolterra"]


class LotkaVolterra(System):
    """Prey x and predators y: x' = alpha x - beta x y, y' = delta x y - gamma y (see the module docstring).

    Invariant V = delta x - gamma ln x + beta y - alpha ln y (:meth:`invariant`, stored as the trajectory parameter
    ``invariant`` with the orbit's ``period``). Initial conditions: x = (gamma / delta) s, y = (alpha / beta) r with
    s, r ~ U[0.5, 1.5] independent: orbits around the coexistence point, from small to large.
    """

    name = "lotka-volterra"
    PARAMETERS = (
        Parameter("alpha", 2 / 3, "1/time", "prey growth rate"),
        Parameter("beta", 4 / 3, "1/(population time)", "predation rate"),
        Parameter("gamma", 1.0, "1/time", "predator death rate"),
        Parameter("delta", 1.0, "1/(population time)", "predator growth per prey eaten"),
    )

    def __init__(self, alpha: float = 2 / 3, beta: float = 4 / 3, gamma: float = 1.0, delta: float = 1.0) -> None:
        self.alpha = check_positive(self.name, "alpha", alpha)
        self.beta = check_positive(self.name, "beta", beta)
        self.gamma = check_positive(self.name, "gamma", gamma)
        self.delta = check_positive(self.name, "delta", delta)

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("prey", "predators")

    @property
    def fixed_point(self) -> tuple[float, float]:
        """The coexistence point (gamma / delta, alpha / beta)."""
        return self.gamma / self.delta, self.alpha / self.beta

    @property
    def small_amplitude_period(self) -> float:
        """2 pi / sqrt(alpha gamma): the period of the orbits closest to the fixed point."""
        return 2 * math.pi / math.sqrt(self.alpha * self.gamma)

    def vector_field(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        x = self.check_state(x)
        prey, predators = x[..., 0], x[..., 1]
        return torch.stack([prey * (self.alpha - self.beta * predators),
                            predators * (self.delta * prey - self.gamma)], dim=-1)

    def invariant(self, x: torch.Tensor) -> torch.Tensor:
        """V(x, y) = delta x - gamma ln x + beta y - alpha ln y per state (NaN outside x, y > 0)."""
        x = self.check_state(x)
        prey, predators = x[..., 0], x[..., 1]
        return (self.delta * prey - self.gamma * torch.log(prey) + self.beta * predators
                - self.alpha * torch.log(predators))

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """The invariant V (the system's conserved quantity; not an energy in the mechanical sense)."""
        return self.invariant(x)

    def period(self, x0: torch.Tensor) -> float:
        """The period of the orbit through one state (x0, y0) > 0, by quadrature (see the module docstring); the
        small-amplitude period at the fixed point itself."""
        x0 = self.check_state(torch.as_tensor(x0, dtype=torch.float64), "x0")
        prey, predators = float(x0[..., 0]), float(x0[..., 1])
        if not (prey > 0 and predators > 0 and math.isfinite(prey) and math.isfinite(predators)):
            raise ValueError(f"{self.name}: populations must be finite and > 0, got {x0.tolist()}")
        a, b, c, d = self.alpha, self.beta, self.gamma, self.delta
        u0, v0 = math.log(c / d), math.log(a / b)  # the fixed point in (u, v) = (ln x, ln y)

        def level(u: float, v: float) -> float:  # V in logarithmic coordinates
            return d * math.exp(u) - c * u + b * math.exp(v) - a * v

        target = level(math.log(prey), math.log(predators))
        if target - level(u0, v0) < 1e-12 * abs(level(u0, v0)):
            return self.small_amplitude_period

        def radius(phi: float) -> float:
            direction = (math.cos(phi), math.sin(phi))
            high = 1.0
            while level(u0 + high * direction[0], v0 + high * direction[1]) < target:
                high *= 2.0
            return optimize.brentq(lambda r: level(u0 + r * direction[0], v0 + r * direction[1]) - target, 0.0, high,
                                   xtol=1e-15, rtol=4 * np.finfo(float).eps)

        def seconds_per_radian(phi: float) -> float:
            r = radius(phi)
            u, v = u0 + r * math.cos(phi), v0 + r * math.sin(phi)
            du, dv = a - b * math.exp(v), d * math.exp(u) - c  # (ln x)' and (ln y)'
            angular = (dv * (u - u0) - du * (v - v0)) / r**2
            return 1.0 / abs(angular)

        value, _ = integrate.quad(seconds_per_radian, 0.0, 2 * math.pi, epsabs=0.0, epsrel=1e-12, limit=200)
        return value

    def trajectory_parameters(self, x0: torch.Tensor) -> dict[str, torch.Tensor]:
        """The invariant V and the period of each trajectory."""
        x0 = self.check_state(torch.as_tensor(x0, dtype=torch.float64), "x0")
        periods = torch.tensor([self.period(state) for state in x0.reshape(-1, 2)], dtype=torch.float64)
        return {"invariant": self.invariant(x0), "period": periods.reshape(x0.shape[:-1])}

    def sample_initial_conditions(self, n: int, generator: torch.Generator) -> torch.Tensor:
        scale = 0.5 + torch.rand(n, 2, generator=generator, dtype=torch.float64)
        return scale * torch.tensor(self.fixed_point, dtype=torch.float64)
