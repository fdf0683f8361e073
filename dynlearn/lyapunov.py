"""The discrete Lyapunov equation and the stability prior of the physics-aware autoencoder.

For a linear map x_{k+1} = Omega x_k, the symmetric P solving

    Omega^T P Omega - P = -I                                                        (1)

is positive definite exactly when every eigenvalue of Omega lies inside the unit circle, and (inertia theorem
for the discrete Lyapunov equation) P has as many negative eigenvalues as Omega has eigenvalues outside it.
The prior of Erichson, Muehlebach & Mahoney (2019) penalises the negative eigenvalues p_i of P,

    rho(p) = exp(-|p - 1| / gamma)  for p < 0,   0 otherwise,                       (2)

so a trained Omega is pushed towards spectral radius <= 1 without forbidding eigenvalues close to the circle.

Solving (1): vec(Omega^T P Omega) = (Omega^T kron Omega^T) vec(P), so (1) is the linear system
M vec(P) = -vec(I) with M = Omega^T kron Omega^T - I (k^2 x k^2; k = 15 gives 225 unknowns, solved in float64).
M is singular when lambda_i lambda_j = 1 for two eigenvalues of Omega, e.g. a complex pair on the unit circle,
which is exactly where a periodic wake wants its eigenvalues. There (two eigenvalues with |lambda_i lambda_j - 1|
below 1e3 epsilon) we solve the Tikhonov-regularised least-squares problem

    min ||M x + vec(I)||^2 + (epsilon max(||M||_F, 1))^2 ||x||^2,  epsilon = 1e-8 by default,            (3)

as the full-rank stacked system [M; epsilon max(||M||_F, 1) I] x = [-vec(I); 0] by QR (condition number at most
1 / epsilon, never singular): away from the circle the answer equals the exact solution to about
(epsilon ||M|| / sigma_min(M))^2 relative error; on the circle P stays finite (of order 1 / epsilon) and its
gradients are finite. Everywhere else M is regular and is solved by LU, also when a strongly non-normal Omega
makes it ill-conditioned (damping would then move P far from the solution). P is symmetrised before ``eigvalsh``.

A property of (2) to know: near the circle P's eigenvalues grow like 1 / (1 - |lambda|^2), so an eigenvalue
of Omega just outside the circle (|lambda| = 1.001: p of about -500) gives rho of about exp(-125), no penalty
and no gradient; the prior acts on eigenvalues clearly outside (|lambda| = 1.1: p of about -5, rho of 0.2).
"""

from __future__ import annotations

import torch

__all__ = ["solve_discrete_lyapunov", "lyapunov_eigenvalues", "stability_prior", "spectral_radius"]


def _kronecker_system(omega: torch.Tensor) -> torch.Tensor:
    k = omega.shape[0]
    # row-major vec: vec(A X B) = (A kron B^T) vec(X); with A = Omega^T, B = Omega: Omega^T kron Omega^T
    return torch.kron(omega.T, omega.T) - torch.eye(k * k, dtype=omega.dtype, device=omega.device)


def _factor(system: torch.Tensor, regularisation: float, omega: torch.Tensor) -> tuple[str, tuple[torch.Tensor, ...]]:
    """LU of the system unless two eigenvalues of Omega have lambda_i lambda_j within 1e3 epsilon of 1 (where M
    is singular or nearly so), else QR of the damped stacked system (3).

    The test is on the eigenvalues, not on M's conditioning: a strongly non-normal Omega makes M ill-conditioned
    far from the circle, where LU is still accurate and damping is not (hypothesis found Omega = 101 x a shift
    matrix + 1e-5, spectral radius 0.5: cond(M) = 1e12, LU gives P to a residual of 1e-8 with eigenvalues 1 to
    1e8, the damped problem gave P with negative eigenvalues, a penalty on a stable map)."""
    lu, pivots, info = torch.linalg.lu_factor_ex(system)
    try:
        eigenvalues = torch.linalg.eigvals(omega.detach())
        regular = float((eigenvalues[:, None] * eigenvalues[None, :] - 1).abs().min()) > 1e3 * regularisation
    except torch.linalg.LinAlgError:  # LAPACK's eigenvalue iteration can fail (entries of 1e-266, say): pivots
        diagonal = lu.diagonal().abs()
        regular = float(diagonal.min()) > 1e3 * regularisation * float(diagonal.max())
    if int(info) == 0 and regular:
        return "lu", (lu, pivots, system)
    if regularisation == 0:
        raise torch.linalg.LinAlgError("the Lyapunov equation is singular (an eigenvalue pair with lambda_i lambda_j = 1)")
    return "damped", (system,)


