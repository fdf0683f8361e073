"""Irregularly sampled trajectories: the times each kind draws (seeded, with the stated distribution), the exact
solution at those times, the file format and xarray, the views with a dt per sample, and the study trained on
irregular data and evaluated on the regular ladder."""

from __future__ import annotations

import dataclasses
import math

import h5py
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from dynlearn.datasets import DatasetFormatError, OneStepPairs, StepWindows, WholeTrajectories, generate_dataset, \
    read_dataset, write_dataset
from dynlearn.datasets.format import TrajectoryDataset
from dynlearn.datasets.sampling import SAMPLING_KINDS, IrregularSampling
from dynlearn.systems import make_system

OSCILLATOR = make_system("oscillator", frequency=1.7, damping_ratio=0.0)


def _oscillator_exact(x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """u = u0 cos(w t) + (v0 / w) sin(w t), v = u' (written here, independent of the library's solution)."""
    w = 1.7
    u = x0[..., 0] * torch.cos(w * t) + x0[..., 1] / w * torch.sin(w * t)
    v = -x0[..., 0] * w * torch.sin(w * t) + x0[..., 1] * torch.cos(w * t)
    return torch.stack([u, v], dim=-1)


def _sampling(kind: str, fraction: float = 0.5, seed: int = 0) -> IrregularSampling:
    return IrregularSampling(kind, 0.0 if kind == "poisson" else fraction, seed)


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(SAMPLING_KINDS), fraction=st.floats(0.0, 0.95), seed=st.integers(0, 10**6),
       n=st.integers(1, 4), dt=st.sampled_from([0.05, 0.1, 0.25]))
def test_irregular_samples_are_the_exact_solution_at_their_own_times(kind, fraction, seed, n, dt):
    dataset = generate_dataset(OSCILLATOR, dt=dt, t_final=5.0, n_trajectories=n, seed=seed % 7,
                               sampling=_sampling(kind, fraction, seed))
    dataset.validate()
    assert not dataset.is_uniform and dataset.sampling["kind"] == kind and dataset.sampling["seed"] == seed
    present = dataset.observed
    assert bool(present[:, 0].all())
    for b in range(n):
        times = dataset.sample_times[b][present[b]]
        assert float(times[0]) == 0.0 and float(times[-1]) <= 5.0 + 1e-9
        assert bool((times.diff() > 0).all())
        exact = _oscillator_exact(dataset.initial_conditions[b], times)
        torch.testing.assert_close(dataset.states[b][present[b]], exact, rtol=0, atol=1e-12)


def test_each_kind_draws_the_distribution_it_states():
    dt, n = 0.1, 40
    steps = generate_dataset(OSCILLATOR, dt=dt, t_final=20.0, n_trajectories=n,
                             sampling=_sampling("random_steps", 0.5)).step_sizes()
    assert float(steps.min()) >= 0.05 - 1e-12 and float(steps.max()) <= 0.15 + 1e-12
    assert stats.kstest(steps.numpy(), stats.uniform(loc=0.05, scale=0.1).cdf).pvalue > 1e-3
    poisson = generate_dataset(OSCILLATOR, dt=dt, t_final=20.0, n_trajectories=n, sampling=_sampling("poisson"))
    steps = poisson.step_sizes()
    assert stats.kstest(steps.numpy(), stats.expon(scale=dt).cdf).pvalue > 1e-3
    assert poisson.times.ndim == 2 and bool(torch.isnan(poisson.times).any())  # counts differ: padded with NaN
    jittered = generate_dataset(OSCILLATOR, dt=dt, t_final=20.0, n_trajectories=n, sampling=_sampling("jittered", 0.6))
    grid = torch.arange(jittered.n_times, dtype=torch.float64) * dt
    offsets = (jittered.sample_times - grid)[jittered.observed]
    assert float(offsets.abs().max()) <= 0.3 * dt + 1e-12 and float(offsets.abs().max()) > 0.25 * dt
    gaps = generate_dataset(OSCILLATOR, dt=dt, t_final=20.0, n_trajectories=n, sampling=_sampling("gaps", 0.3))
    assert gaps.times.ndim == 1 and torch.equal(gaps.times, torch.arange(201, dtype=torch.float64) * dt)
    missing = float((~gaps.observed[:, 1:]).to(torch.float64).mean())
    assert abs(missing - 0.3) < 4 * math.sqrt(0.3 * 0.7 / (n * 200))


