r"""The 1D wave equation u_tt = c^2 u_xx on [0, 1] with Dirichlet ends u(0, t) = u(1, t) = 0.

Exact solution as a Fourier sine series from an initial displacement f and velocity g (default f = x - x^3,
g = 0):

    u(x, t) = sum_n [a_n cos(w_n t) + b_n / w_n sin(w_n t)] sin(n pi x),   w_n = n pi c,
    a_n = 2 int_0^1 f(x) sin(n pi x) dx,   b_n = 2 int_0^1 g(x) sin(n pi x) dx.

The coefficients are computed in closed form by sympy for a symbolic mode number n for polynomial and
trigonometric data (special cases such as sin(3 pi x) included through sympy's Piecewise), and by adaptive
quadrature for a sine weight (scipy's QAWO) for any other data (sympy is not asked: it can take minutes to
give up on a non-elementary integral). The series is cut at
``n_modes``; :attr:`WaveEquation.truncation_error` bounds :math:`|u - u_M|` by the sum of
:math:`|a_n| + |b_n|/w_n` over the next 63 M modes (for data whose coefficients decay like n^-3, as x - x^3's do, what
lies beyond is 1/4096 of that).

The velocity converges one power of n slower: u_t's coefficients are w_n a_n and b_n, for x - x^3 a tail of
n^-2, and 1000 modes leave it 6e-4 off on the default grid over t in [0, 2] (u: 7e-8).
:meth:`WaveEquation.series_solution` therefore takes u_t from d'Alembert's formula instead, exact to round-off
for any data: with F the odd 2-periodic extension of f (its derivative F' the even extension of f') and G the
odd extension of g,

    u_t(x, t) = (c / 2) [F'(x + c t) - F'(x - c t)] + (1 / 2) [G(x + c t) + G(x - c t)],

f' taken by sympy. The displacement keeps the series (its bound is what the dataset's metadata records, the
velocity's method beside it).

On the grid: states are (u(x_1..x_N), u_t(x_1..x_N)) at the N interior nodes x_j = j / (N + 1), flattened to
shape (2N,). The method of lines replaces u_xx by centred finite differences of order 2, 4 or 6 (the
boundary values come from the odd reflection u(-x) = -u(x), u(1 + x) = -u(1 - x) that the Dirichlet
problem's solution obeys), giving the linear system d/dt (u, v) = [[0, I], [c^2 D, 0]] (u, v) whose matrix
:meth:`WaveEquation.operator_matrix` exposes, so that a learned operator can be compared with the stencils.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np
import sympy
import torch
from scipy import integrate

from .base import Parameter, System, as_times, check_positive
from dynlearn._checks import as_integer
from dynlearn.expressions import parse_expression

__all__ = ["WaveEquation", "SECOND_DERIVATIVE_STENCILS", "sine_coefficients"]

X = sympy.Symbol("x", real=True)

#: Centred stencils of u_xx (times h^2), offsets -p/2 .. p/2, by order of accuracy p.
SECOND_DERIVATIVE_STENCILS: dict[int, tuple[sympy.Rational, ...]] = {
    2: tuple(sympy.Rational(v) for v in ("1", "-2", "1")),
    4: tuple(sympy.Rational(v) for v in ("-1/12", "4/3", "-5/2", "4/3", "-1/12")),
    6: tuple(sympy.Rational(v) for v in ("1/90", "-3/20", "3/2", "-49/18", "3/2", "-3/20", "1/90")),
}


def _parse(expression: str | sympy.Expr, what: str) -> sympy.Expr:
    if isinstance(expression, sympy.Expr):
        parsed = expression
    else:  # a user's string: parsed with a whitelist, never evaluated (dynlearn.expressions)
        parsed = parse_expression(expression, {"x": X}, what=f"wave: {what}")
    extra = parsed.free_symbols - {X}
    if extra:
        raise ValueError(f"wave: {what} {expression!r} may only use x, found {sorted(map(str, extra))}")
    return parsed


def _has_elementary_sine_integral(expression: sympy.Expr) -> bool:
    """True for the class sympy integrates against sin(n pi x) quickly and exactly: polynomials in x and
    sines and cosines of linear functions of x, combined by sums, products and non-negative integer powers."""
    for node in sympy.preorder_traversal(expression):
        if isinstance(node, (sympy.Symbol, sympy.Number, sympy.Add, sympy.Mul)) or node is sympy.pi:
            continue
        if isinstance(node, sympy.Pow):
            if not (node.exp.is_Integer and node.exp >= 0):
                return False
            continue
        if isinstance(node, (sympy.sin, sympy.cos)):
            if not node.args[0].is_polynomial(X) or sympy.degree(node.args[0], X) > 1:
                return False
            continue
        return False
    return True


@lru_cache(maxsize=64)
def _closed_form(expression: sympy.Expr) -> sympy.Expr | None:
    """2 int_0^1 e(x) sin(n pi x) dx for a symbolic integer n >= 1, or None outside the elementary class."""
    if not _has_elementary_sine_integral(expression):
        return None
    n = sympy.Symbol("n", integer=True, positive=True)
    closed = sympy.simplify(sympy.integrate(2 * expression * sympy.sin(n * sympy.pi * X), (X, 0, 1)))
    return None if closed.has(sympy.Integral) else closed


def sine_coefficients(expression: sympy.Expr, n_modes: int) -> tuple[np.ndarray, bool]:
    """2 int_0^1 e(x) sin(n pi x) dx for n = 1..n_modes, and whether they came from a closed form.

    Polynomial and trigonometric data get sympy's closed form in n (cached per expression); anything else
    adaptive quadrature with a sine weight (scipy's QAWO), accurate to about 1e-14 per coefficient.
    """
    modes = np.arange(1, n_modes + 1)
    closed = _closed_form(expression)
    if closed is not None:
        n = sympy.Symbol("n", integer=True, positive=True)
        values = np.broadcast_to(np.asarray(sympy.lambdify(n, closed, "numpy")(modes), dtype=float), modes.shape)
        return np.array(values), True
    function = sympy.lambdify(X, expression, "numpy")
    values = np.array(
        [2 * integrate.quad(function, 0, 1, weight="sin", wvar=k * math.pi, limit=200)[0] for k in modes]
    )
    return values, False


class WaveEquation(System):
    """u_tt = c^2 u_xx on [0, 1], Dirichlet ends; see the module docstring for the solution and the grid.

    Energy E = (1/2) int (u_t^2 + c^2 u_x^2) dx, conserved: from the series it is (1/4) sum (w_n^2 a_n^2 +
    b_n^2); on the grid :meth:`energy` is the discrete h/2 sum v_j^2 + c^2/(2h) sum (u_{j+1} - u_j)^2, which
    the order-2 method of lines conserves exactly.
    """

    name = "wave"
    PARAMETERS = (
        Parameter("speed", 1.0, "length/time", "wave speed c"),
        Parameter("nodes", 64, "1", "interior grid nodes N (spacing 1/(N+1))"),
        Parameter("n_modes", 1000, "1", "Fourier modes kept in the exact series"),
        Parameter("displacement", "x - x**3", "length", "initial displacement f(x), vanishing at x = 0 and 1"),
        Parameter("velocity", "0", "length/time", "initial velocity g(x), vanishing at x = 0 and 1"),
        Parameter("stencil_order", 6, "1", "order (2, 4 or 6) of the finite differences in the vector field"),
    )
    analytical_method = "Fourier sine series, coefficients by sympy (closed form) or QAWO quadrature"

    def __init__(
        self,
        speed: float = 1.0,
        nodes: int = 64,
        n_modes: int = 1000,
        displacement: str | sympy.Expr = "x - x**3",
        velocity: str | sympy.Expr = "0",
        stencil_order: int = 6,
    ) -> None:
        self.speed = check_positive(self.name, "speed", speed)
        for label, value, minimum in (("nodes", nodes, 1), ("n_modes", n_modes, 1)):
            as_integer(f"{self.name}: {label}", value, minimum=minimum)
        if stencil_order not in SECOND_DERIVATIVE_STENCILS:
            raise ValueError(f"{self.name}: stencil_order must be 2, 4 or 6, got {stencil_order!r}")
        self.nodes, self.n_modes, self.stencil_order = int(nodes), int(n_modes), int(stencil_order)
        self.displacement, self.velocity = str(displacement), str(velocity)
        f = _parse(displacement, "displacement")
        g = _parse(velocity, "velocity")
        for label, expression in (("displacement", f), ("velocity", g)):
            ends = [sympy.nsimplify(expression.subs(X, end)) for end in (0, 1)]
            if any(abs(complex(value)) > 1e-14 for value in ends):
                raise ValueError(
                    f"{self.name}: the initial {label} must vanish at the Dirichlet ends x = 0 and x = 1, "
                    f"got {ends[0]} and {ends[1]}"
                )
        self._expressions = (f, g)
        self._slope_and_velocity = (sympy.lambdify(X, sympy.diff(f, X), "numpy"), sympy.lambdify(X, g, "numpy"))
        a, exact_a = sine_coefficients(f, 64 * self.n_modes)
        b, exact_b = sine_coefficients(g, 64 * self.n_modes) if g != 0 else (np.zeros(64 * self.n_modes), True)
        self.coefficients_exact = exact_a and exact_b
        frequencies = np.arange(1, a.size + 1) * math.pi * self.speed
        tail = np.abs(a[self.n_modes :]) + np.abs(b[self.n_modes :]) / frequencies[self.n_modes :]
        #: estimate of sup :math:`|u - u_M|` over x and t (see the module docstring)
        self.truncation_error = float(tail.sum())
        self.displacement_coefficients = torch.from_numpy(a[: self.n_modes].copy())
        self.velocity_coefficients = torch.from_numpy(b[: self.n_modes].copy())
        self._operator: dict[int, torch.Tensor] = {}

    # -- grid -----------------------------------------------------------------------------------------------

    @property
    def spacing(self) -> float:
        return 1.0 / (self.nodes + 1)

    @property
    def grid(self) -> torch.Tensor:
        """Interior nodes x_j = j / (N + 1), j = 1..N, float64."""
        return torch.arange(1, self.nodes + 1, dtype=torch.float64) * self.spacing

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(f"u[{j}]" for j in range(self.nodes)) + tuple(f"u_t[{j}]" for j in range(self.nodes))

    @property
    def state_shape(self) -> tuple[int, ...]:
        """(2 N,): known without naming every component (a size check of 10^8 nodes must not build their names)."""
        return (2 * self.nodes,)

    def laplacian_matrix(self, order: int | None = None) -> torch.Tensor:
        """D, (N, N) float64: the order-p centred approximation of d^2/dx^2 with odd reflection at the ends."""
        order = self.stencil_order if order is None else order
        if order not in SECOND_DERIVATIVE_STENCILS:
            raise ValueError(f"{self.name}: order must be 2, 4 or 6, got {order!r}")
        stencil = [float(w) for w in SECOND_DERIVATIVE_STENCILS[order]]
        half = order // 2
        n = self.nodes
        matrix = np.zeros((n, n))
        for row in range(n):  # node index i = row + 1 in 0..N+1 numbering
            for offset, weight in zip(range(-half, half + 1), stencil):
                j = row + 1 + offset
                sign = 1.0
                period = 2 * (n + 1)  # the odd extension is 2-periodic in x, i.e. 2(N+1)-periodic in j
                j %= period
                if j > n + 1:
                    j, sign = period - j, -1.0
                if j == 0 or j == n + 1:
                    continue  # u = 0 on the Dirichlet ends
                matrix[row, j - 1] += sign * weight
        return torch.from_numpy(matrix / self.spacing**2)

    def operator_matrix(self, order: int | None = None) -> torch.Tensor:
        """A = [[0, I], [c^2 D, 0]], (2N, 2N) float64: the method-of-lines system d/dt (u, v) = A (u, v)."""
        order = self.stencil_order if order is None else order
        if order not in self._operator:
            n = self.nodes
            operator = torch.zeros(2 * n, 2 * n, dtype=torch.float64)
            operator[:n, n:] = torch.eye(n, dtype=torch.float64)
            operator[n:, :n] = self.speed**2 * self.laplacian_matrix(order)
            self._operator[order] = operator
        return self._operator[order]

    def vector_field(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The method of lines of order ``stencil_order``: x @ A^T for states ``(*batch, 2N)``."""
        x = self.check_state(x)
        operator = self.operator_matrix()
        if operator.dtype != x.dtype or operator.device != x.device:
            operator = operator.to(dtype=x.dtype, device=x.device)
        return x @ operator.T

    def method_of_lines_solution(self, x0: torch.Tensor, times: torch.Tensor, order: int | None = None) -> torch.Tensor:
        """Exact-in-time solution of the semi-discrete system d/dt x = A x (only the space discretisation
        errs), through the eigenvectors of the symmetric D: ``(n, *batch, 2N)`` float64."""
        x0 = self.check_state(torch.as_tensor(x0, dtype=torch.float64), "x0")
        times = as_times(times)
        eigenvalues, vectors = torch.linalg.eigh(self.laplacian_matrix(order))
        frequencies = self.speed * torch.sqrt((-eigenvalues).clamp(min=0))  # D is negative definite
        n = self.nodes
        flat = x0.reshape(-1, 2 * n)
        u_modes, v_modes = flat[:, :n] @ vectors, flat[:, n:] @ vectors  # (B, N)
        phase = times[:, None, None] * frequencies  # (T, 1, N)
        u = u_modes * torch.cos(phase) + v_modes / frequencies * torch.sin(phase)
        v = -u_modes * frequencies * torch.sin(phase) + v_modes * torch.cos(phase)
        states = torch.cat([u @ vectors.T, v @ vectors.T], dim=-1)
        return states.reshape(times.shape[0], *x0.shape)

    def numerical_solution(
        self, x0: torch.Tensor, times: torch.Tensor | Sequence[float], *, rtol: float = 1e-12, atol: float = 1e-12
    ) -> torch.Tensor:
        """The method of lines of order ``stencil_order``, exact in time (:meth:`method_of_lines_solution`):
        the only error is the space discretisation's (``rtol`` and ``atol``, the time integrator's tolerances
        of :meth:`System.numerical_solution`, do not apply)."""
        return self.method_of_lines_solution(x0, times)

    def numerical_details(self) -> dict:
        return {"method": f"method of lines, order-{self.stencil_order} finite differences, exact in time "
                          f"(eigenvectors of the symmetric Laplacian)", "nodes": self.nodes}

    # -- exact solutions -------------------------------------------------------------------------------------

    def series(self, x: torch.Tensor, t: torch.Tensor, a: torch.Tensor | None = None, b: torch.Tensor | None = None):
        """(u, u_t) at points ``x`` (P,) and times ``t`` (T,) from sine coefficients (default: the configured
        initial data's first ``n_modes``): two tensors (T, P). Differentiable in x and t."""
        a = self.displacement_coefficients if a is None else a
        b = self.velocity_coefficients if b is None else b
        modes = torch.arange(1, a.shape[-1] + 1, dtype=torch.float64)
        frequencies = modes * math.pi * self.speed
        shapes = torch.sin(math.pi * x[:, None] * modes)  # (P, M)
        phase = t[:, None] * frequencies  # (T, M)
        amplitude = a * torch.cos(phase) + b / frequencies * torch.sin(phase)
        rate = -a * frequencies * torch.sin(phase) + b * torch.cos(phase)
        return amplitude @ shapes.T, rate @ shapes.T

    def dalembert_velocity(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """u_t at points ``x`` (P,) and times ``t`` (T,) from d'Alembert's formula (module docstring) for the
        configured data: ``(T, P)`` float64, exact to round-off (no series, no truncation)."""
        slope, velocity = self._slope_and_velocity
        points = (torch.as_tensor(x, dtype=torch.float64)[None, :]
                  + self.speed * torch.as_tensor(t, dtype=torch.float64)[:, None] * torch.tensor([[[1.0]], [[-1.0]]],
                                                                                               dtype=torch.float64))
        wrapped = torch.remainder(points, 2.0).numpy()  # (2, T, P): x + ct, then x - ct, in [0, 2)
        inside = wrapped <= 1
        reflected = np.where(inside, wrapped, 2.0 - wrapped)  # back into [0, 1]
        values = (np.broadcast_to(np.asarray(slope(reflected), dtype=float), reflected.shape),
                  np.broadcast_to(np.asarray(velocity(reflected), dtype=float), reflected.shape))
        even_slope = values[0]  # F' = f'(r) on [0, 1], f'(2 - r) on [1, 2]
        odd_velocity = np.where(inside, values[1], -values[1])  # G = g(r), -g(2 - r)
        rate = 0.5 * self.speed * (even_slope[0] - even_slope[1]) + 0.5 * (odd_velocity[0] + odd_velocity[1])
        return torch.from_numpy(np.ascontiguousarray(rate))

    def series_solution(self, times: torch.Tensor) -> torch.Tensor:
        """The configured initial data's exact solution on the grid, ``(n, 2N)`` float64: u from the series (within
        :attr:`truncation_error`), u_t from d'Alembert's formula (exact to round-off; module docstring)."""
        times = as_times(times)
        u, _ = self.series(self.grid, times)
        return torch.cat([u, self.dalembert_velocity(self.grid, times)], dim=-1)

    def initial_state(self) -> torch.Tensor:
        """The configured initial data evaluated exactly on the grid: ``(2N,)`` float64."""
        f, g = (sympy.lambdify(X, e, "numpy") for e in self._expressions)
        grid = self.grid.numpy()
        values = [np.broadcast_to(np.asarray(h(grid), dtype=float), grid.shape) for h in (f, g)]
        return torch.from_numpy(np.concatenate(values).copy())

    def grid_sine_coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sine coefficients (a, b), each ``(*batch, N)``, of the band-limited functions sum_{n<=N} c_n sin(n pi x)
        that take the grid values of ``x`` (a discrete sine transform, DST-I, exact and invertible)."""
        n = self.nodes
        modes = torch.arange(1, n + 1, dtype=torch.float64)
        transform = torch.sin(math.pi * self.grid[:, None] * modes) * (2.0 / (n + 1))  # inverse of sin(pi j n/(N+1))
        x = torch.as_tensor(x, dtype=torch.float64)
        return x[..., :n] @ transform, x[..., n:] @ transform

    def solution(self, x0: torch.Tensor, times: torch.Tensor | Sequence[float]) -> torch.Tensor:
        """Exact solution from the grid state ``x0`` read as band-limited data (sums of the first N sine modes,
        which is what :meth:`sample_initial_conditions` draws): ``(n, *batch, 2N)``. For the configured
        continuous initial data use :meth:`series_solution`."""
        x0 = self.check_state(torch.as_tensor(x0, dtype=torch.float64), "x0")
        a, b = self.grid_sine_coefficients(x0.reshape(-1, 2 * self.nodes))
        times = as_times(times)
        states = []
        for batch_index in range(a.shape[0]):
            u, v = self.series(self.grid, times, a[batch_index], b[batch_index])
            states.append(torch.cat([u, v], dim=-1))
        return torch.stack(states, dim=1).reshape(times.shape[0], *x0.shape)

    def series_energy(self) -> float:
        """E = (1/4) sum_n (w_n^2 a_n^2 + b_n^2) of the configured data's truncated series."""
        frequencies = torch.arange(1, self.n_modes + 1, dtype=torch.float64) * math.pi * self.speed
        return float(0.25 * (frequencies**2 * self.displacement_coefficients**2 + self.velocity_coefficients**2).sum())

    def band_limited_energy(self, x: torch.Tensor) -> torch.Tensor:
        """The continuum energy (1/4) sum_n (w_n^2 a_n^2 + b_n^2) of the band-limited functions through the grid
        values of ``x`` (see :meth:`grid_sine_coefficients`), shape ``x.shape[:-1]``: exactly conserved by
        :meth:`solution`."""
        a, b = self.grid_sine_coefficients(self.check_state(x))
        frequencies = torch.arange(1, self.nodes + 1, dtype=torch.float64) * math.pi * self.speed
        return 0.25 * (frequencies**2 * a**2 + b**2).sum(-1)

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_state(x)
        n, h = self.nodes, self.spacing
        u, v = x[..., :n], x[..., n:]
        padded = torch.nn.functional.pad(u, (1, 1))
        return 0.5 * h * (v**2).sum(-1) + 0.5 * self.speed**2 / h * (padded.diff(dim=-1) ** 2).sum(-1)

    def analytical_trajectories(
        self, times: torch.Tensor, initial_conditions: torch.Tensor | None, n: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Given initial states: their band-limited exact solutions (:meth:`solution`). Otherwise the first
        trajectory starts from the configured data f, g (exact series, :meth:`series_solution`) and the
        other n - 1 from :meth:`sample_initial_conditions`."""
        if initial_conditions is not None:
            return super().analytical_trajectories(times, initial_conditions, n, generator)
        first = self.series_solution(times).unsqueeze(0)
        if n == 1:
            return first[:, 0], first
        x0, rest = super().analytical_trajectories(times, None, n - 1, generator)
        return torch.cat([first[:, 0], x0]), torch.cat([first, rest])

    def analytical_details(self) -> dict:
        return {
            "method": self.analytical_method,
            "n_modes": self.n_modes,
            "coefficients": "closed form (sympy)" if self.coefficients_exact else "QAWO quadrature",
            "truncation_error_estimate": self.truncation_error,
            "displacement": f"Fourier sine series of {self.n_modes} modes, within truncation_error_estimate",
            "velocity": "d'Alembert's formula with the odd 2-periodic extension of the data, exact to round-off",
        }

    def sample_initial_conditions(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Band-limited random data: displacement and velocity sum_{k<=4} c_k sin(k pi x) with
        c_k ~ N(0, (0.2/k^2)^2) and N(0, (0.2 pi c / k)^2) respectively, on the grid: ``(n, 2N)``."""
        modes = torch.arange(1, min(4, self.nodes) + 1, dtype=torch.float64)
        draws = torch.randn(n, 2, modes.numel(), generator=generator, dtype=torch.float64)
        displacement = draws[:, 0] * 0.2 / modes**2
        velocity = draws[:, 1] * 0.2 * math.pi * self.speed / modes
        shapes = torch.sin(math.pi * self.grid[:, None] * modes)  # (N, K)
        return torch.cat([displacement @ shapes.T, velocity @ shapes.T], dim=-1)
