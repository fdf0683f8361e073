"""The autoencoder's latent dynamics beyond the free Omega: continuous time (exp(dt Lambda), Lambda inside a
Runge-Kutta scheme, the continuous Lyapunov prior), the consistent backward map, and the run that puts every model
side by side."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dynlearn.autoencoder.lyapunov import (continuous_lyapunov_eigenvalues, continuous_stability_prior,
                                           solve_continuous_lyapunov, spectral_abscissa)
from dynlearn.autoencoder.model import (AutoencoderLoss, PhysicsAwareAutoencoder, consistency_loss,
                                        snapshot_windows)
from dynlearn.autoencoder.training import AutoencoderTrainingSettings, train_autoencoder
from dynlearn.datasets import write_dataset
from dynlearn.integration import step

_spec = importlib.util.spec_from_file_location("autoencoder_tests", Path(__file__).with_name("test_autoencoder.py"))
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)  # its helpers: a field dataset of travelling waves, the dynlearn command
_dynlearn, field_dataset, travelling_waves = _helpers._dynlearn, _helpers.field_dataset, _helpers.travelling_waves

matrices = arrays(np.float64, st.tuples(st.integers(1, 6)).map(lambda s: (s[0], s[0])),
                  elements=st.floats(-2.0, 2.0, allow_nan=False))


def away_from_the_axis(matrix: np.ndarray, margin: float = 0.05) -> bool:
    """No eigenvalue near the imaginary axis and no pair with lambda_i + conj(lambda_j) near 0 (where (4) is
    singular)."""
    eigenvalues = np.linalg.eigvals(matrix)
    sums = np.abs(eigenvalues[:, None] + eigenvalues[None, :].conj())
    return bool(np.all(np.abs(eigenvalues.real) > margin) and np.all(sums > margin))


# ------------------------------------------------------------------------------------------------ Lyapunov
@settings(max_examples=60, deadline=None)
@given(matrices)
def test_continuous_lyapunov_solves_its_equation_and_agrees_with_scipy(matrix):
    """Lambda^T P + P Lambda = -I to rounding (relative to ||Lambda|| ||P||), P symmetric, scipy's Bartels-Stewart
    agrees, and P has as many negative eigenvalues as Lambda has in the right half-plane (inertia theorem)."""
    assume(away_from_the_axis(matrix))
    generator = torch.from_numpy(matrix)
    p = solve_continuous_lyapunov(generator)
    identity = torch.eye(matrix.shape[0], dtype=torch.float64)
    residual = generator.T @ p + p @ generator + identity
    scale = float(torch.linalg.matrix_norm(generator) * torch.linalg.matrix_norm(p)) + 1.0
    assert float(residual.abs().max()) <= 1e-10 * scale
    torch.testing.assert_close(p, p.T, rtol=0, atol=0)
    reference = scipy.linalg.solve_continuous_lyapunov(matrix.T, -np.eye(matrix.shape[0]))
    np.testing.assert_allclose(p.numpy(), reference, rtol=1e-8, atol=1e-10 * np.abs(reference).max())
    unstable = int((np.linalg.eigvals(matrix).real > 0).sum())
    assert int((continuous_lyapunov_eigenvalues(generator) < 0).sum()) == unstable


def test_the_continuous_lyapunov_gradient_is_the_adjoints():
    generator = torch.tensor([[0.3, 1.2, 0.0], [-0.8, -0.4, 0.5], [0.1, 0.2, -1.1]], dtype=torch.float64,
                             requires_grad=True)
    assert torch.autograd.gradcheck(solve_continuous_lyapunov, (generator,))


@settings(max_examples=40, deadline=None)
@given(matrices, st.floats(0.1, 3.0))
def test_the_continuous_prior_is_zero_for_hurwitz_generators_and_pushes_unstable_ones_back(matrix, shift):
    """rho of (2) on P of (4): zero (and no gradient) when every Re lambda < 0; positive when one is > 0, and a
    gradient step on the prior alone lowers it."""
    eigenvalues = np.linalg.eigvals(matrix)
    stable = torch.from_numpy(matrix - (eigenvalues.real.max() + shift) * np.eye(matrix.shape[0]))
    stable.requires_grad_(True)
    prior = continuous_stability_prior(stable)
    prior.backward()
    assert float(prior.detach()) == 0.0 and float(stable.grad.abs().max()) == 0.0
    unstable = torch.from_numpy(matrix - (eigenvalues.real.max() - shift) * np.eye(matrix.shape[0]))
    assume(away_from_the_axis(unstable.numpy(), 0.05))
    unstable.requires_grad_(True)
    value = continuous_stability_prior(unstable, gamma=4.0)
    assume(float(value.detach()) > 1e-8)  # a P eigenvalue far below zero is the prior's blind spot (module docstring)
    value.backward()
    assert torch.isfinite(unstable.grad).all()
    moved = (unstable - 1e-3 * unstable.grad / unstable.grad.norm()).detach()
    assert float(continuous_stability_prior(moved)) < float(value.detach())


def test_the_continuous_prior_is_finite_on_the_imaginary_axis():
    """A rotation generator (eigenvalues +-i, where (4) is singular) takes the damped problem: finite P, prior and
    gradient."""
    generator = torch.tensor([[1e-13, 1.0], [-1.0, 1e-13]], dtype=torch.float64, requires_grad=True)
    assert bool(torch.isfinite(solve_continuous_lyapunov(generator)).all())
    prior = continuous_stability_prior(generator)
    prior.backward()
    assert torch.isfinite(prior) and bool(torch.isfinite(generator.grad).all())
    assert spectral_abscissa(generator) == pytest.approx(1e-13, abs=1e-15)


# ------------------------------------------------------------------------------------------------ the model
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), k=st.integers(1, 8), dt=st.floats(0.01, 2.0), factor=st.floats(0.1, 4.0))
def test_the_exact_latent_map_is_scipys_matrix_exponential(seed, k, dt, factor):
    """Omega(h) = exp(h Lambda) for the model's Lambda at any h (the record's step or another), against
    scipy.linalg.expm; and exp((h1 + h2) Lambda) = exp(h1 Lambda) exp(h2 Lambda), the semigroup law that makes the
    predictions at dt / 2^k and 2^k dt one trajectory."""
    model = PhysicsAwareAutoencoder(8, latent=k, widths=(4,), seed=seed, time_step=dt).double()
    with torch.no_grad():
        model.generator.add_(torch.randn(k, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    generator = model.generator.detach().numpy()
    for h in (dt, factor * dt):
        np.testing.assert_allclose(model.latent_map(h).detach().numpy(), scipy.linalg.expm(h * generator),
                                   rtol=1e-9, atol=1e-12 * max(1.0, np.abs(scipy.linalg.expm(h * generator)).max()))
    torch.testing.assert_close(model.latent_map(dt) @ model.latent_map(factor * dt),
                               model.latent_map((1 + factor) * dt), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("scheme", ["euler", "midpoint", "rk4", "rk38", "dopri5"])
def test_a_latent_map_inside_a_scheme_is_one_step_of_that_scheme(scheme):
    """R(dt Lambda) (the stability matrix) is one step of the Runge-Kutta stage loop on z' = Lambda z, and it
    tends to exp(dt Lambda) at the scheme's order."""
    model = PhysicsAwareAutoencoder(8, latent=5, widths=(4,), seed=3, time_step=0.2, scheme=scheme).double()
    generator = model.generator.detach()
    z = torch.randn(7, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    one_step = step(lambda t, x: x @ generator.T, 0.0, z, 0.2, scheme)
    torch.testing.assert_close(model.advance(z, 1)[0], one_step, rtol=1e-12, atol=1e-13)
    exact = PhysicsAwareAutoencoder(8, latent=5, widths=(4,), seed=3, time_step=0.2).double()
    torch.testing.assert_close(exact.generator, model.generator)  # the same start: only the time stepping differs
    errors = [float((model.latent_map(h) - exact.latent_map(h)).norm().detach()) for h in (0.2, 0.1)]
    from dynlearn.integration.tableaus import get_tableau
    order = get_tableau(scheme).order
    assert np.log2(errors[0] / errors[1]) == pytest.approx(order + 1, abs=0.3)  # local error O(h^(p+1))


def test_predictions_at_finer_and_coarser_steps_are_one_trajectory_for_the_exact_flow():
    model = PhysicsAwareAutoencoder(16, latent=4, widths=(8,), seed=1, time_step=0.5).double()
    y0 = travelling_waves(3, 16)
    at_record = model.predict(y0, 8)
    finer = model.predict(y0, 32, time_step=0.125)  # dt / 4: every fourth is the record's step
    coarser = model.predict(y0, 4, time_step=1.0)  # 2 dt
    torch.testing.assert_close(finer[::4], at_record, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(coarser, at_record[::2], rtol=1e-10, atol=1e-10)
    discrete = PhysicsAwareAutoencoder(16, latent=4, widths=(8,), seed=1)
    with pytest.raises(ValueError, match="only a continuous-time model"):
        discrete.predict(y0.float(), 4, time_step=0.25)


@pytest.mark.parametrize("options, message", [
    ({"time_step": 0.1, "omega_bound": 1.0}, "omega_bound and backward apply to a discrete latent map"),
    ({"time_step": 0.1, "backward": True}, "omega_bound and backward apply to a discrete latent map"),
    ({"scheme": "rk4"}, "give time_step too"),
    ({"time_step": 0.1, "scheme": "rk5-nonexistent"}, "rk5-nonexistent"),
    ({"time_step": -1.0}, "time_step"),
    ({"backward": True, "omega_bound": 0.9}, "separate models"),
])
def test_a_bad_latent_dynamics_option_fails_in_one_line(options, message):
    with pytest.raises(ValueError, match=message):
        PhysicsAwareAutoencoder(16, latent=4, **options)


# ------------------------------------------------------------------------------------------------ consistent
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), k=st.integers(1, 10))
def test_the_consistency_loss_is_zero_exactly_for_an_inverse_pair(seed, k):
    generator = torch.Generator().manual_seed(seed)
    omega = torch.eye(k, dtype=torch.float64) + 0.3 * torch.randn(k, k, generator=generator, dtype=torch.float64)
    assume(float(torch.linalg.cond(omega)) < 1e3)
    assert float(consistency_loss(omega, torch.linalg.inv(omega))) <= 1e-20 * k**2 * float(torch.linalg.cond(omega))**2
    other = torch.linalg.inv(omega) + 1e-2 * torch.randn(k, k, generator=generator, dtype=torch.float64)
    assert float(consistency_loss(omega, other)) > 0


