"""The convergence test of many models at once: the members of an ensemble rolled out as one batch over a ladder.

A sweep evaluates every trained field in every scheme at every step of one ladder; one rollout per model is
launch-bound (a 2-50-2 network costs microseconds of arithmetic per stage and tens of microseconds of Python).
Here the members are one batched state (M, *state): each rung of the ladder is one rollout of the ensemble, and
the errors come back per member, with the same definitions as :func:`dynlearn.analysis.convergence_test`:

    final error  ||x_N^m - x(T)||
    RMS error    sqrt((1/N) sum_{k=1..N} ||x_k^m - x(t_k)||^2)

(norms over every entry of a member's state). Rollouts go in chunks, so memory stays (chunk, M, *state) however
fine the rung (2 x 10^5 steps at dt = 1e-5 to T = 2).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from dynlearn._checks import as_integer, as_positive_step, check_state
from dynlearn.integration.rollout import VectorField, rollout
from dynlearn.integration.tableau import ButcherTableau
from dynlearn.integration.tableaus import get_tableau
from dynlearn.progress import progress

__all__ = ["ensemble_ladder_errors"]


def ensemble_ladder_errors(
    f: VectorField,
    x0: torch.Tensor,
    t_final: float,
    n_steps: Sequence[int],
    schemes: Sequence[str | ButcherTableau],
    reference: Callable[[torch.Tensor], torch.Tensor],
    *,
    chunk: int = 8192,
    description: str = "evaluation",
    show_progress: bool = False,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per scheme, the (final, RMS) errors of every member at every rung: two arrays (M, len(n_steps)).

    Args:
        f: a vector field acting on the whole ensemble, ``f(t, x)`` with x ``(M, *state)`` (an
            :class:`~dynlearn.fields.ensemble.EnsembleVectorField`, or a true field broadcasting over M).
        x0: ``(M, *state)``, every member's initial state (float64 to measure convergence).
        t_final: T; rung i integrates ``n_steps[i]`` steps of dt = T / n_steps[i] from 0.
        reference: the exact solution, ``reference(times) -> (len(times), *state)``, shared by the members.
        chunk: steps integrated between two comparisons with the reference.
    A member whose state stops being finite gets infinite or NaN errors at that rung (no exception).
    """
    x0 = check_state("x0", x0)
    t_final = as_positive_step("t_final", t_final)
    as_integer("chunk", chunk)
    counts = [as_integer(f"n_steps[{i}]", n) for i, n in enumerate(n_steps)]
    tableaus = [get_tableau(s) for s in schemes]
    members = x0.shape[0]
    real = x0.real.dtype if x0.is_complex() else x0.dtype
    final = {t.name: np.zeros((members, len(counts))) for t in tableaus}
    rms = {t.name: np.zeros((members, len(counts))) for t in tableaus}
    bar = progress(total=sum(counts) * len(tableaus), description=description, enabled=show_progress,
                   unit="step")
    with torch.no_grad():
        for rung, count in enumerate(counts):
            dt = t_final / count
            times = (torch.arange(count + 1, dtype=torch.float64) * dt).to(dtype=real, device=x0.device)
            exact = reference(times).to(dtype=x0.dtype, device=x0.device)
            if tuple(exact.shape) != (count + 1, *x0.shape[1:]):
                raise ValueError(f"reference(times) must return (len(times), *state) = "
                                 f"{(count + 1, *x0.shape[1:])}, got {tuple(exact.shape)}")
            for tableau in tableaus:
                x = x0
                squares = torch.zeros(members, dtype=torch.float64, device=x0.device)
                distance = None
                for start in range(0, count, chunk):
                    steps = min(chunk, count - start)
                    trajectory = rollout(f, x, start * dt, dt, steps, tableau, allow_nonfinite=True)
                    difference = trajectory[1:] - exact[start + 1:start + steps + 1].unsqueeze(1)
                    distance = torch.linalg.vector_norm(difference.reshape(steps, members, -1), dim=2)
                    squares += (distance.to(torch.float64) ** 2).sum(0)
                    x = trajectory[-1]
                    bar.update(steps)
                final[tableau.name][:, rung] = distance[-1].double().cpu().numpy()
                rms[tableau.name][:, rung] = torch.sqrt(squares / count).cpu().numpy()
    bar.close()
    return {name: (final[name], rms[name]) for name in final}
