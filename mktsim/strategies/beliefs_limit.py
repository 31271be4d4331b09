"""Belief traders on markets that take limit orders: an order book, a call market (registered as
``belief``, ``informed``, ``noise`` and ``scripted``).

The goods are money (the numeraire) and one share good per outcome of an event
(:func:`mktsim.beliefs.prediction_market`); each share good trades against money. The event
(nature's outcome, complete sets, resolution) belongs to the run: these strategies share it
through :func:`mktsim.prediction.prediction_event_of`, and stop once it has resolved.

* ``belief`` (default for :class:`~mktsim.beliefs.BeliefTraders` under markets that take
  ``Limit``): at each arrival the agent picks an outcome ``s`` and a side, and computes its
  reservation price ``r_s = π_s u'(w_s) / Σ_t π_t u'(w_t)`` at its current holdings
  (:func:`mktsim.beliefs.reservation_row`). With ``P`` the market's reference price (the
  quote's ``prices``: an order book's geometric mid, else its one side, else its last trade; a
  call market's last clearing price) it buys if ``r_s > P`` and sells if ``r_s < P`` (nothing
  when ``|ln(r_s/P)| <= tol``), quoting around ``c = r_s^(1-anchor) P^anchor`` spread uniformly
  over ``c (1 +/- spread/2)``; a bid is never above ``r_s`` and an ask never below it (rounded
  down and up to the tick). The order is ``step`` times :func:`mktsim.beliefs.desired_trade` at
  the quote's own price (the trade after which the reservation price equals that price; at
  least one lot, at most ``order_size`` if given), so even a complete fill leaves the
  reservation price on the right side of the price paid: every unit it trades raises its
  expected utility. Before a good has any price the agent sends a one-lot probe on a random
  side around ``r_s``.
* ``informed``: ``belief`` trading on the Bayesian posterior after a private signal of the
  outcome, right with probability ``accuracy`` (:func:`mktsim.beliefs.posterior`; signals from
  the event, drawn from the stream ``lmsr:<population>:signals`` as the LMSR maker's
  ``informed_swap`` draws them, so a seed gives every market the same informed traders).
* ``noise``: random liquidity takers: at each arrival the agent picks a good (uniformly) and,
  with probability ``sell_probability`` (if it holds at least a lot free), sells up to
  ``max_fraction`` of its free holding of it at the best bid, else spends up to
  ``max_fraction`` of its free money on it at the best ask (immediate-or-cancel ``Limit`` at
  that price; nothing without one).
* ``scripted``: replays ``orders``, ``(time, agent, outcome, shares)`` with the agent within the
  population and signed shares (> 0 buys), as ``MarketOrder`` (a market buy is protected by the
  market at the highest price the agent's free money pays for all of it); shares must be whole
  lots. Under ``order_book`` and ``call_market``, ``passive`` is ``idle``.

Each belief or informed agent keeps at most one resting order over all goods: an action
withdraws it first (a ``Cancel``, sent only if the market says it still rests). Its
reservation prices then change only through fills of that one order, which is how a bid (ask)
sized by the desired trade never fills beyond them. At resolution the event has them withdraw it.

**Complete sets.** With ``complete_sets=True`` (the default) an agent that asks for more shares
than it holds free first buys the missing complete sets from the event for money, and one that
bids beyond its free money first sells it complete sets it holds free
(:meth:`~mktsim.prediction.PredictionEvent.issue`, ``redeem``). Either leaves its state wealth
unchanged. Without them every share good's supply is fixed and a trader cannot go short an
outcome, so prices are bid above the competitive ones (and their sum above 1).

Arrivals are Poisson, drawn in chunks from the population's stream
``<market>:arrivals:<population>`` (:class:`~mktsim.strategies._arrivals.PoissonStrategy`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Mapping
from typing import Any, ClassVar

import numpy as np
import simpy
from numpy.typing import NDArray

from mktsim.beliefs import BeliefTraders, desired_trade, posterior, reservation_row
from mktsim.errors import InvalidParameter, UnknownName
from mktsim.mechanism import (
    MarketContext,
    Option,
    PopulationSlot,
    boolean,
    in_range,
    nonnegative_float,
)
from mktsim.orders import BUY, SELL, Cancel, Limit, MarketOrder
from mktsim.prediction import PredictionEvent, prediction_event_of
from mktsim.strategies._arrivals import COMMON, EPS, PoissonStrategy, price_of, to_ticks
from mktsim.valuation import utility_quote

__all__ = ["BeliefTrader", "InformedTrader", "NoiseTrader", "ScriptedTrader"]

Array = NDArray[np.float64]
_UNIT = in_range(0.0, 1.0)
#: Population kinds the valuation-free strategies (noise, scripted) can drive.
_ANY_HOLDER = frozenset({"belief_traders", "consumers", "induced"})


class _Goods:
    """The limits of a population whose orders no valuation prices: the goods it trades (every
    good but the numeraire) and a one-lot default order."""

    default_size = 0.0  # rounds to no lot: one lot

    def __init__(self, ctx: MarketContext, slot: PopulationSlot) -> None:
        num = ctx.goods.numeraire_index
        self.kind = slot.population.kind
        self.goods = [j for j in range(len(ctx.goods)) if j != num]


def free_reader(market: Any, holdings: Any, names: list[str]) -> Callable[[int, int], int]:
    """``free(agent, good)``: base units of a good (the numeraire included) the agent holds
    beyond what its orders on ``market`` reserve: an order book's ``available``, a call market's
    ``free``, or plain holdings for a market that reserves nothing."""
    available = getattr(market, "available", None)
    if available is not None:
        return lambda agent, j: int(available(agent, names[j]))
    free = getattr(market, "free", None)
    if free is not None:
        return lambda agent, j: int(free(agent)[1][j])
    return lambda agent, j: int(holdings[agent, j])


def _still_rests(market: Any, names: list[str]) -> Callable[[int, int, int], bool]:
    """``rests(agent, good, order_id)``: whether an order may still be live on ``market`` (so
    withdrawing it is worth a ``Cancel``): an order book's ``resting``; a call market's
    ``receipt``, which shows every live order (an id it does not know has left the market, a
    negative one is still on its way to it); else always."""
    resting = getattr(market, "resting", None)
    if resting is not None:
        return lambda agent, g, oid: bool(resting(agent, names[g], oid))
    receipt = getattr(market, "receipt", None)
    if receipt is not None:

        def rests(agent: int, g: int, oid: int) -> bool:
            if oid < 0:
                return True
            r = receipt(oid)
            return r is not None and bool(r.resting)

        return rests
    return lambda agent, g, oid: True


def _event_for(strategy: str, ctx: MarketContext, market: Any, pop: Any) -> PredictionEvent:
    """The run's event, checking that the population's beliefs cover its outcomes."""
    event = prediction_event_of(ctx, market)
    if pop.n_outcomes != len(event.cols):
        raise InvalidParameter(
            f"population {pop.name!r} has beliefs over {pop.n_outcomes} outcomes, the market "
            f"{len(event.cols)} ({', '.join(event.names)}) (strategy {strategy!r})"
        )
    return event


# ---- belief and informed traders ------------------------------------------------------------
def _belief_options() -> dict[str, Option]:
    return {
        **COMMON,
        "spread": Option(
            0.1,
            "width of the quote range relative to its centre",
            in_range(0.0, 1.0, high_open=True),
        ),
        "anchor": Option(
            1.0,
            "weight of the market's price in the quote's centre (0: the reservation price)",
            _UNIT,
        ),
        "step": Option(
            0.5,
            "fraction of the desired trade at the quote's price sent per order",
            in_range(0.0, 1.0, low_open=True),
        ),
        "tol": Option(
            1e-3,
            "least |ln(reservation price / market price)| worth trading on",
            nonnegative_float,
        ),
        "complete_sets": Option(
            True, "convert money to and from complete sets at par to ask or bid", boolean
        ),
    }


class BeliefTrader(PoissonStrategy):
    """Expected-utility traders quoting shares around the market's price, never beyond their
    reservation price (see the module docstring)."""

    name: ClassVar[str] = "belief"
    doc: ClassVar[str] = (
        "quote outcome shares around the market's price, never beyond the reservation price "
        "(spread, anchor, step, tol, complete_sets)"
    )
    emits: ClassVar[frozenset[type]] = frozenset({Limit, Cancel})
    serves: ClassVar[frozenset[str]] = frozenset({"belief_traders"})
    options: ClassVar[Mapping[str, Option]] = _belief_options()

    def __init__(
        self, market: Any, ctx: MarketContext, slot: PopulationSlot, options: Mapping[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        pop: BeliefTraders = slot.population  # type: ignore[assignment]
        self.pop = pop
        self.event = _event_for(self.name, ctx, market, pop)
        self.outcomes: list[int] = list(self.event.cols)
        self.beliefs = self.prepare(np.array(pop.beliefs, dtype=np.float64))
        self.aversion: list[float] = pop.aversion.tolist()
        self.spread = self.opts["spread"]
        self.anchor = self.opts["anchor"]
        self.step = self.opts["step"]
        self.threshold = math.log1p(self.opts["tol"])
        self.sets = self.opts["complete_sets"]
        self.cap = self.lots if self.opts["order_size"] is not None else 2**62
        self.holdings = ctx.ledger.holdings
        self.free = free_reader(market, self.holdings, self.names)
        self.rests = _still_rests(market, self.names)
        #: The agent's one resting order: (good, order id), id 0 for none.
        self.resting: list[tuple[int, int]] = [(0, 0)] * self.n
        self.event.on_resolution(self.withdraw_all)

    def make_limits(self, ctx: Any, slot: PopulationSlot) -> Any:
        if not isinstance(slot.population, BeliefTraders):
            raise InvalidParameter(
                f"strategy {self.name!r} needs belief traders; population {slot.name!r} is "
                f"{slot.population.kind} (use utility, zi_c, zi_u or zip)"
            )
        return _Goods(ctx, slot)

    def prepare(self, beliefs: Array) -> Array:
        """The probabilities the agents trade on (their beliefs)."""
        return beliefs

    def reservation(self, agent: int) -> Array:
        """Reservation prices ``float64[k]`` of an agent (ledger row) at its holdings now."""
        local = agent - self.start_row
        return reservation_row(
            self.beliefs[local], self._wealth(agent), self.pop.risk, self.aversion[local]
        )

    def _wealth(self, agent: int) -> Array:
        h = self.holdings[agent]
        return np.asarray(h[self.outcomes] + h[self.num], dtype=np.float64) / self.base_units

    def decide(self, agent: int, u1: float, u2: float) -> tuple[Any, ...] | None:
        if self.event.resolved:
            return None
        local = agent - self.start_row
        k = len(self.outcomes)
        pick = min(int(u1 * 2 * k), 2 * k - 1)
        s = pick >> 1
        g = self.outcomes[s]
        r = float(self.reservation(agent)[s])
        if not math.isfinite(r):
            return None
        ref = self.reference_prices()[self.names[g]]
        if ref is None:  # a probe on a random side around the reservation price
            buy = not (pick & 1)
        else:
            if r > 0 and abs(math.log(r / ref)) <= self.threshold:
                return None
            buy = r > ref
        # quoted as a consumer quotes around its MRS: never a bid above r, nor an ask below it
        ticks = utility_quote(r, ref, buy, u2, self.spread, self.anchor, self.tick)
        if ticks < 1:
            return None
        if ref is None:
            return agent, g, buy, ticks, 1
        p = price_of(ticks, self.tick)
        h = self.holdings[agent]
        money = float(h[self.num]) / self.base_units
        held = np.asarray(h[self.outcomes], dtype=np.float64) / self.base_units
        if buy:
            bounds = (0.0, (money + (float(held.min()) if self.sets else 0.0)) / p)
        else:
            bounds = (-(float(held[s]) + (money if self.sets else 0.0)), 0.0)
        q = desired_trade(
            self.beliefs[local], held + money, s, p, self.pop.risk, self.aversion[local], bounds
        )
        size = abs(q)
        lots = min(self.cap, int(self.step * size / self.lot + EPS))
        if lots < 1:
            if size < self.lot:
                return None
            lots = 1
        return agent, g, buy, ticks, lots

    def execute(self, order: tuple[Any, ...]) -> None:
        self.place(order)

    def place(self, order: tuple[Any, ...]) -> None:
        """Withdraw the agent's resting order, convert complete sets if it lacks money or shares
        (and may), and post the new order, cut to what the agent can commit."""
        agent, g, buy, ticks, lots = order
        event = self.event
        if event.resolved:
            return
        local = agent - self.start_row
        if not 0 <= local < self.n:
            raise InvalidParameter(
                f"population {self.slot.name!r} cannot act for agent {agent} (its agents are "
                f"{self.start_row}..{self.start_row + self.n - 1})"
            )
        old_g, old = self.resting[local]
        if old:
            self.withdraw_one(agent, old_g, old)
            self.resting[local] = (0, 0)
        if self.sets:
            free = self.free
            if buy:
                short = lots * ticks * self.tick_base - free(agent, self.num)
                if short > 0:
                    event.redeem(agent, min(short, *(free(agent, j) for j in self.outcomes)))
            else:
                short = lots * self.lot_base - free(agent, g)
                if short > 0:
                    event.issue(agent, min(short, free(agent, self.num)))
        oid = self.replace(agent, g, 0, buy, lots, ticks)
        if oid:
            self.resting[local] = (g, oid)

    def withdraw_one(self, agent: int, g: int, order_id: int) -> bool:
        """Cancel the agent's order if the market says it may still rest; True if sent."""
        if self.rests(agent, g, order_id):
            self.submit(Cancel(agent, self.names[g], order_id))
            return True
        return False

    def withdraw_all(self) -> int:
        """Withdraw every agent's resting order (the event resolves); returns how many."""
        n = 0
        for local, (g, oid) in enumerate(self.resting):
            if oid:
                n += self.withdraw_one(self.start_row + local, g, oid)
                self.resting[local] = (0, 0)
        return n


