"""Fixed-step explicit Runge-Kutta integration of dx/dt = f(t, x).

``step`` advances one step, ``rollout`` a whole trajectory. Both work for any batch shape (``f`` sees the
whole batched state at once), are differentiable with autograd, and compute in the dtype and on the device
of the state. Time points are ``t0 + k*dt`` and stage times ``t0 + k*dt + c_i*dt``, computed, never
accumulated, so step 10^6 is at the right time to round-off.

Each step goes through the scheme's :class:`~dynlearn.integration.step_plan.StepPlan` (the one stage loop: zero
coefficients and stages that cannot influence the result skipped, so a step costs the fewest evaluations of
``f`` the tableau allows).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.utils.checkpoint import checkpoint

from dynlearn._checks import (as_finite_time, as_flag, as_positive_step, as_step_count, check_allocation, check_state,
                              count_text)
from dynlearn.integration.compiled import compiled_chunk
from dynlearn.integration.cuda_graphs import graphed_rollout
from dynlearn.integration.step_plan import StepPlan, step_plan
from dynlearn.integration.tableau import ButcherTableau

__all__ = ["VectorField", "step", "rollout", "time_grid", "NonFiniteStateError"]

#: dx/dt = f(t, x): t is a 0-dim tensor (dtype and device of x), x the batched state; returns dx/dt, shaped like x.
VectorField = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# Steps integrated between two looks at the state (finite check, stage-time tensors, stacking).
_CHUNK = 256

#: a step size: one number for the whole batch, or a tensor ``(batch,)`` giving each batch element its own
StepSize = float | torch.Tensor


def _time_per_element(name: str, t: object, x: torch.Tensor) -> torch.Tensor | None:
    """``t`` as a ``(batch,)`` float64 tensor on the device of ``x`` when it is one start time per batch element
    (checked: shape ``(x.shape[0],)``, finite); None when it is one number (a number or a 0-dim tensor)."""
    if not isinstance(t, torch.Tensor) or t.ndim == 0:
        return None
    if t.ndim != 1 or x.ndim < 1 or t.shape[0] != x.shape[0] or t.is_complex():
        raise ValueError(f"{name} must be a number or a real tensor of shape (batch,) = "
                         f"({x.shape[0] if x.ndim else '-'},) for a state of shape {tuple(x.shape)}, got shape "
                         f"{tuple(t.shape)}")
    if torch.compiler.is_compiling():  # (see _step_per_element)
        torch._assert_async(torch.isfinite(t).all(), f"{name} must hold finite times")
    elif not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must hold finite times")
    return t.to(device=x.device, dtype=torch.float64)


def _start_and_steps(name: str, t: object, dt: object, x: torch.Tensor) -> tuple[float | torch.Tensor,
                                                                                 torch.Tensor | None]:
    """The start time (a number, or ``(batch,)`` float64) and, when either the start or the step is per batch
    element, the steps ``(batch,)`` (a scalar dt repeated); the steps are None when both are single numbers."""
    steps = _step_per_element("dt", dt, x)
    starts = _time_per_element(name, t, x)
    if starts is None:
        return as_finite_time(name, t), steps
    return starts, (torch.full_like(starts, as_positive_step("dt", dt)) if steps is None else steps)


def _step_per_element(name: str, dt: object, x: torch.Tensor) -> torch.Tensor | None:
    """``dt`` as a ``(batch,)`` tensor on the device of ``x`` when it is one step per batch element (checked: shape
    ``(x.shape[0],)``, finite, > 0); None when it is one number for the whole batch (a number or a 0-dim tensor)."""
    if not isinstance(dt, torch.Tensor) or dt.ndim == 0:
        return None
    if dt.ndim != 1 or x.ndim < 1 or dt.shape[0] != x.shape[0]:
        raise ValueError(f"{name} must be a number or a tensor of shape (batch,) = ({x.shape[0] if x.ndim else '-'},) "
                         f"for a state of shape {tuple(x.shape)}, got shape {tuple(dt.shape)}")
    if dt.is_complex() or not dt.is_floating_point():
        raise ValueError(f"{name} must hold real floating-point step sizes, got dtype {dt.dtype}")
    # a graph traced by torch.compile (a compiled training iteration) cannot branch on values: there the check is
    # an assertion inside the graph (a RuntimeError with this message), eagerly a ValueError with the values
    if torch.compiler.is_compiling():
        torch._assert_async((torch.isfinite(dt) & (dt > 0)).all(), f"{name} must hold finite step sizes > 0")
    elif not bool(torch.isfinite(dt).all()) or not bool((dt > 0).all()):
        raise ValueError(f"{name} must hold finite step sizes > 0, got values from {float(dt.min()):.6g} to "
                         f"{float(dt.max()):.6g}")
    return dt.to(x.device)


class NonFiniteStateError(FloatingPointError):
    """A rollout produced NaN or infinity; ``step`` is the first step whose state is not finite."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


