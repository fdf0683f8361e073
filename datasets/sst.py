"""Sea-surface temperature from the files people have: NOAA OISST v2 daily netCDF, and any CF-style gridded SST.

NOAA's OI SST v2 high-resolution product (0.25 degree, daily) comes as one file per year, ``sst.day.mean.YYYY.nc``
(netCDF-4): ``sst(time, lat, lon)`` in degrees Celsius, ``lat``/``lon`` cell centres (longitudes 0..360),
``time`` in "days since 1800-01-01 00:00:00", missing values over land (``missing_value``/``_FillValue``; older
files pack the data as 16-bit integers with ``scale_factor``/``add_offset``). :func:`read_oisst` reads one or many
such files, checks that they are OISST, selects a region, concatenates them in time (refusing overlaps,
duplicates and gaps) and builds the land mask. Six years of daily Gulf SST are about 1 GB of NOAA files: they
must come from the user (https://psl.noaa.gov/data/gridded/data.noaa.oisst.v2.highres.html); dynlearn never
downloads.

:func:`read_sst` does the same for other gridded SST files through the same region selection, masking and unit
handling (kelvin is converted to Celsius), which is how the real observations that install from package
registries are read: COADS monthly climatology (Debian ``ferret-datasets``, netCDF-3, 2 degree, longitudes
21..379) and OSTIA monthly means (PyPI ``iris-sample-data``, netCDF-4, kelvin, an equatorial band).

The result, :class:`SeaSurfaceTemperature`, holds temperature ``(n_times, n_lat, n_lon)`` in degrees Celsius with
NaN on masked cells, the coordinates, the calendar dates and the mask; :meth:`SeaSurfaceTemperature.to_dataset`
turns it into the dynlearn dataset format (masked cells stored as 0 beside a ``land_mask`` field).
Preprocessing (anomalies and scaling) is a separate step: :mod:`dynlearn.datasets.climatology`.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from dynlearn._checks import as_flag
from dynlearn.datasets.format import TrajectoryDataset
from dynlearn.datasets.netcdf import NetcdfError, NetcdfFile, decode_times, decode_values, open_netcdf

__all__ = [
    "Region", "REGIONS", "SeaSurfaceTemperature", "SeaSurfaceTemperatureError", "read_oisst", "read_sst",
    "coads_climatology_path", "ostia_monthly_path",
]


class SeaSurfaceTemperatureError(ValueError):
    """A file or a request that cannot give a sea-surface temperature field; the message names the file."""


@dataclasses.dataclass(frozen=True)
class Region:
    """A latitude-longitude box (degrees north, degrees east in -180..180; ``west > east`` crosses the
    date line). Cells are selected by their centres, bounds included."""

    name: str
    south: float
    north: float
    west: float
    east: float

    def __post_init__(self) -> None:
        if not (-90 <= self.south < self.north <= 90):
            raise ValueError(f"region {self.name!r}: need -90 <= south < north <= 90, got {self.south}, {self.north}")
        for value in (self.west, self.east):
            if not -180 <= value <= 180:
                raise ValueError(f"region {self.name!r}: longitudes must lie in -180..180, got {value}")
        if self.west == self.east:
            raise ValueError(f"region {self.name!r}: west and east are both {self.west}")

    @property
    def crosses_date_line(self) -> bool:
        return self.west > self.east


#: The named regions: ``gulf`` (18..31 N, 98..80 W), ``nino34`` (5 S..5 N, 170 W..120 W) and ``global``.
REGIONS = {
    # The Gulf of Mexico with the Yucatan Channel, the Florida Straits and a strip of the Caribbean south of Cuba.
    # The original study's box is not published with its data; this one holds the whole Gulf (18..31 N,
    # 98..80 W): 52 x 72 cells of 0.25 degree.
    "gulf": Region("gulf", south=18.0, north=31.0, west=-98.0, east=-80.0),
    # The Nino 3.4 box (5 S..5 N, 170 W..120 W), the standard index region of ENSO.
    "nino34": Region("nino34", south=-5.0, north=5.0, west=-170.0, east=-120.0),
    "global": Region("global", south=-90.0, north=90.0, west=-180.0, east=180.0),
}


@dataclasses.dataclass
class SeaSurfaceTemperature:
    """A gridded SST record.

    Attributes:
        temperature: ``(n_times, n_lat, n_lon)`` float64, degrees Celsius; NaN where ``mask`` is True.
        latitude: ``(n_lat,)`` degrees north, ascending. longitude: ``(n_lon,)`` degrees east, ascending
            (in -180..180, or beyond 180 for a region across the date line).
        dates: ``(n_times,)`` ``datetime64[s]``, increasing.
        time_step: "day", "month" or "irregular" (from the dates).
        mask: ``(n_lat, n_lon)`` bool, True on land (missing at every time) and on cells missing at some
            times (counted in ``n_intermittent``; OISST has none).
        region: the box. sources: the files read. description: what the data are.
    """

    temperature: np.ndarray
    latitude: np.ndarray
    longitude: np.ndarray
    dates: np.ndarray
    time_step: str
    mask: np.ndarray
    region: Region
    sources: tuple[str, ...]
    description: str
    n_intermittent: int = 0

    @property
    def n_times(self) -> int:
        return self.temperature.shape[0]

    def ocean_mean(self) -> np.ndarray:
        """Area-weighted (cos latitude) mean over unmasked cells, ``(n_times,)`` in degrees Celsius."""
        weights = np.cos(np.deg2rad(self.latitude))[:, None] * (~self.mask)
        filled = np.where(self.mask, 0.0, self.temperature)
        return (filled * weights).sum(axis=(1, 2)) / weights.sum()

    def to_dataset(self) -> TrajectoryDataset:
        """The dynlearn dataset: states ``(1, n_times, n_lat, n_lon)`` in degrees Celsius (masked cells hold 0),
        t = k in days or months (``parameters["time_unit"]``), coordinates ``latitude``, ``longitude`` and
        ``date`` (days since 1970-01-01), field ``land_mask`` (1 on masked cells)."""
        if self.time_step == "irregular":
            raise SeaSurfaceTemperatureError(
                "the dates are not daily or monthly; the dataset format needs a uniform time step")
        states = torch.from_numpy(np.where(self.mask, 0.0, self.temperature))[None]
        days = (self.dates - np.datetime64("1970-01-01T00:00:00", "s")).astype("int64") / 86400.0
        return TrajectoryDataset(
            states=states.contiguous(),
            times=torch.arange(self.n_times, dtype=torch.float64),
            initial_conditions=states[:, 0].clone(),
            system="sea_surface_temperature",
            parameters={"region": dataclasses.asdict(self.region), "time_unit": self.time_step,
                        "units": "degC", "first_date": str(self.dates[0]), "last_date": str(self.dates[-1])},
            state_names=("sst",),
            generator={"kind": "observations", "method": self.description,
                       "sources": [Path(s).name for s in self.sources]},
            t0=0.0,
            dt=1.0,
            seed=None,
            coordinates={"latitude": torch.from_numpy(self.latitude.astype(np.float64)),
                         "longitude": torch.from_numpy(self.longitude.astype(np.float64)),
                         "date": torch.from_numpy(days)},
            fields={"land_mask": torch.from_numpy(self.mask.astype(np.float64))},
            state_dimensions=("latitude", "longitude"),
            units={"states": "degC", "time": "days" if self.time_step == "day" else "months",
                   "land_mask": "1"},
        )

    @classmethod
    def from_dataset(cls, dataset: TrajectoryDataset) -> "SeaSurfaceTemperature":
        """Back from a dataset written by :meth:`to_dataset` (or by the synthetic generator)."""
        dataset.require_uniform("an SST record")
        for needed in ("latitude", "longitude", "date"):
            if needed not in dataset.coordinates:
                raise SeaSurfaceTemperatureError(f"dataset: coordinate {needed!r} is missing: not an SST dataset")
        if "land_mask" not in dataset.fields or dataset.n_trajectories != 1:
            raise SeaSurfaceTemperatureError("dataset: not an SST dataset (needs one record and a 'land_mask' field)")
        mask = dataset.fields["land_mask"].numpy() > 0.5
        temperature = dataset.states[0].numpy().copy()
        temperature[:, mask] = np.nan
        seconds = np.round(dataset.coordinates["date"].numpy() * 86400.0).astype("int64")
        region = Region(**dataset.parameters["region"])
        return cls(temperature, dataset.coordinates["latitude"].numpy(), dataset.coordinates["longitude"].numpy(),
                   np.datetime64("1970-01-01T00:00:00", "s") + seconds.astype("timedelta64[s]"),
                   str(dataset.parameters.get("time_unit", "day")), mask, region,
                   tuple(dataset.generator.get("sources", ())), str(dataset.generator.get("method", "")))


# --------------------------------------------------------------------------------------------------------------
# reading one file

_CELSIUS = {"degc", "degreesc", "degreec", "celsius", "degreecelsius", "degreescelsius", "c", "°c"}
_KELVIN = {"k", "kelvin", "degk", "degreesk", "degreek", "kelvins"}
_VARIABLE_NAMES = ("sst", "SST", "analysed_sst", "surface_temperature", "sea_surface_temperature", "tos", "TEMP")


def _coordinate_role(variable) -> str | None:
    units = str(variable.attributes.get("units", "")).strip().lower()
    standard = str(variable.attributes.get("standard_name", "")).lower()
    axis = str(variable.attributes.get("axis", "")).upper()
    if units in {"degrees_north", "degree_north", "degrees_n", "degree_n", "degreesn"} or standard == "latitude" or axis == "Y":
        return "latitude"
    if units in {"degrees_east", "degree_east", "degrees_e", "degree_e", "degreese"} or standard == "longitude" or axis == "X":
        return "longitude"
    if " since " in units or standard == "time" or axis == "T":
        return "time"
    return None


def _to_celsius(values: np.ndarray, units: str, where: str) -> np.ndarray:
    key = units.strip().lower().replace(" ", "").replace("_", "")
    if key in _CELSIUS:
        return values
    if key in _KELVIN:
        return values - 273.15
    raise SeaSurfaceTemperatureError(f"{where}: temperature units {units!r} are neither Celsius nor kelvin")


def _select_longitudes(longitude: np.ndarray, region: Region, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the cells inside the region's longitudes, in increasing order, and their longitudes."""
    wrapped = (longitude + 180.0) % 360.0 - 180.0
    if region.west == -180 and region.east == 180:
        order = np.argsort(wrapped, kind="stable")
        chosen = wrapped[order]
    else:
        if region.crosses_date_line:
            inside = (wrapped >= region.west) | (wrapped <= region.east)
            unwrapped = np.where(wrapped <= region.east, wrapped + 360.0, wrapped)
        else:
            inside = (wrapped >= region.west) & (wrapped <= region.east)
            unwrapped = wrapped
        candidates = np.nonzero(inside)[0]
        order = candidates[np.argsort(unwrapped[candidates], kind="stable")]
        chosen = unwrapped[order]
    if chosen.size and np.any(np.diff(chosen) <= 0):
        raise SeaSurfaceTemperatureError(f"{where}: longitude: duplicate cells after wrapping to -180..180")
    return order, chosen


