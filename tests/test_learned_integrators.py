"""Learned integrators: models, training, operator reconstruction (published numbers), and the study's
verdicts on a small, fast configuration."""

import dataclasses
import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dynlearn import rollout
from dynlearn.analysis.experiments.learned_integrators import LearnedIntegratorRecipe, run_learned_integrators
from dynlearn.analysis.reconstruction import (
    LogarithmWarning,
    closed_form_operator,
    closest_stencil,
    least_squares_map,
    logarithm_operator,
    relative_error,
    scheme_operator,
)
from dynlearn.analysis.study import convergence_study, study_ladder
from dynlearn.analysis.testing import stable_matrices
from dynlearn.fields.models import (
    MLP,
    DiscreteMap,
    EmbeddedModel,
    HybridVectorField,
    LinearMap,
    LinearVectorField,
    NeuralODE,
    NeuralVectorField,
    SkipMap,
    iterate_map,
)
from dynlearn.integration.stability import stability_matrix
from dynlearn.systems import HarmonicOscillator, Pendulum, WaveEquation
from dynlearn.fields.training import TrainingSettings, embedded_loss, map_loss, train

ROTATION = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)


# -- models ---------------------------------------------------------------------------------------------------


def test_embedded_model_is_evaluated_with_any_scheme_and_step():
    torch.manual_seed(0)
    field = NeuralVectorField(MLP(2, 2, width=8)).double()
    model = EmbeddedModel(field, scheme="euler", dt=0.1)
    x = torch.randn(5, 2, dtype=torch.float64)
    torch.testing.assert_close(model(x), x + 0.1 * field(None, x))
    torch.testing.assert_close(model(x, dt=0.05, scheme="rk4"), rollout(field, x, 0.0, 0.05, 1, "rk4")[1])
    assert model.rollout(x, 7, dt=0.01, scheme="dopri5").shape == (8, 5, 2)


def test_skip_map_is_forward_euler_with_a_frozen_step_and_maps_iterate():
    torch.manual_seed(0)
    network = MLP(2, 2, width=8).double()
    x = torch.randn(4, 2, dtype=torch.float64)
    skip = SkipMap(network, dt=0.1)
    euler = EmbeddedModel(NeuralVectorField(network), "euler", 0.1)
    torch.testing.assert_close(iterate_map(skip, x, 6), euler.rollout(x, 6))
    assert iterate_map(DiscreteMap(network), x, 3).shape == (4, 4, 2)
    linear = LinearMap(2)
    torch.testing.assert_close(linear(x), x)


def test_mlp_configuration_and_bad_values():
    net = MLP(3, 2, width=16, depth=3, activation="softplus")
    assert sum(isinstance(m, torch.nn.Linear) for m in net) == 4
    assert net(torch.randn(7, 3)).shape == (7, 2)
    with pytest.raises(ValueError, match="activation"):
        MLP(2, 2, activation="swishy")
    with pytest.raises(ValueError, match="width"):
        MLP(2, 2, width=0)


def test_hybrid_model_learns_the_damping_the_known_physics_leaves_out():
    # Known: the undamped pendulum. Data: the damped one (theta'' = -g/L sin theta - c theta'). G learns -c theta'.
    damping = 0.5
    pendulum = Pendulum()

    def damped(t, x):
        return pendulum.vector_field(t, x) + torch.stack([torch.zeros_like(x[..., 1]), -damping * x[..., 1]], -1)

    x0 = torch.tensor([[1.0, 0.0], [-0.5, 1.0], [2.0, -1.0]], dtype=torch.float64)
    data = rollout(damped, x0, 0.0, 0.05, 40, "rk4")
    starts, successors = data[:-1].reshape(-1, 2), data[1:].reshape(-1, 2)
    torch.manual_seed(0)
    correction = LinearVectorField(2)
    model = HybridVectorField(pendulum.vector_field, correction)
    train(model, embedded_loss(model, starts, successors[:, None], 0.05, ["rk4"]), len(starts),
          TrainingSettings(iterations=1500, learning_rate=0.05, progress=False))
    torch.testing.assert_close(correction.operator.detach(), torch.tensor([[0.0, 0.0], [0.0, -damping]],
                                                                         dtype=torch.float64), rtol=0, atol=2e-3)


