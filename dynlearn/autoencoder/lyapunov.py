"""The discrete Lyapunov equation and the stability prior of the physics-aware autoencoder.

For a linear map x_{k+1} = Omega x_k, the symmetric P solving

    Omega^T P Omega - P = -I                                                        (1)

is positive definite exactly when every eigenvalue of Omega lies inside the unit circle, and (inertia theorem
for the discrete Lyapunov equation) P has as many negative eigenvalues as Omega has eigenvalues outside it.
The prior of Erichson, Muehlebach & Mahoney (2019) penalises the negative eigenvalues p_i of P,

    rho(p) = exp(-|p - 1| / gamma)  for p < 0,   0 otherwise,                       (2)

so a trained Omega is pushed towards spectral radius <= 1 without forbidding eigenvalues close to the circle.

Solving (1) so that a stable map is never penalised. A stable Omega can be strongly non-normal (a learned
latent map easily is): P = sum_j (Omega^j)^T Omega^j then spans 15 or more decades, the Kronecker system
M = Omega^T kron Omega^T - I has a condition number of 1e17, and an LU solve of it (as scipy's default also
does) returns a P with eigenvalues of -1e14: the prior then penalises a stable map. Two things fix it:

- the Schur form. With Omega = Z T Z^H (complex Schur: Z unitary, T upper triangular with the eigenvalues of
  Omega on its diagonal, backward stable), (1) becomes T^H X T - X = -I for X = Z^H P Z, solved column by column
  (Bartels-Stewart) in O(k^3) instead of LU's O(k^6);
- for a stable T (every |T_ii| < 1), Hammarling's method (IMA J. Numer. Anal. 2, 303-323, 1982, its
  discrete-time form as in SLICOT's SB03OD and MATLAB's dlyapchol) computes an upper-triangular U with
  X = U^H U directly, one row at a time: with T = [[lambda, t^H], [0, T2]], C = [[c, s^H], [0, C2]] (c > 0) and
  the right-hand side C^H C (C = I at the start),

      mu = c / sqrt(1 - |lambda|^2),   (I - lambda T2^H) u = sqrt(1 - |lambda|^2) s + lambda mu t,
      w = mu t + T2^H u,   y = sqrt(1 - |lambda|^2) w - conj(lambda) s,

  U's first row is [mu, u^H], and the rest solves the same equation for T2 with C2 and the row y^H appended (a
  QR makes it triangular again). Then P = R^H R with R = U Z^H: positive definite by construction at any
  conditioning, its eigenvalues the squared singular values of R (>= 1 in exact arithmetic, since
  P = I + Omega^T P Omega).

Stable means: every eigenvalue on T's diagonal inside the unit circle, i.e. Omega is stable up to a
perturbation of the size of its rounding (for a non-normal Omega whose eigenvalues are that sensitive, float64
cannot say more). Why not the squared Smith (doubling) iteration, which keeps definiteness too and runs on a
GPU: its squared powers Omega^(2^i) carry rounding of size eps ||Omega^(2^(i-1))||^2, and for a strongly
non-normal map that rounding has eigenvalues outside the circle: on the family above it diverged to 1e240
where P is 3e15. The Schur form comes from scipy on the CPU; for the k x k latent maps here (k <= 64) moving
Omega there and P back costs microseconds, and everything else runs where Omega is. A solve costs 0.8, 1.3, 3.4
and 10 ms for k = 8, 15, 32, 64 on 2 CPU cores, the Kronecker LU it replaced 0.16, 0.64, 17 and 620 ms
(``python benchmarks/lyapunov_speed.py``).

Other maps: with every eigenvalue outside the circle, Hammarling's method on T^-1 gives
P = -sum_{j>=1} (Omega^-j)^T Omega^-j = -R^H R, negative definite by construction; with eigenvalues on both
sides, Bartels-Stewart on the triangular form. That solve is backward stable, but for a strongly non-normal
mixed map the smallest eigenvalues of the P it returns can come out with the wrong sign; the inertia theorem
fixes how many are negative (as many as eigenvalues of T outside the circle), and an eigenvalue whose sign
disagrees, which lies within the solve's error of zero, is reported at the rounding level with that sign.

Where the equation is singular or nearly so, two eigenvalues with |lambda_i lambda_j - 1| below 1e3 epsilon (a
complex pair on the unit circle, exactly where a periodic wake wants its eigenvalues), the Tikhonov-regularised
least-squares problem on the Kronecker system

    min ||M x + vec(I)||^2 + (epsilon max(||M||_F, 1))^2 ||x||^2,  epsilon = 1e-8 by default,            (3)

is solved instead, as the full-rank stacked system [M; epsilon max(||M||_F, 1) I] x = [-vec(I); 0] by QR:
P stays finite (of order 1 / epsilon) and so do its gradients.

Gradients by the adjoint equation: for a loss with dL/dP = G, Omega Y Omega^T - Y = G (in the Schur basis
T W T^H - W = Z^H G Z, the same triangular solve) and dL/dOmega = -(P Omega Y^T + P Omega Y); through (3), by
autograd of its QR solve (the adjoint of (1) is not the derivative of the damped solution).

A property of (2) to know: near the circle P's eigenvalues grow like 1 / (1 - |lambda|^2), so an eigenvalue
of Omega just outside the circle (|lambda| = 1.001: p of about -500) gives rho of about exp(-125), no penalty
and no gradient; the prior acts on eigenvalues clearly outside (|lambda| = 1.1: p of about -5, rho of 0.2).

Continuous time. For a latent generator, z' = Lambda z (Omega(dt) = exp(dt Lambda)), the symmetric P solving

    Lambda^T P + P Lambda = -I                                                      (4)

is positive definite exactly when every eigenvalue of Lambda has a negative real part (Lyapunov's theorem), and P
has as many negative eigenvalues as Lambda has eigenvalues in the right half-plane (the inertia theorem of
Ostrowski and Schneider, none on the imaginary axis). The continuous prior is (2) on the eigenvalues of this P.
(4) is solved by Bartels-Stewart on the real Schur form (scipy, LAPACK's trsyl); it is singular where
lambda_i + conj(lambda_j) = 0 (a pair on the imaginary axis, the periodic wake again), and within
1e3 epsilon ||Lambda||_F of that the damped problem (3) is solved instead, with the Kronecker matrix
M = Lambda^T kron I + I kron Lambda^T. Gradients by the adjoint equation Lambda Y + Y Lambda^T = G,
dL/dLambda = -(P Y^T + P^T Y). A stable generator is never penalised (only its eigenvalues are computed), and the
prior has the discrete one's blind spot: P grows like 1 / (2 |Re lambda|) next to the axis, so a generator with
Re lambda = +1e-3 gives p of about -500 and no penalty.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.linalg
import torch

from dynlearn._checks import as_positive_number

__all__ = ["solve_discrete_lyapunov", "lyapunov_eigenvalues", "stability_prior", "spectral_radius",
           "solve_continuous_lyapunov", "continuous_lyapunov_eigenvalues", "continuous_stability_prior",
           "spectral_abscissa"]


@dataclasses.dataclass(frozen=True)
class _Solution:
    """P of (1), symmetric (float64, on the CPU), and how it was obtained. ``kind``: "stable" (P = R^H R),
    "anti-stable" (P = -R^H R), "mixed" (Bartels-Stewart) or "damped" (problem (3), computed by :func:`_damped`:
    ``p`` is None); ``factor``: R for the first two; ``schur``: (T, Z) of Omega, complex."""

    kind: str
    p: np.ndarray | None
    schur: tuple[np.ndarray, np.ndarray]
    factor: np.ndarray | None = None


def _triangular_stein(t: np.ndarray, right: np.ndarray) -> np.ndarray:
    """X with T^H X T - X = F for upper-triangular T, column by column (Bartels-Stewart): column j solves the
    lower-triangular (T_jj T^H - I) x_j = f_j - T^H sum_{k<j} x_k T_kj."""
    n = t.shape[0]
    x = np.zeros((n, n), dtype=complex)
    lower = t.conj().T
    identity = np.eye(n)
    for j in range(n):
        rest = right[:, j] - lower @ (x[:, :j] @ t[:j, j])
        x[:, j] = scipy.linalg.solve_triangular(t[j, j] * lower - identity, rest, lower=True)
    return x


def _hammarling(t: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Upper-triangular U with X = U^H U solving T^H X T - X = -C^H C, for upper-triangular T with every
    |T_ii| < 1 and a square C of full rank (module docstring)."""
    n = t.shape[0]
    u_matrix = np.zeros((n, n), dtype=complex)
    c = scipy.linalg.qr(c.astype(complex), mode="r")[0]
    for i in range(n):
        rest = n - i - 1
        eigenvalue, t_column, trailing = t[i, i], t[i, i + 1 :].conj(), t[i + 1 :, i + 1 :]
        row = c[0] * (abs(c[0, 0]) / c[0, 0])  # the first row of C with its diagonal made real and positive
        s_column = row[1:].conj()
        modulus = abs(eigenvalue)
        damping = np.sqrt((1 - modulus) * (1 + modulus))  # sqrt(1 - |lambda|^2) without cancellation
        mu = row[0].real / damping
        u = scipy.linalg.solve_triangular(np.eye(rest) - eigenvalue * trailing.conj().T,
                                          damping * s_column + eigenvalue * mu * t_column, lower=True)
        w = mu * t_column + trailing.conj().T @ u
        y = damping * w - eigenvalue.conjugate() * s_column
        u_matrix[i, i], u_matrix[i, i + 1 :] = mu, u.conj()
        if rest:
            c = scipy.linalg.qr(np.vstack([c[1:, 1:], y.conj()[None, :]]), mode="r")[0][:rest]
    return u_matrix


