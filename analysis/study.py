"""The convergence study of learned vector fields: continuous model or discrete map?

A trained vector field G is frozen and evaluated inside every scheme over a ladder of step sizes that holds
the training step dt_train exactly, coarser multiples (4 and 2 dt_train where they divide T) and its
sub-multiples dt_train / 2^k, always to the same final time T. Its error against the exact solution tells:

- a continuous model: the error falls with dt at (about) the evaluation scheme's order, down to a plateau,
  the error of G itself. It can be moved to other schemes: each converges to the same low plateau.
- a discrete map: the error dips at dt_train, where G reproduces the training data (it learned the
  scheme's one-step map, errors included), and rises to a high plateau when dt is refined, since G is not
  the vector field (trained inside forward Euler, G is close to the modified field f + (dt/2) f' f + ...).

Numbers reported per (model, evaluation scheme), with the thresholds that decide the verdict:

- the error judged is by default the RMS error over the trajectory (the error at T is reported too), and its
  size is read against the reference trajectory's RMS size ("x % of the state");
- plateau: geometric mean of the errors at the two finest dt;
- dip depth: err(dt_train) / plateau; below DIP_THRESHOLD = 0.5 the error rises when dt is refined;
- rate: the slope of log err against log dt for dt <= dt_train (the asymptotic side: the coarser rungs are
  pre-asymptotic, there to show the dip and the stability limit), on the points above PLATEAU_FACTOR = 3 x the
  plateau once the curve has flattened (its three finest errors within 10 %) and below half the state's size
  (larger errors are not asymptotic: :data:`dynlearn.analysis.convergence.ASYMPTOTIC_SIZE`), on the asymptotic
  range that :func:`dynlearn.analysis.fit_convergence_rate` finds there (two points suffice); where that gives no
  rate of at least CONVERGING_RATE = 0.5, on the whole ladder's.

Verdicts are three-way, because converging is not the same as converging to the right thing. One threshold
decides what counts: an error is significant above SIGNIFICANT_ERROR = 1 % of the state (the reference
trajectory's RMS size; ``significant_error`` changes it).

- **discrete** ("discrete: overfits dt_train"): the error dips at dt_train and rises to a significant plateau
  when dt is refined. Every model trained inside a scheme of order p learns that scheme's O(dt_train^p) error,
  so a fit that is exact at dt_train (a closed-form linear model on noise-free data) always dips; inside RK4
  the rise is 1e-6 of the state on the oscillator and says nothing about continuity, inside Euler it is 5 %.
  A dip to a plateau below 1 % is judged as the plateau it reaches.
- **continuous, faithful**: the error converges (within a factor 2 of its plateau at every dt <= dt_train,
  or at a rate >= 0.5, or falling step by step, by a factor of 2 or more, where it bends onto its plateau too
  smoothly for a rate) to a plateau that is not significant, or is still falling and already below 1 %: the
  model is a vector field, and in this scheme it is the system's.
- **continuous, another system**: it converges, to a significant plateau: to the solution of x' = G(x),
  which is not the system (G trained inside Euler and moved to RK4: 5 % of the state on the oscillator, 28 %
  on the pendulum; the published point that such a G is useless in another integrator).
- "continuous: converges at order r, no plateau yet" when the error still falls at the finest dt and is
  significant there (the true field in Euler: refine further to judge), and "inconclusive" otherwise (not
  finite, or neither dipping nor converging).

A model's verdict (swap table, JSON) is its least favourable one in the scheme(s) it was trained in; the swap
table gives every scheme's plateau, its size against the state and its kind.

The test and the finding are those of Krishnapriyan, Queiruga, Erichson & Mahoney, "Learning continuous models
for continuous physics", Communications Physics 6 (2023), doi:10.1038/s42005-023-01433-4 (arXiv:2202.08494).
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from dynlearn._checks import as_positive_step, steps_in
from dynlearn.integration.tableaus import get_tableau

from dynlearn.analysis.convergence import ASYMPTOTIC_SIZE, convergence_test
from dynlearn.analysis.rates import SLOPE_TOLERANCE, ConvergenceRate, fit_convergence_rate

__all__ = ["DIP_THRESHOLD", "CONVERGING_RATE", "SIGNIFICANT_ERROR", "VERDICT_KINDS",
           "SchemeEvaluation", "ConvergenceStudy", "convergence_study", "judge_errors", "study_ladder",
           "reference_size"]

#: the dip depth err(dt_train) / plateau below which the error rises when dt is refined from dt_train: the model
#: fits its training step better than the limit dt -> 0 (a discrete map when the plateau is significant)
DIP_THRESHOLD = 0.5
#: a plateau (RMS error once dt is refined) above this fraction of the reference's RMS size is significant: it makes
#: a dip at dt_train a discrete map, and a converging model one of another system
SIGNIFICANT_ERROR = 0.01
#: a fitted rate above this, on the side dt <= dt_train, counts as converging (to the plateau)
CONVERGING_RATE = 0.5
#: the kinds of verdict, from the least favourable to the most
VERDICT_KINDS = ("discrete", "inconclusive", "another system", "converging", "faithful")


@dataclasses.dataclass(frozen=True)
class SchemeEvaluation:
    """One trained model evaluated inside one scheme over the ladder."""

    model: str
    scheme: str
    order: int
    final_errors: tuple[float, ...]
    rms_errors: tuple[float, ...]
    rate: ConvergenceRate | None
    plateau: float
    rms_plateau: float
    error_at_training_dt: float
    dip_depth: float
    verdict: str
    kind: str  # one of VERDICT_KINDS
    relative_plateau: float  # the judged plateau over the reference trajectory's RMS size
    relative_finest: float  # the judged error at the finest dt over the reference trajectory's RMS size

    @property
    def is_discrete(self) -> bool:
        return self.kind == "discrete"

    @property
    def is_continuous(self) -> bool:
        """Converges when dt is refined (faithful, to another system, or not yet at its plateau)."""
        return self.kind in ("faithful", "another system", "converging")

    @property
    def is_faithful(self) -> bool:
        return self.kind == "faithful"

    def panel_label(self) -> str:
        """The verdict in two short lines, for a plot panel."""
        if self.kind == "inconclusive":
            return "inconclusive"
        return f"{_PANEL_TITLES[self.kind]}\n{_percent(self.relative_finest)} of the state at the finest dt"


_KIND_COLOURS = {"discrete": "C3", "another system": "C1", "faithful": "C0", "converging": "C2", "inconclusive": "0.4"}
_PANEL_TITLES = {"discrete": "discrete: overfits dt_train", "faithful": "continuous, faithful",
                 "another system": "continuous, another system", "converging": "converging, no plateau yet"}


def _percent(fraction: float) -> str:
    """A fraction as a percentage with two significant digits: 0.0043 -> '0.43 %'."""
    return f"{100 * fraction:.2g} %"


def study_ladder(t_final: float, training_dt: float, coarser: int = 2, finer: int = 6) -> tuple[int, ...]:
    """Step counts over [0, T]: T / (2^j dt_train) for j = coarser..1 where whole, T / dt_train, and
    2^k T / dt_train for k = 1..finer. The training step is on the ladder exactly."""
    base = steps_in(t_final, training_dt, dt_name="training_dt")
    counts = [base // 2**j for j in range(coarser, 0, -1) if base % 2**j == 0]
    return tuple(counts + [base * 2**k for k in range(finer + 1)])


#: errors within this factor of the plateau are at the plateau, not on the way down to it
PLATEAU_FACTOR = 3.0


def _plateau_reached(errors: np.ndarray) -> bool:
    """The three finest errors agree to 10%: the curve has flattened."""
    finest = errors[-3:]
    return bool(np.all(np.isfinite(finest)) and finest.max() <= 1.1 * finest.min())


def _fit(dts: np.ndarray, errors: np.ndarray, plateau: float, ceiling: float) -> ConvergenceRate | None:
    floor = PLATEAU_FACTOR * plateau if _plateau_reached(errors) else None
    fitted = fit_convergence_rate(dts, errors, floor=floor, ceiling=ceiling, min_points=2)
    return fitted if fitted.found else None


def _falls(errors: np.ndarray) -> bool:
    """The error falls as dt is refined: every step down the ladder lowers it (or raises it by under 10 %), and
    by a factor of 2 or more in all."""
    return bool(np.all(errors[1:] <= 1.1 * errors[:-1]) and errors[-1] * 2 <= errors[0])


def _plateau(errors: np.ndarray) -> float:
    """Geometric mean of the errors at the two finest dt."""
    return float(math.exp(np.mean(np.log(np.maximum(errors[-2:], 1e-300)))))


def _verdict(errors: np.ndarray, base_index: int, rate: ConvergenceRate | None, plateau: float, dip: float,
             relative_plateau: float, relative_finest: float, significant: float) -> tuple[str, str]:
    """(kind, text) of the verdict; see the module docstring."""
    if not np.all(np.isfinite(errors)):
        return "inconclusive", "inconclusive: the error is not finite at some dt (unstable)"
    if dip < DIP_THRESHOLD and not relative_plateau <= significant:
        return "discrete", "discrete: overfits dt_train"
    if dip < DIP_THRESHOLD or np.all(errors[base_index:] <= 2 * plateau):
        how = f"at a plateau of {_percent(relative_plateau)} of the state"
        if dip < DIP_THRESHOLD:
            how += f" (its dip at dt_train is below the {100 * significant:g} % that counts)"
        elif _plateau_reached(errors):
            how += " for dt <= dt_train"
    elif (rate is not None and rate.rate >= CONVERGING_RATE) or _falls(errors[base_index:]):
        order = f"at order {rate.rate:.1f}" if rate is not None and rate.rate >= CONVERGING_RATE else (
            "(no asymptotic order on this ladder)")
        if _plateau_reached(errors):
            how = f"converges {order} to a plateau of {_percent(relative_plateau)} of the state"
        elif relative_finest <= significant:
            how = f"converges {order} ({_percent(relative_finest)} of the state at the finest dt)"
        else:
            return "converging", (f"continuous: converges {order}, no plateau yet "
                                  f"({_percent(relative_finest)} of the state at the finest dt)")
    else:
        return "inconclusive", "inconclusive"
    if relative_plateau <= significant or (not _plateau_reached(errors) and relative_finest <= significant):
        return "faithful", f"continuous, faithful: {how}"
    return "another system", f"continuous, another system: {how}"


@dataclasses.dataclass
class ConvergenceStudy:
    """Every model in every scheme over one ladder; tables, verdicts, plots and JSON."""

    system: str
    training_dt: float
    t_final: float
    n_steps: tuple[int, ...]
    dts: tuple[float, ...]
    schemes: tuple[str, ...]
    models: tuple[str, ...]
    training_schemes: dict[str, tuple[str, ...]]
    evaluations: dict[tuple[str, str], SchemeEvaluation]
    judged_on: str = "rms"
    significant_error: float = SIGNIFICANT_ERROR

    def evaluation(self, model: str, scheme: str) -> SchemeEvaluation:
        return self.evaluations[(model, get_tableau(scheme).name)]

    def model_verdict(self, model: str) -> str:
        """The verdict in the scheme(s) the model was trained in (the least favourable one), or, for a model
        trained in none (the true field), in the highest-order scheme."""
        judged = self._least_favourable(model)
        return judged.verdict if judged else "not evaluated in its training scheme"

    def model_kind(self, model: str) -> str:
        """The kind (one of VERDICT_KINDS) of :meth:`model_verdict`."""
        judged = self._least_favourable(model)
        return judged.kind if judged else "inconclusive"

    def _least_favourable(self, model: str) -> SchemeEvaluation | None:
        trained = self.training_schemes.get(model) or (max(self.schemes, key=lambda s: get_tableau(s).order),)
        judged = [self.evaluations[(model, s)] for s in trained if (model, s) in self.evaluations]
        return min(judged, key=lambda e: VERDICT_KINDS.index(e.kind)) if judged else None

    def summary_table(self) -> str:
        """Markdown: per model and evaluation scheme, rate (window), plateau, dip depth, verdict."""
        lines = [
            "| model | trained in | evaluated in | rate (window of dt) | plateau at T | RMS plateau | "
            "err(dt_train) / plateau | verdict |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for model in self.models:
            trained = "+".join(self.training_schemes.get(model, ())) or "-"
            for scheme in self.schemes:
                e = self.evaluations[(model, scheme)]
                rate = "n/a" if e.rate is None else (
                    f"{e.rate.rate:.2f} ({e.rate.window[0]:.3g}..{e.rate.window[1]:.3g})")
                lines.append(f"| {model} | {trained} | {scheme} (p={e.order}) | {rate} | {e.plateau:.2e} | "
                             f"{e.rms_plateau:.2e} | {e.dip_depth:.2g} | {e.verdict} |")
        return "\n".join(lines)

    def markdown_sections(self) -> list[str]:
        """Report lines: the verdicts (swap table) and every model in every scheme (summary table), with headings."""
        return ["## Verdicts (RMS plateau per evaluation scheme; * = training scheme)", "", self.swap_table(), "",
                "## Every model in every scheme", "", self.summary_table()]

    def swap_table(self) -> str:
        """Markdown: every model (rows) in every scheme (columns): the RMS plateau, its size against the state and
        the kind of verdict there, the training scheme starred; then the model's verdict."""
        header = "| model | " + " | ".join(self.schemes) + " | verdict |"
        lines = [header, "| --- |" + " --- |" * (len(self.schemes) + 1)]
        for model in self.models:
            cells = []
            for scheme in self.schemes:
                e = self.evaluations[(model, scheme)]
                star = "*" if scheme in self.training_schemes.get(model, ()) else ""
                cells.append(f"{e.rms_plateau:.2e}{star} ({_percent(e.relative_plateau)}, {e.kind})")
            lines.append(f"| {model} | " + " | ".join(cells) + f" | {self.model_verdict(model)} |")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        def rate(r: ConvergenceRate | None):
            if r is None:
                return None
            return {"rate": r.rate, "standard_error": r.standard_error, "window": list(r.window),
                    "confidence_interval": list(r.confidence_interval), "used": list(r.used)}

        return {
            "system": self.system,
            "training_dt": self.training_dt,
            "t_final": self.t_final,
            "n_steps": list(self.n_steps),
            "dts": list(self.dts),
            "schemes": list(self.schemes),
            "judged_on": self.judged_on,
            "thresholds": {"dip": DIP_THRESHOLD, "converging_rate": CONVERGING_RATE,
                           "significant_error": self.significant_error,
                           "slope_tolerance": SLOPE_TOLERANCE, "plateau_factor": PLATEAU_FACTOR},
            "models": {
                model: {
                    "trained_in": list(self.training_schemes.get(model, ())),
                    "verdict": self.model_verdict(model),
                    "kind": self.model_kind(model),
                    "evaluations": {
                        scheme: {
                            "final_errors": list(e.final_errors),
                            "rms_errors": list(e.rms_errors),
                            "rate": rate(e.rate),
                            "plateau": e.plateau,
                            "rms_plateau": e.rms_plateau,
                            "error_at_training_dt": e.error_at_training_dt,
                            "dip_depth": e.dip_depth,
                            "relative_plateau": e.relative_plateau,
                            "relative_finest": e.relative_finest,
                            "kind": e.kind,
                            "verdict": e.verdict,
                        }
                        for scheme in self.schemes
                        for e in [self.evaluations[(model, scheme)]]
                    },
                }
                for model in self.models
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=float)

    def plot_grid(self):
        """A grid of log-log plots: one row per model, one column per evaluation scheme; error at T against
        dt, the training dt dotted, the true field's error (when present) in grey. Returns the figure."""
        import matplotlib.pyplot as plt

        rows, columns = len(self.models), len(self.schemes)
        figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False,
                                    sharex=True, sharey=True)
        dts = np.asarray(self.dts)
        baseline = "true field" if "true field" in self.models else None

        def judged(evaluation: SchemeEvaluation) -> tuple[float, ...]:
            return evaluation.rms_errors if self.judged_on == "rms" else evaluation.final_errors

        for i, model in enumerate(self.models):
            for j, scheme in enumerate(self.schemes):
                ax = axes[i][j]
                e = self.evaluations[(model, scheme)]
                if baseline and model != baseline:
                    ax.loglog(dts, judged(self.evaluations[(baseline, scheme)]), "-", color="0.7", lw=1)
                ax.loglog(dts, judged(e), "o-", ms=3, color=_KIND_COLOURS[e.kind])
                ax.axvline(self.training_dt, color="k", ls=":", lw=0.8)
                ax.set_title(f"{model} in {scheme}", fontsize=8)
                ax.text(0.03, 0.04, e.panel_label(), transform=ax.transAxes, fontsize=6, color=_KIND_COLOURS[e.kind],
                        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1})
                if i == rows - 1:
                    ax.set_xlabel("dt")
                if j == 0:
                    ax.set_ylabel("RMS error" if self.judged_on == "rms" else "error at T")
                ax.grid(True, which="both", alpha=0.2)
        figure.suptitle(f"{self.system}: learned fields in every scheme (dotted: training dt; grey line: true field)\n"
                        f"red: discrete, orange: another system, blue: faithful, green: still converging",
                        fontsize=9)
        figure.tight_layout()
        return figure


