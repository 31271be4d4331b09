"""Adversaries of the order book: manipulative behaviours that act only through trader handles.

Each adversary is a population behaviour (one SimPy process per population) that holds a
:class:`~mechanisms.order_book.TraderHandle` for each of its own agents and nothing else: it reads
the market through ``handle.quote()``, ``holdings()``, ``free()`` and ``orders()``, and acts through
``limit``, ``ioc`` and ``cancel``. So it can move goods and money only by its own trades (the
ledger settles fills between the two parties of each), and it can cancel only its own orders.

* :class:`Spoofer` (``spoofer``): every ``interval`` it posts a large order of ``spoof_size`` on
  one side, placed ``offset`` of the way into the spread (0 joins the best price, < 0 rests behind
  the touch, 1 is one tick short of the other side), waits ``dwell``, cancels what is left of it,
  and trades on the *other* side: immediate-or-cancel, ``trade_size`` plus whatever the spoof
  itself filled, at prices at least as good as that side's best price before the spoof. A spoof
  bid raises the mid that quoting traders centre on, and the spoofer then sells into their raised
  bids; a spoof ask lowers it and the spoofer buys from their lowered asks. With
  ``direction="both"`` it trades round trips: it spoofs bids and sells while it holds more of the
  good than at ``start``, spoofs asks and buys while it holds less, and alternates when level. A
  spoof that others trade into fills: that is the spoofer's risk.
* :class:`WashTrader` (``wash_trader``): every ``interval`` one agent of a pair posts a sell of
  ``size`` strictly inside the spread (at the tick at or below the mid) and its partner at once
  buys it with an immediate-or-cancel order at that price, so the fill is between the pair only;
  the roles swap after each wash trade, so holdings go back and forth. The trades print volume
  (and a last price) that no one else took part in. With ``accounts="single"`` one agent tries to
  do both sides: the book's self-trade prevention cancels its resting sell when its own buy
  reaches it, so nothing trades. Nothing prints while the spread is a single tick (the only
  price inside would be the other side's, and the pair would trade with others).
* :class:`PumpAndDump` (``pump_and_dump``): from ``start`` for ``pump`` time units every agent
  buys ``size`` every ``interval`` with an immediate-or-cancel order priced ``slippage`` above the
  best ask (lifting the offers and the price), then for ``dump`` time units sells what it bought,
  ``size`` at a time, at down to ``slippage`` below the best bid, until it holds what it held at
  ``start``.

:func:`add_adversary` adds such a population of Cobb-Douglas consumers to a scenario, so that
:func:`mktsim.counterfactual.counterfactual` (``honest=[name]``) can compare it with the same
agents trading honestly (the order book's default behaviour for consumers, ``utility``).
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import numpy as np
import simpy
from mktsim.mechanisms import _traders

from mktsim.equilibrium import equilibrium
from mktsim.errors import InvalidParameter, UnknownName
from mktsim.mechanism import (
    Option,
    PopulationSlot,
    nonnegative_float,
    parse_options,
    positive_float,
)
from mktsim.population import Consumers
from mktsim.scenario import Scenario
from mktsim.utility import CobbDouglas

if TYPE_CHECKING:
    from mktsim.mechanisms.order_book import GoodQuote, OrderBookMarket, TraderHandle

__all__ = ["ADVERSARIES", "Adversary", "PumpAndDump", "Spoofer", "WashTrader", "add_adversary"]

_EPS = 1e-9


def _optional_name(value: Any) -> str | None:
    return None if value in (None, "", "none") else str(value)


def _fraction(value: Any) -> float:
    x = float(value)
    if not math.isfinite(x) or not -10.0 <= x <= 1.0:
        raise ValueError("must be in [-10, 1]")
    return x


COMMON: dict[str, Option] = {
    "good": Option(
        None, "good to trade (None: the first good that is not the numeraire)", _optional_name
    ),
    "start": Option(0.0, "simulation time of its first action", nonnegative_float),
    "interval": Option(1.0, "time between its actions", positive_float),
}


class Adversary(_traders.Behaviour):
    """Base of the adversaries: options, one handle per own agent, and reading the touch.

    Unlike the honest behaviours it does not call the market's tick-level methods: every read
    and every order goes through its agents' :class:`~mechanisms.order_book.TraderHandle`.
    """

    options: ClassVar[Mapping[str, Option]] = COMMON
    needs_limits = False

    def __init__(self, market: OrderBookMarket, slot: PopulationSlot) -> None:
        # (The base's arrival process, limits and sizing are not used: no super().__init__.)
        pop = slot.population
        self.opts = parse_options(
            f"behaviour {self.name} of population {slot.name!r}",
            self.options,
            dict(pop.behaviour_options),
        )
        self.market = market
        self.slot = slot
        self.n = pop.size
        self.actions = 0
        goods = market.ctx.goods
        traded = [name for name in goods.names if name != goods.numeraire]
        good = self.opts["good"] or traded[0]
        if good not in traded:
            raise UnknownName(f"good of adversary {slot.name!r}", good, traded)
        self.good = good
        self.numeraire = goods.numeraire
        self.tick = market.tick
        self.lot = market.lot
        self.handles: list[TraderHandle] = [
            market.handle(agent) for agent in range(slot.rows.start, slot.rows.stop)
        ]

    def start(self, env: simpy.Environment) -> None:
        env.process(self.run(env))

    def run(self, env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        """The adversary's strategy (one straight generator)."""
        raise NotImplementedError

    # -- reading and sizing, in ticks and lots
    def touch(self, handle: TraderHandle) -> tuple[int | None, int | None, GoodQuote]:
        """Best bid and ask in ticks (None for an empty side) and the good's quote."""
        q = handle.quote().goods[self.good]
        return self.ticks(q.best_bid), self.ticks(q.best_ask), q

    def ticks(self, price: float | None) -> int | None:
        return None if price is None else round(price / self.tick)

    def units(self, lots: int) -> float:
        return lots * self.lot

    def lots_of(self, units: float) -> int:
        """Whole lots in ``units`` (rounded down)."""
        return max(0, math.floor(units / self.lot + _EPS))

    def affordable(self, handle: TraderHandle, buy: bool, ticks: int, lots: int) -> int:
        """At most ``lots``, cut to what the agent's free cash (buy) or goods (sell) cover."""
        free = handle.free()
        if buy:
            can = math.floor(free[self.numeraire] / (ticks * self.tick * self.lot) + _EPS)
        else:
            can = self.lots_of(free[self.good])
        return max(0, min(lots, can))


