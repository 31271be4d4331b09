"""Clearing of the call market: the uniform-price rule of one batch (:func:`clear_batch`), the
rationing of the marginal level (:func:`allocate`), and the batch itself (execution in priority
order, settlement through the ledger, the ``batches``, ``prices`` and excess-demand tables, and
the clock that clears every interval and closes sessions).

Kept apart from :mod:`mktsim.mechanisms.call_market` (whose docstring documents the rule and the
mechanism) so that each module holds one responsibility: that module takes orders, this one
clears them. :class:`_Clearing` is a mixin of :class:`~mktsim.mechanisms.call_market.CallMarket`.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from mktsim import induced
from mktsim.mechanism import MarketContext, PopulationSlot
from mktsim.orders import Quote, Receipt

_NAN = math.nan


# ---- the clearing rule (pure: integers in, integers out) ---------------------------------------
def clear_batch(
    buys: Sequence[tuple[int, int]], sells: Sequence[tuple[int, int]], span: tuple[int, int]
) -> tuple[int, int] | None:
    """The uniform price and volume of one batch (the rule: :mod:`mktsim.mechanisms.call_market`).

    Args:
        buys: ``(limit ticks, lots)`` per buy order (a market buy with its cash cap as limit).
        sells: ``(limit ticks, lots)`` per sell order (a market sell with limit 1).
        span: lowest and highest limit price (ticks) of the batch's limit orders; the price is
            chosen in it.

    Returns:
        ``(price ticks, volume lots)``, or None when nothing can trade.
    """
    lo, hi = span
    if not buys or not sells or lo > hi:
        return None
    bp = np.array([b[0] for b in buys], dtype=np.int64)
    bq = np.array([b[1] for b in buys], dtype=np.int64)
    sp = np.array([s[0] for s in sells], dtype=np.int64)
    sq = np.array([s[1] for s in sells], dtype=np.int64)
    ob, os_ = np.argsort(bp, kind="stable"), np.argsort(sp, kind="stable")
    bp, bq, sp, sq = bp[ob], bq[ob], sp[os_], sq[os_]
    cum_b = np.concatenate([[0], np.cumsum(bq)])
    cum_s = np.concatenate([[0], np.cumsum(sq)])
    # D and S are constant between cuts: D drops just above a bid, S rises at an ask.
    cuts = np.unique(np.concatenate([[lo], bp + 1, sp]))
    cuts = cuts[(cuts >= lo) & (cuts <= hi)]
    demand = cum_b[-1] - cum_b[np.searchsorted(bp, cuts, side="left")]
    supply = cum_s[np.searchsorted(sp, cuts, side="right")]
    volume = np.minimum(demand, supply)
    best = int(volume.max())
    if best <= 0:
        return None
    imbalance = np.abs(demand - supply)
    candidates = volume == best
    least = imbalance[candidates].min()
    chosen = np.flatnonzero(candidates & (imbalance == least))
    first, last = int(chosen[0]), int(chosen[-1])
    start = int(cuts[first])
    end = int(cuts[last + 1]) - 1 if last + 1 < cuts.size else hi
    excess = demand[chosen] - supply[chosen]
    if (excess > 0).all():  # buyers left over at every candidate: the highest
        return end, best
    if (excess < 0).all():  # sellers left over: the lowest
        return start, best
    if least == 0:  # balanced: the middle of the balanced ticks
        return (start + end) // 2, best
    # Buyers left over below, sellers above, no tick balanced: where the excess changes sign.
    # The highest tick with buyers left over; a midpoint of the whole range could leave out a
    # seller (or buyer) who would trade at that price.
    k = int(chosen[excess > 0][-1])
    return int(cuts[k + 1]) - 1, best


def allocate(levels: Sequence[Sequence[int]], volume: int, pro_rata: bool) -> list[list[int]]:
    """Lots executed per order on one side of a batch.

    Args:
        levels: the side's crossing orders grouped by price level in priority order (best
            first), each level the orders' lots in arrival order.
        volume: lots the side trades (at most the sum of ``levels``).
        pro_rata: ration the marginal level pro rata (else by arrival).

    Returns:
        Lots per order, shaped like ``levels``.
    """
    out: list[list[int]] = []
    left = volume
    for level in levels:
        size = sum(level)
        if left >= size:
            out.append(list(level))
            left -= size
        elif left <= 0:
            out.append([0] * len(level))
        elif pro_rata:
            share = [q * left // size for q in level]
            rest = left - sum(share)
            # the remaining lots go one each to the largest remainders (ties by arrival)
            remainders = sorted(range(len(level)), key=lambda i: (-(level[i] * left % size), i))
            for i in remainders[:rest]:
                share[i] += 1
            out.append(share)
            left = 0
        else:
            fills = []
            for q in level:
                take = min(q, left)
                fills.append(take)
                left -= take
            out.append(fills)
    return out


class _Order:
    """A live order (lots and ticks; ``cap`` is what its cash reservation was made at)."""

    __slots__ = (
        "agent",
        "buy",
        "expires",
        "filled",
        "g",
        "kind",
        "lots",
        "oid",
        "paid",
        "seq",
        "ticks",
    )

    def __init__(
        self, oid: int, agent: int, g: int, buy: bool, lots: int, ticks: int, kind: str, seq: int
    ) -> None:
        self.oid, self.agent, self.g, self.buy = oid, agent, g, buy
        self.lots, self.ticks, self.kind, self.seq = lots, ticks, kind, seq
        self.expires: int | None = None
        self.filled = 0  # lots traded so far
        self.paid = 0  # numeraire base units moved so far


class _Clearing:
    """The batch clearing of the call market (attributes set by its ``__init__`` and ``attach``)."""

    opts: dict[str, Any]
    tick: float
    lot: float
    lot_base: int
    tick_base: int
    _per_unit: int | None
    interval: float
    batches: int
    counts: dict[str, int]
    volume: dict[str, float]
    sessions_run: int
    ctx: MarketContext
    env: simpy.Environment
    _names: Sequence[str]
    _traded: list[int]
    _live: list[dict[int, _Order]]
    _owner: dict[int, _Order]
    _last: list[float | None]
    _est: list[float | None]
    _finished: dict[int, Receipt]
    _update: simpy.Event
    _indicative: dict[int, tuple[float | None, float]]
    _seen: int
    _demand_slots: Sequence[PopulationSlot]
    _next_clear: float

    if TYPE_CHECKING:
        # Order keeping, in CallMarket.
        def quote(self) -> Quote: ...

        def _retire(self, live: _Order, reason: str, action: str = "") -> Receipt: ...

        def _release_cash(self, agent: int, amount: int) -> None: ...

        def _release_goods(self, agent: int, g: int, amount: int) -> None: ...

        def _reconcile(self) -> None: ...

    # ---- clearing -------------------------------------------------------------------------
    def _price(self, ticks: int) -> float:
        k = self._per_unit
        return ticks / k if k is not None else ticks * self.tick

    def _sides(self, g: int) -> tuple[list[_Order], list[_Order], tuple[int, int]]:
        live = list(self._live[g].values())
        limits = [o.ticks for o in live if o.kind != "market"]
        span = (min(limits), max(limits)) if limits else (1, 0)
        buys = [o for o in live if o.buy]
        sells = [o for o in live if not o.buy]
        return buys, sells, span

    def _indicate(self, g: int) -> tuple[float | None, float]:
        buys, sells, span = self._sides(g)
        found = clear_batch(
            [(o.ticks, o.lots) for o in buys], [(o.ticks, o.lots) for o in sells], span
        )
        return (None, 0.0) if found is None else (self._price(found[0]), found[1] * self.lot)

    def _execute(self, orders: list[_Order], price: int, volume: int, buy: bool) -> list[Any]:
        """``(order, lots)`` for each crossing order of one side in priority order (market
        orders first, then by limit, then by arrival), rationed at the marginal level."""

        def level(o: _Order) -> tuple[int, int]:
            return (0, 0) if o.kind == "market" else (1, -o.ticks if buy else o.ticks)

        crossing = [o for o in orders if (o.ticks >= price if buy else o.ticks <= price)]
        crossing.sort(key=lambda o: (*level(o), o.seq))
        levels: list[list[_Order]] = []
        for o in crossing:
            if levels and level(levels[-1][0]) == level(o):
                levels[-1].append(o)
            else:
                levels.append([o])
        pro_rata = self.opts["rationing"] == "pro_rata"
        fills = allocate([[o.lots for o in lv] for lv in levels], volume, pro_rata)
        return [
            (o, q)
            for lv, lots in zip(levels, fills, strict=True)
            for o, q in zip(lv, lots, strict=True)
            if q
        ]

    def _clear_good(self, g: int) -> None:
        buys, sells, span = self._sides(g)
        bid_qty = sum(o.lots for o in buys) * self.lot
        ask_qty = sum(o.lots for o in sells) * self.lot
        found = clear_batch(
            [(o.ticks, o.lots) for o in buys], [(o.ticks, o.lots) for o in sells], span
        )
        price = volume = 0
        if found is not None:
            price, volume = found
            self._settle(g, buys, sells, price, volume)
        self._append_batch(g, price, volume, bid_qty, ask_qty, len(buys) + len(sells))
        for live in list(self._live[g].values()):
            if live.kind != "limit":
                self._retire(live, "not filled in its batch", "expire")
            elif live.expires is not None and live.expires <= self.batches:
                self.counts["expired"] += 1
                self._retire(live, "lifetime over", "expire")

    def _settle(self, g: int, buys: list[_Order], sells: list[_Order], p: int, v: int) -> None:
        buy_fills = self._execute(buys, p, v, True)
        sell_fills = self._execute(sells, p, v, False)
        trade, tb, lb = self.ctx.ledger.trade, self.tick_base, self.lot_base
        unit_price = self._price(p)
        i = k = 0
        b_left = buy_fills[0][1]
        s_left = sell_fills[0][1]
        while i < len(buy_fills) and k < len(sell_fills):
            b, s = buy_fills[i][0], sell_fills[k][0]
            q = min(b_left, s_left)
            if b.agent != s.agent:
                trade(b.agent, s.agent, g, q * lb, p * q * tb, unit_price)
            else:
                self.counts["self_matched"] += q
            b_left -= q
            s_left -= q
            if not b_left:
                i += 1
                b_left = buy_fills[i][1] if i < len(buy_fills) else 0
            if not s_left:
                k += 1
                s_left = sell_fills[k][1] if k < len(sell_fills) else 0
        for o, q in buy_fills:
            self._release_cash(o.agent, o.ticks * q * tb)
            o.lots -= q
            o.filled += q
            o.paid += p * q * tb
        for o, q in sell_fills:
            self._release_goods(o.agent, g, q * lb)
            o.lots -= q
            o.filled += q
            o.paid += p * q * tb
        for o, _ in buy_fills + sell_fills:
            if not o.lots:
                self._retire(o, "", "fill")
        self.counts["fills"] += len(buy_fills) + len(sell_fills)
        self.volume[self._names[g]] += v * self.lot
        price = self._price(p)
        self._last[g] = price
        est, w = self._est[g], self.opts["estimate_weight"]
        self._est[g] = price if est is None else est + w * (price - est)

    def _append_batch(
        self, g: int, price: int, volume: int, bid: float, ask: float, n: int
    ) -> None:
        self.ctx.recorder.append(
            "batches",
            time=float(self.env.now),
            batch=self.batches,
            good=g,
            price=self._price(price) if volume else _NAN,
            volume=volume * self.lot,
            buy_quantity=bid,
            sell_quantity=ask,
            orders=n,
        )

    def _clear_all(self) -> None:
        """One clearing of every good, then its records and the ``updated`` event."""
        self._finished = {}
        self._reconcile()
        self.batches += 1
        for g in self._traded:
            self._clear_good(g)
        self._seen = self.ctx.ledger.version
        self._indicative.clear()
        self._record_prices()
        event, self._update = self._update, self.env.event()
        event.succeed(self.quote())

    def _record_prices(self) -> None:
        n = len(self._names)
        price, est = np.ones(n), np.ones(n)
        for j in self._traded:
            last, e = self._last[j], self._est[j]
            if last is None or e is None:
                return  # rows start once every good has cleared
            price[j], est[j] = last, e
        ctx, now, rnd = self.ctx, float(self.env.now), self.ctx.ledger.round
        goods = np.arange(n)
        ctx.recorder.append("prices", time=now, round=rnd, good=goods, price=price, estimate=est)
        if not self._demand_slots:
            return
        units = ctx.ledger.units()
        total = units.sum(axis=0)
        z = np.zeros(n)
        by_pop = []
        for slot in self._demand_slots:
            pop: Any = ctx.population(slot)
            x = units[slot.rows]
            zp = pop.aggregate_demand(est, x) - x.sum(axis=0)
            by_pop.append((slot.index, zp))
            z += zp
        rel = z / np.where(total > 0, total, 1.0)
        ctx.recorder.append(
            "excess_demand", time=now, round=rnd, good=goods, excess_demand=z, relative=rel
        )
        for index, zp in by_pop:
            ctx.recorder.append(
                "excess_demand_by_population",
                time=now,
                round=rnd,
                population=index,
                good=goods,
                excess_demand=zp,
            )

    def _clock(self) -> Generator[simpy.Event, Any, None]:
        """Clearings every ``interval``; with sessions, the last batch of each clears at its
        end, then the session closes."""
        env, ctx, interval = self.env, self.ctx, self.interval
        periods, length = self.opts["periods"], self.opts["period_length"]
        slots = [s for s in ctx.slots if isinstance(s.population, induced.InducedTraders)]
        k, start = 0, 0.0
        if periods:
            ctx.ledger.round = 0
            self.sessions_run = 1
        n = 1
        while True:
            end = start + length if periods else math.inf
            self._next_clear = min(start + n * interval, end)
            yield env.timeout(self._next_clear - env.now)
            self._clear_all()
            n += 1
            if self._next_clear < end:
                continue
            closed = [
                self._retire(o, "session closed", "close") for o in list(self._owner.values())
            ]
            ctx.log("session_end", f"period {k} closed; {len(closed)} resting orders cancelled")
            for slot in slots:
                induced.close_period(ctx, slot, k)
            k += 1
            if k >= periods:
                ctx.done.succeed()
                return
            start, n = end, 1
            ctx.ledger.round = k
            self.sessions_run = k + 1
            for slot in slots:
                induced.open_period(ctx, slot, k)
            self._seen = ctx.ledger.version
