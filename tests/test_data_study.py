"""POD and the learned-integrator study on recorded fields: the laws of the decomposition, and the study's
verdicts and spectra on a record whose dynamics are known exactly (two travelling waves)."""

import json
import math
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dynlearn.analysis.experiments.recorded_field import RecordedFieldRecipe, run_recorded_field
from dynlearn.analysis.modes import ProperOrthogonalDecomposition
from dynlearn.datasets.format import TrajectoryDataset, write_dataset
from dynlearn.fields.models import AffineVectorField

# -- POD ---------------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(n=st.integers(4, 30), m=st.integers(3, 40), true_rank=st.integers(1, 3), seed=st.integers(0, 2**31 - 1))
def test_pod_of_a_low_rank_record_is_exact_and_orthonormal(n, m, true_rank, seed):
    generator = torch.Generator().manual_seed(seed)
    true_rank = min(true_rank, n - 1, m)
    offset = torch.randn(m, generator=generator, dtype=torch.float64)
    snapshots = offset + torch.randn(n, true_rank, generator=generator, dtype=torch.float64) @ torch.randn(
        true_rank, m, generator=generator, dtype=torch.float64)
    pod = ProperOrthogonalDecomposition.fit(snapshots, true_rank)
    torch.testing.assert_close(pod.modes.T @ pod.modes, torch.eye(true_rank, dtype=torch.float64), atol=1e-10, rtol=0)
    coefficients = pod.project(snapshots)
    torch.testing.assert_close(pod.reconstruct(coefficients), snapshots, atol=1e-9 * float(snapshots.abs().max()), rtol=0)
    assert pod.captured_energy == pytest.approx(1.0, abs=1e-10)
    fractions = pod.energy_fractions()
    assert bool(torch.all(fractions[:-1] >= fractions[1:] - 1e-15))
    # coefficients of the training snapshots have zero mean, and the leading one unit RMS amplitude
    torch.testing.assert_close(coefficients.mean(0), torch.zeros(true_rank, dtype=torch.float64), atol=1e-10, rtol=0)
    assert float(coefficients[:, 0].pow(2).mean().sqrt()) == pytest.approx(1.0, rel=1e-10)
    # each mode's largest entry is positive: a reproducible sign
    peaks = pod.modes.gather(0, pod.modes.abs().argmax(0, keepdim=True))
    assert bool(torch.all(peaks > 0))


def test_pod_keeps_the_most_energetic_subspace_of_a_full_rank_record():
    # sigma_i known: columns scaled 5, 3, 1, 0.5 on orthonormal patterns; rank 2 captures (25 + 9) / 35.25
    times = torch.linspace(0, 2 * math.pi, 64, dtype=torch.float64)[:-1]
    signals = torch.stack([torch.cos(times), torch.sin(times), torch.cos(2 * times), torch.sin(3 * times)], dim=1)
    patterns = torch.linalg.qr(torch.randn(20, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64))[0]
    snapshots = (signals * torch.tensor([5.0, 3.0, 1.0, 0.5], dtype=torch.float64)) @ patterns.T
    pod = ProperOrthogonalDecomposition.fit(snapshots, 2)
    assert pod.captured_energy == pytest.approx(34 / 35.25, rel=1e-12)
    projector = pod.modes @ pod.modes.T
    torch.testing.assert_close(projector, patterns[:, :2] @ patterns[:, :2].T, atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    "snapshots, rank, message",
    [
        (torch.randn(5, 8, dtype=torch.float64), 5, r"rank must be an integer in \[1, 4\] .*got 5"),
        (torch.randn(5, 8, dtype=torch.float64), 0, r"rank must be an integer in \[1, 4\] .*got 0"),
        (torch.ones(5, 8, dtype=torch.float64), 1, "all equal"),
        (torch.tensor([[1.0, float("nan")], [2.0, 3.0], [0.0, 1.0]]), 1, "NaN"),
        (torch.randn(1, 8, dtype=torch.float64), 1, "at least 2 snapshots"),
        (torch.arange(8), 1, "floating-point tensor"),
    ],
)
def test_pod_refuses_bad_input(snapshots, rank, message):
    with pytest.raises(ValueError, match=message):
        ProperOrthogonalDecomposition.fit(snapshots, rank)


