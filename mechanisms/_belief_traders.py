"""Order-book behaviours of a prediction market: belief traders quoting shares on the books.

The goods are money (the numeraire) and one share good per outcome of an event
(:func:`mktsim.beliefs.prediction_market`); each share good has its own book against money.

* ``belief`` (default for :class:`~mktsim.beliefs.BeliefTraders`): at each arrival the agent
  picks an outcome ``s`` and a side, and computes its reservation price ``r_s = π_s u'(w_s) /
  Σ_t π_t u'(w_t)`` at its current holdings (:meth:`BeliefTraders.reservation_prices`). With
  ``P`` the book's reference price (:meth:`OrderBookMarket.reference_price`) it buys if
  ``r_s > P`` and sells if ``r_s < P`` (nothing when ``|ln(r_s/P)| <= tol``), quoting around
  ``c = r_s^(1-anchor) P^anchor`` spread uniformly over ``c (1 +/- spread/2)``; a bid is never
  above ``r_s`` and an ask never below it (rounded down and up to the tick). The order is
  ``step`` times :func:`desired_trade` at the quote's own price (the trade after which the
  reservation price equals that price; at least one lot, at most ``order_size`` if given), so
  even a complete fill leaves the reservation price on the right side of the price paid:
  every unit it trades raises its expected utility. Before a book has any price the agent sends
  a one-lot probe on a random side around ``r_s``.
* ``informed``: ``belief`` trading on the Bayesian posterior after a private signal of the
  outcome, right with probability ``accuracy`` (:func:`mechanisms._amm_traders.posterior`;
  signals drawn as ``lmsr`` draws them, from the stream ``lmsr:<population>:signals``, so a seed
  gives both markets the same informed traders).
* ``noise``: like ``lmsr``'s noise traders, but taking liquidity from the book: at each arrival
  the agent picks an outcome (uniformly) and, with probability ``sell_probability`` (if it holds
  any), sells up to ``max_fraction`` of its free shares of it to the best bid, else spends up to
  ``max_fraction`` of its free money on it at the best ask (immediate-or-cancel at that price;
  nothing without one).
* ``passive``: no process (the book's ``external``: drive the agents through handles).
* ``scripted``: replay ``orders``, ``(time, agent, outcome, shares)`` with the agent within the
  population and signed shares (> 0 buys), as market orders (a buy protected at the highest
  price the agent's free money pays for all of it); shares must be whole lots.

Each belief or informed agent keeps at most one resting order over all books: an action
withdraws it first. Its reservation prices then change only through fills of that one order,
which is how a bid (ask) sized by :func:`desired_trade` never fills beyond them.

**Complete sets.** Money is the same asset as a complete set (one share of every outcome), and
the exchange trades one for the other at par, as the Iowa Electronic Markets sell and buy back
unit portfolios: with ``complete_sets=True`` (the default) an agent that asks for more shares
than it holds first buys the missing complete sets for money, and one that bids beyond its free
money first sells complete sets it holds. Either leaves its state wealth unchanged. Without
them every share good's supply is fixed and a trader cannot go short an outcome (selling a
share it does not hold), so prices are bid above the competitive ones (and their sum above 1).
Each conversion is a :meth:`~mktsim.ledger.Ledger.produce` of technology ``complete set: issue``
/ ``complete set: redeem`` (the ``production`` table), counted so conservation checks exactly.

**Resolution** (:class:`PredictionEvent`, one per market, a service of the
:class:`~mechanisms.order_book.OrderBookMarket`). The event is the scenario's
(:func:`mktsim.beliefs.prediction_event`); nature's outcome is drawn from its true probabilities
with the run's stream ``lmsr:outcome`` (so a seed resolves the same outcome under ``lmsr`` and
the book). At ``resolve_at`` every resting order is cancelled, every share of the outcome is
redeemed for one unit of money and every share is destroyed (one ``produce``, technology
``resolution: <outcome>``), the event is logged (``resolution``) and the run ends. There is no
maker, so no maker loss: the traders' profits (``trader_profit``, per population) add up to 0.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import simpy
from mktsim.mechanisms._amm_traders import posterior
from mktsim.mechanisms._traders import BEHAVIOURS, COMMON, Behaviour, External, utility_quote
from numpy.typing import NDArray
from scipy.optimize import brentq

from mktsim.beliefs import BeliefTraders, marginal_utility, prediction_event
from mktsim.errors import InvalidParameter, UnknownName
from mktsim.goods import BASE_UNITS
from mktsim.mechanism import Option, PopulationSlot, boolean, in_range, nonnegative_float

if TYPE_CHECKING:
    from mktsim.mechanisms.order_book import OrderBookMarket

__all__ = [
    "BeliefTrader",
    "InformedTrader",
    "NoiseTrader",
    "PredictionEvent",
    "ScriptedTrader",
    "desired_trade",
    "prediction_event_of",
]

Array = NDArray[np.float64]
_EPS = 1e-9
#: Name of the event service on the market.
SERVICE = "prediction"
_UNIT = in_range(0.0, 1.0)


# ---- the economics ------------------------------------------------------------------------
def desired_trade(
    beliefs: Array,
    wealth: Array,
    outcome: int,
    price: float,
    risk: str,
    risk_aversion: float = 1.0,
    bounds: tuple[float, float] = (-math.inf, math.inf),
) -> float:
    """Shares of ``outcome`` that maximise expected utility when bought (> 0) or sold (< 0) at
    ``price`` each: the trade after which the reservation price of the outcome equals ``price``.

    A share bought at ``p`` adds ``1 - p`` to the state wealth of its outcome and takes ``p``
    from every other state, so along the trade ``q`` the slope of expected utility is
    ``D(q) = Σ_t π_t u'(w_t + q d_t) d_t`` with ``d = e_s - p``, decreasing in ``q``, and
    ``D(0) = (r_s - p) Σ_t π_t u'(w_t)``. The root is found by Brent's method within ``bounds``
    (units of shares; what the agent can pay or deliver), and a bound is returned when ``D``
    keeps its sign up to it (a risk-neutral trader goes all the way).

    Args:
        beliefs: ``float64[k]`` subjective probabilities.
        wealth: ``float64[k]`` state wealth (money + shares of each outcome), units of money.
        outcome: index of the share traded.
        price: money per share, in (0, 1).
        risk: ``log`` | ``cara`` | ``neutral``.
        risk_aversion: CARA coefficient per unit of money.
        bounds: ``(lowest, highest)`` trade, lowest <= 0 <= highest.
    """
    pi = np.asarray(beliefs, dtype=float)
    w = np.asarray(wealth, dtype=float)
    d = np.full(pi.shape, -price)
    d[outcome] += 1.0

    def slope(q: float) -> float:
        mu = marginal_utility(w + q * d, risk, risk_aversion)
        return float(np.dot(pi * mu, d) / np.dot(pi, mu))

    lo, hi = bounds
    s0 = slope(0.0)
    if s0 == 0.0:
        return 0.0
    end = hi if s0 > 0 else lo
    if not math.isfinite(end):
        # log and CARA utility turn D negative within the state wealth: search outwards
        end = (1.0 if s0 > 0 else -1.0) * max(1.0, float(np.abs(w).max()))
        while (slope(end) > 0) == (s0 > 0) and abs(end) < 1e12:
            end *= 2.0
    s_end = slope(end)
    if (s_end > 0) == (s0 > 0):
        return float(end)
    a, b = (0.0, end) if end > 0 else (end, 0.0)
    return float(brentq(slope, a, b, xtol=1e-12, rtol=1e-10))


# ---- the event ----------------------------------------------------------------------------
class PredictionEvent:
    """A prediction market's event on the order book: complete sets and resolution (see the
    module docstring). One per market, made by :func:`prediction_event_of`."""

    def __init__(self, market: OrderBookMarket) -> None:
        ctx = market.ctx
        self.market = market
        self.ctx = ctx
        self.num = market._num
        self.cols: list[int] = list(market._traded)
        self.names = [market._goods[j] for j in self.cols]
        k = len(self.cols)
        if k < 2:
            raise InvalidParameter(
                f"a prediction market needs at least 2 outcomes (share goods besides the "
                f"numeraire); the scenario has {k} ({', '.join(self.names)})"
            )
        truth, at, forced = prediction_event(ctx.scenario)
        self.truth = truth
        if forced is not None:
            if forced not in self.names:
                raise UnknownName("outcome", forced, self.names)
            self.outcome = self.names.index(forced)
        else:
            p = truth if truth is not None else np.full(k, 1.0 / k)
            self.outcome = int(ctx.streams.generator("lmsr:outcome").choice(k, p=p))
        self.resolve_at = at
        self.resolved = False
        self.payout: int | None = None
        self.issued = 0  # complete sets, base units
        self.redeemed = 0
        # what every agent started with, base units, to value its trading profit
        self._start = np.array(ctx.ledger.holdings[: ctx.scenario.n_agents], dtype=np.int64)
        if math.isfinite(at):
            ctx.env.process(self._resolution(at))

    # -- complete sets
    def _convert(self, agent: int, amount: int, issue: bool) -> None:
        g = len(self.market._goods)
        money = np.zeros((1, g), dtype=np.int64)
        money[0, self.num] = amount
        sets = np.zeros((1, g), dtype=np.int64)
        sets[0, self.cols] = amount
        rows = np.array([agent])
        if issue:
            self.market._ledger.produce(rows, money, sets, "complete set: issue")
            self.issued += amount
        else:
            self.market._ledger.produce(rows, sets, money, "complete set: redeem")
            self.redeemed += amount

    def issue(self, agent: int, amount: int) -> int:
        """Sell the agent up to ``amount`` base units of complete sets for as much money, out of
        its free money; returns how many."""
        amount = min(amount, self.market.free_cash(agent))
        if amount > 0 and not self.resolved:
            self._convert(agent, amount, True)
            return amount
        return 0

    def redeem(self, agent: int, amount: int) -> int:
        """Buy back up to ``amount`` base units of complete sets from the agent, out of the
        shares it holds free of every outcome; returns how many."""
        m = self.market
        amount = min(amount, *(m.free_goods(agent, j) for j in self.cols))
        if amount > 0 and not self.resolved:
            self._convert(agent, amount, False)
            return amount
        return 0

    # -- resolution
    def _resolution(self, at: float) -> Generator[simpy.Event, Any, None]:
        env = self.ctx.env
        if at > env.now:
            yield env.timeout(at - env.now)
        self.resolve()
        if not self.ctx.done.triggered:
            self.ctx.done.succeed()

    def resolve(self) -> None:
        """Resolve now: cancel every resting order, pay one unit of money per share of the
        outcome, destroy every share (one ledger ``produce``), and close the books."""
        if self.resolved:
            return
        ctx, ledger, m = self.ctx, self.market._ledger, self.market
        cancelled = m.clear(None, "resolve")
        self.resolved = True
        h = np.array(ledger.holdings, dtype=np.int64)
        cols = self.cols
        win = cols[self.outcome]
        rows = np.flatnonzero(h[:, cols].any(axis=1))
        inputs = np.zeros((rows.size, h.shape[1]), dtype=np.int64)
        inputs[:, cols] = h[rows][:, cols]
        outputs = np.zeros_like(inputs)
        outputs[:, self.num] = h[rows, win]
        self.payout = int(outputs.sum())
        if rows.size:
            ledger.produce(rows, inputs, outputs, f"resolution: {self.names[self.outcome]}")
        ctx.log(
            "resolution",
            f"outcome {self.names[self.outcome]}: paid {self.payout / BASE_UNITS:g} for "
            f"{int((h[rows, win] > 0).sum())} holders' shares; {cancelled} resting orders "
            "cancelled",
        )

    # -- reporting
    def trader_profit(self) -> dict[str, float]:
        """Trading profit per population (money units): the value of its holdings now less that
        of its endowment, at resolution (a share of the outcome 1, the others 0) or before it at
        the books' price estimates (shares of a book without one valued at 0)."""
        m = self.market
        value = np.zeros(len(m._goods))
        value[self.num] = 1.0
        if self.resolved:
            value[self.cols[self.outcome]] = 1.0
        else:
            for j in self.cols:
                est = m._estimate(j)
                value[j] = 0.0 if est is None else est
        n = self._start.shape[0]
        now = np.array(m._ledger.holdings[:n], dtype=np.int64)
        if self.resolved:  # exact: integer base units
            change = (now - self._start) @ value.astype(np.int64)
            per_agent = change.astype(np.float64) / BASE_UNITS
        else:
            per_agent = ((now - self._start).astype(np.float64) @ value) / BASE_UNITS
        return {s.name: float(per_agent[s.rows].sum()) for s in self.ctx.slots}

    def summary(self) -> dict[str, Any]:
        return {
            "outcomes": list(self.names),
            "true_probabilities": None
            if self.truth is None
            else dict(zip(self.names, self.truth.tolist(), strict=True)),
            "resolve_at": self.resolve_at,
            "resolved": self.resolved,
            "outcome": self.names[self.outcome] if self.resolved else None,
            "payout": None if self.payout is None else self.payout / BASE_UNITS,
            "complete_sets_issued": self.issued / BASE_UNITS,
            "complete_sets_redeemed": self.redeemed / BASE_UNITS,
            "trader_profit": self.trader_profit(),
            "trader_profit_valued_at": "resolution" if self.resolved else "book estimates",
        }


