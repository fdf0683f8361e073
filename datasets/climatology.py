"""Preprocessing of sea-surface temperature: anomalies from a per-cell climatology (or mean), and scaling, with
every statistic computed on the training period only and stored with the data so predictions map back to
degrees Celsius.

Climatology: per cell, a least-squares fit of the annual cycle on the training dates,

    T_clim(s) = a_0 + sum_{k=1..H} [a_k cos(2 pi k s) + b_k sin(2 pi k s)],   s = fraction of the year elapsed,

(H = 3 harmonics by default: smooth, and well determined from daily or monthly data of a few years, unlike a
raw day-of-year mean). ``method="mean"`` removes only a_0. Scaling divides the anomalies by one number (the
standard deviation of the training anomalies over all ocean cells, ``scaling="global"``: keeps the relative
amplitude between cells), by each cell's own standard deviation (``"cell"``), or by nothing (``"none"``).

    anomaly = (T - T_clim(date)) / scale          T = anomaly * scale + T_clim(date)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from dynlearn.datasets.format import TrajectoryDataset
from dynlearn.datasets.sst import SeaSurfaceTemperature
from dynlearn._checks import as_flag, as_integer

__all__ = ["Normalisation", "check_training_end", "fit_normalisation", "normalise_dataset", "to_celsius",
           "year_fraction"]

_METHODS = ("climatology", "mean")
_SCALINGS = ("global", "cell", "none")


def year_fraction(dates: np.ndarray) -> np.ndarray:
    """Fraction of the calendar year elapsed at each date, in [0, 1) (leap years have 366 days)."""
    dates = np.asarray(dates).astype("datetime64[s]")
    start = dates.astype("datetime64[Y]")
    length = ((start + np.timedelta64(1, "Y")).astype("datetime64[s]") - start.astype("datetime64[s]")).astype(np.float64)
    return (dates - start.astype("datetime64[s]")).astype(np.float64) / length


def _design(dates: np.ndarray, harmonics: int) -> np.ndarray:
    phase = 2 * np.pi * year_fraction(dates)
    columns = [np.ones_like(phase)]
    for k in range(1, harmonics + 1):
        columns += [np.cos(k * phase), np.sin(k * phase)]
    return np.stack(columns, axis=1)


@dataclasses.dataclass
class Normalisation:
    """Fitted statistics. ``coefficients``: ``(2H+1, n_lat, n_lon)`` (a_0, a_1, b_1, ...), zero on masked
    cells; ``scale``: ``(n_lat, n_lon)`` (one value everywhere for global scaling), one on masked cells."""

    method: str
    harmonics: int
    scaling: str
    coefficients: np.ndarray
    scale: np.ndarray
    mask: np.ndarray
    train_start: str
    train_end: str

    def climatology(self, dates: np.ndarray) -> np.ndarray:
        """The fitted seasonal mean at ``dates``: ``(n_times, n_lat, n_lon)`` in degrees Celsius."""
        return np.einsum("tc,cyx->tyx", _design(dates, self.harmonics), self.coefficients)

    def apply(self, temperature: np.ndarray, dates: np.ndarray) -> np.ndarray:
        """Anomalies ``(T - T_clim) / scale`` of ``temperature`` ``(n_times, n_lat, n_lon)`` (degrees Celsius)."""
        return (temperature - self.climatology(dates)) / self.scale

    def invert(self, anomalies: np.ndarray | torch.Tensor, dates: np.ndarray) -> np.ndarray:
        """Degrees Celsius from anomalies ``(..., n_times, n_lat, n_lon)``; NaN on masked cells."""
        values = anomalies.detach().cpu().numpy() if isinstance(anomalies, torch.Tensor) else np.asarray(anomalies)
        celsius = values * self.scale + self.climatology(dates)
        return np.where(self.mask, np.nan, celsius)

    def to_parameters(self) -> dict[str, Any]:
        return {"method": self.method, "harmonics": self.harmonics, "scaling": self.scaling,
                "train_start": self.train_start, "train_end": self.train_end}

    def to_fields(self) -> dict[str, torch.Tensor]:
        return {"normalisation_coefficients": torch.from_numpy(self.coefficients.astype(np.float64)),
                "normalisation_scale": torch.from_numpy(self.scale.astype(np.float64))}

    @classmethod
    def from_dataset(cls, dataset: TrajectoryDataset) -> "Normalisation":
        settings = dataset.parameters.get("normalisation")
        if not settings or "normalisation_coefficients" not in dataset.fields:
            raise ValueError("dataset: holds no normalisation (it was not made by normalise_dataset)")
        return cls(settings["method"], int(settings["harmonics"]), settings["scaling"],
                   dataset.fields["normalisation_coefficients"].numpy(), dataset.fields["normalisation_scale"].numpy(),
                   dataset.fields["land_mask"].numpy() > 0.5, settings["train_start"], settings["train_end"])


def check_training_end(train_end: str | np.datetime64, first: str | np.datetime64, last: str | np.datetime64, *,
                       hold_out: bool = True) -> np.datetime64:
    """``train_end`` as a datetime64[s], checked against a record of dates ``first`` .. ``last``: at least one date
    up to it (the statistics need data) and, with ``hold_out``, at least one after it (else the statistics would
    see every date a test holds out; an analysis of the whole record, an index of its anomalies, passes False).
    """
    hold_out = as_flag("hold_out", hold_out)
    try:
        end = np.datetime64(train_end, "s")
    except ValueError:
        raise ValueError(f"train_end must be a date such as '2016-12-31', got {train_end!r}") from None
    first, last = np.datetime64(first, "s"), np.datetime64(last, "s")
    span = f"{str(first)[:10]} .. {str(last)[:10]}"
    if end < first:
        raise ValueError(f"train_end = {train_end}: no date of the record ({span}) falls in the training period")
    if hold_out and end >= last:
        raise ValueError(f"train_end = {train_end}: every date of the record ({span}) falls in the training period, so "
                         f"the statistics would see the dates a test holds out; choose a date before {str(last)[:10]}")
    return end


def fit_normalisation(
    record: SeaSurfaceTemperature,
    *,
    train_end: str | np.datetime64,
    method: str = "climatology",
    harmonics: int = 3,
    scaling: str = "global",
) -> Normalisation:
    """Fit the climatology (or mean) and the scale on the dates up to and including ``train_end`` only.

    Raises when the training period is too short to determine the harmonics (their least-squares problem is
    ill-conditioned before about a year of data) or holds no date.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if scaling not in _SCALINGS:
        raise ValueError(f"scaling must be one of {_SCALINGS}, got {scaling!r}")
    as_integer("harmonics", harmonics, minimum=0)
    if method == "mean":
        harmonics = 0
    end = check_training_end(train_end, record.dates[0], record.dates[-1], hold_out=False)
    training = record.dates <= end
    dates = record.dates[training]
    design = _design(dates, harmonics)
    if design.shape[0] < design.shape[1] or np.linalg.cond(design) > 1e6:
        raise ValueError(
            f"the training period ({dates[0]} .. {dates[-1]}, {dates.size} dates) is too short to fit {harmonics} "
            f"annual harmonics; train on at least a year, use fewer harmonics, or method='mean'")
    ocean = ~record.mask
    values = record.temperature[training][:, ocean]  # (n_train, n_ocean)
    solution, *_ = np.linalg.lstsq(design, values, rcond=None)
    coefficients = np.zeros((design.shape[1], *record.mask.shape))
    coefficients[:, ocean] = solution
    residual = values - design @ solution
    scale = np.ones(record.mask.shape)
    if scaling == "global":
        scale[:] = residual.std() if residual.size > 1 else 1.0
    elif scaling == "cell":
        scale[ocean] = residual.std(axis=0)
    if np.any(scale[ocean] <= 0):
        raise ValueError("scaling: a training anomaly has zero spread; use scaling='none'")
    return Normalisation(method, harmonics, scaling, coefficients, scale, record.mask.copy(), str(dates[0]), str(dates[-1]))