class InformedTrader(BeliefTrader):
    """Belief traders trading on their posterior after a private signal of the outcome."""

    name: ClassVar[str] = "informed"
    doc: ClassVar[str] = (
        "belief trading on the posterior after a private signal of the outcome (accuracy, and "
        "belief's options)"
    )
    options: ClassVar[Mapping[str, Option]] = {
        **_belief_options(),
        "accuracy": Option(1.0, "probability that the signal names the true outcome", _UNIT),
    }

    def prepare(self, beliefs: Array) -> Array:
        accuracy = self.opts["accuracy"]
        # nature's signals, from the stream the LMSR maker's informed traders draw them from
        rng = self.ctx.streams.generator(f"lmsr:{self.slot.name}:signals")
        return posterior(beliefs, self.event.signals(accuracy, rng, self.n), accuracy)


# ---- noise traders -----------------------------------------------------------------------------
class NoiseTrader(PoissonStrategy):
    """Random liquidity takers: a random fraction of money or holdings at the best quote."""

    name: ClassVar[str] = "noise"
    doc: ClassVar[str] = (
        "take liquidity at the best quote with random fractions of money or holdings "
        "(max_fraction, sell_probability)"
    )
    emits: ClassVar[frozenset[type]] = frozenset({Limit, Cancel})
    serves: ClassVar[frozenset[str]] = _ANY_HOLDER
    options: ClassVar[Mapping[str, Option]] = {
        **COMMON,
        "max_fraction": Option(0.2, "largest fraction of free money (or holding) per order", _UNIT),
        "sell_probability": Option(0.5, "probability of a sell (when it holds any)", _UNIT),
    }

    def __init__(
        self, market: Any, ctx: MarketContext, slot: PopulationSlot, options: Mapping[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        pop = slot.population
        quote = market.quote()
        states = getattr(quote, "goods", None)
        if not states or not all(hasattr(states[n], "best_bid") for n in quote.prices):
            raise InvalidParameter(
                f"strategy {self.name!r} of population {slot.name!r} takes the best bid or ask, "
                f"which {getattr(market, 'name', 'the market')} does not quote"
            )
        self.event = (
            _event_for(self.name, ctx, market, pop) if isinstance(pop, BeliefTraders) else None
        )
        self.goods: list[int] = list(self.limits.goods)
        self.top = self.opts["max_fraction"]
        self.p_sell = self.opts["sell_probability"]
        self.free = free_reader(market, ctx.ledger.holdings, self.names)
        self.rests = _still_rests(market, self.names)
        #: Orders that rested when sent (a call market holds one to its batch's clearing):
        #: (agent, good, order id), withdrawn when the event resolves.
        self.waiting: list[tuple[int, int, int]] = []
        if self.event is not None:
            self.event.on_resolution(self.withdraw_all)

    def make_limits(self, ctx: Any, slot: PopulationSlot) -> Any:
        return _Goods(ctx, slot)

    def withdraw_all(self) -> int:
        """Withdraw the agents' orders still waiting in the market; returns how many."""
        n = 0
        for agent, g, oid in self.waiting:
            if self.rests(agent, g, oid):
                self.submit(Cancel(agent, self.names[g], oid))
                n += 1
        self.waiting.clear()
        return n

    def decide(self, agent: int, u1: float, u2: float) -> tuple[Any, ...] | None:
        if self.event is not None and self.event.resolved:
            return None
        k = len(self.goods)
        x = u1 * k
        j = min(int(x), k - 1)
        g = self.goods[j]
        state = self.market.quote().goods[self.names[g]]
        free = self.free(agent, g)
        # the fractional part of u1 k is uniform and independent of the good it picked
        if x - j < self.p_sell and free >= self.lot_base:
            best = state.best_bid
            lots = int(u2 * self.top * free) // self.lot_base
            buy = False
        else:
            best = state.best_ask
            if best is None:
                return None
            ticks = to_ticks(best, self.tick)
            lots = int(u2 * self.top * self.free(agent, self.num)) // (ticks * self.tick_base)
            buy = True
        if best is None or lots < 1:
            return None
        return agent, g, buy, to_ticks(best, self.tick), lots

    def execute(self, order: tuple[Any, ...]) -> None:
        self.place(order)

    def place(self, order: tuple[Any, ...]) -> None:
        agent, g, buy, ticks, lots = order
        if self.event is not None and self.event.resolved:
            return
        if not 0 <= agent - self.start_row < self.n:
            raise InvalidParameter(f"population {self.slot.name!r} cannot act for agent {agent}")
        price = price_of(ticks, self.tick)
        side = BUY if buy else SELL
        ioc = Limit(agent, self.names[g], side, lots * self.lot, price, ioc=True)
        receipt = self.submit(ioc).value
        if receipt is not None and receipt.resting and receipt.order_id:
            if len(self.waiting) >= 4 * self.n:  # keep only those that may still wait
                self.waiting = [w for w in self.waiting if self.rests(*w)]
            self.waiting.append((agent, g, receipt.order_id))


# ---- scripted orders ---------------------------------------------------------------------------
def _orders(value: Any) -> tuple[tuple[float, int, str, float], ...]:
    out = []
    for entry in value or ():
        try:
            time, who, outcome, shares = entry
            out.append((float(time), int(who), str(outcome), float(shares)))
        except (TypeError, ValueError):
            raise ValueError(f"order {entry!r} must be (time, agent, outcome, shares)") from None
    return tuple(out)


class ScriptedTrader:
    """Replays ``orders`` ``(time, agent, outcome, shares)`` as market orders (see the module
    docstring)."""

    name: ClassVar[str] = "scripted"
    doc: ClassVar[str] = "replay market orders [(time, agent, good, shares), ...]"
    emits: ClassVar[frozenset[type]] = frozenset({MarketOrder})
    serves: ClassVar[frozenset[str]] = _ANY_HOLDER
    options: ClassVar[Mapping[str, Option]] = {
        **COMMON,
        "orders": Option((), "orders [(time, agent, outcome, shares), ...]", _orders),
    }

    def __init__(
        self, market: Any, ctx: MarketContext, slot: PopulationSlot, options: Mapping[str, Any]
    ) -> None:
        self.market = market
        self.env: simpy.Environment = ctx.env
        self.actions = 0
        pop = slot.population
        quote = market.quote()
        lot = float(getattr(quote, "lot", None) or 0.0)
        if lot <= 0:
            raise InvalidParameter(
                f"strategy {self.name!r} of population {slot.name!r} needs a market with a lot "
                "size in its quote (an order book, a call market)"
            )
        names = list(quote.prices)
        plan: list[tuple[float, int, str, str, float]] = []
        for time, who, outcome, shares in options["orders"]:
            if outcome not in names:
                raise UnknownName("outcome in a scripted order", outcome, names)
            if not 0 <= who < pop.size:
                raise InvalidParameter(f"scripted agent(={who}) not in population {slot.name!r}")
            lots = round(abs(shares) / lot)
            if abs(lots * lot - abs(shares)) > 1e-9 * max(1.0, abs(shares)):
                raise InvalidParameter(
                    f"scripted shares(={shares}) of population {slot.name!r} must be a whole "
                    f"number of lots (lot = {lot})"
                )
            if lots:
                side = BUY if shares > 0 else SELL
                plan.append((time, slot.rows.start + who, outcome, side, lots * lot))
        self.plan = sorted(plan, key=lambda o: o[0])
        self.event = (
            _event_for(self.name, ctx, market, pop) if isinstance(pop, BeliefTraders) else None
        )

    def start(self) -> None:
        self.env.process(self._replay())

    def _replay(self) -> Generator[simpy.Event, Any, None]:
        env = self.env
        for time, agent, good, side, qty in self.plan:
            if time > env.now:
                yield env.timeout(time - env.now)
            if self.event is not None and self.event.resolved:
                return
            self.actions += 1
            self.market.submit(MarketOrder(agent, good, side, qty))
