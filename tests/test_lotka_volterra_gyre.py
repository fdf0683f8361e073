"""Lotka-Volterra and the double gyre: the references keep each system's invariants (V; psi when steady; area),
the period by quadrature is the reference's return time, and the fields have the structure they should."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dynlearn.datasets import generate_dataset
from dynlearn.systems import DoubleGyre, LotkaVolterra, make_system

LV = LotkaVolterra()
GYRE = DoubleGyre()


@settings(max_examples=6, deadline=None)
@given(s=st.floats(0.3, 2.5), r=st.floats(0.3, 2.5))
def test_the_reference_keeps_the_invariant_and_returns_after_the_quadrature_period(s, r):
    x0 = torch.tensor([s * LV.fixed_point[0], r * LV.fixed_point[1]], dtype=torch.float64)
    period = LV.period(x0)
    times = torch.linspace(0.0, 3 * period, 61, dtype=torch.float64)
    path = LV.numerical_solution(x0, times)
    drift = (LV.invariant(path) - LV.invariant(x0)).abs().max()
    assert float(drift) < 1e-10 * max(1.0, abs(float(LV.invariant(x0))))
    returned = LV.numerical_solution(x0, torch.tensor([period, 2 * period], dtype=torch.float64))
    # an error dT in the period would leave the state |f(x0)| dT away from where it started
    assert float((returned - x0).abs().max()) < 1e-8 * (1.0 + float(LV.vector_field(None, x0).abs().max()))


def test_small_orbits_have_the_linearised_period_and_large_ones_are_slower():
    near = torch.tensor([LV.fixed_point[0] * 1.001, LV.fixed_point[1]], dtype=torch.float64)
    assert LV.period(near) == pytest.approx(LV.small_amplitude_period, rel=1e-5)
    assert LV.period(torch.tensor(LV.fixed_point, dtype=torch.float64)) == LV.small_amplitude_period
    periods = [LV.period(torch.tensor([LV.fixed_point[0] * s, LV.fixed_point[1]], dtype=torch.float64))
               for s in (1.2, 1.6, 2.4, 4.0)]
    assert all(a < b for a, b in zip(periods, periods[1:]))


def test_lotka_volterra_structure_and_data():
    fixed = torch.tensor(LV.fixed_point, dtype=torch.float64)
    assert float(LV.vector_field(None, fixed).abs().max()) < 1e-15
    assert float(LV.invariant(fixed)) < float(LV.invariant(fixed * 1.1))  # V is smallest at the fixed point
    dataset = generate_dataset(LV, dt=0.1, t_final=20.0, n_trajectories=4, seed=3)
    assert dataset.generator["kind"] == "numerical" and bool((dataset.states > 0).all())
    assert set(dataset.trajectory_parameters) == {"invariant", "period"}
    drift = (LV.invariant(dataset.states) - dataset.trajectory_parameters["invariant"][:, None]).abs().max()
    assert float(drift) < 1e-10
    with pytest.raises(ValueError, match="populations must be finite and > 0"):
        LV.period(torch.tensor([-1.0, 1.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="alpha"):
        make_system("lotka-volterra", alpha=0.0)


def _divergence(t: float, points: torch.Tensor) -> torch.Tensor:
    points = points.clone().requires_grad_()
    velocity = GYRE.vector_field(torch.tensor(t, dtype=torch.float64), points)
    du = torch.autograd.grad(velocity[..., 0].sum(), points, retain_graph=True)[0][..., 0]
    dv = torch.autograd.grad(velocity[..., 1].sum(), points)[0][..., 1]
    return du + dv


def test_the_double_gyre_is_incompressible_and_closed():
    generator = torch.Generator().manual_seed(0)
    points = GYRE.sample_initial_conditions(200, generator)
    for t in (0.0, 1.3, 7.9):
        assert float(_divergence(t, points).abs().max()) < 1e-14
        side = torch.linspace(0.0, 1.0, 11, dtype=torch.float64)
        left_right = torch.stack([torch.cat([torch.zeros(11), torch.full((11,), 2.0)]).double(),
                                  torch.cat([side, side])], dim=-1)
        bottom_top = torch.stack([torch.cat([2 * side, 2 * side]),
                                  torch.cat([torch.zeros(11), torch.ones(11)]).double()], dim=-1)
        assert float(GYRE.vector_field(torch.tensor(t), left_right)[:, 0].abs().max()) < 1e-15
        assert float(GYRE.vector_field(torch.tensor(t), bottom_top)[:, 1].abs().max()) < 1e-15


def test_double_gyre_paths_preserve_area_stay_inside_and_keep_psi_when_steady():
    times = torch.tensor([5.0, 10.0, 20.0], dtype=torch.float64)
    start = torch.tensor([[0.3, 0.4], [1.2, 0.7], [1.9, 0.1]], dtype=torch.float64)
    paths = GYRE.numerical_solution(start, times)
    assert bool(((paths[..., 0] >= 0) & (paths[..., 0] <= 2) & (paths[..., 1] >= 0) & (paths[..., 1] <= 1)).all())
    # the flow map's Jacobian has determinant 1 (central differences of the reference)
    h = 1e-5
    shifted = torch.stack([start + h * torch.tensor([1.0, 0.0]), start - h * torch.tensor([1.0, 0.0]),
                           start + h * torch.tensor([0.0, 1.0]), start - h * torch.tensor([0.0, 1.0])]).double()
    ends = GYRE.numerical_solution(shifted.reshape(-1, 2), times[:1]).reshape(4, 3, 2)
    dx, dy = (ends[0] - ends[1]) / (2 * h), (ends[2] - ends[3]) / (2 * h)
    determinant = dx[:, 0] * dy[:, 1] - dx[:, 1] * dy[:, 0]
    torch.testing.assert_close(determinant, torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-6)
    steady = DoubleGyre(epsilon=0.0)
    path = steady.numerical_solution(start, torch.linspace(0.0, 20.0, 41, dtype=torch.float64))
    assert float((steady.stream_function(0.0, path) - steady.stream_function(0.0, start)).abs().max()) < 1e-11


def test_a_time_per_element_is_each_element_at_its_own_time():
    points = GYRE.sample_initial_conditions(5, torch.Generator().manual_seed(1))
    times = torch.tensor([0.0, 1.0, 2.5, 5.0, 9.0], dtype=torch.float64)
    together = GYRE.vector_field(times, points)
    for b in range(5):
        torch.testing.assert_close(together[b], GYRE.vector_field(times[b], points[b]))
    stacked = GYRE.vector_field(times, points[:, None].expand(5, 3, 2))  # (batch,) times over further axes
    torch.testing.assert_close(stacked[:, 1], together)
    with pytest.raises(ValueError, match="epsilon must lie in"):
        DoubleGyre(epsilon=0.5)
    assert math.isclose(GYRE.omega, 2 * math.pi / 10)


def test_non_autonomous_fields_step_from_each_samples_own_time():
    """A start time per element is each element stepped alone from its time; the loss of the true gyre field on
    exact pairs is the scheme's local error only when each pair starts at its own time."""
    from dynlearn import rollout, step
    from dynlearn.fields import embedded_loss

    points = GYRE.sample_initial_conditions(4, torch.Generator().manual_seed(2))
    starts = torch.tensor([0.0, 2.5, 5.0, 7.5], dtype=torch.float64)
    together = rollout(GYRE, points, starts, 0.1, 5, "rk4")
    for b in range(4):
        torch.testing.assert_close(together[:, b], rollout(GYRE, points[b], float(starts[b]), 0.1, 5, "rk4"),
                                   rtol=1e-14, atol=1e-15)
        torch.testing.assert_close(step(GYRE, starts, points, 0.1, "midpoint")[b],
                                   step(GYRE, float(starts[b]), points[b], 0.1, "midpoint"), rtol=1e-14, atol=1e-15)
    times = torch.arange(41, dtype=torch.float64) * 0.25
    path = GYRE.numerical_solution(points[0], times)
    exact_pairs = embedded_loss(GYRE, path[:-1], path[1:, None], 0.25, ("rk4",), start_times=times[:-1])(None)
    all_at_zero = embedded_loss(GYRE, path[:-1], path[1:, None], 0.25, ("rk4",))(None)
    assert float(exact_pairs) < 1e-11 and float(all_at_zero) > 1e6 * float(exact_pairs)  # 3e-12 against 2e-4
    with pytest.raises(ValueError, match="start_times must be a tensor of shape"):
        embedded_loss(GYRE, path[:-1], path[1:, None], 0.25, start_times=times)


