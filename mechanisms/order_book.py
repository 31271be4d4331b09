"""Continuous double auction: one limit order book per good against the numeraire.

Matching is done by the pure engine :class:`mechanisms._book.OrderBook` (price-time priority,
trades at the resting order's price, self-trade prevention by cancelling the resting order).
This module wraps it for a run:

* **Units.** Prices are integer ticks of ``tick`` numeraire per unit; quantities are integer lots
  of ``lot`` units. A lot is ``lot_base = lot * 10**9`` base units of the good and one tick on one
  lot is ``tick_base = tick * lot * 10**9`` base units of the numeraire, both integers (checked),
  so a fill of ``q`` lots at ``p`` ticks moves exactly ``q * lot_base`` of the good and
  ``p * q * tick_base`` of the numeraire through :meth:`mktsim.ledger.Ledger.trade`.
* **Reservations.** A buy reserves its full limit value in cash and a sell its quantity in goods
  at submission, so no agent can commit more than it holds (no short selling, no borrowing).
  Fills release the reservation of the filled part and settle; cancels, expiries and unfilled
  remainders release the rest. A market buy is protected: it runs as immediate-or-cancel at the
  highest price the agent's free cash pays for the whole quantity.
* **Agents act through the protocol** (:meth:`OrderBookMarket.submit`), or through a
  :class:`TraderHandle` bound to one agent (unit-level API: good names, prices and quantities in
  units) when driven by hand.
  Only an order's owner can cancel or modify it. Bad orders come back as a rejected
  :class:`mktsim.orders.Receipt` with a reason and are recorded in the ``orders`` table; they
  never change the book or anyone's holdings.
* **Recording.** Every ``record_interval`` the ``prices`` table gets one row per good: ``price``
  is the last trade price (the mid before the first trade) and ``estimate`` an exponentially
  weighted moving average of trade prices (weight ``estimate_weight`` on the newest fill; the mid
  before the first trade). Rows start once every good has a price. When every population has a
  price-taking demand (consumers), ``excess_demand`` records the aggregate excess demand at the
  estimated prices given current holdings. ``trades`` comes from the ledger; ``orders`` holds the
  rejected orders (``record_orders="rejected"``), every order event (``"all"``) or nothing.
* **Sessions.** With ``periods > 0`` trading runs in sessions of ``period_length``: at the end of
  each, every resting order is cancelled, induced-value traders redeem and renew their units
  (:mod:`mktsim.induced`), the ledger's round counter advances, and after the last session the run
  ends.

**The market protocol.** ``accepts`` = ``Limit``, ``MarketOrder``, ``Cancel``, ``Modify``;
:meth:`OrderBookMarket.submit` answers each at once with a :class:`mktsim.orders.Receipt` (an
already-processed event; ``pending`` under a latency spike), :meth:`OrderBookMarket.quote` is a
frozen :class:`BookQuote`, :meth:`OrderBookMarket.updated` fires at the next fill, and
:meth:`OrderBookMarket.observe` feeds every shout (:class:`mktsim.market.Shout`).
Consumers and induced-value traders are driven by the shared strategies of
:mod:`mktsim.strategies` through that protocol (``utility`` by default for consumers, ``zi_c``
for induced-value traders, ``zi_u``, ``zip``, ``market_maker``, ``external``; belief traders'
``belief``, ``informed``, ``noise``, ``scripted``, with the run's prediction event; the dealer
market's ``gm_dealer``, ``gm_informed``, ``gm_noise``; the adversaries ``spoofer``,
``wash_trader`` and ``pump_and_dump``; the supply chains' ``firm_limit``, ``source_limit``
and ``final_demand_limit``). Every population is driven by a strategy the run starts; the book
only clears.

Market shocks (:mod:`mktsim.shocks`). They change what reaches the book, never anyone's
holdings, and every refusal they cause is data (a rejected receipt, a row of the ``orders``
table, a count in the summary). Outages, latency spikes and price clamps (and ceilings, floors
and circuit breakers) are the shared wrappers around ``submit`` (:mod:`mktsim.wrappers`), as on
every mechanism; only liquidity withdrawal is the book's own (``supported_shocks``). The book
records what the wrappers refuse in its ``orders`` table as it records its own refusals (they
are also rows of ``shock_refusals`` and counted by reason in the summary's ``rejections``), and
in a run with such shocks a :class:`TraderHandle`'s orders pass the wrappers too, so handles and
strategies meet the same market:

* **Outage** (``time``, ``duration``): the market is closed. Limit, ioc and market orders and
  modifications are refused with reason ``market closed``, so nothing matches. Cancellations are
  accepted (withdrawing an order cannot trade; a behaviour's replace withdraws its old order and
  is refused the new one). Resting orders otherwise stay on the book with their time priority and
  reservations and can trade once the market reopens; lifetimes still expire and session ends
  still clear the book.
* **Latency spike** (``time``, ``duration``, ``delay``): every action sent during the spike
  (orders, cancels, modifications, by handles and behaviours alike) reaches the book ``delay``
  later, in the order it was sent; once the spike ends, new actions queue behind the backlog
  until it has drained, so the book never sees actions out of order. The action is judged when
  it arrives (cash, the outage and the band then). Its caller gets a ``pending`` receipt whose
  ``order_id`` is provisional (negative); cancel and modify accept it and it maps to the book's
  id on arrival (``resting`` answers for it too: NaN while on its way). A cancel or modification
  naming an order that did not rest (it traded in full, or was refused) is refused on arrival
  with reason ``the order did not rest: nothing to act on``.
* **Price clamp** (``good``, ``price``, ``duration``): a price band, the book's circuit breaker.
  While it holds, the good trades only at prices in ``[price (1 - b), price (1 + b)]`` (``b`` =
  option ``clamp_band``), rounded inward to the tick (to the tick nearest ``price`` when that
  leaves none): a limit or ioc order, or a modification, priced outside is refused with reason
  ``outside price band``; a market order runs as ioc at the band's top (a buy) or bottom (a
  sell) for its whole quantity, so a buy is refused when the agent's free cash does not pay it
  at the top. When the clamp starts, resting orders of the good priced outside the band are
  cancelled (action ``band``), so every trade while it holds is at a price within it. A book
  cannot post a price, so "held at ``price``" means: with ``clamp_band=0`` (the default) the
  good trades only at ``price`` itself and whichever side is long queues there in time priority
  (the rationing); with ``b > 0`` it is a limit-up/limit-down band around ``price``.
* **Liquidity withdrawal** (``fraction``): of the ``n`` orders resting on every book, ``k =
  floor(fraction n + 1/2)`` are cancelled and their reservations released: chosen uniformly
  without replacement (``Generator.choice(n, k, replace=False)``) from the run's stream
  ``order_book:liquidity:<i>`` (``i`` counts withdrawals from 0) over the orders listed good by
  good, bids then asks, each side in priority order; action ``withdraw`` in the ``orders`` table.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import simpy
from attrs import frozen
from mktsim.mechanisms._book import OrderBook
from mktsim.mechanisms._book_handles import _BAD_ID, OrderView, _Handles, _to_steps
from mktsim.mechanisms._book_matching import _Matching
from mktsim.mechanisms._book_reading import _Reading
from mktsim.mechanisms._book_records import _Records
from mktsim.mechanisms._book_sessions import _Sessions
from mktsim.mechanisms._book_shocks import CLOSED as CLOSED
from mktsim.mechanisms._book_shocks import OUT_OF_BAND as OUT_OF_BAND
from mktsim.mechanisms._book_shocks import _Shocks
from mktsim.mechanisms._book_state import _ID_LIMIT, _NAN, _REJECTED, _STATUS

from mktsim.errors import InvalidParameter
from mktsim.goods import BASE_UNITS
from mktsim.market import Shout, grid_bases, run_grid, settled, unpriced, whole
from mktsim.mechanism import (
    MarketContext,
    Option,
    boolean,
    parse_options,
    positive_float,
    positive_int,
)
from mktsim.orders import Cancel, Limit, MarketOrder, Modify, Quote, Receipt, new_receipt
from mktsim.recorder import Column

__all__ = [
    "BookQuote",
    "GoodQuote",
    "OrderBookMarket",
    "OrderView",
    "TraderHandle",
]

#: Columns of the mechanism's ``orders`` table (one row per order event recorded).
ORDERS_SCHEMA: dict[str, Column] = {
    "time": Column("float64", None, "simulation time the order reached the book"),
    "agent": Column("int64", None, "agent id (row of the ledger)"),
    "good": Column("category", "goods", "good name (missing for an unknown good)"),
    "action": Column(
        "object",
        None,
        "limit | market | ioc | cancel | modify | expire | clear | withdraw (liquidity "
        "withdrawal) | band (cancelled outside a price clamp's band)",
    ),
    "side": Column("object", None, "buy | sell ('' when unknown)"),
    "price": Column("float64", None, "limit price in numeraire per unit (NaN for none)"),
    "quantity": Column("float64", None, "units asked for (NaN for none)"),
    "order_id": Column("int64", None, "the book's order id (-1 for none)"),
    "status": Column("object", None, "accepted | filled | partial | cancelled | rejected"),
    "reason": Column("object", None, "why it was rejected or cancelled ('' otherwise)"),
    "filled": Column("float64", None, "units traded by this event"),
}


#: Why a good has no price on the book: rows of the prices table start once every good has one.
_NEVER_PRICED = "never traded nor showed both a bid and an ask"


@frozen
class GoodQuote:
    """One book: best bid/ask and last trade (numeraire per unit, ``None`` if absent), the
    quantity at the best prices (units), the price estimate, and L2 depth ``((price, units),
    ...)`` best first."""

    best_bid: float | None
    best_ask: float | None
    last: float | None
    bid_quantity: float
    ask_quantity: float
    estimate: float | None
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]


@frozen
class BookQuote(Quote):
    """What the market shows at ``time``.

    Attributes:
        prices: per non-numeraire good, where the market is (:meth:`OrderBookMarket.
            reference_price`: the geometric mid, one side's best, the last trade; None before
            any).
        goods: a :class:`GoodQuote` per non-numeraire good.
        tick: the price grid (numeraire per unit); limit prices must be multiples of it.
        lot: the quantity grid (units); quantities must be whole lots.
    """

    goods: Mapping[str, GoodQuote]
    tick: float
    lot: float


def _optional_positive(value: Any) -> float | None:
    return None if value in (None, "none", "None") else positive_float(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, str)):
        raise ValueError("must be an integer")
    return int(value)


class OrderBookMarket(_Matching, _Shocks, _Sessions, _Records, _Reading, _Handles):
    """Continuous double auction with one order book per good; see the module docstring.

    Its parts live in sibling modules, one responsibility each: order entry and settlement
    (``_book_matching``), shocks (``_book_shocks``), sessions, expiry and clearing
    (``_book_sessions``), recording (``_book_records``) and reads (``_book_reading``).
    """

    name: ClassVar[str] = "order_book"
    description: ClassVar[str] = (
        "continuous double auction: a limit order book per good against the numeraire "
        "(price-time priority, reservations, Poisson-arriving trader behaviours)"
    )
    behaviours: ClassVar[Mapping[str, str]] = {
        "utility": "quote a small lot around the marginal rate of substitution (consumers)",
        "zi_c": "Gode-Sunder zero intelligence, constrained: random prices never at a loss",
        "zi_u": "Gode-Sunder zero intelligence, unconstrained: random prices on a fixed range",
        "zip": "Cliff's zero-intelligence-plus: adaptive profit margins (Widrow-Hoff, momentum)",
        "market_maker": "two-sided quotes around the book, skewed against its inventory",
        "external": "no process: the agents act only through orders you submit (or handles)",
        "idle": "never trades (drive the agents by hand through submit)",
        "spoofer": (
            "adversary: posts large orders it cancels before they fill to move the mid, and "
            "trades on the other side"
        ),
        "wash_trader": "adversary: pairs of its own agents trading with each other (volume)",
        "pump_and_dump": "adversary: buys aggressively, then sells into the raised price",
        "firm_limit": "bids for inputs at marginal value product, sells its output (firms)",
        "source_limit": "sells a resource flow on a schedule (sources)",
        "final_demand_limit": "standing bids at fixed final prices (final demand)",
        "belief": "quotes outcome shares around its reservation price (belief traders)",
        "informed": "belief trading on the posterior after a private signal (belief traders)",
        "noise": "takes liquidity with random fractions of money or shares (belief traders)",
        "scripted": "replays given orders as market orders (belief traders)",
        "gm_dealer": "Glosten-Milgrom dealer: Bayesian bid E[V|sell] and ask E[V|buy]",
        "gm_informed": "knows the asset's value: buys below it, sells above it (dealer market)",
        "gm_noise": "buys at the ask or sells at the bid, 1/2 each (dealer market)",
    }
    #: Behaviour names it has always taken -> the shared strategies they mean here.
    aliases: ClassVar[Mapping[str, str]] = {
        "passive": "idle",
        "firm": "firm_limit",
        "source": "source_limit",
        "final_demand": "final_demand_limit",
    }
    #: Only liquidity withdrawal is the book's own; outages, latency spikes and price controls
    #: are the shared wrappers of :mod:`mktsim.wrappers`.
    supported_shocks: ClassVar[tuple[str, ...]] = ("liquidity",)
    accepts: ClassVar[frozenset[type]] = frozenset({Limit, MarketOrder, Cancel, Modify})
    options: ClassVar[Mapping[str, Option]] = {
        "tick": Option(0.001, "price tick, numeraire per unit", positive_float),
        "lot": Option(0.001, "lot size, units of a good per lot", positive_float),
        "rate": Option(1.0, "default actions per agent per unit of time", positive_float),
        "order_lifetime": Option(
            None, "time after which a resting order expires (None: never)", _optional_positive
        ),
        "clear_on_trade": Option(
            False, "cancel every resting order of a good after each trade in it", boolean
        ),
        "periods": Option(
            0,
            "trading sessions (0: one session until the horizon)",
            _count,
            check=lambda v: None if v >= 0 else "must be >= 0",
        ),
        "period_length": Option(100.0, "length of a session in simulation time", positive_float),
        "record_interval": Option(1.0, "time between rows of the prices table", positive_float),
        "record_orders": Option(
            "rejected",
            "orders table: rejected | all | none",
            str,
            choices=("rejected", "all", "none"),
        ),
        "estimate_weight": Option(
            0.02,
            "weight of the newest trade price in the price estimate",
            float,
            check=lambda v: None if 0 < v <= 1 else "must be in (0, 1]",
        ),
        "depth": Option(
            5,
            "price levels per side in quote()",
            positive_int,
        ),
        "clamp_band": Option(
            0.0,
            "relative half-width of a price clamp's band (0: trade only at the clamp price)",
            float,
            check=lambda v: None if 0 <= v < 1 else "must be in [0, 1)",
        ),
    }

    def summary(self) -> dict[str, Any]:
        """The book's tallies (:meth:`_Reading.summary`), and the goods it never priced."""
        never = [self.ctx.goods.names[j] for j in self._traded if self._estimate(j) is None]
        return {**super().summary(), **unpriced(self.ctx.recorder, never, _NEVER_PRICED)}

    def __init__(self, **options: Any) -> None:
        self.opts = parse_options(self.name, self.options, options)
        tick, lot = self.opts["tick"], self.opts["lot"]
        self.tick: float = tick
        self.lot: float = lot
        # The grids in base units are the run's (set on attaching; these are the defaults').
        self.base_units: float = BASE_UNITS
        self.lot_base, self.tick_base = grid_bases(tick, lot, BASE_UNITS, exact=False)
        inv = 1.0 / tick
        # Prices reported as ticks / (ticks per unit) when that is an integer: fewer float
        # artefacts (1.234 rather than 1.2340000000000002).
        self._ticks_per_unit: int | None = whole(inv)
        self._tick_price = self.price_of(1)  # numeraire per unit of one tick
        # Limit prices and quantities already checked on the grids -> ticks and lots.
        self._ticks_of: dict[float, int] = {}
        self._lots_of: dict[float, int] = {}
        self.actions = 0
        self.counts = dict.fromkeys(
            (
                "orders",
                "rejected",
                "fills",
                "cancels",
                "expired",
                "cleared",
                "delayed",
                "refused_closed",
                "refused_band",
                "band_cancelled",
                "withdrawn",
            ),
            0,
        )
        self._withdrawals = 0  # liquidity withdrawals so far (each draws from its own stream)
        # The outermost shock wrapper around the book, if any: handles send orders through it.
        self._front: Any = None
        self.sessions_run = 0
        self.behaviour_names: dict[str, str] = {}
        self._observers: list[Callable[[Shout], None]] = []
        self._tell = False
        self._updated: simpy.Event | None = None
        #: Market-wide services that behaviours share, by name (e.g. a prediction market's
        #: event, which issues complete sets and resolves); each adds its ``summary()``.
        self.services: dict[str, Any] = {}

    # ---- attaching ----------------------------------------------------------------------
    def attach(self, ctx: MarketContext) -> None:
        self.ctx = ctx
        self._env = ctx.env
        self.base_units = ctx.goods.base_units
        self.lot_base, self.tick_base = run_grid(ctx, self.tick, self.lot, self.name)
        ctx.check_step("record_interval", self.opts["record_interval"], "rows of prices")
        self._ledger = ctx.ledger
        goods = ctx.goods
        self._num = goods.numeraire_index
        self._g = len(goods)
        self._goods = goods.names
        self._traded = [j for j in range(self._g) if j != self._num]
        self._index = {goods.names[j]: j for j in self._traded}
        self._numeraire_name = goods.names[self._num]
        # One book per good; the numeraire's slot holds an unused empty book so that the hot
        # path indexes a plain list (handles and behaviours never address the numeraire).
        self._books: list[OrderBook] = [OrderBook(name) for name in goods.names]
        n = ctx.ledger.n_accounts
        # Reservations in base units, Python ints in lists: they are updated on every order and
        # every fill, and list item updates cost a fraction of numpy scalar updates. Goods are
        # reserved per good, then per agent (``_rg[good][agent]``): one list per good, not one
        # per agent, so a large population adds no objects for the garbage collector to walk.
        self._rc: list[int] = [0] * n
        self._rg: list[list[int]] = [[0] * n for _ in range(self._g)]
        self._n_agents = ctx.scenario.n_agents
        # Read-only views of the ledger's holdings; the memoryview reads scalars fastest. (A
        # ledger that opened new accounts would need fresh views: the order book opens none.)
        self._h = ctx.ledger.holdings
        self._hv = memoryview(self._h)  # type: ignore[arg-type]
        self._last: list[float | None] = [None] * self._g
        # reference_prices' kept prices, and the book version each was read at (-1: none)
        self._kept: list[float | None] = [None] * self._g
        self._kept_at: list[int] = [-1] * self._g
        self._est: list[float | None] = [None] * self._g
        self._w = self.opts["estimate_weight"]
        self._lifetime: float | None = self.opts["order_lifetime"]
        self._expiry: deque[tuple[float, int, int, int]] = deque()
        self._clear = self.opts["clear_on_trade"]
        self._record_all = self.opts["record_orders"] == "all"
        self._record_rejected = self.opts["record_orders"] != "none"
        # Whether an order's outcome must be recorded or told (every order recorded, or
        # someone listening): when not, an order that rests untouched takes the short path.
        self._tell = self._record_all or bool(self._observers)
        if self._record_rejected:
            ctx.recorder.add_table("orders", ORDERS_SCHEMA)
        self._append = ctx.recorder.append_row
        self._seen = ctx.ledger.version  # holdings changes the market has accounted for
        periods = self.opts["periods"]
        if periods:
            ctx.ledger.round = 0
        # Every population is driven by a strategy the run starts (mktsim.pairing).
        for slot in ctx.slots:
            if slot.name in ctx.strategies:
                self.behaviour_names[slot.name] = ctx.strategies[slot.name][0].name
        # Excess demand of holdings at the prices: an exchange economy's distance from clearing.
        # A supply chain's goods flow (stocks in transit are neither demand nor supply), so its
        # report measures prices against the derivatives instead.
        flows = any(s.population.kind in ("firms", "source", "final_demand") for s in ctx.slots)
        demand = all(hasattr(s.population, "aggregate_demand") for s in ctx.slots)
        self._demand_slots = ctx.slots if demand and not flows else ()
        ctx.env.process(self._sampler())
        if periods:
            ctx.env.process(self._sessions(periods, self.opts["period_length"]))

    # ---- public interface -----------------------------------------------------------------
    def handle(self, agent: int) -> TraderHandle:
        """A handle through which ``agent`` (a ledger row) trades; it can touch only its own
        orders and holdings."""
        if isinstance(agent, bool) or not isinstance(agent, (int, np.integer)):
            raise InvalidParameter(f"agent(={agent!r}) must be an integer agent id")
        if not 0 <= agent < self._n_agents:
            raise InvalidParameter(f"agent(={agent}) must be in [0, {self._n_agents})")
        return TraderHandle(self, int(agent))

    def observe(self, listener: Callable[[Shout], None]) -> None:
        """Call ``listener(shout)`` after every order that reaches a book (limit, ioc, market,
        or a modification that re-enters it), before its receipt is handed back."""
        self._observers.append(listener)
        self._tell = True

    @property
    def rate(self) -> float:
        """Default actions per agent per unit of time (option ``rate``)."""
        return float(self.opts["rate"])

    def updated(self) -> simpy.Event:
        """An event that fires at the next fill (its value: None)."""
        if self._updated is None:
            self._updated = self._env.event()
        return self._updated

    def submit(self, order: Any) -> simpy.Event:
        """Take one protocol order (:class:`~mktsim.orders.Limit`, ``MarketOrder``, ``Cancel``,
        ``Modify``); the returned event is already processed, its value the
        :class:`~mktsim.orders.Receipt`."""
        kind = type(order)
        if kind is Limit:
            # Prices and quantities seen before on the grids map straight to ticks and lots.
            g = self._index.get(order.good)
            ticks = self._ticks_of.get(order.price)
            lots = self._lots_of.get(order.qty)
            agent = order.agent
            if g is None or ticks is None or lots is None or agent >= self._n_agents:
                return settled(self._env, self._submit_limit(order))
            buy = order.side == "buy"
            r = self._limit(agent, g, buy, lots, ticks, "ioc" if order.ioc else "limit")
            if r[2]:
                return settled(self._env, self._order_receipt(r, buy))
            return settled(self._env, self._untraded_receipt(r))  # it rests, or was refused
        if kind is Cancel:
            g = self._index.get(order.good)
            agent, oid = order.agent, order.order_id
            if (
                g is None
                or agent >= self._n_agents
                or type(oid) is not int
                or not 0 < oid < _ID_LIMIT
            ):
                return settled(self._env, self._submit(order))
            # _cancel written out: a strategy's withdraw-and-post sends one per action
            r = self._books[g].cancel(agent, oid)
            if r[1] is _REJECTED:
                self._log_result(agent, g, "cancel", None, None, None, r, oid)
            else:
                self.counts["cancels"] += 1
                c = r[3][0]
                if c[2] == "buy":
                    self._rc[agent] -= c[3] * c[4] * self.tick_base  # type: ignore[operator]
                else:
                    self._rg[g][agent] -= c[4] * self.lot_base
                if self._record_all:
                    self._log_result(agent, g, "cancel", None, None, None, r, oid)
            return settled(self._env, self._untraded_receipt(r))
        return settled(self._env, self._submit(order))

    def _untraded_receipt(self, r: Any) -> Receipt:
        """The receipt of a result that traded nothing (an order resting or refused, a cancel)."""
        status = r[1]
        return new_receipt(
            (_STATUS.get(status) or str(status), r[0], r[4], 0.0, _NAN, 0.0, r[5] * self.lot)
        )

    def _submit(self, order: Any) -> Receipt:
        kind = type(order)
        agent = getattr(order, "agent", -1)  # an order type without one is refused below
        if kind not in self.accepts:
            return self._refuse_order(order, f"order_book does not take {kind.__name__} orders")
        g = self._index.get(order.good)
        if g is None:
            bad = (
                f"{order.good!r} is the numeraire: it is what the books trade against"
                if order.good == self._goods[self._num]
                else f"unknown good {order.good!r}; valid: {', '.join(self._index)}"
            )
            return self._refuse_order(order, bad)
        if not agent < self._n_agents:
            return self._refuse_order(order, f"agent(={agent}) must be in [0, {self._n_agents})")
        if kind is Limit:
            lots, bad = _to_steps(order.qty, self.lot, "quantity", "a whole number of lots")
            ticks, bad2 = _to_steps(order.price, self.tick, "price", "on the tick")
            if bad or bad2:
                return self._refuse_order(order, bad or bad2, g)
            buy = order.side == "buy"
            r = self._limit(agent, g, buy, lots, ticks, "ioc" if order.ioc else "limit")  # type: ignore[arg-type]
            return self._order_receipt(r, buy)
        if kind is Cancel:
            oid = self._order_id(order.order_id)
            if oid is None:
                return self._refuse_order(order, _BAD_ID.format(order.order_id), g)
            return self._order_receipt(self._cancel(agent, g, oid), None)
        if kind is MarketOrder:
            lots, bad = _to_steps(order.qty, self.lot, "quantity", "a whole number of lots")
            if bad:
                return self._refuse_order(order, bad, g)
            buy = order.side == "buy"
            return self._order_receipt(self._market(agent, g, buy, lots), buy)  # type: ignore[arg-type]
        oid = self._order_id(order.order_id)
        lots = ticks = None
        bad = "" if oid is not None else _BAD_ID.format(order.order_id)
        if not bad and order.qty is None and order.price is None:
            bad = "modify needs a quantity or a price"
        if not bad and order.qty is not None:
            lots, bad = _to_steps(order.qty, self.lot, "quantity", "a whole number of lots")
        if not bad and order.price is not None:
            ticks, bad = _to_steps(order.price, self.tick, "price", "on the tick")
        if bad:
            return self._refuse_order(order, bad, g)
        assert oid is not None
        buy = self._side_of(g, oid)
        return self._order_receipt(self._modify(agent, g, oid, lots, ticks), buy)

    def quote(self) -> BookQuote:
        self._expire()
        out = {}
        depth = self.opts["depth"]
        lot = self.lot
        prices = {}
        for j in self._traded:
            book = self._books[j]
            q = book.quote()
            d = book.depth(depth)
            px = self.price_of
            prices[self._goods[j]] = self.reference_price(j)
            out[self._goods[j]] = GoodQuote(
                None if q.best_bid is None else px(q.best_bid),
                None if q.best_ask is None else px(q.best_ask),
                self._last[j],
                q.bid_qty * lot,
                q.ask_qty * lot,
                self._estimate(j),
                tuple((px(p), v * lot) for p, v in d.bids),
                tuple((px(p), v * lot) for p, v in d.asks),
            )
        return BookQuote(float(self._env.now), prices, out, self.tick, self.lot)


