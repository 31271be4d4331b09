"""Call market: a frequent batch auction per good against the numeraire (Budish, Cramton &
Shim 2015).

Orders are collected for ``interval`` of simulation time; at the batch's end each good clears
at one uniform price and every crossing order that executes does so at that price. The
mechanism only clears: every population is driven by a registered strategy through the market
protocol (:mod:`mktsim.market`), so this module has no behaviour code of its own.

* **Units.** As on the order book: prices are integer ticks of ``tick`` numeraire per unit,
  quantities integer lots of ``lot`` units; a lot is ``lot * 10**9`` base units of the good and
  one tick on one lot ``tick * lot * 10**9`` base units of the numeraire, both whole (checked),
  so every fill settles exactly through :meth:`mktsim.ledger.Ledger.trade`.
* **The clearing price.** With ``D(p)`` the lots bid at ``p`` or more and ``S(p)`` the lots
  offered at ``p`` or less, the batch trades ``V = max_p min(D(p), S(p))`` lots. The price is
  chosen among the ticks between the lowest and the highest limit price of the batch (outside
  that span neither curve moves, so nothing is lost) by rules in turn, as call auctions of
  stock exchanges do: (1) maximise the volume ``min(D, S)``; (2) among those, minimise the
  imbalance ``|D - S|``; (3) market pressure: if buyers are left over at every remaining
  price take the highest, if sellers are, the lowest; (4) otherwise, if some remaining ticks
  balance ``D = S``, the midpoint of the remaining range rounded down to the tick, and if none
  does (buyers left over at the low ticks, sellers at the high ones), the highest tick with
  buyers left over, where the excess changes sign. Each rule keeps a range of consecutive
  ticks (``min(D, S)`` rises then falls, ``D - S`` never rises), so the price is in all of
  them. With unit schedules this puts the price in the competitive band
  ``[max(c_Q, v_Q+1), min(v_Q, c_Q+1)]`` (the pressure rule is what takes it there when an
  indifferent trader sits at the band's edge; the sign change when the imbalance is the same
  on both sides: a midpoint there could leave out a trader who would trade at it). A batch
  with no limit price (market orders only) does not trade.
* **Who trades.** On each side the crossing orders execute in price priority (market orders
  first); the price level at which the side's volume runs out is rationed by ``rationing``:
  ``time`` (arrival in the market) or ``pro_rata`` (in whole lots: each order gets the floor of
  its share, the lots left go one each to the largest remainders, ties by arrival). Executed buy
  and sell lots are paired in that priority order into bilateral ledger trades at the uniform
  price. An agent whose own buy and sell meet in a pair trades with itself on paper: both orders
  fill and nothing moves (counted as ``self_matched``).
* **Order life.** Limit orders not filled rest into the next batches (for ``lifetime`` batches
  when set) keeping their arrival priority; ioc limit orders and market orders live for one
  batch and their unfilled part is cancelled at its clearing. A modification keeps priority
  only when it just reduces the quantity.
* **Reservations.** A buy reserves its limit value in cash and a sell its goods at submission,
  so no agent commits more than it holds (no short selling, no borrowing). A market buy is
  protected: it is capped at the highest tick its free cash pays for the whole quantity and
  reserves that. If holdings fall below an agent's reservations outside the market (an
  endowment shock, a new period), its orders are cancelled.
* **Receipts.** ``submit`` answers at once (:func:`mktsim.market.settled`): ``accepted`` with the
  order's id and resting quantity, ``cancelled`` for a cancel, or ``rejected`` with a reason
  (unknown good or agent, off the tick or lot grid, not enough free cash or goods, not the
  owner, an order type the market does not take). A refusal is recorded in the ``orders``
  table and changes nothing. Fills happen at clearings: :meth:`CallMarket.outcome` gives an
  event that fires with an order's final receipt (``filled``, ``partial`` or ``cancelled``),
  :meth:`CallMarket.receipt` its receipt now, and :meth:`CallMarket.updated` fires after each
  clearing with the new quote.
* **Recording.** At each clearing the ``prices`` table gets one row per good (``price`` the
  last clearing price, ``estimate`` an exponentially weighted average of clearing prices with
  weight ``estimate_weight`` on the newest; rows start once every good has cleared once) and,
  for price-taking consumers, ``excess_demand`` at the estimates; the ``batches`` table one row
  per good and batch; ``orders`` the refusals (``record_orders="rejected"``), every order event
  (``"all"``) or nothing. Trades are the ledger's.
* **Sessions.** With ``periods > 0`` trading runs in sessions of ``period_length``: the last
  batch of a session clears at its end, resting orders are cancelled, induced-value traders
  redeem and renew their units (:mod:`mktsim.induced`), and after the last session the run ends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import simpy
from attrs import frozen
from mktsim.mechanisms._call_clearing import _NAN, _Clearing, _Order, allocate, clear_batch

from mktsim.errors import InvalidParameter
from mktsim.goods import BASE_UNITS
from mktsim.market import Top, grid_bases, run_grid, settled, unpriced, whole
from mktsim.mechanism import (
    MarketContext,
    Option,
    parse_options,
    positive_float,
    positive_int,
)
from mktsim.orders import BUY, SELL, Cancel, Limit, MarketOrder, Modify, Quote, Receipt, order_name
from mktsim.recorder import Column

__all__ = ["BATCHES_SCHEMA", "BatchState", "CallMarket", "CallQuote", "allocate", "clear_batch"]

#: Columns of the ``batches`` table: one row per good and clearing.
BATCHES_SCHEMA: dict[str, Column] = {
    "time": Column("float64", None, "simulation time of the clearing"),
    "batch": Column("int64", None, "clearing number, from 1"),
    "good": Column("category", "goods", "good name"),
    "price": Column("float64", None, "uniform clearing price (NaN when nothing traded)"),
    "volume": Column("float64", None, "units traded"),
    "buy_quantity": Column("float64", None, "units bid in the batch (every buy order present)"),
    "sell_quantity": Column("float64", None, "units offered in the batch"),
    "orders": Column("int64", None, "orders present in the batch"),
}

#: Columns of the ``orders`` table (one row per order event recorded).
ORDERS_SCHEMA: dict[str, Column] = {
    "time": Column("float64", None, "simulation time"),
    "agent": Column("int64", None, "agent id (row of the ledger)"),
    "good": Column("object", None, "good name as given"),
    "action": Column(
        "object",
        None,
        "limit | ioc | market | cancel | modify | fill (the order's last lots traded) | expire "
        "(lifetime over, or ioc/market unfilled at its batch) | close (session end, or holdings "
        "fell below the reservation)",
    ),
    "side": Column("object", None, "buy | sell ('' when none)"),
    "price": Column("float64", None, "limit price in numeraire per unit (NaN for none)"),
    "quantity": Column("float64", None, "units asked for (NaN for none)"),
    "order_id": Column("int64", None, "the market's order id (-1 for none)"),
    "status": Column("object", None, "accepted | filled | partial | cancelled | rejected"),
    "reason": Column("object", None, "why it was rejected or cancelled ('' otherwise)"),
    "filled": Column("float64", None, "units traded by the order so far"),
}

#: Beyond this many ticks or lots a number is refused (far above any holding in base units).
_MAX_STEPS = 2**62


# ---- values -------------------------------------------------------------------------------------
@frozen
class BatchState:
    """One good's batch as shown by :meth:`CallMarket.quote` (prices in numeraire per unit,
    quantities in units; None where there is none).

    Attributes:
        last: the last clearing price.
        indicative_price, indicative_volume: where the batch would clear now.
        best_bid, best_ask: the highest limit bid and lowest limit ask present.
        buy_quantity, sell_quantity: units bid and offered in the batch.
        estimate: the exponentially weighted average of clearing prices (option
            ``estimate_weight``), as in the ``prices`` table.
    """

    last: float | None
    indicative_price: float | None
    indicative_volume: float
    best_bid: float | None
    best_ask: float | None
    buy_quantity: float
    sell_quantity: float
    estimate: float | None = None


@frozen
class CallQuote(Quote):
    """What the call market shows: ``prices`` are the last clearing prices; ``next_clearing``
    the time of the next clearing; ``batch`` the number of clearings so far; ``goods`` a
    :class:`BatchState` per good; ``tick`` and ``lot`` the price and quantity grids, which
    strategies read to put their orders on them (as from an order book's quote)."""

    next_clearing: float
    batch: int
    goods: Mapping[str, BatchState]
    tick: float
    lot: float


def _steps(value: Any, step: float, what: str, rule: str) -> tuple[int, str]:
    """A positive quantity or price as a whole number of lots or ticks, or why not."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        return 0, f"{what}(={value!r}) must be a number"
    x = float(value)
    if not math.isfinite(x) or x <= 0:
        return 0, f"{what}(={value!r}) must be > 0 and finite"
    if x / step > _MAX_STEPS:
        return 0, f"{what}(={value!r}) is too large"
    k = round(x / step)
    if k < 1 or abs(k * step - x) > 1e-9 * max(1.0, x):
        return 0, f"{what}(={value!r}) must be {rule} ({step:g})"
    return int(k), ""


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, str)):
        raise ValueError("must be a whole number")
    return int(value)


def _lifetime(value: Any) -> int | None:
    return None if value in (None, "none", "None") else positive_int(value)


class CallMarket(_Clearing):
    """Frequent batch auction, one per good; see the module docstring."""

    name: ClassVar[str] = "call_market"
    description: ClassVar[str] = (
        "frequent batch auction: orders collected for an interval, each good cleared at one "
        "uniform price maximising volume (Budish, Cramton & Shim 2015)"
    )
    accepts: ClassVar[frozenset[type]] = frozenset({Limit, MarketOrder, Cancel, Modify})
    #: Behaviour names scenarios have always used -> the shared strategies they mean here.
    aliases: ClassVar[Mapping[str, str]] = {
        "passive": "idle",
        "firm": "firm_limit",
        "source": "source_limit",
        "final_demand": "final_demand_limit",
    }
    options: ClassVar[Mapping[str, Option]] = {
        "interval": Option(1.0, "time between clearings", positive_float),
        "tick": Option(0.001, "price tick, numeraire per unit", positive_float),
        "lot": Option(0.001, "lot size, units of a good per lot", positive_float),
        "rationing": Option(
            "time", "marginal level rationed by: time | pro_rata", str, choices=("time", "pro_rata")
        ),
        "lifetime": Option(
            None, "batches an unfilled limit order rests (None: until cancelled)", _lifetime
        ),
        "estimate_weight": Option(
            0.1,
            "weight of the newest clearing price in the price estimate (one batch's price is "
            "one draw of the order flow; 0.1 averages about ten)",
            float,
            check=lambda v: None if 0 < v <= 1 else "must be in (0, 1]",
        ),
        "periods": Option(
            0,
            "trading sessions (0: one session until the horizon)",
            _count,
            check=lambda v: None if v >= 0 else "must be >= 0",
        ),
        "period_length": Option(100.0, "length of a session in simulation time", positive_float),
        "record_orders": Option(
            "rejected",
            "orders table: rejected | all | none",
            str,
            choices=("rejected", "all", "none"),
        ),
    }

    def __init__(self, **options: Any) -> None:
        self.opts = parse_options(self.name, self.options, options)
        tick, lot = self.opts["tick"], self.opts["lot"]
        self.tick, self.lot = float(tick), float(lot)
        # The grids in base units are the run's (set on attaching; these are the defaults').
        self.base_units: float = BASE_UNITS
        self.lot_base, self.tick_base = grid_bases(self.tick, self.lot, BASE_UNITS, exact=False)
        self._per_unit = whole(1.0 / tick)
        self.interval: float = self.opts["interval"]
        self.batches = 0
        self.counts = dict.fromkeys(
            ("orders", "rejected", "cancels", "modifies", "expired", "fills", "self_matched"), 0
        )
        self.volume: dict[str, float] = {}
        self.sessions_run = 0

    # ---- attaching ------------------------------------------------------------------------
    def attach(self, ctx: MarketContext) -> None:
        """Start the clearing clock. Every population is driven by its strategy (started by the
        run through ``ctx.strategies``); the market starts none."""
        self.ctx = ctx
        self.base_units = ctx.goods.base_units
        self.lot_base, self.tick_base = run_grid(ctx, self.tick, self.lot, self.name)
        ctx.check_step("interval", self.interval, "batches")
        self.env = ctx.env
        goods = ctx.goods
        self._names = goods.names
        self._num = goods.numeraire_index
        self._traded = [j for j in range(len(goods)) if j != self._num]
        self._n_agents = ctx.scenario.n_agents
        self._live: list[dict[int, _Order]] = [{} for _ in self._names]
        self._owner: dict[int, _Order] = {}
        self._rc: dict[int, int] = {}  # agent -> reserved cash, base units
        self._rg: dict[tuple[int, int], int] = {}  # (agent, good) -> reserved goods
        self._next_id = 1
        self._seq = 0
        self._last: list[float | None] = [None] * len(self._names)
        self._est: list[float | None] = [None] * len(self._names)
        self._finished: dict[int, Receipt] = {}  # orders done since the last clearing
        self._waiting: dict[int, simpy.Event] = {}
        self._update = ctx.env.event()
        self._indicative: dict[int, tuple[float | None, float]] = {}
        self._seen = ctx.ledger.version
        self.volume = {self._names[j]: 0.0 for j in self._traded}
        ctx.recorder.add_table("batches", BATCHES_SCHEMA)
        self._record = self.opts["record_orders"]
        if self._record != "none":
            ctx.recorder.add_table("orders", ORDERS_SCHEMA)
        flows = any(s.population.kind in ("firms", "source", "final_demand") for s in ctx.slots)
        demand = all(hasattr(s.population, "aggregate_demand") for s in ctx.slots)
        self._demand_slots = ctx.slots if demand and not flows else ()
        self._next_clear = self.interval
        ctx.env.process(self._clock())

    # ---- the protocol ---------------------------------------------------------------------
    def submit(self, order: Any) -> simpy.Event:
        """Take an order; the event (already processed) carries its :class:`Receipt`."""
        if isinstance(order, (Limit, MarketOrder)):
            receipt = self._new(order)
        elif isinstance(order, Cancel):
            receipt = self._cancel(order)
        elif isinstance(order, Modify):
            receipt = self._modify(order)
        else:
            kind = type(order)
            name = order_name(kind) if hasattr(order, "agent") else kind.__name__
            receipt = self._refuse(order, f"{self.name} does not accept {name} orders")
        return settled(self.env, receipt)

    def quote(self) -> CallQuote:
        states = {}
        for j in self._traded:
            live = self._live[j].values()
            bids = [o.ticks for o in live if o.buy and o.kind != "market"]
            asks = [o.ticks for o in live if not o.buy and o.kind != "market"]
            if j not in self._indicative:
                self._indicative[j] = self._indicate(j)
            price, volume = self._indicative[j]
            states[self._names[j]] = BatchState(
                self._last[j],
                price,
                volume,
                self._price(max(bids)) if bids else None,
                self._price(min(asks)) if asks else None,
                sum(o.lots for o in live if o.buy) * self.lot,
                sum(o.lots for o in live if not o.buy) * self.lot,
                self._est[j],
            )
        return CallQuote(
            float(self.env.now),
            {self._names[j]: self._last[j] for j in self._traded},
            float(self._next_clear),
            self.batches,
            states,
            self.tick,
            self.lot,
        )

    def top(self, good: str) -> Top:
        """One good's best limit bid and ask in the batch, last clearing price and estimate,
        as :meth:`quote` shows them (without the indicative clearing it computes)."""
        j = self._names.index(good)
        bids = [o.ticks for o in self._live[j].values() if o.buy and o.kind != "market"]
        asks = [o.ticks for o in self._live[j].values() if not o.buy and o.kind != "market"]
        return Top(
            self._price(max(bids)) if bids else None,
            self._price(min(asks)) if asks else None,
            self._last[j],
            self._est[j],
        )

    def updated(self) -> simpy.Event:
        """Fires after the next clearing; its value is the quote then."""
        return self._update

    def receipt(self, order_id: int) -> Receipt | None:
        """An order's receipt now: while it rests, and for orders that finished at the latest
        clearing or since (None otherwise)."""
        order = self._owner.get(order_id)
        if order is not None:
            return self._receipt_of(order, "", True)
        return self._finished.get(order_id)

    def outcome(self, order_id: int) -> simpy.Event:
        """An event that fires with the order's final receipt when it leaves the market
        (``filled``, ``partial`` or ``cancelled``); at once if it already has."""
        done = self._finished.get(order_id)
        if done is not None:
            return settled(self.env, done)
        if order_id not in self._owner:
            raise InvalidParameter(f"order_id(={order_id!r}) is not a live or recent order")
        if order_id not in self._waiting:
            self._waiting[order_id] = self.env.event()
        return self._waiting[order_id]

    def open_orders(self, good: str) -> list[tuple[int, int, str, float | None, float]]:
        """The live orders of a good in arrival order: ``(agent, order_id, side, limit price or
        None for a market order, units left)``."""
        g = self._names.index(good)
        return [
            (
                o.agent,
                o.oid,
                BUY if o.buy else SELL,
                None if o.kind == "market" else self._price(o.ticks),
                o.lots * self.lot,
            )
            for o in self._live[g].values()
        ]

    def free(self, agent: int) -> tuple[int, list[int]]:
        """The agent's holdings beyond its reservations, base units: (cash, per good)."""
        h = self.ctx.ledger.holdings
        cash = int(h[agent, self._num]) - self._rc.get(agent, 0)
        goods = [int(h[agent, j]) - self._rg.get((agent, j), 0) for j in range(len(self._names))]
        goods[self._num] = cash
        return cash, goods

    def summary(self) -> dict[str, Any]:
        return {
            "method": "uniform_price",
            "rounds": self.batches,
            "converged": False,
            "batches": self.batches,
            **{k: int(v) for k, v in self.counts.items()},
            "volume": dict(self.volume),
            "resting_orders": len(self._owner) if hasattr(self, "_owner") else 0,
            "interval": self.interval,
            "tick": self.tick,
            "lot": self.lot,
            "rationing": self.opts["rationing"],
            "lifetime": self.opts["lifetime"],
            "periods": self.opts["periods"],
            "periods_run": self.sessions_run if self.opts["periods"] else None,
            **unpriced(self.ctx.recorder, self._never_cleared(), "never cleared"),
        }

    def _never_cleared(self) -> list[str]:
        """Goods no batch has cleared yet (rows of the prices table start once every good has
        cleared)."""
        if not hasattr(self, "ctx"):
            return []
        return [self._names[j] for j in self._traded if self._last[j] is None]

    # ---- orders ---------------------------------------------------------------------------
    def _good(self, order: Any) -> tuple[int, str]:
        good = order.good
        if not isinstance(good, str) or good not in self._names:
            valid = ", ".join(self._names[j] for j in self._traded)
            return -1, f"unknown good {good!r}; valid: {valid}"
        g = self._names.index(good)
        if g == self._num:
            return -1, f"{good!r} is the numeraire: it is what the goods trade against"
        return g, ""

    def _check_agent(self, order: Any) -> str:
        agent = order.agent
        if isinstance(agent, bool) or not isinstance(agent, (int, np.integer)):
            return f"agent(={agent!r}) must be an agent id"
        if not 0 <= agent < self._n_agents:
            return f"unknown agent {agent!r}"
        return ""

    def _new(self, order: Limit | MarketOrder) -> Receipt:
        market = isinstance(order, MarketOrder)
        kind = "market" if market else ("ioc" if order.ioc else "limit")  # type: ignore[union-attr]
        bad = self._check_agent(order)
        g = -1
        if not bad:
            g, bad = self._good(order)
        if not bad and order.side not in (BUY, SELL):
            bad = f"side(={order.side!r}) must be 'buy' or 'sell'"
        lots = ticks = 0
        if not bad:
            lots, bad = _steps(order.qty, self.lot, "qty", "a whole number of lots")
        if not bad and not market:
            ticks, bad = _steps(order.price, self.tick, "price", "on the tick")  # type: ignore[union-attr]
        if bad:
            return self._refuse(order, bad, kind)
        self._reconcile()
        agent, buy = int(order.agent), order.side == BUY
        cash, free = self.free(agent)
        if buy:
            if market:  # protected: the highest price its free cash pays for every lot
                ticks = min(cash // (lots * self.tick_base), _MAX_STEPS)
                if ticks < 1:
                    return self._refuse(order, "insufficient cash for any price", kind)
            need = ticks * lots * self.tick_base
            if need > cash:
                return self._refuse(
                    order, f"insufficient cash: needs {need} base units, {cash} free", kind
                )
            self._rc[agent] = self._rc.get(agent, 0) + need
        else:
            ticks = ticks if not market else 1
            need = lots * self.lot_base
            if need > free[g]:
                return self._refuse(
                    order,
                    f"insufficient {self._names[g]}: needs {need} base units, {free[g]} free",
                    kind,
                )
            self._rg[agent, g] = self._rg.get((agent, g), 0) + need
        oid = self._next_id
        self._next_id += 1
        self._seq += 1
        live = _Order(oid, agent, g, buy, lots, ticks, kind, self._seq)
        if kind == "limit" and self.opts["lifetime"] is not None:
            live.expires = self.batches + self.opts["lifetime"]
        self._live[g][oid] = live
        self._owner[oid] = live
        self._indicative.pop(g, None)
        self.counts["orders"] += 1
        receipt = Receipt("accepted", oid, "", 0.0, _NAN, 0.0, lots * self.lot)
        if self._record == "all":
            self._log(order, kind, receipt)
        return receipt

    def _find(self, order: Cancel | Modify, action: str) -> tuple[_Order | None, Receipt | None]:
        bad = self._check_agent(order)
        if not bad:
            _, bad = self._good(order)
        oid = order.order_id
        live = None if bad else self._owner.get(oid)
        if not bad and (live is None or self._names[live.g] != order.good):
            bad = f"no live order {oid!r} for {order.good!r}"
        elif not bad and live is not None and live.agent != order.agent:
            bad = f"order {oid!r} belongs to another agent"
        if bad:
            return None, self._refuse(order, bad, action)
        return live, None

    def _cancel(self, order: Cancel) -> Receipt:
        live, refused = self._find(order, "cancel")
        if refused is not None or live is None:
            return refused or Receipt("rejected")
        self.counts["cancels"] += 1
        receipt = self._retire(live, "cancelled by its owner")
        if self._record == "all":
            self._log(order, "cancel", receipt)
        return receipt

    def _modify(self, order: Modify) -> Receipt:
        live, refused = self._find(order, "modify")
        if refused is not None or live is None:
            return refused or Receipt("rejected")
        lots, ticks, bad = live.lots, live.ticks, ""
        if order.qty is not None:
            lots, bad = _steps(order.qty, self.lot, "qty", "a whole number of lots")
        if not bad and order.price is not None:
            if live.kind == "market":
                bad = "a market order has no price to modify"
            else:
                ticks, bad = _steps(order.price, self.tick, "price", "on the tick")
        if bad:
            return self._refuse(order, bad, "modify")
        self._reconcile()
        agent, g = live.agent, live.g
        cash, free = self.free(agent)
        if live.buy:
            old = live.ticks * live.lots * self.tick_base
            need = ticks * lots * self.tick_base
            if need > cash + old:
                return self._refuse(
                    order,
                    f"insufficient cash: needs {need} base units, {cash + old} free",
                    "modify",
                )
            self._rc[agent] += need - old
        else:
            old = live.lots * self.lot_base
            need = lots * self.lot_base
            if need > free[g] + old:
                return self._refuse(
                    order,
                    f"insufficient {self._names[g]}: needs {need} base units, {free[g] + old} free",
                    "modify",
                )
            self._rg[agent, g] += need - old
        if ticks != live.ticks or lots > live.lots:  # priority is kept only for a reduction
            self._seq += 1
            live.seq = self._seq
            del self._live[g][live.oid]  # re-inserted last: dicts keep arrival order
            self._live[g][live.oid] = live
        live.lots, live.ticks = lots, ticks
        self._indicative.pop(g, None)
        self.counts["modifies"] += 1
        receipt = self._receipt_of(live, "", True)
        if self._record == "all":
            self._log(order, "modify", receipt)
        return receipt

    def _refuse(self, order: Any, reason: str, action: str | None = None) -> Receipt:
        self.counts["rejected"] += 1
        receipt = Receipt("rejected", None, reason)
        if self._record != "none" and hasattr(self, "ctx"):
            self._log(order, action or type(order).__name__.lower(), receipt)
        return receipt

    def _log_order(self, live: _Order, action: str, receipt: Receipt) -> None:
        price = None if live.kind == "market" else self._price(live.ticks)
        side = BUY if live.buy else SELL
        qty = (live.lots + live.filled) * self.lot
        view = SimpleNamespace(agent=live.agent, good=self._names[live.g], side=side)
        self._log(SimpleNamespace(**vars(view), price=price, qty=qty), action, receipt)

    def _log(self, order: Any, action: str, receipt: Receipt) -> None:
        def number(name: str) -> float:
            try:
                return float(getattr(order, name, _NAN))
            except (TypeError, ValueError):  # None or not a number
                return _NAN

        agent = getattr(order, "agent", -1)
        agent = int(agent) if isinstance(agent, (int, np.integer)) else -1
        self.ctx.recorder.append_row(
            "orders",
            (
                float(self.env.now),
                agent,
                str(getattr(order, "good", "")),
                action,
                str(getattr(order, "side", "")),
                number("price"),
                number("qty"),
                -1 if receipt.order_id is None else int(receipt.order_id),
                receipt.status,
                receipt.reason,
                receipt.filled,
            ),
        )

    def _retire(self, live: _Order, reason: str, action: str = "") -> Receipt:
        """Take an order out of the market, releasing what it still reserves; its final
        receipt."""
        agent, g = live.agent, live.g
        if live.buy:
            self._release_cash(agent, live.ticks * live.lots * self.tick_base)
        else:
            self._release_goods(agent, g, live.lots * self.lot_base)
        del self._live[g][live.oid]
        del self._owner[live.oid]
        self._indicative.pop(g, None)
        receipt = self._receipt_of(live, reason if live.lots else "", False)
        if self._record == "all" and action:
            self._log_order(live, action, receipt)
        self._finished[live.oid] = receipt
        waiting = self._waiting.pop(live.oid, None)
        if waiting is not None:
            waiting.succeed(receipt)
        return receipt

    def _release_cash(self, agent: int, amount: int) -> None:
        left = self._rc.get(agent, 0) - amount
        if left:
            self._rc[agent] = left
        else:
            self._rc.pop(agent, None)

    def _release_goods(self, agent: int, g: int, amount: int) -> None:
        left = self._rg.get((agent, g), 0) - amount
        if left:
            self._rg[agent, g] = left
        else:
            self._rg.pop((agent, g), None)

    def _receipt_of(self, live: _Order, reason: str, resting: bool) -> Receipt:
        filled = live.filled * self.lot
        if resting:
            status = "partial" if live.filled else "accepted"
        elif live.lots == 0:
            status = "filled"
        else:
            status = "partial" if live.filled else "cancelled"
        price = live.paid / self.base_units / filled if live.filled else _NAN
        cash = live.paid / self.base_units * (1 if live.buy else -1)
        return Receipt(
            status, live.oid, reason, filled, price, cash, live.lots * self.lot if resting else 0.0
        )

    def _reconcile(self) -> None:
        """Holdings changed outside the market: cancel every order of an agent whose
        reservations now exceed its holdings, so no clearing can overdraw it."""
        ledger = self.ctx.ledger
        if ledger.version == self._seen:
            return
        h = ledger.holdings
        short = {a for a, c in self._rc.items() if c > h[a, self._num]}
        short |= {a for (a, j), q in self._rg.items() if q > h[a, j]}
        for agent in sorted(short):
            for live in [o for o in self._owner.values() if o.agent == agent]:
                self._retire(live, "holdings fell below the order's reservation", "close")
            self.ctx.log("orders_cancelled", f"agent {agent}: holdings fell below its orders")
        self._seen = ledger.version
