"""Convergence-rate fitting and the convergence test: observed orders of every scheme against theory."""

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dynlearn import available_tableaus, get_tableau, rollout
from dynlearn.analysis import convergence_test, fit_convergence_rate
from dynlearn.analysis.testing import stable_matrices
from dynlearn.systems import LinearSystem, harmonic_oscillator_matrix

EXPLICIT = available_tableaus(explicit_only=True)


def ladder_for(order: int) -> list[int]:
    """Step counts on [0, 1] that keep a method of this order in its asymptotic range and above round-off
    for eigenvalues of magnitude 0.5..2 (measured over 300 random systems: the worst observed order is within
    0.04 of theory for orders 1-2, 0.07 for 3, 0.09 for 4, 0.13 for 5). Fifth order has a narrow window in
    float64 between its pre-asymptotic range and round-off, hence the sqrt(2)-spaced rungs."""
    ladders = {1: [16, 32, 64, 128, 256], 2: [16, 32, 64, 128, 256], 3: [8, 16, 32, 64, 128], 4: [8, 16, 32, 64]}
    return ladders.get(order, [12, 17, 24, 34, 48, 68])


# -- fit_convergence_rate -----------------------------------------------------------------------------------


@given(
    rate=st.floats(0.5, 6.0),
    constant=st.floats(1e-3, 1e3),
    dts=st.lists(st.floats(1e-3, 0.5), min_size=3, max_size=8, unique=True).filter(
        lambda values: max(values) / min(values) > 4
    ),
)
def test_exact_power_laws_are_fitted_exactly(rate, constant, dts):
    errors = [constant * dt**rate for dt in dts]
    fitted = fit_convergence_rate(dts, errors, detect_floor=False)
    assert fitted.rate == pytest.approx(rate, abs=1e-9)
    assert fitted.constant == pytest.approx(constant, rel=1e-8)
    assert fitted.standard_error < 1e-8
    assert all(fitted.used)


def test_confidence_interval_covers_the_true_rate_at_about_its_level():
    generator = np.random.default_rng(12345)
    dts = 0.2 / 2.0 ** np.arange(6)
    covered = 0
    trials = 400
    for _ in range(trials):
        errors = 3.0 * dts**2 * np.exp(0.05 * generator.standard_normal(dts.size))
        low, high = fit_convergence_rate(dts, errors, detect_floor=False, confidence=0.9).confidence_interval
        covered += low <= 2.0 <= high
    assert 0.85 <= covered / trials <= 0.95  # nominal 0.90; binomial sd at 400 trials is 0.015


def test_round_off_floor_is_detected_and_dropped():
    dts = 0.1 / 2.0 ** np.arange(10)
    errors = 1e-2 * dts**4 + 1e-14 * (1 + 0.3 * np.sin(np.arange(10)))  # a floor near 1e-14
    naive = fit_convergence_rate(dts, errors, detect_floor=False)
    fitted = fit_convergence_rate(dts, errors)
    assert naive.rate < 3.5  # the floor spoils a plain fit
    assert fitted.rate == pytest.approx(4.0, abs=0.1)
    assert not fitted.used[-1] and "floor" in fitted.dropped[-1]
    assert fitted.used[0]


def test_explicit_floor_window_and_bad_points_are_reported():
    dts = np.array([0.4, 0.2, 0.1, 0.05, 0.025])
    errors = np.array([np.nan, 0.04, 0.01, np.inf, 0.0])
    fitted = fit_convergence_rate(dts, errors, min_points=2)
    assert fitted.rate == pytest.approx(2.0)
    assert "not finite" in fitted.dropped[0] and "not finite" in fitted.dropped[3] and "zero" in fitted.dropped[4]
    assert math.isnan(fitted.standard_error)  # two points: no residual degrees of freedom
    windowed = fit_convergence_rate([1, 0.5, 0.25, 0.125], [1, 0.25, 0.0625, 0.015625], window=(0.1, 0.6))
    assert windowed.used == (False, True, True, True) and "window" in windowed.dropped[0]
    floored = fit_convergence_rate([1, 0.5, 0.25, 0.125], [1, 0.25, 0.0625, 0.015625], floor=0.05, min_points=2)
    assert floored.used == (True, True, True, False)
    with pytest.raises(ValueError, match="only 1 usable points"):
        fit_convergence_rate([0.1, 0.05, 0.025], [np.nan, 0.0, 1e-3])


@pytest.mark.parametrize(
    "dts, errors, message",
    [
        ([0.1, 0.05], [1e-2], "same length"),
        ([0.1, -0.05, 0.01], [1, 1, 1], "finite and > 0"),
        ([0.1, 0.1, 0.01], [1, 1, 1], "distinct"),
        ([[0.1, 0.05]], [[1, 1]], "one-dimensional"),
    ],
)
def test_fit_refuses_bad_input(dts, errors, message):
    with pytest.raises(ValueError, match=message):
        fit_convergence_rate(dts, errors)


# -- the convergence test: observed orders -------------------------------------------------------------------


