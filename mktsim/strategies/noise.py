"""Noise traders: random swaps against a market maker (registered as ``noise_swap``).

At each arrival one agent picks one of the goods the market quotes uniformly, then a side and a
size: with probability ``sell_probability``, and if it holds the good, it sells a uniform
fraction (up to ``max_fraction``) of its holding; otherwise it spends that fraction of its money
on the good. Three draws per arrival, in that order (good, side, size), from the population's
stream, whether or not an order follows. Noise traders value nothing: they are the liquidity
that informed and belief traders profit from.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, ClassVar

import simpy

from mktsim.mechanism import Option, in_range
from mktsim.orders import BUY, SELL, Swap
from mktsim.strategies._common import RATE, SwapStrategy, arrivals

__all__ = ["NoiseSwap"]


class NoiseSwap(SwapStrategy):
    """Random buys with money and sales of holdings (see the module docstring)."""

    name: ClassVar[str] = "noise_swap"
    doc: ClassVar[str] = "random buys and sells (rate, max_fraction, sell_probability)"
    emits: ClassVar[frozenset[type]] = frozenset({Swap})
    serves: ClassVar[frozenset[str]] = frozenset({"consumers", "belief_traders"})
    options: ClassVar[dict[str, Option]] = {
        "rate": RATE,
        "max_fraction": Option(0.2, "largest fraction of a holding one trade uses", in_range(0, 1)),
        "sell_probability": Option(0.5, "probability of trying a sale", in_range(0, 1)),
    }

    def run(self) -> Generator[simpy.Event, Any, None]:
        ctx, env, pop = self.ctx, self.env, self.population
        ledger, goods = ctx.ledger, ctx.goods
        num = goods.numeraire_index
        names = list(self.market.quote().prices)
        cols = [goods.index(g) for g in names]
        top, p_sell = self.opts["max_fraction"], self.opts["sell_probability"]
        rng = self.stream()
        for gap, who in arrivals(rng, self.opts["rate"], pop.size):
            yield env.timeout(gap)
            if self.closed():
                return
            agent = self.slot.rows.start + who
            pick, u_side, u_size = int(rng.integers(0, len(cols))), rng.random(), rng.random()
            col = cols[pick]
            h = ledger.holdings[agent]
            if u_side < p_sell and h[col] > 0:
                units, side = int(u_size * top * h[col]), SELL
            else:
                units, side = int(u_size * top * h[num]), BUY
            if units == 0:
                continue
            self.send(Swap(agent, names[pick], side, units / self.base_units, "in"))
