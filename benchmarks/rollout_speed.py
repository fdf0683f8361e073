"""Fixed-step RK4 rollout of a small MLP: dynlearn against torchdiffeq and the bare model, in one run.

The model is the 2-50-2 tanh MLP of the learned-integrator study. The floor is the bare cost of the
4 x n_steps evaluations of the MLP that any RK4 rollout must make (when autograd records, with their
outputs kept alive, as a rollout keeps its graph for the backward pass); a rollout's overhead is what it
spends beyond that. Methods are timed in interleaved rounds (each round runs every method once, in rotated order)
and the medians are compared, so machine noise hits all of them alike.

    python benchmarks/rollout_speed.py                      # CPU, batch 256, float32
    python benchmarks/rollout_speed.py --device cuda        # GPU, batch 4096, adds the CUDA-graph replay

The row "of which tanh alone" times the floor's 4 x n_steps hidden-layer activations by themselves: arithmetic
(a vectorised tanh of batch x 50 values) that any rollout, compiled or not, must do; on a CPU it is a large part
of the floor, which bounds what compiling can gain.

Three modes: inference, the recording forward alone, and training (forward + backward of the trajectory's
sum, against a floor of the 4 x n_steps evaluations and their backward). ``compile=True`` rows time the
compiled rollout after its compile; the compile time is printed once per mode. On a CPU one more row compiles
the same rollout with Inductor's decomposed tanh, 2 / (1 + exp(-2x)) - 1 (``cpp.use_decompose_tanh``, off in
torch by default because it loses relative accuracy near 0; dynlearn does not turn it on), printing how far it
moves the trajectory.

torchdiffeq's fixed-grid "rk4" is the 3/8 rule (dynlearn's "rk38"): same four evaluations per step, so the
costs compare; the script checks that dynlearn's rk38 reproduces torchdiffeq's numbers.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch._inductor.config as inductor_config
import torchdiffeq

import dynlearn


def build(batch: int, device: str, dtype: torch.dtype):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 50), torch.nn.Tanh(), torch.nn.Linear(50, 2)).to(device, dtype)
    x0 = torch.randn(batch, 2, device=device, dtype=dtype)
    return net, x0


def timed(function, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    function()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def run(device: str, batch: int, n_steps: int, rounds: int, dtype: torch.dtype, mode: str) -> list[tuple[str, float]]:
    """Median seconds of each method in ``mode``: "inference" (no_grad), "forward" (autograd recording) or
    "training" (forward, then backward of the trajectory's sum)."""
    net, x0 = build(batch, device, dtype)
    dt = 0.01

    def field(t, x):
        return net(x)

    def field_decomposed_tanh(t, x):  # another f: its own compiled code, compiled with the option below
        return net(x)

    grid = dynlearn.time_grid(0.0, dt, n_steps, dtype=dtype, device=device)

    def floor():
        if mode == "inference":
            for _ in range(4 * n_steps):
                net(x0)
            return None
        # a recording rollout keeps every evaluation's graph alive until backward: so does the floor
        outputs = [net(x0) for _ in range(4 * n_steps)]
        if mode == "training":
            torch.stack(outputs).sum().backward()
        return outputs

    def trained(rollout):  # in training mode, the backward of the trajectory's sum follows the rollout
        def method():
            trajectory = rollout()
            if mode == "training":
                trajectory.sum().backward()
        return method

    hidden = torch.randn(batch, 50, device=device, dtype=dtype)

    def activations():  # the floor's transcendental arithmetic alone: no compiled rollout can go below it
        for _ in range(4 * n_steps):
            torch.tanh(hidden)

    methods = {
        "bare MLP, 4 x steps evaluations (floor)": floor,
        "of which tanh alone (arithmetic)": activations,
        "dynlearn.rollout rk4": trained(lambda: dynlearn.rollout(field, x0, 0.0, dt, n_steps, "rk4")),
        "dynlearn.rollout rk4, compile=True": trained(
            lambda: dynlearn.rollout(field, x0, 0.0, dt, n_steps, "rk4", compile=True)),
        "torchdiffeq.odeint rk4 (3/8 rule), fixed grid": trained(
            lambda: torchdiffeq.odeint(field, x0, grid, method="rk4")),
    }
    decomposed = "dynlearn.rollout rk4, compile=True, decomposed tanh"
    if device == "cpu":
        methods[decomposed] = trained(
            lambda: dynlearn.rollout(field_decomposed_tanh, x0, 0.0, dt, n_steps, "rk4", compile=True))
    if device == "cuda" and mode == "inference":
        methods["dynlearn.rollout rk4, cuda_graph=True"] = lambda: dynlearn.rollout(
            field, x0, 0.0, dt, n_steps, "rk4", cuda_graph=True
        )

    context = torch.no_grad if mode == "inference" else torch.enable_grad
    with context():
        # agreement first: the same scheme gives the same numbers
        ours = dynlearn.rollout(field, x0, 0.0, dt, n_steps, "rk38")
        theirs = torchdiffeq.odeint(field, x0, grid, method="rk4")
        difference = ((ours - theirs).abs().max() / theirs.abs().max()).item()
        print(f"dynlearn rk38 vs torchdiffeq rk4: max relative difference = {difference:.2e}")
        eager = dynlearn.rollout(field, x0, 0.0, dt, n_steps, "rk4")
        began = time.perf_counter()
        compiled = dynlearn.rollout(field, x0, 0.0, dt, n_steps, "rk4", compile=True)
        if mode == "training":
            compiled.sum().backward()
        print(f"compile=True: first call (the compile) {time.perf_counter() - began:.1f} s; max relative difference "
              f"to eager = {((eager - compiled).abs().max() / eager.abs().max()).item():.2e}")
        if decomposed in methods:
            began = time.perf_counter()
            with inductor_config.patch({"cpp.use_decompose_tanh": True}):  # read when compiling (and the backward)
                compiled = dynlearn.rollout(field_decomposed_tanh, x0, 0.0, dt, n_steps, "rk4", compile=True)
                if mode == "training":
                    compiled.sum().backward()
            print(f"compile=True with the decomposed tanh: compile {time.perf_counter() - began:.1f} s; max relative "
                  f"difference to eager = {((eager - compiled).abs().max() / eager.abs().max()).item():.2e}")
        if "dynlearn.rollout rk4, cuda_graph=True" in methods:
            graphed = dynlearn.rollout(field, x0, 0.0, dt, n_steps, "rk4", cuda_graph=True)
            graph_difference = ((eager - graphed).abs().max() / eager.abs().max()).item()
            print(f"cuda_graph vs eager rk4: max relative difference = {graph_difference:.2e}")
        del eager, compiled
        names = list(methods)
        for name in names:  # warm-up (and CUDA-graph capture)
            methods[name]()
        samples: dict[str, list[float]] = {name: [] for name in names}
        for round_index in range(rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(timed(methods[name], device))
                net.zero_grad(set_to_none=True)
    return [(name, statistics.median(values)) for name, values in samples.items()]


def report(title: str, results: list[tuple[str, float]]) -> None:
    floor = results[0][1]
    torchdiffeq_time = dict(results)["torchdiffeq.odeint rk4 (3/8 rule), fixed grid"]
    print(f"\n{title}")
    print(f"{'method':<54} {'median ms':>10} {'/ floor':>8} {'torchdiffeq /':>14}")
    for name, seconds in results:
        print(f"{name:<54} {seconds * 1e3:>10.2f} {seconds / floor:>8.3f} {torchdiffeq_time / seconds:>14.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=None, help="default: 256 on CPU, 4096 on CUDA")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    batch = args.batch or (4096 if args.device == "cuda" else 256)
    dtype = getattr(torch, args.dtype)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, torchdiffeq {torchdiffeq.__version__ if hasattr(torchdiffeq, '__version__') else '?'}, "
          f"dynlearn {dynlearn.__version__}; {device_name}")
    print(f"2-50-2 tanh MLP, batch {batch}, {args.steps} RK4 steps, {args.dtype}, median of {args.rounds} rounds")
    titles = {"inference": "inference (torch.no_grad)", "forward": "autograd recording (training forward)",
              "training": "training: forward + backward of the trajectory's sum"}
    for mode, title in titles.items():
        report(title, run(args.device, batch, args.steps, args.rounds, dtype, mode))


if __name__ == "__main__":
    main()
