"""The dynlearn dataset format: one HDF5 file per dataset, self-describing, readable with plain h5py and with
xarray (``xarray.open_dataset(path, engine="h5netcdf")``: netCDF-4 dimension scales and CF-1.11 attributes).

Layout (format "dynlearn-dataset", version 2; every variable in the root group)::

    /states              float64 (trajectory, time, *state axes), chunked, gzip + shuffle; NaN marks a missing
                         sample (irregular sampling only): a sample is all numbers or all NaN
    /trajectory          int64 (trajectory,) 0..n-1, dimension scale
    /time                dimension scale of the time axis: the times t_k (float64) when every trajectory shares
                         them (a uniform grid t_k = t0 + k*dt, or one irregular grid); the sample index k (int64)
                         when each trajectory has its own times, which are then
    /sample_time         float64 (trajectory, time), each trajectory's own times, NaN where it has no sample
    /component, /channel, /x, /y, /latitude, ...
                         dimension scales of the state's axes (``state_dimensions``): the component or channel
                         names (strings), or the coordinates of a field's axes
    /initial_conditions  float64 (trajectory, *state axes), equal to states[:, 0]
    /NAME                the other variables, each marked by its attribute ``dynlearn_role``:
                         "trajectory_parameter" (trajectory,): a per-trajectory number (energy, period, ...);
                         "coordinate": a coordinate that is not a state axis (along time when it has n_times
                         values, as the SST's ``date``; else along a dimension of its own name);
                         "field": an array of any shape that belongs with the states (a land mask, the statistics
                         that map normalised states back to physical units), along the state's axes where its
                         trailing shape is theirs
    attributes of every variable: long_name, and units / standard_name where known (CF)
    attributes of /:
        format = "dynlearn-dataset", format_version = 2, Conventions = "CF-1.11", title, source, history
        system (name), parameters (JSON object), state_names (JSON list: one name per component, per channel
        of the first state axis, or one name for a whole field), state_dimensions (JSON list), units (JSON object)
        generator (JSON object: kind "analytical" or "numerical", method, tolerances or resolution)
        sampling (JSON object: kind "uniform", or how irregular times were drawn: kind, parameters, seed)
        t0, dt (the grid's step, or the nominal step of irregular sampling), n_steps, seed (absent when the
        initial conditions were given), initial_conditions_source
        dynlearn_version, torch_version, numpy_version, h5py_version, created (ISO 8601, UTC)
        checksum_sha256: SHA-256 of everything that defines the data (see :func:`content_checksum`): the
        metadata above (system, parameters, state_names, state_dimensions, units, generator, sampling, t0, dt,
        n_steps, seed, initial_conditions_source) as canonical JSON, then every array by name, shape and
        little-endian float64 bytes: states, times, initial_conditions, each coordinate, trajectory parameter and
        field. Not covered: the versions of the software, the creation time and the CF text (title, long_name).

Version 1 (dynlearn 0.1 before the irregular sampling) kept ``times``, ``initial_conditions`` and the groups
``trajectory_parameters/``, ``coordinates/``, ``fields/``, with a checksum over the arrays and fields only; it is
still read (``attributes["format_version"] == 1``), and :func:`upgrade_dataset` (``dynlearn upgrade FILE``)
rewrites such a file as version 2, atomically.

A file is written under a temporary name beside the target and renamed when complete, so an interrupted
write never leaves a file that looks finished. Reading validates every field and fails with a message that
names the file and the field.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dynlearn._checks import as_flag, check_allocation
from dynlearn._files import atomic_write

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "DatasetFormatError", "TrajectoryDataset", "content_checksum",
           "dataset_system", "read_dataset", "upgrade_dataset", "write_dataset"]

#: the value of a dataset file's root attribute ``format``, which marks a file as dynlearn's
FORMAT_NAME = "dynlearn-dataset"
#: the version :func:`write_dataset` writes (2: netCDF-4 dimension scales, CF attributes); version 1 still reads
FORMAT_VERSION = 2
#: the versions :func:`read_dataset` reads
READABLE_VERSIONS = (1, 2)
_TIME_TOLERANCE = 1e-12
#: variable names of the root group that the layout itself uses
_RESERVED = ("states", "trajectory", "time", "sample_time", "initial_conditions")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: the sampling of a uniform grid
UNIFORM = {"kind": "uniform"}


class DatasetFormatError(ValueError):
    """A file that is not a valid dynlearn dataset; the message names the file and the field."""


@dataclasses.dataclass(frozen=True)
class TrajectoryDataset:
    """Trajectories of one system, with everything needed to reproduce them.

    Attributes:
        states: ``(n_trajectories, n_times, *state_shape)`` float64; on irregularly sampled data a missing
            sample is all NaN.
        times: ``(n_times,)`` float64 shared by every trajectory (t0 + k*dt on a uniform grid), or
            ``(n_trajectories, n_times)``, each trajectory's own times (NaN where it has no sample).
        initial_conditions: ``(n_trajectories, *state_shape)``, equal to ``states[:, 0]`` (the first sample of
            every trajectory is present).
        system, parameters, state_names: what was simulated.
        generator: how (``{"kind": "analytical" | "numerical", "method": ..., ...}``).
        t0, dt: the time grid (on irregular data, the start and the nominal step). seed: of the sampled initial
            conditions (None when they were given).
        trajectory_parameters: per-trajectory numbers, each ``(n_trajectories,)``.
        coordinates: the coordinates of the state's axes (``x`` and ``y`` of a vorticity field), 1-D each, and
            coordinates along time (the SST's ``date``).
        fields: arrays of any shape that belong with the states (``land_mask``, normalisation statistics),
            float64, finite.
        attributes: on a dataset read from a file, every attribute of the file (versions, created, checksum).
        sampling: ``{"kind": "uniform"}``, or how irregular sample times were drawn (``kind`` "jittered", "gaps",
            "poisson" or "given", their parameters and seed).
        state_dimensions: the names of the state's axes (dimension names in the file and in xarray); empty:
            ``("component",)`` for a vector state, else a coordinate of matching length per axis
            (:meth:`dimension_names`).
        units: CF units by variable name (``"time"``, ``"states"``, a coordinate, a trajectory parameter, a
            field), where known.
    """

    states: torch.Tensor
    times: torch.Tensor
    initial_conditions: torch.Tensor
    system: str
    parameters: dict[str, Any]
    state_names: tuple[str, ...]
    generator: dict[str, Any]
    t0: float
    dt: float
    seed: int | None = None
    trajectory_parameters: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)
    coordinates: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)
    fields: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)
    attributes: dict[str, Any] = dataclasses.field(default_factory=dict)
    sampling: dict[str, Any] = dataclasses.field(default_factory=lambda: dict(UNIFORM))
    state_dimensions: tuple[str, ...] = ()
    units: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def n_trajectories(self) -> int:
        return self.states.shape[0]

    @property
    def n_times(self) -> int:
        return self.states.shape[1]

    @property
    def n_steps(self) -> int:
        return self.n_times - 1

    @property
    def state_shape(self) -> tuple[int, ...]:
        return tuple(self.states.shape[2:])

    @property
    def is_uniform(self) -> bool:
        """True on a uniform grid shared by every trajectory (t_k = t0 + k*dt, no missing sample)."""
        return self.sampling.get("kind") == "uniform"

    @property
    def observed(self) -> torch.Tensor:
        """``(n_trajectories, n_times)`` bool: True where a trajectory has a sample (all True on uniform data)."""
        return torch.isfinite(self.states.reshape(self.n_trajectories, self.n_times, -1)).all(dim=2)

    @property
    def sample_times(self) -> torch.Tensor:
        """``(n_trajectories, n_times)``: every trajectory's times (the shared axis repeated, when shared)."""
        return self.times.expand(self.n_trajectories, -1) if self.times.ndim == 1 else self.times

    def step_sizes(self) -> torch.Tensor:
        """The time from each present sample to the next present one of its trajectory, every trajectory in turn
        (1-D float64; all equal to dt on a uniform grid)."""
        times, present = self.sample_times.to(torch.float64), self.observed
        return torch.cat([times[b][present[b]].diff() for b in range(self.n_trajectories)])

    def require_uniform(self, purpose: str) -> None:
        """Raise a one-line ValueError when the dataset is not on a uniform grid (``purpose`` says who needs it)."""
        if not self.is_uniform:
            raise ValueError(f"{purpose} needs data on a uniform time grid; this dataset is sampled irregularly "
                             f"({self.sampling.get('kind')}): use the views with their own dt per sample")

    def dimension_names(self) -> tuple[str, ...]:
        """The names of the state's axes: ``state_dimensions`` when given; else ``("component",)`` for a vector
        state (one name per component), a leading ``"channel"`` axis when ``state_names`` name the channels of
        the first axis, then per axis the coordinate of that length (when exactly one has it) or ``axis_I``."""
        if self.state_dimensions:
            return tuple(self.state_dimensions)
        shape = self.state_shape
        if len(shape) == 1:
            return ("component",)
        names: list[str] = []
        axes = list(enumerate(shape))
        if len(self.state_names) == shape[0] > 1:
            names.append("channel")
            axes = axes[1:]
        for index, size in axes:
            matches = [n for n, v in self.coordinates.items() if v.ndim == 1 and v.numel() == size and n not in names]
            names.append(matches[0] if len(matches) == 1 else f"axis_{index}")
        return tuple(names)

    def validate(self, where: str = "dataset") -> None:
        """Check shapes, the time axis, missing samples and finiteness; raise :class:`DatasetFormatError` naming
        the field."""
        states, times, initial = self.states, self.times, self.initial_conditions
        if states.ndim < 3:
            raise DatasetFormatError(
                f"{where}: states: expected (n_trajectories, n_times, *state_shape), got shape {tuple(states.shape)}"
            )
        if states.shape[0] < 1 or states.shape[1] < 1:
            raise DatasetFormatError(f"{where}: states: empty, shape {tuple(states.shape)}")
        if times.shape not in {(states.shape[1],), tuple(states.shape[:2])}:
            raise DatasetFormatError(
                f"{where}: times: expected shape ({states.shape[1]},), or {tuple(states.shape[:2])} for a time axis "
                f"per trajectory, to match states; got {tuple(times.shape)}"
            )
        if tuple(initial.shape) != (states.shape[0], *states.shape[2:]):
            raise DatasetFormatError(
                f"{where}: initial_conditions: expected shape {(states.shape[0], *states.shape[2:])}, "
                f"got {tuple(initial.shape)}"
            )
        if not (math.isfinite(self.dt) and self.dt > 0 and math.isfinite(self.t0)):
            raise DatasetFormatError(f"{where}: dt, t0: need a finite dt > 0 and a finite t0, got {self.dt}, {self.t0}")
        if not isinstance(self.sampling, dict) or not isinstance(self.sampling.get("kind"), str):
            raise DatasetFormatError(f"{where}: sampling: must be a dict with a 'kind', got {self.sampling!r}")
        flat = states.reshape(states.shape[0], states.shape[1], -1)
        present = torch.isfinite(flat).all(dim=2)
        if not bool((present | torch.isnan(flat).all(dim=2)).all()):
            raise DatasetFormatError(f"{where}: states: contain inf, or NaN in part of a sample (a missing sample is "
                                     f"NaN in every value)")
        if self.is_uniform:
            if times.ndim != 1:
                raise DatasetFormatError(f"{where}: times: a time axis per trajectory is irregular sampling; "
                                         f"sampling says 'uniform'")
            if not bool(present.all()):
                raise DatasetFormatError(f"{where}: states: contain NaN (a missing sample needs irregular sampling)")
            expected = self.t0 + torch.arange(times.shape[0], dtype=torch.float64) * self.dt
            deviation = float((times.to(torch.float64) - expected).abs().max())
            if not deviation <= _TIME_TOLERANCE * max(1.0, float(expected.abs().max())):
                raise DatasetFormatError(f"{where}: times: not the grid t0 + k*dt (t0 = {self.t0}, dt = {self.dt}); "
                                         f"off by up to {deviation:.3g}")
        else:
            self._validate_irregular(where, present)
        if not bool(present[:, 0].all()):
            raise DatasetFormatError(f"{where}: states: the first sample of every trajectory must be present "
                                     f"(it is the initial condition)")
        if not torch.equal(initial, states[:, 0]):
            raise DatasetFormatError(f"{where}: initial_conditions: differ from states[:, 0]")
        if len(self.state_names) not in {int(np.prod(self.state_shape)), self.state_shape[0], 1}:
            raise DatasetFormatError(
                f"{where}: state_names: {len(self.state_names)} names for a state of shape {self.state_shape} "
                f"(give one per component, one per channel of the first axis, or one for a whole field)"
            )
        for name, values in self.fields.items():
            if not bool(torch.isfinite(values).all()):
                raise DatasetFormatError(f"{where}: fields/{name}: contains NaN or inf")
        for name, values in self.coordinates.items():
            if values.numel() < 1 or not bool(torch.isfinite(values).all()):
                raise DatasetFormatError(f"{where}: coordinates/{name}: must be a non-empty array of finite numbers "
                                         f"(shape {tuple(values.shape)})")
        for name, values in self.trajectory_parameters.items():
            if tuple(values.shape) != (states.shape[0],):
                raise DatasetFormatError(
                    f"{where}: trajectory_parameters/{name}: expected shape ({states.shape[0]},), got {tuple(values.shape)}"
                )
        if self.state_dimensions and len(self.state_dimensions) != len(self.state_shape):
            raise DatasetFormatError(f"{where}: state_dimensions: {len(self.state_dimensions)} names for a state of "
                                     f"{len(self.state_shape)} axes")

    def _validate_irregular(self, where: str, present: torch.Tensor) -> None:
        times = self.sample_times.to(torch.float64)
        if not bool((torch.isfinite(times) | ~present).all()) or bool(torch.isinf(times).any()):
            raise DatasetFormatError(f"{where}: times: every present sample needs a finite time (NaN only where a "
                                     f"trajectory has no sample)")
        for index in range(times.shape[0]):
            own = times[index][present[index]]
            if own.numel() > 1 and not bool((own[1:] > own[:-1]).all()):
                raise DatasetFormatError(f"{where}: times: trajectory {index}'s sample times are not strictly "
                                         f"increasing")
        first = times[:, 0]
        if float((first - self.t0).abs().max()) > _TIME_TOLERANCE * max(1.0, abs(self.t0)):
            raise DatasetFormatError(f"{where}: times: every trajectory must start at t0 = {self.t0}")

    def _validate_names(self, where: str) -> None:
        """The names that become variables of the file's root group: well formed and distinct."""
        seen: dict[str, str] = {name: "the layout" for name in _RESERVED}
        dimensions = self.dimension_names()
        for role, names in (("state dimension", dimensions), ("coordinate", self.coordinates),
                            ("trajectory parameter", self.trajectory_parameters), ("field", self.fields)):
            for name in names:
                if not _NAME.match(name):
                    raise DatasetFormatError(f"{where}: {role} {name!r}: a name must be a letter followed by letters, "
                                             f"digits or underscores")
                if name in seen and not (role == "coordinate" and seen[name] == "state dimension"):
                    raise DatasetFormatError(f"{where}: {role} {name!r}: the name is taken by {seen[name]}")
                seen[name] = role
        for name, values in self.coordinates.items():
            if name in dimensions and (values.ndim != 1 or values.numel() != self.state_shape[dimensions.index(name)]):
                raise DatasetFormatError(f"{where}: coordinates/{name}: {values.numel()} values for a state axis "
                                         f"of {self.state_shape[dimensions.index(name)]}")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _digest_array(digest: Any, name: str, values: np.ndarray) -> None:
    array = np.ascontiguousarray(values, dtype="<f8")
    digest.update(f"{name}{list(array.shape)}".encode("utf-8"))
    digest.update(array.tobytes())


def content_checksum(dataset: TrajectoryDataset) -> str:
    """The version-2 checksum: SHA-256 of the metadata that defines the data, as canonical JSON (sorted keys)
    ``{system, parameters, state_names, state_dimensions, units, generator, sampling, t0, dt, n_steps, seed,
    initial_conditions_source}``, then of every array, each as its name and shape followed by its little-endian
    float64 bytes (C order): states, times, initial_conditions, then ``coordinate:NAME``,
    ``trajectory_parameter:NAME`` and ``field:NAME`` in name order. Any change to the data or to what it
    claims to be changes it."""
    digest = hashlib.sha256()
    metadata = {
        "system": dataset.system, "parameters": dataset.parameters, "state_names": list(dataset.state_names),
        "state_dimensions": list(dataset.dimension_names()), "units": dataset.units, "generator": dataset.generator,
        "sampling": dataset.sampling, "t0": float(dataset.t0), "dt": float(dataset.dt), "n_steps": dataset.n_steps,
        "seed": dataset.seed, "initial_conditions_source": "sampled" if dataset.seed is not None else "given",
    }
    digest.update(_canonical(metadata).encode("utf-8"))
    for name, values in (("states", dataset.states), ("times", dataset.times),
                         ("initial_conditions", dataset.initial_conditions)):
        _digest_array(digest, name, values.detach().to("cpu", torch.float64).numpy())
    for role, group in (("coordinate", dataset.coordinates), ("trajectory_parameter", dataset.trajectory_parameters),
                        ("field", dataset.fields)):
        for name in sorted(group):
            _digest_array(digest, f"{role}:{name}", group[name].detach().to("cpu", torch.float64).numpy())
    return digest.hexdigest()


def _checksum_version_1(times: np.ndarray, initial: np.ndarray, states: np.ndarray,
                        fields: dict[str, np.ndarray]) -> str:
    """Version 1's checksum: the arrays and fields only (no metadata, no coordinates, no trajectory parameters)."""
    digest = hashlib.sha256()
    for array in (times, initial, states):
        digest.update(np.ascontiguousarray(array, dtype="<f8").tobytes())
    for name in sorted(fields):
        digest.update(name.encode("utf-8"))
        digest.update(np.ascontiguousarray(fields[name], dtype="<f8").tobytes())
    return digest.hexdigest()


#: CF attributes of coordinates known by name (units, standard_name, axis); a dataset's own ``units`` win
_KNOWN_COORDINATES: dict[str, dict[str, str]] = {
    "latitude": {"units": "degrees_north", "standard_name": "latitude", "axis": "Y", "long_name": "latitude"},
    "longitude": {"units": "degrees_east", "standard_name": "longitude", "axis": "X", "long_name": "longitude"},
    "date": {"units": "days since 1970-01-01 00:00:00", "calendar": "standard", "standard_name": "time",
             "long_name": "date of the sample"},
}
#: CF standard names of whole states, by system
_STATE_STANDARD_NAMES = {"sea_surface_temperature": "sea_surface_temperature"}
_DIMENSION_ONLY = "This is a netCDF dimension but not a netCDF variable."


def _dimension_only(handle: Any, name: str, size: int) -> Any:
    """A netCDF dimension with no coordinate values (xarray shows it as a dimension without coordinates)."""
    scale = handle.create_dataset(name, shape=(size,), dtype="f4")
    scale.make_scale(f"{_DIMENSION_ONLY}{size:10d}")
    scale.attrs["dynlearn_role"] = "dimension"
    return scale


def _attach(variable: Any, scales: list[Any]) -> None:
    for axis, scale in enumerate(scales):
        variable.dims[axis].attach_scale(scale)


def _history(dataset: TrajectoryDataset, line: str) -> str:
    """CF ``history``: this write first, then what the file it was read from said (its history, or for a version-1
    file its creation), so an upgraded file keeps where it came from."""
    before = dataset.attributes.get("history")
    if not before and dataset.attributes.get("created"):
        before = (f"{dataset.attributes['created']} written by dynlearn {dataset.attributes.get('dynlearn_version')} "
                  f"(format version {dataset.attributes.get('format_version')})")
    return f"{line}\n{before}" if before else line


def write_dataset(path: str | os.PathLike, dataset: TrajectoryDataset, *, overwrite: bool = False) -> Path:
    """Validate ``dataset`` and write it to ``path`` atomically (temporary file, then rename), as format version 2.

    Refuses to replace an existing file unless ``overwrite=True``; nothing is written when validation fails.
    """
    import h5py

    from dynlearn import __version__

    if not isinstance(dataset, TrajectoryDataset):
        raise TypeError(f"dataset must be a TrajectoryDataset, got {type(dataset).__name__}")
    overwrite = as_flag("overwrite", overwrite)
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True (or --overwrite) to replace it")
    dataset.validate(str(target))
    dataset._validate_names(str(target))

    def numpy(values: torch.Tensor) -> np.ndarray:
        return values.detach().to("cpu", torch.float64).numpy()

    states, times, initial = numpy(dataset.states), numpy(dataset.times), numpy(dataset.initial_conditions)
    dimensions = dataset.dimension_names()
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    attributes = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "Conventions": "CF-1.11",
        "title": f"{dataset.system}: {dataset.n_trajectories} trajectories of {dataset.n_times} samples",
        "source": str(dataset.generator.get("method", dataset.generator.get("kind", ""))),
        "history": _history(dataset, f"{created} written by dynlearn {__version__} (format version {FORMAT_VERSION})"),
        "system": dataset.system,
        "parameters": json.dumps(dataset.parameters),
        "state_names": json.dumps(list(dataset.state_names)),
        "state_dimensions": json.dumps(list(dimensions)),
        "units": json.dumps(dataset.units),
        "generator": json.dumps(dataset.generator),
        "sampling": json.dumps(dataset.sampling),
        "t0": float(dataset.t0),
        "dt": float(dataset.dt),
        "n_steps": int(dataset.n_steps),
        "initial_conditions_source": "sampled" if dataset.seed is not None else "given",
        "dynlearn_version": str(__version__),
        "torch_version": str(torch.__version__),
        "numpy_version": str(np.__version__),
        "h5py_version": str(h5py.__version__),
        "created": created,
        "checksum_sha256": content_checksum(dataset),
    }
    if dataset.seed is not None:
        attributes["seed"] = int(dataset.seed)
    units = dataset.units

    def describe(variable: Any, name: str, long_name: str) -> None:
        known = dict(_KNOWN_COORDINATES.get(name, {}))
        known.setdefault("long_name", long_name)
        if name in units:
            known["units"] = units[name]
        variable.attrs.update(known)

    def write(temporary: Path) -> None:
        with h5py.File(temporary, "w") as handle:
            chunk_times = min(states.shape[1], max(1, (1 << 20) // max(1, 8 * int(np.prod(states.shape[2:])))))
            variable = handle.create_dataset(
                "states", data=states, chunks=(1, chunk_times, *states.shape[2:]), compression="gzip",
                compression_opts=4, shuffle=True,
            )
            describe(variable, "states", f"state of the {dataset.system} ({', '.join(dataset.state_names[:8])}"
                                         f"{', ...' if len(dataset.state_names) > 8 else ''})")
            if dataset.system in _STATE_STANDARD_NAMES:
                variable.attrs["standard_name"] = _STATE_STANDARD_NAMES[dataset.system]
            trajectory = handle.create_dataset("trajectory", data=np.arange(states.shape[0], dtype=np.int64))
            trajectory.make_scale("trajectory")
            trajectory.attrs.update({"long_name": "trajectory number", "dynlearn_role": "dimension"})
            auxiliary = []
            if times.ndim == 1:
                time = handle.create_dataset("time", data=times)
                describe(time, "time", "time")
                time.attrs["axis"] = "T"
            else:
                time = handle.create_dataset("time", data=np.arange(states.shape[1], dtype=np.int64))
                time.attrs["long_name"] = "sample index (each trajectory has its own sample times)"
                sample_time = handle.create_dataset("sample_time", data=times)
                describe(sample_time, "time", "sample time")
                sample_time.dims[0].attach_scale(trajectory)
                auxiliary.append("sample_time")
            time.make_scale("time")
            time.attrs["dynlearn_role"] = "dimension"
            if times.ndim == 2:
                handle["sample_time"].dims[1].attach_scale(time)
            axes = []
            for axis, name in enumerate(dimensions):
                size = states.shape[2 + axis]
                if name in dataset.coordinates:
                    scale = handle.create_dataset(name, data=numpy(dataset.coordinates[name]))
                    describe(scale, name, name)
                    scale.attrs["dynlearn_role"] = "coordinate"
                elif name in ("component", "channel") and len(dataset.state_names) == size:
                    scale = handle.create_dataset(name, data=np.array(dataset.state_names, dtype=object),
                                                  dtype=h5py.string_dtype())
                    scale.attrs.update({"long_name": f"{name} of the state", "dynlearn_role": "dimension"})
                else:
                    scale = _dimension_only(handle, name, size)
                if name in dataset.coordinates or name in ("component", "channel"):
                    scale.make_scale(name)
                axes.append(scale)
            _attach(variable, [trajectory, time, *axes])
            start = handle.create_dataset("initial_conditions", data=initial)
            describe(start, "initial_conditions", "initial condition of each trajectory")
            _attach(start, [trajectory, *axes])
            for name, values in dataset.coordinates.items():
                if name in dimensions:
                    continue
                coordinate = handle.create_dataset(name, data=numpy(values))
                describe(coordinate, name, name)
                coordinate.attrs["dynlearn_role"] = "coordinate"
                if coordinate.ndim == 1 and coordinate.shape[0] == states.shape[1] and times.ndim == 1:
                    coordinate.dims[0].attach_scale(time)
                    auxiliary.append(name)
                elif coordinate.ndim == 1:
                    coordinate.make_scale(name)
            for name, values in dataset.trajectory_parameters.items():
                parameter = handle.create_dataset(name, data=numpy(values))
                describe(parameter, name, f"{name} of each trajectory")
                parameter.attrs["dynlearn_role"] = "trajectory_parameter"
                parameter.dims[0].attach_scale(trajectory)
            for name, values in dataset.fields.items():
                array = numpy(values)
                field = handle.create_dataset(name, data=array, compression="gzip" if array.size > 4096 else None)
                describe(field, name, name)
                field.attrs["dynlearn_role"] = "field"
                shared = 0  # trailing axes along the state's own
                while (shared < min(array.ndim, len(axes))
                       and array.shape[array.ndim - 1 - shared] == states.shape[states.ndim - 1 - shared]):
                    shared += 1
                leading = [_dimension_only(handle, f"{name}_axis{i}", array.shape[i])
                           for i in range(array.ndim - shared)]
                _attach(field, leading + axes[len(axes) - shared:])
            if auxiliary:
                variable.attrs["coordinates"] = " ".join(auxiliary)
            handle.attrs.update(attributes)

    return atomic_write(target, write, replace=overwrite)


def upgrade_dataset(path: str | os.PathLike, output: str | os.PathLike | None = None, *,
                    overwrite: bool = False) -> tuple[Path, int]:
    """Rewrite a dataset file as the current format version: read (checksum verified), then written atomically to
    ``output`` (default: ``path`` itself, replaced only once the new file is complete). Returns the path written
    and the version it was read as; a file already at the current version is left untouched (returned as is)."""
    overwrite = as_flag("overwrite", overwrite)
    dataset = read_dataset(path)
    version = int(dataset.attributes.get("format_version", FORMAT_VERSION))
    if output is None:
        if version == FORMAT_VERSION:
            return Path(path), version
        return write_dataset(path, dataset, overwrite=True), version
    return write_dataset(output, dataset, overwrite=overwrite), version


def dataset_system(path: str | os.PathLike) -> str:
    """The ``system`` attribute of a dataset file, without reading its arrays (checks that it is one)."""
    import h5py

    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"{os.fspath(path)!r}: no such dataset file" if not os.fspath(path) else
                                f"{source}: {'a folder, not' if source.is_dir() else 'no such'} dataset file")
    try:
        with h5py.File(source, "r") as handle:
            if handle.attrs.get("format") != FORMAT_NAME:
                raise DatasetFormatError(f"{source}: not a dynlearn dataset")
            return str(handle.attrs.get("system", ""))
    except OSError as error:
        raise DatasetFormatError(f"{source}: not an HDF5 file ({error})") from None


_REQUIRED = ("system", "parameters", "state_names", "generator", "t0", "dt", "n_steps", "checksum_sha256")
_REQUIRED_2 = ("sampling", "state_dimensions", "units")


def _read_array(handle: Any, name: str, source: Path, *, dtype: Any = None) -> np.ndarray:
    """The dataset at ``name``, checked before it is read: a real dataset (not a group, not a soft or external
    link), of numbers, and of a size this machine can hold."""
    import h5py

    link = handle.get(name, getlink=True)
    if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
        raise DatasetFormatError(f"{source}: {name}: a {type(link).__name__}, not a dataset stored in the file")
    node = handle.get(name)
    if not isinstance(node, h5py.Dataset):
        raise DatasetFormatError(f"{source}: {name}: a {type(node).__name__}, not a dataset")
    if node.dtype.kind not in "fiub":
        raise DatasetFormatError(f"{source}: {name}: holds {node.dtype}, not numbers")
    try:
        check_allocation(f"{source}: {name} of declared shape {node.shape}", 2 * 8.0 * math.prod(node.shape),
                         "the file declares more than it can hold, or needs a larger machine")
    except ValueError as error:
        raise DatasetFormatError(str(error)) from None
    values = node[()]
    return np.asarray(values, dtype=dtype) if dtype is not None else np.asarray(values)


def _read_group(handle: Any, group: str, source: Path, dtype: Any = None) -> dict[str, np.ndarray]:
    import h5py

    if group not in handle:
        return {}
    link = handle.get(group, getlink=True)
    if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)) or not isinstance(handle.get(group), h5py.Group):
        raise DatasetFormatError(f"{source}: {group}: not a group of datasets")
    return {name: _read_array(handle, f"{group}/{name}", source, dtype=dtype) for name in handle[group]}


