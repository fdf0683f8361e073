"""Analysis of learned and numerical dynamics: convergence tests and rate fitting (operator reconstruction
and stability analysis are planned, see the project's issues)."""

from .convergence import ConvergenceResult, convergence_test, round_off_floor
from .rates import ConvergenceRate, fit_convergence_rate

__all__ = [
    "ConvergenceRate",
    "ConvergenceResult",
    "convergence_test",
    "fit_convergence_rate",
    "round_off_floor",
]
