"""Flow past a circular cylinder: a lattice Boltzmann solver (D2Q9, two-relaxation-time collision).

Why lattice Boltzmann: it is explicit, local and made of whole-array operations (stream = shifts, collide =
pointwise algebra), so the same torch code runs on a CPU and a GPU, memory-bound when fused; it is
second-order accurate in space for the bulk flow, and its known weaknesses are controlled here:

- collision: two-relaxation-time (TRT, Ginzburg) with the "magic" parameter Lambda = 1/4. With Lambda
  fixed, where a bounce-back wall sits does not depend on the viscosity (with BGK it does); 1/4 is the most
  stable value, stable at the relaxation times of Re = 100 at 20 nodes per diameter, where single-relaxation
  BGK is marginal (3/16 would put a straight wall exactly halfway between nodes in Poiseuille flow);
- cylinder: interpolated bounce-back, the linear rule of Bouzidi, Firdaouss & Lallemand (Phys. Fluids 13,
  3452, 2001): on every link that crosses the circle, the population sent back into the fluid is interpolated
  with the wall's true distance along the link (``CylinderFlow._wall_links``), so the wall is the circle
  rather than a staircase of nodes; forces by momentum exchange over those links (Mei, Yu, Shyy & Luo 2002).
  Measured on the steady wake at Re = 20 and 8 nodes per D (tests): shifting the lattice under the cylinder by
  fractions of a spacing moves the drag by 0.5 %, against 2.2 % with a staircase of solid nodes and full-way
  bounce-back (``boundary="staircase"``, the solver's first wall, kept for comparison). With resolution, tau
  fixed at 0.62 (lattice velocity 0.8 / n, the layers' rate scaled with the steps per D/U; Re = 20 in the
  test's [-6, 12] x [-8, 8] box with 2.5 D layers), the interpolated wall's drag converges smoothly, 2.3334,
  2.3555, 2.3666, 2.3775, 2.3819 at 8, 12, 16, 24, 32 nodes per D: C_inf - A n^-p fits with p = 1.09 +- 0.05,
  C_inf = 2.396, residuals below 4e-4. That first order is not the wall's: it is the absorbing layers' and the
  lattice velocity's. At a fixed lattice velocity (0.05; tau then varies, and with Lambda fixed a steady TRT
  solution does not depend on tau) the drag converges at second order - 2.3556, 2.3633, 2.3666, 2.3698,
  2.3707, 2.3715, 2.3717 at n = 8, 12, 16, 24, 32, 48, 64: differences 0.0110, 0.0040, 0.0011 per doubling,
  local orders 1.45 (n = 8..32, pre-asymptotic: the boundary layer, 0.22 D thick, spans 2 to 7 nodes) and 1.92
  (32..64). At a fixed n the drag falls linearly with the lattice velocity U_l: at n = 16, 2.3835, 2.3782,
  2.3666, 2.3455 at U_l = 0.0125, 0.025, 0.05, 0.1, a slope of -0.44 that is the same at n = 8 and 32; with
  U_l = 0.8 / n, as above, it becomes the first-order term -0.35 / n. It comes from the layers relaxing the
  density towards 1: without layers the drag moves by less than 0.006 over U_l = 0.025..0.1; layers that
  relax the velocity only (towards f_eq(rho, U)) leave a dependence that vanishes faster than U_l (-0.0062,
  then -0.0004, per halving from 0.1), layers that relax the density only give a slope of -1.1; relaxing the
  moments alone or the whole population (the non-equilibrium part too) makes no difference. At Re = 100 on
  the coarse preset's lattice (the layers' rate held at 20 per D/U) both kinds of layer move by less than
  half a per cent in C_D when U_l halves: St, C_D, lift amplitude 0.1697, 1.372, 0.316 at U_l = 0.1 and
  0.1698, 1.368, 0.313 at 0.05 with these layers; 0.1706, 1.380, 0.312 and 0.1704, 1.374, 0.316 with
  velocity-only ones. Inside the validation's tolerances either way, so the layers stay as they are (they
  were chosen for absorbing the lattice's sound waves, below) and the presets' figures stand. Scripts: a Re = 20 series is a loop over n of CylinderFlow(20, n, U_l, domain_x=(-6, 12),
  domain_y=(-8, 8), sponge=2.5, sponge_strength=8 U_l / n, compile=True), run 25 D/U, drag averaged over the
  next one. Ruled out before this was found, each measured: the layers' discrete-time excess over their
  continuous rate (about 0.001 at n = 8), the outlet's 1 / n offset (6e-4), an unfinished steady state (1e-4
  between 25, 50 and 100 D/U), a zero-gradient against an equilibrium outlet (0.0017 at n = 16, the same
  order), float32 against float64 (5 digits alike), the wall's mass leak (its Lagally drag has the other
  sign), and the magic parameter (1/4, 1/6, 3/16, 1/12 all reach 2.382-2.384 at n = 32 with U_l = 0.025; 1/4
  stays: the cleanest convergence, the most stable).
  The staircase's scatters (2.3899, 2.3899, 2.3768, 2.3778, 2.3842: a node that enters or leaves
  the staircase moves it by half a per cent), so no order can be fitted to it;
- inlet: equilibrium at the free-stream velocity U; outlet: zero-gradient copy; top and bottom: periodic;
- absorbing layers (sponge zones) along all four sides: within w = 3 D of a side the populations relax
  towards the free-stream equilibrium at a rate rising as sigma (1 - d/w)^2 (sigma = 0.1 per step). Without
  them the lattice's pressure waves (sound travels at c_s = U / (sqrt(3) U_lattice) = 5.8 U) reflect off the
  inlet and run round the periodic sides; when the box's acoustic period approaches the shedding period they
  resonate with it. Measured at 20 nodes per D: a 38 D x 32 D periodic box (lateral acoustic period
  32 / 5.8 = 5.5 D/U against a shedding period of 6) beats with a period of about 60 D/U, the lift amplitude
  swinging between 0.32 and 0.59 and St between 0.158 and 0.174; the same box with the layers sheds at one
  St = 0.1663 with amplitude 0.338, cycle after cycle (both with the staircase wall). The layers also act as
  a soft far field (u = U).

Why the domains are this large: the Strouhal number of a cylinder converges slowly with the distance to the
far-field boundaries (the domain study of Posdziech & Grundmann, J. Fluids Struct. 2007, needed hundreds of D
for the last per cent). Measured at 20 nodes per D, lattice velocity 0.1, Re = 100, 3 D layers, with the
interpolated wall (the staircase's St in the last column):

    domain (x by y, D)          free flow inside the layers   St       mean C_D   lift amplitude   staircase St
    [-8, 22] x [-8, 8]          [-5, 19] x [-5, 5]            0.1758   1.431      0.333            0.1746
    [-12, 22] x [-12, 12]       [-9, 19] x [-9, 9]            0.1697   1.372      0.316            0.1686  (coarse)
    [-16, 22] x [-16, 16]       [-13, 19] x [-13, 13]         0.1678   1.353      0.312            0.1663  (standard)

At the standard preset's 50 nodes per D the same [-16, 22] x [-16, 16] box gives St = 0.1678 (+1.7 % from
0.165), C_D = 1.375, lift amplitude 0.338. With the interpolated wall St does not move with resolution from 20
to 50 nodes per D (the staircase's rose by 1 %, from 0.1663 to 0.1679), so the +1.7 % left is the domain's;
drag and lift amplitude still rise with resolution (by 1.6 % and 8 %: the boundary layer, about
D / sqrt(Re) = 0.1 D thick, spans two nodes at 20 per D).
Halving the lattice velocity (0.05: Mach 0.087 instead of 0.17) moved St by 0.2 % (0.1699 against 0.1702 in
a periodic [-8, 22] x [-8, 8] box without layers, staircase wall), so compressibility is not what limits
accuracy here; the domain is.

Units: lengths in diameters D, time in D/U, velocity in U, vorticity in U/D. Lattice: ``resolution`` nodes per
diameter, lattice velocity ``lattice_velocity`` (Mach number sqrt(3) U_lattice, keep it below ~0.2), viscosity
nu = U_lattice * resolution / Re in lattice units, relaxation time tau = 3 nu + 1/2 (stable for tau > 0.5; we
require tau >= 0.51).

The snapshot window x in [-1, 8], y in [-2, 2] lies well inside either preset's free flow (presets check it).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Callable

import numpy as np
import torch
from dynlearn._checks import as_flag, as_integer, as_positive_number, check_allocation

__all__ = ["CylinderFlow", "CylinderPreset", "WallLinks", "BOUNDARIES", "PRESETS", "FlowResult", "SheddingCycles",
           "shedding_cycles", "strouhal_number", "has_settled", "simulate", "recirculation_length"]

# D2Q9 velocities, weights and opposite directions
_VELOCITIES = ((0, 0), (1, 0), (0, 1), (-1, 0), (0, -1), (1, 1), (-1, 1), (-1, -1), (1, -1))
_WEIGHTS = (4 / 9, 1 / 9, 1 / 9, 1 / 9, 1 / 9, 1 / 36, 1 / 36, 1 / 36, 1 / 36)
_OPPOSITE = (0, 3, 4, 1, 2, 7, 8, 5, 6)
_MAGIC = 0.25  # TRT parameter Lambda = (tau_plus - 1/2)(tau_minus - 1/2)
#: the cylinder wall: interpolated bounce-back (the default: the wall is the circle) or full-way on a staircase
BOUNDARIES = ("interpolated", "staircase")


DOMAIN_X = (-8.0, 22.0)
DOMAIN_Y = (-8.0, 8.0)
WINDOW_X = (-1.0, 8.0)  # the snapshot window of the standard data set
WINDOW_Y = (-2.0, 2.0)


@dataclasses.dataclass(frozen=True)
class CylinderPreset:
    """Lattice, domain and sampling of a data set (lengths in D, time in D/U).

    ``spin_up_resolution``: develop the wake on this coarser lattice first (see :func:`simulate`)."""

    resolution: int  # lattice nodes per diameter
    spacing: float  # output grid spacing
    snapshot_interval: float
    n_snapshots: int
    lattice_velocity: float = 0.1
    domain_x: tuple[float, float] = DOMAIN_X
    domain_y: tuple[float, float] = DOMAIN_Y
    sponge: float = 0.0  # thickness (D) of the absorbing layers along the four sides
    spin_up_resolution: int | None = None
    boundary: str = "interpolated"  # the cylinder's wall, one of BOUNDARIES

    def __post_init__(self) -> None:
        if self.boundary not in BOUNDARIES:
            raise ValueError(f"cylinder: boundary must be one of {BOUNDARIES}, got {self.boundary!r}")
        for name in ("spacing", "snapshot_interval"):
            as_positive_number(f"cylinder: {name}", getattr(self, name))
        if not (isinstance(self.sponge, (int, float)) and math.isfinite(self.sponge) and self.sponge >= 0):
            raise ValueError(f"cylinder: sponge must be a thickness >= 0 (in D), got {self.sponge!r}")
        # the window must lie inside the domain, clear of the absorbing layers
        for axis, domain, window in (("x", self.domain_x, WINDOW_X), ("y", self.domain_y, WINDOW_Y)):
            inner = (domain[0] + self.sponge, domain[1] - self.sponge)
            if not (inner[0] < window[0] and window[1] < inner[1]):
                raise ValueError(
                    f"cylinder: the snapshot window {axis} in [{window[0]:g}, {window[1]:g}] D is not inside the "
                    f"domain {axis} in [{domain[0]:g}, {domain[1]:g}] D less its {self.sponge:g} D absorbing layers; "
                    f"enlarge the domain or thin the layers"
                )

    def flow(self, reynolds: float, resolution: int | None = None, **kwargs) -> "CylinderFlow":
        """A :class:`CylinderFlow` on this preset's domain (at ``resolution`` nodes per D if given; keyword
        arguments go to :class:`CylinderFlow`, ``boundary`` overriding the preset's)."""
        kwargs = {"boundary": self.boundary, **kwargs}
        return CylinderFlow(reynolds, self.resolution if resolution is None else resolution, self.lattice_velocity,
                            domain_x=self.domain_x, domain_y=self.domain_y, sponge=self.sponge, **kwargs)


