"""The physics-aware autoencoder: the Lyapunov solve and prior, the model and its training, the experiment."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dynlearn.autoencoder.model import AutoencoderLoss, PhysicsAwareAutoencoder, snapshot_windows
from dynlearn.autoencoder.training import AutoencoderTrainingSettings, train_autoencoder
from dynlearn.datasets import TrajectoryDataset, write_dataset
from dynlearn.autoencoder.lyapunov import lyapunov_eigenvalues, solve_discrete_lyapunov, spectral_radius, stability_prior

matrices = arrays(np.float64, st.tuples(st.integers(1, 6)).map(lambda s: (s[0], s[0])),
                  elements=st.floats(-2.0, 2.0, allow_nan=False))


def away_from_the_circle(matrix: np.ndarray, margin: float = 0.05) -> bool:
    eigenvalues = np.linalg.eigvals(matrix)
    products = np.abs(eigenvalues[:, None] * eigenvalues[None, :] - 1)
    return bool(np.all(np.abs(np.abs(eigenvalues) - 1) > margin) and np.all(products > margin))


@given(matrices)
def test_lyapunov_solve_matches_scipy_with_a_small_residual(matrix):
    assume(away_from_the_circle(matrix))
    omega = torch.from_numpy(matrix)
    p = solve_discrete_lyapunov(omega)
    reference = scipy.linalg.solve_discrete_lyapunov(matrix.T, np.eye(matrix.shape[0]))  # A X A^H - X + Q = 0
    scale = max(1.0, np.abs(reference).max())
    np.testing.assert_allclose(p.numpy(), reference, atol=1e-8 * scale, rtol=1e-8)
    residual = omega.T @ p @ omega - p + torch.eye(matrix.shape[0], dtype=torch.float64)
    assert float(residual.abs().max()) < 1e-9 * scale * max(1.0, float(omega.abs().max()) ** 2)


@given(matrices)
def test_negative_eigenvalues_of_p_count_the_eigenvalues_outside_the_circle(matrix):
    assume(away_from_the_circle(matrix))
    outside = int((np.abs(np.linalg.eigvals(matrix)) > 1).sum())
    assert int((lyapunov_eigenvalues(torch.from_numpy(matrix)) < 0).sum()) == outside


@given(matrices, st.floats(0.3, 0.95))
@example(np.array([[1.1920929e-07, 1.0, 1.1920929e-07], [1.1920929e-07, 1.1920929e-07, 1.0], [1.1920929e-07] * 3]), 0.5)
def test_prior_is_zero_for_stable_and_positive_for_unstable_maps(matrix, radius):
    """The example (found by hypothesis in CI) is strongly non-normal: entries 101 after scaling to radius 0.5,
    cond(M) = 1e12; the damped solve gave P negative eigenvalues there, LU gives P's true 1 to 1e8."""
    assume(np.abs(np.linalg.eigvals(matrix)).max() > 1e-3)
    stable = torch.from_numpy(matrix * radius / np.abs(np.linalg.eigvals(matrix)).max())
    assert float(stability_prior(stable)) == 0.0
    # one eigenvalue clearly outside (|lambda| = 1.2): p of order -2, rho of order exp(-3/4)
    unstable = torch.block_diag(stable, torch.tensor([[1.2]], dtype=torch.float64))
    assert float(stability_prior(unstable)) > 0.1


@pytest.mark.parametrize("factor", [1.0, 1 - 1e-9, 1 + 1e-9, 1 - 1e-4, 1 + 1e-4])
def test_prior_and_its_gradient_are_finite_next_to_the_unit_circle(factor):
    angle = 0.37
    rotation = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], dtype=torch.float64)
    omega = torch.block_diag(rotation * factor, torch.tensor([[0.5]], dtype=torch.float64)).requires_grad_()
    value = stability_prior(omega)
    p = solve_discrete_lyapunov(omega)
    (value + p.sum()).backward()
    assert torch.isfinite(value) and torch.isfinite(p).all() and torch.isfinite(omega.grad).all()
    for single in (torch.ones(1, 1, dtype=torch.float64), -torch.eye(3, dtype=torch.float64)):  # M = 0 or singular
        single = single.clone().requires_grad_()
        stability_prior(single).backward()
        assert torch.isfinite(single.grad).all()


