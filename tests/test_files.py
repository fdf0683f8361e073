"""Writing files: atomic, race-free without overwrite, modes from the umask, a killed writer's debris swept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from dynlearn._files import atomic_write


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_gets_the_mode_the_umask_gives(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        path = atomic_write(tmp_path / "result.json", lambda p: p.write_text("{}"))
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == mode


def test_of_two_writers_without_overwrite_exactly_one_wins(tmp_path):
    target = tmp_path / "data.h5"
    barrier = threading.Barrier(2)
    outcomes = []

    def writer(text: str) -> None:
        def write(path):
            path.write_text(text)
            barrier.wait()  # both have passed the existence check and written their file
        try:
            atomic_write(target, write, replace=False)
            outcomes.append(text)
        except FileExistsError as error:
            outcomes.append(str(error))

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if o in ("first", "second")]
    assert len(winners) == 1 and target.read_text() == winners[0]
    assert any("written meanwhile by another run" in o for o in outcomes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.h5"]


def test_a_killed_writer_leaves_debris_that_the_next_write_sweeps(tmp_path):
    target = tmp_path / "model.pt"
    code = ("import sys, time; from dynlearn._files import atomic_write; "
            "atomic_write(sys.argv[1], lambda p: (p.write_text('half'), time.sleep(60)))")
    process = subprocess.Popen([sys.executable, "-c", code, str(target)])
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".model.pt.*.tmp")):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert list(tmp_path.glob(".model.pt.*.tmp")) and not target.exists()  # killed: debris, nothing finished
    atomic_write(target, lambda p: p.write_text("whole"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"] and target.read_text() == "whole"


def test_a_failed_or_interrupted_write_leaves_nothing(tmp_path):
    def failing(path):
        path.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "report.md", failing)
    assert not list(tmp_path.iterdir())


def test_a_folder_in_use_refuses_a_second_run_and_is_free_once_its_holder_dies(tmp_path):
    from dynlearn._files import folder_lock

    folder = tmp_path / "run"
    code = ("import sys, time; from dynlearn._files import folder_lock\n"
            "with folder_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(ValueError, match=r"is in use by another run \(process \d+ on"):
        with folder_lock(folder):
            pass
    holder.send_signal(signal.SIGKILL)  # killed: the lock goes with it
    holder.wait()
    with folder_lock(folder):
        pass



def test_a_lock_leaves_no_file_and_a_refused_run_no_empty_folder(tmp_path):
    from dynlearn._files import folder_lock

    with pytest.raises(RuntimeError):
        with folder_lock(tmp_path / "run"):
            raise RuntimeError("refused before writing anything")
    assert list(tmp_path.iterdir()) == []
    with folder_lock(tmp_path / "run"):
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "log.json").write_text("{}")
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # what the run wrote stays; the lock file goes


def test_a_lock_file_removed_by_its_previous_holder_after_we_opened_it_is_not_trusted(tmp_path, monkeypatch):
    """The interleaving that makes removing lock files unsafe, made deterministic: we open ``.run.lock``, its
    previous holder then unlinks it on release, and we lock the orphaned file, which a third process would not
    see. folder_lock must notice (the path no longer names the file it holds) and lock the file at the path."""
    import builtins

    import dynlearn._files as files

    lock_path = tmp_path / ".run.lock"
    lock_path.write_text("process 1 on elsewhere")
    real_open, opened = builtins.open, []

    def open_then_lose_the_race(path, *args, **kwargs):
        handle = real_open(path, *args, **kwargs)
        if not opened:
            os.unlink(lock_path)  # the previous holder releases between our open and our flock
        opened.append(path)
        return handle

    monkeypatch.setattr(files, "open", open_then_lose_the_race, raising=False)
    with files.folder_lock(tmp_path / "run"):
        assert len(opened) == 2
        held_by_us = lock_path.read_text()
        assert held_by_us.startswith(f"process {os.getpid()}")
        # a third process finds the file at the path locked
        code = ("import fcntl, sys\nwith open(sys.argv[1], 'a+') as h:\n"
                "    try:\n        fcntl.flock(h, fcntl.LOCK_EX | fcntl.LOCK_NB)\n    except BlockingIOError:\n"
                "        sys.exit(3)")
        assert subprocess.run([sys.executable, "-c", code, str(lock_path)]).returncode == 3


def test_ctrl_c_inside_a_write_is_honoured_when_the_write_returns(tmp_path):
    """A C library may catch SIGINT inside its own loop (HDF5's write did, and the command exited 0): the write
    holds it and raises it after, and the half-written file goes."""
    def write(path):
        path.write_text("half")
        os.kill(os.getpid(), signal.SIGINT)  # arrives mid-write
        path.write_text("whole")  # the write goes on to its end

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "data.h5", write)
    assert not list(tmp_path.iterdir())
