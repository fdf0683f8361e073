"""Argument checks shared by the whole library: fail early, name the argument, say what is allowed.

The one validation idiom of dynlearn: every public function and settings dataclass checks its numbers with
these helpers, so a bad value always reads "NAME must be WHAT IS ALLOWED, got VALUE".
"""

from __future__ import annotations

import math
import numbers
import os

import numpy
import torch

__all__ = ["as_flag", "as_positive_step", "as_positive_number", "as_number_in", "as_finite_time", "as_step_count",
           "as_integer", "check_state", "steps_in", "available_memory", "check_allocation",
           "count_text", "as_learning_rate", "MAXIMUM_LEARNING_RATE", "as_seeds"]


def _as_real(name: str, value: object) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a number, got a tensor of shape {tuple(value.shape)}")
        if value.requires_grad:
            raise ValueError(f"{name} is used as a plain number; gradients with respect to {name} are not tracked")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    return float(value)


def as_flag(name: str, value: object) -> bool:
    """``value`` as a bool: True or False (numpy's bools too), never a truthy stand-in such as ``"no"`` or 1."""
    if isinstance(value, (bool, numpy.bool_)):
        return bool(value)
    raise ValueError(f"{name} must be True or False, got {type(value).__name__} {value!r}")


def as_positive_step(name: str, value: object) -> float:
    """``value`` as a float, checked finite and > 0."""
    number = _as_real(name, value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {number!r}")
    return number


def as_positive_number(name: str, value: object) -> float:
    """``value`` as a float, checked finite and > 0 (a rate, a size, a tolerance)."""
    return as_positive_step(name, value)


def as_seeds(name: str, values: object) -> tuple[int, ...]:
    """``values`` as a non-empty tuple of distinct seeds, integers in [0, 2^63 - 1] (what torch and numpy take):
    a repeated seed would train the same model twice and count it as two."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a sequence of integers, got {type(values).__name__} {values!r}")
    seeds = tuple(as_integer(name, value, minimum=0, maximum=2**63 - 1) for value in values)
    if not seeds:
        raise ValueError(f"{name} must hold at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{name} repeats a seed: {list(seeds)}")
    return seeds


MAXIMUM_LEARNING_RATE = 1e3
"""The largest learning rate the trainers take: far above any rate that trains (1e-4 to 1 for Adam and SGD here),
far below where the optimisers' float32 arithmetic overflows (3.4e38: 1e300 failed inside torch's update)."""


def as_learning_rate(name: str, value: object) -> float:
    """``value`` as a float in (0, :data:`MAXIMUM_LEARNING_RATE`]."""
    number = _as_real(name, value)
    if not 0 < number <= MAXIMUM_LEARNING_RATE:
        raise ValueError(f"{name} must be a number in (0, {MAXIMUM_LEARNING_RATE:g}], got {number!r}")
    return number


def as_number_in(name: str, value: object, low: float, high: float, *, include_high: bool = False) -> float:
    """``value`` as a float in [low, high) (or [low, high] with ``include_high``)."""
    number = _as_real(name, value)
    if not (low <= number < high or (include_high and number == high)):
        raise ValueError(f"{name} must lie in [{low:g}, {high:g}{']' if include_high else ')'}, got {number!r}")
    return number


def as_finite_time(name: str, value: object) -> float:
    """``value`` as a float, checked finite."""
    number = _as_real(name, value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number!r}")
    return number


def as_step_count(name: str, value: object) -> int:
    """``value`` as an int, checked integral and >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a non-negative integer, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value}")
    return int(value)


def as_integer(name: str, value: object, *, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an int (numpy integers accepted, bools not), checked ``minimum <= value <= maximum``."""
    allowed = f"an integer >= {minimum}" if maximum is None else f"an integer in [{minimum}, {maximum}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be {allowed}, got {type(value).__name__} {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


def check_state(name: str, value: object) -> torch.Tensor:
    """``value`` must be a floating-point (or complex) tensor of any shape."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not (value.is_floating_point() or value.is_complex()):
        raise TypeError(f"{name} must have a floating-point or complex dtype, got {value.dtype}")
    return value


def steps_in(interval: float, dt: float, *, interval_name: str = "t_final", dt_name: str = "dt") -> int:
    """The whole number of steps of size ``dt`` in ``interval`` (> 0), or a ValueError saying that dt does
    not divide it (relative tolerance 1e-9, so 2.0 / 0.1 counts as 20 steps)."""
    dt = as_positive_step(dt_name, dt)
    interval = as_positive_step(interval_name, interval)
    count = round(interval / dt)
    if count < 1 or not math.isclose(count * dt, interval, rel_tol=1e-9, abs_tol=0.0):
        raise ValueError(
            f"{dt_name}={dt:g} does not divide {interval_name} = {interval:g} into whole steps "
            f"({interval:g}/{dt:g} = {interval / dt:.6g}); choose {dt_name} = {interval_name}/n for an integer n"
        )
    return count


def available_memory() -> int:
    """Bytes of memory this machine can give now (Linux: MemAvailable; elsewhere the physical memory)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return 2**63


def count_text(n: int) -> str:
    """An integer count for a message: exact below 10^12, in e-notation above (a step count of 1e300)."""
    return str(n) if abs(n) < 10**12 else f"{float(n):.3g}"


def check_allocation(what: str, n_bytes: float, remedy: str) -> None:
    """Refuse, before allocating, work whose arrays cannot fit: ``n_bytes`` (an estimate) against
    :func:`available_memory`, with a message naming ``what`` and the ``remedy``."""
    available = available_memory()
    if n_bytes > available:
        raise ValueError(f"{what} needs about {n_bytes / 2**30:.3g} GiB, more than the {available / 2**30:.3g} GiB "
                         f"this machine has free; {remedy}")
