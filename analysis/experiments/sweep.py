"""The learned-integrator experiment at its published scale: how the answer scales with the training step.

``dynlearn study`` asks, for one training step, whether a field G trained inside a scheme is a continuous model or
a discrete map. This sweep asks how that answer scales: G (a 2-50-2 tanh MLP) is trained inside each training
scheme at each dt_train, for several seeds (optionally widths, amounts of data and noise levels), and every
trained G is evaluated in every evaluation scheme over one ladder of steps, with the instrument's plateaus, dips,
rates and three-way verdicts (:func:`dynlearn.analysis.study.judge_errors`).

The default grid is the authors' sweep (Krishnapriyan, Queiruga, Erichson & Mahoney, "Learning continuous models
for continuous physics", Communications Physics 6, 2023; their Aug-2020 ``do_all.py``): euler, midpoint, rk4 x
dt_train in {0.4, 0.2, 0.1, 0.01, 0.001} x 5 seeds = 75 trainings, each on one 200-time-unit exact trajectory of
the pendulum (g = 9.81, L = 1) from theta0 = 3 pi / 4 at rest, minibatches of 128 one-step pairs, and each G
evaluated from the same state to T = 2 at dt from 1.0 down to 1e-5 (two decades below the smallest dt_train).
Their published medians (error at T = 2): the plateau, the learned field's own error as dt -> 0, scales like
dt_train^p of the training scheme until an optimisation floor.

Training budget. The authors ran 50 000 Adam iterations at a constant rate 1e-4 (``SweepGrid.authors_schedule``).
The default here, 12 000 iterations with the rate decaying exponentially from 1e-2 to 1e-5, runs the whole default
sweep in 3.7 to 6.5 minutes on two CPU cores (224 s and 385 s, one machine under two loads); it reaches the
plateaus the training scheme's error sets (twice the iterations move them by under 12 %), while the ~1e-3 floor
that midpoint and rk4 reach at small dt_train is the optimisation's and falls with more iterations (README.md gives
the figures).

How it runs. Cells that share an architecture (width) and a training scheme form groups of at most
``group_size`` members, trained as one ensemble (:func:`dynlearn.fields.train_ensemble`: stacked parameters, each
member with its own data, dt, seed and early stop; a member ends where training it alone ends) and evaluated as
one batch (:func:`dynlearn.analysis.ensemble_convergence.ensemble_ladder_errors`). Groups are independent tasks
(:func:`dynlearn.tasks.run_tasks`: this process, a local process pool, or Ray). Every finished cell is written
atomically (``cells/KEY.json`` and the trained network ``models/KEY.pt``); a group in progress checkpoints under
``checkpoints/``; rerunning the same command skips finished cells and resumes unfinished groups.
"""

from __future__ import annotations

import dataclasses
import contextlib
import hashlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from dynlearn._checks import (as_flag, as_integer, as_learning_rate, as_number_in, as_positive_number, check_allocation,
                             count_text, steps_in)
from dynlearn._files import atomic_write, folder_lock, load_checkpoint
from dynlearn.datasets.sampling import IrregularSampling
from dynlearn.fields.ensemble import EnsembleMLP, EnsembleVectorField, ensemble_embedded_loss
from dynlearn.fields.models import MLP
from dynlearn.fields.training import TrainingHistory, TrainingSettings, train_ensemble
from dynlearn.integration.tableaus import get_tableau
from dynlearn.progress import progress, progress_mode
from dynlearn.systems import make_system
from dynlearn.tasks import TaskResources, check_backend, run_tasks

from dynlearn.analysis.ensemble_convergence import ensemble_ladder_errors
from dynlearn.analysis.rates import PowerLawFit, fit_power_law
from dynlearn.analysis.study import CONVERGING_RATE, VERDICT_KINDS, judge_errors, reference_size

__all__ = ["SweepGrid", "SweepCell", "SweepResult", "run_sweep", "evaluation_ladder", "load_sweep",
           "AUTHORS_PLATEAUS", "AUTHORS_SCHEDULE", "SWEEP_SYSTEMS", "DEFAULT_SWEEP_SYSTEM"]

#: the authors' published medians (error at T = 2, 5 seeds, 50 000 iterations): plateau at dt_train 0.1 / 0.01 /
#: 0.001, and (error at dt_train = 0.4, plateau) of the dip there; quoted in the report beside what was measured
AUTHORS_PLATEAUS = {
    "euler": {"plateaus": (2.05, 0.29, 0.021), "dip_at_0.4": (1.5e-2, 3.96)},
    "midpoint": {"plateaus": (0.045, 7.8e-4, 7.1e-3), "dip_at_0.4": (5.5e-3, 0.47)},
    "rk4": {"plateaus": (1.5e-3, 7.5e-4, 2.6e-3), "dip_at_0.4": (2.1e-3, 9.2e-2)},
}
#: the authors' training budget: 50 000 Adam iterations at a constant rate 1e-4
AUTHORS_SCHEDULE = {"iterations": 50_000, "learning_rate": 1e-4, "final_learning_rate": 1e-4}
#: the systems a sweep runs on by name: their parameters and the initial state of training data and evaluation
SWEEP_SYSTEMS: dict[str, tuple[dict[str, float], tuple[float, ...]]] = {
    "pendulum": ({"gravity": 9.81, "length": 1.0}, (3 * math.pi / 4, 0.0)),
    "oscillator": ({"frequency": 1.0, "damping_ratio": 0.0}, (1.0, 0.0)),
}
#: the system ``dynlearn sweep`` runs on without ``--system`` (the authors' sweep)
DEFAULT_SWEEP_SYSTEM = "pendulum"
_FORMAT = "dynlearn-sweep"
_VERSION = 1


def _tuple_of(name: str, values: Sequence[Any]) -> tuple:
    values = tuple(values)
    if not values:
        raise ValueError(f"{name} must hold at least one value, got an empty axis")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} repeats a value: {list(values)}")
    return values


