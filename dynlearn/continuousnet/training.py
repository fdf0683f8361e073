"""Training and evaluating image classifiers (ContinuousNet and its ResNet): SGD with Nesterov momentum and a
cosine learning rate, weight decay, augmentation on the device, bf16 autocast and channels_last on CUDA,
optional torch.compile, the incremental-in-depth schedule (double the steps and the basis at chosen epochs),
resumable checkpoints and a per-epoch log (loss, accuracy, images per second).

Same pattern as every trainer in dynlearn: ``train_classifier(model, data, settings=ClassifierTrainingSettings(),
checkpoint=None) -> ClassifierHistory`` (the model is trained, and refined, in place).

Several GPUs or nodes: launch with ``torchrun`` (``torchrun --nproc-per-node 8 -m dynlearn.cli train continuousnet
...``); :func:`initialise_distributed` joins the process group torchrun describes (NCCL on CUDA, gloo on CPUs;
the command line calls it before loading data), and when a group is initialised the network is wrapped in
DistributedDataParallel, every process takes its share of each global batch (``batch_size`` is the global batch),
and only rank 0 prints and writes checkpoints. Batch-norm running
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

from dynlearn._checks import as_flag, as_integer, as_learning_rate
from dynlearn._files import atomic_write, load_tensors, restore_random_state
from dynlearn.continuousnet.network import ContinuousNet, to_channels_last
from dynlearn.progress import progress as progress_display
from dynlearn.progress import progress_mode

__all__ = ["ClassifierTrainingSettings", "ClassifierHistory", "train_classifier", "evaluate_classifier",
           "recalibrate_statistics", "load_classifier", "initialise_distributed"]

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclasses.dataclass(frozen=True)
class ClassifierTrainingSettings:
    """How to train; ``refine_at``: epochs at which the steps and the basis pieces double (exact refinement);
    ``progress``: a per-batch display (:mod:`dynlearn.progress`) and a line per epoch on standard output.

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
            as_integer(name, getattr(self, name))
        as_learning_rate("learning_rate", self.learning_rate)
        for name in ("augment", "mixed_precision", "channels_last", "compile", "progress"):
            object.__setattr__(self, name, as_flag(name, getattr(self, name)))
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode must be one of {COMPILE_MODES}, got {self.compile_mode!r}")
        if any(not 0 < e < self.epochs for e in self.refine_at):
            raise ValueError(f"refine_at epochs must lie strictly between 0 and {self.epochs}, got {self.refine_at}")


@dataclasses.dataclass
class ClassifierHistory:
    """Per epoch: training loss and accuracy, test accuracy, images per second, seconds, and the graph trained
    (steps per block, pieces: they double at the refinement epochs)."""

    loss: list[float] = dataclasses.field(default_factory=list)
    train_accuracy: list[float] = dataclasses.field(default_factory=list)
    test_accuracy: list[float] = dataclasses.field(default_factory=list)
    images_per_second: list[float] = dataclasses.field(default_factory=list)
    seconds: list[float] = dataclasses.field(default_factory=list)
    n_steps: list[int] = dataclasses.field(default_factory=list)
    pieces: list[int] = dataclasses.field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.loss)

    def to_dict(self) -> dict:
        """Plain numbers and lists, for JSON."""
        return dataclasses.asdict(self)