def test_neural_ode_solves_adaptively_and_augments():
    field = LinearVectorField(3, initial=torch.tensor([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    model = NeuralODE(field, augment=1, rtol=1e-10, atol=1e-12)
    x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    states = model(x0, torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert states.shape == (2, 1, 2)
    torch.testing.assert_close(states[-1, 0], torch.tensor([math.cos(1.0), -math.sin(1.0)], dtype=torch.float64),
                               rtol=0, atol=1e-8)


# -- training -------------------------------------------------------------------------------------------------


def test_training_lowers_the_loss_stops_on_a_plateau_and_resumes(tmp_path):
    oscillator = HarmonicOscillator()
    data = oscillator.solution(torch.tensor([1.0, 0.0], dtype=torch.float64), torch.arange(41, dtype=torch.float64) * 0.1)
    starts, successors = data[:-1], data[1:]
    torch.manual_seed(0)
    field = LinearVectorField(2)
    loss = embedded_loss(field, starts, successors[:, None], 0.1, ["rk4"])
    initial = float(loss(None).detach())
    history = train(field, loss, len(starts), TrainingSettings(iterations=3000, learning_rate=0.05, patience=200,
                                                               progress=False))
    assert history.best_loss < 1e-6 * initial
    assert history.stopped_early and history.iterations < 3000

    # an interrupted run resumes from its checkpoint and ends where an uninterrupted one does
    settings = TrainingSettings(iterations=400, learning_rate=0.05, patience=10_000, checkpoint_every=100,
                                progress=False)
    straight_field = LinearVectorField(2)
    straight = train(straight_field, embedded_loss(straight_field, starts, successors[:, None], 0.1, ["rk4"]),
                     len(starts), settings)
    field = LinearVectorField(2)
    inner = embedded_loss(field, starts, successors[:, None], 0.1, ["rk4"])
    calls = [0]

    def interrupted(index):
        calls[0] += 1
        if calls[0] == 250:
            raise KeyboardInterrupt
        return inner(index)

    with pytest.raises(KeyboardInterrupt):
        train(field, interrupted, len(starts), settings, checkpoint=tmp_path / "run.pt")
    assert (tmp_path / "run.pt").exists()
    fresh = LinearVectorField(2)  # a new process: nothing but the checkpoint
    resumed = train(fresh, embedded_loss(fresh, starts, successors[:, None], 0.1, ["rk4"]), len(starts), settings,
                    checkpoint=tmp_path / "run.pt")
    assert resumed.iterations == straight.iterations == 400
    torch.testing.assert_close(fresh.operator, straight_field.operator, rtol=1e-12, atol=1e-14)


def test_training_refuses_nan_and_bad_configuration(tmp_path):
    field = LinearVectorField(2)
    with pytest.raises(FloatingPointError, match="iteration 0"):
        train(field, lambda index: field.operator.sum() * float("nan"), 1, TrainingSettings(progress=False))
    with pytest.raises(ValueError, match="learning_rate"):
        TrainingSettings(learning_rate=0.0)
    with pytest.raises(ValueError, match="iterations"):
        TrainingSettings(iterations=0)
    with pytest.raises(ValueError, match="compile must be True or False, got str 'yes'"):
        TrainingSettings(compile="yes")
    with pytest.raises(ValueError, match="progress must be True or False, got int 0"):
        TrainingSettings(progress=0)
    assert type(TrainingSettings(compile=numpy.bool_(True), progress=False).compile) is bool  # numpy's, as bool
    with pytest.raises(ValueError, match="neural_ode must be True or False, got str 'no'"):
        run_learned_integrators("oscillator", tmp_path / "study", neural_ode="no")
    assert not (tmp_path / "study").exists()


def test_map_loss_trains_a_discrete_linear_map_to_the_exact_map():
    oscillator = HarmonicOscillator(2.0)
    data = oscillator.solution(torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64), torch.arange(21, dtype=torch.float64) * 0.1)
    starts, successors = data[:-1].reshape(-1, 2), data[1:].reshape(-1, 2)
    linear = LinearMap(2)
    train(linear, map_loss(linear, starts, successors[:, None]), len(starts),
          TrainingSettings(iterations=2000, learning_rate=0.02, progress=False))
    torch.testing.assert_close(linear.operator.detach(), oscillator.step_map(0.1), rtol=0, atol=1e-6)


# -- stability matrices and operator reconstruction ---------------------------------------------------------------


@settings(max_examples=20)
@given(matrix=stable_matrices(), dt=st.floats(0.01, 0.2), scheme=st.sampled_from(["euler", "midpoint", "rk3", "rk4",
                                                                                   "dopri5", "backward_euler",
                                                                                   "trapezoid"]))
def test_inverting_the_stability_function_recovers_the_operator_exactly(matrix, dt, scheme):
    omega = stability_matrix(matrix, dt, scheme)
    torch.testing.assert_close(scheme_operator(omega, dt, scheme), matrix, rtol=1e-8, atol=1e-8)
    if scheme in ("euler", "backward_euler", "trapezoid"):
        torch.testing.assert_close(closed_form_operator(omega, dt, scheme), matrix, rtol=1e-9, atol=1e-9)


def test_stability_matrix_is_one_step_of_the_scheme_on_a_linear_system():
    matrix = torch.randn(3, 3, dtype=torch.float64)
    x = torch.randn(4, 3, dtype=torch.float64)
    for scheme in ["euler", "heun", "rk38", "dopri5"]:
        torch.testing.assert_close(x @ stability_matrix(matrix, 0.07, scheme).T,
                                   rollout(lambda t, y: y @ matrix.T, x, 0.0, 0.07, 1, scheme)[1])
    identity = torch.eye(3, dtype=torch.float64)
    torch.testing.assert_close(stability_matrix(matrix, 0.07, "trapezoid"),
                               torch.linalg.solve(identity - 0.035 * matrix, identity + 0.035 * matrix))


def test_published_oscillator_numbers():
    # Lambda = [[0, 1], [-1, 0]], dt = 0.05: forward Euler learns damping -dt/2, backward Euler +dt/2, both
    # with relative error dt/2; the trapezoid rule dt^2/12; the matrix logarithm recovers Lambda to round-off.
    dt = 0.05
    omega = torch.linalg.matrix_exp(dt * ROTATION)
    euler = closed_form_operator(omega, dt, "euler")
    backward = closed_form_operator(omega, dt, "backward_euler")
    trapezoid = closed_form_operator(omega, dt, "trapezoid")
    assert euler.diagonal().tolist() == pytest.approx([-dt / 2] * 2, rel=1e-3)
    assert backward.diagonal().tolist() == pytest.approx([dt / 2] * 2, rel=1e-3)
    assert relative_error(euler, ROTATION) == pytest.approx(dt / 2, rel=1e-3)
    assert relative_error(backward, ROTATION) == pytest.approx(dt / 2, rel=1e-3)
    assert relative_error(trapezoid, ROTATION) == pytest.approx(dt**2 / 12, rel=1e-3)
    assert relative_error(logarithm_operator(omega, dt), ROTATION) < 1e-13


@pytest.mark.parametrize("scheme", ["euler", "backward_euler", "trapezoid", "midpoint", "rk4"])
def test_gradient_trained_operator_agrees_with_the_inverted_stability_function(scheme):
    dt = 0.05
    oscillator = HarmonicOscillator()
    states = oscillator.solution(torch.tensor([[1.0, 0.0], [0.3, -0.8]], dtype=torch.float64),
                                 torch.arange(31, dtype=torch.float64) * dt).reshape(-1, 2)
    omega = oscillator.step_map(dt)
    successors = states @ omega.T
    field = LinearVectorField(2)

    def loss(index):
        return torch.mean((states @ stability_matrix(field.operator, dt, scheme).T - successors) ** 2)

    train(field, loss, len(states), TrainingSettings(iterations=4000, learning_rate=0.05, final_learning_rate=1e-6,
                                                     patience=4000, min_improvement=0.0, progress=False))
    torch.testing.assert_close(field.operator.detach(), scheme_operator(omega, dt, scheme), rtol=0, atol=1e-7)


def test_least_squares_map_recovers_the_exact_map_from_trajectories():
    oscillator = HarmonicOscillator(1.5, 0.1)
    trajectory = oscillator.solution(torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64), torch.arange(50, dtype=torch.float64) * 0.1)
    omega = least_squares_map(trajectory[:-1].reshape(-1, 2), trajectory[1:].reshape(-1, 2))
    torch.testing.assert_close(omega, oscillator.step_map(0.1), rtol=0, atol=1e-12)


def test_logarithm_warns_at_the_nyquist_bound_instead_of_returning_silently():
    with pytest.warns(LogarithmWarning, match="negative real axis"):
        logarithm_operator(torch.linalg.matrix_exp(math.pi * ROTATION), math.pi)
    with pytest.warns(LogarithmWarning, match="close to"):
        logarithm_operator(torch.linalg.matrix_exp(3.0 * ROTATION), 3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logarithm_operator(torch.linalg.matrix_exp(0.5 * ROTATION), 0.5)
    with pytest.raises(ValueError, match="singular"):
        logarithm_operator(torch.zeros(2, 2), 0.1)


def test_learned_wave_operator_is_matched_to_its_stencil():
    wave = WaveEquation(nodes=12, n_modes=10, stencil_order=4)
    for order in (2, 4, 6):
        match = closest_stencil(wave.operator_matrix(order), wave)
        assert match["closest_order"] == order and match["distances"][order] < 1e-14


# -- the study ------------------------------------------------------------------------------------------------------


def test_ladder_holds_the_training_step_and_its_sub_multiples():
    assert study_ladder(2.0, 0.1) == (5, 10, 20, 40, 80, 160, 320, 640, 1280)
    assert study_ladder(2.1, 0.1, coarser=2, finer=2) == (21, 42, 84)  # 21 steps: no coarser rung divides
    with pytest.raises(ValueError, match="does not divide"):
        study_ladder(2.05, 0.1)


def test_study_flags_a_scheme_modified_field_discrete_and_the_true_field_continuous():
    # Without any training: the Euler-modified operator (Omega - I)/dt is exactly what a perfect model trained
    # inside Euler learns; the RK4-inverted operator is what RK4 training converges to.
    oscillator = HarmonicOscillator()
    dt = 0.1
    omega = oscillator.step_map(dt)
    fields = {
        "true field": oscillator,
        "euler-modified": LinearVectorField(2, closed_form_operator(omega, dt, "euler")),
        "noisy continuous": LinearVectorField(2, oscillator.matrix + 1e-3 * torch.tensor([[0.3, 0.1], [-0.2, 0.4]])),
    }
    x0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    study = convergence_study(fields, lambda t: oscillator.solution(x0, t), x0, training_dt=dt, t_final=2.0,
                              training_schemes={"euler-modified": ["euler"], "noisy continuous": ["euler"]})
    assert study.evaluation("euler-modified", "euler").is_discrete
    assert study.evaluation("euler-modified", "euler").dip_depth < 1e-6
    noisy_euler = study.evaluation("noisy continuous", "euler")
    assert noisy_euler.is_continuous and noisy_euler.rate.rate == pytest.approx(1.0, abs=0.15)
    for scheme, order in (("euler", 1), ("midpoint", 2), ("rk4", 4)):
        assert study.evaluation("true field", scheme).rate.rate == pytest.approx(order, abs=0.2)
    assert "discrete" in study.model_verdict("euler-modified")
    # moved to RK4 the Euler-modified field converges, to x' = G(x): 5 % of the state off the oscillator
    moved = study.evaluation("euler-modified", "rk4")
    assert moved.kind == "another system" and moved.is_continuous and not moved.is_faithful
    assert 0.04 < moved.relative_plateau < 0.07
    assert moved.verdict.startswith("continuous, another system: at a plateau of 5.")
    assert noisy_euler.kind == "faithful" and study.evaluation("noisy continuous", "rk4").relative_plateau < 1e-3
    assert study.evaluation("true field", "rk4").kind == "faithful"
    table = study.swap_table()
    assert "| euler-modified | " in table and "*" in table and "another system" in table and "discrete" in table
    payload = study.to_dict()["models"]["euler-modified"]
    assert payload["verdict"].startswith("discrete") and payload["kind"] == "discrete"
    assert payload["evaluations"]["rk4"]["kind"] == "another system"


def test_every_verdict_fits_its_panel_of_the_grid():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    oscillator = HarmonicOscillator()
    dt = 0.1
    fields = {"true field": oscillator,
              "euler-modified": LinearVectorField(2, closed_form_operator(oscillator.step_map(dt), dt, "euler")),
              "rk4-inverted": LinearVectorField(2, scheme_operator(oscillator.step_map(dt), dt, "rk4"))}
    x0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    study = convergence_study(fields, lambda t: oscillator.solution(x0, t), x0, training_dt=dt, t_final=2.0,
                              training_schemes={"euler-modified": ["euler"], "rk4-inverted": ["rk4"]}, finer=2)
    kinds = {e.kind for e in study.evaluations.values()}
    assert {"discrete", "another system", "faithful", "converging"} <= kinds  # every kind of label is drawn
    figure = study.plot_grid()
    renderer = figure.canvas.get_renderer()
    for ax in figure.axes:
        panel = ax.get_window_extent(renderer)
        (label,) = [text for text in ax.texts if text.get_text()]
        box = label.get_window_extent(renderer)
        assert panel.x0 <= box.x0 and box.x1 <= panel.x1 and panel.y0 <= box.y0 and box.y1 <= panel.y1, (
            ax.get_title(), label.get_text())
    plt.close(figure)


def test_an_error_that_bends_onto_its_plateau_converges_without_an_order():
    # A field 5 % off the oscillator's, in Euler: the error falls from 33 % to 2.8 % of the state as dt is refined
    # 16-fold, bending all the way onto its plateau, so no asymptotic order exists on the ladder; it converges.
    oscillator = HarmonicOscillator()
    x0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    kinds = {}
    for size in (0.05, 0.3):
        field = oscillator.matrix + size * torch.tensor([[0.3, 0.1], [-0.2, 0.4]], dtype=torch.float64)
        wrong = LinearVectorField(2, field)
        study = convergence_study({"wrong": wrong}, lambda t: oscillator.solution(x0, t), x0, training_dt=0.1,
                                  t_final=2.0, schemes=["euler"], training_schemes={"wrong": ["euler"]}, finer=4)
        kinds[size] = study.evaluation("wrong", "euler")
    assert kinds[0.05].kind == "converging" and "no asymptotic order on this ladder" in kinds[0.05].verdict
    assert kinds[0.05].rate is None or kinds[0.05].rate.rate < 0.5
    assert kinds[0.3].kind == "another system" and 0.1 < kinds[0.3].relative_plateau < 0.2


def test_a_dip_below_one_percent_of_the_state_is_not_called_discrete():
    # The RK4-inverted operator reproduces exact data at dt_train to round-off and is O(dt^4) off the truth:
    # its error rises from 1e-15 to 1e-6 of the state when dt is refined. That dip is RK4's own trained-in error,
    # not a discrete map; with significant_error=0 every dip counts and the verdict flips.
    oscillator = HarmonicOscillator()
    dt = 0.1
    fields = {"rk4-inverted": LinearVectorField(2, scheme_operator(oscillator.step_map(dt), dt, "rk4"))}
    x0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    arguments = dict(training_dt=dt, t_final=2.0, schemes=["rk4"], training_schemes={"rk4-inverted": ["rk4"]})
    study = convergence_study(fields, lambda t: oscillator.solution(x0, t), x0, **arguments)
    evaluation = study.evaluation("rk4-inverted", "rk4")
    assert evaluation.dip_depth < 1e-6 and 1e-7 < evaluation.relative_plateau < 1e-5
    assert evaluation.verdict.startswith("continuous, faithful: at a plateau of 9.6e-05 % of the state")
    strict = convergence_study(fields, lambda t: oscillator.solution(x0, t), x0, significant_error=0.0, **arguments)
    assert strict.model_verdict("rk4-inverted") == "discrete: overfits dt_train"
    assert strict.to_dict()["thresholds"]["significant_error"] == 0.0
    with pytest.raises(ValueError, match="significant_error"):
        convergence_study(fields, lambda t: oscillator.solution(x0, t), x0, significant_error=-1.0, **arguments)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_small_study_reproduces_the_finding(tmp_path):
    # A fast configuration of the main job: Euler-trained G is a discrete map, RK4-trained G is continuous and
    # transfers to the other schemes with a plateau far below the Euler-trained one's.
    recipe = LearnedIntegratorRecipe("oscillator", {"frequency": 1.0}, (1.0, 0.0), training_time=10.0, iterations=1500,
                         training_schemes=(("euler",), ("rk4",)), width=16,
                         held_out_states=(("inside", (0.5, 0.0)), ("outside", (2.0, 0.0))))
    outcome = run_learned_integrators(recipe, tmp_path / "out", progress=False, neural_ode=True)
    study = outcome.study
    assert study.model_verdict("mlp euler").startswith("discrete")
    assert study.model_verdict("mlp rk4").startswith("continuous, faithful")
    assert study.model_kind("mlp euler") == "discrete" and study.model_kind("mlp rk4") == "faithful"
    assert study.evaluation("mlp euler", "rk4").kind == "another system"
    euler_plateau = study.evaluation("mlp euler", "rk4").rms_plateau
    rk4_plateau = study.evaluation("mlp rk4", "rk4").rms_plateau
    assert rk4_plateau < euler_plateau / 5
    assert study.evaluation("mlp rk4", "euler").rate.rate == pytest.approx(1.0, abs=0.3)  # transfers to euler
    # the continuous reference, trained through an adaptive solver, is continuous too
    assert study.model_verdict("neural ode").startswith("continuous")
    # the ResNet baseline x + dt N(x) is forward Euler with a frozen step: it trains to the Euler model's loss
    resnet = next(name for name in outcome.histories if name.startswith("skip map"))
    assert outcome.histories[resnet].best_loss == pytest.approx(outcome.histories["mlp euler"].best_loss, rel=1e-6)
    assert {b["model"] for b in outcome.baselines} == {"direct map x -> N(x)", resnet}
    names = sorted(path.name for path in outcome.files)
    assert names == ["convergence_grid.png", "report.md", "results.json"]
    assert "discrete: overfits dt_train" in (tmp_path / "out" / "report.md").read_text()
    # generalisation. Finer times: the RK4-trained G keeps its error at dt_train / 16 (a continuous model), the
    # Euler-trained one cannot interpolate (measured: x26); new initial states: from outside the training orbit
    # the plateau grows (extrapolation); longer times: every model runs to twice the horizon
    finer = outcome.generalisation["finer"]
    assert 0.9 < finer["mlp rk4"]["dt_train/16"] < 1.1 and finer["mlp euler"]["dt_train/16"] > 5
    assert finer["true field"]["dt_train/16"] < 1e-3  # the exact field: the scheme's error vanishes
    held = outcome.generalisation["held_out"]
    outside = held["outside"]["study"].evaluation("mlp rk4", "rk4").relative_plateau
    assert outside > study.evaluation("mlp rk4", "rk4").relative_plateau
    assert held["inside"]["study"].model_kind("true field") == "faithful"
    longer = outcome.generalisation["longer"]
    assert longer["true field"]["relative_rms_error"] < 1e-4 and longer["mlp rk4"]["horizon"] == 20.0
    assert "## Generalisation" in (tmp_path / "out" / "report.md").read_text()
    # with the inside orbit in the training data too, the RK4-trained G does better from it (measured, this budget:
    # 6.7 % -> 4.9 % of the state; at 4000 iterations 5.7 % -> 2.7 %, and from outside 20 % -> 15 %)
    two_orbits = dataclasses.replace(recipe, training_states=((0.5, 0.0),), training_schemes=(("rk4",),),
                                     discrete_baselines=False)
    wider = run_learned_integrators(two_orbits, None, progress=False)
    inside_one = held["inside"]["study"].evaluation("mlp rk4", "rk4").relative_plateau
    inside_two = wider.generalisation["held_out"]["inside"]["study"].evaluation("mlp rk4", "rk4").relative_plateau
    assert inside_two < 0.85 * inside_one, (inside_one, inside_two)


def test_the_learned_integrators_example_runs_and_shows_the_finding(tmp_path):
    """examples/learned_integrators.py as a user runs it (fewer iterations): a dataset file written and read,
    the Euler-trained G judged a discrete map, the RK4-trained G continuous with a plateau far below the
    Euler-trained one's once dt is refined."""
    example = Path(__file__).parents[1] / "examples" / "learned_integrators.py"
    done = subprocess.run([sys.executable, str(example), "-o", str(tmp_path), "--iterations", "2000"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "G trained in euler: discrete: overfits dt_train" in done.stdout
    assert "G trained in rk4: continuous" in done.stdout
    assert {"pendulum.h5", "study.json", "convergence_grid.png"} <= {p.name for p in tmp_path.iterdir()}
    models = json.loads((tmp_path / "study.json").read_text())["models"]
    plateau = {name: models[f"G trained in {name}"]["evaluations"]["rk4"]["rms_errors"][-1] for name in ("euler", "rk4")}
    assert plateau["rk4"] < plateau["euler"] / 5, plateau


@pytest.mark.parametrize("changes, message", [
    ({"training_dt": 0.0}, "training_dt must be a finite number > 0, got 0.0"),
    ({"training_dt": 0.3}, "does not divide training_time"),
    ({"training_schemes": ()}, "at least one non-empty group"),
    ({"training_schemes": (("euler",), ())}, "at least one non-empty group"),
    ({"evaluation_schemes": ("rk5",)}, "unknown scheme 'rk5'"),
    ({"networks": ("transformer",)}, "networks must be some of"),
    ({"iterations": 0}, "iterations must be an integer >= 1"),
    ({"learning_rate": 1e300}, r"learning_rate must be a number in \(0, 1000\], got 1e\+300"),
])
def test_a_bad_recipe_fails_when_it_is_made(changes, message):
    from dynlearn.analysis.experiments.learned_integrators import LearnedIntegratorRecipe

    with pytest.raises(ValueError, match=message):
        LearnedIntegratorRecipe("pendulum", **changes)


def test_seeds_are_distinct_integers_checked_before_any_work():
    from dynlearn._checks import as_seeds
    from dynlearn.analysis.experiments.learned_integrators import run_learned_integrators

    assert as_seeds("seeds", [3, 0, 2**63 - 1]) == (3, 0, 2**63 - 1)
    for seeds, message in (([], "at least one seed"), ([1, 1], "repeats a seed"), ([-1], "seeds must be an integer"),
                           ([2**63], "seeds must be an integer"), ([1.5], "seeds must be an integer")):
        with pytest.raises((ValueError, TypeError), match=message):
            run_learned_integrators("oscillator", seeds=seeds, progress=False)


_KILLED_TRAINING = """
import math, sys, torch
from dynlearn.fields import MLP, NeuralVectorField, TrainingSettings, embedded_loss, train
from dynlearn.systems import make_system

def run(checkpoint, iterations):
    pendulum = make_system("pendulum")
    states = pendulum.solution(torch.tensor([2.0, 0.0], dtype=torch.float64), torch.arange(201, dtype=torch.float64) * 0.05)
    torch.manual_seed(0)
    field = NeuralVectorField(MLP(2, 2, 16).double())
    loss = embedded_loss(field, states[:-1], states[1:, None], 0.05, ("rk4",))
    settings = TrainingSettings(iterations=iterations, batch_size=16, patience=10**6, checkpoint_every=50, seed=4,
                                progress=False)
    return field, train(field, loss, 200, settings, checkpoint=checkpoint)

if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]))
"""


def test_a_killed_training_resumes_bit_for_bit(tmp_path):
    """train in a subprocess, SIGKILL after a checkpoint, resume here: the same weights and losses, bit for bit, as
    a run never interrupted (minibatch order and every random state come back from the checkpoint)."""
    import signal
    import time

    script = tmp_path / "killed_training.py"
    script.write_text(_KILLED_TRAINING)
    checkpoint = tmp_path / "run.pt"
    process = subprocess.Popen([sys.executable, str(script), str(checkpoint), "800"])
    deadline = time.time() + 120
    while time.time() < deadline and not checkpoint.exists():
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    namespace: dict = {}
    exec(compile(_KILLED_TRAINING, str(script), "exec"), namespace)
    stopped_at = len(torch.load(checkpoint, weights_only=True)["losses"])
    assert 0 < stopped_at < 800, "the run ended before it could be killed"
    resumed, resumed_history = namespace["run"](checkpoint, 800)
    whole, whole_history = namespace["run"](None, 800)
    assert resumed_history.losses == whole_history.losses
    for a, b in zip(resumed.parameters(), whole.parameters()):
        assert torch.equal(a, b)
