"""A SINDy baseline: a sparse vector field identified by PySINDy, used like any other vector field.

SINDy (Brunton, Proctor & Kutz 2016) estimates dx/dt from the samples (PySINDy's default: second-order finite
differences at the sampling step dt), then regresses it on a library of candidate terms Theta(x) with sequential
thresholded least squares: dx/dt = Xi Theta(x), Xi sparse. Its field therefore carries the error of the
derivative estimate, O(dt^2), and depends on the sampling step as a model trained inside a scheme does
(the journal paper's comparison). :func:`fit_sindy` identifies one from a trajectory; :class:`SindyVectorField`
evaluates it as ``f(t, x) = Xi Theta(x)`` in torch (batched, any device, differentiable), its library terms built
in PySINDy's order and checked against PySINDy's own on the training data when fitted.

PySINDy is an optional dependency (``pip install 'dynlearn[baselines]'``).
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np
import torch
from torch import nn

from dynlearn._checks import as_number_in, as_positive_step

__all__ = ["SINDY_LIBRARIES", "SindyVectorField", "fit_sindy", "fit_sindy_irregular"]

#: candidate-term libraries by name: polynomials to degree 3, and those with sin and cos of each state component
SINDY_LIBRARIES = ("polynomial", "polynomial+fourier")


def _pysindy():
    try:
        import pysindy
    except ImportError:
        raise ImportError("the SINDy baseline needs PySINDy: pip install 'dynlearn[baselines]' (or pysindy)") from None
    return pysindy


def check_library_size(dimension: int, samples: int, library: str = "polynomial+fourier") -> int:
    """The number of library terms for a state of ``dimension`` components; a ValueError when ``samples`` cannot
    determine them (checked before any work: a 32-node wave has 6609 terms)."""
    count = len(_monomials(dimension, 3)) + (2 * dimension if library == "polynomial+fourier" else 0)
    if count >= samples:
        raise ValueError(f"SINDy's library has {count} terms for a state of {dimension} components, more than the "
                         f"{samples} samples can determine; give more samples or a smaller state (a field: its "
                         f"leading POD modes)")
    return count


def _monomials(dimension: int, degree: int) -> list[tuple[int, ...]]:
    """PySINDy's PolynomialLibrary order: the constant, then each degree's combinations with replacement."""
    return [()] + [combination for power in range(1, degree + 1)
                   for combination in itertools.combinations_with_replacement(range(dimension), power)]


class SindyVectorField(nn.Module):
    """A fitted SINDy model as a vector field f(t, x) = Xi Theta(x) for states ``(*batch, d)`` (autonomous: t is
    ignored): ``coefficients`` Xi ``(d, terms)``, Theta the monomials to degree 3 (and with ``fourier``, sin and
    cos of each component) in PySINDy's order. ``equations`` holds PySINDy's text of the identified right-hand
    sides."""

    def __init__(self, coefficients: torch.Tensor, dimension: int, fourier: bool, equations: list[str]) -> None:
        super().__init__()
        self.dimension = dimension
        self.fourier = fourier
        self.monomials = _monomials(dimension, 3)
        self.equations = list(equations)
        self.register_buffer("coefficients", torch.as_tensor(coefficients, dtype=torch.float64))
        expected = len(self.monomials) + (2 * dimension if fourier else 0)
        if tuple(self.coefficients.shape) != (dimension, expected):
            raise ValueError(f"SINDy coefficients must be ({dimension}, {expected}) for this library, got "
                             f"{tuple(self.coefficients.shape)}")

    def library(self, x: torch.Tensor) -> torch.Tensor:
        """Theta(x): ``(*batch, terms)``."""
        columns = [torch.ones_like(x[..., 0])] + [math.prod(x[..., i] for i in term) for term in self.monomials[1:]]
        if self.fourier:
            for i in range(self.dimension):
                columns += [torch.sin(x[..., i]), torch.cos(x[..., i])]
        return torch.stack(columns, dim=-1)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.library(x) @ self.coefficients.to(dtype=x.dtype, device=x.device).T

    @property
    def terms(self) -> int:
        """How many library terms have a nonzero coefficient."""
        return int((self.coefficients != 0).sum())


def fit_sindy(states: torch.Tensor | Sequence[torch.Tensor], dt: float, *, library: str = "polynomial+fourier",
              threshold: float = 0.05) -> SindyVectorField:
    """Identify a SINDy model from one trajectory ``states`` ``(n_times, d)`` sampled every ``dt`` (or a list of
    trajectories, each differentiated on its own).

    The derivative is PySINDy's default (second-order finite differences); the library ``"polynomial"`` (all
    monomials to degree 3) or ``"polynomial+fourier"`` (those, and sin, cos of each component); the optimiser
    sequential thresholded least squares with ``threshold`` (coefficients below it are dropped, in [0, 10)).
    """
    pysindy = _pysindy()
    if library not in SINDY_LIBRARIES:
        raise ValueError(f"library must be one of {', '.join(SINDY_LIBRARIES)}, got {library!r}")
    dt = as_positive_step("dt", dt)
    threshold = as_number_in("threshold", threshold, 0.0, 10.0)
    return _identify(pysindy, states, dt, library == "polynomial+fourier", threshold)


def _trajectories(states: object) -> list[torch.Tensor]:
    """One trajectory ``(n_times, d)`` or a list of them (the same d), each checked: n_times >= 3, finite."""
    many = list(states) if isinstance(states, (list, tuple)) else [states]
    if not many or not all(isinstance(s, torch.Tensor) and s.ndim == 2 and s.shape[0] >= 3 for s in many) or len(
            {s.shape[1] for s in many}) != 1:
        shapes = [tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__ for s in many]
        raise ValueError(f"states must be one trajectory (n_times >= 3, d) or a list of them, got {shapes}")
    if not all(bool(torch.isfinite(s).all()) for s in many):
        raise ValueError("states contain NaN or inf")
    return many


def _identify(pysindy: object, states: object, times: float | torch.Tensor, fourier: bool,
              threshold: float) -> SindyVectorField:
    """Fit PySINDy (``times``: the step, or every sample's time, shared by the trajectories) and carry its
    coefficients into torch, checking that the torch library is PySINDy's on the training data."""
    many = _trajectories(states)
    dimension = many[0].shape[1]
    check_library_size(dimension, sum(s.shape[0] for s in many), "polynomial+fourier" if fourier else "polynomial")
    terms = pysindy.PolynomialLibrary(degree=3)
    if fourier:
        terms = terms + pysindy.FourierLibrary(n_frequencies=1)
    model = pysindy.SINDy(feature_library=terms, optimizer=pysindy.STLSQ(threshold=threshold))
    arrays = [s.detach().to("cpu", torch.float64).numpy() for s in many]
    model.fit(arrays if len(arrays) > 1 else arrays[0], t=times.numpy() if isinstance(times, torch.Tensor) else times)
    data = arrays[0]
    field = SindyVectorField(torch.as_tensor(np.asarray(model.coefficients())), dimension, fourier,
                             model.equations())
    theirs = np.asarray(model.feature_library.transform(data), dtype=np.float64)
    ours = field.library(torch.from_numpy(data)).numpy()
    if ours.shape != theirs.shape or not np.allclose(ours, theirs, rtol=1e-12, atol=1e-12):
        raise RuntimeError("this PySINDy orders its library terms differently from dynlearn's SindyVectorField; "
                           "please report the PySINDy version")
    return field


def fit_sindy_irregular(states: torch.Tensor | Sequence[torch.Tensor], times: torch.Tensor, *,
                        library: str = "polynomial+fourier", threshold: float = 0.05) -> SindyVectorField:
    """:func:`fit_sindy` from samples at irregular ``times`` ``(n_times,)``, shared by every trajectory given
    (PySINDy's finite differences take the sample times themselves)."""
    pysindy = _pysindy()
    if library not in SINDY_LIBRARIES:
        raise ValueError(f"library must be one of {', '.join(SINDY_LIBRARIES)}, got {library!r}")
    n_times = _trajectories(states)[0].shape[0]
    if not isinstance(times, torch.Tensor) or times.shape != (n_times,) or not bool(
            (times.diff() > 0).all()):
        raise ValueError("times must be the strictly increasing time of every sample, shape (n_times,)")
    return _identify(pysindy, states, times.to(torch.float64), library == "polynomial+fourier",
                     as_number_in("threshold", threshold, 0.0, 10.0))
