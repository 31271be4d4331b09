"""The Glosten-Milgrom (1985) dealer market as strategies (``gm_dealer``, ``gm_informed``,
``gm_noise``), on any market that takes limit orders (:mod:`mktsim.dealer` has the model).

The market trades one asset against money. Its true value ``V`` (``v_low`` or ``v_high``) is one
per run, a run-wide service every strategy of the market shares (:class:`TrueValue`, service
``dealer_market`` of the run's context): drawn from the run's stream ``dealer_market:value``
with P(V = v_high) = ``prior``, or forced with option ``value``. Every population of the market
must give the same ``v_low``, ``v_high``, ``prior`` and ``value``.

* ``gm_dealer``: one agent quoting a bid and an ask of ``order_size`` units (None: one lot) at
  the Bayesian values :func:`gm_quotes` of its belief ``pi`` = P(V = v_high), the bid rounded
  down to the tick and the ask up (and at least one tick above the bid). It learns of trades
  as the market tells them: where the market feeds its shouts (``observe``, an order book),
  after every order that traded in the asset; elsewhere (a call market) at every ``updated``
  (a clearing). It then compares its holdings of the asset (read from the ledger) with what it
  last saw: a fall means a buyer arrived, a rise a seller, and it updates ``pi`` once
  (:func:`gm_posterior`: one arrival is one trade, however many lots it took) and re-quotes at
  once (it withdraws a quote that still rests, then posts the new one, bid first). Its arrival
  process (``rate``) only re-posts quotes something else removed (a session end, a liquidity
  withdrawal). It knows ``mu``, ``v_low``, ``v_high`` and ``prior`` from its options, and its
  first belief is ``prior``; it acts without latency. It treats every change of its holdings
  as one arrival, so other liquidity providers are outside the model. Every posting is a row
  of the ``quotes`` table.
* ``gm_informed``: at each arrival the agent buys one order (``order_size`` units; None: one
  lot) at the best ask if it is below ``V``, or sells at the best bid if it is above ``V``, as
  an immediate-or-cancel limit order at that price; otherwise it does nothing.
* ``gm_noise``: at each arrival the agent buys at the best ask or sells at the best bid with
  probability 1/2 each (immediate-or-cancel; nothing if that side is empty).

**Arrivals.** Each population's arrivals are Poisson with total rate ``rate x size``, drawn in
chunks from the stream ``<market>:arrivals:<population>`` (gaps, agents and two uniforms per
arrival, as every Poisson strategy draws them). The model's mixture (a fraction ``mu`` of
arrivals informed) holds when the informed and noise populations' total rates are in
proportion ``mu : 1 - mu`` (the scenario sets them so): the merged process is Poisson and each
arrival is informed with probability ``mu``, independently.

Under a batch market (a call market) trades happen only at clearings, at one price: an informed
buyer and a noise seller in the same batch may trade with each other and not with the dealer,
and the dealer learns only from its own fills. The sequential model's figures hold only
approximately there.

The belief is kept as log-odds ``L = ln(pi / (1 - pi))``: a buy adds ``ln((1 + mu)/(1 - mu))``
and a sell subtracts it, which is Bayes' rule exactly and never saturates at 0 or 1.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping
from functools import partial
from typing import Any, ClassVar

import numpy as np
import simpy
from scipy.special import expit

from mktsim.errors import InvalidParameter
from mktsim.mechanism import MarketContext, Option, PopulationSlot, in_range, positive_float
from mktsim.orders import BUY, SELL, Cancel, Limit
from mktsim.recorder import Column
from mktsim.strategies._arrivals import (
    CHUNK,
    COMMON,
    DEFAULT_LOT,
    DEFAULT_TICK,
    optional_rate,
    price_of,
)

__all__ = [
    "QUOTES_SCHEMA",
    "SERVICE",
    "GMDealer",
    "GMInformed",
    "GMNoise",
    "TrueValue",
    "gm_posterior",
    "gm_quotes",
    "true_value",
]

#: Name of the true-value service on the run's context.
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

#: Options of every dealer-market strategy: arrivals, latency, size, and the model.
OPTIONS: dict[str, Option] = {
    "rate": COMMON["rate"],
    "latency": COMMON["latency"],
    "order_size": Option(None, "units per order (None: one lot)", optional_rate),
    **MODEL,
}


def _model(opts: Mapping[str, Any]) -> tuple[float, float, float, str | None]:
    return opts["v_low"], opts["v_high"], opts["prior"], opts["value"]


# ---- the true value -----------------------------------------------------------------------
class TrueValue:
    """The asset's value in this run, one per run (made by :func:`true_value`)."""

    def __init__(self, ctx: MarketContext, opts: Mapping[str, Any], who: str) -> None:
        v_low, v_high, prior, forced = _model(opts)
        if not v_low < v_high:
            raise InvalidParameter(f"{who}: v_low(={v_low}) must be below v_high(={v_high})")
        goods = ctx.goods
        traded = [name for name in goods.names if name != goods.numeraire]
        if len(traded) != 1:
            raise InvalidParameter(
                f"a dealer market trades one asset against money; the scenario has "
                f"{len(traded)} ({', '.join(traded)})"
            )
        self.v_low, self.v_high, self.prior, self.forced = v_low, v_high, prior, forced
        if forced is None:
            rng = ctx.streams.generator(f"{SERVICE}:value")
            self.high = bool(rng.random() < prior)
        else:
            self.high = forced == "high"
        self.value = v_high if self.high else v_low
        self.good: str = traded[0]
        self.index = goods.index(self.good)
        ctx.log(
            "true_value",
            f"{self.good} is worth {self.value:g} "
            f"({'forced' if forced else f'drawn, P(high) = {prior:g}'})",
        )

    def check(self, opts: Mapping[str, Any], who: str) -> None:
        """Refuse a strategy whose model options differ from the run's."""
        mine = (self.v_low, self.v_high, self.prior, self.forced)
        theirs = _model(opts)
        if theirs != mine:
            raise InvalidParameter(
                f"{who}: (v_low, v_high, prior, value)(={theirs}) must be the same for every "
                f"population of the dealer market, here {mine}"
            )

    def summary(self) -> dict[str, Any]:
        """Entries of the run's summary (read by :func:`mktsim.dealer.metrics`)."""
        return {
            "true_value": self.value,
            "v_low": self.v_low,
            "v_high": self.v_high,
            "prior": self.prior,
            "value_forced": self.forced is not None,
        }