def step(
    f: VectorField,
    t: float | torch.Tensor,
    x: torch.Tensor,
    dt: StepSize,
    scheme: str | ButcherTableau | StepPlan = "rk4",
) -> torch.Tensor:
    """One explicit Runge-Kutta step of dx/dt = f(t, x): returns x(t + dt), shaped like ``x``.

    x_{n+1} = x_n + dt sum_i b_i k_i,  k_i = f(t + c_i dt, x_n + dt sum_j a_ij k_j).

    Args:
        f: the vector field, called as ``f(t, x)`` with ``t`` a 0-dim tensor (dtype and device of ``x``), or,
            when dt is per batch element, a ``(batch,)`` tensor of each element's stage time.
        t: time at the start of the step (number or 0-dim tensor), or a ``(batch,)`` tensor, each element's own
            start (pairs sampled at different times of a non-autonomous system).
        x: state, any shape ``(*batch, *state)``; floating point or complex.
        dt: step size, a finite number > 0 (same time unit as ``t``), or a tensor ``(batch,)`` of them, one per
            element along the first axis of ``x`` and broadcast over the rest: element b steps by dt[b]
            (irregularly sampled data, each pair its own step). Equal, to round-off, to stepping each element
            alone with its scalar dt; differentiable with respect to such a dt.
        scheme: a registered name (see :func:`dynlearn.available_tableaus`), a :class:`ButcherTableau` or its
            :class:`~dynlearn.integration.step_plan.StepPlan`.

    Differentiable with respect to ``x`` and to the parameters ``f`` closes over.
    """
    x = check_state("x", x)
    plan = step_plan(scheme)
    t, per_element = _start_and_steps("t", t, dt, x)
    if per_element is not None:
        return plan.advance_traced(f, x, plan.stage_times_per_element(t, per_element, 0, x),
                                   plan.scaled_per_element(per_element, x), checked=True)
    dt = as_positive_step("dt", dt)
    return plan.advance(f, x, plan.stage_times(t, dt, 0, 1, x)[0], plan.scaled(dt), checked=True)


def time_grid(
    t0: float, dt: float, n_steps: int, *, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
) -> torch.Tensor:
    """The times t_k = t0 + k*dt, k = 0..n_steps, of a rollout: shape ``(n_steps + 1,)``."""
    t0 = as_finite_time("t0", t0)
    dt = as_positive_step("dt", dt)
    n_steps = as_step_count("n_steps", n_steps)
    if n_steps > 10**7:  # a size worth asking the machine about (reading its free memory costs microseconds)
        check_allocation(f"time_grid: {count_text(n_steps + 1)} times", 16.0 * (n_steps + 1), "ask for fewer steps")
    steps = torch.arange(n_steps + 1, dtype=torch.float64)
    return (t0 + steps * dt).to(dtype=dtype, device=device)


def _integrate_stacked(plan: StepPlan, f: VectorField, x: torch.Tensor, alphas: tuple[float, ...],
                       stage_times: list[tuple[torch.Tensor, ...]], check_first: bool) -> torch.Tensor:
    """:meth:`StepPlan.integrate` with its states stacked on dim 0 (a checkpointed function returns tensors)."""
    return torch.stack(plan.integrate(f, x, alphas, stage_times, check_first=check_first))


def _raise_nonfinite(chunk: torch.Tensor, first_step: int, t0: float, dt: float) -> None:
    finite_per_step = torch.isfinite(chunk).reshape(chunk.shape[0], -1).all(dim=1)
    bad = int(torch.nonzero(~finite_per_step)[0, 0]) + first_step + 1
    raise NonFiniteStateError(
        f"rollout: the state is not finite (NaN or inf) after step {bad} (t = {t0 + bad * dt:.6g}); "
        f"the last finite state is step {bad - 1}. Reduce dt, check f, or pass allow_nonfinite=True "
        f"to get the trajectory anyway.",
        step=bad,
    )


