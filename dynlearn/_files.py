"""Writing files so that an interrupted run never leaves one that looks finished."""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import socket
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterator

import torch

__all__ = ["atomic_write", "sweep_leftovers", "load_tensors", "load_checkpoint", "restore_random_state", "folder_lock",
           "deferred_interrupt"]


def _host() -> str:
    """This machine's name, without the separators of a temporary file's name."""
    return socket.gethostname().replace(".", "_").replace("-", "_") or "host"


def _temporary_prefix(target: Path) -> str:
    """``.NAME.HOST-PID.``: whose temporary file it is, so that a later run can tell a dead writer's leftovers."""
    return f".{target.name}.{_host()}-{os.getpid()}."


def sweep_leftovers(target: str | os.PathLike) -> list[Path]:
    """Remove the temporary files a killed writer of ``target`` left beside it (``.NAME.HOST-PID.*.tmp`` of this
    host whose process is gone; a live writer's, or another host's, are kept). Returns what was removed."""
    target = Path(target)
    host = _host()
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
        with deferred_interrupt():  # Ctrl-C inside a library's write (h5py) is honoured once the write returns
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


def load_tensors(path: str | os.PathLike, what: str, *, map_location: object = None) -> object:
    """``torch.load(path, weights_only=True)``: tensors, numbers, strings and containers of them, never a pickled
    object. Any file it cannot read (missing, a folder, empty, truncated, another format, one holding Python
    objects) raises one ValueError (FileNotFoundError for a missing file) naming ``path`` and ``what`` it should be.
    """
    import pickle
    import zipfile

    source = Path(path)
    if not source.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if source.is_dir():
        raise ValueError(f"{path} is a folder, not {what}")
    try:
        return torch.load(source, weights_only=True, map_location=map_location)
    except MemoryError:
        raise
    except Exception as error:  # noqa: BLE001 (torch's unpicklers raise many kinds on a foreign file)
        if "out of memory" in str(error).lower():  # the file is fine, the device is full (map_location="cuda")
            raise
        if isinstance(error, pickle.UnpicklingError) and "weights only" in str(error).lower():
            reason = ("a torch.save file holding Python objects besides tensors and numbers, which dynlearn never "
                      "unpickles" if zipfile.is_zipfile(source) else "another format, not a torch.save file")
        else:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            reason = f"empty, truncated or another format: {first[:160]}"
        raise ValueError(f"{path}: not {what} ({reason})") from None


def load_checkpoint(path: str | os.PathLike, keys: tuple[str, ...], what: str, *, map_location: object = None
                    ) -> dict:
    """A checkpoint dynlearn wrote (:func:`load_tensors`), checked to hold ``keys``; otherwise one ValueError
    saying that ``path`` is not a checkpoint of ``what`` and that removing it starts the run over."""
    saved = load_tensors(path, f"a checkpoint of {what}", map_location=map_location)
    missing = [key for key in keys if not isinstance(saved, dict) or key not in saved]
    if missing:
        raise ValueError(f"{path}: not a checkpoint of {what} (no {', '.join(missing)}); remove it to start over")
    return saved


def restore_random_state(state: torch.Tensor) -> None:
    """Restore torch's CPU random generator from a checkpoint's saved state.

    A checkpoint loaded with ``map_location="cuda"`` brings that byte tensor onto the GPU, where
    ``torch.set_rng_state`` refuses it ("RNG state must be a torch.ByteTensor"; found on the first CUDA resume):
    it goes back to the CPU first.
    """
    torch.set_rng_state(state.to("cpu", torch.uint8))


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) while the body runs, then raise KeyboardInterrupt if one came: a C library that
    catches the interrupt inside its own loop (HDF5's writes did: the command then exited 0) cannot swallow it.
    Outside the main thread, or with another handler installed, the body runs as it is."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` while the body runs: a second run into the same folder (a rerun, an
    ``--overwrite`` that would delete it) is refused while the first is alive; the lock dies with its process, so
    a killed run never leaves the folder locked. The lock file ``.NAME.lock`` sits beside the folder (a run may
    replace the folder itself) and is removed when the body ends; a folder the body created and left empty (a run
    refused or failed before writing anything) is removed too.

    Removing a lock file is safe because a lock is held only on the file that is at the path: a process that
    locked a file another one unlinked meanwhile finds the path gone (or another file there) and tries again.
    """
    target = Path(folder).resolve()
    try:
        import fcntl
    except ImportError:  # no POSIX locks (Windows): unlocked
        yield
        return
    existed = target.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / f".{target.name}.lock"
    while True:
        handle = open(lock_path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise ValueError(f"{target} is in use by another run ({owner}); wait for it to end or choose another "
                             f"folder") from None
        try:
            current = os.stat(lock_path)
        except FileNotFoundError:
            current = None
        held = os.fstat(handle.fileno())
        if current is not None and (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
            break
        handle.close()  # the file was removed by its previous holder after we opened it: lock the new one
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on {socket.gethostname()}")
        handle.flush()
        yield
    finally:
        if not existed:
            with contextlib.suppress(OSError):
                target.rmdir()  # only if empty: nothing a run wrote is removed
        with contextlib.suppress(OSError):
            lock_path.unlink()  # still holding the lock, so no other process holds one on this file
        handle.close()  # releases the lock
