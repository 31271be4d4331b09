"""The order-book matching engine against a deliberately naive reference matcher.

The reference keeps every resting order in one flat list and, for each unit of work, scans it for
the best price and then the earliest time. It shares no code with the engine, only the rules
written in the engine's module docstring (price-time priority, maker price, cancel-resting
self-trade prevention, modify semantics, id numbering).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mktsim.mechanisms import _book
from mktsim.mechanisms._book import Cancelled, Fill, OrderBook, OrderInfo, Side, Status

from mktsim.errors import InvalidParameter

# ---------------------------------------------------------------------------- naive reference


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _pos_int(x: object) -> bool:
    return _is_int(x) and x > 0  # type: ignore[operator]


@dataclass
class _RefOrder:
    oid: int
    owner: int
    side: str
    price: int
    qty: int
    time: int


class RefBook:
    """Flat list of resting orders; every match scans the whole list."""

    def __init__(self) -> None:
        self.orders: list[_RefOrder] = []
        self.next_id = 1
        self.clock = 0
        self.last: int | None = None

    # Outcome tuples: (order_id, status, fills, cancelled, resting); fills and cancelled hold
    # plain tuples in the field order of Fill and Cancelled.
    REJECT = (None, "rejected", (), (), 0)

    def submit(self, owner: Any, side: Any, qty: Any, price: Any, kind: Any) -> tuple:
        if kind not in ("limit", "market", "ioc"):
            return self.REJECT
        if kind == "market" and price is not None:
            return self.REJECT
        if not _is_int(owner) or side not in ("buy", "sell") or not _pos_int(qty):
            return self.REJECT
        if kind != "market" and not _pos_int(price):
            return self.REJECT
        oid = self.next_id
        self.next_id += 1
        return self._enter(oid, owner, side, qty, price, rest=kind == "limit", cancelled=[])

    def cancel(self, owner: Any, oid: Any) -> tuple:
        o = self._find(oid)
        if o is None or not _is_int(owner) or o.owner != owner:
            return self.REJECT
        self.orders.remove(o)
        return (o.oid, "cancelled", (), ((o.oid, o.owner, o.side, o.price, o.qty),), 0)

    def modify(self, owner: Any, oid: Any, new_qty: Any, new_price: Any) -> tuple:
        if new_qty is None and new_price is None:
            return self.REJECT
        if new_qty is not None and not _pos_int(new_qty):
            return self.REJECT
        if new_price is not None and not _pos_int(new_price):
            return self.REJECT
        o = self._find(oid)
        if o is None or not _is_int(owner) or o.owner != owner:
            return self.REJECT
        nq = o.qty if new_qty is None else new_qty
        np_ = o.price if new_price is None else new_price
        if np_ == o.price and nq <= o.qty:
            cut = o.qty - nq
            o.qty = nq
            cancelled = ((o.oid, o.owner, o.side, o.price, cut),) if cut else ()
            return (o.oid, "accepted", (), cancelled, nq)
        self.orders.remove(o)
        old = [(o.oid, o.owner, o.side, o.price, o.qty)]
        return self._enter(o.oid, owner, o.side, nq, np_, rest=True, cancelled=old)

    def _find(self, oid: Any) -> _RefOrder | None:
        if not _is_int(oid):
            return None
        for o in self.orders:
            if o.oid == oid:
                return o
        return None

    def _enter(self, oid, owner, side, qty, price, rest, cancelled) -> tuple:
        fills = []
        while qty > 0:
            if side == "buy":
                cands = [o for o in self.orders if o.side == "sell"]
                cands = [o for o in cands if price is None or o.price <= price]
                rank = [(o.price, o.time) for o in cands]
            else:
                cands = [o for o in self.orders if o.side == "buy"]
                cands = [o for o in cands if price is None or o.price >= price]
                rank = [(-o.price, o.time) for o in cands]
            if not cands:
                break
            best = cands[rank.index(min(rank))]
            if best.owner == owner:
                self.orders.remove(best)
                cancelled.append((best.oid, best.owner, best.side, best.price, best.qty))
                continue
            q = min(qty, best.qty)
            best.qty -= q
            qty -= q
            fills.append((best.price, q, best.oid, best.owner, oid, owner, side, best.qty))
            self.last = best.price
            if best.qty == 0:
                self.orders.remove(best)
        resting = 0
        if qty > 0:
            if rest:
                self.clock += 1
                self.orders.append(_RefOrder(oid, owner, side, price, qty, self.clock))
                resting = qty
            else:
                cancelled.append((oid, owner, side, price, qty))
        if not fills:
            status = "accepted" if resting else "cancelled"
        else:
            status = "partial" if qty > 0 else "filled"
        return (oid, status, tuple(fills), tuple(cancelled), resting)

    def resting(self, side: str) -> list[tuple]:
        """(id, owner, side, price, qty) in priority order."""
        sign = 1 if side == "sell" else -1
        mine = [o for o in self.orders if o.side == side]
        mine.sort(key=lambda o: (sign * o.price, o.time))
        return [(o.oid, o.owner, o.side, o.price, o.qty) for o in mine]


def _outcome(r: _book.Result) -> tuple:
    return (
        r.order_id,
        r.status.value,
        tuple(tuple(f) for f in r.fills),
        tuple(tuple(c) for c in r.cancelled),
        r.resting,
    )


def _state(book: OrderBook) -> tuple:
    return (
        [tuple(o) for o in book.orders("buy")],
        [tuple(o) for o in book.orders("sell")],
        book.last_price,
        len(book),
    )


def _depth_from(orders: list[tuple]) -> tuple[tuple[int, int], ...]:
    totals: dict[int, int] = {}
    for o in orders:
        totals[o[3]] = totals.get(o[3], 0) + o[4]
    return tuple(totals.items())  # orders are in priority order, so levels are too


# ---------------------------------------------------------------------------- strategies


def _mostly(good: list[Any], bad: list[Any]) -> st.SearchStrategy[Any]:
    """A value from ``good`` about 19 times in 20, otherwise one of ``bad`` (a single draw)."""
    reps = max(1, 19 * len(bad) // len(good))
    return st.sampled_from(good * reps + bad)


def _weighted(*options: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, chosen with the given integer weights (one_of picks uniformly
    among distinct strategies, so each option is repeated as distinct copies)."""
    return st.one_of(*[s.map(lambda x: x) for w, s in options for _ in range(w)])


