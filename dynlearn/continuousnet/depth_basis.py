"""Basis functions in depth for continuous-in-depth networks (ContinuousNet): theta(t) = sum_b phi_b(t) theta_b,
t in [0, 1].

Families:

- ``PiecewiseConstant(K)``: phi_b = 1 on the b-th of K equal pieces. With forward Euler and one step per piece
  the network is exactly a ResNet.
- ``PiecewiseLinear(K)``: hat functions on the K + 1 nodes j / K (continuous in depth).
- ``Legendre(K)``: the shifted Legendre polynomials P_j(2t - 1), j < K (smooth, orthogonal).

Where an RK stage reads its parameters. A step n of N has stage times t = (n + c_i) / N with rational nodes c_i
(exact in the tableau), so the piece of a stage is computed with integers: floor(K (n q + p) / (N q)) for
c_i = p / q. A stage exactly on a piece boundary takes the piece on its step's side: the stage at the end of a
step (c = 1) takes the piece to its left, every other stage the piece to its right. So with N = K every stage
of step n reads piece n (RK4 included), and float rounding never moves a stage across a boundary: float
``int(K * t)`` does, for many N that are not powers of two.

Projections between bases and resolutions are L2 projections (exact where the target space holds the
function: refinement K -> 2K of piecewise constants or linears, Legendre to more terms), computed by
Gauss-Legendre quadrature on the union of the two bases' breakpoints with enough points to be exact for the
products of basis functions.
"""

from __future__ import annotations

import abc
import math
from fractions import Fraction
from typing import Sequence

import numpy as np
import torch

from dynlearn._checks import as_integer, check_allocation

__all__ = ["DepthBasis", "PiecewiseConstant", "PiecewiseLinear", "Legendre", "FAMILIES", "make_basis", "project",
           "stage_times"]


def stage_times(n_steps: int, nodes: Sequence[Fraction]) -> list[tuple[int, Fraction]]:
    """(step, node) of every stage of ``n_steps`` steps over [0, 1], in order: integer steps, exact nodes."""
    n_steps = as_integer("n_steps", n_steps)
    return [(n, Fraction(c)) for n in range(n_steps) for c in nodes]


#: The most pieces a depth basis takes: far beyond the published runs (1 to 16 pieces), where every projection is a
#: dense (pieces x pieces) solve and a ContinuousNet holds a set of weights per piece.
MAXIMUM_PIECES = 1024


class DepthBasis(abc.ABC):
    """A finite basis of functions on [0, 1]; ``size`` functions, ``breakpoints`` where they are not smooth."""

    name: str

    def __init__(self, pieces: int) -> None:
        self.pieces = as_integer(f"{type(self).__name__}: the number of pieces", pieces, maximum=MAXIMUM_PIECES)

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """Number of coefficients."""

    @property
    @abc.abstractmethod
    def degree(self) -> int:
        """Polynomial degree on each piece."""

    @property
    def breakpoints(self) -> list[Fraction]:
        return [Fraction(j, self.pieces) for j in range(self.pieces + 1)]

    @abc.abstractmethod
    def weights(self, t: float) -> np.ndarray:
        """phi_b(t) for every b, ``(size,)``, float64 (t in [0, 1], a plain number)."""

    def stage_weights(self, n_steps: int, nodes: Sequence[Fraction]) -> torch.Tensor:
        """phi_b at every stage of ``n_steps`` steps with ``nodes``: ``(n_steps * len(nodes), size)`` float64."""
        return torch.from_numpy(np.stack([self.stage_weight(n, c, n_steps) for n, c in stage_times(n_steps, nodes)]))

    def stage_weight(self, step: int, node: Fraction, n_steps: int) -> np.ndarray:
        return self.weights(float(Fraction(step) + node) / n_steps)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.pieces})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.pieces == other.pieces  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.pieces))


def stage_piece(step: int, node: Fraction, n_steps: int, pieces: int) -> int:
    """The piece (0..pieces-1) a stage reads, by integer arithmetic (module docstring)."""
    node = Fraction(node)
    numerator = pieces * (step * node.denominator + node.numerator)
    denominator = n_steps * node.denominator
    piece = (numerator - 1) // denominator if node == 1 else numerator // denominator
    return min(max(piece, 0), pieces - 1)


class PiecewiseConstant(DepthBasis):
    r"""K equal pieces of depth, :math:`\phi_b = 1` on the b-th (``pieces`` = K): with forward Euler and one step per
    piece the network is exactly a ResNet."""

    name = "piecewise_constant"

    @property
    def size(self) -> int:
        return self.pieces

    @property
    def degree(self) -> int:
        return 0

    def weights(self, t: float) -> np.ndarray:
        out = np.zeros(self.pieces)
        out[min(int(math.floor(t * self.pieces)), self.pieces - 1)] = 1.0
        return out

    def stage_weight(self, step: int, node: Fraction, n_steps: int) -> np.ndarray:
        out = np.zeros(self.pieces)
        out[stage_piece(step, node, n_steps, self.pieces)] = 1.0
        return out


