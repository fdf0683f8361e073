"""Physical systems: equations, exact vector fields, analytical solutions and numerical generators.

Here now: :class:`LinearSystem` (dx/dt = A x, exact through the matrix exponential), the
:class:`HarmonicOscillator`, the :class:`Pendulum` in angle form and the :class:`CartesianPendulum` in
constrained Cartesian form (Jacobi elliptic solutions), the 1D :class:`WaveEquation` (Fourier series,
method of lines), the :class:`LotkaVolterra` prey-predator equations (invariant, period by quadrature) and the
non-autonomous :class:`DoubleGyre` flow (tracer paths); the last two have tight numerical references.
``dynlearn.systems.cylinder`` holds a lattice Boltzmann solver of the flow past a cylinder (a field generator
rather than a System with a vector field); ``dynlearn.systems.sea_surface`` a SYNTHETIC sea-surface temperature
generator (an idealised Gulf of Mexico; real SST is read by ``dynlearn.datasets.sst``).
This package uses only the core's tableaus and integration.
"""

from .base import Parameter, System
from .double_gyre import DoubleGyre
from .lotka_volterra import LotkaVolterra
from .linear import LinearSystem, harmonic_oscillator_matrix
from .oscillator import HarmonicOscillator
from .pendulum import CartesianPendulum, Pendulum
from .registry import SYSTEMS, make_system
from .wave import WaveEquation

__all__ = [
    "CartesianPendulum",
    "DoubleGyre",
    "HarmonicOscillator",
    "LinearSystem",
    "LotkaVolterra",
    "Parameter",
    "Pendulum",
    "SYSTEMS",
    "System",
    "WaveEquation",
    "harmonic_oscillator_matrix",
    "make_system",
]