@dataclasses.dataclass(frozen=True)
class SweepGrid:
    """The sweep: its axes (every combination is a cell) and what every cell shares.

    Axes: ``training_dts``, ``training_schemes`` (each a group of schemes whose losses are summed on one G, e.g.
    ``("midpoint", "rk4")``), ``seeds``, ``widths`` (hidden units), ``training_times`` (time units of the one
    training trajectory: the amount of data, training_time / dt_train pairs), ``noise_levels`` (relative
    Gaussian noise on the training trajectory: each component plus noise x its RMS over the trajectory x N(0, 1),
    drawn from the cell's seed) and ``step_spreads`` (irregular sampling of the training trajectory: 0 samples it
    every dt_train; s > 0 takes steps uniform in [dt_train (1 - s), dt_train (1 + s)], drawn from the cell's seed,
    each pair trained with its own step; the evaluation ladder stays regular).

    Shared: the system, its parameters and the initial state (of the training trajectory and of the evaluation);
    ``t_final`` T of the evaluation; ``evaluation_schemes``; the ladder's ``finest_dt`` (default: the smallest
    dt_train / 100) and ``coarsest_dt`` (default: the smallest of 1, 2, 5 x 10^k at or above twice the largest
    dt_train); the network's ``depth`` and activation (tanh); training: ``iterations``, Adam's rate decaying from
    ``learning_rate`` to ``final_learning_rate``, ``batch_size`` one-step pairs per iteration, early stop after
    ``patience`` iterations without a relative improvement of ``min_improvement`` (None: no early stop);
    ``group_size``: most members trained together.
    """

    system: str = "pendulum"
    parameters: dict[str, float] = dataclasses.field(default_factory=lambda: {"gravity": 9.81, "length": 1.0})
    initial_state: tuple[float, ...] = (3 * math.pi / 4, 0.0)
    training_dts: tuple[float, ...] = (0.4, 0.2, 0.1, 0.01, 0.001)
    training_schemes: tuple[tuple[str, ...], ...] = (("euler",), ("midpoint",), ("rk4",))
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    widths: tuple[int, ...] = (50,)
    training_times: tuple[float, ...] = (200.0,)
    noise_levels: tuple[float, ...] = (0.0,)
    step_spreads: tuple[float, ...] = (0.0,)
    evaluation_schemes: tuple[str, ...] = ("euler", "midpoint", "rk4")
    t_final: float = 2.0
    finest_dt: float | None = None
    coarsest_dt: float | None = None
    depth: int = 1
    iterations: int = 12_000
    learning_rate: float = 1e-2
    final_learning_rate: float = 1e-5
    batch_size: int = 128
    patience: int | None = None
    min_improvement: float = 1e-4
    group_size: int = 25

    def __post_init__(self) -> None:
        """Every axis and value checked before any work, with a message naming it."""
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        set_("training_dts", _tuple_of("training_dts", [as_positive_number("training_dts", dt)
                                                        for dt in self.training_dts]))
        schemes = []
        for group in _tuple_of("training_schemes", self.training_schemes):
            group = (group,) if isinstance(group, str) else tuple(group)
            if not group:
                raise ValueError("training_schemes holds an empty group; name at least one scheme in each")
            names = tuple(_explicit_scheme("training_schemes", s) for s in group)
            if len(set(names)) != len(names):
                raise ValueError(f"training_schemes: the group {'+'.join(group)} repeats a scheme")
            schemes.append(names)
        set_("training_schemes", _tuple_of("training_schemes", schemes))
        set_("evaluation_schemes", _tuple_of("evaluation_schemes", [_explicit_scheme("evaluation_schemes", s)
                                                                    for s in self.evaluation_schemes]))
        set_("seeds", _tuple_of("seeds", [as_integer("seeds", s, minimum=0, maximum=2**63 - 1) for s in self.seeds]))
        set_("widths", _tuple_of("widths", [as_integer("widths", w) for w in self.widths]))
        set_("training_times", _tuple_of("training_times", [as_positive_number("training_times", t)
                                                            for t in self.training_times]))
        set_("noise_levels", _tuple_of("noise_levels", [as_number_in("noise_levels", n, 0.0, math.inf)
                                                        for n in self.noise_levels]))
        set_("step_spreads", _tuple_of("step_spreads", [as_number_in("step_spreads", v, 0.0, 1.0)
                                                        for v in self.step_spreads]))
        set_("t_final", as_positive_number("t_final", self.t_final))
        for dt in self.training_dts:
            for name, interval in [("t_final", self.t_final)] + [("training_times", t) for t in self.training_times]:
                count = round(interval / dt)
                if count < 1 or not math.isclose(count * dt, interval, rel_tol=1e-9):
                    raise ValueError(f"training_dts: {dt:g} does not divide {name} {interval:g} into whole steps "
                                     f"({interval:g} / {dt:g} = {interval / dt:.6g}); choose dt_train = {name} / n")
        for name in ("depth", "iterations", "batch_size", "group_size"):
            as_integer(name, getattr(self, name))
        if self.patience is not None:
            as_integer("patience (or None: no early stop)", self.patience)
        for name in ("learning_rate", "final_learning_rate"):
            as_learning_rate(name, getattr(self, name))
        as_number_in("min_improvement", self.min_improvement, 0.0, 1.0)
        if self.finest_dt is not None:
            as_positive_number("finest_dt", self.finest_dt)
            if not self.finest_dt < min(self.training_dts):
                raise ValueError(f"finest_dt must be below the smallest training dt {min(self.training_dts):g}, "
                                 f"got {self.finest_dt:g}")
        if self.coarsest_dt is not None:
            as_positive_number("coarsest_dt", self.coarsest_dt)
            if not self.coarsest_dt >= max(self.training_dts):
                raise ValueError(f"coarsest_dt must be at least the largest training dt {max(self.training_dts):g}, "
                                 f"got {self.coarsest_dt:g}")
        system = make_system(self.system, **self.parameters)  # an unknown system or parameter fails here
        set_("parameters", dict(system.parameters()))
        state = tuple(float(v) for v in self.initial_state)
        if len(state) != math.prod(system.state_shape) or not all(math.isfinite(v) for v in state):
            raise ValueError(f"initial_state must be {math.prod(system.state_shape)} finite numbers "
                             f"({', '.join(system.state_names)}) for {self.system}, got {self.initial_state!r}")
        set_("initial_state", state)
        evaluation_ladder(self)  # the ladder must exist

    @classmethod
    def for_system(cls, system: str, **changes: Any) -> "SweepGrid":
        """The grid for a system of :data:`SWEEP_SYSTEMS` (its parameters and initial state), with ``changes``."""
        if system not in SWEEP_SYSTEMS:
            raise ValueError(f"system must be one of {', '.join(SWEEP_SYSTEMS)} for a sweep, got {system!r}")
        parameters, initial_state = SWEEP_SYSTEMS[system]
        return cls(**{"system": system, "parameters": dict(parameters), "initial_state": initial_state, **changes})

    @classmethod
    def authors_schedule(cls, **changes: Any) -> "SweepGrid":
        """The authors' training budget: 50 000 Adam iterations at a constant rate 1e-4 (about 4x the default's
        time)."""
        return cls(**{**AUTHORS_SCHEDULE, **changes})

    def cells(self) -> list["SweepCell"]:
        """Every combination of the axes, in a fixed order."""
        return [SweepCell(dt, schemes, seed, width, time_units, noise, spread)
                for schemes in self.training_schemes for width in self.widths for time_units in self.training_times
                for noise in self.noise_levels for spread in self.step_spreads for dt in self.training_dts
                for seed in self.seeds]

    def shared(self) -> dict[str, Any]:
        """What every cell shares (not an axis), the evaluation ladder included: two grids may share cells only when
        these agree."""
        axes = {"training_dts", "training_schemes", "seeds", "widths", "training_times", "noise_levels", "step_spreads",
                "group_size"}
        shared = {k: v for k, v in self.to_dict().items() if k not in axes}
        shared["evaluation_ladder"] = list(evaluation_ladder(self))  # a new dt_train adds its rungs: not shared
        return shared

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["training_schemes"] = [list(g) for g in self.training_schemes]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "SweepGrid":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"a sweep grid has no field(s) {sorted(unknown)}")
        return cls(**{k: tuple(tuple(g) for g in v) if k == "training_schemes" else
                      (tuple(v) if isinstance(v, list) else v) for k, v in values.items()})


def _explicit_scheme(axis: str, scheme: str) -> str:
    try:
        tableau = get_tableau(scheme)
    except (KeyError, ValueError) as error:
        raise ValueError(f"{axis}: {error.args[0] if error.args else error}") from None
    if not tableau.is_explicit:
        raise ValueError(f"{axis}: {tableau.name} is implicit; a sweep trains and evaluates inside explicit schemes")
    return tableau.name


