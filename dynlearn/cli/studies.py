"""Command group "studies": ``dynlearn study`` (the learned-integrator experiment, on a system or on a recorded
field with ``--data``), ``dynlearn demo`` (convergence of every explicit scheme) and ``dynlearn schemes``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from dynlearn.cli.arguments import default, device, positive_float, positive_int, seed

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
    study.add_argument("--device", type=device, default=default(run_learned_integrators, "device"),
                       help="where training runs, e.g. cuda (default: %(default)s)")
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
    demo.set_defaults(rungs=len(ladder))

    commands.add_parser("schemes", help="list the registered Butcher tableaus", description="List the registered "
                        "Butcher tableaus with their order, stages and evaluations of f per fixed step.")
    return {"study": _run_study, "demo": _run_demo, "schemes": _run_schemes}


def _run_study(arguments: argparse.Namespace) -> int:
    from dynlearn.analysis.experiments.learned_integrators import (DEFAULT_SYSTEM, markdown_reconstruction,
                                                                   run_learned_integrators)

    if arguments.data is not None:
        return _run_recorded_field(arguments)
    if arguments.modes is not None or arguments.stride is not None or arguments.horizon is not None:
        raise ValueError("--modes, --stride and --horizon apply to a recorded field: add --data FILE")
    system = arguments.system or DEFAULT_SYSTEM
    output = arguments.output or f"dynlearn-study-{system}"
    outcome = run_learned_integrators(system, output, seeds=arguments.seeds, iterations=arguments.iterations,
                                      neural_ode=arguments.neural_ode, device=arguments.device)
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
    if arguments.neural_ode:
        raise ValueError("--neural-ode applies to the systems' study, not to --data")
    given = {"modes": arguments.modes, "stride": arguments.stride, "horizon": arguments.horizon,
             "iterations": arguments.iterations}
    recipe = RecordedFieldRecipe(**{name: value for name, value in given.items() if value is not None})
    output = arguments.output or f"dynlearn-study-{Path(arguments.data).stem}"
    outcome = run_recorded_field(arguments.data, output, recipe=recipe, seeds=arguments.seeds, device=arguments.device)
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