class TraderHandle:
    """One agent's access to the market, in units; see :class:`OrderBookMarket`.

    Prices are numeraire per unit and must lie on the tick; quantities are units and must be
    whole lots. Every call returns a :class:`mktsim.orders.Receipt`; refusals are receipts with
    status ``rejected`` and a reason (also recorded in the ``orders`` table).
    """

    __slots__ = ("agent", "market")

    def __init__(self, market: OrderBookMarket, agent: int) -> None:
        self.market = market
        self.agent = agent

    def __repr__(self) -> str:
        return f"TraderHandle(agent={self.agent})"

    # -- orders
    def limit(self, good: str, side: str, quantity: float, price: float) -> Receipt:
        """Limit order: trade what crosses, rest the remainder."""
        return self.market.agent_order(self.agent, "limit", good, side, quantity, price)

    def ioc(self, good: str, side: str, quantity: float, price: float) -> Receipt:
        """Immediate-or-cancel: trade what crosses up to ``price``, cancel the rest."""
        return self.market.agent_order(self.agent, "ioc", good, side, quantity, price)

    def market_order(self, good: str, side: str, quantity: float) -> Receipt:
        """Market order: trade up to ``quantity`` at the best prices; never rests. A market
        buy trades at prices up to what the agent's free cash pays for the whole quantity."""
        return self.market.agent_order(self.agent, "market", good, side, quantity, None)

    def cancel(self, good: str, order_id: int) -> Receipt:
        """Cancel one of this agent's resting orders."""
        return self.market.agent_cancel(self.agent, good, order_id)

    def modify(
        self, good: str, order_id: int, quantity: float | None = None, price: float | None = None
    ) -> Receipt:
        """Change the remaining quantity and/or price of one of this agent's resting orders.
        Lowering the quantity keeps time priority; anything else re-enters the order (same id)
        and may trade at once."""
        return self.market.agent_modify(self.agent, good, order_id, quantity, price)

    # -- reading
    def orders(self, good: str | None = None) -> list[OrderView]:
        """This agent's resting orders (of one good or all), in units (orders still on their
        way to the book during a latency spike are not resting yet)."""
        return self.market.agent_orders(self.agent, good)

    def holdings(self) -> dict[str, float]:
        """Everything the agent holds (reserved included), in units."""
        return self.market.agent_holdings(self.agent)

    def free(self) -> dict[str, float]:
        """What the agent holds beyond its resting orders' reservations, in units."""
        return self.market.agent_free(self.agent)

    def quote(self) -> BookQuote:
        return self.market.quote()
