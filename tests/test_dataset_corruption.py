"""read_dataset against damaged and hostile files: every mutation of a valid file either reads back as a valid
dataset or fails with DatasetFormatError naming the file; never another exception, never a read of a size the
file merely declares."""

from __future__ import annotations

import os
import shutil

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynlearn.datasets import DatasetFormatError, generate_dataset, read_dataset, write_dataset
from dynlearn.systems import make_system


@pytest.fixture(scope="module")
def valid_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("valid")
    dataset = generate_dataset(make_system("pendulum"), dt=0.1, t_final=2.0, n_trajectories=3, seed=0)
    return write_dataset(folder / "pendulum.h5", dataset)


def _copy(valid_file, folder, name="mutated.h5"):
    target = folder / name
    shutil.copyfile(valid_file, target)
    return target


def _read_in_a_child(path) -> str:
    """read_dataset(path) in a forked child: "read" (a valid dataset), "refused" (DatasetFormatError naming the
    file), "escaped: ..." (any other exception: the failure this test looks for), or "native crash" (the HDF5 C
    library itself crashed: HDF5 2.0 segfaulted in 2 of 1500 random truncations and byte flips, reading a damaged
    attribute, which no Python code can catch; isolated here so that it cannot take the test run down)."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report in one line, exit without cleanup
        os.close(reader)
        try:
            read_dataset(path).validate(str(path))
            outcome = "read"
        except DatasetFormatError as error:
            outcome = "refused" if str(path) in str(error) else f"escaped: the message does not name the file: {error}"
        except BaseException as error:  # noqa: BLE001
            outcome = f"escaped: {type(error).__name__}: {error}"
        os.write(writer, outcome.encode()[:4000])
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as stream:
        outcome = stream.read().decode()
    _, status = os.waitpid(pid, 0)
    return outcome if os.WIFEXITED(status) else "native crash"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="isolates each read in a forked child")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_truncated_or_byte_flipped_files_never_escape_as_other_errors(valid_file, tmp_path, data):
    content = bytearray(valid_file.read_bytes())
    if data.draw(st.booleans(), label="truncate"):
        content = content[: data.draw(st.integers(0, len(content) - 1), label="length")]
    else:
        for _ in range(data.draw(st.integers(1, 8), label="flips")):
            offset = data.draw(st.integers(0, len(content) - 1), label="offset")
            content[offset] ^= data.draw(st.integers(1, 255), label="mask")
    path = tmp_path / "mutated.h5"
    path.write_bytes(bytes(content))
    outcome = _read_in_a_child(path)
    assert outcome in ("read", "refused", "native crash"), outcome


def _link_states_softly(handle):
    del handle["states"]
    handle["states"] = h5py.SoftLink("/nowhere")


def _link_states_externally(handle):
    del handle["states"]
    handle["states"] = h5py.ExternalLink("/etc/passwd", "/states")


def _states_as_a_group(handle):
    del handle["states"]
    handle.create_group("states")


def _huge_declared_states(handle):
    del handle["states"]
    handle.create_dataset("states", shape=(3, 10**9, 2), dtype="f8", chunks=(1, 1024, 2))


def _text_states(handle):
    del handle["states"]
    handle.create_dataset("states", data=np.array([b"a", b"b"]))


def _delete(name):
    def mutate(handle):
        del handle[name]
    return mutate


def _attribute(name, value):
    def mutate(handle):
        handle.attrs[name] = value
    return mutate


def _delete_attribute(name):
    def mutate(handle):
        del handle.attrs[name]
    return mutate


def _coordinate(values):
    def mutate(handle):
        handle.create_dataset("x", data=values).attrs["dynlearn_role"] = "coordinate"
    return mutate


@pytest.mark.parametrize("mutate, message", [
    (_link_states_softly, "states: a SoftLink, not a dataset"),
    (_link_states_externally, "states: a ExternalLink, not a dataset"),
    (_states_as_a_group, "states: a Group, not a dataset"),
    (_huge_declared_states, "states of declared shape (3, 1000000000, 2) needs about"),
    (_text_states, "states: holds |S1, not numbers"),
    (_delete("time"), "dataset 'time' is missing"),
    (_delete_attribute("dt"), "attribute 'dt' is missing"),
    (_attribute("dt", "fast"), "attribute 'dt' is 'fast', not a number"),
    (_attribute("n_steps", 2.5), "attribute 'n_steps' is 2.5, not an integer"),
    (_attribute("parameters", "{gravity: -1"), "attribute 'parameters' is not valid JSON"),
    (_attribute("state_names", "[1, 2]"), "'state_names' must be a JSON list of names"),
    (_attribute("format_version", "one"), "attribute 'format_version' is 'one'"),
    (_coordinate(np.array([])), "coordinates/x: must be a non-empty array of finite numbers"),
    (_coordinate(np.array([0.0, np.nan])), "coordinates/x: must be a non-empty array of finite numbers"),
])
def test_hostile_or_damaged_nodes_are_refused_naming_the_field(valid_file, tmp_path, mutate, message):
    path = _copy(valid_file, tmp_path)
    with h5py.File(path, "r+") as handle:
        mutate(handle)
    with pytest.raises(DatasetFormatError) as error:
        read_dataset(path)
    assert str(path) in str(error.value) and message in str(error.value), error.value
