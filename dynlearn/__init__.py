"""dynlearn: learning the dynamics of physical systems from data.

The core holds exact Butcher tableaus, fixed-step integration (:func:`step`, :func:`rollout`), a bridge to
torchdiffeq for adaptive solves (:func:`odeint`), linear stability (:func:`stability_matrix`), the learned
models (``dynlearn.models``) and their training loop (``dynlearn.training``), the physics-aware autoencoder
(:class:`PhysicsAwareAutoencoder`, ``dynlearn.autoencoder_training``) with its Lyapunov prior
(``dynlearn.lyapunov``). Sub-packages: ``dynlearn.systems`` (physical systems),
``dynlearn.datasets`` (the HDF5 format and torch views), ``dynlearn.analysis`` (convergence tests, operator
reconstruction, stability).
"""

from importlib.metadata import PackageNotFoundError, version

from .adaptive import ADAPTIVE_METHODS, odeint
from .autoencoder import AutoencoderLoss, PhysicsAwareAutoencoder
from .integrate import NonFiniteStateError, VectorField, rollout, step, time_grid
from .lyapunov import solve_discrete_lyapunov, stability_prior
from .stability import stability_matrix
from .tableau import ButcherTableau
from .tableaus import available_tableaus, get_tableau, register_tableau

try:
    __version__ = version("dynlearn")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

__all__ = [
    "ADAPTIVE_METHODS",
    "AutoencoderLoss",
    "ButcherTableau",
    "NonFiniteStateError",
    "PhysicsAwareAutoencoder",
    "VectorField",
    "available_tableaus",
    "get_tableau",
    "odeint",
    "register_tableau",
    "rollout",
    "solve_discrete_lyapunov",
    "stability_matrix",
    "stability_prior",
    "step",
    "time_grid",
]
