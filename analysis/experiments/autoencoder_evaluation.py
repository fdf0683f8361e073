r"""The physics-aware autoencoder experiment on a dataset file: recipes, training of the aware model and its
physics-agnostic baselines into a run folder, and the evaluation of the original work.

Data: a snapshot matrix (n_times, m) from a dynlearn dataset: the flattened field of every snapshot
(cylinder vorticity), or its ocean cells only (sea-surface temperature, from the ``land_mask`` field).
Preprocessing, fitted on the training snapshots only and stored in the run: subtract the per-value training
mean, divide by one number (the training standard deviation), so errors are relative to the field's own size.

Models of a run (each in its own sub-folder, resumable; :func:`model_settings` says how each is made)::

    aware             kappa = recipe.kappa (the Lyapunov prior)
    agnostic          kappa = 0, no weight decay
    agnostic-decay    kappa = 0, weight decay recipe.weight_decay (the classical way to keep Omega small)
    stable            kappa = 0, Omega's spectral norm bounded by recipe.spectral_bound by construction
                      (dynlearn.autoencoder.model.SpectralNormBound)
    continuous        a latent generator Lambda, Omega(dt) = exp(dt Lambda), the continuous Lyapunov prior
                      (kappa = recipe.kappa on Lambda^T P + P Lambda = -I); trained at the record's step
    continuous-SCHEME the same with Lambda inside one step of a registered Runge-Kutta scheme (continuous-rk4,
                      continuous-euler, ...): Omega(dt) = R(dt Lambda)
    consistent        the consistent Koopman autoencoder: a backward map D, its backward prediction and the
                      consistency loss (weights recipe.backward_weight, recipe.consistency_weight), kappa = 0

Evaluation: from ``n_initial`` initial conditions spread evenly over the test snapshots (each with ``horizon``
true snapshots after it), encode once, apply Omega ``horizon`` times, decode; the relative error
:math:`|\hat y - y| / |y|` per prediction step (mean and 5-95 % band over the initial conditions), the eigenvalues of
Omega against the unit circle, the spectral radius, the number of negative eigenvalues of P, the training time, and the
same errors of persistence (y_hat(t0 + s dt) = y(t0), the reference a forecast must beat); a table (Markdown, JSON) and
two plots. A continuous-time model also meets the convergence test (:func:`dynlearn.analysis.convergence_study`) in
latent space: z' = Lambda z from the encoded initial conditions, integrated by Euler, midpoint and RK4 to the horizon
with steps 4 dt_record ... dt_record / 16, against the encoded record (rungs finer than the record judged at its
samples): a continuous model's error stays at its plateau as the step is refined, a discrete map's (trained inside
Euler, say) rises away from dt_record. Its verdict, per model, is in the table. """

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from dynlearn._checks import as_flag, as_integer, as_learning_rate, as_number_in
from dynlearn._files import atomic_write, folder_lock, load_checkpoint, load_tensors
from dynlearn.autoencoder.model import AutoencoderLoss, PhysicsAwareAutoencoder, snapshot_windows
from dynlearn.autoencoder.training import AutoencoderHistory, AutoencoderTrainingSettings, train_autoencoder
from dynlearn.datasets.format import dataset_system, read_dataset
from dynlearn.datasets.snapshots import snapshot_data
from dynlearn.integration.tableaus import get_tableau
from dynlearn.autoencoder.lyapunov import lyapunov_eigenvalues, spectral_radius

__all__ = ["AutoencoderRecipe", "AUTOENCODER_RECIPES", "recipe_for_dataset", "train_run", "evaluate_run", "MODELS",
           "DEFAULT_MODELS", "ALL_MODELS", "resolve_models", "model_settings"]

#: the models a run trains by default
DEFAULT_MODELS = ("aware", "agnostic", "agnostic-decay")
#: the models with fixed names (besides them, "continuous-SCHEME" for any registered scheme)
MODELS = (*DEFAULT_MODELS, "stable", "continuous", "consistent")
#: every kind of model side by side (``--models all``): the evaluation table of the README
ALL_MODELS = ("aware", "stable", "continuous", "continuous-rk4", "consistent", "agnostic", "agnostic-decay")
#: the prefix of a continuous-time model inside a Runge-Kutta scheme
_SCHEME_PREFIX = "continuous-"


