"""What every ``mktsim`` subcommand parses the same way.

Kept apart from :mod:`mktsim.cli`, which loads the subcommand modules, so that they can share
these without importing the module that imports them.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

from mktsim.errors import MktsimError

__all__ = ["parse_assignments"]


def parse_assignments(items: Sequence[str], flag: str) -> dict[str, Any]:
    """``key=value`` pairs; values are Python literals (numbers, booleans, lists, dicts) or text."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise MktsimError(f"{flag} {item!r} is malformed: expected key=value")
        try:
            out[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[key] = text
    return out