def _damped(omega: torch.Tensor, regularisation: float) -> torch.Tensor:
    """P from the regularised least-squares problem (3), by QR of the stacked system, in differentiable torch
    operations (its gradient is that of the damped problem, which the adjoint of (1) is not)."""
    # row-major vec: vec(A X B) = (A kron B^T) vec(X); with A = Omega^T, B = Omega: Omega^T kron Omega^T
    identity = torch.eye(omega.shape[0] ** 2, dtype=omega.dtype, device=omega.device)
    return _damped_solve(torch.kron(omega.T, omega.T) - identity, regularisation)


def _damped_solve(system: torch.Tensor, regularisation: float) -> torch.Tensor:
    """min ||M x + vec(I)||^2 + (epsilon max(||M||_F, 1))^2 ||x||^2 for the Kronecker matrix M ``(k^2, k^2)`` of a
    Lyapunov operator, as the stacked system [M; delta I] x = [-vec(I); 0] by QR: P ``(k, k)``, symmetrised."""
    k = math.isqrt(system.shape[0])
    identity = torch.eye(k * k, dtype=system.dtype, device=system.device)
    delta = regularisation * torch.linalg.matrix_norm(system).clamp(min=1.0)
    q, r = torch.linalg.qr(torch.cat([system, delta * identity]))
    p = torch.linalg.solve_triangular(r, q[: k * k].T @ -torch.eye(k, dtype=system.dtype, device=system.device)
                                      .reshape(-1, 1), upper=True).reshape(k, k)
    return 0.5 * (p + p.T)


