"""The values the matching engine (:mod:`mktsim.mechanisms._book`) takes and hands out: sides,
order kinds, the status of a call, and the named tuples of its results and market data.

They live apart from the engine so that the engine's module holds only matching, and so that
code reading results (the order-book market, its tests) can name them without the engine's
internals. :mod:`mktsim.mechanisms._book` re-exports every name here.

Units: prices are integer ticks (> 0) of the numeraire per base unit of the good; quantities are
integer base units (> 0).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, NamedTuple

__all__ = [
    "Cancelled",
    "Depth",
    "Fill",
    "Kind",
    "OrderInfo",
    "Quote",
    "Result",
    "Side",
    "Status",
]

Side = Literal["buy", "sell"]
Kind = Literal["limit", "market", "ioc"]


class Status(StrEnum):
    """Outcome of one call.

    ``ACCEPTED``: the order rests untouched (or a modify succeeded without trading).
    ``FILLED``: the order traded in full. ``PARTIAL``: it traded in part; the rest rests (limit)
    or was cancelled (market, ioc). ``CANCELLED``: a cancel succeeded, or a market/ioc order found
    nothing to trade with. ``REJECTED``: bad input; nothing changed.
    """

    ACCEPTED = "accepted"
    FILLED = "filled"
    PARTIAL = "partial"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


class Fill(NamedTuple):
    """One trade between a resting (maker) and an incoming (taker) order.

    Attributes:
        price: trade price in ticks, always the maker's limit price.
        qty: traded quantity in base units (> 0).
        maker_id: id of the resting order.
        maker_owner: owner of the resting order.
        taker_id: id of the incoming order.
        taker_owner: owner of the incoming order.
        taker_side: ``"buy"`` or ``"sell"``; the maker is on the other side.
        maker_left: the maker's remaining quantity after this fill; 0 means it left the book.
    """

    price: int
    qty: int
    maker_id: int
    maker_owner: int
    taker_id: int
    taker_owner: int
    taker_side: Side
    maker_left: int


class Cancelled(NamedTuple):
    """Quantity that left the book (or never entered it) without trading.

    Reported for: a successful cancel; a resting order removed by self-trade prevention; the part
    of a quantity cut by ``modify``; the old order when ``modify`` re-enters it; the unfilled rest
    of a market or ioc order.

    Attributes:
        order_id: the order concerned.
        owner: its owner.
        side: ``"buy"`` or ``"sell"``.
        price: its limit price in ticks; ``None`` for a market order.
        qty: cancelled quantity in base units (> 0).
    """

    order_id: int
    owner: int
    side: Side
    price: int | None
    qty: int


class Result(NamedTuple):
    """What one submit, cancel or modify did.

    Attributes:
        order_id: id of the order submitted, cancelled or modified; ``None`` when rejected.
        status: see :class:`Status`.
        fills: trades, in execution order (this order as taker).
        cancelled: quantities removed without trading, in the order they happened.
        reason: why the order was rejected or (partly) cancelled; ``""`` otherwise.
        resting: this order's quantity left on the book after the call (base units).
    """

    order_id: int | None
    status: Status
    fills: tuple[Fill, ...]
    cancelled: tuple[Cancelled, ...]
    reason: str
    resting: int


class OrderInfo(NamedTuple):
    """A resting order as seen from outside: id, owner, side, price (ticks), remaining qty."""

    order_id: int
    owner: int
    side: Side
    price: int
    qty: int


class Quote(NamedTuple):
    """Top of book: best prices (ticks, ``None`` if that side is empty), the quantity resting at
    each, and the price of the last trade (``None`` before the first)."""

    best_bid: int | None
    best_ask: int | None
    last_price: int | None
    bid_qty: int
    ask_qty: int


class Depth(NamedTuple):
    """L2 depth: ``(price, total qty)`` per level, best first, on each side."""

    bids: tuple[tuple[int, int], ...]
    asks: tuple[tuple[int, int], ...]
