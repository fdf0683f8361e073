"""Irregular sample times: how real measurements are taken, drawn reproducibly around a nominal step dt.

Four kinds, each with one number ``fraction`` and a ``seed`` (a generator of its own, so the times do not change
when the initial conditions do):

- ``jittered``: t_k = t0 + (k + u_k) dt, u_k ~ U(-fraction/2, fraction/2) for k >= 1 (t_0 = t0): a uniform clock
  with timing error; fraction in [0, 1) keeps the samples in order.
- ``random_steps``: t_{k+1} = t_k + dt (1 + v_k), v_k ~ U(-fraction, fraction): every step its own size, uniform in
  [dt (1 - fraction), dt (1 + fraction)]; fraction in [0, 1). fraction = 0.5 at dt = 0.1 is "dt uniform in
  [0.05, 0.15]".
- ``gaps``: the uniform grid t0 + k dt with each sample k >= 1 missing with probability ``fraction`` in [0, 1)
  (every trajectory on the same grid, NaN where a sample is missing).
- ``poisson``: t_{k+1} = t_k + e_k, e_k exponential with mean dt (a Poisson process of rate 1/dt); ``fraction``
  unused (0).

Times run from t0 to at most t_final; kinds with a count of their own per trajectory pad with NaN.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from dynlearn._checks import as_number_in, check_allocation, count_text

__all__ = ["IrregularSampling", "SAMPLING_KINDS"]

#: the kinds of irregular sampling (``"uniform"`` is the regular grid, with no IrregularSampling)
SAMPLING_KINDS = ("jittered", "random_steps", "gaps", "poisson")
#: the fraction of jittered, random_steps and gaps sampling when none is given
DEFAULT_FRACTION = 0.5


@dataclasses.dataclass(frozen=True)
class IrregularSampling:
    """How irregular sample times are drawn (see the module docstring).

    Attributes:
        kind: one of :data:`SAMPLING_KINDS`.
        fraction: the kind's one number (jitter width, step spread or missing probability, in units of the
            nominal dt or as a probability), in [0, 1); None: ``DEFAULT_FRACTION`` (0 for ``poisson``, which
            takes none).
        seed: of the generator drawing the times (integer >= 0).
    """

    kind: str
    fraction: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in SAMPLING_KINDS:
            raise ValueError(f"sampling kind must be one of {', '.join(SAMPLING_KINDS)}, got {self.kind!r}")
        if self.kind == "poisson":
            if self.fraction not in (None, 0):
                raise ValueError(f"poisson sampling takes no fraction (its steps are exponential with mean dt), got "
                                 f"{self.fraction!r}")
            object.__setattr__(self, "fraction", 0.0)
        else:
            fraction = DEFAULT_FRACTION if self.fraction is None else self.fraction
            fraction = as_number_in(f"{self.kind} sampling: fraction", fraction, 0.0, 1.0)
            object.__setattr__(self, "fraction", fraction)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ValueError(f"sampling seed must be an integer in [0, 2^63), got {self.seed!r}")

    def describe(self, dt: float) -> str:
        """One line: what the times are, in numbers."""
        if self.kind == "jittered":
            return f"t_k = (k + u) dt, u ~ U(-{self.fraction / 2:g}, {self.fraction / 2:g}), dt = {dt:g}"
        if self.kind == "random_steps":
            return f"steps uniform in [{dt * (1 - self.fraction):g}, {dt * (1 + self.fraction):g}]"
        if self.kind == "gaps":
            return f"grid dt = {dt:g} with each sample missing with probability {self.fraction:g}"
        return f"Poisson times of rate {1 / dt:g} (steps exponential, mean {dt:g})"

    def to_dict(self, dt: float) -> dict[str, Any]:
        """The ``sampling`` metadata of a dataset."""
        return {"kind": self.kind, "fraction": self.fraction, "seed": self.seed, "nominal_dt": dt,
                "description": self.describe(dt)}

    def draw(self, n_trajectories: int, dt: float, t_final: float, t0: float = 0.0) -> torch.Tensor:
        """Sample times in float64: ``(n_trajectories, n_times)``, each row from t0 to at most t0 + t_final, NaN
        after a row's last sample; for ``gaps``, the shared grid ``(n_times,)`` (which samples each trajectory
        lacks: :meth:`missing`)."""
        generator = torch.Generator().manual_seed(self.seed)
        n_grid = int(math.floor(t_final / dt * (1 + 1e-12)))
        end = t0 + t_final
        if self.kind in ("jittered", "gaps"):
            steps = torch.arange(n_grid + 1, dtype=torch.float64)
            if self.kind == "gaps":
                return t0 + steps * dt
            offsets = (torch.rand(n_trajectories, n_grid + 1, generator=generator, dtype=torch.float64) - 0.5)
            offsets[:, 0] = 0.0
            times = t0 + (steps[None, :] + self.fraction * offsets) * dt
            return torch.where(times <= end, times, torch.nan)
        # a count of its own per trajectory: draw enough steps for the shortest possible ones, then cut at t_final
        if self.kind == "random_steps":
            most = int(math.ceil(t_final / (dt * (1 - self.fraction)))) + 1
        else:  # poisson: the count is Poisson(t_final / dt); 10 standard deviations above the mean
            mean = t_final / dt
            most = int(math.ceil(mean + 10 * math.sqrt(mean) + 10))
        check_allocation(f"{self.kind} sampling: {count_text(n_trajectories)} x {count_text(most)} times",
                         4 * 8.0 * n_trajectories * most, "ask for a larger dt or fewer trajectories")
        uniform = torch.rand(n_trajectories, most, generator=generator, dtype=torch.float64)
        if self.kind == "random_steps":
            steps = dt * (1 + self.fraction * (2 * uniform - 1))
        else:
            # exponential with mean dt; a draw of exactly 0 (probability 2^-53) would repeat a time: floored
            steps = (-dt * torch.log1p(-uniform)).clamp_min(1e-12 * dt)
        times = t0 + torch.cat([torch.zeros(n_trajectories, 1, dtype=torch.float64), steps.cumsum(dim=1)], dim=1)
        times = torch.where(times <= end * (1 + 1e-12), times, torch.nan)
        longest = int(torch.isfinite(times).sum(dim=1).max())
        return times[:, :longest]

    def missing(self, n_trajectories: int, n_times: int) -> torch.Tensor:
        """``(n_trajectories, n_times)`` bool, True where a sample is missing: for ``gaps``, each k >= 1 with
        probability ``fraction`` (a generator of its own, seeded from ``seed``); none for the other kinds."""
        if self.kind != "gaps":
            return torch.zeros(n_trajectories, n_times, dtype=torch.bool)
        generator = torch.Generator().manual_seed(self.seed + 1 if self.seed < 2**63 - 1 else 0)
        drop = torch.rand(n_trajectories, n_times, generator=generator, dtype=torch.float64) < self.fraction
        drop[:, 0] = False
        return drop