def _direction(value: Any) -> str:
    if value not in ("up", "down", "both"):
        raise ValueError("must be 'up', 'down' or 'both'")
    return str(value)


class Spoofer(Adversary):
    """Posts large orders it means to cancel, to move the mid, and trades on the other side
    (see the module docstring)."""

    name = "spoofer"
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

    def __init__(self, market: OrderBookMarket, slot: PopulationSlot) -> None:
        super().__init__(market, slot)
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

    def run(self, env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        opts = self.opts
        yield env.timeout(opts["start"])
        spoof_lots = max(1, self.lots_of(opts["spoof_size"]))
        trade_lots = max(1, self.lots_of(opts["trade_size"]))
        start = [h.holdings()[self.good] for h in self.handles]
        k = 0
        while True:
            i = k % self.n
            h = self.handles[i]
            up = self.direction(k // self.n, h.holdings()[self.good] - start[i])
            k += 1
            bid, ask, _ = self.touch(h)
            if bid is None or ask is None:  # no spread to move: wait for one
                yield env.timeout(opts["interval"])
                continue
            price = self.spoof_price(bid, ask, up)
            lots = self.affordable(h, up, price, spoof_lots)
            held = h.holdings()[self.good]
            spoof = None
            if lots:
                self.actions += 1
                r = h.limit(self.good, "buy" if up else "sell", self.units(lots), price * self.tick)
                if r.resting > 0:
                    spoof = r.order_id
            yield env.timeout(opts["dwell"])
            if spoof is not None and (
                spoof < 0 or any(o.order_id == spoof for o in h.orders(self.good))
            ):  # still resting (or, under a latency spike, still on its way)
                self.actions += 1
                h.cancel(self.good, spoof)
            # ... and trade on the other side whatever others now offer beyond the price there
            # before the spoof (what the spoof moved), unwinding what the spoof itself bought
            # or sold as well
            filled = self.lots_of(abs(h.holdings()[self.good] - held))
            limit = bid if up else ask
            lots = self.affordable(h, not up, limit, trade_lots + filled)
            if lots:
                self.actions += 1
                side = "sell" if up else "buy"
                h.ioc(self.good, side, self.units(lots), limit * self.tick)
            yield env.timeout(opts["interval"] - opts["dwell"])


def _accounts(value: Any) -> str:
    if value not in ("pair", "single"):
        raise ValueError("must be 'pair' or 'single'")
    return str(value)


class WashTrader(Adversary):
    """Pairs of its own agents trading with each other inside the spread (see the module
    docstring)."""

    name = "wash_trader"
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

    def __init__(self, market: OrderBookMarket, slot: PopulationSlot) -> None:
        super().__init__(market, slot)
        if self.opts["accounts"] == "pair" and self.n < 2:
            raise InvalidParameter(
                f"wash trader {slot.name!r} has {self.n} agent: accounts='pair' needs at least 2"
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

    def run(self, env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        opts = self.opts
        yield env.timeout(opts["start"])
        size = max(1, self.lots_of(opts["size"]))
        pairs = max(1, self.n // 2)
        done = [0] * pairs  # wash trades of each pair: the roles swap after each
        k = 0
        while True:
            i = k % pairs
            k += 1
            if opts["accounts"] == "single":
                seller = buyer = self.handles[i]
            else:
                a, b = self.handles[2 * i], self.handles[2 * i + 1]
                seller, buyer = (a, b) if done[i] % 2 == 0 else (b, a)
            bid, ask, q = self.touch(seller)
            price = self.print_price(bid, ask, self.ticks(q.last))
            if price is not None:
                lots = min(
                    self.affordable(seller, False, price, size),
                    self.affordable(buyer, True, price, size),
                )
                if lots:
                    self.actions += 2
                    quantity = self.units(lots)
                    r = seller.limit(self.good, "sell", quantity, price * self.tick)
                    if buyer.ioc(self.good, "buy", quantity, price * self.tick).filled > 0:
                        done[i] += 1
                    if r.order_id is not None and any(
                        o.order_id == r.order_id for o in seller.orders(self.good)
                    ):  # not (entirely) taken by the partner: withdraw it
                        self.actions += 1
                        seller.cancel(self.good, r.order_id)
            yield env.timeout(opts["interval"])


class PumpAndDump(Adversary):
    """Buys aggressively, then sells into the raised price (see the module docstring)."""

    name = "pump_and_dump"
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

    def run(self, env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        opts = self.opts
        yield env.timeout(opts["start"])
        size = max(1, self.lots_of(opts["size"]))
        slip = opts["slippage"]
        held = [h.holdings()[self.good] for h in self.handles]  # what each holds before the pump
        pump_end = env.now + opts["pump"]
        while env.now < pump_end - _EPS:
            for h in self.handles:
                _, ask, _ = self.touch(h)
                if ask is None:
                    continue
                price = math.ceil(ask * (1.0 + slip) - _EPS)
                lots = self.affordable(h, True, price, size)
                if lots:
                    self.actions += 1
                    h.ioc(self.good, "buy", self.units(lots), price * self.tick)
            yield env.timeout(opts["interval"])
        dump_end = env.now + opts["dump"]
        while env.now < dump_end - _EPS:
            for h, before in zip(self.handles, held, strict=True):
                bid, _, _ = self.touch(h)
                excess = self.lots_of(h.holdings()[self.good] - before)
                if bid is None or excess < 1:
                    continue
                price = max(1, math.floor(bid * (1.0 - slip) + _EPS))
                lots = self.affordable(h, False, price, min(size, excess))
                if lots:
                    self.actions += 1
                    h.ioc(self.good, "sell", self.units(lots), price * self.tick)
            yield env.timeout(opts["interval"])


ADVERSARIES: dict[str, type[_traders.Behaviour]] = {
    cls.name: cls for cls in (Spoofer, WashTrader, PumpAndDump)
}
_traders.BEHAVIOURS.update(ADVERSARIES)


def add_adversary(
    scenario: Scenario,
    behaviour: str,
    *,
    name: str | None = None,
    agents: int = 1,
    endowment: Sequence[float] | None = None,
    shares: Sequence[float] | None = None,
    **options: Any,
) -> Scenario:
    """``scenario`` with one more population: ``agents`` Cobb-Douglas consumers acting as the
    adversary ``behaviour`` under the order book.

    Args:
        scenario: the honest economy (its populations are kept as they are).
        behaviour: ``spoofer``, ``wash_trader`` or ``pump_and_dump``.
        name: the population's name (default the behaviour's).
        agents: number of adversary agents.
        endowment: units of each good per agent, in the scenario's good order (default 20 of
            the numeraire and 2 of every other good).
        shares: Cobb-Douglas shares of every agent. They value the adversary's holdings in
            welfare reports and drive it when it trades honestly (the baseline of a
            counterfactual). Default: the value shares of ``endowment`` at the equilibrium
            prices of ``scenario`` (equal shares without one), so that honestly it would hardly
            trade and what it gains is what its manipulation earns.
        **options: the behaviour's options (``good``, ``interval``, ...).
    """
    if behaviour not in ADVERSARIES:
        raise UnknownName("adversary behaviour", behaviour, list(ADVERSARIES))
    if isinstance(agents, bool) or not isinstance(agents, int) or agents < 1:
        raise InvalidParameter(f"agents(={agents!r}) must be an integer >= 1")
    goods = scenario.goods.names
    g = len(goods)
    e = np.full(g, 2.0) if endowment is None else np.asarray(endowment, dtype=float)
    if endowment is None:
        e[scenario.goods.numeraire_index] = 20.0
    if shares is None:
        eq = equilibrium(scenario)
        p = eq.price_vector if eq.status in ("unique", "found") else None
        value = e * (np.ones(g) if p is None else np.asarray(p, dtype=float))
        a = value / value.sum() if value.sum() > 0 else np.full(g, 1.0 / g)
    else:
        a = np.asarray(shares, dtype=float)
    if e.shape != (g,) or a.shape != (g,):
        raise InvalidParameter(f"endowment and shares must have one entry per good ({g})")
    population = Consumers(
        name or behaviour,
        CobbDouglas(np.tile(a, (agents, 1))),
        np.tile(e, (agents, 1)),
        behaviour=behaviour,
        behaviour_options=options,
    )
    return attrs.evolve(
        scenario,
        name=f"{scenario.name}+{population.name}",
        populations=[*scenario.populations, population],
    )