#: The lattice presets by name (``dynlearn generate cylinder --preset NAME``): ``standard``, the 449 x 199 data set
#: of the original study (meant for a GPU), and ``coarse``, for tests and demos on a CPU.
PRESETS = {
    # the standard data set: 449 x 199 vorticity snapshots, every 0.2, 151 of them (about five periods); the
    # wake develops at 20 nodes per D first. Domain 38 D x 32 D with 3 D absorbing layers.
    "standard": CylinderPreset(resolution=50, spacing=0.02, snapshot_interval=0.2, n_snapshots=151,
                               domain_x=(-16.0, 22.0), domain_y=(-16.0, 16.0), sponge=3.0, spin_up_resolution=20),
    # for tests and demos on a CPU: 179 x 79 snapshots at 0.05 D; domain 34 D x 24 D with 3 D absorbing layers
    "coarse": CylinderPreset(resolution=20, spacing=0.05, snapshot_interval=0.2, n_snapshots=151,
                             domain_x=(-12.0, 22.0), domain_y=(-12.0, 12.0), sponge=3.0),
}



@dataclasses.dataclass
class FlowResult:
    """What a run produced: snapshots (time, y, x) on the window grid, and the force history."""

    vorticity: torch.Tensor  # (n_snapshots, ny, nx), U/D
    velocity: torch.Tensor | None  # (n_snapshots, 2, ny, nx), U; only when asked for
    times: torch.Tensor  # (n_snapshots,), D/U, from the first snapshot
    x: torch.Tensor  # (nx,) D
    y: torch.Tensor  # (ny,) D
    force_times: torch.Tensor  # (n,) D/U
    drag: torch.Tensor  # (n,) drag coefficient F_x / (rho U^2 D / 2)
    lift: torch.Tensor  # (n,) lift coefficient
    spin_up_time: float  # D/U simulated before the first snapshot, all lattices together
    spin_up_stages: tuple[tuple[int, float], ...] = ()  # (nodes per D, D/U simulated on that lattice)


