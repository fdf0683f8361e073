"""Training throughput (images per second) of ContinuousNet against the equivalent ResNet, side by side.

Inputs are RANDOM 32x32x3 tensors with random labels (throughput only, no learning is measured), CIFAR-sized.
Rows: the ResNet built by ``ContinuousNet.to_resnet()`` (ordinary layers), ContinuousNet with Euler and one step
per piece (the same graph through basis expansions), and ContinuousNet with RK4 (four stages per step); each
float32 eager; on CUDA also bf16 autocast (channels_last throughout); with ``--compile``, torch.compile'd, and on
CUDA also compiled with ``mode="reduce-overhead"`` (CUDA graphs: small ContinuousNets are launch-bound).

    python benchmarks/continuousnet_speed.py                         # CPU, small batch
    python benchmarks/continuousnet_speed.py --device cuda --batch-size 128 --compile
    python benchmarks/continuousnet_speed.py --batch-size 2 --image-size 8 --widths 4 4 4 --pieces 4 --threads 1 \
        --steps 100                      # a launch-bound CPU proxy: time per step ~ operations dispatched
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F

from dynlearn.continuousnet import ContinuousNet, to_channels_last


def images_per_second(model: torch.nn.Module, batch: torch.Tensor, labels: torch.Tensor, steps: int,
                      bfloat16: bool) -> tuple[float, float]:
    """Training images per second over ``steps`` optimiser steps, and the seconds the three warm-up steps took
    (where torch.compile does its work)."""
    device = batch.device.type
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def one() -> None:
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bfloat16):
            loss = F.cross_entropy(model(batch).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def synchronise() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    began = time.perf_counter()
    for _ in range(3):
        one()
    synchronise()
    warm_up = time.perf_counter() - began
    began = time.perf_counter()
    for _ in range(steps):
        one()
    synchronise()
    return steps * batch.shape[0] / (time.perf_counter() - began), warm_up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pieces", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="timed optimiser steps per row")
    parser.add_argument("--compile", action="store_true",
                        help="add torch.compile'd columns (on CUDA also mode='reduce-overhead': CUDA graphs)")
    parser.add_argument("--image-size", type=int, default=32, help="side of the random square images")
    parser.add_argument("--widths", type=int, nargs=3, default=[16, 32, 64])
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--rows", nargs="+", default=["resnet", "euler", "rk4"], choices=["resnet", "euler", "rk4"],
                        help="which models (default: all three)")
    arguments = parser.parse_args()
    device = arguments.device
    cuda = device.startswith("cuda")
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    torch.manual_seed(0)
    size = arguments.image_size
    batch = torch.randn(arguments.batch_size, 3, size, size, device=device)  # random inputs: throughput only
    labels = torch.randint(0, 10, (arguments.batch_size,), device=device)
    if cuda:
        batch = batch.contiguous(memory_format=torch.channels_last)
    euler = ContinuousNet(widths=arguments.widths, pieces=arguments.pieces, scheme="euler")
    rows = {
        "ResNet (to_resnet)": euler.to_resnet() if "resnet" in arguments.rows else None,
        f"ContinuousNet euler N={arguments.pieces}": euler if "euler" in arguments.rows else None,
        f"ContinuousNet rk4 N={arguments.pieces}": euler.manifest(scheme="rk4") if "rk4" in arguments.rows else None,
    }
    rows = {name: network for name, network in rows.items() if network is not None}
    # column: (bf16 autocast, compile mode or None)
    columns = {"fp32 eager": (False, None)}
    if cuda:
        columns["bf16 eager"] = (True, None)
    if arguments.compile:
        columns["bf16 compiled" if cuda else "compiled"] = (cuda, "default")
        if cuda:
            columns["bf16 CUDA graphs"] = (True, "reduce-overhead")
    print(f"RANDOM {size}x{size}x3 inputs, batch {arguments.batch_size}, device {device}"
          f"{' (' + torch.cuda.get_device_name() + ')' if cuda else ', ' + str(torch.get_num_threads()) + ' threads'}, "
          f"widths {'/'.join(map(str, arguments.widths))}, {arguments.pieces} pieces "
          f"per stage, SGD; training images per second (compile: seconds of the 3 warm-up steps)", flush=True)
    print(f"{'model':>30} | " + " | ".join(f"{name:>16}" for name in columns), flush=True)
    baseline: dict[str, float] = {}
    for name, network in rows.items():
        cells = []
        for column, (bfloat16, mode) in columns.items():
            model = copy.deepcopy(network).to(device).train()
            if cuda:
                to_channels_last(model)
            if mode is not None:
                torch._dynamo.reset()
                model = torch.compile(model, mode=mode)
            rate, warm_up = images_per_second(model, batch, labels, arguments.steps, bfloat16)
            if name.startswith("ResNet"):
                baseline[column] = rate
            cell = f"{rate:7.0f}" + (f" ({rate / baseline[column]:.2f}x)" if column in baseline else "")
            if mode is not None:
                cell += f" {warm_up:.0f}s"
            cells.append(cell)
        print(f"{name:>30} | " + " | ".join(f"{cell:>16}" for cell in cells), flush=True)
    print("(Nx: images per second relative to the ResNet in the same column)")


if __name__ == "__main__":
    main()