def prediction_event_of(market: OrderBookMarket) -> PredictionEvent:
    """The market's prediction event, made on first use."""
    event = market.services.get(SERVICE)
    if event is None:
        event = market.services[SERVICE] = PredictionEvent(market)
    return event


# ---- behaviours ---------------------------------------------------------------------------
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
            "weight of the book's price in the quote's centre (0: the reservation price)",
            _UNIT,
        ),
        "step": Option(
            0.5,
            "fraction of the desired trade at the quote's price sent per order",
            in_range(0.0, 1.0, low_open=True),
        ),
        "tol": Option(
            1e-3, "least |ln(reservation price / book price)| worth trading on", nonnegative_float
        ),
        "complete_sets": Option(
            True, "convert money to and from complete sets at par to ask or bid", boolean
        ),
    }


class BeliefTrader(Behaviour):
    """Expected-utility traders quoting shares around the book, never beyond their reservation
    price (see the module docstring)."""

    name = "belief"
    needs_limits = False
    options: ClassVar[Mapping[str, Option]] = _belief_options()

    def __init__(self, market: OrderBookMarket, slot: PopulationSlot) -> None:
        super().__init__(market, slot)
        pop = slot.population
        if not isinstance(pop, BeliefTraders):
            raise InvalidParameter(
                f"behaviour {self.name!r} needs belief traders; population {slot.name!r} is "
                f"{pop.kind} (use utility, zi_c, zi_u or zip)"
            )
        self.event = prediction_event_of(market)
        self.outcomes = self.event.cols
        if pop.n_outcomes != len(self.outcomes):
            raise InvalidParameter(
                f"population {slot.name!r} has beliefs over {pop.n_outcomes} outcomes, the "
                f"market {len(self.outcomes)} ({', '.join(self.event.names)})"
            )
        self.pop: BeliefTraders = pop
        self.beliefs = np.array(pop.beliefs, dtype=np.float64)
        self.aversion = pop.aversion.tolist()
        self.spread = self.opts["spread"]
        self.anchor = self.opts["anchor"]
        self.step = self.opts["step"]
        self.threshold = math.log1p(self.opts["tol"])
        self.sets = self.opts["complete_sets"]
        self.lot = market.lot
        self.cap = self.lots if self.opts["order_size"] is not None else 2**62
        #: The agent's one resting order: (good, order id), id 0 for none.
        self.resting: list[tuple[int, int]] = [(0, 0)] * self.n

    def reservation(self, agent: int) -> Array:
        """Reservation prices ``float64[k]`` of an agent (ledger row) at its holdings now."""
        local = agent - self.start_row
        w = self._wealth(agent)
        mu = self.beliefs[local] * marginal_utility(w, self.pop.risk, self.aversion[local])
        return np.asarray(mu / mu.sum(), dtype=np.float64)

    def _wealth(self, agent: int) -> Array:
        h = self.market._h[agent]
        return np.asarray(h[self.outcomes] + h[self.market._num], dtype=np.float64) / BASE_UNITS

    def decide(self, agent: int, u1: float, u2: float) -> tuple[Any, ...] | None:
        if self.event.resolved:
            return None
        m = self.market
        local = agent - self.start_row
        k = len(self.outcomes)
        pick = min(int(u1 * 2 * k), 2 * k - 1)
        s = pick >> 1
        g = self.outcomes[s]
        r = float(self.reservation(agent)[s])
        if not math.isfinite(r):
            return None
        ref = m.reference_price(g)
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
        p = m.price_of(ticks)
        h = m._h[agent]
        money = float(h[m._num]) / BASE_UNITS
        held = np.asarray(h[self.outcomes], dtype=np.float64) / BASE_UNITS
        if buy:
            bounds = (0.0, (money + (float(held.min()) if self.sets else 0.0)) / p)
        else:
            bounds = (-(float(held[s]) + (money if self.sets else 0.0)), 0.0)
        q = desired_trade(
            self.beliefs[local],
            held + money,
            s,
            p,
            self.pop.risk,
            self.aversion[local],
            bounds,
        )
        size = abs(q)
        lots = min(self.cap, int(self.step * size / self.lot + _EPS))
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
        event, m = self.event, self.market
        if event.resolved:
            return
        local = agent - self.start_row
        if not 0 <= local < self.n:
            self.desk._check(agent)
        old_g, old = self.resting[local]
        if old:
            self.desk.cancel(agent, old_g, old)
            self.resting[local] = (0, 0)
        if self.sets:
            if buy:
                short = lots * ticks * m.tick_base - m.free_cash(agent)
                if short > 0:
                    event.redeem(agent, short)
            else:
                short = lots * m.lot_base - m.free_goods(agent, g)
                if short > 0:
                    event.issue(agent, short)
        oid = m._replace(agent, g, 0, buy, lots, ticks)
        if oid:
            self.resting[local] = (g, oid)


