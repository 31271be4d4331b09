"""Order-book behaviours of the Glosten-Milgrom (1985) dealer market (:mod:`mktsim.dealer`).

The market trades one asset against money. Its true value ``V`` (``v_low`` or ``v_high``) is
one per run, shared by every behaviour through the market's ``services`` (:class:`TrueValue`,
service ``dealer_market``): drawn from the run's stream ``dealer_market:value`` with
P(V = v_high) = ``prior``, or forced with option ``value``.

* ``gm_dealer``: one agent quoting a bid and an ask of ``order_size`` units (None: one lot) at
  the Bayesian values :func:`gm_quotes` of its belief ``pi`` = P(V = v_high), the bid rounded
  down to the tick and the ask up (and at least one tick above the bid). It learns of trades
  from the market's listeners (:meth:`OrderBookMarket.subscribe`): after every order that
  traded it compares its holdings of the asset with what it last saw; a fall means a buyer
  arrived, a rise a seller, and it updates ``pi`` once (:func:`gm_posterior`: one arrival is
  one trade, however many lots it took) and re-quotes at once through the market's
  ``_replace`` (withdraw, then post), as the other behaviours do. Its arrival process
  (``rate``) only re-posts quotes something else removed (a session end, a liquidity
  withdrawal). It knows ``mu``, ``v_low``, ``v_high`` and ``prior`` from its options, and its
  first belief is ``prior``; it acts without latency. It treats every change of its holdings
  as one arrival, so other liquidity providers are outside the model. Every posting is a row
  of the ``quotes`` table.
* ``gm_informed``: at each arrival the agent buys one order (``order_size`` units; None: one
  lot) at the best ask if it is below ``V``, or sells at the best bid if it is above ``V``,
  as an immediate-or-cancel order at that price; otherwise it does nothing.
* ``gm_noise``: at each arrival the agent buys at the best ask or sells at the best bid with
  probability 1/2 each (immediate-or-cancel; nothing if that side is empty).

**Arrivals.** Each population's arrivals are Poisson with total rate ``rate x size``; the model's
mixture (a fraction ``mu`` of arrivals informed) holds when the informed and noise populations'
total rates are in proportion ``mu : 1 - mu`` (the scenario sets them so): the merged process
is Poisson and each arrival is informed with probability ``mu``, independently.

The belief is kept as log-odds ``L = ln(pi / (1 - pi))``: a buy adds ``ln((1 + mu)/(1 - mu))``
and a sell subtracts it, which is Bayes' rule exactly and never saturates at 0 or 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import simpy
from mktsim.mechanisms._traders import BEHAVIOURS, COMMON, Behaviour
from scipy.special import expit

from mktsim.errors import InvalidParameter
from mktsim.mechanism import Option, PopulationSlot, in_range, positive_float
from mktsim.recorder import Column

if TYPE_CHECKING:
    from mktsim.mechanisms.order_book import OrderBookMarket

__all__ = [
    "QUOTES_SCHEMA",
    "SERVICE",
    "GMDealer",
    "GMInformed",
    "GMNoise",
    "TrueValue",
    "gm_posterior",
    "gm_quotes",
    "true_value_of",
]

#: Name of the true-value service on the market.
SERVICE = "dealer_market"
_EPS = 1e-9

#: Columns of the ``quotes`` table (one row per posting of the dealer).
QUOTES_SCHEMA: dict[str, Column] = {
    "time": Column("float64", None, "simulation time of the posting"),
    "bid": Column("float64", None, "bid posted, money per unit (NaN if it could not commit)"),
    "ask": Column("float64", None, "ask posted, money per unit (NaN if it could not commit)"),
    "belief": Column("float64", None, "the dealer's P(V = v_high) when it posted"),
    "trades": Column("int64", None, "trades with the dealer so far (Bayesian updates)"),
}


# ---- the model ----------------------------------------------------------------------------
def gm_posterior(belief: float, mu: float, buy: bool) -> float:
    """P(V = v_high) after one trade, from ``belief`` before it.

    P(buy | v_high) = (1 + mu)/2 and P(buy | v_low) = (1 - mu)/2 (informed buy only when the
    value is high; noise traders buy half the time); sells mirror them.
    """
    up, down = (1.0 + mu, 1.0 - mu) if buy else (1.0 - mu, 1.0 + mu)
    num = belief * up
    return num / (num + (1.0 - belief) * down)


def gm_quotes(belief: float, mu: float, v_low: float, v_high: float) -> tuple[float, float]:
    """Zero-profit ``(bid, ask)`` = ``(E[V | sell], E[V | buy])`` at ``belief`` = P(V = v_high),
    money per unit (not rounded to the tick)."""
    width = v_high - v_low
    return (
        v_low + width * gm_posterior(belief, mu, False),
        v_low + width * gm_posterior(belief, mu, True),
    )


# ---- options ------------------------------------------------------------------------------
_probability = in_range(0.0, 1.0, low_open=True, high_open=True)
_mu = in_range(0.0, 1.0, high_open=True)


def _value(value: Any) -> str | None:
    if value in (None, "none", "None", "drawn"):
        return None
    if value not in ("high", "low"):
        raise ValueError("must be 'high', 'low' or None (drawn with P(high) = prior)")
    return str(value)


MODEL: dict[str, Option] = {
    "v_low": Option(90.0, "the asset's low value, money per unit", positive_float),
    "v_high": Option(110.0, "the asset's high value, money per unit", positive_float),
    "prior": Option(0.5, "P(V = v_high), nature's and the dealer's prior", _probability),
    "value": Option(None, "force the true value: high | low (None: drawn)", _value),
}


def _model(opts: Mapping[str, Any]) -> tuple[float, float, float, str | None]:
    return opts["v_low"], opts["v_high"], opts["prior"], opts["value"]


# ---- the true value -----------------------------------------------------------------------
class TrueValue:
    """The asset's value in this run, one per market (made by :func:`true_value_of`)."""

    def __init__(self, market: OrderBookMarket, opts: Mapping[str, Any], who: str) -> None:
        v_low, v_high, prior, forced = _model(opts)
        if not v_low < v_high:
            raise InvalidParameter(f"{who}: v_low(={v_low}) must be below v_high(={v_high})")
        self.v_low, self.v_high, self.prior, self.forced = v_low, v_high, prior, forced
        if forced is None:
            rng = market.ctx.streams.generator(f"{SERVICE}:value")
            self.high = bool(rng.random() < prior)
        else:
            self.high = forced == "high"
        self.value = v_high if self.high else v_low
        goods = market._traded
        if len(goods) != 1:
            names = ", ".join(market._goods[j] for j in goods)
            raise InvalidParameter(
                f"a dealer market trades one asset against money; the scenario has "
                f"{len(goods)} ({names})"
            )
        self.good = goods[0]
        market.ctx.log(
            "true_value",
            f"{market._goods[self.good]} is worth {self.value:g} "
            f"({'forced' if forced else f'drawn, P(high) = {prior:g}'})",
        )

    def check(self, opts: Mapping[str, Any], who: str) -> None:
        """Refuse a behaviour whose model options differ from the market's."""
        mine = (self.v_low, self.v_high, self.prior, self.forced)
        theirs = _model(opts)
        if theirs != mine:
            raise InvalidParameter(
                f"{who}: (v_low, v_high, prior, value)(={theirs}) must be the same for every "
                f"population of the dealer market, here {mine}"
            )

    def summary(self) -> dict[str, Any]:
        return {
            "true_value": self.value,
            "v_low": self.v_low,
            "v_high": self.v_high,
            "prior": self.prior,
            "value_forced": self.forced is not None,
        }


