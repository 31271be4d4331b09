"""Adversaries of markets with limit orders (an order book, a call market): manipulative
strategies acting only through the market protocol (registered as ``spoofer``, ``wash_trader``
and ``pump_and_dump``).

Each adversary is one SimPy process per population. It reads the market through its quote
(best bid and ask, last price, the tick and lot grids), its own agents' holdings (the ledger)
and, where the market offers them, what they may commit (``available``) and what is left of
their orders (``resting``); it acts through ``Limit`` (resting or immediate-or-cancel) and
``Cancel`` orders for its own agents. So it can move goods and money only by its own trades
(the ledger settles fills between the two parties of each), and it can cancel only its own
orders (the market checks ownership).

* :class:`Spoofer` (``spoofer``): every ``interval`` it posts a large order of ``spoof_size`` on
  one side, placed ``offset`` of the way into the spread (0 joins the best price, < 0 rests
  behind the touch, 1 is one tick short of the other side), waits ``dwell``, cancels what is
  left of it, and trades on the *other* side: immediate-or-cancel, ``trade_size`` plus
  whatever the spoof itself filled, at prices at least as good as that side's best price
  before the spoof. A spoof bid raises the mid that quoting traders centre on, and the spoofer
  then sells into their raised bids; a spoof ask lowers it and the spoofer buys from their
  lowered asks. With ``direction="both"`` it trades round trips: it spoofs bids and sells while
  it holds more of the good than at ``start``, spoofs asks and buys while it holds less, and
  alternates when level. A spoof that others trade into fills: that is the spoofer's risk.
  Under a call market the spoof moves the batch's visible best prices and indicative price,
  and it is withdrawn before the clearing when ``dwell`` ends first.
* :class:`WashTrader` (``wash_trader``): every ``interval`` one agent of a pair posts a sell of
  ``size`` strictly inside the spread (at the tick at or below the mid) and its partner at once
  buys it with an immediate-or-cancel order at that price, so the fill is between the pair
  only; the roles swap after each wash trade, so holdings go back and forth. The trades print
  volume (and a last price) that no one else took part in. With ``accounts="single"`` one agent
  tries to do both sides: an order book's self-trade prevention cancels its resting sell when
  its own buy reaches it, so nothing trades. Nothing prints while the spread is a single tick
  (the only price inside would be the other side's, and the pair would trade with others). It
  is refused under a batch market (a quote with a ``next_clearing``): there every order of a
  batch executes at one price and executed lots are paired across all of them, so the pair
  cannot trade with each other only.
* :class:`PumpAndDump` (``pump_and_dump``): from ``start`` for ``pump`` time units every agent
  buys ``size`` every ``interval`` with an immediate-or-cancel order priced ``slippage`` above
  the best ask (lifting the offers and the price), then for ``dump`` time units sells what it
  bought, ``size`` at a time, at down to ``slippage`` below the best bid, until it holds what
  it held at ``start``. Against a pool the same idea is ``pump_and_dump_swap``
  (:mod:`mktsim.strategies.swap_adversaries`), which buys in bursts of swaps and sells only its
  pumped inventory, as this one does (:func:`pumped`).

:func:`mktsim.counterfactual.add_adversary` adds such a population of Cobb-Douglas consumers to
a scenario, so that :func:`mktsim.counterfactual.counterfactual` (``honest=[name]``) can compare
it with the same agents trading honestly.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping
from typing import Any, ClassVar

import simpy

from mktsim.errors import InvalidParameter, UnknownName
from mktsim.mechanism import (
    MarketContext,
    Option,
    PopulationSlot,
    nonnegative_float,
    positive_float,
)
from mktsim.orders import BUY, SELL, Cancel, Limit
from mktsim.strategies._arrivals import DEFAULT_LOT, DEFAULT_TICK, price_of

__all__ = ["Adversary", "PumpAndDump", "Spoofer", "WashTrader", "pumped"]

_EPS = 1e-9


def _optional_name(value: Any) -> str | None:
    return None if value in (None, "", "none") else str(value)


def _fraction(value: Any) -> float:
    x = float(value)
    if not math.isfinite(x) or not -10.0 <= x <= 1.0:
        raise ValueError("must be in [-10, 1]")
    return x


def pumped(held: float, before: float, bought: float | None = None) -> float:
    """What is left of an agent's pumped inventory: what it holds beyond what it held when the
    pump started (never its own endowment), at most what it ``bought`` when that is known."""
    left = held - before
    return left if bought is None else min(left, bought)


COMMON: dict[str, Option] = {
    "good": Option(
        None, "good to trade (None: the first good that is not the numeraire)", _optional_name
    ),
    "start": Option(0.0, "simulation time of its first action", nonnegative_float),
    "interval": Option(1.0, "time between its actions", positive_float),
}


class Adversary:
    """Base of the adversaries: options, the good, its agents, and reading the market in ticks
    and lots of the quote's grids."""

    name: ClassVar[str] = ""
    doc: ClassVar[str] = ""
    emits: ClassVar[frozenset[type]] = frozenset({Limit, Cancel})
    serves: ClassVar[frozenset[str]] = frozenset({"consumers", "induced"})
    options: ClassVar[Mapping[str, Option]] = COMMON

    def __init__(
        self, market: Any, ctx: MarketContext, slot: PopulationSlot, options: Mapping[str, Any]
    ) -> None:
        self.market, self.ctx, self.slot = market, ctx, slot
        self.base_units = ctx.goods.base_units
        self.opts = dict(options)
        self.env: simpy.Environment = ctx.env
        self.n = slot.population.size
        self.agents: list[int] = list(range(slot.rows.start, slot.rows.stop))
        self.actions = 0
        goods = ctx.goods
        traded = [name for name in goods.names if name != goods.numeraire]
        good = self.opts["good"] or traded[0]
        if good not in traded:
            raise UnknownName(f"good of adversary {slot.name!r}", good, traded)
        self.good: str = good
        self.numeraire: str = goods.numeraire
        self._j = goods.index(good)
        self._num = goods.numeraire_index
        quote = market.quote()
        self.tick = float(getattr(quote, "tick", None) or DEFAULT_TICK)
        self.lot = float(getattr(quote, "lot", None) or DEFAULT_LOT)
        self.batch = getattr(quote, "next_clearing", None) is not None
        self._holdings = ctx.ledger.holdings
        self._available = getattr(market, "available", None)
        self._resting = getattr(market, "resting", None)

    def start(self) -> None:
        self.env.process(self.run())

    def run(self) -> Generator[simpy.Event, Any, None]:
        """The adversary's strategy (one straight generator)."""
        raise NotImplementedError
        yield  # pragma: no cover

    # -- reading, in ticks and lots
    def touch(self) -> tuple[int | None, int | None, Any]:
        """Best bid and ask in ticks (None for an empty side) and the good's quote."""
        q = self.market.quote().goods[self.good]
        return self.ticks(q.best_bid), self.ticks(q.best_ask), q

    def ticks(self, price: float | None) -> int | None:
        return None if price is None else round(price / self.tick)

    def units(self, lots: int) -> float:
        return lots * self.lot

    def price(self, ticks: int) -> float:
        return price_of(ticks, self.tick)

    def lots_of(self, units: float) -> int:
        """Whole lots in ``units`` (rounded down)."""
        return max(0, math.floor(units / self.lot + _EPS))

    def held(self, agent: int) -> float:
        """Units of the good the agent holds (reserved included)."""
        return float(self._holdings[agent, self._j] / self.base_units)

    def free(self, agent: int, good: str) -> float:
        """Units of ``good`` the agent may commit (its holdings where the market does not say
        what its orders reserve; an order beyond them is refused, which changes nothing)."""
        if self._available is not None:
            return float(self._available(agent, good) / self.base_units)
        j = self._num if good == self.numeraire else self._j
        return float(self._holdings[agent, j] / self.base_units)

    def affordable(self, agent: int, buy: bool, ticks: int, lots: int) -> int:
        """At most ``lots``, cut to what the agent's free cash (buy) or goods (sell) cover."""
        if buy:
            can = math.floor(
                self.free(agent, self.numeraire) / (ticks * self.tick * self.lot) + _EPS
            )
        else:
            can = self.lots_of(self.free(agent, self.good))
        return max(0, min(lots, can))

    def still_resting(self, agent: int, order_id: int, traded: float, lots: int) -> bool:
        """Whether any of the agent's order ``order_id`` (of ``lots``) may still rest: the
        market's ``resting`` where it has one (an order still on its way counts), else what
        the order's fills left of it (``traded``: units it has filled, from the holdings)."""
        if order_id < 0:  # still on its way to the market (a provisional id)
            return True
        if self._resting is not None:
            return bool(self._resting(agent, self.good, order_id) > 0)
        return self.lots_of(traded) < lots

    # -- acting
    def send(self, agent: int, buy: bool, lots: int, ticks: int, ioc: bool = False) -> simpy.Event:
        """Submit a limit order (``ioc``: immediate or cancel) for one of its agents."""
        self.actions += 1
        side = BUY if buy else SELL
        return self.market.submit(
            Limit(agent, self.good, side, self.units(lots), self.price(ticks), ioc)
        )

    def cancel(self, agent: int, order_id: int) -> simpy.Event:
        self.actions += 1
        return self.market.submit(Cancel(agent, self.good, order_id))