def _apply(kind: str, factors: tuple[torch.Tensor, ...], right: torch.Tensor, regularisation: float,
           transposed: bool = False) -> torch.Tensor:
    """Solve with the factored system (or its transpose) for ``right`` (n, r)."""
    if kind == "lu":
        solution = torch.linalg.lu_solve(factors[0], factors[1], right, adjoint=transposed)
        if bool(torch.isfinite(solution).all()):
            return solution
    system = factors[-1].T if transposed else factors[-1]  # the damped problem (3), also when LU overflowed
    n = system.shape[0]
    delta = regularisation * torch.linalg.matrix_norm(system).clamp(min=1.0)
    q, r = torch.linalg.qr(torch.cat([system, delta * torch.eye(n, dtype=system.dtype, device=system.device)]))
    return torch.linalg.solve_triangular(r, q[:n].T @ right, upper=True)


class _DiscreteLyapunov(torch.autograd.Function):
    """P(Omega) with the gradient by the adjoint equation: for a loss with dL/dP = G (symmetric),
    Omega Y Omega^T - Y = G and dL/dOmega = -(P Omega Y^T + P^T Omega Y): one more solve with the transposed
    system, reusing the forward factorisation, instead of differentiating through it."""

    @staticmethod
    def forward(ctx, omega: torch.Tensor, regularisation: float) -> torch.Tensor:
        k = omega.shape[0]
        kind, factors = _factor(_kronecker_system(omega), regularisation, omega)
        identity = torch.eye(k, dtype=omega.dtype, device=omega.device)
        p = _apply(kind, factors, -identity.reshape(-1, 1), regularisation).reshape(k, k)
        p = 0.5 * (p + p.T)
        ctx.save_for_backward(omega, p, *factors)
        ctx.kind, ctx.regularisation = kind, regularisation
        return p

    @staticmethod
    def backward(ctx, grad_p: torch.Tensor):
        omega, p, *factors = ctx.saved_tensors
        k = omega.shape[0]
        g = 0.5 * (grad_p + grad_p.T)  # P is symmetrised
        # the adjoint operator Y -> Omega Y Omega^T - Y has the transposed Kronecker matrix
        y = _apply(ctx.kind, tuple(factors), g.reshape(-1, 1), ctx.regularisation, transposed=True).reshape(k, k)
        grad_omega = -(p @ omega @ y.T + p.T @ omega @ y)
        return grad_omega, None


def solve_discrete_lyapunov(omega: torch.Tensor, regularisation: float = 1e-8) -> torch.Tensor:
    """P (symmetric, ``(k, k)``) solving Omega^T P Omega - P = -I for ``omega`` ``(k, k)``, differentiably:
    LU of the Kronecker system when it is regular, the regularised least-squares problem (3) (module
    docstring) where two eigenvalues have lambda_i lambda_j within 1e3 ``regularisation`` of 1; gradients by the
    adjoint Lyapunov equation. Computed in float64, returned in ``omega``'s dtype."""
    if omega.ndim != 2 or omega.shape[0] != omega.shape[1]:
        raise ValueError(f"omega must be a square matrix, got shape {tuple(omega.shape)}")
    if not regularisation >= 0:
        raise ValueError(f"regularisation must be >= 0, got {regularisation}")
    return _DiscreteLyapunov.apply(omega.to(torch.float64), float(regularisation)).to(omega.dtype)


def lyapunov_eigenvalues(omega: torch.Tensor, regularisation: float = 1e-8) -> torch.Tensor:
    """Eigenvalues of P (ascending, ``(k,)``); their negative count equals the number of eigenvalues of
    ``omega`` outside the unit circle."""
    return torch.linalg.eigvalsh(solve_discrete_lyapunov(omega, regularisation).to(torch.float64)).to(omega.dtype)


def stability_prior(omega: torch.Tensor, gamma: float = 4.0, regularisation: float = 1e-8) -> torch.Tensor:
    """sum_i rho(p_i), rho(p) = exp(-|p - 1| / gamma) for p < 0 (module docstring (2)); a scalar, zero for a
    stable ``omega``."""
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    eigenvalues = torch.linalg.eigvalsh(solve_discrete_lyapunov(omega, regularisation).to(torch.float64))
    penalty = torch.where(eigenvalues < 0, torch.exp(-(eigenvalues - 1).abs() / gamma), torch.zeros_like(eigenvalues))
    return penalty.sum().to(omega.dtype)


def spectral_radius(omega: torch.Tensor) -> float:
    """max |lambda_i(omega)|."""
    return float(torch.linalg.eigvals(omega.detach().to(torch.float64)).abs().max())
