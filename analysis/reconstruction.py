r"""Reconstructing the continuous operator behind a linear discrete map u_{k+1} = Omega u_k.

Two questions, two methods:

1. Which continuous system produced the data? The exact map is Omega = exp(dt Lambda), so
   Lambda = log(Omega) / dt (:func:`logarithm_operator`), defined when no eigenvalue of Omega lies on the
   closed negative real axis; for data this means dt |Im lambda| < pi (a Nyquist bound: an oscillation
   sampled less than twice per period cannot be recovered). scipy's Schur-Pade ``logm`` handles defective
   matrices.
2. Which operator does a linear model trained inside a scheme converge to? The scheme's one step is
   R(dt Lambda), so the model learns the Lambda with R(dt Lambda) = Omega (:func:`scheme_operator`),
   solved eigenvalue by eigenvalue (the root of R(z) = omega nearest log omega), with closed forms for
   forward Euler (Omega - I)/dt, backward Euler (I - Omega^-1)/dt and the trapezoid rule
   (2/dt)(Omega - I)(Omega + I)^-1. On the oscillator these show the published artefacts: forward Euler
   learns damping -dt/2, backward Euler anti-damping +dt/2, the trapezoid rule an error of dt^2/12.
"""

from __future__ import annotations

import warnings

import numpy as np
import sympy
import torch
from scipy import linalg

from dynlearn.integration.tableau import ButcherTableau
from dynlearn.integration.tableaus import get_tableau

__all__ = [
    "LogarithmWarning",
    "least_squares_map",
    "logarithm_operator",
    "scheme_operator",
    "closed_form_operator",
    "closest_stencil",
    "relative_error",
]


class LogarithmWarning(UserWarning):
    """The matrix logarithm is ill-defined or complex: the reconstructed operator is not trustworthy."""