def convergence_study(
    vector_fields: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]],
    reference: Callable[[torch.Tensor], torch.Tensor] | torch.Tensor,
    x0: torch.Tensor,
    *,
    training_dt: float,
    t_final: float,
    schemes: Sequence[str] = ("euler", "midpoint", "rk4"),
    training_schemes: Mapping[str, Sequence[str]] | None = None,
    coarser: int = 2,
    finer: int = 6,
    system: str = "",
    judged_on: str = "rms",
    significant_error: float = SIGNIFICANT_ERROR,
    progress: bool = False,
) -> ConvergenceStudy:
    """Evaluate every field in ``vector_fields`` in every scheme over :func:`study_ladder` and judge it.

    Args:
        vector_fields: name -> f(t, x); include the true field (named "true field") as the baseline.
        reference: the exact solution from x0, ``reference(times) -> (len(times), *x0.shape)``, or a recorded
            trajectory ``(m + 1, *x0.shape)`` on [0, T] (data: every rung of the ladder must divide m or be a
            multiple of it, which holds when dt_train is a power-of-two multiple of the sampling step; rungs
            finer than the data are judged at its samples, see :func:`convergence_test`).
        x0: the initial state of the evaluation trajectory (float64).
        training_dt: the step the models were trained at; t_final: T, a multiple of it.
        training_schemes: name -> schemes the model was trained in (for the summary and the model verdict).
        judged_on: which error the rate, dip and verdict use: "rms" (default; sqrt of the mean squared error
            over the trajectory, normalised by sqrt(N)) or "final" (the error at T). Both are reported. The
            final-time error of a large-amplitude pendulum has a long pre-asymptotic range and dips where
            phase errors cancel; the RMS error settles at the asymptotic order sooner.
        significant_error: a dip at dt_train makes a model discrete only when its plateau exceeds this fraction
            of the reference trajectory's size (RMS over the training-step grid; the final state's norm when
            ``judged_on="final"``). 0 calls every dip discrete.
    """
    if not (isinstance(significant_error, (int, float)) and 0.0 <= significant_error < math.inf):
        raise ValueError(f"significant_error must be a finite number >= 0, got {significant_error!r}")
    if judged_on not in ("rms", "final"):
        raise ValueError(f"judged_on must be 'rms' or 'final', got {judged_on!r}")
    training_dt = as_positive_step("training_dt", training_dt)
    counts = study_ladder(t_final, training_dt, coarser, finer)
    names = tuple(get_tableau(s).name for s in schemes)
    base = steps_in(t_final, training_dt, dt_name="training_dt")
    size = reference_size(reference, x0, base, training_dt, judged_on)
    evaluations: dict[tuple[str, str], SchemeEvaluation] = {}
    for model, field in vector_fields.items():
        common = dict(reference=reference, schemes=names, n_steps=counts, training_dt=training_dt, floor=None,
                      min_points=2, progress=progress)  # its rates are not used: see _fit
        final = convergence_test(field, x0, t_final, error="final", **common)
        rms = convergence_test(field, x0, t_final, error="rms", **common)
        for scheme in names:
            evaluations[(model, scheme)] = judge_errors(
                model, scheme, final.dts, final.errors[scheme], rms.errors[scheme], training_dt=training_dt,
                size=size, judged_on=judged_on, significant_error=significant_error)
    return ConvergenceStudy(
        system=system, training_dt=training_dt, t_final=float(t_final), n_steps=counts,
        dts=tuple(t_final / c for c in counts), schemes=names, models=tuple(vector_fields),
        training_schemes={k: tuple(get_tableau(s).name for s in v) for k, v in (training_schemes or {}).items()},
        evaluations=evaluations,
        judged_on=judged_on,
        significant_error=float(significant_error),
    )