@dataclasses.dataclass(frozen=True)
class SheddingCycles:
    """The periods of a shedding signal, cut at its upward zero crossings.

    ``starts[k]`` is the time (D/U) cycle k begins, ``periods[k]`` its length and ``amplitudes[k]`` half its
    peak-to-peak lift, ``(n_cycles,)`` each."""

    starts: np.ndarray
    periods: np.ndarray
    amplitudes: np.ndarray

    def __len__(self) -> int:
        return int(self.periods.size)


def shedding_cycles(times: np.ndarray, lift: np.ndarray, smoothing: float = 0.25) -> SheddingCycles:
    r"""Cut a lift history (times in D/U, ``(n,)`` each) into shedding cycles.

    Lattice Boltzmann lift carries small pressure (acoustic) waves on top of the shedding, which make spurious
    local extrema and zero crossings. So crossings are found on the lift smoothed by a moving average over
    ``smoothing`` D/U (short against a shedding period of about 6 D/U), with hysteresis: an upward crossing
    counts only after the signal has been below -h and before it rises above +h, h = 10 % of the largest
    smoothed :math:`|\text{lift} - \text{mean}|`. Amplitudes are half the raw signal's peak-to-peak range within each
    cycle."""
    times = np.asarray(times, dtype=np.float64)
    lift = np.asarray(lift, dtype=np.float64)
    empty = SheddingCycles(np.empty(0), np.empty(0), np.empty(0))
    if times.size < 3:
        return empty
    step = float(np.median(np.diff(times)))
    width = max(1, int(round(smoothing / step)))
    if width > 1 and lift.size > width:
        smooth = np.convolve(lift, np.ones(width) / width, mode="same")
        smooth[: width // 2] = smooth[width // 2]  # the edges of a 'same' convolution see zeros
        smooth[-(width // 2):] = smooth[-(width // 2) - 1]
    else:
        smooth = lift.copy()
    signal = smooth - smooth.mean()
    threshold = 0.1 * np.abs(signal).max()
    if not threshold > 0:
        return empty
    # hysteresis: the state is +1 above +h, -1 below -h, and keeps its last value in between
    state = np.where(signal > threshold, 1, np.where(signal < -threshold, -1, 0))
    marked = np.nonzero(state)[0]
    if marked.size < 2:
        return empty
    changes = marked[1:][(state[marked[1:]] == 1) & (state[marked[:-1]] == -1)]  # first sample above +h
    index = np.arange(signal.size)
    last_nonpositive = np.maximum.accumulate(np.where(signal <= 0, index, -1))
    k = last_nonpositive[changes]  # the crossing lies between k and k + 1
    crossings = times[k] - signal[k] * (times[k + 1] - times[k]) / (signal[k + 1] - signal[k])
    if crossings.size < 2:
        return empty
    edges = crossings
    index = np.searchsorted(times, edges)
    amplitudes = np.array([(lift[a:b].max() - lift[a:b].min()) / 2 if b > a else 0.0
                           for a, b in zip(index[:-1], index[1:])])
    return SheddingCycles(edges[:-1], np.diff(edges), amplitudes)


def strouhal_number(times: np.ndarray, lift: np.ndarray) -> float:
    """St = f D / U from the lift coefficient (times in D/U): one over the mean period of the shedding cycles
    (:func:`shedding_cycles`, crossings interpolated linearly). NaN when fewer than two cycles are present."""
    cycles = shedding_cycles(times, lift)
    if len(cycles) < 2:
        return float("nan")
    return float(1.0 / cycles.periods.mean())


def has_settled(cycles: SheddingCycles, tolerance: float, block: int = 3) -> bool:
    """Periodic shedding has settled when the mean amplitude and the mean period of the last ``block`` cycles
    agree with those of the ``block`` before them within ``tolerance`` (relative). Comparing block means, not
    single peaks, lets the small acoustic ripple on the lift average out while the start-up growth (amplitudes
    rising cycle after cycle) still shows."""
    if len(cycles) < 2 * block or cycles.amplitudes[-2 * block:].min() <= 1e-3:
        return False
    recent, before = slice(-block, None), slice(-2 * block, -block)
    amplitude_now, amplitude_before = cycles.amplitudes[recent].mean(), cycles.amplitudes[before].mean()
    period_now, period_before = cycles.periods[recent].mean(), cycles.periods[before].mean()
    return (abs(amplitude_now - amplitude_before) <= tolerance * amplitude_now
            and abs(period_now - period_before) <= tolerance * period_now)


@dataclasses.dataclass(frozen=True)
class WallLinks:
    """The links that cross the cylinder's wall, ``(n_links,)`` each: flat indices into the ``(9, ny, nx)``
    populations and the interpolation weights of ``CylinderFlow._wall_links``. The population written to
    ``target`` (direction -i at the solid node x + c_i, which the streaming pulls into the fluid node x) is
    ``source_weight * f[source] + other_weight * f[other]``, with ``source`` direction i at x and ``other``
    direction i at x - c_i (q < 1/2) or -i at x (q >= 1/2); ``direction`` holds the links' c_i, ``(2, n_links)``."""

    target: torch.Tensor
    source: torch.Tensor
    other: torch.Tensor
    source_weight: torch.Tensor
    other_weight: torch.Tensor
    direction: torch.Tensor


def _compile_lattice_update(update: Callable) -> Callable:
    """``torch.compile`` of one flow's lattice update, with a compilation cache of its own.

    torch keeps compiled code per Python code object, so every flow of a process shares one cache for
    :meth:`CylinderFlow._advance`, and past torch's recompile limit (8 entries: lattice shapes, dtypes, devices)
    it runs the update eager from then on, silently: measured on 2 CPU cores, a sweep of flows in one process
    ran 84 M node updates per second, then 8.6 from the ninth flow on. Where torch has ``isolate_recompiles``
    (2.13 does), each compiled update gets its own cache; on older torch the cache stays shared (the relaxation
    rates are tensors, so a sweep over Reynolds numbers on one lattice still compiles once)."""
    options: dict = {"dynamic": False}
    if "isolate_recompiles" in inspect.signature(torch.compile).parameters:
        options["isolate_recompiles"] = True
    return torch.compile(update, **options)


class CylinderFlow:
    """2D incompressible flow past a cylinder at Reynolds number Re = U D / nu (see the module docstring)."""

    def __init__(
        self,
        reynolds: float = 100.0,
        resolution: int = 20,
        lattice_velocity: float = 0.1,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        compile: bool = False,
        domain_x: tuple[float, float] = DOMAIN_X,
        domain_y: tuple[float, float] = DOMAIN_Y,
        sponge: float = 0.0,
        sponge_strength: float = 0.1,
        boundary: str = "interpolated",
    ) -> None:
        viscosity, tau = self.check(reynolds, resolution, lattice_velocity)
        compile = as_flag("compile", compile)
        if boundary not in BOUNDARIES:
            raise ValueError(f"cylinder: boundary must be one of {BOUNDARIES}, got {boundary!r}")
        if not 0 < sponge_strength <= 1:
            raise ValueError(f"cylinder: sponge_strength is a relaxation rate per step in (0, 1], got {sponge_strength!r}")
        for axis, domain in (("domain_x", domain_x), ("domain_y", domain_y)):
            if not (domain[0] + sponge < -1.0 and 1.0 < domain[1] - sponge):
                raise ValueError(
                    f"cylinder: {axis} = {tuple(domain)} must leave at least 1 D of free flow between the cylinder "
                    f"(radius 0.5 at the origin) and the {sponge:g} D absorbing layers on each side"
                )
        self.domain_x, self.domain_y = (float(domain_x[0]), float(domain_x[1])), (float(domain_y[0]), float(domain_y[1]))
        self.reynolds, self.resolution, self.lattice_velocity = float(reynolds), resolution, float(lattice_velocity)
        self.viscosity, self.tau = viscosity, tau
        self.device, self.dtype = torch.device(device), dtype
        n = resolution
        self.nx = int(round((self.domain_x[1] - self.domain_x[0]) * n))
        self.ny = int(round((self.domain_y[1] - self.domain_y[0]) * n))
        # node (j, i) sits at x = X0 + i / n, y = Y0 + j / n (in D)
        self.x_nodes = self.domain_x[0] + torch.arange(self.nx, dtype=torch.float64) / n
        self.y_nodes = self.domain_y[0] + torch.arange(self.ny, dtype=torch.float64) / n
        radius = 0.5
        yy, xx = torch.meshgrid(self.y_nodes, self.x_nodes, indexing="ij")
        # nodes on the circle are solid whatever the round-off of their coordinates (12 of them at 20 nodes per D)
        self.solid = (xx**2 + yy**2 <= radius**2 * (1 + 1e-12)).to(self.device)
        kwargs = {"device": self.device, "dtype": dtype}
        self._cx = torch.tensor([c[0] for c in _VELOCITIES], **kwargs)[:, None, None]
        self._cy = torch.tensor([c[1] for c in _VELOCITIES], **kwargs)[:, None, None]
        self._w = torch.tensor(_WEIGHTS, **kwargs)[:, None, None]
        self.omega_plus = 1.0 / tau
        tau_minus = _MAGIC / (tau - 0.5) + 0.5
        self.omega_minus = 1.0 / tau_minus
        # the rates as a tensor, so that the compiled update does not bake (and guard on) their values: flows at
        # other Reynolds numbers on the same lattice reuse its compiled code
        self._relaxation_rates = torch.tensor((self.omega_plus, self.omega_minus), **kwargs)
        self._inlet = self._equilibrium(torch.ones(self.ny, 1, **kwargs),
                                        torch.full((self.ny, 1), lattice_velocity, **kwargs),
                                        torch.zeros(self.ny, 1, **kwargs))
        # the free-stream equilibrium of each population (rho = 1, u = (U, 0)), as numbers for the layers
        self._free_stream = tuple(float(v) for v in self._inlet[:, 0, 0])
        self.boundary = boundary
        # what the force needs: the links that cross the interpolated wall (None with the staircase), or the
        # staircase's solid nodes in their bounding box
        self.wall_links = self._wall_links(xx, yy, radius) if boundary == "interpolated" else None
        if self.wall_links is None:
            rows_solid, columns_solid = torch.nonzero(self.solid, as_tuple=True)
            box = (int(rows_solid.min()), int(rows_solid.max()) + 1,
                   int(columns_solid.min()), int(columns_solid.max()) + 1)
            self._solid_box = (box, self.solid[box[0]:box[1], box[2]:box[3]])
        self.sponge, self.sponge_strength = float(sponge), float(sponge_strength)
        self._sponge = self._sponge_rates(xx, yy) if sponge > 0 else None
        uniform = self._equilibrium(torch.ones(self.ny, self.nx, **kwargs),
                                    torch.full((self.ny, self.nx), lattice_velocity, **kwargs),
                                    torch.zeros(self.ny, self.nx, **kwargs))
        # the state is self._post, the previous step's post-collision populations, not yet streamed (_advance)
        self.f = torch.where(self.solid, 0.0, uniform)
        self.steps_done = 0
        self._kernel = _compile_lattice_update(self._advance) if compile else self._advance

    def _wall_links(self, xx: torch.Tensor, yy: torch.Tensor, radius: float) -> WallLinks:
        """The links that cross the cylinder's wall and the interpolated bounce-back rule on each.

        A link joins a fluid node x to a solid node x + c_i; the wall cuts it at x + q c_i, 0 < q <= 1 (the root
        of |x + q c_i| = R, in float64). After the collision, the population that streams back into x along
        -c_i is written into the solid node's slot of direction -c_i (where the streaming pulls it from), by
        the linear rule of Bouzidi, Firdaouss & Lallemand (Phys. Fluids 13, 3452, 2001) from post-collision
        populations of fluid nodes:

            q < 1/2:   f_-i(x) = 2q f*_i(x) + (1 - 2q) f*_i(x - c_i)
            q >= 1/2:  f_-i(x) = f*_i(x) / (2q) + (2q - 1) / (2q) f*_-i(x)

        (x - c_i is a fluid node: the cylinder is convex). At q = 1/2 this is halfway bounce-back."""
        plane = self.ny * self.nx
        solid = self.solid.cpu()
        fluid_rows, fluid_columns = torch.nonzero(~solid, as_tuple=True)
        parts: dict[str, list[torch.Tensor]] = {field.name: [] for field in dataclasses.fields(WallLinks)}
        for i, (cx, cy) in enumerate(_VELOCITIES):
            if cx == 0 and cy == 0:
                continue
            rows, columns = fluid_rows + cy, fluid_columns + cx  # the node x + c_i
            inside = (rows >= 0) & (rows < self.ny) & (columns >= 0) & (columns < self.nx)
            crossing = torch.zeros_like(inside)
            crossing[inside] = solid[rows[inside], columns[inside]]
            rows, columns = rows[crossing], columns[crossing]
            from_rows, from_columns = fluid_rows[crossing], fluid_columns[crossing]
            # |p + q d|^2 = R^2 with p the fluid node, d = c_i / n: the smaller root lies in (0, 1] (a link that
            # only touches the circle, at a node on it, has a zero discriminant: kept >= 0 against round-off)
            px, py = xx[from_rows, from_columns], yy[from_rows, from_columns]
            dx, dy = cx / self.resolution, cy / self.resolution
            quadratic, linear, constant = dx * dx + dy * dy, 2 * (px * dx + py * dy), px * px + py * py - radius**2
            discriminant = (linear * linear - 4 * quadratic * constant).clamp(min=0)
            q = ((-linear - torch.sqrt(discriminant)) / (2 * quadratic)).clamp(1e-6, 1.0)
            o = _OPPOSITE[i]
            near = q < 0.5
            parts["target"].append(o * plane + rows * self.nx + columns)
            parts["source"].append(i * plane + from_rows * self.nx + from_columns)
            parts["other"].append(torch.where(near, i * plane + (from_rows - cy) * self.nx + (from_columns - cx),
                                              o * plane + from_rows * self.nx + from_columns))
            parts["source_weight"].append(torch.where(near, 2 * q, 1 / (2 * q)))
            parts["other_weight"].append(torch.where(near, 1 - 2 * q, (2 * q - 1) / (2 * q)))
            parts["direction"].append(torch.tensor([[cx], [cy]], dtype=q.dtype).expand(2, q.numel()))
        joined = {name: torch.cat(values, dim=-1) for name, values in parts.items()}
        return WallLinks(**{name: values.to(self.device) if name in ("target", "source", "other")
                            else values.to(self.device, self.dtype) for name, values in joined.items()})

    def _sponge_rates(self, xx: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
        """Relaxation rate towards the free-stream equilibrium, ``(ny, nx)``: sigma (1 - d / w)^2 within a
        distance d < w = ``sponge`` D of any side of the domain, 0 elsewhere (a smooth ramp reflects little)."""
        distance = torch.minimum(
            torch.minimum(xx - self.domain_x[0], self.domain_x[1] - xx),
            torch.minimum(yy - self.domain_y[0], self.domain_y[1] - yy),
        )
        ramp = (1 - distance / self.sponge).clamp(min=0)
        return (self.sponge_strength * ramp**2).to(self.device, self.dtype)

    @property
    def time(self) -> float:
        """Simulated time in D/U."""
        return self.steps_done * self.lattice_velocity / self.resolution

    @property
    def steps_per_unit_time(self) -> float:
        """Lattice steps per D/U."""
        return self.resolution / self.lattice_velocity

    @staticmethod
    def check(reynolds: float, resolution: int, lattice_velocity: float) -> tuple[float, float]:
        """Validate the parameters before any work; returns the lattice viscosity and relaxation time."""
        as_positive_number("cylinder: reynolds", reynolds)
        as_integer("cylinder: resolution (nodes per diameter)", resolution, minimum=6)
        if not 0 < lattice_velocity <= 0.2:
            raise ValueError(
                f"cylinder: lattice_velocity = {lattice_velocity} is outside (0, 0.2]: the Mach number "
                f"sqrt(3) U_lattice must stay small for incompressible flow; lower it"
            )
        viscosity = lattice_velocity * resolution / reynolds
        tau = 3 * viscosity + 0.5
        if tau < 0.51:
            needed = math.ceil(reynolds * 0.01 / 3 / lattice_velocity)
            raise ValueError(
                f"cylinder: relaxation time tau = {tau:.4f} is below the stability limit 0.51 (Re = {reynolds:g} at "
                f"{resolution} nodes per diameter and lattice velocity {lattice_velocity}); raise the resolution to at "
                f"least {needed} nodes per diameter or the lattice velocity"
            )
        return viscosity, tau

    def _equilibrium(self, rho: torch.Tensor, ux: torch.Tensor, uy: torch.Tensor) -> torch.Tensor:
        cu = 3.0 * (self._cx * ux + self._cy * uy)
        return rho * self._w * (1.0 + cu + 0.5 * cu * cu - 1.5 * (ux * ux + uy * uy))

    def macroscopic(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Density and velocity (lattice units) on every node; zero velocity inside the cylinder."""
        f = self.f
        rho = f.sum(0)
        safe = torch.where(self.solid, torch.ones_like(rho), rho)
        ux = torch.where(self.solid, torch.zeros_like(rho), (f * self._cx).sum(0) / safe)
        uy = torch.where(self.solid, torch.zeros_like(rho), (f * self._cy).sum(0) / safe)
        return safe, ux, uy

    @property
    def f(self) -> torch.Tensor:
        """The populations at the current time, before collision, ``(9, ny, nx)`` in lattice units (D2Q9
        order: rest, +x, +y, -x, -y, then the diagonals +x+y, -x+y, -x-y, +x-y)."""
        return torch.stack(self._stream(self._post.unbind(0)))

    @f.setter
    def f(self, populations: torch.Tensor) -> None:
        """Set the populations before collision, ``(9, ny, nx)``. The inlet column and the outlet column are
        boundary values: they read back as the inlet's equilibrium and as a copy of the column before the
        outlet, whatever was given there."""
        shape = (len(_VELOCITIES), self.ny, self.nx)
        if tuple(populations.shape) != shape:
            raise ValueError(f"cylinder: populations must have shape {shape}, got {tuple(populations.shape)}")
        populations = populations.to(self.device, self.dtype)
        # the inverse of the streaming: stream(_post) gives the populations back, boundary columns aside
        self._post = torch.stack([torch.roll(populations[i], shifts=(-cy, -cx), dims=(0, 1))
                                  for i, (cx, cy) in enumerate(_VELOCITIES)])

    def _stream(self, post: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        """Streaming by pulling, f_i(x) = post_i(x - c_i) (periodic in y), then the inlet and outlet: the
        inlet column takes the free-stream equilibrium, the outlet column copies the column before it (zero
        gradient). Nine ``(ny, nx)`` planes in, nine out.

        Two forms, equal bit for bit (tested), each for the device it compiles best on. On a CPU the x shift
        is a slice and the boundary columns are concatenated: inductor's loop over x then has no modular index
        and vectorises (twice the rolled form's throughput on 2 cores, compiled: 70 against 37 M node updates
        per second on the coarse preset's lattice), though on a CPU it writes the concatenation to a buffer of
        its own. On a GPU the shift is a roll and the boundary columns are chosen pointwise: no concatenation,
        so that stream, collision and bounce-back are one pointwise computation (inductor fuses that form into
        a single loop on a CPU; its GPU kernel is still to be profiled)."""
        return self._stream_by_slices(post) if self.device.type == "cpu" else self._stream_by_rolls(post)

    def _stream_by_slices(self, post: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        planes = []
        for i, (cx, cy) in enumerate(_VELOCITIES):
            shifted = torch.roll(post[i], shifts=cy, dims=0) if cy else post[i]
            interior = shifted[:, 1 - cx:self.nx - 1 - cx]  # columns 1 .. nx - 2
            planes.append(torch.cat([self._inlet[i], interior, interior[:, -1:]], dim=1))
        return planes

    def _stream_by_rolls(self, post: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        column = torch.arange(self.nx, device=post[0].device)
        inlet, outlet = column == 0, column == self.nx - 1
        planes = []
        for i, (cx, cy) in enumerate(_VELOCITIES):
            shifted = torch.roll(post[i], shifts=(cy, cx), dims=(0, 1))
            planes.append(torch.where(inlet, self._free_stream[i], torch.where(outlet, shifted[:, -2:-1], shifted)))
        return planes

    def _advance(self, post: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One lattice step in pull form: stream the previous step's post-collision populations ``(9, ny, nx)``
        (with the inlet and outlet), collide (TRT) and bounce back (with the interpolated wall: write, into
        the solid nodes' slots that stream back into the fluid, the interpolated populations of
        :meth:`_wall_links`, a gather and a scatter over the few hundred links); returns the new post-collision
        populations and the force ``(2,)`` (x and y, lattice units) the cylinder received from the streamed
        ones. A pure tensor function, so that it can be compiled.

        The state kept between steps is the post-collision one, so that a step reads every population once
        (from its upstream neighbour) and writes it once: with the streaming last, inductor materialised the
        post-collision planes and streamed them in a second pass (twice the memory traffic; coarse preset on 2
        CPU cores, benchmarks/cylinder_speed.py: 40 M node updates per second compiled, against 78 now).
        Written population by population (nine ``(ny, nx)`` planes, velocities and weights as Python numbers)
        rather than as reductions and gathers over the population axis, so that all of it is pointwise: the
        H100 profile of the first, vectorised form (846 us a step, 8.7 % of the memory bound) showed the
        moments' reduction, the equilibrium and the gather of the opposite populations as three kernels taking
        4/5 of the step. The force needs only the wall's links (or the cylinder's bounding box), read straight
        from ``post``.
        """
        planes = self._stream(post.unbind(0))
        force = self._force(post)
        collided = torch.stack(self._collide(planes))
        if self.wall_links is None:
            return collided, force
        links, flat = self.wall_links, collided.reshape(-1)
        wall = links.source_weight * flat[links.source] + links.other_weight * flat[links.other]
        return flat.index_put((links.target,), wall).view_as(collided), force

    def _force(self, post: torch.Tensor) -> torch.Tensor:
        """The force on the cylinder, ``(2,)``, by momentum exchange. Interpolated wall: over the links that
        cross it, the body receives sum c_i (f*_i(x) + f_-i(x)), what left the fluid node x towards the wall
        and what comes back (Mei, Yu, Shyy & Luo, Phys. Rev. E 65, 041203, 2002). Staircase: the body receives
        2 sum_i c_i f_i over the populations streamed into its nodes (f_i(x) = post_i(x - c_i); the cylinder's
        bounding box lies well inside the domain)."""
        if self.wall_links is not None:
            links, flat = self.wall_links, post.reshape(-1)
            return (links.direction * (flat[links.source] + flat[links.target])).sum(1)
        (top, bottom, left, right), inside = self._solid_box
        streamed = [post[i, top - cy:bottom - cy, left - cx:right - cx] for i, (cx, cy) in enumerate(_VELOCITIES)]
        jx = (streamed[1] + streamed[5] + streamed[8]) - (streamed[3] + streamed[6] + streamed[7])
        jy = (streamed[2] + streamed[5] + streamed[6]) - (streamed[4] + streamed[7] + streamed[8])
        return 2.0 * torch.stack([torch.where(inside, jx, 0.0).sum(), torch.where(inside, jy, 0.0).sum()])

    def _collide(self, planes: list[torch.Tensor]) -> list[torch.Tensor]:
        """TRT collision, the absorbing layers' relaxation and full-way bounce-back on nine ``(ny, nx)``
        population planes; pointwise. (With the interpolated wall, :meth:`_advance` then overwrites the solid
        nodes' populations that stream back into the fluid; the rest of a solid node's are never read.)"""
        solid = self.solid
        rho = planes[0]
        for plane in planes[1:]:
            rho = rho + plane
        # momentum sum_i c_i f_i from the populations that move along x and y
        jx = (planes[1] + planes[5] + planes[8]) - (planes[3] + planes[6] + planes[7])
        jy = (planes[2] + planes[5] + planes[6]) - (planes[4] + planes[7] + planes[8])
        safe = torch.where(solid, torch.ones_like(rho), rho)
        ux = torch.where(solid, torch.zeros_like(rho), jx / safe)
        uy = torch.where(solid, torch.zeros_like(rho), jy / safe)
        speed_term = 1.5 * (ux * ux + uy * uy)
        equilibrium = []
        for (cx, cy), weight in zip(_VELOCITIES, _WEIGHTS):
            if cx == 0 and cy == 0:
                equilibrium.append(safe * weight * (1.0 - speed_term))
                continue
            cu = 3.0 * (cx * ux + cy * uy)
            equilibrium.append(safe * weight * (1.0 + cu + 0.5 * cu * cu - speed_term))
        post = []
        omega_plus, omega_minus = self._relaxation_rates[0], self._relaxation_rates[1]
        for i, o in enumerate(_OPPOSITE):
            # TRT: relax the symmetric and antisymmetric parts with their own rates
            symmetric = 0.5 * (planes[i] + planes[o]) - 0.5 * (equilibrium[i] + equilibrium[o])
            antisymmetric = 0.5 * (planes[i] - planes[o]) - 0.5 * (equilibrium[i] - equilibrium[o])
            relaxed = planes[i] - omega_plus * symmetric - omega_minus * antisymmetric
            if self._sponge is not None:  # absorbing layers: relax towards the free stream
                relaxed = relaxed - self._sponge * (relaxed - self._free_stream[i])
            # full-way bounce-back: solid nodes send back what they received
            post.append(torch.where(solid, planes[o], relaxed))
        return post

    def run(self, n_steps: int, record: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance ``n_steps``; returns the drag and lift coefficients of every step, ``(n_steps,)`` each
        (kept on the device in one preallocated tensor, one transfer at the end: a list of per-step force
        tensors kept alive between the lattice's large allocations fragmented the CPU heap, 1 MB a recorded
        step on the coarse preset's lattice, enough to exhaust 24 GiB over 24 000 steps)."""
        history = torch.empty((n_steps, 2), device=self.device, dtype=self.dtype) if record else None
        for step in range(n_steps):
            self._post, force = self._kernel(self._post)
            if history is not None:
                history[step] = force
            self.steps_done += 1
        if history is None or n_steps == 0:
            return torch.empty(0), torch.empty(0)
        coefficients = history.to("cpu", torch.float64) / (0.5 * self.lattice_velocity**2 * self.resolution)
        return coefficients[:, 0], coefficients[:, 1]

    def vorticity(self) -> torch.Tensor:
        """Vorticity dv/dx - du/dy on the lattice, in U/D (central differences), ``(ny, nx)``."""
        _, ux, uy = self.macroscopic()
        dv_dx = (torch.roll(uy, -1, 1) - torch.roll(uy, 1, 1)) / 2
        du_dy = (torch.roll(ux, -1, 0) - torch.roll(ux, 1, 0)) / 2
        return (dv_dx - du_dy) * self.resolution / self.lattice_velocity

    def sample(self, field: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Bilinear interpolation of a lattice field ``(..., ny, nx)`` at the points of the grid y x x."""
        fx = ((x - self.domain_x[0]) * self.resolution).to(field.device, field.dtype)
        fy = ((y - self.domain_y[0]) * self.resolution).to(field.device, field.dtype)
        nx, ny = field.shape[-1], field.shape[-2]
        i0, j0 = fx.floor().long().clamp(0, nx - 1), fy.floor().long().clamp(0, ny - 1)
        tx, ty = fx - i0, fy - j0
        i1, j1 = (i0 + 1).clamp(max=nx - 1), (j0 + 1).clamp(max=ny - 1)  # the last node: weight 0 on i1
        top = field[..., j0[:, None], i0] * (1 - tx) + field[..., j0[:, None], i1] * tx
        bottom = field[..., j1[:, None], i0] * (1 - tx) + field[..., j1[:, None], i1] * tx
        return top * (1 - ty[:, None]) + bottom * ty[:, None]

    def start_from(self, other: "CylinderFlow") -> None:
        """Take the flow state of ``other`` (same Reynolds number and domain, any resolution and lattice
        velocity, e.g. a coarser lattice's developed wake): density and velocity are interpolated bilinearly
        onto this lattice and rescaled to its lattice velocity (u by U'/U, rho - 1 by (U'/U)^2: pressure scales
        with U^2), and the populations set to their equilibrium. The viscous stress in the non-equilibrium part
        is not carried; it rebuilds within a few relaxation times, far shorter than a shedding period."""
        if other.reynolds != self.reynolds or other.domain_x != self.domain_x or other.domain_y != self.domain_y:
            raise ValueError(
                f"cylinder: start_from needs the same Reynolds number and domain, got Re {other.reynolds:g} on "
                f"{other.domain_x} x {other.domain_y} for Re {self.reynolds:g} on {self.domain_x} x {self.domain_y}"
            )
        rho, ux, uy = other.macroscopic()
        scale = self.lattice_velocity / other.lattice_velocity
        # nodes beyond other's last node (up to one coarse spacing) take its values there
        x = self.x_nodes.clamp(float(other.x_nodes[0]), float(other.x_nodes[-1]))
        y = self.y_nodes.clamp(float(other.y_nodes[0]), float(other.y_nodes[-1]))
        fields = other.sample(torch.stack([rho - 1, ux, uy]).to(torch.float64), x, y).to(self.device, self.dtype)
        density = 1 + fields[0] * scale**2
        self.f = torch.where(self.solid, 0.0, self._equilibrium(density, fields[1] * scale, fields[2] * scale))

    def perturb(self, amplitude: float = 0.05) -> None:
        """Break the up-down symmetry so that shedding starts without waiting for round-off: add a transverse
        velocity of ``amplitude`` U behind the cylinder (a Gaussian bump of width D at x = 1.5 D), by shifting
        the equilibrium part of the populations."""
        rho, ux, uy = self.macroscopic()
        yy, xx = torch.meshgrid(self.y_nodes, self.x_nodes, indexing="ij")
        kick = (amplitude * self.lattice_velocity * torch.exp(-((xx - 1.5) ** 2 + yy**2))).to(self.device, self.dtype)
        change = self._equilibrium(rho, ux, uy + kick) - self._equilibrium(rho, ux, uy)
        f = self.f
        self.f = torch.where(self.solid, f, f + change)


def recirculation_length(flow: CylinderFlow) -> float:
    """Length (in D) of the recirculation bubble behind the cylinder: from the rear surface x = 0.5 to the
    first point on the centre line y = 0 where the streamwise velocity turns from negative to positive."""
    _, ux, _ = flow.macroscopic()
    row = int(round((0.0 - flow.domain_y[0]) * flow.resolution))
    line = ux[row].double().cpu().numpy()
    x = flow.x_nodes.numpy()
    behind = np.nonzero(x > 0.5)[0]
    values = line[behind]
    negative = np.nonzero(values < 0)[0]
    if negative.size == 0:
        return 0.0
    after = np.nonzero(values[negative[0]:] >= 0)[0]
    if after.size == 0:
        return float("inf")
    k = behind[negative[0] + after[0]]
    crossing = x[k - 1] + (x[k] - x[k - 1]) * (-line[k - 1]) / (line[k] - line[k - 1])
    return float(crossing - 0.5)


def _spin_up(flow: CylinderFlow, max_time: float, tolerance: float, bar) -> float:
    """Advance ``flow`` one D/U at a time until its transient has passed (see :func:`simulate`); returns the
    time it took. Raises when that takes longer than ``max_time``."""
    unit = int(round(flow.steps_per_unit_time))
    drag_history: list[torch.Tensor] = []
    lift_history: list[torch.Tensor] = []
    start = flow.time
    while flow.time - start < max_time:
        drag, lift = flow.run(unit)
        drag_history.append(drag)
        lift_history.append(lift)
        bar.update(1)
        lifts = torch.cat(lift_history).numpy()
        drags = torch.cat(drag_history).numpy()
        if not np.all(np.isfinite(drags)):
            raise FloatingPointError(f"cylinder: the simulation diverged at t = {flow.time:.1f} D/U")
        times = (np.arange(lifts.size) + 1) / flow.steps_per_unit_time
        if has_settled(shedding_cycles(times, lifts), tolerance):
            return flow.time - start
        window = 10 * unit
        if drags.size > 2 * window and np.abs(lifts[-window:]).max() < 1e-3:
            if abs(drags[-window:].mean() - drags[-2 * window:-window].mean()) <= tolerance / 100 * abs(drags[-1]):
                return flow.time - start
    raise RuntimeError(
        f"cylinder: the start-up transient had not passed after {max_time:g} D/U at {flow.resolution} nodes per "
        f"diameter (raise max_spin_up, or loosen the tolerance {tolerance:g})"
    )


def simulate(
    reynolds: float = 100.0,
    preset: str | CylinderPreset = "coarse",
    *,
    velocity: bool = False,
    device: torch.device | str = "cpu",
    compile: bool | None = None,
    max_spin_up: float = 400.0,
    tolerance: float = 0.01,
    progress: bool = True,
    on_snapshot: Callable[[int], None] | None = None,
) -> FlowResult:
    """Spin the flow up until its start-up transient has passed, then sample the window.

    The transient is over (checked every D/U) when the mean lift amplitude and period of the last three
    shedding cycles agree with the three before within ``tolerance`` (:func:`has_settled`), or when the drag
    has changed by less than ``tolerance`` / 100 over the last 10 D/U with no lift oscillation (steady flow,
    Re below about 47). With a preset's ``spin_up_resolution`` the wake first develops on that coarser lattice,
    is interpolated onto the preset's (:meth:`CylinderFlow.start_from`) and settles again there: the fine
    lattice then needs only the six cycles of the settling test (about 40 D/U) instead of the whole growth
    from the kick (51 D/U on the coarse preset), a modest saving. A run that has not settled after
    ``max_spin_up`` D/U in all raises. Snapshots: vorticity (and velocity on request) on the preset's window
    grid.
    ``compile`` defaults to True (torch.compile fuses the step: 12x faster than eager on 2 CPU cores; on an
    H100 the first, vectorised form ran 4.9x faster compiled).
    """
    from dynlearn.progress import progress as progress_display

    if isinstance(preset, str) and preset not in PRESETS:
        raise ValueError(f"cylinder: preset must be one of {sorted(PRESETS)}, got {preset!r}")
    settings = PRESETS[preset] if isinstance(preset, str) else preset
    velocity = as_flag("velocity", velocity)
    steps_per_snapshot = settings.snapshot_interval * settings.resolution / settings.lattice_velocity
    if abs(steps_per_snapshot - round(steps_per_snapshot)) > 1e-9:
        raise ValueError("cylinder: the snapshot interval must be a whole number of lattice steps")
    resolutions = [settings.resolution]
    if settings.spin_up_resolution is not None and settings.spin_up_resolution != settings.resolution:
        resolutions.insert(0, settings.spin_up_resolution)
    for resolution in resolutions:  # every lattice's stability limit, before any work
        CylinderFlow.check(reynolds, resolution, settings.lattice_velocity)
    window_points = (round((WINDOW_X[1] - WINDOW_X[0]) / settings.spacing) - 1) * \
        (round((WINDOW_Y[1] - WINDOW_Y[0]) / settings.spacing) - 1)
    # each snapshot is kept in float32 while sampling, then stacked in float64 (and copied once by the dataset)
    check_allocation(f"cylinder: {settings.n_snapshots} snapshots of {window_points} points",
                     settings.n_snapshots * window_points * (3 if velocity else 1) * (4 + 8 + 8),
                     "ask for fewer --snapshots")
    compile = True if compile is None else as_flag("compile", compile)
    bar = progress_display(total=int(max_spin_up), description=f"cylinder Re={reynolds:g}: spin-up (D/U)",
                           enabled=progress)
    spin_up = 0.0
    stages: list[tuple[int, float]] = []
    previous: CylinderFlow | None = None
    for resolution in resolutions:
        flow = settings.flow(reynolds, resolution, device=device, compile=compile)
        if previous is None:
            if reynolds > 40:
                # a strong asymmetric kick: on the coarse preset the shedding settles after 51 D/U, against
                # 85 D/U with a kick of 0.1 U and 68 D/U with 1 U (same St and amplitude once settled)
                flow.perturb(0.5)
        else:
            flow.start_from(previous)
        bar.set_description(f"cylinder Re={reynolds:g}: spin-up at {resolution} nodes per D (D/U)")
        stage = _spin_up(flow, max_spin_up - spin_up, tolerance, bar)
        stages.append((resolution, stage))
        spin_up += stage
        previous = flow
    bar.close()
    # interior points of the window, as in the standard data set (449 x 199 at 0.02 D)
    x = torch.arange(1, round((WINDOW_X[1] - WINDOW_X[0]) / settings.spacing), dtype=torch.float64) * settings.spacing + WINDOW_X[0]
    y = torch.arange(1, round((WINDOW_Y[1] - WINDOW_Y[0]) / settings.spacing), dtype=torch.float64) * settings.spacing + WINDOW_Y[0]
    vorticity, velocities, force_drag, force_lift = [], [], [], []
    for index in progress_display(range(settings.n_snapshots), total=settings.n_snapshots,
                                  description=f"cylinder Re={reynolds:g}: snapshots", enabled=progress):
        if index:
            drag, lift = flow.run(int(round(steps_per_snapshot)))
            force_drag.append(drag)
            force_lift.append(lift)
        vorticity.append(flow.sample(flow.vorticity(), x, y).cpu())
        if velocity:
            _, ux, uy = flow.macroscopic()
            velocities.append(flow.sample(torch.stack([ux, uy]) / flow.lattice_velocity, x, y).cpu())
        if on_snapshot is not None:
            on_snapshot(index)
    drag = torch.cat(force_drag) if force_drag else torch.empty(0)
    lift = torch.cat(force_lift) if force_lift else torch.empty(0)
    step_time = 1.0 / flow.steps_per_unit_time
    return FlowResult(
        vorticity=torch.stack(vorticity).double(),
        velocity=torch.stack(velocities).double() if velocity else None,
        times=torch.arange(settings.n_snapshots, dtype=torch.float64) * settings.snapshot_interval,
        x=x, y=y,
        force_times=(torch.arange(drag.numel(), dtype=torch.float64) + 1) * step_time,
        drag=drag, lift=lift, spin_up_time=spin_up, spin_up_stages=tuple(stages),
    )
