"""The dataset format (HDF5 round trips, validation, atomic writes), generation, views and the CLI."""

import json
import math

import h5py
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dynlearn.cli import main
from dynlearn.datasets import (
    DatasetFormatError,
    OneStepPairs,
    StepWindows,
    TrajectoryDataset,
    WholeTrajectories,
    generate_dataset,
    read_dataset,
    split_trajectories,
    write_dataset,
)
from dynlearn.systems import SYSTEMS, HarmonicOscillator, Pendulum, WaveEquation, make_system


def small(system_name="oscillator", **kwargs):
    system = make_system(system_name, **({"nodes": 8, "n_modes": 20} if system_name == "wave" else {}))
    return generate_dataset(system, dt=0.1, t_final=2.0, n_trajectories=kwargs.pop("n", 3), seed=7, **kwargs)


@settings(max_examples=20)
@given(
    n_trajectories=st.integers(1, 4),
    n_steps=st.integers(0, 12),
    state_shape=st.lists(st.integers(1, 3), min_size=1, max_size=3),
    dt=st.floats(1e-3, 10.0),
    t0=st.floats(-5, 5),
)
def test_any_dataset_round_trips_exactly(tmp_path_factory, n_trajectories, n_steps, state_shape, dt, t0):
    states = torch.randn(n_trajectories, n_steps + 1, *state_shape, dtype=torch.float64)
    dataset = TrajectoryDataset(
        states=states,
        times=t0 + torch.arange(n_steps + 1, dtype=torch.float64) * dt,
        initial_conditions=states[:, 0].clone(),
        system="made-up",
        parameters={"a": 1.5, "label": "x"},
        state_names=tuple(f"s{i}" for i in range(int(np.prod(state_shape)))),
        generator={"kind": "numerical", "method": "test"},
        t0=t0,
        dt=dt,
        seed=3,
        trajectory_parameters={"energy": torch.rand(n_trajectories, dtype=torch.float64)},
    )
    path = write_dataset(tmp_path_factory.mktemp("round") / "d.h5", dataset)
    loaded = read_dataset(path)
    assert torch.equal(loaded.states, states) and torch.equal(loaded.times, dataset.times)
    assert loaded.parameters == dataset.parameters and loaded.state_names == dataset.state_names
    assert loaded.generator == dataset.generator and loaded.seed == 3
    assert (loaded.t0, loaded.dt) == (t0, dt)
    assert torch.equal(loaded.trajectory_parameters["energy"], dataset.trajectory_parameters["energy"])


def test_files_are_self_describing_for_plain_h5py_users(tmp_path):
    path = write_dataset(tmp_path / "p.h5", small("pendulum"))
    with h5py.File(path, "r") as handle:
        assert handle["states"].shape == (3, 21, 2)
        assert handle["states"].compression == "gzip"
        attributes = dict(handle.attrs)
        for name in ["system", "parameters", "generator", "dt", "seed", "dynlearn_version", "created", "checksum_sha256",
                     "torch_version", "numpy_version", "h5py_version", "state_names"]:
            assert name in attributes, name
        assert json.loads(attributes["parameters"]) == {"gravity": 9.81, "length": 1.0}
        assert {name for name in handle if handle[name].attrs.get("dynlearn_role") == "trajectory_parameter"} == {
            "energy", "period"}
        np.testing.assert_array_equal(handle["time"][()], np.arange(21) * 0.1)
        # netCDF-4 dimension scales: every axis of the states is named, and the names are those of the scales
        assert [dimension[0].name for dimension in handle["states"].dims] == ["/trajectory", "/time", "/component"]
        assert [v.decode() if isinstance(v, bytes) else v for v in handle["component"][()]] == ["theta", "dtheta/dt"]
        assert attributes["format_version"] == 2 and attributes["Conventions"] == "CF-1.11"


def test_times_are_computed_on_the_grid_not_linspaced(tmp_path):
    dataset = generate_dataset(HarmonicOscillator(), dt=0.1, t_final=50.0, n_trajectories=1)
    assert dataset.n_steps == 500
    np.testing.assert_array_equal(dataset.times.numpy(), np.arange(501) * 0.1)
    assert dataset.times[1] - dataset.times[0] == pytest.approx(0.1, abs=0)  # spacing T/N, not T/(N-1)


def test_generated_states_are_the_exact_solution_and_numerical_agrees():
    system = Pendulum()
    analytical = generate_dataset(system, dt=0.05, t_final=5.0, n_trajectories=4, seed=2)
    for b in range(4):
        torch.testing.assert_close(analytical.states[b], system.solution(analytical.initial_conditions[b],
                                                                         analytical.times), rtol=0, atol=1e-12)
    numerical = generate_dataset(system, dt=0.05, t_final=5.0, initial_conditions=analytical.initial_conditions,
                                 method="numerical")
    assert (numerical.states - analytical.states).abs().max() < 1e-8
    assert numerical.seed is None and numerical.generator["kind"] == "numerical"
    again = generate_dataset(system, dt=0.05, t_final=5.0, n_trajectories=4, seed=2)
    assert torch.equal(again.states, analytical.states)  # seeded


