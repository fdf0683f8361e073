"""Convergence-rate fitting and the convergence test: observed orders of every scheme against theory."""

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dynlearn import available_tableaus, get_tableau, rollout
from dynlearn.analysis import convergence_test, fit_convergence_rate
from dynlearn.analysis.rates import SLOPE_TOLERANCE
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
    dts=st.lists(st.floats(1e-3, 0.5), min_size=3, max_size=8, unique_by=lambda dt: round(math.log(dt), 2)).filter(
        lambda values: max(values) / min(values) > 4
    ),
)
def test_exact_power_laws_are_fitted_exactly(rate, constant, dts):
    errors = [constant * dt**rate for dt in dts]
    for fitted in (fit_convergence_rate(dts, errors, select_range=False), fit_convergence_rate(dts, errors)):
        assert fitted.rate == pytest.approx(rate, abs=1e-9)
        assert fitted.constant == pytest.approx(constant, rel=1e-8)
        assert fitted.standard_error < 1e-8
        assert all(fitted.used)


def test_a_steep_pre_asymptotic_head_is_left_out():
    # The two ladders of the audit that the old floor rule fitted at 2.64 and 2.605: forward Euler on a nonlinear
    # problem (error at t = 20) and an exact second-order law with a fourth-order head.
    dts = 0.5 / 2.0 ** np.arange(7)
    euler = fit_convergence_rate(dts, [15.97, 1.740, 0.4101, 0.1452, 0.06175, 0.02856, 0.01374])
    assert euler.rate == pytest.approx(1.0, abs=0.1)
    assert euler.used == (False,) * 4 + (True,) * 3 and "pre-asymptotic" in euler.dropped[0]
    d = 0.4 / 2.0 ** np.arange(9)
    headed = fit_convergence_rate(d, d**2 * (1 + 30 * d**2))
    assert headed.rate == pytest.approx(2.0, abs=0.02)
    assert headed.used[-1] and not headed.used[0]
    # the same law under a floor: the head and the floor are both left out
    floored = fit_convergence_rate(d, d**2 * (1 + 30 * d**2) + 1e-6)
    assert floored.rate == pytest.approx(2.0, abs=0.1) and "floor" in floored.dropped[-1]


@st.composite
def error_ladders(draw):
    """A ladder of errors e(dt) = C dt^p |1 + a dt^q| + F, times exp(noise) with |noise| <= 0.5 %, and the
    noise-free local slopes and the extent of its asymptotic range: the longest run of points where neither
    the higher-order term nor the floor moves the slope d log e / d log dt by more than 0.03."""
    p, q = draw(st.floats(0.5, 6.0)), draw(st.floats(1.0, 3.0))
    a = draw(st.sampled_from([-1.0, 1.0])) * 10 ** draw(st.floats(-2.0, 2.0))
    constant = 10 ** draw(st.floats(-3.0, 3.0))
    n = draw(st.integers(4, 12))
    dts = 10 ** draw(st.floats(-2.0, 0.0)) / draw(st.floats(1.5, 4.0)) ** np.arange(n)
    truncation = constant * dts**p * np.abs(1 + a * dts**q)
    floor = 0.0
    if draw(st.booleans()):  # a floor at a level the truncation error reaches somewhere on the ladder
        floor = constant * dts[draw(st.integers(0, n - 1))] ** p * 10 ** draw(st.floats(-3.0, 1.0))
    noise = np.asarray(draw(st.lists(st.floats(-0.005, 0.005), min_size=n, max_size=n)))
    exact = truncation + floor
    assume(np.all(exact > 0))  # an error of exactly zero (1 + a dt^q = 0 at a rung) is a point the fit drops
    with np.errstate(divide="ignore", invalid="ignore"):
        head = np.abs(q * a * dts**q / (1 + a * dts**q))
        flattening = (p + head) * floor / exact
    asymptotic = (1 + a * dts**q > 0) & (head <= 0.03) & (flattening <= 0.03)
    longest = run = 0
    for inside in asymptotic:
        run = run + 1 if inside else 0
        longest = max(longest, run)
    slopes = np.diff(np.log(exact)) / np.diff(np.log(dts))
    return p, dts, exact * np.exp(noise), slopes, longest


