"""What the command groups share: argument types that fail with one clear line, and the library's defaults."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
from typing import Any, Callable

__all__ = ["positive_float", "learning_rate", "non_negative_float", "positive_int", "seed", "device", "output_file",
           "default", "refuse_existing", "check_writable", "refuse_earlier_outputs", "add_sampling_options",
           "sampling_from", "fraction"]


def _number(text: str, kind: type, low: float, high: float, allowed: str) -> Any:
    """``text`` as ``kind`` (float or int) with low <= value < high; otherwise argparse's one-line error
    saying what is allowed."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if not low <= value < high:
        raise argparse.ArgumentTypeError(f"{text!r} must be {allowed}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float, 0.0, float("inf"), "a finite number > 0")
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number > 0")
    return value


def learning_rate(text: str) -> float:
    """A learning rate the trainers take: a number in (0, MAXIMUM_LEARNING_RATE]."""
    from dynlearn._checks import MAXIMUM_LEARNING_RATE

    value = positive_float(text)
    if value > MAXIMUM_LEARNING_RATE:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number in (0, {MAXIMUM_LEARNING_RATE:g}]")
    return value


def non_negative_float(text: str) -> float:
    return _number(text, float, 0.0, float("inf"), "a finite number >= 0")


def positive_int(text: str) -> int:
    return _number(text, int, 1, float("inf"), "a positive integer")


def seed(text: str) -> int:
    """A seed torch and numpy both take: an integer in [0, 2^63 - 1]."""
    return _number(text, int, 0, 2**63, "an integer in [0, 2^63 - 1]")


def device(text: str) -> str:
    """A torch device this machine has: cpu, or cuda / cuda:N where CUDA is available (checked before any work)."""
    import torch

    try:
        parsed = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a device (cpu, cuda, cuda:N)") from None
    if parsed.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"{text!r}: dynlearn runs on cpu or cuda, not {parsed.type}")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text!r}: this torch has no CUDA device (torch {torch.__version__})")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text!r}: this machine has {torch.cuda.device_count()} CUDA devices")
    return text


def output_file(text: str) -> str:
    """A file to write: not a folder (an existing one, or a path ending in a separator)."""
    if not text:
        raise argparse.ArgumentTypeError("'' is empty; give the file to write, e.g. data.h5")
    if text.endswith(("/", os.sep)) or os.path.isdir(text):
        example = f"{text.rstrip('/' + os.sep)}/data.h5"
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; give the file to write, e.g. {example}")
    return text


def default(owner: type | Callable[..., Any], name: str) -> Any:
    """The default of field ``name`` of a dataclass, or of parameter ``name`` of a function: where the library
    keeps it, so that an option's default is the API's."""
    if dataclasses.is_dataclass(owner):
        for field in dataclasses.fields(owner):
            if field.name == name:
                if field.default is not dataclasses.MISSING:
                    return field.default
                if field.default_factory is not dataclasses.MISSING:
                    return field.default_factory()
        raise KeyError(f"{owner.__name__} has no field {name!r} with a default")
    parameter = inspect.signature(owner).parameters[name]
    if parameter.default is inspect.Parameter.empty:
        raise KeyError(f"{owner.__name__} has no default for {name!r}")
    return parameter.default


def refuse_existing(path: str, overwrite: bool) -> None:
    """Nothing a user saved is replaced without ``--overwrite``, and the file can be written: checked before any
    work."""
    if os.path.exists(path) and not overwrite:
        raise ValueError(f"{path} exists; pass --overwrite to replace it")
    check_writable(os.path.dirname(os.path.abspath(path)))


def check_writable(folder: str | os.PathLike) -> None:
    """``folder`` (existing or to be made) can take new files: checked before any work, so that an hour of
    simulation does not end in 'permission denied'."""
    path = os.path.abspath(folder)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"output {path} is a file, not a folder")
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"cannot make the folder {path}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write into {existing} (permission denied); choose another output")


def refuse_earlier_outputs(folder: str | os.PathLike, names: tuple[str, ...], overwrite: bool) -> None:
    """The one output policy of every command: what an earlier run wrote is replaced only with ``--overwrite``
    (a file: :func:`refuse_existing`; a folder of outputs: any of ``names`` in it), and the folder must be
    writable; checked before any work. (Resumable commands, train and sweep, resume a run with the same settings
    and refuse other ones the same way.)"""
    found = [name for name in names if os.path.exists(os.path.join(folder, name))]
    if found and not overwrite:
        raise ValueError(f"{folder} holds the outputs of an earlier run ({', '.join(found)}); pass --overwrite to "
                         f"replace them, or choose another folder")
    check_writable(folder)


def fraction(text: str) -> float:
    """A number in [0, 1)."""
    return _number(text, float, 0.0, 1.0, "a number in [0, 1)")


def add_sampling_options(group: argparse._ArgumentGroup | argparse.ArgumentParser, *, kind: str, amount: float,
                         sampling_seed: int, what: str) -> None:
    """``--sampling KIND``, ``--sampling-fraction F``, ``--sampling-seed N``: irregular sample times
    (:class:`dynlearn.datasets.sampling.IrregularSampling`), with the caller's library defaults (``amount``: the
    fraction when none is given)."""
    from dynlearn.datasets.sampling import SAMPLING_KINDS

    group.add_argument("--sampling", choices=["uniform", *SAMPLING_KINDS], default=kind,
                       help=f"sample times of {what}: uniform (every dt), jittered (k dt + U(-F/2, F/2) dt), "
                            f"random_steps (steps uniform in dt (1 +- F)), gaps (the grid, each sample missing with "
                            f"probability F), poisson (exponential steps of mean dt) (default: %(default)s)")
    group.add_argument("--sampling-fraction", type=fraction, default=None,
                       help=f"F of --sampling, in [0, 1) (default: {amount}; poisson takes none)")
    group.add_argument("--sampling-seed", type=seed, default=sampling_seed,
                       help="seed of the irregular sample times (default: %(default)s)")


def sampling_from(arguments: argparse.Namespace, *, amount: float, sampling_seed: int) -> Any:
    """The IrregularSampling the options ask for, or None for uniform; --sampling-fraction or --sampling-seed
    without an irregular --sampling (or a fraction with poisson) is an error, not ignored."""
    from dynlearn.datasets.sampling import IrregularSampling

    fraction_given = arguments.sampling_fraction is not None
    if arguments.sampling == "uniform":
        if fraction_given or arguments.sampling_seed != sampling_seed:
            raise ValueError("--sampling-fraction and --sampling-seed apply to irregular sampling: add --sampling "
                             "jittered|random_steps|gaps|poisson")
        return None
    if arguments.sampling == "poisson":
        if fraction_given:
            raise ValueError("--sampling-fraction does not apply to --sampling poisson (its steps are exponential with "
                             "mean dt)")
        return IrregularSampling("poisson", 0.0, arguments.sampling_seed)
    return IrregularSampling(arguments.sampling, amount if arguments.sampling_fraction is None
                             else arguments.sampling_fraction, arguments.sampling_seed)
