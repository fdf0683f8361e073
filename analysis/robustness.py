"""Robustness of a classifier to perturbations of its inputs: Gaussian noise, FGSM and PGD.

The perturbations live in pixel space: images x in [0, 1] (``lower``, ``upper``), a perturbation delta with
||delta||_inf <= epsilon, and the model sees ``model_input(x + delta)`` (e.g. the per-channel normalisation it was
trained with), so epsilon means the same for every model and data set (epsilon = 8/255: eight grey levels).

- Gaussian noise: x + sigma z, z ~ N(0, I), clipped to [lower, upper].
- FGSM (Goodfellow, Shlens & Szegedy 2015): x + epsilon sign(grad_x L(f(x), y)), clipped; one gradient.
- PGD (Madry et al. 2018): from a uniform random start in the epsilon-ball, ``steps`` ascent steps
  x <- Pi(x + step_size sign(grad_x L)), Pi the projection onto the ball around x and onto [lower, upper].

L is the cross entropy, summed over the batch (each image's gradient is its own loss's: a model in eval mode
treats images independently). The model is put in eval mode by the caller; its parameters get no gradient.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
import torch.nn.functional as F

from dynlearn._checks import as_flag

__all__ = ["gaussian_noise", "fgsm", "projected_gradient_descent", "accuracy_under_perturbation"]

Identity: Callable[[torch.Tensor], torch.Tensor] = lambda images: images  # noqa: E731


def _check_radius(name: str, value: float) -> float:
    value = float(value)
    if not value >= 0.0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def _input_gradient(model: Callable, images: torch.Tensor, labels: torch.Tensor,
                    model_input: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """grad_x of sum_i CE(f(model_input(x_i)), y_i), without gradients on the model's parameters."""
    images = images.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(model_input(images)).float(), labels, reduction="sum")
        (gradient,) = torch.autograd.grad(loss, images)
    return gradient


def gaussian_noise(images: torch.Tensor, sigma: float, *, lower: float = 0.0, upper: float = 1.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """x + sigma z, z standard normal, clipped to [lower, upper]; ``images`` (batch, ...) in pixel units."""
    sigma = _check_radius("sigma", sigma)
    noise = torch.randn(images.shape, generator=generator, dtype=images.dtype, device="cpu").to(images.device)
    return (images + sigma * noise).clamp(lower, upper)


def fgsm(model: Callable, images: torch.Tensor, labels: torch.Tensor, epsilon: float, *,
         model_input: Callable[[torch.Tensor], torch.Tensor] = Identity, lower: float = 0.0,
         upper: float = 1.0) -> torch.Tensor:
    """The fast gradient sign attack: clip(x + epsilon sign(grad_x L), lower, upper). ``images`` (batch, ...),
    ``labels`` (batch,) integer classes; returns the perturbed images, detached."""
    epsilon = _check_radius("epsilon", epsilon)
    gradient = _input_gradient(model, images, labels, model_input)
    return (images.detach() + epsilon * gradient.sign()).clamp(lower, upper)


def projected_gradient_descent(model: Callable, images: torch.Tensor, labels: torch.Tensor, epsilon: float, *,
                               steps: int = 10, step_size: float | None = None, random_start: bool = True,
                               model_input: Callable[[torch.Tensor], torch.Tensor] = Identity, lower: float = 0.0,
                               upper: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """PGD in the L-infinity ball of radius ``epsilon`` (module docstring): ``steps`` sign-gradient steps of
    ``step_size`` (default 2.5 epsilon / steps, Madry et al.), each followed by the projection onto the ball and
    onto [lower, upper]; ``random_start``: begin at a uniform point of the ball. Returns the perturbed images."""
    epsilon = _check_radius("epsilon", epsilon)
    random_start = as_flag("random_start", random_start)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    step_size = 2.5 * epsilon / steps if step_size is None else _check_radius("step_size", step_size)
    clean = images.detach()
    adversarial = clean
    if random_start and epsilon > 0:
        start = torch.rand(clean.shape, generator=generator, dtype=clean.dtype, device="cpu").to(clean.device)
        adversarial = (clean + epsilon * (2 * start - 1)).clamp(lower, upper)
    for _ in range(steps):
        gradient = _input_gradient(model, adversarial, labels, model_input)
        adversarial = adversarial + step_size * gradient.sign()
        adversarial = torch.minimum(torch.maximum(adversarial, clean - epsilon), clean + epsilon).clamp(lower, upper)
    return adversarial.detach()


def accuracy_under_perturbation(model: Callable, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                                perturb: Callable[[Callable, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                                *, model_input: Callable[[torch.Tensor], torch.Tensor] = Identity) -> float:
    """The fraction of images classified right after ``perturb(model, images, labels)`` (None: clean), over
    ``batches`` of (images in pixel units, labels)."""
    correct, count = 0, 0
    for images, labels in batches:
        perturbed = images if perturb is None else perturb(model, images, labels)
        with torch.no_grad():
            correct += int((model(model_input(perturbed)).argmax(dim=1) == labels).sum())
        count += int(labels.numel())
    if count == 0:
        raise ValueError("accuracy_under_perturbation needs at least one image")
    return correct / count
