"""The ``dynlearn`` command line.

    dynlearn demo [-o FOLDER]     convergence of every explicit scheme on the harmonic oscillator
    dynlearn schemes              the registered Butcher tableaus

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
    return parser


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
    except (ValueError, TypeError) as error:
        print(f"dynlearn {arguments.command}: error: {error}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {arguments.command!r}")
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