def test_the_consistency_loss_matches_its_definition_block_by_block():
    omega = torch.tensor([[0.9, 0.2, 0.0], [0.1, 0.8, 0.3], [0.0, -0.2, 0.7]], dtype=torch.float64)
    backward = omega.T.clone()
    expected = 0.0
    for j in (1, 2, 3):
        identity = np.eye(j)
        d, c = backward.numpy(), omega.numpy()
        expected += (np.sum((d[:j] @ c[:, :j] - identity) ** 2) + np.sum((c[:j] @ d[:, :j] - identity) ** 2)) / (2 * j)
    assert float(consistency_loss(omega, backward)) == pytest.approx(expected, rel=1e-12)


def test_the_consistent_model_learns_a_backward_map_close_to_the_inverse():
    windows = snapshot_windows(travelling_waves(120, 32).float(), 3)
    model = PhysicsAwareAutoencoder(32, latent=4, widths=(16,), seed=0, backward=True)
    loss = AutoencoderLoss(steps=3, kappa=0.0, backward=0.1, consistency=1.0)
    history = train_autoencoder(model, windows, loss, AutoencoderTrainingSettings(epochs=40, batch_size=16,
                                                                                   progress=False))
    assert history.backward[-1] < history.backward[0] and history.consistency[-1] < 1e-2
    product = model.omega_backward.detach() @ model.latent_map().detach()
    torch.testing.assert_close(product, torch.eye(4), rtol=0, atol=0.1)
    assert set(loss.terms(model, windows[:5])) == {"prediction", "reconstruction", "prior", "backward", "consistency"}


