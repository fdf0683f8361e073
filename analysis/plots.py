"""Plots of convergence results (matplotlib, imported only when a plot is asked for)."""

from __future__ import annotations

import math
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

__all__ = ["ConvergenceData", "plot_convergence"]


class ConvergenceData(Protocol):
    """What a convergence plot reads (a :class:`dynlearn.analysis.convergence.ConvergenceResult` has it all)."""

    dts: Sequence[float]
    schemes: Sequence[str]
    errors: Mapping[str, Sequence[float]]
    rates: Mapping[str, Any]  # a fitted ConvergenceRate (``used``, ``rate``), or None
    orders: Mapping[str, int]
    training_dt: float | None
    error_kind: str
    t0: float
    t_final: float


def plot_convergence(result: ConvergenceData, ax=None, *, reference_slopes: bool = True):
    """Error against dt on log-log axes, one line per scheme.

    Filled markers are the points the rate fit used, hollow ones those it left out (floor, window). A dashed
    line of slope p (the scheme's theoretical order) passes through the scheme's finest used point, so a
    scheme at its order runs parallel to its guide. The training dt, when given, is a vertical dotted line.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.8))
    dts = np.asarray(result.dts)
    for scheme in result.schemes:
        errors = np.asarray(result.errors[scheme])
        fitted = result.rates[scheme]
        used = np.ones_like(dts, dtype=bool) if fitted is None else np.asarray(fitted.used)
        label = scheme if fitted is None else f"{scheme}: rate {fitted.rate:.2f} (p={result.orders[scheme]})"
        positive = np.isfinite(errors) & (errors > 0)
        (line,) = ax.loglog(dts[positive], errors[positive], "-", alpha=0.6)
        color = line.get_color()
        ax.loglog(dts[used & positive], errors[used & positive], "o", color=color, label=label)
        ax.loglog(dts[~used & positive], errors[~used & positive], "o", mfc="none", color=color)
        if reference_slopes and used.any():
            anchor = np.argmin(np.where(used & positive, dts, np.inf))
            guide = errors[anchor] * (dts / dts[anchor]) ** result.orders[scheme]
            ax.loglog(dts, guide, "--", color=color, linewidth=0.8, alpha=0.7)
    if result.training_dt is not None:
        ax.axvline(result.training_dt, color="k", linestyle=":", label=f"training dt = {result.training_dt:g}")
    ax.set_xlabel("dt")
    ax.set_ylabel(f"{result.error_kind} error")
    ax.set_title(f"convergence on [{result.t0:g}, {result.t_final:g}] (dashed: slope p)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    if math.isfinite(dts.min()):
        ax.set_xlim(dts.min() / 1.5, dts.max() * 1.5)
    return ax
