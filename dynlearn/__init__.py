"""dynlearn: learning the dynamics of physical systems from data.

The names a user reaches for first, importable from ``dynlearn`` itself (each lives in one family of the
package and is loaded when first used, so ``import dynlearn`` stays light and importing the integrators never
loads the autoencoder or ContinuousNet):

    integration     step, rollout, time_grid, odeint, ButcherTableau, get_tableau, available_tableaus,
                    register_tableau, step_plan, stability_matrix, NonFiniteStateError
    fields          EmbeddedModel, MLP, NeuralVectorField, LinearVectorField, AffineVectorField,
                    HybridVectorField, DiscreteMap, SkipMap, LinearMap, NeuralODE; train, TrainingSettings,
                    embedded_loss, map_loss; EnsembleMLP, ensemble_embedded_loss, train_ensemble
    autoencoder     PhysicsAwareAutoencoder, AutoencoderLoss, train_autoencoder, solve_discrete_lyapunov,
                    stability_prior, solve_continuous_lyapunov, continuous_stability_prior
    continuousnet   ContinuousNet, OdeBlock, train_classifier

Sub-packages beside the core: ``dynlearn.systems`` (physical systems), ``dynlearn.datasets`` (the HDF5 format,
torch views, real-data readers), ``dynlearn.analysis`` (convergence tests and the other instruments;
``dynlearn.analysis.experiments`` for the studies). ``docs/architecture.md`` is the map.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("dynlearn")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

_FAMILIES = {
    "dynlearn.integration": ("ADAPTIVE_METHODS", "ButcherTableau", "NonFiniteStateError", "StepPlan", "VectorField",
                             "available_tableaus", "get_tableau", "odeint", "register_tableau", "rollout",
                             "stability_matrix", "step", "step_plan", "time_grid"),
    "dynlearn.fields": ("MLP", "AffineVectorField", "DiscreteMap", "EmbeddedModel", "EnsembleMLP", "HybridVectorField",
                        "LinearMap", "LinearVectorField", "NeuralODE", "NeuralVectorField", "SkipMap",
                        "TimeDependentVectorField", "TrainingHistory", "TrainingSettings", "embedded_loss",
                        "ensemble_embedded_loss", "map_loss", "train", "train_ensemble"),
    "dynlearn.autoencoder": ("AutoencoderLoss", "AutoencoderTrainingSettings", "PhysicsAwareAutoencoder",
                             "continuous_stability_prior", "solve_continuous_lyapunov", "solve_discrete_lyapunov",
                             "stability_prior", "train_autoencoder"),
    "dynlearn.continuousnet": ("ClassifierTrainingSettings", "ContinuousNet", "OdeBlock", "train_classifier"),
}
_WHERE = {name: family for family, names in _FAMILIES.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'dynlearn' has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name]), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, imported eagerly
    from dynlearn.autoencoder import (AutoencoderLoss, AutoencoderTrainingSettings, PhysicsAwareAutoencoder,
                                      continuous_stability_prior, solve_continuous_lyapunov, solve_discrete_lyapunov,
                                      stability_prior, train_autoencoder)
    from dynlearn.continuousnet import ClassifierTrainingSettings, ContinuousNet, OdeBlock, train_classifier
    from dynlearn.fields import (MLP, AffineVectorField, DiscreteMap, EmbeddedModel, EnsembleMLP, HybridVectorField,
                                 LinearMap, LinearVectorField, NeuralODE, NeuralVectorField, SkipMap,
                                 TimeDependentVectorField, TrainingHistory,
                                 TrainingSettings, embedded_loss, ensemble_embedded_loss, map_loss, train,
                                 train_ensemble)
    from dynlearn.integration import (ADAPTIVE_METHODS, ButcherTableau, NonFiniteStateError, StepPlan, VectorField,
                                      available_tableaus, get_tableau, odeint, register_tableau, rollout,
                                      stability_matrix, step, step_plan, time_grid)
