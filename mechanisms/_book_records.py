"""Recording of the order book: the ``orders`` table (refusals and order events) and the
``prices`` and excess-demand tables.

A mixin of :class:`mktsim.mechanisms.order_book.OrderBookMarket` (whose docstring documents
what is recorded), kept apart so that each module holds one responsibility.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from mktsim.mechanisms._book import Result
from mktsim.mechanisms._book_state import _NAN, _REJECTED, _STATUS, _BookState

from mktsim.orders import Cancel, Limit, MarketOrder, Modify, Receipt, new_receipt


class _Records(_BookState):
    """What the order book writes to the run's tables."""

    # ---- recording ------------------------------------------------------------------------
    def _refuse(
        self,
        agent: int,
        g: int,
        action: str,
        buy: bool | None,
        ticks: int | None,
        lots: int | None,
        reason: str,
        order_id: int | None = None,
    ) -> Result:
        r = Result(None, _REJECTED, (), (), reason, 0)
        self._log_result(agent, g, action, buy, ticks, lots, r, order_id)
        return r

    def _log_result(
        self,
        agent: int,
        g: int,
        action: str,
        buy: bool | None,
        ticks: int | None,
        lots: int | None,
        r: Result,
        order_id: int | None = None,
    ) -> None:
        if r[1] is _REJECTED:
            self.counts["rejected"] += 1
            if not self._record_rejected:
                return
        elif not self._record_all:
            return
        oid = r[0] if r[0] is not None else (order_id if isinstance(order_id, int) else -1)
        self._append(
            "orders",
            (
                float(self._env.now),
                agent,
                g,
                action,
                "" if buy is None else ("buy" if buy else "sell"),
                _NAN if ticks is None else self.price_of(ticks),
                _NAN if lots is None else lots * self.lot,
                oid,
                str(r[1]),
                r[4],
                sum(f[1] for f in r[2]) * self.lot,
            ),
        )

    def record_rejection(
        self,
        agent: int,
        g: int,
        action: str,
        side: str,
        price: float,
        quantity: float,
        reason: str,
        order_id: int = -1,
    ) -> None:
        """Record an order refused before it reached a book (bad good, side, price...)."""
        self.counts["rejected"] += 1
        if self._record_rejected:
            self._append(
                "orders",
                (
                    float(self._env.now),
                    agent,
                    g,
                    action,
                    side,
                    price,
                    quantity,
                    order_id,
                    "rejected",
                    reason,
                    0.0,
                ),
            )

    def _record_prices(self) -> None:
        g = self._g
        price = np.ones(g)
        est = np.ones(g)
        for j in self._traded:
            e = self._estimate(j)
            if e is None:
                return  # rows start once every good has a price
            last = self._last[j]
            price[j] = e if last is None else last
            est[j] = e
        rec, now, rnd = self.ctx.recorder, self._env.now, self._ledger.round
        goods = np.arange(g)
        rec.append("prices", time=now, round=rnd, good=goods, price=price, estimate=est)
        if not self._demand_slots:
            return
        units = self._ledger.units()
        total = units.sum(axis=0)
        z = np.zeros(g)
        by_pop = []
        for slot in self._demand_slots:
            pop: Any = self.ctx.population(slot)  # as it is now (a shock may have replaced it)
            x = units[slot.rows]
            zp = pop.aggregate_demand(est, x) - x.sum(axis=0)
            by_pop.append((slot.index, zp))
            z += zp
        rel = z / np.where(total > 0, total, 1.0)
        rec.append("excess_demand", time=now, round=rnd, good=goods, excess_demand=z, relative=rel)
        for index, zp in by_pop:
            rec.append(
                "excess_demand_by_population",
                time=now,
                round=rnd,
                population=index,
                good=goods,
                excess_demand=zp,
            )

    def _refuse_order(self, order: Any, reason: str, g: int = -1) -> Receipt:
        """Record an order refused before it reached a book; its rejected receipt."""
        side = getattr(order, "side", "")
        price = getattr(order, "price", None)
        qty = getattr(order, "qty", None)
        action = {Limit: "ioc" if getattr(order, "ioc", False) else "limit"}.get(
            type(order),
            {MarketOrder: "market", Cancel: "cancel", Modify: "modify"}.get(
                type(order), type(order).__name__.lower()
            ),
        )
        self.record_rejection(
            getattr(order, "agent", -1),
            g,
            action,
            side if side in ("buy", "sell") else "",
            _float_or_nan(price),
            _float_or_nan(qty),
            reason,
        )
        return Receipt("rejected", None, reason)

    def _order_receipt(self, r: Result, buy: bool | None) -> Receipt:
        """The protocol receipt of an engine result (``buy``: the order's side, for the sign
        of the cash)."""
        fills = r[2]
        if not fills:
            return new_receipt(
                (_STATUS.get(r[1]) or str(r[1]), r[0], r[4], 0.0, _NAN, 0.0, r[5] * self.lot)
            )
        lots = sum(f[1] for f in fills)
        value = sum(f[0] * f[1] for f in fills)
        cash = value * self.tick_base / self.base_units
        return new_receipt(
            (
                str(r[1]),
                r[0],
                r[4],
                lots * self.lot,
                value * self.tick / lots,
                -cash if buy is False else cash,
                r[5] * self.lot,
            )
        )


def _float_or_nan(value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return _NAN
    return x
