r"""One training iteration as a function of tensors only: gradients, Adam's update, the best parameters kept.

An iteration of a small field's training (a 2-50-2 MLP on 128 one-step pairs) is a few hundred tiny operations:
the loss, its backward, Adam's update of every parameter, the copy of the parameters that gave the best loss.
Run eager, each is a launch (microseconds of dispatch around a little arithmetic). Written as one function of
tensors, with no Python decision that depends on a value, ``torch.compile`` makes the whole iteration one graph
(``fullgraph``): the forward, the backward (through :func:`torch.func.grad_and_value` over the module's
parameters) and the update, which Inductor fuses. On a CUDA device the graph is compiled with
``mode="reduce-overhead"``: captured once as a CUDA graph and replayed, one launch per iteration. The trainers
switch it on with ``TrainingSettings(compile=True)``; the eager paths take the same step (the ensemble's eager
iteration is this function run eagerly; ``train``'s is ``torch.optim.Adam``, whose formula this is), so the two
agree to round-off (float64: 1e-12, tested).

What the compiled iteration depends on, and so what recompiles it: the loss (its code and the tensors it closes
over: their shapes and dtypes), the parameters' shapes, whether the iteration is full-batch, the device. Not the
learning rate, the step count, the active members or the best losses: they are tensors. Each trainer call
compiles its own iteration, in its own cache where torch allows it (``isolate_recompiles``), so many trainings
in one process (a sweep's groups) never reach torch's recompile limit; Inductor's cache makes a repeated
structure compile faster.

Adam is torch's single-tensor form, with the step size and the bias correction as tensors:

.. math::

    m \leftarrow \beta_1 m + (1 - \beta_1) g, \quad v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \quad
    p \leftarrow p - \frac{\eta}{1 - \beta_1^k} \, \frac{m}{\sqrt{v} / \sqrt{1 - \beta_2^k} + \epsilon}.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Callable, Sequence

import torch
from torch import nn

__all__ = ["ADAM_BETAS", "ADAM_EPSILON", "adam_update", "functional_loss", "compile_iteration"]

#: Adam's constants (torch's defaults), used by both trainers, eager and compiled.
ADAM_BETAS = (0.9, 0.999)
#: Adam's epsilon, added to the corrected square root of the second moment.
ADAM_EPSILON = 1e-8


def adam_update(parameter: torch.Tensor, gradient: torch.Tensor, first: torch.Tensor, second: torch.Tensor,
                step_size: torch.Tensor, correction: torch.Tensor, stepping: torch.Tensor | None = None) -> None:
    r"""One Adam update of ``parameter`` in place, with its moments ``first`` (m) and ``second`` (v):
    m <- lerp(m, g, 1 - beta_1), v <- beta_2 v + (1 - beta_2) g^2,
    p <- p - step_size m / (sqrt(v) / correction + eps), where ``step_size`` = :math:`\eta / (1 - \beta_1^k)` and
    ``correction`` = :math:`\sqrt{1 - \beta_2^k}` are tensors broadcastable against the parameter (one value, or
    one per ensemble member). ``stepping`` (broadcastable bool, or None: all): where it is false, parameter and
    moments keep their values (a stopped member)."""
    beta1, beta2 = ADAM_BETAS
    with torch.no_grad():
        new_first = first.lerp(gradient, 1 - beta1)
        new_second = (second * beta2).addcmul_(gradient, gradient, value=1 - beta2)
        update = new_first / ((new_second.sqrt() / correction).add_(ADAM_EPSILON)) * step_size
        if stepping is None:
            first.copy_(new_first), second.copy_(new_second), parameter.sub_(update)
        else:
            first.copy_(torch.where(stepping, new_first, first))
            second.copy_(torch.where(stepping, new_second, second))
            parameter.sub_(torch.where(stepping, update, torch.zeros_like(update)))


class _LossModule(nn.Module):
    """The loss as a module that holds the trained one: :func:`torch.func.functional_call` on it runs the loss with
    the module's parameters replaced by given tensors."""

    def __init__(self, module: nn.Module, loss: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.module = module
        self.loss = loss

    def forward(self, *arguments: Any) -> torch.Tensor:
        return self.loss(*arguments)


def functional_loss(module: nn.Module, loss: Callable[..., torch.Tensor],
                    example: Sequence[Any]) -> Callable[..., torch.Tensor]:
    """``loss(*arguments)`` as ``f(parameters, *arguments)``: the module's trainable parameters (in the order of
    ``module.parameters()``) replaced by the tensors ``parameters``, what :func:`torch.func.grad_and_value`
    differentiates. The loss must reach them through the module (as :func:`~dynlearn.fields.embedded_loss` and
    :func:`~dynlearn.fields.ensemble.ensemble_embedded_loss` do); checked once on the ``example`` arguments, with a
    clear error for a parameter the loss does not reach that way (held by the loss itself, or unused): its
    gradient would silently be zero."""
    holder = _LossModule(module, loss)
    names = [f"module.{name}" for name, p in module.named_parameters() if p.requires_grad]

    def evaluate(parameters: Sequence[torch.Tensor], *arguments: Any) -> torch.Tensor:
        return torch.func.functional_call(holder, dict(zip(names, parameters)), arguments)

    stand_ins = [p.detach().clone().requires_grad_(True) for p in module.parameters() if p.requires_grad]
    value = evaluate(stand_ins, *example)
    reached = (torch.autograd.grad(value.sum(), stand_ins, allow_unused=True) if value.requires_grad
               else [None] * len(stand_ins))
    missing = [name.removeprefix("module.") for name, gradient in zip(names, reached) if gradient is None]
    if missing:
        raise ValueError(f"compile=True: the loss does not depend on the parameter(s) {', '.join(missing)} through "
                         "the module; a compiled iteration differentiates with respect to the module's parameters, so "
                         "build the loss from the module (as embedded_loss does), freeze a parameter it does not use "
                         "(requires_grad_(False)), or train with compile=False")
    return evaluate


def compile_iteration(iteration: Callable[..., torch.Tensor], device: torch.device,
                      state: Sequence[torch.Tensor] = ()) -> Callable[..., torch.Tensor | None]:
    """``torch.compile`` of a training iteration as one graph (``fullgraph``, static shapes), in its own cache
    where torch allows it; on CUDA with ``mode="reduce-overhead"`` (a CUDA graph, replayed), the tensors it updates
    in place (``state``: parameters, moments, best parameters, step counts) marked as static addresses, which a
    CUDA graph needs.

    The compiled iteration returns None, with a warning that says why, where torch cannot compile it whole (a loss
    with a data-dependent branch, as an adaptive solver's, or a machine without a C++ compiler for Inductor):
    the compile fails before the iteration runs, so nothing has changed and the trainer goes on eagerly."""
    options: dict[str, Any] = {"fullgraph": True, "dynamic": False}
    if "isolate_recompiles" in inspect.signature(torch.compile).parameters:
        options["isolate_recompiles"] = True
    if device.type == "cuda":
        options["mode"] = "reduce-overhead"
        for tensor in state:
            torch._dynamo.mark_static_address(tensor)
    compiled = torch.compile(iteration, **options)
    first = True

    graphed = device.type == "cuda"

    def run(*arguments: Any) -> torch.Tensor | None:
        nonlocal first
        if graphed:  # a new iteration: the previous replay's outputs (read by now) may be overwritten
            torch.compiler.cudagraph_mark_step_begin()
        if not first:
            return compiled(*arguments)
        try:
            value = compiled(*arguments)
        except torch._dynamo.exc.TorchDynamoException as error:
            reason = _reason(error)
            warnings.warn(f"compile=True: torch.compile cannot take this training iteration as one graph ({reason}); "
                          "training eagerly", stacklevel=3)
            return None
        first = False
        return value

    return run


def _reason(error: Exception) -> str:
    """The line of torch's compile error that says what stopped it (its cause or explanation, else its first)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for marker in ("Caused by:", "Explanation:"):
        found = next((line for line in lines if line.startswith(marker)), None)
        if found:
            return found[:240]
    return lines[0][:240] if lines else type(error).__name__
