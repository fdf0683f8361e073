"""The discrete Lyapunov solve Omega^T P Omega - P = -I: dynlearn against the solver it replaced and scipy.

For each latent size k (the autoencoder's default is 15) a stable map of spectral radius 0.9 with a strictly
upper-triangular part of size ``--non-normality`` (Schur form rotated by a random orthogonal matrix), timed as
the median of interleaved rounds (every method once per round, in rotated order):

- dynlearn: ``solve_discrete_lyapunov`` (complex Schur form + Hammarling's square-root method), and the
  stability prior's forward and backward pass (what a training step of the physics-aware autoencoder costs) on
  the stable map (its Schur form only: the prior is 0) and on the map scaled to spectral radius 1.1;
- the previous solver, LU of the k^2 x k^2 Kronecker system (dynlearn 0.1 up to this change);
- scipy.linalg.solve_discrete_lyapunov (its default: the same Kronecker solve for k <= 10, a bilinear
  transform to a continuous Lyapunov equation above).

Each row also gives the smallest eigenvalue each method's P has (>= 1 in exact arithmetic): a negative one is a
stable map the prior would penalise.

    python benchmarks/lyapunov_speed.py                       # k = 8, 15, 32, 64
    python benchmarks/lyapunov_speed.py --non-normality 20    # strongly non-normal maps
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import scipy.linalg
import torch

from dynlearn.autoencoder.lyapunov import lyapunov_eigenvalues, solve_discrete_lyapunov, stability_prior


def stable_map(k: int, non_normality: float, seed: int = 0) -> np.ndarray:
    generator = np.random.default_rng(seed)
    triangular = np.triu(generator.standard_normal((k, k)), 1) * non_normality / np.sqrt(k)
    triangular += np.diag(0.9 * np.exp(2j * np.pi * generator.uniform(size=k)).real)
    orthogonal = np.linalg.qr(generator.standard_normal((k, k)))[0]
    return orthogonal @ triangular @ orthogonal.T


def kronecker_lu(omega: torch.Tensor) -> torch.Tensor:
    """The previous solver's route: vec(Omega^T P Omega) = (Omega^T kron Omega^T) vec(P), solved by LU."""
    k = omega.shape[0]
    system = torch.kron(omega.T, omega.T) - torch.eye(k * k, dtype=omega.dtype)
    p = torch.linalg.solve(system, -torch.eye(k, dtype=omega.dtype).reshape(-1, 1)).reshape(k, k)
    return 0.5 * (p + p.T)


def prior_step(omega: torch.Tensor) -> None:
    leaf = omega.clone().requires_grad_()
    stability_prior(leaf).backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 15, 32, 64])
    parser.add_argument("--non-normality", type=float, default=1.0, help="size of the strictly upper part (default 1)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    arguments = parser.parse_args()
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    print(f"stable maps, spectral radius 0.9, non-normality {arguments.non_normality:g}; median of "
          f"{arguments.rounds} rounds, ms (smallest eigenvalue of P in brackets, >= 1 exactly)")
    print(f"{'k':>4} | {'dynlearn solve':>22} | {'prior, stable':>13} | {'prior, radius 1.1':>17} | "
          f"{'previous (Kronecker LU)':>24} | {'scipy':>22}")
    for k in arguments.sizes:
        matrix = stable_map(k, arguments.non_normality)
        omega = torch.from_numpy(matrix)
        methods = {
            "dynlearn": lambda: solve_discrete_lyapunov(omega),
            "prior": lambda: prior_step(omega),
            "unstable prior": lambda: prior_step(omega * (1.1 / 0.9)),
            "kronecker": lambda: kronecker_lu(omega),
            "scipy": lambda: scipy.linalg.solve_discrete_lyapunov(matrix.T, np.eye(k)),
        }
        times: dict[str, list[float]] = {name: [] for name in methods}
        names = list(methods)
        for round_index in range(arguments.rounds):
            for name in names[round_index % len(names):] + names[: round_index % len(names)]:
                start = time.perf_counter()
                methods[name]()
                times[name].append(time.perf_counter() - start)
        smallest = {
            "dynlearn": float(lyapunov_eigenvalues(omega).min()),
            "kronecker": float(np.linalg.eigvalsh(kronecker_lu(omega).numpy()).min()),
            "scipy": float(np.linalg.eigvalsh(scipy.linalg.solve_discrete_lyapunov(matrix.T, np.eye(k))).min()),
        }

        def cell(name: str) -> str:
            median = 1e3 * statistics.median(times[name])
            return f"{median:9.3f}" + (f" [{smallest[name]:10.3g}]" if name in smallest else "")

        print(f"{k:>4} | {cell('dynlearn'):>22} | {cell('prior'):>13} | {cell('unstable prior'):>17} | "
              f"{cell('kronecker'):>24} | {cell('scipy'):>22}")


if __name__ == "__main__":
    main()