class PiecewiseLinear(DepthBasis):
    """Hat functions on the K + 1 nodes j / K of depth (``pieces`` = K): theta(t) continuous in depth."""

    name = "piecewise_linear"

    @property
    def size(self) -> int:
        return self.pieces + 1

    @property
    def degree(self) -> int:
        return 1

    def _hat(self, piece: int, position: Fraction | float) -> np.ndarray:
        out = np.zeros(self.pieces + 1)
        fraction = float(position) - piece
        out[piece], out[piece + 1] = 1.0 - fraction, fraction
        return out

    def weights(self, t: float) -> np.ndarray:
        piece = min(int(math.floor(t * self.pieces)), self.pieces - 1)
        return self._hat(piece, t * self.pieces)

    def stage_weight(self, step: int, node: Fraction, n_steps: int) -> np.ndarray:
        # continuous: the side of a boundary does not matter, but the position is computed exactly
        position = Fraction(self.pieces) * (Fraction(step) + Fraction(node)) / n_steps
        return self._hat(stage_piece(step, node, n_steps, self.pieces), position)


class Legendre(DepthBasis):
    """Shifted Legendre polynomials P_j(2t - 1), j = 0..pieces-1 (``pieces`` counts the terms)."""

    name = "legendre"

    @property
    def size(self) -> int:
        return self.pieces

    @property
    def degree(self) -> int:
        return self.pieces - 1

    @property
    def breakpoints(self) -> list[Fraction]:
        return [Fraction(0), Fraction(1)]

    def weights(self, t: float) -> np.ndarray:
        return np.polynomial.legendre.legvander(np.array([2.0 * t - 1.0]), self.pieces - 1)[0]


#: the bases by name
FAMILIES = {cls.name: cls for cls in (PiecewiseConstant, PiecewiseLinear, Legendre)}


def make_basis(name: str, pieces: int) -> DepthBasis:
    """A basis by name: "piecewise_constant", "piecewise_linear" or "legendre"."""
    if name not in FAMILIES:
        raise ValueError(f"basis must be one of {sorted(FAMILIES)}, got {name!r}")
    return FAMILIES[name](pieces)


def _quadrature(source: DepthBasis, target: DepthBasis) -> tuple[np.ndarray, np.ndarray]:
    """Points and weights exact for products of a source and a target function, on the union of breakpoints."""
    edges = sorted(set(source.breakpoints) | set(target.breakpoints))
    n = (source.degree + target.degree) // 2 + 1
    nodes, weights = np.polynomial.legendre.leggauss(max(n, target.degree + 1))
    points, factors = [], []
    for left, right in zip(edges[:-1], edges[1:]):
        a, b = float(left), float(right)
        points.append(a + (b - a) * (nodes + 1) / 2)
        factors.append(weights * (b - a) / 2)
    return np.concatenate(points), np.concatenate(factors)


def _values(basis: DepthBasis, points: np.ndarray) -> np.ndarray:
    """(n_points, size): quadrature points lie strictly inside pieces, so the side of a boundary never matters."""
    return np.stack([basis.weights(float(t)) for t in points])


def project(coefficients: torch.Tensor, source: DepthBasis, target: DepthBasis) -> torch.Tensor:
    """L2 projection of theta(t) = sum_b phi_b(t) coefficients[b] onto ``target``: ``(source.size, *shape)`` ->
    ``(target.size, *shape)``, in ``coefficients``' dtype and device. Exact (the same function) where the target
    space contains the source function."""
    if coefficients.shape[0] != source.size:
        raise ValueError(f"coefficients have {coefficients.shape[0]} rows, the source basis {source} has {source.size}")
    points, factors = _quadrature(source, target)
    # the basis values at the quadrature points (dense: points x size, each basis) and the mass matrices
    sizes = source.size + target.size
    check_allocation(f"projecting depth bases of {source.size} and {target.size} functions",
                     8.0 * (2 * points.size * sizes + 3 * target.size * sizes), "use fewer pieces")
    source_values = _values(source, points)
    target_values = _values(target, points)
    mass = target_values.T @ (factors[:, None] * target_values)  # (target, target)
    mixed = target_values.T @ (factors[:, None] * source_values)  # (target, source)
    operator = np.linalg.solve(mass, mixed)
    matrix = torch.as_tensor(operator, dtype=coefficients.dtype, device=coefficients.device)
    return torch.tensordot(matrix, coefficients, dims=([1], [0]))