def test_a_time_dependent_field_is_periodic_in_its_periods_and_broadcasts():
    from dynlearn.fields import MLP, TimeDependentVectorField

    torch.manual_seed(0)
    field = TimeDependentVectorField(MLP(4, 2, 8).double(), periods=(10.0,))
    x = torch.rand(6, 2, dtype=torch.float64)
    t = torch.linspace(0.0, 9.0, 6, dtype=torch.float64)
    torch.testing.assert_close(field(t, x), field(t + 10.0, x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(field(t, x)[2], field(t[2], x[2]))
    assert field(torch.tensor(1.0), torch.rand(3, 5, 2, dtype=torch.float64)).shape == (3, 5, 2)
    plain = TimeDependentVectorField(MLP(3, 2, 8).double())
    assert plain.time_features == 1 and plain(t, x).shape == (6, 2)


def test_the_study_runs_on_lotka_volterra_and_the_non_autonomous_gyre(tmp_path):
    import dataclasses

    from dynlearn.analysis.experiments.learned_integrators import LEARNED_INTEGRATOR_RECIPES, run_learned_integrators

    gyre = dataclasses.replace(LEARNED_INTEGRATOR_RECIPES["double-gyre"], training_time=4.0, t_final=1.0,
                               iterations=100, training_schemes=(("rk4",),))
    outcome = run_learned_integrators(gyre, tmp_path / "gyre", progress=False)
    assert "mlp rk4" in outcome.study.models and "mlp rk4" in outcome.histories
    assert outcome.baselines == [] and outcome.reconstruction == []  # a map has no time; no linear model
    assert outcome.study.dts and max(outcome.study.dts) > 0.1 > min(outcome.study.dts)
    with pytest.raises(ValueError, match="non-autonomous"):
        run_learned_integrators(dataclasses.replace(gyre, networks=("linear",)), progress=False)
    lotka = dataclasses.replace(LEARNED_INTEGRATOR_RECIPES["lotka-volterra"], training_time=4.0, t_final=1.0,
                                iterations=100, training_schemes=(("euler",),))
    outcome = run_learned_integrators(lotka, tmp_path / "lotka", progress=False)
    assert "mlp euler" in outcome.histories and (tmp_path / "lotka" / "report.md").exists()
