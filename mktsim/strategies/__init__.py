"""Strategies: how a population's agents turn valuations and quotes into orders.

A strategy is written once against the market protocol (:mod:`mktsim.market`) and runs under
every mechanism that accepts the order types it ``emits``. Strategies are registered by entry
point in the group ``mktsim.behaviours`` (``name = "module:Class"``) and resolved lazily; a
population picks one by name (``behaviour=``) or gets the first default for its kind whose
orders the mechanism accepts (:data:`DEFAULTS`).

A strategy class has:

* ``name``, ``doc`` (one line), ``emits`` (frozenset of order classes), ``serves`` (the
  population kinds it can drive: ``consumers``, ``induced``, ``firms``, ...), ``options``
  (name -> :class:`mktsim.options.Option`);
* ``__init__(market, ctx, slot, options)`` and ``start()``, which starts its SimPy processes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Protocol

from mktsim.errors import InvalidParameter, MktsimError, UnknownName
from mktsim.registry import entry_point_targets

__all__ = [
    "DEFAULTS",
    "GROUP",
    "Strategy",
    "available",
    "default_for",
    "resolve",
]

GROUP = "mktsim.behaviours"

#: Default strategies per population kind, in order of preference: a population without a
#: ``behaviour`` gets the first one whose orders the mechanism accepts.
DEFAULTS: dict[str, tuple[str, ...]] = {
    "consumers": ("truthful", "utility", "mrs_swap"),
    "induced": ("zi_c",),
    "firms": ("truthful", "firm_limit", "firm_swap"),
    "source": ("truthful", "source_limit", "source_swap"),
    "final_demand": ("truthful", "final_demand_limit", "final_demand_swap"),
    "belief_traders": ("belief_swap", "belief"),
}


class Strategy(Protocol):
    """The plug-in point for behaviours (see the module docstring)."""

    name: ClassVar[str]
    doc: ClassVar[str]
    emits: ClassVar[frozenset[type]]
    serves: ClassVar[frozenset[str]]
    options: ClassVar[Mapping[str, Any]]

    def start(self) -> None: ...


def available() -> dict[str, str]:
    """Registered strategy names -> ``module:Class`` targets."""
    return entry_point_targets(GROUP)


def resolve(name: Any) -> Any:
    """A strategy class by registered name, ``module:Class`` path, or the class itself (a
    strategy written in a script or a notebook needs no registration)."""
    import importlib

    if isinstance(name, type):
        return _checked(name, name.__qualname__)
    registered = available()
    if name in registered:
        target = registered[name]
    elif isinstance(name, str) and ":" in name:
        target = name
    else:
        raise UnknownName("strategy", str(name), sorted(registered))
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise MktsimError(f"strategy {name!r} -> {target!r} cannot be loaded: {exc}") from None
    return _checked(cls, target)


def _checked(cls: Any, label: str) -> Any:
    for needed in ("name", "emits", "serves", "options", "start"):
        if not hasattr(cls, needed):
            raise MktsimError(f"strategy {label!r} lacks {needed!r}: it is not a strategy")
    return cls


def default_for(kind: str, accepts: Iterable[type]) -> str | None:
    """The default strategy for a population kind under a mechanism accepting ``accepts``."""
    accepts = set(accepts)
    registered = available()
    for name in DEFAULTS.get(kind, ()):
        if name in registered and set(resolve(name).emits) & accepts:
            return name
    return None


def check_serves(cls: Any, population: str, kind: str) -> None:
    """Refuse a strategy for a population kind it cannot drive."""
    if kind not in cls.serves:
        raise InvalidParameter(
            f"strategy {cls.name!r} drives {', '.join(sorted(cls.serves))}, not population "
            f"{population!r} ({kind})"
        )
