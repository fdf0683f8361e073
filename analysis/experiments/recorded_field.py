"""The learned-integrator experiment on recorded fields (a cylinder wake, sea-surface temperature): is a vector
field learned from snapshots a continuous model or a discrete map? This is what ``dynlearn study --data FILE``
runs.

There is no exact solution, only the record; the convergence test is run against the data itself:

1. The snapshots (a field per time, land masked out) of the first ``training_fraction`` of the record are reduced
   to their ``modes`` leading POD modes (:mod:`dynlearn.analysis.modes`); the dynamics are learned on the
   coefficients z (in units of the leading mode's RMS amplitude).
2. G is trained on the one-step pairs (z_k, z_{k+stride}) of the training part, dt_train = stride * the record's
   dt, inside each training scheme: a linear G and a tanh MLP trained with Adam. The linear G is affine,
   Lambda z + beta, since the mean of a finite training window (a wake over 3.4 shedding periods) is not the
   centre of the attractor; it is obtained in closed form, as what gradient training inside the scheme converges
   to: on the augmented state (z, 1) the data's least-squares map is [[Omega, b], [0, 1]] and [[Lambda, beta],
   [0, 0]] is the operator whose stability matrix R(dt_train .) it is (:func:`scheme_operator`).
3. Every G is evaluated in every scheme on the held-out part of the record: from the last training snapshot
   over T (a multiple of 4 dt_train, at most ``horizon`` = 64 training steps), dt from 4 dt_train down to
   dt_train / 2^finer. A rollout finer than the
   record is compared at the record's samples (every compared state but the first is unseen in training).
   Verdicts as in :mod:`dynlearn.analysis.study`.

What to expect on a periodic wake: the Euler-trained G reproduces the record at dt_train and nowhere else (a
discrete map: its linear form has the spurious damping (cos(omega dt) - 1)/dt ~ -omega^2 dt / 2 per harmonic,
so a refined rollout decays); the RK4-trained G converges, and its linear form has the data's frequencies.
When dt_train resolves a harmonic poorly (omega dt_train not small: more modes bring higher harmonics), RK4
too learns its own truncation error there: the report gives omega dt_train of every mode pair to judge by.

The experiment is that of Krishnapriyan, Queiruga, Erichson & Mahoney, Communications Physics 6 (2023),
doi:10.1038/s42005-023-01433-4, taken to data without a known vector field.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from dynlearn._files import atomic_write
from dynlearn.datasets.format import TrajectoryDataset, read_dataset
from dynlearn.fields.models import MLP, AffineVectorField, NeuralVectorField
from dynlearn.integration.tableaus import get_tableau
from dynlearn.fields.training import TrainingSettings, TrainingHistory, embedded_loss, train

from dynlearn.analysis.modes import ProperOrthogonalDecomposition
from dynlearn.datasets.snapshots import snapshot_data
from dynlearn.analysis.reconstruction import least_squares_map, logarithm_operator, scheme_operator
from dynlearn.analysis.study import ConvergenceStudy, convergence_study
from dynlearn._checks import as_flag, as_integer, as_learning_rate, as_seeds

__all__ = ["RecordedFieldRecipe", "RecordedFieldOutcome", "run_recorded_field", "markdown_spectra"]


@dataclasses.dataclass(frozen=True)
class RecordedFieldRecipe:
    """Everything a study of recorded data needs besides the file (see the module docstring).

    ``training_schemes``: each entry one G per network kind (a linear G only for single-scheme entries: a sum
    of schemes has no closed form); ``modes``: POD modes kept; ``stride``: dt_train = stride * the record's dt
    (a power of two, so that every step of the ladder shares the record's grid); ``training_fraction``: the
    first part of the record used for the POD and for training; ``horizon``: the evaluation's length T in
    training steps, at most (fewer when the held-out record is shorter; a multiple of 4 is used); ``finer``:
    halvings of dt_train on the ladder.
    """

    modes: int = 4
    stride: int = 1
    training_fraction: float = 2 / 3
    training_schemes: tuple[tuple[str, ...], ...] = (("euler",), ("midpoint",), ("rk4",))
    evaluation_schemes: tuple[str, ...] = ("euler", "midpoint", "rk4")
    networks: tuple[str, ...] = ("linear", "mlp")
    width: int = 64
    depth: int = 2
    iterations: int = 3000
    learning_rate: float = 1e-2
    final_learning_rate: float = 1e-5
    horizon: int = 64
    finer: int = 6

    def __post_init__(self) -> None:
        as_integer("modes", self.modes)
        stride = as_integer("stride", self.stride)
        if stride & (stride - 1):
            raise ValueError(
                f"stride={stride!r}: must be a power of two (1, 2, 4, ...), so that every dt of the ladder, "
                f"dt_train / 2^k, is a multiple or a whole fraction of the record's dt"
            )
        if not 0.0 < self.training_fraction < 1.0:
            raise ValueError(f"training_fraction={self.training_fraction!r}: must lie strictly between 0 and 1")
        unknown = set(self.networks) - {"linear", "mlp"}
        if unknown or not self.networks:
            raise ValueError(f"networks={self.networks!r}: choose from 'linear' and 'mlp'")
        if not self.training_schemes or not self.evaluation_schemes:
            raise ValueError("training_schemes and evaluation_schemes must each name at least one scheme")
        for schemes in (*self.training_schemes, self.evaluation_schemes):
            for scheme in schemes:
                get_tableau(scheme)  # an unknown name fails here, with the list of known ones
        as_integer("horizon (training steps of the held-out record)", self.horizon, minimum=4)
        for name in ("width", "depth", "iterations", "finer"):
            as_integer(name, getattr(self, name))
        for name in ("learning_rate", "final_learning_rate"):
            as_learning_rate(name, getattr(self, name))


@dataclasses.dataclass
class RecordedFieldOutcome:
    """The study, the decomposition and the training records of one run."""

    recipe: RecordedFieldRecipe
    source: dict[str, Any]
    decomposition: ProperOrthogonalDecomposition
    study: ConvergenceStudy
    spectra: list[dict[str, Any]]
    histories: dict[str, TrainingHistory]
    seconds: float
    files: list[Path] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        return self.study.swap_table()


def _augmented(states: torch.Tensor) -> torch.Tensor:
    """(z, 1): an affine map of z is a linear map of it."""
    return torch.cat([states, torch.ones_like(states[:, :1])], dim=1)


def _held_out_intervals(n_times: int, n_train: int, stride: int, horizon: int) -> int:
    """Record intervals of the evaluation, from the last training snapshot: the largest multiple of
    4 * stride that fits in the held-out record and in ``horizon`` training steps, so that 4 dt_train and
    2 dt_train are rungs of the ladder."""
    return (min(n_times - n_train, horizon * stride) // (4 * stride)) * 4 * stride


def _pairs(spectrum: torch.Tensor) -> list[complex]:
    """Eigenvalues with Im >= 0 (one of each conjugate pair), by increasing frequency."""
    values = [complex(v) for v in spectrum.tolist() if v.imag >= -1e-12]
    return sorted(values, key=lambda v: (abs(v.imag), v.real))


def _spectra(data_operator: torch.Tensor, linear_fields: dict[str, AffineVectorField], training_dt: float):
    """Rows per eigenvalue (pair) of the data's generator: its frequency, growth rate and omega dt_train, and
    the same numbers for every linear model (matched by rank in frequency)."""
    data = _pairs(torch.linalg.eigvals(data_operator))
    models = {name: _pairs(torch.linalg.eigvals(field.operator.detach())) for name, field in linear_fields.items()}
    rows = []
    for index, value in enumerate(data):
        row = {"frequency": value.imag / (2 * math.pi), "growth_rate": value.real,
               "omega_dt_train": abs(value.imag) * training_dt, "models": {}}
        for name, values in models.items():
            if index < len(values):
                row["models"][name] = {"frequency": values[index].imag / (2 * math.pi), "growth_rate": values[index].real}
        rows.append(row)
    return rows


def markdown_spectra(rows: list[dict[str, Any]]) -> str:
    """Markdown: per eigenvalue (pair) of the data's generator, frequency f and growth rate sigma
    (lambda = sigma +- 2 pi i f), omega dt_train, and each linear model's f and sigma."""
    if not rows:
        return ""
    names = list(rows[0]["models"])
    header = "| data: f | data: sigma | omega dt_train | " + " | ".join(f"{name}: f, sigma" for name in names) + " |"
    lines = [header, "| --- | --- | --- |" + " --- |" * len(names)]
    for row in rows:
        cells = []
        for name in names:
            model = row["models"].get(name)
            cells.append("-" if model is None else f"{model['frequency']:.4f}, {model['growth_rate']:+.4f}")
        lines.append(f"| {row['frequency']:.4f} | {row['growth_rate']:+.4f} | {row['omega_dt_train']:.3f} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_recorded_field(
    data: str | Path | TrajectoryDataset,
    output: str | Path | None = None,
    *,
    recipe: RecordedFieldRecipe | None = None,
    seeds: Sequence[int] = (0,),
    device: str | torch.device = "cpu",
    compile: bool = False,
    progress: bool = True,
) -> RecordedFieldOutcome:
    """Run the learned-integrator experiment on a one-trajectory field dataset (a file or a read dataset) and,
    when ``output`` is given, write ``report.md``, ``results.json`` and ``convergence_grid.png`` there.

    ``seeds`` trains every MLP once per seed; ``device`` is where the MLPs train (the evaluation runs on the
    CPU in float64); ``compile`` compiles each training iteration as one graph (``TrainingSettings.compile``).
    Raises ``ValueError`` before any training when the record is too short for the recipe.
    """
    began = time.perf_counter()
    seeds = as_seeds("seeds", seeds)
    for name, flag in (("compile", compile), ("progress", progress)):
        as_flag(name, flag)
    recipe = recipe or RecordedFieldRecipe()
    dataset = read_dataset(data) if isinstance(data, (str, Path)) else data
    snapshots = snapshot_data(dataset).snapshots
    n_times, values = snapshots.shape
    n_train = int(math.floor(recipe.training_fraction * n_times))
    stride = recipe.stride
    if n_train - stride < 2 * recipe.modes:
        raise ValueError(
            f"the training part holds {n_train} snapshots of {n_times} (training_fraction = "
            f"{recipe.training_fraction:g}): {max(n_train - stride, 0)} pairs at stride {stride}, too few to learn "
            f"{recipe.modes} modes' dynamics (need at least {2 * recipe.modes}); use a longer record or fewer modes"
        )
    intervals = _held_out_intervals(n_times, n_train, stride, recipe.horizon)
    if intervals == 0:
        raise ValueError(
            f"the held-out part holds {n_times - n_train} snapshots after the {n_train} training ones; the evaluation "
            f"needs {4 * stride} (4 training steps of stride {stride}); use a longer record, a smaller stride or a "
            f"smaller training_fraction"
        )
    if recipe.modes > min(n_train - 1, values):
        raise ValueError(f"modes={recipe.modes}: at most min(training snapshots - 1, values per snapshot) = "
                         f"{min(n_train - 1, values)}")

    decomposition = ProperOrthogonalDecomposition.fit(snapshots[:n_train], recipe.modes)
    coefficients = decomposition.project(snapshots)
    training_dt = stride * dataset.dt
    training = coefficients[:n_train]
    starts, successors = training[:-stride], training[stride:]
    evaluation = coefficients[n_train - 1 : n_train + intervals]

    fields: dict[str, Any] = {}
    linear: dict[str, AffineVectorField] = {}
    trained_in: dict[str, tuple[str, ...]] = {}
    histories: dict[str, TrainingHistory] = {}
    device = torch.device(device)
    on_device = starts.to(device), successors.to(device)
    data_map = least_squares_map(_augmented(starts), _augmented(successors))
    suffix = (lambda seed: f" seed {seed}") if len(seeds) > 1 else (lambda seed: "")
    for schemes in recipe.training_schemes:
        label = "+".join(get_tableau(s).name for s in schemes)
        if "linear" in recipe.networks and len(schemes) == 1:
            operator = scheme_operator(data_map, training_dt, schemes[0])
            field = AffineVectorField(operator[:-1, :-1], operator[:-1, -1]).requires_grad_(False)
            fields[f"linear {label}"] = linear[f"linear {label}"] = field
            trained_in[f"linear {label}"] = schemes
        if "mlp" in recipe.networks:
            for seed in seeds:
                name = f"mlp {label}{suffix(seed)}"
                torch.manual_seed(seed)
                field = NeuralVectorField(MLP(recipe.modes, recipe.modes, recipe.width, recipe.depth)).to(
                    device, torch.float64)
                settings = TrainingSettings(
                    iterations=recipe.iterations, learning_rate=recipe.learning_rate,
                    final_learning_rate=recipe.final_learning_rate, patience=max(1000, recipe.iterations // 3),
                    min_improvement=1e-4, seed=seed, progress=progress, description=name, compile=compile,
                )
                loss = embedded_loss(field, on_device[0], on_device[1][:, None], training_dt, schemes)
                histories[name] = train(field, loss, starts.shape[0], settings)
                field.to("cpu").requires_grad_(False)
                fields[name], trained_in[name] = field, schemes

    study = convergence_study(
        fields, evaluation, evaluation[0], training_dt=training_dt, t_final=intervals * dataset.dt,
        schemes=recipe.evaluation_schemes, training_schemes=trained_in, finer=recipe.finer,
        system=f"{dataset.system} ({recipe.modes} POD modes)", progress=progress,
    )
    # the generator the record implies at its own sampling step (exact DMD, then the matrix logarithm)
    generator = logarithm_operator(least_squares_map(_augmented(training[:-1]), _augmented(training[1:])), dataset.dt)
    generator = generator[:-1, :-1]  # log of [[Omega, b], [0, 1]] is [[log Omega, .], [0, 0]]
    source = {
        "file": str(data) if isinstance(data, (str, Path)) else None,
        "system": dataset.system,
        "parameters": dataset.parameters,
        "dt": dataset.dt,
        "n_times": n_times,
        "values_per_snapshot": values,
        "training_snapshots": n_train,
        "training_pairs": int(starts.shape[0]),
        "training_dt": training_dt,
        "evaluation_start_time": float(dataset.times[n_train - 1]),
        "t_final": intervals * dataset.dt,
        "captured_energy": decomposition.captured_energy,
        "energy_fractions": decomposition.energy_fractions().tolist(),
    }
    outcome = RecordedFieldOutcome(recipe, source, decomposition, study, _spectra(generator, linear, training_dt),
                               histories, time.perf_counter() - began)
    if output is not None:
        outcome.files = _write_report(outcome, Path(output))
    return outcome


def _write_report(outcome: RecordedFieldOutcome, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recipe, study, source = outcome.recipe, outcome.study, outcome.source
    folder.mkdir(parents=True, exist_ok=True)
    figure = study.plot_grid()
    grid = atomic_write(folder / "convergence_grid.png", lambda p: figure.savefig(p, format="png", dpi=110))
    plt.close(figure)
    energies = ", ".join(f"{value:.3f}" for value in source["energy_fractions"])
    sections = [
        f"# Learned integrators on recorded data: {source['system']}",
        "",
        f"Record: {source['file'] or 'a dataset in memory'}, {source['n_times']} snapshots of "
        f"{source['values_per_snapshot']} values, dt = {source['dt']:g}. The first {source['training_snapshots']} "
        f"snapshots give the POD ({recipe.modes} modes, energy fractions {energies}: {source['captured_energy']:.4f} "
        f"of the fluctuation) and {source['training_pairs']} training pairs at dt_train = {source['training_dt']:g}. "
        f"Evaluation on the held-out record from t = {source['evaluation_start_time']:g} over T = {source['t_final']:g}, "
        f"dt from {min(study.dts):.4g} to {max(study.dts):.4g}; rollouts finer than the record are compared at its "
        f"samples. Errors in POD coefficients, in units of the leading mode's RMS amplitude. Run time "
        f"{outcome.seconds:.0f} s.",
        "",
        *study.markdown_sections(),
        "",
        "![convergence grid](convergence_grid.png)",
    ]
    if outcome.spectra:
        sections += [
            "",
            "## Spectra of the linear models",
            "",
            "Eigenvalues lambda = sigma +- 2 pi i f of the generator the record implies (matrix logarithm of its "
            "one-step map at its own dt) and of each linear G, matched by frequency rank. Forward Euler's G "
            "carries the spurious damping (cos(omega dt) - 1)/dt of its one-step map; omega dt_train near 1 or above "
            "means the training step resolves that pair poorly.",
            "",
            markdown_spectra(outcome.spectra),
        ]
    if outcome.histories:
        sections += ["", "## Training", "", "| model | iterations | best loss | seconds |", "| --- | --- | --- | --- |",
                     *[f"| {name} | {h.iterations} | {h.best_loss:.3e} | {h.seconds:.1f} |"
                       for name, h in outcome.histories.items()]]
    report = atomic_write(folder / "report.md", lambda p: p.write_text("\n".join(sections) + "\n"))
    payload = {
        "recipe": dataclasses.asdict(recipe),
        "source": source,
        "study": study.to_dict(),
        "spectra": outcome.spectra,
        "training": {name: {"iterations": h.iterations, "best_loss": h.best_loss, "seconds": h.seconds,
                            "stopped_early": h.stopped_early} for name, h in outcome.histories.items()},
        "seconds": outcome.seconds,
    }
    results = atomic_write(folder / "results.json",
                           lambda p: p.write_text(json.dumps(payload, indent=2, default=_json_default)))
    return [report, results, grid]


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        return value.item()
    return float(value)