def resolve_models(models: Sequence[str]) -> tuple[str, ...]:
    """The model names, checked: each of :data:`MODELS` or "continuous-SCHEME" (a registered scheme), each once;
    "all" stands for :data:`ALL_MODELS`."""
    names = [name for entry in models for name in (ALL_MODELS if entry == "all" else (entry,))]
    allowed = f"some of {list(MODELS)}, continuous-SCHEME (a registered scheme, e.g. continuous-rk4) or all"
    if not names or len(set(names)) != len(names):
        raise ValueError(f"models must be {allowed}, each once, got {list(models)}")
    for name in names:
        if name in MODELS:
            continue
        if not name.startswith(_SCHEME_PREFIX):
            raise ValueError(f"models must be {allowed}, got {name!r}")
        try:
            get_tableau(name[len(_SCHEME_PREFIX):])
        except (KeyError, ValueError) as error:
            raise ValueError(f"model {name!r}: {error.args[0] if error.args else error}") from None
    return tuple(names)


@dataclasses.dataclass(frozen=True)
class AutoencoderRecipe:
    """Everything a run needs besides the data. ``train_snapshots``: the first snapshots used for training
    (an int), or a fraction of the record (a float in (0, 1)); the rest is the test part."""

    name: str
    train_snapshots: int | float
    horizon: int
    n_initial: int = 30
    latent: int = 15
    widths: tuple[int, ...] = (40, 25)
    steps: int = AutoencoderLoss.steps  # the loss terms: AutoencoderLoss's defaults
    reconstruction: float = AutoencoderLoss.reconstruction
    kappa: float = AutoencoderLoss.kappa
    gamma: float = AutoencoderLoss.gamma
    weight_decay: float = 1e-4
    spectral_bound: float = 1.0  # the "stable" model's bound on Omega's spectral norm (and radius)
    backward_weight: float = AutoencoderLoss.backward  # the "consistent" model's backward prediction
    consistency_weight: float = AutoencoderLoss.consistency  # and its consistency loss (Azencot et al. 2020)
    report_steps: tuple[int, ...] = ()  # prediction steps the table reports (() : 10, horizon / 2, horizon)
    epochs: int = 600
    batch_size: int = 34
    learning_rate: float = 1e-2
    final_learning_rate: float = 1e-4

    def __post_init__(self) -> None:
        """Every value checked at construction, with one line naming it."""
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        if isinstance(self.train_snapshots, float):
            if not 0.0 < self.train_snapshots < 1.0:
                raise ValueError(f"train_snapshots as a fraction must lie strictly between 0 and 1, got "
                                 f"{self.train_snapshots!r}")
        else:
            as_integer("train_snapshots (a count, or a fraction of the record)", self.train_snapshots, minimum=3)
        for name in ("horizon", "n_initial", "latent", "epochs", "batch_size"):
            as_integer(name, getattr(self, name))
        widths = tuple(self.widths)
        if not widths:
            raise ValueError("widths must name at least one hidden layer")
        for width in widths:
            as_integer("widths", width)
        object.__setattr__(self, "widths", widths)
        AutoencoderLoss(self.steps, self.reconstruction, self.kappa, self.gamma)  # steps, lambda, kappa, gamma
        as_number_in("weight_decay", self.weight_decay, 0.0, math.inf)
        as_number_in("spectral_bound", self.spectral_bound, 1e-6, 1.0, include_high=True)
        AutoencoderLoss(backward=self.backward_weight, consistency=self.consistency_weight)
        report = tuple(self.report_steps)
        for step in report:
            as_integer("report_steps", step)
        object.__setattr__(self, "report_steps", report)
        for name in ("learning_rate", "final_learning_rate"):
            as_learning_rate(name, getattr(self, name))


