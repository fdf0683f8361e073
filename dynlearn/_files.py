"""Writing files so that an interrupted run never leaves one that looks finished."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import torch

__all__ = ["atomic_write", "restore_random_state"]


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(temporary_path)`` and then rename the temporary file to ``path``.

    The temporary file lives in the same folder (so the rename is atomic on POSIX) and is removed if
    ``write`` fails; an existing file at ``path`` is replaced only once the new one is complete.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        write(temporary_path)
        os.replace(temporary_path, target)
    except BaseException:
        temporary_path.unlink(missing_ok=True)
        raise
    return target


def restore_random_state(state: torch.Tensor) -> None:
    """Restore torch's CPU random generator from a checkpoint's saved state.

    A checkpoint loaded with ``map_location="cuda"`` brings that byte tensor onto the GPU, where
    ``torch.set_rng_state`` refuses it ("RNG state must be a torch.ByteTensor"; found on the first CUDA resume):
    it goes back to the CPU first.
    """
    torch.set_rng_state(state.to("cpu", torch.uint8))
