"""The physics-aware autoencoder: y -> Psi -> z, z_{t+1} = Omega z_t, z -> Phi -> y, with a Lyapunov prior.

Erichson, Muehlebach & Mahoney (2019), "Physics-informed autoencoders for Lyapunov-stable fluid flow
prediction", arXiv:1905.10866. A snapshot y_t (m values: a flattened vorticity field, the ocean cells of an SST
map) is encoded to k latent coordinates, advanced by a linear map Omega (k x k, no bias) and decoded:

    y_{t+s} ~ Phi(Omega^s Psi(y_t)).

Loss on windows (y_t, y_{t+1}, ..., y_{t+S}), every term a mean over the batch and the m values:

    L = sum_{s=1..S} mean |y_{t+s} - Phi Omega^s Psi(y_t)|^2  +  lambda mean |y_t - Phi Psi(y_t)|^2
        + kappa sum_i rho(p_i),

with p_i the eigenvalues of P solving Omega^T P Omega - P = -I and rho from :mod:`dynlearn.autoencoder.lyapunov`.
Defaults: S = 2, lambda = 3, gamma = 4, k = 15. kappa: the physics-agnostic baseline has kappa = 0; the
physics-aware default is kappa = 1. How it was chosen: on the coarse cylinder wake (recipe "cylinder"), kappa =
0.1, 1 and 10 gave the same errors within run-to-run noise (10-step relative error 0.40, 0.50, 0.41; 100-step
1.04, 1.05, 1.05) and spectral radii 0.964-0.969, while kappa = 0 ended at radius 1.12 with a 100-step error of
1.85: any kappa in that range does the job, and 1 puts the prior on the scale of the data terms.

Networks (widths configurable): Psi: m -> 40 -> 25 -> k, Phi: k -> 25 -> 40 -> m, tanh between layers and
linear output layers, PyTorch's default initialisation of the linear layers (seeded). Omega starts as a random
orthogonal matrix times 0.99: every latent direction starts slightly damped, none growing, none dead.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

from dynlearn._checks import as_integer, as_positive_number
from dynlearn.autoencoder.lyapunov import stability_prior

__all__ = ["PhysicsAwareAutoencoder", "AutoencoderLoss", "snapshot_windows"]

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "identity": nn.Identity}


def _network(sizes: Sequence[int], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for index, (width_in, width_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(width_in, width_out))
        if index < len(sizes) - 2:
            layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class SpectralNormBound(nn.Module):
    """Omega = bound W / max(1, ||W||_2), a parametrisation (``torch.nn.utils.parametrize``) of the latent map:
    its spectral norm is at most ``bound``, hence so is every eigenvalue's modulus, for any W.

    Why a norm bound rather than a Schur or Cayley form: it is one small SVD per step (k x k), it is exact (no
    penalty to balance, nothing that fades as the prior does for very negative Lyapunov eigenvalues), and it bounds
    the transient growth ||Omega^n|| <= bound^n too, which a bound on the eigenvalues alone does not (a non-normal
    Omega with radius < 1 can amplify for many steps). It asks more than stability, a contraction in the latent
    coordinates' Euclidean norm; but every stable map is a contraction in some norm (that of its Lyapunov matrix
    P), and the encoder learns the coordinates, so it can take that norm's change of basis on itself.
    """

    def __init__(self, bound: float = 1.0) -> None:
        super().__init__()
        if not (isinstance(bound, (int, float)) and 0 < bound <= 1):
            raise ValueError(f"the spectral bound must be a number in (0, 1], got {bound!r}")
        self.bound = float(bound)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.matrix_norm(weight, ord=2)
        return self.bound * weight / torch.clamp(norm, min=1.0)

    def right_inverse(self, omega: torch.Tensor) -> torch.Tensor:
        """A W that gives ``omega`` (one of spectral norm <= bound): omega / bound."""
        return omega / self.bound


class PhysicsAwareAutoencoder(nn.Module):
    """Psi (encoder), Omega (linear latent map), Phi (decoder); see the module docstring.

    Args:
        n_features: m, values per snapshot. latent: k. widths: hidden widths of the encoder (the decoder
        mirrors them). activation: "tanh" (default), "relu", "elu", "gelu". omega_scale: Omega starts as a
        random orthogonal matrix times this. seed: of the initialisation (None: torch's current state).
        omega_bound: None (Omega free, kept stable only by a loss's prior, if any), or a number in (0, 1]: Omega
        parametrised by :class:`SpectralNormBound`, its spectral radius at most that for any parameters.
    """

    def __init__(self, n_features: int, latent: int = 15, widths: Sequence[int] = (40, 25), activation: str = "tanh",
                 omega_scale: float = 0.99, seed: int | None = None, omega_bound: float | None = None) -> None:
        super().__init__()
        n_features, latent = as_integer("n_features", n_features), as_integer("latent", latent)
        if latent > n_features:
            raise ValueError(f"latent = {latent} is larger than the data dimension m = {n_features}; choose latent <= m")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        widths = tuple(int(w) for w in widths)
        if any(w < 1 for w in widths):
            raise ValueError(f"widths must be positive integers, got {widths}")
        if not (0 < omega_scale <= 1.5 and math.isfinite(omega_scale)):
            raise ValueError(f"omega_scale must be in (0, 1.5], got {omega_scale}")
        self.n_features, self.latent, self.widths, self.activation = n_features, latent, widths, activation
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        with torch.random.fork_rng(enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.encoder = _network((n_features, *widths, latent), activation)
            self.decoder = _network((latent, *reversed(widths), n_features), activation)
        omega = torch.empty(latent, latent)
        nn.init.orthogonal_(omega, generator=generator)
        self.omega = nn.Parameter(omega_scale * omega)
        self.omega_bound = omega_bound
        if omega_bound is not None:
            parametrize.register_parametrization(self, "omega", SpectralNormBound(omega_bound), unsafe=True)

    def config(self) -> dict:
        """What rebuilds this architecture (for checkpoints)."""
        return {"n_features": self.n_features, "latent": self.latent, "widths": list(self.widths),
                "activation": self.activation, "omega_bound": self.omega_bound}

    def encode(self, y: torch.Tensor) -> torch.Tensor:
        """Psi: ``(..., m)`` -> ``(..., k)``."""
        return self.encoder(y)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Phi: ``(..., k)`` -> ``(..., m)``."""
        return self.decoder(z)

    def advance(self, z: torch.Tensor, steps: int) -> torch.Tensor:
        """Omega^s z for s = 1..steps: ``(..., k)`` -> ``(steps, ..., k)``."""
        states = []
        for _ in range(steps):
            z = z @ self.omega.T
            states.append(z)
        return torch.stack(states)

    def forward(self, y: torch.Tensor, steps: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictions ``(steps, batch, m)`` of y_{t+1..t+steps} and the reconstruction ``(batch, m)`` of y_t."""
        z = self.encode(y)
        return self.decode(self.advance(z, steps)), self.decode(z)

    @torch.no_grad()
    def predict(self, y0: torch.Tensor, n_steps: int) -> torch.Tensor:
        """Encode once, apply Omega ``n_steps`` times, decode: ``(batch, m)`` -> ``(n_steps + 1, batch, m)``
        (index 0 is the reconstruction of y0)."""
        z = self.encode(y0)
        return self.decode(torch.cat([z[None], self.advance(z, n_steps)]))


@dataclasses.dataclass(frozen=True)
class AutoencoderLoss:
    """The loss of the module docstring: ``steps`` = S, ``reconstruction`` = lambda, ``kappa``, ``gamma``."""

    steps: int = 2
    reconstruction: float = 3.0
    kappa: float = 1.0
    gamma: float = 4.0

    def __post_init__(self) -> None:
        as_integer("steps (S)", self.steps)
        for name in ("reconstruction", "kappa"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        as_positive_number("gamma", self.gamma)

    def terms(self, model: PhysicsAwareAutoencoder, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        """The three terms for ``windows`` ``(batch, S + 1, m)``."""
        if windows.ndim != 3 or windows.shape[1] < self.steps + 1:
            raise ValueError(f"windows must be (batch, S + 1 = {self.steps + 1}, m), got {tuple(windows.shape)}")
        predictions, reconstruction = model(windows[:, 0], self.steps)
        targets = windows[:, 1:self.steps + 1].transpose(0, 1)
        prediction = ((predictions - targets) ** 2).mean(dim=(1, 2)).sum()
        identity = ((reconstruction - windows[:, 0]) ** 2).mean()
        prior = stability_prior(model.omega, self.gamma) if self.kappa > 0 else torch.zeros((), device=windows.device)
        return {"prediction": prediction, "reconstruction": identity, "prior": prior}

    def __call__(self, model: PhysicsAwareAutoencoder, windows: torch.Tensor) -> torch.Tensor:
        terms = self.terms(model, windows)
        return terms["prediction"] + self.reconstruction * terms["reconstruction"] + self.kappa * terms["prior"]


def snapshot_windows(snapshots: torch.Tensor, steps: int) -> torch.Tensor:
    """All windows (y_t, ..., y_{t+S}) of a sequence ``(n_times, m)``: ``(n_times - S, S + 1, m)`` (a view)."""
    if snapshots.ndim != 2:
        raise ValueError(f"snapshots must be (n_times, m), got shape {tuple(snapshots.shape)}")
    if snapshots.shape[0] < steps + 1:
        raise ValueError(f"{snapshots.shape[0]} snapshots are too few for {steps}-step targets (need at least {steps + 1})")
    return snapshots.unfold(0, steps + 1, 1).transpose(1, 2)
