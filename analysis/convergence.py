"""The convergence test: integrate to a fixed final time with a ladder of step sizes, measure the error
against a reference, and fit the observed order of each scheme.

This is the instrument of dynlearn. With the true vector field it checks an integrator (observed order = the
tableau's order). With a learned vector field G it tells a continuous model (error falls at the scheme's order
down to a low plateau, whatever the scheme) from a discrete map that only works at its training step
(Krishnapriyan, Queiruga, Erichson & Mahoney, Communications Physics 6, 2023; see :mod:`dynlearn.analysis.study`).

Example, in a test::

    result = convergence_test(f, x0, t_final=1.0, n_steps=[8, 16, 32, 64], schemes=["euler", "rk4"],
                              reference=exact_solution)
    result.assert_orders(tolerance=0.2)   # every scheme at its theoretical order
    print(result)                          # the table
    result.plot()                          # log-log, reference slopes
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Literal, Sequence

import torch

from dynlearn._checks import as_finite_time, as_flag, as_integer, as_positive_step, check_state, steps_in
from dynlearn.integration.rollout import VectorField, rollout
from dynlearn.integration.tableau import ButcherTableau
from dynlearn.integration.tableaus import get_tableau

from dynlearn.analysis.rates import SLOPE_TOLERANCE, ConvergenceRate, fit_convergence_rate

__all__ = ["ConvergenceResult", "convergence_test", "round_off_floor", "ASYMPTOTIC_SIZE"]

#: errors above this fraction of the solution's size are pre-asymptotic (the default ``ceiling``)
ASYMPTOTIC_SIZE = 0.5

#: reference(times) -> states: ``times`` is 1-D (n,), the result (n, *x0.shape).
ExactSolution = Callable[[torch.Tensor], torch.Tensor]

ErrorKind = Literal["final", "rms"]


@dataclasses.dataclass(frozen=True)
class ConvergenceResult:
    """Errors of every scheme at every step size, and the fitted rates.

    Attributes:
        schemes: scheme names, in the order given.
        orders: theoretical order of each scheme's tableau.
        n_steps, dts: the ladder (dts[i] = (t_final - t0) / n_steps[i]).
        errors: per scheme, the error at each dt.
        rates: per scheme, the fitted :class:`ConvergenceRate`, or None when too few points were usable
            (``rate_failures`` says why).
        error_kind: ``"final"`` (error at t_final) or ``"rms"`` (root mean square over the trajectory).
        training_dt: the step a model was trained at, marked in tables and plots (None for a true field).
    """

    schemes: tuple[str, ...]
    orders: dict[str, int]
    t0: float
    t_final: float
    n_steps: tuple[int, ...]
    dts: tuple[float, ...]
    errors: dict[str, tuple[float, ...]]
    rates: dict[str, ConvergenceRate | None]
    rate_failures: dict[str, str]
    error_kind: str
    training_dt: float | None = None

    def rate(self, scheme: str) -> ConvergenceRate:
        """The fitted rate of ``scheme``; raises ``ValueError`` with the reason when none could be fitted."""
        name = get_tableau(scheme).name
        if name not in self.rates:
            raise KeyError(f"scheme {scheme!r} was not part of this test; it has {list(self.schemes)}")
        fitted = self.rates[name]
        if fitted is None:
            raise ValueError(f"no rate for {name!r}: {self.rate_failures[name]}")
        return fitted

    def assert_orders(self, tolerance: float = 0.2, expected: dict[str, float] | None = None) -> None:
        """Raise ``AssertionError`` unless every scheme's observed order is within ``tolerance`` of its
        theoretical order (or of ``expected[scheme]``). The message carries the whole table."""
        failures = []
        for scheme in self.schemes:
            target = (expected or {}).get(scheme, self.orders[scheme])
            fitted = self.rates[scheme]
            if fitted is None:
                failures.append(f"{scheme}: no rate ({self.rate_failures[scheme]})")
            elif not abs(fitted.rate - target) <= tolerance:
                failures.append(f"{scheme}: observed order {fitted.rate:.3f}, expected {target} +/- {tolerance}")
        if failures:
            details = "\n".join(str(self.rates[s]) for s in self.schemes if self.rates[s] is not None)
            raise AssertionError("\n".join(failures) + "\n\n" + self.table() + "\n\n" + details)

    def table(self) -> str:
        """A plain-text table: one row per dt, one error column per scheme, then the fitted rates."""
        header = ["dt", "steps"] + [f"{s} (p={self.orders[s]})" for s in self.schemes]
        rows = []
        for index, (dt, steps) in enumerate(zip(self.dts, self.n_steps)):
            mark = " *" if self.training_dt is not None and math.isclose(dt, self.training_dt, rel_tol=1e-9) else ""
            cells = [f"{dt:.6g}{mark}", str(steps)]
            for scheme in self.schemes:
                fitted = self.rates[scheme]
                used = fitted is None or fitted.used[index]
                cells.append(f"{self.errors[scheme][index]:.3e}" + ("" if used else " (dropped)"))
            rows.append(cells)
        rate_row = ["fitted rate", ""]
        for scheme in self.schemes:
            fitted = self.rates[scheme]
            rate_row.append("n/a" if fitted is None else f"{fitted.rate:.3f} +/- {fitted.standard_error:.2g}")
        rows.append(rate_row)
        widths = [max(len(header[c]), *(len(row[c]) for row in rows)) for c in range(len(header))]
        lines = [" | ".join(h.rjust(w) for h, w in zip(header, widths))]
        lines.append("-+-".join("-" * w for w in widths))
        lines += [" | ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in rows]
        title = f"{self.error_kind} error on [{self.t0:g}, {self.t_final:g}]"
        if self.training_dt is not None:
            title += f"; * marks the training dt = {self.training_dt:g}"
        return title + "\n" + "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def to_dict(self) -> dict:
        """Every number of the result, JSON-serialisable."""
        return {
            "schemes": list(self.schemes),
            "orders": dict(self.orders),
            "t0": self.t0,
            "t_final": self.t_final,
            "n_steps": list(self.n_steps),
            "dts": list(self.dts),
            "error_kind": self.error_kind,
            "training_dt": self.training_dt,
            "errors": {s: list(e) for s, e in self.errors.items()},
            "rates": {
                s: None
                if r is None
                else {
                    "rate": r.rate,
                    "standard_error": r.standard_error,
                    "confidence_interval": list(r.confidence_interval),
                    "confidence": r.confidence,
                    "constant": r.constant,
                    "used": list(r.used),
                    "dropped": list(r.dropped),
                }
                for s, r in self.rates.items()
            },
            "rate_failures": dict(self.rate_failures),
        }

    def plot(self, ax=None, *, reference_slopes: bool = True):
        """Log-log plot of error against dt per scheme (hollow markers: points left out of the fit), dashed
        reference slopes of each theoretical order, and the training dt marked. Returns the matplotlib Axes."""
        from dynlearn.analysis.plots import plot_convergence

        return plot_convergence(self, ax=ax, reference_slopes=reference_slopes)


def round_off_floor(n_steps: int, scale: float, dtype: torch.dtype, factor: float = 10.0) -> float:
    """An estimate of the round-off level of an n-step rollout: factor * eps * sqrt(n_steps) * scale.

    Rounding errors of independent steps add like a random walk (sqrt(n) eps); ``factor`` leaves a margin.
    Errors at or below this level say nothing about the truncation order.
    """
    return factor * torch.finfo(dtype).eps * math.sqrt(n_steps) * scale


def _ladder(
    interval: float, n_steps: Sequence[int] | None, dts: Sequence[float] | None
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    if (n_steps is None) == (dts is None):
        raise ValueError("give exactly one of n_steps (a list of step counts) or dts (a list of step sizes)")
    if n_steps is None:
        counts = [steps_in(interval, dt, interval_name="t_final - t0", dt_name="dt") for dt in dts]
    else:
        counts = list(n_steps)
        for index, count in enumerate(counts):
            as_integer(f"n_steps[{index}]", count)
    counts = [int(c) for c in counts]
    if len(set(counts)) != len(counts):
        raise ValueError(f"the ladder repeats a step count: {counts}")
    if len(counts) < 2:
        raise ValueError(f"a convergence test needs at least two step sizes, got {len(counts)}")
    counts.sort()
    return tuple(counts), tuple(interval / c for c in counts)


def _reference_states(
    reference: ExactSolution | torch.Tensor, times: torch.Tensor, n: int, like: torch.Tensor
) -> torch.Tensor:
    """The reference at ``times``: for a trajectory reference, all of t0 + k*dt, k = 0..n."""
    if callable(reference):
        states = reference(times)
        expected = (times.numel(), *like.shape)
        if not isinstance(states, torch.Tensor) or tuple(states.shape) != expected:
            shape = tuple(states.shape) if isinstance(states, torch.Tensor) else type(states).__name__
            raise ValueError(f"reference(times) must return shape {expected} (times, *x0.shape), got {shape}")
        return states.to(dtype=like.dtype, device=like.device)
    intervals = reference.shape[0] - 1
    return reference[:: intervals // n] if n <= intervals else reference


def convergence_test(
    f: VectorField,
    x0: torch.Tensor,
    t_final: float,
    *,
    reference: ExactSolution | torch.Tensor,
    schemes: Sequence[str | ButcherTableau] = ("rk4",),
    n_steps: Sequence[int] | None = None,
    dts: Sequence[float] | None = None,
    t0: float = 0.0,
    error: ErrorKind = "final",
    relative: bool = False,
    norm: Callable[[torch.Tensor], torch.Tensor] | None = None,
    training_dt: float | None = None,
    floor: float | None | Literal["auto"] = "auto",
    ceiling: float | None | Literal["auto"] = "auto",
    select_range: bool = True,
    slope_tolerance: float = SLOPE_TOLERANCE,
    window: tuple[float, float] | None = None,
    min_points: int = 3,
    progress: bool = False,
) -> ConvergenceResult:
    """Sweep the step size over a fixed interval [t0, t_final] for each scheme and fit the observed orders.

    Args:
        f: vector field ``f(t, x)`` (true or learned), integrated with :func:`dynlearn.rollout` without
            gradients.
        x0: initial state, any batch shape; use float64 to measure orders.
        t_final: final time T > t0. Every dt must divide T - t0 into whole steps.
        reference: the exact solution as a callable ``reference(times) -> (len(times), *x0.shape)``, or a
            reference trajectory of shape ``(m + 1, *x0.shape)`` on the uniform grid t0 + k (T - t0)/m (a
            finer solve, or recorded data). Every step count N of the ladder must divide m or be a multiple
            of it; a rollout is compared at the times both grids share: all its N steps when N divides m,
            the reference's m points when N is a multiple of m (steps finer than the data are judged where
            there is data).
        schemes: names or tableaus to test.
        n_steps: the ladder as step counts (give exactly one of ``n_steps`` and ``dts``).
        dts: the ladder as step sizes.
        error: ``"final"``, the norm of x_N - x(T); or ``"rms"``, sqrt((1/N) sum_k ||x_k - x(t_k)||^2) over
            k = 1..N (normalised by sqrt(N), so it stays comparable across dt; over the m shared times for
            a rollout finer than a reference trajectory).
        relative: divide each error by the same norm of the reference.
        norm: norm of a difference (default: the 2-norm over every entry, batch included).
        training_dt: the step a model was trained at, marked in the table and the plot.
        floor: errors at or below it are left out of the fits: a number, None, or ``"auto"``:
            :func:`round_off_floor` of each rollout (10 eps sqrt(N) times the reference's norm).
        ceiling: errors at or above it are left out of the fits as pre-asymptotic: a number, None, or ``"auto"``:
            ASYMPTOTIC_SIZE = 0.5 times the solution's size (the larger of ||x0|| and the reference's size in the
            error's own measure: ||x(T)||, or its RMS over the compared times; 0.5 itself for relative errors).
            An error that large means a qualitatively wrong trajectory, outside the asymptotic expansion even when
            it falls straight (forward Euler on an eccentric orbit, saturated, falls at order 0.4).
        select_range, slope_tolerance, window, min_points: passed to
            :func:`dynlearn.analysis.fit_convergence_rate`, which fits each scheme's order on the asymptotic range
            of its own errors (pre-asymptotic coarse steps and a floor at the fine end left out, with reasons).
        progress: show a progress bar.

    Returns:
        A :class:`ConvergenceResult` (``table()``, ``plot()``, ``assert_orders()``, ``to_dict()``).
    """
    x0 = check_state("x0", x0)
    relative, select_range = as_flag("relative", relative), as_flag("select_range", select_range)
    t0 = as_finite_time("t0", t0)
    t_final = as_finite_time("t_final", t_final)
    if not t_final > t0:
        raise ValueError(f"t_final must be greater than t0, got t0={t0}, t_final={t_final}")
    if error not in ("final", "rms"):
        raise ValueError(f"error must be 'final' or 'rms', got {error!r}")
    if training_dt is not None:
        training_dt = as_positive_step("training_dt", training_dt)
    tableaus = [get_tableau(s) for s in schemes]
    names = [t.name for t in tableaus]
    if not names:
        raise ValueError("schemes is empty; name at least one scheme")
    if len(set(names)) != len(names):
        raise ValueError(f"schemes repeats a scheme: {names}")
    counts, step_sizes = _ladder(t_final - t0, n_steps, dts)
    if isinstance(reference, torch.Tensor):
        if reference.ndim < 1 or tuple(reference.shape[1:]) != tuple(x0.shape):
            raise ValueError(
                f"a reference trajectory must have shape (m + 1, *x0.shape) = (m + 1, {', '.join(map(str, x0.shape))}), "
                f"got {tuple(reference.shape)}"
            )
        intervals = reference.shape[0] - 1
        bad = [c for c in counts if intervals < 1 or (intervals % c and c % intervals)]
        if bad:
            raise ValueError(
                f"the reference trajectory has {intervals} intervals; the step counts {bad} neither divide it nor "
                f"are multiples of it, so their rollouts share no regular grid of times with it"
            )
    elif not callable(reference):
        raise TypeError("reference must be a callable exact solution or a reference trajectory tensor")
    real_dtype = x0.real.dtype if x0.is_complex() else x0.dtype

    def distances(differences: torch.Tensor) -> torch.Tensor:
        """The norm of each difference along dim 0."""
        if norm is None:
            return torch.linalg.vector_norm(differences.reshape(differences.shape[0], -1), dim=1)
        return torch.stack([torch.as_tensor(norm(d)) for d in differences])

    from dynlearn.progress import progress as progress_display

    errors: dict[str, list[float]] = {name: [] for name in names}
    auto_floors: list[float] = []
    sizes: list[float] = [float(distances(x0.unsqueeze(0))[0])]
    with torch.no_grad():
        for count, dt in zip(counts, step_sizes):
            # a rollout finer than a reference trajectory is compared at the reference's times only
            stride = count // (reference.shape[0] - 1) if isinstance(reference, torch.Tensor) else 1
            stride = max(stride, 1)
            if error == "final":
                times = torch.tensor([t_final], dtype=torch.float64)
            else:
                times = t0 + torch.arange(0, count + 1, stride, dtype=torch.float64) * dt
            times = times.to(dtype=real_dtype, device=x0.device)
            states = _reference_states(reference, times, count, x0)
            exact = states[-1:] if error == "final" else states[1:]
            exact_size = distances(exact)
            scale = 1.0 if relative else max(float(exact_size.max()), 1.0)
            auto_floors.append(round_off_floor(count, scale, real_dtype))
            sizes.append(float(torch.sqrt(torch.mean(exact_size**2))))
            for tableau in progress_display(tableaus, total=len(tableaus), description=f"{count} steps",
                                            enabled=progress):
                trajectory = rollout(f, x0, t0, dt, count, tableau, allow_nonfinite=True)[::stride]
                approximate = trajectory[-1:] if error == "final" else trajectory[1:]
                per_time = distances(approximate - exact)
                if relative:
                    per_time = per_time / exact_size
                errors[tableau.name].append(float(torch.sqrt(torch.mean(per_time**2))))

    floor_values = auto_floors if floor == "auto" else floor
    if ceiling == "auto":
        ceiling = ASYMPTOTIC_SIZE * (1.0 if relative else max(sizes))
    rates: dict[str, ConvergenceRate | None] = {}
    failures: dict[str, str] = {}
    for name in names:
        fitted = fit_convergence_rate(
            step_sizes, errors[name], floor=floor_values, ceiling=ceiling, select_range=select_range,
            slope_tolerance=slope_tolerance,
            window=window, min_points=min_points,
        )
        rates[name] = fitted if fitted.found else None
        if not fitted.found:
            failures[name] = fitted.reason
    return ConvergenceResult(
        schemes=tuple(names),
        orders={t.name: t.order for t in tableaus},
        t0=t0,
        t_final=t_final,
        n_steps=counts,
        dts=step_sizes,
        errors={name: tuple(values) for name, values in errors.items()},
        rates=rates,
        rate_failures=failures,
        error_kind=error,
        training_dt=training_dt,
    )