@pytest.mark.parametrize("scheme", EXPLICIT)
@settings(max_examples=8)
@given(matrix=stable_matrices())
def test_observed_order_on_random_stable_linear_systems(scheme, matrix):
    system = LinearSystem(matrix)
    x0 = torch.eye(system.dimension, dtype=torch.float64)  # every direction: no vanishing leading term
    order = get_tableau(scheme).order
    result = convergence_test(
        system, x0, 1.0, reference=lambda t: system.solution(x0, t), schemes=[scheme], n_steps=ladder_for(order)
    )
    result.assert_orders(tolerance=0.2)
    low, high = result.rate(scheme).confidence_interval
    assert high - low < 0.5  # a fit that says something


@settings(max_examples=10)
@given(
    frequency=st.floats(0.5, 4.0),
    damping=st.sampled_from([0.0, 0.05, 0.3]),
    angle=st.floats(0.0, 2 * math.pi),
)
def test_observed_orders_on_the_harmonic_oscillator(frequency, damping, angle):
    system = LinearSystem(harmonic_oscillator_matrix(frequency, damping))
    x0 = torch.tensor([math.cos(angle), frequency * math.sin(angle)], dtype=torch.float64)
    t_final = 2.0

    def energy_norm(difference):
        # sqrt(omega^2 u^2 + u'^2): the oscillator's natural norm. In the plain 2-norm the error ellipse is
        # eccentric (u' is omega times larger than u), and its size at T then swings with the phase error,
        # which blurs the observed order of high-order schemes at coarse steps.
        return torch.sqrt((frequency * difference[..., 0]) ** 2 + difference[..., 1] ** 2)

    for scheme in EXPLICIT:
        order = get_tableau(scheme).order
        # omega * dt on the range ladder_for gives on [0, 1] for magnitudes up to 2
        n_steps = [math.ceil(frequency * t_final / 2) * n for n in ladder_for(order)]
        result = convergence_test(
            system, x0, t_final, reference=lambda t: system.solution(x0, t), schemes=[scheme], n_steps=n_steps,
            norm=energy_norm,
        )
        result.assert_orders(tolerance=0.2)


def test_rms_error_and_trajectory_reference_give_the_same_orders():
    system = LinearSystem(harmonic_oscillator_matrix(2.0))
    x0 = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    fine = 1024
    exact_trajectory = system.solution(x0, torch.arange(fine + 1, dtype=torch.float64) * (1.0 / fine))
    by_callable = convergence_test(system, x0, 1.0, reference=lambda t: system.solution(x0, t),
                                   schemes=["euler", "midpoint", "rk3", "rk4"], n_steps=[16, 32, 64, 128], error="rms")
    by_trajectory = convergence_test(system, x0, 1.0, reference=exact_trajectory,
                                     schemes=["euler", "midpoint", "rk3", "rk4"], n_steps=[16, 32, 64, 128], error="rms")
    by_callable.assert_orders()
    for scheme in by_callable.schemes:
        np.testing.assert_allclose(by_trajectory.errors[scheme], by_callable.errors[scheme], rtol=1e-8)


