"""Dataset format version 2: every kind of file dynlearn writes opens in xarray (h5netcdf) with named dimensions,
coordinates and CF attributes, and agrees with read_dataset; the checksum covers the metadata; version-1 files
(written here by hand, from version 1's specification) still read and upgrade atomically."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from dynlearn.datasets import DatasetFormatError, generate_dataset, read_dataset, write_dataset
from dynlearn.datasets.format import TrajectoryDataset, content_checksum, upgrade_dataset
from dynlearn.systems import make_system

_spec = importlib.util.spec_from_file_location("sst_files", Path(__file__).with_name("sst_files.py"))
files = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(files)

xarray = pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")


def _pendulum() -> TrajectoryDataset:
    return generate_dataset(make_system("pendulum"), dt=0.1, t_final=2.0, n_trajectories=3, seed=4)


def _open(path: Path):
    return xarray.open_dataset(path, engine="h5netcdf")


def _check_xarray_agrees(path: Path, dataset: TrajectoryDataset) -> "xarray.Dataset":
    """What xarray sees is what read_dataset reads: the states with named dimensions and coordinates, the
    trajectory parameters along ``trajectory``, every coordinate and field."""
    read = read_dataset(path)
    with _open(path) as opened:
        opened.load()
    states = opened["states"]
    dimensions = dataset.dimension_names()
    assert states.dims == ("trajectory", "time", *dimensions)
    np.testing.assert_array_equal(states.values, read.states.numpy())
    np.testing.assert_array_equal(opened["trajectory"].values, np.arange(dataset.n_trajectories))
    if dataset.times.ndim == 1:
        np.testing.assert_array_equal(opened["time"].values, dataset.times.numpy())
    else:
        np.testing.assert_array_equal(opened["sample_time"].values, dataset.times.numpy())
        assert opened["sample_time"].dims == ("trajectory", "time")
    for name, values in dataset.coordinates.items():
        if name == "date":  # CF time: xarray decodes days since 1970-01-01 into datetimes
            expected = np.datetime64("1970-01-01", "ns") + np.round(values.numpy() * 86400e9).astype("timedelta64[ns]")
            np.testing.assert_array_equal(opened[name].values, expected)
            assert name in opened.coords and opened[name].dims == ("time",)
        else:
            np.testing.assert_array_equal(opened[name].values, values.numpy())
            assert name in opened.coords
    for name, values in dataset.trajectory_parameters.items():
        assert opened[name].dims == ("trajectory",)
        np.testing.assert_array_equal(opened[name].values, values.numpy())
    for name, values in dataset.fields.items():
        np.testing.assert_array_equal(opened[name].values, values.numpy())
    if len(dataset.state_shape) == 1:
        assert list(opened["component"].values) == list(dataset.state_names)
    assert opened.attrs["Conventions"] == "CF-1.11" and opened.attrs["format_version"] == 2
    missing = [name for name in opened.variables if "long_name" not in opened[name].attrs]
    assert not missing, f"variables without a CF long_name: {missing}"
    return opened


@pytest.mark.parametrize("system", ["pendulum", "pendulum-xy", "oscillator", "wave"])
def test_trajectory_files_open_in_xarray(tmp_path, system):
    parameters = {"nodes": 8, "n_modes": 20} if system == "wave" else {}
    dataset = generate_dataset(make_system(system, **parameters), dt=0.1, t_final=1.0, n_trajectories=2, seed=1)
    opened = _check_xarray_agrees(write_dataset(tmp_path / "d.h5", dataset), dataset)
    assert opened["states"].dims[-1] == "component"


def test_sst_files_synthetic_imported_and_normalised_open_in_xarray(tmp_path):
    from dynlearn.datasets import generate_synthetic_sst_dataset, normalise_dataset, read_oisst

    synthetic = generate_synthetic_sst_dataset(years=1, resolution=2.0, spin_up_days=5)
    opened = _check_xarray_agrees(write_dataset(tmp_path / "synthetic.h5", synthetic), synthetic)
    assert opened["states"].attrs["standard_name"] == "sea_surface_temperature"
    assert opened["states"].attrs["units"] == "degC"
    assert opened["latitude"].attrs["units"] == "degrees_north" and opened["longitude"].attrs["axis"] == "X"
    assert opened["land_mask"].dims == ("latitude", "longitude")
    assert str(opened["date"].values[0])[:10] == "2012-01-01"

    record = read_oisst(files.write_oisst(tmp_path / "a.nc", "2016-02-27", 5))
    imported = record.to_dataset()
    opened = _check_xarray_agrees(write_dataset(tmp_path / "oisst.h5", imported), imported)
    assert [str(d)[:10] for d in opened["date"].values] == ["2016-02-27", "2016-02-28", "2016-02-29", "2016-03-01",
                                                           "2016-03-02"]
    anomalies = normalise_dataset(synthetic, train_end="2012-09-30")
    opened = _check_xarray_agrees(write_dataset(tmp_path / "anomalies.h5", anomalies), anomalies)
    assert opened["states"].attrs["units"] == "1"


def test_cylinder_files_open_in_xarray(tmp_path):
    from dynlearn.datasets import generate_cylinder_dataset
    from dynlearn.systems.cylinder import CylinderPreset

    preset = CylinderPreset(resolution=10, spacing=0.25, snapshot_interval=0.2, n_snapshots=3, domain_x=(-5.0, 11.0),
                            domain_y=(-5.0, 5.0), sponge=2.0)
    dataset = generate_cylinder_dataset(20.0, preset, velocity=True)
    opened = _check_xarray_agrees(write_dataset(tmp_path / "cylinder.h5", dataset), dataset)
    assert opened["states"].dims == ("trajectory", "time", "channel", "y", "x")
    assert list(opened["channel"].values) == ["vorticity", "u", "v"]
    assert opened["strouhal"].dims == ("trajectory",)


# --------------------------------------------------------------------------------------------------------------
# the checksum covers what the data claims to be

def _mutations():
    def attribute(name, change):
        return name, lambda handle: handle.attrs.__setitem__(name, change(handle.attrs[name]))

    def values(name):
        def change(handle):
            data = handle[name][()]
            data.flat[-1] += 1e-9
            handle[name][...] = data
        return f"variable {name}", change

    return [
        attribute("system", lambda v: "oscillator"),
        attribute("parameters", lambda v: json.dumps({"gravity": 9.80, "length": 1.0})),
        attribute("state_names", lambda v: json.dumps(["angle", "rate"])),
        attribute("generator", lambda v: json.dumps({"kind": "numerical"})),
        attribute("seed", lambda v: v + 1),
        attribute("sampling", lambda v: json.dumps({"kind": "uniform", "note": "x"})),
        attribute("units", lambda v: json.dumps({"time": "ms"})),
        attribute("state_dimensions", lambda v: json.dumps(["variable"])),
        attribute("initial_conditions_source", lambda v: "given"),
        values("energy"), values("period"), values("states"),
    ]


@pytest.mark.parametrize("what, change", _mutations(), ids=[m[0] for m in _mutations()])
def test_the_checksum_catches_every_change_to_data_or_metadata(tmp_path, what, change):
    path = write_dataset(tmp_path / "d.h5", _pendulum())
    with h5py.File(path, "r+") as handle:
        change(handle)
    with pytest.raises(DatasetFormatError, match="checksum does not match|'initial_conditions_source' is 'given'"):
        read_dataset(path)


def test_the_checksum_ignores_the_software_versions_and_the_text(tmp_path):
    path = write_dataset(tmp_path / "d.h5", _pendulum())
    with h5py.File(path, "r+") as handle:
        handle.attrs["created"] = "1999-01-01T00:00:00+00:00"
        handle.attrs["title"] = "renamed"
        handle["states"].attrs["long_name"] = "something else"
    read_dataset(path)


def test_content_checksum_is_of_the_content_not_of_the_python_object():
    dataset = _pendulum()
    explicit = TrajectoryDataset(**{**dataset.__dict__, "state_dimensions": ("component",)})
    assert content_checksum(explicit) == content_checksum(dataset)
    moved = TrajectoryDataset(**{**dataset.__dict__, "t0": 1e-300})
    assert content_checksum(moved) != content_checksum(dataset)


# --------------------------------------------------------------------------------------------------------------
# version 1


def write_version_1(path: Path, dataset: TrajectoryDataset) -> Path:
    """A version-1 file as dynlearn 0.1 wrote it: groups, ``times``, and a checksum of the arrays and fields."""
    times, initial, states = (v.numpy() for v in (dataset.times, dataset.initial_conditions, dataset.states))
    digest = hashlib.sha256()
    for array in (times, initial, states):
        digest.update(np.ascontiguousarray(array, dtype="<f8").tobytes())
    for name in sorted(dataset.fields):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(dataset.fields[name].numpy(), dtype="<f8").tobytes())
    with h5py.File(path, "w") as handle:
        handle["states"], handle["times"], handle["initial_conditions"] = states, times, initial
        for group, content in (("trajectory_parameters", dataset.trajectory_parameters),
                               ("coordinates", dataset.coordinates), ("fields", dataset.fields)):
            made = handle.create_group(group)
            for name, values in content.items():
                made[name] = values.numpy()
        handle.attrs.update({
            "format": "dynlearn-dataset", "format_version": 1, "system": dataset.system,
            "parameters": json.dumps(dataset.parameters), "state_names": json.dumps(list(dataset.state_names)),
            "generator": json.dumps(dataset.generator), "t0": dataset.t0, "dt": dataset.dt,
            "n_steps": dataset.n_steps, "initial_conditions_source": "sampled" if dataset.seed is not None else "given",
            "dynlearn_version": "0.1.0", "created": "2026-06-01T12:00:00+00:00",
            "checksum_sha256": digest.hexdigest(),
        })
        if dataset.seed is not None:
            handle.attrs["seed"] = dataset.seed
    return path


def _same(a: TrajectoryDataset, b: TrajectoryDataset) -> None:
    for name in ("states", "times", "initial_conditions"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    for name in ("system", "parameters", "state_names", "generator", "t0", "dt", "seed"):
        assert getattr(a, name) == getattr(b, name), name
    for group in ("trajectory_parameters", "coordinates", "fields"):
        left, right = getattr(a, group), getattr(b, group)
        assert left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left), group


def test_version_1_files_read_say_so_and_upgrade_to_version_2(tmp_path):
    from dynlearn.datasets import generate_synthetic_sst_dataset

    for name, dataset in (("pendulum", _pendulum()),
                          ("sst", generate_synthetic_sst_dataset(years=1, resolution=2.0, spin_up_days=5))):
        old = write_version_1(tmp_path / f"{name}.h5", dataset)
        read = read_dataset(old)
        assert read.attributes["format_version"] == 1
        _same(read, dataset)
        before = old.read_bytes()
        written, version = upgrade_dataset(old, tmp_path / f"{name}-v2.h5")
        assert version == 1 and old.read_bytes() == before  # --output keeps the original
        with pytest.raises(ValueError, match="overwrite must be True or False, got str 'no'"):
            upgrade_dataset(old, written, overwrite="no")  # a truthy string must not replace the output
        upgraded = read_dataset(written)
        assert upgraded.attributes["format_version"] == 2
        _same(upgraded, dataset)
        history = upgraded.attributes["history"]
        assert "2026-06-01T12:00:00+00:00 written by dynlearn 0.1.0 (format version 1)" in history
        with _open(written) as opened:
            assert opened["states"].dims[:2] == ("trajectory", "time")
        upgrade_dataset(old)  # in place
        assert read_dataset(old).attributes["format_version"] == 2
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(name)) == [f"{name}-v2.h5", f"{name}.h5"]


def test_a_tampered_version_1_file_is_not_upgraded(tmp_path):
    old = write_version_1(tmp_path / "old.h5", _pendulum())
    with h5py.File(old, "r+") as handle:
        handle["states"][0, 1, 0] = 5.0
    before = old.read_bytes()
    with pytest.raises(DatasetFormatError, match="checksum"):
        upgrade_dataset(old)
    assert old.read_bytes() == before


def test_the_command_line_upgrades_and_info_says_what_it_verified(tmp_path, capsys):
    from dynlearn.cli import main

    old = write_version_1(tmp_path / "old.h5", _pendulum())

    def dynlearn(*arguments):
        status = main(list(arguments))
        printed = capsys.readouterr()
        return status, printed.out, printed.err

    status, out, _ = dynlearn("info", str(old))
    assert status == 0 and "format version 1" in out and "dynlearn upgrade" in out
    status, out, _ = dynlearn("upgrade", str(old))
    assert status == 0 and "wrote" in out
    status, out, _ = dynlearn("info", str(old))
    assert "format version 2" in out and "the metadata (system, parameters" in out
    status, out, _ = dynlearn("upgrade", str(old))
    assert status == 0 and "already format version 2" in out
    status, _, err = dynlearn("upgrade", str(old), "--output", str(old))
    assert status == 2 and "exists; pass --overwrite" in err and "\n" not in err.strip()


def test_names_that_would_collide_in_the_root_group_are_refused_before_writing(tmp_path):
    dataset = _pendulum()
    clash = TrajectoryDataset(**{**dataset.__dict__, "trajectory_parameters": {
        **dataset.trajectory_parameters, "states": torch.zeros(3, dtype=torch.float64)}})
    with pytest.raises(DatasetFormatError, match="trajectory parameter 'states': the name is taken by the layout"):
        write_dataset(tmp_path / "x.h5", clash)
    odd = TrajectoryDataset(**{**dataset.__dict__, "fields": {"a/b": torch.zeros(2, dtype=torch.float64)}})
    with pytest.raises(DatasetFormatError, match="a name must be a letter"):
        write_dataset(tmp_path / "x.h5", odd)
    assert not list(tmp_path.iterdir())
