"""Physical systems: exact solutions against their equations, conserved energies, scipy references and
published numbers."""

import math

import numpy as np
import pytest
import sympy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad, solve_ivp

from dynlearn import rollout
from dynlearn.analysis import fit_convergence_rate
from dynlearn.systems import CartesianPendulum, HarmonicOscillator, Pendulum, WaveEquation
from dynlearn.systems.wave import sine_coefficients

TIGHT = dict(method="DOP853", rtol=1e-13, atol=1e-13)


def reference(system, x0, times):
    """scipy's solve_ivp on the system's own vector field, one trajectory."""

    def rhs(t, y):
        return system.vector_field(torch.tensor(t), torch.from_numpy(y)).numpy()

    result = solve_ivp(rhs, (0.0, float(times[-1])), x0.numpy(), t_eval=times.numpy(), **TIGHT)
    assert result.success
    return torch.from_numpy(result.y.T)


def time_derivative(system, x0, times, h=1e-4):
    """Central difference of the exact solution in time: ((x(t+h) - x(t-h)) / 2h, x(t))."""
    plus, minus, middle = (system.solution(x0, times + shift) for shift in (h, -h, 0.0))
    return (plus - minus) / (2 * h), middle


# -- harmonic oscillator ------------------------------------------------------------------------------------


@settings(max_examples=25)
@given(frequency=st.floats(0.2, 5.0), damping=st.floats(0.0, 1.5), u=st.floats(-2, 2), v=st.floats(-2, 2))
def test_oscillator_solution_satisfies_its_ode_and_energy_law(frequency, damping, u, v):
    system = HarmonicOscillator(frequency, damping)
    x0 = torch.tensor([u, v], dtype=torch.float64)
    times = torch.linspace(0.0, 3.0, 7, dtype=torch.float64).requires_grad_(True)
    states = system.solution(x0, times)
    # exact derivative through autograd, one component at a time
    derivative = torch.stack(
        [torch.autograd.grad(states[:, i].sum(), times, retain_graph=True)[0] for i in range(2)], dim=-1
    )
    residual = derivative - system.vector_field(times, states)
    assert residual.abs().max() < 1e-10 * (1 + states.abs().max())
    energy = system.energy(states)
    energy_rate = torch.autograd.grad(energy.sum(), times)[0]
    expected_rate = -2 * damping * frequency * states[:, 1] ** 2
    torch.testing.assert_close(energy_rate, expected_rate.detach(), rtol=1e-9, atol=1e-10)


def test_oscillator_step_map_and_solve_ivp():
    system = HarmonicOscillator(2.0, 0.1)
    x0 = torch.tensor([1.0, -0.5], dtype=torch.float64)
    torch.testing.assert_close(system.step_map(0.05) @ x0, system.solution(x0, torch.tensor([0.05], dtype=torch.float64))[0])
    times = torch.linspace(0, 4, 9, dtype=torch.float64)
    torch.testing.assert_close(system.solution(x0, times), reference(system, x0, times), rtol=0, atol=1e-11)
    undamped = HarmonicOscillator(3.0)
    energies = undamped.energy(undamped.solution(x0, torch.linspace(0, 10, 50, dtype=torch.float64)))
    assert (energies - energies[0]).abs().max() < 1e-12


def test_oscillator_refuses_bad_parameters_and_states():
    with pytest.raises(ValueError, match="frequency"):
        HarmonicOscillator(0.0)
    with pytest.raises(ValueError, match="damping_ratio"):
        HarmonicOscillator(1.0, -0.1)
    with pytest.raises(ValueError, match=r"shape \(\*batch, 2\)"):
        HarmonicOscillator().vector_field(torch.tensor(0.0), torch.ones(3))


# -- pendulum, angle form -------------------------------------------------------------------------------------


def test_pendulum_reproduces_the_published_reference_values():
    # g = 9.81, L = 1, theta0 = 3 pi / 4 at rest: period 3.065 s, theta(2) = -1.51667, theta'(2) = 3.86457.
    pendulum = Pendulum(9.81, 1.0)
    x0 = torch.tensor([3 * math.pi / 4, 0.0], dtype=torch.float64)
    assert pendulum.period(x0) == pytest.approx(3.065, abs=5e-4)
    theta, velocity = pendulum.solution(x0, torch.tensor([2.0], dtype=torch.float64))[0].tolist()
    assert theta == pytest.approx(-1.51667, abs=1e-5)
    assert velocity == pytest.approx(3.86457, abs=1e-5)


