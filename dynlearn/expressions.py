"""Mathematical expressions from user strings, parsed with a whitelist and never evaluated as Python.

``sympy.sympify`` runs ``eval`` on its argument: ``"__import__('os').system('...')"`` given as a wave's initial
displacement would run a command. :func:`parse_expression` instead reads the string's syntax tree and builds the
sympy expression node by node from what it allows:

    numbers (exact: "0.1" is 1/10), the named variables, pi and E,
    + - * / ** and parentheses (integer powers up to 64 in size),
    sin cos tan exp log sqrt sinh cosh tanh abs, called with positional arguments.

Anything else (attributes, subscripts, keywords, other names or calls, comparisons, lambdas, strings) is refused
with one line that names the offending piece.
"""

from __future__ import annotations

import ast
from fractions import Fraction
from typing import Mapping

import sympy

__all__ = ["FUNCTIONS", "parse_expression"]

#: the functions an expression may call
FUNCTIONS = {"sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "exp": sympy.exp, "log": sympy.log,
             "sqrt": sympy.sqrt, "sinh": sympy.sinh, "cosh": sympy.cosh, "tanh": sympy.tanh, "abs": sympy.Abs}
_CONSTANTS = {"pi": sympy.pi, "E": sympy.E}
_OPERATORS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
              ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a**b}
_MAX_LENGTH = 2000
_MAX_POWER = 64


def parse_expression(text: str, variables: Mapping[str, sympy.Symbol] | None = None, *, what: str = "expression"
                     ) -> sympy.Expr:
    """The sympy expression ``text`` spells, built from its syntax tree (module docstring); ``variables`` maps
    the names it may use to their symbols. A ValueError naming ``what`` otherwise."""
    names = dict(variables or {})
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a string, got {type(text).__name__}")
    if len(text) > _MAX_LENGTH:
        raise ValueError(f"{what} is {len(text)} characters long; at most {_MAX_LENGTH} are accepted")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise ValueError(f"{what} {text!r} is not a mathematical expression") from None

    def refuse(node: ast.AST, why: str) -> ValueError:
        piece = ast.get_source_segment(text.strip(), node) or type(node).__name__
        allowed = ", ".join([*names, *_CONSTANTS])
        return ValueError(f"{what} {text!r}: {piece!r} {why} (allowed: numbers, {allowed}, + - * / **, "
                          f"{', '.join(FUNCTIONS)})")

    def build(node: ast.AST) -> sympy.Expr:
        if isinstance(node, ast.Expression):
            return build(node.body)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            if isinstance(node.value, float):  # exact: 0.1 is 1/10, as written
                return sympy.Rational(Fraction(repr(node.value)))
            return sympy.Integer(node.value)
        if isinstance(node, ast.Name):
            if node.id in names:
                return names[node.id]
            if node.id in _CONSTANTS:
                return _CONSTANTS[node.id]
            raise refuse(node, "is not a known name")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            operand = build(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = build(node.left), build(node.right)
            if isinstance(node.op, ast.Pow) and not (right.is_number and right.is_real and abs(right) <= _MAX_POWER):
                raise refuse(node, f"raises to a power that is not a number of size <= {_MAX_POWER}")
            return _OPERATORS[type(node.op)](left, right)
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS):
                raise refuse(node.func, "is not an allowed function")
            if node.keywords or not node.args:
                raise refuse(node, "must be called with positional arguments only")
            return FUNCTIONS[node.func.id](*(build(argument) for argument in node.args))
        raise refuse(node, "is not allowed in an expression")

    return build(tree)