def test_lyapunov_gradient_matches_finite_differences():
    """Every route: stable (Hammarling), every eigenvalue outside (Hammarling on the inverse), both sides
    (Bartels-Stewart), and the regularised problem next to the circle (|lambda_i lambda_j - 1| = 0.02 below
    1e3 x the regularisation); P and the prior."""
    generator = torch.Generator().manual_seed(0)
    matrix = torch.randn(4, 4, dtype=torch.float64, generator=generator)
    radius = torch.linalg.eigvals(matrix).abs()
    mixed = torch.block_diag(matrix[:2, :2] * 0.5 / torch.linalg.eigvals(matrix[:2, :2]).abs().max(),
                             torch.tensor([[1.4, 0.3], [0.0, -1.7]], dtype=torch.float64))
    mixed[:2, 2:] = 0.7
    for omega in (matrix * 0.6 / radius.max(), matrix * 1.3 / radius.min(), mixed):
        omega = omega.clone().requires_grad_()
        assert torch.autograd.gradcheck(solve_discrete_lyapunov, (omega,))
        assert torch.autograd.gradcheck(lambda m: stability_prior(m, gamma=2.0), (omega,))
    # next to the circle (the regularised problem) P is smooth in Omega while the eigenvalues stay off it
    rotation = torch.tensor([[math.cos(0.37), -math.sin(0.37)], [math.sin(0.37), math.cos(0.37)]], dtype=torch.float64)
    outside = torch.block_diag(rotation * 1.01, torch.tensor([[0.5]], dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda m: solve_discrete_lyapunov(m, regularisation=1e-4), (outside,))


@st.composite
def non_normal_maps(draw, inside: bool = True, max_dimension: int = 6):
    """Omega = Q T Q^T: T block upper triangular with eigenvalues on its diagonal (real, or complex pairs as 2 x 2
    rotation blocks) of moduli in [0, 0.97] (``inside``) or [1.05, 3], and a strictly upper part scaled to
    10^0..10^2, so ||Omega|| reaches 1e2 and P up to 1e20; Q a random orthogonal matrix."""
    k = draw(st.integers(1, max_dimension))
    moduli = st.floats(0.0, 0.97) if inside else st.floats(1.05, 3.0)
    blocks, left = [], k
    while left:
        radius = draw(moduli)
        if left >= 2 and draw(st.booleans()):
            angle = draw(st.floats(0.1, 3.0))
            blocks.append(radius * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]))
            left -= 2
        else:
            blocks.append(np.array([[radius * draw(st.sampled_from([-1.0, 1.0]))]]))
            left -= 1
    generator = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    upper = np.triu(generator.standard_normal((k, k)), 1) * 10 ** draw(st.floats(0.0, 2.0))
    diagonal = scipy.linalg.block_diag(*blocks)
    triangular = diagonal + upper * (diagonal == 0)  # keep the 2 x 2 blocks as they are
    orthogonal = np.linalg.qr(generator.standard_normal((k, k)))[0]
    return orthogonal @ triangular @ orthogonal.T


def _residual(omega: torch.Tensor, p: torch.Tensor) -> float:
    """||Omega^T P Omega - P + I|| relative to ||Omega||^2 ||P|| (backward stability's scale)."""
    identity = torch.eye(omega.shape[0], dtype=torch.float64)
    scale = float(torch.linalg.matrix_norm(omega)) ** 2 * float(torch.linalg.matrix_norm(p)) + 1.0
    return float(torch.linalg.matrix_norm(omega.T @ p @ omega - p + identity)) / scale


@settings(max_examples=150, deadline=None)
@given(non_normal_maps(inside=True))
@example(np.array([[-0.016, -18.34, 16.44, 5.21, -10.23, 3.07], [-0.26, 0.31, -12.0, 2.37, 5.41, 9.41],
                   [-0.12, 0.13, 0.94, -14.5, 5.65, -4.8], [0.25, -0.06, 0.35, 0.12, 8.24, -4.45],
                   [0.28, -0.26, 0.47, -0.63, -0.52, 16.9], [-0.06, 0.14, -0.28, 0.05, 0.53, 0.59]]))