def normalise_dataset(
    dataset: TrajectoryDataset,
    *,
    train_end: str | np.datetime64,
    method: str = "climatology",
    harmonics: int = 3,
    scaling: str = "global",
) -> TrajectoryDataset:
    """A new SST dataset whose states are anomalies (see the module docstring), fitted on the dates up to
    ``train_end``; the statistics travel with it (fields ``normalisation_coefficients``, ``normalisation_scale``,
    parameters ``normalisation``) so :func:`to_celsius` maps any prediction back."""
    if "normalisation" in dataset.parameters:
        raise ValueError("dataset: is normalised already")
    record = SeaSurfaceTemperature.from_dataset(dataset)
    normalisation = fit_normalisation(record, train_end=train_end, method=method, harmonics=harmonics, scaling=scaling)
    anomalies = np.where(record.mask, 0.0, normalisation.apply(record.temperature, record.dates))
    states = torch.from_numpy(anomalies)[None].contiguous()
    parameters = dict(dataset.parameters)
    parameters["normalisation"] = normalisation.to_parameters()
    parameters["units"] = "standardised anomaly" if scaling != "none" else "degC anomaly"
    return dataclasses.replace(
        dataset, states=states, initial_conditions=states[:, 0].clone(), parameters=parameters,
        fields={**dataset.fields, **normalisation.to_fields()}, attributes={},
        units={**dataset.units, "states": "1" if scaling != "none" else "K"},  # a standardised anomaly; a
        # difference of temperatures (CF: an anomaly in degC is written in K, as degC is an offset scale)
    )


def to_celsius(dataset: TrajectoryDataset, values: torch.Tensor | np.ndarray | None = None,
               time_indices: np.ndarray | None = None) -> np.ndarray:
    """Degrees Celsius from a normalised dataset's states (or from ``values`` ``(n_times, n_lat, n_lon)``, e.g.
    predictions, at the dataset's time indices ``time_indices``, default all); NaN on land."""
    normalisation = Normalisation.from_dataset(dataset)
    record_dates = SeaSurfaceTemperature.from_dataset(dataset).dates
    dates = record_dates if time_indices is None else record_dates[np.asarray(time_indices)]
    source = dataset.states[0] if values is None else values
    return normalisation.invert(source, dates)