_owner = _mostly([0, 1, 2], [1.0, True, "1", None])
_side = _mostly(["buy", "sell"], ["hold", None, 0])
_qty = _mostly(list(range(1, 13)), [2.0, True, "3", None, 0, -1])
_price = _mostly(list(range(1, 13)), [5.5, True, "7", None, 0, -1])
_kind = _mostly(["limit", "limit", "limit", "ioc"], ["stop", None])
_oid = _mostly(list(range(1, 21)), [0, -1, 1.0, "1", None, True])
_opt_qty = st.one_of(st.none(), _qty)
_opt_price = st.one_of(st.none(), _price)
# A cancel/modify target: a raw id, or ("live", k, as_owner): the k-th order resting in the
# reference book (mod their number), sent by its owner if as_owner else by the op's owner.
_live_target = st.tuples(st.just("live"), st.integers(0, 50), st.booleans())
_target = _weighted((1, _oid), (3, _live_target))

_submit = st.tuples(st.just("submit"), _owner, _side, _qty, _price, _kind)
_market = st.tuples(st.just("submit"), _owner, _side, _qty, st.none(), st.just("market"))
_cancel = st.tuples(st.just("cancel"), _owner, _target)
_modify = st.tuples(st.just("modify"), _owner, _target, _opt_qty, _opt_price)
_ops = st.lists(
    _weighted((5, _submit), (1, _market), (2, _cancel), (2, _modify)), min_size=10, max_size=60
)