def test_a_stable_map_has_a_positive_definite_p_and_no_penalty_at_any_conditioning(matrix):
    """The audit's family (6 x 6, strictly upper part x 20: Kronecker LU gave P eigenvalues of -1e14 for 5 of 40
    seeds) and hypothesis's non-normal stable maps: P positive definite (its eigenvalues >= 1 in exact
    arithmetic), the prior exactly 0 with a zero gradient, the equation solved to round-off."""
    assume(np.abs(np.linalg.eigvals(matrix)).max() < 0.99)  # stable beyond doubt (eigenvalues are sensitive)
    omega = torch.from_numpy(matrix).requires_grad_()
    eigenvalues = lyapunov_eigenvalues(omega)
    assert float(eigenvalues.min()) > 0.5, eigenvalues
    prior = stability_prior(omega)
    prior.backward()
    assert float(prior.detach()) == 0.0 and float(omega.grad.abs().max()) == 0.0
    assert _residual(omega.detach(), solve_discrete_lyapunov(omega.detach())) < 1e-13


@settings(max_examples=100, deadline=None)
@given(non_normal_maps(inside=True, max_dimension=3), non_normal_maps(inside=False, max_dimension=3),
       st.floats(0.0, 1.0))
def test_the_inertia_of_p_counts_the_eigenvalues_outside_the_circle(stable, unstable, coupling):
    """Every eigenvalue outside (strongly non-normal), or some on each side (coupled by a block of up to 1):
    as many negative eigenvalues of P as eigenvalues of Omega outside the circle, and the prior on them."""
    for matrix in (unstable, scipy.linalg.block_diag(stable, unstable)):
        if matrix.shape != unstable.shape:
            matrix[: stable.shape[0], stable.shape[0] :] = coupling
        moduli = np.abs(np.linalg.eigvals(matrix))
        assume(np.all(np.abs(moduli - 1) > 0.02))
        assume(np.abs(np.linalg.eigvals(matrix)[:, None] * np.linalg.eigvals(matrix)[None, :] - 1).min() > 0.02)
        omega = torch.from_numpy(matrix)
        eigenvalues = lyapunov_eigenvalues(omega)
        assert int((eigenvalues < 0).sum()) == int((moduli > 1).sum())
        raw = torch.linalg.eigvalsh(solve_discrete_lyapunov(omega))  # no count imposed on these
        if float(raw.abs().max() / raw.abs().min()) < 1e12:  # conditioned well enough for signs to be exact
            assert int((raw < 0).sum()) == int((moduli > 1).sum())
        # the prior is (2) over those eigenvalues (those far below zero give exp(-|p - 1| / 4) = 0: module docstring)
        expected = float(torch.exp(-(eigenvalues[eigenvalues < 0] - 1).abs() / 4).sum())
        assert float(stability_prior(omega)) == pytest.approx(expected, rel=1e-6, abs=1e-300)
        assert _residual(omega, solve_discrete_lyapunov(omega)) < 1e-12


def _high_precision_lyapunov(matrix: np.ndarray, digits: int = 50) -> np.ndarray:
    """P from the Kronecker system solved by mpmath with ``digits`` digits."""
    import mpmath

    with mpmath.workdps(digits):
        k = matrix.shape[0]
        entries = [[mpmath.mpf(float(v)) for v in row] for row in matrix]
        system = mpmath.matrix(k * k, k * k)
        for a, b, c, d in np.ndindex(k, k, k, k):  # row-major vec of Omega^T P Omega - P
            system[a * k + b, c * k + d] = entries[c][a] * entries[d][b] - (1 if (a, b) == (c, d) else 0)
        solution = mpmath.lu_solve(system, mpmath.matrix([-1 if a == b else 0 for a, b in np.ndindex(k, k)]))
        return np.array([[float(solution[a * k + b]) for b in range(k)] for a in range(k)])


@settings(max_examples=25, deadline=None)
@given(st.one_of(non_normal_maps(inside=True, max_dimension=4), non_normal_maps(inside=False, max_dimension=4)))
def test_p_agrees_with_a_50_digit_solve(matrix):
    """Forward error against mpmath at 50 digits: 1e-15 for well-conditioned maps, growing with ||P|| (measured
    1e-8 at ||P|| = 3e13); bounded here by 1e-13 sqrt(||P||)."""
    reference = _high_precision_lyapunov(matrix)
    p = solve_discrete_lyapunov(torch.from_numpy(matrix)).numpy()
    size = np.linalg.norm(reference)
    assert np.linalg.norm(p - reference) <= 1e-13 * max(size, 1.0) ** 1.5, (size, np.linalg.norm(p - reference))


