"""Training the physics-aware autoencoder: epochs of shuffled minibatches of snapshot windows, Adam (optionally
with weight decay, the classical alternative to the Lyapunov prior), a learning rate decaying exponentially
from ``learning_rate`` to ``final_learning_rate``, seeded, on the CPU or CUDA, with a progress bar, a per-epoch
log (loss terms, seconds) and resumable checkpoints (written atomically). Same pattern as every trainer in
dynlearn: ``train_autoencoder(model, windows, loss, settings=AutoencoderTrainingSettings(), checkpoint=None)
-> AutoencoderHistory``."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import torch

from dynlearn._checks import as_flag, as_integer, as_learning_rate, as_positive_number
from dynlearn._files import atomic_write, load_checkpoint
from dynlearn.autoencoder.model import AutoencoderLoss, PhysicsAwareAutoencoder
from dynlearn.autoencoder.lyapunov import spectral_radius
from dynlearn.progress import progress as progress_display

__all__ = ["AutoencoderTrainingSettings", "AutoencoderHistory", "train_autoencoder"]

#: the loss terms a history records per epoch, in the order of AutoencoderLoss.terms
_TERMS = ("prediction", "reconstruction", "prior", "backward", "consistency")


@dataclasses.dataclass(frozen=True)
class AutoencoderTrainingSettings:
    """How to train (see the module docstring); ``progress``: report progress (:mod:`dynlearn.progress`)."""

    epochs: int = 600
    batch_size: int = 34
    learning_rate: float = 1e-2
    final_learning_rate: float = 1e-4
    weight_decay: float = 0.0
    seed: int = 0
    checkpoint_every: int = 50
    progress: bool = True
    description: str = "autoencoder"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "checkpoint_every"):
            as_integer(name, getattr(self, name))
        for name in ("learning_rate", "final_learning_rate"):
            as_learning_rate(name, getattr(self, name))
        if self.weight_decay != 0:
            as_positive_number("weight_decay (or 0)", self.weight_decay)
        object.__setattr__(self, "progress", as_flag("progress", self.progress))


@dataclasses.dataclass
class AutoencoderHistory:
    """Per epoch: the mean loss and its terms over the minibatches (backward and consistency: zero for a model
    without a backward map), the spectral radius of Omega at the record's step, seconds."""

    loss: list[float] = dataclasses.field(default_factory=list)
    prediction: list[float] = dataclasses.field(default_factory=list)
    reconstruction: list[float] = dataclasses.field(default_factory=list)
    prior: list[float] = dataclasses.field(default_factory=list)
    backward: list[float] = dataclasses.field(default_factory=list)
    consistency: list[float] = dataclasses.field(default_factory=list)
    spectral_radius: list[float] = dataclasses.field(default_factory=list)
    seconds: list[float] = dataclasses.field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.loss)

    def to_dict(self) -> dict:
        """Plain numbers and lists, for JSON."""
        return dataclasses.asdict(self)

    def seconds_per_epoch(self) -> float:
        """Median seconds per epoch, leaving out the first (warm-up) epoch when there are others."""
        times = sorted(self.seconds[1:] if len(self.seconds) > 1 else self.seconds)
        return float(times[len(times) // 2]) if times else float("nan")


def train_autoencoder(
    model: PhysicsAwareAutoencoder,
    windows: torch.Tensor,
    loss: AutoencoderLoss = AutoencoderLoss(),
    settings: AutoencoderTrainingSettings = AutoencoderTrainingSettings(),
    checkpoint: str | Path | None = None,
) -> AutoencoderHistory:
    """Train ``model`` on ``windows`` ``(n_windows, S + 1, m)`` (:func:`dynlearn.autoencoder.model.snapshot_windows`),
    on the windows' device. An existing ``checkpoint`` is resumed from; it is rewritten every
    ``checkpoint_every`` epochs and at the end. NaN or infinite data, or a loss that becomes non-finite, raise."""
    if windows.ndim != 3 or windows.shape[1] < loss.steps + 1:
        raise ValueError(f"windows must be (n_windows, S + 1 = {loss.steps + 1}, m), got {tuple(windows.shape)}")
    if windows.shape[2] != model.n_features:
        raise ValueError(f"windows hold {windows.shape[2]} values per snapshot, the model expects {model.n_features}")
    if not bool(torch.isfinite(windows).all()):
        raise ValueError("the training data contain NaN or infinite values")
    model.to(windows.device)
    order_generator = torch.Generator().manual_seed(settings.seed)  # the minibatch order, saved in the checkpoint
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    decay = (settings.final_learning_rate / settings.learning_rate) ** (1.0 / settings.epochs)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=decay)
    history = AutoencoderHistory()
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.exists():
        saved = load_checkpoint(path, ("model", "optimizer", "schedule", "history", "rng"), "an autoencoder's training",
                                map_location=windows.device)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        schedule.gamma = decay  # a run resumed with another number of epochs continues the decay from here
        history = AutoencoderHistory(**saved["history"])
        for name in ("backward", "consistency"):  # a checkpoint written before these terms existed: zero
            if not getattr(history, name):
                getattr(history, name).extend([0.0] * history.epochs)
        order_generator.set_state(saved["rng"].to("cpu", torch.uint8))

    def save() -> None:
        if path is not None:
            if not all(bool(torch.isfinite(value).all()) for value in model.state_dict().values()):
                raise FloatingPointError(f"{settings.description}: a weight stopped being finite; {kept_text()}lower "
                                         f"the learning rate or kappa, or check the data")
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "schedule": schedule.state_dict(), "history": dataclasses.asdict(history),
                     "rng": order_generator.get_state()}
            atomic_write(path, lambda temporary: torch.save(state, temporary))
            saved_epochs[0] = history.epochs

    saved_epochs = [history.epochs]

    def kept_text() -> str:
        return f"the last checkpoint (epoch {saved_epochs[0]}) is kept; " if path is not None and path.exists() else ""

    n = windows.shape[0]
    bar = progress_display(range(history.epochs, settings.epochs), description=settings.description,
                           enabled=settings.progress, initial=history.epochs, total=settings.epochs, unit="epoch")
    model.train()
    for epoch in bar:
        began = time.perf_counter()
        order = torch.randperm(n, generator=order_generator).to(windows.device)
        totals = torch.zeros(6, dtype=torch.float64, device=windows.device)
        for start in range(0, n, settings.batch_size):
            batch = windows[order[start:start + settings.batch_size]]
            optimizer.zero_grad(set_to_none=True)
            try:
                terms = loss.terms(model, batch)
            except ValueError:  # the prior refuses an Omega that is not finite: say why it is not
                if all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                    raise
                raise FloatingPointError(f"{settings.description}: the weights stopped being finite in epoch {epoch}; "
                                         f"{kept_text()}lower the learning rate or kappa, or check the data") from None
            value = loss.total(terms)
            value.backward()
            optimizer.step()
            weight = batch.shape[0] / n
            totals += weight * torch.stack([value.detach(), *(terms[name].detach() for name in _TERMS)]).double()
        schedule.step()
        values = totals.tolist()  # one synchronisation per epoch
        if not all(math.isfinite(v) for v in values):
            raise FloatingPointError(
                f"{settings.description}: the loss became {values[0]:.3g} in epoch {epoch} (prediction "
                f"{values[1]:.3g}, reconstruction {values[2]:.3g}, prior {values[3]:.3g} times kappa = {loss.kappa:g}); "
                f"{kept_text()}lower the learning rate or kappa, or check the data")
        history.loss.append(values[0])
        for name, value in zip(_TERMS, values[1:]):
            getattr(history, name).append(value)
        history.spectral_radius.append(spectral_radius(model.latent_map().detach()))
        history.seconds.append(time.perf_counter() - began)
        if epoch % 10 == 0 or epoch == settings.epochs - 1:
            bar.set_postfix(loss=f"{values[0]:.3e}", radius=f"{history.spectral_radius[-1]:.4f}")
        if (epoch + 1) % settings.checkpoint_every == 0:
            save()
    bar.close()
    save()
    model.eval()
    return history