@settings(max_examples=300, deadline=None)
@given(error_ladders())
def test_the_rate_is_the_asymptotic_order_or_none_is_claimed(ladder):
    """With 3 or more points in the asymptotic range the rate is within 0.1 of p. Where the noise-free curve
    bends everywhere (no 3 neighbours whose local slopes agree within 0.4), no rate. In between (a stretch that
    is straight at another order, e.g. a head dominated by the dt^(p+q) term, is a power law the errors alone
    cannot tell from the asymptotic one) any rate given is one the curve has where it was fitted."""
    p, dts, errors, slopes, asymptotic_points = ladder
    fitted = fit_convergence_rate(dts, errors)
    straight = any(np.ptp(slopes[i : i + 2]) <= 0.4 and slopes[i : i + 2].min() > 0.1 for i in range(len(slopes) - 1))
    if asymptotic_points >= 3:
        assert fitted.found, fitted
        assert abs(fitted.rate - p) <= 0.1, (p, slopes, str(fitted))
    elif not straight:
        assert not fitted.found and "no asymptotic range" in fitted.reason, (p, slopes, str(fitted))
    elif fitted.found:
        used = np.flatnonzero(fitted.used)
        there = slopes[used.min() : used.max()]
        assert there.min() - 0.1 <= fitted.rate <= there.max() + 0.1, (p, slopes, str(fitted))


@pytest.mark.parametrize("sigma, tolerance", [(0.005, None), (0.02, None), (0.05, 0.4)])
@pytest.mark.parametrize("order", [1.0, 4.0])
def test_confidence_interval_covers_the_true_rate_at_its_level(sigma, tolerance, order):
    # Noisy ladders (multiplicative noise of sigma in log error), the range selected as by default: a rate for
    # nearly every draw, and the nominal 95 % interval covering the true rate in 90-99 % of them (binomial sd at
    # 400 draws: 0.011). Noise of 5 % scatters the local slopes by 0.1 on a halving ladder, beyond the default
    # tolerance of 0.15 (ranges shorten, intervals narrow: 78 % coverage); the tolerance is then raised to the noise.
    generator = np.random.default_rng(12345)
    dts = 0.2 / 2.0 ** np.arange(7)
    covered = found = 0
    trials = 400
    for _ in range(trials):
        errors = 3.0 * dts**order * np.exp(sigma * generator.standard_normal(dts.size))
        fitted = fit_convergence_rate(dts, errors, slope_tolerance=tolerance or SLOPE_TOLERANCE)
        if fitted.found:
            found += 1
            low, high = fitted.confidence_interval
            covered += low <= order <= high
    assert found >= 0.98 * trials
    assert 0.90 <= covered / found <= 0.99


def test_round_off_floor_is_detected_and_dropped():
    dts = 0.1 / 2.0 ** np.arange(10)
    errors = 1e-2 * dts**4 + 1e-14 * (1 + 0.3 * np.sin(np.arange(10)))  # a floor near 1e-14
    naive = fit_convergence_rate(dts, errors, select_range=False)
    fitted = fit_convergence_rate(dts, errors)
    assert naive.rate < 3.5  # the floor spoils a plain fit
    assert fitted.rate == pytest.approx(4.0, abs=0.1)
    assert not fitted.used[-1] and "floor" in fitted.dropped[-1]
    assert fitted.used[0]


