"""Command group "studies": ``dynlearn study`` (the learned-integrator experiment, on a system or on a recorded
field with ``--data``), ``dynlearn sweep`` (the same over dt_train x scheme x seed), ``dynlearn demo`` (convergence
of every explicit scheme) and ``dynlearn schemes``."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Callable

from dynlearn.cli.arguments import (add_sampling_options, check_writable, default, device, fraction, learning_rate,
                                    non_negative_float, positive_float, positive_int, refuse_earlier_outputs,
                                    sampling_from, seed)

__all__ = ["register"]


def register(commands: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    from dynlearn.analysis.experiments.demonstration import convergence_demonstration
    from dynlearn.analysis.experiments.learned_integrators import (DEFAULT_SYSTEM, LEARNED_INTEGRATOR_RECIPES,
                                                                   LearnedIntegratorRecipe, run_learned_integrators)
    from dynlearn.analysis.experiments.recorded_field import RecordedFieldRecipe

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
    study.add_argument("system", choices=list(LEARNED_INTEGRATOR_RECIPES), nargs="?", default=None,
                       help=f"which system (default: {DEFAULT_SYSTEM})")
    study.add_argument("-o", "--output", default=None,
                       help="output folder (default: dynlearn-study-SYSTEM, or dynlearn-study-FILE's name with --data)")
    study.add_argument("--iterations", type=positive_int, default=None,
                       help=f"training iterations per model (default: the recipe's, "
                            f"{default(LearnedIntegratorRecipe, 'iterations')}, or "
                            f"{default(RecordedFieldRecipe, 'iterations')} with --data; the original study used 50000)")
    study.add_argument("--seeds", type=seed, nargs="+", default=list(default(run_learned_integrators, "seeds")),
                       help="train every model once per seed (default: %(default)s)")
    study.add_argument("--neural-ode", action="store_true",
                       help="add a G trained through an adaptive solver (torchdiffeq dopri5), the continuous reference")
    study.add_argument("--training-state", action="append", metavar="V1,V2,...", default=None,
                       help="another initial state whose trajectory joins the training data (repeat for more); the "
                            "convergence test still starts from the recipe's state, and the report's generalisation "
                            "table from its held-out ones")
    study.add_argument("--sindy", action="store_true",
                       help="add the SINDy baseline (PySINDy: pip install 'dynlearn[baselines]'): identified from the "
                            "same data, judged by the same convergence test, refitted at other sampling steps")
    study.add_argument("--device", type=device, default=default(run_learned_integrators, "device"),
                       help="where training runs, e.g. cuda (default: %(default)s)")
    study.add_argument("--compile", action="store_true", default=default(run_learned_integrators, "compile"),
                       help="compile each training iteration as one graph (torch.compile; a CUDA graph on cuda): the "
                            "same results, faster after a compile of 7-20 s per model (under 1 s once Inductor's cache "
                            "holds it); worth it for tens of thousands of iterations on a CPU")
    study.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier study in the folder")
    add_sampling_options(study, kind=default(LearnedIntegratorRecipe, "sampling"),
                         amount=default(LearnedIntegratorRecipe, "sampling_fraction"),
                         sampling_seed=default(LearnedIntegratorRecipe, "sampling_seed"),
                         what="the training trajectory (each pair trained with its own step; evaluated on the "
                              "usual regular ladder)")
    recorded = study.add_argument_group("recorded data (--data)")
    recorded.add_argument("--data", default=None, help="a one-trajectory field dataset file, instead of SYSTEM")
    recorded.add_argument("--modes", type=positive_int, default=None,
                          help=f"POD modes kept (default: {default(RecordedFieldRecipe, 'modes')})")
    recorded.add_argument("--stride", type=positive_int, default=None,
                          help=f"dt_train = STRIDE x the record's dt, a power of two "
                               f"(default: {default(RecordedFieldRecipe, 'stride')})")
    recorded.add_argument("--horizon", type=positive_int, default=None,
                          help=f"evaluate over at most this many training steps of the held-out record "
                               f"(default: {default(RecordedFieldRecipe, 'horizon')})")

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
    demo.add_argument("-o", "--output", default=default(convergence_demonstration, "output_dir"),
                      help="output folder (default: %(default)s)")
    demo.add_argument("--schemes", nargs="+", metavar="NAME", help="schemes to test (default: all explicit ones)")
    demo.add_argument("--t-final", type=positive_float, default=default(convergence_demonstration, "t_final"),
                      help="final time T (default: %(default)s)")
    demo.add_argument("--frequency", type=positive_float, default=default(convergence_demonstration, "frequency"),
                      help="omega, radians per unit time (default: %(default)s)")
    ladder = default(convergence_demonstration, "n_steps")
    demo.add_argument("--coarsest-steps", type=positive_int, default=ladder[0],
                      help=f"steps of the coarsest rung; the ladder doubles it {len(ladder) - 1} times "
                           f"(default: %(default)s)")
    demo.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier demo in the folder")
    demo.set_defaults(rungs=len(ladder))

    _add_sweep(commands)

    commands.add_parser("schemes", help="list the registered Butcher tableaus", description="List the registered "
                        "Butcher tableaus with their order, stages and evaluations of f per fixed step.")
    return {"study": _run_study, "sweep": _run_sweep, "demo": _run_demo, "schemes": _run_schemes}


def _run_study(arguments: argparse.Namespace) -> int:
    from dynlearn.analysis.experiments.learned_integrators import (DEFAULT_SYSTEM, LEARNED_INTEGRATOR_RECIPES,
                                                                   LearnedIntegratorRecipe, markdown_reconstruction,
                                                                   run_learned_integrators)

    if arguments.data is not None:
        if arguments.sampling != default(LearnedIntegratorRecipe, "sampling"):
            raise ValueError("--sampling applies to the systems' study; a recorded field is sampled as it was recorded")
        return _run_recorded_field(arguments)
    if arguments.modes is not None or arguments.stride is not None or arguments.horizon is not None:
        raise ValueError("--modes, --stride and --horizon apply to a recorded field: add --data FILE")
    system = arguments.system or DEFAULT_SYSTEM
    sampling = sampling_from(arguments, amount=default(LearnedIntegratorRecipe, "sampling_fraction"),
                             sampling_seed=default(LearnedIntegratorRecipe, "sampling_seed"))
    recipe = LEARNED_INTEGRATOR_RECIPES[system]
    if arguments.training_state:
        try:
            states = tuple(tuple(float(v) for v in text.split(",")) for text in arguments.training_state)
        except ValueError:
            raise ValueError(f"--training-state must be comma-separated numbers, got {arguments.training_state}") \
                from None
        size = len(recipe.initial_state or ()) or None
        if size is not None and any(len(state) != size for state in states):
            raise ValueError(f"--training-state must give {size} numbers each (the state of {system}), got "
                             f"{arguments.training_state}")
        recipe = dataclasses.replace(recipe, training_states=states)
    if sampling is not None:
        recipe = dataclasses.replace(recipe, sampling=sampling.kind, sampling_fraction=sampling.fraction,
                                     sampling_seed=sampling.seed)
    output = arguments.output or f"dynlearn-study-{system}"
    refuse_earlier_outputs(output, ("report.md", "results.json", "convergence_grid.png"), arguments.overwrite)
    outcome = run_learned_integrators(recipe, output, seeds=arguments.seeds, iterations=arguments.iterations,
                                      neural_ode=arguments.neural_ode, sindy=arguments.sindy, device=arguments.device,
                                      compile=arguments.compile)
    print(f"{system}: trained at dt = {outcome.recipe.training_dt:g}, evaluated to T = {outcome.recipe.t_final:g}"
          f" ({outcome.seconds:.0f} s)\n")
    print(outcome.study.swap_table())
    if outcome.reconstruction:
        print()
        print(markdown_reconstruction(outcome.reconstruction, outcome.recipe.training_dt))
    print(f"\nwrote {', '.join(str(p) for p in outcome.files)}")
    return 0


def _run_recorded_field(arguments: argparse.Namespace) -> int:
    from dynlearn.analysis.experiments.recorded_field import RecordedFieldRecipe, markdown_spectra, run_recorded_field

    if arguments.system is not None:
        raise ValueError(f"give either a SYSTEM ({arguments.system!r}) or --data FILE, not both")
    if arguments.neural_ode or arguments.sindy or arguments.training_state:
        raise ValueError("--neural-ode, --sindy and --training-state apply to the systems' study, not to --data")
    given = {"modes": arguments.modes, "stride": arguments.stride, "horizon": arguments.horizon,
             "iterations": arguments.iterations}
    recipe = RecordedFieldRecipe(**{name: value for name, value in given.items() if value is not None})
    output = arguments.output or f"dynlearn-study-{Path(arguments.data).stem}"
    refuse_earlier_outputs(output, ("report.md", "results.json", "convergence_grid.png"), arguments.overwrite)
    outcome = run_recorded_field(arguments.data, output, recipe=recipe, seeds=arguments.seeds, device=arguments.device,
                                 compile=arguments.compile)
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


def _run_demo(arguments: argparse.Namespace) -> int:
    from dynlearn.analysis.experiments.demonstration import LINEAR_NOTE, convergence_demonstration, verdicts
    from dynlearn.integration.tableaus import get_tableau

    if arguments.schemes:
        for name in arguments.schemes:
            get_tableau(name)  # unknown names fail here, with suggestions, before any work
    refuse_earlier_outputs(arguments.output, ("convergence.txt", "convergence.json", "convergence.png"),
                           arguments.overwrite)
    result = convergence_demonstration(
        arguments.output,
        schemes=arguments.schemes,
        frequency=arguments.frequency,
        t_final=arguments.t_final,
        n_steps=[arguments.coarsest_steps * 2**k for k in range(arguments.rungs)],
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
    from dynlearn.integration.step_plan import step_plan
    from dynlearn.integration.tableaus import available_tableaus, get_tableau

    print(f"{'name':>10} | order | stages | f per step | description")
    for name in available_tableaus():
        tableau = get_tableau(name)
        evaluations = step_plan(tableau).evaluations if tableau.is_explicit else "implicit"
        print(f"{name:>10} | {tableau.order:>5} | {tableau.stages:>6} | {evaluations:>10} | {tableau.description}")
    return 0


def _add_sweep(commands: argparse._SubParsersAction) -> None:
    from dynlearn.analysis.experiments.sweep import (AUTHORS_SCHEDULE, DEFAULT_SWEEP_SYSTEM, SWEEP_SYSTEMS, SweepGrid,
                                                     run_sweep)

    sweep = commands.add_parser(
        "sweep",
        help="the learned-integrator experiment over dt_train x scheme x seed, as ensembles, resumable, on Ray",
        description=(
            "Train G (a tanh MLP) inside each training scheme at each dt_train for each seed (and, optionally, "
            "width, amount of data, noise), evaluate every G in every evaluation scheme over one ladder of dt, judge "
            "each (discrete / continuous, faithful / another system), fit the plateau-vs-dt_train slope per scheme, "
            "and write report.md, results.json, three figures and one file per finished cell. The default is the "
            "authors' sweep: euler, midpoint, rk4 x dt_train 0.4, 0.2, 0.1, 0.01, 0.001 x 5 seeds on the pendulum "
            "from 3 pi / 4. Rerunning the same command resumes; a cluster: ray start --head, ray start --address "
            "HEAD:6379 on the others, then this command with --backend ray."
        ),
    )
    sweep.add_argument("system", choices=list(SWEEP_SYSTEMS), nargs="?", default=DEFAULT_SWEEP_SYSTEM,
                       help="which system (default: %(default)s)")
    sweep.add_argument("-o", "--output", default=None, help="output folder (default: dynlearn-sweep-SYSTEM)")
    axes = sweep.add_argument_group("axes (every combination is one training)")
    axes.add_argument("--dt-train", type=positive_float, nargs="+", metavar="DT",
                      default=list(default(SweepGrid, "training_dts")), help="training steps (default: %(default)s)")
    axes.add_argument("--schemes", nargs="+", metavar="SCHEME[+SCHEME]",
                      default=["+".join(g) for g in default(SweepGrid, "training_schemes")],
                      help="training schemes; a+b sums both losses on one G (default: %(default)s)")
    axes.add_argument("--seeds", type=seed, nargs="+", default=list(default(SweepGrid, "seeds")),
                      help="seeds (default: %(default)s)")
    axes.add_argument("--widths", type=positive_int, nargs="+", default=list(default(SweepGrid, "widths")),
                      help="hidden units of G (default: %(default)s)")
    axes.add_argument("--training-times", type=positive_float, nargs="+", metavar="TIME",
                      default=list(default(SweepGrid, "training_times")),
                      help="time units of training data, TIME / dt_train pairs (default: %(default)s)")
    axes.add_argument("--noise", type=non_negative_float, nargs="+", metavar="LEVEL",
                      default=list(default(SweepGrid, "noise_levels")),
                      help="relative Gaussian noise on the training data (default: %(default)s)")
    axes.add_argument("--step-spreads", type=fraction, nargs="+", metavar="S",
                      default=list(default(SweepGrid, "step_spreads")),
                      help="irregular training data: steps uniform in dt_train (1 +- S), each pair trained with its "
                           "own step; 0 samples every dt_train (default: %(default)s)")
    shared = sweep.add_argument_group("shared by every training")
    shared.add_argument("--evaluation-schemes", nargs="+", metavar="SCHEME",
                        default=list(default(SweepGrid, "evaluation_schemes")), help="(default: %(default)s)")
    shared.add_argument("--t-final", type=positive_float, default=default(SweepGrid, "t_final"),
                        help="evaluation time T (default: %(default)s)")
    shared.add_argument("--finest-dt", type=positive_float, default=None,
                        help="finest evaluation step (default: the smallest dt_train / 100)")
    shared.add_argument("--iterations", type=positive_int, default=None,
                        help=f"Adam iterations per training (default: {default(SweepGrid, 'iterations')})")
    shared.add_argument("--learning-rate", type=learning_rate, default=None,
                        help=f"Adam's first rate (default: {default(SweepGrid, 'learning_rate')})")
    shared.add_argument("--final-learning-rate", type=learning_rate, default=None,
                        help=f"Adam's last rate, reached exponentially (default: "
                             f"{default(SweepGrid, 'final_learning_rate')})")
    shared.add_argument("--authors-schedule", action="store_true",
                        help=f"the authors' budget: {AUTHORS_SCHEDULE['iterations']} iterations at a constant rate "
                             f"{AUTHORS_SCHEDULE['learning_rate']:g} (about twice the time)")
    shared.add_argument("--batch-size", type=positive_int, default=default(SweepGrid, "batch_size"),
                        help="one-step pairs per iteration (default: %(default)s)")
    shared.add_argument("--group-size", type=positive_int, default=default(SweepGrid, "group_size"),
                        help="most trainings run as one ensemble (default: %(default)s)")
    running = sweep.add_argument_group("where it runs")
    running.add_argument("--backend", choices=["local", "ray"], default=default(run_sweep, "backend"),
                         help="local processes, or a Ray cluster (pip install 'dynlearn[distributed]'; default: "
                              "%(default)s)")
    running.add_argument("--workers", type=positive_int, default=None,
                         help="local processes, each running one group (default: one per CPU core)")
    running.add_argument("--ray-address", default=None,
                         help="the Ray cluster (default: RAY_ADDRESS, or a local Ray instance)")
    running.add_argument("--device", default=default(run_sweep, "device"),
                         help="where groups train and evaluate, e.g. cuda: checked on this machine with the local "
                              "backend, on the workers with Ray (default: %(default)s)")
    running.add_argument("--compile", action="store_true", default=default(run_sweep, "compile"),
                         help="compile each ensemble's training iteration as one graph (torch.compile; a CUDA graph on "
                              "cuda): the same results, faster after a compile of 7-20 s per group (under 1 s once "
                              "Inductor's cache holds it)")
    folder = sweep.add_argument_group("an existing output folder")
    folder.add_argument("--extend", action="store_true", help="keep its finished cells and add this grid's others")
    folder.add_argument("--overwrite", action="store_true", help="delete its sweep and start over")


def _run_sweep(arguments: argparse.Namespace) -> int:
    from dynlearn.analysis.experiments.sweep import AUTHORS_SCHEDULE, SweepGrid, run_sweep

    if arguments.backend == "local":
        try:
            device(arguments.device)
        except argparse.ArgumentTypeError as error:
            raise ValueError(f"argument --device: {error}") from None
    elif arguments.device.split(":")[0] not in ("cpu", "cuda"):
        raise ValueError(f"argument --device: {arguments.device!r} is not a device (cpu, cuda, cuda:N)")
    if arguments.backend != "ray" and arguments.ray_address is not None:
        raise ValueError("--ray-address applies to --backend ray")
    if arguments.backend == "ray" and arguments.workers is not None:
        raise ValueError("--workers applies to --backend local (Ray places tasks by their CPU and GPU needs)")
    schedule = {}
    if arguments.authors_schedule:
        if any(v is not None for v in (arguments.iterations, arguments.learning_rate, arguments.final_learning_rate)):
            raise ValueError("--authors-schedule sets --iterations, --learning-rate and --final-learning-rate; "
                             "give either")
        schedule = dict(AUTHORS_SCHEDULE)
    for name in ("iterations", "learning_rate", "final_learning_rate"):
        if getattr(arguments, name) is not None:
            schedule[name] = getattr(arguments, name)
    grid = SweepGrid.for_system(
        arguments.system, training_dts=tuple(arguments.dt_train),
        training_schemes=tuple(tuple(group.split("+")) for group in arguments.schemes), seeds=tuple(arguments.seeds),
        widths=tuple(arguments.widths), training_times=tuple(arguments.training_times),
        noise_levels=tuple(arguments.noise), step_spreads=tuple(arguments.step_spreads),
        evaluation_schemes=tuple(arguments.evaluation_schemes),
        t_final=arguments.t_final, finest_dt=arguments.finest_dt, batch_size=arguments.batch_size,
        group_size=arguments.group_size, **schedule)
    output = arguments.output or f"dynlearn-sweep-{arguments.system}"
    check_writable(output)
    result = run_sweep(grid, output, extend=arguments.extend, overwrite=arguments.overwrite,
                       backend=arguments.backend, workers=arguments.workers, ray_address=arguments.ray_address,
                       device=arguments.device, compile=arguments.compile)
    print(f"{arguments.system}: {len(result.cells)} trainings evaluated to T = {grid.t_final:g} at "
          f"{len(result.dts)} steps ({result.seconds:.0f} s)\n")
    print(result.plateau_table("final"))
    print()
    print(result.verdict_table())
    print(f"\nwrote {output}/report.md, results.json, errors_against_dt.png, plateau_against_training_dt.png, "
          f"verdicts.png, cells/, models/")
    return 0
