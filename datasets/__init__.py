"""Datasets: the HDF5 file format, generation from the physical systems, and torch views.

Never imported as a top-level ``datasets``: it is ``dynlearn.datasets`` (a top-level name would collide
with a common library). Loaders for data users bring: NOAA OISST and other gridded SST (``dynlearn.datasets.sst``,
read with h5py or scipy through ``dynlearn.datasets.netcdf``), their preprocessing
(``dynlearn.datasets.climatology``); CIFAR-10 is planned, see the issues.
"""

from .format import (FORMAT_NAME, FORMAT_VERSION, DatasetFormatError, TrajectoryDataset, read_dataset, upgrade_dataset,
                     write_dataset)
from .sampling import SAMPLING_KINDS, IrregularSampling
from .climatology import Normalisation, fit_normalisation, normalise_dataset, to_celsius
from .generate import generate_cylinder_dataset, generate_dataset, generate_synthetic_sst_dataset
from .sst import REGIONS, Region, SeaSurfaceTemperature, SeaSurfaceTemperatureError, read_oisst, read_sst
from .views import OneStepPairs, StepWindows, WholeTrajectories, split_trajectories

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "DatasetFormatError",
    "IrregularSampling",
    "Normalisation",
    "OneStepPairs",
    "REGIONS",
    "Region",
    "SAMPLING_KINDS",
    "SeaSurfaceTemperature",
    "SeaSurfaceTemperatureError",
    "StepWindows",
    "TrajectoryDataset",
    "WholeTrajectories",
    "generate_cylinder_dataset",
    "generate_dataset",
    "generate_synthetic_sst_dataset",
    "fit_normalisation",
    "normalise_dataset",
    "read_oisst",
    "read_sst",
    "to_celsius",
    "read_dataset",
    "split_trajectories",
    "upgrade_dataset",
    "write_dataset",
]
