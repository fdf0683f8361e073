"""A recorded field as a snapshot matrix: what the autoencoder and the recorded-field study both learn from.

A one-trajectory field dataset (a cylinder wake, an SST record) holds states ``(1, n_times, *field_shape)``;
its snapshot matrix is ``(n_times, m)``: each snapshot flattened, with the values a ``land_mask`` field marks
(land, in SST) left out. :meth:`SnapshotData.to_field` maps rows back onto the grid (NaN where masked).
"""

from __future__ import annotations

import dataclasses

import torch

from dynlearn.datasets.format import TrajectoryDataset

__all__ = ["SnapshotData", "snapshot_data"]


@dataclasses.dataclass
class SnapshotData:
    """Snapshots ``(n_times, m)`` and how they map back onto the dataset's field (``mask`` True where a value
    is left out, e.g. land; ``field_shape`` the shape of one state)."""

    snapshots: torch.Tensor
    field_shape: tuple[int, ...]
    mask: torch.Tensor | None
    system: str

    def to_field(self, values: torch.Tensor) -> torch.Tensor:
        """``(..., m)`` -> ``(..., *field_shape)`` with NaN where masked."""
        if self.mask is None:
            return values.reshape(*values.shape[:-1], *self.field_shape)
        out = torch.full((*values.shape[:-1], *self.field_shape), float("nan"), dtype=values.dtype)
        out[..., ~self.mask] = values
        return out


def snapshot_data(dataset: TrajectoryDataset) -> SnapshotData:
    """The snapshot matrix of a one-trajectory field dataset (cylinder, SST); NaN data fail here."""
    dataset.require_uniform("a record of snapshots (dynlearn study --data, dynlearn train autoencoder)")
    if dataset.n_trajectories != 1:
        raise ValueError(f"a record of snapshots is one trajectory (a cylinder wake, an SST record); this dataset "
                         f"holds {dataset.n_trajectories} trajectories")
    states = dataset.states[0].to(torch.float64)
    if not bool(torch.isfinite(states).all()):
        raise ValueError("the dataset's states contain NaN or infinite values")
    mask = None
    if "land_mask" in dataset.fields:
        mask = dataset.fields["land_mask"] > 0.5
        snapshots = states[:, ~mask]
    else:
        snapshots = states.reshape(states.shape[0], -1)
    return SnapshotData(snapshots, tuple(dataset.state_shape), mask, dataset.system)
