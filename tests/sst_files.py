"""Writers of small netCDF files in exactly NOAA's OISST v2 layout (netCDF-4 through h5py, with dimension scales
as the netCDF library makes them), for the SST tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

OISST_MISSING = np.float32(-9.96921e36)
REFERENCE = np.datetime64("1800-01-01", "D")


def oisst_grid(step: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres around the Gulf, longitudes in 0..360 as NOAA writes them."""
    latitude = np.arange(15.0 + step / 2, 34.0, step)
    longitude = np.arange(255.0 + step / 2, 285.0, step)
    return latitude, longitude


def land_of(latitude: np.ndarray, longitude: np.ndarray) -> np.ndarray:
    """A made-up land mask: a northern coast and a peninsula."""
    lon, lat = np.meshgrid(longitude - 360.0, latitude)
    return (lat > 30.2) | ((lon > -83.0) & (lon < -81.0) & (lat > 25.0))


def temperature_of(dates: np.ndarray, latitude: np.ndarray, longitude: np.ndarray) -> np.ndarray:
    """A smooth field in degrees C: seasonal cycle plus a gradient (n_times, n_lat, n_lon)."""
    year = dates.astype("datetime64[Y]")
    length = ((year + 1).astype("datetime64[D]") - year.astype("datetime64[D]")).astype(float)
    fraction = (dates - year.astype("datetime64[D]")).astype(float) / length  # of the calendar year elapsed
    lon, lat = np.meshgrid(longitude - 360.0, latitude)
    return 26.0 + 3.0 * np.cos(2 * np.pi * (fraction[:, None, None] - 0.6)) - 0.3 * (lat - 24) + 0.05 * (lon + 90)


def write_oisst(path: Path, first: str, n_days: int, *, packed: bool = False, step: float = 1.0,
                descending_latitude: bool = False, variable: str = "sst", dimensions_order: str = "tyx") -> Path:
    """One file ``sst.day.mean.YYYY.nc``-like: float32 sst with missing_value/_FillValue and valid_range, or
    (``packed``) int16 with scale_factor 0.01 and _FillValue 32767 as in older releases."""
    import h5py

    dates = np.datetime64(first, "D") + np.arange(n_days)
    latitude, longitude = oisst_grid(step)
    values = temperature_of(dates, latitude, longitude)
    values[:, land_of(latitude, longitude)] = np.nan
    if descending_latitude:
        latitude, values = latitude[::-1], values[:, ::-1]
    with h5py.File(path, "w") as handle:
        handle.attrs["Conventions"] = "CF-1.5"
        handle.attrs["title"] = "NOAA/NCEI 1/4 Degree Daily Optimum Interpolation Sea Surface Temperature (OISST) Analysis, Version 2.1"
        time = handle.create_dataset("time", data=(dates - REFERENCE).astype(np.float64), maxshape=(None,))
        time.attrs["units"] = "days since 1800-01-01 00:00:00"
        time.attrs["long_name"] = "Time"
        time.attrs["calendar"] = "standard"
        lat = handle.create_dataset("lat", data=latitude.astype(np.float32))
        lat.attrs["units"] = "degrees_north"
        lon = handle.create_dataset("lon", data=longitude.astype(np.float32))
        lon.attrs["units"] = "degrees_east"
        for scale in (time, lat, lon):
            scale.make_scale(scale.name.strip("/"))
        if packed:
            stored = np.where(np.isnan(values), 32767, np.round(values / 0.01)).astype(np.int16)
        else:
            stored = np.where(np.isnan(values), OISST_MISSING, values).astype(np.float32)
        if dimensions_order == "yxt":
            stored = np.transpose(stored, (1, 2, 0))
        sst = handle.create_dataset(variable, data=stored, chunks=True)
        axes = {"t": time, "y": lat, "x": lon}
        for index, key in enumerate(dimensions_order):
            sst.dims[index].attach_scale(axes[key])
        sst.attrs["long_name"] = "Daily Sea Surface Temperature"
        sst.attrs["units"] = "degC"
        if packed:
            sst.attrs["scale_factor"] = np.float32(0.01)
            sst.attrs["add_offset"] = np.float32(0.0)
            sst.attrs["_FillValue"] = np.int16(32767)
        else:
            sst.attrs["missing_value"] = OISST_MISSING
            sst.attrs["_FillValue"] = OISST_MISSING
            sst.attrs["valid_range"] = np.array([-3.0, 45.0], dtype=np.float32)
    return path


def write_netcdf3(path: Path, first: str, n_months: int) -> Path:
    """A netCDF-3 classic file of monthly SST in kelvin with latitude descending and longitudes -180..180."""
    from scipy.io import netcdf_file

    months = np.datetime64(first, "M") + np.arange(n_months)
    dates = months.astype("datetime64[D]") + 14
    latitude = np.arange(33.0, 15.0, -2.0)
    longitude = np.arange(-105.0, -75.0, 2.0)
    values = temperature_of(dates, latitude, longitude + 360.0) + 273.15
    land = land_of(latitude, longitude + 360.0)
    values[:, land] = 1e20
    with netcdf_file(path, "w") as handle:
        handle.createDimension("time", None)
        handle.createDimension("latitude", latitude.size)
        handle.createDimension("longitude", longitude.size)
        time = handle.createVariable("time", "d", ("time",))
        time[:] = (dates - np.datetime64("1970-01-01", "D")).astype(float) * 24
        time.units = b"hours since 1970-01-01 00:00:00"
        lat = handle.createVariable("latitude", "f", ("latitude",))
        lat[:] = latitude
        lat.units = b"degrees_north"
        lon = handle.createVariable("longitude", "f", ("longitude",))
        lon[:] = longitude
        lon.units = b"degrees_east"
        sst = handle.createVariable("surface_temperature", "f", ("time", "latitude", "longitude"))
        sst[:] = values.astype(np.float32)
        sst.units = b"K"
        sst._FillValue = np.float32(1e20)
    return path
