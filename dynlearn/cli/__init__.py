"""The ``dynlearn`` command line: one module per command group, dispatched from a table.

    dynlearn study SYSTEM [-o FOLDER]         the learned-integrator experiment (the main job)   studies.py
    dynlearn study --data FILE [-o FOLDER]    the same on a recorded field, in POD modes          studies.py
    dynlearn sweep [SYSTEM] [-o FOLDER]       the same over dt_train x scheme x seed (Ray)        studies.py
    dynlearn demo [-o FOLDER]                 convergence of every explicit scheme                studies.py
    dynlearn schemes                          the registered Butcher tableaus                     studies.py
    dynlearn generate SYSTEM [...] -o FILE    a dataset of a system's trajectories (HDF5)         data.py
    dynlearn import oisst|sst FILES -o FILE   a dataset of your own SST files                     data.py
    dynlearn info FILE                        what a dataset file holds                           data.py
    dynlearn upgrade FILE                     rewrite a dataset file as the current format        data.py
    dynlearn train autoencoder|continuousnet  train a model on a dataset                          models.py
    dynlearn evaluate RUN                     the autoencoder's long predictions                  models.py
    dynlearn manifest MODEL.pt                a trained ContinuousNet as other graphs             models.py

Every default an option shows comes from the library (a recipe or settings dataclass, or a function's
signature: :func:`dynlearn.cli.arguments.default`), so the API and ``--help`` cannot disagree. Commands import
the heavy parts they run when they run. A user error ends with one line, ``dynlearn COMMAND: error: ...``, and
status 2; Ctrl-C with ``dynlearn COMMAND: interrupted`` and status 130; anything else is a bug and ends with one
line saying so and status 1 (``dynlearn --debug`` or DYNLEARN_DEBUG=1 shows its traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

__all__ = ["main", "build_parser"]

#: the command groups, in the order ``dynlearn --help`` lists them
_GROUPS = ("dynlearn.cli.studies", "dynlearn.cli.data", "dynlearn.cli.models")


def _build() -> tuple[argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], int]]]:
    from importlib import import_module

    from dynlearn import __version__
    from dynlearn.progress import PROGRESS_MODES

    parser = argparse.ArgumentParser(prog="dynlearn",
                                     description="Learning the dynamics of physical systems from data.")
    parser.add_argument("--version", action="version", version=f"dynlearn {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="on an internal error (a bug), show its traceback (or set DYNLEARN_DEBUG=1)")
    parser.add_argument("--progress", choices=PROGRESS_MODES, default=None,
                        help="progress display: a bar on a terminal and one line per finished stage otherwise (auto, "
                             "the default, or DYNLEARN_PROGRESS), always a bar, always lines, or none")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    table: dict[str, Callable[[argparse.Namespace], int]] = {}
    for group in _GROUPS:
        table.update(import_module(group).register(commands))
    return parser, table


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (for documentation and tests)."""
    return _build()[0]


def _out_of_memory(error: BaseException) -> bool:
    """The allocator's refusal: MemoryError, or torch's RuntimeError for an allocation that cannot be served."""
    text = str(error).lower()
    return isinstance(error, MemoryError) or (isinstance(error, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text or "not enough memory" in text))


def main(argv: Sequence[str] | None = None) -> int:
    command = "dynlearn"
    debug = os.environ.get("DYNLEARN_DEBUG", "") not in ("", "0")
    try:
        parser, table = _build()
        arguments = parser.parse_args(argv)
        command = f"dynlearn {arguments.command}"
        debug = debug or arguments.debug
        if arguments.progress is not None:
            from dynlearn.progress import set_progress_mode

            set_progress_mode(arguments.progress)
        return table[arguments.command](arguments)
    except OverflowError as error:  # math's own message ("(34, 'Numerical result out of range')") names no cause
        print(f"{command}: error: a number is beyond float64's range ({error}); choose smaller values", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError, FloatingPointError) as error:
        print(f"{command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line; what was finished is on disk (atomic writes), nothing half-done
        resumable = command in ("dynlearn train", "dynlearn sweep")
        print(f"{command}: interrupted; " + ("what finished is kept, and the same command resumes from it" if resumable
                                             else "no half-written file was left"), file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 (the last net: a bug, or memory the sizes asked for and did not get)
        if debug:
            raise
        first_line = (str(error).splitlines() or [""])[0][:300]
        if _out_of_memory(error):
            print(f"{command}: error: out of memory ({type(error).__name__}: {first_line}); ask for less (smaller "
                  f"sizes, counts or batches)", file=sys.stderr)
            return 2
        print(f"{command}: internal error, this is a bug: {type(error).__name__}: {first_line} (rerun with "
              f"dynlearn --debug ... or DYNLEARN_DEBUG=1 for the traceback, and report it)", file=sys.stderr)
        return 1
