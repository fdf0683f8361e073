"""A flag is True or False: a truthy stand-in ("no", 1) is refused in one line naming the argument, before any work.

Read as a plain truth value, ``overwrite="no"`` would replace a file and ``allow_pickle="no"`` would unpickle one.
The flags that guard files and code are also tested next to their functions; this file covers the rest.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch

from dynlearn._checks import as_flag
from dynlearn.analysis import convergence_test, fit_convergence_rate
from dynlearn.analysis.experiments.learned_integrators import LEARNED_INTEGRATOR_RECIPES
from dynlearn.analysis.experiments.manifestations import manifestation_table
from dynlearn.analysis.robustness import projected_gradient_descent
from dynlearn.autoencoder.model import PhysicsAwareAutoencoder
from dynlearn.continuousnet.network import ContinuousNet
from dynlearn.continuousnet.training import evaluate_classifier
from dynlearn.datasets import OneStepPairs, generate_cylinder_dataset, generate_dataset
from dynlearn.datasets.climatology import check_training_end
from dynlearn.datasets.images import ImageData
from dynlearn.integration.tableaus import available_tableaus
from dynlearn.systems import make_system
from dynlearn.systems.cylinder import simulate


def test_as_flag_takes_bools_and_numpy_bools_only():
    assert as_flag("x", True) is True and as_flag("x", False) is False
    assert as_flag("x", np.bool_(True)) is True  # a plain bool, whatever came in
    for value, shown in (("no", "str 'no'"), (1, "int 1"), (0, "int 0"), (None, "NoneType None"),
                         (torch.tensor(True), "Tensor tensor(True)")):
        with pytest.raises(ValueError, match=f"^{re.escape(f'x must be True or False, got {shown}')}$"):
            as_flag("x", value)


def _images() -> ImageData:
    rng = np.random.default_rng(0)
    return ImageData.from_arrays({"train_images": rng.integers(0, 256, (4, 1, 8, 8), dtype=np.uint8),
                                  "train_labels": np.array([0, 1, 0, 1]),
                                  "test_images": rng.integers(0, 256, (2, 1, 8, 8), dtype=np.uint8),
                                  "test_labels": np.array([0, 1])})


def _oscillator_data():
    return generate_dataset(make_system("oscillator"), dt=0.1, t_final=1.0, n_trajectories=2, seed=0)


@pytest.mark.parametrize("flag, call", [
    ("relative", lambda: convergence_test(lambda t, x: -x, torch.ones(2, dtype=torch.float64), 1.0,
                                          reference=lambda times: torch.exp(-times)[:, None].expand(-1, 2),
                                          relative="no")),
    ("select_range", lambda: fit_convergence_rate([0.1, 0.05, 0.025], [1e-2, 2.5e-3, 6.25e-4], select_range="no")),
    ("hold_out", lambda: check_training_end("2016-06-30", "2016-01-01", "2016-12-31", hold_out="no")),
    ("with_steps", lambda: OneStepPairs(_oscillator_data(), with_steps="no")),
    ("velocity", lambda: generate_cylinder_dataset(100.0, velocity="no")),
    ("velocity", lambda: simulate(100.0, velocity="no")),
    ("explicit_only", lambda: available_tableaus(explicit_only="no")),
    ("backward", lambda: PhysicsAwareAutoencoder(8, latent=2, backward="no")),
    ("discrete_baselines", lambda: dataclasses.replace(LEARNED_INTEGRATOR_RECIPES["oscillator"],
                                                       discrete_baselines="no")),
    ("random_start", lambda: projected_gradient_descent(lambda images: images.flatten(1)[:, :2],
                                                        torch.zeros(2, 1, 8, 8), torch.tensor([0, 1]), 0.1,
                                                        random_start="no")),
    ("resnet", lambda: manifestation_table(ContinuousNet(n_classes=2, in_channels=1, widths=(4, 4, 4)), resnet="no")),
    ("shuffle", lambda: next(_images().batches("train", 2, shuffle="no"))),
    ("augment", lambda: next(_images().batches("train", 2, augment="no"))),
    ("mixed_precision", lambda: evaluate_classifier(ContinuousNet(n_classes=2, in_channels=1, widths=(4, 4, 4)),
                                                    _images(), mixed_precision="no")),
])
def test_a_flag_that_is_not_a_bool_is_refused(flag, call):
    with pytest.raises(ValueError, match=f"{flag} must be True or False, got str 'no'"):
        call()