@pytest.mark.gpu
def test_the_lyapunov_solve_runs_on_cuda_as_on_the_cpu():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    generator = torch.Generator().manual_seed(3)
    for scale in (0.8, 1.3):
        matrix = torch.randn(6, 6, dtype=torch.float64, generator=generator)
        matrix = matrix * scale / torch.linalg.eigvals(matrix).abs().max()
        on_the_gpu = matrix.cuda().float().requires_grad_()
        p = solve_discrete_lyapunov(on_the_gpu)
        assert p.device.type == "cuda" and p.dtype == torch.float32
        torch.testing.assert_close(p.cpu(), solve_discrete_lyapunov(matrix.float()), rtol=1e-5, atol=1e-5)
        (p.sum() + stability_prior(on_the_gpu)).backward()
        assert on_the_gpu.grad.device.type == "cuda" and torch.isfinite(on_the_gpu.grad).all()


def test_the_audit_family_is_never_penalised():
    """The family of the audit, 40 seeds: the Kronecker LU of the earlier solver (and scipy's default) gave P
    negative eigenvalues for some of them (3 here, 5 on the audit's machine)."""
    for seed in range(40):
        generator = np.random.default_rng(seed)
        triangular = np.triu(generator.standard_normal((6, 6)), 1) * 20 + np.diag(generator.uniform(-0.95, 0.95, 6))
        orthogonal = np.linalg.qr(generator.standard_normal((6, 6)))[0]
        omega = torch.from_numpy(orthogonal @ triangular @ orthogonal.T)
        assert float(lyapunov_eigenvalues(omega).min()) > 0.99
        assert float(stability_prior(omega)) == 0.0


# ------------------------------------------------------------------------------------------------------ model
def travelling_waves(n_times: int = 240, m: int = 64, dt: float = 0.2) -> torch.Tensor:
    """A small periodic 'flow': two waves travelling across a periodic line (period 2 pi / 1.05 in t)."""
    x = torch.linspace(0, 2 * math.pi, m + 1, dtype=torch.float64)[:-1]
    t = torch.arange(n_times, dtype=torch.float64)[:, None] * dt
    return torch.sin(2 * x - 1.05 * t) + 0.4 * torch.sin(4 * x - 2.1 * t + 0.3) * torch.exp(-((x - 3) ** 2))


def test_windows_loss_and_prediction_shapes():
    snapshots = travelling_waves(20, 16)
    windows = snapshot_windows(snapshots, 2)
    assert windows.shape == (18, 3, 16)
    torch.testing.assert_close(windows[5, 2], snapshots[7])
    model = PhysicsAwareAutoencoder(16, latent=4, seed=0).double()
    predictions, reconstruction = model(windows[:, 0], 2)
    assert predictions.shape == (2, 18, 16) and reconstruction.shape == (18, 16)
    assert model.predict(snapshots[:3], 7).shape == (8, 3, 16)
    # Omega starts orthogonal times 0.99: every eigenvalue at radius 0.99
    np.testing.assert_allclose(torch.linalg.eigvals(model.omega.detach()).abs().numpy(), 0.99, rtol=1e-5)
    with pytest.raises(ValueError, match="larger than the data dimension"):
        PhysicsAwareAutoencoder(16, latent=17)
    with pytest.raises(ValueError, match="too few for 2-step targets"):
        snapshot_windows(snapshots[:2], 2)


def test_short_training_lowers_the_loss_and_keeps_the_aware_map_stable():
    snapshots = travelling_waves(120, 64).float()
    windows = snapshot_windows(snapshots[:100], 2)
    model = PhysicsAwareAutoencoder(64, latent=6, seed=0)
    history = train_autoencoder(model, windows, AutoencoderLoss(kappa=1.0),
                                AutoencoderTrainingSettings(epochs=150, progress=False))
    assert history.loss[-1] < 0.05 * history.loss[0]
    assert spectral_radius(model.omega) <= 1 + 1e-3
    bad = windows.clone()
    bad[3, 1, 7] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        train_autoencoder(PhysicsAwareAutoencoder(64, latent=6), bad, settings=AutoencoderTrainingSettings(epochs=1, progress=False))


