"""Proper orthogonal decomposition (POD): the few spatial modes that carry most of a field's variance.

Snapshots x_k (n of them, m values each: a vorticity field, the ocean cells of an SST map) are written as

    x_k ~ mean + sum_{i<r} a_i(t_k) phi_i,      a_i(t_k) = phi_i^T (x_k - mean),

with the modes phi_i the leading right singular vectors of the centred snapshot matrix X - mean (n x m): among
all r-dimensional subspaces they capture the most of sum_k ||x_k - mean||^2, namely the fraction
sum_{i<r} sigma_i^2 / sum_i sigma_i^2 (Eckart-Young; Holmes, Lumley & Berkooz, "Turbulence, Coherent Structures,
Dynamical Systems and Symmetry", 1996). For a periodic wake the modes come in pairs, one pair per harmonic of
the shedding frequency, and a few pairs hold nearly all of the fluctuation.

Coefficients are divided by one number, the RMS amplitude sigma_1 / sqrt(n) of the leading mode, so the leading
coefficient is O(1) whatever the field's units; one scale for all modes keeps dynamics linear in the
coefficients linear (a linear operator is only similar-transformed by it). Each mode's sign is fixed (its
largest-magnitude entry is positive) so that a decomposition is reproducible.
"""

from __future__ import annotations

import dataclasses

import torch

__all__ = ["ProperOrthogonalDecomposition"]


@dataclasses.dataclass(frozen=True)
class ProperOrthogonalDecomposition:
    """A rank-r POD fitted on training snapshots.

    Attributes:
        mean: ``(m,)`` the snapshots' mean.
        modes: ``(m, r)`` orthonormal columns phi_i, by decreasing energy.
        singular_values: ``(min(n, m),)`` every singular value sigma_i of the centred snapshot matrix (the first
            r belong to the modes kept).
        scale: sigma_1 / sqrt(n), the leading mode's RMS amplitude; coefficients are in units of it.
    """

    mean: torch.Tensor
    modes: torch.Tensor
    singular_values: torch.Tensor
    scale: float

    @classmethod
    def fit(cls, snapshots: torch.Tensor, rank: int) -> "ProperOrthogonalDecomposition":
        """The rank-``rank`` POD of ``snapshots`` ``(n, m)``, n >= 2 snapshots of m values (float, finite)."""
        if not isinstance(snapshots, torch.Tensor) or snapshots.ndim != 2 or not snapshots.is_floating_point():
            raise ValueError("snapshots must be a floating-point tensor of shape (n_snapshots, n_values)")
        n, m = snapshots.shape
        if n < 2:
            raise ValueError(f"a POD needs at least 2 snapshots, got {n}")
        if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= min(n - 1, m):
            raise ValueError(  # as_integer's message, with why the bound is what it is
                f"rank must be an integer in [1, {min(n - 1, m)}] (min(n_snapshots - 1, n_values): centring removes "
                f"one dimension from {n} snapshots), got {rank!r}"
            )
        if not bool(torch.isfinite(snapshots).all()):
            raise ValueError("snapshots contain NaN or infinite values (mask them out first, e.g. land)")
        mean = snapshots.mean(dim=0)
        _, singular_values, right = torch.linalg.svd(snapshots - mean, full_matrices=False)
        if float(singular_values[0]) == 0.0:
            raise ValueError("the snapshots are all equal: there is no fluctuation to decompose")
        modes = right[:rank].T.clone()
        peaks = modes.gather(0, modes.abs().argmax(dim=0, keepdim=True))
        modes *= torch.where(peaks < 0, -1.0, 1.0).to(modes.dtype)
        scale = float(singular_values[0]) / n**0.5
        return cls(mean=mean, modes=modes, singular_values=singular_values, scale=scale)

    @property
    def rank(self) -> int:
        return self.modes.shape[1]

    def energy_fractions(self) -> torch.Tensor:
        """``(r,)``: sigma_i^2 / sum_j sigma_j^2, the share of the fluctuation energy each mode carries."""
        energy = self.singular_values**2
        return energy[: self.rank] / energy.sum()

    @property
    def captured_energy(self) -> float:
        """sum over the r modes of :meth:`energy_fractions`: 1 minus the relative squared error of the training
        snapshots' reconstruction."""
        return float(self.energy_fractions().sum())

    def project(self, snapshots: torch.Tensor) -> torch.Tensor:
        """Coefficients ``(..., r)`` = phi^T (x - mean) / scale of snapshots ``(..., m)``."""
        self._check_values(snapshots)
        return ((snapshots.to(self.modes.dtype) - self.mean) @ self.modes) / self.scale

    def reconstruct(self, coefficients: torch.Tensor) -> torch.Tensor:
        """Snapshots ``(..., m)`` = mean + phi (scale * coefficients) from coefficients ``(..., r)``."""
        if coefficients.shape[-1] != self.rank:
            raise ValueError(f"coefficients must end in the rank {self.rank}, got shape {tuple(coefficients.shape)}")
        return self.mean + (coefficients.to(self.modes.dtype) * self.scale) @ self.modes.T

    def _check_values(self, snapshots: torch.Tensor) -> None:
        if snapshots.shape[-1:] != self.mean.shape:
            raise ValueError(
                f"snapshots must end in the {self.mean.shape[0]} values the POD was fitted on, got shape "
                f"{tuple(snapshots.shape)}"
            )
