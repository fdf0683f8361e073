"""Generating a dataset of a system's trajectories on a uniform time grid.

Analytical datasets evaluate the system's exact solution at t_k = k*dt (no time stepping at all). Numerical
ones use the system's :meth:`~dynlearn.systems.System.numerical_solution`: torchdiffeq's dopri5 on the
vector field, stepping to every output time, at rtol = atol = 1e-12 per step (agreement with the exact
pendulum solutions: about 1e-10 over 5 s); for the wave equation, the method of lines exact in time.
"""

from __future__ import annotations

import dataclasses
import math

from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from dynlearn._checks import as_flag, as_integer, check_allocation, count_text, steps_in
from dynlearn.integration.rollout import time_grid
from dynlearn.systems.base import System

from .format import TrajectoryDataset
from .sampling import IrregularSampling

if TYPE_CHECKING:  # pragma: no cover
    from dynlearn.systems.cylinder import CylinderPreset

__all__ = ["generate_dataset", "generate_cylinder_dataset", "generate_synthetic_sst_dataset", "synthetic_sst_dates"]
_BATCH = 64  # trajectories integrated together by the numerical generator


#: trajectories sampled when neither a number nor initial conditions are given (the API's and the CLI's default)
DEFAULT_TRAJECTORIES = 10


def generate_dataset(
    system: System,
    *,
    dt: float = 0.05,
    t_final: float = 50.0,
    n_trajectories: int | None = None,
    initial_conditions: torch.Tensor | None = None,
    seed: int = 0,
    method: Literal["auto", "analytical", "numerical"] = "auto",
    sampling: IrregularSampling | None = None,
    progress: bool = False,
) -> TrajectoryDataset:
    """Trajectories of ``system`` from t = 0 to ``t_final`` sampled every ``dt`` (which must divide t_final).

    Initial conditions are ``initial_conditions`` ``(n, *state_shape)`` when given, otherwise ``n_trajectories``
    (default ``DEFAULT_TRAJECTORIES``, 10) draws from the system's documented distribution with a generator seeded by
    ``seed``. Everything is checked before any work: a bad dt, an initial state of the wrong shape or one the exact
    solution does not cover (a pendulum on its separatrix) fail with a clear message.

    ``sampling``: irregular sample times instead of the grid (:class:`~dynlearn.datasets.sampling.IrregularSampling`:
    jittered, random steps, gaps, Poisson times; ``dt`` is then their nominal step). The solution is evaluated at
    every trajectory's own times (exactly, for the analytical method: at the union of all sample times, each
    trajectory then taking its own), and the dataset records how the times were drawn (``sampling``).
    """
    if method not in ("auto", "analytical", "numerical"):
        raise ValueError(f"method must be 'auto', 'analytical' or 'numerical', got {method!r}")
    if method == "auto":  # the exact solution where the system has one, else the tight numerical reference
        method = "analytical" if system.has_solution else "numerical"
    if sampling is not None and not isinstance(sampling, IrregularSampling):
        raise TypeError(f"sampling must be an IrregularSampling or None, got {type(sampling).__name__}")
    n_steps = steps_in(t_final, dt)
    n = (DEFAULT_TRAJECTORIES if n_trajectories is None else n_trajectories) if initial_conditions is None else (
        len(initial_conditions))
    # the states, float64, and the copies computing and writing them make: refused before any work when too large
    check_allocation(f"{system.name}: {count_text(n)} trajectories x {count_text(n_steps + 1)} times",
                     3 * 8.0 * n * (n_steps + 1) * math.prod(system.state_shape),
                     "ask for fewer trajectories, a larger dt, a shorter t_final or a smaller state")
    times = time_grid(0.0, dt, n_steps)
    sample_times = None
    if sampling is not None:  # the solution at the union of every trajectory's times, each then taking its own
        sample_times = sampling.draw(n, dt, t_final)
        present = torch.isfinite(sample_times)
        times = torch.unique(sample_times[present]) if sample_times.ndim == 2 else sample_times
        check_allocation(f"{system.name}: {count_text(n)} trajectories x {count_text(times.numel())} sample times",
                         3 * 8.0 * n * times.numel() * math.prod(system.state_shape),
                         "ask for fewer trajectories, a larger dt, a shorter t_final or a smaller state")
    generator = torch.Generator().manual_seed(int(seed))
    if initial_conditions is not None:
        initial_conditions = system.check_state(torch.as_tensor(initial_conditions, dtype=torch.float64),
                                                "initial_conditions")
        if initial_conditions.ndim != 1 + len(system.state_shape):
            raise ValueError(
                f"{system.name}: initial_conditions must have shape (n, {', '.join(map(str, system.state_shape))}), "
                f"got {tuple(initial_conditions.shape)}"
            )
        if n_trajectories is not None and n_trajectories != initial_conditions.shape[0]:
            raise ValueError(
                f"n_trajectories = {n_trajectories} but {initial_conditions.shape[0]} initial conditions were given"
            )
        if not bool(torch.isfinite(initial_conditions).all()):
            raise ValueError(f"{system.name}: initial_conditions contain NaN or inf")
        n = initial_conditions.shape[0]
    else:
        n = DEFAULT_TRAJECTORIES if n_trajectories is None else n_trajectories
        as_integer("n_trajectories", n)

    if method == "analytical":
        if not system.has_solution:
            raise ValueError(f"{system.name} has no analytical solution; use method='numerical'")
        with np.errstate(all="ignore"):  # an overflow gives inf or NaN, refused below with its cause
            x0, states = system.analytical_trajectories(times, initial_conditions, n, generator)
        details = {"kind": "analytical", **system.analytical_details()}
    else:
        from dynlearn.progress import progress as progress_display

        x0 = system.sample_initial_conditions(n, generator) if initial_conditions is None else initial_conditions
        pieces = []
        batches = range(0, n, _BATCH)
        for start in progress_display(batches, total=len(batches), description=f"{system.name}: integrating",
                                      enabled=progress):
            batch = x0[start : start + _BATCH]
            pieces.append(system.numerical_solution(batch, times).movedim(0, 1))
        states = torch.cat(pieces)
        details = {"kind": "numerical", **system.numerical_details()}
    states = states.to(torch.float64).contiguous()
    if initial_conditions is not None:  # the solution must start where it was asked to (to 0.1 %: a state a few
        # digits off a constraint is mapped onto it), and be finite
        start = initial_conditions.to(torch.float64)
        if not bool(torch.isfinite(states).all()) or not torch.allclose(states[:, 0], start, rtol=1e-3, atol=1e-9):
            gap = torch.nan_to_num((states[:, 0] - start).abs(), nan=math.inf).reshape(n, -1).amax(dim=1)
            worst = int(torch.argmax(gap))
            raise ValueError(f"{system.name}: the solution from the initial state {start[worst].tolist()} starts at "
                             f"{states[worst, 0].tolist()} or is not finite: the system maps that state elsewhere "
                             f"(off its constraint, or too large for float64 arithmetic); give a state it takes as is")
    if not bool(torch.isfinite(states).all()):
        raise ValueError(f"{system.name}: the solution is not finite (NaN or inf) with parameters {system.parameters()}:"
                         f" too large for float64 arithmetic; choose smaller parameters or states")
    extra: dict = {}
    if sampling is not None and sample_times is not None:
        if sample_times.ndim == 2:  # each trajectory takes its own times from the union's
            index = torch.searchsorted(times, torch.nan_to_num(sample_times, nan=0.0))
            states = torch.gather(states, 1, index.reshape(*index.shape, *[1] * len(system.state_shape)).expand(
                -1, -1, *system.state_shape))
            states[~present] = torch.nan
        states[sampling.missing(n, states.shape[1])] = torch.nan
        times = sample_times
        extra["sampling"] = sampling.to_dict(float(dt))
    return TrajectoryDataset(
        states=states,
        times=times,
        initial_conditions=states[:, 0].clone(),
        system=system.name,
        parameters=system.parameters(),
        state_names=system.state_names,
        generator=details,
        t0=0.0,
        dt=float(dt),
        seed=int(seed) if initial_conditions is None else None,
        trajectory_parameters=system.trajectory_parameters(x0.to(torch.float64)),
        **extra,
    )