pendulum_states = st.tuples(st.floats(-3.0, 3.0), st.floats(-9.0, 9.0)).filter(
    lambda s: abs(math.sin(s[0] / 2) ** 2 + (s[1] / (2 * math.sqrt(9.81))) ** 2 - 1) > 1e-3
)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # scipy's DOP853 at rest: 0/0
@settings(max_examples=30)
@given(state=pendulum_states, gravity=st.floats(1.0, 20.0), length=st.floats(0.5, 2.0))
def test_pendulum_solution_matches_solve_ivp_and_conserves_energy(state, gravity, length):
    pendulum = Pendulum(gravity, length)
    x0 = torch.tensor(state, dtype=torch.float64)
    if abs(pendulum.modulus_squared(np.array(state[0]), np.array(state[1])) - 1) < 1e-3:
        return  # too close to the separatrix for a tight numerical reference over several seconds
    times = torch.linspace(0, 3, 13, dtype=torch.float64)
    exact = pendulum.solution(x0, times)
    torch.testing.assert_close(exact, reference(pendulum, x0, times), rtol=0, atol=1e-8)
    energy = pendulum.energy(exact)
    assert (energy - energy[0]).abs().max() < 1e-10 * (1 + energy[0].abs())
    derivative, middle = time_derivative(pendulum, x0, times)
    residual = derivative - pendulum.vector_field(times, middle)
    assert residual.abs().max() < 1e-5 * (1 + middle.abs().max()) ** 3


def test_pendulum_is_periodic_and_batched():
    pendulum = Pendulum()
    x0 = torch.tensor([[0.5, 1.0], [2.5, -0.3], [0.0, 7.0], [-1.0, -8.0]], dtype=torch.float64)
    states = pendulum.solution(x0, torch.linspace(0, 2, 5, dtype=torch.float64))
    assert states.shape == (5, 4, 2)
    for b in range(4):
        period = pendulum.period(x0[b])
        after = pendulum.solution(x0[b], torch.tensor([period], dtype=torch.float64))[0]
        revolutions = 0.0 if abs(x0[b, 1]) < 6 else 2 * math.pi * math.copysign(1, float(x0[b, 1]))
        torch.testing.assert_close(after, x0[b] + torch.tensor([revolutions, 0.0], dtype=torch.float64),
                                   rtol=0, atol=1e-9)
        torch.testing.assert_close(states[:, b], pendulum.solution(x0[b], torch.linspace(0, 2, 5, dtype=torch.float64)), rtol=0, atol=0)


