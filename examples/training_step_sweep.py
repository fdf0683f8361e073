"""
How the finding scales with the training step: a small sweep
=============================================================

A small dt_train x scheme x seed sweep and its plateau-vs-dt_train slopes, from Python.

`dynlearn sweep` runs the authors' 75-training sweep from the command line; this script runs a small one with the
same library calls, to adapt: G (2-50-2 tanh) is trained inside euler, midpoint and rk4 at dt_train = 0.2, 0.1
and 0.05, two seeds each, on 20 time units of the pendulum from theta0 = 3 pi / 4; each scheme's 6 trainings run
as one ensemble, and every G is evaluated in every scheme to T = 1 down to dt = 5e-4. The plateau (G's own
error as dt -> 0) of the Euler-trained fields falls like dt_train^1 and they dip at every dt_train (discrete
maps); inside midpoint and RK4 the plateaus are far lower.

Run it (about 15 s on 2 CPU cores; the folder gets report.md, results.json, the three figures and one file per
cell; the figures below are drawn at build time with 800 iterations)::

    python examples/training_step_sweep.py [-o training-step-sweep] [--iterations 1500]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dynlearn.analysis.experiments import SweepGrid, run_sweep


def main(output: Path, iterations: int = 1500) -> dict:
    grid = SweepGrid(training_dts=(0.2, 0.1, 0.05), training_schemes=(("euler",), ("midpoint",), ("rk4",)),
                     seeds=(0, 1), training_times=(20.0,), t_final=1.0, iterations=iterations)
    result = run_sweep(grid, output, workers=1, overwrite=True)
    print(result.plateau_table("final"))
    print()
    for scheme, fit in result.slopes("final").items():
        every, ranged = fit["every_dt_train"], fit["asymptotic_range"]
        print(f"{scheme}: plateau ~ dt_train^{every.slope:.2f}, 95 % interval [{every.confidence_interval[0]:.2f}, "
              f"{every.confidence_interval[1]:.2f}]" + ("" if ranged is None else
                                                       f"; on its power-law range {fit['window']}: {ranged}"))
    result.figures()  # the error-against-dt grid, the plateau against dt_train, the verdicts (also in the folder)
    return result.slopes("final")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, default=Path("training-step-sweep"))
    parser.add_argument("--iterations", type=int, default=1500)
    arguments = parser.parse_args()
    main(arguments.output, arguments.iterations)