@dataclasses.dataclass(frozen=True)
class SweepCell:
    """One training: G of ``width`` trained inside ``schemes`` at ``training_dt`` with ``seed`` on
    ``training_time`` time units of data with relative ``noise``, sampled every dt_train (``spread`` 0) or with
    steps uniform in dt_train (1 +- spread)."""

    training_dt: float
    schemes: tuple[str, ...]
    seed: int
    width: int
    training_time: float
    noise: float
    spread: float = 0.0

    @property
    def key(self) -> str:
        """A file name that says what the cell is (a sweep from before the spread axis keeps its names)."""
        return (f"{'+'.join(self.schemes)}_dt{self.training_dt:g}_seed{self.seed}_width{self.width}"
                f"_time{self.training_time:g}_noise{self.noise:g}" + (f"_spread{self.spread:g}" if self.spread else ""))

    @property
    def home_scheme(self) -> str:
        """The training scheme of highest order: where the cell's plateau and dip are read."""
        return max(self.schemes, key=lambda s: get_tableau(s).order)

    def to_dict(self) -> dict[str, Any]:
        return {"training_dt": self.training_dt, "schemes": list(self.schemes), "seed": self.seed,
                "width": self.width, "training_time": self.training_time, "noise": self.noise, "spread": self.spread}


def _one_two_five(low: float, high: float) -> list[float]:
    values = []
    for exponent in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 2):
        for mantissa in (1, 2, 5):
            value = float(f"{mantissa}e{exponent}")
            if low * (1 - 1e-9) <= value <= high * (1 + 1e-9):
                values.append(value)
    return values


def evaluation_ladder(grid: SweepGrid) -> tuple[int, ...]:
    """The step counts N (dt = T / N) every G is evaluated at, coarsest first: the 1-2-5 values of each decade from
    ``coarsest_dt`` down to ``finest_dt``, twice the largest dt_train, every dt_train and its halves and quarters,
    each kept where it divides T into whole steps (every dt_train does: the grid checks it). At least one step
    lies above the largest dt_train (the dip needs a coarser side)."""
    finest = grid.finest_dt if grid.finest_dt is not None else min(grid.training_dts) / 100
    if grid.coarsest_dt is not None:
        coarsest = grid.coarsest_dt
    else:
        coarsest = min(v for v in _one_two_five(max(grid.training_dts), 100 * max(grid.training_dts))
                       if v >= 2 * max(grid.training_dts) * (1 - 1e-9))
    candidates = (_one_two_five(finest, coarsest) + [dt / 2**k for dt in grid.training_dts for k in range(3)]
                  + [2 * max(grid.training_dts)])
    counts = set()
    for dt in candidates:
        if not finest * (1 - 1e-9) <= dt <= coarsest * (1 + 1e-9):
            continue
        count = round(grid.t_final / dt)
        if count >= 1 and math.isclose(count * dt, grid.t_final, rel_tol=1e-9):
            counts.add(count)
    for dt in grid.training_dts:
        counts.add(round(grid.t_final / dt))
    if grid.t_final / min(counts) <= max(grid.training_dts) * (1 + 1e-9):
        raise ValueError(f"no evaluation step above the largest training dt {max(grid.training_dts):g} divides t_final "
                         f"= {grid.t_final:g} (up to coarsest_dt {coarsest:g}); make t_final a larger multiple of it")
    if len(counts) < 3:
        raise ValueError(f"the evaluation ladder from {coarsest:g} to {finest:g} has fewer than 3 steps that divide "
                         f"t_final = {grid.t_final:g}; widen it (finest_dt, coarsest_dt)")
    return tuple(sorted(counts))


# ---------------------------------------------------------------------------------------------------------------
# one group: train as an ensemble, evaluate as one batch (runs wherever the backend puts it)


@dataclasses.dataclass(frozen=True)
class _GroupTask:
    grid: SweepGrid
    cells: tuple[SweepCell, ...]
    checkpoint: str | None
    device: str
    show_progress: bool
    compile: bool = False


def _system_and_reference(grid: SweepGrid):
    system = make_system(grid.system, **grid.parameters)
    x0 = torch.tensor(grid.initial_state, dtype=torch.float64).reshape(system.state_shape)
    if system.has_solution:
        return system, x0, lambda times: system.solution(x0, times)
    return system, x0, lambda times: system.numerical_solution(x0, times)


def _training_data(cell: SweepCell, reference) -> tuple[torch.Tensor, torch.Tensor]:
    """The cell's training trajectory (n + 1, d): exact, plus relative Gaussian noise drawn from its seed; and the
    step of each of its n pairs (dt_train, or with a spread, steps uniform in dt_train (1 +- spread) drawn from a
    generator seeded by the cell's seed)."""
    if cell.spread:
        drawn = IrregularSampling("random_steps", cell.spread, cell.seed).draw(1, cell.training_dt,
                                                                              cell.training_time)[0]
        times = drawn[torch.isfinite(drawn)]
    else:
        times = torch.arange(steps_in(cell.training_time, cell.training_dt) + 1, dtype=torch.float64) * cell.training_dt
    n = times.shape[0] - 1
    trajectory = reference(times).reshape(n + 1, -1)
    if cell.noise > 0:
        generator = torch.Generator().manual_seed(cell.seed)
        scale = torch.sqrt(torch.mean(trajectory**2, dim=0))
        trajectory = trajectory + cell.noise * scale * torch.randn(trajectory.shape, generator=generator,
                                                                   dtype=torch.float64)
    return trajectory, times.diff()


def _network(cell: SweepCell, dimension: int, depth: int) -> MLP:
    """G's initial weights: ``torch.manual_seed(seed); MLP(d, d, width, depth)`` in float64, as a solo run."""
    torch.manual_seed(cell.seed)
    return MLP(dimension, dimension, cell.width, depth).to(torch.float64)


