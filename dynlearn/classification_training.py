"""Training and evaluating image classifiers (ContinuousNet and its ResNet): SGD with Nesterov momentum and a
cosine learning rate, weight decay, augmentation on the device, bf16 autocast and channels_last on CUDA,
optional torch.compile, the incremental-in-depth schedule (double the steps and the basis at chosen epochs),
resumable checkpoints and a per-epoch log (loss, accuracy, images per second).

Several GPUs or nodes: launch with ``torchrun`` (``torchrun --nproc-per-node 8 -m dynlearn.cli train continuousnet
...``); when a process group is initialised (the command line does it when WORLD_SIZE > 1: NCCL on CUDA, gloo on
CPUs), the network is wrapped in DistributedDataParallel, every process takes its share of each global batch
(``batch_size`` is the global batch), and only rank 0 prints and writes checkpoints. Batch-norm running
statistics follow rank 0 (DDP broadcasts buffers at every forward).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ._checks import as_positive_integer
from ._files import atomic_write, restore_random_state
from .continuousnet import ContinuousNet, to_channels_last

__all__ = ["ClassifierTraining", "train_classifier", "evaluate_classifier", "load_classifier"]

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclasses.dataclass(frozen=True)
class ClassifierTraining:
    """How to train; ``refine_at``: epochs at which the steps and the basis pieces double (exact refinement).

    ``compile``: torch.compile the network with ``compile_mode``; on CUDA, ``"reduce-overhead"`` also replays
    each training step's kernels as a CUDA graph, which is what a small ContinuousNet needs: it is launch-bound
    (H100, batch 128, widths 16/32/64, 4 pieces, bf16, training images per second: RK4 1207 eager, 2241
    compiled, 11306 with CUDA graphs; benchmarks/continuousnet_speed.py).
    """

    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    augment: bool = True
    refine_at: tuple[int, ...] = ()
    mixed_precision: bool = True
    channels_last: bool = True
    compile: bool = False
    compile_mode: str = "default"
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            as_positive_integer(name, getattr(self, name))
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode must be one of {COMPILE_MODES}, got {self.compile_mode!r}")
        if any(not 0 < e < self.epochs for e in self.refine_at):
            raise ValueError(f"refine_at epochs must lie strictly between 0 and {self.epochs}, got {self.refine_at}")


def _save(path: Path, model: ContinuousNet, optimizer: torch.optim.Optimizer | None, epoch: int, log: list) -> None:
    state = {"config": model.config(), "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
             "optimizer": optimizer.state_dict() if optimizer is not None else None, "epoch": epoch, "log": log,
             "rng": torch.get_rng_state()}
    atomic_write(path, lambda temporary: torch.save(state, temporary))


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> tuple[ContinuousNet, dict[str, Any]]:
    """A ContinuousNet saved by :func:`train_classifier` (weights only: no pickle) and its saved state."""
    saved = torch.load(path, weights_only=True, map_location=device)
    model = ContinuousNet.from_config(saved["config"]).to(device)
    model.load_state_dict(saved["model"])
    return model.eval(), saved


@torch.no_grad()
def evaluate_classifier(model: torch.nn.Module, data, batch_size: int = 500, *, mixed_precision: bool = True) -> dict[str, float]:
    """Test accuracy, seconds and images per second (eval mode; bf16 autocast on CUDA; timed after one warm-up batch)."""
    model.eval()
    device = data.test_images.device
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if (mixed_precision and device.type == "cuda") else _null()
    correct, count = 0, 0
    with autocast:  # one untimed batch first: kernel selection and memory pools stay out of the timing
        model(next(iter(data.batches("test", batch_size)))[0])
    if device.type == "cuda":
        torch.cuda.synchronize()
    began = time.perf_counter()
    with autocast:
        for images, labels in data.batches("test", batch_size):
            correct += int((model(images).argmax(dim=1) == labels).sum())
            count += labels.numel()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - began
    return {"accuracy": correct / count, "seconds": seconds, "images_per_second": count / seconds}


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def train_classifier(model: ContinuousNet, data, settings: ClassifierTraining = ClassifierTraining(),
                     checkpoint: str | Path | None = None) -> tuple[ContinuousNet, list[dict[str, float]]]:
    """Train on ``data`` (:class:`dynlearn.datasets.images.ImageData`, on the training device). Returns the
    model (a new object after refinements) and the per-epoch log. An existing ``checkpoint`` is resumed."""
    from tqdm.auto import tqdm

    import torch.distributed as dist

    device = data.train_images.device
    cuda = device.type == "cuda"
    distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    if settings.batch_size % world:
        raise ValueError(f"batch_size {settings.batch_size} must be a multiple of the {world} processes")
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    log: list[dict[str, float]] = []
    start_epoch = 0
    path = Path(checkpoint) if checkpoint is not None else None
    saved_optimizer = None
    if path is not None and path.exists():
        model, saved = load_classifier(path, device)
        start_epoch, log, saved_optimizer = int(saved["epoch"]), list(saved["log"]), saved["optimizer"]
        restore_random_state(saved["rng"])
        generator.manual_seed(settings.seed + start_epoch)
    model = model.to(device)
    if cuda and settings.channels_last:
        to_channels_last(model)

    def optimiser_for(network: ContinuousNet) -> torch.optim.Optimizer:
        return torch.optim.SGD(network.parameters(), lr=settings.learning_rate, momentum=settings.momentum,
                               nesterov=True, weight_decay=settings.weight_decay)

    optimizer = optimiser_for(model)
    if saved_optimizer is not None:
        optimizer.load_state_dict(saved_optimizer)
    steps_per_epoch = math.ceil(data.train_images.shape[0] / settings.batch_size)
    total_steps = settings.epochs * steps_per_epoch
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if (cuda and settings.mixed_precision) else _null

    def wrap(network: ContinuousNet) -> torch.nn.Module:
        if distributed:
            from torch.nn.parallel import DistributedDataParallel

            network = DistributedDataParallel(network, device_ids=[device.index] if cuda else None)
        return torch.compile(network, mode=settings.compile_mode) if settings.compile else network

    forward = wrap(model)
    talk = settings.progress and rank == 0
    for epoch in range(start_epoch, settings.epochs):
        if epoch in settings.refine_at:
            block = model.blocks[0]
            model = model.manifest(n_steps=2 * block.n_steps, pieces=2 * block.basis.pieces)
            if cuda and settings.channels_last:
                to_channels_last(model)
            optimizer = optimiser_for(model)  # new parameters; momentum restarts
            forward = wrap(model)
        model.train()
        began = time.perf_counter()
        total_loss, correct, count = torch.zeros((), device=device), torch.zeros((), device=device), 0
        bar = tqdm(data.batches("train", settings.batch_size, shuffle=True, augment=settings.augment, generator=generator,
                                shard=(rank, world)),
                   total=steps_per_epoch, desc=f"epoch {epoch + 1}/{settings.epochs}", disable=not talk, leave=False)
        for index, (images, labels) in enumerate(bar):
            progress = (epoch * steps_per_epoch + index) / total_steps
            for group in optimizer.param_groups:
                group["lr"] = settings.learning_rate * 0.5 * (1 + math.cos(math.pi * progress))
            if cuda and settings.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with autocast():
                logits = forward(images)
                loss = F.cross_entropy(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.detach() * labels.numel()
            correct += (logits.argmax(dim=1) == labels).sum()
            count += labels.numel()
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - began
        if distributed:
            for buffer in model.buffers():  # the last step's statistics were local: take rank 0's everywhere
                dist.broadcast(buffer, 0)
            totals = torch.stack([total_loss, correct.to(total_loss.dtype), torch.tensor(float(count), device=device)])
            dist.all_reduce(totals)
            total_loss, correct, count = totals[0], totals[1], int(totals[2])
        loss_value = float(total_loss) / count
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"the training loss became {loss_value} in epoch {epoch + 1}; lower the learning rate")
        test = evaluate_classifier(model, data, mixed_precision=settings.mixed_precision)
        entry = {"epoch": epoch + 1, "loss": loss_value, "train_accuracy": float(correct) / count,
                 "test_accuracy": test["accuracy"], "images_per_second": count / seconds, "seconds": seconds,
                 "n_steps": model.blocks[0].n_steps, "pieces": model.blocks[0].basis.pieces}
        log.append(entry)
        if talk:
            print(f"epoch {entry['epoch']:>3}: loss {entry['loss']:.4f}, train {entry['train_accuracy']:.4f}, "
                  f"test {entry['test_accuracy']:.4f}, {entry['images_per_second']:.0f} images/s "
                  f"(N = {entry['n_steps']}, K = {entry['pieces']})")
        if path is not None and rank == 0:
            _save(path, model, optimizer, epoch + 1, log)
    return model.eval(), log
