"""Orders, receipts and quotes: the values that cross the market protocol.

Every agent acts on a market by submitting one of these frozen orders; every mechanism answers
each one with exactly one :class:`Receipt`. Orders carry the acting agent's id (a ledger row) and
name goods by their names; quantities and prices are in units (numeraire per unit for prices).
A mechanism checks ownership (only an order's owner may cancel or modify it) and answers what it
cannot do with a rejected receipt: a refusal is data and changes nothing.

Which orders a mechanism takes is its ``accepts`` (a frozenset of these classes); which orders a
strategy sends is its ``emits``. A pairing with nothing in common is refused before the run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from typing import Any, NamedTuple

import numpy as np
from attrs import field, frozen
from numpy.typing import NDArray

from mktsim.errors import InvalidParameter

__all__ = [
    "BUY",
    "SELL",
    "Bid",
    "Cancel",
    "DemandReport",
    "Limit",
    "MarketOrder",
    "Modify",
    "Order",
    "Quote",
    "Receipt",
    "Swap",
    "new_receipt",
    "order_name",
    "rejected",
]

BUY = "buy"
SELL = "sell"


# Each validator first accepts the common case (a plain int, str or float) at the cost of one type
# test: strategies build an order on every action.
def _agent(_: Any, attribute: Any, value: Any) -> None:
    if type(value) is int and value >= 0:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InvalidParameter(f"{attribute.name}(={value!r}) must be an agent id (an int >= 0)")


def _side(_: Any, attribute: Any, value: Any) -> None:
    if value not in (BUY, SELL):
        raise InvalidParameter(f"{attribute.name}(={value!r}) must be 'buy' or 'sell'")


def _good(_: Any, attribute: Any, value: Any) -> None:
    if type(value) is str and value:
        return
    if not isinstance(value, str) or not value:
        raise InvalidParameter(f"{attribute.name}(={value!r}) must be a good's name")


def _positive(_: Any, attribute: Any, value: Any) -> None:
    if type(value) is float and 0.0 < value < math.inf:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise InvalidParameter(f"{attribute.name}(={value!r}) must be a number")
    if not (math.isfinite(value) and value > 0):
        raise InvalidParameter(f"{attribute.name}(={value!r}) must be > 0 and finite")


def _optional_positive(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None:
        _positive(instance, attribute, value)


def _order_id(_: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidParameter(f"{attribute.name}(={value!r}) must be an order id (an int)")


@frozen
class Limit:
    """A limit order: ``qty`` units of ``good`` at ``price`` or better.

    ``ioc`` (immediate or cancel): what does not fill at once is cancelled instead of resting.
    """

    agent: int = field(validator=_agent)
    good: str = field(validator=_good)
    side: str = field(validator=_side)
    qty: float = field(validator=_positive)
    price: float = field(validator=_positive)
    ioc: bool = False


@frozen
class MarketOrder:
    """Buy or sell ``qty`` units at whatever the market offers (a mechanism may protect it, e.g.
    an order book caps a market buy at what the agent's free cash pays)."""

    agent: int = field(validator=_agent)
    good: str = field(validator=_good)
    side: str = field(validator=_side)
    qty: float = field(validator=_positive)


@frozen
class Cancel:
    """Withdraw a resting order (only its owner may)."""

    agent: int = field(validator=_agent)
    good: str = field(validator=_good)
    order_id: int = field(validator=_order_id)


@frozen
class Modify:
    """Change a resting order's quantity and/or price (only its owner may). A mechanism decides
    whether priority is kept (an order book keeps it only for a pure size reduction)."""

    agent: int = field(validator=_agent)
    good: str = field(validator=_good)
    order_id: int = field(validator=_order_id)
    qty: float | None = field(default=None, validator=_optional_positive)
    price: float | None = field(default=None, validator=_optional_positive)


@frozen
class Swap:
    """Trade against a market maker (a pool, a cost-function maker) at its current price.

    ``side`` buy: pay money, receive ``good``; sell: pay ``good``, receive money. ``amount`` is
    what is paid in when ``exact="in"`` (money for a buy, the good for a sell) or what is wanted
    out when ``exact="out"`` (the good for a buy, money for a sell). ``limit`` is the worst
    average price (numeraire per unit) the agent accepts; None for none.
    """

    agent: int = field(validator=_agent)
    good: str = field(validator=_good)
    side: str = field(validator=_side)
    amount: float = field(validator=_positive)
    exact: str = "in"
    limit: float | None = field(default=None, validator=_optional_positive)

    def __attrs_post_init__(self) -> None:
        if self.exact not in ("in", "out"):
            raise InvalidParameter(f"exact(={self.exact!r}) must be 'in' or 'out'")


@frozen
class DemandReport:
    """A population's answer to an auctioneer's posting (prices announced, no trade yet).

    Attributes:
        population: the reporting population's name.
        round: the posting answered.
        excess: aggregate excess demand ``float64[g]`` in units at the posted prices.
        per_agent: per-agent excess demands ``float64[n, g]`` when the posting settles.
    """

    population: str
    round: int
    excess: NDArray[np.float64]
    per_agent: NDArray[np.float64] | None = None


def _amount(_: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise InvalidParameter(f"{attribute.name}(={value!r}) must be a number")
    if not (math.isfinite(value) and value >= 0):
        raise InvalidParameter(f"{attribute.name}(={value!r}) must be >= 0 and finite")


@frozen
class Bid:
    """A sealed bid of ``amount`` (numeraire) for the right to act on a task world's current
    state (:mod:`mktsim.mechanisms.right_to_act`): the highest bid wins, and what the winner
    pays depends on the auction's payment rule."""

    agent: int = field(validator=_agent)
    amount: float = field(validator=_amount)


Order = Limit | MarketOrder | Cancel | Modify | Swap | DemandReport | Bid


def order_name(kind: type) -> str:
    """The name a message uses for an order type (``Limit`` -> ``limit``)."""
    return {MarketOrder: "market", DemandReport: "demand report"}.get(kind, kind.__name__.lower())


class Receipt(NamedTuple):
    """What a mechanism did with one order, in units.

    A named tuple rather than an attrs class: a market answers every order with one, and a
    tuple is built in a fraction of the time (an order book's hot path makes one per order).
    It is still a frozen value with named fields; compare receipts with receipts only.

    Attributes:
        status: ``accepted`` (resting or collected), ``filled``, ``partial`` (filled in part,
            the rest resting or cancelled), ``cancelled``, ``rejected``, or ``pending`` (in
            flight through a latency wrapper; the final receipt comes later).
        order_id: the mechanism's id for the order (None when it has none).
        reason: why it was rejected or (partly) cancelled; ``""`` otherwise.
        filled: units of the good this order traded (> 0 whatever the side).
        price: average price of the fills (numeraire per unit; NaN when nothing traded).
        cash: numeraire the agent paid (+) or received (-) through this order's fills.
        resting: units of the order left resting.
    """

    status: str
    order_id: int | None = None
    reason: str = ""
    filled: float = 0.0
    price: float = math.nan
    cash: float = 0.0
    resting: float = 0.0

    @property
    def ok(self) -> bool:
        """True unless the order was refused."""
        return self.status != "rejected"


#: ``new_receipt((status, order_id, reason, filled, price, cash, resting))``: a receipt from
#: all seven fields at once, without the constructor's Python frame (for a market's hot path).
new_receipt = partial(tuple.__new__, Receipt)


def rejected(reason: str) -> Receipt:
    """A refusal as data."""
    return Receipt("rejected", None, reason)


@frozen
class Quote:
    """What a market shows at ``time``: one reference price per non-numeraire good (posted
    price, last trade or mid, pool or maker price; None when there is none yet). Mechanisms
    return subclasses with more (best bid/ask and depth, reserves, the auctioneer's round)."""

    time: float
    prices: Mapping[str, float | None]
