"""A step size per batch element (irregularly sampled data): step, rollout, EmbeddedModel, embedded_loss and the
ensemble loss give, for every element, what a scalar call with that element's own dt gives (to round-off)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dynlearn import available_tableaus, rollout, step
from dynlearn.fields import MLP, EmbeddedModel, NeuralVectorField, embedded_loss
from dynlearn.fields.ensemble import EnsembleMLP, ensemble_embedded_loss
from dynlearn.integration.tableaus import get_tableau

EXPLICIT = [name for name in available_tableaus() if get_tableau(name).is_explicit]
OPERATOR = torch.tensor([[0.0, 1.0], [-4.0, -0.3]], dtype=torch.float64)


def _linear(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return x @ OPERATOR.T


def _forced(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A time-dependent field: with a dt per element, t is (batch,), one stage time per element."""
    forcing = torch.cos(3.0 * t).reshape(*t.shape, *[1] * (x.ndim - 1 - t.ndim))  # (batch, 1, ...) or (1, ...)
    return x @ OPERATOR.T + torch.stack([torch.zeros_like(forcing), forcing], dim=-1).expand_as(x)


@settings(max_examples=30, deadline=None)
@given(scheme=st.sampled_from(EXPLICIT), steps=st.lists(st.floats(1e-3, 0.5), min_size=1, max_size=6),
       t=st.floats(-5.0, 5.0), seed=st.integers(0, 2**16))