def _symmetric(matrix: np.ndarray) -> np.ndarray:
    return 0.5 * (matrix + matrix.T)


def _solve(omega: np.ndarray, regularisation: float, stable_p: bool = True) -> _Solution:
    """P of (1) for a float64 ``omega`` (module docstring: Hammarling, on Omega or its inverse, Bartels-Stewart,
    or the damped problem (3) next to the unit circle). ``stable_p=False``: for a stable map, only say so."""
    k = omega.shape[0]
    try:
        t, z = scipy.linalg.schur(omega, output="complex")
    except np.linalg.LinAlgError:  # LAPACK's QR iteration can fail on entries like 1e-151 beside 1: entries
        # below eps^2 max|Omega| are a perturbation far inside Omega's own rounding; without them it converges
        flushed = np.where(np.abs(omega) < np.finfo(float).eps ** 2 * np.abs(omega).max(), 0.0, omega)
        t, z = scipy.linalg.schur(flushed, output="complex")
    eigenvalues = np.diag(t)
    schur = (t, z)
    if np.all(np.abs(eigenvalues) < 1):
        if not stable_p:
            return _Solution("stable", None, schur)
        factor = _hammarling(t, np.eye(k)) @ z.conj().T
        return _Solution("stable", _symmetric((factor.conj().T @ factor).real), schur, factor=factor)
    if np.abs(eigenvalues[:, None] * eigenvalues[None, :] - 1).min() <= 1e3 * regularisation:
        if regularisation == 0:
            raise torch.linalg.LinAlgError(
                "the Lyapunov equation is singular (an eigenvalue pair with lambda_i lambda_j = 1)")
        return _Solution("damped", None, schur)
    if np.all(np.abs(eigenvalues) > 1):
        inverse = scipy.linalg.solve_triangular(t, np.eye(k))
        factor = _hammarling(inverse, inverse) @ z.conj().T
        return _Solution("anti-stable", _symmetric(-(factor.conj().T @ factor).real), schur, factor=factor)
    x = _triangular_stein(t, -np.eye(k))
    return _Solution("mixed", _symmetric((z @ x @ z.conj().T).real), schur)