def test_training_that_diverges_stops_in_one_line_and_saves_nothing(tmp_path):
    """kappa = 1e300 makes the first step's gradient infinite: the prior then meets a NaN Omega; the trainer says
    that the weights stopped being finite (not that Omega, which the user never gave, is bad) and writes nothing."""
    windows = snapshot_windows(travelling_waves(60, 32).float(), 2)
    checkpoint = tmp_path / "checkpoint.pt"
    with pytest.raises(FloatingPointError, match="stopped being finite in epoch 0; lower the learning rate or kappa"):
        train_autoencoder(PhysicsAwareAutoencoder(32, latent=4, seed=1), windows, AutoencoderLoss(kappa=1e300),
                          AutoencoderTrainingSettings(epochs=3, batch_size=16, progress=False), checkpoint=checkpoint)
    assert not checkpoint.exists()


def test_resumed_training_continues_exactly_where_it_stopped(tmp_path):
    windows = snapshot_windows(travelling_waves(60, 32).float(), 2)
    straight = PhysicsAwareAutoencoder(32, latent=4, seed=1)
    train_autoencoder(straight, windows, settings=AutoencoderTrainingSettings(epochs=20, batch_size=16, progress=False))
    checkpoint = tmp_path / "checkpoint.pt"
    interrupted = PhysicsAwareAutoencoder(32, latent=4, seed=1)
    import dynlearn.autoencoder.training as training

    def write_then_die(*args, **kwargs):  # the process is killed right after the checkpoint of epoch 10
        original(*args, **kwargs)
        raise KeyboardInterrupt

    original, training.atomic_write = training.atomic_write, write_then_die
    try:
        with pytest.raises(KeyboardInterrupt):
            train_autoencoder(interrupted, windows, checkpoint=checkpoint,
                              settings=AutoencoderTrainingSettings(epochs=20, batch_size=16, checkpoint_every=10, progress=False))
    finally:
        training.atomic_write = original
    resumed = PhysicsAwareAutoencoder(32, latent=4, seed=1)
    history = train_autoencoder(resumed, windows, settings=AutoencoderTrainingSettings(epochs=20, batch_size=16, progress=False),
                                checkpoint=checkpoint)
    assert history.epochs == 20
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------ experiment
def field_dataset(snapshots: torch.Tensor, system: str = "cylinder") -> TrajectoryDataset:
    states = snapshots.reshape(1, snapshots.shape[0], 4, -1)
    return TrajectoryDataset(states=states, times=torch.arange(snapshots.shape[0], dtype=torch.float64) * 0.2,
                             initial_conditions=states[:, 0].clone(), system=system, parameters={},
                             state_names=("vorticity",), generator={"kind": "analytical", "method": "test"}, t0=0.0,
                             dt=0.2)


def _dynlearn() -> list[str]:
    script = Path(sysconfig.get_path("scripts")) / "dynlearn"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dynlearn.cli"]


