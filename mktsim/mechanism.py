"""The clearing-mechanism protocol and the context a mechanism is attached to.

A mechanism is constructed from validated options, attached to a :class:`MarketContext` (where it
starts its own SimPy processes and those of the populations' behaviours), and afterwards asked
for a summary. Behaviours act only through the mechanism's public interface; every change of
holdings goes through the ledger, which journals it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import simpy
from attrs import field, frozen
from numpy.typing import NDArray

from mktsim.equilibrium import Equilibrium
from mktsim.errors import InvalidParameter, UnknownName
from mktsim.goods import Goods
from mktsim.ledger import Ledger, Settlement
from mktsim.population import Population
from mktsim.random import Streams
from mktsim.recorder import Recorder
from mktsim.scenario import Scenario

__all__ = ["MarketContext", "Mechanism", "Option", "PopulationSlot", "parse_options"]


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


@frozen
class PopulationSlot:
    """A population as placed in a run: its ledger rows and its own random streams."""

    index: int
    population: Population
    rows: slice

    @property
    def name(self) -> str:
        return self.population.name

    @property
    def row_ids(self) -> NDArray[np.intp]:
        return np.arange(self.rows.start, self.rows.stop, dtype=np.intp)

    def owns(self, agent: int) -> bool:
        return self.rows.start <= agent < self.rows.stop


@frozen
class MarketContext:
    """What a mechanism is attached to.

    ``done`` is an event the mechanism triggers when the market has nothing more to do (e.g. the
    auctioneer converged and settled); the run then stops before its horizon.
    ``reference`` is the reference equilibrium for reports only: mechanisms must not read it.
    """

    env: simpy.Environment
    scenario: Scenario
    goods: Goods
    ledger: Ledger
    recorder: Recorder
    streams: Streams
    slots: tuple[PopulationSlot, ...]
    done: simpy.Event
    reference: Equilibrium | None = field(default=None, repr=False)
    current: dict[str, Any] = field(factory=dict, repr=False)
    pending_shocks: list[Any] = field(factory=list, repr=False)
    #: Populations driven by registered strategies (:mod:`mktsim.pairing`): a mechanism starts
    #: no behaviour of its own for them.
    strategies: dict[str, Any] = field(factory=dict, repr=False)

    def __attrs_post_init__(self) -> None:
        for slot in self.slots:
            self.current.setdefault(slot.name, slot.population)

    @property
    def settlement(self) -> Settlement:
        """The ledger's narrow face for mechanisms: read holdings, settle, create and destroy,
        every change recorded (:class:`mktsim.ledger.Settlement`)."""
        return self.ledger.settlement()

    def log(self, kind: str, detail: str) -> None:
        """Record an event row at the current time."""
        self.recorder.append("events", time=self.env.now, kind=kind, detail=detail)

    def population(self, slot: PopulationSlot) -> Any:
        """A population as it is now (a preference shock may have replaced its utility)."""
        return self.current[slot.name]

    def slot(self, name: str) -> PopulationSlot:
        for s in self.slots:
            if s.name == name:
                return s
        raise UnknownName("population", name, [s.name for s in self.slots])

    def shocks_ahead(self) -> bool:
        """True while scheduled shocks remain: a mechanism that has converged keeps the market
        open for them instead of finishing."""
        return bool(self.pending_shocks)


@runtime_checkable
class Mechanism(Protocol):
    """A pluggable clearing mechanism.

    Class attributes: ``name``, ``description``, ``options`` (name -> :class:`Option`) and
    ``behaviours`` (behaviour name -> one-line doc; the first is the consumers' default).
    Optionally ``supported_shocks`` (market shock kinds, see :mod:`mktsim.shocks`) with
    ``apply_shock(shock) -> str`` describing what it did.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    options: ClassVar[Mapping[str, Option]]
    behaviours: ClassVar[Mapping[str, str]]

    def attach(self, ctx: MarketContext) -> None:
        """Start the mechanism's processes and the behaviours of every population."""
        ...

    def quote(self) -> Any:
        """A frozen snapshot of what the market shows (posted prices, best bid/ask, ...)."""
        ...

    def summary(self) -> dict[str, Any]:
        """Mechanism-specific entries for the run summary (``method``, ``rounds``, ...)."""
        ...
