"""Fixed-step rollouts through ``torch.compile``: chunks of steps compiled once and replayed.

An eager rollout of a small model spends its time in the launch of every operation (a 2-50-2 MLP: some 20 000
operations per 1000 RK4 steps, each microseconds of dispatch around nanoseconds of arithmetic). Compiling
``CHUNK_STEPS`` unrolled steps lets Inductor fuse the pointwise work of a step (the stage sums, the activation)
and, for training, compile the backward pass with it (AOTAutograd).

What the compiled code depends on, and so what recompiles it: ``f`` (its code and its parameters' shapes), the
scheme, the state's shape, dtype and device. What it does not depend on: t0 and dt. The stage times and the
step's coefficients times dt enter as tensors (:meth:`StepPlan.advance_traced`), so a sweep over dt or t0 reuses
one compilation. Each (f, scheme) gets its own compiled function, in its own cache where torch allows it
(``isolate_recompiles``), so a sweep over schemes never reaches torch's recompile limit (past which torch runs
the code eager, silently). The compiled functions of an ``f`` are dropped with it.
"""

from __future__ import annotations

import inspect
import weakref
from typing import Any, Callable

import torch

from dynlearn.integration.step_plan import StepPlan

__all__ = ["CHUNK_STEPS", "compiled_chunk"]

#: Steps unrolled in one compiled chunk. Compile time grows with it (16 RK4 steps of a 2-50-2 MLP on 2 CPU cores,
#: Inductor's disk cache cold: 11-19 s for inference, 27 s with the backward; 4 steps: 4 s and 9 s, and slower
#: rollouts); the first step (which checks f) and the steps beyond a whole number of chunks run eager.
CHUNK_STEPS = 16

# f -> {(tableau, steps): compiled chunk}; the entries die with f.
_COMPILED: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def _chunk_body(plan: StepPlan, steps: int) -> Callable[..., torch.Tensor]:
    """``steps`` steps of ``plan`` from x: ``(f, x, stage_time_table (steps, nodes), alphas (coefficients,)) ->
    states (steps, *x.shape)``; what torch.compile traces."""
    def chunk(f, x: torch.Tensor, stage_time_table: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
        states = []
        for k in range(steps):
            x = plan.advance_traced(f, x, stage_time_table[k], alphas)
            states.append(x)
        return torch.stack(states)

    return chunk


def _compile(function: Callable) -> Callable:
    options: dict[str, Any] = {"dynamic": False}
    if "isolate_recompiles" in inspect.signature(torch.compile).parameters:
        options["isolate_recompiles"] = True  # its own cache: other f's and schemes do not count against it
    return torch.compile(function, **options)


def compiled_chunk(f: Callable, plan: StepPlan, steps: int | None = None) -> tuple[Callable[..., torch.Tensor], int]:
    """The compiled chunk of ``steps`` (default :data:`CHUNK_STEPS`, read at the call) steps of ``plan`` for
    ``f``, and that number of steps; made on first use and cached with ``f`` (an ``f`` that cannot be weakly
    referenced gets a fresh one each time: compile once by keeping it)."""
    steps = CHUNK_STEPS if steps is None else steps
    key = (plan.tableau, steps)
    try:
        per_function = _COMPILED.setdefault(f, {})
    except TypeError:
        per_function = {}
    if key not in per_function:
        per_function[key] = _compile(_chunk_body(plan, steps))
    return per_function[key], steps