def _read_roles(handle: Any, source: Path) -> dict[str, dict[str, np.ndarray]]:
    """Version 2: the root variables marked coordinate, trajectory_parameter or field, by role."""
    import h5py

    found: dict[str, dict[str, np.ndarray]] = {"coordinate": {}, "trajectory_parameter": {}, "field": {}}
    for name in handle:
        link = handle.get(name, getlink=True)
        if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
            raise DatasetFormatError(f"{source}: {name}: a {type(link).__name__}, not a dataset stored in the file")
        node = handle.get(name)
        role = node.attrs.get("dynlearn_role") if isinstance(node, h5py.Dataset) else None
        if isinstance(role, bytes):
            role = role.decode("utf-8", "replace")
        if role in found:
            found[role][name] = _read_array(handle, name, source, dtype=np.float64)
    return found


def _number(attributes: dict[str, Any], name: str, source: Path, kind: type = float) -> Any:
    value = attributes[name]
    try:
        number = kind(value)
        if kind is int and number != float(value):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        wanted = "an integer" if kind is int else "a number"
        raise DatasetFormatError(f"{source}: attribute {name!r} is {value!r}, not {wanted}") from None
    return number


def _json_attribute(attributes: dict[str, Any], name: str, source: Path, kind: type) -> Any:
    try:
        value = json.loads(attributes[name])
    except (TypeError, ValueError):
        raise DatasetFormatError(f"{source}: attribute {name!r} is not valid JSON") from None
    if not isinstance(value, kind):
        raise DatasetFormatError(f"{source}: attribute {name!r} must be a JSON "
                                 f"{'object' if kind is dict else 'list'}")
    return value