#: The recipes by name: ``cylinder`` (a wake record) and ``sst`` (a sea-surface temperature record), each the
#: original study's settings for that data (``recipe_for_dataset`` picks one from a file's system).
AUTOENCODER_RECIPES = {
    # cylinder wake: train on 100 snapshots (20 D/U, about 3.3 shedding periods), predict 100 steps from 30 initial
    # conditions in the rest: the dataset needs >= 229 snapshots (dynlearn generate cylinder --snapshots 300).
    # Small batches and a small rate: on the coarse wake, batch 34 at rate 1e-2 (3000 epochs) left the 10-step
    # error at 1.6, batch 8 at 1e-3 (1000 epochs) brought it to 0.4-0.5.
    "cylinder": AutoencoderRecipe("cylinder", train_snapshots=100, horizon=100, epochs=1000, batch_size=8,
                                  learning_rate=1e-3, final_learning_rate=1e-5, report_steps=(10, 50, 100)),
    # daily SST: train on the first two thirds (4 of 6 years), predict 180 days from 30 initial conditions
    "sst": AutoencoderRecipe("sst", train_snapshots=2 / 3, horizon=180, epochs=300, batch_size=32,
                             learning_rate=1e-3, final_learning_rate=1e-5, report_steps=(30, 90, 180)),
}


def _train_count(recipe: AutoencoderRecipe, n_times: int) -> int:
    if isinstance(recipe.train_snapshots, float):
        return int(math.floor(recipe.train_snapshots * n_times))
    return int(recipe.train_snapshots)


#: the shortest evaluation horizon and the fewest initial conditions a recipe is shrunk to for a short record
MINIMUM_HORIZON = 10
MINIMUM_INITIAL = 5


def _check_lengths(recipe: AutoencoderRecipe, n_times: int, m: int) -> tuple[int, AutoencoderRecipe, str]:
    """The training count, the recipe with its evaluation sized to the record, and a note saying what was shrunk
    ("" when nothing was). A test part shorter than horizon + n_initial keeps the initial conditions and shortens
    the horizon (down to MINIMUM_HORIZON), then takes fewer initial conditions (down to MINIMUM_INITIAL); shorter
    still is refused."""
    n_train = _train_count(recipe, n_times)
    if n_train < recipe.steps + 2:
        raise ValueError(f"{n_train} training snapshots are too few for {recipe.steps}-step targets")
    if recipe.latent > m:
        raise ValueError(f"latent = {recipe.latent} is larger than the data dimension m = {m}")
    test = n_times - n_train
    longer = "; a longer record gives the full evaluation" + (
        ": dynlearn generate cylinder --snapshots 300" if recipe.name == "cylinder" else "")
    if test >= recipe.horizon + recipe.n_initial:
        return n_train, recipe, ""
    horizon = min(recipe.horizon, test - recipe.n_initial)
    initial = recipe.n_initial
    if horizon < MINIMUM_HORIZON:
        horizon, initial = min(recipe.horizon, MINIMUM_HORIZON), test - min(recipe.horizon, MINIMUM_HORIZON)
    if initial < min(recipe.n_initial, MINIMUM_INITIAL):
        raise ValueError(
            f"the test part holds {test} snapshots (of {n_times}; the first {n_train} train), too few for "
            f"{recipe.n_initial} initial conditions with {recipe.horizon} steps each (need "
            f"{recipe.horizon + recipe.n_initial}, at least {MINIMUM_HORIZON + MINIMUM_INITIAL})" + longer)
    note = (f"the test part holds {test} snapshots (of {n_times}; the first {n_train} train): evaluated from "
            f"{initial} initial conditions over {horizon} steps, where the recipe asks {recipe.n_initial} over "
            f"{recipe.horizon} (which need {recipe.horizon + recipe.n_initial})" + longer)
    return n_train, dataclasses.replace(recipe, horizon=horizon, n_initial=initial), note


def model_settings(name: str, recipe: AutoencoderRecipe, time_step: float
                   ) -> tuple[dict[str, Any], AutoencoderLoss, float]:
    """How the run's model ``name`` is made and trained: the :class:`PhysicsAwareAutoencoder` options (besides the
    sizes), its loss, and its weight decay (module docstring; ``time_step``: the record's dt)."""
    kappa = recipe.kappa if name == "aware" or name == "continuous" or name.startswith(_SCHEME_PREFIX) else 0.0
    loss = AutoencoderLoss(recipe.steps, recipe.reconstruction, kappa, recipe.gamma, recipe.backward_weight,
                           recipe.consistency_weight)
    options: dict[str, Any] = {}
    if name == "stable":
        options = {"omega_bound": recipe.spectral_bound}
    elif name == "continuous":
        options = {"time_step": time_step}
    elif name.startswith(_SCHEME_PREFIX):
        options = {"time_step": time_step, "scheme": name[len(_SCHEME_PREFIX):]}
    elif name == "consistent":
        options = {"backward": True}
    return options, loss, recipe.weight_decay if name == "agnostic-decay" else 0.0