def _resolve(op: tuple, ref: RefBook) -> tuple:
    """Turn a ("live", k, as_owner) target into a concrete (owner, id) using the reference."""
    if op[0] == "submit" or not isinstance(op[2], tuple):
        return op
    _, k, as_owner = op[2]
    if not ref.orders:
        return (op[0], op[1], k + 1, *op[3:])
    o = ref.orders[k % len(ref.orders)]
    return (op[0], o.owner if as_owner else op[1], o.oid, *op[3:])


def _apply(book: OrderBook, ref: RefBook, op: tuple) -> tuple[_book.Result, tuple]:
    if op[0] == "submit":
        _, owner, side, qty, price, kind = op
        return book.submit(owner, side, qty, price, kind=kind), ref.submit(
            owner, side, qty, price, kind
        )
    if op[0] == "cancel":
        _, owner, oid = op
        return book.cancel(owner, oid), ref.cancel(owner, oid)
    _, owner, oid, nq, npr = op
    return book.modify(owner, oid, new_qty=nq, new_price=npr), ref.modify(owner, oid, nq, npr)


def _run_stream(ops: list[tuple]) -> None:
    book, ref = OrderBook("g"), RefBook()
    inflow: dict[int, int] = {}  # order id -> quantity submitted, re-entries included
    outflow: dict[int, int] = {}  # order id -> quantity filled (as maker or taker) or cancelled
    for raw in ops:
        op = _resolve(raw, ref)
        before = _state(book)
        target = book.order(op[2]) if op[0] in ("cancel", "modify") else None
        res, expected = _apply(book, ref, op)
        after = _state(book)

        # Same outcome as the naive matcher, same resting orders in the same priority order.
        assert _outcome(res) == expected, op
        assert after[0] == ref.resting("buy") and after[1] == ref.resting("sell"), op
        assert book.last_price == ref.last
        ref_by_id = {o.oid: (o.oid, o.owner, o.side, o.price, o.qty) for o in ref.orders}
        for i in range(1, ref.next_id):  # lookup by id, including ids of orders now gone
            info = book.order(i)
            assert (None if info is None else tuple(info)) == ref_by_id.get(i)

        # Never crossed; quote and depth agree with the resting orders.
        bb, ba = book.best_bid, book.best_ask
        assert bb is None or ba is None or bb < ba
        q = book.quote()
        assert (q.best_bid, q.best_ask, q.last_price) == (bb, ba, ref.last)
        d = book.depth(100)
        assert d.bids == _depth_from(after[0]) and d.asks == _depth_from(after[1])
        assert q.bid_qty == (d.bids[0][1] if d.bids else 0)
        assert q.ask_qty == (d.asks[0][1] if d.asks else 0)

        if res.status is Status.REJECTED:
            assert res.reason and res.order_id is None and not res.fills and not res.cancelled
            assert after == before, op
            continue

        # Nobody can remove someone else's order, by cancel, modify or self-trade prevention.
        owner = op[1]
        if target is not None and target.owner != owner:
            raise AssertionError(f"{op} touched another owner's order")
        assert all(c.owner == owner for c in res.cancelled)
        assert all(f.maker_owner != f.taker_owner for f in res.fills)

        # Quantity conservation per order: submitted = filled + resting + cancelled.
        oid = res.order_id
        assert oid is not None
        if op[0] == "submit":
            inflow[oid] = op[3]
        elif op[0] == "modify" and target is not None:
            reentered = (op[4] is not None and op[4] != target.price) or (
                op[3] is not None and op[3] > target.qty
            )
            if reentered:
                inflow[oid] += op[3] if op[3] is not None else target.qty
        for f in res.fills:
            outflow[f.maker_id] = outflow.get(f.maker_id, 0) + f.qty
            outflow[f.taker_id] = outflow.get(f.taker_id, 0) + f.qty
        for c in res.cancelled:
            outflow[c.order_id] = outflow.get(c.order_id, 0) + c.qty
        resting = {o.order_id: o.qty for o in book.orders("buy") + book.orders("sell")}
        for i, submitted in inflow.items():
            assert submitted == outflow.get(i, 0) + resting.get(i, 0), (i, op)


