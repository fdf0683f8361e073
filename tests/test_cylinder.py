"""Flow past a cylinder (lattice Boltzmann): validation against published numbers on the coarse preset.

Re = 100: Strouhal number 0.165 (within 5%), mean drag coefficient in [1.25, 1.45], lift amplitude reported.
Re = 20: steady symmetric wake, recirculation length 0.93 D (within 15%), drag coefficient 2.05 (within 10%).
These runs take about a minute each on 2 CPU cores (torch.compile fuses the lattice update).
"""

import math

import numpy as np
import pytest
import torch

from dynlearn.datasets import generate_cylinder_dataset, read_dataset, write_dataset
from dynlearn.systems.cylinder import CylinderFlow, CylinderPreset, recirculation_length, strouhal_number


def test_strouhal_number_of_a_known_signal():
    times = np.linspace(0, 50, 5001)
    assert strouhal_number(times, 0.3 * np.sin(2 * math.pi * 0.165 * times + 0.4) + 0.01) == pytest.approx(0.165,
                                                                                                        rel=1e-4)
    assert math.isnan(strouhal_number(times[:50], np.sin(times[:50])))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(reynolds=0.0), "reynolds"),
        (dict(reynolds=2000.0), "raise the resolution to at least 67"),
        (dict(lattice_velocity=0.3), "Mach"),
        (dict(resolution=4), "resolution"),
    ],
)
def test_bad_parameters_fail_before_any_work(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CylinderFlow(**{"reynolds": 100.0, "resolution": 20, "lattice_velocity": 0.1, **kwargs})


def test_unknown_preset_is_named():
    from dynlearn.systems.cylinder import simulate

    with pytest.raises(ValueError, match="preset must be one of"):
        simulate(100.0, "fine")


def test_re20_steady_symmetric_wake_recirculation_and_drag():
    torch.manual_seed(0)
    flow = CylinderFlow(20.0, 20, 0.1, compile=True)
    unit = int(flow.steps_per_unit_time)
    flow.run(30 * unit, record=False)
    drag, lift = flow.run(5 * unit)
    assert drag.std() < 1e-3 * drag.mean()  # steady
    assert lift.abs().max() < 1e-3  # no shedding
    assert drag.mean().item() == pytest.approx(2.05, rel=0.10)
    assert recirculation_length(flow) == pytest.approx(0.93, rel=0.15)
    vorticity = flow.vorticity()
    mirrored = vorticity.flip(0).roll(1, 0)  # y -> -y about the centre line (node j -> 320 - j)
    assert (vorticity + mirrored).abs().max() < 1e-4 * vorticity.abs().max()


def test_re100_sheds_at_the_published_strouhal_number_and_the_data_set_round_trips(tmp_path):
    preset = CylinderPreset(resolution=20, spacing=0.05, snapshot_interval=0.2, n_snapshots=101)
    dataset = generate_cylinder_dataset(100.0, preset)
    strouhal = float(dataset.trajectory_parameters["strouhal"][0])
    drag = float(dataset.trajectory_parameters["mean_drag"][0])
    lift = float(dataset.trajectory_parameters["lift_amplitude"][0])
    assert strouhal == pytest.approx(0.165, rel=0.05)
    assert 1.25 <= drag <= 1.45
    assert 0.2 < lift < 0.5  # published about 0.33; reported, not asserted tightly
    assert dataset.states.shape == (1, 101, 79, 179)  # interior points of [-1, 8] x [-2, 2] at 0.05 D
    vorticity = dataset.states[0]
    assert vorticity.abs().max() > 1.0  # shear layers
    path = write_dataset(tmp_path / "cylinder.h5", dataset)
    loaded = read_dataset(path)
    assert torch.equal(loaded.states, dataset.states)
    assert torch.equal(loaded.coordinates["x"], dataset.coordinates["x"])
    assert loaded.coordinates["x"][0] == pytest.approx(-0.95) and loaded.coordinates["y"][-1] == pytest.approx(1.95)