def test_a_ladder_without_an_asymptotic_range_gets_no_rate_and_a_reason():
    # still bending everywhere: e = dt^2 (1 + 10 dt) over dt = 0.4 .. 0.025 (local slopes 2.74, 2.58, 2.42, 2.26)
    dts = 0.4 / 2.0 ** np.arange(5)
    fitted = fit_convergence_rate(dts, dts**2 * (1 + 10 * dts))
    assert not fitted.found and math.isnan(fitted.rate) and fitted.n_used == 0
    assert "no asymptotic range" in fitted.reason and "2.74, 2.58, 2.42, 2.26" in fitted.reason
    with pytest.raises(AssertionError, match="no observed order"):
        fitted.assert_order(2.0)
    assert str(fitted).startswith("no rate: no asymptotic range")
    flat = fit_convergence_rate(dts, 1e-3 * (1 + 0.01 * np.sin(np.arange(5))))  # a floor only: nothing converges
    assert not flat.found


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
    too_few = fit_convergence_rate([0.1, 0.05, 0.025], [np.nan, 0.0, 1e-3])
    assert not too_few.found and "only 1 usable points" in too_few.reason


@pytest.mark.parametrize(
    "dts, errors, kwargs, message",
    [
        ([0.1, 0.05], [1e-2], {}, "same length"),
        ([0.1, -0.05, 0.01], [1, 1, 1], {}, "finite and > 0"),
        ([0.1, 0.1, 0.01], [1, 1, 1], {}, "distinct"),
        ([[0.1, 0.05]], [[1, 1]], {}, "one-dimensional"),
        ([0.1, 0.05, 0.01], [1, 1, 1], {"slope_tolerance": 0}, "slope_tolerance"),
        ([0.1, 0.05, 0.01], [1, 1, 1], {"min_points": 1}, "min_points"),
    ],
)
def test_fit_refuses_bad_input(dts, errors, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_convergence_rate(dts, errors, **kwargs)


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


# Classic non-stiff nonlinear problems whose coarse steps are pre-asymptotic or past the stability limit (dt up
# to 1.25; errors of 1e2, overflow, or saturated at the orbit's size there), each scheme on one long ladder of
# its own, the reference a tight DOP853 solve (or the exact period of a Kepler orbit).
def _duffing(t, x):  # x'' + 0.1 x' + x + x^3 = 0.5 cos(1.2 t): forced, non-autonomous
    return torch.stack([x[..., 1], -0.1 * x[..., 1] - x[..., 0] - x[..., 0] ** 3 + 0.5 * torch.cos(1.2 * t)], -1)


def _van_der_pol(t, x):  # mu = 1, towards its limit cycle
    return torch.stack([x[..., 1], (1 - x[..., 0] ** 2) * x[..., 1] - x[..., 0]], -1)


def _lotka_volterra(t, x):  # x' = x (1.5 - y), y' = y (x - 3)
    return torch.stack([x[..., 0] * (1.5 - x[..., 1]), x[..., 1] * (x[..., 0] - 3.0)], -1)


def _kepler(t, x):  # the two-body problem, q'' = -q / |q|^3
    cubed = (x[..., 0] ** 2 + x[..., 1] ** 2) ** 1.5
    return torch.stack([x[..., 2], x[..., 3], -x[..., 0] / cubed, -x[..., 1] / cubed], -1)


_ECCENTRICITY = 0.3
_PERICENTRE = (1 - _ECCENTRICITY, 0.0, 0.0, math.sqrt((1 + _ECCENTRICITY) / (1 - _ECCENTRICITY)))
NONLINEAR_PROBLEMS = {  # field, x0, T, coarsest step count, rungs per order, schemes with no asymptotic range
    # fixed-step dopri5's fifth-order error constant is small: on these two its sixth-order head meets the
    # round-off floor before the fifth order shows, and the fit must say so rather than report 6
    "van der pol": (_van_der_pol, (2.0, 0.0), 4.0, 8, {1: 10, 2: 9, 3: 9, 4: 8, 5: 10}, {"dopri5"}),
    "lotka-volterra": (_lotka_volterra, (1.0, 1.0), 5.0, 8, {1: 10, 2: 9, 3: 9, 4: 8, 5: 10}, {"dopri5"}),
    "forced duffing": (_duffing, (1.0, 0.0), 10.0, 8, {1: 10, 2: 9, 3: 8, 4: 7, 5: 7}, set()),
    # one period of an e = 0.3 orbit from its pericentre: the exact solution at T = 2 pi is the start
    "kepler": (_kepler, _PERICENTRE, 2 * math.pi, 16, {1: 12, 2: 9, 3: 9, 4: 8, 5: 8}, set()),
}


@pytest.mark.parametrize("problem", NONLINEAR_PROBLEMS)
def test_observed_orders_on_nonlinear_problems_with_pre_asymptotic_coarse_steps(problem):
    from scipy.integrate import solve_ivp

    field, start, t_final, coarsest, rungs, without_range = NONLINEAR_PROBLEMS[problem]
    x0 = torch.tensor(start, dtype=torch.float64)
    if problem == "kepler":
        end = x0
    else:
        solved = solve_ivp(lambda t, x: field(torch.tensor(t), torch.from_numpy(x)).numpy(), (0.0, t_final), start,
                           method="DOP853", rtol=2.3e-14, atol=1e-16)
        end = torch.from_numpy(solved.y[:, -1])
    with_a_head = 0
    for scheme in EXPLICIT:
        order = get_tableau(scheme).order
        result = convergence_test(field, x0, t_final, reference=lambda times: end.expand(len(times), -1),
                                  schemes=[scheme], n_steps=[coarsest * 2**k for k in range(rungs[order])])
        if scheme in without_range:
            assert result.rates[scheme] is None and "no asymptotic range" in result.rate_failures[scheme], result
        else:
            result.assert_orders(tolerance=0.2)
            with_a_head += any("pre-asymptotic" in reason for reason in result.rate(scheme).dropped)
    assert with_a_head >= len(EXPLICIT) // 2  # the ladders reach into the pre-asymptotic range for most schemes


def test_the_nonlinear_references_agree_with_a_30_digit_solve():
    import mpmath
    from scipy.integrate import solve_ivp

    mpmath.mp.dps = 30
    exact = mpmath.odefun(lambda t, y: [y[1], (1 - y[0] ** 2) * y[1] - y[0]], 0, [mpmath.mpf(2), mpmath.mpf(0)])(4)
    solved = solve_ivp(lambda t, x: _van_der_pol(t, torch.from_numpy(x)).numpy(), (0.0, 4.0), (2.0, 0.0),
                       method="DOP853", rtol=2.3e-14, atol=1e-16)
    np.testing.assert_allclose(solved.y[:, -1], [float(v) for v in exact], rtol=0, atol=1e-13)


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
    # A "model" with an error in its vector field: errors fall at the scheme's order, then plateau. With an error
    # of 1e-6 the fall is three rungs long and its order is fitted; with 1e-4 it bends at once (local slopes 3.91,
    # 3.00, 0.77): no asymptotic range, and the result says so instead of fitting the bend.
    system = LinearSystem(harmonic_oscillator_matrix(1.0))
    x0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    results = {}
    for size in (1e-6, 1e-4):
        model = LinearSystem(harmonic_oscillator_matrix(1.0) + size * torch.tensor([[0.3, -0.2], [0.5, 0.1]]))
        results[size] = convergence_test(model, x0, 2.0, reference=lambda t: system.solution(x0, t), schemes=["rk4"],
                                         n_steps=[2, 4, 8, 16, 32, 64, 128, 256], training_dt=0.25)
    fitted = results[1e-6].rate("rk4")
    assert not fitted.used[-1] and "floor" in fitted.dropped[-1]
    assert fitted.rate == pytest.approx(4.0, abs=0.1) and fitted.used[:3] == (True, True, True)
    assert "* marks the training dt = 0.25" in results[1e-6].table()
    assert results[1e-4].rates["rk4"] is None and "no asymptotic range" in results[1e-4].rate_failures["rk4"]
    with pytest.raises(ValueError, match="no rate for 'rk4': no asymptotic range"):
        results[1e-4].rate("rk4")


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
        (dict(n_steps=[10, 0]), r"n_steps\[1\] must be an integer >= 1, got 0"),
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