def test_train_and_evaluate_commands_write_the_table_plots_and_resume(tmp_path):
    data = write_dataset(tmp_path / "waves.h5", field_dataset(travelling_waves(240, 64)))
    run = tmp_path / "run"
    command = [*_dynlearn(), "train", "autoencoder", "--data", str(data), "--epochs", "4", "--prediction-steps", "3", "-o", str(run)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert {p.name for p in run.iterdir()} >= {"config.json", "preprocessing.pt", "aware", "agnostic", "agnostic-decay"}
    assert json.loads((run / "config.json").read_text())["recipe"]["steps"] == 3
    again = subprocess.run(command, capture_output=True, text=True)  # finished models are kept, not retrained
    assert again.returncode == 0 and "aware" in again.stdout
    other = subprocess.run([*command, "--kappa", "2"], capture_output=True, text=True)
    assert other.returncode == 2 and "other settings" in other.stderr
    evaluated = subprocess.run([*_dynlearn(), "evaluate", str(run)], capture_output=True, text=True)
    assert evaluated.returncode == 0, evaluated.stderr
    results = json.loads((run / "evaluation" / "results.json").read_text())
    assert set(results["models"]) == {"aware", "agnostic", "agnostic-decay"}
    assert len(results["initial_conditions"]) == 30 and results["horizon"] == 100
    assert min(results["initial_conditions"]) >= 100 and max(results["initial_conditions"]) + 100 <= 239
    for name in ("table.md", "relative_error.png", "eigenvalues.png"):
        assert (run / "evaluation" / name).is_file()
    assert len(results["models"]["aware"]["error_mean"]) == 101
    # persistence, the reference: exact at step 0, its own errors independently recomputed at the reported steps
    persistence = results["persistence"]
    assert persistence["error_mean"][0] == 0
    assert set(persistence["error_at"]) == set(results["models"]["aware"]["error_at"])
    field = travelling_waves(240, 64).numpy()
    field = field - field[:100].mean(axis=0)
    for step, value in persistence["error_at"].items():
        s = int(step)
        expected = np.mean([np.linalg.norm(field[t] - field[t + s]) / np.linalg.norm(field[t + s])
                            for t in results["initial_conditions"]])
        assert abs(value - expected) < 1e-5 * expected, (step, value, expected)
    assert "| persistence (y_hat = y(t0)) |" in (run / "evaluation" / "table.md").read_text()
    # one output policy: a second evaluation replaces the first only when asked to
    again = subprocess.run([*_dynlearn(), "evaluate", str(run)], capture_output=True, text=True)
    assert again.returncode == 2 and "holds the outputs of an earlier run" in again.stderr
    assert subprocess.run([*_dynlearn(), "evaluate", str(run), "--overwrite"], capture_output=True).returncode == 0

def test_the_default_wakes_length_trains_and_evaluates_with_the_default_recipe(tmp_path):
    """`dynlearn generate cylinder` writes 151 snapshots by default; the cylinder recipe trains on 100 and wants
    30 initial conditions x 100 steps: the evaluation is sized to the 51 left (30 x 21 steps) and says so, so
    the first two commands compose; a record too short for even 5 x 10 steps is refused in one line."""
    from dynlearn.analysis.experiments.autoencoder_evaluation import AUTOENCODER_RECIPES, _check_lengths

    data = write_dataset(tmp_path / "wake.h5", field_dataset(travelling_waves(151, 64)))
    run = tmp_path / "run"
    done = subprocess.run([*_dynlearn(), "train", "autoencoder", "--data", str(data), "--epochs", "2",
                           "--models", "aware", "-o", str(run)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "evaluated from 30 initial conditions over 21 steps" in done.stderr and "--snapshots 300" in done.stderr
    evaluated = subprocess.run([*_dynlearn(), "evaluate", str(run)], capture_output=True, text=True)
    assert evaluated.returncode == 0, evaluated.stderr
    results = json.loads((run / "evaluation" / "results.json").read_text())
    assert results["horizon"] == 21 and len(results["initial_conditions"]) == 30
    assert max(results["initial_conditions"]) + 21 <= 150
    assert "over 21 steps" in (run / "evaluation" / "table.md").read_text()
    recipe = AUTOENCODER_RECIPES["cylinder"]
    assert _check_lengths(recipe, 400, 64)[2] == ""  # long enough: the recipe as it is
    n_train, sized, note = _check_lengths(recipe, 120, 64)  # 20 left: 10 steps from 10 initial conditions
    assert (sized.horizon, sized.n_initial) == (10, 10) and "10 initial conditions over 10 steps" in note
    with pytest.raises(ValueError, match="too few for 30 initial conditions"):
        _check_lengths(recipe, 110, 64)


def test_a_killed_training_resumes_to_the_uninterrupted_run_bit_for_bit(tmp_path):
    """SIGKILL after a checkpoint of `dynlearn train autoencoder`; evaluate says the model is unfinished; the same
    command resumes (weights, Adam's moments, the learning-rate schedule and the minibatch order's generator come
    back from the checkpoint) and ends with the weights and log of a run never interrupted."""
    import signal
    import time

    from dynlearn.cli import main

    data = write_dataset(tmp_path / "waves.h5", field_dataset(travelling_waves(240, 64)))
    options = ["train", "autoencoder", "--data", str(data), "--epochs", "150", "--models", "aware", "agnostic",
               "--seed", "5"]
    killed = tmp_path / "killed"
    process = subprocess.Popen([*_dynlearn(), "--progress", "off", *options, "-o", str(killed)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not (killed / "aware" / "checkpoint.pt").exists():
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    saved = torch.load(killed / "aware" / "checkpoint.pt", weights_only=True)
    assert len(saved["history"]["loss"]) < 150 and not (killed / "aware" / "model.pt").exists(), \
        "the run ended before it could be killed"
    assert main(["evaluate", str(killed)]) == 2  # nothing finished: said, nothing evaluated
    assert main(["--progress", "off", *options[:-1], "6", "-o", str(killed)]) == 2  # another seed: refused
    assert main(["--progress", "off", *options, "-o", str(killed)]) == 0
    whole = tmp_path / "whole"
    assert main(["--progress", "off", *options, "-o", str(whole)]) == 0
    for name in ("aware", "agnostic"):
        resumed, straight = (json.loads((folder / name / "history.json").read_text()) for folder in (killed, whole))
        for key in ("loss", "prediction", "reconstruction", "prior", "spectral_radius"):
            assert resumed[key] == straight[key], (name, key)
        resumed_state = torch.load(killed / name / "model.pt", weights_only=True)["state"]
        for key, value in torch.load(whole / name / "model.pt", weights_only=True)["state"].items():
            assert torch.equal(resumed_state[key], value), (name, key)
    (whole / "agnostic" / "model.pt").unlink()  # as if its training had not ended: evaluated without it, and said
    assert main(["evaluate", str(whole)]) == 0
    table = (whole / "evaluation" / "table.md").read_text()
    assert "Not evaluated, training unfinished" in table and "agnostic: not started" in table



@pytest.mark.parametrize("changes, message", [
    ({"train_snapshots": 1.5}, "strictly between 0 and 1"),
    ({"train_snapshots": 0}, "train_snapshots"),
    ({"horizon": 0}, "horizon must be an integer >= 1"),
    ({"widths": ()}, "at least one hidden layer"),
    ({"widths": (40, 0)}, "widths must be an integer >= 1"),
    ({"steps": 0}, "steps"),
    ({"kappa": float("nan")}, "kappa must be a finite number >= 0"),
    ({"weight_decay": -1.0}, "weight_decay must lie in"),
    ({"learning_rate": 1e300}, r"learning_rate must be a number in \(0, 1000\]"),
    ({"final_learning_rate": 0.0}, "final_learning_rate must be a number in"),
])
def test_a_bad_autoencoder_recipe_fails_when_it_is_made(changes, message):
    from dynlearn.analysis.experiments.autoencoder_evaluation import AUTOENCODER_RECIPES

    with pytest.raises(ValueError, match=message):
        dataclasses.replace(AUTOENCODER_RECIPES["cylinder"], **changes)


def test_training_settings_refuse_a_flag_that_is_not_a_bool(tmp_path):
    from dynlearn.analysis.experiments.autoencoder_evaluation import train_run

    with pytest.raises(ValueError, match="progress must be True or False, got str 'no'"):
        AutoencoderTrainingSettings(progress="no")
    with pytest.raises(ValueError, match="overwrite must be True or False, got str 'no'"):
        train_run(tmp_path / "wake.h5", tmp_path / "run", overwrite="no")
    assert not (tmp_path / "run").exists()


def test_a_record_too_short_for_the_evaluation_fails_before_any_work(tmp_path):
    from dynlearn.analysis.experiments.autoencoder_evaluation import train_run

    # 110 snapshots leave 10 for the test part: not even 5 initial conditions over 10 steps (151 are sized down)
    path = write_dataset(tmp_path / "data.h5", field_dataset(travelling_waves(110, 64)))
    with pytest.raises(ValueError, match="too few for 30 initial conditions with 100 steps"):
        train_run(path, tmp_path / "run", "cylinder", epochs=1, progress=False)
    assert not (tmp_path / "run").exists()


def test_nan_in_the_snapshots_is_refused():
    from dynlearn.datasets.snapshots import snapshot_data

    dataset = field_dataset(travelling_waves(240, 64))
    states = dataset.states.clone()
    states[0, 7, 1, 3] = float("nan")  # the file format refuses NaN, so such data come from Python
    with pytest.raises(ValueError, match="NaN"):
        snapshot_data(dataclasses.replace(dataset, states=states))


def test_snapshots_leave_out_the_land_and_map_back_onto_the_grid():
    from dynlearn.datasets.snapshots import snapshot_data

    dataset = field_dataset(travelling_waves(30, 64))  # states (1, 30, 4, 16)
    land = torch.zeros(4, 16)
    land[0, :5] = land[3, 10:] = 1.0
    source = snapshot_data(dataclasses.replace(dataset, fields={"land_mask": land}))
    assert source.snapshots.shape == (30, 64 - 11) and source.field_shape == (4, 16)
    field = source.to_field(source.snapshots)
    assert bool(torch.isnan(field[:, land > 0.5]).all())
    torch.testing.assert_close(field[:, land < 0.5], dataset.states[0][:, land < 0.5], rtol=0, atol=0)
    whole = snapshot_data(dataset)  # no mask: a reshape both ways
    torch.testing.assert_close(whole.to_field(whole.snapshots), dataset.states[0], rtol=0, atol=0)


@pytest.mark.gpu
def test_cuda_training_resumes_from_its_checkpoint(tmp_path):
    """A checkpoint loaded onto the GPU holds the CPU generator's state as a CUDA tensor: resumption restores it
    on the CPU (it failed there before)."""
    windows = snapshot_windows(travelling_waves(60, 32).float(), 2).cuda()
    checkpoint = tmp_path / "checkpoint.pt"
    settings = AutoencoderTrainingSettings(epochs=2, batch_size=16, progress=False)
    train_autoencoder(PhysicsAwareAutoencoder(32, latent=4, seed=1).cuda(), windows, settings=settings, checkpoint=checkpoint)
    history = train_autoencoder(PhysicsAwareAutoencoder(32, latent=4, seed=1).cuda(), windows, checkpoint=checkpoint,
                                settings=AutoencoderTrainingSettings(epochs=3, batch_size=16, progress=False))
    assert history.epochs == 3


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.floats(0.01, 50.0), bound=st.floats(0.1, 1.0), k=st.integers(1, 12))
def test_a_spectrally_bounded_omega_stays_within_its_bound_for_any_parameters(seed, scale, bound, k):
    """SpectralNormBound: for any raw W (any scale, any non-normality) ||Omega||_2 <= bound, so every
    eigenvalue's modulus is too; and Omega^n never grows beyond bound^n."""
    from dynlearn.autoencoder.model import SpectralNormBound

    generator = torch.Generator().manual_seed(seed)
    raw = scale * torch.randn(k, k, generator=generator, dtype=torch.float64)
    raw = raw + scale * torch.triu(torch.randn(k, k, generator=generator, dtype=torch.float64), 1)  # non-normal
    omega = SpectralNormBound(bound)(raw)
    assert float(torch.linalg.matrix_norm(omega, ord=2)) <= bound * (1 + 1e-12)
    assert float(torch.linalg.eigvals(omega).abs().max()) <= bound * (1 + 1e-12)
    assert float(torch.linalg.matrix_norm(torch.linalg.matrix_power(omega, 20), ord=2)) <= bound**20 * (1 + 1e-9)


def test_the_stable_model_trains_saves_and_loads_with_its_bound(tmp_path):
    from dynlearn.analysis.experiments.autoencoder_evaluation import load_model, train_run
    from dynlearn.autoencoder.lyapunov import spectral_radius

    model = PhysicsAwareAutoencoder(64, latent=6, widths=(16,), seed=0, omega_bound=0.9)
    with torch.no_grad():
        model.parametrizations.omega.original.mul_(40.0)  # whatever the raw parameters become
    assert spectral_radius(model.omega) <= 0.9 + 1e-6
    data = write_dataset(tmp_path / "waves.h5", field_dataset(travelling_waves(240, 64)))
    histories = train_run(data, tmp_path / "run", models=("stable",), epochs=3, progress=False)
    assert max(histories["stable"].spectral_radius) <= 1.0 + 1e-6
    loaded = load_model(tmp_path / "run" / "stable")
    assert loaded.omega_bound == 1.0 and spectral_radius(loaded.omega) <= 1.0 + 1e-6
    with pytest.raises(ValueError, match="spectral bound must be a number in"):
        PhysicsAwareAutoencoder(64, latent=6, omega_bound=1.5)