def test_wave_dataset_starts_from_the_configured_data():
    wave = WaveEquation(nodes=16, n_modes=200)
    dataset = generate_dataset(wave, dt=0.1, t_final=1.0, n_trajectories=3, seed=0)
    torch.testing.assert_close(dataset.states[0], wave.series_solution(dataset.times), rtol=0, atol=0)
    assert (dataset.states[0, 0, :16] - wave.initial_state()[:16]).abs().max() <= wave.truncation_error
    assert dataset.generator["truncation_error_estimate"] == wave.truncation_error
    assert "d'Alembert" in dataset.generator["velocity"] and "series" in dataset.generator["displacement"]
    # the velocity at t = 0 is the configured g = 0 exactly, not a truncated series of it
    assert float(dataset.states[0, 0, 16:].abs().max()) < 1e-15
    energies = wave.band_limited_energy(dataset.states[1:])  # the other trajectories: band-limited data
    assert (energies - energies[:, :1]).abs().max() < 1e-12 * energies.abs().max()


def test_interrupted_write_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "d.h5"
    write_dataset(path, small())
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(h5py.Group, "create_dataset", broken)
    with pytest.raises(KeyboardInterrupt):
        write_dataset(path, small(n=5), overwrite=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5"]
    with pytest.raises(FileExistsError):
        write_dataset(path, small())
    with pytest.raises(ValueError, match="overwrite must be True or False, got str 'no'"):
        write_dataset(path, small(n=5), overwrite="no")  # a truthy string must not replace the file
    assert path.read_bytes() == before


def test_reading_names_the_file_and_the_problem(tmp_path):
    good = write_dataset(tmp_path / "good.h5", small())
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(DatasetFormatError, match=r"text.h5: not an HDF5 file"):
        read_dataset(tmp_path / "text.h5")
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        read_dataset(tmp_path / "missing.h5")

    def corrupt(name, change):
        path = tmp_path / name
        path.write_bytes(good.read_bytes())
        with h5py.File(path, "r+") as handle:
            change(handle)
        return path

    tampered = corrupt("tampered.h5", lambda h: h["states"].__setitem__((0, 3, 0), 123.0))
    with pytest.raises(DatasetFormatError, match="tampered.h5: the content checksum does not match"):
        read_dataset(tampered)
    assert read_dataset(tampered, verify_checksum=False).states[0, 3, 0] == 123.0
    with pytest.raises(ValueError, match="verify_checksum must be True or False, got str 'False'"):
        read_dataset(tampered, verify_checksum="False")
    foreign = corrupt("foreign.h5", lambda h: h.attrs.__setitem__("format", "other"))
    with pytest.raises(DatasetFormatError, match="foreign.h5: attribute 'format'"):
        read_dataset(foreign)
    no_times = corrupt("no_times.h5", lambda h: h.__delitem__("time"))
    with pytest.raises(DatasetFormatError, match="no_times.h5: dataset 'time' is missing"):
        read_dataset(no_times)
    no_dt = corrupt("no_dt.h5", lambda h: h.attrs.__delitem__("dt"))
    with pytest.raises(DatasetFormatError, match="attribute 'dt' is missing"):
        read_dataset(no_dt)
    off_grid = corrupt("off_grid.h5", lambda h: h.attrs.__setitem__("dt", 0.2))
    with pytest.raises(DatasetFormatError, match="off_grid.h5: times: not the grid"):
        read_dataset(off_grid, verify_checksum=False)


def test_writing_refuses_inconsistent_content_before_touching_disk(tmp_path):
    dataset = small()
    bad = TrajectoryDataset(**{**dataset.__dict__, "states": dataset.states.clone()})
    bad.states[0, 2, 0] = float("nan")
    with pytest.raises(DatasetFormatError, match="NaN"):
        write_dataset(tmp_path / "x.h5", bad)
    shifted = TrajectoryDataset(**{**dataset.__dict__, "times": dataset.times * 1.01})
    with pytest.raises(DatasetFormatError, match="not the grid"):
        write_dataset(tmp_path / "x.h5", shifted)
    with pytest.raises(TypeError, match="dataset must be a TrajectoryDataset, got dict"):
        write_dataset(tmp_path / "x.h5", dataset.__dict__)
    assert not list(tmp_path.iterdir())
    from dynlearn.datasets.views import OneStepPairs, WholeTrajectories

    for view in (OneStepPairs, WholeTrajectories):
        with pytest.raises(TypeError, match="dataset must be a TrajectoryDataset"):
            view(str(tmp_path / "x.h5"))  # a path is not a dataset: read_dataset it first


def test_generation_refuses_bad_input_before_any_work():
    oscillator = HarmonicOscillator()
    with pytest.raises(ValueError, match="does not divide"):
        generate_dataset(oscillator, dt=0.3, t_final=1.0)
    with pytest.raises(ValueError, match="dt"):
        generate_dataset(oscillator, dt=-0.1, t_final=1.0)
    with pytest.raises(ValueError, match="shape"):
        generate_dataset(oscillator, dt=0.1, t_final=1.0, initial_conditions=torch.ones(3, 3))
    with pytest.raises(ValueError, match="2 initial conditions were given"):
        generate_dataset(oscillator, dt=0.1, t_final=1.0, initial_conditions=torch.ones(2, 2), n_trajectories=3)
    with pytest.raises(ValueError, match="n_trajectories"):
        generate_dataset(oscillator, dt=0.1, t_final=1.0, n_trajectories=0)
    with pytest.raises(ValueError, match="separatrix"):
        generate_dataset(Pendulum(), dt=0.1, t_final=1.0, initial_conditions=torch.tensor([[math.pi, 0.0]]))


def test_views_cover_every_window_once_and_agree_with_their_tensors():
    dataset = small("pendulum-xy", n=4)
    windows = StepWindows(dataset, 3, trajectories=[0, 2])
    assert len(windows) == 2 * (21 - 3)
    starts, targets = windows.tensors()
    assert starts.shape == (36, 4) and targets.shape == (36, 3, 4)
    for index in (0, 17, 18, 35):
        state, successors = windows[index]
        torch.testing.assert_close(state, starts[index], rtol=0, atol=0)
        torch.testing.assert_close(successors, targets[index], rtol=0, atol=0)
    torch.testing.assert_close(targets[18], dataset.states[2, 1:4], rtol=0, atol=0)
    pairs = OneStepPairs(dataset)
    x, y = pairs.tensors()
    assert len(pairs) == 4 * 20 and torch.equal(y[5], dataset.states[0, 6]) and torch.equal(pairs[5][1], y[5])
    whole = WholeTrajectories(dataset, [3])
    assert len(whole) == 1 and torch.equal(whole[0], dataset.states[3])
    loader = torch.utils.data.DataLoader(pairs, batch_size=16)
    assert sum(batch[0].shape[0] for batch in loader) == 80
    with pytest.raises(ValueError, match="steps = 21"):
        StepWindows(dataset, 21)
    with pytest.raises(IndexError):
        OneStepPairs(dataset, trajectories=[4])


@given(n=st.integers(3, 200), seed=st.integers(0, 1000))
def test_split_by_trajectory_is_a_partition(n, seed):
    train, validation, test = split_trajectories(n, (0.7, 0.15, 0.15), seed=seed)
    together = torch.cat([train, validation, test]).sort().values
    assert torch.equal(together, torch.arange(n))
    assert min(len(train), len(validation), len(test)) >= 1
    assert abs(len(train) - 0.7 * n) <= 2


def test_cli_generate_and_info(tmp_path, capsys):
    path = tmp_path / "pendulum.h5"
    assert main(["generate", "pendulum", "--dt", "0.05", "--t-final", "2", "--n-traj", "3", "--seed", "1",
                 "--length", "2.0", "-o", str(path)]) == 0
    dataset = read_dataset(path)
    assert dataset.states.shape == (3, 41, 2) and dataset.parameters["length"] == 2.0
    assert main(["info", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "pendulum" in printed and "3 trajectories x 41 times" in printed and "format version 2" in printed
    assert "and the metadata (system, parameters" in printed
    given_path = tmp_path / "given.h5"
    assert main(["generate", "oscillator", "--x0", "1,0", "--x0", "0,1", "--t-final", "1", "--dt", "0.5",
                 "-o", str(given_path)]) == 0
    assert read_dataset(given_path).seed is None
    assert main(["generate", "oscillator", "-o", str(path)]) == 2  # exists
    assert "exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["pendulum", "--x0", "3.141592653589793,0"], "separatrix"),
        (["wave", "--nodes", "0"], "nodes"),
        (["oscillator", "--gravity", "3"], "no parameter --gravity"),
        (["oscillator", "--dt", "0.3", "--t-final", "1"], "does not divide"),
        (["oscillator", "--x0", "1,a"], "comma-separated numbers"),
    ],
)
def test_cli_generate_fails_clearly_and_writes_nothing(tmp_path, capsys, arguments, message):
    path = tmp_path / "never.h5"
    assert main(["generate", *arguments, "-o", str(path)]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_cli_help_lists_every_system_with_parameters_and_units(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    printed = capsys.readouterr().out
    for name, cls in SYSTEMS.items():
        assert f"  {name}:" in printed
        for parameter in cls.PARAMETERS:
            assert f"--{parameter.name.replace('_', '-')} {parameter.default} [{parameter.unit}]" in printed
