"""Options of mechanisms and strategies: a spec per option, validation, and the converters.

An :class:`Option` pairs a default with a converter from text (options arrive from the command
line as text) and a check; :func:`parse_options` validates what a user gave against a spec. These
are plain values, below everything that declares options, so a strategy, a mechanism, a scenario
parameter and a sweep all judge a value the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from attrs import frozen

from mktsim.errors import InvalidParameter, UnknownName

__all__ = [
    "Option",
    "boolean",
    "in_range",
    "nonnegative_float",
    "parse_options",
    "positive_float",
    "positive_int",
]


@frozen
class Option:
    """A mechanism option: default, a converter from text (for the CLI) and a check.

    ``check`` returns an error text (without the option name) or None.
    """

    default: Any
    doc: str
    convert: Callable[[Any], Any] = lambda v: v
    check: Callable[[Any], str | None] = lambda v: None
    choices: tuple[str, ...] = ()


def parse_options(
    owner: str, spec: Mapping[str, Option], given: Mapping[str, Any]
) -> dict[str, Any]:
    """Validate options against a spec: unknown names, bad choices and failed checks raise with
    the option's name and value; missing options take their defaults."""
    out = {}
    for key in given:
        if key not in spec:
            raise UnknownName(f"option of {owner}", key, list(spec))
    for key, opt in spec.items():
        if key not in given:
            out[key] = opt.default
            continue
        raw = given[key]
        try:
            value = opt.convert(raw)
        except (TypeError, ValueError) as exc:
            raise InvalidParameter(f"{key}(={raw!r}) is invalid for {owner}: {exc}") from None
        if opt.choices and isinstance(value, str) and value not in opt.choices:
            raise UnknownName(f"{key} of {owner}", value, list(opt.choices))
        problem = opt.check(value)
        if problem:
            raise InvalidParameter(f"{key}(={value!r}) {problem}")
        out[key] = value
    return out


def positive_float(v: Any) -> float:
    """Converter for a finite float > 0 (raises ValueError otherwise)."""
    x = float(v)
    if not np.isfinite(x) or x <= 0:
        raise ValueError("must be > 0 and finite")
    return x


def nonnegative_float(v: Any) -> float:
    """Converter for a finite float >= 0 (raises ValueError otherwise)."""
    x = float(v)
    if not np.isfinite(x) or x < 0:
        raise ValueError("must be >= 0 and finite")
    return x


def in_range(
    low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> Callable[[Any], float]:
    """A converter for a finite float between ``low`` and ``high`` (ends included unless
    open), raising ValueError "must be in [low, high]" (brackets as the ends) otherwise."""
    bounds = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def convert(value: Any) -> float:
        x = float(value)
        above = x > low if low_open else x >= low
        below = x < high if high_open else x <= high
        if not (np.isfinite(x) and above and below):
            raise ValueError(f"must be in {bounds}")
        return x

    return convert


def positive_int(value: Any) -> int:
    """Converter for a whole number >= 1 (raises ValueError otherwise, e.g. for 2.5)."""
    n = int(value)
    if n < 1 or (isinstance(value, float) and value != n):
        raise ValueError("must be a whole number >= 1")
    return n


def boolean(value: Any) -> bool:
    """Converter for a flag given as a bool, 0/1 or true/false/yes/no (as from ``--option``)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    raise ValueError("must be true or false")