# ------------------------------------------------------------------------------------------------ the run
def test_every_model_trains_evaluates_and_reports_side_by_side(tmp_path):
    """`dynlearn train autoencoder --models all continuous-euler` then `dynlearn evaluate`: every model trained,
    reloaded with its latent dynamics, evaluated from the same initial conditions; the continuous-time ones meet the
    latent convergence test, whose verdicts are in the table."""
    data = write_dataset(tmp_path / "waves.h5", field_dataset(travelling_waves(240, 64)))
    run = tmp_path / "run"
    done = subprocess.run([*_dynlearn(), "--progress", "off", "train", "autoencoder", "--data", str(data), "--epochs",
                           "3", "--models", "all", "continuous-euler", "-o", str(run)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    evaluated = subprocess.run([*_dynlearn(), "evaluate", str(run)], capture_output=True, text=True)
    assert evaluated.returncode == 0, evaluated.stderr
    results = json.loads((run / "evaluation" / "results.json").read_text())
    names = ["aware", "stable", "continuous", "continuous-rk4", "consistent", "agnostic", "agnostic-decay",
             "continuous-euler"]
    assert list(results["models"]) == names
    assert set(results["models"]["aware"]["error_at"]) == {"1", "10", "50", "100"}
    assert results["models"]["stable"]["spectral_radius"] <= 1 + 1e-6
    for name in names:
        row = results["models"][name]
        assert row["training_seconds"] > 0 and np.isfinite(row["one_step_error"])
        assert ("latent_convergence" in row) == name.startswith("continuous")
    study = results["models"]["continuous-rk4"]["latent_convergence"]
    assert study["models"]["continuous-rk4"]["trained_in"] == ["rk4"]
    ratios = [dt / study["training_dt"] for dt in study["dts"]]
    assert ratios == pytest.approx([4, 2, 1, 1 / 2, 1 / 4, 1 / 8, 1 / 16])
    table = (run / "evaluation" / "table.md").read_text()
    assert "convergence test in latent space" in table and "exact flow (judged in rk4)" in table
    assert "| continuous-euler | euler |" in table
    from dynlearn.analysis.experiments.autoencoder_evaluation import load_model

    loaded = load_model(run / "continuous-rk4")
    assert loaded.continuous_time and loaded.scheme == "rk4" and loaded.time_step == pytest.approx(0.2)
    assert load_model(run / "consistent").backward and load_model(run / "stable").omega_bound == 1.0
    bad = subprocess.run([*_dynlearn(), "train", "autoencoder", "--data", str(data), "--models", "continuous-nope",
                          "-o", str(tmp_path / "other")], capture_output=True, text=True)
    assert bad.returncode == 2 and "continuous-nope" in bad.stderr and "Traceback" not in bad.stderr


def test_a_run_written_before_the_new_recipe_fields_resumes(tmp_path):
    """A run folder whose config.json predates the recipe's new fields (and the time step) is the same run: the
    same command resumes it instead of refusing "other settings"; a model it does not hold joins it."""
    from dynlearn.analysis.experiments.autoencoder_evaluation import evaluate_run, train_run

    data = write_dataset(tmp_path / "waves.h5", field_dataset(travelling_waves(240, 64)))
    train_run(data, tmp_path / "run", models=("agnostic",), epochs=2, progress=False)
    config_path = tmp_path / "run" / "config.json"
    config = json.loads(config_path.read_text())
    for key in ("backward_weight", "consistency_weight", "report_steps"):
        del config["recipe"][key]
    del config["time_step"]
    config_path.write_text(json.dumps(config))
    histories = train_run(data, tmp_path / "run", models=("agnostic",), epochs=2, progress=False)
    assert histories["agnostic"].epochs == 2
    # another model joins the run; the one it holds is kept and evaluated beside it
    train_run(data, tmp_path / "run", models=("continuous-midpoint",), epochs=2, progress=False)
    assert json.loads(config_path.read_text())["models"] == ["agnostic", "continuous-midpoint"]
    assert list(evaluate_run(tmp_path / "run")["models"]) == ["agnostic", "continuous-midpoint"]


def test_the_synthetic_sst_composes_with_the_sst_recipe(tmp_path):
    """The default synthetic SST (6 years, 2192 days) gets the SST recipe's full evaluation; a one-year record is
    sized down and says so; both through the CLI's generate and train."""
    from dynlearn.analysis.experiments.autoencoder_evaluation import AUTOENCODER_RECIPES, _check_lengths

    assert _check_lengths(AUTOENCODER_RECIPES["sst"], 2192, 2700)[2] == ""
    data = tmp_path / "sst.h5"
    generated = subprocess.run([*_dynlearn(), "--progress", "off", "generate", "sst", "--synthetic", "--years", "1",
                                "--resolution", "1.0", "-o", str(data)], capture_output=True, text=True)
    assert generated.returncode == 0, generated.stderr
    run = tmp_path / "run"
    done = subprocess.run([*_dynlearn(), "train", "autoencoder", "--data", str(data), "--epochs", "1", "--models",
                           "agnostic", "-o", str(run)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "evaluated from 30 initial conditions over 92 steps" in done.stderr
    assert subprocess.run([*_dynlearn(), "evaluate", str(run)], capture_output=True).returncode == 0
    results = json.loads((run / "evaluation" / "results.json").read_text())
    assert results["horizon"] == 92 and set(results["models"]["agnostic"]["error_at"]) == {"1", "30", "90", "92"}