def train_and_evaluate_group(task: _GroupTask) -> list[dict[str, Any]]:
    """Train the task's cells as one ensemble (resuming from its checkpoint), evaluate them as one batch, judge
    them; one result dict per cell (its trained network's state included)."""
    grid, cells = task.grid, task.cells
    device = torch.device(task.device)
    system, x0, reference = _system_and_reference(grid)
    dimension = x0.numel()
    data = [_training_data(cell, reference) for cell in cells]
    longest = max(t.shape[0] - 1 for t, _ in data)
    starts = torch.zeros(len(cells), longest, dimension, dtype=torch.float64)
    successors = torch.zeros_like(starts)
    # each pair's step (padding: the cell's dt_train, never read); one dt per member when no cell has a spread
    steps = torch.tensor([[cell.training_dt] * longest for cell in cells], dtype=torch.float64)
    counts = []
    for m, (trajectory, pair_steps) in enumerate(data):
        starts[m, :trajectory.shape[0] - 1], successors[m, :trajectory.shape[0] - 1] = trajectory[:-1], trajectory[1:]
        steps[m, :pair_steps.shape[0]] = pair_steps
        counts.append(trajectory.shape[0] - 1)
    member_steps = steps if any(cell.spread for cell in cells) else [c.training_dt for c in cells]
    ensemble = EnsembleMLP.from_networks([_network(cell, dimension, grid.depth) for cell in cells]).to(device)
    schemes = cells[0].schemes
    label = f"{'+'.join(schemes)} width {cells[0].width} ({len(cells)} models)"
    settings = [TrainingSettings(iterations=grid.iterations, learning_rate=grid.learning_rate,
                                 final_learning_rate=grid.final_learning_rate, batch_size=grid.batch_size,
                                 patience=grid.patience or grid.iterations, min_improvement=grid.min_improvement,
                                 seed=cell.seed, checkpoint_every=500, progress=task.show_progress,
                                 description=f"training {label}", compile=task.compile) for cell in cells]
    trained = Path(task.checkpoint + ".trained") if task.checkpoint else None
    if trained is not None and trained.exists():  # killed during the evaluation: the training is done
        saved = load_checkpoint(trained, ("ensemble", "histories"), "a trained ensemble", map_location=device)
        ensemble.load_state_dict(saved["ensemble"])
        histories = [TrainingHistory(**h) for h in saved["histories"]]
    else:
        loss = ensemble_embedded_loss(ensemble, starts.to(device), successors.to(device),
                                      member_steps, schemes, counts)
        histories = train_ensemble(ensemble, loss, counts, settings, checkpoint=task.checkpoint)
        if trained is not None:
            state = {"ensemble": ensemble.state_dict(), "histories": [h.to_dict() for h in histories]}
            atomic_write(trained, lambda p: torch.save(state, p))
    ensemble.requires_grad_(False)
    ladder = evaluation_ladder(grid)
    start = x0.reshape(1, 1, dimension).expand(len(cells), 1, dimension).to(device)
    errors = ensemble_ladder_errors(EnsembleVectorField(ensemble), start, grid.t_final, ladder,
                                    grid.evaluation_schemes, lambda t: reference(t.cpu()).reshape(-1, 1, dimension)
                                    .to(device), description=f"evaluating {label}", show_progress=task.show_progress)
    dts = [grid.t_final / n for n in ladder]
    results = []
    for m, cell in enumerate(cells):
        # the state's size the verdicts read errors against: RMS of ||x(t_k)|| over the training-step grid of [0, T]
        size = reference_size(reference, x0, steps_in(grid.t_final, cell.training_dt), cell.training_dt, "rms")
        evaluations = {}
        for scheme, (final, rms) in errors.items():
            judged = judge_errors(cell.key, scheme, dts, final[m], rms[m], training_dt=cell.training_dt,
                                  size=size)
            evaluations[scheme] = _evaluation_dict(judged)
        trained_in = [s for s in cell.schemes if s in evaluations]
        kind = min((evaluations[s]["kind"] for s in trained_in), key=VERDICT_KINDS.index) if trained_in else None
        network = ensemble.member(m).cpu()
        results.append({
            "cell": cell.to_dict(), "key": cell.key, "training": _training_dict(histories[m]),
            "evaluations": evaluations, "kind": kind, "home_scheme": cell.home_scheme, "dts": dts,
            "state_dict": {k: v.clone() for k, v in network.state_dict().items()},
        })
    return results


