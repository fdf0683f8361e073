"""Training loops for the small models of the learned-integrator study.

One loop for every model: Adam with an exponential learning-rate schedule, seeded, full batch by default
(these problems are small: a batch of all samples is one fused tensor computation, no per-sample Python),
early stop on a plateau of the loss, the best parameters restored at the end, and checkpoints that make a
long run resumable. The losses are closures over stacked tensors: one-step or S-step, in one or several
schemes.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from dynlearn._checks import as_flag, as_integer, as_learning_rate, as_number_in, as_positive_step
from dynlearn._files import atomic_write, load_checkpoint, restore_random_state
from dynlearn.fields.training_step import ADAM_BETAS, ADAM_EPSILON, adam_update, compile_iteration, functional_loss
from dynlearn.integration.rollout import rollout, step
from dynlearn.integration.step_plan import StepPlan, step_plan
from dynlearn.integration.tableau import ButcherTableau
from dynlearn.progress import progress as progress_display

__all__ = ["TrainingSettings", "TrainingHistory", "train", "train_ensemble", "embedded_loss", "map_loss"]

#: loss(indices) -> scalar; indices select a minibatch of samples, None means all of them.
Loss = Callable[[torch.Tensor | None], torch.Tensor]



@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    """How to train (the pattern of every trainer in dynlearn: ``train*(model, data, ..., settings=Settings(),
    checkpoint=None) -> History``).

    Attributes:
        iterations: most optimiser steps.
        learning_rate, final_learning_rate: Adam's rate decays exponentially from one to the other.
        batch_size: samples per step (None: all of them, full batch).
        patience, min_improvement: stop when the best loss has not fallen by a relative ``min_improvement``
            in ``patience`` iterations.
        seed: seeds torch before training (initial minibatch order; initialise the model's weights yourself,
            seeded, before calling :func:`train`).
        checkpoint_every: iterations between two saves of the resumable state (see :func:`train`'s
            ``checkpoint``).
        progress: report progress (:mod:`dynlearn.progress`: a bar on a terminal, one line when done otherwise);
            description: its label.
        compile: run each iteration (the loss, its gradient, Adam's step, the best parameters kept) as one graph
            through ``torch.compile`` (:mod:`dynlearn.fields.training_step`; on CUDA a CUDA graph, replayed).
            The same numbers as eager to round-off, after a compile of seconds to tens of seconds at the start;
            worth it for thousands of iterations (docs: performance). The loss must reach the parameters through
            the module, as :func:`embedded_loss` and the ensemble's loss do.
    """

    iterations: int = 3000
    learning_rate: float = 1e-2
    final_learning_rate: float = 1e-4
    batch_size: int | None = None
    patience: int = 500
    min_improvement: float = 1e-3
    seed: int = 0
    checkpoint_every: int = 500
    progress: bool = True
    description: str = "training"
    compile: bool = False

    def __post_init__(self) -> None:
        for name in ("iterations", "patience", "checkpoint_every"):
            as_integer(name, getattr(self, name))
        for name in ("learning_rate", "final_learning_rate"):
            as_learning_rate(name, getattr(self, name))
        if self.batch_size is not None:
            as_integer("batch_size (or None: full batch)", self.batch_size)
        as_number_in("min_improvement", self.min_improvement, 0.0, 1.0)
        for name in ("progress", "compile"):  # stored as a plain bool (numpy's too), as the checkpoint records it
            object.__setattr__(self, name, as_flag(name, getattr(self, name)))


@dataclasses.dataclass
class TrainingHistory:
    """What happened: the loss at every iteration, where it stopped and why, the best loss, the seconds taken;
    ``failure`` says why a member of an ensemble stopped with a loss that was not finite (None otherwise)."""

    losses: list[float]
    best_loss: float
    best_iteration: int
    stopped_early: bool
    seconds: float
    failure: str | None = None

    @property
    def iterations(self) -> int:
        return len(self.losses)

    def to_dict(self) -> dict:
        """Plain numbers and lists, for JSON."""
        return dataclasses.asdict(self)


def _save(path: Path, state: dict) -> None:
    atomic_write(path, lambda temporary: torch.save(state, temporary))


def train(module: nn.Module, loss: Loss, n_samples: int, settings: TrainingSettings = TrainingSettings(),
          checkpoint: str | os.PathLike | None = None) -> TrainingHistory:
    """Minimise ``loss`` over ``module``'s parameters; the best parameters seen are loaded at the end.

    ``n_samples`` is the number of samples ``loss`` indexes into (for minibatches). ``checkpoint``: a file
    rewritten (atomically) every ``settings.checkpoint_every`` iterations; an existing one is resumed from, and
    the resumed run equals an uninterrupted one. A loss that becomes NaN or infinite stops training with an
    error naming the iteration (lower the learning rate).
    """
    parameters = [p for p in module.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError("the module has no trainable parameters")
    torch.manual_seed(settings.seed)
    optimizer = torch.optim.Adam(parameters, lr=settings.learning_rate, betas=ADAM_BETAS, eps=ADAM_EPSILON)
    decay = (settings.final_learning_rate / settings.learning_rate) ** (1.0 / settings.iterations)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=decay)
    losses: list[float] = []
    best_loss, best_iteration = math.inf, 0
    best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    start_iteration = 0
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.exists():
        saved = load_checkpoint(path, ("model", "optimizer", "schedule", "losses", "best_loss", "best_iteration",
                                       "best_state", "rng"), "a trained field")
        module.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        losses, best_loss, best_iteration = list(saved["losses"]), float(saved["best_loss"]), int(saved["best_iteration"])
        best_state = saved["best_state"]
        start_iteration = len(losses)
        restore_random_state(saved["rng"])

    compiled = None
    if settings.compile:
        minibatches = settings.batch_size is not None and settings.batch_size < n_samples
        compiled = _CompiledIteration(module, loss, parameters, optimizer, best_state, minibatches)
    began = time.perf_counter()
    stopped_early = False
    bar = progress_display(range(start_iteration, settings.iterations), description=settings.description,
                           enabled=settings.progress, initial=start_iteration, total=settings.iterations)
    for iteration in bar:
        index = None
        if settings.batch_size is not None and settings.batch_size < n_samples:
            index = torch.randint(n_samples, (settings.batch_size,))
        value = None
        if compiled is not None:  # the loss, its gradient, the best parameters kept and Adam's step, as one graph
            value = compiled(index, best_loss)
            if value is None:  # torch.compile could not take it (it said why): eager from here
                compiled = None
        if value is None:
            optimizer.zero_grad(set_to_none=True)
            value = loss(index)
        if not torch.isfinite(value):  # the compiled iteration left the parameters as they were
            raise FloatingPointError(
                f"{settings.description}: the loss is {float(value.detach())} at iteration {iteration}; lower the learning rate "
                f"(now {schedule.get_last_lr()[0]:.3g}) or check the data"
            )
        current = float(value.detach())
        losses.append(current)
        if current < best_loss * (1 - settings.min_improvement):
            best_iteration = iteration
        if current < best_loss:  # the parameters that gave this loss, before the step moves them
            best_loss = current
            if compiled is None:  # (the compiled iteration kept them itself)
                best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        if compiled is None:
            value.backward()
            optimizer.step()
            schedule.step()
        else:  # the compiled iteration took Adam's step itself, which the schedule cannot see (it would warn)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler")
                schedule.step()
        stopped_early = iteration - best_iteration >= settings.patience
        if iteration % 50 == 0 or stopped_early or iteration == settings.iterations - 1:  # the last one: a log's line
            bar.set_postfix(loss=f"{current:.3e}", best=f"{best_loss:.3e}",
                            **({"stopped": "early"} if stopped_early else {}))
        if path is not None and (iteration + 1) % settings.checkpoint_every == 0:
            if compiled is not None:
                best_state = compiled.best_state()
            _save(path, {"model": module.state_dict(), "optimizer": optimizer.state_dict(),
                         "schedule": schedule.state_dict(), "losses": losses, "best_loss": best_loss,
                         "best_iteration": best_iteration, "best_state": best_state, "rng": torch.get_rng_state()})
        if stopped_early:
            break
    bar.close()
    module.load_state_dict(best_state if compiled is None else compiled.best_state())
    return TrainingHistory(losses=losses, best_loss=best_loss, best_iteration=best_iteration,
                           stopped_early=stopped_early, seconds=time.perf_counter() - began)


class _CompiledIteration:
    """:func:`train`'s iteration as one compiled graph (:mod:`dynlearn.fields.training_step`): the loss and its
    gradient, the parameters kept where the loss beats the best, and torch's Adam step (torch's single-tensor
    formula on the optimizer's own state, so a checkpoint resumes either way) at the schedule's current rate. A
    non-finite loss leaves the parameters and moments as they were."""

    def __init__(self, module: nn.Module, loss: Loss, parameters: list[torch.Tensor], optimizer: torch.optim.Adam,
                 best_state: dict[str, torch.Tensor], minibatches: bool) -> None:
        self.module, self.optimizer = module, optimizer
        self.device = parameters[0].device
        self.names = [name for name, p in module.named_parameters() if p.requires_grad]
        example = torch.zeros(1, dtype=torch.long) if minibatches else None
        evaluate = functional_loss(module, loss, (example,))
        self.adam = []
        for p in parameters:  # torch's initial Adam state, unless a checkpoint restored one
            state = optimizer.state[p]
            if not state:
                state["step"] = torch.tensor(0.0, dtype=torch.get_default_dtype())
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            self.adam.append(state)
        self.tensors = {"parameters": parameters, "best_parameters": [best_state[name].detach().clone().to(p)
                                                                      for name, p in zip(self.names, parameters)],
                        "first_moments": [s["exp_avg"] for s in self.adam],
                        "second_moments": [s["exp_avg_sq"] for s in self.adam]}

        def iteration(index: torch.Tensor | None, scalars: torch.Tensor,
                      tensors: dict[str, list[torch.Tensor]]) -> torch.Tensor:
            best_loss, step_size, correction = scalars.unbind()  # one transfer to the device an iteration
            grads, value = torch.func.grad_and_value(lambda values_of: evaluate(values_of, index))(
                tensors["parameters"])
            finite = torch.isfinite(value)
            improved = finite & (value < best_loss)
            with torch.no_grad():
                for best, p in zip(tensors["best_parameters"], tensors["parameters"]):
                    best.copy_(torch.where(improved, p, best))
            for p, grad, first, second in zip(tensors["parameters"], grads, tensors["first_moments"],
                                              tensors["second_moments"]):
                adam_update(p, grad, first, second, step_size, correction, finite)
            return value.detach()

        self.run = compile_iteration(iteration, self.device, [t for group in self.tensors.values() for t in group])

    def __call__(self, index: torch.Tensor | None, best_loss: float) -> torch.Tensor | None:
        """Run one iteration; None (with a warning, nothing changed) where torch.compile cannot take it."""
        beta1, beta2 = ADAM_BETAS
        step = float(self.adam[0]["step"]) + 1
        rate = self.optimizer.param_groups[0]["lr"]
        scalars = torch.tensor([best_loss, rate / (1 - beta1**step), (1 - beta2**step) ** 0.5], dtype=torch.float64,
                               device=self.device)
        value = self.run(None if index is None else index.to(self.device), scalars, self.tensors)
        if value is None:
            return None
        if bool(torch.isfinite(value)):
            for state in self.adam:
                state["step"] += 1
        return value

    def best_state(self) -> dict[str, torch.Tensor]:
        """The module's state with the best parameters in place of the current ones (as the eager loop keeps it)."""
        state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        state.update({name: best.clone() for name, best in zip(self.names, self.tensors["best_parameters"])})
        return state


def embedded_loss(
    vector_field: nn.Module,
    starts: torch.Tensor,
    targets: torch.Tensor,
    dt: float | torch.Tensor,
    schemes: Sequence[str | ButcherTableau] = ("rk4",),
    start_times: torch.Tensor | None = None,
) -> Loss:
    """Mean squared error of S-step predictions of ``vector_field`` inside each scheme, summed over schemes.

    ``starts`` is ``(N, *state)``, ``targets`` ``(N, S, *state)`` (the S states that follow each start):
    loss = sum_schemes mean_{n, s} ||x_hat_{n, s} - x_{n, s}||^2 / dim. Summing several schemes on the same
    field (e.g. midpoint + RK4) keeps it from fitting the error of one scheme.

    ``dt``: the step between successive states: one number for all; a tensor ``(N,)``, sample n's own step
    (irregularly sampled pairs, or windows on a sample's own uniform grid); or ``(N, S)``, the step before each
    target (irregular windows: x_hat_{n, s} = Step(x_hat_{n, s-1}, dt[n, s])).

    ``start_times`` ``(N,)``: the time of each start, for a non-autonomous field G(t, x) (the scheme's stage times
    then run from there); None starts every sample at t = 0, which is right for an autonomous field only.
    """
    if targets.ndim != starts.ndim + 1 or targets.shape[0] != starts.shape[0] or targets.shape[2:] != starts.shape[1:]:
        raise ValueError(f"targets must be (N, S, *state) for starts (N, *state); got {tuple(targets.shape)} and "
                         f"{tuple(starts.shape)}")
    steps = targets.shape[1]
    if isinstance(dt, torch.Tensor) and dt.ndim > 0:
        if tuple(dt.shape) not in {(starts.shape[0],), (starts.shape[0], steps)}:
            raise ValueError(f"dt must be a number, or a tensor of shape (N,) = ({starts.shape[0]},) or (N, S) = "
                             f"({starts.shape[0]}, {steps}), got shape {tuple(dt.shape)}")
        if not bool(torch.isfinite(dt).all()) or not bool((dt > 0).all()):
            raise ValueError("dt must hold finite step sizes > 0")
        dt = dt.to(starts.device)
    else:
        dt = as_positive_step("dt", dt)
    # the plans resolved here, once: the loss then holds no lookup (what torch.compile traces, TrainingSettings.compile)
    scheme_list = [step_plan(scheme) for scheme in schemes]
    if not scheme_list:
        raise ValueError("schemes is empty")
    if start_times is not None:
        if not isinstance(start_times, torch.Tensor) or tuple(start_times.shape) != (starts.shape[0],):
            raise ValueError(f"start_times must be a tensor of shape (N,) = ({starts.shape[0]},), got "
                             f"{getattr(start_times, 'shape', type(start_times).__name__)}")
        if not bool(torch.isfinite(start_times).all()):
            raise ValueError("start_times must hold finite times")
        start_times = start_times.to(device=starts.device, dtype=torch.float64)

    def predict(x: torch.Tensor, t0: float | torch.Tensor, step_sizes: float | torch.Tensor,
                scheme: StepPlan) -> torch.Tensor:
        if isinstance(step_sizes, torch.Tensor) and step_sizes.ndim == 2:  # a step of its own before each target
            predictions, t = [], t0
            for s in range(steps):
                x = step(vector_field, t, x, step_sizes[:, s], scheme)
                t = t + step_sizes[:, s].to(torch.float64)
                predictions.append(x)
            return torch.stack(predictions, dim=1)
        return rollout(vector_field, x, t0, step_sizes, steps, scheme, allow_nonfinite=True)[1:].movedim(0, 1)

    def loss(index: torch.Tensor | None) -> torch.Tensor:
        x, y = (starts, targets) if index is None else (starts[index], targets[index])
        step_sizes = dt[index] if index is not None and isinstance(dt, torch.Tensor) else dt
        t0 = 0.0 if start_times is None else (start_times if index is None else start_times[index])
        total = x.new_zeros(())
        for scheme in scheme_list:
            total = total + torch.mean((predict(x, t0, step_sizes, scheme) - y) ** 2)
        return total

    return loss


def map_loss(model: Callable[[torch.Tensor], torch.Tensor], starts: torch.Tensor, targets: torch.Tensor) -> Loss:
    """Mean squared error of a discrete map iterated S times (``targets`` is ``(N, S, *state)``)."""
    steps = targets.shape[1]

    def loss(index: torch.Tensor | None) -> torch.Tensor:
        x, y = (starts, targets) if index is None else (starts[index], targets[index])
        predictions = []
        for _ in range(steps):
            x = model(x)
            predictions.append(x)
        return torch.mean((torch.stack(predictions, dim=1) - y) ** 2)

    return loss



#: the ensemble trainer's state tensors that an iteration updates in place, besides the parameters (Adam's moments,
#: step counts and rates, and the best parameters)
_ITERATION_STATE = ("first_moments", "second_moments", "best_parameters", "steps", "rate", "decay")


def _member_view(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(M,) -> (M, 1, ..., 1), broadcastable against a stacked parameter ``like``."""
    return values.to(device=like.device, dtype=like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


def train_ensemble(ensemble: nn.Module, loss: Callable[[torch.Tensor | None], torch.Tensor], n_samples: Sequence[int],
                   settings: TrainingSettings | Sequence[TrainingSettings] = TrainingSettings(),
                   checkpoint: str | os.PathLike | None = None) -> list[TrainingHistory]:
    """Train the M members of a stacked model (every trainable parameter (M, ...), e.g.
    :class:`~dynlearn.fields.ensemble.EnsembleMLP`) at once, each as :func:`train` would train it alone.

    ``loss(index)`` returns the M member losses (see :func:`~dynlearn.fields.ensemble.ensemble_embedded_loss`);
    ``n_samples[m]`` is member m's number of samples and ``settings[m]`` its settings (one for all, or one per
    member): its seed (minibatch order, from its own generator), iterations, learning-rate schedule, batch size and
    early stop. Adam is applied member by member (torch's update, per-member step counts and rates); a member that
    has stopped (early, at its iteration count, or with a non-finite loss) is frozen while the others go on. At the
    end each member holds the parameters of its best loss, so member m ends where ``train`` of it alone ends (to
    round-off: the batched products sum in another order).

    ``checkpoint`` (a file, rewritten atomically every ``checkpoint_every`` iterations of the first settings): an
    existing one is resumed from, and the resumed run equals an uninterrupted one. The first settings' ``compile``
    runs every iteration of the ensemble as one compiled graph (:attr:`TrainingSettings.compile`). Returns one history per member;
    ``seconds`` is the ensemble's wall time, shared by its members; a member whose loss stopped being finite has
    ``failure`` set and keeps its best parameters.
    """
    parameters = [p for p in ensemble.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError("the ensemble has no trainable parameters")
    members = parameters[0].shape[0]
    if any(p.ndim < 1 or p.shape[0] != members for p in parameters):
        raise ValueError("every trainable parameter of an ensemble must have the members on its first axis")
    per_member = [settings] * members if isinstance(settings, TrainingSettings) else list(settings)
    counts = [as_integer(f"n_samples[{m}]", n) for m, n in enumerate(n_samples)]
    if len(per_member) != members or len(counts) != members:
        raise ValueError(f"give one settings (or one for each of the {members} members) and {members} sample counts, "
                         f"got {len(per_member)} settings and {len(counts)} counts")
    first = per_member[0]
    generators = [torch.Generator().manual_seed(s.seed) for s in per_member]
    batches = [s.batch_size if s.batch_size is not None and s.batch_size < n else None
               for s, n in zip(per_member, counts)]
    width = max(b if b is not None else n for b, n in zip(batches, counts))
    rate = torch.tensor([s.learning_rate for s in per_member], dtype=torch.float64)
    decay = torch.tensor([(s.final_learning_rate / s.learning_rate) ** (1.0 / s.iterations) for s in per_member],
                         dtype=torch.float64)
    limits = [s.iterations for s in per_member]
    state = {
        "iteration": 0, "steps": torch.zeros(members, dtype=torch.float64), "rate": rate, "decay": decay,
        "first_moments": [torch.zeros_like(p) for p in parameters],
        "second_moments": [torch.zeros_like(p) for p in parameters],
        "best_parameters": [p.detach().clone() for p in parameters],
        "best_loss": [math.inf] * members, "best_iteration": [0] * members, "losses": [[] for _ in range(members)],
        "active": [True] * members, "stopped_early": [False] * members, "failure": [None] * members,
    }
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.exists():
        saved = load_checkpoint(path, ("parameters", "generators", "state"), "an ensemble's training",
                                map_location=parameters[0].device)
        with torch.no_grad():
            for p, value in zip(parameters, saved["parameters"]):
                p.copy_(value)
        for generator, generator_state in zip(generators, saved["generators"]):
            generator.set_state(generator_state.to("cpu", torch.uint8))
        state = saved["state"]

    device = parameters[0].device
    for key in ("steps", "rate", "decay"):  # Adam's per-member counts and rates live with the parameters
        state[key] = state[key].to(device)
    run, deactivate = _ensemble_iteration(ensemble, loss, parameters, state, members, first.compile)

    began = time.perf_counter()
    bar = progress_display(range(state["iteration"], max(limits)), description=first.description,
                           enabled=first.progress, initial=state["iteration"], total=max(limits))
    for iteration in bar:
        active = state["active"]
        if not any(active):
            break
        index = None
        if any(b is not None for b in batches) or len(set(counts)) > 1:
            rows = []
            for m in range(members):
                if batches[m] is None:
                    row = torch.arange(counts[m])
                elif active[m]:
                    row = torch.randint(counts[m], (batches[m],), generator=generators[m])
                else:  # a stopped member's draws are not used; its generator stays where it stopped
                    row = torch.zeros(batches[m], dtype=torch.long)
                rows.append(torch.cat([row, row.new_full((width - row.numel(),), -1)]))
            index = torch.stack(rows).to(device)
        # the loss, its gradient, the best parameters kept and Adam's step, for every active member at once
        values = run(index)
        current = values.cpu().tolist()
        was_active = list(active)
        for m in range(members):
            if not active[m]:
                continue
            if not math.isfinite(current[m]):  # the iteration left it as it was
                state["failure"][m] = (f"the loss is {current[m]} at iteration {iteration}; lower the learning rate "
                                       f"(now {float(state['rate'][m]):.3g}) or check the data")
                active[m] = False
                continue
            state["losses"][m].append(current[m])
            if current[m] < state["best_loss"][m] * (1 - per_member[m].min_improvement):
                state["best_iteration"][m] = iteration
            if current[m] < state["best_loss"][m]:  # the iteration kept the parameters that gave it
                state["best_loss"][m] = current[m]
            state["stopped_early"][m] = iteration - state["best_iteration"][m] >= per_member[m].patience
            if state["stopped_early"][m] or iteration + 1 >= limits[m]:
                active[m] = False
        if active != was_active:
            deactivate(active)
        state["iteration"] = iteration + 1
        if iteration % 50 == 0 or not any(active):
            finite = [b for b in state["best_loss"] if math.isfinite(b)]
            bar.set_postfix(training=f"{sum(active)}/{members}",
                            best=f"{sorted(finite)[len(finite) // 2]:.3e}" if finite else "-")
        if path is not None and state["iteration"] % first.checkpoint_every == 0:
            saved = {"parameters": [p.detach() for p in parameters], "state": state,
                     "generators": [g.get_state() for g in generators]}
            _save(path, saved)
    bar.close()
    with torch.no_grad():
        for p, best in zip(parameters, state["best_parameters"]):
            p.copy_(best)
    seconds = time.perf_counter() - began
    return [TrainingHistory(losses=state["losses"][m], best_loss=state["best_loss"][m],
                            best_iteration=state["best_iteration"][m], stopped_early=state["stopped_early"][m],
                            seconds=seconds, failure=state["failure"][m]) for m in range(members)]


def _ensemble_iteration(ensemble: nn.Module, loss: Callable[[torch.Tensor | None], torch.Tensor],
                        parameters: list[torch.Tensor], state: dict, members: int,
                        compiled: bool) -> tuple[Callable[..., torch.Tensor], Callable[[list[bool]], None]]:
    """One iteration of :func:`train_ensemble` as a function of tensors, ``index (M, B) or None -> member losses
    (M,)``, and the call that tells it which members still train. It differentiates the active members' finite
    losses, keeps the parameters of every member whose loss beat its best (before they move), and takes Adam's
    step of every member that steps; no Python decision depends on a value, so ``compiled`` makes it one graph
    (:mod:`dynlearn.fields.training_step`; eager where torch cannot compile it, with a warning). The active members
    and the best losses live on the device beside the parameters (derived from ``state``'s lists, which the
    trainer keeps for the history), so an iteration sends only its minibatch there."""

    def eager_gradients(index, active, parameters):
        values = loss(index)
        stepping = active & torch.isfinite(values.detach())
        selected = torch.where(stepping, values, torch.zeros_like(values)).sum()
        return values.detach(), torch.autograd.grad(selected, parameters, allow_unused=True)

    def functional_gradients(index, active, parameters):
        def objective(values_of):
            values = evaluate(values_of, index)
            stepping = active & torch.isfinite(values.detach())
            return torch.where(stepping, values, torch.zeros_like(values)).sum(), values.detach()

        grads, values = torch.func.grad(objective, has_aux=True)(parameters)
        return values, grads

    def iteration(index: torch.Tensor | None, tensors: dict[str, Any],
                  gradients: Callable = eager_gradients) -> torch.Tensor:
        active, best_loss = tensors["active"], tensors["best_loss"]
        values, grads = gradients(index, active, tensors["parameters"])
        stepping = active & torch.isfinite(values)
        improved = stepping & (values < best_loss)
        with torch.no_grad():
            for best, p in zip(tensors["best_parameters"], tensors["parameters"]):  # what gave the best loss
                best.copy_(torch.where(_member_view(improved, p).bool(), p, best))
            best_loss.copy_(torch.where(improved, values.to(best_loss.dtype), best_loss))
        _adam_step(grads, tensors, stepping)
        return values

    device = parameters[0].device
    # the tensors it updates, as an argument (not a closure): what the compiled code guards on stays small
    tensors = {"parameters": parameters, **{key: state[key] for key in _ITERATION_STATE},
               "active": torch.tensor(state["active"], device=device),
               "best_loss": torch.tensor(state["best_loss"], dtype=torch.float64, device=device)}

    def deactivate(active: list[bool]) -> None:
        tensors["active"].copy_(torch.tensor(active))

    if not compiled:
        return (lambda index: iteration(index, tensors)), deactivate
    evaluate = functional_loss(ensemble, loss, (torch.zeros(members, 1, dtype=torch.long, device=device),))
    updated = [t for value in tensors.values() for t in (value if isinstance(value, list) else [value])]
    one_graph = compile_iteration(iteration, device, updated)
    runner = [lambda index: one_graph(index, tensors, functional_gradients)]

    def run(index: torch.Tensor | None) -> torch.Tensor:
        values = runner[0](index)
        if values is None:  # torch.compile could not take it (it said why): eager from here
            runner[0] = lambda index: iteration(index, tensors)
            values = runner[0](index)
        return values

    return run, deactivate


def _adam_step(grads: Sequence[torch.Tensor | None], tensors: dict[str, Any], stepping: torch.Tensor) -> None:
    """One Adam update (:func:`~dynlearn.fields.training_step.adam_update`) of the members in ``stepping`` (M,)
    bool, each with its own step count k and rate: torch's single-tensor Adam, member by member, step size
    rate / (1 - b1^k) and correction sqrt(1 - b2^k). Then each stepping member's rate decays. In place (the
    tensors keep their storage, which a CUDA graph needs)."""
    beta1, beta2 = ADAM_BETAS
    steps, rate = tensors["steps"], tensors["rate"]
    with torch.no_grad():
        steps.copy_(torch.where(stepping, steps + 1, steps))
        step_size = rate / (1 - beta1**steps)
        correction = torch.sqrt(1 - beta2**steps)
        for p, grad, first, second in zip(tensors["parameters"], grads, tensors["first_moments"],
                                          tensors["second_moments"]):
            adam_update(p, grad if grad is not None else torch.zeros_like(p), first, second,
                        _member_view(step_size, p), _member_view(correction, p), _member_view(stepping, p).bool())
        rate.copy_(torch.where(stepping, rate * tensors["decay"], rate))