def _plain(recipe: dict) -> dict:
    """A recipe's asdict as JSON holds it (tuples as lists)."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in recipe.items()}


def _write_json(path: Path, content: Any) -> None:
    atomic_write(path, lambda temporary: temporary.write_text(json.dumps(content, indent=2)))


#: the recipe a dataset's system gets when none is named
RECIPE_FOR_SYSTEM = {"cylinder": "cylinder", "sea_surface_temperature": "sst"}


def recipe_for_dataset(data: str | Path) -> str:
    """The name of the recipe for the dataset file ``data``, from its system (``RECIPE_FOR_SYSTEM``)."""
    system = dataset_system(data)
    if system not in RECIPE_FOR_SYSTEM:
        raise ValueError(f"{data} holds system {system!r}; the autoencoder recipes are for "
                         f"{' and '.join(RECIPE_FOR_SYSTEM)} data (or name a recipe: {sorted(AUTOENCODER_RECIPES)})")
    return RECIPE_FOR_SYSTEM[system]


def train_run(
    data: str | Path,
    output: str | Path,
    recipe: str | AutoencoderRecipe | None = None,
    *,
    models: Sequence[str] = DEFAULT_MODELS,
    kappa: float | None = None,
    epochs: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, AutoencoderHistory]:
    """Train ``models`` on the dataset file ``data`` into ``output`` (resuming a run with the same settings, to which
    models it does not hold yet are added);
    ``recipe``: a name of :data:`AUTOENCODER_RECIPES`, a recipe, or None for the one of the data's system;
    ``kappa``, ``epochs`` and ``steps`` (S) override the recipe's."""
    overwrite, progress = as_flag("overwrite", overwrite), as_flag("progress", progress)
    if recipe is None:
        recipe = recipe_for_dataset(data)
    if isinstance(recipe, str):
        if recipe not in AUTOENCODER_RECIPES:
            raise ValueError(f"recipe must be one of {sorted(AUTOENCODER_RECIPES)}, got {recipe!r}")
        recipe = AUTOENCODER_RECIPES[recipe]
    recipe = dataclasses.replace(recipe, **{k: v for k, v in (("kappa", kappa), ("epochs", epochs), ("steps", steps))
                                            if v is not None})
    models = resolve_models(models)
    dataset = read_dataset(data)
    source = snapshot_data(dataset)
    n_times, m = source.snapshots.shape
    n_train, recipe, note = _check_lengths(recipe, n_times, m)
    if note and progress:
        print(f"note: {note}", file=sys.stderr)
    folder = Path(output)
    config = {"data": str(Path(data).resolve()), "recipe": _plain(dataclasses.asdict(recipe)),
              "models": list(models), "seed": seed, "n_train": n_train, "n_times": n_times, "m": m,
              "system": dataset.system, "checksum": dataset.attributes.get("checksum_sha256"),
              "evaluation_note": note, "time_step": float(dataset.dt)}
    with folder_lock(folder):  # no second run (nor an --overwrite) into a folder a run is using
        return _train_into(folder, config, overwrite, source, recipe, models, seed, device, n_train, progress)


