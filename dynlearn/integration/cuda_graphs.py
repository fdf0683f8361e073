"""Replaying a whole fixed-step rollout as one CUDA graph.

A rollout of a small model is launch-bound on a GPU: 1000 RK4 steps of a 2-50-2 MLP are ~20 000 tiny
kernels, each microseconds of launch overhead around nanoseconds of arithmetic. Capturing the rollout once
(``torch.cuda.CUDAGraph``) and replaying it issues all of them with one launch. The captured kernels are
exactly the eager ones, so results agree with the eager rollout to round-off.

Only inference is captured: a graph replay does not rebuild the autograd graph.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch

from dynlearn.integration.step_plan import StepPlan

__all__ = ["graphed_rollout"]

# f -> {configuration: (graph, static input, static output)}; entries die with f.
_GRAPHS: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()
_WARMUP_RUNS = 2


def _trajectory(f, x0: torch.Tensor, alphas, plan: StepPlan, stage_times, check_first: bool) -> torch.Tensor:
    """The rollout loop alone, without host synchronisation (no finite checks): what the graph captures."""
    return torch.stack([x0, *plan.integrate(f, x0, alphas, stage_times, check_first=check_first)])


def _capture(f, x0: torch.Tensor, alphas, plan, stage_times):
    static_x0 = x0.detach().clone()
    side_stream = torch.cuda.Stream(device=x0.device)
    side_stream.wait_stream(torch.cuda.current_stream(x0.device))
    with torch.cuda.stream(side_stream):
        for run in range(_WARMUP_RUNS):  # lazy initialisation (cuBLAS handles, workspaces) happens outside capture
            _trajectory(f, static_x0, alphas, plan, stage_times, check_first=run == 0)
    torch.cuda.current_stream(x0.device).wait_stream(side_stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_trajectory = _trajectory(f, static_x0, alphas, plan, stage_times, check_first=False)
    return graph, static_x0, static_trajectory, stage_times


def graphed_rollout(f, x0: torch.Tensor, t0: float, dt: float, n_steps: int, plan: StepPlan) -> torch.Tensor:
    """The trajectory of :func:`dynlearn.rollout` computed by replaying a captured CUDA graph (the captures of
    an ``f`` are dropped with it)."""
    if x0.device.type != "cuda":
        raise ValueError(f"cuda_graph=True needs a CUDA state; x0 is on {x0.device}")
    if torch.is_grad_enabled():
        raise RuntimeError(
            "cuda_graph=True replays an inference rollout and does not record gradients; "
            "call rollout under torch.no_grad() (or torch.inference_mode())"
        )
    key = (tuple(x0.shape), x0.dtype, x0.device, t0, dt, n_steps, plan.tableau)
    try:
        per_function = _GRAPHS.setdefault(f, {})
    except TypeError:  # f cannot be weakly referenced: capture without caching
        per_function = {}
    entry = per_function.get(key)
    if entry is None:
        stage_times = plan.stage_times(t0, dt, 0, n_steps, x0)
        entry = _capture(f, x0, plan.scaled(dt), plan, stage_times)
        per_function[key] = entry
    # the entry also holds the stage-time tensors: the captured kernels read them, so they must stay alive
    graph, static_x0, static_trajectory, _ = entry
    static_x0.copy_(x0)
    graph.replay()
    return static_trajectory.clone()
