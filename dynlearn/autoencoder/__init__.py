"""The physics-aware autoencoder (Erichson, Muehlebach & Mahoney 2019): y -> Psi -> z, z_{t+1} = Omega z_t,
z -> Phi -> y, kept stable by a Lyapunov prior on Omega; and its latent dynamics beyond the free Omega: spectrally
bounded, continuous in time (exp(dt Lambda) or Lambda inside a Runge-Kutta scheme, a continuous Lyapunov prior),
and consistent (a backward map D, Azencot et al. 2020). Its modules::

    model.py     PhysicsAwareAutoencoder, AutoencoderLoss, SpectralNormBound, consistency_loss, snapshot_windows
    lyapunov.py  solve_discrete_lyapunov (Schur form, Hammarling), stability_prior, lyapunov_eigenvalues,
                 spectral_radius; solve_continuous_lyapunov, continuous_stability_prior,
                 continuous_lyapunov_eigenvalues, spectral_abscissa
    training.py  train_autoencoder, AutoencoderTrainingSettings, AutoencoderHistory
"""

from dynlearn.autoencoder.lyapunov import (continuous_lyapunov_eigenvalues, continuous_stability_prior,
                                           lyapunov_eigenvalues, solve_continuous_lyapunov, solve_discrete_lyapunov,
                                           spectral_abscissa, spectral_radius, stability_prior)
from dynlearn.autoencoder.model import (AutoencoderLoss, PhysicsAwareAutoencoder, SpectralNormBound, consistency_loss,
                                        snapshot_windows)
from dynlearn.autoencoder.training import AutoencoderHistory, AutoencoderTrainingSettings, train_autoencoder

__all__ = ["AutoencoderHistory", "AutoencoderLoss", "AutoencoderTrainingSettings", "PhysicsAwareAutoencoder",
           "SpectralNormBound", "consistency_loss", "continuous_lyapunov_eigenvalues", "continuous_stability_prior",
           "lyapunov_eigenvalues", "snapshot_windows", "solve_continuous_lyapunov", "solve_discrete_lyapunov",
           "spectral_abscissa", "spectral_radius", "stability_prior", "train_autoencoder"]
