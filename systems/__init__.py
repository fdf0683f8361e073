"""Physical systems: equations, exact vector fields, analytical solutions and numerical generators.

Here now: :class:`LinearSystem` (dx/dt = A x, exact through the matrix exponential) and the harmonic
oscillator's matrix. Planned (see the project's issues): the harmonic oscillator as a full system, the 1D
wave equation, the pendulum in angle and constrained Cartesian form, cylinder flow, sea-surface temperature.
This package uses only the core's tableaus and integration.
"""

from .base import Parameter, System
from .linear import LinearSystem, harmonic_oscillator_matrix
from .oscillator import HarmonicOscillator
from .pendulum import CartesianPendulum, Pendulum
from .wave import WaveEquation

__all__ = [
    "CartesianPendulum",
    "HarmonicOscillator",
    "LinearSystem",
    "Parameter",
    "Pendulum",
    "System",
    "WaveEquation",
    "harmonic_oscillator_matrix",
]
