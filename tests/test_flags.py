"""A flag is True or False: a truthy stand-in ("no", 1) is refused in one line naming the argument, before any work.

Read as a plain truth value, ``overwrite="no"`` would replace a file and ``allow_pickle="no"`` would unpickle one.
The flags that guard files and code are also tested next to their functions; this file covers the rest.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from dynlearn._checks import as_flag
from dynlearn.analysis import convergence_test, fit_convergence_rate
from dynlearn.autoencoder.model import PhysicsAwareAutoencoder
from dynlearn.datasets import OneStepPairs, generate_cylinder_dataset, generate_dataset
from dynlearn.datasets.climatology import check_training_end
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
])
def test_a_flag_that_is_not_a_bool_is_refused(flag, call):
    with pytest.raises(ValueError, match=f"{flag} must be True or False, got str 'no'"):
        call()
