"""Market shocks of the order book: outages, latency spikes (actions delivered late, in order,
with provisional ids), price clamps and liquidity withdrawals.

A mixin of :class:`mktsim.mechanisms.order_book.OrderBookMarket`, whose docstring documents
what each shock does; kept apart so that each module holds one responsibility.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import simpy
from mktsim.mechanisms._book import Result
from mktsim.mechanisms._book_state import _BookState

from mktsim.errors import InvalidParameter

#: Reason of an order refused while the market is closed.
CLOSED = "market closed"
#: Reason of an order priced outside a price clamp's band.
OUT_OF_BAND = "outside price band"


class _Shocks(_BookState):
    """Outage, latency, clamp and liquidity handling of the order book."""

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
