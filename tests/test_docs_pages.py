"""The documentation's pages state what the code does: the verdicts' thresholds on the convergence-test page are
the library's constants, and the dataset-format page names every variable and root attribute a written file
holds. (The site's build itself, with warnings as errors, runs in CI: .ci/run.)"""

from __future__ import annotations

import re
from pathlib import Path

import h5py

from dynlearn.analysis import convergence, rates, study
from dynlearn.datasets import generate_dataset, write_dataset
from dynlearn.systems import make_system

DOCS = Path(__file__).parents[1] / "docs"


def test_convergence_test_page_quotes_the_thresholds_the_study_uses():
    page = (DOCS / "concepts" / "convergence-test.md").read_text(encoding="utf-8")
    constants = {"DIP_THRESHOLD": study.DIP_THRESHOLD, "SIGNIFICANT_ERROR": study.SIGNIFICANT_ERROR,
                 "CONVERGING_RATE": study.CONVERGING_RATE, "PLATEAU_FACTOR": study.PLATEAU_FACTOR,
                 "SLOPE_TOLERANCE": rates.SLOPE_TOLERANCE, "ASYMPTOTIC_SIZE": convergence.ASYMPTOTIC_SIZE}
    for name, value in constants.items():
        quoted = re.findall(rf"`{name}` = ([0-9.e-]+)", page)
        assert quoted, f"the convergence-test page does not quote {name}"
        assert all(float(number) == value for number in quoted), f"{name} is {value}, the page says {quoted}"


def test_dataset_format_page_names_every_variable_and_attribute_of_a_file(tmp_path):
    page = (DOCS / "concepts" / "dataset-format.md").read_text(encoding="utf-8")
    path = write_dataset(tmp_path / "pendulum.h5", generate_dataset(make_system("pendulum"), dt=0.1, t_final=1.0,
                                                                    n_trajectories=2, seed=0))
    with h5py.File(path, "r") as file:
        variables = [name for name in file if "dynlearn_role" not in file[name].attrs]
        attributes = list(file.attrs)
    missing = [name for name in variables + attributes if f"`{name}`" not in page]
    assert not missing, f"docs/concepts/dataset-format.md does not describe {missing}"