class InformedTrader(BeliefTrader):
    """Belief traders trading on their posterior after a private signal of the outcome."""

    name = "informed"
    options: ClassVar[Mapping[str, Option]] = {
        **_belief_options(),
        "accuracy": Option(1.0, "probability that the signal names the true outcome", _UNIT),
    }

    def __init__(self, market: OrderBookMarket, slot: PopulationSlot) -> None:
        super().__init__(market, slot)
        accuracy = self.opts["accuracy"]
        k = len(self.outcomes)
        # nature's signals, drawn as lmsr draws them
        rng = market.ctx.streams.generator(f"lmsr:{slot.name}:signals")
        right = rng.random(self.n) < accuracy
        wrong = (self.event.outcome + 1 + rng.integers(0, k - 1, self.n)) % k
        signals = np.where(right, self.event.outcome, wrong).astype(np.intp)
        self.beliefs = posterior(self.beliefs, signals, accuracy)


class NoiseTrader(Behaviour):
    """Random liquidity takers: a random fraction of money or shares at the best quote."""

    name = "noise"
    needs_limits = False
    options: ClassVar[Mapping[str, Option]] = {
        **COMMON,
        "max_fraction": Option(0.2, "largest fraction of free money (or shares) per order", _UNIT),
        "sell_probability": Option(0.5, "probability of a sell (when it holds any)", _UNIT),
    }

    def __init__(self, market: OrderBookMarket, slot: PopulationSlot) -> None:
        super().__init__(market, slot)
        self.event = (
            prediction_event_of(market) if isinstance(slot.population, BeliefTraders) else None
        )
        self.goods = list(market._traded)
        self.top = self.opts["max_fraction"]
        self.p_sell = self.opts["sell_probability"]

    def decide(self, agent: int, u1: float, u2: float) -> tuple[Any, ...] | None:
        if self.event is not None and self.event.resolved:
            return None
        m = self.market
        k = len(self.goods)
        x = u1 * k
        j = min(int(x), k - 1)
        g = self.goods[j]
        book = m._books[g]
        free = m.free_goods(agent, g)
        # the fractional part of u1 k is uniform and independent of the good it picked
        if x - j < self.p_sell and free >= m.lot_base:
            best = book.best_bid
            lots = int(u2 * self.top * free) // m.lot_base
            buy = False
        else:
            best = book.best_ask
            if best is None:
                return None
            lots = int(u2 * self.top * m.free_cash(agent)) // (best * m.tick_base)
            buy = True
        if best is None or lots < 1:
            return None
        return agent, g, buy, best, lots

    def execute(self, order: tuple[Any, ...]) -> None:
        self.place(order)

    def place(self, order: tuple[Any, ...]) -> None:
        agent, g, buy, ticks, lots = order
        if self.event is not None and self.event.resolved:
            return
        if not 0 <= agent - self.start_row < self.n:
            self.desk._check(agent)
        self.market._limit(agent, g, buy, lots, ticks, "ioc")


