"""Generating a dataset of a system's trajectories on a uniform time grid.

Analytical datasets evaluate the system's exact solution at t_k = k*dt (no time stepping at all). Numerical
ones use the system's :meth:`~dynlearn.systems.System.numerical_solution`: torchdiffeq's dopri5 on the
vector field, stepping to every output time, at rtol = atol = 1e-12 per step (agreement with the exact
pendulum solutions: about 1e-10 over 5 s); for the wave equation, the method of lines exact in time.
"""

from __future__ import annotations

from typing import Literal

import torch

from dynlearn._checks import steps_in
from dynlearn.integrate import time_grid
from dynlearn.systems.base import System

from .format import TrajectoryDataset

__all__ = ["generate_dataset"]
_BATCH = 64  # trajectories integrated together by the numerical generator


def generate_dataset(
    system: System,
    *,
    dt: float,
    t_final: float,
    n_trajectories: int | None = None,
    initial_conditions: torch.Tensor | None = None,
    seed: int = 0,
    method: Literal["analytical", "numerical"] = "analytical",
    progress: bool = False,
) -> TrajectoryDataset:
    """Trajectories of ``system`` from t = 0 to ``t_final`` sampled every ``dt`` (which must divide t_final).

    Initial conditions are ``initial_conditions`` ``(n, *state_shape)`` when given, otherwise ``n_trajectories``
    (default 1) draws from the system's documented distribution with a generator seeded by ``seed``.
    Everything is checked before any work: a bad dt, an initial state of the wrong shape or one the exact
    solution does not cover (a pendulum on its separatrix) fail with a clear message.
    """
    if method not in ("analytical", "numerical"):
        raise ValueError(f"method must be 'analytical' or 'numerical', got {method!r}")
    n_steps = steps_in(t_final, dt)
    times = time_grid(0.0, dt, n_steps)
    generator = torch.Generator().manual_seed(int(seed))
    if initial_conditions is not None:
        initial_conditions = system.check_state(torch.as_tensor(initial_conditions, dtype=torch.float64),
                                                "initial_conditions")
        if initial_conditions.ndim != 1 + len(system.state_shape):
            raise ValueError(
                f"{system.name}: initial_conditions must have shape (n, {', '.join(map(str, system.state_shape))}), "
                f"got {tuple(initial_conditions.shape)}"
            )
        if n_trajectories is not None and n_trajectories != initial_conditions.shape[0]:
            raise ValueError(
                f"n_trajectories = {n_trajectories} but {initial_conditions.shape[0]} initial conditions were given"
            )
        if not bool(torch.isfinite(initial_conditions).all()):
            raise ValueError(f"{system.name}: initial_conditions contain NaN or inf")
        n = initial_conditions.shape[0]
    else:
        n = 1 if n_trajectories is None else n_trajectories
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n_trajectories must be a positive integer, got {n_trajectories!r}")

    if method == "analytical":
        if not system.has_solution:
            raise ValueError(f"{system.name} has no analytical solution; use method='numerical'")
        x0, states = system.analytical_trajectories(times, initial_conditions, n, generator)
        details = {"kind": "analytical", **system.analytical_details()}
    else:
        from tqdm.auto import tqdm

        x0 = system.sample_initial_conditions(n, generator) if initial_conditions is None else initial_conditions
        pieces = []
        for start in tqdm(range(0, n, _BATCH), desc=f"{system.name}: integrating", disable=not progress):
            batch = x0[start : start + _BATCH]
            pieces.append(system.numerical_solution(batch, times).movedim(0, 1))
        states = torch.cat(pieces)
        details = {"kind": "numerical", **system.numerical_details()}
    states = states.to(torch.float64).contiguous()
    return TrajectoryDataset(
        states=states,
        times=times,
        initial_conditions=states[:, 0].clone(),
        system=system.name,
        parameters=system.parameters(),
        state_names=system.state_names,
        generator=details,
        t0=0.0,
        dt=float(dt),
        seed=int(seed) if initial_conditions is None else None,
        trajectory_parameters=system.trajectory_parameters(x0.to(torch.float64)),
    )
