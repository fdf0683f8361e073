r"""Butcher tableaus of Runge-Kutta methods, held as exact numbers.

An s-stage Runge-Kutta method for :math:`dx/dt = f(t, x)` advances one step of size :math:`\Delta t` by

.. math::

    k_i = f\Big(t + c_i \Delta t,\; x + \Delta t \sum_j a_{ij} k_j\Big), \quad i = 1, \dots, s, \qquad
    x_{n+1} = x_n + \Delta t \sum_i b_i k_i,

and is written as the tableau

.. math::

    \begin{array}{c|c} c & A \\ \hline & b^T \end{array}

Entries are exact (integers, ``fractions.Fraction``, rational strings such as ``"1/6"``, or sympy
expressions such as ``sympy.sqrt(6)``); floats are refused because a float tableau cannot prove its own
order. A tableau checks its structure when built and can prove its order conditions symbolically through
the rooted trees of Butcher's theory, up to order 5.
"""

from __future__ import annotations

import dataclasses
import numbers
import re
from fractions import Fraction
from functools import cache, cached_property
from typing import Sequence, Union

import sympy
from dynlearn._checks import as_integer
from dynlearn.expressions import parse_expression

__all__ = [
    "ButcherTableau",
    "MAX_VERIFIED_ORDER",
    "rooted_trees",
    "tree_density",
    "elementary_weight",
]

#: Order conditions are generated (and can be proved) up to this order.
MAX_VERIFIED_ORDER = 5

ExactNumber = Union[int, Fraction, str, sympy.Expr]

# A rooted tree is the sorted tuple of its children's trees; the single vertex is ().
RootedTree = tuple


def _graft_leaf(tree: RootedTree) -> set[RootedTree]:
    """Every tree obtained by attaching one new leaf to one vertex of ``tree``."""
    grown = {tuple(sorted(tree + ((),)))}
    for index, child in enumerate(tree):
        rest = tree[:index] + tree[index + 1 :]
        for new_child in _graft_leaf(child):
            grown.add(tuple(sorted(rest + (new_child,))))
    return grown


@cache
def rooted_trees(order: int) -> tuple[RootedTree, ...]:
    """All rooted trees with ``order`` vertices (1, 1, 2, 4, 9, 20, ... of them; OEIS A000081).

    Each tree is a canonical nested tuple: the sorted tuple of its subtrees, the lone vertex being ``()``.
    The order conditions of a Runge-Kutta method of order p are one equation per tree with at most p vertices.
    """
    as_integer("order", order)
    if order == 1:
        return ((),)
    trees: set[RootedTree] = set()
    for smaller in rooted_trees(order - 1):
        trees |= _graft_leaf(smaller)
    return tuple(sorted(trees))


def _tree_size(tree: RootedTree) -> int:
    return 1 + sum(_tree_size(child) for child in tree)


def tree_density(tree: RootedTree) -> int:
    r"""The density :math:`\gamma(t) = |t| \prod_k \gamma(t_k)` over the subtrees :math:`t_k`; the order condition
    reads :math:`\Phi(t) = 1/\gamma(t)`."""
    density = _tree_size(tree)
    for child in tree:
        density *= tree_density(child)
    return density


def _stage_weights(tree: RootedTree, a: sympy.Matrix) -> sympy.Matrix:
    """Internal weights Psi_i(t) = prod_k (A Psi(t_k))_i, with Psi(single vertex) = (1, ..., 1)."""
    weights = sympy.ones(a.rows, 1)
    for child in tree:
        weights = weights.multiply_elementwise(a * _stage_weights(child, a))
    return weights


def elementary_weight(tree: RootedTree, a: sympy.Matrix, b: sympy.Matrix) -> sympy.Expr:
    """Butcher's elementary weight Phi(t) = b^T Psi(t) of a tree for the tableau (a, b)."""
    return (b.T * _stage_weights(tree, a))[0, 0]


def _exact(value: ExactNumber, where: str) -> sympy.Expr:
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(
            f"{where} = {value!r} is a float; tableau entries must be exact: an int, "
            f"Fraction(1, 3), the string '1/3', or a sympy number such as sympy.sqrt(6)"
        )
    if isinstance(value, Fraction):
        return sympy.Rational(value.numerator, value.denominator)
    if isinstance(value, numbers.Integral):
        return sympy.Integer(int(value))
    if isinstance(value, sympy.Expr):
        return value
    if isinstance(value, str):
        parsed = parse_expression(value, what=where)  # a whitelist, never evaluated (dynlearn.expressions)
        if not parsed.is_number:
            raise ValueError(f"{where} = {value!r} is not a number")
        return parsed
    raise TypeError(f"{where} = {value!r} has type {type(value).__name__}; expected an exact number")


