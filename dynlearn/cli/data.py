"""Command group "data": ``dynlearn generate`` (a system's trajectories, the cylinder wake, synthetic SST),
``dynlearn import`` (your own SST files) and ``dynlearn info``. Every file is written to a temporary name and
renamed when complete; an existing file is replaced only with ``--overwrite``."""

from __future__ import annotations

import argparse
import os
from typing import Callable

from dynlearn.cli.arguments import (add_sampling_options, check_writable, default, device, output_file,
                                    positive_float, positive_int, refuse_existing, sampling_from, seed)

__all__ = ["register"]


def register(commands: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    _add_generate(commands)
    _add_import(commands)
    info = commands.add_parser("info", help="describe a dataset file", description="Validate a dataset file and "
                               "print what it holds.")
    info.add_argument("file", help="a dynlearn dataset (.h5)")
    upgrade = commands.add_parser(
        "upgrade", help="rewrite a dataset file as the current format version",
        description="Read a dataset file of an older format version (checksum verified) and rewrite it as the current "
                    "version (netCDF-4 dimension scales and CF attributes, readable by xarray; a checksum over the "
                    "metadata as well as the arrays). The file is replaced only once the new one is complete; with "
                    "--output the new file goes there and the old one is kept.")
    upgrade.add_argument("file", help="a dynlearn dataset (.h5)")
    upgrade.add_argument("--output", type=output_file, default=None, help="write here instead of replacing FILE")
    upgrade.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    return {"generate": _run_generate, "import": _run_import, "info": _run_info, "upgrade": _run_upgrade}


def _run_upgrade(arguments: argparse.Namespace) -> int:
    from dynlearn.datasets.format import FORMAT_VERSION, upgrade_dataset

    if arguments.output is not None:
        refuse_existing(arguments.output, arguments.overwrite)
    else:
        check_writable(os.path.dirname(os.path.abspath(arguments.file)))
    written, version = upgrade_dataset(arguments.file, arguments.output, overwrite=arguments.overwrite)
    if version == FORMAT_VERSION and arguments.output is None:
        print(f"{arguments.file}: already format version {FORMAT_VERSION}; left as it is")
    else:
        print(f"{arguments.file}: format version {version} read and verified; wrote {written} as format version "
              f"{FORMAT_VERSION}")
    return 0


def _system_options() -> list[tuple[str, type]]:
    from dynlearn.systems import SYSTEMS

    seen: dict[str, type] = {}
    for cls in SYSTEMS.values():
        for parameter in cls.PARAMETERS:
            seen.setdefault(parameter.name, type(parameter.default))
    return list(seen.items())


def _add_generate(commands: argparse._SubParsersAction) -> None:
    from dynlearn.datasets.generate import (generate_cylinder_dataset, generate_dataset,
                                            generate_synthetic_sst_dataset)
    from dynlearn.datasets.sampling import DEFAULT_FRACTION, IrregularSampling
    from dynlearn.systems import SYSTEMS
    from dynlearn.systems.cylinder import PRESETS

    listing = []
    for name, cls in SYSTEMS.items():
        parameters = ", ".join(f"--{p.name.replace('_', '-')} {p.default} [{p.unit}]" for p in cls.PARAMETERS)
        listing.append(f"  {name}: {(cls.__doc__ or '').strip().splitlines()[0]}\n      {parameters}")
    sst_default = lambda name: default(generate_synthetic_sst_dataset, name)  # noqa: E731
    generate = commands.add_parser(
        "generate",
        help="generate a dataset of a system's trajectories",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Sample trajectories of a system at t = k dt, k = 0..t_final/dt, from its exact solution (or, with "
            "--method numerical, from dopri5 at rtol = atol = 1e-12), and write them to an HDF5 dataset (written to a "
            "temporary name, renamed when complete)."
        ),
        epilog="systems and their parameters (defaults and units):\n" + "\n".join(listing)
        + "\n  cylinder: 2D flow past a cylinder (lattice Boltzmann), vorticity snapshots after the transient\n"
        f"      --re {default(generate_cylinder_dataset, 'reynolds'):g} [1], --preset {'|'.join(PRESETS)}, "
        "--with-velocity, --device cpu|cuda"
        "\n  sst --synthetic: SYNTHETIC daily sea-surface temperature of an idealised Gulf of Mexico\n"
        f"      --years {sst_default('years')}, --resolution {sst_default('resolution')} [degree], "
        f"--start {sst_default('start')}, --seed 0, --anomalies, --train-end\n"
        "      (real SST: dynlearn import oisst FILES...)",
    )
    generate.add_argument("system", choices=[*SYSTEMS, "cylinder", "sst"], help="which system")
    generate.add_argument("-o", "--output", type=output_file, required=True, help="dataset file to write (.h5)")
    generate.add_argument("--dt", type=positive_float, default=default(generate_dataset, "dt"),
                          help="sampling step (default: %(default)s)")
    generate.add_argument("--t-final", type=positive_float, default=default(generate_dataset, "t_final"),
                          help="final time, a multiple of dt (default: %(default)s)")
    from dynlearn.datasets.generate import DEFAULT_TRAJECTORIES

    generate.add_argument("--n-traj", type=positive_int, default=None,
                          help=f"trajectories, initial conditions sampled from the system's distribution "
                               f"(default: {DEFAULT_TRAJECTORIES})")
    generate.add_argument("--seed", type=seed, default=default(generate_dataset, "seed"),
                          help="seed of the sampled initial conditions (default: %(default)s)")
    generate.add_argument("--x0", action="append", metavar="V1,V2,...",
                          help="an initial state, comma-separated; repeat for several trajectories (replaces sampling)")
    generate.add_argument("--method", choices=["auto", "analytical", "numerical"],
                          default=default(generate_dataset, "method"),
                          help="exact solution or dopri5 reference; auto: exact where the system has one "
                               "(default: %(default)s)")
    generate.add_argument("--overwrite", action="store_true", help="replace an existing file")
    add_sampling_options(generate, kind="uniform", amount=DEFAULT_FRACTION,
                         sampling_seed=default(IrregularSampling, "seed"), what="every trajectory (dt is then nominal)")
    cylinder = generate.add_argument_group("cylinder (lattice Boltzmann wake; --dt, --t-final, --n-traj do not apply)")
    cylinder.add_argument("--re", type=positive_float, default=default(generate_cylinder_dataset, "reynolds"),
                          help="Reynolds number U D / nu (default: %(default)s)")
    cylinder.add_argument("--preset", choices=list(PRESETS), default=default(generate_cylinder_dataset, "preset"),
                          help="standard: 449 x 199 at 0.02 D (GPU); coarse: 179 x 79 at 0.05 D (CPU, minutes) "
                               "(default: %(default)s)")
    cylinder.add_argument("--with-velocity", action="store_true", help="also store the velocity (u, v)")
    cylinder.add_argument("--snapshots", type=positive_int, default=None,
                          help="number of snapshots (default: the preset's; the autoencoder recipe wants 300)")
    cylinder.add_argument("--device", type=device, default=default(generate_cylinder_dataset, "device"),
                          help="where the solver runs, e.g. cuda (default: %(default)s)")
    sst = generate.add_argument_group("sst (synthetic sea-surface temperature; --dt, --t-final, --n-traj do not apply)")
    sst.add_argument("--synthetic", action="store_true", help="required: says that the fields are synthetic")
    sst.add_argument("--years", type=positive_int, default=sst_default("years"),
                     help="calendar years of daily fields (default: %(default)s)")
    sst.add_argument("--resolution", type=positive_float, default=sst_default("resolution"),
                     help="grid spacing, degrees (default: %(default)s)")
    sst.add_argument("--start", default=sst_default("start"), help="first date (default: %(default)s)")
    _add_anomaly_options(sst)
    for name, kind in _system_options():
        generate.add_argument(f"--{name.replace('_', '-')}", dest=f"parameter_{name}", type=kind, default=None,
                              help=argparse.SUPPRESS)
    _GENERATE_DEFAULTS.update({action.dest: action.default for action in generate._actions
                               if action.dest not in ("help", "system", "output", "overwrite")})


#: generate's options and their defaults (filled when the parser is built): an option that does not apply to the
#: chosen system and differs from its default was given by the user, and is refused
_GENERATE_DEFAULTS: dict[str, object] = {}
_APPLIES = {
    "cylinder": {"re", "preset", "with_velocity", "snapshots", "device"},
    "sst": {"synthetic", "years", "resolution", "start", "anomalies", "train_end", "seed"},
    "trajectories": {"dt", "t_final", "n_traj", "x0", "method", "seed", "sampling", "sampling_fraction",
                     "sampling_seed"},
}


def _refuse_inapplicable(arguments: argparse.Namespace) -> None:
    """An option of another kind of system (``generate cylinder --dt``, ``generate pendulum --years``) is an error,
    not silently ignored."""
    applies = _APPLIES.get(arguments.system, _APPLIES["trajectories"])
    foreign = [dest for dest, value in _GENERATE_DEFAULTS.items()
               if dest not in applies and not (dest.startswith("parameter_") and arguments.system not in _APPLIES)
               and getattr(arguments, dest, value) != value]
    if foreign:
        names = ", ".join("--" + dest.removeprefix("parameter_").replace("_", "-") for dest in foreign)
        allowed = ", ".join("--" + d.replace("_", "-") for d in sorted(applies))
        raise ValueError(f"{names} {'does' if len(foreign) == 1 else 'do'} not apply to {arguments.system}; options "
                         f"of {arguments.system}: {allowed}" + ("" if arguments.system in _APPLIES else " and its parameters"))


def _add_anomaly_options(group: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    group.add_argument("--anomalies", choices=["none", "climatology", "mean"], default="none",
                       help="store anomalies from a per-cell annual-cycle fit (climatology) or mean, scaled by their "
                            "standard deviation, fitted on the dates up to --train-end only (default: none, degrees C)")
    group.add_argument("--train-end", default=None, metavar="DATE",
                       help="last date of the training period, e.g. 2016-12-31 (required with --anomalies)")


def _add_import(commands: argparse._SubParsersAction) -> None:
    from dynlearn.datasets.sst import REGIONS

    importer = commands.add_parser(
        "import",
        help="make a dataset of real data files (NOAA OISST, other gridded SST)",
        description="Read NOAA OISST v2 daily files (sst.day.mean.YYYY.nc: 'oisst', checked to be OISST and to join "
                    "into consecutive days) or other CF gridded SST files ('sst': COADS, OSTIA, ...), select a region, "
                    "build the land mask, convert to degrees C and write a dataset (temporary name, renamed when "
                    "complete). dynlearn downloads nothing: the files are yours.",
    )
    importer.add_argument("source", choices=["oisst", "sst"], help="oisst: NOAA OI SST v2 daily; sst: any CF gridded SST")
    importer.add_argument("files", nargs="+", help="netCDF files (netCDF-4 or netCDF-3), joined in time")
    importer.add_argument("-o", "--output", type=output_file, required=True, help="dataset file to write (.h5)")
    importer.add_argument("--region", default="gulf",
                          help=f"one of {', '.join(REGIONS)} (gulf: 18..31 N, 98..80 W; default: %(default)s)")
    importer.add_argument("--variable", default=None, help="the SST variable of an 'sst' file (default: found by name)")
    importer.add_argument("--allow-gaps", action="store_true", help="join files with missing days between them")
    importer.add_argument("--overwrite", action="store_true", help="replace an existing file")
    _add_anomaly_options(importer)


def _write_sst(arguments: argparse.Namespace, dataset) -> int:
    from dynlearn.datasets import write_dataset
    from dynlearn.datasets.climatology import check_training_end, normalise_dataset

    if arguments.anomalies != "none":  # the CLI's datasets are for training: some dates must stay held out
        check_training_end(arguments.train_end, dataset.parameters["first_date"], dataset.parameters["last_date"])
        dataset = normalise_dataset(dataset, train_end=arguments.train_end, method=arguments.anomalies)
    path = write_dataset(arguments.output, dataset, overwrite=arguments.overwrite)
    ocean = int((dataset.fields["land_mask"] < 0.5).sum())
    print(f"wrote {path}: {dataset.n_times} {dataset.parameters['time_unit']}s "
          f"({dataset.parameters['first_date'][:10]} .. {dataset.parameters['last_date'][:10]}) of "
          f"{dataset.state_shape[0]} x {dataset.state_shape[1]} cells, {ocean} ocean; "
          f"{dataset.parameters['units']}")
    return 0


def _check_sst_output(arguments: argparse.Namespace) -> None:
    refuse_existing(arguments.output, arguments.overwrite)
    if arguments.anomalies != "none" and arguments.train_end is None:
        raise ValueError("--anomalies needs --train-end DATE: the statistics come from the training dates only")
    if arguments.anomalies == "none" and arguments.train_end is not None:
        raise ValueError("--train-end applies with --anomalies climatology|mean (the dates the statistics come from)")


def _run_import(arguments: argparse.Namespace) -> int:
    from dynlearn.datasets.sst import REGIONS, read_oisst, read_sst

    _check_sst_output(arguments)
    if arguments.region not in REGIONS:
        raise ValueError(f"--region must be one of {sorted(REGIONS)}, got {arguments.region!r}")
    if arguments.source == "oisst":
        if arguments.variable is not None:
            raise ValueError("--variable applies to 'sst' files; OISST's variable is 'sst'")
        record = read_oisst(arguments.files, region=arguments.region, allow_gaps=arguments.allow_gaps)
    else:
        record = read_sst(arguments.files, region=arguments.region, variable=arguments.variable,
                          allow_gaps=arguments.allow_gaps)
    if record.n_intermittent:
        print(f"note: {record.n_intermittent} cells are missing at some dates only; they are masked with the land")
    return _write_sst(arguments, record.to_dataset())


def _run_generate(arguments: argparse.Namespace) -> int:
    import torch

    from dynlearn.datasets import generate_cylinder_dataset, generate_dataset, write_dataset
    from dynlearn.datasets.sampling import DEFAULT_FRACTION, IrregularSampling
    from dynlearn.systems import SYSTEMS, make_system

    _refuse_inapplicable(arguments)
    if arguments.system == "sst":
        if not arguments.synthetic:
            raise ValueError("generate sst makes SYNTHETIC fields only: pass --synthetic; real sea-surface temperature "
                             "comes from your NOAA OISST files: dynlearn import oisst FILES... -o sst.h5")
        _check_sst_output(arguments)
        from dynlearn.datasets.climatology import check_training_end
        from dynlearn.datasets.generate import generate_synthetic_sst_dataset, synthetic_sst_dates

        if arguments.train_end is not None:  # before the fields are made, not after
            check_training_end(arguments.train_end, *synthetic_sst_dates(arguments.start, arguments.years))
        dataset = generate_synthetic_sst_dataset(years=arguments.years, resolution=arguments.resolution,
                                                 seed=arguments.seed, start=arguments.start, progress=True)
        print("SYNTHETIC sea-surface temperature (an idealised Gulf of Mexico), not observations")
        return _write_sst(arguments, dataset)

    if arguments.system == "cylinder":
        refuse_existing(arguments.output, arguments.overwrite)
        # simulate checks Re and every lattice's stability limit before any work (the error names the remedy)
        dataset = generate_cylinder_dataset(arguments.re, arguments.preset, velocity=arguments.with_velocity,
                                            n_snapshots=arguments.snapshots, device=arguments.device, progress=True)
        path = write_dataset(arguments.output, dataset, overwrite=arguments.overwrite)
        strouhal = float(dataset.trajectory_parameters["strouhal"][0])
        print(f"wrote {path}: {dataset.n_times} snapshots of {dataset.state_shape} (Re = {arguments.re:g}, "
              f"St = {strouhal:.4f}, mean drag {float(dataset.trajectory_parameters['mean_drag'][0]):.3f})")
        return 0

    accepted = {p.name for p in SYSTEMS[arguments.system].PARAMETERS}
    given = {key[len("parameter_"):]: value for key, value in vars(arguments).items()
             if key.startswith("parameter_") and value is not None}
    foreign = sorted(set(given) - accepted)
    if foreign:
        raise ValueError(f"{arguments.system} has no parameter {', '.join('--' + f.replace('_', '-') for f in foreign)};"
                         f" its parameters: {', '.join('--' + a.replace('_', '-') for a in sorted(accepted))}")
    refuse_existing(arguments.output, arguments.overwrite)
    system = make_system(arguments.system, **given)
    initial = None
    if arguments.x0:
        try:
            initial = torch.tensor([[float(v) for v in state.split(",")] for state in arguments.x0], dtype=torch.float64)
        except ValueError:
            raise ValueError(f"--x0 must be comma-separated numbers, got {arguments.x0}") from None
    sampling = sampling_from(arguments, amount=DEFAULT_FRACTION,
                             sampling_seed=default(IrregularSampling, "seed"))
    dataset = generate_dataset(system, dt=arguments.dt, t_final=arguments.t_final, n_trajectories=arguments.n_traj,
                               initial_conditions=initial, seed=arguments.seed, method=arguments.method,
                               sampling=sampling, progress=True)
    path = write_dataset(arguments.output, dataset, overwrite=arguments.overwrite)
    times = f"dt = {dataset.dt:g}" if sampling is None else sampling.describe(dataset.dt)
    print(f"wrote {path}: {dataset.n_trajectories} trajectories x {dataset.n_times} times of {system.name} "
          f"({times}, state {dataset.state_shape})")
    return 0


def _run_info(arguments: argparse.Namespace) -> int:
    from dynlearn.datasets import read_dataset

    dataset = read_dataset(arguments.file)
    attributes = dataset.attributes
    names = dataset.state_names
    shown = ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")
    version = int(attributes["format_version"])
    if version == 1:
        verified = ("checksum of times, initial conditions, states and fields verified; version 1's checksum does "
                    "not cover the metadata, coordinates or trajectory parameters: `dynlearn upgrade FILE` rewrites "
                    "it as version 2")
    else:
        verified = ("checksum verified over the states, times, initial conditions, "
                    f"{len(dataset.coordinates)} coordinates, {len(dataset.trajectory_parameters)} trajectory "
                    f"parameters, {len(dataset.fields)} fields and the metadata (system, parameters, state names and "
                    f"dimensions, units, generator, sampling, t0, dt, seed)")
    print(f"{arguments.file}: dynlearn dataset, format version {version} (read and validated; {verified})")
    print(f"  system      {dataset.system}  {dataset.parameters}")
    print(f"  states      {dataset.n_trajectories} trajectories x {dataset.n_times} times x {dataset.state_shape} "
          f"({', '.join(dataset.dimension_names())}): {shown}")
    if dataset.is_uniform:
        print(f"  time        t0 = {dataset.t0:g}, dt = {dataset.dt:g}, {dataset.n_steps} steps to "
              f"t = {float(dataset.times[-1]):g}")
    else:
        observed = dataset.observed
        steps = dataset.step_sizes()
        spread = (f"steps between samples from {float(steps.min()):.4g} to {float(steps.max()):.4g}, mean "
                  f"{float(steps.mean()):.4g}" if steps.numel() else "no trajectory has two samples")
        print(f"  time        irregular: {dataset.sampling}; t0 = {dataset.t0:g}, nominal dt = {dataset.dt:g}; "
              f"{int(observed.sum())} samples present of {observed.numel()}; {spread}")
    print(f"  generator   {dataset.generator}")
    origin = f"sampled, seed {dataset.seed}" if dataset.seed is not None else "given"
    print(f"  initial     {origin}")
    for name, values in dataset.trajectory_parameters.items():
        print(f"  {name:<11} min {float(values.min()):.6g}, max {float(values.max()):.6g}")
    for name, values in dataset.coordinates.items():
        print(f"  coordinate  {name}: {values.numel()} values in [{float(values.min()):.6g}, {float(values.max()):.6g}]")
    for name, values in dataset.fields.items():
        print(f"  field       {name}: shape {tuple(values.shape)}")
    print(f"  range       states in [{float(dataset.states.min()):.6g}, {float(dataset.states.max()):.6g}]")
    print(f"  created     {attributes.get('created')} by dynlearn {attributes.get('dynlearn_version')}, "
          f"torch {attributes.get('torch_version')}, h5py {attributes.get('h5py_version')}")
    return 0
