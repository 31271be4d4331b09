"""Continuous double-auction matching engine for one good against the numeraire.

The engine is pure and synchronous: no clock, no ledger, no callbacks. Each call returns a small
immutable :class:`Result` that says everything a caller needs to keep its own books straight: the
fills (maker and taker ids and owners, price, quantity) and every quantity that left the book
without trading (:class:`Cancelled`). A SimPy mechanism wraps it and settles cash and goods.

Units: prices are integer ticks (> 0) of the numeraire per base unit of the good; quantities are
integer base units (> 0). A fill's cash value is ``price * qty`` ticks.

Rules:

* **Order kinds.** ``limit`` rests whatever it cannot fill at once; ``market`` fills what it can at
  any price and never rests; ``ioc`` (immediate-or-cancel) fills up to its limit price and the
  rest is cancelled.
* **Priority.** Price, then time. Trades happen at the resting (maker) order's price.
* **Order ids** are positive ints assigned by the book, 1, 2, 3, ... in the order submissions are
  accepted (market and ioc orders get ids too); a rejected submission consumes no id.
* **Self-trade prevention: cancel resting.** An incoming order never trades with a resting order
  of its own owner. When matching reaches such an order (in price-time order, within the incoming
  order's limit), that resting order is cancelled in full, reported in ``Result.cancelled``, and
  matching continues with the next resting order. Own orders the incoming order does not reach
  are untouched.
* **Cancel / modify.** Only the owner of a resting order may cancel or modify it; anyone else gets
  a rejection. ``modify`` that only lowers the quantity (same price) keeps time priority. A price
  change or a quantity increase loses it: the order is cancelled and re-entered under the same
  id, as a new limit order at the back of its new price level, and it may trade at once if the
  new price crosses.
* **Refusals are data.** A bad order (non-int or non-positive quantity or price, unknown side or
  kind, unknown or foreign order id) returns ``Status.REJECTED`` with a reason and leaves the book
  exactly as it was. Nothing here raises for bad order data.

Conservation, per order: quantity submitted (including re-entries by ``modify``) equals quantity
filled + quantity resting + quantity in ``Cancelled`` records. A wrapper that reserves cash or goods
for every unit it submits therefore stays exact with three rules: settle each :class:`Fill` (the
maker left the book when ``maker_left == 0``), release each :class:`Cancelled` record, and, for a
``modify`` that re-enters the order (new price, or more quantity), reserve ``new_qty`` at the new
price before the call (``order(id)`` gives the current ones); the old order comes back as a
``Cancelled`` record.

Implementation: each side keeps a dict price-key -> level (a deque of order handles in time order
plus the level's live quantity) and a heap of price keys (bid keys are negated prices so both
sides are min-heaps). Live orders are ``(owner, key, qty, id)`` tuples in one dict keyed by
handle: ints and int tuples are invisible to the cyclic garbage collector, which otherwise rescans
a deep book again and again (one object per order made passive inserts about 3x slower at 10^5
resting orders). Removal is lazy: a cancelled handle stays in its queue and is skipped when it
reaches the head; a queue is compacted when dead handles dominate it; an emptied level leaves the
heap when it reaches the top. Everything handed out is a named tuple, defined with the sides,
kinds and statuses in :mod:`mktsim.mechanisms._book_values` and re-exported here.
"""

from __future__ import annotations

import math
from collections import deque
from functools import partial
from heapq import heappop, heappush
from operator import index

from mktsim.mechanisms._book_values import (
    Cancelled,
    Depth,
    Fill,
    Kind,
    OrderInfo,
    Quote,
    Result,
    Side,
    Status,
)

from mktsim.errors import InvalidParameter

__all__ = [
    "Cancelled",
    "Depth",
    "Fill",
    "Kind",
    "OrderBook",
    "OrderInfo",
    "Quote",
    "Result",
    "Side",
    "Status",
]