def true_value(ctx: MarketContext, opts: Mapping[str, Any], who: str) -> TrueValue:
    """The run's true value, made by the first strategy that asks (then checked against the
    options of every other)."""
    service: TrueValue = ctx.service(SERVICE, partial(TrueValue, ctx, opts, who))
    service.check(opts, who)
    return service


# ---- strategies ---------------------------------------------------------------------------
class _DealerMarketStrategy:
    """Shared set-up: options, the true value, the market's grids, Poisson arrivals."""

    name: ClassVar[str] = ""
    doc: ClassVar[str] = ""
    emits: ClassVar[frozenset[type]] = frozenset({Limit})
    serves: ClassVar[frozenset[str]] = frozenset({"dealer_market"})
    options: ClassVar[Mapping[str, Option]] = OPTIONS

    def __init__(
        self, market: Any, ctx: MarketContext, slot: PopulationSlot, options: Mapping[str, Any]
    ) -> None:
        self.market, self.ctx, self.slot = market, ctx, slot
        self.base_units = ctx.goods.base_units
        self.opts = dict(options)
        self.env: simpy.Environment = ctx.env
        pop = slot.population
        self.n = pop.size
        self.start_row = slot.rows.start
        self.truth = true_value(ctx, self.opts, f"strategy {self.name} of population {slot.name!r}")
        self.good = self.truth.good
        quote = market.quote()
        self.tick = float(getattr(quote, "tick", None) or DEFAULT_TICK)
        self.lot = float(getattr(quote, "lot", None) or DEFAULT_LOT)
        size = self.opts["order_size"]
        self.lots = 1 if size is None else max(1, round(size / self.lot))
        self.rate = self.opts["rate"] or float(getattr(market, "rate", 1.0))
        ctx.check_rate("rate", self.rate, self.n, slot.name)
        latency = self.opts["latency"]
        lat = np.asarray(pop.delay if latency is None else latency, dtype=float)
        if lat.ndim == 0:
            lat = np.full(self.n, float(lat))
        if lat.shape != (self.n,):
            raise InvalidParameter(
                f"latency of population {slot.name!r} has {lat.shape[0]} entries for "
                f"{self.n} agents"
            )
        self.latency: list[float] | None = lat.tolist() if (lat > 0).any() else None
        self.actions = 0

    def start(self) -> None:
        self.env.process(self._arrivals())

    def _arrivals(self) -> Generator[simpy.Event, Any, None]:
        prefix = getattr(self.market, "name", "market")
        rng = self.ctx.streams.generator(f"{prefix}:arrivals:{self.slot.name}")
        mean_gap = 1.0 / (self.rate * self.n)
        lo, hi = self.start_row, self.start_row + self.n
        timeout = self.env.timeout
        while True:
            gaps = rng.exponential(mean_gap, CHUNK).tolist()
            who = rng.integers(lo, hi, CHUNK).tolist()
            u1 = rng.random(CHUNK).tolist()
            rng.random(CHUNK)  # a second uniform per arrival, as every Poisson strategy draws
            for i in range(CHUNK):
                yield timeout(gaps[i])
                self.actions += 1
                self.act(who[i], u1[i])

    def act(self, agent: int, u: float) -> None:
        """One arrival of ``agent`` with a uniform draw ``u`` on [0, 1)."""
        raise NotImplementedError


