"""Lattice Boltzmann throughput: million lattice-node updates per second (MLUPS) against the memory bound.

A D2Q9 update must read 9 populations and write 9 (float32: 72 bytes per node), so the bound is
bandwidth / 72 bytes. (dynlearn's kernel also reads the solid mask and the absorbing-layer rate, 5 bytes
more: at best 72 / 77 = 94 % of that bound.) The bandwidth is measured here with a large device-to-device
copy (bytes read plus bytes written). Prints eager and torch.compile'd MLUPS and their fraction of the bound,
on a preset's lattice and domain.

    python benchmarks/cylinder_speed.py                  # CPU, the coarse preset (20 nodes per diameter)
    python benchmarks/cylinder_speed.py --device cuda --preset standard

Measured (2026-11-24). 2 CPU cores, coarse preset, bound about 240 MLUPS: eager 6.0, compiled 43.7 MLUPS
(18.6 %); the earlier, vectorised update ran 3.7 and 20.1 on the same machine that day. H100, standard preset
(3.04 M nodes), bound 39 900 MLUPS (2.87 TB/s): the vectorised update ran 711 eager and 3 479 compiled
(8.7 %, against the goal of 25 %; its profile is in CylinderFlow._advance); the population-wise update that
replaced it has not been measured on a GPU yet.
"""

from __future__ import annotations

import argparse
import time

import torch

from dynlearn.systems.cylinder import PRESETS


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def bandwidth(device: str, megabytes: int = 512) -> float:
    """Bytes per second of a large copy (read + write)."""
    source = torch.empty(megabytes * 2**20 // 4, dtype=torch.float32, device=device).uniform_()
    target = torch.empty_like(source)
    target.copy_(source)
    synchronize(device)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        target.copy_(source)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * source.numel() * 4 / best


def throughput(preset: str, device: str, compile: bool, steps: int) -> tuple[float, int]:
    """MLUPS of ``steps`` lattice updates on a preset's lattice, and its number of nodes."""
    flow = PRESETS[preset].flow(100.0, device=device, compile=compile)
    flow.run(20, record=False)  # warm-up and compilation
    synchronize(device)
    start = time.perf_counter()
    flow.run(steps)
    synchronize(device)
    return flow.nx * flow.ny * steps / (time.perf_counter() - start) / 1e6, flow.nx * flow.ny


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="coarse")
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    bound = bandwidth(args.device) / 72 / 1e6
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}; {name}; D2Q9 float32, {args.preset} preset: "
          f"{PRESETS[args.preset].resolution} nodes per diameter")
    print(f"memory bound: {bound:.1f} MLUPS (copy bandwidth {bound * 72 / 1e3:.1f} GB/s / 72 bytes per node)")
    for compile in (False, True):
        rate, nodes = throughput(args.preset, args.device, compile, args.steps)
        print(f"{'torch.compile' if compile else 'eager':<14} {rate:8.1f} MLUPS  {rate / bound:6.1%} of the bound "
              f"({nodes / 1e6:.2f} M nodes)")


if __name__ == "__main__":
    main()
