"""The gallery's budgets: the arguments each example runs with at build time (a few seconds to a minute each on
2 CPU cores), and where it writes its files (a scratch folder under the build, never the source tree)."""

from __future__ import annotations

import os
from pathlib import Path

#: per example script, the arguments that keep its build-time run small (the scripts' own defaults are the
#: full budgets their docstrings quote). learned_integrators.py runs on its own budget (8000 iterations, about
#: 30 s): the landing page shows its figure as the finding, and with fewer iterations the RK4-trained field has not
#: yet reached its low plateau.
EXAMPLE_ARGUMENTS = {
    "training_step_sweep.py": ["--iterations", "800"],
    "sea_surface_temperature.py": ["--synthetic-years", "1"],
}

SCRATCH = Path(os.environ.get("DYNLEARN_DOCS_SCRATCH", Path(__file__).parents[1] / "_build" / "example-output"))


def example_arguments(gallery_conf: dict, script_vars: dict) -> list[str]:
    """``sys.argv[1:]`` for one example (sphinx-gallery's ``reset_argv``)."""
    name = Path(script_vars["src_file"]).name
    return ["--output", str(SCRATCH / Path(name).stem), *EXAMPLE_ARGUMENTS.get(name, [])]
