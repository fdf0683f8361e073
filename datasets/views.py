"""Torch views of a trajectory dataset: one-step pairs, S-step windows, whole trajectories, and a split by
trajectory (never by time step, so no trajectory leaks between training and test).

Each view is a ``torch.utils.data.Dataset`` for ``DataLoader`` and also hands out all of its samples at
once as stacked tensors (``tensors()``), which is how small problems train fastest (full batch, no
per-sample Python).
"""

from __future__ import annotations

from typing import Sequence

import torch

from .format import TrajectoryDataset
from dynlearn._checks import as_flag, as_integer

__all__ = ["split_trajectories", "OneStepPairs", "StepWindows", "WholeTrajectories"]


def split_trajectories(
    n_trajectories: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> tuple[torch.Tensor, ...]:
    """Shuffle trajectory indices (seeded) and cut them into parts of the given fractions.

    Every part with a positive fraction gets at least one trajectory; raises when there are too few.
    Returns one sorted index tensor per fraction.
    """
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be >= 0 and sum to 1, got {tuple(fractions)}")
    wanted = sum(1 for f in fractions if f > 0)
    if n_trajectories < wanted:
        raise ValueError(f"{n_trajectories} trajectories cannot fill {wanted} non-empty parts {tuple(fractions)}")
    counts = [int(round(f * n_trajectories)) if f > 0 else 0 for f in fractions]
    counts = [max(c, 1) if f > 0 else 0 for c, f in zip(counts, fractions)]
    while sum(counts) > n_trajectories:  # take from the largest part
        counts[counts.index(max(counts))] -= 1
    counts[max(range(len(counts)), key=lambda i: fractions[i])] += n_trajectories - sum(counts)
    order = torch.randperm(n_trajectories, generator=torch.Generator().manual_seed(seed))
    parts, start = [], 0
    for count in counts:
        parts.append(order[start : start + count].sort().values)
        start += count
    return tuple(parts)


def _check_dataset(dataset: object) -> TrajectoryDataset:
    if not isinstance(dataset, TrajectoryDataset):
        raise TypeError(f"dataset must be a TrajectoryDataset (read_dataset, generate_dataset), got "
                        f"{type(dataset).__name__}")
    return dataset


def _select(dataset: TrajectoryDataset, trajectories: torch.Tensor | Sequence[int] | None) -> torch.Tensor:
    if trajectories is None:
        return dataset.states
    index = torch.as_tensor(trajectories, dtype=torch.long)
    if index.numel() and (index.min() < 0 or index.max() >= dataset.n_trajectories):
        raise IndexError(f"trajectory indices must lie in [0, {dataset.n_trajectories}), got {index.tolist()}")
    return dataset.states[index]


class StepWindows(torch.utils.data.Dataset):
    """Samples (x_k, (x_{k+1}, ..., x_{k+S})) from every trajectory and every start k = 0..n_times-1-S.

    Items: a state ``(*state_shape)`` and its S successors ``(S, *state_shape)``. ``tensors()`` returns all
    of them: ``(N, *state_shape)`` and ``(N, S, *state_shape)``.

    On irregularly sampled data (or with ``with_steps=True``) a window is S + 1 successive *present* samples of a
    trajectory (a missing sample is skipped, so the step across it is longer), and each item also carries its
    steps: ``(x, successors, dt)`` with dt ``(S,)``, the time from each state to the next; ``tensors()`` then
    returns ``(N, *state)``, ``(N, S, *state)`` and dt ``(N, S)``, what :func:`dynlearn.fields.embedded_loss` takes.
    Irregular data without ``with_steps=True`` is refused: a window's steps are not all dt.
    """

    def __init__(
        self, dataset: TrajectoryDataset, steps: int, trajectories: torch.Tensor | Sequence[int] | None = None, *,
        with_steps: bool = False,
    ) -> None:
        _check_dataset(dataset)
        as_integer("steps", steps)
        with_steps = as_flag("with_steps", with_steps)
        if not dataset.is_uniform and not with_steps:
            raise ValueError(f"the dataset is sampled irregularly ({dataset.sampling.get('kind')}): each window has "
                             f"steps of its own; pass with_steps=True (items then carry their dt)")
        self.steps = steps
        self.dt = dataset.dt
        self.with_steps = with_steps
        if dataset.is_uniform:
            if steps >= dataset.n_times:
                raise ValueError(f"steps = {steps} needs trajectories of more than {steps} times; they have "
                                 f"{dataset.n_times}")
            self.states = _select(dataset, trajectories)
            self.starts_per_trajectory = dataset.n_times - steps
            self._windows = None
            return
        index = torch.arange(dataset.n_trajectories) if trajectories is None else torch.as_tensor(
            trajectories, dtype=torch.long)
        _select(dataset, index)  # checks the indices
        present, times = dataset.observed[index], dataset.sample_times[index].to(torch.float64)
        windows, window_times = [], []
        for row in range(index.numel()):  # the present samples of each trajectory, windowed
            own = dataset.states[index[row]][present[row]]
            if own.shape[0] > steps:
                windows.append(own.unfold(0, steps + 1, 1).movedim(-1, 1))
                window_times.append(times[row][present[row]].unfold(0, steps + 1, 1))
        if not windows:
            raise ValueError(f"steps = {steps} needs trajectories of more than {steps} present samples; none has them")
        self._windows = torch.cat(windows)
        self._steps = torch.cat(window_times).diff(dim=1)
        self.states = None

    def __len__(self) -> int:
        if self._windows is not None:
            return self._windows.shape[0]
        return self.states.shape[0] * self.starts_per_trajectory

    def _window(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Window ``index``: its S + 1 states and its S steps."""
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        if self._windows is not None:
            return self._windows[index], self._steps[index]
        trajectory, start = divmod(index % len(self), self.starts_per_trajectory)
        window = self.states[trajectory, start : start + self.steps + 1]
        return window, window.new_full((self.steps,), self.dt, dtype=torch.float64)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        window, steps = self._window(index)
        return (window[0], window[1:], steps) if self.with_steps else (window[0], window[1:])

    def tensors(self) -> tuple[torch.Tensor, ...]:
        if self._windows is not None:
            windows, steps = self._windows, self._steps
        else:
            windows = self.states.unfold(1, self.steps + 1, 1)  # (B, starts, *state, S + 1)
            windows = windows.movedim(-1, 2).reshape(-1, self.steps + 1, *self.states.shape[2:])
            steps = torch.full((windows.shape[0], self.steps), self.dt, dtype=torch.float64)
        return (windows[:, 0], windows[:, 1:], steps) if self.with_steps else (windows[:, 0], windows[:, 1:])


class OneStepPairs(StepWindows):
    """Samples (x_k, x_{k+1}): the one-step data a discrete map or an embedded model is trained on.
    ``tensors()`` returns ``(N, *state_shape)`` twice, and with ``with_steps=True`` (required on irregularly
    sampled data) also each pair's own step ``(N,)``: the time from x_k to the next present sample."""

    def __init__(self, dataset: TrajectoryDataset, trajectories: torch.Tensor | Sequence[int] | None = None, *,
                 with_steps: bool = False) -> None:
        super().__init__(dataset, 1, trajectories, with_steps=with_steps)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        items = super().__getitem__(index)
        return (items[0], items[1][0], items[2][0]) if self.with_steps else (items[0], items[1][0])

    def tensors(self) -> tuple[torch.Tensor, ...]:
        items = super().tensors()
        return (items[0], items[1][:, 0], items[2][:, 0]) if self.with_steps else (items[0], items[1][:, 0])


class WholeTrajectories(torch.utils.data.Dataset):
    """Whole trajectories ``(n_times, *state_shape)``, one per item; ``times`` is the shared grid ``(n_times,)``,
    or on data with a time axis per trajectory their times ``(n_selected, n_times)`` (NaN where a trajectory has no
    sample; a missing sample's state is NaN too)."""

    def __init__(self, dataset: TrajectoryDataset, trajectories: torch.Tensor | Sequence[int] | None = None) -> None:
        self.states = _select(_check_dataset(dataset), trajectories)
        if dataset.times.ndim == 1 or trajectories is None:
            self.times = dataset.times
        else:
            self.times = dataset.times[torch.as_tensor(trajectories, dtype=torch.long)]

    def __len__(self) -> int:
        return self.states.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.states[index]

    def tensors(self) -> torch.Tensor:
        return self.states
