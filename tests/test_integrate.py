"""Fixed-step integration: agreement with scipy and torchdiffeq, time points, gradients, bad input."""

import math

import numpy as np
import pytest
import torch
import torchdiffeq
from hypothesis import given
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

from dynlearn import NonFiniteStateError, available_tableaus, rollout, step, time_grid

EXPLICIT = available_tableaus(explicit_only=True)


def forced_van_der_pol(t, x):
    """x'' - mu (1 - x^2) x' + x = A cos(omega t): nonlinear and non-autonomous, state (..., 2)."""
    position, velocity = x[..., 0], x[..., 1]
    acceleration = 1.5 * (1 - position**2) * velocity - position + 0.8 * torch.cos(1.3 * t)
    return torch.stack([velocity, acceleration], dim=-1)


def forced_van_der_pol_numpy(t, x):
    return [x[1], 1.5 * (1 - x[0] ** 2) * x[1] - x[0] + 0.8 * math.cos(1.3 * t)]


def small_mlp(dtype=torch.float64, width=8):
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Linear(2, width), torch.nn.Tanh(), torch.nn.Linear(width, 2)).to(dtype)


@pytest.mark.parametrize("scheme", ["rk4", "dopri5", "rk38"])
def test_rollout_agrees_with_solve_ivp_on_a_forced_nonlinear_oscillator(scheme):
    x0 = torch.tensor([[2.0, 0.0], [0.5, -1.0]], dtype=torch.float64)
    t_final, n_steps = 5.0, 2000
    trajectory = rollout(forced_van_der_pol, x0, 0.0, t_final / n_steps, n_steps, scheme)
    times = time_grid(0.0, t_final / n_steps, n_steps).numpy()
    for b in range(2):
        reference = solve_ivp(forced_van_der_pol_numpy, (0.0, t_final), x0[b].numpy(), method="DOP853",
                              rtol=1e-13, atol=1e-13, t_eval=times)
        assert reference.success
        np.testing.assert_allclose(trajectory[:, b].numpy(), reference.y.T, rtol=0, atol=2e-9)


@pytest.mark.parametrize(
    "ours, theirs", [("euler", "euler"), ("midpoint", "midpoint"), ("heun", "heun2"), ("heun3", "heun3"),
                     ("rk38", "rk4")]
)
def test_rollout_matches_torchdiffeq_fixed_grid_methods(ours, theirs):
    # torchdiffeq's "rk4" is Kutta's 3/8 rule: dynlearn's "rk38".
    x0 = torch.tensor([[2.0, 0.0], [0.5, -1.0]], dtype=torch.float64)
    dt, n_steps = 0.05, 100
    mine = rollout(forced_van_der_pol, x0, 0.3, dt, n_steps, ours)
    grid = time_grid(0.3, dt, n_steps)
    reference = torchdiffeq.odeint(forced_van_der_pol, x0, grid, method=theirs)
    torch.testing.assert_close(mine, reference, rtol=0, atol=1e-12)


def test_classic_rk4_is_not_the_three_eighths_rule():
    x0 = torch.tensor([2.0, 0.0], dtype=torch.float64)
    classic = rollout(forced_van_der_pol, x0, 0.0, 0.1, 50, "rk4")
    three_eighths = rollout(forced_van_der_pol, x0, 0.0, 0.1, 50, "rk38")
    assert (classic - three_eighths).abs().max() > 1e-6


def test_step_is_the_first_step_of_a_rollout_for_every_scheme():
    x0 = torch.randn(5, 2, dtype=torch.float64)
    for scheme in EXPLICIT:
        one = step(forced_van_der_pol, 0.7, x0, 0.01, scheme)
        torch.testing.assert_close(one, rollout(forced_van_der_pol, x0, 0.7, 0.01, 1, scheme)[1], rtol=0, atol=0)


def test_stage_times_are_computed_not_accumulated():
    seen = []

    def record(t, x):
        seen.append(t.item())
        return torch.zeros_like(x)

    t0, dt, n_steps = 0.1, 0.1, 3000
    rollout(record, torch.zeros(1, dtype=torch.float64), t0, dt, n_steps, "rk4")
    # classic RK4 evaluates at t0 + k dt + c_i dt with c = (0, 1/2, 1/2, 1)
    expected = [t0 + k * dt + c * dt for k in range(n_steps) for c in (0.0, 0.5, 0.5, 1.0)]
    assert seen == expected
    accumulated = t0
    for _ in range(n_steps):
        accumulated += dt
    assert accumulated != t0 + n_steps * dt  # what accumulating would have given: visibly off
    assert time_grid(t0, dt, n_steps)[-1].item() == t0 + n_steps * dt


