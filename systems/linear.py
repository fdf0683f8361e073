"""Linear systems dx/dt = A x with their exact solution through the matrix exponential.

The reference problem of numerical analysis: every Runge-Kutta method's observed order can be measured on it
against x(t) = exp(A (t - t0)) x0 to round-off, and one step of a method multiplies x by R(dt A), the
method's stability function. The harmonic oscillator and the method-of-lines wave equation are linear systems.
"""

from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["LinearSystem", "harmonic_oscillator_matrix"]


def harmonic_oscillator_matrix(
    frequency: float = 1.0, damping_ratio: float = 0.0, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Lambda = [[0, 1], [-omega^2, -2 zeta omega]] for u'' + 2 zeta omega u' + omega^2 u = 0, state (u, u').

    ``frequency`` omega is in radians per unit time (> 0), ``damping_ratio`` zeta >= 0 (0: undamped).
    """
    if not frequency > 0:
        raise ValueError(f"frequency must be > 0 (radians per unit time), got {frequency}")
    if not damping_ratio >= 0:
        raise ValueError(f"damping_ratio must be >= 0, got {damping_ratio}")
    return torch.tensor([[0.0, 1.0], [-(frequency**2), -2.0 * damping_ratio * frequency]], dtype=dtype)


class LinearSystem:
    """dx/dt = A x for a constant real square matrix A (d x d); states have shape ``(*batch, d)``.

    Calling the system evaluates its vector field, ``system(t, x) = x @ A.T``, in the dtype and on the device
    of ``x``, so it can be passed directly to :func:`dynlearn.rollout` as the true field.
    """

    def __init__(self, matrix: torch.Tensor) -> None:
        matrix = torch.as_tensor(matrix)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
            raise ValueError(f"matrix must be square (d x d, d >= 1), got shape {tuple(matrix.shape)}")
        if not (matrix.is_floating_point() or matrix.is_complex()):
            matrix = matrix.to(torch.float64)
        if not bool(torch.isfinite(matrix).all()):
            raise ValueError("matrix must be finite")
        self.matrix = matrix
        self._cast: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}

    @property
    def dimension(self) -> int:
        return self.matrix.shape[0]

    def _matrix_like(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.dtype, x.device)
        cast = self._cast.get(key)
        if cast is None:
            cast = self._cast[key] = self.matrix.to(dtype=x.dtype, device=x.device)
        return cast

    def vector_field(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """dx/dt = A x for every state in the batch: ``(*batch, d) -> (*batch, d)``."""
        if x.shape[-1:] != (self.dimension,):
            raise ValueError(f"state must have shape (*batch, {self.dimension}), got {tuple(x.shape)}")
        return x @ self._matrix_like(x).T

    __call__ = vector_field

    def step_map(self, dt: float) -> torch.Tensor:
        """The exact one-step map exp(dt A), ``(d, d)``: x(t + dt) = exp(dt A) x(t)."""
        return torch.linalg.matrix_exp(self.matrix * dt)

    def solution(self, x0: torch.Tensor, times: torch.Tensor | Sequence[float], t0: float = 0.0) -> torch.Tensor:
        """x(t) = exp(A (t - t0)) x0 at every time: ``x0`` is ``(*batch, d)``, ``times`` is ``(n,)``;
        returns ``(n, *batch, d)`` in the dtype and on the device of ``x0``."""
        times = torch.as_tensor(times)
        if times.ndim != 1:
            raise ValueError(f"times must be one-dimensional, got shape {tuple(times.shape)}")
        if x0.shape[-1:] != (self.dimension,):
            raise ValueError(f"x0 must have shape (*batch, {self.dimension}), got {tuple(x0.shape)}")
        matrix = self._matrix_like(x0)
        elapsed = (times - t0).to(dtype=matrix.real.dtype if matrix.is_complex() else matrix.dtype, device=x0.device)
        propagators = torch.linalg.matrix_exp(matrix * elapsed[:, None, None])  # (n, d, d)
        flat = x0.reshape(-1, self.dimension)  # (B, d)
        states = torch.einsum("nij,bj->nbi", propagators, flat)
        return states.reshape(times.shape[0], *x0.shape)
