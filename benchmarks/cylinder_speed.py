"""Lattice Boltzmann throughput: million lattice-node updates per second (MLUPS) against the memory bound.

A D2Q9 update must read 9 populations and write 9 (float32: 72 bytes per node), so the bound is
bandwidth / 72 bytes. (dynlearn's kernel also reads the solid mask and the absorbing-layer rate, 5 bytes
more: at best 72 / 77 = 94 % of that bound.) The bandwidth is measured here with a large device-to-device
copy (bytes read plus bytes written). Prints eager and torch.compile'd MLUPS and their fraction of the bound,
on a preset's lattice and domain, and the fixed cost of a compiled step (measured on a tiny lattice) against
the time a step takes at the bound: where the two are comparable the step is launch-bound.

    python benchmarks/cylinder_speed.py                  # CPU, the coarse preset (20 nodes per diameter)
    python benchmarks/cylinder_speed.py --device cuda --preset standard
    python benchmarks/cylinder_speed.py --device cuda --preset standard --profile   # and the kernels' times

Measured (2026-11-24), 2 CPU cores, coarse preset (0.33 M nodes), bound about 230 MLUPS: the pull-form
update (streaming first, post-collision state) runs 6.5 eager and 77.8 MLUPS compiled (34.8 % of the bound);
the push form before it ran 4.8 and 40.4 in the same hour (17.1 %), and the first, vectorised form 3.7 and
20.1 in an earlier session. H100, standard preset (3.04 M nodes), bound 39 900 MLUPS (2.87 TB/s): the vectorised
form ran 711 eager and 3 479 compiled (8.7 %, against the goal of 25 %; its profile is in
CylinderFlow._advance); the two forms since have not been measured on a GPU yet. The fixed cost of a
compiled step is 240-260 us on these CPU cores (a compiled `x + 1` costs 60 us there).

Measured again in a later session (2026-11-24) on another 2-core machine (a Xeon with 480 MiB of L3 cache, copy
bandwidth 27 GB/s, bound about 380 MLUPS), with the interpolated wall that replaced the staircase: coarse
preset 12.9 eager and 241 compiled (64 % of the bound; the lattice fits in that cache), the staircase 12.0 and
250 in the same hour; standard preset 9.5 and 127 compiled (33 %); fixed cost 61 us. `--boundary staircase`
runs the old wall.
"""

from __future__ import annotations

import argparse
import time

import torch

from dynlearn.systems.cylinder import BOUNDARIES, PRESETS, CylinderFlow


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


def throughput(preset: str, device: str, compile: bool, steps: int, boundary: str) -> tuple[float, int]:
    """MLUPS of ``steps`` lattice updates on a preset's lattice, and its number of nodes."""
    flow = PRESETS[preset].flow(100.0, device=device, compile=compile, boundary=boundary)
    flow.run(20, record=False)  # warm-up and compilation
    synchronize(device)
    start = time.perf_counter()
    flow.run(steps)
    synchronize(device)
    return flow.nx * flow.ny * steps / (time.perf_counter() - start) / 1e6, flow.nx * flow.ny


def fixed_cost(device: str, steps: int = 500) -> float:
    """Seconds per compiled step on a lattice of 720 nodes, where the arithmetic and the memory traffic are
    negligible: the per-step cost of the call itself (guards, allocation, kernel launches). A preset's step
    cannot be faster than this; where it is comparable to the bound's time per step, capturing several steps
    in a CUDA graph would pay."""
    flow = CylinderFlow(20.0, 6, 0.1, device=device, compile=True, domain_x=(-2.0, 3.0), domain_y=(-2.0, 2.0))
    flow.run(20, record=False)
    synchronize(device)
    start = time.perf_counter()
    flow.run(steps)
    synchronize(device)
    return (time.perf_counter() - start) / steps


def profile(preset: str, device: str, boundary: str, steps: int = 20) -> None:
    """Print the kernels of ``steps`` compiled lattice updates, the most time-consuming first (device time on a
    GPU, CPU time on a CPU): where a step's time goes when the throughput falls short of the bound."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as profiler

    flow = PRESETS[preset].flow(100.0, device=device, compile=True, boundary=boundary)
    flow.run(20, record=False)
    synchronize(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profiler(activities=activities) as recording:
        flow.run(steps)
        synchronize(device)
    sort_by = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
    print(f"profile of {steps} compiled steps:")
    print(recording.key_averages().table(sort_by=sort_by, row_limit=12))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="coarse")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--boundary", choices=BOUNDARIES, default="interpolated", help="the cylinder's wall")
    parser.add_argument("--profile", action="store_true", help="also print the compiled step's kernels and times")
    args = parser.parse_args()
    bound = bandwidth(args.device) / 72 / 1e6
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}; {name}; D2Q9 float32, {args.preset} preset: "
          f"{PRESETS[args.preset].resolution} nodes per diameter, {args.boundary} wall")
    print(f"memory bound: {bound:.1f} MLUPS (copy bandwidth {bound * 72 / 1e3:.1f} GB/s / 72 bytes per node)")
    for compile in (False, True):
        rate, nodes = throughput(args.preset, args.device, compile, args.steps, args.boundary)
        print(f"{'torch.compile' if compile else 'eager':<14} {rate:8.1f} MLUPS  {rate / bound:6.1%} of the bound "
              f"({nodes / 1e6:.2f} M nodes)")
    cost = fixed_cost(args.device)
    print(f"fixed cost of a compiled step (720-node lattice): {cost * 1e6:.0f} us; at the bound a step of this "
          f"lattice takes {nodes / bound:.0f} us")
    if args.profile:
        profile(args.preset, args.device, args.boundary)


if __name__ == "__main__":
    main()
