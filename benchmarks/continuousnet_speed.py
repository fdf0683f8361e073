"""Training throughput (images per second) of ContinuousNet against the equivalent ResNet, side by side.

Inputs are RANDOM 32x32x3 tensors with random labels (throughput only, no learning is measured), CIFAR-sized.
Rows: the ResNet built by ``ContinuousNet.to_resnet()`` (ordinary layers), ContinuousNet with Euler and one step
per piece (the same graph through basis expansions), and ContinuousNet with RK4 (four stages per step); each
eager and, with ``--compile``, torch.compile'd. On CUDA: bf16 autocast and channels_last.

    python benchmarks/continuousnet_speed.py                         # CPU, small batch
    python benchmarks/continuousnet_speed.py --device cuda --batch-size 128 --compile
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from dynlearn.continuousnet import ContinuousNet


def images_per_second(model: torch.nn.Module, batch: torch.Tensor, labels: torch.Tensor, steps: int, device: str) -> float:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast("cpu", enabled=False)

    def one() -> None:
        with autocast:
            loss = F.cross_entropy(model(batch).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        one()
    if device == "cuda":
        torch.cuda.synchronize()
    began = time.perf_counter()
    for _ in range(steps):
        one()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * batch.shape[0] / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pieces", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="timed optimiser steps per row")
    parser.add_argument("--compile", action="store_true")
    arguments = parser.parse_args()
    device = arguments.device
    torch.manual_seed(0)
    batch = torch.randn(arguments.batch_size, 3, 32, 32, device=device)  # random inputs: throughput only
    labels = torch.randint(0, 10, (arguments.batch_size,), device=device)
    if device == "cuda":
        batch = batch.contiguous(memory_format=torch.channels_last)
    euler = ContinuousNet(pieces=arguments.pieces, scheme="euler")
    rows = {
        "ResNet (to_resnet)": euler.to_resnet(),
        f"ContinuousNet euler N={arguments.pieces}": euler,
        f"ContinuousNet rk4 N={arguments.pieces}": euler.manifest(scheme="rk4"),
    }
    print(f"random 32x32x3 inputs, batch {arguments.batch_size}, device {device}, widths 16/32/64, "
          f"{arguments.pieces} pieces per stage; training images per second")
    print(f"{'model':>32} | {'eager':>9} | {'compiled':>9}")
    baseline = None
    for name, model in rows.items():
        model = model.to(device).train()
        if device == "cuda":
            model = model.to(memory_format=torch.channels_last)
        eager = images_per_second(model, batch, labels, arguments.steps, device)
        compiled = float("nan")
        if arguments.compile:
            compiled = images_per_second(torch.compile(model), batch, labels, arguments.steps, device)
        baseline = baseline or eager
        print(f"{name:>32} | {eager:9.0f} | {compiled:9.0f}   ({eager / baseline:.2f}x the ResNet, eager)")


if __name__ == "__main__":
    main()