def test_pendulum_refuses_the_separatrix_and_bad_parameters():
    pendulum = Pendulum()
    with pytest.raises(ValueError, match="separatrix"):
        pendulum.solution(torch.tensor([math.pi, 0.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="gravity"):
        Pendulum(gravity=-1.0)
    with pytest.raises(ValueError, match="length"):
        Pendulum(length=float("nan"))


def test_sampled_pendulum_states_librate_below_the_amplitude():
    pendulum = Pendulum()
    states = pendulum.sample_initial_conditions(500, torch.Generator().manual_seed(3))
    k2 = pendulum.modulus_squared(states[:, 0].numpy(), states[:, 1].numpy())
    assert states.shape == (500, 2) and (k2 <= math.sin(3 * math.pi / 8) ** 2 + 1e-12).all()
    assert (states[:, 1] > 0).any() and (states[:, 1] < 0).any()


# -- pendulum, Cartesian form ---------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # scipy's DOP853 at rest: 0/0
@settings(max_examples=15)
@given(state=st.tuples(st.floats(-2.5, 2.5), st.floats(-3.0, 3.0)))
def test_cartesian_solution_solves_the_constrained_ode(state):
    pendulum = CartesianPendulum(9.81, 1.3)
    x0 = pendulum.from_angle(torch.tensor(state, dtype=torch.float64))
    times = torch.linspace(0, 2, 9, dtype=torch.float64)
    exact = pendulum.solution(x0, times)
    assert pendulum.constraint_drift(exact).abs().max() < 1e-12
    torch.testing.assert_close(exact, reference(pendulum, x0, times), rtol=0, atol=1e-8)
    energy = pendulum.energy(exact)
    assert (energy - energy[0]).abs().max() < 1e-10 * (1 + energy[0].abs())
    torch.testing.assert_close(pendulum.to_angle(exact)[..., 1], Pendulum(9.81, 1.3).solution(
        torch.tensor(state, dtype=torch.float64), times)[..., 1], rtol=0, atol=1e-10)


def test_cartesian_constraint_drifts_under_a_coarse_integrator_and_is_measured():
    pendulum = CartesianPendulum()
    x0 = pendulum.from_angle(torch.tensor([3 * math.pi / 4, 0.0], dtype=torch.float64))
    drift = [
        pendulum.constraint_drift(rollout(pendulum, x0, 0.0, dt, round(4.0 / dt), "rk4")[-1]).abs().max().item()
        for dt in (0.04, 0.02, 0.01)
    ]
    assert drift[0] > 1e-6  # the index-reduced ODE does not hold |r| = L by itself
    rate = fit_convergence_rate([0.04, 0.02, 0.01], drift, select_range=False)
    assert rate.rate == pytest.approx(4.0, abs=0.5)  # drift is integration error, shrinking at RK4's order


# -- wave equation -----------------------------------------------------------------------------------------


def test_wave_coefficients_of_the_default_data_are_the_closed_form():
    wave = WaveEquation(n_modes=50)
    n = np.arange(1, 51)
    expected = 12 * (-1.0) ** (n + 1) / (n * np.pi) ** 3  # 2 int (x - x^3) sin(n pi x) dx
    np.testing.assert_allclose(wave.displacement_coefficients.numpy(), expected, rtol=1e-13)
    assert wave.coefficients_exact
    assert wave.truncation_error == pytest.approx(sum(12 / (k * np.pi) ** 3 for k in range(51, 64 * 50 + 1)), rel=1e-9)
    special = WaveEquation(n_modes=6, displacement="sin(3*pi*x)")
    np.testing.assert_allclose(special.displacement_coefficients.numpy(), [0, 0, 1, 0, 0, 0], atol=1e-15)


@pytest.mark.parametrize("expression", ["x*(1-x)*exp(-x**2)", "x*(1-x)/(1+x**2)", "sin(pi*x)**3"])
def test_sine_coefficients_match_quadrature_whatever_path_computes_them(expression):
    values, exact = sine_coefficients(sympy.sympify(expression, locals={"x": sympy.Symbol("x", real=True)}), 8)
    assert exact == (expression == "sin(pi*x)**3")
    function = sympy.lambdify(sympy.Symbol("x"), sympy.sympify(expression), "math")
    for n, value in enumerate(values, start=1):
        assert value == pytest.approx(2 * quad(lambda s: function(s) * math.sin(n * math.pi * s), 0, 1,
                                               epsabs=1e-14, limit=200)[0], abs=1e-12)


def test_wave_series_agrees_with_dalembert_within_its_truncation_bound():
    wave = WaveEquation(speed=1.0, nodes=50, n_modes=400)
    times = torch.tensor([0.0, 0.17, 0.5, 1.3, 2.0], dtype=torch.float64)
    series = wave.series_solution(times)[:, : wave.nodes]

    def odd_periodic(s):  # x - x^3 is odd, so its odd 2-periodic extension is the polynomial of the wrapped s
        wrapped = torch.remainder(s + 1, 2) - 1
        return wrapped - wrapped**3

    dalembert = torch.stack([0.5 * (odd_periodic(wave.grid - t) + odd_periodic(wave.grid + t)) for t in times])
    error = (series - dalembert).abs().max().item()
    assert error <= wave.truncation_error
    assert error > 0.01 * wave.truncation_error  # the bound is an estimate, not slack by orders of magnitude


@pytest.mark.parametrize("speed, velocity", [(1.0, "0"), (0.7, "sin(2*pi*x)/2"), (1.3, "x*(1 - x)")])
def test_wave_velocity_is_dalemberts_to_round_off(speed, velocity):
    """u_t of the configured data against d'Alembert's formula written out here for f = x - x^3 (odd, so its odd
    2-periodic extension is the polynomial of the wrapped argument) and each g: equal to 1e-13 at every grid node
    and time, where the 1000-mode series of u_t is 1e-5 or more off (its coefficients decay like n^-2)."""
    wave = WaveEquation(speed=speed, nodes=40, n_modes=1000, velocity=velocity)
    times = torch.linspace(0.0, 2.0, 41, dtype=torch.float64)
    g = sympy.lambdify(sympy.Symbol("x"), sympy.sympify(velocity), "numpy")

    def wrapped(s):  # into [-1, 1)
        return torch.remainder(s + 1, 2) - 1

    def odd_g(s):  # g on [0, 1], -g(-s) on [-1, 0]
        w = wrapped(s).numpy()
        return torch.from_numpy(np.sign(w) * np.broadcast_to(np.asarray(g(np.abs(w)), dtype=float), w.shape))

    rows = []
    for t in times:
        ahead, behind = wave.grid + speed * t, wave.grid - speed * t
        slope = 0.5 * speed * ((1 - 3 * wrapped(ahead) ** 2) - (1 - 3 * wrapped(behind) ** 2))
        rows.append(slope + 0.5 * (odd_g(ahead) + odd_g(behind)))
    exact = torch.stack(rows)
    velocity_part = wave.series_solution(times)[:, wave.nodes :]
    assert (velocity_part - exact).abs().max() < 1e-13
    _, series_velocity = wave.series(wave.grid, times)
    assert (series_velocity - exact).abs().max() > 1e-5
    assert wave.analytical_details()["velocity"].startswith("d'Alembert")


def test_wave_series_satisfies_the_pde_and_conserves_energy():
    wave = WaveEquation(speed=0.7, n_modes=60, displacement="x - x**3", velocity="sin(2*pi*x)/2")
    x = torch.rand(20, dtype=torch.float64, requires_grad=True)
    t = torch.rand(20, dtype=torch.float64, requires_grad=True)
    u, _ = wave.series(x, t)
    values = u.diagonal()  # u(x_i, t_i)
    u_x, u_t = torch.autograd.grad(values.sum(), (x, t), create_graph=True)
    u_xx = torch.autograd.grad(u_x.sum(), x, retain_graph=True)[0]
    u_tt = torch.autograd.grad(u_t.sum(), t)[0]
    assert (u_tt - wave.speed**2 * u_xx).abs().max() < 1e-9
    # E = (1/2) int (f'^2 c^2 + g^2) dx for f = x - x^3, g = sin(2 pi x)/2: c^2 (4/5) / 2 + 1/16
    assert wave.series_energy() == pytest.approx(wave.speed**2 * 0.4 + 1 / 16, abs=1e-4)


def test_method_of_lines_converges_at_the_stencil_order_on_smooth_data():
    times = torch.tensor([0.3, 0.77, 1.5], dtype=torch.float64)
    for order in (2, 4, 6):
        spacings, errors = [], []
        for nodes in (15, 31, 63):
            wave = WaveEquation(nodes=nodes, n_modes=4, displacement="sin(pi*x) - sin(3*pi*x)/4",
                                velocity="sin(2*pi*x)", stencil_order=order)
            exact = wave.series_solution(times)
            semi_discrete = wave.method_of_lines_solution(wave.initial_state(), times)
            spacings.append(wave.spacing)
            errors.append((semi_discrete - exact).abs().max().item())
        fit = fit_convergence_rate(spacings, errors, select_range=False)
        assert fit.rate == pytest.approx(order, abs=0.3), (order, errors)


def test_operator_matrix_holds_the_stencils_and_conserves_discrete_energy():
    wave = WaveEquation(nodes=20, n_modes=10, stencil_order=4)
    laplacian = wave.laplacian_matrix(4) * wave.spacing**2
    np.testing.assert_allclose(laplacian[10, 8:13].numpy(), [-1 / 12, 4 / 3, -5 / 2, 4 / 3, -1 / 12], rtol=1e-14)
    assert laplacian[0, 0].item() == pytest.approx(-5 / 2 + 1 / 12)  # odd reflection u_{-1} = -u_1
    torch.testing.assert_close(laplacian, laplacian.T)
    assert torch.linalg.eigvalsh(laplacian).max() < 0
    operator = wave.operator_matrix(4)
    assert operator.shape == (40, 40)
    second_order = WaveEquation(nodes=20, n_modes=10, stencil_order=2)
    x0 = second_order.sample_initial_conditions(4, torch.Generator().manual_seed(1))
    states = second_order.method_of_lines_solution(x0, torch.linspace(0, 3, 30, dtype=torch.float64), order=2)
    energy = second_order.energy(states)
    assert (energy - energy[0]).abs().max() < 1e-12 * energy.abs().max()


@settings(max_examples=10)
@given(seed=st.integers(0, 2**31 - 1))
def test_band_limited_solution_starts_at_the_state_and_matches_the_method_of_lines(seed):
    wave = WaveEquation(nodes=40, n_modes=10)
    x0 = wave.sample_initial_conditions(3, torch.Generator().manual_seed(seed))
    times = torch.tensor([0.0, 0.4, 1.1], dtype=torch.float64)
    exact = wave.solution(x0, times)
    torch.testing.assert_close(exact[0], x0, rtol=0, atol=1e-13)
    semi_discrete = wave.method_of_lines_solution(x0, times, order=6)
    assert (semi_discrete - exact).abs().max() < 1e-5 * (1 + x0.abs().max())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(displacement="1 + x"), "vanish at the Dirichlet ends"),
        (dict(displacement="x*(1-x)*y"), "'y' is not a known name"),
        (dict(displacement="x*(1-x"), "is not a mathematical expression"),
        (dict(nodes=0), "nodes"),
        (dict(stencil_order=3), "stencil_order"),
        (dict(speed=-1.0), "speed"),
    ],
)
def test_wave_refuses_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WaveEquation(n_modes=5, **kwargs)


def test_method_of_lines_solution_matches_solve_ivp_on_the_semi_discrete_system():
    wave = WaveEquation(nodes=12, n_modes=10, stencil_order=4)
    x0 = wave.sample_initial_conditions(1, torch.Generator().manual_seed(5))[0]
    times = torch.linspace(0, 2, 9, dtype=torch.float64)
    torch.testing.assert_close(wave.method_of_lines_solution(x0, times), reference(wave, x0, times), rtol=0, atol=1e-10)
