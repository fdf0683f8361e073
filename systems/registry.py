"""The systems by name, as the command line and dataset files know them."""

from __future__ import annotations

import difflib
from typing import Any

from .base import System
from .double_gyre import DoubleGyre
from .lotka_volterra import LotkaVolterra
from .oscillator import HarmonicOscillator
from .pendulum import CartesianPendulum, Pendulum
from .wave import WaveEquation

__all__ = ["SYSTEMS", "make_system"]

#: Every registered system class by its name (``dynlearn generate SYSTEM``; ``make_system(name, **parameters)``).
SYSTEMS: dict[str, type[System]] = {
    HarmonicOscillator.name: HarmonicOscillator,
    Pendulum.name: Pendulum,
    CartesianPendulum.name: CartesianPendulum,
    WaveEquation.name: WaveEquation,
    LotkaVolterra.name: LotkaVolterra,
    DoubleGyre.name: DoubleGyre,
}


def make_system(name: str, **parameters: Any) -> System:
    """The system called ``name`` with the given parameters (the others at their defaults)."""
    if name not in SYSTEMS:
        nearest = difflib.get_close_matches(name, SYSTEMS, n=1)
        hint = f" Did you mean {nearest[0]!r}?" if nearest else ""
        raise ValueError(f"unknown system {name!r}.{hint} Known systems: {', '.join(SYSTEMS)}.")
    cls = SYSTEMS[name]
    known = {p.name for p in cls.PARAMETERS}
    unknown = set(parameters) - known
    if unknown:
        raise ValueError(f"{name} has no parameter {sorted(unknown)}; its parameters are {sorted(known)}")
    return cls(**parameters)
