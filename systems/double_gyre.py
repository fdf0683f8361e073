"""The double gyre: a time-periodic, incompressible two-dimensional flow, and the paths of tracers in it.

Stream function (Shadden, Lekien & Marsden 2005, the standard test flow of Lagrangian coherent structures)

    psi(x, y, t) = A sin(pi f(x, t)) sin(pi y),    f(x, t) = a(t) x^2 + b(t) x,
    a(t) = epsilon sin(omega t),    b(t) = 1 - 2 epsilon sin(omega t),

on [0, 2] x [0, 1]; velocity u = -d psi / dy = -pi A sin(pi f) cos(pi y), v = d psi / dx = pi A cos(pi f)
sin(pi y) df/dx. Defaults A = 0.1, epsilon = 0.25, omega = 2 pi / 10 (Shadden et al.'s values, which the journal
paper's description matches; its exact ones are not published). The flow is non-autonomous: the vector field
depends on t, and a tracer's state is its position (x, y). Divergence-free, so the flow map preserves area; no
flow crosses the boundary of the domain (u = 0 at x = 0, 2; v = 0 at y = 0, 1); with epsilon = 0 the flow is
steady and psi is conserved along every path. No closed-form paths: the reference is a tight adaptive solve
(dopri5 at rtol = atol = 1e-12, stepping to every output time), checked in tests/test_lotka_volterra_gyre.py
against those properties.
"""

from __future__ import annotations

import math

import torch

from .base import Parameter, System, check_positive

__all__ = ["DoubleGyre"]


class DoubleGyre(System):
    """Tracer paths (x, y) in the double-gyre flow (see the module docstring): dx/dt = u(x, y, t).

    ``vector_field(t, x)`` takes t as a 0-dim tensor or one time per batch element (``(batch,)``, broadcast over
    the state's further batch axes). Initial conditions: uniform on the domain [0, 2] x [0, 1].
    """

    name = "double-gyre"
    autonomous = False
    PARAMETERS = (
        Parameter("amplitude", 0.1, "length/time", "A: the velocity scale (the peak speed is pi A)"),
        Parameter("epsilon", 0.25, "1", "how far the gyres' dividing line swings, 0 <= epsilon < 1/2"),
        Parameter("omega", 2 * math.pi / 10, "rad/time", "angular frequency of the swing (period 2 pi / omega)"),
    )

    def __init__(self, amplitude: float = 0.1, epsilon: float = 0.25, omega: float = 2 * math.pi / 10) -> None:
        self.amplitude = check_positive(self.name, "amplitude", amplitude)
        epsilon = float(epsilon)
        if not 0.0 <= epsilon < 0.5:
            raise ValueError(f"{self.name}: epsilon must lie in [0, 0.5), got {epsilon!r}")
        self.epsilon = epsilon
        self.omega = check_positive(self.name, "omega", omega)

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("x", "y")

    def _terms(self, t: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        t = t.reshape(tuple(t.shape) + (1,) * max(0, x.ndim - 1 - t.ndim))  # (batch,) stage times, further axes
        swing = self.epsilon * torch.sin(self.omega * t)
        position, height = x[..., 0], x[..., 1]
        f = swing * position**2 + (1 - 2 * swing) * position
        df = 2 * swing * position + (1 - 2 * swing)
        return f, df, height

    def vector_field(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        x = self.check_state(x)
        f, df, height = self._terms(t, x)
        scale = math.pi * self.amplitude
        u = -scale * torch.sin(math.pi * f) * torch.cos(math.pi * height)
        v = scale * torch.cos(math.pi * f) * torch.sin(math.pi * height) * df
        return torch.stack([u, v], dim=-1)

    def stream_function(self, t: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
        """psi(x, y, t) per state."""
        x = self.check_state(x)
        f, _, height = self._terms(torch.as_tensor(t, dtype=x.dtype), x)
        return self.amplitude * torch.sin(math.pi * f) * torch.sin(math.pi * height)

    def trajectory_parameters(self, x0: torch.Tensor) -> dict[str, torch.Tensor]:
        """The stream function at the start (conserved along the path when epsilon = 0)."""
        x0 = self.check_state(torch.as_tensor(x0, dtype=torch.float64), "x0")
        return {"initial_stream_function": self.stream_function(0.0, x0)}

    def sample_initial_conditions(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.rand(n, 2, generator=generator, dtype=torch.float64) * torch.tensor([2.0, 1.0],
                                                                                          dtype=torch.float64)