# ---------------------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None)
@given(_ops)
def test_random_streams_match_naive_reference(ops: list[tuple]) -> None:
    _run_stream(ops)


@settings(max_examples=40, deadline=None)
@given(_ops)
def test_random_streams_with_eager_queue_compaction(ops: list[tuple]) -> None:
    # Compacting after every dead record exercises the queue rebuild that deep books trigger.
    saved = _book._COMPACT_MIN_DEAD
    _book._COMPACT_MIN_DEAD = 0
    try:
        _run_stream(ops)
    finally:
        _book._COMPACT_MIN_DEAD = saved


_dense_ops = st.lists(
    _weighted(
        (
            5,
            st.tuples(
                st.just("submit"),
                st.integers(0, 2),
                st.sampled_from(["buy", "sell"]),
                st.integers(1, 5),
                st.integers(1, 4),
                st.sampled_from(["limit", "limit", "ioc"]),
            ),
        ),
        (1, st.tuples(st.just("cancel"), st.integers(0, 2), _live_target)),
        (
            3,
            st.tuples(
                st.just("modify"),
                st.integers(0, 2),
                _live_target,
                st.one_of(st.none(), st.integers(1, 6)),
                st.one_of(st.none(), st.integers(1, 4)),
            ),
        ),
    ),
    min_size=10,
    max_size=60,
)


@settings(max_examples=80, deadline=None)
@given(_dense_ops)
def test_dense_valid_streams_match_naive_reference(ops: list[tuple]) -> None:
    # Few prices and owners: long queues, frequent self-trade prevention and re-entries.
    _run_stream(ops)


# ---------------------------------------------------------------------------- examples


def _id(r: _book.Result) -> int:
    """The order id of a result that is not a rejection."""
    assert r.order_id is not None, r.reason
    return r.order_id


def test_price_then_time_priority_and_maker_price() -> None:
    book = OrderBook()
    a = _id(book.limit(1, "sell", 5, 101))
    b = _id(book.limit(2, "sell", 5, 101))
    c = _id(book.limit(3, "sell", 5, 100))
    r = book.limit(4, "buy", 12, 105)
    assert r.status is Status.FILLED
    assert [(f.maker_id, f.price, f.qty) for f in r.fills] == [
        (c, 100, 5),
        (a, 101, 5),
        (b, 101, 2),
    ]
    assert r.fills[-1].maker_left == 3
    assert book.best_ask == 101 and book.best_bid is None and book.last_price == 101
    assert book.orders("sell") == [OrderInfo(b, 2, "sell", 101, 3)]


def test_partial_fill_rests_remainder_and_keeps_maker_priority() -> None:
    book = OrderBook()
    m1 = _id(book.limit(1, "buy", 10, 50))
    m2 = _id(book.limit(2, "buy", 10, 50))
    r = book.limit(3, "sell", 4, 50)
    assert r.status is Status.FILLED and r.fills[0].maker_id == m1 and r.fills[0].maker_left == 6
    r = book.limit(3, "sell", 20, 49)
    assert r.status is Status.PARTIAL and r.resting == 4
    assert [(f.maker_id, f.qty, f.price) for f in r.fills] == [(m1, 6, 50), (m2, 10, 50)]
    assert book.quote() == (None, 49, 50, 0, 4)


def test_ioc_fills_up_to_limit_and_cancels_the_rest() -> None:
    book = OrderBook()
    book.limit(1, "sell", 3, 10)
    book.limit(1, "sell", 3, 12)
    r = book.ioc(2, "buy", 5, 11)
    assert r.status is Status.PARTIAL and r.resting == 0
    assert [(f.price, f.qty) for f in r.fills] == [(10, 3)]
    assert r.cancelled == (Cancelled(_id(r), 2, "buy", 11, 2),)
    assert book.best_bid is None and book.depth().asks == ((12, 3),)
    r = book.ioc(2, "buy", 5, 11)
    assert r.status is Status.CANCELLED and not r.fills and r.cancelled[0].qty == 5
    assert book.depth().asks == ((12, 3),)


