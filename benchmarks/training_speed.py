"""Training iterations per second of a 2-50-2 tanh field inside RK4: torchdiffeq, dynlearn eager, and dynlearn with
``TrainingSettings(compile=True)`` (each iteration one compiled graph; on CUDA that graph is captured and replayed
as a CUDA graph), for one model and for an ensemble of 25 (the sweep's groups), in one interleaved run.

The problem is the sweep's: one-step pairs, minibatches of 128, Adam with a decaying rate. torchdiffeq's row is
what a user would write without dynlearn: ``odeint(f, x, [0, dt], method="rk4")`` (its fixed-grid RK4 is the 3/8
rule, four evaluations as RK4) and ``torch.optim.Adam``. dynlearn's rows run ``train`` / ``train_ensemble`` as
the studies do (minibatch draws, early-stop bookkeeping, best parameters kept).

A compiled training pays its compile once per training: the per-iteration cost is measured by differencing two
trainings of different lengths (the fixed cost, compile included, cancels), and the compile time is the rest. The
break-even is the number of iterations at which compile time equals the time saved.

    python benchmarks/training_speed.py                    # CPU, float64
    python benchmarks/training_speed.py --device cuda      # GPU: the compiled rows are CUDA graphs
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
import torchdiffeq

import dynlearn
from dynlearn.fields import MLP, NeuralVectorField, TrainingSettings, embedded_loss, train
from dynlearn.fields.ensemble import EnsembleMLP, ensemble_embedded_loss
from dynlearn.fields.training import train_ensemble

SAMPLES, BATCH, DT = 5000, 128, 0.1


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _data(dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    starts = torch.randn(SAMPLES, 2, generator=generator, dtype=torch.float64)
    successors = starts + DT * torch.stack([starts[:, 1], -torch.sin(starts[:, 0])], dim=1)
    return starts.to(device, dtype), successors.to(device, dtype)


def _field(dtype: torch.dtype, device: torch.device) -> NeuralVectorField:
    torch.manual_seed(0)
    return NeuralVectorField(MLP(2, 2, 50).to(device, dtype))


def torchdiffeq_training(iterations: int, dtype: torch.dtype, device: torch.device) -> None:
    starts, successors = _data(dtype, device)
    field = _field(dtype, device)
    interval = torch.tensor([0.0, DT], dtype=dtype, device=device)
    optimizer = torch.optim.Adam(field.parameters(), lr=1e-2)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.01 ** (1 / iterations))
    generator = torch.Generator().manual_seed(0)
    for _ in range(iterations):
        index = torch.randint(SAMPLES, (BATCH,), generator=generator).to(device)
        optimizer.zero_grad(set_to_none=True)
        predicted = torchdiffeq.odeint(field, starts[index], interval, method="rk4")[-1]
        loss = torch.mean((predicted - successors[index]) ** 2)
        float(loss.detach())  # as a training loop that watches its loss does
        loss.backward()
        optimizer.step()
        schedule.step()


def dynlearn_training(iterations: int, dtype: torch.dtype, device: torch.device, compile: bool) -> None:
    starts, successors = _data(dtype, device)
    field = _field(dtype, device)
    loss = embedded_loss(field, starts, successors[:, None], DT, ("rk4",))
    train(field, loss, SAMPLES, TrainingSettings(iterations=iterations, batch_size=BATCH, patience=iterations,
                                                 progress=False, compile=compile))


def ensemble_training(iterations: int, dtype: torch.dtype, device: torch.device, compile: bool,
                      members: int) -> None:
    starts, successors = _data(dtype, device)
    networks = []
    for seed in range(members):
        torch.manual_seed(seed)
        networks.append(MLP(2, 2, 50).to(device, dtype))
    ensemble = EnsembleMLP.from_networks(networks)
    loss = ensemble_embedded_loss(ensemble, starts.expand(members, -1, -1).contiguous(),
                                  successors.expand(members, -1, -1).contiguous(), [DT] * members, ("rk4",))
    settings = TrainingSettings(iterations=iterations, batch_size=BATCH, patience=iterations, progress=False,
                                compile=compile)
    train_ensemble(ensemble, loss, [SAMPLES] * members, settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--short", type=int, default=100, help="iterations of the short training (default 100)")
    parser.add_argument("--long", type=int, default=1100, help="iterations of the long training (default 1100)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds, medians taken (default 3)")
    parser.add_argument("--members", type=int, default=25, help="ensemble members (default 25)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    arguments = parser.parse_args()
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    device, dtype = torch.device(arguments.device), getattr(torch, arguments.dtype)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    compiled_name = "graph-captured (compile=True, CUDA graph)" if device.type == "cuda" else "compiled (compile=True)"
    print(f"torch {torch.__version__}, dynlearn {dynlearn.__version__}; {where}; {arguments.dtype}")
    print(f"2-50-2 tanh field inside RK4, one-step pairs, batch {BATCH}, Adam; per-iteration cost from "
          f"{arguments.long} - {arguments.short} iterations, median of {arguments.rounds} interleaved rounds\n")
    members = arguments.members
    methods = {
        "torchdiffeq odeint rk4 + torch Adam": (lambda n: torchdiffeq_training(n, dtype, device), 1),
        "dynlearn train, eager": (lambda n: dynlearn_training(n, dtype, device, False), 1),
        f"dynlearn train, {compiled_name}": (lambda n: dynlearn_training(n, dtype, device, True), 1),
        f"dynlearn train_ensemble ({members}), eager": (
            lambda n: ensemble_training(n, dtype, device, False, members), members),
        f"dynlearn train_ensemble ({members}), {compiled_name}": (
            lambda n: ensemble_training(n, dtype, device, True, members), members),
    }

    def timed(function, iterations: int) -> float:
        _synchronise(device)
        began = time.perf_counter()
        function(iterations)
        _synchronise(device)
        return time.perf_counter() - began

    first_call = {name: timed(function, arguments.short) for name, (function, _) in methods.items()}  # cold
    per_iteration: dict[str, list[float]] = {name: [] for name in methods}
    fixed: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for round_index in range(arguments.rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            function = methods[name][0]
            short, long = timed(function, arguments.short), timed(function, arguments.long)
            cost = (long - short) / (arguments.long - arguments.short)
            per_iteration[name].append(cost)
            fixed[name].append(short - arguments.short * cost)
    reference = statistics.median(per_iteration[names[0]])
    eager = {1: statistics.median(per_iteration[names[1]]), members: statistics.median(per_iteration[names[3]])}
    print("| method | ms / iteration | iterations / s | model-iterations / s | vs torchdiffeq | vs eager | "
          "compile s (cold / warm cache) | break-even iterations |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in names:
        models = methods[name][1]
        cost = statistics.median(per_iteration[name])
        compiled = "compile=True" in name
        cold = first_call[name] - arguments.short * cost
        warm = statistics.median(fixed[name])
        saved = eager[models] - cost
        even = f"{cold / saved:,.0f}" if compiled and saved > 0 else ("never" if compiled else "-")
        compile_text = f"{cold:.1f} / {warm:.1f}" if compiled else "-"
        print(f"| {name} | {1e3 * cost:.3f} | {1 / cost:,.0f} | {models / cost:,.0f} | {reference * models / cost:.2f}x "
              f"| {eager[models] / cost:.2f}x | {compile_text} | {even} |", flush=True)


if __name__ == "__main__":
    main()
