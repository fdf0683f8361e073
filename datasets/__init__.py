"""Datasets: the HDF5 file format, generation from the physical systems, and torch views.

Never imported as a top-level ``datasets``: it is ``dynlearn.datasets`` (a top-level name would collide
with a common library). Loaders for data users bring (OISST, CIFAR-10) are planned, see the issues.
"""

from .format import FORMAT_NAME, FORMAT_VERSION, DatasetFormatError, TrajectoryDataset, read_dataset, write_dataset
from .generate import generate_cylinder_dataset, generate_dataset
from .views import OneStepPairs, StepWindows, WholeTrajectories, split_trajectories

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "DatasetFormatError",
    "OneStepPairs",
    "StepWindows",
    "TrajectoryDataset",
    "WholeTrajectories",
    "generate_cylinder_dataset",
    "generate_dataset",
    "read_dataset",
    "split_trajectories",
    "write_dataset",
]