def test_market_order_on_empty_book_trades_nothing_and_never_rests() -> None:
    book = OrderBook()
    r = book.market(1, "buy", 7)
    assert r.status is Status.CANCELLED and r.order_id == 1 and not r.fills and r.resting == 0
    assert r.cancelled == (Cancelled(1, 1, "buy", None, 7),)
    assert len(book) == 0 and book.quote() == (None, None, None, 0, 0)
    assert book.limit(1, "sell", 1, 5).order_id == 2  # the market order consumed id 1


def test_market_order_walks_the_book() -> None:
    book = OrderBook()
    for price in (7, 5, 6):
        book.limit(1, "buy", 2, price)
    r = book.market(2, "sell", 5)
    assert r.status is Status.FILLED
    assert [(f.price, f.qty, f.taker_side) for f in r.fills] == [
        (7, 2, "sell"),
        (6, 2, "sell"),
        (5, 1, "sell"),
    ]


def test_self_trade_prevention_cancels_resting_and_continues() -> None:
    book = OrderBook()
    own = _id(book.limit(1, "sell", 4, 10))
    other = _id(book.limit(2, "sell", 4, 10))
    behind = _id(book.limit(1, "sell", 4, 11))
    r = book.limit(1, "buy", 3, 11)
    assert r.cancelled == (Cancelled(own, 1, "sell", 10, 4),)
    assert [(f.maker_id, f.qty) for f in r.fills] == [(other, 3)]
    assert book.order(behind) == OrderInfo(behind, 1, "sell", 11, 4)  # not reached: untouched
    assert book.order(own) is None


def test_only_the_owner_may_cancel_or_modify() -> None:
    book = OrderBook()
    oid = _id(book.limit(1, "buy", 5, 10))
    for r in (
        book.cancel(2, oid),
        book.modify(2, oid, new_qty=1),
        book.modify(2, oid, new_price=9),
    ):
        assert r.status is Status.REJECTED and "another owner" in r.reason
    assert book.order(oid) == OrderInfo(oid, 1, "buy", 10, 5)
    r = book.cancel(1, oid)
    assert r.status is Status.CANCELLED and r.cancelled == (Cancelled(oid, 1, "buy", 10, 5),)
    assert book.cancel(1, oid).status is Status.REJECTED  # already gone


def test_modify_priority_rules() -> None:
    book = OrderBook()
    a = _id(book.limit(1, "sell", 5, 10))
    b = _id(book.limit(2, "sell", 5, 10))
    r = book.modify(1, a, new_qty=3)  # cut: keeps priority
    assert r.status is Status.ACCEPTED and r.cancelled == (Cancelled(a, 1, "sell", 10, 2),)
    assert [o.order_id for o in book.orders("sell")] == [a, b]
    book.modify(1, a, new_qty=4)  # increase: to the back
    assert [o.order_id for o in book.orders("sell")] == [b, a]
    book.modify(2, b, new_price=11)
    book.modify(2, b, new_price=10)  # price round trip: behind a now
    assert [o.order_id for o in book.orders("sell")] == [a, b]
    r = book.modify(1, a, new_price=9, new_qty=4)
    assert r.cancelled == (Cancelled(a, 1, "sell", 10, 4),) and r.resting == 4
    assert book.best_ask == 9 and book.order(a) == OrderInfo(a, 1, "sell", 9, 4)


def test_modify_across_the_spread_trades_as_taker_under_the_same_id() -> None:
    book = OrderBook()
    bid = _id(book.limit(1, "buy", 5, 10))
    ask = _id(book.limit(2, "sell", 3, 12))
    r = book.modify(1, bid, new_price=13)
    assert r.order_id == bid and r.status is Status.PARTIAL and r.resting == 2
    assert r.fills == (Fill(12, 3, ask, 2, bid, 1, "buy", 0),)
    assert book.order(bid) == OrderInfo(bid, 1, "buy", 13, 2)
    assert book.cancel(1, bid).cancelled == (Cancelled(bid, 1, "buy", 13, 2),)
    assert len(book) == 0