def true_value_of(market: OrderBookMarket, opts: Mapping[str, Any], who: str) -> TrueValue:
    """The market's true value, made on first use (then checked against ``opts``)."""
    service = market.services.get(SERVICE)
    if service is None:
        service = market.services[SERVICE] = TrueValue(market, opts, who)
    else:
        service.check(opts, who)
    return service


# ---- behaviours ---------------------------------------------------------------------------
class _DealerMarketBehaviour(Behaviour):
    """Shared set-up: the model options and the true value."""

    needs_limits = False
    options: ClassVar[Mapping[str, Option]] = {**COMMON, **MODEL}

    def __init__(self, market: OrderBookMarket, slot: PopulationSlot) -> None:
        super().__init__(market, slot)
        who = f"behaviour {self.name} of population {slot.name!r}"
        self.truth = true_value_of(market, self.opts, who)
        self.good = self.truth.good


class GMDealer(_DealerMarketBehaviour):
    """The competitive dealer quoting ``E[V | sell]`` and ``E[V | buy]`` (module docstring)."""

    name = "gm_dealer"
    options: ClassVar[Mapping[str, Option]] = {
        **COMMON,
        **MODEL,
        "mu": Option(0.3, "fraction of informed traders among arrivals", _mu),
    }

    def __init__(self, market: OrderBookMarket, slot: PopulationSlot) -> None:
        super().__init__(market, slot)
        if self.n != 1:
            raise InvalidParameter(
                f"behaviour gm_dealer: population {slot.name!r} must be one agent (the "
                f"competitive dealer), got {self.n}"
            )
        mu = self.opts["mu"]
        self.mu = mu
        self.step = math.log1p(mu) - math.log1p(-mu)  # log-likelihood ratio of a buy
        prior = self.truth.prior
        self.log_odds = math.log(prior) - math.log1p(-prior)
        self.agent = slot.rows.start
        self.trades = 0
        self._held = int(market._hv[self.agent, self.good])
        self._bid = self._ask = 0  # resting order ids (0: none)
        self._quoted: tuple[int, int] | None = None
        self._busy = self._again = False
        market.ctx.recorder.add_table("quotes", QUOTES_SCHEMA)
        market.subscribe(self._on_order)

    @property
    def belief(self) -> float:
        """P(V = v_high) now."""
        return float(expit(self.log_odds))

    def target(self) -> tuple[int, int]:
        """Bid and ask in ticks: :func:`gm_quotes` at the current belief, bid rounded down,
        ask up, ask at least one tick above the bid."""
        t = self.truth
        width = t.v_high - t.v_low
        bid = t.v_low + width * float(expit(self.log_odds - self.step))
        ask = t.v_low + width * float(expit(self.log_odds + self.step))
        b = max(1, math.floor(bid / self.tick + _EPS))
        a = max(b + 1, math.ceil(ask / self.tick - _EPS))
        return b, a

    # -- process
    def start(self, env: simpy.Environment) -> None:
        self.refresh()
        super().start(env)

    def act(self, agent: int, u1: float, u2: float) -> None:
        self.refresh()

    def _act_later(self, agent: int, u1: float, u2: float) -> None:
        self.refresh()

    def _on_order(self, good: int, is_bid: bool, shout: float | None, traded: float | None) -> None:
        if traded is not None and good == self.good:
            self.refresh()

    # -- learning and quoting
    def refresh(self) -> None:
        """Update the belief if the dealer traded since it last looked, then make sure its
        quotes are the ones the belief calls for."""
        if self._busy:  # a notification caused by its own quotes: look again afterwards
            self._again = True
            return
        self._busy = True
        try:
            while True:
                self._again = False
                held = int(self.market._hv[self.agent, self.good])
                if held != self._held:
                    self.log_odds += self.step if held < self._held else -self.step
                    self.trades += 1
                    self._held = held
                self._quote()
                if not self._again:
                    break
        finally:
            self._busy = False

    def _resting(self, order_id: int) -> bool:
        if order_id <= 0:
            return False
        info = self.market.book(self.good).order(order_id)
        return info is not None and info.qty == self.lots

    def _quote(self) -> None:
        bid, ask = self.target()
        if (bid, ask) == self._quoted and self._resting(self._bid) and self._resting(self._ask):
            return
        self.actions += 1
        m, g, agent = self.market, self.good, self.agent
        self._bid = m._replace(agent, g, self._bid, True, self.lots, bid)
        self._ask = m._replace(agent, g, self._ask, False, self.lots, ask)
        self._quoted = (bid, ask)
        m.ctx.recorder.append_row(
            "quotes",
            (
                float(m._env.now),
                m.price_of(bid) if self._bid else math.nan,
                m.price_of(ask) if self._ask else math.nan,
                self.belief,
                self.trades,
            ),
        )


