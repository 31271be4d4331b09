"""Order entry of the order book: limit, immediate-or-cancel and market orders, cancels and
modifications in ticks and lots, and the settlement of their fills against reservations.

A mixin of :class:`mktsim.mechanisms.order_book.OrderBookMarket` (whose docstring documents the
mechanism), kept apart so that each module holds one responsibility.
"""

from __future__ import annotations

from mktsim.mechanisms._book import Cancelled, Result
from mktsim.mechanisms._book_state import _GRID_MEMO, _ID_LIMIT, _REJECTED, _BookState

from mktsim.market import Shout
from mktsim.orders import Limit, Receipt


class _Matching(_BookState):
    """The book's order entry and settlement (ticks and lots; callers have checked the agent)."""

    def _submit_limit(self, order: Limit) -> Receipt:
        """A limit order on the grids (the strategies' hot path); anything else is worded by
        :meth:`_submit`."""
        g = self._index.get(order.good)
        agent, qty, price = order.agent, order.qty, order.price
        if g is None or agent >= self._n_agents or type(qty) is not float:
            return self._submit(order)
        lot, tick = self.lot, self.tick
        lots = round(qty / lot)
        if lots < 1 or abs(lots * lot - qty) > 1e-9 * (qty if qty > 1.0 else 1.0):
            return self._submit(order)
        if type(price) is not float:
            return self._submit(order)
        ticks = round(price / tick)
        if ticks < 1 or abs(ticks * tick - price) > 1e-9 * (price if price > 1.0 else 1.0):
            return self._submit(order)
        if len(self._ticks_of) < _GRID_MEMO:
            self._ticks_of[price] = ticks
        if len(self._lots_of) < _GRID_MEMO:
            self._lots_of[qty] = lots
        buy = order.side == "buy"
        r = self._limit(agent, g, buy, lots, ticks, "ioc" if order.ioc else "limit")
        return self._order_receipt(r, buy)

    # ---- order entry (ticks and lots; callers have checked the agent) ---------------------
    def _limit(self, agent: int, g: int, buy: bool, lots: int, ticks: int, kind: str) -> Result:
        """Submit a limit (``kind="limit"``) or immediate-or-cancel (``"ioc"``) order."""
        if self._ledger.version != self._seen:
            self._reconcile()
        if self._expiry and self._expiry[0][0] <= self._env.now:
            self._expire()
        book = self._books[g]
        if buy:
            cost = ticks * lots * self.tick_base
            free = self._hv[agent, self._num] - self._rc[agent]
            if cost > free:
                return self._refuse(
                    agent,
                    g,
                    kind,
                    buy,
                    ticks,
                    lots,
                    f"insufficient cash: needs {cost} base units, {free} free",
                )
            self._rc[agent] += cost
            r = (
                book.limit(agent, "buy", lots, ticks)
                if kind == "limit"
                else book.ioc(agent, "buy", lots, ticks)
            )
        else:
            qty = lots * self.lot_base
            free = self._hv[agent, g] - self._rg[g][agent]
            if qty > free:
                return self._refuse(
                    agent,
                    g,
                    kind,
                    buy,
                    ticks,
                    lots,
                    f"insufficient {self._goods[g]}: needs {qty} base units, {free} free",
                )
            self._rg[g][agent] += qty
            r = (
                book.limit(agent, "sell", lots, ticks)
                if kind == "limit"
                else book.ioc(agent, "sell", lots, ticks)
            )
        if r[2] or r[3] or r[1] is _REJECTED or self._tell:
            return self._after(agent, g, buy, lots, ticks, kind, r)
        # Rested untouched, nothing to record or tell: the common case, kept short.
        self.counts["orders"] += 1
        if r[5] and self._lifetime is not None:
            self._expiry.append((self._env.now + self._lifetime, g, r[0] or 0, agent))
        return r

    def _after(
        self, agent: int, g: int, buy: bool, lots: int, ticks: int, kind: str, r: Result
    ) -> Result:
        """Everything that follows a limit or ioc order reaching the book."""
        self.counts["orders"] += 1
        if not (r[2] or r[3] or self._tell) and r[1] is not _REJECTED:
            # Rested untouched, nothing to record or tell: the common case, kept short.
            if r[5] and self._lifetime is not None:
                self._expiry.append((self._env.now + self._lifetime, g, r[0] or 0, agent))
            return r
        if r[2] or r[3]:
            self._settle(g, r, ticks)
        elif r[1] is _REJECTED:  # cannot happen for checked ints; undo the reservation anyway
            self._unreserve(agent, g, buy, lots, ticks)
        if r[5] and self._lifetime is not None:
            self._expiry.append((self._env.now + self._lifetime, g, r[0] or 0, agent))
        if self._record_all or r[1] is _REJECTED:
            self._log_result(agent, g, kind, buy, ticks, lots, r)
        if self._observers:
            self._notify(g, buy, self.price_of(ticks), r)
        if self._clear and r[2]:
            self.clear(g, "clear")
        return r

    def repost(
        self, agent: int, good: str, order_id: int, buy: bool, lots: int, ticks: int
    ) -> int | None:
        """Withdraw and post in one call: what a strategy that keeps one order resting per good
        does on every action (:mod:`mktsim.market`'s optional ``repost``).

        Withdraws the agent's order ``order_id`` (0: none) if it still rests, then posts a limit
        order of at most ``lots`` lots at ``ticks`` ticks (the quote's grids), cut to the whole
        lots the agent's free holdings commit: exactly what a ``Cancel`` sent when
        :meth:`resting` says the order rests, and a ``Limit`` sized by :meth:`available`, do
        through :meth:`submit`, with one call instead of four.

        Returns:
            The id the new order rests under, 0 when it does not rest (nothing affordable, or
            it traded in full); None, having changed nothing, when the one-call path does not
            apply now (holdings changed outside the market or an
            order's lifetime ran out since the last order, or an argument is off the common
            path): the caller then sends its orders through :meth:`submit`.
        """
        g = self._index.get(good)
        if (
            g is None
            or not (0 <= order_id < _ID_LIMIT and 0 < lots and 0 < ticks and agent < self._n_agents)
            or self._ledger.version != self._seen
            or (self._expiry and self._expiry[0][0] <= self._env.now)
        ):
            return None
        book = self._books[g]
        rc, rg = self._rc, self._rg
        if order_id:
            r = book.cancel(agent, order_id)
            if r[1] is not _REJECTED:  # it still rested (else no cancel is sent)
                self.counts["cancels"] += 1
                c = r[3][0]
                if c[2] == "buy":
                    rc[agent] -= c[3] * c[4] * self.tick_base  # type: ignore[operator]
                else:
                    rg[g][agent] -= c[4] * self.lot_base
                if self._record_all:
                    self._log_result(agent, g, "cancel", None, None, None, r, order_id)
        if buy:
            unit = ticks * self.tick_base
            afford = (self._hv[agent, self._num] - rc[agent]) // unit
            if afford < lots:
                lots = afford
                if lots <= 0:
                    return 0
            rc[agent] += lots * unit
            r = book.limit(agent, "buy", lots, ticks)
        else:
            afford = (self._hv[agent, g] - rg[g][agent]) // self.lot_base
            if afford < lots:
                lots = afford
                if lots <= 0:
                    return 0
            rg[g][agent] += lots * self.lot_base
            r = book.limit(agent, "sell", lots, ticks)
        if r[2] or r[3] or self._tell or r[1] is _REJECTED:
            self._after(agent, g, buy, lots, ticks, "limit", r)
        else:  # rested untouched: the common case, kept short
            self.counts["orders"] += 1
            if self._lifetime is not None:
                self._expiry.append((self._env.now + self._lifetime, g, r[0] or 0, agent))
        return (r[0] or 0) if r[5] else 0

    def _market(self, agent: int, g: int, buy: bool, lots: int) -> Result:
        if self._ledger.version != self._seen:
            self._reconcile()
        if self._expiry and self._expiry[0][0] <= self._env.now:
            self._expire()
        book = self._books[g]
        if buy:
            # Protected market buy: the highest limit the free cash pays for every lot.
            limit = (self._hv[agent, self._num] - self._rc[agent]) // (lots * self.tick_base)
            if limit < 1:
                return self._refuse(
                    agent, g, "market", buy, None, lots, "insufficient cash for any price"
                )
            self._rc[agent] += limit * lots * self.tick_base
            r = book.ioc(agent, "buy", lots, limit)
            ticks: int | None = limit
        else:
            qty = lots * self.lot_base
            free = self._hv[agent, g] - self._rg[g][agent]
            if qty > free:
                return self._refuse(
                    agent,
                    g,
                    "market",
                    buy,
                    None,
                    lots,
                    f"insufficient {self._goods[g]}: needs {qty} base units, {free} free",
                )
            self._rg[g][agent] += qty
            r = book.market(agent, "sell", lots)
            ticks = None
        self.counts["orders"] += 1
        self._settle(g, r, ticks)
        if self._record_all or r[1] is _REJECTED:
            self._log_result(agent, g, "market", buy, None, lots, r)
        if self._observers:
            self._notify(g, buy, None, r)
        if self._clear and r[2]:
            self.clear(g, "clear")
        return r

    def _cancel(self, agent: int, g: int, order_id: int, log_rejection: bool = True) -> Result:
        book = self._books[g]
        r = book.cancel(agent, order_id)
        if r[1] is _REJECTED:
            if log_rejection:
                self._log_result(agent, g, "cancel", None, None, None, r, order_id)
            return r
        self.counts["cancels"] += 1
        c = r[3][0]
        if c[2] == "buy":
            self._rc[agent] -= c[3] * c[4] * self.tick_base  # type: ignore[operator]
        else:
            self._rg[g][agent] -= c[4] * self.lot_base
        if self._record_all:
            self._log_result(agent, g, "cancel", None, None, None, r, order_id)
        return r

    def _modify(
        self, agent: int, g: int, order_id: int, new_lots: int | None, new_ticks: int | None
    ) -> Result:
        if self._ledger.version != self._seen:
            self._reconcile()
        if self._expiry and self._expiry[0][0] <= self._env.now:
            self._expire()
        book = self._books[g]
        info = book.order(order_id)
        if info is None or info.owner != agent:
            # The engine words the refusal and changes nothing; no reservation is touched.
            r = book.modify(agent, order_id, new_qty=new_lots, new_price=new_ticks)
            self._log_result(agent, g, "modify", None, new_ticks, new_lots, r, order_id)
            return r
        buy = info.side == "buy"
        nq = info.qty if new_lots is None else new_lots
        npr = info.price if new_ticks is None else new_ticks
        reenter = npr != info.price or nq > info.qty
        if reenter:
            # The old order is released by the engine's Cancelled record; the new one needs
            # its full reservation, which may use what the old one frees.
            if buy:
                need = npr * nq * self.tick_base
                free = self.free_cash(agent) + info.price * info.qty * self.tick_base
            else:
                need = nq * self.lot_base
                free = self.free_goods(agent, g) + info.qty * self.lot_base
            if need > free:
                what = "cash" if buy else self._goods[g]
                return self._refuse(
                    agent,
                    g,
                    "modify",
                    buy,
                    npr,
                    nq,
                    f"insufficient {what}: needs {need} base units, {free} free",
                    order_id,
                )
            if buy:
                self._rc[agent] += need
            else:
                self._rg[g][agent] += need
        r = book.modify(agent, order_id, new_qty=new_lots, new_price=new_ticks)
        if r[1] is _REJECTED:
            if reenter:
                self._unreserve(agent, g, buy, nq, npr)
        else:
            self._settle(g, r, npr if buy else None)
        if self._record_all or r[1] is _REJECTED:
            self._log_result(agent, g, "modify", buy, npr, nq, r, order_id)
        if reenter and r[1] is not _REJECTED and self._observers:
            self._notify(g, buy, self.price_of(npr), r)
        if self._clear and r[2]:
            self.clear(g, "clear")
        return r

    def _unreserve(self, agent: int, g: int, buy: bool, lots: int, ticks: int) -> None:
        if buy:
            self._rc[agent] -= ticks * lots * self.tick_base
        else:
            self._rg[g][agent] -= lots * self.lot_base

    def _settle(self, g: int, r: Result, taker_limit: int | None) -> None:
        """Release what left the book and settle the fills (``taker_limit``: the incoming
        buy's limit in ticks, at which its cash was reserved)."""
        rc, rg, tb, lb = self._rc, self._rg, self.tick_base, self.lot_base
        c: Cancelled
        for c in r[3]:
            if c[2] == "buy":
                rc[c[1]] -= c[3] * c[4] * tb  # type: ignore[operator]
            else:
                rg[g][c[1]] -= c[4] * lb
        fills = r[2]
        if not fills:
            return
        trade = self._ledger.trade
        # price_of written out (a call per fill saved): ticks -> numeraire per unit.
        per_unit, tick = self._ticks_per_unit, self.tick
        est = self._est[g]
        w = self._w
        for f in fills:
            p, q = f[0], f[1]
            cash = p * q * tb
            if f[6] == "buy":
                buyer, seller = f[5], f[3]
                rc[buyer] -= taker_limit * q * tb  # type: ignore[operator]
            else:
                buyer, seller = f[3], f[5]
                rc[buyer] -= cash
            rg[g][seller] -= q * lb
            price = p / per_unit if per_unit is not None else p * tick
            trade(buyer, seller, g, q * lb, cash, price)
            est = price if est is None else est + w * (price - est)
        self._est[g] = est
        self._last[g] = price
        self.counts["fills"] += len(fills)
        self._seen = self._ledger.version
        if self._updated is not None:
            event, self._updated = self._updated, None
            event.succeed()

    def _notify(self, g: int, buy: bool, shout: float | None, r: Result) -> None:
        traded = self.price_of(r[2][-1][0]) if r[2] else None
        seen = Shout(float(self._env.now), self._goods[g], "buy" if buy else "sell", shout, traded)
        for observer in self._observers:
            observer(seen)
