"""The cost of one training iteration per model: an ensemble of M members against M trainings one after another.

A sweep trains many 2-50-2 tanh fields G inside a scheme on minibatches of 128 one-step pairs. One at a time, an
iteration is a few tiny matrix products, launch-bound; stacked (``EnsembleMLP``, ``train_ensemble``), the M
members share every launch. Printed per M: the sequential cost per model-iteration (``train`` of one model, the
same settings), the ensemble's, and their ratio (the target: at most 1/3 on 2 CPU cores at 25 members, at most
1/20 on a GPU). ``--compile`` adds the ensemble's loss under ``torch.compile`` (compilation time excluded, then
reported on its own).

    python benchmarks/sweep_speed.py                          # CPU, float64, rk4, M = 5, 25, 75
    python benchmarks/sweep_speed.py --device cuda --compile  # and the compiled ensemble
"""

from __future__ import annotations

import argparse
import time

import torch

from dynlearn.fields import MLP, NeuralVectorField, TrainingSettings, embedded_loss, train
from dynlearn.fields.ensemble import EnsembleMLP, ensemble_embedded_loss
from dynlearn.fields.training import train_ensemble


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _data(samples: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    starts = torch.randn(samples, 2, generator=generator, dtype=torch.float64)
    return starts.to(device, dtype), (starts + 0.1 * torch.sin(starts)).to(device, dtype)


def sequential_cost(scheme: str, iterations: int, dtype: torch.dtype, device: torch.device, samples: int) -> float:
    """Seconds per iteration of ``train`` on one model."""
    starts, successors = _data(samples, dtype, device)
    field = NeuralVectorField(MLP(2, 2).to(device, dtype))
    settings = TrainingSettings(iterations=iterations, batch_size=128, patience=iterations, progress=False)
    loss = embedded_loss(field, starts, successors[:, None], 0.1, (scheme,))
    train(field, loss, samples, TrainingSettings(iterations=20, batch_size=128, progress=False))  # warm up
    _synchronise(device)
    began = time.perf_counter()
    train(field, loss, samples, settings)
    _synchronise(device)
    return (time.perf_counter() - began) / iterations


def ensemble_cost(members: int, scheme: str, iterations: int, dtype: torch.dtype, device: torch.device,
                  samples: int, compiled: bool) -> tuple[float, float]:
    """Seconds per iteration of ``train_ensemble`` on M members, and the seconds compilation took (0 eager)."""
    starts, successors = _data(samples, dtype, device)
    ensemble = EnsembleMLP.from_networks([MLP(2, 2).to(device, dtype) for _ in range(members)])
    loss = ensemble_embedded_loss(ensemble, starts.expand(members, -1, -1).contiguous(),
                                  successors.expand(members, -1, -1).contiguous(), [0.1] * members, (scheme,))
    compile_seconds = 0.0
    if compiled:
        loss = torch.compile(loss, dynamic=False)
        began = time.perf_counter()
        train_ensemble(ensemble, loss, [samples] * members, TrainingSettings(iterations=3, batch_size=128,
                                                                            progress=False))
        _synchronise(device)
        compile_seconds = time.perf_counter() - began
    train_ensemble(ensemble, loss, [samples] * members, TrainingSettings(iterations=20, batch_size=128, progress=False))
    settings = TrainingSettings(iterations=iterations, batch_size=128, patience=iterations, progress=False)
    _synchronise(device)
    began = time.perf_counter()
    train_ensemble(ensemble, loss, [samples] * members, settings)
    _synchronise(device)
    return (time.perf_counter() - began) / iterations, compile_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, nargs="+", default=[5, 25, 75])
    parser.add_argument("--schemes", nargs="+", default=["euler", "rk4"])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--samples", type=int, default=5000, help="one-step pairs per member (default 5000)")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="also time the ensemble's loss under torch.compile")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    arguments = parser.parse_args()
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    device, dtype = torch.device(arguments.device), getattr(torch, arguments.dtype)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"{device} ({where}), "
          f"{arguments.dtype}, 2-50-2 tanh, batch 128, {arguments.iterations} iterations\n")
    header = "| scheme | members | sequential ms / model-iteration | ensemble ms / model-iteration | ratio |"
    if arguments.compile:
        header += " compiled ms / model-iteration | compiled ratio | compile s |"
    print(header)
    print("|" + " --- |" * (header.count("|") - 1))
    for scheme in arguments.schemes:
        sequential = sequential_cost(scheme, arguments.iterations, dtype, device, arguments.samples)
        for members in arguments.members:
            eager, _ = ensemble_cost(members, scheme, arguments.iterations, dtype, device, arguments.samples, False)
            row = (f"| {scheme} | {members} | {1e3 * sequential:.3f} | {1e3 * eager / members:.4f} | "
                   f"1/{sequential * members / eager:.1f} |")
            if arguments.compile:
                compiled, seconds = ensemble_cost(members, scheme, arguments.iterations, dtype, device,
                                                  arguments.samples, True)
                row += f" {1e3 * compiled / members:.4f} | 1/{sequential * members / compiled:.1f} | {seconds:.0f} |"
            print(row, flush=True)


if __name__ == "__main__":
    main()
