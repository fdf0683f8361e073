"""The step plan: a Butcher tableau compiled to the work one fixed explicit step must do. This is dynlearn's one
Runge-Kutta stage loop; :func:`dynlearn.rollout`, :func:`dynlearn.step`, the CUDA-graph replay, ContinuousNet's
OdeBlock and ``dynlearn schemes`` all step through it.

One step of an explicit tableau (a, b, c) with s stages is

    k_i = f(tau_i, x_n + dt sum_{j<i} a_ij k_j),   x_{n+1} = x_n + dt sum_i b_i k_i,

where tau_i is what ``f`` needs to know of stage i: the stage time t_n + c_i dt for a rollout, the weights
theta(t_n + c_i dt) for an OdeBlock. The plan does the fewest evaluations of f the tableau allows: zero
coefficients are skipped, and so are stages whose value cannot reach x_{n+1} (Dormand-Prince's seventh stage,
whose weight is zero at a fixed step). Stages that share a node share their tau: the plan lists the distinct
nodes of the evaluated stages (``nodes``), and ``advance`` takes one stage argument per distinct node.

The step is generated as straight-line Python (no loop over stages): a loop per stage costs more than the
arithmetic of a small model, where a rollout is launch-bound. ``source`` is the generated code.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from functools import lru_cache
from typing import Any, Callable, Sequence

import torch

from dynlearn.integration.tableau import ButcherTableau
from dynlearn.integration.tableaus import get_tableau

__all__ = ["StepPlan", "step_plan"]

#: f(tau, x) -> dx/dt: tau is a stage argument (a time tensor, or an OdeBlock's stage weights), x the state.
StageFunction = Callable[[Any, torch.Tensor], torch.Tensor]


@dataclasses.dataclass(frozen=True)
class StepPlan:
    """A tableau reduced to the work of one fixed step.

    Attributes:
        tableau: the explicit tableau planned.
        stages: the stages evaluated, in order (0-based; stages that cannot reach the result are left out).
        nodes: the distinct nodes c of the evaluated stages, in order of first use, as floats.
        stage_nodes: for each evaluated stage, the index of its node in ``nodes``.
        coefficients: the nonzero a_ij, then b_i, in the order the step uses them (multiply by dt:
            :meth:`scaled`).
        source: the generated Python of one step (the checked variant).
    """

    tableau: ButcherTableau
    stages: tuple[int, ...]
    nodes: tuple[float, ...]
    stage_nodes: tuple[int, ...]
    coefficients: tuple[float, ...]
    source: str
    _advance: Callable = dataclasses.field(repr=False, compare=False)
    _advance_checked: Callable = dataclasses.field(repr=False, compare=False)
    _advance_traced: Callable = dataclasses.field(repr=False, compare=False)
    _advance_traced_checked: Callable = dataclasses.field(repr=False, compare=False)

    @property
    def evaluations(self) -> int:
        """Evaluations of f per step."""
        return len(self.stages)

    @property
    def exact_nodes(self) -> tuple[Fraction, ...]:
        """``nodes`` as exact fractions (the tableau's own c_i)."""
        first_stage = {node: stage for stage, node in reversed(list(zip(self.stages, self.stage_nodes)))}
        return tuple(Fraction(str(self.tableau.c[first_stage[index]])) for index in range(len(self.nodes)))

    def scaled(self, dt: float) -> tuple[float, ...]:
        """The step's coefficients times ``dt`` (the ``alphas`` that :meth:`advance` takes)."""
        return tuple(dt * coefficient for coefficient in self.coefficients)

    def advance(self, f: StageFunction, x: torch.Tensor, stage_arguments: Sequence[Any],
                alphas: tuple[float, ...], *, checked: bool = False) -> torch.Tensor:
        """x_{n+1} from x_n = ``x``: f is called as ``f(stage_arguments[stage_nodes[i]], state)`` for each
        evaluated stage i; ``alphas`` = :meth:`scaled` (dt). ``checked``: every value of f must be a tensor of
        the state's shape, dtype and device (a clear error otherwise)."""
        return (self._advance_checked if checked else self._advance)(f, x, stage_arguments, alphas)

    def advance_traced(self, f: StageFunction, x: torch.Tensor, stage_arguments: Sequence[Any],
                       alphas: torch.Tensor, *, checked: bool = False) -> torch.Tensor:
        """:meth:`advance` with ``alphas`` a tensor (``scaled(dt)`` as a tensor of the state's real dtype):
        the form ``torch.compile`` traces, so that dt is an input of the compiled code, not a constant baked into
        it (another dt would recompile). Same stages and coefficients; x + alpha k instead of
        ``torch.add(x, k, alpha=...)``, equal to round-off.

        ``alphas[m]`` need only broadcast against x: shape ``(n_coefficients,)`` for one dt, or
        ``(n_coefficients, batch, 1, ..., 1)`` for a dt per batch element (each element its own step)."""
        return (self._advance_traced_checked if checked else self._advance_traced)(f, x, stage_arguments, alphas)

    def scaled_per_element(self, dt: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """The coefficients times a dt per batch element: ``dt`` ``(batch,)`` with batch = ``like.shape[0]``;
        returns ``(n_coefficients, batch, 1, ..., 1)`` (as many ones as ``like`` has further axes), the
        ``alphas`` of :meth:`advance_traced`. Computed in float64, then cast to the real dtype of ``like``
        (differentiable with respect to ``dt``)."""
        real = like.real.dtype if like.is_complex() else like.dtype
        coefficients = torch.tensor(self.coefficients, dtype=torch.float64, device=dt.device)
        alphas = coefficients[:, None] * dt.to(torch.float64)[None, :]
        return alphas.to(real).reshape(len(self.coefficients), dt.shape[0], *([1] * (like.ndim - 1)))

    def stage_times_per_element(self, t0: float | torch.Tensor, dt: torch.Tensor, first_step: int,
                                like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The stage times t0 + k dt_b + c dt_b of step k = ``first_step`` for a dt per batch element:
        one ``(batch,)`` tensor per distinct node, computed in float64 (never accumulated), then cast to the
        real dtype of ``like``. ``t0`` is a number or a ``(batch,)`` tensor (each element's own start)."""
        real = like.real.dtype if like.is_complex() else like.dtype
        step = dt.to(torch.float64)
        start = (t0.to(torch.float64) if isinstance(t0, torch.Tensor) else t0) + first_step * step
        return tuple((start + node * step).to(real) for node in self.nodes)

    def integrate(self, f: StageFunction, x: torch.Tensor, alphas: tuple[float, ...],
                  stage_arguments: Sequence[Sequence[Any]], *, check_first: bool = False) -> list[torch.Tensor]:
        """``len(stage_arguments)`` steps from ``x``, step n with ``stage_arguments[n]``; the state after each
        step. ``check_first``: the first step checks what f returns."""
        states = []
        advance = self._advance
        for index, arguments in enumerate(stage_arguments):
            if index == 0 and check_first:
                x = self._advance_checked(f, x, arguments, alphas)
            else:
                x = advance(f, x, arguments, alphas)
            states.append(x)
        return states

    def stage_time_table(self, t0: float, dt: float, first_step: int, n_steps: int,
                         like: torch.Tensor) -> torch.Tensor:
        """For steps k = first_step .. first_step + n_steps - 1, the stage times t0 + k dt + c dt of the
        distinct nodes, shape ``(n_steps, len(nodes))``, computed in float64, never accumulated, then cast to the
        real dtype and the device of ``like``."""
        steps = torch.arange(first_step, first_step + n_steps, dtype=torch.float64)
        nodes = torch.tensor(self.nodes, dtype=torch.float64)
        times = (t0 + steps[:, None] * dt) + nodes[None, :] * dt
        real = like.real.dtype if like.is_complex() else like.dtype
        return times.to(dtype=real, device=like.device)

    def stage_times(self, t0: float, dt: float, first_step: int, n_steps: int,
                    like: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        """:meth:`stage_time_table` as one tuple of 0-dim tensors per step (what :meth:`integrate` takes)."""
        flat = self.stage_time_table(t0, dt, first_step, n_steps, like).reshape(-1).unbind()
        width = len(self.nodes)
        return [flat[k * width:(k + 1) * width] for k in range(n_steps)]


def _evaluated_stages(tableau: ButcherTableau) -> list[int]:
    """The stages whose value reaches x_{n+1}: those with b_i != 0 and, backwards, those they read."""
    a, b, _ = tableau.as_floats()
    needed = [b[i] != 0.0 for i in range(tableau.stages)]
    for i in reversed(range(tableau.stages)):
        if needed[i]:
            for j in range(i):
                needed[j] = needed[j] or a[i][j] != 0.0
    return [i for i in range(tableau.stages) if needed[i]]


def _step_source(tableau: ButcherTableau, stages: list[int], nodes: tuple[float, ...],
                 checked: bool, traced: bool = False) -> tuple[str, tuple[float, ...]]:
    """Python source of one step, unrolled, and the coefficients it reads (``alphas[m]`` = dt x coefficient m).
    ``traced``: ``alphas`` is a tensor, and the step is written with out-of-place x + alpha k (what torch.compile
    traces with dt as an input)."""
    a, b, c = tableau.as_floats()
    coefficients: list[float] = []

    def alpha(value: float) -> str:
        coefficients.append(value)
        return f"alphas[{len(coefficients) - 1}]"

    lines = ["def advance(f, x, stage_arguments, alphas):"]
    for i in stages:
        couplings = [(j, a[i][j]) for j in range(i) if a[i][j] != 0.0]
        state = "x"
        if couplings and traced:
            lines.append(f"    x{i} = x + " + " + ".join(f"{alpha(value)} * k{j}" for j, value in couplings))
            state = f"x{i}"
        elif couplings:
            j, value = couplings[0]
            lines.append(f"    x{i} = torch.add(x, k{j}, alpha={alpha(value)})")
            for j, value in couplings[1:]:
                lines.append(f"    x{i}.add_(k{j}, alpha={alpha(value)})")
            state = f"x{i}"
        lines.append(f"    k{i} = f(stage_arguments[{nodes.index(c[i])}], {state})")
        if checked:
            lines.append(f"    check(k{i}, x, {i})")
    weights = [(i, b[i]) for i in stages if b[i] != 0.0]
    if traced:
        lines.append("    return x + " + " + ".join(f"{alpha(value)} * k{j}" for j, value in weights))
        return "\n".join(lines) + "\n", tuple(coefficients)
    j, value = weights[0]
    lines.append(f"    out = torch.add(x, k{j}, alpha={alpha(value)})")
    for j, value in weights[1:]:
        lines.append(f"    out.add_(k{j}, alpha={alpha(value)})")
    lines.append("    return out")
    return "\n".join(lines) + "\n", tuple(coefficients)


def _check_derivative(derivative: object, x: torch.Tensor, stage: int) -> None:
    if not isinstance(derivative, torch.Tensor):
        raise TypeError(f"f must return a torch.Tensor, got {type(derivative).__name__} at stage {stage}")
    if derivative.shape != x.shape:
        raise ValueError(
            f"f returned shape {tuple(derivative.shape)} for a state of shape {tuple(x.shape)} (stage {stage}); "
            f"dx/dt must have the shape of x"
        )
    if derivative.dtype != x.dtype or derivative.device != x.device:
        raise ValueError(
            f"f returned dtype {derivative.dtype} on {derivative.device} for a state of dtype {x.dtype} "
            f"on {x.device} (stage {stage}); dx/dt must match the state"
        )


@lru_cache(maxsize=None)
def _plan(tableau: ButcherTableau) -> StepPlan:
    if not tableau.is_explicit:
        raise ValueError(
            f"scheme {tableau.name!r} is implicit; a fixed step is planned for explicit schemes only "
            f"(for stiff problems use dynlearn.odeint with an adaptive torchdiffeq method)"
        )
    _, _, c = tableau.as_floats()
    stages = _evaluated_stages(tableau)
    nodes = tuple(dict.fromkeys(c[i] for i in stages))
    functions = {}
    for variant, (checked, traced) in {"plain": (False, False), "checked": (True, False),
                                       "traced": (False, True), "traced checked": (True, True)}.items():
        source, coefficients = _step_source(tableau, stages, nodes, checked, traced)
        namespace = {"torch": torch, "check": _check_derivative}
        exec(compile(source, f"<dynlearn step: {tableau.name}>", "exec"), namespace)  # our own generated code
        functions[variant] = (namespace["advance"], source)
    return StepPlan(tableau=tableau, stages=tuple(stages), nodes=nodes,
                    stage_nodes=tuple(nodes.index(c[i]) for i in stages), coefficients=coefficients,
                    source=functions["checked"][1], _advance=functions["plain"][0],
                    _advance_checked=functions["checked"][0], _advance_traced=functions["traced"][0],
                    _advance_traced_checked=functions["traced checked"][0])


def step_plan(scheme: str | ButcherTableau | StepPlan) -> StepPlan:
    """The plan of one fixed step of ``scheme`` (a registered name or a :class:`ButcherTableau`), built once
    per tableau; a plan is returned as it is (what code traced by ``torch.compile`` passes, as the cache behind
    this function cannot be traced). An implicit scheme raises a ValueError (fixed steps are explicit here)."""
    if isinstance(scheme, StepPlan):
        return scheme
    return _plan(get_tableau(scheme))
