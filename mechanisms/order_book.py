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

Market shocks (:mod:`mktsim.shocks`; ``supported_shocks``). They change what reaches the book,
never anyone's holdings, and every refusal they cause is data (a rejected receipt, a row of the
``orders`` table, a count in the summary):

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
  id on arrival.
* **Price clamp** (``good``, ``price``, ``duration``): a price band, the book's circuit breaker.
  While it holds, the good trades only at prices in ``[price (1 - b), price (1 + b)]`` (``b`` =
  option ``clamp_band``), rounded inward to the tick (to the tick nearest ``price`` when that
  leaves none): a limit or ioc order, or a modification, priced outside is refused with reason
  ``outside price band``; a market buy runs as ioc at the band's top and a market sell at its
  bottom. When the clamp starts, resting orders of the good priced outside the band are cancelled
  (action ``band``), so every trade while it holds is at a price within it. A book cannot post a
  price, so "held at ``price``" means: with ``clamp_band=0`` (the default) the good trades only at
  ``price`` itself and whichever side is long queues there in time priority (the rationing); with
  ``b > 0`` it is a limit-up/limit-down band around ``price``.
* **Liquidity withdrawal** (``fraction``): of the ``n`` orders resting on every book, ``k =
  floor(fraction n + 1/2)`` are cancelled and their reservations released: chosen uniformly
  without replacement (``Generator.choice(n, k, replace=False)``) from the run's stream
  ``order_book:liquidity:<i>`` (``i`` counts withdrawals from 0) over the orders listed good by
  good, bids then asks, each side in priority order; action ``withdraw`` in the ``orders`` table.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator, Mapping
from functools import partial
from typing import Any, ClassVar, NamedTuple, cast

import numpy as np
import simpy
from attrs import frozen
from mktsim.mechanisms._book import Cancelled, OrderBook, Result, Status

from mktsim.errors import InvalidParameter
from mktsim.goods import BASE_UNITS
from mktsim.market import Shout, Top, check_grid, settled
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

_REJECTED = Status.REJECTED
#: Status of an action sent during a latency spike, not yet at the book (not an engine status).
_PENDING = cast(Status, "pending")
_NAN = math.nan
#: Refusal reasons of the market shocks.
CLOSED = "market closed"
OUT_OF_BAND = "outside price band"
#: Each engine status as the plain string a receipt carries.
_STATUS: dict[Any, str] = {status: str(status) for status in Status}
#: Most distinct prices (and quantities) whose grid steps a market remembers.
_GRID_MEMO = 1 << 16
_BAD_ID = "order_id(={!r}) must be an integer in [1, 2**63) (or a pending order's provisional id)"
#: Order ids are journalled as int64: a larger id cannot name an order and is refused as data.
_ID_LIMIT = 2**63


class OrderView(NamedTuple):
    """A resting order in units: good, id, side, price (numeraire per unit), quantity (units)."""

    good: str
    order_id: int
    side: str
    price: float
    quantity: float


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


def _integral(x: float) -> int | None:
    """``x`` as an int if it is one to within float rounding, else None."""
    r = round(x)
    return int(r) if r >= 1 and abs(x - r) <= 1e-9 * max(1.0, abs(x)) else None


