"""Sea-surface temperature: OISST files in NOAA's layout, real observations from package registries (COADS,
OSTIA), preprocessing without leakage, and the synthetic generator."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dynlearn.datasets import read_dataset, write_dataset
from dynlearn.datasets.climatology import fit_normalisation, normalise_dataset, to_celsius, year_fraction
from dynlearn.datasets.sst import (
    Region, SeaSurfaceTemperature, SeaSurfaceTemperatureError, coads_climatology_path, ostia_monthly_path,
    read_oisst, read_sst,
)

_spec = importlib.util.spec_from_file_location("sst_files", Path(__file__).with_name("sst_files.py"))
files = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(files)

COADS = coads_climatology_path()
OSTIA = ostia_monthly_path()
needs_coads = pytest.mark.skipif(COADS is None, reason="Debian package ferret-datasets (COADS climatology) not installed")
needs_ostia = pytest.mark.skipif(OSTIA is None, reason="PyPI package iris-sample-data (OSTIA) not installed")


def expected_field(dates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    latitude, longitude = files.oisst_grid()
    rows = (latitude >= 18) & (latitude <= 31)
    columns = (longitude - 360 >= -98) & (longitude - 360 <= -80)
    values = files.temperature_of(dates.astype("datetime64[D]"), latitude, longitude)[:, rows][:, :, columns]
    land = files.land_of(latitude, longitude)[rows][:, columns]
    values[:, land] = np.nan
    return values, land


# ---------------------------------------------------------------------------------------------------- OISST files
def test_oisst_files_join_in_time_with_region_mask_and_coordinates(tmp_path):
    first = files.write_oisst(tmp_path / "sst.day.mean.2015.nc", "2015-12-26", 6)
    second = files.write_oisst(tmp_path / "sst.day.mean.2016.nc", "2016-01-01", 5)
    record = read_oisst([second, first])  # order given does not matter
    assert record.time_step == "day" and record.n_times == 11
    assert str(record.dates[0]) == "2015-12-26T00:00:00" and str(record.dates[-1]) == "2016-01-05T00:00:00"
    np.testing.assert_array_equal(record.latitude, np.arange(18.5, 31.0, 1.0))
    np.testing.assert_array_equal(record.longitude, np.arange(-97.5, -80.0, 1.0))  # 0..360 -> -180..180
    values, land = expected_field(record.dates)
    np.testing.assert_array_equal(record.mask, land)
    np.testing.assert_allclose(record.temperature, values, atol=2e-6, equal_nan=True)  # float32 storage
    assert record.sources == (str(first), str(second))


def test_packed_int16_and_descending_latitude_decode_to_the_same_field(tmp_path):
    plain = read_oisst(files.write_oisst(tmp_path / "a.nc", "2014-03-01", 4))
    packed = read_oisst(files.write_oisst(tmp_path / "b.nc", "2014-03-01", 4, packed=True, descending_latitude=True))
    np.testing.assert_array_equal(packed.latitude, plain.latitude)
    np.testing.assert_array_equal(packed.mask, plain.mask)
    np.testing.assert_allclose(packed.temperature, plain.temperature, atol=0.005 + 1e-6, equal_nan=True)


def test_oisst_dataset_round_trip_through_the_file_format(tmp_path):
    record = read_oisst(files.write_oisst(tmp_path / "a.nc", "2016-02-27", 5))  # across a leap day
    path = write_dataset(tmp_path / "sst.h5", record.to_dataset())
    back = SeaSurfaceTemperature.from_dataset(read_dataset(path))
    np.testing.assert_array_equal(back.dates, record.dates)
    np.testing.assert_array_equal(back.mask, record.mask)
    np.testing.assert_array_equal(back.temperature, record.temperature)  # NaN where masked, on both
    assert back.region == record.region and back.time_step == "day"
    import h5py

    from dynlearn.datasets import DatasetFormatError

    with h5py.File(path, "r+") as handle:  # the checksum covers the fields: a changed land mask is caught
        handle["land_mask"][0, 0] = 1.0 - handle["land_mask"][0, 0]
    with pytest.raises(DatasetFormatError, match="checksum"):
        read_dataset(path)


@pytest.mark.parametrize("case, message", [
    ("overlap", "overlaps"), ("gap", "gap between"), ("same file", "given twice"),
])
def test_overlapping_gapped_or_repeated_files_are_refused(tmp_path, case, message):
    first = files.write_oisst(tmp_path / "one.nc", "2016-01-01", 5)
    if case == "overlap":
        other = files.write_oisst(tmp_path / "two.nc", "2016-01-04", 5)
    elif case == "gap":
        other = files.write_oisst(tmp_path / "two.nc", "2016-01-08", 5)
    else:
        other = first
    with pytest.raises(SeaSurfaceTemperatureError, match=message):
        read_oisst([first, other])
    if case == "gap":
        with pytest.raises(ValueError, match="allow_gaps must be True or False, got str 'yes'"):
            read_oisst([first, other], allow_gaps="yes")
        record = read_oisst([first, other], allow_gaps=True)
        assert record.time_step == "irregular" and record.n_times == 10
        with pytest.raises(SeaSurfaceTemperatureError, match="uniform time step"):
            record.to_dataset()


def test_files_that_are_not_oisst_are_named_with_the_problem(tmp_path):
    wrong_name = files.write_oisst(tmp_path / "temp.nc", "2016-01-01", 2, variable="temp")
    with pytest.raises(SeaSurfaceTemperatureError, match=r"temp\.nc: not an OISST file: variable\(s\) \['sst'\]"):
        read_oisst(wrong_name)
    wrong_order = files.write_oisst(tmp_path / "order.nc", "2016-01-01", 2, dimensions_order="yxt")
    with pytest.raises(SeaSurfaceTemperatureError, match=r"order\.nc: variable 'sst' has dimensions \('lat', 'lon', 'time'\)"):
        read_oisst(wrong_order)
    text = tmp_path / "notes.nc"
    text.write_text("not a netCDF file")
    with pytest.raises(SeaSurfaceTemperatureError, match="notes.nc: not a netCDF file"):
        read_oisst(text)
    good = files.write_oisst(tmp_path / "good.nc", "2016-01-01", 2)
    with pytest.raises(SeaSurfaceTemperatureError, match="holds no cell of this file"):
        read_oisst(good, region=Region("arctic", 80.0, 89.0, 0.0, 10.0))
    with pytest.raises(ValueError, match="region must be one of"):
        read_oisst(good, region="atlantis")


def test_netcdf3_in_kelvin_with_descending_latitude_reads_like_oisst(tmp_path):
    path = files.write_netcdf3(tmp_path / "monthly.nc", "2010-11", 4)
    record = read_sst(path)  # the variable is found by name, kelvin converted, latitudes sorted
    assert record.time_step == "month" and record.n_times == 4
    assert np.all(np.diff(record.latitude) > 0)
    latitude = np.arange(19.0, 33.0, 2.0)
    latitude = latitude[latitude <= 31]
    longitude = np.arange(-97.0, -79.0, 2.0)
    values = files.temperature_of(record.dates.astype("datetime64[D]"), latitude, longitude + 360.0)
    land = files.land_of(latitude, longitude + 360.0)
    np.testing.assert_array_equal(record.mask, land)
    np.testing.assert_allclose(record.temperature[:, ~land], values[:, ~land], atol=2e-5)


def test_a_region_across_the_date_line_is_contiguous(tmp_path):
    import h5py

    path = tmp_path / "global.nc"
    with h5py.File(path, "w") as handle:
        time = handle.create_dataset("time", data=np.array([0.0, 1.0]))
        time.attrs["units"] = "days since 2000-01-01"
        lat = handle.create_dataset("lat", data=np.array([-5.0, 0.0, 5.0]))
        lat.attrs["units"] = "degrees_north"
        lon = handle.create_dataset("lon", data=np.arange(0.0, 360.0, 10.0))
        lon.attrs["units"] = "degrees_east"
        for scale in (time, lat, lon):
            scale.make_scale(scale.name.strip("/"))
        sst = handle.create_dataset("sst", data=np.broadcast_to(np.arange(0.0, 360.0, 10.0), (2, 3, 36)).copy())
        sst.attrs["units"] = "degC"
        for index, scale in enumerate((time, lat, lon)):
            sst.dims[index].attach_scale(scale)
    record = read_sst(path, region=Region("dateline", -10.0, 10.0, 160.0, -170.0))
    np.testing.assert_array_equal(record.longitude, [160.0, 170.0, 180.0, 190.0])
    np.testing.assert_array_equal(record.temperature[0, 0], [160.0, 170.0, 180.0, 190.0])


# ------------------------------------------------------------------------------------------------ preprocessing
def test_climatology_uses_the_training_dates_only_and_maps_back_to_celsius(tmp_path):
    one = files.write_oisst(tmp_path / "a.nc", "2014-01-01", 730)
    two = files.write_oisst(tmp_path / "b.nc", "2016-01-01", 366)
    record = read_oisst([one, two])
    dataset = record.to_dataset()
    normalised = normalise_dataset(dataset, train_end="2015-12-31")
    assert normalised.parameters["normalisation"]["train_end"].startswith("2015-12-31")
    # the test year changed beyond recognition: statistics fitted up to 2015 must not move
    tampered = record.to_dataset()
    tampered.states[0, 730:] += 50.0
    again = normalise_dataset(tampered, train_end="2015-12-31")
    np.testing.assert_array_equal(again.fields["normalisation_coefficients"], normalised.fields["normalisation_coefficients"])
    np.testing.assert_array_equal(again.fields["normalisation_scale"], normalised.fields["normalisation_scale"])
    # the field is a pure annual cosine plus a gradient: the climatology explains it to float32 round-off
    unscaled = normalise_dataset(dataset, train_end="2015-12-31", scaling="none")
    assert float(unscaled.states[0][:, ~record.mask].abs().max()) < 1e-4
    path = write_dataset(tmp_path / "anomalies.h5", normalised)
    celsius = to_celsius(read_dataset(path))
    np.testing.assert_allclose(celsius, record.temperature, atol=1e-5, equal_nan=True)
    with pytest.raises(ValueError, match="too short to fit 3 annual harmonics"):
        normalise_dataset(dataset, train_end="2014-01-20")
    with pytest.raises(ValueError, match="no date of the record"):
        normalise_dataset(dataset, train_end="2013-06-01")
    with pytest.raises(ValueError, match="normalised already"):
        normalise_dataset(normalised, train_end="2015-12-31")


@given(
    values=arrays(np.float64, (40, 3, 4), elements=st.floats(-2.0, 35.0)),
    start=st.integers(0, 20000),
    spacing=st.sampled_from([1, 7, 30]),
    method=st.sampled_from(["climatology", "mean"]),
    scaling=st.sampled_from(["global", "cell", "none"]),
)
def test_normalisation_inverts_exactly_for_any_field(values, start, spacing, method, scaling):
    dates = (np.datetime64("1970-01-01", "D") + start + spacing * np.arange(40)).astype("datetime64[s]")
    mask = np.zeros((3, 4), dtype=bool)
    mask[0, 0] = True
    values = values + np.linspace(0, 1, 40)[:, None, None]  # never constant in time
    values[:, mask] = np.nan
    record = SeaSurfaceTemperature(values, np.array([20.0, 21.0, 22.0]), np.arange(-90.0, -86.0), dates, "irregular",
                                   mask, Region("box", 19.0, 23.0, -91.0, -85.0), (), "test")
    try:
        normalisation = fit_normalisation(record, train_end=dates[29], method=method, scaling=scaling)
    except ValueError as error:
        assert "too short" in str(error) and method == "climatology"  # 30 daily dates cannot fix 3 harmonics
        return
    back = normalisation.invert(normalisation.apply(values, dates), dates)
    np.testing.assert_allclose(back, values, atol=1e-9, equal_nan=True)


@given(st.integers(-200000, 200000))
def test_year_fraction_is_in_the_unit_interval_and_zero_on_new_year(day):
    date = np.datetime64("1970-01-01", "D") + day
    fraction = year_fraction(np.array([date]))[0]
    assert 0.0 <= fraction < 1.0
    new_year = date.astype("datetime64[Y]").astype("datetime64[D]")
    assert year_fraction(np.array([new_year]))[0] == 0.0


# ---------------------------------------------------------------------------------------- real observations
@needs_coads
def test_coads_gulf_climatology_has_the_observed_seasonal_cycle():
    record = read_sst(COADS, region="gulf")  # netCDF-3, longitudes 21..379 wrapped to -180..180
    assert record.time_step == "month" and record.temperature.shape == (12, 7, 9)
    np.testing.assert_array_equal(record.longitude, np.arange(-97.0, -80.0, 2.0))
    assert 0 < record.mask.sum() < 10  # coastal boxes hold ship observations; a few inland boxes are masked
    mean = record.ocean_mean()
    assert int(np.argmax(mean)) in (6, 7, 8) and int(np.argmin(mean)) in (0, 1, 2)  # warm Jul-Sep, cold Jan-Mar
    assert 2.5 < (mean.max() - mean.min()) / 2 < 4.5 and 25.0 < mean.mean() < 27.5


@needs_ostia
def test_ostia_nino34_index_shows_the_enso_events_of_2006_to_2010():
    record = read_sst(OSTIA, region="nino34")  # netCDF-4, kelvin
    assert record.time_step == "month" and record.n_times == 54 and not record.mask.any()
    assert 20.0 < np.nanmin(record.temperature) and np.nanmax(record.temperature) < 32.0
    normalisation = fit_normalisation(record, train_end="2010-12-31", scaling="none")
    anomalies = normalisation.apply(record.temperature, record.dates)
    weights = np.cos(np.deg2rad(record.latitude))[:, None] * np.ones(record.mask.shape)
    index = (anomalies * weights).sum(axis=(1, 2)) / weights.sum()
    months = [str(d)[:7] for d in record.dates]

    def three_month_mean(middle: str) -> float:
        k = months.index(middle)
        return float(index[k - 1:k + 2].mean())

    # NOAA CPC Oceanic Nino Index peaks: OND 2006 +0.9 (El Nino), NDJ 2007/08 -1.6 (La Nina), NDJ 2009/10 +1.6
    # (El Nino). Our anomalies are relative to this sample's own 2006-2010 annual cycle, not to 1991-2020.
    for middle, published in (("2006-11", 0.9), ("2007-12", -1.6), ("2009-12", 1.6)):
        assert abs(three_month_mean(middle) - published) < 0.4, (middle, three_month_mean(middle))
    global_record = read_sst(OSTIA, region="global")
    assert 0.2 < global_record.mask.mean() < 0.35  # Africa, South America, the Maritime Continent


# ----------------------------------------------------------------------------------------------- command line
def _dynlearn() -> list[str]:
    script = Path(sysconfig.get_path("scripts")) / "dynlearn"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dynlearn.cli"]


def test_import_oisst_command_writes_a_dataset_and_bad_input_writes_nothing(tmp_path):
    one = files.write_oisst(tmp_path / "sst.day.mean.2015.nc", "2015-12-30", 2)
    two = files.write_oisst(tmp_path / "sst.day.mean.2016.nc", "2016-01-01", 3)
    output = tmp_path / "gulf.h5"
    done = subprocess.run([*_dynlearn(), "import", "oisst", str(one), str(two), "--region", "gulf", "-o", str(output)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    dataset = read_dataset(output)
    assert dataset.n_times == 5 and dataset.parameters["time_unit"] == "day"
    bad = files.write_oisst(tmp_path / "bad.nc", "2016-01-01", 2, variable="temp")
    failed = subprocess.run([*_dynlearn(), "import", "oisst", str(bad), "-o", str(tmp_path / "no.h5")],
                            capture_output=True, text=True)
    assert failed.returncode == 2 and "bad.nc: not an OISST file" in failed.stderr
    overlap = files.write_oisst(tmp_path / "overlap.nc", "2016-01-02", 3)
    failed = subprocess.run([*_dynlearn(), "import", "oisst", str(two), str(overlap), "-o", str(tmp_path / "no.h5")],
                            capture_output=True, text=True)
    assert failed.returncode == 2 and "overlaps" in failed.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".h5" or ".tmp" in p.name) == ["gulf.h5"]


# ------------------------------------------------------------------------------------------- synthetic generator
from dynlearn.datasets import generate_synthetic_sst_dataset  # noqa: E402
from dynlearn.systems.sea_surface import SyntheticSeaSurface, gulf_land_mask  # noqa: E402


@pytest.fixture(scope="module")
def synthetic() -> SeaSurfaceTemperature:
    """Two years of daily synthetic fields at 0.5 degree (about 6 s)."""
    fields = SyntheticSeaSurface(resolution=0.5, seed=3).generate(2 * 365, spin_up_days=180)
    return SeaSurfaceTemperature(fields["temperature"], fields["latitude"], fields["longitude"], fields["dates"],
                                 "day", fields["mask"], Region("gulf", 18.0, 31.0, -98.0, -80.0), (), "synthetic")


@given(st.floats(0.0, 4000.0))
def test_synthetic_flow_is_divergence_free_on_the_grid(day):
    generator = SyntheticSeaSurface(resolution=1.0)
    u, v = generator.velocity(day)
    divergence = (u[:, 1:] - u[:, :-1]) / generator.dx + (v[1:] - v[:-1]) / generator.dy
    assert np.abs(divergence).max() <= 1e-12 * max(np.abs(u).max(), np.abs(v).max()) / generator.dx


def test_synthetic_annual_cycle_dominates_and_intraseasonal_variability_remains(synthetic):
    normalisation = fit_normalisation(synthetic, train_end="2013-12-31", scaling="none")
    anomalies = normalisation.apply(synthetic.temperature, synthetic.dates)[:, ~synthetic.mask]
    total = synthetic.temperature[:, ~synthetic.mask]
    explained = 1 - anomalies.var() / (total - total.mean()).var()
    assert explained > 0.9  # the annual cycle (measured: 0.98)
    assert 0.2 < anomalies.std() < 1.5  # C (measured: 0.38)
    window = np.ones(101) / 101  # a 101-day running mean keeps the slow part; the rest is intraseasonal
    slow = np.apply_along_axis(lambda x: np.convolve(x, window, mode="same"), 0, anomalies)
    fast = (anomalies - slow)[60:-60]
    assert fast.var() / anomalies[60:-60].var() > 0.5  # (measured: 0.86)


@needs_coads
def test_synthetic_gulf_resembles_the_coads_land_mask_and_seasonal_cycle(synthetic):
    coads = read_sst(COADS, region="gulf")
    months = synthetic.dates.astype("datetime64[M]").astype(int) % 12
    synthetic_cycle = np.array([synthetic.ocean_mean()[months == k].mean() for k in range(12)])
    observed = coads.ocean_mean()
    assert np.corrcoef(synthetic_cycle, observed)[0, 1] > 0.97  # measured 0.997
    amplitude = (synthetic_cycle.max() - synthetic_cycle.min()) / (observed.max() - observed.min())
    assert 0.8 < amplitude < 1.25 and abs(synthetic_cycle.mean() - observed.mean()) < 1.0  # measured 1.04, +0.17 C
    # mask: the synthetic ocean fraction inside each 2-degree COADS box
    fine_lat, fine_lon = np.arange(18.125, 32.0, 0.25), np.arange(-97.875, -79.9, 0.25)
    land = gulf_land_mask(fine_lat, fine_lon)
    fraction = np.array([[1 - land[(np.abs(fine_lat - a) <= 1)[:, None] & (np.abs(fine_lon - b) <= 1)[None, :]].mean()
                          for b in coads.longitude] for a in coads.latitude])
    assert np.all(fraction[coads.mask] < 0.5)  # COADS's inland boxes are land here too
    assert (fraction[~coads.mask] > 0.25).mean() > 0.75  # its ocean boxes mostly ocean (coastal boxes differ)


def test_synthetic_fields_are_reproducible_and_labelled(tmp_path):
    first = SyntheticSeaSurface(resolution=1.0, seed=1).generate(20, spin_up_days=0)
    again = SyntheticSeaSurface(resolution=1.0, seed=1).generate(20, spin_up_days=0)
    other = SyntheticSeaSurface(resolution=1.0, seed=2).generate(20, spin_up_days=0)
    np.testing.assert_array_equal(first["temperature"], again["temperature"])
    assert not np.array_equal(np.nan_to_num(first["temperature"]), np.nan_to_num(other["temperature"]))
    output = tmp_path / "synthetic.h5"
    done = subprocess.run([*_dynlearn(), "generate", "sst", "--synthetic", "--years", "1", "--resolution", "1.0",
                           "--anomalies", "climatology", "--train-end", "2012-09-30", "-o", str(output)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "SYNTHETIC" in done.stdout
    dataset = read_dataset(output)
    assert dataset.generator["kind"] == "synthetic" and dataset.parameters["synthetic"] is True
    assert dataset.n_times == 366 and dataset.parameters["normalisation"]["method"] == "climatology"
    refused = subprocess.run([*_dynlearn(), "generate", "sst", "-o", str(tmp_path / "x.h5")], capture_output=True, text=True)
    assert refused.returncode == 2 and "--synthetic" in refused.stderr and not (tmp_path / "x.h5").exists()
    with pytest.raises(ValueError, match="resolution must be between"):
        generate_synthetic_sst_dataset(resolution=5.0)


def test_the_sst_example_runs(tmp_path):
    example = Path(__file__).parents[1] / "examples" / "sea_surface_temperature.py"
    done = subprocess.run([sys.executable, str(example), "-o", str(tmp_path), "--synthetic-years", "1"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Gulf of Mexico basin-mean SST" in done.stdout and (tmp_path / "sea_surface_temperature.png").is_file()
    if COADS is not None:
        assert "correlation" in done.stdout
    if OSTIA is not None:
        assert "Nino 3.4 index from OSTIA" in done.stdout


@pytest.mark.parametrize("calendar, reason", [
    ("360_day", "30 February"), ("noleap", "no 29 February"), ("365_day", "no 29 February"),
    ("all_leap", "a 29 February in every year"), ("julian", "Julian calendar"), ("mars", "not a calendar dynlearn"),
])
def test_model_calendars_are_refused_saying_why_and_how_to_convert(tmp_path, calendar, reason):
    """Only the standard calendar's dates are read; a model calendar's file is refused in one line naming the
    calendar, why its dates are not standard dates, and the conversion that makes the file readable."""
    import h5py

    path = files.write_oisst(tmp_path / "model.nc", "2016-02-27", 4)
    with h5py.File(path, "r+") as handle:
        handle["time"].attrs["calendar"] = calendar
    for read in (read_oisst, read_sst):
        with pytest.raises(SeaSurfaceTemperatureError) as error:
            read(path)
        message = str(error.value)
        assert f"calendar {calendar!r} is refused" in message and reason in message
        assert "convert_calendar('standard'" in message and "\n" not in message
    for standard in ("standard", "gregorian", "proleptic_gregorian", "Gregorian"):
        with h5py.File(path, "r+") as handle:
            handle["time"].attrs["calendar"] = standard
        assert str(read_oisst(path).dates[2])[:10] == "2016-02-29"