def read_dataset(path: str | os.PathLike, *, verify_checksum: bool = True) -> TrajectoryDataset:
    """Read and validate a dataset file (format version 1 or 2); every malformed file raises
    :class:`DatasetFormatError` naming the file and the field at fault (links, groups where datasets belong,
    declared sizes beyond the machine, unreadable metadata), and nothing is read before its declared size has been
    checked. ``attributes["format_version"]`` says which version the file is; a version-1 checksum covers the
    arrays only (:func:`upgrade_dataset` rewrites such a file as version 2)."""
    import h5py

    verify_checksum = as_flag("verify_checksum", verify_checksum)
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"{os.fspath(path)!r}: no such dataset file" if not os.fspath(path) else
                                f"{source}: {'a folder, not' if source.is_dir() else 'no such'} dataset file")
    try:
        handle = h5py.File(source, "r")
    except (OSError, RuntimeError, ValueError) as error:
        raise DatasetFormatError(f"{source}: not an HDF5 file ({error})") from None
    reading = "the file's attributes"
    try:
        with handle:
            found = handle.attrs.get("format")
            if found != FORMAT_NAME:
                raise DatasetFormatError(f"{source}: attribute 'format' is {found!r}, not {FORMAT_NAME!r}: not a "
                                         f"dynlearn dataset")
            version = handle.attrs.get("format_version", -1)
            if not isinstance(version, (int, np.integer)) or int(version) not in READABLE_VERSIONS:
                raise DatasetFormatError(f"{source}: attribute 'format_version' is {version!r}; this dynlearn reads "
                                         f"versions {', '.join(map(str, READABLE_VERSIONS))}")
            version = int(version)
            for name in _REQUIRED + (_REQUIRED_2 if version >= 2 else ()):
                if name not in handle.attrs:
                    raise DatasetFormatError(f"{source}: attribute {name!r} is missing")
            attributes = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in handle.attrs.items()}
            times_name = "times" if version == 1 else ("sample_time" if "sample_time" in handle else "time")
            for name in ("states", times_name, "initial_conditions"):
                if name not in handle:
                    raise DatasetFormatError(f"{source}: dataset {name!r} is missing")
            reading = "states"
            states = _read_array(handle, "states", source)
            reading = times_name
            times = _read_array(handle, times_name, source)
            reading = "initial_conditions"
            initial = _read_array(handle, "initial_conditions", source)
            if version == 1:
                reading = "trajectory_parameters"
                per_trajectory = _read_group(handle, reading, source)
                reading = "coordinates"
                coordinates = _read_group(handle, reading, source)
                reading = "fields"
                fields = _read_group(handle, reading, source, dtype=np.float64)
            else:
                reading = "the variables"
                roles = _read_roles(handle, source)
                coordinates, per_trajectory, fields = (roles["coordinate"], roles["trajectory_parameter"],
                                                       roles["field"])
    except DatasetFormatError:
        raise
    except (KeyError, AttributeError, RuntimeError, OSError, TypeError, ValueError, IndexError,
            UnicodeDecodeError) as error:  # h5py's own errors on damaged metadata or chunks
        raise DatasetFormatError(f"{source}: {reading}: unreadable ({type(error).__name__}: {error})") from None
    decoded = {name: _json_attribute(attributes, name, source, kind)
               for name, kind in (("parameters", dict), ("state_names", list), ("generator", dict))}
    if not all(isinstance(n, str) for n in decoded["state_names"]):
        raise DatasetFormatError(f"{source}: attribute 'state_names' must be a JSON list of names")
    if not isinstance(attributes["checksum_sha256"], str) or not isinstance(attributes["system"], str):
        raise DatasetFormatError(f"{source}: attributes 'checksum_sha256' and 'system' must be strings")
    sampling, dimensions, units = dict(UNIFORM), [], {}
    if version >= 2:
        sampling = _json_attribute(attributes, "sampling", source, dict)
        dimensions = _json_attribute(attributes, "state_dimensions", source, list)
        units = _json_attribute(attributes, "units", source, dict)
        if not all(isinstance(n, str) for n in dimensions) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in units.items()):
            raise DatasetFormatError(f"{source}: attributes 'state_dimensions' and 'units' must hold strings")
    if version == 1 and verify_checksum and _checksum_version_1(times, initial, states, fields) != (
            attributes["checksum_sha256"]):
        raise DatasetFormatError(
            f"{source}: the content checksum does not match attribute 'checksum_sha256': the file was changed or is corrupt"
        )
    dataset = TrajectoryDataset(
        states=torch.from_numpy(np.asarray(states, dtype=np.float64)),
        times=torch.from_numpy(np.asarray(times, dtype=np.float64)),
        initial_conditions=torch.from_numpy(np.asarray(initial, dtype=np.float64)),
        system=attributes["system"],
        parameters=decoded["parameters"],
        state_names=tuple(decoded["state_names"]),
        generator=decoded["generator"],
        t0=_number(attributes, "t0", source),
        dt=_number(attributes, "dt", source),
        seed=_number(attributes, "seed", source, int) if "seed" in attributes else None,
        trajectory_parameters={k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in per_trajectory.items()},
        coordinates={k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in coordinates.items()},
        fields={name: torch.from_numpy(values) for name, values in fields.items()},
        attributes=attributes,
        sampling=sampling,
        state_dimensions=tuple(dimensions),
        units=units,
    )
    dataset.validate(str(source))
    source_of_initial = "sampled" if dataset.seed is not None else "given"
    if attributes.get("initial_conditions_source", source_of_initial) != source_of_initial:
        raise DatasetFormatError(f"{source}: attribute 'initial_conditions_source' is "
                                 f"{attributes['initial_conditions_source']!r}, but the file "
                                 f"{'has' if dataset.seed is not None else 'has no'} seed")
    if version >= 2 and verify_checksum:
        try:
            checksum = content_checksum(dataset)
        except (TypeError, ValueError) as error:
            raise DatasetFormatError(f"{source}: the metadata cannot be checksummed ({error})") from None
        if checksum != attributes["checksum_sha256"]:
            raise DatasetFormatError(f"{source}: the content checksum does not match attribute 'checksum_sha256': "
                                     f"the data or its metadata was changed, or the file is corrupt")
    if dataset.n_steps != _number(attributes, "n_steps", source, int):
        raise DatasetFormatError(f"{source}: attribute 'n_steps' is {attributes['n_steps']} but times hold {dataset.n_steps} steps")
    return dataset