class Passive(External):
    """Never trades on its own (the book's ``external``: act through handles)."""

    name = "passive"


def _orders(value: Any) -> tuple[tuple[float, int, str, float], ...]:
    out = []
    for entry in value or ():
        try:
            time, who, outcome, shares = entry
            out.append((float(time), int(who), str(outcome), float(shares)))
        except (TypeError, ValueError):
            raise ValueError(f"order {entry!r} must be (time, agent, outcome, shares)") from None
    return tuple(out)


class ScriptedTrader(Behaviour):
    """Replays ``orders`` ``(time, agent, outcome, shares)`` as market orders."""

    name = "scripted"
    needs_limits = False
    options: ClassVar[Mapping[str, Option]] = {
        **COMMON,
        "orders": Option((), "orders [(time, agent, outcome, shares), ...]", _orders),
    }

    def __init__(self, market: OrderBookMarket, slot: PopulationSlot) -> None:
        super().__init__(market, slot)
        names = [market._goods[j] for j in market._traded]
        plan: list[tuple[float, int, int, bool, int]] = []
        for time, who, outcome, shares in self.opts["orders"]:
            if outcome not in names:
                raise UnknownName("outcome in a scripted order", outcome, names)
            if not 0 <= who < self.n:
                raise InvalidParameter(f"scripted agent(={who}) not in population {slot.name!r}")
            lots = round(abs(shares) / market.lot)
            if abs(lots * market.lot - abs(shares)) > 1e-9 * max(1.0, abs(shares)):
                raise InvalidParameter(
                    f"scripted shares(={shares}) of population {slot.name!r} must be a whole "
                    f"number of lots (lot = {market.lot})"
                )
            if lots:
                g = market._goods.index(outcome)
                plan.append((time, self.start_row + who, g, shares > 0, lots))
        self.plan = sorted(plan, key=lambda o: o[0])
        pop = slot.population
        self.event = prediction_event_of(market) if isinstance(pop, BeliefTraders) else None

    def start(self, env: simpy.Environment) -> None:
        env.process(self._replay(env))

    def _replay(self, env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        for time, agent, g, buy, lots in self.plan:
            if time > env.now:
                yield env.timeout(time - env.now)
            if self.event is not None and self.event.resolved:
                return
            self.actions += 1
            self.market._market(agent, g, buy, lots)


BEHAVIOURS.update(
    {
        "belief": BeliefTrader,
        "informed": InformedTrader,
        "noise": NoiseTrader,
        "passive": Passive,
        "scripted": ScriptedTrader,
    }
)
