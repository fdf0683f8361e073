r"""The ideal pendulum, in angle form and in constrained Cartesian form, with exact solutions.

Angle form: theta'' = -(g/L) sin(theta), state (theta, theta'), theta measured from the downward vertical
(counter-clockwise positive).

Exact solution with Jacobi elliptic functions. With omega0 = sqrt(g/L) and the energy invariant
k^2 = sin^2(theta/2) + (theta' / (2 omega0))^2 (k = 1 on the separatrix):

- libration (k < 1), parameter m = k^2:   sin(theta/2) = k sn(u | m),  theta' = 2 k omega0 cn(u | m),
  u = omega0 t + u0, where the initial phase u0 = F(phi0 | m) and phi0 = atan2(sn, cn) from
  sn(u0) = sin(theta0/2)/k and cn(u0) = theta0'/(2 k omega0): any initial velocity, either sign, reduces to
  the equivalent point on the orbit. Period 4 K(m) / omega0.
- rotation (k > 1), parameter m = 1/k^2:  theta/2 = am(v | m),  theta' = 2 s k omega0 dn(v | m),
  v = s k omega0 t + F(theta0/2 | m), s = sign(theta0'). theta is not wrapped: it grows by 2 pi per
  revolution, every 2 K(m) / (k omega0).
- on the separatrix (k = 1 to within 1e-10) the motion takes infinite time to reach the top; the
  solution raises a clear error there.

Cartesian form: the bob at r = (x, y) = (L sin theta, -L cos theta) (pivot at the origin, y up), state
(x, y, vx, vy). The constraint :math:`|r| = L` is enforced through the tension of the rod,
:math:`a = -\lambda r - g e_y` with :math:`\lambda = (|v|^2 - g y) / |r|^2`, obtained by differentiating
:math:`|r|^2 = L^2` twice (index reduction). The index-reduced ODE only keeps :math:`d^2/dt^2 |r|^2 = 0`: numerical
errors in :math:`|r|` and :math:`r \cdot v` are not corrected
and grow (the constraint drifts), which makes it the harder test problem of the original study.
:meth:`CartesianPendulum.constraint_drift` measures it.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from scipy import special

from .base import Parameter, System, as_times, check_positive

__all__ = ["Pendulum", "CartesianPendulum", "SEPARATRIX_TOLERANCE"]

#: :math:`|k^2 - 1|` below this is treated as the separatrix, where no periodic solution exists.
SEPARATRIX_TOLERANCE = 1e-10

_PARAMETERS = (
    Parameter("gravity", 9.81, "m/s^2", "gravitational acceleration g"),
    Parameter("length", 1.0, "m", "rod length L"),
)


class _PendulumPhysics:
    """Parameters, exact angle solution and sampling shared by both forms."""

    PARAMETERS = _PARAMETERS

    def __init__(self, gravity: float = 9.81, length: float = 1.0) -> None:
        self.gravity = check_positive(self.name, "gravity", gravity)
        self.length = check_positive(self.name, "length", length)

    @property
    def natural_frequency(self) -> float:
        """omega0 = sqrt(g / L), rad/s."""
        return math.sqrt(self.gravity / self.length)

    def modulus_squared(self, theta: np.ndarray, velocity: np.ndarray) -> np.ndarray:
        """k^2 = sin^2(theta/2) + (theta'/(2 omega0))^2: < 1 libration, > 1 rotation."""
        return np.sin(theta / 2) ** 2 + (velocity / (2 * self.natural_frequency)) ** 2

    def _angle_solution(self, theta0: np.ndarray, velocity0: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Exact (theta, theta') at ``times`` (n,) for initial angles and velocities (B,): returns (n, B, 2)."""
        omega0 = self.natural_frequency
        k2 = self.modulus_squared(theta0, velocity0)
        near = np.abs(k2 - 1) < SEPARATRIX_TOLERANCE
        if near.any():
            raise ValueError(
                f"{self.name}: initial state {int(np.argmax(near))} lies on the separatrix (energy 2 g L to within "
                f"{SEPARATRIX_TOLERANCE:g} relative): the pendulum takes infinite time to reach the top and the "
                f"motion is not periodic; move the initial state off it"
            )
        t = times[:, None]
        out = np.empty((times.size, theta0.size, 2))
        libration = k2 < 1
        if libration.any():
            k = np.sqrt(k2[libration])
            m = k**2
            # theta0 may be given unwrapped (e.g. 2 pi + 0.1): solve for the wrapped angle, keep the branch
            branch = 2 * np.pi * np.round(theta0[libration] / (2 * np.pi))
            at_rest = k < 1e-300
            safe_k = np.where(at_rest, 1.0, k)
            sine = np.where(at_rest, 0.0, np.sin((theta0[libration] - branch) / 2) / safe_k)
            cosine = np.where(at_rest, 1.0, velocity0[libration] / (2 * omega0 * safe_k))
            u0 = special.ellipkinc(np.arctan2(sine, cosine), m)
            sn, cn, _, _ = special.ellipj(omega0 * t + u0, m)
            out[:, libration, 0] = branch + 2 * np.arcsin(np.clip(k * sn, -1.0, 1.0))
            out[:, libration, 1] = 2 * k * omega0 * cn
        rotation = ~libration
        if rotation.any():
            k = np.sqrt(k2[rotation])
            m = 1 / k**2
            direction = np.sign(velocity0[rotation])
            half = theta0[rotation] / 2
            v0 = special.ellipkinc(half, m)
            _, _, dn, amplitude = special.ellipj(direction * k * omega0 * t + v0, m)
            out[:, rotation, 0] = 2 * amplitude
            out[:, rotation, 1] = 2 * direction * k * omega0 * dn
        return out

    def angle_period(self, theta0: float, velocity0: float = 0.0) -> float:
        """Period of the motion from (theta0, theta0'): 4 K(k^2)/omega0 for libration, 2 K(1/k^2)/(k omega0)
        (one revolution) for rotation."""
        k2 = float(self.modulus_squared(np.asarray(theta0, float), np.asarray(velocity0, float)))
        if abs(k2 - 1) < SEPARATRIX_TOLERANCE:
            return math.inf
        if k2 < 1:
            return 4 * float(special.ellipk(k2)) / self.natural_frequency
        return 2 * float(special.ellipk(1 / k2)) / (math.sqrt(k2) * self.natural_frequency)

    def trajectory_parameters(self, x0: torch.Tensor) -> dict[str, torch.Tensor]:
        """Energy and period (s; one revolution for rotation) of each trajectory."""
        periods = torch.tensor([self.period(state) for state in x0], dtype=torch.float64)
        return {**super().trajectory_parameters(x0), "period": periods}

    def _sample_angles(self, n: int, generator: torch.Generator, max_amplitude: float) -> torch.Tensor:
        """theta0 ~ U[-A, A]; theta0' = +-U[0, 1] * the speed at theta0 of the orbit with turning point A."""
        if not 0 < max_amplitude < math.pi:
            raise ValueError(f"{self.name}: max_amplitude must lie in (0, pi), got {max_amplitude}")
        draws = torch.rand(n, 3, generator=generator, dtype=torch.float64)
        theta = (2 * draws[:, 0] - 1) * max_amplitude
        speed = torch.sqrt(2 * self.gravity / self.length * (torch.cos(theta) - math.cos(max_amplitude)).clamp(min=0))
        sign = torch.where(draws[:, 2] < 0.5, -1.0, 1.0).to(torch.float64)
        return torch.stack([theta, sign * draws[:, 1] * speed], dim=-1)


class Pendulum(_PendulumPhysics, System):
    """theta'' = -(g/L) sin(theta), state (theta, theta') in (rad, rad/s). See the module docstring.

    Energy per unit mass E = L^2 theta'^2 / 2 + g L (1 - cos theta); the separatrix is E = 2 g L.
    Initial conditions: theta0 ~ U[-3pi/4, 3pi/4]; theta0' = +-U[0, 1] times the speed at theta0 on the orbit
    whose turning point is 3pi/4 (so every sample librates, with amplitude up to 3pi/4).
    """

    name = "pendulum"
    analytical_method = "Jacobi elliptic functions (scipy.special.ellipj, ellipk, ellipkinc)"

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("theta", "dtheta/dt")

    def vector_field(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        x = self.check_state(x)
        return torch.stack([x[..., 1], -(self.gravity / self.length) * torch.sin(x[..., 0])], dim=-1)

    def solution(self, x0: torch.Tensor, times: torch.Tensor | Sequence[float]) -> torch.Tensor:
        x0 = self.check_state(torch.as_tensor(x0, dtype=torch.float64), "x0")
        flat = x0.reshape(-1, 2).cpu().numpy()
        states = self._angle_solution(flat[:, 0], flat[:, 1], as_times(times).cpu().numpy())
        return torch.from_numpy(states).reshape(-1, *x0.shape)

    def period(self, x0: torch.Tensor) -> float:
        """Period of the motion from one state (theta0, theta0'), seconds."""
        x0 = self.check_state(torch.as_tensor(x0, dtype=torch.float64), "x0")
        return self.angle_period(float(x0[..., 0]), float(x0[..., 1]))

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_state(x)
        return 0.5 * self.length**2 * x[..., 1] ** 2 + self.gravity * self.length * (1 - torch.cos(x[..., 0]))

    def sample_initial_conditions(
        self, n: int, generator: torch.Generator, max_amplitude: float = 3 * math.pi / 4
    ) -> torch.Tensor:
        return self._sample_angles(n, generator, max_amplitude)


class CartesianPendulum(_PendulumPhysics, System):
    """The same pendulum as (x, y, vx, vy) with the rod's tension as constraint force (index-reduced ODE).

    x = L sin(theta), y = -L cos(theta), pivot at the origin, y pointing up; see the module docstring.
    Energy per unit mass :math:`E = |v|^2 / 2 + g (y + L)`. Initial conditions: :class:`Pendulum`'s, mapped.
    """

    name = "pendulum-xy"
    analytical_method = "angle form's Jacobi elliptic solution mapped to x = L sin(theta), y = -L cos(theta)"

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("x", "y", "vx", "vy")

    def vector_field(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        x = self.check_state(x)
        position, velocity = x[..., :2], x[..., 2:]
        tension = ((velocity**2).sum(-1) - self.gravity * position[..., 1]) / (position**2).sum(-1)
        acceleration = -tension[..., None] * position
        acceleration = acceleration - torch.stack(
            [torch.zeros_like(tension), torch.full_like(tension, self.gravity)], dim=-1
        )
        return torch.cat([velocity, acceleration], dim=-1)

    def from_angle(self, angle_states: torch.Tensor) -> torch.Tensor:
        """(theta, theta') -> (x, y, vx, vy)."""
        theta, velocity = angle_states[..., 0], angle_states[..., 1]
        length = self.length
        return torch.stack(
            [length * torch.sin(theta), -length * torch.cos(theta),
             length * torch.cos(theta) * velocity, length * torch.sin(theta) * velocity],
            dim=-1,
        )

    def to_angle(self, x: torch.Tensor) -> torch.Tensor:
        r"""(x, y, vx, vy) -> (theta in (-pi, pi], :math:`\theta' = (x v_y - y v_x) / |r|^2`)."""
        x = self.check_state(x)
        theta = torch.atan2(x[..., 0], -x[..., 1])
        velocity = (x[..., 0] * x[..., 3] - x[..., 1] * x[..., 2]) / (x[..., 0] ** 2 + x[..., 1] ** 2)
        return torch.stack([theta, velocity], dim=-1)

    def solution(self, x0: torch.Tensor, times: torch.Tensor | Sequence[float]) -> torch.Tensor:
        x0 = self.check_state(torch.as_tensor(x0, dtype=torch.float64), "x0")
        angles = self.to_angle(x0).reshape(-1, 2).cpu().numpy()
        states = torch.from_numpy(self._angle_solution(angles[:, 0], angles[:, 1], as_times(times).cpu().numpy()))
        return self.from_angle(states).reshape(-1, *x0.shape)

    def period(self, x0: torch.Tensor) -> float:
        angle = self.to_angle(torch.as_tensor(x0, dtype=torch.float64))
        return self.angle_period(float(angle[..., 0]), float(angle[..., 1]))

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_state(x)
        return 0.5 * (x[..., 2] ** 2 + x[..., 3] ** 2) + self.gravity * (x[..., 1] + self.length)

    def constraint_drift(self, x: torch.Tensor) -> torch.Tensor:
        r"""(:math:`|r| - L`, :math:`r \cdot v / L`) per state: both zero on the constraint manifold. Shape ``(*batch,
        2)``."""
        x = self.check_state(x)
        radius = torch.sqrt(x[..., 0] ** 2 + x[..., 1] ** 2)
        radial_velocity = (x[..., 0] * x[..., 2] + x[..., 1] * x[..., 3]) / self.length
        return torch.stack([radius - self.length, radial_velocity], dim=-1)

    def sample_initial_conditions(
        self, n: int, generator: torch.Generator, max_amplitude: float = 3 * math.pi / 4
    ) -> torch.Tensor:
        return self.from_angle(self._sample_angles(n, generator, max_amplitude))
