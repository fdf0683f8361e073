"""Input perturbations of a classifier: FGSM against a gradient computed by hand on a linear model, PGD's
constraints and its one-step case, Gaussian noise; the accuracy under them."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dynlearn.analysis.robustness import (accuracy_under_perturbation, fgsm, gaussian_noise,
                                          projected_gradient_descent)


def linear_classifier(seed: int = 0, features: int = 6, classes: int = 3) -> torch.nn.Linear:
    torch.manual_seed(seed)
    model = torch.nn.Linear(features, classes).double()
    return model.requires_grad_(False)


def hand_gradient(model: torch.nn.Linear, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """d/dx of sum_i CE(W x_i + b, y_i) = W^T (softmax(W x_i + b) - e_{y_i}), row by row."""
    logits = x @ model.weight.T + model.bias
    probabilities = torch.exp(logits - logits.logsumexp(dim=1, keepdim=True))
    one_hot = torch.nn.functional.one_hot(labels, model.out_features).double()
    return (probabilities - one_hot) @ model.weight


def test_fgsm_is_one_signed_step_of_the_hand_computed_gradient():
    model = linear_classifier()
    x = torch.rand(16, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(16) % 3
    epsilon = 0.05
    expected = (x + epsilon * hand_gradient(model, x, labels).sign()).clamp(0, 1)
    torch.testing.assert_close(fgsm(model, x, labels, epsilon), expected, rtol=0, atol=0)
    assert model.weight.grad is None  # the model's parameters are left alone


def test_fgsm_sees_the_gradient_through_the_models_input_transform():
    """With model_input(x) = (x - m) / s the gradient in pixel space is the model's gradient divided by s: its sign
    is unchanged for s > 0, and the step is taken in pixels."""
    model = linear_classifier(seed=3)
    x = torch.rand(8, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    mean, std = 0.4, 0.2
    attacked = fgsm(model, x, labels, 0.1, model_input=lambda p: (p - mean) / std)
    expected = (x + 0.1 * hand_gradient(model, (x - mean) / std, labels).sign()).clamp(0, 1)
    torch.testing.assert_close(attacked, expected, rtol=0, atol=0)


def test_pgd_with_one_full_step_and_no_random_start_is_fgsm():
    model = linear_classifier(seed=4)
    x = torch.rand(10, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    labels = torch.arange(10) % 3
    torch.testing.assert_close(projected_gradient_descent(model, x, labels, 0.07, steps=1, step_size=0.07,
                                                          random_start=False),
                               fgsm(model, x, labels, 0.07), rtol=0, atol=0)


@settings(max_examples=25, deadline=None)
@given(epsilon=st.floats(0.0, 0.5), steps=st.integers(1, 6), seed=st.integers(0, 1000))
def test_pgd_stays_in_the_ball_and_the_pixel_range(epsilon, steps, seed):
    model = linear_classifier(seed=seed % 7)
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(12, 6, dtype=torch.float64, generator=generator)
    labels = torch.randint(0, 3, (12,), generator=generator)
    adversarial = projected_gradient_descent(model, x, labels, epsilon, steps=steps, generator=generator)
    assert float((adversarial - x).abs().max()) <= epsilon + 1e-12
    assert float(adversarial.min()) >= 0.0 and float(adversarial.max()) <= 1.0


def test_pgd_raises_the_loss_at_least_as_much_as_a_random_point_of_the_ball():
    model = linear_classifier(seed=2)
    x = torch.rand(64, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    labels = torch.arange(64) % 3

    def loss(images):
        return float(torch.nn.functional.cross_entropy(model(images), labels, reduction="none").mean())

    adversarial = projected_gradient_descent(model, x, labels, 0.1, steps=10, generator=torch.Generator().manual_seed(1))
    random = (x + 0.1 * (2 * torch.rand(x.shape, dtype=torch.float64) - 1)).clamp(0, 1)
    assert loss(adversarial) > loss(random) > 0.0


def test_gaussian_noise_has_its_standard_deviation_and_sigma_zero_is_the_identity():
    x = torch.full((200, 50), 0.5, dtype=torch.float64)
    noisy = gaussian_noise(x, 0.05, generator=torch.Generator().manual_seed(0))
    assert abs(float((noisy - x).std()) - 0.05) < 0.002
    torch.testing.assert_close(gaussian_noise(x, 0.0), x)
    assert float(gaussian_noise(x, 10.0).max()) <= 1.0  # clipped to the pixel range


def test_accuracy_under_perturbation_counts_right_answers():
    model = linear_classifier(seed=6)
    x = torch.rand(30, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    labels = model(x).argmax(dim=1)  # the model is right on every clean image
    batches = [(x[:16], labels[:16]), (x[16:], labels[16:])]
    assert accuracy_under_perturbation(model, batches) == 1.0
    attacked = accuracy_under_perturbation(model, batches, lambda m, images, y: fgsm(m, images, y, 0.5))
    assert attacked < 1.0


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_bad_radii_are_refused_in_one_line(bad):
    model = linear_classifier()
    x, labels = torch.rand(2, 6, dtype=torch.float64), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="epsilon must be a finite number >= 0"):
        fgsm(model, x, labels, bad)
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0"):
        gaussian_noise(x, bad)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        projected_gradient_descent(model, x, labels, 0.1, steps=0)
