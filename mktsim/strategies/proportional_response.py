"""Proportional response: buyers who bid their budget in proportion to the utility each good gave.

Zhang (2011)'s dynamics for Fisher markets, the buyers' half. At each posting the buyer takes
the bundle its last bids buy at the posted prices, ``x_ij = b_ij / p_j``, and rebids its whole
budget ``B_i`` (the value of its holdings at the posted prices) in proportion to each good's
share of its utility: ``b_ij <- B_i x_ij du_i/dx_ij / sum_k x_ik du_i/dx_ik``, which for linear
utilities is ``B_i U_ij x_ij / u_i(x_i)`` and for CES ``B_i a_ij x_ij^rho / sum_k a_ik
x_ik^rho``. It reports, as its demand, the bundle the new bids buy at the posted prices. The
first bids split the budget in proportion to the marginal utilities at a unit bundle.

Under the auctioneer with ``method="proportional_response"`` (each price becomes the money bid
on the good per unit of supply) the pair is proportional-response dynamics, which converge to
the Eisenberg-Gale equilibrium for linear and CES buyers (Birnbaum, Devanur & Xiao 2011); the
auctioneer settles the bundles the bids buy once the market clears.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any, ClassVar

import numpy as np
import simpy
from numpy.typing import NDArray

from mktsim.mechanism import MarketContext, Option, PopulationSlot
from mktsim.orders import DemandReport

__all__ = ["ProportionalResponse"]

Array = NDArray[np.float64]

#: Bundles below this (units; the ledger's base unit) are dust: never reported.
DUST = 1e-9


class ProportionalResponse:
    """Bid by proportional response and report the bundle the bids buy (module docstring)."""

    name: ClassVar[str] = "proportional_response"
    doc: ClassVar[str] = (
        "Fisher-market buyer: rebid the budget in proportion to the utility each good gave at "
        "the last prices (Zhang 2011) and report the bundle the bids buy"
    )
    emits: ClassVar[frozenset[type]] = frozenset({DemandReport})
    serves: ClassVar[frozenset[str]] = frozenset({"consumers"})
    options: ClassVar[Mapping[str, Option]] = {}

    def __init__(
        self, market: Any, ctx: MarketContext, slot: PopulationSlot, options: Mapping[str, Any]
    ) -> None:
        self.market = market
        self.ctx = ctx
        self.slot = slot
        self.opts = dict(options)
        #: The current bids ``float64[n, g]`` in numeraire (None before the first posting).
        self.bids: Array | None = None

    def start(self) -> None:
        self.ctx.env.process(self._answer_postings())

    def _answer_postings(self) -> Generator[simpy.Event, Any, None]:
        env, ledger, slot = self.ctx.env, self.ctx.ledger, self.slot
        next_round = 0
        while True:
            quote = self.market.quote()
            if quote.round < next_round:  # answered already (or nothing posted yet): wait
                quote = yield self.market.updated()
            next_round = quote.round + 1
            pop: Any = self.ctx.population(slot)
            if pop.delay:
                yield env.timeout(pop.delay)
            x = ledger.units(slot.rows)
            p = np.asarray(quote.posted, dtype=np.float64)
            self.bids = self.rebid(pop.utility, p, x @ p)
            per_agent = _without_dust(self.bids, p) / p[None, :] - x
            report = DemandReport(
                slot.name,
                quote.round,
                per_agent.sum(axis=0),
                per_agent if quote.settle else None,
            )
            yield self.market.submit(report)

    def rebid(self, utility: Any, prices: Array, budgets: Array) -> Array:
        """New bids ``float64[n, g]``: each budget split by the utility shares of the bundle the
        current bids buy at ``prices`` (by marginal utility at a unit bundle the first time)."""
        n, g = budgets.size, prices.size
        if self.bids is None:
            weight = np.asarray(utility.marginal_utility(np.ones((n, g))), dtype=np.float64)
        else:
            bought = self.bids / prices[None, :]
            with np.errstate(divide="ignore", invalid="ignore"):
                weight = bought * np.asarray(utility.marginal_utility(bought), dtype=np.float64)
        weight = np.where(np.isfinite(weight) & (weight > 0), weight, 0.0)
        total = weight.sum(axis=1, keepdims=True)
        if self.bids is not None:  # a buyer whose bundle gives it nothing keeps its split
            old = self.bids / np.maximum(self.bids.sum(axis=1, keepdims=True), 1e-300)
            weight = np.where(total > 0, weight, old)
            total = weight.sum(axis=1, keepdims=True)
        share = np.divide(weight, total, out=np.full((n, g), 1.0 / g), where=total > 0)
        return budgets[:, None] * share


def _without_dust(bids: Array, prices: Array) -> Array:
    """Bids with those buying less than :data:`DUST` dropped and the rest scaled back to the
    budget. Proportional response only shrinks a bid geometrically, never to zero; a bid of
    1e-30 settles nothing, yet it would enrol its buyer on the good's side of the market and
    make the settlement's rationing chase it."""
    dust = bids < DUST * prices[None, :]
    if not dust.any():
        return bids
    kept = np.where(dust, 0.0, bids)
    total, budget = kept.sum(axis=1, keepdims=True), bids.sum(axis=1, keepdims=True)
    scale = np.divide(budget, total, out=np.ones_like(total), where=total > 0)
    return np.where(total > 0, kept * scale, bids)
