"""Reading the order book: free holdings and reservations, resting quantities, best prices,
reference prices and estimates, and the run summary.

A mixin of :class:`mktsim.mechanisms.order_book.OrderBookMarket` (whose docstring documents the
mechanism), kept apart so that each module holds one responsibility.
"""

from __future__ import annotations

import math
from typing import Any

from mktsim.mechanisms._book import OrderBook
from mktsim.mechanisms._book_state import _BookState

from mktsim.errors import InvalidParameter
from mktsim.market import Top
from mktsim.orders import Quote


class _Reading(_BookState):
    """Cheap reads of the order book's state, for strategies, handles and the report."""

    def available(self, agent: int, good: str) -> int:
        """Base units of ``good`` (a name) the agent holds beyond its resting orders'
        reservations."""
        j = self._index.get(good)
        if j is None:
            if good == self._numeraire_name:
                return self._hv[agent, self._num] - self._rc[agent]
            j = self.ctx.goods.index(good)  # the numeraire (or an unknown name: raises)
            return self._hv[agent, j] - self._rc[agent]
        return self._hv[agent, j] - self._rg[j][agent]

    def resting(self, agent: int, good: str, order_id: int) -> float:
        """Units of the agent's order ``order_id`` in ``good`` still on the book: 0.0 once it
        has traded, expired or been cancelled (or if it is not the agent's); NaN while a
        latency spike still carries it to the book."""
        g = self._index[good]
        if order_id > 0 and self._ledger.version == self._seen and not self._expiry:
            # Nothing to reconcile or expire first: the common case (a strategy asks on every
            # action whether its previous order still rests).
            return self._books[g].resting_lots(agent, order_id) * self.lot
        if order_id <= 0:  # (a provisional id is mapped by the latency wrapper)
            return 0.0
        if self._ledger.version != self._seen:
            self._reconcile()
        if self._expiry and self._expiry[0][0] <= self._env.now:
            self._expire()
        return self._books[g].resting_lots(agent, order_id) * self.lot

    def reference_prices(self) -> dict[str, float | None]:
        """The reference prices alone (:meth:`reference_price` per traded good, by name): what
        :meth:`quote` shows as ``prices``, without the best quantities and depth it walks the
        books for (the protocol's optional ``reference_prices``).

        Strategies that read only prices ask this on every action, and an action changes one
        book at most: a good's price is kept with the :attr:`~OrderBook.top_version` of the
        book it was read from and read again once that has moved. A price read from the last
        trade (the book empty) is never kept."""
        if self._expiry and self._expiry[0][0] <= self._env.now:
            self._expire()
        books, goods, kept, kept_at = self._books, self._goods, self._kept, self._kept_at
        prices: dict[str, float | None] = {}
        for j in self._traded:
            book = books[j]
            version = book.top_version
            if kept_at[j] != version:  # reference_price(j) written out
                b, a = book.tops()
                if b is not None and a is not None:
                    kept[j] = self._tick_price * math.sqrt(b * a)
                    kept_at[j] = version
                elif b is not None or a is not None:
                    kept[j] = self.price_of(b if a is None else a)  # type: ignore[arg-type]
                    kept_at[j] = version
                else:
                    kept[j] = self._last[j]
            prices[goods[j]] = kept[j]
        return prices

    def reference_quote(self) -> Quote:
        """:meth:`reference_prices` as a base :class:`~mktsim.orders.Quote`."""
        prices = self.reference_prices()
        return Quote(float(self._env.now), prices)

    def top(self, good: str) -> Top:
        """One good's best bid and ask, last trade and estimate, as :meth:`quote` shows them
        (without the depth it walks the book for)."""
        self._expire()
        j = self._index[good]
        book = self._books[j]
        b, a = book.tops()
        return Top(
            None if b is None else self.price_of(b),
            None if a is None else self.price_of(a),
            self._last[j],
            self._estimate(j),
        )

    def summary(self) -> dict[str, Any]:
        self.sync_shock_counts()
        resting = sum(len(self._books[j]) for j in self._traded)
        actions = self.actions
        return {
            "method": "+".join(sorted(set(self.behaviour_names.values()))) or None,
            "rounds": actions,
            "converged": False,
            "behaviours": dict(self.behaviour_names),
            "actions": actions,
            **{k: int(v) for k, v in self.counts.items()},  # (wrapper counts synced above)
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
        return self._hv[agent, good] - self._rg[good][agent]

    def reserved(self, agent: int) -> tuple[int, list[int]]:
        """(cash, goods per good) reserved by the agent's resting orders, base units."""
        return self._rc[agent], [row[agent] for row in self._rg]

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
        b, a = book.tops()
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
        b, a = book.tops()
        return None if b is None or a is None else self.price_of(b + a) / 2