_BUY: Side = "buy"
_SELL: Side = "sell"
_KINDS = ("limit", "market", "ioc")
# A level's deque is rebuilt once it holds more than this many dead records and they outnumber
# the live ones; keeps cancel O(1) amortised without letting far-from-the-touch queues bloat.
_COMPACT_MIN_DEAD = 32


# Results are built with tuple.__new__ directly: the NamedTuple constructor adds a Python frame
# per object, which is a measurable share of the per-order cost.
_new_fill = partial(tuple.__new__, Fill)
_new_cancelled = partial(tuple.__new__, Cancelled)
_new_result = partial(tuple.__new__, Result)

_ACCEPTED = Status.ACCEPTED
_FILLED = Status.FILLED
_PARTIAL = Status.PARTIAL
_CANCELLED = Status.CANCELLED
_REJECTED = Status.REJECTED
_INF = math.inf


class _Level:
    """One price level: order handles in time order (dead ones included) and the live quantity."""

    __slots__ = ("dead", "price", "q", "qty")

    def __init__(self, price: int) -> None:
        self.price = price
        self.q: deque[int] = deque()
        self.qty = 0  # live quantity; 0 means the level is empty
        self.dead = 0  # handles in q whose order is no longer live


class _Half:
    """One side of the book: a min-heap of price keys and the levels by key.

    Keys are ``price`` for asks and ``-price`` for bids, so the best level is ``heap[0]`` on both.
    Invariant: the heap holds exactly the keys of ``levels``, each once; levels may be empty.
    """

    __slots__ = ("heap", "levels", "sign")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.heap: list[int] = []
        self.levels: dict[int, _Level] = {}

    def best(self) -> _Level | None:
        heap, levels = self.heap, self.levels
        while heap:
            lvl = levels[heap[0]]
            if lvl.qty:
                return lvl
            del levels[heappop(heap)]
        return None


# A live resting order: (owner, price key, remaining qty, public order id), keyed by its handle.
_Rec = tuple[int, int, int, int]


