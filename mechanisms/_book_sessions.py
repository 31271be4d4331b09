"""Sessions and book maintenance of the order book: trading periods, lazy expiry of orders,
clearing the books, reconciling reservations with holdings changed outside the market, and the
sampling process.

A mixin of :class:`mktsim.mechanisms.order_book.OrderBookMarket` (whose docstring documents the
mechanism), kept apart so that each module holds one responsibility.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import simpy
from mktsim.mechanisms._book import Result, Status
from mktsim.mechanisms._book_state import _REJECTED, _BookState


class _Sessions(_BookState):
    """Periods, expiry, clearing and reconciliation of the order book."""

    def clear(self, good: int | None = None, action: str = "clear") -> int:
        """Cancel every resting order (of one good, or of all), releasing reservations.
        Returns how many orders were cancelled."""
        goods = self._traded if good is None else [good]
        n = 0
        rc, rg, tb, lb = self._rc, self._rg, self.tick_base, self.lot_base
        for g in goods:
            book = self._books[g]
            if not len(book):
                continue
            # Each order released (and recorded) as its own cancel would be, in the book's
            # priority order, bids then asks.
            for c in book.withdraw_all():
                oid, owner = c[0], c[1]
                if c[2] == "buy":
                    rc[owner] -= c[3] * c[4] * tb  # type: ignore[operator]
                else:
                    rg[g][owner] -= c[4] * lb
                if self._record_all:
                    r = Result(oid, Status.CANCELLED, (), (c,), "cancelled by owner", 0)
                    self._log_result(owner, g, action, None, None, None, r, oid)
                n += 1
        self.counts["cleared"] += n
        return n

    def _reconcile(self) -> None:
        """Holdings changed outside the market (an endowment shock, a period's renewal): cancel
        every resting order of each agent whose reservations now exceed its holdings, so no
        fill can overdraw it."""
        self._seen = self._ledger.version
        if not any(self._rc) and not any(map(any, self._rg)):
            # Nothing reserved (a period's renewal after its close cancelled every order):
            # no holding can fall below it, and the tables need not be built.
            return
        h = np.asarray(self._h[: self._n_agents])
        reserved = np.array(self._rg, dtype=np.int64).T[: self._n_agents]
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