class GMDealer(_DealerMarketStrategy):
    """The competitive dealer quoting ``E[V | sell]`` and ``E[V | buy]`` (module docstring)."""

    name: ClassVar[str] = "gm_dealer"
    doc: ClassVar[str] = "Glosten-Milgrom dealer: Bayesian bid E[V|sell] and ask E[V|buy]"
    emits: ClassVar[frozenset[type]] = frozenset({Limit, Cancel})
    options: ClassVar[Mapping[str, Option]] = {
        **OPTIONS,
        "mu": Option(0.3, "fraction of informed traders among arrivals", _mu),
    }

    def __init__(
        self, market: Any, ctx: MarketContext, slot: PopulationSlot, options: Mapping[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        if self.n != 1:
            raise InvalidParameter(
                f"strategy gm_dealer: population {slot.name!r} must be one agent (the "
                f"competitive dealer), got {self.n}"
            )
        mu = self.opts["mu"]
        self.mu = mu
        self.step = math.log1p(mu) - math.log1p(-mu)  # log-likelihood ratio of a buy
        prior = self.truth.prior
        self.log_odds = math.log(prior) - math.log1p(-prior)
        self.agent = slot.rows.start
        self.trades = 0
        self._j = self.truth.index
        self._hv = memoryview(ctx.ledger.holdings)  # type: ignore[arg-type]
        self._held = self._hv[self.agent, self._j]
        self._num = ctx.goods.numeraire
        self._tick_base = round(self.tick * self.lot * self.base_units)
        self._lot_base = round(self.lot * self.base_units)
        self._bid = self._ask = 0  # resting order ids (0: none)
        # Lots of each quote left, inferred from the holdings where the market cannot say
        # (no ``resting``): the dealer's holdings move only by its own two quotes.
        self._left = {True: 0, False: 0}
        self._quoted: tuple[int, int] | None = None
        self._busy = self._again = False
        self._resting = getattr(market, "resting", None)
        self._available = getattr(market, "available", None)
        ctx.recorder.add_table("quotes", QUOTES_SCHEMA)

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

    # -- processes
    def start(self) -> None:
        self.refresh()
        observe = getattr(self.market, "observe", None)
        if observe is not None:
            observe(self._on_shout)
        else:
            self.env.process(self._watch())
        super().start()

    def act(self, agent: int, u: float) -> None:
        self.refresh()

    def _on_shout(self, shout: Any) -> None:
        if shout.traded is not None and shout.good == self.good:
            self.refresh()

    def _watch(self) -> Generator[simpy.Event, Any, None]:
        """Where the market feeds no shouts: look after each of its updates (clearings)."""
        while True:
            yield self.market.updated()
            self.refresh()

    # -- learning and quoting
    def refresh(self) -> None:
        """Update the belief if the dealer traded since it last looked, then make sure its
        quotes are the ones the belief calls for."""
        if self._busy:  # a shout caused by its own quotes: look again afterwards
            self._again = True
            return
        self._busy = True
        try:
            while True:
                self._again = False
                held = self._hv[self.agent, self._j]
                if held != self._held:
                    sold = held < self._held
                    self.log_odds += self.step if sold else -self.step
                    self.trades += 1
                    moved = -(-abs(held - self._held) // self._lot_base)
                    side = not sold  # a sale filled the ask, a purchase the bid
                    self._left[side] = max(0, self._left[side] - moved)
                    self._held = held
                self._quote()
                if not self._again:
                    break
        finally:
            self._busy = False

    def _units_left(self, order_id: int, buy: bool) -> float:
        """Lots of one of its quotes still resting (NaN while on its way to the market)."""
        if order_id == 0:
            return 0.0
        if self._resting is None:
            return float(self._left[buy])
        left = self._resting(self.agent, self.good, order_id)
        return left / self.lot if left == left else math.nan

    def _whole(self, order_id: int, buy: bool) -> bool:
        """True if the quote rests untouched (all its lots, none traded)."""
        left = self._units_left(order_id, buy)
        return left == left and round(left) == self.lots

    def _quote(self) -> None:
        bid, ask = self.target()
        if (
            (bid, ask) == self._quoted
            and self._whole(self._bid, True)
            and self._whole(self._ask, False)
        ):
            return
        self.actions += 1
        self._bid = self._post(self._bid, True, bid)
        self._ask = self._post(self._ask, False, ask)
        self._quoted = (bid, ask)
        self.ctx.recorder.append_row(
            "quotes",
            (
                float(self.env.now),
                price_of(bid, self.tick) if self._bid else math.nan,
                price_of(ask, self.tick) if self._ask else math.nan,
                self.belief,
                self.trades,
            ),
        )

    def _post(self, old: int, buy: bool, ticks: int) -> int:
        """Withdraw ``old`` if it still rests, then post at most one quote's lots at ``ticks``,
        cut to what the dealer can commit; the new order's id if it rests, else 0."""
        market, agent, good = self.market, self.agent, self.good
        left = self._units_left(old, buy)
        if old and not left <= 0:  # resting, or on its way (NaN)
            market.submit(Cancel(agent, good, old))
        self._left[buy] = 0
        if buy:
            free = (
                self._available(agent, self._num)
                if self._available is not None
                else self._hv[agent, self.ctx.goods.numeraire_index]
            )
            afford = free // (ticks * self._tick_base)
        else:
            free = (
                self._available(agent, good)
                if self._available is not None
                else self._hv[agent, self._j]
            )
            afford = free // self._lot_base
        lots = min(self.lots, int(afford))
        if lots <= 0:
            return 0
        order = Limit(
            agent, good, BUY if buy else SELL, lots * self.lot, price_of(ticks, self.tick)
        )
        receipt = market.submit(order).value
        if not (receipt.resting and receipt.order_id):
            return 0
        self._left[buy] = round(receipt.resting / self.lot)
        return int(receipt.order_id)


class _Taker(_DealerMarketStrategy):
    """Traders who take the best quote with an immediate-or-cancel limit order."""

    def decide(self, agent: int, u: float) -> Limit | None:
        """The order an arrival makes, or None."""
        raise NotImplementedError

    def act(self, agent: int, u: float) -> None:
        order = self.decide(agent, u)
        if order is None:
            return
        delay = 0.0 if self.latency is None else self.latency[agent - self.start_row]
        if delay > 0:
            self.env.timeout(delay).callbacks.append(partial(self._deliver, order))
        else:
            self.market.submit(order)

    def _deliver(self, order: Limit, _: simpy.Event) -> None:
        self.market.submit(order)

    def _take(self, agent: int, buy: bool, price: float) -> Limit:
        side = BUY if buy else SELL
        return Limit(agent, self.good, side, self.lots * self.lot, price, ioc=True)


class GMInformed(_Taker):
    """Informed traders: buy below ``V``, sell above it, else stay out."""

    name: ClassVar[str] = "gm_informed"
    doc: ClassVar[str] = "knows the asset's value: buys below it, sells above it (dealer market)"

    def decide(self, agent: int, u: float) -> Limit | None:
        book = self.market.quote().goods[self.good]
        value = self.truth.value
        a = book.best_ask
        if a is not None and a < value - _EPS:
            return self._take(agent, True, a)
        b = book.best_bid
        if b is not None and b > value + _EPS:
            return self._take(agent, False, b)
        return None


class GMNoise(_Taker):
    """Noise traders: buy at the ask or sell at the bid with probability 1/2 each."""

    name: ClassVar[str] = "gm_noise"
    doc: ClassVar[str] = "buys at the ask or sells at the bid, 1/2 each (dealer market)"

    def decide(self, agent: int, u: float) -> Limit | None:
        book = self.market.quote().goods[self.good]
        buy = u < 0.5
        best = book.best_ask if buy else book.best_bid
        if best is None:
            return None
        return self._take(agent, buy, best)
