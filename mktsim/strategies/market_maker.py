"""A simple inventory-aware market maker: two-sided quotes around the market (``market_maker``).

On each action the agent picks a good and quotes :func:`maker_quotes` around a reference price:
the market's mid (its best bid and ask in the quote), else its last trade, else ``fair_price``,
else the agent's own limit (MRS or unit value). The inventory deviation is ``(held - target) /
max(target, order_size)`` with the target its holdings when the market opened. It withdraws its
previous pair first; each side is sized to what it can commit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from mktsim.mechanism import Option, PopulationSlot
from mktsim.strategies._arrivals import (
    COMMON,
    EPS,
    PoissonStrategy,
    optional_rate,
    price_of,
    to_ticks,
)

__all__ = ["MarketMaker", "maker_quotes"]


def maker_quotes(
    reference: float, inventory: float, spread: float, skew: float, tick: float
) -> tuple[int, int]:
    """Bid and ask in ticks of an inventory-aware market maker.

    The quotes straddle ``center = reference (1 - skew d)`` at relative half-spread ``spread``,
    where ``d`` is the inventory deviation from target clipped to [-1, 1]: a maker holding too
    much lowers both quotes (to sell more and buy less), one holding too little raises them.
    The bid is rounded down and the ask up, and they are at least one tick apart.
    """
    d = min(1.0, max(-1.0, inventory))
    center = reference * (1.0 - skew * d)
    bid = max(1, math.floor(center * (1.0 - spread) / tick + EPS))
    ask = max(bid + 1, math.ceil(center * (1.0 + spread) / tick - EPS))
    return bid, ask


class MarketMaker(PoissonStrategy):
    """Two-sided quotes skewed against inventory (see the module docstring)."""

    name = "market_maker"
    doc = "two-sided quotes around the market, skewed against its inventory"
    options: ClassVar[Mapping[str, Option]] = {
        **COMMON,
        "spread": Option(
            0.02,
            "relative half-spread",
            float,
            check=lambda v: None if 0 < v < 1 else "must be in (0, 1)",
        ),
        "skew": Option(
            0.05,
            "relative shift of the quotes at full inventory deviation",
            float,
            check=lambda v: None if 0 <= v < 1 else "must be in [0, 1)",
        ),
        "fair_price": Option(None, "reference price before the market has one", optional_rate),
    }

    def __init__(
        self, market: Any, ctx: Any, slot: PopulationSlot, options: Mapping[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        self.target = np.array(ctx.ledger.holdings[slot.rows], dtype=np.float64) / self.base_units
        self.size = self.lots * self.lot
        self.live_ask: dict[int, list[int]] = {g: [0] * self.n for g in self.live}

    def decide(self, agent: int, u1: float, u2: float) -> tuple[Any, ...] | None:
        local = agent - self.start_row
        goods = self.limits.goods
        g = goods[min(int(u1 * len(goods)), len(goods) - 1)]
        book = self.market.quote().goods[self.names[g]]
        b, a = book.best_bid, book.best_ask
        if b is not None and a is not None:
            ticks = to_ticks(b, self.tick) + to_ticks(a, self.tick)
            ref: float | None = price_of(ticks, self.tick) / 2
        else:
            ref = book.last or self.opts["fair_price"]
        if ref is None:
            pick = self.limits.pick(local, u1)
            ref = None if pick is None or pick[0] != g else pick[2]
        if ref is None or not ref > 0:
            return None
        target = self.target[local, g]
        held = self._hv[agent, g] / self.base_units
        d = (held - target) / max(target, self.size)
        bid, ask = maker_quotes(ref, d, self.opts["spread"], self.opts["skew"], self.tick)
        return agent, g, bid, ask

    def execute(self, order: tuple[Any, ...]) -> None:
        self.place(order)

    def place(self, order: tuple[Any, ...]) -> None:
        agent, g, bid, ask = order
        local = agent - self.start_row
        for live in (self.live[g], self.live_ask[g]):
            if live[local]:
                self.withdraw(agent, g, live[local])
                live[local] = 0
        lots = min(self.lots, self.affordable(agent, g, True, bid))
        if lots > 0:
            self.live[g][local] = self.limit(agent, g, True, lots, bid)
        lots = min(self.lots, self.affordable(agent, g, False, ask))
        if lots > 0:
            self.live_ask[g][local] = self.limit(agent, g, False, lots, ask)
