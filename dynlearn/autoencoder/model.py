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

Latent dynamics besides the free Omega (``latent_map(dt)`` is the map over one step for every kind):

- bounded: Omega = b W / max(1, ||W||_2) (:class:`SpectralNormBound`): spectral radius <= b for any parameters,
  trained without the prior.
- continuous time: a generator Lambda (k x k, 1 / time), z' = Lambda z, and over a step dt either the exact flow
  Omega(dt) = exp(dt Lambda) or one step of a Runge-Kutta scheme, Omega(dt) = R(dt Lambda) (its stability
  function, :func:`dynlearn.integration.stability_matrix`: the learned-integrator question in latent space).
  Trained at the record's step dt_record, it predicts at any dt (dt_record / 2^k, 2^k dt_record). Lambda starts as
  (log 0.99 I + S) / dt_record with S skew-symmetric of spectral radius 1 (exp(S) orthogonal: the discrete
  model's start, with latent frequencies below 1 / dt_record, inside every scheme's stability region). Its prior:
  the continuous Lyapunov equation Lambda^T P + P Lambda = -I (:mod:`dynlearn.autoencoder.lyapunov`, (4)).
- consistent (Azencot, Erichson, Lin & Mahoney, "Forecasting sequential data using consistent Koopman
  autoencoders", ICML 2020): a backward map D beside Omega, predicting y_{t+S-s} ~ Phi(D^s Psi(y_{t+S})), and the
  consistency loss that makes D the inverse of Omega,

      L_con = sum_{j=1..k} (1 / 2j) (||D_{j*} Omega_{*j} - I_j||_F^2 + ||Omega_{j*} D_{*j} - I_j||_F^2),

  with D_{j*} the first j rows of D and Omega_{*j} the first j columns of Omega (zero exactly when D = Omega^-1);
  weights 0.1 (backward prediction) and 0.01 (consistency), the paper's. D starts as Omega^-1.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

from dynlearn._checks import as_flag, as_integer, as_positive_number, as_positive_step
from dynlearn.autoencoder.lyapunov import continuous_stability_prior, stability_prior
from dynlearn.integration.stability import stability_matrix
from dynlearn.integration.tableaus import get_tableau

__all__ = ["PhysicsAwareAutoencoder", "AutoencoderLoss", "SpectralNormBound", "consistency_loss", "snapshot_windows"]

#: the continuous-time latent map's "scheme" that is the exact flow exp(dt Lambda)
EXACT_FLOW = "exact"

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
    """Psi (encoder), the latent dynamics (Omega, or a generator Lambda), Phi (decoder); see the module docstring.

    Args:
        n_features: m, values per snapshot.
        latent: k, the latent dimension.
        widths: hidden widths of the encoder (the decoder mirrors them).
        activation: "tanh" (default), "relu", "elu", "gelu".
        omega_scale: Omega starts as a random orthogonal matrix times this.
        seed: of the initialisation (None: torch's current state).
        omega_bound: None (Omega free, kept stable only by a loss's prior, if any), or a number in (0, 1]:
            Omega parametrised by :class:`SpectralNormBound`, its spectral radius at most that for any parameters.
        time_step: None (a discrete map Omega), or the record's step dt_record (> 0, the data's time unit): a
            continuous-time model with generator Lambda, ``latent_map(dt)`` = exp(dt Lambda) or R(dt Lambda).
        scheme: of a continuous-time model: "exact" (the matrix exponential) or a registered Runge-Kutta scheme.
        backward: a backward map D as well (the consistent Koopman autoencoder; discrete Omega only).
    """

    def __init__(self, n_features: int, latent: int = 15, widths: Sequence[int] = (40, 25), activation: str = "tanh",
                 omega_scale: float = 0.99, seed: int | None = None, omega_bound: float | None = None,
                 time_step: float | None = None, scheme: str = EXACT_FLOW, backward: bool = False) -> None:
        super().__init__()
        n_features, latent = as_integer("n_features", n_features), as_integer("latent", latent)
        backward = as_flag("backward", backward)
        if latent > n_features:
            raise ValueError(f"latent = {latent} is larger than the data dimension m = {n_features}; choose latent <= m")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        widths = tuple(int(w) for w in widths)
        if any(w < 1 for w in widths):
            raise ValueError(f"widths must be positive integers, got {widths}")
        if not (0 < omega_scale <= 1.5 and math.isfinite(omega_scale)):
            raise ValueError(f"omega_scale must be in (0, 1.5], got {omega_scale}")
        if time_step is not None:
            time_step = as_positive_step("time_step", time_step)
            if omega_bound is not None or backward:
                raise ValueError("omega_bound and backward apply to a discrete latent map; a continuous-time model "
                                 "(time_step given) takes neither")
            if scheme != EXACT_FLOW:
                scheme = get_tableau(scheme).name  # one line naming the registered schemes if unknown
        elif scheme != EXACT_FLOW:
            raise ValueError(f"scheme applies to a continuous-time model; give time_step too (got scheme={scheme!r})")
        if omega_bound is not None and backward:
            raise ValueError("backward (the consistent model) and omega_bound are separate models; choose one")
        self.n_features, self.latent, self.widths, self.activation = n_features, latent, widths, activation
        self.time_step, self.scheme, self.backward = time_step, scheme, bool(backward)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        with torch.random.fork_rng(enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.encoder = _network((n_features, *widths, latent), activation)
            self.decoder = _network((latent, *reversed(widths), n_features), activation)
        self.omega_bound = omega_bound
        if time_step is not None:
            raw = torch.randn(latent, latent, generator=generator)
            skew = raw - raw.T
            radius = float(torch.linalg.eigvals(skew).abs().max()) if latent > 1 else 0.0
            skew = skew / radius if radius > 0 else skew
            self.generator = nn.Parameter((math.log(omega_scale) * torch.eye(latent) + skew) / time_step)
            return
        omega = torch.empty(latent, latent)
        nn.init.orthogonal_(omega, generator=generator)
        self.omega = nn.Parameter(omega_scale * omega)
        if backward:
            self.omega_backward = nn.Parameter(omega.T / omega_scale)  # D = Omega^-1
        if omega_bound is not None:
            parametrize.register_parametrization(self, "omega", SpectralNormBound(omega_bound), unsafe=True)

    @property
    def continuous_time(self) -> bool:
        """A generator Lambda (continuous time), not a discrete Omega."""
        return self.time_step is not None

    def config(self) -> dict:
        """What rebuilds this architecture (for checkpoints)."""
        return {"n_features": self.n_features, "latent": self.latent, "widths": list(self.widths),
                "activation": self.activation, "omega_bound": self.omega_bound, "time_step": self.time_step,
                "scheme": self.scheme, "backward": self.backward}

    def latent_map(self, time_step: float | None = None) -> torch.Tensor:
        """Omega ``(k, k)`` over one step: the discrete map (``time_step`` None), or for a continuous-time model
        exp(dt Lambda) or R(dt Lambda) at dt = ``time_step`` (default: the record's step)."""
        if not self.continuous_time:
            if time_step is not None:
                raise ValueError("a discrete latent map Omega has one step, the record's; only a continuous-time "
                                 "model (time_step given when made) predicts at another")
            return self.omega
        dt = self.time_step if time_step is None else as_positive_step("time_step", time_step)
        if self.scheme == EXACT_FLOW:
            return torch.linalg.matrix_exp(dt * self.generator)
        return stability_matrix(self.generator, dt, self.scheme)

    def encode(self, y: torch.Tensor) -> torch.Tensor:
        """Psi: ``(..., m)`` -> ``(..., k)``."""
        return self.encoder(y)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Phi: ``(..., k)`` -> ``(..., m)``."""
        return self.decoder(z)

    def advance(self, z: torch.Tensor, steps: int, time_step: float | None = None) -> torch.Tensor:
        """Omega^s z for s = 1..steps: ``(..., k)`` -> ``(steps, ..., k)`` (``time_step``: see :meth:`latent_map`)."""
        return _powers(z, self.latent_map(time_step), steps)

    def advance_backward(self, z: torch.Tensor, steps: int) -> torch.Tensor:
        """D^s z for s = 1..steps (the consistent model's backward map): ``(..., k)`` -> ``(steps, ..., k)``."""
        if not self.backward:
            raise ValueError("this model has no backward map; make it with backward=True")
        return _powers(z, self.omega_backward, steps)

    def forward(self, y: torch.Tensor, steps: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictions ``(steps, batch, m)`` of y_{t+1..t+steps} and the reconstruction ``(batch, m)`` of y_t."""
        z = self.encode(y)
        return self.decode(self.advance(z, steps)), self.decode(z)

    @torch.no_grad()
    def predict(self, y0: torch.Tensor, n_steps: int, time_step: float | None = None) -> torch.Tensor:
        """Encode once, apply Omega ``n_steps`` times, decode: ``(batch, m)`` -> ``(n_steps + 1, batch, m)``
        (index 0 is the reconstruction of y0). ``time_step``: a continuous-time model's step (default: the
        record's), so that index j is the prediction at t0 + j time_step."""
        z = self.encode(y0)
        return self.decode(torch.cat([z[None], self.advance(z, n_steps, time_step)]))


def _powers(z: torch.Tensor, matrix: torch.Tensor, steps: int) -> torch.Tensor:
    """matrix^s z for s = 1..steps, z ``(..., k)`` -> ``(steps, ..., k)``."""
    states = []
    for _ in range(steps):
        z = z @ matrix.T
        states.append(z)
    return torch.stack(states)


def consistency_loss(omega: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    r"""The consistency loss :math:`\sum_{j=1}^{k} \frac{1}{2j} \big(\lVert D_{j*} \Omega_{*j} - I_j \rVert_F^2 +
    \lVert \Omega_{j*} D_{*j} - I_j \rVert_F^2\big)` (module
    docstring; Azencot et al. 2020, eq. 8) for ``omega`` and ``backward`` D, both ``(k, k)``: zero exactly when
    every leading block of D Omega and Omega D is the identity, as for D = Omega^-1."""
    if omega.shape != backward.shape or omega.ndim != 2 or omega.shape[0] != omega.shape[1]:
        raise ValueError(f"omega and backward must be square matrices of one shape, got {tuple(omega.shape)} and "
                         f"{tuple(backward.shape)}")
    # D_{j*} Omega_{*j} is the leading j x j block of D Omega: its squared distance to I_j is a 2-D prefix sum
    identity = torch.eye(omega.shape[0], dtype=omega.dtype, device=omega.device)
    squares = (backward @ omega - identity) ** 2 + (omega @ backward - identity) ** 2
    blocks = squares.cumsum(0).cumsum(1).diagonal()  # blocks[j - 1] = sum over the leading j x j block
    return (blocks / (2 * torch.arange(1, omega.shape[0] + 1, dtype=omega.dtype, device=omega.device))).sum()


@dataclasses.dataclass(frozen=True)
class AutoencoderLoss:
    """The loss of the module docstring: ``steps`` = S, ``reconstruction`` = lambda, ``kappa`` (the Lyapunov prior:
    the discrete one on Omega, the continuous one on a continuous-time model's Lambda), ``gamma``; for a model with
    a backward map, ``backward`` (weight of its S-step backward prediction) and ``consistency`` (of L_con)."""

    steps: int = 2
    reconstruction: float = 3.0
    kappa: float = 1.0
    gamma: float = 4.0
    backward: float = 0.1
    consistency: float = 0.01

    def __post_init__(self) -> None:
        as_integer("steps (S)", self.steps)
        for name in ("reconstruction", "kappa", "backward", "consistency"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        as_positive_number("gamma", self.gamma)

    def terms(self, model: PhysicsAwareAutoencoder, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        """The terms for ``windows`` ``(batch, S + 1, m)``: prediction, reconstruction, prior, and (zero without a
        backward map) backward and consistency."""
        if windows.ndim != 3 or windows.shape[1] < self.steps + 1:
            raise ValueError(f"windows must be (batch, S + 1 = {self.steps + 1}, m), got {tuple(windows.shape)}")
        zero = torch.zeros((), device=windows.device)
        predictions, reconstruction = model(windows[:, 0], self.steps)
        targets = windows[:, 1:self.steps + 1].transpose(0, 1)
        prediction = ((predictions - targets) ** 2).mean(dim=(1, 2)).sum()
        identity = ((reconstruction - windows[:, 0]) ** 2).mean()
        if self.kappa == 0:
            prior = zero
        elif model.continuous_time:
            prior = continuous_stability_prior(model.generator, self.gamma)
        else:
            prior = stability_prior(model.latent_map(), self.gamma)
        terms = {"prediction": prediction, "reconstruction": identity, "prior": prior, "backward": zero,
                 "consistency": zero}
        if model.backward:
            last = model.encode(windows[:, self.steps])  # from y_{t+S} back to y_{t+S-s}, s = 1..S
            earlier = windows[:, :self.steps].flip(1).transpose(0, 1)
            terms["backward"] = ((model.decode(model.advance_backward(last, self.steps)) - earlier) ** 2
                                 ).mean(dim=(1, 2)).sum()
            terms["consistency"] = consistency_loss(model.latent_map(), model.omega_backward)
        return terms

    def total(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """The weighted sum of :meth:`terms`."""
        return (terms["prediction"] + self.reconstruction * terms["reconstruction"] + self.kappa * terms["prior"]
                + self.backward * terms["backward"] + self.consistency * terms["consistency"])

    def __call__(self, model: PhysicsAwareAutoencoder, windows: torch.Tensor) -> torch.Tensor:
        return self.total(self.terms(model, windows))


def snapshot_windows(snapshots: torch.Tensor, steps: int) -> torch.Tensor:
    """All windows (y_t, ..., y_{t+S}) of a sequence ``(n_times, m)``: ``(n_times - S, S + 1, m)`` (a view)."""
    if snapshots.ndim != 2:
        raise ValueError(f"snapshots must be (n_times, m), got shape {tuple(snapshots.shape)}")
    if snapshots.shape[0] < steps + 1:
        raise ValueError(f"{snapshots.shape[0]} snapshots are too few for {steps}-step targets (need at least {steps + 1})")
    return snapshots.unfold(0, steps + 1, 1).transpose(1, 2)
