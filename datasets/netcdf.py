"""Reading netCDF files without the netCDF C library: netCDF-4 through h5py (a netCDF-4 file is an HDF5 file),
netCDF-3 classic and 64-bit-offset through scipy.io.

Only what gridded observations need: variables with their dimension names and attributes, the CF decoding of
packed and missing values (``_FillValue``, ``missing_value``, ``valid_min``/``valid_max``/``valid_range``,
``scale_factor``, ``add_offset``), and CF time axes ("UNITS since REFERENCE").
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["NetcdfError", "NetcdfVariable", "NetcdfFile", "open_netcdf", "decode_values", "decode_times"]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_PHONY_DIMENSION = "This is a netCDF dimension but not a netCDF variable"


class NetcdfError(ValueError):
    """A file that cannot be read as the netCDF data asked for; the message names the file and the problem."""


def _plain(value: Any) -> Any:
    """Attribute values as Python scalars and strings (netCDF stores 1-element arrays and bytes)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SO" and value.size == 1:
            return _plain(value.reshape(-1)[0])
        return value.item() if value.size == 1 else value
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclasses.dataclass
class NetcdfVariable:
    """One variable: its name, dimension names, shape, attributes and (raw, undecoded) values on demand."""

    name: str
    dimensions: tuple[str, ...]
    shape: tuple[int, ...]
    attributes: dict[str, Any]
    _source: Any

    def raw(self, index: tuple | None = None) -> np.ndarray:
        """The stored values (or the hyperslab ``index``, a tuple of slices), as stored: packed integers stay
        integers, fill values stay in. Only the hyperslab is read from disk."""
        if self.shape == ():
            return np.asarray(self._source[()])
        return np.asarray(self._source[...] if index is None else self._source[index])


@dataclasses.dataclass
class NetcdfFile:
    """An open netCDF file: ``variables`` by name; use as a context manager or call ``close()``."""

    path: Path
    kind: str  # "netCDF-4 (HDF5)" or "netCDF-3"
    variables: dict[str, NetcdfVariable]
    attributes: dict[str, Any]
    _handle: Any

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "NetcdfFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_netcdf(path: str | os.PathLike) -> NetcdfFile:
    """Open a netCDF-4 (HDF5) or netCDF-3 file; raises :class:`NetcdfError` for anything else."""
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such file")
    with open(source, "rb") as stream:
        signature = stream.read(8)
    if signature.startswith(_HDF5_SIGNATURE):
        return _open_hdf5(source)
    if signature[:3] == b"CDF" and signature[3:4] in (b"\x01", b"\x02"):
        return _open_classic(source)
    if signature[:4] == b"CDF\x05":
        raise NetcdfError(f"{source}: a netCDF-3 64-bit-data (CDF-5) file, which scipy cannot read; convert it with "
                          f"`nccopy -k nc4 {source.name} out.nc`")
    raise NetcdfError(f"{source}: not a netCDF file (neither netCDF-4/HDF5 nor netCDF-3 classic)")


def _open_classic(source: Path) -> NetcdfFile:
    from scipy.io import netcdf_file

    try:
        handle = netcdf_file(source, "r", mmap=False, maskandscale=False)
    except Exception as error:  # scipy raises TypeError/ValueError on damaged headers
        raise NetcdfError(f"{source}: cannot be read as netCDF-3 ({error})") from None
    variables = {
        name: NetcdfVariable(name, tuple(v.dimensions), tuple(v.shape),
                             {k: _plain(a) for k, a in v._attributes.items()}, v)
        for name, v in handle.variables.items()
    }
    attributes = {k: _plain(a) for k, a in handle._attributes.items()}
    return NetcdfFile(source, "netCDF-3", variables, attributes, handle)


def _open_hdf5(source: Path) -> NetcdfFile:
    import h5py

    try:
        handle = h5py.File(source, "r")
    except OSError as error:
        raise NetcdfError(f"{source}: cannot be opened as HDF5 ({error})") from None
    variables: dict[str, NetcdfVariable] = {}
    for name, item in handle.items():
        if not isinstance(item, h5py.Dataset):
            continue  # groups (netCDF-4 groups are not needed for gridded products)
        attributes = {k: _plain(v) for k, v in item.attrs.items() if k not in ("DIMENSION_LIST", "REFERENCE_LIST")}
        if str(attributes.get("NAME", "")).startswith(_PHONY_DIMENSION):
            continue  # a dimension without a coordinate variable
        for internal in ("CLASS", "NAME", "_Netcdf4Dimid", "_Netcdf4Coordinates", "_nc3_strict"):
            attributes.pop(internal, None)
        if "DIMENSION_LIST" in item.attrs:
            dimensions = tuple(handle[references[0]].name.rsplit("/", 1)[-1] for references in item.attrs["DIMENSION_LIST"])
        elif item.attrs.get("CLASS") == b"DIMENSION_SCALE":
            dimensions = (name,)
        else:
            dimensions = tuple(f"dim{i}" for i in range(item.ndim))
        variables[name] = NetcdfVariable(name, dimensions, tuple(item.shape), attributes, item)
    attributes = {k: _plain(v) for k, v in handle.attrs.items() if not k.startswith("_NCProperties")}
    return NetcdfFile(source, "netCDF-4 (HDF5)", variables, attributes, handle)


