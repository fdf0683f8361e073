"""Argument checks shared by the public functions: fail early, name the argument, say what is allowed."""

from __future__ import annotations

import math
import numbers

import torch

__all__ = ["as_positive_step", "as_finite_time", "as_step_count", "check_state"]


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


def as_positive_step(name: str, value: object) -> float:
    """``value`` as a float, checked finite and > 0."""
    number = _as_real(name, value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {number!r}")
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


def as_positive_integer(name: str, value: object) -> int:
    """``value`` as an int, checked integral (not a bool) and >= 1; a ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
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