def _read_one(path: Path, variable_name: str | None, region: Region, oisst: bool) -> dict:
    where = str(path)
    try:
        handle = open_netcdf(path)
    except NetcdfError as error:
        raise SeaSurfaceTemperatureError(str(error)) from None
    with handle:
        variable = _find_variable(handle, variable_name, oisst)
        roles = {}
        for dimension in variable.dimensions:
            coordinate = handle.variables.get(dimension)
            role = _coordinate_role(coordinate) if coordinate is not None else None
            if role is None or role in roles:
                raise SeaSurfaceTemperatureError(
                    f"{where}: variable {variable.name!r} has dimensions {variable.dimensions}; expected time, "
                    f"latitude and longitude axes with coordinate variables (units 'X since DATE', degrees_north, "
                    f"degrees_east)")
            roles[role] = dimension
        if oisst and variable.dimensions != ("time", "lat", "lon"):
            raise SeaSurfaceTemperatureError(
                f"{where}: variable 'sst' has dimensions {variable.dimensions}, OISST has ('time', 'lat', 'lon')")
        if set(roles) != {"time", "latitude", "longitude"}:
            raise SeaSurfaceTemperatureError(
                f"{where}: variable {variable.name!r} has axes {sorted(roles)}; expected time, latitude, longitude")
        time_variable = handle.variables[roles["time"]]
        units = str(time_variable.attributes.get("units", ""))
        if oisst and not units.strip().startswith("days since"):
            raise SeaSurfaceTemperatureError(f"{where}: time units {units!r}; OISST counts 'days since 1800-01-01'")
        try:
            dates = decode_times(time_variable.raw(), units, time_variable.attributes.get("calendar"), where=where)
        except NetcdfError as error:
            raise SeaSurfaceTemperatureError(str(error)) from None
        latitude = decode_values(handle.variables[roles["latitude"]]).astype(np.float64)
        longitude = decode_values(handle.variables[roles["longitude"]]).astype(np.float64)
        if np.isnan(latitude).any() or np.isnan(longitude).any():
            raise SeaSurfaceTemperatureError(f"{where}: latitude or longitude holds missing values")
        rows = np.nonzero((latitude >= region.south) & (latitude <= region.north))[0]
        rows = rows[np.argsort(latitude[rows], kind="stable")]
        columns, chosen_longitude = _select_longitudes(longitude, region, where)
        if rows.size == 0 or columns.size == 0:
            raise SeaSurfaceTemperatureError(
                f"{where}: region {region.name!r} ({region.south}..{region.north} N, {region.west}..{region.east} E) "
                f"holds no cell of this file (latitudes {latitude.min():g}..{latitude.max():g}, longitudes "
                f"{longitude.min():g}..{longitude.max():g})")
        # read only the box that holds the region (a year of global OISST is 1.5 GB; the Gulf is 0.5 % of it)
        box = {roles["time"]: slice(None), roles["latitude"]: slice(int(rows.min()), int(rows.max()) + 1),
               roles["longitude"]: slice(int(columns.min()), int(columns.max()) + 1)}
        values = decode_values(variable, tuple(box[d] for d in variable.dimensions))
        order = [variable.dimensions.index(roles[r]) for r in ("time", "latitude", "longitude")]
        values = np.transpose(values, order)[:, rows - rows.min()][:, :, columns - columns.min()]
        values = _to_celsius(values, str(variable.attributes.get("units", "")), f"{where}: {variable.name}")
        description = str(variable.attributes.get("long_name", variable.name))
    return {"path": where, "temperature": values, "latitude": latitude[rows], "longitude": chosen_longitude,
            "dates": dates, "description": description, "variable": variable.name}