@given(
    batch=st.lists(st.integers(1, 3), min_size=0, max_size=3),
    scheme=st.sampled_from(EXPLICIT),
    n_steps=st.integers(0, 5),
)
def test_any_batch_shape_gives_trajectory_of_shape_steps_plus_one(batch, scheme, n_steps):
    x0 = torch.randn(*batch, 2, dtype=torch.float64)
    trajectory = rollout(forced_van_der_pol, x0, 0.0, 0.1, n_steps, scheme)
    assert trajectory.shape == (n_steps + 1, *batch, 2)
    torch.testing.assert_close(trajectory[0], x0, rtol=0, atol=0)
    # the batch is independent: integrating one member alone gives the same numbers
    if batch:
        alone = rollout(forced_van_der_pol, x0.reshape(-1, 2)[:1], 0.0, 0.1, n_steps, scheme)
        torch.testing.assert_close(trajectory.reshape(n_steps + 1, -1, 2)[:, :1], alone, rtol=1e-15, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_is_kept_and_time_has_the_state_dtype(dtype):
    times = []

    def field(t, x):
        times.append(t)
        return -x

    trajectory = rollout(field, torch.ones(3, dtype=dtype), 0.0, 0.1, 4, "rk4")
    assert trajectory.dtype == dtype
    assert all(t.dtype == dtype and t.ndim == 0 for t in times)
    torch.testing.assert_close(trajectory[-1], torch.full((3,), math.exp(-0.4), dtype=dtype), rtol=1e-5, atol=0)


def test_complex_states_integrate_the_schrodinger_like_rotation():
    # dz/dt = i omega z has z(t) = exp(i omega t) z0.
    z0 = torch.tensor([1.0 + 0.0j, 0.5 - 0.5j], dtype=torch.complex128)
    trajectory = rollout(lambda t, z: 2.0j * z, z0, 0.0, 0.001, 1000, "rk4")
    torch.testing.assert_close(trajectory[-1], z0 * complex(math.cos(2.0), math.sin(2.0)), rtol=0, atol=1e-12)


@pytest.mark.gpu
def test_rollout_on_cuda_matches_cpu():
    net = small_mlp()
    x0 = torch.randn(64, 2, dtype=torch.float64)
    cpu = rollout(lambda t, x: net(x), x0, 0.0, 0.05, 40, "rk4")
    net_cuda = net.to("cuda")
    gpu = rollout(lambda t, x: net_cuda(x), x0.cuda(), 0.0, 0.05, 40, "rk4")
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-12, atol=1e-12)
    with torch.no_grad():
        graphed = rollout(lambda t, x: net_cuda(x), x0.cuda(), 0.0, 0.05, 40, "rk4", cuda_graph=True)
    torch.testing.assert_close(graphed.cpu(), cpu, rtol=1e-12, atol=1e-12)


def test_cuda_graph_option_fails_clearly_on_cpu():
    with torch.no_grad(), pytest.raises(ValueError, match="CUDA"):
        rollout(lambda t, x: -x, torch.ones(2), 0.0, 0.1, 3, cuda_graph=True)


@pytest.mark.parametrize("checkpoint_every", [None, 3])
def test_gradcheck_through_a_rollout(checkpoint_every):
    net = small_mlp(width=4)
    weight = net[0].weight

    def final_state(x0, w):
        def field(t, x):
            return torch.tanh(x @ w.T) @ net[2].weight.T + 0.1 * torch.sin(t)

        return rollout(field, x0, 0.0, 0.1, 7, "rk4", checkpoint_every=checkpoint_every)

    x0 = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    w = weight.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(final_state, (x0, w))


def test_checkpointing_gives_the_same_gradients_with_less_saved_memory():
    net = small_mlp(width=64)
    x0 = torch.randn(256, 2, dtype=torch.float64, requires_grad=True)

    def saved_bytes_and_gradients(checkpoint_every):
        saved = [0]

        def pack(tensor):
            saved[0] += tensor.numel() * tensor.element_size()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            trajectory = rollout(lambda t, x: net(x), x0, 0.0, 0.01, 200, "rk4", checkpoint_every=checkpoint_every)
        loss = trajectory.pow(2).mean()
        gradients = torch.autograd.grad(loss, [x0, *net.parameters()])
        return saved[0], gradients

    plain_bytes, plain_gradients = saved_bytes_and_gradients(None)
    checkpointed_bytes, checkpointed_gradients = saved_bytes_and_gradients(20)
    for plain, checkpointed in zip(plain_gradients, checkpointed_gradients):
        torch.testing.assert_close(checkpointed, plain, rtol=1e-12, atol=1e-14)
    assert checkpointed_bytes < plain_bytes / 10


# -- bad input fails before any work ----------------------------------------------------------------------


def counting_field():
    calls = [0]

    def field(t, x):
        calls[0] += 1
        return -x

    return field, calls


