"""Fitting a convergence rate: the slope of log(error) against log(dt).

For a method of order p, the global error behaves as err(dt) ~ C dt^p while dt is small enough to be in the
asymptotic regime and large enough that the error is above the floor (round-off for an exact vector field;
the model's own error for a learned one). ``fit_convergence_rate`` fits p by least squares on the points in
between, gives its standard error and a Student-t confidence interval, and reports which points it used and
why it dropped the others.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
from scipy import stats

__all__ = ["ConvergenceRate", "fit_convergence_rate"]

#: A point is taken to be in the floor when the local slope to its coarser neighbour falls below this
#: fraction of the slope in the steepest part of the ladder (0.75: an order-4 method is cut below 3).
FLATTENING_FRACTION = 0.75


@dataclasses.dataclass(frozen=True)
class ConvergenceRate:
    """A fitted convergence rate err ~ constant * dt**rate.

    Attributes:
        rate: fitted slope of log(error) against log(dt) (the observed order).
        standard_error: standard error of the slope (NaN when fitted through exactly two points).
        confidence_interval: (low, high) Student-t interval of the slope at ``confidence``.
        confidence: the level of that interval, e.g. 0.95.
        constant: C in err ~ C dt**rate.
        dts, errors: every point given, in the order given.
        used: per point, whether the fit used it.
        dropped: per point, why it was left out ('' for used points).
    """

    rate: float
    standard_error: float
    confidence_interval: tuple[float, float]
    confidence: float
    constant: float
    dts: tuple[float, ...]
    errors: tuple[float, ...]
    used: tuple[bool, ...]
    dropped: tuple[str, ...]

    @property
    def n_used(self) -> int:
        return sum(self.used)

    @property
    def window(self) -> tuple[float, float]:
        """(smallest, largest) dt among the points used by the fit."""
        used_dts = [dt for dt, keep in zip(self.dts, self.used) if keep]
        return min(used_dts), max(used_dts)

    def predict(self, dt: float | np.ndarray) -> float | np.ndarray:
        """The fitted error C dt**rate."""
        return self.constant * np.asarray(dt, dtype=float) ** self.rate

    def assert_order(self, expected: float, tolerance: float = 0.2) -> None:
        """Raise ``AssertionError`` (with the whole fit in the message) unless |rate - expected| <= tolerance."""
        if not abs(self.rate - expected) <= tolerance:
            raise AssertionError(f"observed order {self.rate:.3f} is not within {tolerance} of {expected}:\n{self}")

    def __str__(self) -> str:
        low, high = self.confidence_interval
        lines = [
            f"rate {self.rate:.4f} +/- {self.standard_error:.2g} "
            f"({self.confidence:.0%} CI [{low:.4f}, {high:.4f}]), err ~ {self.constant:.3g} dt^rate, "
            f"from {self.n_used} of {len(self.dts)} points, dt in [{self.window[0]:.4g}, {self.window[1]:.4g}]"
        ]
        for dt, error, reason in zip(self.dts, self.errors, self.dropped):
            if reason:
                lines.append(f"  dropped dt={dt:.4g} (error {error:.3g}): {reason}")
        return "\n".join(lines)


def _as_vector(name: str, values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def fit_convergence_rate(
    dts: Sequence[float] | np.ndarray,
    errors: Sequence[float] | np.ndarray,
    *,
    floor: float | Sequence[float] | None = None,
    detect_floor: bool = True,
    window: tuple[float, float] | None = None,
    asymptotic_tolerance: float | None = None,
    confidence: float = 0.95,
    min_points: int = 3,
) -> ConvergenceRate:
    """Fit the observed order r in err ~ C dt^r by least squares on (log dt, log err).

    Points are dropped, with the reason recorded, when their error is not finite or not positive, when dt lies
    outside ``window`` = (dt_min, dt_max), when the error is at or below ``floor`` (a number, or one per
    point, e.g. an estimate of accumulated round-off), and, with ``detect_floor``, at the fine end of the
    ladder where the error stops decreasing: the local slope between neighbours falls below 3/4 of the slope
    of the steepest part of the ladder (the median of three consecutive local slopes), as it does in a
    round-off floor or at the plateau of a learned vector field. With ``asymptotic_tolerance`` (e.g. 0.25),
    points at the coarse end are dropped too, from the first local slope that differs from the finest local
    slope by more than that fraction of it: the pre-asymptotic range, where higher-order terms still bend
    the curve.

    Args:
        dts: step sizes (> 0, distinct), any order.
        errors: the error at each step size.
        confidence: level of the returned confidence interval (Student t with n - 2 degrees of freedom).
        min_points: fewest points the fit may use (at least 2; with 2 the standard error is NaN).

    Returns:
        A :class:`ConvergenceRate`. Raises ``ValueError`` when fewer than ``min_points`` points remain,
        listing why each was dropped.
    """
    dt_array = _as_vector("dts", dts)
    error_array = _as_vector("errors", errors)
    if dt_array.shape != error_array.shape:
        raise ValueError(f"dts and errors must have the same length, got {dt_array.size} and {error_array.size}")
    if not np.all(np.isfinite(dt_array)) or not np.all(dt_array > 0):
        raise ValueError(f"every dt must be finite and > 0, got {dt_array.tolist()}")
    if np.unique(dt_array).size != dt_array.size:
        raise ValueError(f"dts must be distinct, got {dt_array.tolist()}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if window is not None and not (len(window) == 2 and 0 < window[0] < window[1]):
        raise ValueError(f"window must be (dt_min, dt_max) with 0 < dt_min < dt_max, got {window!r}")
    if isinstance(min_points, bool) or not isinstance(min_points, int) or min_points < 2:
        raise ValueError(f"min_points must be an integer >= 2, got {min_points!r}")
    floors = None
    if floor is not None:
        floors = np.broadcast_to(np.asarray(floor, dtype=float), dt_array.shape)

    reasons = [""] * dt_array.size
    for i, (dt, error) in enumerate(zip(dt_array, error_array)):
        if not math.isfinite(error):
            reasons[i] = "error is not finite"
        elif error <= 0:
            reasons[i] = "error is zero (exact to round-off)"
        elif window is not None and not window[0] <= dt <= window[1]:
            reasons[i] = f"dt outside the window [{window[0]:.4g}, {window[1]:.4g}]"
        elif floors is not None and error <= floors[i]:
            reasons[i] = f"error at or below the floor {floors[i]:.3g}"

    if detect_floor:
        _drop_flattened_tail(dt_array, error_array, reasons, min_points)
    if asymptotic_tolerance is not None:
        if not asymptotic_tolerance > 0:
            raise ValueError(f"asymptotic_tolerance must be > 0, got {asymptotic_tolerance}")
        _drop_preasymptotic_head(dt_array, error_array, reasons, min_points, asymptotic_tolerance)

    used = np.array([reason == "" for reason in reasons])
    if used.sum() < min_points:
        detail = "; ".join(f"dt={dt:.4g}: {reason}" for dt, reason in zip(dt_array, reasons) if reason)
        raise ValueError(
            f"only {int(used.sum())} usable points for a convergence rate, need {min_points}"
            + (f" (dropped {detail})" if detail else "")
        )
    log_dt = np.log(dt_array[used])
    log_error = np.log(error_array[used])
    n = log_dt.size
    spread = np.sum((log_dt - log_dt.mean()) ** 2)
    slope = float(np.sum((log_dt - log_dt.mean()) * (log_error - log_error.mean())) / spread)
    intercept = float(log_error.mean() - slope * log_dt.mean())
    if n > 2:
        residuals = log_error - (intercept + slope * log_dt)
        standard_error = float(math.sqrt(np.sum(residuals**2) / (n - 2) / spread))
        half_width = float(stats.t.ppf(0.5 + confidence / 2, n - 2)) * standard_error
    else:
        standard_error = half_width = float("nan")
    return ConvergenceRate(
        rate=slope,
        standard_error=standard_error,
        confidence_interval=(slope - half_width, slope + half_width),
        confidence=confidence,
        constant=math.exp(intercept),
        dts=tuple(dt_array.tolist()),
        errors=tuple(error_array.tolist()),
        used=tuple(bool(u) for u in used),
        dropped=tuple(reasons),
    )


def _drop_flattened_tail(dts: np.ndarray, errors: np.ndarray, reasons: list[str], min_points: int) -> None:
    """Mark, from the finest dt up, the points where the error has stopped decreasing (in place)."""
    candidates = [i for i in np.argsort(-dts) if reasons[i] == ""]  # coarse to fine
    if len(candidates) <= min_points:
        return
    log_dt = np.log(dts[candidates])
    log_error = np.log(errors[candidates])
    slopes = np.diff(log_error) / np.diff(log_dt)  # > 0 while the error falls as dt falls
    width = min(3, slopes.size)
    steepest = max(float(np.median(slopes[i : i + width])) for i in range(slopes.size - width + 1))
    if steepest <= 0:
        return  # nothing converges: no part of the ladder to protect; the fit reports it honestly
    threshold = FLATTENING_FRACTION * steepest
    kept = len(candidates)
    while kept > min_points and slopes[kept - 2] < threshold:
        reasons[candidates[kept - 1]] = (
            f"floor: the error stopped decreasing (local slope {slopes[kept - 2]:.2f} < "
            f"{FLATTENING_FRACTION} x {steepest:.2f})"
        )
        kept -= 1


def _drop_preasymptotic_head(
    dts: np.ndarray, errors: np.ndarray, reasons: list[str], min_points: int, tolerance: float
) -> None:
    """Mark, from the coarse end, the points before the asymptotic range (in place)."""
    candidates = [i for i in np.argsort(dts) if reasons[i] == ""]  # fine to coarse
    if len(candidates) <= min_points:
        return
    slopes = np.diff(np.log(errors[candidates])) / np.diff(np.log(dts[candidates]))
    asymptotic = slopes[0]
    for j, slope in enumerate(slopes):
        if abs(slope - asymptotic) > tolerance * abs(asymptotic) and j + 1 >= min_points:
            for index in candidates[j + 1 :]:
                reasons[index] = (
                    f"pre-asymptotic: local slope {slope:.2f} differs from the asymptotic {asymptotic:.2f} "
                    f"by more than {tolerance:.0%}"
                )
            return