def test_reentered_order_leaves_no_trace_once_filled() -> None:
    book = OrderBook()
    a = _id(book.limit(1, "sell", 2, 10))
    book.modify(1, a, new_price=11)  # re-entered under the same id
    assert book.limit(2, "buy", 2, 11).fills[0].maker_id == a
    assert book.order(a) is None and len(book) == 0
    for r in (book.cancel(1, a), book.modify(1, a, new_qty=1)):
        assert r.status is Status.REJECTED and "no longer resting" in r.reason


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.limit(1, "buy", 0, 10),
        lambda b: b.limit(1, "buy", -3, 10),
        lambda b: b.limit(1, "buy", 2.0, 10),
        lambda b: b.limit(1, "buy", True, 10),
        lambda b: b.limit(1, "buy", "2", 10),
        lambda b: b.limit(1, "buy", 2, 0),
        lambda b: b.limit(1, "buy", 2, 10.5),
        lambda b: b.limit(1, "buy", 2, None),
        lambda b: b.limit(1, "bid", 2, 10),
        lambda b: b.limit(1, ["buy"], 2, 10),
        lambda b: b.limit(1, np.array(["buy", "sell"]), 2, 10),
        lambda b: b.limit(1.5, "buy", 2, 10),
        lambda b: b.limit(None, "buy", 2, 10),
        lambda b: b.market(1, "buy", 0),
        lambda b: b.submit(1, "buy", 2, 10, kind="market"),
        lambda b: b.submit(1, "buy", 2, 10, kind="stop"),
        lambda b: b.submit(1, "buy", 2, 10, kind=["limit"]),
        lambda b: b.ioc(1, "sell", 2, -1),
        lambda b: b.cancel(1, 999),
        lambda b: b.cancel(1, "1"),
        lambda b: b.cancel(1, [1]),
        lambda b: b.cancel(1, -1),
        lambda b: b.cancel(1.0, 1),
        lambda b: b.cancel(2, 1),
        lambda b: b.modify(1, 1),
        lambda b: b.modify(1, 1, new_qty=0),
        lambda b: b.modify(1, 1, new_price=2.5),
        lambda b: b.modify(1, 999, new_qty=1),
        lambda b: b.modify(2, 1, new_qty=1),
    ],
)
def test_bad_input_is_rejected_as_data(call: Any) -> None:
    book = OrderBook()
    book.limit(1, "sell", 3, 20)
    book.limit(3, "buy", 3, 10)
    before = _state(book)
    r = call(book)
    assert r.status is Status.REJECTED and r.order_id is None and r.reason
    assert _state(book) == before
    assert book.limit(4, "buy", 1, 1).order_id == 3  # no id was consumed


def test_numpy_integers_are_accepted() -> None:
    book = OrderBook()
    one: Any = np.int64(1)
    four: Any = np.int32(4)
    ten: Any = np.int64(10)
    r = book.limit(one, "sell", four, ten)
    info = book.order(_id(r))
    assert r.status is Status.ACCEPTED and info is not None and type(info.price) is int
    r = book.limit(2, "buy", np.uint8(4), 10)  # type: ignore[arg-type]
    assert r.status is Status.FILLED and r.fills[0].qty == 4


def test_depth_aggregates_levels_best_first() -> None:
    book = OrderBook()
    orders: list[tuple[int, Side, int, int]] = [
        (1, "buy", 2, 9),
        (2, "buy", 3, 9),
        (1, "buy", 1, 8),
        (1, "sell", 4, 12),
        (2, "sell", 1, 11),
        (3, "buy", 5, 7),
    ]
    for owner, side, qty, price in orders:
        book.limit(owner, side, qty, price)
    assert book.depth(2) == (((9, 5), (8, 1)), ((11, 1), (12, 4)))
    assert book.depth().bids == ((9, 5), (8, 1), (7, 5))
    with pytest.raises(InvalidParameter, match="levels"):
        book.depth(0)


