"""rollout(..., compile=True): the same numbers and gradients as the eager path, one compilation per (f, scheme)
whatever dt and t0, and the same refusals. Chunks are shortened to 2 steps here: the laws do not depend on the
chunk length, and the compile time grows with it."""

from __future__ import annotations

import pytest
import torch

import dynlearn
from dynlearn.integration import NonFiniteStateError, compiled


@pytest.fixture(autouse=True)
def short_chunks(monkeypatch):
    monkeypatch.setattr(compiled, "CHUNK_STEPS", 2)


def _field():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)).double()

    def f(t, x):  # non-autonomous, so that the stage times matter
        return net(x) * torch.cos(t)

    return net, f


@pytest.mark.parametrize("scheme", ["rk4", "midpoint"])
def test_compiled_rollouts_and_their_gradients_equal_the_eager_ones_in_float64(scheme):
    net, f = _field()
    x0 = torch.randn(8, 2, dtype=torch.float64, requires_grad=True)
    for t0, dt, n_steps in ((0.3, 0.1, 7), (-1.0, 0.05, 8), (2.0, 0.2, 1), (0.0, 0.1, 0)):
        compiled_trajectory = dynlearn.rollout(f, x0, t0, dt, n_steps, scheme, compile=True)
        eager_trajectory = dynlearn.rollout(f, x0, t0, dt, n_steps, scheme)
        assert compiled_trajectory.shape == eager_trajectory.shape == (n_steps + 1, 8, 2)
        torch.testing.assert_close(compiled_trajectory, eager_trajectory, rtol=0, atol=1e-12)
        if n_steps:
            inputs = [x0, *net.parameters()]
            compiled_gradients = torch.autograd.grad(compiled_trajectory.square().sum(), inputs)
            eager_gradients = torch.autograd.grad(eager_trajectory.square().sum(), inputs)
            for ours, reference in zip(compiled_gradients, eager_gradients):
                torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-12)


def test_a_sweep_of_steps_and_schemes_compiles_once_per_scheme():
    """With torch's recompile limit lowered to 1 and made an error, rollouts at several dt and t0 (inputs of the
    compiled code, not constants) and in two schemes (each its own cache) all run compiled."""
    dynamo = pytest.importorskip("torch._dynamo")
    _, f = _field()
    x0 = torch.randn(4, 2, dtype=torch.float64)
    with dynamo.config.patch(recompile_limit=1, fail_on_recompile_limit_hit=True), torch.no_grad():
        for scheme in ("rk4", "heun"):
            for t0, dt in ((0.0, 0.1), (0.5, 0.01), (3.0, 0.37)):
                ours = dynlearn.rollout(f, x0, t0, dt, 5, scheme, compile=True)
                torch.testing.assert_close(ours, dynlearn.rollout(f, x0, t0, dt, 5, scheme), rtol=0, atol=1e-12)


def test_a_blow_up_is_reported_at_the_same_step_and_bad_combinations_are_refused():
    def f(t, x):
        return x * x

    x0 = torch.ones(3, dtype=torch.float64)
    with torch.no_grad():
        steps = []
        for compile in (False, True):
            with pytest.raises(NonFiniteStateError) as error:
                dynlearn.rollout(f, x0, 0.0, 0.5, 40, "euler", compile=compile)
            steps.append(error.value.step)
        assert steps[0] == steps[1]
        wild = dynlearn.rollout(f, x0, 0.0, 0.5, 40, "euler", compile=True, allow_nonfinite=True)
        assert wild.shape == (41, 3) and not torch.isfinite(wild[-1]).all()
    with pytest.raises(ValueError, match="cannot be combined"):
        dynlearn.rollout(f, x0, 0.0, 0.1, 4, compile=True, checkpoint_every=2)
