"""Market shocks of the order book: what the shared wrappers (:mod:`mktsim.wrappers`) need of it,
and the one shock internal to it, liquidity withdrawal.

Outages, latency spikes and price clamps are the shared wrappers around ``submit``, as on every
mechanism; the book lists its resting orders for a price band (``open_orders``), records the
orders the wrappers refuse in its own ``orders`` table (``note_refusal``) and sends its trader
handles' orders through the outermost wrapper (``note_wrapped``), so that handles and
strategies meet the same shocks. A mixin of :class:`mktsim.mechanisms.order_book.OrderBookMarket`,
whose docstring documents what each shock does; kept apart so that each module holds one
responsibility.
"""

from __future__ import annotations

import math
from typing import Any

from mktsim.mechanisms._book_state import _NAN, _BookState

from mktsim.errors import InvalidParameter
from mktsim.orders import Cancel, Limit, MarketOrder, Modify
from mktsim.wrappers import CLOSED, OUT_OF_BAND

__all__ = ["CLOSED", "OUT_OF_BAND"]

#: The ``orders`` table's action of each order type a wrapper may refuse.
_ACTIONS: dict[type, str] = {MarketOrder: "market", Cancel: "cancel", Modify: "modify"}


class _Shocks(_BookState):
    """Liquidity withdrawal, and the book's side of the shared shock wrappers."""

    # ---- the book's own shock -------------------------------------------------------------
    def apply_shock(self, shock: Any) -> str:
        """Liquidity withdrawal (see the module docstring of ``order_book``). Returns what was
        done, for the ``events`` table."""
        if shock.kind == "liquidity":
            return self._withdraw(float(shock.fraction))
        raise InvalidParameter(f"order_book does not support {shock.kind} shocks")

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

    # ---- the shared wrappers' hooks -------------------------------------------------------
    @property
    def clamp_band(self) -> float:
        """A price clamp's relative half-width (option ``clamp_band``), for the band wrapper."""
        return float(self.opts["clamp_band"])

    def note_wrapped(self, market: Any) -> None:
        """Shock wrappers surround the book: ``market`` is the outermost, where trader handles
        send their orders from now on (:mod:`mktsim.wrappers`)."""
        self._front = market

    def note_refusal(self, order: Any, reason: str) -> None:
        """A shock wrapper refused ``order``: recorded in the ``orders`` table and counted as
        the book's own refusals are (``rejected``, and ``refused_closed`` or ``refused_band``)."""
        if reason == CLOSED:
            self.counts["refused_closed"] += 1
        elif reason.startswith(OUT_OF_BAND):
            self.counts["refused_band"] += 1
        kind = type(order)
        action = ("ioc" if order.ioc else "limit") if kind is Limit else _ACTIONS.get(kind, "")
        agent = getattr(order, "agent", -1)
        price = getattr(order, "price", None)
        qty = getattr(order, "qty", None)
        order_id = getattr(order, "order_id", -1)
        self.record_rejection(
            agent if isinstance(agent, int) else -1,
            self._index.get(getattr(order, "good", ""), -1),
            action or kind.__name__.lower(),
            str(getattr(order, "side", "")),
            _NAN if price is None else float(price),
            _NAN if qty is None else float(qty),
            reason,
            order_id if isinstance(order_id, int) else -1,
        )

    def open_orders(self, good: str) -> list[tuple[int, int, str, float | None, float]]:
        """The resting orders of a good, bids then asks, each side in priority order:
        ``(agent, order_id, side, limit price, units)`` (what a price band cancels outside)."""
        if self._ledger.version != self._seen:
            self._reconcile()
        g = self._index[good]
        return [
            (o.owner, o.order_id, side, self.price_of(o.price), o.qty * self.lot)
            for side in ("buy", "sell")
            for o in self._books[g].orders(side)
        ]

    def cancel_for(self, agent: int, good: str, order_id: int, reason: str) -> bool:
        """The market cancels ``agent``'s resting order ``order_id`` on its own authority (a
        price band starting): recorded with action ``band`` and ``reason``, not as the owner's
        cancel. Whether the order was resting."""
        g = self._index[good]
        info = self._books[g].order(order_id)
        if info is None or info.owner != agent:
            return False
        self._force_cancel(g, agent, order_id, "band", reason)
        return True

    def sync_shock_counts(self) -> None:
        """Copy into ``counts`` what the wrappers did for the book (actions delayed, resting
        orders a band cancelled), for the summary."""
        wrappers = getattr(self._front, "wrappers", {})
        latency, band = wrappers.get("latency"), wrappers.get("clamp")
        self.counts["delayed"] = int(getattr(latency, "delayed", 0))
        self.counts["band_cancelled"] = int(getattr(band, "cancelled", 0))
