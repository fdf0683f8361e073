"""Experiments: end-to-end studies that compose the instruments of :mod:`dynlearn.analysis`, the models of the
core, :mod:`dynlearn.datasets` and :mod:`dynlearn.systems`, and write their results to a folder. Each module is
one experiment; experiments never import one another (what two share lives with the instruments or datasets)::

    learned_integrators.py     the learned-integrator study on a system with an exact solution (dynlearn study)
    recorded_field.py          the same question on a recorded field in POD modes (dynlearn study --data)
    autoencoder_evaluation.py  the physics-aware autoencoder and its baselines (dynlearn train autoencoder,
                               dynlearn evaluate)
    demonstration.py           observed order of every scheme on the oscillator (dynlearn demo)
    manifestations.py          a trained ContinuousNet as other graphs: schemes, steps, projected bases (compression),
                               the ResNet; accuracy, parameters, time, robustness (dynlearn manifest)
    sweep.py                   the study over dt_train x scheme x seed, as ensembles, resumable, on Ray
                               (dynlearn sweep)

Names are loaded on first use, so that importing one experiment does not import the others.
"""

from importlib import import_module
from typing import Any

_WHERE = {
    "LearnedIntegratorRecipe": "learned_integrators",
    "LEARNED_INTEGRATOR_RECIPES": "learned_integrators",
    "LearnedIntegratorOutcome": "learned_integrators",
    "run_learned_integrators": "learned_integrators",
    "RecordedFieldRecipe": "recorded_field",
    "RecordedFieldOutcome": "recorded_field",
    "run_recorded_field": "recorded_field",
    "AutoencoderRecipe": "autoencoder_evaluation",
    "AUTOENCODER_RECIPES": "autoencoder_evaluation",
    "recipe_for_dataset": "autoencoder_evaluation",
    "train_run": "autoencoder_evaluation",
    "evaluate_run": "autoencoder_evaluation",
    "convergence_demonstration": "demonstration",
    "Perturbations": "manifestations",
    "manifestation_table": "manifestations",
    "SweepGrid": "sweep",
    "SweepResult": "sweep",
    "run_sweep": "sweep",
    "load_sweep": "sweep",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'dynlearn.analysis.experiments' has no attribute {name!r}")
    return getattr(import_module(f"dynlearn.analysis.experiments.{_WHERE[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
