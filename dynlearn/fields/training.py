"""Training loops for the small models of the learned-integrator study.

One loop for every model: Adam with an exponential learning-rate schedule, seeded, full batch by default
(these problems are small: a batch of all samples is one fused tensor computation, no per-sample Python),
early stop on a plateau of the loss, the best parameters restored at the end, and checkpoints that make a
long run resumable. The losses are closures over stacked tensors: one-step or S-step, in one or several
schemes.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from dynlearn._checks import as_integer, as_number_in, as_positive_number
from dynlearn._files import atomic_write, restore_random_state
from dynlearn.integration.rollout import rollout
from dynlearn.integration.tableau import ButcherTableau
from dynlearn.progress import progress as progress_display

__all__ = ["TrainingSettings", "TrainingHistory", "train", "embedded_loss", "map_loss"]

#: loss(indices) -> scalar; indices select a minibatch of samples, None means all of them.
Loss = Callable[[torch.Tensor | None], torch.Tensor]


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    """How to train (the pattern of every trainer in dynlearn: ``train*(model, data, ..., settings=Settings(),
    checkpoint=None) -> History``).

    Attributes:
        iterations: most optimiser steps.
        learning_rate, final_learning_rate: Adam's rate decays exponentially from one to the other.
        batch_size: samples per step (None: all of them, full batch).
        patience, min_improvement: stop when the best loss has not fallen by a relative ``min_improvement``
            in ``patience`` iterations.
        seed: seeds torch before training (initial minibatch order; initialise the model's weights yourself,
            seeded, before calling :func:`train`).
        checkpoint_every: iterations between two saves of the resumable state (see :func:`train`'s
            ``checkpoint``).
        progress: report progress (:mod:`dynlearn.progress`: a bar on a terminal, one line when done otherwise);
            description: its label.
    """

    iterations: int = 3000
    learning_rate: float = 1e-2
    final_learning_rate: float = 1e-4
    batch_size: int | None = None
    patience: int = 500
    min_improvement: float = 1e-3
    seed: int = 0
    checkpoint_every: int = 500
    progress: bool = True
    description: str = "training"

    def __post_init__(self) -> None:
        for name in ("iterations", "patience", "checkpoint_every"):
            as_integer(name, getattr(self, name))
        for name in ("learning_rate", "final_learning_rate"):
            as_positive_number(name, getattr(self, name))
        if self.batch_size is not None:
            as_integer("batch_size (or None: full batch)", self.batch_size)
        as_number_in("min_improvement", self.min_improvement, 0.0, 1.0)


@dataclasses.dataclass
class TrainingHistory:
    """What happened: the loss at every iteration, where it stopped and why, the best loss, the seconds taken."""

    losses: list[float]
    best_loss: float
    best_iteration: int
    stopped_early: bool
    seconds: float

    @property
    def iterations(self) -> int:
        return len(self.losses)

    def to_dict(self) -> dict:
        """Plain numbers and lists, for JSON."""
        return dataclasses.asdict(self)


def _save(path: Path, state: dict) -> None:
    atomic_write(path, lambda temporary: torch.save(state, temporary))


def train(module: nn.Module, loss: Loss, n_samples: int, settings: TrainingSettings = TrainingSettings(),
          checkpoint: str | os.PathLike | None = None) -> TrainingHistory:
    """Minimise ``loss`` over ``module``'s parameters; the best parameters seen are loaded at the end.

    ``n_samples`` is the number of samples ``loss`` indexes into (for minibatches). ``checkpoint``: a file
    rewritten (atomically) every ``settings.checkpoint_every`` iterations; an existing one is resumed from, and
    the resumed run equals an uninterrupted one. A loss that becomes NaN or infinite stops training with an
    error naming the iteration (lower the learning rate).
    """
    parameters = [p for p in module.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError("the module has no trainable parameters")
    torch.manual_seed(settings.seed)
    optimizer = torch.optim.Adam(parameters, lr=settings.learning_rate)
    decay = (settings.final_learning_rate / settings.learning_rate) ** (1.0 / settings.iterations)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=decay)
    losses: list[float] = []
    best_loss, best_iteration = math.inf, 0
    best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    start_iteration = 0
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.exists():
        saved = torch.load(path, weights_only=True)
        module.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        losses, best_loss, best_iteration = list(saved["losses"]), float(saved["best_loss"]), int(saved["best_iteration"])
        best_state = saved["best_state"]
        start_iteration = len(losses)
        restore_random_state(saved["rng"])

    began = time.perf_counter()
    stopped_early = False
    bar = progress_display(range(start_iteration, settings.iterations), description=settings.description,
                           enabled=settings.progress, initial=start_iteration, total=settings.iterations)
    for iteration in bar:
        index = None
        if settings.batch_size is not None and settings.batch_size < n_samples:
            index = torch.randint(n_samples, (settings.batch_size,))
        optimizer.zero_grad(set_to_none=True)
        value = loss(index)
        if not torch.isfinite(value):
            raise FloatingPointError(
                f"{settings.description}: the loss is {float(value.detach())} at iteration {iteration}; lower the learning rate "
                f"(now {schedule.get_last_lr()[0]:.3g}) or check the data"
            )
        value.backward()
        optimizer.step()
        schedule.step()
        current = float(value.detach())
        losses.append(current)
        if current < best_loss * (1 - settings.min_improvement):
            best_iteration = iteration
        if current < best_loss:
            best_loss = current
            best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        stopped_early = iteration - best_iteration >= settings.patience
        if iteration % 50 == 0 or stopped_early or iteration == settings.iterations - 1:  # the last one: a log's line
            bar.set_postfix(loss=f"{current:.3e}", best=f"{best_loss:.3e}",
                            **({"stopped": "early"} if stopped_early else {}))
        if path is not None and (iteration + 1) % settings.checkpoint_every == 0:
            _save(path, {"model": module.state_dict(), "optimizer": optimizer.state_dict(),
                         "schedule": schedule.state_dict(), "losses": losses, "best_loss": best_loss,
                         "best_iteration": best_iteration, "best_state": best_state, "rng": torch.get_rng_state()})
        if stopped_early:
            break
    bar.close()
    module.load_state_dict(best_state)
    return TrainingHistory(losses=losses, best_loss=best_loss, best_iteration=best_iteration,
                           stopped_early=stopped_early, seconds=time.perf_counter() - began)


def embedded_loss(
    vector_field: nn.Module,
    starts: torch.Tensor,
    targets: torch.Tensor,
    dt: float,
    schemes: Sequence[str | ButcherTableau] = ("rk4",),
) -> Loss:
    """Mean squared error of S-step predictions of ``vector_field`` inside each scheme, summed over schemes.

    ``starts`` is ``(N, *state)``, ``targets`` ``(N, S, *state)`` (the S states that follow each start, dt
    apart): loss = sum_schemes mean_{n, s} ||x_hat_{n, s} - x_{n, s}||^2 / dim. Summing several schemes on the
    same field (e.g. midpoint + RK4) keeps it from fitting the error of one scheme.
    """
    if targets.ndim != starts.ndim + 1 or targets.shape[0] != starts.shape[0] or targets.shape[2:] != starts.shape[1:]:
        raise ValueError(f"targets must be (N, S, *state) for starts (N, *state); got {tuple(targets.shape)} and "
                         f"{tuple(starts.shape)}")
    steps = targets.shape[1]
    scheme_list = list(schemes)
    if not scheme_list:
        raise ValueError("schemes is empty")

    def loss(index: torch.Tensor | None) -> torch.Tensor:
        x, y = (starts, targets) if index is None else (starts[index], targets[index])
        total = x.new_zeros(())
        for scheme in scheme_list:
            predicted = rollout(vector_field, x, 0.0, dt, steps, scheme, allow_nonfinite=True)[1:].movedim(0, 1)
            total = total + torch.mean((predicted - y) ** 2)
        return total

    return loss


def map_loss(model: Callable[[torch.Tensor], torch.Tensor], starts: torch.Tensor, targets: torch.Tensor) -> Loss:
    """Mean squared error of a discrete map iterated S times (``targets`` is ``(N, S, *state)``)."""
    steps = targets.shape[1]

    def loss(index: torch.Tensor | None) -> torch.Tensor:
        x, y = (starts, targets) if index is None else (starts[index], targets[index])
        predictions = []
        for _ in range(steps):
            x = model(x)
            predictions.append(x)
        return torch.mean((torch.stack(predictions, dim=1) - y) ** 2)

    return loss
