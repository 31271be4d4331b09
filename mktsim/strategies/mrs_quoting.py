"""Consumers quoting around their marginal rates of substitution (``utility``).

On each action the agent picks a good ``j``. With ``P`` the market's reference prices (the
quote's ``prices``: an order book's geometric mid, else its one side, else its last trade;
numeraire = 1) it computes its demand at ``P`` from its current holdings and so its desired
trade ``d_j`` of the good: it buys if ``d_j > 0`` and sells if ``d_j < 0``, an order of ``step
|d_j|`` units (at least one lot; at most ``order_size`` if given). Its quote is centred on ``c =
m^(1-anchor) P_j^anchor`` with ``m`` its marginal rate of substitution of ``j`` for the numeraire
at current holdings, and spread uniformly over ``c (1 +/- spread/2)``; a bid is never above ``m``
and an ask never below it (rounded down and up to the tick), so every lot it trades raises its
utility to first order. ``anchor = 0`` quotes around the agent's own MRS, ``anchor = 1`` around
the market price (the agent keeps its valuation to itself).

Sizing orders by the desired trade makes the order flow at a price follow the excess demand in
quantities (as tatonnement does); fixed-size orders would instead balance the *number* of agents
on each side, i.e. find the median MRS. While some good has no market price yet, the agent sends
a one-lot probe on a random side around its own MRS, so that first quotes at extreme valuations
move little wealth. Everything an action computes is the acting agent's own (one row of the
valuation), so its cost does not grow with the population.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from operator import itemgetter
from typing import Any, ClassVar

from mktsim.errors import InvalidParameter
from mktsim.mechanism import Option, PopulationSlot
from mktsim.population import check_values_money
from mktsim.strategies._arrivals import COMMON, MarginalLimits, PoissonStrategy
from mktsim.valuation import check_can_price, utility_quote

__all__ = ["UtilityTrader"]


def _fraction(low_open: bool) -> Any:
    def check(v: float) -> str | None:
        ok = (0 < v <= 1) if low_open else (0 <= v <= 1)
        return None if ok else ("must be in (0, 1]" if low_open else "must be in [0, 1]")

    return check


class UtilityTrader(PoissonStrategy):
    """Consumers trading toward their demand at the market's prices, never beyond their MRS."""

    name = "utility"
    doc = "quote a lot sized by the desired trade around the marginal rate of substitution"
    serves = frozenset({"consumers"})
    options: ClassVar[Mapping[str, Option]] = {
        **COMMON,
        "spread": Option(
            0.2,
            "width of the quote range relative to its centre",
            float,
            check=lambda v: None if 0 <= v < 1 else "must be in [0, 1)",
        ),
        "anchor": Option(
            1.0,
            "weight of the market price in the quote's centre (0: the agent's MRS)",
            float,
            check=_fraction(False),
        ),
        "step": Option(
            0.1, "fraction of the desired trade sent per order", float, check=_fraction(True)
        ),
    }

    def __init__(
        self, market: Any, ctx: Any, slot: PopulationSlot, options: Mapping[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        if not isinstance(self.limits, MarginalLimits) or not hasattr(slot.population, "demand"):
            raise InvalidParameter(
                f"strategy 'utility' needs consumers with a utility and a demand; population "
                f"{slot.name!r} is {slot.population.kind} (use zi_c, zi_u or zip)"
            )
        check_values_money(slot.population, self.num, self.name)
        holdings = ctx.ledger.units(slot.rows)
        check_can_price(slot.population, holdings, self.num, self.name)
        self.spread = self.opts["spread"]
        self.anchor = self.opts["anchor"]
        self.step = self.opts["step"]
        # order_size caps an order here; by default the desired trade alone sizes it.
        self.cap = self.lots if self.opts["order_size"] is not None else 2**62
        goods: list[int] = self.limits.goods
        self._goods = goods
        self._sides = 2 * len(goods)
        # the goods' reference prices, in index order, as a tuple (an itemgetter of one name
        # returns the bare value)
        named = [self.names[j] for j in goods]
        self._references = (
            itemgetter(*named) if len(named) > 1 else lambda quoted: (quoted[named[0]],)
        )

    def decide(self, agent: int, u1: float, u2: float) -> tuple[Any, ...] | None:
        k = int(u1 * self._sides)
        g = self._goods[k >> 1]
        local = agent - self.start_row
        form, x = self.limits.agent(local)
        m = form.mrs(local, x, g)
        if not (m > 0 and m < math.inf):
            return None
        refs = self._references(self.reference_prices())
        if None in refs:  # a good without a price yet: a one-lot probe around the MRS
            ticks = utility_quote(m, None, not (k & 1), u2, self.spread, self.anchor, self.tick)
            return (agent, g, not (k & 1), ticks, 1) if ticks >= 1 else None
        prices = list(refs)
        prices.insert(self.num, 1.0)  # the goods are every other index, in order
        want = form.demand(local, x, prices, g) - x[g]
        lots = int(self.step * abs(want) / self.lot)  # at least one lot, at most the cap
        lots = 1 if lots < 1 else (lots if lots < self.cap else self.cap)
        buy = want > 0
        ticks = utility_quote(m, prices[g], buy, u2, self.spread, self.anchor, self.tick)
        if ticks < 1 or want == 0:
            return None
        return agent, g, buy, ticks, lots

    def act(self, agent: int, u1: float, u2: float) -> None:
        """Decide, then replace the agent's order in the good (:meth:`place` written out for
        the arrivals, whose agents are the population's own: every action passes here; the
        market's one-call ``repost`` asked first, as :meth:`replace` does)."""
        order = self.decide(agent, u1, u2)
        if order is not None:
            agent, g, buy, ticks, lots = order
            live, local = self.live[g], agent - self.start_row
            repost = self._repost
            if repost is not None:
                new = repost(agent, self.names[g], live[local], buy, lots, ticks)
                if new is not None:
                    live[local] = new
                    return
            live[local] = self.replace(agent, g, live[local], buy, lots, ticks)

    def place(self, order: tuple[Any, ...]) -> None:
        agent, g, buy, ticks, lots = order
        self.post(agent, g, buy, ticks, lots)

    def execute(self, order: tuple[Any, ...]) -> None:
        self.place(order)
