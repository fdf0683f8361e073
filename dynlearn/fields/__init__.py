"""Learned dynamics and their training: vector fields G used through an integrator (the ODE-Net,
``EmbeddedModel``), discrete maps (ResNet-like baselines), hybrids of known physics and a learned correction,
neural ODEs on torchdiffeq, and the training loop with its one- and S-step losses. Its modules::

    models.py    MLP, NeuralVectorField, TimeDependentVectorField (G(t, x)), LinearVectorField, AffineVectorField,
                 HybridVectorField, EmbeddedModel, DiscreteMap, SkipMap, LinearMap, iterate_map, NeuralODE
    training.py  train (Adam, schedule, early stop, resumable), train_ensemble (M members at once, each as
                 train alone), TrainingSettings, TrainingHistory, embedded_loss, map_loss
    ensemble.py  EnsembleMLP (M MLPs stacked), EnsembleVectorField, ensemble_embedded_loss
    training_step.py  one training iteration as tensors only (TrainingSettings.compile: one compiled graph, a
                 CUDA graph on GPUs): adam_update, functional_loss, compile_iteration
    sindy.py     the SINDy baseline (PySINDy, optional): fit_sindy, SindyVectorField
"""

from dynlearn.fields.models import (
    MLP,
    AffineVectorField,
    DiscreteMap,
    EmbeddedModel,
    HybridVectorField,
    LinearMap,
    LinearVectorField,
    NeuralODE,
    NeuralVectorField,
    SkipMap,
    TimeDependentVectorField,
    iterate_map,
)
from dynlearn.fields.ensemble import EnsembleMLP, EnsembleVectorField, ensemble_embedded_loss
from dynlearn.fields.training import TrainingHistory, TrainingSettings, embedded_loss, map_loss, train, train_ensemble

__all__ = ["MLP", "AffineVectorField", "DiscreteMap", "EmbeddedModel", "HybridVectorField", "LinearMap",
           "LinearVectorField", "NeuralODE", "NeuralVectorField", "SkipMap", "TimeDependentVectorField", "iterate_map",
           "TrainingHistory", "TrainingSettings", "embedded_loss", "map_loss", "train", "EnsembleMLP",
           "EnsembleVectorField", "ensemble_embedded_loss", "train_ensemble"]