def rollout(
    f: VectorField,
    x0: torch.Tensor,
    t0: float,
    dt: StepSize,
    n_steps: int,
    scheme: str | ButcherTableau | StepPlan = "rk4",
    *,
    checkpoint_every: int | None = None,
    allow_nonfinite: bool = False,
    cuda_graph: bool = False,
    compile: bool = False,
) -> torch.Tensor:
    """Integrate dx/dt = f(t, x) from x(t0) = x0 with ``n_steps`` fixed steps of size ``dt``.

    Args:
        f: the vector field, called as ``f(t, x)``; ``t`` is a 0-dim tensor in the real dtype and on the device
            of ``x0``, the stage time ``t0 + k*dt + c_i*dt``. Its output is checked (shape, dtype, device)
            on the first step.
        x0: initial state, any shape ``(*batch, *state)``, floating point or complex, on any device.
        t0: initial time (or a ``(batch,)`` tensor: each element's own start); dt: step size (finite, > 0);
            n_steps: number of steps (integer >= 0).
            ``dt`` may also be a tensor ``(batch,)``, one step per element along the first axis of ``x0``: element
            b is then integrated on its own grid t0 + k dt[b], and ``f`` gets a ``(batch,)`` tensor of stage
            times (equal, to round-off, to one rollout per element; not combined with ``cuda_graph``,
            ``compile`` or ``checkpoint_every``).
        scheme: a registered name (``"rk4"`` is the classic method; ``dynlearn.available_tableaus()`` lists all),
            a :class:`ButcherTableau` or its :class:`~dynlearn.integration.step_plan.StepPlan`.
        checkpoint_every: if given, recompute the intermediate activations of each segment of this many
            steps during the backward pass instead of storing them (``torch.utils.checkpoint``). Memory for
            autograd then grows with one segment, not with the whole rollout; the returned trajectory itself
            is always stored. Costs about one extra forward pass.
        allow_nonfinite: by default a state with NaN or inf raises :class:`NonFiniteStateError` naming the
            first bad step (checked every 256 steps, so a blow-up wastes little work); ``True`` returns the
            trajectory as it is.
        cuda_graph: CUDA only, inference only (call it under ``torch.no_grad()``). Capture the whole rollout
            once as a CUDA graph and replay it: a small model then costs one launch instead of thousands.
            The capture is cached per ``f`` and (shape, dtype, device, t0, dt, n_steps, scheme) and replayed
            while ``f`` keeps its parameter tensors (updating them in place, as optimizers do, is fine).
            The captured kernels are the eager ones, so the numbers agree with the eager path to round-off.
        compile: run the steps through ``torch.compile``, in chunks of
            :data:`~dynlearn.integration.compiled.CHUNK_STEPS` unrolled steps compiled once per ``f``, scheme,
            state shape, dtype and device (not per dt or t0: they are inputs of the compiled code), for
            inference and for training (the backward is compiled too). Equal to the eager path to round-off.
            Worth it for many rollouts with one ``f`` (the compile takes seconds to tens of seconds; see
            ``benchmarks/rollout_speed.py``); keep ``f`` the same object between calls, as the compiled code is
            cached with it.

    Returns:
        The trajectory, shape ``(n_steps + 1, *x0.shape)``: entry k is the state at t0 + k*dt, entry 0 is x0.
    """
    x0 = check_state("x0", x0)
    n_steps = as_step_count("n_steps", n_steps)
    allow_nonfinite = as_flag("allow_nonfinite", allow_nonfinite)
    cuda_graph = as_flag("cuda_graph", cuda_graph)
    compile = as_flag("compile", compile)
    plan = step_plan(scheme)
    t0, per_element = _start_and_steps("t0", t0, dt, x0)
    if per_element is not None:
        if cuda_graph or compile or checkpoint_every is not None:
            raise ValueError("a dt or t0 per batch element runs eagerly: it cannot be combined with cuda_graph, "
                             "compile or checkpoint_every")
        return _rollout_per_element(f, x0, t0, per_element, n_steps, plan, allow_nonfinite)
    dt = as_positive_step("dt", dt)
    if checkpoint_every is not None:
        checkpoint_every = as_step_count("checkpoint_every", checkpoint_every)
        if checkpoint_every == 0:
            raise ValueError("checkpoint_every must be a positive number of steps (or None for no checkpointing)")
    values = (n_steps + 1) * x0.numel()
    if values > 10**7 and x0.device.type == "cpu":  # the trajectory and the stack that returns it, before the work
        check_allocation(f"rollout: {count_text(n_steps + 1)} states of {x0.numel()} values",
                         2.0 * values * x0.element_size(), "ask for fewer steps or a smaller batch")
    alphas = plan.scaled(dt)
    if compile and (cuda_graph or checkpoint_every is not None):
        raise ValueError("compile=True runs its own chunks; it cannot be combined with cuda_graph or checkpoint_every")
    if cuda_graph:
        if checkpoint_every is not None:
            raise ValueError("cuda_graph=True is for inference; it cannot be combined with checkpoint_every")
        trajectory = graphed_rollout(f, x0, t0, dt, n_steps, plan)
        if not allow_nonfinite and not bool(torch.isfinite(trajectory).all()):
            _raise_nonfinite(trajectory[1:], 0, t0, dt)
        return trajectory

    if not allow_nonfinite and not bool(torch.isfinite(x0).all()):
        raise ValueError("x0 is not finite (NaN or inf); pass allow_nonfinite=True to integrate it anyway")

    # x_{k+1} = x_k + dt sum_i b_i k_i starts from x_k, and NaN or inf plus anything is NaN or inf: an entry
    # that stops being finite stays so. Checking the last state of each chunk therefore catches every
    # blow-up, at the cost of one small reduction per chunk.
    if compile:
        return _compiled_rollout(f, x0, t0, dt, n_steps, plan, allow_nonfinite)
    chunk_length = checkpoint_every or _CHUNK
    states = [x0]
    x = x0
    for first_step in range(0, n_steps, chunk_length):
        length = min(chunk_length, n_steps - first_step)
        times = plan.stage_times(t0, dt, first_step, length, x0)
        check_first = first_step == 0
        if checkpoint_every is not None and torch.is_grad_enabled():
            chunk = checkpoint(
                _integrate_stacked, plan, f, x, alphas, times, check_first, use_reentrant=False
            ).unbind(0)
        else:
            chunk = plan.integrate(f, x, alphas, times, check_first=check_first)
        x = chunk[-1]
        if not allow_nonfinite and not bool(torch.isfinite(x).all()):
            _raise_nonfinite(torch.stack(chunk), first_step, t0, dt)
        states.extend(chunk)
    return torch.stack(states)