def _adjoint(solution: _Solution, g: np.ndarray) -> np.ndarray:
    """Y solving Omega Y Omega^T - Y = G: in the Schur basis T W T^H - W = Z^H G Z, which the reversal J (J T^H J
    is upper triangular) turns into the forward form."""
    t, z = solution.schur
    flipped = t.conj().T[::-1, ::-1]
    w = _triangular_stein(flipped, (z.conj().T @ g @ z)[::-1, ::-1])[::-1, ::-1]
    return (z @ w @ z.conj().T).real


class _DiscreteLyapunov(torch.autograd.Function):
    """P(Omega) with the gradient by the adjoint equation: for a loss with dL/dP = G (symmetric),
    Omega Y Omega^T - Y = G and dL/dOmega = -(P Omega Y^T + P^T Omega Y): one more triangular solve."""

    @staticmethod
    def forward(ctx, omega: torch.Tensor, solution: _Solution) -> torch.Tensor:
        ctx.solution = solution
        ctx.save_for_backward(omega)
        return torch.from_numpy(solution.p.copy()).to(omega.device)

    @staticmethod
    def backward(ctx, grad_p: torch.Tensor):
        (omega,) = ctx.saved_tensors
        g = 0.5 * (grad_p + grad_p.T)  # P is symmetrised
        y = torch.from_numpy(_adjoint(ctx.solution, g.detach().cpu().numpy())).to(omega.device)
        p = torch.from_numpy(ctx.solution.p).to(omega.device)
        return -(p @ omega @ y.T + p.T @ omega @ y), None


def _checked(omega: torch.Tensor, regularisation: float, name: str = "omega") -> torch.Tensor:
    if omega.ndim != 2 or omega.shape[0] != omega.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {tuple(omega.shape)}")
    if not regularisation >= 0:
        raise ValueError(f"regularisation must be >= 0, got {regularisation}")
    if not bool(torch.isfinite(omega).all()):
        raise ValueError(f"{name} must be finite; it holds NaN or inf")
    return omega.to(torch.float64)