def initialise_distributed(device: str) -> str:
    """Join the process group that ``torchrun`` describes (WORLD_SIZE > 1 in the environment: NCCL on CUDA,
    gloo on CPUs) and return this process's device (``cuda:LOCAL_RANK`` on CUDA); without torchrun, ``device``
    unchanged. Call it before putting data on the device."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    import torch.distributed as dist

    cuda = device.startswith("cuda")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if cuda else device


#: settings that do not change what is computed (a resumed run may differ in these, and in ``epochs``: extending)
_RUNTIME_SETTINGS = ("epochs", "progress", "compile", "compile_mode")


def _settings_record(settings: "ClassifierTrainingSettings") -> dict[str, Any]:
    record = dataclasses.asdict(settings)
    record["refine_at"] = list(settings.refine_at)
    return {k: v for k, v in record.items() if k not in _RUNTIME_SETTINGS}


def _save(path: Path, model: ContinuousNet, optimizer: torch.optim.Optimizer | None, epoch: int,
          history: ClassifierHistory, settings: "ClassifierTrainingSettings | None" = None,
          data_order: torch.Generator | None = None) -> None:
    """The resumable state after ``epoch`` epochs: the network, the optimiser, every random state (torch's and the
    data order's), the settings, and how many epochs the run was to have (``manifest`` says a run is unfinished)."""
    state = {"config": model.config(), "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
             "optimizer": optimizer.state_dict() if optimizer is not None else None, "epoch": epoch,
             "history": history.to_dict(), "rng": torch.get_rng_state()}
    if settings is not None:
        state["settings"], state["epochs_planned"] = _settings_record(settings), settings.epochs
    if data_order is not None:
        state["data_rng"] = data_order.get_state()
    atomic_write(path, lambda temporary: torch.save(state, temporary))


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> tuple[ContinuousNet, dict[str, Any]]:
    """A ContinuousNet saved by :func:`train_classifier` (weights only: no pickle) and its saved state."""
    saved = load_tensors(path, "a ContinuousNet checkpoint written by dynlearn", map_location=device)
    if not isinstance(saved, dict) or not {"config", "model"} <= set(saved):
        raise ValueError(f"{path}: not a ContinuousNet checkpoint written by dynlearn (no 'config' and 'model')")
    try:
        model = ContinuousNet.from_config(saved["config"]).to(device)
        model.load_state_dict(saved["model"])
    except (TypeError, KeyError, RuntimeError) as error:
        raise ValueError(f"{path}: its network does not load ({str(error).strip().splitlines()[0]})") from None
    return model.eval(), saved


@torch.no_grad()
def recalibrate_statistics(model: torch.nn.Module, data, batches: int = 50, batch_size: int = 256,
                           seed: int = 0) -> torch.nn.Module:
    """Re-estimate every batch-norm running statistic of ``model`` from ``batches`` training batches (forward
    passes in training mode, no gradients, no parameter changes; the per-stage statistics of a ContinuousNet
    are projected onto its basis as in training), then return it in eval mode.

    What a projection onto another basis needs: the projected kernels are the L2-best ones, but the statistics
    of a layer are a nonlinear function of everything before it, so their projection does not match what the
    projected network computes (on Fashion-MNIST, a model with Legendre polynomials to degree 7 projected onto
    degree 3 fell from 0.92 to 0.10 accuracy, and to 0.90 after this). With momentum m, the old statistics keep a
    weight (1 - m)^batches (0.5 % at the default 50 batches and m = 0.1), however few batches an epoch holds."""
    if isinstance(batches, bool) or not isinstance(batches, int) or batches < 1:
        raise ValueError(f"batches must be an integer >= 1, got {batches!r}")
    generator = torch.Generator().manual_seed(seed)
    model.train()
    seen = 0
    while seen < batches:  # as many passes over the training set as the count needs (small sets: several)
        for images, _ in data.batches("train", batch_size, shuffle=True, generator=generator):
            model(images)
            seen += 1
            if seen == batches:
                break
    return model.eval()


@torch.no_grad()
def evaluate_classifier(model: torch.nn.Module, data, batch_size: int = 500, *, mixed_precision: bool = True) -> dict[str, float]:
    """Test accuracy, seconds and images per second (eval mode; bf16 autocast on CUDA; timed after one warm-up batch)."""
    mixed_precision = as_flag("mixed_precision", mixed_precision)
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


def train_classifier(model: ContinuousNet, data, settings: ClassifierTrainingSettings = ClassifierTrainingSettings(),
                     checkpoint: str | Path | None = None) -> ClassifierHistory:
    """Train ``model`` in place on ``data`` (:class:`dynlearn.datasets.images.ImageData`, on the training
    device; at a refinement epoch the model's blocks are replaced by their refined manifestation). Returns the
    per-epoch history. An existing ``checkpoint`` is resumed (its network must be ``model``'s, up to steps and
    pieces)."""
    import torch.distributed as dist

    device = data.train_images.device
    cuda = device.type == "cuda"
    distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    if settings.batch_size % world:
        raise ValueError(f"batch_size {settings.batch_size} must be a multiple of the {world} processes")
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    history = ClassifierHistory()
    start_epoch = 0
    path = Path(checkpoint) if checkpoint is not None else None
    saved_optimizer = None
    if path is not None and path.exists():
        saved_model, saved = load_classifier(path, device)
        fixed = ("n_classes", "in_channels", "widths", "activation")
        if any(saved_model.config()[key] != model.config()[key] for key in fixed):
            saved_config = {k: saved_model.config()[k] for k in fixed}
            raise ValueError(f"{path} holds another network ({saved_config}) than the one to train "
                             f"({ {k: model.config()[k] for k in fixed} }); remove it or train that one")
        model.blocks = saved_model.blocks  # the saved graph: steps and pieces as refined so far
        model.load_state_dict(saved_model.state_dict())
        start_epoch, saved_optimizer = int(saved["epoch"]), saved["optimizer"]
        if "settings" in saved and saved["settings"] != _settings_record(settings):
            differing = sorted(k for k, v in _settings_record(settings).items() if saved["settings"].get(k) != v)
            raise ValueError(f"{path} was trained with other settings (differs in {', '.join(differing)}); resume "
                             f"with the same ones (more epochs are allowed) or start in another folder")
        history = ClassifierHistory(**saved["history"])
        restore_random_state(saved["rng"])
        if "data_rng" in saved:  # the data order continues where it stopped: the resumed run is the same run
            generator.set_state(saved["data_rng"].to("cpu", torch.uint8))
        else:  # a checkpoint from before the data order was saved
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
    talk = settings.progress and rank == 0 and progress_mode() != "off"
    for epoch in range(start_epoch, settings.epochs):
        if epoch in settings.refine_at:
            model.blocks = model.refined().blocks  # exact in theta(t): steps and pieces doubled
            if cuda and settings.channels_last:
                to_channels_last(model)
            optimizer = optimiser_for(model)  # new parameters; momentum restarts
            forward = wrap(model)
        model.train()
        began = time.perf_counter()
        total_loss, correct, count = torch.zeros((), device=device), torch.zeros((), device=device), 0
        # the epoch's line below reports it: in a log, no line per batch display
        batches = data.batches("train", settings.batch_size, shuffle=True, augment=settings.augment, generator=generator,
                               shard=(rank, world))
        bar = batches if not talk or progress_mode() != "bar" else progress_display(
            batches, total=steps_per_epoch, description=f"epoch {epoch + 1}/{settings.epochs}", unit="batch")
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
        entry = {"loss": loss_value, "train_accuracy": float(correct) / count, "test_accuracy": test["accuracy"],
                 "images_per_second": count / seconds, "seconds": seconds, "n_steps": model.blocks[0].n_steps,
                 "pieces": model.blocks[0].basis.pieces}
        for key, value in entry.items():
            getattr(history, key).append(value)
        if talk:
            print(f"epoch {epoch + 1:>3}: loss {entry['loss']:.4f}, train {entry['train_accuracy']:.4f}, "
                  f"test {entry['test_accuracy']:.4f}, {entry['images_per_second']:.0f} images/s "
                  f"(N = {entry['n_steps']}, K = {entry['pieces']})", flush=True)
        broken = [name for name, value in [*model.named_parameters(), *model.named_buffers()]
                  if value.is_floating_point() and not bool(torch.isfinite(value).all())]
        if broken:  # never saved as a model: the last good checkpoint stays
            raise FloatingPointError(f"after epoch {epoch + 1} {', '.join(broken[:3])}"
                                     f"{' and others' if len(broken) > 3 else ''} are not finite (weights or batch-norm "
                                     f"statistics); lower the learning rate (the checkpoint of the last good epoch "
                                     f"is kept)")
        if path is not None and rank == 0:
            _save(path, model, optimizer, epoch + 1, history, settings, generator)
    model.eval()
    return history