def _train_into(folder: Path, config: dict, overwrite: bool, source, recipe: AutoencoderRecipe,
                models: Sequence[str], seed: int, device: str, n_train: int, progress: bool
                ) -> dict[str, AutoencoderHistory]:
    """train_run's work, with the folder locked."""
    m = config["m"]
    config_path = folder / "config.json"
    if config_path.exists():
        previous = json.loads(config_path.read_text())
        # a run written before a recipe field or the time step existed (they change nothing it trained) is the same
        previous["recipe"] = {**config["recipe"], **previous.get("recipe", {})}
        previous.setdefault("time_step", config["time_step"])
        earlier = previous.pop("models", [])
        if previous != {key: value for key, value in config.items() if key != "models"}:
            if not overwrite:
                raise ValueError(f"{folder} holds a run with other settings; pass overwrite=True (--overwrite) to "
                                 f"replace it, or choose another folder")
            shutil.rmtree(folder)
        else:  # the same run: models it holds are kept (and evaluated), new ones join it
            config = {**config, "models": [*earlier, *(name for name in config["models"] if name not in earlier)]}
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(config_path, config)
    train = source.snapshots[:n_train]
    mean = train.mean(dim=0)
    scale = float((train - mean).std())
    if not scale > 0:
        raise ValueError("the training snapshots do not vary: nothing to learn")
    preprocessing = {"mean": mean, "scale": torch.tensor(scale)}
    atomic_write(folder / "preprocessing.pt", lambda temporary: torch.save(preprocessing, temporary))
    windows = snapshot_windows(((train - mean) / scale).to(torch.float32), recipe.steps).contiguous().to(device)
    histories = {}
    for name in models:
        model_folder = folder / name
        model_folder.mkdir(exist_ok=True)
        final = model_folder / "model.pt"
        if final.exists():
            histories[name] = AutoencoderHistory(**json.loads((model_folder / "history.json").read_text()))
            continue
        options, loss, weight_decay = model_settings(name, recipe, config["time_step"])
        model = PhysicsAwareAutoencoder(m, recipe.latent, recipe.widths, seed=seed, **options)
        settings = AutoencoderTrainingSettings(
            epochs=recipe.epochs, batch_size=recipe.batch_size, learning_rate=recipe.learning_rate,
            final_learning_rate=recipe.final_learning_rate, weight_decay=weight_decay, seed=seed, progress=progress,
            description=f"{name} (kappa = {loss.kappa:g})")
        history = train_autoencoder(model, windows, loss, settings, checkpoint=model_folder / "checkpoint.pt")
        _write_json(model_folder / "history.json", dataclasses.asdict(history))
        state = {"config": model.config(), "state": {k: v.cpu() for k, v in model.state_dict().items()}}
        atomic_write(final, lambda temporary: torch.save(state, temporary))
        (model_folder / "checkpoint.pt").unlink(missing_ok=True)
        histories[name] = history
    return histories


def load_model(folder: str | Path) -> PhysicsAwareAutoencoder:
    saved = load_checkpoint(Path(folder) / "model.pt", ("config", "state"), "a trained autoencoder")
    config = saved["config"]
    model = PhysicsAwareAutoencoder(config["n_features"], config["latent"], config["widths"], config["activation"],
                                    omega_bound=config.get("omega_bound"), time_step=config.get("time_step"),
                                    scheme=config.get("scheme", "exact"), backward=config.get("backward", False))
    model.load_state_dict(saved["state"])
    return model.eval()


def _relative_errors(model: PhysicsAwareAutoencoder, snapshots: torch.Tensor, starts: np.ndarray, horizon: int) -> np.ndarray:
    """(n_initial, horizon + 1) relative errors |y_hat - y| / |y| (step 0: reconstruction)."""
    predictions = model.predict(snapshots[starts], horizon)  # (horizon + 1, n_initial, m)
    truth = torch.stack([snapshots[s:s + horizon + 1] for s in starts], dim=1)
    errors = (predictions.double() - truth).norm(dim=-1) / truth.norm(dim=-1)
    return errors.T.numpy()


def _persistence_errors(snapshots: torch.Tensor, starts: np.ndarray, horizon: int) -> np.ndarray:
    """(n_initial, horizon + 1) relative errors of persistence, y_hat(t0 + s dt) = y(t0): the reference a model
    must beat (0 at step 0)."""
    truth = torch.stack([snapshots[s:s + horizon + 1] for s in starts], dim=1).double()  # (horizon + 1, n, m)
    errors = (truth[:1] - truth).norm(dim=-1) / truth.norm(dim=-1)
    return errors.T.numpy()