def _find_variable(handle: NetcdfFile, name: str | None, oisst: bool):
    where = str(handle.path)
    if oisst:
        missing = [v for v in ("sst", "lat", "lon", "time") if v not in handle.variables]
        if missing:
            raise SeaSurfaceTemperatureError(
                f"{where}: not an OISST file: variable(s) {missing} missing (OISST holds sst, lat, lon, time; found "
                f"{sorted(handle.variables)})")
        name = "sst"
    if name is not None:
        if name not in handle.variables:
            raise SeaSurfaceTemperatureError(f"{where}: no variable {name!r} (found {sorted(handle.variables)})")
        variable = handle.variables[name]
    else:
        found = [v for v in _VARIABLE_NAMES if v in handle.variables]
        if not found:
            raise SeaSurfaceTemperatureError(
                f"{where}: no sea-surface temperature variable (looked for {list(_VARIABLE_NAMES)}; found "
                f"{sorted(handle.variables)}); name it with variable=")
        variable = handle.variables[found[0]]
    if len(variable.shape) != 3:
        raise SeaSurfaceTemperatureError(
            f"{where}: variable {variable.name!r} has {len(variable.shape)} dimensions {variable.dimensions}; "
            f"expected 3 (time, latitude, longitude)")
    return variable


# --------------------------------------------------------------------------------------------------------------
# many files