def _compiled_rollout(f: VectorField, x0: torch.Tensor, t0: float, dt: float, n_steps: int, plan: StepPlan,
                      allow_nonfinite: bool) -> torch.Tensor:
    """rollout's compile=True path: the first step eager and checked (what f returns), then compiled chunks of
    CHUNK_STEPS steps, then the remaining steps eager; the state checked finite every _CHUNK steps."""
    states = [x0]
    if n_steps == 0:
        return torch.stack(states)
    states.append(plan.advance(f, x0, plan.stage_times(t0, dt, 0, 1, x0)[0], plan.scaled(dt), checked=True))
    real = x0.real.dtype if x0.is_complex() else x0.dtype
    alphas = torch.tensor(plan.scaled(dt), dtype=real, device=x0.device)
    chunk, length = compiled_chunk(f, plan)
    first_step, checked_up_to = 1, 0
    while first_step < n_steps:
        count = min(length, n_steps - first_step)
        table = plan.stage_time_table(t0, dt, first_step, count, x0)
        if count == length:
            states.extend(chunk(f, states[-1], table, alphas).unbind(0))
        else:
            states.extend(plan.integrate(f, states[-1], plan.scaled(dt), table.unbind(0)))
        first_step += count
        if not allow_nonfinite and (first_step - checked_up_to >= _CHUNK or first_step == n_steps):
            if not bool(torch.isfinite(states[-1]).all()):
                _raise_nonfinite(torch.stack(states[checked_up_to + 1:]), checked_up_to, t0, dt)
            checked_up_to = first_step
    return torch.stack(states)


def _rollout_per_element(f: VectorField, x0: torch.Tensor, t0: float | torch.Tensor, dt: torch.Tensor,
                         n_steps: int, plan: StepPlan, allow_nonfinite: bool) -> torch.Tensor:
    """rollout with ``dt`` (and possibly ``t0``) ``(batch,)``: element b on its own grid t0[b] + k dt[b] (stage times
    computed per step from k, never accumulated); the state checked finite every _CHUNK steps."""
    values = (n_steps + 1) * x0.numel()
    if values > 10**7 and x0.device.type == "cpu":
        check_allocation(f"rollout: {count_text(n_steps + 1)} states of {x0.numel()} values",
                         2.0 * values * x0.element_size(), "ask for fewer steps or a smaller batch")
    if not allow_nonfinite and not bool(torch.isfinite(x0).all()):
        raise ValueError("x0 is not finite (NaN or inf); pass allow_nonfinite=True to integrate it anyway")
    alphas = plan.scaled_per_element(dt, x0)
    states = [x0]
    for k in range(n_steps):
        states.append(plan.advance_traced(f, states[-1], plan.stage_times_per_element(t0, dt, k, x0), alphas,
                                          checked=k == 0))
        if not allow_nonfinite and ((k + 1) % _CHUNK == 0 or k + 1 == n_steps):
            if not bool(torch.isfinite(states[-1]).all()):
                chunk = torch.stack(states[1:])
                bad = int(torch.nonzero(~torch.isfinite(chunk).reshape(chunk.shape[0], -1).all(dim=1))[0, 0]) + 1
                raise NonFiniteStateError(
                    f"rollout: the state is not finite (NaN or inf) after step {bad}; the last finite state is step "
                    f"{bad - 1}. Reduce dt, check f, or pass allow_nonfinite=True to get the trajectory anyway.",
                    step=bad)
    return torch.stack(states)
