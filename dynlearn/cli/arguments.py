"""What the command groups share: argument types that fail with one clear line, and the library's defaults."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
from typing import Any, Callable

__all__ = ["positive_float", "positive_int", "default", "refuse_existing"]


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number > 0")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive integer")
    return value


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
    """Nothing a user saved is replaced without ``--overwrite``: checked before any work."""
    import os

    if os.path.exists(path) and not overwrite:
        raise ValueError(f"{path} exists; pass --overwrite to replace it")
