"""Writing files so that an interrupted run never leaves one that looks finished."""

from __future__ import annotations

import glob
import os
import socket
import tempfile
from pathlib import Path
from typing import Callable

import torch

__all__ = ["atomic_write", "sweep_leftovers", "restore_random_state"]


def _temporary_prefix(target: Path) -> str:
    """``.NAME.HOST-PID.``: whose temporary file it is, so that a later run can tell a dead writer's leftovers."""
    host = socket.gethostname().replace(".", "_").replace("-", "_") or "host"
    return f".{target.name}.{host}-{os.getpid()}."


def sweep_leftovers(target: str | os.PathLike) -> list[Path]:
    """Remove the temporary files a killed writer of ``target`` left beside it (``.NAME.HOST-PID.*.tmp`` of this
    host whose process is gone; a live writer's, or another host's, are kept). Returns what was removed."""
    target = Path(target)
    host = socket.gethostname().replace(".", "_").replace("-", "_") or "host"
    removed = []
    for leftover in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        owner = leftover.name[len(target.name) + 2:].split(".", 1)[0]
        leftover_host, _, pid = owner.rpartition("-")
        if leftover_host != host or not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:  # the writer is gone: its file is debris
            leftover.unlink(missing_ok=True)
            removed.append(leftover)
        except PermissionError:  # alive, another user's
            continue
    return removed


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object], *, replace: bool = True) -> Path:
    """Call ``write(temporary_path)`` and then rename the temporary file to ``path``.

    The temporary file lives in the same folder (so the rename is atomic on POSIX), is named after its writer
    (host and process: leftovers of a killed writer are swept by the next write of the same file) and is removed
    if ``write`` fails or is interrupted; the file gets the mode the umask gives a new file. An existing file at
    ``path`` is replaced only once the new one is complete, and with ``replace=False`` never: the new file is
    linked into place only if no file is there (atomic: of two concurrent writers one gets ``FileExistsError``).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(target)
    if not replace and target.exists():
        raise FileExistsError(f"{target} exists; pass overwrite=True (or --overwrite) to replace it")
    handle, temporary = tempfile.mkstemp(prefix=_temporary_prefix(target), suffix=".tmp", dir=target.parent)
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary_path, 0o666 & ~umask)
        write(temporary_path)
        if replace:
            os.replace(temporary_path, target)
        else:
            try:
                os.link(temporary_path, target)  # fails if a file appeared there meanwhile: no check-then-rename race
            except FileExistsError:
                raise FileExistsError(f"{target} exists (written meanwhile by another run); pass overwrite=True "
                                      f"(or --overwrite) to replace it") from None
            temporary_path.unlink()
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
