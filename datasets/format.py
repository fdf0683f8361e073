"""The dynlearn dataset format: one HDF5 file per dataset, self-describing, readable with plain h5py.

Layout (format "dynlearn-dataset", version 1)::

    /states                      float64 (n_trajectories, n_times, *state_shape), chunked, gzip + shuffle
    /times                       float64 (n_times,), t_k = t0 + k*dt exactly as computed (never accumulated)
    /initial_conditions          float64 (n_trajectories, *state_shape), equal to states[:, 0]
    /trajectory_parameters/NAME  float64 (n_trajectories,), optional per-trajectory numbers (energy, period, ...)
    /coordinates/NAME            float64, optional coordinates of a field's axes (x, y of a vorticity field)
    /fields/NAME                 float64, optional arrays of any shape that belong with the states: a land mask,
                                 the statistics that map normalised states back to physical units
    attributes of /:
        format = "dynlearn-dataset", format_version = 1
        system (name), parameters (JSON object), state_names (JSON list: one name per component, per channel
        of the first state axis, or one name for a whole field)
        generator (JSON object: kind "analytical" or "numerical", method, tolerances or resolution)
        t0, dt, n_steps, seed (absent when the initial conditions were given), initial_conditions_source
        dynlearn_version, torch_version, numpy_version, h5py_version, created (ISO 8601, UTC)
        checksum_sha256: SHA-256 of the little-endian float64 bytes of times, initial_conditions, states
                         (in that order, C order), then of each field's name and values, in name order

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
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dynlearn._checks import check_allocation
from dynlearn._files import atomic_write

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "DatasetFormatError", "TrajectoryDataset", "dataset_system", "read_dataset",
           "write_dataset"]

FORMAT_NAME = "dynlearn-dataset"
FORMAT_VERSION = 1
_TIME_TOLERANCE = 1e-12


class DatasetFormatError(ValueError):
    """A file that is not a valid dynlearn dataset; the message names the file and the field."""


@dataclasses.dataclass(frozen=True)
class TrajectoryDataset:
    """Trajectories of one system on one uniform time grid, with everything needed to reproduce them.

    Attributes:
        states: ``(n_trajectories, n_times, *state_shape)`` float64.
        times: ``(n_times,)`` float64, t0 + k*dt.
        initial_conditions: ``(n_trajectories, *state_shape)``, equal to ``states[:, 0]``.
        system, parameters, state_names: what was simulated.
        generator: how (``{"kind": "analytical" | "numerical", "method": ..., ...}``).
        t0, dt: the time grid. seed: of the sampled initial conditions (None when they were given).
        trajectory_parameters: per-trajectory numbers, each ``(n_trajectories,)``.
        coordinates: for fields, the coordinates of the state's axes (e.g. ``x`` and ``y`` of a vorticity
            field), 1-D each.
        fields: arrays of any shape that belong with the states (``land_mask``, normalisation statistics),
            float64, finite.
        attributes: on a dataset read from a file, every attribute of the file (versions, created, checksum).
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

    def validate(self, where: str = "dataset") -> None:
        """Check shapes, the time grid and finiteness; raise :class:`DatasetFormatError` naming the field."""
        states, times, initial = self.states, self.times, self.initial_conditions
        if states.ndim < 3:
            raise DatasetFormatError(
                f"{where}: states: expected (n_trajectories, n_times, *state_shape), got shape {tuple(states.shape)}"
            )
        if states.shape[0] < 1 or states.shape[1] < 1:
            raise DatasetFormatError(f"{where}: states: empty, shape {tuple(states.shape)}")
        if times.ndim != 1 or times.shape[0] != states.shape[1]:
            raise DatasetFormatError(
                f"{where}: times: expected shape ({states.shape[1]},) to match states, got {tuple(times.shape)}"
            )
        if tuple(initial.shape) != (states.shape[0], *states.shape[2:]):
            raise DatasetFormatError(
                f"{where}: initial_conditions: expected shape {(states.shape[0], *states.shape[2:])}, "
                f"got {tuple(initial.shape)}"
            )
        if not (math.isfinite(self.dt) and self.dt > 0 and math.isfinite(self.t0)):
            raise DatasetFormatError(f"{where}: dt, t0: need a finite dt > 0 and a finite t0, got {self.dt}, {self.t0}")
        expected = self.t0 + torch.arange(times.shape[0], dtype=torch.float64) * self.dt
        deviation = float((times.to(torch.float64) - expected).abs().max())
        if deviation > _TIME_TOLERANCE * max(1.0, float(expected.abs().max())):
            raise DatasetFormatError(
                f"{where}: times: not the grid t0 + k*dt (t0 = {self.t0}, dt = {self.dt}); off by up to {deviation:.3g}"
            )
        if not bool(torch.isfinite(states).all()):
            raise DatasetFormatError(f"{where}: states: contain NaN or inf")
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