def decode_values(variable: NetcdfVariable, index: tuple | None = None) -> np.ndarray:
    """CF decoding to float64: missing where the stored value equals ``_FillValue`` or ``missing_value`` (compared
    in the stored type, before unpacking) or lies outside ``valid_min``/``valid_max``/``valid_range``; then
    value * ``scale_factor`` + ``add_offset``. Missing values become NaN. ``index``: a hyperslab (tuple of slices) to read instead of everything."""
    raw = variable.raw(index)
    attributes = variable.attributes
    missing = np.zeros(raw.shape, dtype=bool)
    for key in ("_FillValue", "missing_value"):
        if key in attributes:
            for marker in np.atleast_1d(np.asarray(attributes[key])):
                marker = np.asarray(marker).astype(raw.dtype) if raw.dtype.kind in "iuf" else marker
                missing |= np.isnan(raw) if raw.dtype.kind == "f" and np.isnan(marker) else raw == marker
    if raw.dtype.kind == "f":
        missing |= ~np.isfinite(raw)
    valid_range = attributes.get("valid_range")
    low = attributes.get("valid_min", None if valid_range is None else np.asarray(valid_range).reshape(-1)[0])
    high = attributes.get("valid_max", None if valid_range is None else np.asarray(valid_range).reshape(-1)[-1])
    with np.errstate(invalid="ignore"):
        if low is not None:
            missing |= raw < low
        if high is not None:
            missing |= raw > high
    values = raw.astype(np.float64)
    values = values * float(attributes.get("scale_factor", 1.0)) + float(attributes.get("add_offset", 0.0))
    values[missing] = np.nan
    return values


_TIME_UNITS = {"day": 86400.0, "days": 86400.0, "d": 86400.0, "hour": 3600.0, "hours": 3600.0, "h": 3600.0,
               "hr": 3600.0, "hrs": 3600.0, "minute": 60.0, "minutes": 60.0, "min": 60.0, "second": 1.0,
               "seconds": 1.0, "s": 1.0, "sec": 1.0}
_SUPPORTED_CALENDARS = {"standard", "gregorian", "proleptic_gregorian"}


#: why each model calendar cannot be read as dates of the standard calendar
_MODEL_CALENDARS = {
    "360_day": "twelve months of 30 days (it has 30 February, and no 31st)",
    "noleap": "365 days every year (no 29 February; a daily record would gain a two-day step in leap years)",
    "365_day": "365 days every year (no 29 February; a daily record would gain a two-day step in leap years)",
    "all_leap": "366 days every year (a 29 February in every year)",
    "366_day": "366 days every year (a 29 February in every year)",
    "julian": "the Julian calendar (its dates drift from the standard calendar's by 13 days since 1900)",
}


def _model_calendar(calendar: str) -> str:
    """The refusal of a calendar other than the standard one: what it is, and how to read the file anyway."""
    kind = _MODEL_CALENDARS.get(calendar.lower(), "not a calendar dynlearn knows")
    return (f"{kind}. dynlearn's SST records are dated in the standard (Gregorian) calendar, with one sample per "
            f"day or month; convert the file first (xarray: ds.convert_calendar('standard', align_on='year'), then "
            f"ds.to_netcdf) and import the result. Read: standard, gregorian, proleptic_gregorian")


def decode_times(values: np.ndarray, units: str, calendar: str | None = None, *, where: str = "time") -> np.ndarray:
    """CF times "UNITS since YYYY-MM-DD[ hh:mm:ss]" to ``datetime64[s]`` (proleptic Gregorian arithmetic).

    For the standard calendar this is exact for dates after 1582-10-15; a climatology referred to year 0 or 1
    (COADS) can be off by the two days between the Julian and Gregorian calendars there, which does not change
    the month of a mid-month value. 360-day, no-leap, all-leap, Julian and other model calendars are refused, with a
    message saying why and how to convert the file (their dates are not dates of the standard calendar: 30
    February; or a daily record would not be daily in it).
    """
    match = re.fullmatch(r"\s*(\w+)\s+since\s+(-?\d{1,4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2}(?:\.\d*)?))?)?\s*(Z|UTC|\+0+:?0*)?\s*",
                         str(units))
    if match is None or match.group(1).lower() not in _TIME_UNITS:
        raise NetcdfError(f"{where}: time units {units!r} are not of the form 'days|hours|minutes|seconds since DATE'")
    if calendar is not None and str(calendar).lower() not in _SUPPORTED_CALENDARS:
        raise NetcdfError(f"{where}: calendar {calendar!r} is refused: {_model_calendar(str(calendar))}")
    year, month, day = int(match.group(2)), int(match.group(3)), int(match.group(4))
    hour, minute = int(match.group(5) or 0), int(match.group(6) or 0)
    second = float(match.group(7) or 0.0)
    reference = np.datetime64(f"{year:04d}-{month:02d}-{day:02d}", "s") + np.timedelta64(
        int(round(hour * 3600 + minute * 60 + second)), "s")
    seconds = np.asarray(values, dtype=np.float64) * _TIME_UNITS[match.group(1).lower()]
    if not np.all(np.isfinite(seconds)):
        raise NetcdfError(f"{where}: the time axis holds missing or non-finite values")
    return reference + np.round(seconds).astype("int64").astype("timedelta64[s]")
