"""Many independent tasks, run on an existing engine: this process, a local process pool, or a Ray cluster.

A sweep is a list of independent tasks (train and evaluate one group of models). Where they run is a choice of
backend, not of code:

    local   the standard library's process pool (``multiprocessing``), ``workers`` processes on this machine,
            each with one torch thread (small models are launch-bound: two processes beat two threads); with
            ``workers=1``, in this process (progress bars and Ctrl-C as usual)
    ray     Ray tasks (``pip install 'dynlearn[distributed]'``) on the cluster at ``address`` (or RAY_ADDRESS, or a
            local instance when neither is given), each task asking for its CPUs and GPUs so that Ray places it

Results come back to the caller as each task ends (``on_result``), in this process: whoever writes files does
so in one place, whatever the backend.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from typing import Any, Callable, Sequence

__all__ = ["BACKENDS", "TaskResources", "check_backend", "run_tasks"]

#: where independent tasks run: ``local`` (this process or a local process pool) or ``ray`` (a Ray cluster)
BACKENDS = ("local", "ray")


@dataclasses.dataclass(frozen=True)
class TaskResources:
    """What one task needs: Ray schedules on these (``gpus=1``: one task per GPU)."""

    cpus: float = 1.0
    gpus: float = 0.0


def _one_thread(function: Callable[[Any], Any], payload: Any) -> Any:
    import torch

    torch.set_num_threads(1)
    return function(payload)


def _indexed(job: tuple[Callable[[Any], Any], int, Any]) -> tuple[int, Any]:
    function, index, payload = job
    return index, _one_thread(function, payload)


def run_tasks(function: Callable[[Any], Any], payloads: Sequence[Any], *, backend: str = "local", workers: int = 1,
              address: str | None = None, resources: TaskResources = TaskResources(),
              on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
    """``[function(p) for p in payloads]``, run on ``backend``; ``on_result(index, result)`` is called in this
    process as each task ends (in the order they end). ``function`` must be importable by name (a module-level
    function) and its payloads and results picklable. The first task to fail stops the run with its error, and so
    does Ctrl-C: the other tasks are stopped (a local pool's workers terminated, Ray tasks cancelled); what they
    had finished was already handed to ``on_result``."""
    check_backend(backend, address)
    results: list[Any] = [None] * len(payloads)

    def done(index: int, value: Any) -> None:
        results[index] = value
        if on_result is not None:
            on_result(index, value)

    if not payloads:
        return results
    if backend == "ray":
        _run_on_ray(function, payloads, address, resources, done)
    elif workers <= 1 or len(payloads) == 1:
        for index, payload in enumerate(payloads):
            done(index, function(payload))
    else:
        context = multiprocessing.get_context("spawn")  # fork after torch has started threads can deadlock
        jobs = [(function, index, payload) for index, payload in enumerate(payloads)]
        # the pool's exit terminates its workers: a failed task or Ctrl-C does not wait for the others to end
        with context.Pool(min(workers, len(payloads))) as pool:
            for index, value in pool.imap_unordered(_indexed, jobs):
                done(index, value)
    return results


def check_backend(backend: str, address: str | None = None, *, timeout: float = 5.0) -> None:
    """Refuse, before any work, a backend that cannot run: an unknown name, Ray not installed, or a Ray address
    (``HOST:PORT`` or ``ray://HOST:PORT``, given or from RAY_ADDRESS) where nothing answers within ``timeout``
    seconds (ray.init itself retries an unreachable head for minutes). "auto" and "local" are left to Ray."""
    import importlib.util
    import socket

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend != "ray":
        return
    if importlib.util.find_spec("ray") is None:
        raise ValueError("backend 'ray' needs Ray: pip install 'dynlearn[distributed]'")
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is None or address in ("auto", "local"):
        return
    host, separator, port = address.removeprefix("ray://").rpartition(":")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"Ray address {address!r}: expected HOST:PORT (e.g. 10.0.0.1:6379), ray://HOST:PORT or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        raise ValueError(f"Ray address {address!r}: nothing answers there ({error.strerror or error}); start the head "
                         f"with ray start --head, or leave the address out to start Ray on this machine") from None


def _run_on_ray(function: Callable[[Any], Any], payloads: Sequence[Any], address: str | None,
                resources: TaskResources, done: Callable[[int, Any], None]) -> None:
    try:
        import ray
    except ImportError:
        raise ValueError("backend 'ray' needs Ray: pip install 'dynlearn[distributed]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        address = address or os.environ.get("RAY_ADDRESS") or None
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 **({} if address else {"num_cpus": os.cpu_count()}))
    remote = ray.remote(num_cpus=resources.cpus, num_gpus=resources.gpus)(_one_thread)
    pending = {remote.remote(function, payload): index for index, payload in enumerate(payloads)}
    try:
        while pending:
            finished, _ = ray.wait(list(pending), num_returns=1)
            for reference in finished:
                done(pending.pop(reference), ray.get(reference))
    except BaseException:
        for reference in pending:
            ray.cancel(reference, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()