def test_pod_projection_checks_the_number_of_values():
    pod = ProperOrthogonalDecomposition.fit(torch.randn(6, 5, dtype=torch.float64), 2)
    with pytest.raises(ValueError, match="5 values"):
        pod.project(torch.randn(3, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="rank 2"):
        pod.reconstruct(torch.randn(3, 3, dtype=torch.float64))


def test_affine_field_is_lambda_x_plus_beta_for_any_batch():
    operator = torch.tensor([[0.0, 1.0], [-4.0, -0.1]], dtype=torch.float64)
    offset = torch.tensor([0.5, -0.25], dtype=torch.float64)
    field = AffineVectorField(operator, offset)
    states = torch.randn(3, 5, 2, dtype=torch.float64)
    torch.testing.assert_close(field(torch.tensor(0.0), states), states @ operator.T + offset, rtol=0, atol=1e-15)
    # its fixed point -Lambda^-1 beta is a steady state
    fixed_point = -torch.linalg.solve(operator, offset)
    assert float(field(torch.tensor(0.0), fixed_point).detach().abs().max()) < 1e-15
    with pytest.raises(ValueError, match=r"operator must be \(d, d\) and offset \(d,\)"):
        AffineVectorField(operator, torch.zeros(3, dtype=torch.float64))


# -- the study on a record with known dynamics --------------------------------------------------------------

FREQUENCIES = (0.17, 0.34)  # like a wake's shedding frequency and its first harmonic, in 1 / time unit
DT = 0.2


def travelling_waves_record(n_times: int = 151, n_values: int = 48, trajectories: int = 1) -> TrajectoryDataset:
    """u(x, t) = cos(x - 2 pi f1 t) + 0.4 sin(2 x - 2 pi f2 t + 1): four POD modes, and coefficients that obey
    exactly a linear ODE with eigenvalues +-2 pi i f1, +-2 pi i f2."""
    x = torch.arange(n_values, dtype=torch.float64) * (2 * math.pi / n_values)
    t = torch.arange(n_times, dtype=torch.float64)[:, None] * DT
    field = torch.cos(x - 2 * math.pi * FREQUENCIES[0] * t) + 0.4 * torch.sin(2 * x - 2 * math.pi * FREQUENCIES[1] * t + 1)
    states = field.reshape(1, n_times, 6, n_values // 6).repeat(trajectories, 1, 1, 1)
    return TrajectoryDataset(states=states, times=t[:, 0].clone(), initial_conditions=states[:, 0].clone(),
                             system="travelling waves", parameters={"f1": FREQUENCIES[0], "f2": FREQUENCIES[1]},
                             state_names=("u",), generator={"kind": "analytical", "method": "test"}, t0=0.0, dt=DT)


@pytest.fixture(scope="module")
def record_study(tmp_path_factory):
    path = write_dataset(tmp_path_factory.mktemp("record") / "waves.h5", travelling_waves_record())
    recipe = RecordedFieldRecipe(training_schemes=(("euler",), ("rk4",)), iterations=2000)
    output = tmp_path_factory.mktemp("study")
    return run_recorded_field(path, output, recipe=recipe, progress=False), output


def test_the_euler_trained_field_is_a_discrete_map_and_the_rk4_trained_one_converges(record_study):
    outcome, _ = record_study
    study = outcome.study
    assert outcome.source["captured_energy"] == pytest.approx(1.0, abs=1e-10)
    assert outcome.source["training_snapshots"] == 100 and outcome.source["t_final"] == pytest.approx(48 * DT)
    short = run_recorded_field(travelling_waves_record(), recipe=RecordedFieldRecipe(networks=("linear",), horizon=10),
                           progress=False)
    assert short.source["t_final"] == pytest.approx(8 * DT)  # at most 10 training steps, a multiple of 4
    for model in ("linear euler", "mlp euler"):
        assert study.model_verdict(model).startswith("discrete"), study.summary_table()
    for model in ("linear rk4", "mlp rk4"):
        assert study.model_verdict(model).startswith("continuous"), study.summary_table()
    # moved to other schemes of order >= 2, the RK4-trained MLP stays near its plateau; the Euler one is 100x off
    rk4_plateau = study.evaluation("mlp rk4", "rk4").rms_plateau
    assert study.evaluation("mlp rk4", "midpoint").rms_plateau < 2 * rk4_plateau
    assert study.evaluation("mlp euler", "rk4").rms_plateau > 100 * rk4_plateau


def test_linear_spectra_are_the_records_and_the_schemes_own(record_study):
    outcome, _ = record_study
    dt = outcome.source["training_dt"]
    assert [row["frequency"] for row in outcome.spectra] == pytest.approx(FREQUENCIES, rel=1e-9)
    for row, frequency in zip(outcome.spectra, FREQUENCIES):
        omega = 2 * math.pi * frequency
        assert abs(row["growth_rate"]) < 1e-9
        assert row["omega_dt_train"] == pytest.approx(omega * dt, rel=1e-9)
        # forward Euler learns (exp(i omega dt) - 1) / dt: spurious damping (cos(omega dt) - 1) / dt
        euler = row["models"]["linear euler"]
        assert euler["growth_rate"] == pytest.approx((math.cos(omega * dt) - 1) / dt, rel=1e-8)
        assert euler["frequency"] == pytest.approx(math.sin(omega * dt) / dt / (2 * math.pi), rel=1e-8)
        # RK4 learns the root z of R(z) = exp(i theta), theta = omega dt: R(i theta) = exp(i theta) - (i theta)^5/120
        # + ..., so z = i theta (1 + theta^4 / 120) + O(theta^6): a frequency too high by theta^5 / (240 pi dt)
        rk4 = row["models"]["linear rk4"]
        theta = omega * dt
        assert rk4["frequency"] - frequency == pytest.approx(theta**5 / (240 * math.pi * dt), rel=0.1)
        assert abs(rk4["growth_rate"]) < theta**6 / dt


def test_the_report_holds_tables_spectra_and_every_number(record_study):
    outcome, folder = record_study
    report = (folder / "report.md").read_text()
    for heading in ("## Verdicts", "## Every model in every scheme", "## Spectra of the linear models", "## Training"):
        assert heading in report
    results = json.loads((folder / "results.json").read_text())
    assert results["source"]["training_pairs"] == 99
    assert results["study"]["models"]["linear euler"]["verdict"].startswith("discrete")
    assert len(results["spectra"]) == 2
    assert (folder / "convergence_grid.png").stat().st_size > 10_000


def test_a_stride_trains_coarser_than_the_record_and_rk4_learns_its_fourth_order_error():
    # dt_train = 2 and 1 x the record's dt. RK4's phase error makes the learned frequency wrong by O(dt^4) and
    # its amplitude error the growth rate by O(dt^5): doubling dt_train multiplies them by 16 and 32. At the
    # coarser step the RK4-trained model's plateau exceeds 1 % of the state and its dip makes it discrete too.
    outcomes = {}
    for stride in (1, 2):
        recipe = RecordedFieldRecipe(stride=stride, networks=("linear",), training_schemes=(("euler",), ("rk4",)))
        outcomes[stride] = run_recorded_field(travelling_waves_record(), recipe=recipe, progress=False)
    coarse = outcomes[2]
    assert coarse.source["training_dt"] == pytest.approx(2 * DT)
    assert min(coarse.study.dts) == pytest.approx(2 * DT / 64) and max(coarse.study.dts) == pytest.approx(8 * DT)
    fundamental = {stride: outcome.spectra[0]["models"]["linear rk4"] for stride, outcome in outcomes.items()}
    frequency_errors = {stride: value["frequency"] - FREQUENCIES[0] for stride, value in fundamental.items()}
    assert frequency_errors[2] / frequency_errors[1] == pytest.approx(16, rel=0.1)
    assert fundamental[2]["growth_rate"] / fundamental[1]["growth_rate"] == pytest.approx(32, rel=0.1)
    fine_plateau = outcomes[1].study.evaluation("linear rk4", "rk4").relative_plateau
    coarse_plateau = coarse.study.evaluation("linear rk4", "rk4").relative_plateau
    assert fine_plateau < 0.01 < coarse_plateau and coarse_plateau / fine_plateau > 8
    assert outcomes[1].study.model_verdict("linear rk4").startswith("continuous, faithful: at a plateau of 0.1")
    assert coarse.study.model_verdict("linear rk4").startswith("discrete")
    for outcome in outcomes.values():
        assert outcome.study.model_verdict("linear euler").startswith("discrete")


def test_masked_cells_are_left_out_of_the_record():
    # an SST-like record: some cells are land (stored as 0 beside a land_mask field); the study sees only the
    # others, and their dynamics are still the two waves' exactly
    record = travelling_waves_record()
    land = torch.zeros(record.state_shape, dtype=torch.float64)
    land[0, :3] = land[5, -2:] = 1.0
    states = torch.where(land.bool(), 0.0, record.states)
    masked = TrajectoryDataset(**{**record.__dict__, "states": states, "initial_conditions": states[:, 0].clone(),
                                  "fields": {"land_mask": land}})
    outcome = run_recorded_field(masked, recipe=RecordedFieldRecipe(networks=("linear",)), progress=False)
    assert outcome.source["values_per_snapshot"] == 48 - 5
    assert outcome.decomposition.modes.shape == (43, 4)
    assert [row["frequency"] for row in outcome.spectra] == pytest.approx(FREQUENCIES, rel=1e-9)


@pytest.mark.parametrize(
    "changes, record, message",
    [
        ({"stride": 3}, {}, "power of two"),
        ({"modes": 0}, {}, "modes must be an integer >= 1, got 0"),
        ({"training_fraction": 1.0}, {}, "strictly between 0 and 1"),
        ({"networks": ("resnet",)}, {}, "'linear' and 'mlp'"),
        ({"training_schemes": (("rk5",),)}, {}, "rk5"),
        ({}, {"n_times": 12}, "too few to learn"),
        ({"training_fraction": 0.99}, {}, "held-out part holds 2 snapshots"),
        ({"horizon": 3}, {}, r"horizon \(training steps of the held-out record\) must be an integer >= 4"),
        ({}, {"trajectories": 2}, "holds 2 trajectories"),
    ],
)
def test_bad_recipes_and_records_fail_before_training(changes, record, message):
    with pytest.raises(ValueError, match=message):
        run_recorded_field(travelling_waves_record(**record), recipe=RecordedFieldRecipe(**changes), progress=False)


def _dynlearn() -> list[str]:
    script = Path(sysconfig.get_path("scripts")) / "dynlearn"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dynlearn.cli"]


def test_study_command_on_a_data_file(tmp_path):
    data = write_dataset(tmp_path / "waves.h5", travelling_waves_record())
    command = [*_dynlearn(), "study", "--data", str(data), "--iterations", "300", "-o", str(tmp_path / "out")]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert "| linear euler |" in finished.stdout and "discrete: overfits dt_train" in finished.stdout
    assert "4 POD modes (1.000 of the fluctuation)" in finished.stdout
    assert (tmp_path / "out" / "report.md").exists()
    refused = subprocess.run([*_dynlearn(), "study", "wave", "--data", str(data)], capture_output=True, text=True)
    assert refused.returncode == 2 and "not both" in refused.stderr
    refused = subprocess.run([*_dynlearn(), "study", "--modes", "3"], capture_output=True, text=True)
    assert refused.returncode == 2 and "add --data FILE" in refused.stderr