def _training_dict(history: TrainingHistory) -> dict[str, Any]:
    """The history without its every loss: the loss every ``loss_stride`` iterations (about 200 values)."""
    stride = max(1, history.iterations // 200)
    return {**{k: v for k, v in history.to_dict().items() if k != "losses"}, "iterations": history.iterations,
            "loss_stride": stride, "losses": history.losses[::stride]}


def _evaluation_dict(judged) -> dict[str, Any]:
    rate = judged.rate
    return {
        "final_errors": list(judged.final_errors), "rms_errors": list(judged.rms_errors),
        "rate": None if rate is None else {"rate": rate.rate, "confidence_interval": list(rate.confidence_interval),
                                           "window": list(rate.window)},
        "plateau": judged.plateau, "rms_plateau": judged.rms_plateau,
        "error_at_training_dt": judged.error_at_training_dt, "dip_depth": judged.dip_depth,
        "relative_plateau": judged.relative_plateau, "relative_finest": judged.relative_finest,
        "kind": judged.kind, "verdict": judged.verdict,
    }


def true_field_baseline(grid: SweepGrid) -> dict[str, dict[str, list[float]]]:
    """The true vector field in every evaluation scheme over the ladder: per scheme, final and RMS errors."""
    system, x0, reference = _system_and_reference(grid)
    dimension = x0.numel()

    def field(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return system.vector_field(t, x.reshape(*x.shape[:-1], *system.state_shape)).reshape(x.shape)

    ladder = evaluation_ladder(grid)
    errors = ensemble_ladder_errors(field, x0.reshape(1, 1, dimension), grid.t_final, ladder, grid.evaluation_schemes,
                                    lambda t: reference(t).reshape(-1, 1, dimension))
    return {scheme: {"final_errors": final[0].tolist(), "rms_errors": rms[0].tolist()}
            for scheme, (final, rms) in errors.items()}


def _run_task(task: _GroupTask | SweepGrid):
    """One task of the backend: a group, or (given the grid) the true-field baseline."""
    if isinstance(task, SweepGrid):
        return true_field_baseline(task)
    return train_and_evaluate_group(task)


# ---------------------------------------------------------------------------------------------------------------
# the folder: grid, finished cells, checkpoints


def _load_cell(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # unreadable: the cell is computed again
    return record if isinstance(record, dict) and record.get("format") == _FORMAT else None


def _check_grid(folder: Path, manifest: Path, grid: SweepGrid, extend: bool) -> None:
    """A folder's sweep may be resumed with the same grid, or extended by one that shares its settings."""
    try:
        previous = SweepGrid.from_dict(json.loads(manifest.read_text())["grid"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{manifest} is not a readable sweep record ({error}); overwrite to start over") from None
    if previous == grid:
        return
    differing = sorted(k for k, v in grid.to_dict().items() if previous.to_dict().get(k) != v)
    if not extend:
        raise ValueError(f"{folder} holds a sweep over another grid (differs in {', '.join(differing)}); rerun with "
                         f"the same grid to resume, extend to add this grid's cells to it, or overwrite to start over")
    if previous.shared() != grid.shared():
        shared = sorted(k for k, v in grid.shared().items() if previous.shared().get(k) != v)
        raise ValueError(f"{folder}: cannot extend a sweep whose cells were trained and evaluated otherwise "
                         f"(differs in {', '.join(shared)}); choose another folder or overwrite")


def _prepare_folder(folder: Path, grid: SweepGrid, extend: bool, overwrite: bool) -> None:
    """Refuse a folder that holds another sweep (unless extending or overwriting), then record the grid."""
    manifest = folder / "sweep.json"
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"output {folder} is a file, not a folder")
    if manifest.exists():
        if not overwrite:
            _check_grid(folder, manifest, grid, extend)
    elif folder.exists() and any(folder.iterdir()):  # overwrite replaces a sweep, never a folder of other things
        raise ValueError(f"{folder} is not empty and holds no sweep; choose an empty or new folder")
    if overwrite:
        for name in ("cells", "models", "checkpoints"):
            shutil.rmtree(folder / name, ignore_errors=True)
        for name in ("sweep.json", "baseline.json", "results.json", "report.md", "errors_against_dt.png",
                     "plateau_against_training_dt.png", "verdicts.png"):
            (folder / name).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({"format": _FORMAT, "version": _VERSION, "grid": grid.to_dict()}, indent=2)
    atomic_write(manifest, lambda p: p.write_text(payload))


def _groups(grid: SweepGrid, cells: list[SweepCell]) -> list[tuple[SweepCell, ...]]:
    """Pending cells in groups that share a width and training schemes, at most ``group_size`` each."""
    by_architecture: dict[tuple, list[SweepCell]] = {}
    for cell in cells:
        by_architecture.setdefault((cell.width, cell.schemes), []).append(cell)
    groups = []
    for members in by_architecture.values():
        for start in range(0, len(members), grid.group_size):
            groups.append(tuple(members[start:start + grid.group_size]))
    return groups


def _group_name(cells: Sequence[SweepCell]) -> str:
    digest = hashlib.sha256("\n".join(c.key for c in cells).encode()).hexdigest()[:16]
    return f"{'+'.join(cells[0].schemes)}_width{cells[0].width}_{digest}"


# ---------------------------------------------------------------------------------------------------------------
# the result: tables, slopes, figures


@dataclasses.dataclass
class SweepResult:
    """A finished sweep: its grid, ladder, cells (one dict each: the cell, its training, its evaluation in every
    scheme with plateau, dip, rate and verdict) and the true field's errors. ``plateau_table``, ``slopes``,
    ``verdict_table`` and ``figures`` give what a paper shows; ``write`` puts them in a folder."""

    grid: SweepGrid
    dts: tuple[float, ...]
    cells: list[dict[str, Any]]
    baseline: dict[str, dict[str, list[float]]]
    seconds: float = math.nan

    def _select(self, schemes: tuple[str, ...], dt: float | None = None, **axes: Any) -> list[dict[str, Any]]:
        chosen = []
        for record in self.cells:
            cell = record["cell"]
            if tuple(cell["schemes"]) != schemes or (dt is not None and not math.isclose(cell["training_dt"], dt)):
                continue
            if all(math.isclose(cell.get(k, 0.0), v) if isinstance(v, float) else cell.get(k) == v
                   for k, v in axes.items()):
                chosen.append(record)
        return chosen

    def _slices(self) -> list[dict[str, Any]]:
        """The (width, training time, noise, step spread) combinations, each one table."""
        g = self.grid
        return [{"width": w, "training_time": t, "noise": n, "spread": v} for w in g.widths for t in g.training_times
                for n in g.noise_levels for v in g.step_spreads]

    def plateaus(self, schemes: tuple[str, ...], metric: str = "final", **axes: Any) -> dict[float, list[float]]:
        """dt_train -> the plateaus over seeds in the home scheme (``metric`` "final": error at T, the authors';
        "rms": over the trajectory)."""
        key = "plateau" if metric == "final" else "rms_plateau"
        return {dt: [r["evaluations"][r["home_scheme"]][key] for r in self._select(schemes, dt, **axes)]
                for dt in self.grid.training_dts}

    def slopes(self, metric: str = "final", **axes: Any) -> dict[str, dict[str, Any]]:
        """Per training scheme, the slope of log plateau against log dt_train: over every dt_train (every seed a
        point, 95 % Student-t interval), and over its power-law range (the longest run of consecutive dt_train
        where the median plateau falls at a local slope of at least 0.5; finer, it sits on a floor: optimisation,
        or the float64 limit), with its interval from every seed in that range; and the local slopes."""
        axes = axes or self._slices()[0]
        slopes = {}
        for schemes in self.grid.training_schemes:
            plateaus = self.plateaus(schemes, metric, **axes)
            xs = [dt for dt, values in plateaus.items() for _ in values]
            ys = [v for values in plateaus.values() for v in values]
            dts = sorted(plateaus, reverse=True)
            medians = [_median(plateaus[dt]) for dt in dts]
            local = [math.log(a / b) / math.log(x / y) if a > 0 and b > 0 else math.nan
                     for a, b, x, y in zip(medians, medians[1:], dts, dts[1:])]
            window, ranged = _power_law_range(dts, local), None
            if window is not None:
                inside = [(x, y) for x, y in zip(xs, ys) if window[0] * (1 - 1e-9) <= x <= window[1] * (1 + 1e-9)]
                ranged = fit_power_law(*zip(*inside))
            slopes["+".join(schemes)] = {"every_dt_train": fit_power_law(xs, ys), "asymptotic_range": ranged,
                                         "window": window, "local_slopes": local}
        return slopes

    def plateau_table(self, metric: str = "final", **axes: Any) -> str:
        """Markdown in the layout of the authors' table: per training scheme, the plateau at each dt_train (median
        and min-max over seeds), the plateau-vs-dt_train slopes, and the dip at the largest dt_train."""
        axes = axes or self._slices()[0]
        dts = sorted(self.grid.training_dts, reverse=True)
        slopes = self.slopes(metric, **axes)
        largest = dts[0]
        what = "error at T" if metric == "final" else "RMS error over the trajectory"
        header = ("| training scheme | " + " | ".join(f"plateau, dt_train {dt:g}" for dt in dts) +
                  " | slope (all dt_train) | slope (power-law range) | dip at dt_train " + f"{largest:g} |")
        lines = [f"Plateaus ({what} as dt -> 0, in the training scheme; median [min, max] over "
                 f"{len(self.grid.seeds)} seeds); slopes of log plateau against log dt_train with 95 % intervals "
                 f"(every seed a point), over every dt_train and over the power-law range (the longest run of dt_train "
                 f"where the median plateau falls at a local slope >= 0.5; finer, a floor), then the local slopes of "
                 f"the medians; dip: the error at dt_train against the plateau (median).", "", header,
                 "| --- |" + " --- |" * (len(dts) + 3)]
        for schemes in self.grid.training_schemes:
            plateaus = self.plateaus(schemes, metric, **axes)
            cells = [_median_range(plateaus[dt]) for dt in dts]
            fit = slopes["+".join(schemes)]
            ranged = fit["asymptotic_range"]
            ranged_text = "none (no step of dt_train lowers the plateau at a slope >= 0.5)" if ranged is None else (
                f"{ranged} over dt_train {fit['window'][0]:g}..{fit['window'][1]:g}")
            ranged_text += "; local " + ", ".join(f"{v:.2g}" for v in fit["local_slopes"])
            dip = self._select(schemes, largest, **axes)
            if dip and metric == "final":
                at = float(np.median([r["evaluations"][r["home_scheme"]]["final_errors"][self._index(largest)]
                                      for r in dip]))
                plateau = float(np.median([r["evaluations"][r["home_scheme"]]["plateau"] for r in dip]))
                dip_text = f"{at:.2g} at dt_train, plateau {plateau:.2g} ({plateau / at:.3g}x)"
            elif dip:
                depth = float(np.median([r["evaluations"][r["home_scheme"]]["dip_depth"] for r in dip]))
                dip_text = f"err(dt_train)/plateau {depth:.2g}"
            else:
                dip_text = "-"
            lines.append(f"| {'+'.join(schemes)} | " + " | ".join(cells) +
                         f" | {fit['every_dt_train']} | {ranged_text} | {dip_text} |")
        return "\n".join(lines)

    def _index(self, dt: float) -> int:
        return min(range(len(self.dts)), key=lambda i: abs(math.log(self.dts[i] / dt)))

    def dip_table(self, metric: str = "final", **axes: Any) -> str:
        """Markdown: per training scheme and dt_train, the dip in the training scheme: the error at dt_train over
        the plateau (median over seeds; below 0.5 the error rises when dt is refined: the field overfits dt_train)."""
        axes = axes or self._slices()[0]
        dts = sorted(self.grid.training_dts, reverse=True)
        key = "final_errors" if metric == "final" else "rms_errors"
        plateau_key = "plateau" if metric == "final" else "rms_plateau"
        lines = ["| training scheme | " + " | ".join(f"dt_train {dt:g}" for dt in dts) + " |",
                 "| --- |" + " --- |" * len(dts)]
        for schemes in self.grid.training_schemes:
            cells = []
            for dt in dts:
                records = self._select(schemes, dt, **axes)
                ratios = [r["evaluations"][r["home_scheme"]][key][self._index(dt)] /
                          r["evaluations"][r["home_scheme"]][plateau_key] for r in records]
                cells.append(f"{_median(ratios):.2g}" if ratios else "-")
            lines.append(f"| {'+'.join(schemes)} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def verdict_table(self, **axes: Any) -> str:
        """Markdown: per training scheme and dt_train, the verdicts (kind: seeds) in every evaluation scheme, the
        training scheme starred: the swap at a glance."""
        axes = axes or self._slices()[0]
        schemes = self.grid.evaluation_schemes
        lines = ["| training scheme | dt_train | " + " | ".join(schemes) + " |",
                 "| --- | --- |" + " --- |" * len(schemes)]
        for training in self.grid.training_schemes:
            for dt in sorted(self.grid.training_dts, reverse=True):
                records = self._select(training, dt, **axes)
                cells = []
                for scheme in schemes:
                    kinds = [r["evaluations"][scheme]["kind"] for r in records]
                    text = ", ".join(f"{k} {kinds.count(k)}" for k in VERDICT_KINDS if kinds.count(k))
                    cells.append(text + ("*" if scheme in training else ""))
                lines.append(f"| {'+'.join(training)} | {dt:g} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Every number: the grid, the ladder, per cell its training and evaluations, the true field, and the
        aggregated plateaus and slopes per (width, training time, noise)."""
        aggregated = []
        for axes in self._slices():
            entry = {**axes, "schemes": {}}
            for metric in ("final", "rms"):
                slopes = self.slopes(metric, **axes)
                for schemes in self.grid.training_schemes:
                    name = "+".join(schemes)
                    plateaus = self.plateaus(schemes, metric, **axes)
                    scheme_entry = entry["schemes"].setdefault(name, {})
                    scheme_entry[metric] = {
                        "plateaus": {f"{dt:g}": {"median": _median(v), "min": min(v, default=math.nan),
                                                 "max": max(v, default=math.nan), "seeds": v}
                                     for dt, v in plateaus.items()},
                        "slope_every_dt_train": _fit_dict(slopes[name]["every_dt_train"]),
                        "slope_power_law_range": _fit_dict(slopes[name]["asymptotic_range"]),
                        "power_law_range": slopes[name]["window"],
                        "local_slopes": slopes[name]["local_slopes"],
                    }
            aggregated.append(entry)
        return {"format": _FORMAT, "version": _VERSION, "grid": self.grid.to_dict(), "dts": list(self.dts),
                "true_field": self.baseline, "aggregated": aggregated, "seconds": self.seconds,
                "cells": [{k: v for k, v in r.items() if k != "state_dict"} for r in self.cells]}

    def report(self) -> str:
        """The markdown report: what was run, the plateau tables (error at T and RMS), the verdicts, the figures."""
        g = self.grid
        lines = [f"# Training-step sweep: {g.system}", "",
                 f"{len(self.cells)} trainings: schemes {', '.join('+'.join(s) for s in g.training_schemes)} x "
                 f"dt_train {', '.join(f'{d:g}' for d in g.training_dts)} x seeds {', '.join(map(str, g.seeds))}"
                 + (f" x widths {list(g.widths)}" if len(g.widths) > 1 else "")
                 + (f" x training times {list(g.training_times)}" if len(g.training_times) > 1 else "")
                 + (f" x noise {list(g.noise_levels)}" if len(g.noise_levels) > 1 else "")
                 + (f" x step spreads {list(g.step_spreads)}" if len(g.step_spreads) > 1 else "") + ". "
                 f"Parameters {g.parameters}, initial state {list(g.initial_state)}; data: one exact trajectory of "
                 f"{', '.join(f'{t:g}' for t in g.training_times)} time units at dt_train"
                 + (f", relative noise {', '.join(f'{n:g}' for n in g.noise_levels)}" if any(g.noise_levels) else "")
                 + (", steps spread uniformly over dt_train (1 +- s), s = "
                    f"{', '.join(f'{v:g}' for v in g.step_spreads)} (each pair trained with its own step)"
                    if any(g.step_spreads) else "")
                 + f"; G: {g.depth} hidden layer(s) of {', '.join(map(str, g.widths))} tanh units, float64; Adam, "
                 f"{g.iterations} iterations, rate {g.learning_rate:g} -> {g.final_learning_rate:g}, batches of "
                 f"{g.batch_size}. Evaluation from the same state to T = {g.t_final:g} in "
                 f"{', '.join(g.evaluation_schemes)} at {len(self.dts)} steps from {max(self.dts):g} to "
                 f"{min(self.dts):g}. Run time {self.seconds:.0f} s.", ""]
        for axes in self._slices():
            if len(self._slices()) > 1:
                lines += [f"## width {axes['width']}, training time {axes['training_time']:g}, noise "
                          f"{axes['noise']:g}, step spread {axes['spread']:g}", ""]
            lines += ["### Plateau against dt_train (error at T, the authors' metric)", "",
                      self.plateau_table("final", **axes), "",
                      "### The dip: error at dt_train / plateau (error at T, median; below 0.5: overfits dt_train)", "",
                      self.dip_table("final", **axes), "",
                      "### Plateau against dt_train (RMS error over the trajectory)", "",
                      self.plateau_table("rms", **axes), "",
                      "### Verdicts (seeds per kind; * = training scheme)", "", self.verdict_table(**axes), ""]
        lines += ["### The authors' medians (50 000 iterations at rate 1e-4; error at T = 2)", "",
                  "| scheme | plateau at dt_train 0.1 / 0.01 / 0.001 | error at 0.4, plateau |", "| --- | --- | --- |"]
        lines += [f"| {s} | {' / '.join(f'{p:g}' for p in v['plateaus'])} | "
                  f"{v['dip_at_0.4'][0]:g}, {v['dip_at_0.4'][1]:g} |" for s, v in AUTHORS_PLATEAUS.items()]
        lines += ["", "Verdicts as in `dynlearn study` (RMS error; an error is significant above 1 % of the state): "
                  "discrete = dips at dt_train and rises to a significant plateau; faithful = converges to an "
                  "insignificant plateau; another system = converges to a significant one.", "",
                  "![errors](errors_against_dt.png)", "", "![plateaus](plateau_against_training_dt.png)", "",
                  "![verdicts](verdicts.png)"]
        return "\n".join(lines) + "\n"

    def figures(self) -> dict[str, Any]:
        """The three figures (matplotlib): ``errors_against_dt`` (a grid, rows training schemes, columns evaluation
        schemes: error at T against dt, one curve per dt_train, median with a min-max band over seeds, dotted
        verticals at each dt_train, the true field dashed), ``plateau_against_training_dt`` (log-log, per scheme,
        with the fitted slopes) and ``verdicts`` (the majority kind over (training scheme, dt_train) in each
        evaluation scheme); for the first (width, training time, noise) of the grid (the report's tables cover
        every one)."""
        return _figures(self)

    def write(self, folder: str | Path) -> list[Path]:
        """results.json, report.md and the three figures (PNG), each written atomically."""
        import matplotlib.pyplot as plt

        folder = Path(folder)
        files = []
        for name, figure in self.figures().items():
            files.append(atomic_write(folder / f"{name}.png", lambda p, f=figure: f.savefig(p, format="png", dpi=110)))
            plt.close(figure)
        payload = json.dumps(self.to_dict(), indent=1, default=float)
        files.append(atomic_write(folder / "results.json", lambda p: p.write_text(payload)))
        report = self.report()
        files.append(atomic_write(folder / "report.md", lambda p: p.write_text(report)))
        return files


_KIND_COLOURS = {"discrete": "#d62728", "another system": "#ff7f0e", "faithful": "#1f77b4",
                 "converging": "#2ca02c", "inconclusive": "#7f7f7f"}


def _figures(result: SweepResult) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb

    grid, dts = result.grid, np.asarray(result.dts)
    axes_slice = result._slices()[0]
    training, evaluation = grid.training_schemes, grid.evaluation_schemes
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, len(grid.training_dts)))
    ordered_dts = sorted(grid.training_dts, reverse=True)

    errors, panels = plt.subplots(len(training), len(evaluation), figsize=(3.4 * len(evaluation), 2.8 * len(training)),
                                  squeeze=False, sharex=True, sharey=True)
    for i, schemes in enumerate(training):
        for j, scheme in enumerate(evaluation):
            ax = panels[i][j]
            for colour, dt in zip(colours, ordered_dts):
                curves = np.array([r["evaluations"][scheme]["final_errors"]
                                   for r in result._select(schemes, dt, **axes_slice)])
                if curves.size:
                    with np.errstate(invalid="ignore"):
                        ax.loglog(dts, np.median(curves, axis=0), "-", color=colour, lw=1.2, label=f"{dt:g}")
                        ax.fill_between(dts, curves.min(axis=0), curves.max(axis=0), color=colour, alpha=0.2, lw=0)
                ax.axvline(dt, color=colour, ls=":", lw=0.8)
            if scheme in result.baseline:
                ax.loglog(dts, result.baseline[scheme]["final_errors"], "k--", lw=1, label="true field")
            ax.set_title(f"trained in {'+'.join(schemes)}, evaluated in {scheme}", fontsize=8)
            if i == len(training) - 1:
                ax.set_xlabel("dt")
            if j == 0:
                ax.set_ylabel("error at T")
            ax.grid(True, which="both", alpha=0.2)
    panels[0][-1].legend(title="dt_train", fontsize=6, title_fontsize=6, loc="lower right")
    errors.suptitle(f"{grid.system}: error at T = {grid.t_final:g} against dt (median over seeds, band min-max; "
                    f"dotted: dt_train; dashed: the true field)", fontsize=9)
    errors.tight_layout()

    plateau_figure, ax = plt.subplots(figsize=(5.2, 4.0))
    slopes = result.slopes("final", **axes_slice)
    for index, schemes in enumerate(training):
        name = "+".join(schemes)
        plateaus = result.plateaus(schemes, "final", **axes_slice)
        xs = np.array([dt for dt in ordered_dts if plateaus[dt]])
        medians = np.array([np.median(plateaus[dt]) for dt in xs])
        low = medians - np.array([min(plateaus[dt]) for dt in xs])
        high = np.array([max(plateaus[dt]) for dt in xs]) - medians
        fit = slopes[name]["every_dt_train"]
        ranged = slopes[name]["asymptotic_range"]
        label = f"{name}: slope {fit}" + ("" if ranged is None else f"; {ranged} on its power-law range")
        ax.errorbar(xs, medians, yerr=[low, high], fmt="o", ms=4, color=f"C{index}", capsize=2, label=label)
        if ranged is not None:
            window = np.array(slopes[name]["window"])
            ax.loglog(window, ranged.constant * window**ranged.slope, "-", color=f"C{index}", lw=1)
        if math.isfinite(fit.slope):
            ax.loglog(xs, fit.constant * xs**fit.slope, ":", color=f"C{index}", lw=1)
    ax.set_xscale("log"), ax.set_yscale("log")
    ax.set_xlabel("dt_train"), ax.set_ylabel("plateau (error at T as dt -> 0)")
    ax.set_title("plateau against dt_train (median, min-max over seeds)\nsolid: fit on the power-law range; "
                 "dotted: on every dt_train", fontsize=8)
    ax.legend(fontsize=6)
    ax.grid(True, which="both", alpha=0.2)
    plateau_figure.tight_layout()

    verdicts, maps = plt.subplots(1, len(evaluation), figsize=(3.2 * len(evaluation), 1.6 + 0.55 * len(training)),
                                  squeeze=False)
    for j, scheme in enumerate(evaluation):
        ax = maps[0][j]
        image = np.ones((len(training), len(ordered_dts), 3))
        for i, schemes in enumerate(training):
            for k, dt in enumerate(ordered_dts):
                kinds = [r["evaluations"][scheme]["kind"] for r in result._select(schemes, dt, **axes_slice)]
                if not kinds:
                    continue
                majority = max(VERDICT_KINDS, key=lambda kind: (kinds.count(kind), -VERDICT_KINDS.index(kind)))
                image[i, k] = to_rgb(_KIND_COLOURS[majority])
                ax.text(k, i, f"{kinds.count(majority)}/{len(kinds)}", ha="center", va="center", fontsize=6,
                        color="white")
        ax.imshow(image, aspect="auto")
        ax.set_xticks(range(len(ordered_dts)), [f"{dt:g}" for dt in ordered_dts], fontsize=7)
        ax.set_yticks(range(len(training)), ["+".join(s) for s in training], fontsize=7)
        ax.set_xlabel("dt_train", fontsize=7)
        ax.set_title(f"evaluated in {scheme}", fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in _KIND_COLOURS.values()]
    verdicts.legend(handles, list(_KIND_COLOURS), loc="lower center", ncol=len(handles), fontsize=6, frameon=False)
    verdicts.suptitle("verdicts (majority over seeds, with its count)", fontsize=8)
    verdicts.tight_layout(rect=(0, 0.12, 1, 1))
    return {"errors_against_dt": errors, "plateau_against_training_dt": plateau_figure, "verdicts": verdicts}


def _power_law_range(dts: Sequence[float], local: Sequence[float]) -> tuple[float, float] | None:
    """(smallest, largest) dt_train of the longest run of local slopes >= CONVERGING_RATE (the coarsest of equally
    long runs), or None when no step of dt_train lowers the median plateau that fast."""
    best: tuple[int, int] | None = None
    start = None
    for index, slope in enumerate([*local, math.nan]):
        if math.isfinite(slope) and slope >= CONVERGING_RATE:
            start = index if start is None else start
        elif start is not None:
            if best is None or index - start > best[1] - best[0]:
                best = (start, index)
            start = None
    return None if best is None else (dts[best[1]], dts[best[0]])


def _median(values: Sequence[float]) -> float:
    return float(np.median(values)) if len(values) else math.nan


def _median_range(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{_median(values):.2g} [{min(values):.2g}, {max(values):.2g}]"


def _fit_dict(fit: PowerLawFit | None) -> dict[str, Any] | None:
    if fit is None:
        return None
    return {"slope": fit.slope, "standard_error": fit.standard_error,
            "confidence_interval": list(fit.confidence_interval), "n": fit.n}


# ---------------------------------------------------------------------------------------------------------------
# the entry point


def run_sweep(grid: SweepGrid = SweepGrid(), output: str | Path | None = None, *, extend: bool = False,
              overwrite: bool = False, backend: str = "local", workers: int | None = None,
              ray_address: str | None = None,
              device: str = "cpu", compile: bool = False, show_progress: bool = True) -> SweepResult:
    """Run ``grid`` (default: the authors' sweep) and, with ``output``, keep every finished cell there and write
    the report, results.json and the figures.

    A rerun into the same folder with the same grid skips finished cells and resumes unfinished groups from their
    checkpoints; another grid is refused unless ``extend`` (keep the finished cells the new grid shares, compute
    the rest; only when the shared settings agree) or ``overwrite`` (start over). ``backend`` "local" runs groups
    in this process (``workers=1``) or in a pool of ``workers`` processes (default: one per CPU core; one with
    ``device="cuda"``); "ray" sends them to a Ray cluster (``ray_address``, RAY_ADDRESS, or a local instance), one
    CPU each, or one GPU each with ``device="cuda"``. ``compile`` runs each ensemble's training iteration as one
    compiled graph (``TrainingSettings.compile``; on CUDA a CUDA graph): the same results to round-off, after a
    compile of 7-20 s per group and process (under 1 s once Inductor's cache holds the graph; docs: performance).
    Without ``output`` nothing is written and nothing resumes."""
    began = time.perf_counter()
    check_backend(backend, ray_address)  # before any work: the folder is not touched without a working backend
    if workers is None:  # a GPU is shared by one process at a time
        workers = 1 if str(device).startswith("cuda") else (os.cpu_count() or 1)
    as_integer("workers", workers)
    for name, flag in (("extend", extend), ("overwrite", overwrite), ("compile", compile),
                       ("show_progress", show_progress)):
        as_flag(name, flag)
    if extend and overwrite:
        raise ValueError("extend and overwrite exclude each other: extend keeps finished cells, overwrite drops them")
    # a spread s shortens steps down to dt (1 - s): up to 1 / (1 - s) times the pairs
    pairs = max(math.ceil(t / (dt * (1 - max(grid.step_spreads))))
                for t in grid.training_times for dt in grid.training_dts)
    members = min(grid.group_size, len(grid.cells()))
    d, width = len(grid.initial_state), max(grid.widths)
    weights = width * (d + 1) + d * (width + 1) + (grid.depth - 1) * width * (width + 1)
    batch = min(grid.batch_size, pairs)
    # starts, successors, minibatch; the stacked weights with their gradients, Adam's moments and the best ones;
    # the hidden activations of a minibatch, kept for the backward (up to 4 stages per scheme, 2 schemes in a sum)
    check_allocation(f"a group of {members} trainings (width {width}) on up to {count_text(pairs)} pairs each",
                     3 * 8.0 * members * pairs * d + 6 * 8.0 * members * weights
                     + 8 * 2 * 8.0 * members * batch * width * grid.depth,
                     "ask for fewer pairs (a larger dt_train or shorter training times), narrower networks or a "
                     "smaller group_size")
    finest = max(evaluation_ladder(grid))  # the reference solution is taken at every time of a rung
    check_allocation(f"the evaluation's finest rung, {count_text(finest)} steps of dt = {grid.t_final / finest:.3g}",
                     3 * 8.0 * (finest + 1) * d, "raise finest_dt or shorten t_final")
    folder = Path(output) if output is not None else None
    if folder is None:
        return _run_cells(grid, None, backend, workers, ray_address, device, compile, show_progress, began)
    with folder_lock(folder):  # one sweep at a time in a folder
        _prepare_folder(folder, grid, extend, overwrite)
        return _run_cells(grid, folder, backend, workers, ray_address, device, compile, show_progress, began)


def _run_cells(grid: SweepGrid, folder: Path | None, backend: str, workers: int, ray_address: str | None,
               device: str, compile: bool, show_progress: bool, began: float) -> SweepResult:
    """run_sweep's work: the cells not yet finished, in groups, on the backend; the result, written to ``folder``."""
    cells = grid.cells()
    finished: dict[str, dict[str, Any]] = {}
    if folder is not None:
        for cell in cells:
            record = _load_cell(folder / "cells" / f"{cell.key}.json")
            if record is not None and (folder / "models" / f"{cell.key}.pt").exists():
                finished[cell.key] = record
    pending = [cell for cell in cells if cell.key not in finished]
    # in the grid's order: costliest-first measured slower on 2 workers (309 s against 224 s for the default), the
    # evaluation of a group, the same for every scheme, being most of its cost
    groups = _groups(grid, pending)
    baseline_path = folder / "baseline.json" if folder is not None else None
    baseline = None
    if baseline_path is not None and baseline_path.exists():
        baseline = _load_cell(baseline_path)
        baseline = baseline.get("true_field") if baseline else None
    in_process = backend == "local" and workers <= 1
    tasks: list[Any] = [_GroupTask(grid, group, str(folder / "checkpoints" / f"{_group_name(group)}.pt")
                                   if folder is not None else None, device, show_progress and in_process, compile)
                        for group in groups]
    if baseline is None:
        tasks.append(grid)
    if folder is not None:
        (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    bar = progress(total=len(cells), initial=len(finished), description="sweep cells", enabled=show_progress,
                   unit="cell")
    already = len(finished)

    def record(index: int, value: Any) -> None:
        nonlocal baseline
        if isinstance(tasks[index], SweepGrid):
            baseline = value
            if baseline_path is not None:
                text = json.dumps({"format": _FORMAT, "true_field": value})
                atomic_write(baseline_path, lambda p: p.write_text(text))
            return
        for result in value:
            finished[result["key"]] = _save_cell(folder, result) if folder is not None else result
        if folder is not None and tasks[index].checkpoint:
            for suffix in ("", ".trained"):
                Path(tasks[index].checkpoint + suffix).unlink(missing_ok=True)
        bar.update(len(value))
        done = sum(1 for c in cells if c.key in finished)
        if show_progress and progress_mode() == "lines":  # a log learns of every finished group, with an estimate
            elapsed = time.perf_counter() - began
            fresh = done - already
            left = (len(cells) - done) * elapsed / fresh if fresh else math.nan
            print(f"sweep: {done}/{len(cells)} cells done ({'+'.join(value[0]['cell']['schemes'])}, "
                  f"{len(value)} models) after {elapsed:.0f} s, about {left:.0f} s left", file=sys.stderr, flush=True)

    resources = TaskResources(cpus=1, gpus=1 if str(device).startswith("cuda") and backend == "ray" else 0)
    run_tasks(_run_task, tasks, backend=backend, workers=workers, address=ray_address, resources=resources,
              on_result=record)
    bar.close()
    ladder = evaluation_ladder(grid)
    result = SweepResult(grid, tuple(grid.t_final / n for n in ladder), [finished[c.key] for c in cells],
                         baseline or {}, time.perf_counter() - began)
    if folder is not None:
        result.write(folder)
        with contextlib.suppress(OSError):
            (folder / "checkpoints").rmdir()  # every group finished: no checkpoint is left in it
    return result


def _save_cell(folder: Path, result: dict[str, Any]) -> dict[str, Any]:
    """The trained network, then the cell's record (its presence marks the cell finished), each atomically."""
    key = result["key"]
    state = result["state_dict"]
    atomic_write(folder / "models" / f"{key}.pt", lambda p: torch.save(state, p))
    record = {"format": _FORMAT, **{k: v for k, v in result.items() if k != "state_dict"}}
    text = json.dumps(record, indent=1, default=float)
    atomic_write(folder / "cells" / f"{key}.json", lambda p: p.write_text(text))
    return record


def load_sweep(folder: str | Path) -> SweepResult:
    """The finished cells of a sweep folder as a :class:`SweepResult` (the grid from its sweep.json; cells not yet
    finished are left out)."""
    folder = Path(folder)
    try:
        grid = SweepGrid.from_dict(json.loads((folder / "sweep.json").read_text())["grid"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{folder} holds no readable sweep ({error})") from None
    cells = [r for c in grid.cells() if (r := _load_cell(folder / "cells" / f"{c.key}.json")) is not None]
    baseline = _load_cell(folder / "baseline.json") or {}
    ladder = evaluation_ladder(grid)
    return SweepResult(grid, tuple(grid.t_final / n for n in ladder), cells, baseline.get("true_field", {}))