def test_the_times_are_seeded_by_their_own_seed():
    def times(sampling_seed, seed=0):
        return generate_dataset(OSCILLATOR, dt=0.1, t_final=2.0, n_trajectories=3, seed=seed,
                                sampling=_sampling("random_steps", 0.5, sampling_seed)).times.nan_to_num(-1.0)

    assert torch.equal(times(1), times(1)) and not torch.equal(times(1), times(2))
    assert torch.equal(times(1, seed=0), times(1, seed=5))  # other initial conditions, the same clock


@pytest.mark.parametrize("kind", SAMPLING_KINDS)
def test_irregular_files_round_trip_and_open_in_xarray(tmp_path, kind):
    dataset = generate_dataset(make_system("pendulum"), dt=0.1, t_final=3.0, n_trajectories=3, seed=1,
                               sampling=_sampling(kind, 0.5, 3))
    path = write_dataset(tmp_path / "irregular.h5", dataset)
    read = read_dataset(path)
    assert torch.equal(read.states.nan_to_num(7.0), dataset.states.nan_to_num(7.0))
    assert torch.equal(read.times.nan_to_num(7.0), dataset.times.nan_to_num(7.0))
    assert read.sampling == dataset.sampling and not read.is_uniform
    xarray = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    with xarray.open_dataset(path, engine="h5netcdf") as opened:
        np.testing.assert_array_equal(opened["states"].values, dataset.states.numpy())
        if dataset.times.ndim == 2:
            assert opened["sample_time"].dims == ("trajectory", "time") and "sample_time" in opened.coords
            np.testing.assert_array_equal(opened["sample_time"].values, dataset.times.numpy())
        else:
            np.testing.assert_array_equal(opened["time"].values, dataset.times.numpy())
    with h5py.File(path, "r+") as handle:  # the sampling is metadata the checksum covers
        handle.attrs["sampling"] = handle.attrs["sampling"].replace('"seed": 3', '"seed": 4')
    with pytest.raises(DatasetFormatError, match="checksum"):
        read_dataset(path)


def _irregular(**changes) -> TrajectoryDataset:
    dataset = generate_dataset(OSCILLATOR, dt=0.1, t_final=1.0, n_trajectories=2, sampling=_sampling("random_steps"))
    return TrajectoryDataset(**{**dataset.__dict__, **changes})


def test_inconsistent_irregular_data_is_refused_naming_the_field():
    dataset = _irregular()
    times = dataset.times.clone()
    times[0, 3] = times[0, 2]
    with pytest.raises(DatasetFormatError, match="trajectory 0's sample times are not strictly increasing"):
        _irregular(times=times).validate()
    states = dataset.states.clone()
    states[1, 2, 0] = float("nan")
    with pytest.raises(DatasetFormatError, match="NaN in part of a sample"):
        _irregular(states=states).validate()
    states = dataset.states.clone()
    states[:, 0] = float("nan")
    with pytest.raises(DatasetFormatError, match="first sample of every trajectory"):
        _irregular(states=states, initial_conditions=states[:, 0]).validate()
    with pytest.raises(DatasetFormatError, match="sampling says 'uniform'"):
        _irregular(sampling={"kind": "uniform"}).validate()
    with pytest.raises(ValueError, match="sampling kind must be one of"):
        IrregularSampling("sometimes")
    with pytest.raises(ValueError, match=r"fraction must lie in \[0, 1\)"):
        IrregularSampling("jittered", 1.0)


