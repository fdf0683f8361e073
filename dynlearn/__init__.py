"""dynlearn: learning the dynamics of physical systems from data.

The core holds exact Butcher tableaus, fixed-step integration (:func:`step`, :func:`rollout`), a bridge to
torchdiffeq for adaptive solves (:func:`odeint`), linear stability (:func:`stability_matrix`), the learned
models (``dynlearn.models``) and their training loop (``dynlearn.training``). Sub-packages: ``dynlearn.systems`` (physical systems),
``dynlearn.datasets`` (the HDF5 format and torch views), ``dynlearn.analysis`` (convergence tests, operator
reconstruction, stability).
"""

from importlib.metadata import PackageNotFoundError, version

from .adaptive import ADAPTIVE_METHODS, odeint
from .integrate import NonFiniteStateError, VectorField, rollout, step, time_grid
from .stability import stability_matrix
from .tableau import ButcherTableau
from .tableaus import available_tableaus, get_tableau, register_tableau

try:
    __version__ = version("dynlearn")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

__all__ = [
    "ADAPTIVE_METHODS",
    "ButcherTableau",
    "NonFiniteStateError",
    "VectorField",
    "available_tableaus",
    "get_tableau",
    "odeint",
    "register_tableau",
    "rollout",
    "stability_matrix",
    "step",
    "time_grid",
]