def _differentiable(omega: torch.Tensor, regularisation: float,
                    solution: _Solution | None = None) -> tuple[torch.Tensor, _Solution]:
    """P (float64, on ``omega``'s device, differentiable in ``omega``) and the solution it came from."""
    omega64 = _checked(omega, regularisation)
    if solution is None:
        solution = _solve(omega64.detach().cpu().numpy(), float(regularisation))
    if solution.kind == "damped":
        return _damped(omega64, float(regularisation)), solution
    return _DiscreteLyapunov.apply(omega64, solution), solution


def solve_discrete_lyapunov(omega: torch.Tensor, regularisation: float = 1e-8) -> torch.Tensor:
    """P (symmetric, ``(k, k)``) solving Omega^T P Omega - P = -I for ``omega`` ``(k, k)``, differentiably.

    A stable ``omega`` is solved in square-root form (Hammarling's method on its Schur form, module docstring):
    P = R^H R, positive definite by construction at any conditioning (its spectrum: :func:`lyapunov_eigenvalues`;
    ``eigvalsh`` of the assembled P carries rounding of size eps ||P||). Other maps: Hammarling on the inverse,
    Bartels-Stewart, or the regularised problem (3) next to the unit circle. Gradients by the adjoint Lyapunov
    equation. Computed in float64, returned in ``omega``'s dtype, on its device."""
    p, _ = _differentiable(omega, regularisation)
    return p.to(omega.dtype)


