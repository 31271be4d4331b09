"""Settling trades in an economy that produces: goods are delivered after they are made.

A mechanism that settles a whole allocation at once (the Walrasian auctioneer) hands it to
:func:`settle`. Without firms or final demand this is one :meth:`~mktsim.ledger.Ledger.exchange`.
With them, settlement follows the production graph, as SimPy processes:

1. **Orders** (backwards). Goods traded off the book (see :mod:`mktsim.firms`) are ordered:
   final demand orders its fixed quantities, decreasing-returns firms order the off-book inputs
   of their plan at the posted prices, and each constant-returns industry, in reverse production
   order, turns the orders for its output (less its stock) into an output target and orders the
   inputs that target needs.
2. **Deliveries and production** (forwards). Every good nobody makes is exchanged at once (one
   exchange of the allocation's columns of those goods). A firm population produces when every
   one of its inputs has been delivered, after its ``production_time``: decreasing-returns firms
   use their planned inputs (at most what they hold), constant-returns industries make their
   target (at most what their inputs allow), and a firm whose output would not be positive does
   not produce. Each production is one :meth:`~mktsim.ledger.Ledger.produce` (journalled in the
   ``production`` table). When every producer of a good has produced, the good is delivered: its
   on-book column of the allocation, or its off-book orders (everything its makers hold goes to
   a final demand that prices it).
3. **Extraction.** Every :class:`~mktsim.firms.Source` tops its stock up to its rate (a flow
   economy).

All trades happen at the posted prices (numeraire = 1). A seller delivers at most what it holds
and a buyer buys at most what its money pays for; the long side of each good is then scaled down
pro rata, and every such shortfall is logged as a ``settlement`` event, never silently dropped.
Firms therefore need working capital (money) to buy inputs before their output is sold.

:func:`check_chain` (defined in :mod:`mktsim.firms`, re-exported here) validates how the
populations of a scenario fit together.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import simpy
from numpy.typing import NDArray

from mktsim.firms import (  # validation lives with the populations it checks
    FinalDemand,
    Firms,
    Source,
    check_chain,
    off_book_goods,
    production_order,
)
from mktsim.goods import checked_int64

__all__ = ["check_chain", "production_order", "settle"]

Array = NDArray[np.float64]
IntArray = NDArray[np.int64]

# Shortfalls below this fraction of a good's volume are rounding, not worth an event.
_REPORT_RTOL = 1e-6


# --------------------------------------------------------------------------- settlement


class _Chain:
    """The production structure of a run's populations (as they are now)."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.firms: list[tuple[Any, Firms]] = []
        self.finals: list[tuple[Any, FinalDemand]] = []
        self.sources: list[tuple[Any, Source]] = []
        for slot in ctx.slots:
            pop = ctx.population(slot)
            if isinstance(pop, Firms):
                self.firms.append((slot, pop))
            elif isinstance(pop, FinalDemand):
                self.finals.append((slot, pop))
            elif isinstance(pop, Source):
                self.sources.append((slot, pop))
        order = production_order([f for _, f in self.firms])
        rank = {f.name: i for i, f in enumerate(order)}
        self.firms.sort(key=lambda sf: rank[sf[1].name])
        goods = ctx.goods
        self.off = off_book_goods([p for _, p in (*self.firms, *self.finals)])
        self.off_idx = np.array(sorted(goods.index(g) for g in self.off), dtype=np.intp)
        self.makers: dict[int, list[tuple[Any, Firms]]] = {}
        for slot, f in self.firms:
            self.makers.setdefault(f.output_index, []).append((slot, f))
        self.priced: dict[int, Any] = {}
        for slot, fd in self.finals:
            for g in fd.prices:
                self.priced[goods.index(g)] = slot

    @classmethod
    def of(cls, ctx: Any) -> _Chain | None:
        kinds = [ctx.population(s) for s in ctx.slots]
        if not any(isinstance(p, Firms | FinalDemand | Source) for p in kinds):
            return None
        return cls(ctx)


def settle(
    ctx: Any, rows: NDArray[np.intp], deltas: Array, prices: Array
) -> Generator[simpy.Event, Any, None]:
    """Settle an allocation at prices, producing where firms produce (a SimPy generator).

    Use ``yield from settle(ctx, rows, deltas, prices)`` inside a process; without firms or
    final demand it is a single exchange and takes no simulation time.

    Args:
        ctx: the :class:`~mktsim.mechanism.MarketContext`.
        rows: ledger rows of the agents, ``intp[n]``.
        deltas: their desired net trades on the book, ``float64[n, g]`` in units (the numeraire
            column is ignored: money pays at ``prices``). Off-book columns are ignored too.
        prices: posted prices ``float64[g]``.
    """
    chain = _Chain.of(ctx)
    if chain is None:
        ctx.ledger.exchange(rows, deltas, prices)
        return
    yield from _Settlement(chain, np.asarray(rows), np.asarray(deltas, float), prices).run()