def _time_step(dates: np.ndarray) -> str:
    if dates.size < 2:
        return "day"
    days = dates.astype("datetime64[D]")
    if np.all(np.diff(days).astype(int) == 1):
        return "day"
    months = dates.astype("datetime64[M]").astype(int)
    if np.all(np.diff(months) == 1):
        return "month"
    return "irregular"


def read_sst(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    region: str | Region = "gulf",
    variable: str | None = None,
    allow_gaps: bool = False,
    _oisst: bool = False,
) -> SeaSurfaceTemperature:
    """Read gridded SST from one or many netCDF files (netCDF-4 or netCDF-3), select ``region`` (a name in
    :data:`REGIONS` or a :class:`Region`), convert to degrees Celsius and join the files in time.

    Files are ordered by their first date; overlapping files, duplicate dates, different grids and (unless
    ``allow_gaps``) missing days or months are errors that name the files. Cells missing at every time are
    land; cells missing only sometimes are masked too and counted.
    """
    allow_gaps = as_flag("allow_gaps", allow_gaps)
    chosen = _region(region)
    files = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
    if not files:
        raise SeaSurfaceTemperatureError("no files given")
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
    if len(set(p.resolve() for p in files)) != len(files):
        raise SeaSurfaceTemperatureError("the same file is given twice")
    pieces = sorted((_read_one(path, variable, chosen, _oisst) for path in files), key=lambda p: p["dates"][0])
    first = pieces[0]
    for piece in pieces:
        if np.any(np.diff(piece["dates"]) <= np.timedelta64(0, "s")):
            raise SeaSurfaceTemperatureError(f"{piece['path']}: the time axis is not strictly increasing (duplicate "
                                             f"or unordered dates)")
        if piece["latitude"].shape != first["latitude"].shape or piece["longitude"].shape != first["longitude"].shape \
                or not np.allclose(piece["latitude"], first["latitude"]) \
                or not np.allclose(piece["longitude"], first["longitude"]):
            raise SeaSurfaceTemperatureError(f"{piece['path']}: its grid differs from that of {first['path']}")
    for before, after in zip(pieces, pieces[1:]):
        if after["dates"][0] <= before["dates"][-1]:
            raise SeaSurfaceTemperatureError(
                f"{after['path']} overlaps {before['path']}: it starts on {after['dates'][0]}, the other ends on "
                f"{before['dates'][-1]}")
    dates = np.concatenate([p["dates"] for p in pieces])
    step = _time_step(dates)
    if step == "irregular" and not allow_gaps:
        for piece in pieces:
            if _time_step(piece["dates"]) == "irregular":
                raise SeaSurfaceTemperatureError(
                    f"{piece['path']}: the dates are neither consecutive days nor consecutive months (a gap?); "
                    f"pass allow_gaps=True to read them anyway")
        for before, after in zip(pieces, pieces[1:]):
            if _time_step(np.concatenate([before["dates"], after["dates"][:1]])) == "irregular":
                raise SeaSurfaceTemperatureError(
                    f"gap between {before['path']} (ends {before['dates'][-1]}) and {after['path']} (starts "
                    f"{after['dates'][0]}); pass allow_gaps=True to join them anyway")
    temperature = np.concatenate([p["temperature"] for p in pieces])
    missing = np.isnan(temperature)
    land = missing.all(axis=0)
    intermittent = missing.any(axis=0) & ~land
    mask = land | intermittent
    if mask.all():
        raise SeaSurfaceTemperatureError(f"region {chosen.name!r} holds no ocean cell in {first['path']}")
    temperature[:, mask] = np.nan
    return SeaSurfaceTemperature(
        temperature=temperature, latitude=first["latitude"], longitude=first["longitude"], dates=dates,
        time_step=step, mask=mask, region=chosen, sources=tuple(p["path"] for p in pieces),
        description=f"{first['description']} ({first['variable']})", n_intermittent=int(intermittent.sum()))