class OrderBookMarket:
    """Continuous double auction with one order book per good; see the module docstring."""

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
    supported_shocks: ClassVar[tuple[str, ...]] = ("clamp", "latency", "liquidity", "outage")
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

    def __init__(self, **options: Any) -> None:
        self.opts = parse_options(self.name, self.options, options)
        tick, lot = self.opts["tick"], self.opts["lot"]
        lot_base = _integral(lot * BASE_UNITS)
        if lot_base is None:
            raise InvalidParameter(
                f"lot(={lot}) must be a whole number (>= 1) of base units (1e-9 of a unit)"
            )
        tick_base = _integral(tick * lot * BASE_UNITS)
        if tick_base is None:
            raise InvalidParameter(
                f"tick(={tick}) x lot(={lot}) must be a whole number (>= 1) of base units of "
                "the numeraire (1e-9), so fills settle exactly"
            )
        self.tick: float = tick
        self.lot: float = lot
        self.lot_base: int = lot_base
        self.tick_base: int = tick_base
        inv = 1.0 / tick
        # Prices reported as ticks / (ticks per unit) when that is an integer: fewer float
        # artefacts (1.234 rather than 1.2340000000000002).
        self._ticks_per_unit: int | None = _integral(inv)
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
        # Market shocks: set once one is applied, so the order entry points check them only then.
        self._shocked = False
        self._outages: list[tuple[float, float]] = []
        self._latency: list[tuple[float, float, float]] = []
        self._clamps: dict[int, tuple[int, int, float]] = {}  # good -> (lo, hi ticks, end)
        self._withdrawals = 0
        # Latency: actions in flight (delivered in the order sent), when the last one arrives,
        # and provisional ids (< 0) -> (good, the book's id on arrival; 0 if it did not rest).
        self._in_flight = 0
        self._backlog_until = -math.inf
        self._delivering = False
        self._provisional: dict[int, tuple[int, int]] = {}
        self._next_provisional = -1
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
        if not any(getattr(s.population, "creates", ()) for s in ctx.slots):
            rows = ctx.ledger.holdings[: ctx.scenario.n_agents]
            check_grid(rows, ctx.goods.numeraire_index, self.lot_base, self.tick_base, self.name)
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
        # every fill, and list item updates cost a fraction of numpy scalar updates.
        self._rc: list[int] = [0] * n
        self._rg: list[list[int]] = [[0] * self._g for _ in range(n)]
        self._n_agents = ctx.scenario.n_agents
        # Read-only views of the ledger's holdings; the memoryview reads scalars fastest. (A
        # ledger that opened new accounts would need fresh views: the order book opens none.)
        self._h = ctx.ledger.holdings
        self._hv = memoryview(self._h)  # type: ignore[arg-type]
        self._last: list[float | None] = [None] * self._g
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

    def available(self, agent: int, good: str) -> int:
        """Base units of ``good`` (a name) the agent holds beyond its resting orders'
        reservations."""
        j = self._index.get(good)
        if j is None:
            if good == self._numeraire_name:
                return self._hv[agent, self._num] - self._rc[agent]
            j = self.ctx.goods.index(good)  # the numeraire (or an unknown name: raises)
            return self._hv[agent, j] - self._rc[agent]
        return self._hv[agent, j] - self._rg[agent][j]

    def resting(self, agent: int, good: str, order_id: int) -> float:
        """Units of the agent's order ``order_id`` in ``good`` still on the book: 0.0 once it
        has traded, expired or been cancelled (or if it is not the agent's); NaN while a
        latency spike still carries it to the book."""
        g = self._index[good]
        if order_id > 0 and self._ledger.version == self._seen and not self._expiry:
            # Nothing to reconcile or expire first: the common case (a strategy asks on every
            # action whether its previous order still rests).
            return self._books[g].resting_lots(agent, order_id) * self.lot
        if order_id < 0:
            if order_id not in self._provisional:
                return math.nan if order_id > self._next_provisional else 0.0
            order_id = self._resolve(g, order_id)
            if not order_id:
                return 0.0
        if self._ledger.version != self._seen:
            self._reconcile()
        if self._expiry and self._expiry[0][0] <= self._env.now:
            self._expire()
        return self._books[g].resting_lots(agent, order_id) * self.lot

    def updated(self) -> simpy.Event:
        """An event that fires at the next fill (its value: None)."""
        if self._updated is None:
            self._updated = self._env.event()
        return self._updated

    def submit(self, order: Any) -> simpy.Event:
        """Take one protocol order (:class:`~mktsim.orders.Limit`, ``MarketOrder``, ``Cancel``,
        ``Modify``); the returned event is already processed, its value the
        :class:`~mktsim.orders.Receipt` (status ``pending`` with a provisional id while a
        latency spike carries the order)."""
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
            # Nothing traded (it rests, or was refused): the receipt written out.
            status = r[1]
            return settled(
                self._env,
                new_receipt(
                    (
                        _STATUS.get(status) or str(status),
                        r[0],
                        r[4],
                        0.0,
                        _NAN,
                        0.0,
                        r[5] * self.lot,
                    )
                ),
            )
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
            if self._shocked:
                r = self._cancel(agent, g, oid)
            else:  # _cancel written out: a strategy's withdraw-and-post sends one per action
                r = self._books[g].cancel(agent, oid)
                if r[1] is _REJECTED:
                    self._log_result(agent, g, "cancel", None, None, None, r, oid)
                else:
                    self.counts["cancels"] += 1
                    c = r[3][0]
                    if c[2] == "buy":
                        self._rc[agent] -= c[3] * c[4] * self.tick_base  # type: ignore[operator]
                    else:
                        self._rg[agent][g] -= c[4] * self.lot_base
                    if self._record_all:
                        self._log_result(agent, g, "cancel", None, None, None, r, oid)
            status = r[1]
            return settled(
                self._env,
                new_receipt(
                    (
                        _STATUS.get(status) or str(status),
                        r[0],
                        r[4],
                        0.0,
                        _NAN,
                        0.0,
                        r[5] * self.lot,
                    )
                ),
            )
        return settled(self._env, self._submit(order))

    def _submit_limit(self, order: Limit) -> Receipt:
        """A limit order on the grids (the strategies' hot path); anything else is worded by
        :meth:`_submit`."""
        g = self._index.get(order.good)
        agent, qty, price = order.agent, order.qty, order.price
        if g is None or agent >= self._n_agents or type(qty) is not float:
            return self._submit(order)
        lot, tick = self.lot, self.tick
        lots = round(qty / lot)
        if lots < 1 or abs(lots * lot - qty) > 1e-9 * (qty if qty > 1.0 else 1.0):
            return self._submit(order)
        if type(price) is not float:
            return self._submit(order)
        ticks = round(price / tick)
        if ticks < 1 or abs(ticks * tick - price) > 1e-9 * (price if price > 1.0 else 1.0):
            return self._submit(order)
        if len(self._ticks_of) < _GRID_MEMO:
            self._ticks_of[price] = ticks
        if len(self._lots_of) < _GRID_MEMO:
            self._lots_of[qty] = lots
        buy = order.side == "buy"
        r = self._limit(agent, g, buy, lots, ticks, "ioc" if order.ioc else "limit")
        return self._order_receipt(r, buy)

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
            oid = _order_id(order.order_id, self)
            if oid is None:
                return self._refuse_order(order, _BAD_ID.format(order.order_id), g)
            return self._order_receipt(self._cancel(agent, g, oid), None)
        if kind is MarketOrder:
            lots, bad = _to_steps(order.qty, self.lot, "quantity", "a whole number of lots")
            if bad:
                return self._refuse_order(order, bad, g)
            buy = order.side == "buy"
            return self._order_receipt(self._market(agent, g, buy, lots), buy)  # type: ignore[arg-type]
        oid = _order_id(order.order_id, self)
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
        buy = _side_of(self, g, oid)
        return self._order_receipt(self._modify(agent, g, oid, lots, ticks), buy)

    def _refuse_order(self, order: Any, reason: str, g: int = -1) -> Receipt:
        """Record an order refused before it reached a book; its rejected receipt."""
        side = getattr(order, "side", "")
        price = getattr(order, "price", None)
        qty = getattr(order, "qty", None)
        action = {Limit: "ioc" if getattr(order, "ioc", False) else "limit"}.get(
            type(order),
            {MarketOrder: "market", Cancel: "cancel", Modify: "modify"}.get(
                type(order), type(order).__name__.lower()
            ),
        )
        self.record_rejection(
            getattr(order, "agent", -1),
            g,
            action,
            side if side in ("buy", "sell") else "",
            _float_or_nan(price),
            _float_or_nan(qty),
            reason,
        )
        return Receipt("rejected", None, reason)

    def _order_receipt(self, r: Result, buy: bool | None) -> Receipt:
        """The protocol receipt of an engine result (``buy``: the order's side, for the sign
        of the cash)."""
        fills = r[2]
        if not fills:
            return new_receipt(
                (_STATUS.get(r[1]) or str(r[1]), r[0], r[4], 0.0, _NAN, 0.0, r[5] * self.lot)
            )
        lots = sum(f[1] for f in fills)
        value = sum(f[0] * f[1] for f in fills)
        cash = value * self.tick_base / BASE_UNITS
        return new_receipt(
            (
                str(r[1]),
                r[0],
                r[4],
                lots * self.lot,
                value * self.tick / lots,
                -cash if buy is False else cash,
                r[5] * self.lot,
            )
        )

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

    def reference_quote(self) -> Quote:
        """The reference prices alone (:meth:`reference_price` per traded good) as a base
        :class:`~mktsim.orders.Quote`: what :meth:`quote` shows as ``prices``, without the best
        quantities and depth it walks the books for. A strategy that reads only prices on every
        action asks this instead."""
        self._expire()
        goods = self._goods
        return Quote(
            float(self._env.now), {goods[j]: self.reference_price(j) for j in self._traded}
        )

    def top(self, good: str) -> Top:
        """One good's best bid and ask, last trade and estimate, as :meth:`quote` shows them
        (without the depth it walks the book for)."""
        self._expire()
        j = self._index[good]
        book = self._books[j]
        b, a = book.best_bid, book.best_ask
        return Top(
            None if b is None else self.price_of(b),
            None if a is None else self.price_of(a),
            self._last[j],
            self._estimate(j),
        )

    def summary(self) -> dict[str, Any]:
        resting = sum(len(self._books[j]) for j in self._traded)
        actions = self.actions
        return {
            "method": "+".join(sorted(set(self.behaviour_names.values()))) or None,
            "rounds": actions,
            "converged": False,
            "behaviours": dict(self.behaviour_names),
            "actions": actions,
            **{k: int(v) for k, v in self.counts.items()},
            "resting_orders": resting,
            "tick": self.tick,
            "lot": self.lot,
            "clear_on_trade": self._clear,
            "periods": self.opts["periods"],
            "period_length": self.opts["period_length"] if self.opts["periods"] else None,
            "periods_run": self.sessions_run if self.opts["periods"] else None,
            **{k: v for service in self.services.values() for k, v in service.summary().items()},
        }

    # ---- reading (cheap, for behaviours) --------------------------------------------------
    def price_of(self, ticks: int) -> float:
        """Ticks -> numeraire per unit."""
        k = self._ticks_per_unit
        return ticks / k if k is not None else ticks * self.tick

    def free_cash(self, agent: int) -> int:
        """Numeraire the agent holds beyond its reservations, base units."""
        return self._hv[agent, self._num] - self._rc[agent]

    def free_goods(self, agent: int, good: int) -> int:
        """Units of ``good`` the agent holds beyond its reservations, base units."""
        return self._hv[agent, good] - self._rg[agent][good]

    def reserved(self, agent: int) -> tuple[int, list[int]]:
        """(cash, goods per good) reserved by the agent's resting orders, base units."""
        return self._rc[agent], list(self._rg[agent])

    def book(self, good: int) -> OrderBook:
        """The engine of one good (read it; order through a handle or a desk)."""
        if good not in self._traded:
            raise InvalidParameter(
                f"good(={good}) has no book: the traded goods are {self._traded}"
            )
        return self._books[good]

    def reference_price(self, good: int) -> float | None:
        """Where the market is for a good (numeraire per unit): the book's geometric mid
        ``sqrt(bid ask)``; with one side only, its best price (so that traders on that side
        undercut each other, rather than quote around a trade the book has moved away from);
        with an empty book the last trade price; before any, None. Geometric, because a lone
        extreme quote should move it by a ratio, not by its size."""
        book = self._books[good]
        b, a = book.best_bid, book.best_ask
        if b is not None and a is not None:
            return self.price_of(1) * math.sqrt(b * a)
        if b is not None or a is not None:
            return self.price_of(b if a is None else a)  # type: ignore[arg-type]
        return self._last[good]

    def _estimate(self, g: int) -> float | None:
        est = self._est[g]
        if est is not None:
            return est
        book = self._books[g]
        b, a = book.best_bid, book.best_ask
        return None if b is None or a is None else self.price_of(b + a) / 2

    # ---- order entry (ticks and lots; callers have checked the agent) ---------------------
    def _limit(self, agent: int, g: int, buy: bool, lots: int, ticks: int, kind: str) -> Result:
        """Submit a limit (``kind="limit"``) or immediate-or-cancel (``"ioc"``) order."""
        if self._shocked:
            due = self._due()
            if due is not None:
                args = (agent, g, buy, lots, ticks, kind)
                return _pending(self._send_later(due, self._limit, args), lots)
            refused = self._admit(agent, g, kind, buy, lots, ticks)
            if refused is not None:
                return refused
        if self._ledger.version != self._seen:
            self._reconcile()
        if self._expiry and self._expiry[0][0] <= self._env.now:
            self._expire()
        book = self._books[g]
        if buy:
            cost = ticks * lots * self.tick_base
            free = self._hv[agent, self._num] - self._rc[agent]
            if cost > free:
                return self._refuse(
                    agent,
                    g,
                    kind,
                    buy,
                    ticks,
                    lots,
                    f"insufficient cash: needs {cost} base units, {free} free",
                )
            self._rc[agent] += cost
            r = (
                book.limit(agent, "buy", lots, ticks)
                if kind == "limit"
                else book.ioc(agent, "buy", lots, ticks)
            )
        else:
            qty = lots * self.lot_base
            free = self._hv[agent, g] - self._rg[agent][g]
            if qty > free:
                return self._refuse(
                    agent,
                    g,
                    kind,
                    buy,
                    ticks,
                    lots,
                    f"insufficient {self._goods[g]}: needs {qty} base units, {free} free",
                )
            self._rg[agent][g] += qty
            r = (
                book.limit(agent, "sell", lots, ticks)
                if kind == "limit"
                else book.ioc(agent, "sell", lots, ticks)
            )
        if r[2] or r[3] or r[1] is _REJECTED or self._tell:
            return self._after(agent, g, buy, lots, ticks, kind, r)
        # Rested untouched, nothing to record or tell: the common case, kept short.
        self.counts["orders"] += 1
        if r[5] and self._lifetime is not None:
            self._expiry.append((self._env.now + self._lifetime, g, r[0] or 0, agent))
        return r

    def _after(
        self, agent: int, g: int, buy: bool, lots: int, ticks: int, kind: str, r: Result
    ) -> Result:
        """Everything that follows a limit or ioc order reaching the book."""
        self.counts["orders"] += 1
        if not (r[2] or r[3] or self._tell) and r[1] is not _REJECTED:
            # Rested untouched, nothing to record or tell: the common case, kept short.
            if r[5] and self._lifetime is not None:
                self._expiry.append((self._env.now + self._lifetime, g, r[0] or 0, agent))
            return r
        if r[2] or r[3]:
            self._settle(g, r, ticks)
        elif r[1] is _REJECTED:  # cannot happen for checked ints; undo the reservation anyway
            self._unreserve(agent, g, buy, lots, ticks)
        if r[5] and self._lifetime is not None:
            self._expiry.append((self._env.now + self._lifetime, g, r[0] or 0, agent))
        if self._record_all or r[1] is _REJECTED:
            self._log_result(agent, g, kind, buy, ticks, lots, r)
        if self._observers:
            self._notify(g, buy, self.price_of(ticks), r)
        if self._clear and r[2]:
            self.clear(g, "clear")
        return r

    def _replace(self, agent: int, g: int, old: int, buy: bool, lots: int, ticks: int) -> int:
        """Withdraw ``old`` (if it still rests; 0 for none), then post a limit order of at most
        ``lots``, cut to what the agent can commit. The behaviours' hot path (one call where a
        handle makes two). Returns the new order's id if it rests, else 0 (a provisional
        negative id while a latency spike delays it)."""
        if self._shocked:
            due = self._due()
            if due is not None:
                return self._send_later(due, self._replace, (agent, g, old, buy, lots, ticks))
            old = self._resolve(g, old)
            if self._admit(agent, g, "limit", buy, lots, ticks) is not None:
                if old:  # the withdrawal part of the action is accepted
                    self._cancel(agent, g, old, log_rejection=False)
                return 0
        if self._ledger.version != self._seen:
            self._reconcile()
        if self._expiry and self._expiry[0][0] <= self._env.now:
            self._expire()
        book = self._books[g]
        rc, rg = self._rc, self._rg
        if old:
            r = book.cancel(agent, old)
            if r[1] is not _REJECTED:
                self.counts["cancels"] += 1
                c = r[3][0]
                if c[2] == "buy":
                    rc[agent] -= c[3] * c[4] * self.tick_base  # type: ignore[operator]
                else:
                    rg[agent][g] -= c[4] * self.lot_base
                if self._record_all:
                    self._log_result(agent, g, "cancel", None, None, None, r, old)
        if buy:
            unit = ticks * self.tick_base
            afford = (self._hv[agent, self._num] - rc[agent]) // unit
            if afford < lots:
                lots = afford
                if lots <= 0:
                    return 0
            rc[agent] += lots * unit
            r = book.limit(agent, "buy", lots, ticks)
        else:
            afford = (self._hv[agent, g] - rg[agent][g]) // self.lot_base
            if afford < lots:
                lots = afford
                if lots <= 0:
                    return 0
            rg[agent][g] += lots * self.lot_base
            r = book.limit(agent, "sell", lots, ticks)
        if r[2] or r[3] or self._tell or r[1] is _REJECTED:
            self._after(agent, g, buy, lots, ticks, "limit", r)
        else:  # rested untouched: the common case, kept short
            self.counts["orders"] += 1
            if self._lifetime is not None:
                self._expiry.append((self._env.now + self._lifetime, g, r[0] or 0, agent))
        return (r[0] or 0) if r[5] else 0

    def _market(self, agent: int, g: int, buy: bool, lots: int) -> Result:
        band = None
        if self._shocked:
            due = self._due()
            if due is not None:
                return _pending(self._send_later(due, self._market, (agent, g, buy, lots)), lots)
            refused = self._admit(agent, g, "market", buy, lots, None)
            if refused is not None:
                return refused
            band = self._band(g)
        if self._ledger.version != self._seen:
            self._reconcile()
        if self._expiry and self._expiry[0][0] <= self._env.now:
            self._expire()
        book = self._books[g]
        if buy:
            # Protected market buy: the highest limit the free cash pays for every lot.
            limit = (self._hv[agent, self._num] - self._rc[agent]) // (lots * self.tick_base)
            if limit < 1:
                return self._refuse(
                    agent, g, "market", buy, None, lots, "insufficient cash for any price"
                )
            if band is not None:
                limit = min(limit, band[1])  # a price clamp: no higher than the band's top
            self._rc[agent] += limit * lots * self.tick_base
            r = book.ioc(agent, "buy", lots, limit)
            ticks: int | None = limit
        else:
            qty = lots * self.lot_base
            free = self._hv[agent, g] - self._rg[agent][g]
            if qty > free:
                return self._refuse(
                    agent,
                    g,
                    "market",
                    buy,
                    None,
                    lots,
                    f"insufficient {self._goods[g]}: needs {qty} base units, {free} free",
                )
            self._rg[agent][g] += qty
            if band is None:
                r = book.market(agent, "sell", lots)
            else:  # a price clamp: no lower than the band's bottom
                r = book.ioc(agent, "sell", lots, band[0])
            ticks = None
        self.counts["orders"] += 1
        self._settle(g, r, ticks)
        if self._record_all or r[1] is _REJECTED:
            self._log_result(agent, g, "market", buy, None, lots, r)
        if self._observers:
            self._notify(g, buy, None, r)
        if self._clear and r[2]:
            self.clear(g, "clear")
        return r

    def _cancel(self, agent: int, g: int, order_id: int, log_rejection: bool = True) -> Result:
        if self._shocked:
            due = self._due()
            if due is not None:  # (no new id: a cancel creates no order)
                args = (agent, g, order_id, log_rejection)
                self._send_later(due, self._cancel, args, provisional=False)
                return _pending(order_id, 0)
            order_id = self._resolve(g, order_id)
        book = self._books[g]
        r = book.cancel(agent, order_id)
        if r[1] is _REJECTED:
            if log_rejection:
                self._log_result(agent, g, "cancel", None, None, None, r, order_id)
            return r
        self.counts["cancels"] += 1
        c = r[3][0]
        if c[2] == "buy":
            self._rc[agent] -= c[3] * c[4] * self.tick_base  # type: ignore[operator]
        else:
            self._rg[agent][g] -= c[4] * self.lot_base
        if self._record_all:
            self._log_result(agent, g, "cancel", None, None, None, r, order_id)
        return r

    def _modify(
        self, agent: int, g: int, order_id: int, new_lots: int | None, new_ticks: int | None
    ) -> Result:
        if self._shocked:
            due = self._due()
            if due is not None:
                args = (agent, g, order_id, new_lots, new_ticks)
                self._send_later(due, self._modify, args, provisional=False)
                return _pending(order_id, new_lots or 0)
            order_id = self._resolve(g, order_id)
            refused = self._admit(agent, g, "modify", None, new_lots, new_ticks, order_id)
            if refused is not None:
                return refused
        if self._ledger.version != self._seen:
            self._reconcile()
        if self._expiry and self._expiry[0][0] <= self._env.now:
            self._expire()
        book = self._books[g]
        info = book.order(order_id)
        if info is None or info.owner != agent:
            # The engine words the refusal and changes nothing; no reservation is touched.
            r = book.modify(agent, order_id, new_qty=new_lots, new_price=new_ticks)
            self._log_result(agent, g, "modify", None, new_ticks, new_lots, r, order_id)
            return r
        buy = info.side == "buy"
        nq = info.qty if new_lots is None else new_lots
        npr = info.price if new_ticks is None else new_ticks
        reenter = npr != info.price or nq > info.qty
        if reenter:
            # The old order is released by the engine's Cancelled record; the new one needs
            # its full reservation, which may use what the old one frees.
            if buy:
                need = npr * nq * self.tick_base
                free = self.free_cash(agent) + info.price * info.qty * self.tick_base
            else:
                need = nq * self.lot_base
                free = self.free_goods(agent, g) + info.qty * self.lot_base
            if need > free:
                what = "cash" if buy else self._goods[g]
                return self._refuse(
                    agent,
                    g,
                    "modify",
                    buy,
                    npr,
                    nq,
                    f"insufficient {what}: needs {need} base units, {free} free",
                    order_id,
                )
            if buy:
                self._rc[agent] += need
            else:
                self._rg[agent][g] += need
        r = book.modify(agent, order_id, new_qty=new_lots, new_price=new_ticks)
        if r[1] is _REJECTED:
            if reenter:
                self._unreserve(agent, g, buy, nq, npr)
        else:
            self._settle(g, r, npr if buy else None)
        if self._record_all or r[1] is _REJECTED:
            self._log_result(agent, g, "modify", buy, npr, nq, r, order_id)
        if reenter and r[1] is not _REJECTED and self._observers:
            self._notify(g, buy, self.price_of(npr), r)
        if self._clear and r[2]:
            self.clear(g, "clear")
        return r

    def _unreserve(self, agent: int, g: int, buy: bool, lots: int, ticks: int) -> None:
        if buy:
            self._rc[agent] -= ticks * lots * self.tick_base
        else:
            self._rg[agent][g] -= lots * self.lot_base

    def _settle(self, g: int, r: Result, taker_limit: int | None) -> None:
        """Release what left the book and settle the fills (``taker_limit``: the incoming
        buy's limit in ticks, at which its cash was reserved)."""
        rc, rg, tb, lb = self._rc, self._rg, self.tick_base, self.lot_base
        c: Cancelled
        for c in r[3]:
            if c[2] == "buy":
                rc[c[1]] -= c[3] * c[4] * tb  # type: ignore[operator]
            else:
                rg[c[1]][g] -= c[4] * lb
        fills = r[2]
        if not fills:
            return
        trade = self._ledger.trade
        price_of = self.price_of
        est = self._est[g]
        w = self._w
        for f in fills:
            p, q = f[0], f[1]
            cash = p * q * tb
            if f[6] == "buy":
                buyer, seller = f[5], f[3]
                rc[buyer] -= taker_limit * q * tb  # type: ignore[operator]
            else:
                buyer, seller = f[3], f[5]
                rc[buyer] -= cash
            rg[seller][g] -= q * lb
            price = price_of(p)
            trade(buyer, seller, g, q * lb, cash, price)
            est = price if est is None else est + w * (price - est)
        self._est[g] = est
        self._last[g] = price
        self.counts["fills"] += len(fills)
        self._seen = self._ledger.version
        if self._updated is not None:
            event, self._updated = self._updated, None
            event.succeed()

    def _notify(self, g: int, buy: bool, shout: float | None, r: Result) -> None:
        traded = self.price_of(r[2][-1][0]) if r[2] else None
        seen = Shout(float(self._env.now), self._goods[g], "buy" if buy else "sell", shout, traded)
        for observer in self._observers:
            observer(seen)

    def clear(self, good: int | None = None, action: str = "clear") -> int:
        """Cancel every resting order (of one good, or of all), releasing reservations.
        Returns how many orders were cancelled."""
        goods = self._traded if good is None else [good]
        n = 0
        for g in goods:
            book = self._books[g]
            if not len(book):
                continue
            for side in ("buy", "sell"):
                for o in book.orders(side):
                    r = book.cancel(o.owner, o.order_id)
                    self._settle(g, r, None)
                    if self._record_all:
                        self._log_result(o.owner, g, action, None, None, None, r, o.order_id)
                    n += 1
        self.counts["cleared"] += n
        return n

    def _reconcile(self) -> None:
        """Holdings changed outside the market (an endowment shock, a period's renewal): cancel
        every resting order of each agent whose reservations now exceed its holdings, so no
        fill can overdraw it."""
        h = np.asarray(self._h[: self._n_agents])
        reserved = np.array(self._rg, dtype=np.int64)[: self._n_agents]
        reserved[:, self._num] = self._rc[: self._n_agents]
        for agent in np.flatnonzero((reserved > h).any(axis=1)).tolist():
            for g in self._traded:
                book = self._books[g]
                for side in ("buy", "sell"):
                    for o in book.orders(side, owner=agent):
                        r = book.cancel(agent, o.order_id)
                        self._settle(g, r, None)
                        self._log_result(agent, g, "clear", None, None, None, r, o.order_id)
            self.ctx.log("orders_cancelled", f"agent {agent}: holdings fell below its orders")
        self._seen = self._ledger.version

    def _expire(self) -> None:
        """Cancel the orders whose lifetime has run out (checked lazily, whenever the book is
        about to be used or read: nothing can observe an expired order in between)."""
        now = self._env.now
        queue = self._expiry
        while queue and queue[0][0] <= now:
            t, g, oid, owner = queue.popleft()
            book = self._books[g]
            r = book.cancel(owner, oid)
            if r[1] is _REJECTED:  # traded or cancelled before it expired
                continue
            self.counts["expired"] += 1
            self._settle(g, r, None)
            if self._record_all:
                self._append(
                    "orders",
                    (
                        t,
                        owner,
                        g,
                        "expire",
                        r[3][0][2],
                        self.price_of(r[3][0][3] or 0),
                        r[3][0][4] * self.lot,
                        oid,
                        "cancelled",
                        "expired",
                        0.0,
                    ),
                )

    # ---- shocks ---------------------------------------------------------------------------
    def apply_shock(self, shock: Any) -> str:
        """Outage, latency spike, price clamp or liquidity withdrawal (see the module
        docstring). Returns what was done, for the ``events`` table."""
        now = self._env.now
        if shock.kind == "liquidity":
            return self._withdraw(float(shock.fraction))
        if shock.kind == "outage":
            end = now + shock.duration
            self._outages.append((now, end))
            self._shocked = True
            return f"market closed until {end:g}: orders refused, resting orders stay"
        if shock.kind == "latency":
            end = now + shock.duration
            self._latency.append((now, end, shock.delay))
            self._shocked = True
            return f"actions take {shock.delay:g} longer to reach the book until {end:g}"
        if shock.kind == "clamp":
            return self._clamp(shock.good, float(shock.price), shock.duration)
        raise InvalidParameter(f"order_book does not support {shock.kind} shocks")

    def _clamp(self, good: str, price: float, duration: float | None) -> str:
        g = self.ctx.goods.index(good)
        if g == self._num:
            raise InvalidParameter(
                f"clamp on {good!r}: the numeraire has no book (clamp one of "
                f"{', '.join(self._goods[j] for j in self._traded)})"
            )
        width = self.opts["clamp_band"]
        lo = max(1, math.ceil(price * (1.0 - width) / self.tick - 1e-9))
        hi = math.floor(price * (1.0 + width) / self.tick + 1e-9)
        if hi < lo:  # no tick inside: the one nearest the price
            lo = hi = max(1, round(price / self.tick))
        end = math.inf if duration is None else self._env.now + duration
        self._clamps[g] = (lo, hi, end)
        self._shocked = True
        if self._ledger.version != self._seen:
            self._reconcile()
        book = self._books[g]
        outside = [
            o for side in ("buy", "sell") for o in book.orders(side) if not lo <= o.price <= hi
        ]
        for o in outside:
            self._force_cancel(g, o.owner, o.order_id, "band", OUT_OF_BAND)
        self.counts["band_cancelled"] += len(outside)
        return (
            f"{good} trades only in [{self.price_of(lo):g}, {self.price_of(hi):g}] until "
            f"{end:g}; {len(outside)} resting orders outside cancelled"
        )

    def _withdraw(self, fraction: float) -> str:
        """Cancel ``floor(fraction n + 1/2)`` of the ``n`` resting orders, chosen uniformly."""
        if self._ledger.version != self._seen:
            self._reconcile()
        self._expire()
        resting = [
            (g, o)
            for g in self._traded
            for side in ("buy", "sell")
            for o in self._books[g].orders(side)
        ]
        n = len(resting)
        k = math.floor(fraction * n + 0.5)
        rng = self.ctx.streams.generator(f"order_book:liquidity:{self._withdrawals}")
        self._withdrawals += 1
        chosen = sorted(rng.choice(n, size=k, replace=False).tolist()) if k else []
        for i in chosen:
            g, o = resting[i]
            self._force_cancel(g, o.owner, o.order_id, "withdraw", "liquidity withdrawal")
        self.counts["withdrawn"] += k
        return f"{k} of {n} resting orders withdrawn (fraction {fraction:g})"

    def _force_cancel(self, g: int, owner: int, order_id: int, action: str, reason: str) -> None:
        """The market cancels a resting order (a shock), releasing its reservation."""
        r = self._books[g].cancel(owner, order_id)
        self._settle(g, r, None)
        if self._record_all:
            c = r[3][0]
            self._append(
                "orders",
                (
                    float(self._env.now),
                    owner,
                    g,
                    action,
                    c[2],
                    self.price_of(c[3] or 0),
                    c[4] * self.lot,
                    order_id,
                    "cancelled",
                    reason,
                    0.0,
                ),
            )

    def _band(self, g: int) -> tuple[int, int] | None:
        """The (lowest, highest) price in ticks a clamp allows for good ``g`` now, if any."""
        clamp = self._clamps.get(g)
        if clamp is None or self._env.now >= clamp[2]:
            return None
        return clamp[0], clamp[1]

    def _admit(
        self,
        agent: int,
        g: int,
        action: str,
        buy: bool | None,
        lots: int | None,
        ticks: int | None,
        order_id: int | None = None,
    ) -> Result | None:
        """At the book: the refusal of an order while the market is closed or priced outside a
        clamp's band (recorded), or None if it may go on."""
        now = self._env.now
        if any(start <= now < end for start, end in self._outages):
            self.counts["refused_closed"] += 1
            return self._refuse(agent, g, action, buy, ticks, lots, CLOSED, order_id)
        if ticks is not None and g in self._clamps:
            band = self._band(g)
            if band is not None and not band[0] <= ticks <= band[1]:
                self.counts["refused_band"] += 1
                lo, hi = self.price_of(band[0]), self.price_of(band[1])
                reason = f"{OUT_OF_BAND} [{lo:g}, {hi:g}] (price clamp)"
                return self._refuse(agent, g, action, buy, ticks, lots, reason, order_id)
        return None

    def _due(self) -> float | None:
        """When an action sent now reaches the book, if a latency spike (or the backlog it
        left) delays it; None if it is handled at once."""
        if self._delivering:
            return None
        now = self._env.now
        extra = sum(d for start, end, d in self._latency if start <= now < end)
        if extra <= 0 and not self._in_flight:
            return None
        return max(now + extra, self._backlog_until)

    def _send_later(
        self,
        due: float,
        action: Callable[..., Any],
        args: tuple[Any, ...],
        provisional: bool = True,
    ) -> int:
        """Deliver ``action(*args)`` at ``due`` (after every action sent before it); returns the
        provisional id of the order it makes (0 if it makes none)."""
        pid = 0
        if provisional:
            pid = self._next_provisional
            self._next_provisional -= 1
        self._in_flight += 1
        self._backlog_until = due
        self.counts["delayed"] += 1
        # Timeouts due at the same time fire in the order they were made: arrivals keep order.
        self._env.timeout(due - self._env.now).callbacks.append(
            partial(self._deliver, pid, action, args)
        )
        return pid

    def _deliver(
        self, pid: int, action: Callable[..., Any], args: tuple[Any, ...], _: simpy.Event
    ) -> None:
        self._in_flight -= 1
        self._delivering = True
        try:
            out = action(*args)
        finally:
            self._delivering = False
        if pid:  # args[1] is the good of every action
            self._provisional[pid] = (args[1], out if isinstance(out, int) else (out[0] or 0))

    def _resolve(self, g: int, order_id: int) -> int:
        """The book's id of a provisional one (0 if its order did not rest or is of another
        good); other ids unchanged."""
        if order_id >= 0:
            return order_id
        good, real = self._provisional.get(order_id, (g, 0))
        return real if good == g else 0

    # ---- recording ------------------------------------------------------------------------
    def _refuse(
        self,
        agent: int,
        g: int,
        action: str,
        buy: bool | None,
        ticks: int | None,
        lots: int | None,
        reason: str,
        order_id: int | None = None,
    ) -> Result:
        r = Result(None, _REJECTED, (), (), reason, 0)
        self._log_result(agent, g, action, buy, ticks, lots, r, order_id)
        return r

    def _log_result(
        self,
        agent: int,
        g: int,
        action: str,
        buy: bool | None,
        ticks: int | None,
        lots: int | None,
        r: Result,
        order_id: int | None = None,
    ) -> None:
        if r[1] is _REJECTED:
            self.counts["rejected"] += 1
            if not self._record_rejected:
                return
        elif not self._record_all:
            return
        oid = r[0] if r[0] is not None else (order_id if isinstance(order_id, int) else -1)
        self._append(
            "orders",
            (
                float(self._env.now),
                agent,
                g,
                action,
                "" if buy is None else ("buy" if buy else "sell"),
                _NAN if ticks is None else self.price_of(ticks),
                _NAN if lots is None else lots * self.lot,
                oid,
                str(r[1]),
                r[4],
                sum(f[1] for f in r[2]) * self.lot,
            ),
        )

    def record_rejection(
        self,
        agent: int,
        g: int,
        action: str,
        side: str,
        price: float,
        quantity: float,
        reason: str,
        order_id: int = -1,
    ) -> None:
        """Record an order refused before it reached a book (bad good, side, price...)."""
        self.counts["rejected"] += 1
        if self._record_rejected:
            self._append(
                "orders",
                (
                    float(self._env.now),
                    agent,
                    g,
                    action,
                    side,
                    price,
                    quantity,
                    order_id,
                    "rejected",
                    reason,
                    0.0,
                ),
            )

    def _record_prices(self) -> None:
        g = self._g
        price = np.ones(g)
        est = np.ones(g)
        for j in self._traded:
            e = self._estimate(j)
            if e is None:
                return  # rows start once every good has a price
            last = self._last[j]
            price[j] = e if last is None else last
            est[j] = e
        rec, now, rnd = self.ctx.recorder, self._env.now, self._ledger.round
        goods = np.arange(g)
        rec.append("prices", time=now, round=rnd, good=goods, price=price, estimate=est)
        if not self._demand_slots:
            return
        units = self._ledger.units()
        total = units.sum(axis=0)
        z = np.zeros(g)
        by_pop = []
        for slot in self._demand_slots:
            pop: Any = self.ctx.population(slot)  # as it is now (a shock may have replaced it)
            x = units[slot.rows]
            zp = pop.aggregate_demand(est, x) - x.sum(axis=0)
            by_pop.append((slot.index, zp))
            z += zp
        rel = z / np.where(total > 0, total, 1.0)
        rec.append("excess_demand", time=now, round=rnd, good=goods, excess_demand=z, relative=rel)
        for index, zp in by_pop:
            rec.append(
                "excess_demand_by_population",
                time=now,
                round=rnd,
                population=index,
                good=goods,
                excess_demand=zp,
            )

    # ---- processes --------------------------------------------------------------------------
    def _sampler(self) -> Generator[simpy.Event, Any, None]:
        interval = self.opts["record_interval"]
        timeout = self._env.timeout
        while True:
            self._expire()
            self._record_prices()
            yield timeout(interval)

    def _sessions(self, periods: int, length: float) -> Generator[simpy.Event, Any, None]:
        from mktsim import induced

        ctx = self.ctx
        induced_slots = [s for s in ctx.slots if isinstance(s.population, induced.InducedTraders)]
        for k in range(periods):
            self.sessions_run = k + 1
            ctx.ledger.round = k
            if k:
                for slot in induced_slots:
                    induced.open_period(ctx, slot, k)
            yield self._env.timeout(length)
            n = self.clear(None, "close")
            ctx.log("session_end", f"period {k} closed; {n} resting orders cancelled")
            for slot in induced_slots:
                induced.close_period(ctx, slot, k)
        ctx.done.succeed()


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
        return self._order("limit", good, side, quantity, price)

    def ioc(self, good: str, side: str, quantity: float, price: float) -> Receipt:
        """Immediate-or-cancel: trade what crosses up to ``price``, cancel the rest."""
        return self._order("ioc", good, side, quantity, price)

    def market_order(self, good: str, side: str, quantity: float) -> Receipt:
        """Market order: trade up to ``quantity`` at the best prices; never rests. A market
        buy trades at prices up to what the agent's free cash pays for the whole quantity."""
        return self._order("market", good, side, quantity, None)

    def cancel(self, good: str, order_id: int) -> Receipt:
        """Cancel one of this agent's resting orders."""
        m = self.market
        m.actions += 1
        g, bad = self._good(good)
        oid = _order_id(order_id, m)
        if bad or oid is None:
            reason = bad or _BAD_ID.format(order_id)
            m.record_rejection(self.agent, g, "cancel", "", _NAN, _NAN, reason)
            return Receipt("rejected", None, reason)
        return self._receipt(m._cancel(self.agent, g, oid), False)

    def modify(
        self, good: str, order_id: int, quantity: float | None = None, price: float | None = None
    ) -> Receipt:
        """Change the remaining quantity and/or price of one of this agent's resting orders.
        Lowering the quantity keeps time priority; anything else re-enters the order (same id)
        and may trade at once."""
        m = self.market
        m.actions += 1
        g, bad = self._good(good)
        oid = _order_id(order_id, m)
        lots = ticks = None
        if not bad and oid is None:
            bad = _BAD_ID.format(order_id)
        if not bad and quantity is None and price is None:
            bad = "modify needs a quantity or a price"
        if not bad and quantity is not None:
            lots, bad = _to_steps(quantity, m.lot, "quantity", "a whole number of lots")
        if not bad and price is not None:
            ticks, bad = _to_steps(price, m.tick, "price", "on the tick")
        if bad:
            m.record_rejection(
                self.agent,
                g,
                "modify",
                "",
                _float_or_nan(price),
                _float_or_nan(quantity),
                bad,
                oid or -1,
            )
            return Receipt("rejected", None, bad)
        assert oid is not None
        buy = _side_of(m, g, oid)
        return self._receipt(m._modify(self.agent, g, oid, lots, ticks), buy)

    # -- reading
    def orders(self, good: str | None = None) -> list[OrderView]:
        """This agent's resting orders (of one good or all), in units (orders still on their
        way to the book during a latency spike are not resting yet)."""
        m = self.market
        goods = m._traded if good is None else [m.ctx.goods.index(good)]
        out = []
        for g in goods:
            book = m._books[g]
            for side in ("buy", "sell"):
                for o in book.orders(side, owner=self.agent):
                    out.append(
                        OrderView(m._goods[g], o.order_id, side, m.price_of(o.price), o.qty * m.lot)
                    )
        return out

    def holdings(self) -> dict[str, float]:
        """Everything the agent holds (reserved included), in units."""
        m = self.market
        return m.ctx.goods.as_dict(m._h[self.agent] / BASE_UNITS)

    def free(self) -> dict[str, float]:
        """What the agent holds beyond its resting orders' reservations, in units."""
        m = self.market
        out = {}
        for j, name in enumerate(m._goods):
            base = m.free_cash(self.agent) if j == m._num else m.free_goods(self.agent, j)
            out[name] = base / BASE_UNITS
        return out

    def quote(self) -> BookQuote:
        return self.market.quote()

    # -- internals
    def _good(self, good: Any) -> tuple[int, str]:
        m = self.market
        if not isinstance(good, str) or good not in m._goods:
            return -1, f"unknown good {good!r}; valid: {', '.join(m._goods[j] for j in m._traded)}"
        g = m._goods.index(good)
        if g == m._num:
            return -1, f"{good!r} is the numeraire: it is what the books trade against"
        return g, ""

    def _order(self, kind: str, good: Any, side: Any, quantity: Any, price: Any) -> Receipt:
        m = self.market
        m.actions += 1
        g, bad = self._good(good)
        if not bad and side not in ("buy", "sell"):
            bad = f"side(={side!r}) must be 'buy' or 'sell'"
        lots = ticks = None
        if not bad:
            lots, bad = _to_steps(quantity, m.lot, "quantity", "a whole number of lots")
        if not bad and kind != "market":
            ticks, bad = _to_steps(price, m.tick, "price", "on the tick")
        if bad:
            m.record_rejection(
                self.agent,
                g,
                kind,
                side if side in ("buy", "sell") else "",
                _float_or_nan(price),
                _float_or_nan(quantity),
                bad,
            )
            return Receipt("rejected", None, bad)
        assert lots is not None
        buy = side == "buy"
        if kind == "market":
            r = m._market(self.agent, g, buy, lots)
        else:
            assert ticks is not None
            r = m._limit(self.agent, g, buy, lots, ticks, kind)
        return self._receipt(r, buy)

    def _receipt(self, r: Result, buy: bool | None) -> Receipt:
        return self.market._order_receipt(r, buy)


def _to_steps(value: Any, step: float, what: str, rule: str) -> tuple[int | None, str]:
    """A positive quantity or price as a whole number of lots or ticks, or why not."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        return None, f"{what}(={value!r}) must be a number"
    x = float(value)
    if not math.isfinite(x) or x <= 0:
        return None, f"{what}(={value!r}) must be > 0 and finite"
    k = round(x / step)
    if k < 1 or abs(k * step - x) > 1e-9 * max(1.0, x):
        return None, f"{what}(={value!r}) must be {rule} ({step:g})"
    return int(k), ""


def _pending(order_id: int, lots: int) -> Result:
    """The result handed back for an action a latency spike delays."""
    return Result(order_id, _PENDING, (), (), "", lots)


def _order_id(value: Any, market: OrderBookMarket) -> int | None:
    """A book's order id (> 0) or a provisional id the market has issued (< 0), else None."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        return None
    if 0 < value < _ID_LIMIT or market._next_provisional < value < 0:
        return int(value)
    return None


def _float_or_nan(value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return _NAN
    return x


def _side_of(m: OrderBookMarket, g: int, oid: int) -> bool | None:
    book = m._books[g]
    info = book.order(oid)
    return None if info is None else info.side == "buy"