class _Settlement:
    def __init__(self, chain: _Chain, rows: NDArray[np.intp], deltas: Array, prices: Array):
        ctx = chain.ctx
        self.chain, self.ctx, self.ledger = chain, ctx, ctx.ledger
        self.base_units = ctx.goods.base_units
        self.env: simpy.Environment = ctx.env
        self.goods = ctx.goods
        self.num = self.goods.numeraire_index
        p = np.asarray(prices, dtype=np.float64)
        self.p = p / p[self.num]
        self.rows = np.asarray(rows, dtype=np.intp)
        book = np.array(deltas, dtype=np.float64)
        book[:, chain.off_idx] = 0.0  # a price setter's signal is not a trade
        book[:, self.num] = 0.0
        self.book = book
        self.orders: dict[int, list[tuple[NDArray[np.intp], Array]]] = {}
        self.targets: dict[str, Array] = {}

    # ---- orders ----------------------------------------------------------------------------
    def _order(self, good: int, rows: NDArray[np.intp], qty: Array) -> None:
        self.orders.setdefault(good, []).append((rows, np.maximum(qty, 0.0)))

    def _place_orders(self) -> None:
        goods = self.goods
        for slot, fd in self.chain.finals:
            for g, q in fd.quantities.items():
                if g in fd.off_book:
                    self._order(goods.index(g), slot.row_ids, np.array([q]))
        for slot, f in self.chain.firms:
            if f.constant_returns or not (set(f.inputs) & f.off_book):
                continue
            x, _ = f.plan(self.p)
            held = self.ledger.units(slot.rows)
            for k, g in enumerate(f.inputs):
                if g in f.off_book:
                    j = goods.index(g)
                    self._order(j, slot.row_ids, x[:, k] - held[:, j])
        for slot, f in reversed(self.chain.firms):
            if not f.constant_returns:
                continue
            out = f.output_index
            wanted = sum(float(q.sum()) for _, q in self.orders.get(out, []))
            held = self.ledger.units(slot.rows)
            target = max(wanted - float(held[:, out].sum()), 0.0)
            y = np.full(f.size, target / f.size)
            self.targets[f.name] = y
            c = f.coefficients
            for k, j in enumerate(f.input_index):
                if j != self.num:
                    self._order(int(j), slot.row_ids, c[:, k] * y - held[:, j])

    # ---- processes -------------------------------------------------------------------------
    def run(self) -> Generator[simpy.Event, Any, None]:
        env, goods = self.env, self.goods
        self._place_orders()
        made = set(self.chain.makers)
        settled = {j: env.event() for j in range(len(goods))}
        start = [j for j in range(len(goods)) if j not in made]
        self._exchange_columns(start, "unproduced goods")
        for j in start:
            settled[j].succeed()
        produced = {f.name: env.event() for _, f in self.chain.firms}
        for slot, f in self.chain.firms:
            env.process(self._produce(slot, f, [settled[int(j)] for j in f.input_index], produced))
        for j, makers in self.chain.makers.items():
            env.process(self._deliver(j, [produced[f.name] for _, f in makers], settled[j]))
        yield simpy.AllOf(env, [*settled.values(), *produced.values()])
        for slot, src in self.chain.sources:
            extracted = np.zeros((src.size, len(goods)), dtype=np.int64)
            cap = checked_int64(np.floor(src.rate * self.base_units), src.name)
            held = self.ledger.holdings[slot.rows, src.good_index]
            extracted[:, src.good_index] = np.maximum(cap - held, 0)
            self.ledger.produce(slot.row_ids, np.zeros_like(extracted), extracted, src.name)

    def _produce(
        self, slot: Any, f: Firms, inputs: list[simpy.Event], produced: dict[str, simpy.Event]
    ) -> Generator[simpy.Event, Any, None]:
        yield simpy.AllOf(self.env, inputs)
        if f.production_time:
            yield self.env.timeout(f.production_time)
        held = self.ledger.holdings[slot.rows]
        idx, out = f.input_index, f.output_index
        use = np.zeros_like(held)
        made = np.zeros_like(held)
        if f.constant_returns:
            c = f.coefficients
            have = held[:, idx] / self.base_units
            with np.errstate(divide="ignore"):
                room = np.where(c > 0, have / np.where(c > 0, c, 1.0), np.inf).min(axis=1)
            y = np.minimum(self.targets.get(f.name, np.zeros(f.size)), room)
            use[:, idx] = np.minimum(np.ceil(c * y[:, None] * self.base_units), held[:, idx])
        else:
            x, _ = f.plan(self.p)
            # (capped in floats first: a plan at far-off prices can exceed int64 base units)
            cap = np.minimum(np.floor(x * self.base_units), held[:, idx].astype(np.float64))
            use[:, idx] = np.minimum(held[:, idx], cap.astype(np.int64))
            with np.errstate(all="ignore"):
                y = np.asarray(f.technology.output(use[:, idx] / self.base_units), dtype=np.float64)
            idle = ~np.isfinite(y) | (y <= 0)
            use[idle] = 0
            y = np.where(idle, 0.0, y)
        made[:, out] = checked_int64(np.floor(y * self.base_units), f.name)
        self.ledger.produce(slot.row_ids, use, made, f.name)
        produced[f.name].succeed()

    def _deliver(
        self, j: int, makers: list[simpy.Event], done: simpy.Event
    ) -> Generator[simpy.Event, Any, None]:
        yield simpy.AllOf(self.env, makers)
        name = self.goods.names[j]
        if j not in self.chain.off_idx:
            self._exchange_columns([j], name)
        else:
            sellers = np.concatenate([s.row_ids for s, _ in self.chain.makers[j]])
            stock = self.ledger.units(sellers)[:, j]
            if j in self.chain.priced:
                buyers = [(self.chain.priced[j].row_ids, np.array([stock.sum()]))]
            else:
                buyers = self.orders.get(j, [])
            self._off_book(j, sellers, stock, buyers)
        done.succeed()

    # ---- exchanges ---------------------------------------------------------------------------
    def _exchange_columns(self, columns: list[int], what: str) -> None:
        cols = [j for j in columns if j != self.num and j not in self.chain.off_idx]
        if not cols:
            return
        d = np.zeros_like(self.book)
        d[:, cols] = self.book[:, cols]
        keep = np.flatnonzero(np.abs(d).sum(axis=1) > 0)
        if keep.size:
            self._exchange(self.rows[keep], d[keep], what)

    def _off_book(
        self,
        j: int,
        sellers: NDArray[np.intp],
        stock: Array,
        buyers: list[tuple[NDArray[np.intp], Array]],
    ) -> None:
        if not buyers:
            return
        b_rows = np.concatenate([r for r, _ in buyers])
        b_qty = np.concatenate([q for _, q in buyers])
        # one row per account: a buyer may have ordered twice (e.g. two firms' orders)
        rows, inverse = np.unique(np.concatenate([sellers, b_rows]), return_inverse=True)
        d = np.zeros((rows.size, len(self.goods)))
        np.add.at(d[:, j], inverse[: sellers.size], -stock)
        np.add.at(d[:, j], inverse[sellers.size :], b_qty)
        self._exchange(rows, d, self.goods.names[j])

    def _exchange(self, rows: NDArray[np.intp], wanted: Array, what: str) -> None:
        """Exchange ``wanted`` (units, numeraire ignored) after capping deliveries at holdings and
        purchases at money, scaling each good's long side down to its short side."""
        p, num = self.p, self.num
        held = self.ledger.units(rows)
        d = np.array(wanted, dtype=np.float64)
        d[:, num] = 0.0
        d = np.maximum(d, -held)
        for _ in range(5):
            buys = np.where(d > 0, d, 0.0) @ p
            sells = np.where(d < 0, -d, 0.0) @ p
            means = held[:, num] + sells
            short = buys > means * (1 + 1e-12)
            if short.any():
                factor = np.where(short, means / np.where(buys > 0, buys, 1.0), 1.0)
                d = np.where(d > 0, d * factor[:, None], d)
            for k in range(d.shape[1]):
                col = d[:, k]
                demand = col[col > 0].sum()
                supply = -col[col < 0].sum()
                if demand > supply:
                    d[:, k] = np.where(col > 0, col * (supply / demand), col)
                elif supply > demand:
                    d[:, k] = np.where(col < 0, col * (demand / supply), col)
            if not short.any():
                break
        self.ledger.exchange(rows, d, p)
        asked = np.abs(np.asarray(wanted)).sum(axis=0) / 2
        got = np.abs(d).sum(axis=0) / 2
        for short_good in np.flatnonzero(asked - got > _REPORT_RTOL * np.maximum(asked, 1e-300)):
            j = int(short_good)
            if j == num:
                continue
            self.ctx.log(
                "settlement",
                f"{what}: {got[j]:.9g} of {asked[j]:.9g} units of {self.goods.names[j]} changed "
                "hands (a seller lacked stock or a buyer lacked money)",
            )
