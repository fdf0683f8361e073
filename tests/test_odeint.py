"""The torchdiffeq bridge: adaptive solves, adjoint gradients, and refusal of fixed-step names."""

import math

import pytest
import torch

from dynlearn import odeint, rollout
from dynlearn.systems import LinearSystem, harmonic_oscillator_matrix


@pytest.mark.parametrize("method", ["dopri5", "dopri8", "bosh3"])
def test_adaptive_solution_meets_its_tolerance_on_the_oscillator(method):
    system = LinearSystem(harmonic_oscillator_matrix(3.0, 0.1))
    x0 = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    times = torch.linspace(0.0, 5.0, 11, dtype=torch.float64)
    solution = odeint(system, x0, times, method=method, rtol=1e-10, atol=1e-12)
    assert solution.shape == (11, 2, 2)
    torch.testing.assert_close(solution, system.solution(x0, times), rtol=0, atol=1e-8)


def test_outputs_between_steps_would_miss_the_tolerance_without_stepping_to_them():
    # torchdiffeq's dopri8 interpolant is of low order: interpolated outputs miss rtol by orders of magnitude.
    system = LinearSystem(harmonic_oscillator_matrix(3.0, 0.1))
    x0 = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    times = torch.linspace(0.0, 5.0, 11, dtype=torch.float64)
    exact = system.solution(x0, times)
    stepped = odeint(system, x0, times, method="dopri8", rtol=1e-10, atol=1e-12)
    interpolated = odeint(system, x0, times, method="dopri8", rtol=1e-10, atol=1e-12, step_to_output_times=False)
    assert (stepped - exact).abs().max() < 1e-9 < (interpolated - exact).abs().max()


def test_adjoint_gradients_equal_direct_gradients():
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)).double()
    x0 = torch.randn(4, 2, dtype=torch.float64)
    times = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)

    def gradients(adjoint):
        net.zero_grad()
        trajectory = odeint(lambda t, x: net(x), x0, times, adjoint=adjoint, adjoint_params=tuple(net.parameters())
                            if adjoint else None, rtol=1e-10, atol=1e-12)
        trajectory.pow(2).sum().backward()
        return [p.grad.clone() for p in net.parameters()]

    for direct, adjoint in zip(gradients(False), gradients(True)):
        torch.testing.assert_close(adjoint, direct, rtol=1e-6, atol=1e-8)


def test_adjoint_accepts_a_module_and_uses_its_parameters():
    class Field(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rate = torch.nn.Parameter(torch.tensor(-0.7, dtype=torch.float64))

        def forward(self, t, x):
            return self.rate * x

    field = Field()
    x0 = torch.tensor([2.0], dtype=torch.float64)
    final = odeint(field, x0, [0.0, 1.0], adjoint=True, rtol=1e-10, atol=1e-12)[-1]
    final.sum().backward()
    # x(1) = 2 exp(rate): d/drate = 2 exp(rate)
    assert field.rate.grad.item() == pytest.approx(2 * math.exp(-0.7), rel=1e-7)


def test_adaptive_and_fixed_step_agree():
    system = LinearSystem(harmonic_oscillator_matrix(1.0))
    x0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    adaptive = odeint(system, x0, [0.0, 2.0], rtol=1e-12, atol=1e-12)[-1]
    fixed = rollout(system, x0, 0.0, 0.002, 1000, "rk4")[-1]
    torch.testing.assert_close(adaptive, fixed, rtol=0, atol=1e-10)


@pytest.mark.parametrize("method", ["rk4", "rk38", "euler", "heun2"])
def test_fixed_step_methods_are_sent_to_rollout(method):
    with pytest.raises(ValueError, match="fixed-step"):
        odeint(lambda t, x: -x, torch.ones(2), [0.0, 1.0], method=method)


@pytest.mark.parametrize(
    "times, message",
    [([0.0], "at least two"), ([0.0, 1.0, 0.5], "strictly"), ([0.0, float("nan")], "finite"),
     ([[0.0, 1.0]], "1-D")],
)
def test_bad_times_are_refused(times, message):
    with pytest.raises(ValueError, match=message):
        odeint(lambda t, x: -x, torch.ones(2), times)


def test_other_bad_input_is_refused():
    with pytest.raises(ValueError, match="not an adaptive"):
        odeint(lambda t, x: -x, torch.ones(2), [0.0, 1.0], method="magic")
    with pytest.raises(ValueError, match="rtol"):
        odeint(lambda t, x: -x, torch.ones(2), [0.0, 1.0], rtol=0.0)
    with pytest.raises(ValueError, match="x0 must be finite"):
        odeint(lambda t, x: -x, torch.tensor([float("nan")]), [0.0, 1.0])
    with pytest.raises(ValueError, match="adjoint_params"):
        odeint(lambda t, x: -x, torch.ones(2), [0.0, 1.0], adjoint_params=())
    for flag in ("adjoint", "step_to_output_times"):
        with pytest.raises(ValueError, match=f"{flag} must be True or False, got str 'no'"):
            odeint(lambda t, x: -x, torch.ones(2), [0.0, 1.0], **{flag: "no"})