def _direction(value: Any) -> str:
    if value not in ("up", "down", "both"):
        raise ValueError("must be 'up', 'down' or 'both'")
    return str(value)


class Spoofer(Adversary):
    """Posts large orders it means to cancel, to move the mid, and trades on the other side
    (see the module docstring)."""

    name: ClassVar[str] = "spoofer"
    doc: ClassVar[str] = (
        "adversary: posts large orders it cancels before they fill to move the mid, and "
        "trades on the other side"
    )
    options: ClassVar[Mapping[str, Option]] = {
        **COMMON,
        "interval": Option(2.0, "time between spoofs", positive_float),
        "dwell": Option(0.25, "time a spoof rests before it is cancelled", positive_float),
        "spoof_size": Option(1.0, "units of each spoof order", positive_float),
        "trade_size": Option(
            0.05, "units traded on the other side after each spoof", positive_float
        ),
        "offset": Option(
            1.0,
            "spoof price as a fraction of the way from its own side's best price to the other "
            "side's (0: join the best price, < 0: behind it, 1: one tick short of the other side)",
            _fraction,
        ),
        "direction": Option(
            "both",
            "up (spoof bids, sell) | down (spoof asks, buy) | both (round trips: toward the "
            "inventory it started with, alternating when level)",
            _direction,
        ),
    }

    def __init__(
        self, market: Any, ctx: MarketContext, slot: PopulationSlot, options: Mapping[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        if self.opts["dwell"] >= self.opts["interval"]:
            raise InvalidParameter(
                f"dwell(={self.opts['dwell']}) of spoofer {slot.name!r} must be shorter than "
                f"interval(={self.opts['interval']})"
            )

    def spoof_price(self, bid: int, ask: int, up: bool) -> int:
        """Ticks of a spoof bid (``up``) or ask, ``offset`` of the way into the spread, never
        crossing the other side."""
        step = round(self.opts["offset"] * (ask - bid))
        if up:
            return max(1, min(ask - 1, bid + step))
        return max(bid + 1, ask - step)

    def direction(self, cycle: int, inventory: float) -> bool:
        """True to spoof up (bid) and sell, False to spoof down (ask) and buy. ``both`` sells
        while the agent holds more of the good than it started with, buys while it holds less,
        and alternates when level, so it trades round trips."""
        d = self.opts["direction"]
        if d != "both":
            return bool(d == "up")
        if abs(inventory) >= self.lot / 2:
            return inventory > 0
        return cycle % 2 == 0

    def run(self) -> Generator[simpy.Event, Any, None]:
        opts, env = self.opts, self.env
        yield env.timeout(opts["start"])
        spoof_lots = max(1, self.lots_of(opts["spoof_size"]))
        trade_lots = max(1, self.lots_of(opts["trade_size"]))
        start = [self.held(agent) for agent in self.agents]
        k = 0
        while True:
            i = k % self.n
            agent = self.agents[i]
            up = self.direction(k // self.n, self.held(agent) - start[i])
            k += 1
            bid, ask, _ = self.touch()
            if bid is None or ask is None:  # no spread to move: wait for one
                yield env.timeout(opts["interval"])
                continue
            price = self.spoof_price(bid, ask, up)
            lots = self.affordable(agent, up, price, spoof_lots)
            held = self.held(agent)
            spoof = None
            if lots:
                r = yield self.send(agent, up, lots, price)
                if r.resting > 0:
                    spoof = r.order_id
            yield env.timeout(opts["dwell"])
            filled = abs(self.held(agent) - held)
            if spoof is not None and self.still_resting(agent, spoof, filled, lots):
                self.cancel(agent, spoof)
            # ... and trade on the other side whatever others now offer beyond the price there
            # before the spoof (what the spoof moved), unwinding what the spoof itself bought
            # or sold as well
            limit = bid if up else ask
            lots = self.affordable(agent, not up, limit, trade_lots + self.lots_of(filled))
            if lots:
                self.send(agent, not up, lots, limit, ioc=True)
            yield env.timeout(opts["interval"] - opts["dwell"])


def _accounts(value: Any) -> str:
    if value not in ("pair", "single"):
        raise ValueError("must be 'pair' or 'single'")
    return str(value)


class WashTrader(Adversary):
    """Pairs of its own agents trading with each other inside the spread (see the module
    docstring)."""

    name: ClassVar[str] = "wash_trader"
    doc: ClassVar[str] = "adversary: pairs of its own agents trading with each other (volume)"
    options: ClassVar[Mapping[str, Option]] = {
        **COMMON,
        "size": Option(0.1, "units of each wash trade", positive_float),
        "accounts": Option(
            "pair",
            "pair: two agents trade with each other | single: one agent on both sides (the "
            "book's self-trade prevention stops it)",
            _accounts,
        ),
    }

    def __init__(
        self, market: Any, ctx: MarketContext, slot: PopulationSlot, options: Mapping[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        if self.opts["accounts"] == "pair" and self.n < 2:
            raise InvalidParameter(
                f"wash trader {slot.name!r} has {self.n} agent: accounts='pair' needs at least 2"
            )
        if self.batch:
            where = getattr(market, "name", "a batch market")
            raise InvalidParameter(
                f"strategy wash_trader of population {slot.name!r} cannot run under {where}: "
                "its orders execute only at a batch's clearing, at one price, paired with every "
                "other order of the batch, so a wash pair cannot trade only with each other (it "
                "needs a continuous market, where an order meets the resting ones at once)"
            )

    def print_price(self, bid: int | None, ask: int | None, last: int | None) -> int | None:
        """Ticks strictly inside the spread (the tick at or below the mid), or None."""
        if bid is not None and ask is not None:
            return (bid + ask) // 2 if ask - bid >= 2 else None
        if last is None:
            return None
        if (bid is not None and last <= bid) or (ask is not None and last >= ask):
            return None
        return last

    def run(self) -> Generator[simpy.Event, Any, None]:
        opts, env = self.opts, self.env
        yield env.timeout(opts["start"])
        size = max(1, self.lots_of(opts["size"]))
        pairs = max(1, self.n // 2)
        done = [0] * pairs  # wash trades of each pair: the roles swap after each
        k = 0
        while True:
            i = k % pairs
            k += 1
            if opts["accounts"] == "single":
                seller = buyer = self.agents[i]
            else:
                a, b = self.agents[2 * i], self.agents[2 * i + 1]
                seller, buyer = (a, b) if done[i] % 2 == 0 else (b, a)
            bid, ask, q = self.touch()
            price = self.print_price(bid, ask, self.ticks(q.last))
            if price is not None:
                lots = min(
                    self.affordable(seller, False, price, size),
                    self.affordable(buyer, True, price, size),
                )
                if lots:
                    before = self.held(seller)
                    r = yield self.send(seller, False, lots, price)
                    taken = yield self.send(buyer, True, lots, price, ioc=True)
                    if taken.filled > 0:
                        done[i] += 1
                    sold = before - self.held(seller)
                    if r.order_id is not None and self.still_resting(
                        seller, r.order_id, sold, lots
                    ):  # not (entirely) taken by the partner: withdraw it
                        self.cancel(seller, r.order_id)
            yield env.timeout(opts["interval"])


class PumpAndDump(Adversary):
    """Buys aggressively, then sells into the raised price (see the module docstring)."""

    name: ClassVar[str] = "pump_and_dump"
    doc: ClassVar[str] = "adversary: buys aggressively, then sells into the raised price"
    options: ClassVar[Mapping[str, Option]] = {
        **COMMON,
        "start": Option(10.0, "time the pump starts", nonnegative_float),
        "interval": Option(0.5, "time between orders", positive_float),
        "pump": Option(20.0, "duration of the buying phase", positive_float),
        "dump": Option(40.0, "duration of the selling phase", positive_float),
        "size": Option(0.2, "units per order", positive_float),
        "slippage": Option(
            0.05,
            "how far beyond the best price an order may trade, relative",
            float,
            check=lambda v: None if 0 <= v < 1 else "must be in [0, 1)",
        ),
    }

    def run(self) -> Generator[simpy.Event, Any, None]:
        opts, env = self.opts, self.env
        yield env.timeout(opts["start"])
        size = max(1, self.lots_of(opts["size"]))
        slip = opts["slippage"]
        before = [self.held(agent) for agent in self.agents]  # held when the pump starts
        pump_end = env.now + opts["pump"]
        while env.now < pump_end - _EPS:
            for agent in self.agents:
                _, ask, _ = self.touch()
                if ask is None:
                    continue
                price = math.ceil(ask * (1.0 + slip) - _EPS)
                lots = self.affordable(agent, True, price, size)
                if lots:
                    self.send(agent, True, lots, price, ioc=True)
            yield env.timeout(opts["interval"])
        dump_end = env.now + opts["dump"]
        while env.now < dump_end - _EPS:
            for agent, start in zip(self.agents, before, strict=True):
                bid, _, _ = self.touch()
                excess = self.lots_of(pumped(self.held(agent), start))
                if bid is None or excess < 1:
                    continue
                price = max(1, math.floor(bid * (1.0 - slip) + _EPS))
                lots = self.affordable(agent, False, price, min(size, excess))
                if lots:
                    self.send(agent, False, lots, price, ioc=True)
            yield env.timeout(opts["interval"])