def test_rollouts_finer_than_a_sampled_reference_are_judged_at_its_samples():
    # Recorded data: the exact trajectory at 8 samples over [0, 1]. Rungs of 2 and 4 steps are compared at
    # all their steps, rungs of 8..256 at the 8 samples; the orders still come out, and every error equals
    # the RMS over exactly those times computed by hand.
    system = LinearSystem(harmonic_oscillator_matrix(2.0))
    x0 = torch.tensor([1.0, 0.5], dtype=torch.float64)
    samples = system.solution(x0, torch.arange(9, dtype=torch.float64) / 8)
    counts = [2, 4, 8, 16, 32, 64, 128, 256]
    result = convergence_test(system, x0, 1.0, reference=samples, schemes=["euler", "midpoint", "rk4"],
                              n_steps=counts, error="rms", window=(1 / 128, 1 / 16))
    result.assert_orders(tolerance=0.1)
    for scheme in result.schemes:
        for count, error in zip(counts, result.errors[scheme]):
            trajectory = rollout(system, x0, 0.0, 1.0 / count, count, scheme)
            shared = torch.arange(0, count + 1, max(count // 8, 1))
            exact = system.solution(x0, shared.to(torch.float64) / count)
            expected = torch.linalg.vector_norm(trajectory[shared][1:] - exact[1:], dim=1).pow(2).mean().sqrt()
            assert error == pytest.approx(float(expected), rel=1e-12)
    final = convergence_test(system, x0, 1.0, reference=samples, schemes=["rk4"], n_steps=[16, 32, 64])
    final.assert_orders(tolerance=0.1)


@settings(max_examples=20, deadline=None)
@given(matrix=stable_matrices(min_dimension=3, max_dimension=3), samples=st.sampled_from([4, 8, 16]))
def test_observed_orders_against_sampled_data_of_random_stable_systems(matrix, samples):
    # The exact solution recorded at a few samples is all the reference there is; rungs finer than the record
    # are judged at its samples, and every scheme still shows its order.
    system = LinearSystem(matrix)
    x0 = torch.tensor([1.0, -0.5, 0.25], dtype=torch.float64)
    record = system.solution(x0, torch.arange(samples + 1, dtype=torch.float64) / samples)
    for scheme in ("euler", "midpoint", "rk4"):
        order = get_tableau(scheme).order
        counts = [16, 32, 64, 128, 256] if order < 4 else [8, 16, 32, 64]
        result = convergence_test(system, x0, 1.0, reference=record, schemes=[scheme], n_steps=counts, error="rms")
        result.assert_orders(tolerance=0.25)


def test_rms_error_is_normalised_by_the_square_root_of_the_step_count():
    # Euler on dx/dt = -x from 1: the error at step k is known in closed form; check the RMS definition.
    system = LinearSystem(torch.tensor([[-1.0]], dtype=torch.float64))
    x0 = torch.tensor([1.0], dtype=torch.float64)
    result = convergence_test(system, x0, 1.0, reference=lambda t: system.solution(x0, t), schemes=["euler"],
                              n_steps=[10, 20, 40], error="rms")
    for n, error in zip(result.n_steps, result.errors["euler"]):
        k = np.arange(1, n + 1)
        differences = (1 - 1 / n) ** k - np.exp(-k / n)
        assert error == pytest.approx(math.sqrt(np.sum(differences**2) / n), rel=1e-12)


def test_a_learned_field_that_is_wrong_plateaus_and_is_reported():
    # A "model" with a 1e-4 error in its vector field: errors fall at the scheme's order, then plateau.
    system = LinearSystem(harmonic_oscillator_matrix(1.0))
    model = LinearSystem(harmonic_oscillator_matrix(1.0) + 1e-4 * torch.tensor([[0.3, -0.2], [0.5, 0.1]]))
    x0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    result = convergence_test(model, x0, 2.0, reference=lambda t: system.solution(x0, t), schemes=["rk4"],
                              n_steps=[2, 4, 8, 16, 32, 64, 128, 256], training_dt=0.25)
    fitted = result.rate("rk4")
    assert not fitted.used[-1] and "floor" in fitted.dropped[-1]
    assert fitted.rate > 3.0
    assert "* marks the training dt = 0.25" in result.table()


def test_result_reports_table_json_and_plot():
    system = LinearSystem(harmonic_oscillator_matrix(1.0))
    x0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    result = convergence_test(system, x0, 1.0, reference=lambda t: system.solution(x0, t),
                              schemes=["euler", "rk4"], dts=[0.1, 0.05, 0.025, 0.0125], training_dt=0.05)
    assert result.n_steps == (10, 20, 40, 80)
    table = result.table()
    assert "euler (p=1)" in table and "0.05 *" in table and "fitted rate" in table
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["rates"]["rk4"]["rate"] == pytest.approx(4.0, abs=0.1)
    import matplotlib

    matplotlib.use("Agg")
    ax = result.plot()
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert any("training dt" in text.get_text() for text in ax.get_legend().get_texts())


def test_assert_orders_fails_with_the_table_when_an_order_is_off():
    system = LinearSystem(harmonic_oscillator_matrix(1.0))
    x0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    result = convergence_test(system, x0, 1.0, reference=lambda t: system.solution(x0, t), schemes=["rk4"],
                              n_steps=[8, 16, 32])
    with pytest.raises(AssertionError, match="observed order 4.0.*expected 3"):
        result.assert_orders(expected={"rk4": 3})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(dts=[0.3, 0.1]), "does not divide"),
        (dict(n_steps=[10]), "at least two"),
        (dict(n_steps=[10, 10]), "repeats"),
        (dict(n_steps=[10, 20], dts=[0.1, 0.05]), "exactly one"),
        (dict(n_steps=[10, 0]), "positive integers"),
        (dict(n_steps=[10, 20], schemes=[]), "empty"),
        (dict(n_steps=[10, 20], schemes=["rk4", "rk4_classic"]), "repeats"),
        (dict(n_steps=[10, 20], error="max"), "'final' or 'rms'"),
    ],
)
def test_convergence_test_refuses_bad_input(kwargs, message):
    system = LinearSystem(harmonic_oscillator_matrix(1.0))
    x0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    with pytest.raises(ValueError, match=message):
        convergence_test(system, x0, 1.0, reference=lambda t: system.solution(x0, t), **kwargs)


def test_reference_trajectory_must_fit_the_ladder():
    system = LinearSystem(harmonic_oscillator_matrix(1.0))
    x0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    trajectory = rollout(system, x0, 0.0, 1.0 / 30, 30, "rk4")
    with pytest.raises(ValueError, match=r"step counts \[20\] neither divide it nor are multiples"):
        convergence_test(system, x0, 1.0, reference=trajectory, n_steps=[10, 20, 60])
    with pytest.raises(ValueError, match="shape"):
        convergence_test(system, x0, 1.0, reference=trajectory[:, :1], n_steps=[10, 15])
    with pytest.raises(ValueError, match=r"reference\(times\) must return shape"):
        convergence_test(system, x0, 1.0, reference=lambda t: x0, n_steps=[10, 15])