def generate_cylinder_dataset(
    reynolds: float = 100.0,
    preset: "str | CylinderPreset" = "coarse",
    *,
    velocity: bool = False,
    n_snapshots: int | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> TrajectoryDataset:
    """The cylinder-wake data set: vorticity snapshots (and velocity with ``velocity=True``) on the preset's
    window grid after the start-up transient, from :func:`dynlearn.systems.cylinder.simulate`; ``n_snapshots``
    overrides the preset's count (the autoencoder's recipe wants a longer record: 300). The lift amplitude is
    the mean over the sampled shedding cycles of half their peak-to-peak lift (0 for a steady
    wake, NaN when the record holds no whole cycle).

    States are ``(1, n_snapshots, ny, nx)`` (vorticity, U/D) or ``(1, n_snapshots, 3, ny, nx)`` (vorticity,
    u, v); t = 0 is the first snapshot after the transient; coordinates ``x`` and ``y`` in D. The Strouhal
    number, mean drag and lift amplitude measured while sampling are stored as trajectory parameters.
    """
    from dynlearn.systems.cylinder import PRESETS, CylinderPreset, shedding_cycles, simulate, strouhal_number

    if isinstance(preset, CylinderPreset):
        settings = preset
    elif preset in PRESETS:
        settings = PRESETS[preset]
    else:
        raise ValueError(f"cylinder: preset must be one of {sorted(PRESETS)} or a CylinderPreset, got {preset!r}")
    velocity = as_flag("velocity", velocity)
    if n_snapshots is not None:
        as_integer("cylinder: n_snapshots", n_snapshots, minimum=2)
        settings = dataclasses.replace(settings, n_snapshots=n_snapshots)
    result = simulate(reynolds, settings, velocity=velocity, device=device, progress=progress)
    if velocity:
        states = torch.cat([result.vorticity[:, None], result.velocity], dim=1)[None]
        names: tuple[str, ...] = ("vorticity", "u", "v")
    else:
        states = result.vorticity[None]
        names = ("vorticity",)
    strouhal = strouhal_number(result.force_times.numpy(), result.lift.numpy()) if result.lift.numel() else float("nan")
    cycles = shedding_cycles(result.force_times.numpy(), result.lift.numpy()) if result.lift.numel() else None
    if cycles is not None and len(cycles):
        lift_amplitude = float(cycles.amplitudes.mean())
    elif result.lift.numel() and float(result.lift.max() - result.lift.min()) < 2e-3:
        lift_amplitude = 0.0  # a steady wake
    else:
        lift_amplitude = float("nan")  # no whole shedding cycle was sampled
    parameters = {
        "strouhal": torch.tensor([strouhal], dtype=torch.float64),
        "mean_drag": torch.tensor([float(result.drag.mean()) if result.drag.numel() else float("nan")],
                                  dtype=torch.float64),
        "lift_amplitude": torch.tensor([lift_amplitude], dtype=torch.float64),
        "spin_up_time": torch.tensor([result.spin_up_time], dtype=torch.float64),
    }
    return TrajectoryDataset(
        states=states.contiguous(),
        times=result.times,
        initial_conditions=states[:, 0].clone(),
        system="cylinder",
        parameters={"reynolds": float(reynolds), "preset": preset if isinstance(preset, str) else "custom",
                    "spacing": settings.spacing},
        state_names=names,
        generator={
            "kind": "numerical",
            "method": "lattice Boltzmann D2Q9, TRT collision (Lambda = 1/4), "
                      + ("interpolated bounce-back (Bouzidi linear)" if settings.boundary == "interpolated"
                         else "full-way bounce-back on a staircase")
                      + ", equilibrium inlet, zero-gradient outlet, periodic sides"
                      + (f", absorbing layers {settings.sponge:g} D thick along the four sides" if settings.sponge else ""),
            "resolution": settings.resolution,
            "lattice_velocity": settings.lattice_velocity,
            "domain": {"x": list(settings.domain_x), "y": list(settings.domain_y)},
            "sponge": settings.sponge,
            "boundary": settings.boundary,
            "spin_up_time": result.spin_up_time,
            "spin_up_stages": [{"resolution": r, "time": t} for r, t in result.spin_up_stages],
        },
        t0=0.0,
        dt=settings.snapshot_interval,
        seed=None,
        trajectory_parameters=parameters,
        coordinates={"x": result.x, "y": result.y},
        state_dimensions=("channel", "y", "x") if states.ndim == 5 else ("y", "x"),
        units={"time": "1", "x": "1", "y": "1", "states": "1", "strouhal": "1", "mean_drag": "1",
               "lift_amplitude": "1", "spin_up_time": "1"},
    )


def synthetic_sst_dates(start: str = "2012-01-01", years: int = 6) -> "tuple[np.datetime64, np.datetime64]":
    """The first and last day (numpy datetime64[D], both included) of ``years`` calendar years of daily fields
    from ``start``: 2012-01-01 and 6 years give 2012-01-01 .. 2017-12-31."""
    as_integer("synthetic SST: years", years)
    try:
        first = np.datetime64(start, "D")
    except ValueError:
        raise ValueError(f"synthetic SST: start must be a date such as '2012-01-01', got {start!r}") from None
    end = (first.astype("datetime64[Y]") + np.timedelta64(years, "Y")).astype("datetime64[D]") + (
        first - first.astype("datetime64[Y]").astype("datetime64[D]"))
    return first, end - np.timedelta64(1, "D")


def generate_synthetic_sst_dataset(
    *,
    years: int = 6,
    resolution: float = 0.25,
    seed: int = 0,
    start: str = "2012-01-01",
    spin_up_days: int = 365,
    progress: bool = False,
) -> TrajectoryDataset:
    """SYNTHETIC daily sea-surface temperature of an idealised Gulf of Mexico
    (:class:`dynlearn.systems.sea_surface.SyntheticSeaSurface`): ``years`` calendar years from ``start`` on a
    ``resolution``-degree grid, in the layout of :meth:`dynlearn.datasets.sst.SeaSurfaceTemperature.to_dataset`
    (states ``(1, n_days, n_lat, n_lon)`` in degrees Celsius, land 0 beside the ``land_mask`` field). The file
    says plainly that it is synthetic (generator kind "synthetic")."""
    import dataclasses

    from dynlearn.systems.sea_surface import SyntheticSeaSurface

    from .sst import REGIONS, SeaSurfaceTemperature

    first, last = synthetic_sst_dates(start, years)
    generator = SyntheticSeaSurface(resolution=resolution, seed=seed)
    days = int((last - first).astype(int)) + 1
    check_allocation(f"synthetic SST: {years} years of {generator.latitude.size} x {generator.longitude.size} cells",
                     3 * 8.0 * (days + spin_up_days) * generator.latitude.size * generator.longitude.size,
                     "ask for fewer --years or a coarser --resolution")
    fields = generator.generate(days, spin_up_days=spin_up_days, start=str(first),
                                progress=progress)
    record = SeaSurfaceTemperature(
        temperature=fields["temperature"], latitude=fields["latitude"], longitude=fields["longitude"],
        dates=fields["dates"], time_step="day", mask=fields["mask"], region=REGIONS["gulf"], sources=(),
        description="SYNTHETIC sea-surface temperature (idealised Gulf of Mexico), not observations")
    dataset = record.to_dataset()
    return dataclasses.replace(
        dataset,
        parameters={**dataset.parameters, "synthetic": True, "resolution": float(resolution)},
        generator={"kind": "synthetic", "method": "SYNTHETIC: advection-diffusion of temperature by a meandering "
                   "Loop Current and shed eddies, relaxed to a seasonal equilibrium, with synoptic forcing "
                   "(dynlearn.systems.sea_surface); upwind fluxes, ssprk3",
                   "steps_per_day": fields["steps_per_day"], "spin_up_days": spin_up_days,
                   "settings": fields["settings"]},
        seed=None,
        trajectory_parameters={},
    )