class _Taker(_DealerMarketBehaviour):
    """Traders that take the best quote with an immediate-or-cancel order."""

    def execute(self, order: tuple[Any, ...]) -> None:
        self.place(order)

    def place(self, order: tuple[Any, ...]) -> None:
        agent, g, buy, ticks, lots = order
        if not 0 <= agent - self.start_row < self.n:
            self.desk._check(agent)
        self.market._limit(agent, g, buy, lots, ticks, "ioc")


class GMInformed(_Taker):
    """Informed traders: buy below ``V``, sell above it, else stay out."""

    name = "gm_informed"

    def decide(self, agent: int, u1: float, u2: float) -> tuple[Any, ...] | None:
        book = self.market._books[self.good]
        value = self.truth.value
        a = book.best_ask
        if a is not None and self.market.price_of(a) < value - _EPS:
            return agent, self.good, True, a, self.lots
        b = book.best_bid
        if b is not None and self.market.price_of(b) > value + _EPS:
            return agent, self.good, False, b, self.lots
        return None


class GMNoise(_Taker):
    """Noise traders: buy at the ask or sell at the bid with probability 1/2 each."""

    name = "gm_noise"

    def decide(self, agent: int, u1: float, u2: float) -> tuple[Any, ...] | None:
        book = self.market._books[self.good]
        buy = u1 < 0.5
        best = book.best_ask if buy else book.best_bid
        if best is None:
            return None
        return agent, self.good, buy, best, self.lots


BEHAVIOURS.update({"gm_dealer": GMDealer, "gm_informed": GMInformed, "gm_noise": GMNoise})
