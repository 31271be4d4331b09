"""The clearing-mechanism protocol and the context a mechanism is attached to.

A mechanism is constructed from validated options, attached to a :class:`MarketContext` (where it
starts its own SimPy processes and those of the populations' behaviours), and afterwards asked
for a summary. Behaviours act only through the mechanism's public interface; every change of
holdings goes through the ledger, which journals it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import simpy
from attrs import field, frozen
from numpy.typing import NDArray

from mktsim.errors import InvalidParameter, UnknownName
from mktsim.goods import Goods
from mktsim.ledger import Ledger, Settlement

# The option machinery lives in mktsim.options; these names stay importable from here.
from mktsim.options import (
    Option,
    boolean,
    in_range,
    nonnegative_float,
    parse_options,
    positive_float,
    positive_int,
)
from mktsim.random import Streams
from mktsim.recorder import Recorder

if TYPE_CHECKING:
    # Annotations only: the protocol layer names the economy's types without importing the
    # economics layer at run time (see [tool.importlinter] in pyproject.toml).
    from mktsim.equilibrium import Equilibrium
    from mktsim.population import Population
    from mktsim.scenario import Scenario

__all__ = [
    "MAX_ACTIONS",
    "MAX_STEPS",
    "MarketContext",
    "Mechanism",
    "Option",
    "PopulationSlot",
    "boolean",
    "in_range",
    "nonnegative_float",
    "parse_options",
    "positive_float",
    "positive_int",
]


#: The most time steps of one kind (postings, batches, recorded rows) a run's horizon may hold.
MAX_STEPS = 10**8
#: The most actions one population's arrivals may bring over a run's horizon (at several
#: microseconds each, hours of computing).
MAX_ACTIONS = 10**9


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

    @classmethod
    def all_of(cls, scenario: Scenario) -> tuple[PopulationSlot, ...]:
        """Every population of a scenario placed on its ledger rows, in declaration order."""
        rows = scenario.population_slices().values()
        return tuple(
            cls(i, pop, r)
            for i, (pop, r) in enumerate(zip(scenario.populations, rows, strict=True))
        )

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
    #: Run-wide services that strategies share, by name (a prediction market's event, a dealer
    #: market's true value): created by the first strategy that needs one (:meth:`service`), so
    #: they belong to the run, not to a mechanism.
    services: dict[str, Any] = field(factory=dict, repr=False)
    #: The run's horizon in simulation time (infinite for a market driven by hand).
    horizon: float = field(default=float("inf"), repr=False)

    def __attrs_post_init__(self) -> None:
        for slot in self.slots:
            self.current.setdefault(slot.name, slot.population)

    @property
    def settlement(self) -> Settlement:
        """The ledger's narrow face for mechanisms: read holdings, settle, create and destroy,
        every change recorded (:class:`mktsim.ledger.Settlement`)."""
        return self.ledger.settlement()

    def service(self, name: str, make: Callable[[], Any]) -> Any:
        """The run's service ``name``, made by ``make()`` the first time it is asked for."""
        if name not in self.services:
            self.services[name] = make()
        return self.services[name]

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

    def check_step(self, option: str, step: float, what: str) -> None:
        """Refuse, before the run, a time step (``option``, of value ``step``) so short that
        the horizon holds more than :data:`MAX_STEPS` of ``what``: the run would not end in any
        reasonable time (or, below the clock's resolution, ever)."""
        count = self.horizon / step
        if math.isfinite(self.horizon) and count > MAX_STEPS:
            raise InvalidParameter(
                f"{option}(={step:g}) makes {count:.3g} {what} over the horizon of "
                f"{self.horizon:g}, past the {MAX_STEPS:.0e} a run may take: lengthen it"
            )

    def check_rate(self, option: str, rate: float, agents: int, population: str) -> None:
        """Refuse, before the run, an arrival rate (``option``: actions per agent per unit of
        time) at which ``population``'s ``agents`` would act more than :data:`MAX_ACTIONS`
        times over the horizon: the run would not end in any reasonable time."""
        count = rate * agents * self.horizon
        if math.isfinite(self.horizon) and count > MAX_ACTIONS:
            raise InvalidParameter(
                f"{option}(={rate:g}) makes about {count:.3g} actions of population "
                f"{population!r} over the horizon of {self.horizon:g}, past the "
                f"{MAX_ACTIONS:.0e} a run may take: lower it"
            )

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
    ``apply_shock(shock) -> str`` describing what it did, and ``creations(scenario, totals)``:
    the units of each good it will create when it opens (``totals``: each good's total
    endowment), so that the run's base unit has room for them
    (:func:`mktsim.ledger_range.run_goods`).
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
