"""Flow past a cylinder (lattice Boltzmann): validation against published numbers on the coarse preset.

Re = 100: Strouhal number 0.165 (within 5%), mean drag coefficient in [1.25, 1.45], lift amplitude about 0.33
(within 10%).
Re = 20: steady symmetric wake, recirculation length 0.93 D (within 15%), drag coefficient 2.05 (within 10%).
Both on the coarse preset's lattice and domain; these two runs take a few minutes on 2 CPU cores
(torch.compile fuses the lattice update).
"""

import dataclasses
import inspect
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dynlearn.datasets import generate_cylinder_dataset, read_dataset, write_dataset
from dynlearn.systems.cylinder import (
    _VELOCITIES,
    PRESETS,
    CylinderFlow,
    CylinderPreset,
    has_settled,
    recirculation_length,
    shedding_cycles,
    strouhal_number,
)


def test_strouhal_number_of_a_known_signal():
    times = np.linspace(0, 50, 5001)
    assert strouhal_number(times, 0.3 * np.sin(2 * math.pi * 0.165 * times + 0.4) + 0.01) == pytest.approx(0.165,
                                                                                                        rel=1e-4)
    assert math.isnan(strouhal_number(times[:50], np.sin(times[:50])))


@settings(max_examples=30, deadline=None)
@given(
    strouhal=st.floats(0.1, 0.3),
    phase=st.floats(0, 2 * math.pi),
    mean=st.floats(-0.05, 0.05),
    ripple=st.floats(0, 0.05),
    ripple_period=st.floats(0.02, 0.08),
)
def test_shedding_cycles_see_through_acoustic_ripple(strouhal, phase, mean, ripple, ripple_period):
    """Lattice Boltzmann lift carries fast pressure waves: they must not add zero crossings or shift the period."""
    times = np.arange(1, 20001) * 0.005  # 100 D/U at 200 steps per D/U, as on the coarse lattice
    lift = mean + 0.33 * np.sin(2 * math.pi * strouhal * times + phase) + ripple * np.sin(2 * math.pi * times / ripple_period)
    cycles = shedding_cycles(times, lift)
    assert len(cycles) >= math.floor(100 * strouhal) - 2
    assert np.allclose(1 / cycles.periods, strouhal, rtol=5e-3)  # single cycles: ripple / slope at the crossing
    assert strouhal_number(times, lift) == pytest.approx(strouhal, rel=1e-3)
    assert np.allclose(cycles.amplitudes, 0.33, atol=ripple + 2e-3)
    assert has_settled(cycles, tolerance=0.01)


def test_growing_shedding_has_not_settled_until_it_saturates():
    times = np.arange(1, 40001) * 0.005
    envelope = 0.33 / (1 + 1000 * np.exp(-0.1 * times))  # logistic growth from a small perturbation, rate 0.1 U/D
    lift = envelope * np.sin(2 * math.pi * 0.165 * times)
    settled_at = next(T for T in range(20, 201, 5) if has_settled(shedding_cycles(times[times < T], lift[times < T]), 0.01))
    assert envelope[int(settled_at / 0.005) - 1] > 0.97 * 0.33  # not before the amplitude has saturated
    assert settled_at <= 160  # 1 % between blocks 18 D/U apart: 1000 exp(-0.1 (t - 27)) < 0.01 from t = 142


