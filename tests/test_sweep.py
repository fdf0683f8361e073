"""The dt_train x scheme x seed sweep: grids checked before any work, a small sweep end to end through the CLI
(files, tables, figures, verdicts), reruns that resume or refuse, a real kill and resume, the Ray backend, and the
plateau-vs-dt_train law on a grid small enough for the suite."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dynlearn.analysis.experiments.sweep import SweepGrid, evaluation_ladder, load_sweep, run_sweep
from dynlearn.analysis.rates import fit_power_law
from dynlearn.cli import main

#: a grid that trains in seconds: 2 dt x 2 schemes x 2 seeds on 4 time units of pendulum data, evaluated to T = 0.8
SMALL = ["--dt-train", "0.2", "0.1", "--schemes", "euler", "rk4", "--seeds", "0", "1", "--training-times", "4",
         "--t-final", "0.8", "--iterations", "1000", "--workers", "1"]


def _small_grid(**changes) -> SweepGrid:
    values = dict(training_dts=(0.2, 0.1), training_schemes=(("euler",), ("rk4",)), seeds=(0, 1),
                  training_times=(4.0,), t_final=0.8, iterations=150)
    return SweepGrid(**{**values, **changes})


@pytest.mark.parametrize("changes, message", [
    ({"training_dts": ()}, "training_dts must hold at least one value"),
    ({"seeds": ()}, "seeds must hold at least one value"),
    ({"training_schemes": ()}, "training_schemes must hold at least one value"),
    ({"training_schemes": ((),)}, "training_schemes holds an empty group"),
    ({"training_dts": (0.3,)}, "training_dts: 0.3 does not divide t_final"),
    ({"training_dts": (0.4,), "training_times": (1.0,)}, "training_dts: 0.4 does not divide training_times 1"),
    ({"training_schemes": (("rk5",),)}, "training_schemes: unknown scheme 'rk5'"),
    ({"evaluation_schemes": ("backward_euler",)}, "evaluation_schemes: backward_euler is implicit"),
    ({"noise_levels": (-0.1,)}, "noise_levels must lie in"),
    ({"noise_levels": (math.nan,)}, "noise_levels must lie in"),
    ({"seeds": (-1,)}, "seeds must be an integer in"),
    ({"widths": (0,)}, "widths must be an integer >= 1"),
    ({"training_dts": (0.1, 0.1)}, "training_dts repeats a value"),
    ({"finest_dt": 0.5}, "finest_dt must be below the smallest training dt"),
    ({"initial_state": (1.0,)}, "initial_state must be 2 finite numbers"),
    ({"iterations": 0}, "iterations must be an integer >= 1"),
])
def test_bad_grids_are_refused_naming_the_axis(changes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("+", r"\+")):
        SweepGrid(**changes)


@pytest.mark.parametrize("options, message", [
    (["--dt-train", "0.3"], "training_dts: 0.3 does not divide t_final 2"),
    (["--schemes", "euler", "rk5"], "training_schemes: unknown scheme 'rk5'"),
    (["--noise", "-0.5"], "argument --noise: '-0.5' must be a finite number >= 0"),
    (["--workers", "2", "--backend", "ray"], "--workers applies to --backend local"),
    (["--authors-schedule", "--iterations", "10"], "--authors-schedule sets --iterations"),
])
def test_bad_sweeps_fail_in_one_line_before_any_work(tmp_path, capsys, options, message):
    folder = tmp_path / "sweep"
    try:
        status = main(["sweep", "-o", str(folder), *options])
    except SystemExit as exit_:  # argparse's own refusal of a bad value
        status = exit_.code
    assert status == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in error and "Traceback" not in error
    assert not folder.exists()


def test_the_ladder_holds_every_training_step_and_spans_two_decades_below():
    counts = evaluation_ladder(SweepGrid())  # the authors' grid
    dts = [2.0 / n for n in counts]
    for dt in (0.4, 0.2, 0.1, 0.01, 0.001):
        assert any(math.isclose(dt, d, rel_tol=1e-12) for d in dts)
        assert any(math.isclose(dt / 2, d, rel_tol=1e-12) for d in dts)
    assert max(dts) == pytest.approx(1.0) and min(dts) == pytest.approx(1e-5)
    assert all(isinstance(n, int) and n >= 1 for n in counts)


def test_a_small_sweep_end_to_end_through_the_command_line(tmp_path, capsys):
    folder = tmp_path / "sweep"
    assert main(["sweep", "-o", str(folder), *SMALL]) == 0
    printed = capsys.readouterr().out
    for name in ("report.md", "results.json", "errors_against_dt.png", "plateau_against_training_dt.png",
                 "verdicts.png", "sweep.json", "baseline.json"):
        assert (folder / name).stat().st_size > 0, name
    assert len(list((folder / "cells").glob("*.json"))) == 8
    assert len(list((folder / "models").glob("*.pt"))) == 8
    assert not list((folder / "checkpoints").glob("*"))  # finished groups leave no checkpoint behind
    assert "| euler |" in printed and "| rk4 |" in printed and "slope" in printed

    results = json.loads((folder / "results.json").read_text())
    assert len(results["cells"]) == 8 and results["dts"][0] > 0.2 and min(results["dts"]) < 0.1 / 50
    for record in results["cells"]:
        for scheme in ("euler", "midpoint", "rk4"):
            evaluation = record["evaluations"][scheme]
            assert len(evaluation["final_errors"]) == len(results["dts"]) == len(evaluation["rms_errors"])
            assert evaluation["kind"] in ("discrete", "another system", "faithful", "converging", "inconclusive")
    # the true field in rk4 converges at order 4 on the ladder: the baseline is the real one
    true_rk4 = np.array(results["true_field"]["rk4"]["final_errors"])
    dts = np.array(results["dts"])
    assert fit_power_law(dts[3:7], true_rk4[3:7]).slope == pytest.approx(4.0, abs=0.3)
    # Euler-trained fields dip at their dt_train (the discrete map of the published finding), even briefly trained
    euler = [r for r in results["cells"] if r["cell"]["schemes"] == ["euler"]]
    assert all(r["evaluations"]["euler"]["dip_depth"] < 0.5 for r in euler)
    report = (folder / "report.md").read_text()
    assert "Plateau against dt_train" in report and "Verdicts" in report and "authors' medians" in report

    # the same command again: every cell is finished, nothing is trained, nothing changes
    before = {p.name: p.stat().st_mtime_ns for p in (folder / "cells").iterdir()}
    began = time.perf_counter()
    assert main(["sweep", "-o", str(folder), *SMALL]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (folder / "cells").iterdir()} == before
    assert time.perf_counter() - began < 20

    # another grid into the same folder: refused, unless extended (only the new cells run) or overwritten
    other = [*SMALL[:7], "0", "1", "2", *SMALL[9:]]
    assert main(["sweep", "-o", str(folder), *other]) == 2
    assert "holds a sweep over another grid (differs in seeds)" in capsys.readouterr().err
    assert main(["sweep", "-o", str(folder), *other, "--extend"]) == 0
    assert len(list((folder / "cells").glob("*.json"))) == 12
    assert {p.name: p.stat().st_mtime_ns for p in (folder / "cells").iterdir() if p.name in before} == before
    finer = [*SMALL[:3], "0.05", *SMALL[3:]]  # a new dt_train adds rungs to the evaluation ladder
    assert main(["sweep", "-o", str(folder), *finer, "--extend"]) == 2
    assert "cannot extend" in capsys.readouterr().err
    changed = [*SMALL[:-3], "100", *SMALL[-2:]]  # other iterations: every cell is trained otherwise
    assert main(["sweep", "-o", str(folder), *changed, "--extend"]) == 2
    assert "cannot extend" in capsys.readouterr().err
    assert main(["sweep", "-o", str(folder), *changed, "--overwrite"]) == 0
    assert len(list((folder / "cells").glob("*.json"))) == 8
    assert load_sweep(folder).grid.iterations == 100


def test_the_axes_beyond_the_authors_width_data_and_noise(tmp_path):
    """Widths make separate ensembles; training times and noise levels are members of one; the report has a table
    per (width, training time, noise), results.json an aggregate each; noise changes what a member learns."""
    import warnings

    grid = _small_grid(training_schemes=(("rk4",),), seeds=(0,), widths=(8, 16), training_times=(4.0, 8.0),
                       noise_levels=(0.0, 0.05), iterations=200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the figures lay out without complaint
        result = run_sweep(grid, tmp_path / "axes", workers=1, show_progress=False)
    assert len(result.cells) == 16
    assert result.report().count("## width") == 8
    assert len(json.loads((tmp_path / "axes" / "results.json").read_text())["aggregated"]) == 8
    loss = {(c["cell"]["width"], c["cell"]["training_time"], c["cell"]["noise"], c["cell"]["training_dt"]):
            c["training"]["best_loss"] for c in result.cells}
    assert all(loss[(w, t, 0.0, dt)] != loss[(w, t, 0.05, dt)] for w in (8, 16) for t in (4.0, 8.0) for dt in (0.2, 0.1))
    assert all(len(c["training"]["losses"]) <= 201 for c in result.cells)


def test_the_step_spread_axis_trains_on_irregular_steps_and_keeps_the_regular_ladder(tmp_path):
    """A spread s trains each pair at its own step, uniform in dt_train (1 +- s): the cells differ from the
    regular ones, have their own key and table, and are judged on the same regular ladder."""
    grid = _small_grid(training_schemes=(("euler",),), seeds=(0,), step_spreads=(0.0, 0.5), iterations=150)
    result = run_sweep(grid, tmp_path / "spread", workers=1, show_progress=False)
    assert len(result.cells) == 4 and result.report().count("## width") == 2
    assert "step spread 0.5" in result.report()
    keys = {c["key"] for c in result.cells}
    assert {"euler_dt0.1_seed0_width50_time4_noise0", "euler_dt0.1_seed0_width50_time4_noise0_spread0.5"} <= keys
    loss = {(c["cell"]["spread"], c["cell"]["training_dt"]): c["training"]["best_loss"] for c in result.cells}
    assert all(loss[(0.0, dt)] != loss[(0.5, dt)] for dt in (0.2, 0.1))
    assert all(c["dts"] == result.cells[0]["dts"] for c in result.cells)
    with pytest.raises(ValueError, match="step_spreads must lie in"):
        _small_grid(step_spreads=(1.0,))


@pytest.mark.parametrize("flag", ["extend", "overwrite", "compile", "show_progress"])
def test_a_flag_that_is_not_a_bool_is_refused_before_the_folder_is_touched(tmp_path, flag):
    with pytest.raises(ValueError, match=f"{flag} must be True or False, got str 'no'"):
        run_sweep(_small_grid(), tmp_path / "sweep", **{flag: "no"})
    assert not (tmp_path / "sweep").exists()


def test_a_folder_that_holds_something_else_is_refused(tmp_path, capsys):
    (tmp_path / "thesis.tex").write_text("years of work")
    (tmp_path / "report.md").write_text("the referees' answers")
    for overwrite in ([], ["--overwrite"]):  # overwrite replaces a sweep, never a folder of other things
        assert main(["sweep", "-o", str(tmp_path), *SMALL, *overwrite]) == 2
        assert "is not empty and holds no sweep" in capsys.readouterr().err
    assert (tmp_path / "thesis.tex").read_text() == "years of work"
    assert (tmp_path / "report.md").read_text() == "the referees' answers"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md", "thesis.tex"]


def test_a_killed_sweep_resumes_to_the_uninterrupted_result(tmp_path):
    """SIGKILL in the middle of a group's training; the same command again resumes from the group's checkpoint
    and ends with the cells of a run that was never interrupted."""
    options = [*SMALL[:-3], "2000", *SMALL[-2:]]
    folder = tmp_path / "killed"
    command = [sys.executable, "-m", "dynlearn.cli", "--progress", "off", "sweep", "-o", str(folder), *options]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not list((folder / "checkpoints").glob("*.pt")):
        time.sleep(0.05)
    assert process.poll() is None, process.stderr.read().decode()
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert list((folder / "checkpoints").glob("*.pt")) and not list((folder / "cells").glob("*.json"))
    assert main(["--progress", "off", "sweep", "-o", str(folder), *options]) == 0
    whole = tmp_path / "whole"
    assert main(["--progress", "off", "sweep", "-o", str(whole), *options]) == 0
    for path in (whole / "cells").glob("*.json"):
        resumed = json.loads((folder / "cells" / path.name).read_text())
        uninterrupted = json.loads(path.read_text())
        assert resumed["training"]["best_loss"] == uninterrupted["training"]["best_loss"]
        assert resumed["evaluations"] == uninterrupted["evaluations"]


def test_a_process_pool_and_the_ray_backend_give_the_in_process_result(tmp_path):
    grid = _small_grid(training_schemes=(("euler",), ("midpoint", "rk4")), seeds=(0,))
    local = run_sweep(grid, tmp_path / "local", workers=1, show_progress=False)
    pooled = run_sweep(grid, tmp_path / "pool", workers=2, show_progress=False)
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        distributed = run_sweep(grid, tmp_path / "ray", backend="ray", show_progress=False)
    finally:
        ray.shutdown()
    for other in (pooled, distributed):
        assert [c["key"] for c in other.cells] == [c["key"] for c in local.cells]
        for a, b in zip(local.cells, other.cells):
            assert a["evaluations"] == b["evaluations"]
        assert other.baseline == local.baseline


def test_the_sweep_example_shows_the_transition(tmp_path):
    """examples/training_step_sweep.py as a user runs it: the plateau of Euler-trained fields falls like dt_train^1
    (the modified equation's first-order term) and they dip at every dt_train (discrete maps); inside midpoint and
    RK4 the plateaus are far lower."""
    example = Path(__file__).parents[1] / "examples" / "training_step_sweep.py"
    done = subprocess.run([sys.executable, str(example), "-o", str(tmp_path / "sweep")], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "DYNLEARN_PROGRESS": "off"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "euler: plateau ~ dt_train^" in done.stdout
    result = load_sweep(tmp_path / "sweep")
    euler = result.slopes("final")["euler"]["every_dt_train"]
    assert 0.6 < euler.slope < 1.5, euler
    assert all(r["evaluations"]["euler"]["dip_depth"] < 0.5 for r in result.cells if r["cell"]["schemes"] == ["euler"])
    for dt in result.grid.training_dts:
        for scheme in ("midpoint", "rk4"):
            assert max(result.plateaus((scheme,))[dt]) < min(result.plateaus(("euler",))[dt]) / 3, (scheme, dt)


@pytest.mark.slow
def test_the_default_sweep_shows_the_published_transition(tmp_path):
    """The authors' sweep as `dynlearn sweep` runs it (about 4 minutes on 2 cores): Euler's plateau scales like
    dt_train^1 and it dips at every dt_train from 0.4 to 0.01, midpoint's like dt_train^2 until a floor, RK4's
    falls steeply from 0.4 to 0.2 onto a ~1e-3 floor; Euler-trained fields are another system in other schemes."""
    result = run_sweep(SweepGrid(), tmp_path / "sweep", show_progress=False)
    slopes = result.slopes("final")
    euler, midpoint = slopes["euler"]["every_dt_train"], slopes["midpoint"]["asymptotic_range"]
    assert 0.7 < euler.slope < 1.2 and midpoint is not None and 1.4 < midpoint.slope < 2.6
    assert slopes["rk4"]["local_slopes"][0] > 2.5
    assert 3e-4 < float(np.median(result.plateaus(("rk4",))[0.01])) < 1e-2
    for dt in (0.4, 0.2, 0.1, 0.01):
        records = result._select(("euler",), dt)
        assert all(r["evaluations"]["euler"]["kind"] == "discrete" for r in records)
        assert all(r["evaluations"]["rk4"]["kind"] == "another system" for r in records)


def test_a_sweep_folder_in_use_is_refused(tmp_path, capsys):
    folder = tmp_path / "sweep"
    code = ("import sys, time; from dynlearn._files import folder_lock\n"
            "with folder_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["sweep", "-o", str(folder), *SMALL, "--overwrite"]) == 2
        assert "is in use by another run" in capsys.readouterr().err
        assert not folder.exists()
    finally:
        holder.kill()
        holder.wait()