def test_step_with_a_dt_per_element_is_each_element_stepped_alone(scheme, steps, t, seed):
    x = torch.randn(len(steps), 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    dt = torch.tensor(steps, dtype=torch.float64)
    together = step(_forced, t, x, dt, scheme)
    for b, size in enumerate(steps):
        alone = step(_forced, t, x[b:b + 1], size, scheme)[0]
        torch.testing.assert_close(together[b], alone, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("scheme", ["euler", "midpoint", "rk4", "dopri5"])
def test_rollout_with_a_dt_per_element_is_each_element_on_its_own_grid(scheme):
    x0 = torch.randn(4, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    dt = torch.tensor([0.01, 0.05, 0.1, 0.2], dtype=torch.float64)
    together = rollout(_forced, x0, 0.7, dt, 40, scheme)
    assert together.shape == (41, 4, 3, 2)
    for b in range(4):
        alone = rollout(_forced, x0[b], 0.7, float(dt[b]), 40, scheme)
        torch.testing.assert_close(together[:, b], alone, rtol=1e-13, atol=1e-13)


def test_rollout_with_a_dt_per_element_converges_at_the_order_of_the_scheme():
    """Each element's error at T = 1 against exp(T A) x0 falls as dt^p, p the scheme's order."""
    x0 = torch.tensor([[1.0, 0.0]] * 4, dtype=torch.float64)
    exact = x0[0] @ torch.linalg.matrix_exp(OPERATOR).T
    for scheme, order in (("euler", 1), ("midpoint", 2), ("rk4", 4)):
        n = torch.tensor([50, 100, 200, 400])
        trajectory = None
        errors = []
        for count in n.tolist():  # element b takes steps of 1/n_b; run each n with one batched call
            dt = torch.full((4,), 1.0 / count, dtype=torch.float64)
            trajectory = rollout(_linear, x0, 0.0, dt, count, scheme)
            errors.append(float(torch.linalg.vector_norm(trajectory[-1, 0] - exact)))
        slope = (math.log(errors[0]) - math.log(errors[-1])) / math.log(n[-1] / n[0])
        assert abs(slope - order) < 0.1, (scheme, slope)
        # and one call with four different steps ends each element where its own uniform run ends
        dt = 1.0 / n.to(torch.float64)
        mixed = rollout(_linear, x0, 0.0, dt, 50, scheme)
        for b in range(4):
            torch.testing.assert_close(mixed[-1, b], rollout(_linear, x0[b], 0.0, float(dt[b]), 50, scheme)[-1])


def test_gradients_flow_to_the_field_and_to_dt():
    torch.manual_seed(0)
    model = EmbeddedModel(NeuralVectorField(MLP(2, 2, 8).double()), "rk4", 0.1)
    x = torch.randn(5, 2, dtype=torch.float64)
    dt = torch.rand(5, dtype=torch.float64).mul(0.2).add(0.01).requires_grad_()
    model(x, dt).square().sum().backward()
    assert dt.grad is not None and bool(torch.isfinite(dt.grad).all())
    # d/d(dt) of the Euler step x + dt G(x) is G(x)
    dt.grad = None
    euler = EmbeddedModel(model.vector_field, "euler", 0.1)
    euler(x, dt).sum().backward()
    with torch.no_grad():
        torch.testing.assert_close(dt.grad, model.vector_field(None, x).sum(dim=1))


def test_embedded_model_and_losses_take_a_dt_per_sample():
    torch.manual_seed(2)
    field = NeuralVectorField(MLP(2, 2, 8).double())
    model = EmbeddedModel(field, "midpoint", 0.1)
    starts = torch.randn(6, 2, dtype=torch.float64)
    dt = torch.linspace(0.05, 0.15, 6, dtype=torch.float64)
    with torch.no_grad():
        targets = model(starts, dt)[:, None] + 0.01
        together = embedded_loss(field, starts, targets, dt, ("midpoint", "rk4"))(None)
        alone = sum(embedded_loss(field, starts[n:n + 1], targets[n:n + 1], float(dt[n]), ("midpoint", "rk4"))(None)
                    for n in range(6)) / 6
        torch.testing.assert_close(together, alone)
        assert model.rollout(starts, 3, dt).shape == (4, 6, 2)
        # (N, S): a step of its own before each target, as a window of irregular samples needs
        windows = torch.stack([model(starts, dt), model(model(starts, dt), 2 * dt)], dim=1)
        per_step = torch.stack([dt, 2 * dt], dim=1)
        assert float(embedded_loss(field, starts, windows, per_step, ("midpoint",))(None)) < 1e-28
        index = torch.tensor([4, 1])
        torch.testing.assert_close(embedded_loss(field, starts, targets, dt)(index),
                                   embedded_loss(field, starts[index], targets[index], dt[index])(None))


def test_ensemble_loss_with_a_dt_per_pair_is_each_member_alone():
    torch.manual_seed(3)
    networks = [MLP(2, 2, 8).double() for _ in range(2)]
    ensemble = EnsembleMLP.from_networks(networks)
    starts = torch.randn(2, 5, 2, dtype=torch.float64)
    successors = torch.randn(2, 5, 2, dtype=torch.float64)
    dts = torch.rand(2, 5, dtype=torch.float64).mul(0.1).add(0.05)
    with torch.no_grad():
        losses = ensemble_embedded_loss(ensemble, starts, successors, dts, ("rk4", "euler"))(None)
        index = torch.tensor([[0, 3, 4], [2, -1, -1]])
        batch = ensemble_embedded_loss(ensemble, starts, successors, dts, ("rk4",))(index)
        for m, network in enumerate(networks):
            alone = embedded_loss(NeuralVectorField(network), starts[m], successors[m][:, None], dts[m],
                                  ("rk4", "euler"))(None)
            torch.testing.assert_close(losses[m], alone)
        rows = index[0]
        torch.testing.assert_close(batch[0], embedded_loss(NeuralVectorField(networks[0]), starts[0, rows],
                                                           successors[0, rows][:, None], dts[0, rows])(None))


@pytest.mark.parametrize("dt, message", [
    (torch.tensor([0.1, 0.2]), "shape (batch,) = (3,)"),
    (torch.tensor([0.1, -0.2, 0.1]), "finite step sizes > 0"),
    (torch.tensor([0.1, float("nan"), 0.1]), "finite step sizes > 0"),
    (torch.tensor([[0.1, 0.1, 0.1]]), "shape (batch,)"),
    (torch.tensor([1, 2, 3]), "real floating-point"),
])
def test_a_bad_dt_per_element_is_refused_in_one_line(dt, message):
    x = torch.zeros(3, 2, dtype=torch.float64)
    for call in (lambda: step(_linear, 0.0, x, dt), lambda: rollout(_linear, x, 0.0, dt, 2)):
        with pytest.raises(ValueError, match="dt must") as caught:
            call()
        assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_dt_per_element_is_not_combined_with_the_fast_paths():
    x = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="runs eagerly"):
        rollout(_linear, x, 0.0, torch.full((3,), 0.1, dtype=torch.float64), 4, compile=True)