def _as_array(matrix: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    array = matrix.detach().cpu().numpy() if isinstance(matrix, torch.Tensor) else np.asarray(matrix)
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite")
    return array.astype(np.complex128 if np.iscomplexobj(array) else np.float64)


def least_squares_map(states: torch.Tensor, successors: torch.Tensor) -> torch.Tensor:
    """Omega minimising sum_k ||x_{k+1} - Omega x_k||^2 over pairs ``(N, d)`` (exact DMD): Omega = Y X^+."""
    if states.ndim != 2 or states.shape != successors.shape:
        raise ValueError(f"states and successors must both be (N, d), got {tuple(states.shape)}, {tuple(successors.shape)}")
    solution = torch.linalg.lstsq(states, successors).solution  # X Omega^T = Y
    return solution.T


#: |arg omega| above this fraction of pi is reported as close to the Nyquist-type bound.
NYQUIST_MARGIN = 0.9


def logarithm_operator(omega: torch.Tensor | np.ndarray, dt: float) -> torch.Tensor:
    r"""Lambda = log(Omega) / dt (principal logarithm, Schur-Pade).

    The principal logarithm returns the true operator only if :math:`\Delta t |\operatorname{Im} \lambda| < \pi` for
    every eigenvalue: a faster oscillation is aliased to a slower one, and Omega alone cannot tell. So this warns with
    :class:`LogarithmWarning`, never silently, when an eigenvalue of Omega lies on the negative real axis (no real
    logarithm: exactly at the bound), when some :math:`|\arg \omega|` exceeds 0.9 pi (close to it), or when the
    logarithm has a non-negligible imaginary part."""
    array = _as_array(omega, "omega")
    eigenvalues = np.linalg.eigvals(array)
    scale = max(1.0, float(np.abs(eigenvalues).max()))
    if np.any(np.abs(eigenvalues) < 1e-14 * scale):
        raise ValueError("omega is singular: a zero eigenvalue has no logarithm")
    on_axis = (eigenvalues.real < 0) & (np.abs(eigenvalues.imag) <= 1e-9 * np.abs(eigenvalues))
    if np.any(on_axis):
        warnings.warn(
            f"omega has eigenvalue(s) {eigenvalues[on_axis]} on the negative real axis: log(omega) is not real and "
            f"the frequency is ambiguous (dt |Im lambda| >= pi, sampling below the Nyquist rate); the returned "
            f"real part is not a trustworthy operator",
            LogarithmWarning,
            stacklevel=2,
        )
    angles = np.abs(np.angle(eigenvalues))
    if not np.any(on_axis) and np.any(angles > NYQUIST_MARGIN * np.pi):
        warnings.warn(
            f"omega has eigenvalues with |arg omega| up to {angles.max() / np.pi:.3f} pi: dt |Im lambda| is close to "
            f"pi, the bound beyond which frequencies alias; if the data may oscillate faster, reduce dt",
            LogarithmWarning,
            stacklevel=2,
        )
    logarithm = linalg.logm(array)
    if not np.iscomplexobj(array) and np.iscomplexobj(logarithm):
        imaginary = float(np.abs(logarithm.imag).max())
        if imaginary > 1e-8 * max(1.0, float(np.abs(logarithm.real).max())) and not np.any(on_axis):
            warnings.warn(f"log(omega) has an imaginary part of size {imaginary:.3g}; keeping the real part",
                          LogarithmWarning, stacklevel=2)
        logarithm = logarithm.real
    return torch.from_numpy(np.ascontiguousarray(logarithm / dt))


def closed_form_operator(omega: torch.Tensor | np.ndarray, dt: float, scheme: str) -> torch.Tensor:
    """The operator a linear model learns inside ``scheme`` from exact data Omega, in closed form:
    euler (Omega - I)/dt; backward_euler (I - Omega^-1)/dt; trapezoid (2/dt)(Omega - I)(Omega + I)^-1."""
    array = _as_array(omega, "omega")
    identity = np.eye(array.shape[0])
    name = get_tableau(scheme).name
    if name == "euler":
        result = (array - identity) / dt
    elif name == "backward_euler":
        result = (identity - np.linalg.inv(array)) / dt
    elif name == "trapezoid":
        result = 2.0 / dt * np.linalg.solve((array + identity).T, (array - identity).T).T
    else:
        raise ValueError(f"no closed form for {name!r}: use scheme_operator (euler, backward_euler, trapezoid have one)")
    return torch.from_numpy(np.ascontiguousarray(result))


def scheme_operator(omega: torch.Tensor | np.ndarray, dt: float, scheme: str | ButcherTableau) -> torch.Tensor:
    """Lambda with R(dt Lambda) = Omega for the scheme's stability function R = P/Q: for each eigenvalue
    omega_i of Omega, the root z of P(z) - omega_i Q(z) nearest log(omega_i), then Lambda = V diag(z/dt) V^-1.

    Omega must be diagonalisable (a warning says when its eigenvectors are ill-conditioned). The result is
    real when Omega is (roots of conjugate eigenvalues are chosen as conjugates).
    """
    array = _as_array(omega, "omega")
    tableau = get_tableau(scheme)
    z = sympy.Symbol("z")
    numerator, denominator = sympy.fraction(sympy.together(tableau.stability_function(z)))
    p = np.array([complex(c) for c in sympy.Poly(numerator, z).all_coeffs()])
    q = np.array([complex(c) for c in sympy.Poly(denominator, z).all_coeffs()])
    eigenvalues, vectors = np.linalg.eig(array)
    if np.linalg.cond(vectors) > 1e8:
        warnings.warn("omega is (nearly) defective: eigenvector-based inversion is ill-conditioned",
                      LogarithmWarning, stacklevel=2)
    width = max(p.size, q.size)
    p, q = np.pad(p, (width - p.size, 0)), np.pad(q, (width - q.size, 0))
    chosen = []
    for value in eigenvalues:
        roots = np.roots(p - value * q)
        target = np.log(complex(value))
        chosen.append(roots[np.argmin(np.abs(roots - target))] if roots.size else np.nan)
    result = vectors @ np.diag(np.array(chosen) / dt) @ np.linalg.inv(vectors)
    if not np.iscomplexobj(_as_array(omega, "omega")):
        result = result.real
    return torch.from_numpy(np.ascontiguousarray(result))


def closest_stencil(operator: torch.Tensor, wave) -> dict:
    """Compare the Laplacian block of a learned wave operator [[., .], [c^2 D, .]] with the method-of-lines
    matrices of order 2, 4 and 6: relative Frobenius distances and the order it resembles most."""
    n = wave.nodes
    block = torch.as_tensor(operator, dtype=torch.float64)[n:, :n]
    distances = {}
    for order in (2, 4, 6):
        reference = wave.speed**2 * wave.laplacian_matrix(order)
        distances[order] = float(torch.linalg.norm(block - reference) / torch.linalg.norm(reference))
    best = min(distances, key=distances.get)
    return {"distances": distances, "closest_order": best}


def relative_error(estimate: torch.Tensor, truth: torch.Tensor) -> float:
    """||estimate - truth||_F / ||truth||_F."""
    return float(torch.linalg.norm(estimate - truth) / torch.linalg.norm(truth))

