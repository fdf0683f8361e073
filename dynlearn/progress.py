"""Progress of long work: a tqdm bar on a terminal, one line per finished stage in a log or a pipe.

A bar redrawn in a file becomes thousands of carriage-return updates (a ``dynlearn study`` log once held ~1800
lines of them for 6 trainings); a log needs to know what finished, how long it took and how it ended. The
mode is chosen once per process:

    auto   (default) a bar when standard error is a terminal, lines otherwise
    bar    always a bar
    lines  one line per finished stage, on standard error: "<description>: <done>/<total> in <s> s (<postfix>)"
    off    nothing

Set it with :func:`set_progress_mode`, the environment variable ``DYNLEARN_PROGRESS``, or ``dynlearn --progress``.
Every loop that reports progress in dynlearn goes through :func:`progress`.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Iterable, Iterator, TypeVar

__all__ = ["PROGRESS_MODES", "progress", "progress_mode", "set_progress_mode"]

#: how progress is shown: ``auto`` (a bar on a terminal, lines otherwise), ``bar``, ``lines`` or ``off``
PROGRESS_MODES = ("auto", "bar", "lines", "off")
_ENVIRONMENT = "DYNLEARN_PROGRESS"
_mode: str | None = None

Item = TypeVar("Item")


def set_progress_mode(mode: str) -> None:
    """Choose how progress is shown in this process: one of :data:`PROGRESS_MODES`."""
    global _mode
    _mode = _checked(mode, "mode")


def _checked(mode: str, source: str) -> str:
    if mode not in PROGRESS_MODES:
        raise ValueError(f"progress {source} must be one of {', '.join(PROGRESS_MODES)}; got {mode!r}")
    return mode


def progress_mode() -> str:
    """The mode in force, resolved: "bar", "lines" or "off" (auto is a bar on a terminal, lines otherwise)."""
    mode = _mode if _mode is not None else _checked(os.environ.get(_ENVIRONMENT, "auto"), f"({_ENVIRONMENT})")
    if mode == "auto":
        stream = sys.stderr
        return "bar" if stream is not None and hasattr(stream, "isatty") and stream.isatty() else "lines"
    return mode


class _Lines:
    """The line mode's stand-in for a tqdm bar: silent while it runs, one line when it closes."""

    def __init__(self, iterable: Iterable[Any] | None, total: int | None, description: str, initial: int) -> None:
        self.iterable, self.total, self.description = iterable, total, description
        self.initial, self.count, self.postfix = initial, initial, ""
        self.began = time.perf_counter()
        self.closed = False

    def __iter__(self) -> Iterator[Any]:
        try:
            for item in self.iterable if self.iterable is not None else ():
                yield item
                self.count += 1
        finally:
            self.close()

    def update(self, n: int = 1) -> None:
        self.count += n

    def set_description(self, description: str) -> None:
        self.description = description

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        total = f"/{self.total}" if self.total is not None else ""
        resumed = f", resumed at {self.initial}" if self.initial else ""
        postfix = f" ({self.postfix})" if self.postfix else ""
        print(f"{self.description}: {self.count}{total} in {time.perf_counter() - self.began:.1f} s{resumed}{postfix}",
              file=sys.stderr, flush=True)


class _Silent(_Lines):
    def close(self) -> None:
        self.closed = True


def progress(iterable: Iterable[Item] | None = None, *, total: int | None = None, description: str = "",
             initial: int = 0, enabled: bool = True, unit: str = "it") -> Any:
    """Wrap ``iterable`` (or, with ``iterable=None``, a manual counter advanced by ``update(n)``) in the progress
    display of the current mode. The result iterates like ``iterable`` and has ``update``, ``set_description``,
    ``set_postfix`` and ``close``; ``enabled=False`` shows nothing (a rank other than 0, a caller that reports by
    itself)."""
    mode = progress_mode() if enabled else "off"
    if mode == "bar":
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=description, initial=initial, leave=False, unit=unit)
    if mode == "lines":
        return _Lines(iterable, total, description, initial)
    return _Silent(iterable, total, description, initial)