def test_presets_keep_the_window_clear_of_the_absorbing_layers():
    with pytest.raises(ValueError, match="window x in"):
        CylinderPreset(20, 0.05, 0.2, 10, domain_x=(-3.0, 22.0), sponge=3.0)
    with pytest.raises(ValueError, match="window y in"):
        CylinderPreset(20, 0.05, 0.2, 10, domain_y=(-4.0, 4.0), sponge=3.0)
    with pytest.raises(ValueError, match="sponge"):
        CylinderPreset(20, 0.05, 0.2, 10, sponge=-1.0)
    with pytest.raises(ValueError, match="absorbing layers on each side"):
        CylinderFlow(100.0, 20, 0.1, domain_x=(-2.0, 22.0), sponge=1.5)
    with pytest.raises(ValueError, match="compile must be True or False, got str 'no'"):
        CylinderFlow(100.0, 20, 0.1, compile="no")
    for name, preset in PRESETS.items():  # the shipped presets: the window clear of the layers on every side
        assert preset.domain_x[0] + preset.sponge < -1.0 and 8.0 < preset.domain_x[1] - preset.sponge, name
        assert preset.domain_y[0] + preset.sponge < -2.0 and 2.0 < preset.domain_y[1] - preset.sponge, name


def test_start_from_carries_the_flow_between_lattices():
    coarse = CylinderFlow(100.0, 8, 0.1, domain_x=(-4.0, 8.0), domain_y=(-4.0, 4.0))
    coarse.perturb(0.5)
    coarse.run(100, record=False)
    same = CylinderFlow(100.0, 8, 0.1, domain_x=(-4.0, 8.0), domain_y=(-4.0, 4.0))
    same.start_from(coarse)
    for a, b in zip(coarse.macroscopic(), same.macroscopic()):
        assert torch.allclose(a, b, atol=1e-6)  # same nodes: the state itself
    fine = CylinderFlow(100.0, 16, 0.05, domain_x=(-4.0, 8.0), domain_y=(-4.0, 4.0))
    fine.start_from(coarse)
    _, ux, uy = coarse.macroscopic()
    _, fine_ux, fine_uy = fine.macroscopic()
    # every other fine node is a coarse node: velocities in units of U agree there, solid nodes included
    assert torch.allclose(fine_ux[::2, ::2] / 0.05, ux / 0.1, atol=1e-5)
    assert torch.allclose(fine_uy[::2, ::2] / 0.05, uy / 0.1, atol=1e-5)
    # and between them the interpolation is linear: the midpoint of two coarse nodes is their mean
    assert torch.allclose(fine_ux[::2, 1:-1:2][:, 40:] / 0.05, (ux[:, :-1] + ux[:, 1:])[:, 40:] / 0.2, atol=1e-5)  # x > 1
    with pytest.raises(ValueError, match="same Reynolds number and domain"):
        CylinderFlow(50.0, 16, 0.05, domain_x=(-4.0, 8.0), domain_y=(-4.0, 4.0)).start_from(coarse)