def test_views_give_every_pair_and_window_its_own_step():
    dataset = generate_dataset(OSCILLATOR, dt=0.1, t_final=3.0, n_trajectories=3, seed=2,
                               sampling=_sampling("gaps", 0.4, 5))
    with pytest.raises(ValueError, match="pass with_steps=True"):
        OneStepPairs(dataset)
    starts, successors, steps = OneStepPairs(dataset, with_steps=True).tensors()
    assert steps.shape == (starts.shape[0],) and starts.shape[0] == int(dataset.observed.sum()) - 3
    assert bool((steps > 0.15).any())  # across a gap the step is 2 dt or more
    for x, y, h in zip(starts, successors, steps):  # each successor is the exact state h after its start
        torch.testing.assert_close(_oscillator_exact(x, h), y, rtol=0, atol=1e-12)
    windows = StepWindows(dataset, 3, [0, 2], with_steps=True)
    x, ys, hs = windows.tensors()
    assert ys.shape[1:] == (3, 2) and hs.shape[1:] == (3,) and len(windows) == x.shape[0]
    torch.testing.assert_close(_oscillator_exact(x, hs.sum(dim=1)), ys[:, -1], rtol=0, atol=1e-12)
    item = windows[1]
    assert torch.equal(item[2], hs[1]) and torch.equal(item[1], ys[1])
    uniform = generate_dataset(OSCILLATOR, dt=0.1, t_final=1.0, n_trajectories=2)
    assert torch.equal(OneStepPairs(uniform, with_steps=True).tensors()[2], torch.full((20,), 0.1, dtype=torch.float64))
    assert WholeTrajectories(_irregular(), [1]).times.shape == (1, _irregular().n_times)


def test_a_field_trained_on_irregular_pairs_learns_the_vector_field():
    """A linear field trained in RK4 on random steps in [0.05, 0.15] recovers the oscillator's operator."""
    from dynlearn.fields import LinearVectorField, TrainingSettings, embedded_loss, train

    dataset = generate_dataset(OSCILLATOR, dt=0.1, t_final=10.0, n_trajectories=4, seed=3,
                               sampling=_sampling("random_steps", 0.5))
    starts, successors, steps = OneStepPairs(dataset, with_steps=True).tensors()
    field = LinearVectorField(2)
    train(field, embedded_loss(field, starts, successors[:, None], steps, ("rk4",)), starts.shape[0],
          TrainingSettings(iterations=1500, learning_rate=0.05, final_learning_rate=1e-4, patience=1500))
    truth = torch.tensor([[0.0, 1.0], [-1.7**2, 0.0]], dtype=torch.float64)
    assert float(torch.linalg.matrix_norm(field.operator.detach() - truth) / torch.linalg.matrix_norm(truth)) < 1e-4


def test_the_study_trains_on_irregular_data_and_evaluates_on_the_regular_ladder(tmp_path):
    from dynlearn.analysis.experiments.learned_integrators import LEARNED_INTEGRATOR_RECIPES, run_learned_integrators

    recipe = dataclasses.replace(LEARNED_INTEGRATOR_RECIPES["oscillator"], sampling="random_steps",
                                 sampling_fraction=0.5, iterations=300, training_schemes=(("euler",), ("rk4",)),
                                 linear_schemes=("euler", "rk4"))
    outcome = run_learned_integrators(recipe, tmp_path, progress=False)
    assert {"linear euler", "linear rk4", "mlp euler", "mlp rk4"} <= set(outcome.histories)  # linear: by gradient
    assert outcome.baselines == [] and outcome.reconstruction == []  # they need one step
    ladder = outcome.study.dts
    assert max(ladder) > 0.1 > min(ladder)
    report = (tmp_path / "report.md").read_text()
    assert "steps uniform in [0.05, 0.15]" in report and "every pair trained with its own step" in report
    with pytest.raises(ValueError, match="neural ODE"):
        dataclasses.replace(recipe, networks=("mlp", "neural-ode"))