def _is_zero(expression: sympy.Expr) -> bool:
    return sympy.simplify(expression) == 0


_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_\-]*$")


@dataclasses.dataclass(frozen=True)
class ButcherTableau:
    """An exact Butcher tableau: coefficients ``a`` (s x s), weights ``b`` (s), nodes ``c`` (s).

    Built from exact numbers, checked on construction:

    - ``a`` is square s x s, ``b`` and ``c`` have s entries, s >= 1;
    - row sums equal nodes, c_i = sum_j a_ij (the method treats t like any other state variable);
    - weights sum to one, sum_i b_i = 1 (order at least 1, consistency);
    - ``order`` is a positive integer. Whether the method really has that order is proved by
      :meth:`verify_order` (called by the registry when a tableau is registered).

    A method is explicit when ``a`` is strictly lower triangular; only explicit methods can be used by
    :func:`dynlearn.step` and :func:`dynlearn.rollout`. Implicit tableaus (backward Euler, the trapezoid rule,
    Gauss-Legendre) can still be built for analysis: order conditions and stability functions.

    Example::

        >>> heun = ButcherTableau(name="heun", a=[[0, 0], [1, 0]], b=["1/2", "1/2"], c=[0, 1], order=2)
        >>> heun.verify_order()
        >>> heun.stability_function()
        z**2/2 + z + 1
    """

    name: str
    a: tuple[tuple[sympy.Expr, ...], ...]
    b: tuple[sympy.Expr, ...]
    c: tuple[sympy.Expr, ...]
    order: int
    description: str = ""

    def __init__(
        self,
        name: str,
        a: Sequence[Sequence[ExactNumber]],
        b: Sequence[ExactNumber],
        c: Sequence[ExactNumber],
        order: int,
        description: str = "",
    ) -> None:
        if not isinstance(name, str) or not _NAME_PATTERN.match(name):
            raise ValueError(
                f"name={name!r}: a tableau name is lower case, starts with a letter and uses only "
                f"letters, digits, '_' and '-'"
            )
        as_integer(f"tableau {name!r}: order", order)
        rows = [list(row) for row in a]
        stages = len(rows)
        if stages == 0:
            raise ValueError(f"tableau {name!r}: a has no rows; a method has at least one stage")
        for i, row in enumerate(rows):
            if len(row) != stages:
                raise ValueError(
                    f"tableau {name!r}: a must be square ({stages} x {stages}), but row {i} has {len(row)} entries"
                )
        if len(b) != stages:
            raise ValueError(f"tableau {name!r}: b has {len(b)} entries, expected {stages} (one per stage)")
        if len(c) != stages:
            raise ValueError(f"tableau {name!r}: c has {len(c)} entries, expected {stages} (one per stage)")
        exact_a = tuple(
            tuple(_exact(value, f"tableau {name!r}: a[{i}][{j}]") for j, value in enumerate(row))
            for i, row in enumerate(rows)
        )
        exact_b = tuple(_exact(value, f"tableau {name!r}: b[{i}]") for i, value in enumerate(b))
        exact_c = tuple(_exact(value, f"tableau {name!r}: c[{i}]") for i, value in enumerate(c))
        for i in range(stages):
            row_sum = sum(exact_a[i], sympy.Integer(0))
            if not _is_zero(row_sum - exact_c[i]):
                raise ValueError(
                    f"tableau {name!r}: row sum of a[{i}] is {row_sum} but c[{i}] = {exact_c[i]}; "
                    f"a consistent method has c_i = sum_j a_ij"
                )
        weight_sum = sum(exact_b, sympy.Integer(0))
        if not _is_zero(weight_sum - 1):
            raise ValueError(f"tableau {name!r}: the weights b sum to {weight_sum}, they must sum to 1")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "a", exact_a)
        object.__setattr__(self, "b", exact_b)
        object.__setattr__(self, "c", exact_c)
        object.__setattr__(self, "order", order)
        object.__setattr__(self, "description", description)

    # -- structure ---------------------------------------------------------------------------------------

    @property
    def stages(self) -> int:
        """Number of stages s (evaluations of f per step, before any saving from zero weights)."""
        return len(self.b)

    @cached_property
    def is_explicit(self) -> bool:
        """True when a is strictly lower triangular: every stage uses only earlier stages."""
        return all(self.a[i][j] == 0 for i in range(self.stages) for j in range(i, self.stages))

    def as_floats(self) -> tuple[tuple[tuple[float, ...], ...], tuple[float, ...], tuple[float, ...]]:
        """(a, b, c) rounded once to the nearest float64, for numerical use."""
        return self._floats

    @cached_property
    def _floats(self) -> tuple[tuple[tuple[float, ...], ...], tuple[float, ...], tuple[float, ...]]:
        def to_float(value: sympy.Expr) -> float:
            return float(sympy.N(value, 30))

        a = tuple(tuple(to_float(v) for v in row) for row in self.a)
        return a, tuple(to_float(v) for v in self.b), tuple(to_float(v) for v in self.c)

    def matrices(self) -> tuple[sympy.Matrix, sympy.Matrix, sympy.Matrix]:
        """(A, b, c) as sympy matrices: A is s x s, b and c are s x 1 columns."""
        return sympy.Matrix(self.a), sympy.Matrix(self.b), sympy.Matrix(self.c)

    # -- order conditions --------------------------------------------------------------------------------

    def order_condition_residuals(self, order: int) -> list[tuple[RootedTree, sympy.Expr]]:
        """Residuals Phi(t) - 1/gamma(t) of every order condition of exactly ``order`` (one per rooted tree).

        A method has order p if and only if all residuals of orders 1..p vanish (Butcher, 1963).
        """
        as_integer("order (of the order conditions available)", order, maximum=MAX_VERIFIED_ORDER + 1)
        a, b, _ = self.matrices()
        return [
            (tree, sympy.simplify(elementary_weight(tree, a, b) - sympy.Rational(1, tree_density(tree))))
            for tree in rooted_trees(order)
        ]

    def satisfies_order(self, order: int) -> bool:
        """True when every order condition up to ``order`` holds exactly (proved symbolically)."""
        return all(
            residual == 0 for p in range(1, order + 1) for _, residual in self.order_condition_residuals(p)
        )

    def verify_order(self) -> None:
        """Prove that the declared order is the method's exact order (up to order 5).

        Checks that all conditions up to ``min(order, 5)`` hold and, when the declared order is below 5,
        that some condition of order ``order + 1`` fails, so the method is not of higher order than
        declared. Raises ``ValueError`` naming the first failing condition.
        """
        for p in range(1, min(self.order, MAX_VERIFIED_ORDER) + 1):
            for tree, residual in self.order_condition_residuals(p):
                if residual != 0:
                    raise ValueError(
                        f"tableau {self.name!r} is declared of order {self.order} but fails the order-{p} "
                        f"condition of tree {tree}: Phi - 1/gamma = {residual}"
                    )
        if self.order < MAX_VERIFIED_ORDER:
            higher = self.order_condition_residuals(self.order + 1)
            if all(residual == 0 for _, residual in higher):
                raise ValueError(
                    f"tableau {self.name!r} is declared of order {self.order} but satisfies every condition "
                    f"of order {self.order + 1}: declare its true order"
                )

    # -- linear stability --------------------------------------------------------------------------------

    def stability_function(self, z: sympy.Symbol | None = None) -> sympy.Expr:
        """R(z) = 1 + z b^T (I - zA)^{-1} 1: one step on dx/dt = lambda x multiplies x by R(lambda dt).

        A polynomial of degree <= s for explicit methods, a rational function otherwise.
        """
        z = sympy.Symbol("z") if z is None else z
        a, b, _ = self.matrices()
        identity = sympy.eye(self.stages)
        ones = sympy.ones(self.stages, 1)
        if self.is_explicit:
            # (I - zA)^{-1} = sum_k (zA)^k, finite because A is nilpotent.
            inverse = sympy.zeros(self.stages)
            power = identity
            for _ in range(self.stages):
                inverse += power
                power = power * (z * a)
        else:
            inverse = (identity - z * a).inv()
        return sympy.expand(sympy.simplify(1 + z * (b.T * inverse * ones)[0, 0]))

    def __repr__(self) -> str:
        kind = "explicit" if self.is_explicit else "implicit"
        return f"ButcherTableau(name={self.name!r}, order={self.order}, stages={self.stages}, {kind})"

    def __str__(self) -> str:
        cells = [[str(c)] + [str(v) for v in row] for c, row in zip(self.c, self.a)]
        cells.append([""] + [str(v) for v in self.b])
        width = max(len(cell) for row in cells for cell in row)
        lines = [f"{self.name} (order {self.order}, {self.stages} stages)"]
        for index, row in enumerate(cells):
            if index == len(cells) - 1:
                lines.append("-" * (width + 1) + "+" + "-" * ((width + 1) * self.stages))
            lines.append(row[0].rjust(width) + " |" + " ".join(cell.rjust(width) for cell in row[1:]))
        return "\n".join(lines)