def _spectrum(p: torch.Tensor, solution: _Solution) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors (columns) of P. Stable or anti-stable: from the SVD of the factor
    (P = +-R^H R = +-V S^2 V^H), of one sign whatever the conditioning. Otherwise from P, with the inertia
    theorem's count imposed: as many negative eigenvalues as eigenvalues of Omega outside the circle (an
    eigenvalue whose computed sign disagrees lies within the solve's error of zero; it is given the rounding
    level eps max|p| with the sign the theorem fixes)."""
    if solution.factor is not None:
        _, singular, right = np.linalg.svd(solution.factor)
        values, vectors = singular**2, right.conj().T
        if solution.kind == "anti-stable":
            values = -values
        order = np.argsort(values)
        return values[order], vectors[:, order]
    values, vectors = np.linalg.eigh(p.detach().cpu().numpy())
    if solution.kind == "mixed":
        outside = int((np.abs(np.diag(solution.schur[0])) > 1).sum())
        rounding = np.finfo(values.dtype).eps * np.abs(values).max()
        values = np.concatenate([np.minimum(values[:outside], -rounding), np.maximum(values[outside:], rounding)])
    return values, vectors


def lyapunov_eigenvalues(omega: torch.Tensor, regularisation: float = 1e-8) -> torch.Tensor:
    """Eigenvalues of P (ascending, ``(k,)``; a diagnostic, not differentiable). As many are negative as
    ``omega`` has eigenvalues outside the unit circle (inertia theorem; imposed where rounding could blur it, see
    the module docstring); for a stable map they are the squared singular values of the factor R, P = R^H R, and
    for one with every eigenvalue outside minus them: of one sign whatever the conditioning."""
    with torch.no_grad():
        p, solution = _differentiable(omega, regularisation)
    values, _ = _spectrum(p, solution)
    return torch.from_numpy(values).to(dtype=omega.dtype, device=omega.device)


def stability_prior(omega: torch.Tensor, gamma: float = 4.0, regularisation: float = 1e-8) -> torch.Tensor:
    r"""sum_i rho(p_i), :math:`\rho(p) = e^{-|p - 1| / \gamma}` for p < 0 (module docstring (2)), a scalar; exactly zero
    (with a zero gradient) for a stable ``omega``, whose P is positive definite (only its Schur form is computed
    then: 0.2 ms for k = 15, against 0.9 ms for the Kronecker LU's prior).

    The eigenvalues come from :func:`lyapunov_eigenvalues`' accurate route, and the gradient from first-order
    perturbation theory, dp_i = v_i^H dP v_i: dL/dP = sum_i rho'(p_i) v_i v_i^H, then back through P."""
    as_positive_number("gamma", gamma)
    solution = _solve(_checked(omega, regularisation).detach().cpu().numpy(), float(regularisation), stable_p=False)
    if solution.kind == "stable":  # P is positive definite: no penalty, and none nearby (no gradient)
        return (omega * 0).sum()
    p, solution = _differentiable(omega, regularisation, solution)
    return _penalty(p, *_spectrum(p, solution), gamma).to(omega.dtype)


def _penalty(p: torch.Tensor, values: np.ndarray, vectors: np.ndarray, gamma: float) -> torch.Tensor:
    """sum_i rho(p_i) for P's eigenvalues ``values`` and eigenvectors ``vectors`` (columns), differentiable in P
    by first-order perturbation theory (dp_i = v_i^H dP v_i)."""
    penalties = np.where(values < 0, np.exp(-np.abs(values - 1) / gamma), 0.0)  # rho(p) = exp((p - 1) / gamma)
    slope = (vectors * (penalties / gamma)) @ vectors.conj().T  # sum_i rho'(p_i) v_i v_i^H
    gradient = torch.from_numpy(np.ascontiguousarray(slope.real)).to(p.device)
    # the value sum_i rho(p_i), and as a function of P the first-order term whose gradient is dL/dP
    return float(penalties.sum()) + (gradient * (p - p.detach())).sum()


def spectral_radius(omega: torch.Tensor) -> float:
    r"""The spectral radius :math:`\max_i |\lambda_i(\Omega)|`."""
    return float(torch.linalg.eigvals(omega.detach().to(torch.float64)).abs().max())


# ------------------------------------------------------------------------------------------ continuous time
@dataclasses.dataclass(frozen=True)
class _ContinuousSolution:
    """P of (4) (float64, on the CPU) and how: "stable" (every Re lambda < 0; ``p`` None when not asked for),
    "solved" (Bartels-Stewart) or "damped" (problem (3), ``p`` None); ``unstable``: eigenvalues with Re > 0."""

    kind: str
    p: np.ndarray | None
    unstable: int


def _solve_continuous(generator: np.ndarray, regularisation: float, need_p: bool = True) -> _ContinuousSolution:
    """P of (4) for a float64 ``generator`` (module docstring)."""
    eigenvalues = np.linalg.eigvals(generator)
    unstable = int((eigenvalues.real > 0).sum())
    stable = bool(np.all(eigenvalues.real < 0))
    if stable and not need_p:
        return _ContinuousSolution("stable", None, 0)
    scale = max(float(np.linalg.norm(generator)), np.finfo(float).tiny)
    if np.abs(eigenvalues[:, None] + eigenvalues[None, :].conj()).min() <= 1e3 * regularisation * scale:
        if regularisation == 0:
            raise torch.linalg.LinAlgError("the continuous Lyapunov equation is singular (an eigenvalue pair with "
                                           "lambda_i + conj(lambda_j) = 0)")
        return _ContinuousSolution("damped", None, unstable)
    p = scipy.linalg.solve_continuous_lyapunov(generator.T, -np.eye(generator.shape[0]))  # Lambda^T P + P Lambda
    return _ContinuousSolution("stable" if stable else "solved", _symmetric(p), unstable)


class _ContinuousLyapunov(torch.autograd.Function):
    """P(Lambda) of (4) with the gradient by the adjoint equation: for dL/dP = G (symmetric), Lambda Y + Y Lambda^T
    = G and dL/dLambda = -(P Y^T + P^T Y)."""

    @staticmethod
    def forward(ctx, generator: torch.Tensor, solution: _ContinuousSolution) -> torch.Tensor:
        ctx.solution = solution
        ctx.save_for_backward(generator)
        return torch.from_numpy(solution.p.copy()).to(generator.device)

    @staticmethod
    def backward(ctx, grad_p: torch.Tensor):
        (generator,) = ctx.saved_tensors
        g = (0.5 * (grad_p + grad_p.T)).detach().cpu().numpy()
        y = scipy.linalg.solve_continuous_lyapunov(generator.detach().cpu().numpy(), g)  # Lambda Y + Y Lambda^T = G
        y = torch.from_numpy(np.ascontiguousarray(y)).to(generator.device)
        p = torch.from_numpy(ctx.solution.p).to(generator.device)
        return -(p @ y.T + p.T @ y), None


def _continuous_differentiable(generator: torch.Tensor, regularisation: float,
                               solution: _ContinuousSolution | None = None) -> tuple[torch.Tensor, _ContinuousSolution]:
    """P of (4) (float64, on ``generator``'s device, differentiable) and the solution it came from."""
    generator64 = _checked(generator, regularisation, "generator")
    if solution is None or solution.p is None and solution.kind != "damped":
        solution = _solve_continuous(generator64.detach().cpu().numpy(), float(regularisation))
    if solution.kind == "damped":
        k = generator64.shape[0]
        identity = torch.eye(k, dtype=torch.float64, device=generator64.device)
        transposed = generator64.T.contiguous()
        system = torch.kron(transposed, identity) + torch.kron(identity, transposed)
        return _damped_solve(system, float(regularisation)), solution
    return _ContinuousLyapunov.apply(generator64, solution), solution


def _continuous_spectrum(p: torch.Tensor, solution: _ContinuousSolution) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors of P, with the inertia theorem's count imposed where it holds
    (not for the damped problem): as many negative as eigenvalues of Lambda in the right half-plane."""
    values, vectors = np.linalg.eigh(p.detach().cpu().numpy())
    if solution.kind != "damped":
        rounding = np.finfo(values.dtype).eps * np.abs(values).max()
        negative = solution.unstable
        values = np.concatenate([np.minimum(values[:negative], -rounding), np.maximum(values[negative:], rounding)])
    return values, vectors


def solve_continuous_lyapunov(generator: torch.Tensor, regularisation: float = 1e-8) -> torch.Tensor:
    """P (symmetric, ``(k, k)``) solving Lambda^T P + P Lambda = -I for ``generator`` Lambda ``(k, k)``,
    differentiably (module docstring, (4)): Bartels-Stewart, or the damped problem (3) where the equation is
    singular. Computed in float64, returned in ``generator``'s dtype, on its device."""
    p, _ = _continuous_differentiable(generator, regularisation)
    return p.to(generator.dtype)


def continuous_lyapunov_eigenvalues(generator: torch.Tensor, regularisation: float = 1e-8) -> torch.Tensor:
    """Eigenvalues of P of (4) (ascending, ``(k,)``; a diagnostic, not differentiable): as many negative as
    ``generator`` has eigenvalues with a positive real part (inertia theorem, imposed where rounding blurs it)."""
    with torch.no_grad():
        p, solution = _continuous_differentiable(generator, regularisation)
    values, _ = _continuous_spectrum(p, solution)
    return torch.from_numpy(values).to(dtype=generator.dtype, device=generator.device)


def continuous_stability_prior(generator: torch.Tensor, gamma: float = 4.0,
                               regularisation: float = 1e-8) -> torch.Tensor:
    """sum_i rho(p_i) over the eigenvalues of P of (4), rho of (2): the Lyapunov prior of a latent generator, a
    scalar; exactly zero (with a zero gradient) when every eigenvalue of ``generator`` has a negative real part."""
    as_positive_number("gamma", gamma)
    checked = _checked(generator, regularisation, "generator")
    solution = _solve_continuous(checked.detach().cpu().numpy(), float(regularisation), need_p=False)
    if solution.kind == "stable":
        return (generator * 0).sum()
    p, solution = _continuous_differentiable(generator, regularisation, solution)
    return _penalty(p, *_continuous_spectrum(p, solution), gamma).to(generator.dtype)


def spectral_abscissa(generator: torch.Tensor) -> float:
    """max Re lambda_i(generator): the decay (< 0) or growth rate of z' = Lambda z's slowest mode, 1 / time."""
    return float(torch.linalg.eigvals(generator.detach().to(torch.float64)).real.max())