def judge_errors(
    model: str,
    scheme: str,
    dts: Sequence[float],
    final_errors: Sequence[float],
    rms_errors: Sequence[float],
    *,
    training_dt: float,
    size: float,
    judged_on: str = "rms",
    significant_error: float = SIGNIFICANT_ERROR,
) -> SchemeEvaluation:
    """The verdict on one model in one scheme from its errors over a ladder (the rules of the module docstring).

    ``dts`` is the ladder, coarsest first, holding ``training_dt`` exactly; ``final_errors`` and ``rms_errors``
    the errors at T and over the trajectory at each dt; ``size`` the reference trajectory's size in the judged
    error's measure (RMS of ||x(t_k)|| over the training-step grid, or ||x(T)||). :func:`convergence_study` uses it
    on its own ladder; a sweep over many models uses it on errors it computed in one batch.
    """
    dts = np.asarray(dts, dtype=float)
    if dts.ndim != 1 or len(dts) < 2 or np.any(np.diff(dts) >= 0):
        raise ValueError(f"dts must be a ladder of at least two step sizes, coarsest first, got {dts.tolist()}")
    matches = np.flatnonzero(np.isclose(dts, training_dt, rtol=1e-9, atol=0.0))
    if matches.size != 1:
        raise ValueError(f"the ladder must hold training_dt = {training_dt:g} exactly once, got {dts.tolist()}")
    base_index = int(matches[0])
    errors, rms_errors = np.asarray(final_errors, dtype=float), np.asarray(rms_errors, dtype=float)
    if errors.shape != dts.shape or rms_errors.shape != dts.shape:
        raise ValueError(f"final_errors and rms_errors must have one value per dt ({len(dts)})")
    judged = rms_errors if judged_on == "rms" else errors
    plateau = _plateau(errors)
    rms_plateau = _plateau(rms_errors)
    judged_plateau = rms_plateau if judged_on == "rms" else plateau
    dip = float(judged[base_index] / judged_plateau) if judged_plateau > 0 else math.inf
    ceiling = ASYMPTOTIC_SIZE * size if size > 0 else None  # errors that large are pre-asymptotic
    fitted = _fit(dts[base_index:], judged[base_index:], judged_plateau, ceiling)
    if fitted is None or fitted.rate < CONVERGING_RATE:  # too few points above the plateau there
        fitted = _fit(dts, judged, judged_plateau, ceiling) or fitted
    relative_plateau = judged_plateau / size if size > 0 else math.inf
    relative_finest = float(judged[-1]) / size if size > 0 else math.inf
    kind, verdict = _verdict(judged, base_index, fitted, judged_plateau, dip, relative_plateau, relative_finest,
                             significant_error)
    return SchemeEvaluation(
        model=model, scheme=scheme, order=get_tableau(scheme).order,
        final_errors=tuple(errors.tolist()), rms_errors=tuple(rms_errors.tolist()), rate=fitted,
        plateau=plateau, rms_plateau=rms_plateau, error_at_training_dt=float(judged[base_index]),
        dip_depth=dip, verdict=verdict, relative_plateau=relative_plateau, kind=kind,
        relative_finest=relative_finest,
    )


def reference_size(reference: Callable | torch.Tensor, x0: torch.Tensor, base: int, training_dt: float,
                    judged_on: str) -> float:
    """The reference trajectory's size in the error's own measure: the RMS of ||x(t_k)|| over the training-step
    grid k = 1..base (or ||x(T)|| when the final error is judged)."""
    if isinstance(reference, torch.Tensor):
        states = reference[:: (reference.shape[0] - 1) // base] if reference.shape[0] - 1 >= base else reference
    else:
        times = torch.arange(base + 1, dtype=torch.float64) * training_dt
        states = reference(times.to(dtype=x0.real.dtype if x0.is_complex() else x0.dtype, device=x0.device))
    norms = torch.linalg.vector_norm(states[1:].reshape(states.shape[0] - 1, -1), dim=1)
    return float(norms[-1]) if judged_on == "final" else float(torch.sqrt(torch.mean(norms**2)))