def read_oisst(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    region: str | Region = "gulf",
    allow_gaps: bool = False,
) -> SeaSurfaceTemperature:
    """Read NOAA OISST v2 daily files (``sst.day.mean.YYYY.nc``): checks that each file is OISST (variables
    ``sst(time, lat, lon)``, ``lat``, ``lon``, ``time`` in days since a date), then as :func:`read_sst`; the
    joined record must be consecutive days."""
    record = read_sst(paths, region=region, allow_gaps=allow_gaps, _oisst=True)
    record.description = "NOAA OI SST v2 high resolution, daily mean"
    return record


def _region(region: str | Region) -> Region:
    if isinstance(region, Region):
        return region
    if region not in REGIONS:
        raise ValueError(f"region must be one of {sorted(REGIONS)} or a Region, got {region!r}")
    return REGIONS[region]


# --------------------------------------------------------------------------------------------------------------
# real observations that install from package registries


def coads_climatology_path() -> Path | None:
    """The COADS monthly SST climatology of Debian's ``ferret-datasets`` package, or None when not installed."""
    for folder in (os.environ.get("FER_DATA"), "/usr/share/ferret-vis/data", "/usr/share/ferret/data"):
        if folder:
            candidate = Path(folder) / "coads_climatology.cdf"
            if candidate.is_file():
                return candidate
    return None


def ostia_monthly_path() -> Path | None:
    """OSTIA monthly mean SST of PyPI's ``iris-sample-data``, or None when not installed."""
    try:
        import iris_sample_data  # type: ignore[import-not-found]
    except ImportError:
        return None
    candidate = Path(iris_sample_data.__file__).parent / "sample_data" / "ostia_monthly.nc"
    return candidate if candidate.is_file() else None