@pytest.mark.parametrize("dt", [0.0, -0.1, float("nan"), float("inf"), "0.1", True])
def test_bad_dt_is_refused_before_any_evaluation(dt):
    field, calls = counting_field()
    with pytest.raises((ValueError, TypeError), match="dt"):
        rollout(field, torch.ones(2), 0.0, dt, 10)
    with pytest.raises((ValueError, TypeError), match="dt"):
        step(field, 0.0, torch.ones(2), dt)
    assert calls[0] == 0


@pytest.mark.parametrize("n_steps", [-1, 2.5, True, "3"])
def test_bad_step_count_is_refused(n_steps):
    field, calls = counting_field()
    with pytest.raises((ValueError, TypeError), match="n_steps"):
        rollout(field, torch.ones(2), 0.0, 0.1, n_steps)
    assert calls[0] == 0


def test_bad_state_time_and_scheme_are_refused():
    field, calls = counting_field()
    with pytest.raises(TypeError, match="x0"):
        rollout(field, [1.0, 2.0], 0.0, 0.1, 3)
    with pytest.raises(TypeError, match="floating-point"):
        rollout(field, torch.ones(2, dtype=torch.int64), 0.0, 0.1, 3)
    with pytest.raises(ValueError, match="t0"):
        rollout(field, torch.ones(2), float("nan"), 0.1, 3)
    with pytest.raises(ValueError, match="unknown scheme 'rk44'"):
        rollout(field, torch.ones(2), 0.0, 0.1, 3, "rk44")
    with pytest.raises(ValueError, match="dt is used as a plain number"):
        rollout(field, torch.ones(2), 0.0, torch.tensor(0.1, requires_grad=True), 3)
    with pytest.raises(ValueError, match="checkpoint_every"):
        rollout(field, torch.ones(2), 0.0, 0.1, 3, checkpoint_every=0)
    # a truthy stand-in for a flag ("no" is truthy) is refused, not read as True
    for flag in ("compile", "cuda_graph", "allow_nonfinite"):
        with pytest.raises(ValueError, match=f"{flag} must be True or False, got str 'no'"):
            rollout(field, torch.ones(2), 0.0, 0.1, 3, **{flag: "no"})
    with pytest.raises(ValueError, match="compile must be True or False, got int 1"):
        rollout(field, torch.ones(2), 0.0, 0.1, 3, compile=1)
    assert calls[0] == 0


def test_a_time_grid_that_cannot_fit_and_an_embedded_loss_at_dt_0_are_refused_when_asked_for():
    from dynlearn import MLP, NeuralVectorField, embedded_loss, time_grid

    with pytest.raises(ValueError, match="time_grid: 1e\\+30 times needs about"):
        time_grid(0.0, 1e-300, 10**30)
    with pytest.raises(ValueError, match="dt must be a finite number > 0, got 0.0"):
        embedded_loss(NeuralVectorField(MLP(2, 2)), torch.ones(5, 2), torch.ones(5, 1, 2), 0.0)


def test_a_vector_field_of_the_wrong_shape_dtype_or_type_is_named():
    with pytest.raises(ValueError, match=r"f returned shape \(2,\) for a state of shape \(4, 2\)"):
        rollout(lambda t, x: x[0], torch.ones(4, 2), 0.0, 0.1, 3)
    with pytest.raises(ValueError, match="dtype"):
        rollout(lambda t, x: x.double(), torch.ones(4, 2), 0.0, 0.1, 3)
    with pytest.raises(TypeError, match="must return a torch.Tensor"):
        rollout(lambda t, x: 1.0, torch.ones(4, 2), 0.0, 0.1, 3)
    with pytest.raises(ValueError, match="shape"):
        step(lambda t, x: x.sum(-1), 0.0, torch.ones(4, 2), 0.1)


def test_a_blow_up_names_the_first_non_finite_step():
    # dx/dt = x^2, x(0) = 1 blows up at t = 1; forward Euler overflows a few hundred steps later.
    def field(t, x):
        return x * x

    x0 = torch.ones(3, dtype=torch.float64)
    with pytest.raises(NonFiniteStateError) as info:
        rollout(field, x0, 0.0, 0.05, 2000, "euler")
    trajectory = rollout(field, x0, 0.0, 0.05, 2000, "euler", allow_nonfinite=True)
    finite = torch.isfinite(trajectory).all(dim=1)
    first_bad = int((~finite).nonzero()[0, 0])
    assert info.value.step == first_bad
    assert f"after step {first_bad}" in str(info.value)
    assert bool(finite[:first_bad].all())


def test_nan_from_the_vector_field_is_caught_in_a_later_chunk():
    def field(t, x):
        return torch.where(t > 30.05, torch.full_like(x, float("nan")), -x)

    with pytest.raises(NonFiniteStateError) as info:
        rollout(field, torch.ones(2, dtype=torch.float64), 0.0, 0.1, 1000, "euler")
    # the Euler step from t_k = 0.1 k evaluates f at t_k: the first NaN derivative comes at k = 301, so
    # trajectory[302] is the first non-finite state, in the second chunk of 256 steps
    assert info.value.step == 302
