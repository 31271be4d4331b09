"""Demand strategies: answering an auctioneer's postings with demand reports.

A market that posts prices and collects demands (the Walrasian auctioneer) shows, in its quote,
the posting a report must answer: ``round`` (the posting's number), ``posted`` (the price vector
as posted, ``float64[g]`` in the goods' order, not normalised) and ``settle`` (True when the
posting trades, so per-agent demands are needed to settle it). ``updated()`` fires at the next
posting with its quote.

* :class:`Truthful` reports the population's excess demand at the posted prices from its current
  holdings, after the population's response delay;
* :class:`Manipulator` misreports its demand for one good while prices are discovered and
  settles truthfully at the prices it moved.

Both answer every posting exactly once: a strategy that finds an unanswered posting in the quote
answers it instead of waiting, so a population busy when a posting is made cannot miss it.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any, ClassVar

import numpy as np
import simpy
from numpy.typing import NDArray

from mktsim.errors import InvalidParameter
from mktsim.mechanism import MarketContext, Option, PopulationSlot, nonnegative_float
from mktsim.orders import DemandReport

__all__ = ["Manipulator", "Truthful"]

Array = NDArray[np.float64]

#: Population kinds with a demand at posted prices (``demand`` and ``aggregate_demand``).
DEMAND_KINDS = frozenset({"consumers", "firms", "source", "final_demand"})


class Truthful:
    """Report the utility-maximising (or profit-maximising) demand at each posting."""

    name: ClassVar[str] = "truthful"
    doc: ClassVar[str] = "report the utility-maximising demand at the posted prices"
    emits: ClassVar[frozenset[type]] = frozenset({DemandReport})
    serves: ClassVar[frozenset[str]] = DEMAND_KINDS
    options: ClassVar[Mapping[str, Option]] = {}

    def __init__(
        self, market: Any, ctx: MarketContext, slot: PopulationSlot, options: Mapping[str, Any]
    ) -> None:
        self.market = market
        self.ctx = ctx
        self.slot = slot
        self.opts = dict(options)

    def start(self) -> None:
        self.ctx.env.process(self._answer_postings())

    def _answer_postings(self) -> Generator[simpy.Event, Any, None]:
        env, ledger, slot = self.ctx.env, self.ctx.ledger, self.slot
        cached_version, x, x_total = -1, np.empty(0), np.empty(0)
        next_round = 0
        while True:
            quote = self.market.quote()
            if quote.round < next_round:  # answered already (or nothing posted yet): wait
                quote = yield self.market.updated()
            next_round = quote.round + 1
            pop: Any = self.ctx.population(slot)  # as it is now: preferences may be shocked
            if pop.delay:
                yield env.timeout(pop.delay)
            if ledger.version != cached_version:  # holdings change only at settlements
                x = ledger.units(slot.rows)
                x_total = x.sum(axis=0)
                cached_version = ledger.version
            p = np.asarray(quote.posted, dtype=np.float64)
            if quote.settle:
                per_agent = pop.demand(p, x) - x
                report = DemandReport(slot.name, quote.round, per_agent.sum(axis=0), per_agent)
            else:
                demand = self.reported_demand(p, pop.aggregate_demand(p, x))
                report = DemandReport(slot.name, quote.round, demand - x_total)
            yield self.market.submit(report)

    def reported_demand(self, prices: Array, demand: Array) -> Array:
        """The aggregate demand reported while prices are discovered (the true one here)."""
        return demand


class Manipulator(Truthful):
    """Misreport demand for one good while prices are discovered; settle truthfully."""

    name: ClassVar[str] = "manipulator"
    doc: ClassVar[str] = (
        "adversary: while prices are discovered, report demand for behaviour_options['good'] "
        "multiplied by behaviour_options['factor'] to move its price; trade truthfully at "
        "the prices it distorted"
    )
    options: ClassVar[Mapping[str, Option]] = {
        "good": Option(None, "the good whose demand is misreported (required)", str),
        "factor": Option(2.0, "multiplier of the reported demand for it (>= 0)", nonnegative_float),
    }

    def __init__(
        self, market: Any, ctx: MarketContext, slot: PopulationSlot, options: Mapping[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        if self.opts["good"] is None:
            raise InvalidParameter(
                f"manipulator {slot.name!r} needs behaviour_options good=... (and factor=...)"
            )
        self.bias = np.ones(len(ctx.goods))
        self.bias[ctx.goods.index(self.opts["good"])] = self.opts["factor"]

    def reported_demand(self, prices: Array, demand: Array) -> Array:
        """``factor`` times the true demand for the good, the difference in value made up in
        money so the report stays within the budget (Walras' law): the misreport moves prices
        while looking like a consistent demand."""
        num = self.ctx.goods.numeraire_index
        biased = self.bias * demand
        biased[num] += (prices @ demand - prices @ biased) / prices[num]
        return biased