def evaluate_run(run: str | Path, *, data: str | Path | None = None) -> dict[str, Any]:
    """Evaluate every trained model of a run folder; writes ``evaluation/`` (table.md, results.json,
    relative_error.png, eigenvalues.png) and returns the results."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(run)
    config_path = folder / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{folder}: no config.json: not a run folder made by train_run / dynlearn train")
    try:
        config = json.loads(config_path.read_text())
        recipe = AutoencoderRecipe(**{**config["recipe"], "widths": tuple(config["recipe"]["widths"])})
        missing = sorted({"data", "n_times", "m", "n_train", "system", "models"} - set(config))
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{config_path}: not the config.json of a run made by train_run / dynlearn train "
                         f"({type(error).__name__}: {error})") from None
    if missing:
        raise ValueError(f"{config_path}: not the config.json of a run made by train_run / dynlearn train "
                         f"(no {', '.join(missing)})")
    dataset = read_dataset(data if data is not None else config["data"])
    source = snapshot_data(dataset)
    if tuple(source.snapshots.shape) != (config["n_times"], config["m"]):
        raise ValueError(f"the data have shape {tuple(source.snapshots.shape)}, the run was trained on "
                         f"({config['n_times']}, {config['m']})")
    preprocessing = load_checkpoint(folder / "preprocessing.pt", ("mean", "scale"), "a run's preprocessing")
    snapshots = ((source.snapshots - preprocessing["mean"]) / preprocessing["scale"]).to(torch.float32)
    n_train = config["n_train"]
    last_start = config["n_times"] - 1 - recipe.horizon
    starts = np.unique(np.round(np.linspace(n_train, last_start, recipe.n_initial)).astype(int))
    results: dict[str, Any] = {"recipe": recipe.name, "system": config["system"], "n_train": n_train,
                               "evaluation_note": config.get("evaluation_note", ""),
                               "initial_conditions": starts.tolist(), "horizon": recipe.horizon, "models": {}}
    trained = [name for name in config["models"] if (folder / name / "model.pt").exists()]
    results["unfinished"] = {name: _training_state(folder / name, recipe.epochs)
                             for name in config["models"] if name not in trained}
    if not trained:
        raise FileNotFoundError(f"{folder}: no model has finished training ({', '.join(results['unfinished'].values())}"
                                f"); rerun the same dynlearn train command to resume")
    persistence = _persistence_errors(snapshots, starts, recipe.horizon)
    one_step_persistence = _persistence_errors(snapshots, np.arange(n_train, config["n_times"] - 1), 1)[:, 1]
    results["persistence"] = {"one_step_error": float(one_step_persistence.mean()),
                              "error_at": {str(s): float(persistence.mean(0)[s]) for s in _reported_steps(recipe)},
                              "error_mean": persistence.mean(0).tolist()}
    figure, axis = plt.subplots(figsize=(7, 4.5))
    axis.plot(np.arange(1, recipe.horizon + 1), persistence.mean(0)[1:], "k--", lw=1,
              label="persistence, y_hat = y(t0)")
    eigen_figure, eigen_axes = plt.subplots(1, len(trained), figsize=(4 * len(trained), 4), squeeze=False)
    for index, name in enumerate(trained):
        model = load_model(folder / name)
        history = json.loads((folder / name / "history.json").read_text())
        errors = _relative_errors(model, snapshots, starts, recipe.horizon)
        one_step = _relative_errors(model, snapshots, np.arange(n_train, config["n_times"] - 1), 1)[:, 1]
        mean, low, high = errors.mean(0), np.percentile(errors, 5, axis=0), np.percentile(errors, 95, axis=0)
        omega = model.latent_map().detach().double()
        eigenvalues = torch.linalg.eigvals(omega).numpy()
        p = lyapunov_eigenvalues(omega)
        steps = np.arange(recipe.horizon + 1)
        results["models"][name] = {
            "one_step_error": float(one_step.mean()),
            "error_at": {str(s): float(mean[s]) for s in _reported_steps(recipe)},
            "error_mean": mean.tolist(), "error_p05": low.tolist(), "error_p95": high.tolist(),
            "spectral_radius": spectral_radius(omega),
            "negative_eigenvalues_of_P": int((p < 0).sum()),
            "eigenvalues_real": eigenvalues.real.tolist(), "eigenvalues_imag": eigenvalues.imag.tolist(),
            "seconds_per_epoch": AutoencoderHistory(**history).seconds_per_epoch(),
            "training_seconds": float(sum(history["seconds"])),
            "final_loss": history["loss"][-1] if history["loss"] else float("nan"),
        }
        line, = axis.plot(steps, mean, label=f"{name} (radius {results['models'][name]['spectral_radius']:.4f})")
        axis.fill_between(steps, low, high, color=line.get_color(), alpha=0.2)
        circle = np.exp(1j * np.linspace(0, 2 * np.pi, 400))
        ax = eigen_axes[0, index]
        ax.plot(circle.real, circle.imag, "k-", lw=0.8)
        ax.plot(eigenvalues.real, eigenvalues.imag, "o", color=line.get_color())
        ax.set_aspect("equal")
        ax.set_title(f"{name}: eigenvalues of Omega")
        if model.continuous_time:
            results["models"][name]["latent_convergence"] = _latent_convergence(
                model, snapshots, starts, recipe.horizon, name, config["system"])
    axis.set_xlabel("prediction step")
    axis.set_ylabel("relative error |y_hat - y| / |y|")
    axis.set_yscale("log")
    axis.set_title(f"{config['system']}: mean and 5-95 % band over {starts.size} initial conditions")
    axis.legend()
    output = folder / "evaluation"
    output.mkdir(exist_ok=True)
    figure.tight_layout()
    figure.savefig(output / "relative_error.png", dpi=100)
    eigen_figure.tight_layout()
    eigen_figure.savefig(output / "eigenvalues.png", dpi=100)
    plt.close(figure)
    plt.close(eigen_figure)
    if "aware" in results["models"] and "agnostic" in results["models"]:
        results["prior_cost"] = results["models"]["aware"]["seconds_per_epoch"] / results["models"]["agnostic"]["seconds_per_epoch"]
    _write_json(output / "results.json", results)
    atomic_write(output / "table.md", lambda temporary: temporary.write_text(markdown_table(results)))
    return results


def _reported_steps(recipe: AutoencoderRecipe) -> list[int]:
    """The prediction steps the table reports: step 1, the recipe's report_steps within the horizon (default 10
    and horizon / 2) and the horizon."""
    asked = recipe.report_steps or (10, recipe.horizon // 2)
    return sorted({1, recipe.horizon, *(s for s in asked if 1 <= s <= recipe.horizon)})


def _latent_convergence(model: PhysicsAwareAutoencoder, snapshots: torch.Tensor, starts: np.ndarray, horizon: int,
                        name: str, system: str):
    """The convergence test of a continuous-time model in latent space (module docstring): z' = Lambda z from the
    encoded initial conditions, Euler, midpoint and RK4 (and the model's scheme) over a ladder of steps from
    4 dt_record to dt_record / 16, against the encoded record: :meth:`dynlearn.analysis.ConvergenceStudy.to_dict`
    with the reference's RMS size (``reference_size``)."""
    from dynlearn.analysis.study import convergence_study, reference_size

    with torch.no_grad():
        truth = torch.stack([snapshots[s:s + horizon + 1] for s in starts], dim=1)  # (horizon + 1, n_initial, m)
        reference = model.encode(truth).double()
        generator = model.generator.detach().double()
    schemes = ["euler", "midpoint", "rk4"]
    if model.scheme != "exact" and model.scheme not in schemes:
        schemes.append(model.scheme)
    trained = {name: (model.scheme,)} if model.scheme != "exact" else {}  # the exact flow: judged in rk4
    study = convergence_study({name: lambda t, z: z @ generator.T}, reference, reference[0],
                              training_dt=model.time_step, t_final=horizon * model.time_step, schemes=schemes,
                              training_schemes=trained, coarser=2, finer=4, system=system)
    return {**study.to_dict(), "reference_size": reference_size(reference, reference[0], horizon, model.time_step,
                                                                "rms")}


def _training_state(model_folder: Path, epochs: int) -> str:
    """What an unfinished model of a run holds: "aware: epoch 120 of 300 checkpointed" or "aware: not started"."""
    checkpoint = model_folder / "checkpoint.pt"
    if checkpoint.exists():
        try:
            done = len(load_tensors(checkpoint, "a checkpoint", map_location="cpu")["history"]["loss"])
        except Exception:  # noqa: BLE001 (a report line: an unreadable checkpoint is said, not raised)
            return f"{model_folder.name}: an unreadable checkpoint"
        return f"{model_folder.name}: epoch {done} of {epochs} checkpointed"
    return f"{model_folder.name}: not started"


def markdown_table(results: dict[str, Any]) -> str:
    """The evaluation as a Markdown table."""
    names = list(results["models"])
    horizons = list(results["models"][names[0]]["error_at"])
    header = ["model", "one-step error", *[f"error at step {h}" for h in horizons], "spectral radius",
              "negative eigenvalues of P", "s / epoch", "training s"]
    lines = [f"{results['system']} ({results['recipe']} recipe): relative error |y_hat - y| / |y|, mean over "
             f"{len(results['initial_conditions'])} initial conditions of the test part"
             + (f" ({results['evaluation_note']})" if results.get("evaluation_note") else ""), "",
             "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name in names:
        row = results["models"][name]
        lines.append("| " + " | ".join([name, f"{row['one_step_error']:.4f}",
                                        *[f"{row['error_at'][h]:.4f}" for h in horizons],
                                        f"{row['spectral_radius']:.5f}", str(row["negative_eigenvalues_of_P"]),
                                        f"{row['seconds_per_epoch']:.4f}",
                                        f"{row['training_seconds']:.0f}" if "training_seconds" in row else "-"]) + " |")
    if "persistence" in results:  # the reference (evaluations made before it existed lack it)
        row = results["persistence"]
        lines.append("| " + " | ".join(["persistence (y_hat = y(t0))", f"{row['one_step_error']:.4f}",
                                        *[f"{row['error_at'][h]:.4f}" for h in horizons], "-", "-", "-", "-"]) + " |")
    continuous = [name for name in names if "latent_convergence" in results["models"][name]]
    if continuous:
        lines += ["", "Continuous-time models, the convergence test in latent space: z' = Lambda z from the encoded "
                  "initial conditions in each scheme, against the encoded record; RMS error over the horizon as a "
                  "percentage of the latent state's size at steps dt, dt / 4 and dt / 16 (dt the record's; the "
                  "whole ladder, 4 dt to dt / 16, in results.json):", "",
                  "| model | trained in | euler | midpoint | rk4 | verdict |", "| --- | --- | --- | --- | --- | --- |"]
        for name in continuous:
            study = results["models"][name]["latent_convergence"]
            lines.append(f"| {name} | {_trained_in(study, name)} | "
                         + " | ".join(_relative_errors_text(study, name, scheme) for scheme in ("euler", "midpoint",
                                                                                                "rk4"))
                         + f" | {study['models'][name]['verdict']} |")
    if "prior_cost" in results:
        lines += ["", f"Lyapunov prior cost: an aware epoch takes {results['prior_cost']:.2f}x an agnostic one."]
    if results.get("unfinished"):
        lines += ["", "Not evaluated, training unfinished (rerun the same dynlearn train command to resume): "
                  + "; ".join(results["unfinished"].values()) + "."]
    return "\n".join(lines) + "\n"


def _trained_in(study: dict, name: str) -> str:
    schemes = study["models"][name]["trained_in"]
    return "+".join(schemes) if schemes else "exact flow (judged in rk4)"


def _relative_errors_text(study: dict, name: str, scheme: str) -> str:
    """The scheme's RMS errors at dt_record, dt_record / 4 and dt_record / 16, as percentages of the latent state's
    RMS size: "1.2 % / 0.9 % / 0.9 %" (the whole ladder is in results.json)."""
    errors = study["models"][name]["evaluations"][scheme]["rms_errors"]
    ratios = [dt / study["training_dt"] for dt in study["dts"]]
    shown = [errors[min(range(len(ratios)), key=lambda i: abs(ratios[i] - r))] for r in (1, 1 / 4, 1 / 16)]
    return " / ".join(f"{100 * e / study['reference_size']:.3g} %" for e in shown)