def test_deep_queue_with_many_cancels_keeps_time_order() -> None:
    # Enough cancels in one level to trigger queue compaction at the default threshold.
    rng = np.random.default_rng(7)
    book = OrderBook()
    ids = [_id(book.limit(int(rng.integers(0, 5)), "sell", 1, 100)) for _ in range(300)]
    gone = set(rng.choice(ids, size=220, replace=False).tolist())
    for oid in ids:
        info = book.order(oid)
        assert info is not None
        if oid in gone:
            assert book.cancel(info.owner, oid).status is Status.CANCELLED
    survivors = [oid for oid in ids if oid not in gone]
    r = book.market(99, "buy", 1000)
    assert [f.maker_id for f in r.fills] == survivors
    assert len(book) == 0 and book.best_ask is None


@settings(max_examples=60, deadline=None)
@given(_ops)
def test_withdraw_all_cancels_what_the_reference_holds_in_priority_order(ops: list[tuple]) -> None:
    book, ref = OrderBook("g"), RefBook()
    for raw in ops:
        _apply(book, ref, _resolve(raw, ref))
    expected = ref.resting("buy") + ref.resting("sell")
    withdrawn = book.withdraw_all()
    assert all(type(c) is Cancelled for c in withdrawn)
    assert [tuple(c) for c in withdrawn] == expected
    assert len(book) == 0 and book.best_bid is None and book.best_ask is None
    assert all(book.order(c.order_id) is None for c in withdrawn)
    # Ids go on; the emptied book takes orders on both sides as a new one would.
    r = book.limit(1, "buy", 5, 10)
    assert (r.order_id, r.status, r.fills) == (ref.next_id, Status.ACCEPTED, ())
    r = book.limit(2, "sell", 5, 11)
    assert (r.order_id, r.status, r.fills) == (ref.next_id + 1, Status.ACCEPTED, ())
    assert book.withdraw_all() == [
        Cancelled(ref.next_id, 1, "buy", 10, 5),
        Cancelled(ref.next_id + 1, 2, "sell", 11, 5),
    ]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_top_version_stands_only_while_the_best_prices_do(seed: int) -> None:
    """``top_version`` may stay put only when the best bid and ask have not moved (a reader
    keeps prices derived from them while it stands), and does stay put for an order resting
    behind the best: over random limits, cancels, modifies, market and ioc orders, the best
    prices read before and after every step agree whenever the number did not move."""
    rng = np.random.default_rng(seed)
    book = OrderBook("x")
    resting: list[tuple[int, int]] = []
    kept_for_deeper = 0
    for _ in range(3000):
        before, version = book.tops(), book.top_version
        owner, side = int(rng.integers(8)), ("buy", "sell")[int(rng.integers(2))]
        price, qty = int(rng.integers(90, 111)), int(rng.integers(1, 4))
        kind = rng.random()
        if kind < 0.5:
            r = book.limit(owner, side, qty, price)
            if r.resting:
                resting.append((owner, r.order_id))
            if not r.fills and book.tops() == before:
                kept_for_deeper += book.top_version == version
        elif kind < 0.75 and resting:
            book.cancel(*resting.pop(int(rng.integers(len(resting)))))
        elif kind < 0.85 and resting:
            who, oid = resting[int(rng.integers(len(resting)))]
            book.modify(who, oid, new_qty=int(rng.integers(1, 4)), new_price=price)
        elif kind < 0.92:
            book.market(owner, side, qty)
        elif kind < 0.99:
            book.ioc(owner, side, qty, price)
        else:
            book.withdraw_all()
            resting.clear()
        if book.top_version == version:
            assert book.tops() == before
    assert kept_for_deeper > 100  # orders behind the best leave the number (and readers) be