def textbook_step(flow: CylinderFlow, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The same lattice update written the textbook way, over the population axis: moments as reductions,
    opposite populations by a gather, the force summed over the whole lattice (the solver's first form)."""
    velocities = [(0, 0), (1, 0), (0, 1), (-1, 0), (0, -1), (1, 1), (-1, 1), (-1, -1), (1, -1)]
    opposite_index = torch.tensor([velocities.index((-cx, -cy)) for cx, cy in velocities])
    cx = torch.tensor([c[0] for c in velocities], dtype=f.dtype)[:, None, None]
    cy = torch.tensor([c[1] for c in velocities], dtype=f.dtype)[:, None, None]
    weights = torch.tensor([4 / 9] + [1 / 9] * 4 + [1 / 36] * 4, dtype=f.dtype)[:, None, None]

    def equilibrium(rho, ux, uy):
        cu = 3 * (cx * ux + cy * uy)
        return rho * weights * (1 + cu + cu**2 / 2 - 1.5 * (ux**2 + uy**2))

    solid = flow.solid
    rho = f.sum(0)
    safe = torch.where(solid, 1.0, rho)
    ux = torch.where(solid, 0.0, (f * cx).sum(0) / safe)
    uy = torch.where(solid, 0.0, (f * cy).sum(0) / safe)
    feq = equilibrium(safe, ux, uy)
    f_opposite, feq_opposite = f[opposite_index], feq[opposite_index]
    post = (f - flow.omega_plus * ((f + f_opposite) - (feq + feq_opposite)) / 2
            - flow.omega_minus * ((f - f_opposite) - (feq - feq_opposite)) / 2)
    ones = torch.ones_like(rho[:, :1])
    free_stream = equilibrium(ones, flow.lattice_velocity * ones, 0 * ones)
    post = post - flow._sponge * (post - free_stream)
    force_x = 2 * torch.where(solid, f * cx, 0.0).sum()
    force_y = 2 * torch.where(solid, f * cy, 0.0).sum()
    post = torch.where(solid, f_opposite, post)
    streamed = torch.stack([torch.roll(post[i], shifts=(c[1], c[0]), dims=(0, 1)) for i, c in enumerate(velocities)])
    return torch.cat([free_stream, streamed[:, :, 1:-1], streamed[:, :, -2:-1]], dim=2), force_x, force_y


def test_fused_lattice_update_equals_the_textbook_form():
    flow = CylinderFlow(100.0, 8, 0.1, dtype=torch.float64, domain_x=(-5.0, 9.0), domain_y=(-5.0, 5.0), sponge=2.0,
                        boundary="staircase")
    flow.run(50, record=False)
    flow.perturb(0.5)  # an asymmetric, developing flow: every population and the force are non-trivial
    flow.run(30, record=False)
    expected = textbook_step(flow, flow.f)
    post, force = flow._advance(flow._post)  # the compiled form is exercised by the Re = 20 and Re = 100 tests
    flow._post = post
    actual = (flow.f, *force)
    torch.testing.assert_close(actual[0], expected[0], rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(torch.stack(actual[1:]), torch.stack(expected[1:]), rtol=1e-11, atol=1e-15)
    assert abs(float(expected[2])) > 1e-6  # the wake was asymmetric: a lift to compare


def wall_fraction(x: float, y: float, dx: float, dy: float, radius: float = 0.5) -> float:
    """Where the segment from (x, y) (outside the circle) to (x + dx, y + dy) (inside) crosses it, as a fraction
    of the segment: by bisection, independently of the solver's quadratic."""
    low, high = 0.0, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        if (x + middle * dx) ** 2 + (y + middle * dy) ** 2 <= radius**2:
            high = middle
        else:
            low = middle
    return (low + high) / 2


def test_interpolated_wall_follows_the_bouzidi_rule_on_every_link():
    """After a step, every population that a fluid node next to the wall receives from the wall's side is the
    linear interpolated bounce-back of Bouzidi, Firdaouss & Lallemand (2001) of the new post-collision
    populations, with the wall's distance q along the link; every other one is plain streaming; the force is
    the momentum the links exchange (Mei et al. 2002). Checked node by node against a direct loop, with a lattice
    shifted off the cylinder's centre so that q takes many values."""
    flow = CylinderFlow(100.0, 8, 0.1, dtype=torch.float64, domain_x=(-4.03, 8.0), domain_y=(-4.11, 4.0), sponge=1.0)
    flow.perturb(0.5)
    flow.run(30, record=False)
    before = flow._post.clone()
    incoming = flow.f  # what the fluid nodes receive from `before`, the wall's links included
    post, force = flow._advance(before)
    flow._post = post
    received = flow.f
    plain = torch.stack([torch.roll(post[i], shifts=(cy, cx), dims=(0, 1)) for i, (cx, cy) in enumerate(_VELOCITIES)])
    received, plain, post, before, incoming = (a.numpy() for a in (received, plain, post, before, incoming))
    solid = flow.solid.numpy()
    n, links, fractions = flow.resolution, 0, []
    expected_force = [0.0, 0.0]
    for row in range(flow.ny):
        for column in range(1, flow.nx - 1):
            if solid[row, column]:
                continue
            x, y = float(flow.x_nodes[column]), float(flow.y_nodes[row])
            for i, (cx, cy) in enumerate(_VELOCITIES):
                back = _VELOCITIES.index((-cx, -cy))
                if (cx, cy) == (0, 0) or not solid[(row + cy) % flow.ny, column + cx]:  # periodic in y
                    assert received[back, row, column] == plain[back, row, column]
                    continue
                q = wall_fraction(x, y, cx / n, cy / n)
                if q < 0.5:
                    value = 2 * q * post[i, row, column] + (1 - 2 * q) * post[i, row - cy, column - cx]
                else:
                    value = post[i, row, column] / (2 * q) + (2 * q - 1) / (2 * q) * post[back, row, column]
                assert received[back, row, column] == pytest.approx(value, rel=1e-12)
                exchanged = float(before[i, row, column] + incoming[back, row, column])  # towards the wall and back
                expected_force[0] += cx * exchanged
                expected_force[1] += cy * exchanged
                links += 1
                fractions.append(q)
    torch.testing.assert_close(force, torch.tensor(expected_force, dtype=torch.float64),
                               rtol=1e-12, atol=1e-15)
    assert abs(expected_force[1]) > 1e-4  # an asymmetric wake: a lift to compare
    assert links > 50 and min(fractions) < 0.2 and max(fractions) > 0.8 and any(0.4 < q < 0.6 for q in fractions)


def steady_drag(boundary: str, offset: float) -> float:
    """Mean drag coefficient of the steady Re = 20 wake at 8 nodes per D, on a lattice shifted by ``offset``
    (x) and 0.7 ``offset`` (y) lattice spacings against the cylinder."""
    shift = offset / 8
    flow = CylinderFlow(20.0, 8, 0.1, domain_x=(-6.0 + shift, 12.0 + shift),
                        domain_y=(-8.0 + 0.7 * shift, 8.0 + 0.7 * shift), sponge=2.5, boundary=boundary)
    unit = int(flow.steps_per_unit_time)
    flow.run(25 * unit, record=False)
    drag, _ = flow.run(unit)
    assert drag.std() < 1e-4 * drag.mean()  # steady
    return float(drag.mean())


def test_drag_does_not_depend_on_where_the_lattice_nodes_fall_on_the_cylinder():
    """A body's drag cannot depend on where it sits between the lattice nodes. With the interpolated wall the
    steady Re = 20 drag at 8 nodes per D moves by 0.5 % over sub-grid shifts (measured 2.333 to 2.346; the
    domain is small, so the blockage raises it above the unbounded 2.05); with the staircase of solid nodes it
    moves by 2.2 % (2.338 to 2.390), which this test's 1 % would not let through."""
    drags = [steady_drag("interpolated", offset) for offset in (0.0, 0.2, 0.4, 0.6)]
    assert max(drags) - min(drags) < 0.01 * min(drags)
    staircase = [steady_drag("staircase", offset) for offset in (0.0, 0.2)]
    assert abs(staircase[0] - staircase[1]) > 0.015 * min(staircase)


def test_both_streaming_forms_are_equal_and_setting_the_populations_round_trips():
    """The CPU (slices) and GPU (rolls) forms of the streaming give the same planes bit for bit; the populations
    read back as set, the boundary columns taking their boundary values."""
    flow = CylinderFlow(100.0, 8, 0.1, domain_x=(-4.0, 8.0), domain_y=(-4.0, 4.0), sponge=1.0)
    flow.perturb(0.5)
    flow.run(40, record=False)
    post = flow._post.unbind(0)
    for by_slices, by_rolls in zip(flow._stream_by_slices(post), flow._stream_by_rolls(post)):
        assert torch.equal(by_slices, by_rolls)
    populations = flow.f
    torch.testing.assert_close(populations[:, :, 0], flow._inlet[:, :, 0], rtol=0, atol=0)  # the inlet
    assert torch.equal(populations[:, :, -1], populations[:, :, -2])  # zero-gradient outlet
    changed = populations * (1 + 0.01 * torch.rand_like(populations))
    changed[:, :, 0], changed[:, :, -1] = populations[:, :, 0], changed[:, :, -2]
    flow.f = changed
    assert torch.equal(flow.f, changed)
    changed[:, :, 0] += 1.0  # not a boundary value: the inlet's comes back
    flow.f = changed
    assert torch.equal(flow.f[:, :, 0], populations[:, :, 0])
    with pytest.raises(ValueError, match="populations must have shape"):
        flow.f = populations[:, 1:]


def periodic_box(reynolds: float, dtype=torch.float64) -> CylinderFlow:
    """A 40 x 64-node lattice at 10 nodes per D with the cylinder and the absorbing layers taken out, for the
    collision's laws on their own (streamed periodically in both directions by the caller)."""
    flow = CylinderFlow(reynolds, 10, 0.1, dtype=dtype, domain_x=(-2.0, 2.0), domain_y=(-3.2, 3.2))
    flow.solid = torch.zeros_like(flow.solid)
    flow._sponge = None
    return flow


@settings(max_examples=25, deadline=None)
@given(
    reynolds=st.floats(5.0, 250.0),  # tau from 1.1 down to 0.512 at 10 nodes per D
    density=st.floats(0.8, 1.2),
    velocity=st.tuples(st.floats(-0.15, 0.15), st.floats(-0.15, 0.15)),
    seed=st.integers(0, 2**16),
)
def test_collision_conserves_mass_and_momentum_and_keeps_the_equilibrium(reynolds, density, velocity, seed):
    """At every fluid node the TRT collision moves populations without creating mass or momentum, and leaves
    the equilibrium where it is; populations that are not in equilibrium are relaxed towards it."""
    flow = periodic_box(reynolds)
    shape = (flow.ny, flow.nx)
    equilibrium = flow._equilibrium(torch.full(shape, density, dtype=torch.float64),
                                    torch.full(shape, velocity[0], dtype=torch.float64),
                                    torch.full(shape, velocity[1], dtype=torch.float64))
    generator = torch.Generator().manual_seed(seed)
    populations = equilibrium * (1 + 0.05 * torch.randn(equilibrium.shape, generator=generator, dtype=torch.float64))
    after = torch.stack(flow._collide(list(populations.unbind(0))))
    cx, cy = flow._cx, flow._cy
    for moment in (lambda f: f.sum(0), lambda f: (f * cx).sum(0), lambda f: (f * cy).sum(0)):
        torch.testing.assert_close(moment(after), moment(populations), rtol=0, atol=1e-14)
    torch.testing.assert_close(torch.stack(flow._collide(list(equilibrium.unbind(0)))), equilibrium,
                               rtol=0, atol=1e-15)
    assert (after - equilibrium).norm() < (populations - equilibrium).norm()


@pytest.mark.parametrize("reynolds", [20.0, 200.0])
def test_shear_wave_decays_at_the_viscosity_that_sets_the_reynolds_number(reynolds):
    """A shear wave u_x = A sin(k y) in a periodic box decays as exp(-nu k^2 t) (Navier-Stokes), with the
    lattice viscosity nu = U_lattice * resolution / Re that the relaxation time encodes (tau = 0.65 and 0.515
    here): measured within 0.08 %, asserted within 0.5 % (the lattice's own error is O(k^2), k = 2 pi / 64; a
    relaxation rate 3 % off moves the decay by 13 % at tau = 0.65)."""
    flow = periodic_box(reynolds)
    k = 2 * math.pi / flow.ny
    rows = torch.arange(flow.ny, dtype=torch.float64)[:, None].expand(flow.ny, flow.nx)
    profile = torch.sin(k * rows)
    f = flow._equilibrium(torch.ones_like(profile), 0.01 * profile, torch.zeros_like(profile))

    def amplitude(f: torch.Tensor) -> float:  # the projection of u_x on the wave
        return float(((f * flow._cx).sum(0) / f.sum(0) * profile).sum() / (profile**2).sum())

    amplitudes = {}
    for step in range(1, 2001):
        post = flow._collide(list(f.unbind(0)))
        f = torch.stack([torch.roll(post[i], shifts=(cy, cx), dims=(0, 1)) for i, (cx, cy) in enumerate(_VELOCITIES)])
        if step in (500, 2000):
            amplitudes[step] = amplitude(f)
    rate = math.log(amplitudes[500] / amplitudes[2000]) / 1500
    assert rate == pytest.approx(flow.viscosity * k**2, rel=0.005)


def test_absorbing_layers_take_up_pressure_waves():
    """A pressure pulse between the reflecting inlet and the periodic sides rings on; absorbing layers take
    its energy out. The pulse's own field is the difference between runs with and without it."""
    remaining = []
    for sponge in (0.0, 2.0):
        densities = []
        for amplitude in (0.0, 1e-3):
            flow = CylinderFlow(20.0, 6, 0.1, domain_x=(-5.0, 9.0), domain_y=(-5.0, 5.0), sponge=sponge)
            yy, xx = torch.meshgrid(flow.y_nodes, flow.x_nodes, indexing="ij")
            pulse = amplitude * torch.exp(-((xx - 3.0) ** 2 + (yy - 2.0) ** 2) / 0.5).float()
            flow.f = torch.where(flow.solid, flow.f, flow.f * (1 + pulse))
            flow.run(1000, record=False)  # about 7 crossings of the box at the speed of sound
            densities.append(flow.macroscopic()[0])
        remaining.append(float(((densities[1] - densities[0]) ** 2).sum()))
    assert remaining[1] < 1e-2 * remaining[0]


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
    # the coarser spin-up lattice's stability limit is checked too, before any work
    unstable_spin_up = dataclasses.replace(PRESETS["standard"], spin_up_resolution=6)
    with pytest.raises(ValueError, match="tau = 0.5060 is below the stability limit"):
        simulate(300.0, unstable_spin_up, progress=False)


def test_each_compiled_flow_has_its_own_compilation_cache():
    """A sweep of flows in one process must not exhaust torch's recompile limit (8 per code object), past which
    the lattice update would silently run eager, 10x slower: with the limit lowered to 1 and made an error,
    three compiled flows on different lattices still run their compiled update, and a flow at another Reynolds
    number on the same lattice agrees with an eager one."""
    if "isolate_recompiles" not in inspect.signature(torch.compile).parameters:
        pytest.skip("this torch has no isolate_recompiles: compiled flows share one cache")
    import torch._dynamo as dynamo

    with dynamo.config.patch(recompile_limit=1, fail_on_recompile_limit_hit=True):
        for resolution, reynolds in ((6, 20.0), (7, 20.0), (6, 30.0)):
            kwargs = dict(domain_x=(-2.0, 3.0), domain_y=(-2.0, 2.0))
            compiled = CylinderFlow(reynolds, resolution, 0.1, compile=True, **kwargs)
            eager = CylinderFlow(reynolds, resolution, 0.1, **kwargs)
            compiled.run(3, record=False)
            eager.run(3, record=False)
            assert torch.allclose(compiled.f, eager.f, rtol=0, atol=1e-6)


def test_re20_steady_symmetric_wake_recirculation_and_drag():
    torch.manual_seed(0)
    flow = PRESETS["coarse"].flow(20.0, compile=True)
    unit = int(flow.steps_per_unit_time)
    flow.run(30 * unit, record=False)
    drag, lift = flow.run(5 * unit)
    assert drag.std() < 1e-3 * drag.mean()  # steady
    assert lift.abs().max() < 1e-3  # no shedding
    assert drag.mean().item() == pytest.approx(2.05, rel=0.10)
    assert recirculation_length(flow) == pytest.approx(0.93, rel=0.15)
    vorticity = flow.vorticity()
    mirrored = vorticity.flip(0).roll(1, 0)  # y -> -y about the centre line (node j -> ny - j)
    assert (vorticity + mirrored).abs().max() < 1e-4 * vorticity.abs().max()


def test_re100_sheds_at_the_published_strouhal_number_and_the_data_set_round_trips(tmp_path):
    preset = dataclasses.replace(PRESETS["coarse"], n_snapshots=101)
    dataset = generate_cylinder_dataset(100.0, preset)
    strouhal = float(dataset.trajectory_parameters["strouhal"][0])
    drag = float(dataset.trajectory_parameters["mean_drag"][0])
    lift = float(dataset.trajectory_parameters["lift_amplitude"][0])
    assert strouhal == pytest.approx(0.165, rel=0.05)
    assert 1.25 <= drag <= 1.45
    assert lift == pytest.approx(0.33, rel=0.10)  # published about 0.33; measured 0.316 (the first, staircase wall: 0.357)
    assert dataset.states.shape == (1, 101, 79, 179)  # interior points of [-1, 8] x [-2, 2] at 0.05 D
    vorticity = dataset.states[0]
    assert vorticity.abs().max() > 1.0  # shear layers
    path = write_dataset(tmp_path / "cylinder.h5", dataset)
    loaded = read_dataset(path)
    assert torch.equal(loaded.states, dataset.states)
    assert torch.equal(loaded.coordinates["x"], dataset.coordinates["x"])
    assert loaded.coordinates["x"][0] == pytest.approx(-0.95) and loaded.coordinates["y"][-1] == pytest.approx(1.95)


def test_spin_up_on_a_coarser_lattice_reaches_the_same_steady_wake():
    """simulate with spin_up_resolution: the wake develops at 6 nodes per D, is carried to 10 and settles there;
    the result equals a spin-up at 10 nodes per D from the start (Re = 20: one steady state to compare)."""
    from dynlearn.systems.cylinder import simulate

    small = dict(spacing=0.25, snapshot_interval=0.2, n_snapshots=2, domain_x=(-5.0, 11.0), domain_y=(-5.0, 5.0),
                 sponge=2.0)
    direct = simulate(20.0, CylinderPreset(resolution=10, **small), compile=False, progress=False)
    staged = simulate(20.0, CylinderPreset(resolution=10, spin_up_resolution=6, **small), compile=False,
                      progress=False)
    assert float(staged.drag.mean()) == pytest.approx(float(direct.drag.mean()), rel=1e-3)
    assert [r for r, _ in staged.spin_up_stages] == [6, 10] and [r for r, _ in direct.spin_up_stages] == [10]
    assert staged.spin_up_stages[1][1] < direct.spin_up_stages[0][1]  # the fine lattice had less left to do
    assert torch.allclose(staged.vorticity, direct.vorticity, atol=1e-2 * direct.vorticity.abs().max())


@pytest.mark.gpu
def test_compiled_cuda_lattice_update_matches_the_cpu_one():
    """The GPU form of the streaming (rolls), compiled, against the CPU form (slices), eager, in float64: the
    same flow to round-off after 300 steps of a developing, asymmetric wake."""
    kwargs = dict(domain_x=(-4.0, 8.0), domain_y=(-4.0, 4.0), sponge=1.0, dtype=torch.float64)
    cpu = CylinderFlow(100.0, 8, 0.1, **kwargs)
    cuda = CylinderFlow(100.0, 8, 0.1, device="cuda", compile=True, **kwargs)
    histories = []
    for flow in (cpu, cuda):
        flow.perturb(0.5)
        histories.append(flow.run(300))
    torch.testing.assert_close(cuda.f.cpu(), cpu.f, rtol=1e-10, atol=1e-13)
    for on_cuda, on_cpu in zip(histories[1], histories[0]):
        torch.testing.assert_close(on_cuda, on_cpu, rtol=1e-9, atol=1e-12)
    assert histories[0][1].abs().max() > 1e-3  # a lift to compare
