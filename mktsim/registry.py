"""Find mechanisms by name: entry points in the group ``mktsim.mechanisms``, or ``module:Class``.

Names resolve lazily (nothing is imported until asked for) and an unknown name is answered with
the valid ones and the closest match.
"""

from __future__ import annotations

import importlib
import sys
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from mktsim.errors import MktsimError, UnknownName

__all__ = ["GROUP", "available", "entry_point_targets", "resolve", "unknown_behaviour"]

GROUP = "mktsim.mechanisms"


def entry_point_targets(group: str) -> dict[str, str]:
    """Entry points of ``group``: name -> ``module:Class``. Reading them scans the metadata of
    every installed distribution (tens of milliseconds), and a run asks many times, so the
    answer is kept for as long as the import path is unchanged."""
    return dict(_scan(group, tuple(sys.path)))


@lru_cache(maxsize=16)
def _scan(group: str, path: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((ep.name, ep.value) for ep in entry_points(group=group))


def available() -> dict[str, str]:
    """Registered mechanism names -> ``module:Class`` targets."""
    return entry_point_targets(GROUP)


def resolve(name: Any) -> Any:
    """A mechanism class from a registered name, a ``module:Class`` path, or the class itself."""
    if isinstance(name, type):
        return name
    if not isinstance(name, str):
        raise UnknownName("mechanism", repr(name), list(available()))
    registered = available()
    if name in registered:
        target = registered[name]
    elif ":" in name:
        target = name
    else:
        if not registered:
            raise MktsimError(
                "no mechanisms are registered: install mktsim (pip install .) so that its "
                "entry points exist"
            )
        raise UnknownName("mechanism", name, list(registered))
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise MktsimError(f"mechanism {name!r} -> {target!r} cannot be loaded: {exc}") from None
    for needed in ("name", "options", "attach", "summary"):
        if not hasattr(cls, needed):
            raise MktsimError(f"mechanism {target!r} lacks {needed!r}: it is not a mechanism")
    return cls


def unknown_behaviour(population: str, mechanism: str, name: str, valid: Any) -> UnknownName:
    """The error for a population whose behaviour the mechanism does not offer, saying which
    mechanisms do (a scenario written for one mechanism, run under another)."""
    error = UnknownName(f"behaviour of population {population!r} under {mechanism}", name, valid)
    elsewhere = []
    for other in sorted(available()):
        if other == mechanism:
            continue
        try:
            cls = resolve(other)
            offered = {**getattr(cls, "behaviours", {}), **getattr(cls, "aliases", {})}
        except MktsimError:
            continue
        if name in offered:
            elsewhere.append(other)
    if elsewhere:
        error.args = (
            f"{error.args[0]} ({name!r} is a behaviour of {', '.join(elsewhere)}: "
            f"--mechanism {elsewhere[0]})",
        )
    return error
