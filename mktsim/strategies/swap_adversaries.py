"""Adversaries against market makers, acting only through the protocol like everyone else
(registered as ``wash_swap`` and ``pump_and_dump_swap``).

* ``wash_swap``: at each arrival an agent buys ``good`` (a random open pool if None) with
  ``amount`` of its money and, once filled, sells everything it received back. Its holdings of
  the good end where they started; against a constant-product pool it loses the fee twice per
  round trip (and the pool's rounding), which the pool keeps: wash volume there is a pure
  transfer to the liquidity.
* ``pump_and_dump_swap``: from ``start``, every agent buys ``good`` in ``bursts`` bursts ``gap``
  apart, spending ``spend`` of the money it held at ``start`` in equal parts, to push the price
  up. Once the last burst has been answered it sells what it bought back into the others'
  trades: at each of its arrivals (``rate``) an agent sells a ``1/slices`` part of its pumped
  inventory if the pool's marginal bid is at least the average price it paid; ``patience`` time
  after the last burst it sells whatever is left at any price.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any, ClassVar

import numpy as np
import simpy

from mktsim.errors import InvalidParameter, UnknownName
from mktsim.mechanism import (
    MarketContext,
    Option,
    PopulationSlot,
    in_range,
    nonnegative_float,
    positive_int,
)
from mktsim.orders import BUY, SELL, Swap
from mktsim.strategies._common import RATE, SwapStrategy, arrivals
from mktsim.strategies.book_adversaries import pumped

__all__ = ["PumpAndDumpSwap", "WashSwap"]


def _pool_good(strategy: SwapStrategy, name: Any, required: bool) -> str | None:
    pools = list(getattr(strategy.market.quote(), "pools", {}))
    if name is None:
        if required:
            raise InvalidParameter(
                f"strategy {strategy.name!r} of population {strategy.population.name!r} needs "
                "good=<a pool's good>"
            )
        return None
    if name not in pools:
        raise UnknownName("pool good", str(name), pools)
    return str(name)


class WashSwap(SwapStrategy):
    """Round trips that only pay fees (see the module docstring)."""

    name: ClassVar[str] = "wash_swap"
    doc: ClassVar[str] = (
        "buy and at once sell back: round trips that only pay fees (rate, good, amount)"
    )
    emits: ClassVar[frozenset[type]] = frozenset({Swap})
    serves: ClassVar[frozenset[str]] = frozenset({"consumers"})
    options: ClassVar[dict[str, Option]] = {
        "rate": RATE,
        "good": Option(None, "the pool's good (None: a random open pool each time)"),
        "amount": Option(
            0.1, "fraction of its money each round trip puts in", in_range(0, 1, low_open=True)
        ),
    }

    def __init__(
        self, market: Any, ctx: MarketContext, slot: PopulationSlot, options: dict[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        self.good = _pool_good(self, self.opts["good"], required=False)

    def run(self) -> Generator[simpy.Event, Any, None]:
        ctx, env, amount = self.ctx, self.env, self.opts["amount"]
        ledger, num = ctx.ledger, ctx.goods.numeraire_index
        rng = self.stream()
        for gap, who in arrivals(rng, self.opts["rate"], self.population.size):
            yield env.timeout(gap)
            agent = self.slot.rows.start + who
            pools = list(self.market.quote().pools)
            if self.good is not None:
                good = self.good
            elif pools:
                good = pools[int(rng.integers(0, len(pools)))]
            else:
                continue
            units = math.floor(amount * int(ledger.holdings[agent, num]))
            if units < 1:
                continue
            bought = yield from self.deliver(Swap(agent, good, BUY, units / self.base_units))
            if bought.status == "filled":
                yield from self.deliver(Swap(agent, good, SELL, bought.filled))


class PumpAndDumpSwap(SwapStrategy):
    """Buy in bursts to push a price, then sell into the others' trades (module docstring)."""

    name: ClassVar[str] = "pump_and_dump_swap"
    doc: ClassVar[str] = (
        "buy a good in bursts to push its price, then sell into the others' trades "
        "(good, start, bursts, gap, spend, rate, slices, patience)"
    )
    emits: ClassVar[frozenset[type]] = frozenset({Swap})
    serves: ClassVar[frozenset[str]] = frozenset({"consumers"})
    options: ClassVar[dict[str, Option]] = {
        "good": Option(None, "the pool's good to pump (required)"),
        "start": Option(0.0, "time the pump starts", nonnegative_float),
        "bursts": Option(5, "buying bursts", positive_int),
        "gap": Option(1.0, "time between bursts", nonnegative_float),
        "spend": Option(
            0.5, "fraction of its money the bursts spend", in_range(0, 1, low_open=True)
        ),
        "rate": RATE,
        "slices": Option(10, "parts the pumped inventory is sold in", positive_int),
        "patience": Option(20.0, "time after the last burst it sells the rest", nonnegative_float),
    }

    def __init__(
        self, market: Any, ctx: MarketContext, slot: PopulationSlot, options: dict[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        self.good = _pool_good(self, self.opts["good"], required=True)

    def run(self) -> Generator[simpy.Event, Any, None]:
        ctx, env, s, good = self.ctx, self.env, self.opts, self.good
        assert good is not None
        ledger, num, j = ctx.ledger, ctx.goods.numeraire_index, ctx.goods.index(good)
        rows = self.slot.row_ids.tolist()
        if s["start"] > env.now:
            yield env.timeout(s["start"] - env.now)
        before = np.array(ledger.holdings[self.slot.rows])  # holdings when the pump starts
        budget = np.floor(s["spend"] * before[:, num] / s["bursts"]).astype(np.int64)
        sent: list[simpy.Event] = []
        for burst in range(s["bursts"]):
            if burst:
                yield env.timeout(s["gap"])
            sent = []
            for who, agent in enumerate(rows):
                units = min(int(budget[who]), int(ledger.holdings[agent, num]))
                if units >= 1:
                    sent.append(self.send(Swap(agent, good, BUY, units / self.base_units)))
        deadline = env.now + s["patience"]
        pending = [event for event in sent if not event.processed]
        if pending:  # the last burst's orders are still on their way
            yield env.all_of(pending)
        now_h = np.array(ledger.holdings[self.slot.rows])
        bought = np.maximum(now_h[:, j] - before[:, j], 0)
        spent = np.maximum(before[:, num] - now_h[:, num], 0)
        slice_units = -(-bought // s["slices"])  # ceiling: at most `slices` sales each
        rng = self.stream()

        def remaining(who: int) -> int:
            """What is left of the agent's pumped inventory (never its own endowment)."""
            return int(pumped(ledger.holdings[rows[who], j], before[who, j], bought[who]))

        for gap, who in arrivals(rng, s["rate"], self.population.size):
            if env.now + gap >= deadline:
                break
            yield env.timeout(gap)
            left = remaining(who)
            pool = self.market.quote().pools.get(good)
            if left < 1 or pool is None or not bought[who]:
                continue
            if (1.0 - pool.fee) * pool.y / pool.x >= spent[who] / bought[who]:
                units = min(left, int(slice_units[who]))  # the bid covers its average price
                self.send(Swap(rows[who], good, SELL, units / self.base_units))
        if deadline > env.now:
            yield env.timeout(deadline - env.now)
        for who, agent in enumerate(rows):
            left = remaining(who)
            if left >= 1:
                self.send(Swap(agent, good, SELL, left / self.base_units))