def _as_int(x: object) -> int | None:
    """``x`` as a Python int if it is an integer type (numpy ints included, bool excluded)."""
    if isinstance(x, bool):
        return None
    try:
        return index(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _reject(reason: str) -> Result:
    return _new_result((None, _REJECTED, (), (), reason, 0))


class OrderBook:
    """Price-time priority limit order book for one good against the numeraire.

    Args:
        good: name of the good, for messages and reprs only.

    All order entry points return a :class:`Result` and never raise for bad order data.
    """

    __slots__ = (
        "_alias",
        "_asks",
        "_bids",
        "_last",
        "_live",
        "_next_alias",
        "_next_id",
        "good",
        "top_version",
    )

    def __init__(self, good: str = "") -> None:
        self.good = good
        self._bids = _Half(-1)
        self._asks = _Half(1)
        # Live resting orders by handle. A handle is the order id when the order first rests, and
        # a fresh negative number when modify re-enters it (its old handle then lies dead in the
        # old queue); _alias maps the order id to such a negative handle.
        self._live: dict[int, _Rec] = {}
        self._alias: dict[int, int] = {}
        self._next_id = 1
        self._next_alias = -1
        self._last: int | None = None
        #: Grows whenever the best bid or the best ask may have moved (an order entered at a
        #: new best price, a trade, a best level emptied, a modification, ...; an order resting
        #: behind the best or a part of a best level withdrawn leave it): a reader that derived
        #: something from the best prices (a reference price) reuses it while the number
        #: stands.
        self.top_version = 0

    def __repr__(self) -> str:
        return (
            f"OrderBook({self.good!r}, bid={self.best_bid}, ask={self.best_ask}, "
            f"orders={len(self._live)})"
        )

    def __len__(self) -> int:
        """Number of resting orders."""
        return len(self._live)

    # ------------------------------------------------------------------ order entry

    def limit(self, owner: int, side: Side, qty: int, price: int) -> Result:
        """Submit a limit order: trade what crosses, rest the remainder at ``price``.

        Args:
            owner: agent id of the submitter.
            side: ``"buy"`` or ``"sell"``.
            qty: quantity in base units (int > 0).
            price: limit price in ticks (int > 0).
        """
        if not (
            type(qty) is int
            and type(price) is int
            and type(owner) is int
            and type(side) is str
            and qty > 0
            and price > 0
        ):
            checked = _check_order(owner, side, qty, price, True)
            if isinstance(checked, str):
                return _reject(checked)
            owner, qty, price = checked  # type: ignore[assignment]
        if side == "buy":
            side = _BUY
            own = self._bids
            opp = self._asks
            key = -price
            lim = price
        elif side == "sell":
            side = _SELL
            own = self._asks
            opp = self._bids
            key = price
            lim = -price
        else:
            return _reject(f"side(={side!r}) must be 'buy' or 'sell'")
        oid = self._next_id
        self._next_id = oid + 1
        heap = opp.heap
        if heap and heap[0] <= lim:  # may cross (the top level may also just be stale)
            self.top_version += 1
            return self._execute(oid, oid, owner, side, qty, price, own, opp, lim, True, [])
        # Passive: the hot path of a deep book, kept inline.
        levels = own.levels
        heap = own.heap
        if not heap or key < heap[0] or not levels[heap[0]].qty:  # a new best (or stale top)
            self.top_version += 1
        lvl = levels.get(key)
        if lvl is None:
            lvl = levels[key] = _Level(price)
            heappush(heap, key)
        lvl.q.append(oid)
        lvl.qty += qty
        self._live[oid] = (owner, key, qty, oid)
        return _new_result((oid, _ACCEPTED, (), (), "", qty))

    def market(self, owner: int, side: Side, qty: int) -> Result:
        """Submit a market order: trade up to ``qty`` at any price; never rests.

        Args:
            owner: agent id of the submitter.
            side: ``"buy"`` or ``"sell"``.
            qty: quantity in base units (int > 0).
        """
        return self.submit(owner, side, qty, None, kind="market")

    def ioc(self, owner: int, side: Side, qty: int, price: int) -> Result:
        """Submit an immediate-or-cancel limit order: trade up to ``price``, cancel the rest.

        Args:
            owner: agent id of the submitter.
            side: ``"buy"`` or ``"sell"``.
            qty: quantity in base units (int > 0).
            price: limit price in ticks (int > 0).
        """
        return self.submit(owner, side, qty, price, kind="ioc")

    def submit(
        self, owner: int, side: Side, qty: int, price: int | None = None, kind: Kind = "limit"
    ) -> Result:
        """Submit an order of any kind (``"limit"``, ``"market"`` or ``"ioc"``).

        Args:
            owner: agent id of the submitter.
            side: ``"buy"`` or ``"sell"``.
            qty: quantity in base units (int > 0).
            price: limit price in ticks (int > 0); must be ``None`` for a market order.
            kind: order kind.
        """
        if not isinstance(kind, str) or kind not in _KINDS:
            return _reject(f"kind(={kind!r}) must be one of {', '.join(_KINDS)}")
        if kind == "limit":
            return self.limit(owner, side, qty, price)  # type: ignore[arg-type]
        is_market = kind == "market"
        if is_market and price is not None:
            return _reject(f"price(={price!r}) must be None for a market order")
        checked = _check_order(owner, side, qty, price, not is_market)
        if isinstance(checked, str):
            return _reject(checked)
        owner, qty, price = checked
        if side == "buy":
            side, own, opp = _BUY, self._bids, self._asks
            lim = _INF if price is None else price
        elif side == "sell":
            side, own, opp = _SELL, self._asks, self._bids
            lim = _INF if price is None else -price
        else:
            return _reject(f"side(={side!r}) must be 'buy' or 'sell'")
        oid = self._next_id
        self._next_id = oid + 1
        self.top_version += 1
        return self._execute(oid, oid, owner, side, qty, price, own, opp, lim, False, [])

    def withdraw_all(self) -> list[Cancelled]:
        """Cancel every resting order at once, leaving the book empty: one record per order,
        bids then asks, each side in priority order (what :meth:`cancel` would report, order
        by order, for each of :meth:`orders`). Order ids go on from where they were."""
        out = []
        live = self._live
        for half, side in ((self._bids, _BUY), (self._asks, _SELL)):
            levels = half.levels
            for key in sorted(levels):
                lvl = levels[key]
                for h in lvl.q:
                    rec = live.get(h)
                    if rec is not None:
                        out.append(_new_cancelled((rec[3], rec[0], side, lvl.price, rec[2])))
        self._bids = _Half(-1)
        self._asks = _Half(1)
        self._live = {}
        self._alias = {}
        self.top_version += 1
        return out

    def cancel(self, owner: int, order_id: int) -> Result:
        """Cancel a resting order of ``owner``.

        Args:
            owner: agent id of the caller; must be the order's owner.
            order_id: id of a resting order.

        Returns:
            ``CANCELLED`` with the removed quantity in ``cancelled``, or ``REJECTED`` if the id is
            unknown, no longer resting, or belongs to another owner.
        """
        # Inline lookup for the common cases (int id and owner); _lookup words other rejections.
        if type(order_id) is int and order_id > 0:
            rec = self._live.get(order_id)
            if rec is None and order_id not in self._alias:
                return _new_result(
                    (
                        None,
                        _REJECTED,
                        (),
                        (),
                        f"order {order_id} is unknown or no longer resting",
                        0,
                    )
                )
        else:
            rec = None
        if rec is not None and rec[0] == owner and type(owner) is int:
            h = order_id
        else:
            found = self._lookup(owner, order_id)
            if isinstance(found, str):
                return _reject(found)
            h, rec = found
        _, key, oq, oid = rec
        # _unlink(h, key, oq, oid) written out: every withdraw-and-post passes here.
        del self._live[h]
        if h < 0:
            del self._alias[oid]
        levels = (self._bids if key < 0 else self._asks).levels
        lvl = levels[key]
        lvl.qty -= oq
        if lvl.qty:  # the level stays: its price, best or not, still stands
            lvl.dead += 1
            if lvl.dead > _COMPACT_MIN_DEAD and 2 * lvl.dead > len(lvl.q):
                live = self._live
                lvl.q = deque([x for x in lvl.q if x in live])
                lvl.dead = 0
        else:
            lvl.q.clear()
            lvl.dead = 0
            # the best moved if this was the best level: the top of the heap is empty now
            # (this level, or another emptied one above it)
            if not levels[(self._bids if key < 0 else self._asks).heap[0]].qty:
                self.top_version += 1
        side = _BUY if key < 0 else _SELL
        c = _new_cancelled((oid, owner, side, abs(key), oq))
        return _new_result((oid, _CANCELLED, (), (c,), "cancelled by owner", 0))

    def modify(
        self,
        owner: int,
        order_id: int,
        *,
        new_qty: int | None = None,
        new_price: int | None = None,
    ) -> Result:
        """Change the remaining quantity and/or the price of a resting order of ``owner``.

        Lowering the quantity at the same price keeps time priority; the cut is reported in
        ``cancelled``. A price change or a quantity increase loses priority: the old order is
        reported in ``cancelled`` and re-entered as a limit order of ``new_qty`` under the same id
        (it may trade at once, as taker, if the new price crosses).

        Args:
            owner: agent id of the caller; must be the order's owner.
            order_id: id of a resting order.
            new_qty: new remaining quantity in base units (int > 0); ``None`` keeps it.
            new_price: new limit price in ticks (int > 0); ``None`` keeps it.
        """
        if new_qty is None and new_price is None:
            return _reject("modify needs new_qty or new_price")
        if new_qty is not None:
            nq = _as_int(new_qty)
            if nq is None or nq <= 0:
                return _reject(f"new_qty(={new_qty!r}) must be a positive int (base units)")
            new_qty = nq
        if new_price is not None:
            npr = _as_int(new_price)
            if npr is None or npr <= 0:
                return _reject(f"new_price(={new_price!r}) must be a positive int (ticks)")
            new_price = npr
        found = self._lookup(owner, order_id)
        if isinstance(found, str):
            return _reject(found)
        h, (_, key, oq, oid) = found
        side = _BUY if key < 0 else _SELL
        price = abs(key)
        nq = oq if new_qty is None else new_qty
        npr = price if new_price is None else new_price
        if npr == price and nq <= oq:
            cut: tuple[Cancelled, ...] = ()
            if nq < oq:
                self.top_version += 1
                self._live[h] = (owner, key, nq, oid)
                (self._bids if key < 0 else self._asks).levels[key].qty -= oq - nq
                cut = (_new_cancelled((oid, owner, side, price, oq - nq)),)
            return _new_result((oid, _ACCEPTED, (), cut, "", nq))
        self._unlink(h, key, oq, oid)
        old = [_new_cancelled((oid, owner, side, price, oq))]
        handle = self._next_alias
        self._next_alias = handle - 1
        if side == "buy":
            own, opp, lim = self._bids, self._asks, npr
        else:
            own, opp, lim = self._asks, self._bids, -npr
        return self._execute(handle, oid, owner, side, nq, npr, own, opp, lim, True, old)

    # ------------------------------------------------------------------ market data

    @property
    def best_bid(self) -> int | None:
        """Highest resting buy price in ticks, ``None`` if there is none."""
        lvl = self._bids.best()
        return None if lvl is None else lvl.price

    @property
    def best_ask(self) -> int | None:
        """Lowest resting sell price in ticks, ``None`` if there is none."""
        lvl = self._asks.best()
        return None if lvl is None else lvl.price

    def tops(self) -> tuple[int | None, int | None]:
        """``(best_bid, best_ask)`` in one call: readers of the reference price ask for both on
        every action, and the two properties cost two calls each."""
        # a live level on top of each heap (the usual case) read here, else _Half.best
        bids, asks = self._bids, self._asks
        heap = bids.heap
        lvl = bids.levels[heap[0]] if heap else None
        if lvl is None or not lvl.qty:
            lvl = bids.best()
        bid = None if lvl is None else lvl.price
        heap = asks.heap
        lvl = asks.levels[heap[0]] if heap else None
        if lvl is None or not lvl.qty:
            lvl = asks.best()
        return (bid, None if lvl is None else lvl.price)

    @property
    def last_price(self) -> int | None:
        """Price of the last trade in ticks, ``None`` before the first trade."""
        return self._last

    def quote(self) -> Quote:
        """Best bid and ask with their quantities, and the last trade price."""
        b = self._bids.best()
        a = self._asks.best()
        return Quote(
            None if b is None else b.price,
            None if a is None else a.price,
            self._last,
            0 if b is None else b.qty,
            0 if a is None else a.qty,
        )

    def depth(self, levels: int = 10) -> Depth:
        """L2 depth: up to ``levels`` non-empty price levels per side, best first.

        Args:
            levels: number of levels per side (int >= 1).

        Raises:
            InvalidParameter: if ``levels`` is not an int >= 1.
        """
        n = _as_int(levels)
        if n is None or n < 1:
            raise InvalidParameter(f"levels(={levels!r}) must be an int >= 1")

        def side(half: _Half) -> tuple[tuple[int, int], ...]:
            # The n best non-empty levels, walking the heap from its root in key order (a
            # frontier heap of (key, position)): the cost grows with n and the empty levels
            # passed on the way, not with the depth of the whole book.
            heap, levels = half.heap, half.levels
            size = len(heap)
            out: list[tuple[int, int]] = []
            frontier = [(heap[0], 0)] if size else []
            while frontier and len(out) < n:
                key, i = heappop(frontier)
                lvl = levels[key]
                if lvl.qty:
                    out.append((lvl.price, lvl.qty))
                for c in (2 * i + 1, 2 * i + 2):
                    if c < size:
                        heappush(frontier, (heap[c], c))
            return tuple(out)

        return Depth(side(self._bids), side(self._asks))

    def order(self, order_id: int) -> OrderInfo | None:
        """The resting order ``order_id``, or ``None`` if it is not resting."""
        h = self._handle(order_id)
        if h is None:
            return None
        owner, key, qty, oid = self._live[h]
        return OrderInfo(oid, owner, _BUY if key < 0 else _SELL, abs(key), qty)

    def resting_lots(self, owner: int, order_id: int) -> int:
        """Lots of ``owner``'s order ``order_id`` still resting: 0 once it has traded or been
        cancelled, or if it is not ``owner``'s (:meth:`order` without building its record)."""
        if type(order_id) is int and order_id > 0:  # the common case, looked up inline
            rec = self._live.get(order_id)
            if rec is not None:
                return rec[2] if rec[0] == owner else 0
        h = self._handle(order_id)
        if h is None:
            return 0
        rec = self._live[h]
        return rec[2] if rec[0] == owner else 0

    def orders(self, side: Side, owner: int | None = None) -> list[OrderInfo]:
        """Resting orders of one side in priority order (best price first, then oldest).

        Args:
            side: ``"buy"`` or ``"sell"``.
            owner: if given, only this owner's orders.

        Raises:
            InvalidParameter: if ``side`` is not ``"buy"`` or ``"sell"``.
        """
        if side == "buy":
            half = self._bids
        elif side == "sell":
            half = self._asks
        else:
            raise InvalidParameter(f"side(={side!r}) must be 'buy' or 'sell'")
        live = self._live
        out = []
        for key in sorted(half.levels):
            lvl = half.levels[key]
            for h in lvl.q:
                rec = live.get(h)
                if rec is not None and (owner is None or rec[0] == owner):
                    out.append(OrderInfo(rec[3], rec[0], side, lvl.price, rec[2]))
        return out

    # ------------------------------------------------------------------ internals

    def _handle(self, order_id: object) -> int | None:
        """The handle of the live order ``order_id``, or ``None``."""
        if type(order_id) is not int:
            order_id = _as_int(order_id)
            if order_id is None:
                return None
        if order_id <= 0:  # negative numbers are internal handles, not order ids
            return None
        if order_id in self._live:
            return order_id
        return self._alias.get(order_id)

    def _lookup(self, owner: int, order_id: int) -> tuple[int, _Rec] | str:
        """Handle and record of ``order_id`` if ``owner`` may touch it, else why not."""
        h = self._handle(order_id)
        if h is None:
            if _as_int(order_id) is None:
                return f"order_id(={order_id!r}) must be an int"
            return f"order {order_id} is unknown or no longer resting"
        rec = self._live[h]
        if rec[0] != owner or (type(owner) is not int and _as_int(owner) is None):
            return f"order {order_id} belongs to another owner"
        return h, rec

    def _unlink(self, h: int, key: int, qty: int, oid: int) -> None:
        """Remove a live resting order (lazily: its handle stays in the queue, dead)."""
        self.top_version += 1
        del self._live[h]
        if h < 0:
            del self._alias[oid]
        lvl = (self._bids if key < 0 else self._asks).levels[key]
        lvl.qty -= qty
        if lvl.qty:
            lvl.dead += 1
            if lvl.dead > _COMPACT_MIN_DEAD and 2 * lvl.dead > len(lvl.q):
                live = self._live
                lvl.q = deque([x for x in lvl.q if x in live])
                lvl.dead = 0
        else:
            # Empty level: drop the dead handles now; the key leaves the heap when it is on top.
            lvl.q.clear()
            lvl.dead = 0

    def _execute(
        self,
        handle: int,
        oid: int,
        owner: int,
        side: Side,
        qty: int,
        price: int | None,
        own: _Half,
        opp: _Half,
        lim: float,
        rest: bool,
        cancelled: list[Cancelled],
    ) -> Result:
        """Match an incoming order against ``opp`` at keys <= ``lim``, then rest or cancel the
        remainder. ``handle`` is the queue handle the order gets if it rests."""
        heap, levels, live = opp.heap, opp.levels, self._live
        fills: list[Fill] = []
        left = qty
        while left and heap:
            key = heap[0]
            lvl = levels[key]
            if not lvl.qty:
                heappop(heap)
                del levels[key]
                continue
            if key > lim:
                break
            q = lvl.q
            mprice = lvl.price
            while True:  # the level has live quantity, so a live order is ahead
                h = q[0]
                rec = live.get(h)
                if rec is None:
                    q.popleft()
                    lvl.dead -= 1
                    continue
                mowner, _, mqty, mid = rec
                if mowner == owner:  # self-trade prevention: cancel the resting order
                    q.popleft()
                    del live[h]
                    if h < 0:
                        del self._alias[mid]
                    lvl.qty -= mqty
                    mside = _SELL if side == "buy" else _BUY
                    cancelled.append(_new_cancelled((mid, owner, mside, mprice, mqty)))
                    if not lvl.qty:
                        break
                    continue
                if mqty <= left:
                    q.popleft()
                    del live[h]
                    if h < 0:
                        del self._alias[mid]
                    lvl.qty -= mqty
                    left -= mqty
                    fills.append(_new_fill((mprice, mqty, mid, mowner, oid, owner, side, 0)))
                    if not left or not lvl.qty:
                        break
                else:
                    mleft = mqty - left
                    live[h] = (mowner, key, mleft, mid)
                    lvl.qty -= left
                    fills.append(_new_fill((mprice, left, mid, mowner, oid, owner, side, mleft)))
                    left = 0
                    break
            if not lvl.qty:
                heappop(heap)
                del levels[key]

        resting = 0
        reason = ""
        if left:
            if rest:
                assert price is not None
                key = price * own.sign
                olevels = own.levels
                olvl = olevels.get(key)
                if olvl is None:
                    olvl = olevels[key] = _Level(price)
                    heappush(own.heap, key)
                olvl.q.append(handle)
                olvl.qty += left
                live[handle] = (owner, key, left, oid)
                if handle < 0:
                    self._alias[oid] = handle
                resting = left
            else:
                cancelled.append(_new_cancelled((oid, owner, side, price, left)))
                reason = "unfilled remainder cancelled" if fills else "no liquidity within limit"
        if not fills:
            status = _ACCEPTED if resting else _CANCELLED
        else:
            self._last = fills[-1][0]
            status = _PARTIAL if left else _FILLED
        return _new_result((oid, status, tuple(fills), tuple(cancelled), reason, resting))


def _check_order(
    owner: object, side: object, qty: object, price: object, needs_price: bool
) -> tuple[int, int, int | None] | str:
    """Normalise owner, qty and price to Python ints, or say what is wrong with them."""
    o = _as_int(owner)
    if o is None:
        return f"owner(={owner!r}) must be an int agent id"
    if not isinstance(side, str):
        return f"side(={side!r}) must be 'buy' or 'sell'"
    q = _as_int(qty)
    if q is None or q <= 0:
        return f"qty(={qty!r}) must be a positive int (base units)"
    if not needs_price:
        return o, q, None
    p = _as_int(price)
    if p is None or p <= 0:
        return f"price(={price!r}) must be a positive int (ticks)"
    return o, q, p
