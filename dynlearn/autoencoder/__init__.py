"""The physics-aware autoencoder (Erichson, Muehlebach & Mahoney 2019): y -> Psi -> z, z_{t+1} = Omega z_t,
z -> Phi -> y, kept stable by a Lyapunov prior on Omega.

    model.py     PhysicsAwareAutoencoder, AutoencoderLoss, snapshot_windows
    lyapunov.py  solve_discrete_lyapunov (Schur form, Hammarling), stability_prior, lyapunov_eigenvalues,
                 spectral_radius
    training.py  train_autoencoder, AutoencoderTrainingSettings, AutoencoderHistory
"""

from dynlearn.autoencoder.lyapunov import (lyapunov_eigenvalues, solve_discrete_lyapunov, spectral_radius,
                                           stability_prior)
from dynlearn.autoencoder.model import AutoencoderLoss, PhysicsAwareAutoencoder, snapshot_windows
from dynlearn.autoencoder.training import AutoencoderHistory, AutoencoderTrainingSettings, train_autoencoder

__all__ = ["AutoencoderHistory", "AutoencoderLoss", "AutoencoderTrainingSettings", "PhysicsAwareAutoencoder",
           "lyapunov_eigenvalues", "snapshot_windows", "solve_discrete_lyapunov", "spectral_radius",
           "stability_prior", "train_autoencoder"]
