"""The convergence demonstration: every registered explicit scheme on the harmonic oscillator.

u'' = -omega^2 u from (u, u') = (1, 0) to t = T, with the exact solution from the matrix exponential. Each
scheme should show its theoretical order down to the round-off floor, where the fit stops. This is what
``dynlearn demo`` runs: it prints the table and writes it, with a plot and every number, to a folder.

On a linear problem one step multiplies the state by the stability function R(dt A), and every s-stage
method of order s <= 4 has the same R (the exponential's Taylor polynomial): the errors of heun, midpoint
and ralston coincide, and so do those of rk3, ssprk3 and heun3, and of rk4 and rk38. Nonlinear problems
tell them apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch

from dynlearn._files import atomic_write
from dynlearn.systems import LinearSystem, harmonic_oscillator_matrix
from dynlearn.integration.tableaus import available_tableaus

from dynlearn.analysis.convergence import ConvergenceResult, convergence_test

__all__ = ["convergence_demonstration"]

LINEAR_NOTE = (
    "On this linear problem every s-stage method of order s <= 4 has the same stability polynomial, so "
    "heun = midpoint = ralston, rk3 = ssprk3 = heun3 and rk4 = rk38 to round-off."
)

#: Observed orders must lie within this distance of the theoretical ones for the demonstration to pass.
ORDER_TOLERANCE = 0.2


def convergence_demonstration(
    output_dir: str | Path | None = "dynlearn-demo",
    *,
    schemes: Sequence[str] | None = None,
    frequency: float = 1.0,
    t_final: float = 2.0,
    n_steps: Sequence[int] = tuple(10 * 2**k for k in range(8)),
) -> ConvergenceResult:
    """Run the convergence test of ``schemes`` (default: every registered explicit scheme) on the undamped
    harmonic oscillator in float64, and write ``convergence.txt``, ``convergence.json`` and
    ``convergence.png`` to ``output_dir`` (nothing is written when it is None)."""
    names = list(schemes) if schemes is not None else available_tableaus(explicit_only=True)
    system = LinearSystem(harmonic_oscillator_matrix(frequency))
    x0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    result = convergence_test(
        system,
        x0,
        t_final,
        reference=lambda times: system.solution(x0, times),
        schemes=names,
        n_steps=n_steps,
    )
    if output_dir is not None:
        _write(result, Path(output_dir), frequency)
    return result


def verdicts(result: ConvergenceResult, tolerance: float = ORDER_TOLERANCE) -> list[str]:
    """One line per scheme: observed against theoretical order, and whether it is within ``tolerance``."""
    lines = []
    for scheme in result.schemes:
        fitted = result.rates[scheme]
        order = result.orders[scheme]
        if fitted is None:
            lines.append(f"{scheme:>10}: no rate ({result.rate_failures[scheme]})")
            continue
        low, high = fitted.confidence_interval
        status = "ok" if abs(fitted.rate - order) <= tolerance else "OFF"
        lines.append(
            f"{scheme:>10}: observed order {fitted.rate:6.3f} (95% CI [{low:.3f}, {high:.3f}]), "
            f"theory {order}  [{status}]  from {fitted.n_used} points, dt in "
            f"[{fitted.window[0]:.4g}, {fitted.window[1]:.4g}]"
        )
    return lines


def _write(result: ConvergenceResult, folder: Path, frequency: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    text = (
        f"Harmonic oscillator u'' = -{frequency:g}^2 u, (u, u')(0) = (1, 0), float64\n\n"
        + result.table()
        + "\n\n"
        + "\n".join(verdicts(result))
        + "\n\n"
        + LINEAR_NOTE
        + "\n"
    )
    atomic_write(folder / "convergence.txt", lambda path: path.write_text(text))
    payload = json.dumps({"system": {"name": "harmonic_oscillator", "frequency": frequency}, **result.to_dict()},
                         indent=2)
    atomic_write(folder / "convergence.json", lambda path: path.write_text(payload + "\n"))
    figure, ax = plt.subplots(figsize=(7, 5.5))
    result.plot(ax=ax)
    figure.tight_layout()
    atomic_write(folder / "convergence.png", lambda path: figure.savefig(path, format="png", dpi=120))
    plt.close(figure)
