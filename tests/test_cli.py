"""The command line: the demonstration's numbers and files, listing schemes, bad input."""

import json
import subprocess
import sys

import pytest

from dynlearn.cli import main


def test_demo_writes_its_report_and_the_orders_match_theory(tmp_path, capsys):
    folder = tmp_path / "out"
    assert main(["demo", "-o", str(folder), "--schemes", "euler", "midpoint", "rk4"]) == 0
    printed = capsys.readouterr().out
    assert "rk4: observed order" in printed and "[ok]" in printed
    numbers = json.loads((folder / "convergence.json").read_text())
    assert numbers["schemes"] == ["euler", "midpoint", "rk4"]
    for scheme, order in [("euler", 1), ("midpoint", 2), ("rk4", 4)]:
        assert abs(numbers["rates"][scheme]["rate"] - order) < 0.05
    assert (folder / "convergence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "fitted rate" in (folder / "convergence.txt").read_text()
    assert not list(folder.glob("*.tmp"))  # no temporary file left behind


def test_schemes_lists_every_registered_tableau(capsys):
    assert main(["schemes"]) == 0
    printed = capsys.readouterr().out
    for name in ["euler", "rk4", "rk38", "dopri5"]:
        assert name in printed
    assert "| " + "6".rjust(10) + " |" in printed  # dopri5's fixed step costs 6 evaluations, not 7


def test_bad_input_fails_before_any_file_is_written(tmp_path, capsys):
    folder = tmp_path / "never"
    assert main(["demo", "-o", str(folder), "--schemes", "rk5"]) == 2
    assert "unknown scheme 'rk5'" in capsys.readouterr().err
    assert not folder.exists()
    with pytest.raises(SystemExit):
        main(["demo", "--t-final", "-1"])


def test_console_script_is_installed():
    import shutil
    from pathlib import Path

    script = Path(sys.executable).parent / "dynlearn"
    command = str(script) if script.exists() else shutil.which("dynlearn")
    assert command, "the dynlearn console script is not installed"
    completed = subprocess.run([command, "--version"], capture_output=True, text=True)
    assert completed.returncode == 0 and completed.stdout.startswith("dynlearn ")


def test_only_the_dynlearn_namespace_is_importable(tmp_path):
    # From a neutral folder (the repository root would put its own folders on sys.path).
    code = (
        "import importlib.util, pathlib, dynlearn.systems, dynlearn.datasets, dynlearn.analysis\n"
        "assert dynlearn.systems.__name__ == 'dynlearn.systems'\n"
        "ours = {pathlib.Path(m.__file__).resolve() for m in (dynlearn.systems, dynlearn.datasets, dynlearn.analysis)}\n"
        "for name in ('systems', 'datasets', 'analysis'):\n"
        "    spec = importlib.util.find_spec(name)\n"
        "    assert spec is None or pathlib.Path(spec.origin).resolve() not in ours, f'top-level {name!r}'\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr


def test_compile_option_takes_an_optional_mode_that_training_accepts():
    from dynlearn.continuousnet.training import COMPILE_MODES
    from dynlearn.cli import build_parser

    parser = build_parser()
    base = ["train", "continuousnet", "--data", "digits", "-o", "run"]
    assert parser.parse_args(base).compile is None
    assert parser.parse_args(base + ["--compile"]).compile == "default"
    assert parser.parse_args(base + ["--compile", "reduce-overhead"]).compile == "reduce-overhead"
    action = next(a for a in parser._subparsers._group_actions[0].choices["train"]._actions if a.dest == "compile")
    assert tuple(action.choices) == COMPILE_MODES  # the command line offers exactly what training accepts


def test_ctrl_c_ends_a_command_with_one_line(tmp_path):
    """SIGINT during a long command: one line and status 130, no KeyboardInterrupt traceback, no output file."""
    import signal
    import time

    command = [sys.executable, "-m", "dynlearn.cli", "--progress", "off", "generate", "sst", "--synthetic",
               "--years", "3", "-o", str(tmp_path / "sst.h5")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(8)  # past the imports and the parser, into the simulation (3 years take ~20 s)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.strip() == "dynlearn generate: interrupted; no half-written file was left"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["generate", "cylinder", "-o", "c.h5", "--device", "mps"], "dynlearn runs on cpu or cuda"),
    (["generate", "cylinder", "-o", "c.h5", "--device", "tpu"], "is not a device"),
    (["generate", "cylinder", "-o", "c.h5", "--device", "gpu0"], "is not a device"),
    (["generate", "pendulum", "-o", "p.h5", "--seed", str(2**64)], "must be an integer in [0, 2^63 - 1]"),
    (["generate", "pendulum", "-o", "out/"], "is a folder; give the file to write"),
    (["train", "autoencoder", "--data", "d.h5", "-o", "run", "--kappa", "-1"], "must be a finite number >= 0"),
    (["train", "continuousnet", "--data", "digits", "-o", "run", "--learning-rate", "inf"], "finite number > 0"),
    (["train", "continuousnet", "--data", "digits", "-o", "run", "--learning-rate", "1e300"], "a number in (0, 1000]"),
    (["sweep", "--final-learning-rate", "1e4"], "a number in (0, 1000]"),
    (["generate", "pendulum", "-o", ""], "'' is empty; give the file to write"),
])
def test_bad_options_fail_before_any_work_with_one_line(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_without_cuda_is_refused_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["study", "--device", "cuda", "-o", str(tmp_path / "study")])
    assert "this torch has no CUDA device" in capsys.readouterr().err and not (tmp_path / "study").exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", b"PK\x03\x04 truncated zip"])
def test_manifest_of_a_file_that_is_no_checkpoint_is_one_line(content, tmp_path, capsys):
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    assert main(["manifest", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dynlearn manifest: error: {path}: not a ContinuousNet checkpoint") and err.count("\n") == 1


@pytest.mark.parametrize("config", ["{}", "[1, 2]", "{not json", '{"recipe": {"name": "cylinder"}}'])
def test_evaluate_of_a_run_with_a_broken_config_is_one_line(config, tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(config)
    assert main(["evaluate", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "not the config.json of a run made by train_run" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("error, status, line", [
    (RuntimeError("kaboom\nwith a second line"), 1,
     "dynlearn schemes: internal error, this is a bug: RuntimeError: kaboom (rerun with dynlearn --debug"),
    (MemoryError(), 2, "dynlearn schemes: error: out of memory (MemoryError: ); ask for less"),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried to "
                  "allocate 240000000000 bytes"), 2, "dynlearn schemes: error: out of memory (RuntimeError: "),
])
def test_a_bug_or_exhausted_memory_ends_in_one_line(monkeypatch, capsys, error, status, line):
    """The last net: anything that is not a user error says in one line that it is a bug (or that memory ran out),
    without a traceback unless --debug or DYNLEARN_DEBUG asks for it."""
    import dynlearn.cli.studies

    def broken(arguments):
        raise error

    monkeypatch.setattr(dynlearn.cli.studies, "_run_schemes", broken)
    monkeypatch.delenv("DYNLEARN_DEBUG", raising=False)
    assert main(["schemes"]) == status
    printed = capsys.readouterr().err.strip().splitlines()
    assert len(printed) == 1 and printed[0].startswith(line), printed
    with pytest.raises(type(error)):
        main(["--debug", "schemes"])
    monkeypatch.setenv("DYNLEARN_DEBUG", "1")
    with pytest.raises(type(error)):
        main(["schemes"])


@pytest.mark.parametrize("argv, message", [
    # sizes refused before allocating
    (["generate", "pendulum", "--dt", "1e-9", "--t-final", "1", "-o", "p.h5"], "needs about 447 GiB, more than"),
    (["generate", "pendulum", "--n-traj", "10000000000", "-o", "p.h5"], "needs about 4.47e+05 GiB"),
    (["generate", "wave", "--nodes", "100000000", "-o", "w.h5"], "GiB, more than"),
    (["generate", "sst", "--synthetic", "--years", "100000", "-o", "s.h5"], "ask for fewer --years"),
    # a state the exact solution does not take as is
    (["generate", "pendulum", "--x0", "1e308,0", "-o", "p.h5"], "from the initial state [1e+308, 0.0] starts at"),
    (["generate", "pendulum-xy", "--x0", "1,1,0,0", "-o", "p.h5"], "the system maps that state elsewhere"),
    # options of another kind of system
    (["generate", "cylinder", "--dt", "0.1", "-o", "c.h5"], "--dt does not apply to cylinder"),
    (["generate", "pendulum", "--re", "50", "--years", "3", "-o", "p.h5"], "--re, --years do not apply to pendulum"),
    (["generate", "sst", "--synthetic", "--n-traj", "5", "-o", "s.h5"], "--n-traj does not apply to sst"),
    (["generate", "cylinder", "--gravity", "3", "-o", "c.h5"], "--gravity does not apply to cylinder"),
    (["train", "continuousnet", "--data", "digits", "-o", "run", "--kappa", "2"], "--kappa does not apply to contin"),
    (["train", "autoencoder", "--data", "d.h5", "-o", "run", "--widths", "8", "8"], "--widths does not apply to auto"),
    # outputs that cannot be written, found before the work
    (["generate", "pendulum", "-o", "a-file/p.h5"], "a-file is a file"),
    (["study", "-o", "a-file/study"], "a-file is a file"),
    (["sweep", "-o", "a-file"], "is a file, not a folder"),
    (["demo", "-o", "a-file/demo"], "a-file is a file"),
    # found by a second audit
    (["generate", "cylinder", "--snapshots", "1000000000", "-o", "c.h5"], "GiB, more than"),
    (["generate", "sst", "--synthetic", "--train-end", "2013-01-01", "-o", "s.h5"], "--train-end applies with --anom"),
    (["generate", "sst", "--synthetic", "--anomalies", "mean", "--train-end", "2100-01-01", "-o", "s.h5"],
     "every date of the record (2012-01-01 .. 2017-12-31) falls in the training period"),
    (["study", "--seeds", "1", "1", "-o", "study"], "seeds repeats a seed: [1, 1]"),
    (["evaluate", "nothere"], "nothere does not exist: not a run folder"),
    (["evaluate", "a-file"], "a-file is a file: not a run folder"),
    (["manifest", "nothere.pt"], "nothere.pt: no such file"),
    (["manifest", "a-file"], "a-file: not a ContinuousNet checkpoint written by dynlearn (empty, truncated or"),
    (["train", "continuousnet", "--data", "nothere", "-o", "run"], "nothere: no such folder; image data are"),
    (["info", ""], "'': no such dataset file"),
    # a third audit: work the sizes did not cover, numbers too large for float64
    (["sweep", "--t-final", "1e9", "--dt-train", "0.4"], "the evaluation's finest rung"),
    (["sweep", "--widths", "10000000000", "--dt-train", "0.4"], "(width 10000000000)"),
    (["demo", "--coarsest-steps", "100000000000", "-o", "demo"], "rollout: 100000000001 states of 2 values needs"),
    (["generate", "pendulum", "--gravity", "1e308", "--t-final", "1", "-o", "p.h5"], "the solution is not finite"),
    (["generate", "oscillator", "--frequency", "1e300", "-o", "o.h5"], "a number is beyond float64's range"),
    (["train", "continuousnet", "--data", "digits", "-o", "run", "--widths", "1000000", "1000000"],
     "a ContinuousNet of 1.53e+14 parameters needs about"),
    (["train", "continuousnet", "--data", "digits", "-o", "run", "--pieces", "1000000"],
     "the number of pieces must be an integer in [1, 1024], got 1000000"),
])
def test_bad_requests_end_in_one_line_before_any_work(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("a user's file")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_an_output_that_cannot_be_written_is_refused_before_the_work(tmp_path, monkeypatch, capsys):
    import os

    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(tmp_path) else real_access(path, mode))
    for argv in (["generate", "cylinder", "--preset", "coarse", "-o", str(tmp_path / "c.h5")],
                 ["study", "-o", str(tmp_path / "study")], ["sweep", "-o", str(tmp_path / "sweep")]):
        began = __import__("time").perf_counter()
        assert main(argv) == 2
        assert "permission denied" in capsys.readouterr().err
        assert __import__("time").perf_counter() - began < 5  # refused, not simulated then refused


def test_one_output_policy_earlier_outputs_are_replaced_only_when_asked(tmp_path, capsys):
    folder = tmp_path / "demo"
    options = ["demo", "-o", str(folder), "--schemes", "euler", "rk4"]
    assert main(options) == 0
    written = (folder / "convergence.json").stat().st_mtime_ns
    assert main(options) == 2
    assert "holds the outputs of an earlier run (convergence.txt" in capsys.readouterr().err
    assert (folder / "convergence.json").stat().st_mtime_ns == written
    assert main([*options, "--overwrite"]) == 0


def test_a_ray_address_where_nothing_answers_is_refused_in_seconds(tmp_path, capsys):
    """ray.init retries an unreachable head for minutes; the sweep asks the address first."""
    pytest.importorskip("ray")
    import time

    began = time.perf_counter()
    for address, message in (("127.0.0.1:1", "nothing answers there"), ("nonsense", "expected HOST:PORT")):
        assert main(["sweep", "--backend", "ray", "--ray-address", address, "-o", str(tmp_path / "sweep")]) == 2
        assert message in capsys.readouterr().err
    assert time.perf_counter() - began < 30 and list(tmp_path.iterdir()) == []
