"""What every ``mktsim`` subcommand parses the same way.

Kept apart from :mod:`mktsim.cli`, which loads the subcommand modules, so that they can share
these without importing the module that imports them.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Sequence
from typing import Any

from mktsim.errors import MktsimError

__all__ = ["parse_assignments"]


#: Operators allowed between numbers in a value such as ``10**6`` or ``2*10**5``.
_ARITHMETIC: dict[type, Any] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Pow: operator.pow,
}


def _number(node: ast.AST) -> int | float:
    """The value of a number written with ``+ - * **`` between literals (small exponents only,
    so a value can never take long to compute)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        if isinstance(node.value, bool):
            raise ValueError("not a number")
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _number(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        left, right = _number(node.left), _number(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise ValueError("exponent too large")
        result: int | float = _ARITHMETIC[type(node.op)](left, right)
        return result
    raise ValueError("not arithmetic on numbers")


def parse_assignments(items: Sequence[str], flag: str) -> dict[str, Any]:
    """``key=value`` pairs; values are Python literals (numbers, booleans, lists, dicts),
    arithmetic on numbers (``10**6``, ``2*10**5``) or text."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise MktsimError(f"{flag} {item!r} is malformed: expected key=value")
        try:
            out[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            try:
                out[key] = _number(ast.parse(text.strip(), mode="eval").body)
            except (ValueError, SyntaxError, TypeError, OverflowError, ZeroDivisionError):
                out[key] = text
    return out
