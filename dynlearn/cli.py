"""The ``dynlearn`` command line.

    dynlearn study SYSTEM [-o FOLDER]         the learned-integrator experiment (the main job)
    dynlearn study --data FILE [-o FOLDER]    the same on a recorded field (cylinder wake, SST), in POD modes
    dynlearn demo [-o FOLDER]                 convergence of every explicit scheme on the oscillator
    dynlearn schemes                          the registered Butcher tableaus
    dynlearn generate SYSTEM [...] -o FILE    a dataset of a system's trajectories (HDF5)
    dynlearn info FILE                        what a dataset file holds

Sub-commands import what they need when they run, so ``dynlearn --help`` stays fast and the core imports
nothing of the sub-packages.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

__all__ = ["main", "build_parser"]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number > 0")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive integer")
    return value


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="dynlearn", description="Learning the dynamics of physical systems from data."
    )
    parser.add_argument("--version", action="version", version=f"dynlearn {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    demo = commands.add_parser(
        "demo",
        help="convergence demonstration: every explicit scheme on the harmonic oscillator",
        description=(
            "Integrate u'' = -omega^2 u from (1, 0) to t = T with every registered explicit scheme over a ladder "
            "of step sizes (float64), fit the observed orders against the exact solution, print the table and "
            "write convergence.txt, convergence.json and convergence.png. Exits with status 1 if an observed "
            "order is more than 0.2 from theory."
        ),
    )
    demo.add_argument("-o", "--output", default="dynlearn-demo", help="output folder (default: %(default)s)")
    demo.add_argument("--schemes", nargs="+", metavar="NAME", help="schemes to test (default: all explicit ones)")
    demo.add_argument("--t-final", type=_positive_float, default=2.0, help="final time T (default: %(default)s)")
    demo.add_argument(
        "--frequency", type=_positive_float, default=1.0, help="omega, radians per unit time (default: %(default)s)"
    )
    demo.add_argument(
        "--coarsest-steps", type=_positive_int, default=10,
        help="steps of the coarsest rung; the ladder doubles it 7 times (default: %(default)s)",
    )

    commands.add_parser("schemes", help="list the registered Butcher tableaus", description="List the registered "
                        "Butcher tableaus with their order, stages and evaluations of f per fixed step.")
    study = commands.add_parser(
        "study",
        help="the learned-integrator experiment: continuous model or discrete map?",
        description=(
            "Train a vector field G inside euler, midpoint, rk4 and midpoint+rk4 on exact data of SYSTEM, evaluate "
            "every G in every scheme over a ladder of dt around the training dt, judge each (continuous / discrete), "
            "reconstruct the operators of linear models, and write report.md, results.json and convergence_grid.png. "
            "With --data FILE instead of SYSTEM: a recorded field (dynlearn generate cylinder, dynlearn import sst) "
            "reduced to its leading POD modes, linear and MLP fields trained in euler, midpoint and rk4 on the first "
            "two thirds, every one judged against the held-out record."
        ),
    )
    study.add_argument("system", choices=["pendulum", "pendulum-xy", "oscillator", "wave"], nargs="?",
                       default=None, help="which system (default: pendulum)")
    study.add_argument("-o", "--output", default=None,
                       help="output folder (default: dynlearn-study-SYSTEM, or dynlearn-study-FILE's name with --data)")
    study.add_argument("--iterations", type=_positive_int, default=None,
                       help="training iterations per model (default: the recipe's, 8000, or 3000 with --data; the "
                            "original study used 50000)")
    study.add_argument("--seeds", type=int, nargs="+", default=[0], help="train every model once per seed (default: 0)")
    study.add_argument("--neural-ode", action="store_true",
                       help="add a G trained through an adaptive solver (torchdiffeq dopri5), the continuous reference")
    study.add_argument("--device", default="cpu", help="where training runs, e.g. cuda (default: %(default)s)")
    recorded = study.add_argument_group("recorded data (--data)")
    recorded.add_argument("--data", default=None, help="a one-trajectory field dataset file, instead of SYSTEM")
    recorded.add_argument("--modes", type=_positive_int, default=None, help="POD modes kept (default: 4)")
    recorded.add_argument("--stride", type=_positive_int, default=None,
                          help="dt_train = STRIDE x the record's dt, a power of two (default: 1)")
    recorded.add_argument("--horizon", type=_positive_int, default=None,
                          help="evaluate over at most this many training steps of the held-out record (default: 64)")
    _add_generate(commands)
    _add_import(commands)
    trainer = commands.add_parser(
        "train", help="train a model on a dataset file",
        description="autoencoder: the physics-aware autoencoder (Lyapunov prior) and its physics-agnostic baselines "
                    "(kappa = 0, with and without weight decay) on a cylinder-wake or sea-surface temperature dataset; "
                    "an existing run with the same settings resumes.")
    trainer.add_argument("model", choices=["autoencoder", "continuousnet"], help="what to train")
    trainer.add_argument("--data", required=True,
                         help="autoencoder: a dataset file (dynlearn generate cylinder|sst, dynlearn import); "
                              "continuousnet: digits, fashion-mnist, or a folder of Fashion-MNIST IDX or CIFAR binary files")
    trainer.add_argument("-o", "--output", required=True, help="run folder")
    network = trainer.add_argument_group("continuousnet")
    network.add_argument("--scheme", default="euler", help="explicit scheme of the OdeBlocks (default: euler)")
    network.add_argument("--n-steps", type=_positive_int, default=None, help="steps per block (default: --pieces)")
    network.add_argument("--pieces", type=_positive_int, default=4, help="basis functions per block (default: 4)")
    network.add_argument("--basis", default="piecewise_constant",
                         choices=["piecewise_constant", "piecewise_linear", "legendre"], help="basis in depth")
    network.add_argument("--widths", type=_positive_int, nargs="+", default=[16, 32, 64], help="channels per stage")
    network.add_argument("--batch-size", type=_positive_int, default=128)
    network.add_argument("--learning-rate", type=float, default=0.1)
    network.add_argument("--refine-at", type=_positive_int, nargs="*", default=[],
                         help="epochs at which steps and pieces double (incremental in depth)")
    network.add_argument("--compile", nargs="?", const="default", default=None, metavar="MODE",
                         choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"],
                         help="torch.compile the network (MODE: default; reduce-overhead adds CUDA graphs, "
                              "about 5x the compiled training speed of a small ContinuousNet on an H100)")
    network.add_argument("--no-augment", action="store_true", help="no random crops and flips")
    network.add_argument("--allow-pickle", action="store_true", help="read python-pickle CIFAR files (runs their code)")
    trainer.add_argument("--recipe", choices=["cylinder", "sst"], default=None,
                         help="settings per dataset (default: from the dataset's system)")
    trainer.add_argument("--kappa", type=float, default=None, help="weight of the Lyapunov prior (default: the recipe's)")
    trainer.add_argument("--steps", type=_positive_int, default=None,
                         help="S, prediction steps in the autoencoder's loss (default: 2, the original objective; 8 "
                              "predicts the cylinder wake far better, see README)")
    trainer.add_argument("--epochs", type=_positive_int, default=None,
                         help="epochs (default: the autoencoder recipe's; 30 for continuousnet)")
    trainer.add_argument("--models", nargs="+", default=["aware", "agnostic", "agnostic-decay"],
                         choices=["aware", "agnostic", "agnostic-decay"], help="which models (default: all three)")
    trainer.add_argument("--seed", type=int, default=0, help="seed of initialisation and minibatches (default: 0)")
    trainer.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    trainer.add_argument("--overwrite", action="store_true", help="replace a run with other settings")
    evaluator = commands.add_parser(
        "evaluate", help="evaluate a trained run",
        description="Relative error of long predictions from initial conditions in the test part, eigenvalues of "
                    "Omega, negative eigenvalues of P: RUN/evaluation/{table.md,results.json,relative_error.png,"
                    "eigenvalues.png}.")
    evaluator.add_argument("run", help="run folder made by dynlearn train autoencoder")
    evaluator.add_argument("--data", default=None, help="the dataset, if it moved since training")
    manifester = commands.add_parser(
        "manifest", help="re-manifest a trained ContinuousNet with another scheme or number of steps",
        description="Load a ContinuousNet checkpoint, rebuild it with each requested scheme and number of steps "
                    "(same weights, no data needed), and with --eval print test accuracy and inference time of each.")
    manifester.add_argument("checkpoint", help="model.pt written by dynlearn train continuousnet")
    manifester.add_argument("--scheme", nargs="+", default=None, help="schemes (default: the trained one)")
    manifester.add_argument("--n-steps", type=_positive_int, nargs="+", default=None, help="steps (default: the trained)")
    manifester.add_argument("--eval", default=None, metavar="DATA", help="digits, fashion-mnist or a data folder")
    manifester.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    info = commands.add_parser("info", help="describe a dataset file", description="Validate a dataset file and "
                               "print what it holds.")
    info.add_argument("file", help="a dynlearn dataset (.h5)")
    return parser


def _system_options() -> list[tuple[str, type]]:
    from .systems import SYSTEMS

    seen: dict[str, type] = {}
    for cls in SYSTEMS.values():
        for parameter in cls.PARAMETERS:
            seen.setdefault(parameter.name, type(parameter.default))
    return list(seen.items())


def _add_generate(commands) -> None:
    from .systems import SYSTEMS

    listing = []
    for name, cls in SYSTEMS.items():
        parameters = ", ".join(f"--{p.name.replace('_', '-')} {p.default} [{p.unit}]" for p in cls.PARAMETERS)
        listing.append(f"  {name}: {(cls.__doc__ or '').strip().splitlines()[0]}\n      {parameters}")
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
        "      --re 100 [1], --preset standard|coarse, --with-velocity, --device cpu|cuda"
        "\n  sst --synthetic: SYNTHETIC daily sea-surface temperature of an idealised Gulf of Mexico\n"
        "      --years 6, --resolution 0.25 [degree], --start 2012-01-01, --seed 0, --anomalies, --train-end\n"
        "      (real SST: dynlearn import oisst FILES...)",
    )
    generate.add_argument("system", choices=[*SYSTEMS, "cylinder", "sst"], help="which system")
    generate.add_argument("-o", "--output", required=True, help="dataset file to write (.h5)")
    generate.add_argument("--dt", type=_positive_float, default=0.05, help="sampling step (default: %(default)s)")
    generate.add_argument("--t-final", type=_positive_float, default=50.0,
                          help="final time, a multiple of dt (default: %(default)s)")
    generate.add_argument("--n-traj", type=_positive_int, default=None,
                          help="trajectories, initial conditions sampled from the system's distribution (default: 10)")
    generate.add_argument("--seed", type=int, default=0, help="seed of the sampled initial conditions (default: 0)")
    generate.add_argument("--x0", action="append", metavar="V1,V2,...",
                          help="an initial state, comma-separated; repeat for several trajectories (replaces sampling)")
    generate.add_argument("--method", choices=["analytical", "numerical"], default="analytical",
                          help="exact solution or dopri5 reference (default: %(default)s)")
    generate.add_argument("--overwrite", action="store_true", help="replace an existing file")
    cylinder = generate.add_argument_group("cylinder (lattice Boltzmann wake; --dt, --t-final, --n-traj do not apply)")
    cylinder.add_argument("--re", type=_positive_float, default=100.0, help="Reynolds number U D / nu (default: 100)")
    cylinder.add_argument("--preset", choices=["standard", "coarse"], default="standard",
                          help="standard: 449 x 199 at 0.02 D (GPU); coarse: 179 x 79 at 0.05 D (CPU, minutes)")
    cylinder.add_argument("--with-velocity", action="store_true", help="also store the velocity (u, v)")
    cylinder.add_argument("--snapshots", type=_positive_int, default=None,
                          help="number of snapshots (default: the preset's 151; the autoencoder recipe wants 300)")
    cylinder.add_argument("--device", default="cpu", help="where the solver runs, e.g. cuda (default: cpu)")
    sst = generate.add_argument_group("sst (synthetic sea-surface temperature; --dt, --t-final, --n-traj do not apply)")
    sst.add_argument("--synthetic", action="store_true", help="required: says that the fields are synthetic")
    sst.add_argument("--years", type=_positive_int, default=6, help="calendar years of daily fields (default: 6)")
    sst.add_argument("--resolution", type=_positive_float, default=0.25, help="grid spacing, degrees (default: 0.25)")
    sst.add_argument("--start", default="2012-01-01", help="first date (default: %(default)s)")
    _add_anomaly_options(sst)
    for name, kind in _system_options():
        generate.add_argument(f"--{name.replace('_', '-')}", dest=f"parameter_{name}", type=kind, default=None,
                              help=argparse.SUPPRESS)


def _add_anomaly_options(group) -> None:
    group.add_argument("--anomalies", choices=["none", "climatology", "mean"], default="none",
                       help="store anomalies from a per-cell annual-cycle fit (climatology) or mean, scaled by their "
                            "standard deviation, fitted on the dates up to --train-end only (default: none, degrees C)")
    group.add_argument("--train-end", default=None, metavar="DATE",
                       help="last date of the training period, e.g. 2016-12-31 (required with --anomalies)")


def _add_import(commands) -> None:
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
    importer.add_argument("-o", "--output", required=True, help="dataset file to write (.h5)")
    importer.add_argument("--region", default="gulf", help="gulf (18..31 N, 98..80 W), nino34 or global (default: gulf)")
    importer.add_argument("--variable", default=None, help="the SST variable of an 'sst' file (default: found by name)")
    importer.add_argument("--allow-gaps", action="store_true", help="join files with missing days between them")
    importer.add_argument("--overwrite", action="store_true", help="replace an existing file")
    _add_anomaly_options(importer)


def _write_sst(arguments: argparse.Namespace, dataset) -> int:
    from .datasets import write_dataset
    from .datasets.climatology import normalise_dataset

    if arguments.anomalies != "none":
        dataset = normalise_dataset(dataset, train_end=arguments.train_end, method=arguments.anomalies)
    path = write_dataset(arguments.output, dataset, overwrite=arguments.overwrite)
    ocean = int((dataset.fields["land_mask"] < 0.5).sum())
    print(f"wrote {path}: {dataset.n_times} {dataset.parameters['time_unit']}s "
          f"({dataset.parameters['first_date'][:10]} .. {dataset.parameters['last_date'][:10]}) of "
          f"{dataset.state_shape[0]} x {dataset.state_shape[1]} cells, {ocean} ocean; "
          f"{dataset.parameters['units']}")
    return 0


def _check_sst_output(arguments: argparse.Namespace) -> None:
    import os

    if os.path.exists(arguments.output) and not arguments.overwrite:
        raise ValueError(f"{arguments.output} exists; pass --overwrite to replace it")
    if arguments.anomalies != "none" and arguments.train_end is None:
        raise ValueError("--anomalies needs --train-end DATE: the statistics come from the training dates only")


def _run_import(arguments: argparse.Namespace) -> int:
    from .datasets.sst import REGIONS, read_oisst, read_sst

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


def _run_train_continuousnet(arguments: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from ._files import atomic_write
    from .classification_training import ClassifierTraining, train_classifier
    from .continuousnet import ContinuousNet
    from .datasets.images import ImageData, load_cifar, load_images
    from .tableaus import get_tableau

    if not get_tableau(arguments.scheme).is_explicit:
        raise ValueError(f"--scheme {arguments.scheme}: an OdeBlock needs an explicit scheme")
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # launched by torchrun: one process per device
        import torch.distributed as dist

        cuda = arguments.device.startswith("cuda")
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if cuda else "gloo")
        if cuda:
            arguments.device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    settings = ClassifierTraining(epochs=arguments.epochs or 30, batch_size=arguments.batch_size,
                                  learning_rate=arguments.learning_rate, augment=not arguments.no_augment,
                                  refine_at=tuple(arguments.refine_at), compile=arguments.compile is not None,
                                  compile_mode=arguments.compile or "default", seed=arguments.seed)
    arrays = load_cifar(arguments.data, allow_pickle=True) if arguments.allow_pickle else load_images(arguments.data)
    data = ImageData.from_arrays(arrays, arguments.device)
    import torch

    torch.manual_seed(arguments.seed)
    model = ContinuousNet(data.n_classes, data.image_shape[0], arguments.widths, arguments.pieces, arguments.basis,
                          arguments.scheme, arguments.n_steps)
    folder = Path(arguments.output)
    folder.mkdir(parents=True, exist_ok=True)
    model, log = train_classifier(model, data, settings, checkpoint=folder / "model.pt")
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    atomic_write(folder / "log.json", lambda temporary: temporary.write_text(json.dumps(log, indent=2)))
    print(f"test accuracy {log[-1]['test_accuracy']:.4f} after {len(log)} epochs; wrote {folder / 'model.pt'}, "
          f"{folder / 'log.json'}")
    return 0


def _run_manifest(arguments: argparse.Namespace) -> int:
    from .classification_training import evaluate_classifier, load_classifier
    from .datasets.images import ImageData, load_images

    model, _ = load_classifier(arguments.checkpoint, arguments.device)
    block = model.blocks[0]
    schemes = arguments.scheme or [block.scheme]
    steps = arguments.n_steps or [block.n_steps]
    data = ImageData.from_arrays(load_images(arguments.eval), arguments.device) if arguments.eval else None
    print(f"trained as {block.scheme} with {block.n_steps} steps, {block.basis}")
    print(f"{'scheme':>10} | steps | accuracy | inference s")
    for scheme in schemes:
        for n_steps in steps:
            manifested = model.manifest(scheme=scheme, n_steps=n_steps)
            if data is None:
                print(f"{scheme:>10} | {n_steps:>5} | (no --eval data)")
                continue
            result = evaluate_classifier(manifested, data)
            print(f"{scheme:>10} | {n_steps:>5} | {result['accuracy']:.4f} | {result['seconds']:.3f}")
    return 0


def _run_train(arguments: argparse.Namespace) -> int:
    from .analysis.physics_aware import train_run
    from .datasets.format import dataset_system

    if arguments.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError("--device cuda: this torch has no CUDA device")
    if arguments.model == "continuousnet":
        return _run_train_continuousnet(arguments)

    recipe = arguments.recipe
    if recipe is None:
        system = dataset_system(arguments.data)
        recipes = {"cylinder": "cylinder", "sea_surface_temperature": "sst"}
        if system not in recipes:
            raise ValueError(f"{arguments.data} holds system {system!r}; the autoencoder recipes are for "
                             f"cylinder and sea_surface_temperature data (or pass --recipe)")
        recipe = recipes[system]
    histories = train_run(arguments.data, arguments.output, recipe, models=arguments.models, kappa=arguments.kappa,
                          epochs=arguments.epochs, steps=arguments.steps, seed=arguments.seed, device=arguments.device,
                          overwrite=arguments.overwrite)
    for name, history in histories.items():
        print(f"{name:>15}: final loss {history.loss[-1]:.4e}, spectral radius of Omega "
              f"{history.spectral_radius[-1]:.5f}, {history.seconds_per_epoch():.4f} s per epoch")
    print(f"wrote {arguments.output}; evaluate with: dynlearn evaluate {arguments.output}")
    return 0


def _run_evaluate(arguments: argparse.Namespace) -> int:
    from .analysis.physics_aware import evaluate_run, markdown_table

    results = evaluate_run(arguments.run, data=arguments.data)
    print(markdown_table(results))
    print(f"wrote {arguments.run}/evaluation/table.md, results.json, relative_error.png, eigenvalues.png")
    return 0


def _run_data_study(arguments: argparse.Namespace) -> int:
    from pathlib import Path

    from .analysis.data_study import DataStudyRecipe, markdown_spectra, run_data_study

    if arguments.system is not None:
        raise ValueError(f"give either a SYSTEM ({arguments.system!r}) or --data FILE, not both")
    if arguments.neural_ode:
        raise ValueError("--neural-ode applies to the systems' study, not to --data")
    given = {"modes": arguments.modes, "stride": arguments.stride, "horizon": arguments.horizon,
             "iterations": arguments.iterations}
    recipe = DataStudyRecipe(**{name: value for name, value in given.items() if value is not None})
    output = arguments.output or f"dynlearn-study-{Path(arguments.data).stem}"
    outcome = run_data_study(arguments.data, output, recipe=recipe, seeds=arguments.seeds, device=arguments.device)
    source = outcome.source
    print(f"{arguments.data}: {recipe.modes} POD modes ({source['captured_energy']:.3f} of the fluctuation), trained "
          f"at dt = {source['training_dt']:g} on {source['training_pairs']} pairs, judged on the held-out record over "
          f"T = {source['t_final']:g} ({outcome.seconds:.0f} s)\n")
    print(outcome.study.swap_table())
    if outcome.spectra:
        print()
        print(markdown_spectra(outcome.spectra))
    print(f"\nwrote {', '.join(str(p) for p in outcome.files)}")
    return 0


def _run_study(arguments: argparse.Namespace) -> int:
    from .analysis.experiment import run_study

    if arguments.data is not None:
        return _run_data_study(arguments)
    if arguments.modes is not None or arguments.stride is not None or arguments.horizon is not None:
        raise ValueError("--modes, --stride and --horizon apply to a recorded field: add --data FILE")
    arguments.system = arguments.system or "pendulum"
    output = arguments.output or f"dynlearn-study-{arguments.system}"
    outcome = run_study(arguments.system, output, seeds=arguments.seeds, iterations=arguments.iterations,
                        neural_ode=arguments.neural_ode, device=arguments.device)
    print(f"{arguments.system}: trained at dt = {outcome.recipe.training_dt:g}, evaluated to T = {outcome.recipe.t_final:g}"
          f" ({outcome.seconds:.0f} s)\n")
    print(outcome.study.swap_table())
    if outcome.reconstruction:
        from .analysis.experiment import markdown_reconstruction

        print()
        print(markdown_reconstruction(outcome.reconstruction, outcome.recipe.training_dt))
    print(f"\nwrote {', '.join(str(p) for p in outcome.files)}")
    return 0


def _run_generate(arguments: argparse.Namespace) -> int:
    import os

    import torch

    from .datasets import generate_cylinder_dataset, generate_dataset, write_dataset
    from .systems import SYSTEMS, make_system

    if arguments.system == "sst":
        if not arguments.synthetic:
            raise ValueError("generate sst makes SYNTHETIC fields only: pass --synthetic; real sea-surface temperature "
                             "comes from your NOAA OISST files: dynlearn import oisst FILES... -o sst.h5")
        _check_sst_output(arguments)
        from .datasets.generate import generate_synthetic_sst_dataset

        dataset = generate_synthetic_sst_dataset(years=arguments.years, resolution=arguments.resolution,
                                                 seed=arguments.seed, start=arguments.start, progress=True)
        print("SYNTHETIC sea-surface temperature (an idealised Gulf of Mexico), not observations")
        return _write_sst(arguments, dataset)

    if arguments.system == "cylinder":
        if os.path.exists(arguments.output) and not arguments.overwrite:
            raise ValueError(f"{arguments.output} exists; pass --overwrite to replace it")
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
    if os.path.exists(arguments.output) and not arguments.overwrite:
        raise ValueError(f"{arguments.output} exists; pass --overwrite to replace it")
    system = make_system(arguments.system, **given)
    initial = None
    if arguments.x0:
        try:
            initial = torch.tensor([[float(v) for v in state.split(",")] for state in arguments.x0], dtype=torch.float64)
        except ValueError:
            raise ValueError(f"--x0 must be comma-separated numbers, got {arguments.x0}") from None
    dataset = generate_dataset(
        system,
        dt=arguments.dt,
        t_final=arguments.t_final,
        n_trajectories=arguments.n_traj if initial is not None or arguments.n_traj is not None else 10,
        initial_conditions=initial,
        seed=arguments.seed,
        method=arguments.method,
        progress=True,
    )
    path = write_dataset(arguments.output, dataset, overwrite=arguments.overwrite)
    print(f"wrote {path}: {dataset.n_trajectories} trajectories x {dataset.n_times} times of {system.name} "
          f"(dt = {dataset.dt:g}, state {dataset.state_shape})")
    return 0


def _run_info(arguments: argparse.Namespace) -> int:
    from .datasets import read_dataset

    dataset = read_dataset(arguments.file)
    attributes = dataset.attributes
    names = dataset.state_names
    shown = ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")
    print(f"{arguments.file}: dynlearn dataset, format version {attributes['format_version']} (checksum verified)")
    print(f"  system      {dataset.system}  {dataset.parameters}")
    print(f"  states      {dataset.n_trajectories} trajectories x {dataset.n_times} times x {dataset.state_shape}: {shown}")
    print(f"  time        t0 = {dataset.t0:g}, dt = {dataset.dt:g}, {dataset.n_steps} steps to t = {float(dataset.times[-1]):g}")
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


def _run_demo(arguments: argparse.Namespace) -> int:
    from .analysis.demonstration import LINEAR_NOTE, convergence_demonstration, verdicts
    from .tableaus import get_tableau

    if arguments.schemes:
        for name in arguments.schemes:
            get_tableau(name)  # unknown names fail here, with suggestions, before any work
    result = convergence_demonstration(
        arguments.output,
        schemes=arguments.schemes,
        frequency=arguments.frequency,
        t_final=arguments.t_final,
        n_steps=[arguments.coarsest_steps * 2**k for k in range(8)],
    )
    print(f"Harmonic oscillator, omega = {arguments.frequency:g}, (u, u')(0) = (1, 0), float64\n")
    print(result.table())
    print()
    lines = verdicts(result)
    print("\n".join(lines))
    print(f"\n{LINEAR_NOTE}")
    print(f"\nwrote {arguments.output}/convergence.txt, convergence.json, convergence.png")
    return 0 if all("[ok]" in line for line in lines) else 1


def _run_schemes(arguments: argparse.Namespace) -> int:
    from .integrate import _stage_plan
    from .tableaus import available_tableaus, get_tableau

    print(f"{'name':>10} | order | stages | f per step | description")
    for name in available_tableaus():
        tableau = get_tableau(name)
        evaluations = _stage_plan(tableau).evaluations if tableau.is_explicit else "implicit"
        print(f"{name:>10} | {tableau.order:>5} | {tableau.stages:>6} | {evaluations:>10} | {tableau.description}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "demo":
            return _run_demo(arguments)
        if arguments.command == "schemes":
            return _run_schemes(arguments)
        if arguments.command == "study":
            return _run_study(arguments)
        if arguments.command == "generate":
            return _run_generate(arguments)
        if arguments.command == "info":
            return _run_info(arguments)
        if arguments.command == "import":
            return _run_import(arguments)
        if arguments.command == "train":
            return _run_train(arguments)
        if arguments.command == "evaluate":
            return _run_evaluate(arguments)
        if arguments.command == "manifest":
            return _run_manifest(arguments)
    except (ValueError, TypeError, OSError) as error:
        print(f"dynlearn {arguments.command}: error: {error}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {arguments.command!r}")
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