def _checksum(times: np.ndarray, initial: np.ndarray, states: np.ndarray,
              fields: dict[str, np.ndarray] | None = None) -> str:
    digest = hashlib.sha256()
    for array in (times, initial, states):
        digest.update(np.ascontiguousarray(array, dtype="<f8").tobytes())
    for name in sorted(fields or {}):
        digest.update(name.encode("utf-8"))
        digest.update(np.ascontiguousarray(fields[name], dtype="<f8").tobytes())
    return digest.hexdigest()


def write_dataset(path: str | os.PathLike, dataset: TrajectoryDataset, *, overwrite: bool = False) -> Path:
    """Validate ``dataset`` and write it to ``path`` atomically (temporary file, then rename).

    Refuses to replace an existing file unless ``overwrite=True``; nothing is written when validation fails.
    """
    import h5py

    from dynlearn import __version__

    if not isinstance(dataset, TrajectoryDataset):
        raise TypeError(f"dataset must be a TrajectoryDataset, got {type(dataset).__name__}")
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True (or --overwrite) to replace it")
    dataset.validate(str(target))
    states = dataset.states.detach().to("cpu", torch.float64).numpy()
    times = dataset.times.detach().to("cpu", torch.float64).numpy()
    initial = dataset.initial_conditions.detach().to("cpu", torch.float64).numpy()
    fields = {name: values.detach().to("cpu", torch.float64).numpy() for name, values in dataset.fields.items()}
    attributes = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "system": dataset.system,
        "parameters": json.dumps(dataset.parameters),
        "state_names": json.dumps(list(dataset.state_names)),
        "generator": json.dumps(dataset.generator),
        "t0": float(dataset.t0),
        "dt": float(dataset.dt),
        "n_steps": int(dataset.n_steps),
        "initial_conditions_source": "sampled" if dataset.seed is not None else "given",
        "dynlearn_version": str(__version__),
        "torch_version": str(torch.__version__),
        "numpy_version": str(np.__version__),
        "h5py_version": str(h5py.__version__),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "checksum_sha256": _checksum(times, initial, states, fields),
    }
    if dataset.seed is not None:
        attributes["seed"] = int(dataset.seed)

    def write(temporary: Path) -> None:
        with h5py.File(temporary, "w") as handle:
            chunk_times = min(states.shape[1], max(1, (1 << 20) // max(1, 8 * int(np.prod(states.shape[2:])))))
            handle.create_dataset(
                "states", data=states, chunks=(1, chunk_times, *states.shape[2:]), compression="gzip",
                compression_opts=4, shuffle=True,
            )
            handle.create_dataset("times", data=times)
            handle.create_dataset("initial_conditions", data=initial)
            group = handle.create_group("trajectory_parameters")
            for name, values in dataset.trajectory_parameters.items():
                group.create_dataset(name, data=values.detach().to("cpu", torch.float64).numpy())
            axes = handle.create_group("coordinates")
            for name, values in dataset.coordinates.items():
                axes.create_dataset(name, data=values.detach().to("cpu", torch.float64).numpy())
            if fields:
                extra = handle.create_group("fields")
                for name, values in fields.items():
                    extra.create_dataset(name, data=values, compression="gzip" if values.size > 4096 else None)
            handle.attrs.update(attributes)

    return atomic_write(target, write, replace=overwrite)


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


def read_dataset(path: str | os.PathLike, *, verify_checksum: bool = True) -> TrajectoryDataset:
    """Read and validate a dataset file; every malformed file raises :class:`DatasetFormatError` naming the file and
    the field at fault (links, groups where datasets belong, declared sizes beyond the machine, unreadable
    metadata), and nothing is read before its declared size has been checked."""
    import h5py

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
            if not isinstance(version, (int, np.integer)) or int(version) != FORMAT_VERSION:
                raise DatasetFormatError(f"{source}: attribute 'format_version' is {version!r}; this dynlearn reads "
                                         f"version {FORMAT_VERSION}")
            for name in _REQUIRED:
                if name not in handle.attrs:
                    raise DatasetFormatError(f"{source}: attribute {name!r} is missing")
            attributes = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in handle.attrs.items()}
            for name in ("states", "times", "initial_conditions"):
                if name not in handle:
                    raise DatasetFormatError(f"{source}: dataset {name!r} is missing")
            reading = "states"
            states = _read_array(handle, "states", source)
            reading = "times"
            times = _read_array(handle, "times", source)
            reading = "initial_conditions"
            initial = _read_array(handle, "initial_conditions", source)
            reading = "trajectory_parameters"
            per_trajectory = {k: torch.from_numpy(v) for k, v in _read_group(handle, reading, source).items()}
            reading = "coordinates"
            coordinates = {k: torch.from_numpy(v) for k, v in _read_group(handle, reading, source).items()}
            reading = "fields"
            fields = _read_group(handle, reading, source, dtype=np.float64)
    except DatasetFormatError:
        raise
    except (KeyError, AttributeError, RuntimeError, OSError, TypeError, ValueError, IndexError,
            UnicodeDecodeError) as error:  # h5py's own errors on damaged metadata or chunks
        raise DatasetFormatError(f"{source}: {reading}: unreadable ({type(error).__name__}: {error})") from None
    decoded = {}
    for name in ("parameters", "state_names", "generator"):
        try:
            decoded[name] = json.loads(attributes[name])
        except (TypeError, ValueError):
            raise DatasetFormatError(f"{source}: attribute {name!r} is not valid JSON") from None
    if not isinstance(decoded["parameters"], dict) or not isinstance(decoded["generator"], dict):
        raise DatasetFormatError(f"{source}: attributes 'parameters' and 'generator' must be JSON objects")
    if not isinstance(decoded["state_names"], list) or not all(isinstance(n, str) for n in decoded["state_names"]):
        raise DatasetFormatError(f"{source}: attribute 'state_names' must be a JSON list of names")
    if not isinstance(attributes["checksum_sha256"], str) or not isinstance(attributes["system"], str):
        raise DatasetFormatError(f"{source}: attributes 'checksum_sha256' and 'system' must be strings")
    if verify_checksum and _checksum(times, initial, states, fields) != attributes["checksum_sha256"]:
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
        trajectory_parameters={k: v.to(torch.float64) for k, v in per_trajectory.items()},
        coordinates={k: v.to(torch.float64) for k, v in coordinates.items()},
        fields={name: torch.from_numpy(values) for name, values in fields.items()},
        attributes=attributes,
    )
    dataset.validate(str(source))
    if dataset.n_steps != _number(attributes, "n_steps", source, int):
        raise DatasetFormatError(f"{source}: attribute 'n_steps' is {attributes['n_steps']} but times hold {dataset.n_steps} steps")
    return dataset
