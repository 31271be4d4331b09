"""One agent's unit-level access to the order book: what a
:class:`mktsim.mechanisms.order_book.TraderHandle` asks of the market, with the agent named.

A mixin of :class:`mktsim.mechanisms.order_book.OrderBookMarket` (whose docstring documents the
mechanism), kept apart so that each module holds one responsibility: these methods check a hand-
written order (good names, prices and quantities in units), word its refusal, and pass it to the
order entry in ticks and lots. A handle is a thin view that names its agent; it reads nothing of
the market but these methods.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, cast

import numpy as np
from mktsim.mechanisms._book_records import _float_or_nan
from mktsim.mechanisms._book_state import _ID_LIMIT, _NAN, _BookState

from mktsim.orders import Cancel, Limit, MarketOrder, Modify, Receipt

_BAD_ID = "order_id(={!r}) must be an integer in [1, 2**63) (or a pending order's provisional id)"


class OrderView(NamedTuple):
    """A resting order in units: good, id, side, price (numeraire per unit), quantity (units)."""

    good: str
    order_id: int
    side: str
    price: float
    quantity: float


class _Handles(_BookState):
    """Orders and reads in units on behalf of one agent (the handles' API)."""

    # -- orders
    def agent_order(
        self, agent: int, kind: str, good: Any, side: Any, quantity: Any, price: Any
    ) -> Receipt:
        """A ``limit``, ``ioc`` or ``market`` order of ``agent`` (``price`` None for a market
        order), checked and worded as a handle's."""
        self.actions += 1
        g, bad = self._good_of(good)
        if not bad and side not in ("buy", "sell"):
            bad = f"side(={side!r}) must be 'buy' or 'sell'"
        lots = ticks = None
        if not bad:
            lots, bad = _to_steps(quantity, self.lot, "quantity", "a whole number of lots")
        if not bad and kind != "market":
            ticks, bad = _to_steps(price, self.tick, "price", "on the tick")
        if bad:
            self.record_rejection(
                agent,
                g,
                kind,
                side if side in ("buy", "sell") else "",
                _float_or_nan(price),
                _float_or_nan(quantity),
                bad,
            )
            return Receipt("rejected", None, bad)
        assert lots is not None
        if self._front is not None:  # shock wrappers surround the book: through them
            qty = lots * self.lot
            order: Limit | MarketOrder = (
                MarketOrder(agent, good, side, qty)
                if kind == "market"
                else Limit(agent, good, side, qty, self.price_of(ticks or 0), ioc=kind == "ioc")
            )
            return cast(Receipt, self._front.submit(order).value)
        buy = side == "buy"
        if kind == "market":
            r = self._market(agent, g, buy, lots)
        else:
            assert ticks is not None
            r = self._limit(agent, g, buy, lots, ticks, kind)
        return self._order_receipt(r, buy)

    def agent_cancel(self, agent: int, good: Any, order_id: Any) -> Receipt:
        """Cancel one of ``agent``'s resting orders, checked and worded as a handle's."""
        self.actions += 1
        g, bad = self._good_of(good)
        oid = self._order_id(order_id)
        if bad or oid is None:
            reason = bad or _BAD_ID.format(order_id)
            self.record_rejection(agent, g, "cancel", "", _NAN, _NAN, reason)
            return Receipt("rejected", None, reason)
        if self._front is not None:  # shock wrappers surround the book: through them
            return cast(Receipt, self._front.submit(Cancel(agent, good, oid)).value)
        return self._order_receipt(self._cancel(agent, g, oid), False)

    def agent_modify(
        self, agent: int, good: Any, order_id: Any, quantity: Any = None, price: Any = None
    ) -> Receipt:
        """Change the quantity and/or price of one of ``agent``'s resting orders, checked and
        worded as a handle's."""
        self.actions += 1
        g, bad = self._good_of(good)
        oid = self._order_id(order_id)
        lots = ticks = None
        if not bad and oid is None:
            bad = _BAD_ID.format(order_id)
        if not bad and quantity is None and price is None:
            bad = "modify needs a quantity or a price"
        if not bad and quantity is not None:
            lots, bad = _to_steps(quantity, self.lot, "quantity", "a whole number of lots")
        if not bad and price is not None:
            ticks, bad = _to_steps(price, self.tick, "price", "on the tick")
        if bad:
            self.record_rejection(
                agent,
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
        if self._front is not None:  # shock wrappers surround the book: through them
            qty = None if lots is None else lots * self.lot
            price = None if ticks is None else self.price_of(ticks)
            change = Modify(agent, good, oid, qty=qty, price=price)
            return cast(Receipt, self._front.submit(change).value)
        buy = self._side_of(g, oid)
        return self._order_receipt(self._modify(agent, g, oid, lots, ticks), buy)

    # -- reading
    def agent_orders(self, agent: int, good: str | None = None) -> list[OrderView]:
        """``agent``'s resting orders (of one good or all), in units (orders still on their way
        to the book during a latency spike are not resting yet)."""
        goods = self._traded if good is None else [self.ctx.goods.index(good)]
        out = []
        for g in goods:
            book = self._books[g]
            for side in ("buy", "sell"):
                for o in book.orders(side, owner=agent):
                    out.append(
                        OrderView(
                            self._goods[g],
                            o.order_id,
                            side,
                            self.price_of(o.price),
                            o.qty * self.lot,
                        )
                    )
        return out

    def agent_holdings(self, agent: int) -> dict[str, float]:
        """Everything ``agent`` holds (reserved included), in units."""
        return self.ctx.goods.as_dict(self._h[agent] / self.base_units)

    def agent_free(self, agent: int) -> dict[str, float]:
        """What ``agent`` holds beyond its resting orders' reservations, in units."""
        out = {}
        for j, name in enumerate(self._goods):
            base = self.free_cash(agent) if j == self._num else self.free_goods(agent, j)
            out[name] = base / self.base_units
        return out

    # -- checks
    def _good_of(self, good: Any) -> tuple[int, str]:
        """A traded good's index from its name, or -1 and why not."""
        goods = self._goods
        if not isinstance(good, str) or good not in goods:
            valid = ", ".join(goods[j] for j in self._traded)
            return -1, f"unknown good {good!r}; valid: {valid}"
        g = goods.index(good)
        if g == self._num:
            return -1, f"{good!r} is the numeraire: it is what the books trade against"
        return g, ""

    def _order_id(self, value: Any) -> int | None:
        """A book's order id (> 0), or a provisional one (< 0) when shock wrappers surround the
        book (the latency wrapper maps it, or refuses it), else None."""
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            return None
        if 0 < value < _ID_LIMIT or (value < 0 and self._front is not None):
            return int(value)
        return None

    def _side_of(self, g: int, oid: int) -> bool | None:
        """Whether the resting order ``oid`` buys (None when it is not resting)."""
        info = self._books[g].order(oid)
        return None if info is None else info.side == "buy"


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
