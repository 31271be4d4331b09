"""The ledger: every agent's holdings of every good, in integer base units.

Holdings change only through balanced operations, each recorded in a table: a multilateral
exchange at prices or a bilateral trade (``trades``), production and consumption (``production``),
and goods created or destroyed by a named rule — an endowment shock, shares minted, an account
funded from outside — (``journal``). Every change is counted, so conservation is checked exactly,
and recorded, so the final holdings can be rebuilt from the initial ones and the tables alone.
Mechanisms and agents read holdings through a read-only view; nobody writes the array directly;
mechanisms settle through the narrow :class:`Settlement` handle (:meth:`Ledger.settlement`).

Holdings are ``int64`` base units (the run's :attr:`~mktsim.goods.Goods.base_units` per unit),
so no good's economy-wide total may pass :data:`~mktsim.goods.MAX_BASE` base units. The ledger
keeps its totals in Python integers and refuses, changing nothing, any creation that would pass
the limit; since every holding is >= 0 and at most its good's total, no settlement can then wrap
around.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mktsim.errors import ConservationError, InvalidParameter
from mktsim.goods import MAX_BASE, Goods
from mktsim.recorder import Recorder

__all__ = [
    "FLOAT_LIMIT",
    "Ledger",
    "Settlement",
    "exact_column_sums",
    "sim_clock",
]

IntArray = NDArray[np.int64]

# Journal entries with at most this many rows go through the recorder's row buffer (cheap per
# call: a mechanism minting shares for every sale); larger ones are appended as one chunk.
_FEW = 8
_JOURNAL = "journal"
# Bilateral trades are handed to the recorder when a trade id is a multiple of 65,536.
_TRADE_FLUSH = 65_535
# A bilateral trade's journal row, packed: seven int64 then two float64, native order and no
# padding, read back by _TRADE_DTYPE.
_TRADE_ROW = struct.Struct("=7q2d")
_TRADE_DTYPE = np.dtype([("ints", "=i8", (7,)), ("floats", "=f8", (2,))])
#: A float quantity of base units at or past this cannot be cast to int64.
FLOAT_LIMIT = 2.0**63


class Ledger:
    """Holdings ``int64[accounts, goods]`` with exact conservation.

    Args:
        goods: the scenario's goods (column order).
        holdings: initial holdings in base units, one row per account (agents first, then any
            accounts the mechanisms open, such as a market maker's inventory).
        recorder: where settlements are journalled.
        clock: returns the current simulation time.

    Raises:
        InvalidParameter: holdings of the wrong shape, negative, or whose total of some good
            passes :data:`~mktsim.goods.MAX_BASE`.
    """

    def __init__(
        self,
        goods: Goods,
        holdings: IntArray,
        recorder: Recorder,
        clock: Callable[[], float] = lambda: 0.0,
    ) -> None:
        holdings = np.array(holdings, dtype=np.int64, copy=True)
        if holdings.ndim != 2 or holdings.shape[1] != len(goods):
            raise InvalidParameter(
                f"holdings has shape {holdings.shape}, expected (accounts, {len(goods)})"
            )
        if (holdings < 0).any():
            raise InvalidParameter("initial holdings must be >= 0")
        self.goods = goods
        #: Base units per unit of every good (the run's: :func:`mktsim.goods.base_units_for`).
        self.base_units = base = goods.base_units
        self._h = holdings
        # Scalar access as Python ints, about twice as fast as numpy indexing: the hot path.
        # Scalar access through a flat view (index row * goods + good) costs about half as
        # much as a two-dimensional memoryview's (row, good) tuples.
        self._mv = memoryview(holdings.reshape(-1))  # type: ignore[arg-type]
        self._width = holdings.shape[1]
        self._recorder = recorder
        self._clock = clock
        # Each good's total, in Python integers: exact however much is created and destroyed.
        self._total = exact_column_sums(holdings)
        for j, total in enumerate(self._total):
            if total > MAX_BASE:
                raise InvalidParameter(
                    f"initial holdings of {goods.names[j]} total {total / base:.6g} units, "
                    f"past the ledger's limit of {goods.max_units:.6g} units per good"
                )
        self._next_trade = 0
        self._next_production = 0
        self._next_entry = 0
        self._num = goods.numeraire_index
        self._trades = _TradeBuffer(recorder, base)
        self._trade_rows = self._trades.rows
        self._pack_trade = _TRADE_ROW.pack
        recorder.add_flush_hook("trades", self._trades.flush)
        self._handle: Settlement | None = None
        self.round = -1
        #: Increases with every change of holdings, so readers can cache derived arrays.
        self.version = 0

    # ---- reading -------------------------------------------------------------------------
    @property
    def holdings(self) -> IntArray:
        """Read-only view of all holdings in base units."""
        view = self._h.view()
        view.setflags(write=False)
        return view

    @property
    def n_accounts(self) -> int:
        return int(self._h.shape[0])

    def units(self, rows: slice | NDArray[np.intp] | None = None) -> NDArray[np.float64]:
        """Holdings in units (float) for some rows."""
        h = self._h if rows is None else self._h[rows]
        return h.astype(np.float64) / self.base_units

    def totals(self) -> IntArray:
        """Total of each good over all accounts, base units: what the economy started with plus
        what was created minus what was destroyed (O(goods); :meth:`conserved` checks that the
        accounts really add up to it)."""
        return np.array(self._total, dtype=np.int64)

    def settlement(self) -> Settlement:
        """The narrow handle a mechanism settles through (one per ledger)."""
        if self._handle is None:
            self._handle = Settlement(self)
        return self._handle

    def open_account(
        self, holdings: IntArray | Sequence[int] | None = None, reason: str = "account opened"
    ) -> int:
        """Add an account (e.g. a market maker) funded from outside the economy, counted as
        created (and journalled) so conservation still balances. Returns its row.

        ``holdings`` (base units per good) may be exact Python integers past int64: the limit is
        checked on them before anything is converted, so the refusal names the good."""
        added = [0] * len(self.goods) if holdings is None else [int(v) for v in holdings]
        if len(added) != len(self.goods):
            raise InvalidParameter(
                f"a new account's holdings(={len(added)} goods) must hold every good "
                f"({len(self.goods)})"
            )
        if any(v < 0 for v in added):
            raise InvalidParameter("a new account's holdings must be >= 0")
        self._admit(added, reason)
        row = np.array([added], dtype=np.int64)
        self._h = np.vstack([self._h, row])
        self._mv = memoryview(self._h.reshape(-1))  # type: ignore[arg-type]
        self._count(added)
        self.version += 1
        new = self.n_accounts - 1
        self._journal_entry(np.array([new]), row, reason)
        return new

    # ---- changing ------------------------------------------------------------------------
    def _trade_id(self) -> int:
        self._next_trade += 1
        return self._next_trade

    def trade(self, buyer: int, seller: int, good: int, qty: int, cash: int, price: float) -> int:
        """Bilateral trade: ``qty`` base units of ``good`` from seller to buyer, ``cash`` base
        units of the numeraire from buyer to seller. Refuses overdrafts. Returns the trade id.

        This is the order book's hot path: scalar updates and a buffered journal row. It needs
        no overflow check: both amounts are at most what an account holds, and no account holds
        more than its good's total, which the ledger keeps within :data:`MAX_BASE`.
        """
        h = self._mv
        num = self._num
        if qty <= 0 or cash < 0 or buyer == seller or good == num:
            raise InvalidParameter(
                f"trade(buyer={buyer}, seller={seller}, good={good}, qty={qty}, cash={cash}) "
                "is not a trade"
            )
        # Each holding read once: the overdraft check and the update share the reads.
        width = self._width
        s_row = seller * width
        b_row = buyer * width
        sold = h[s_row + good] - qty
        paid = h[b_row + num] - cash
        if sold < 0 or paid < 0:
            raise ConservationError(
                f"trade would overdraw: seller {seller} holds {sold + qty} < {qty} or "
                f"buyer {buyer} holds {paid + cash} < {cash} cash"
            )
        h[s_row + good] = sold
        h[b_row + num] = paid
        h[b_row + good] += qty
        h[s_row + num] += cash
        self.version += 1
        self._next_trade = tid = self._next_trade + 1
        # One packed row appended in place: a third of the cost of extending two typed arrays
        # with a tuple each (and 'q' refuses, as they did, any value past int64).
        self._trade_rows += self._pack_trade(
            tid, self.round, buyer, seller, good, qty, cash, self._clock(), price
        )
        if not tid & _TRADE_FLUSH:  # every 65,536 trade ids (an exchange flushes on its own)
            self._trades.flush()
        return tid

    def exchange(
        self, rows: NDArray[np.intp], deltas: NDArray[np.float64], prices: NDArray[np.float64]
    ) -> int:
        """Multilateral exchange at prices: account ``rows[i]`` receives ``deltas[i, j]`` units of
        each non-numeraire good j and pays for them in the numeraire at ``prices`` (numeraire = 1).

        ``deltas`` must sum to (nearly) zero over rows. Rounding to base units only ever shrinks
        trades, and the numeraire is rounded in each agent's favour with the rounding surplus
        taken from the largest money holders, so every column balances exactly and no holding
        goes negative. Each account's ``cash`` rows in ``trades`` add up to exactly what it paid;
        an account whose money moved by rounding alone gets a ``journal`` row of the trade.
        Returns the trade id (-1 if nothing moved).
        """
        rows = np.asarray(rows, dtype=np.intp)
        deltas = np.asarray(deltas, dtype=np.float64)
        prices = np.asarray(prices, dtype=np.float64)
        g = len(self.goods)
        if deltas.shape != (rows.size, g) or not np.isfinite(deltas).all():
            raise InvalidParameter(f"exchange deltas must be finite with shape ({rows.size}, {g})")
        num = self._num
        base = self.base_units
        scaled = np.trunc(deltas * base)  # toward zero: trades shrink
        scaled[:, num] = 0.0
        if scaled.size and np.abs(scaled).max() >= FLOAT_LIMIT:
            at, col = np.unravel_index(np.argmax(np.abs(scaled)), scaled.shape)
            raise ConservationError(
                f"exchange of {deltas[at, col]:.6g} units of {self.goods.names[col]} to account "
                f"{rows[at]} is past the ledger's limit of {self.goods.max_units:.6g} units "
                "per good"
            )
        goods_delta = scaled.astype(np.int64)
        for j in range(g):
            if j != num:
                volume = float(np.abs(goods_delta[:, j]).sum())
                if abs(int(goods_delta[:, j].sum())) > rows.size + 1e-8 * volume:
                    raise ConservationError(
                        f"exchange of {self.goods.names[j]} does not balance: net "
                        f"{goods_delta[:, j].sum() / base:g} units over {rows.size} accounts"
                    )
                _balance_column(goods_delta[:, j])
        if not goods_delta.any():
            return -1
        # Every row's value must fit in base units of money, or the rounding below would wrap.
        gross = np.abs(goods_delta).astype(np.float64) @ np.abs(prices)
        if not (gross < FLOAT_LIMIT).all():
            worst = int(np.argmax(np.where(np.isfinite(gross), gross, np.inf)))
            raise ConservationError(
                f"exchange worth {gross[worst] / base:.6g} units of "
                f"{self.goods.numeraire} to account {rows[worst]} is past the ledger's limit of "
                f"{self.goods.max_units:.6g} units per good"
            )
        # Money: exact cost of the integer goods, rounded in the agents' favour (they pay less).
        cost = (goods_delta.astype(np.float64) @ prices) / base  # units of numeraire
        money = -np.floor(cost * base).astype(np.int64)  # received (+) / paid (-)
        held = self._h[rows, num]
        # Goods rounded toward zero can leave an account that spends all its money a few base
        # units short (it sold a little less than it planned): it pays what it holds and the
        # others cover the difference below. A larger shortfall is an overdraft, refused below.
        short = -(held + money)
        covered = (short > 0) & (short <= int(np.ceil(np.abs(prices).sum())) + 2)
        money[covered] += short[covered]
        # The rounding left the agents `surplus` base units ahead: take them back from the
        # largest money balances after the trade.
        surplus = int(money.sum())
        if surplus < 0:  # float rounding can leave agents a unit short: the largest holder gets it
            money[np.argmax(held + money)] -= surplus
        elif surplus > 0:
            post = np.maximum(held + money, 0)
            order = np.argsort(-post, kind="stable")
            before = np.cumsum(post[order]) - post[order]
            take = np.minimum(post[order], np.maximum(surplus - before, 0))
            if int(take.sum()) < surplus:
                raise ConservationError(
                    f"exchange cannot settle its rounding: the {rows.size} accounts hold "
                    f"{int(post.sum())} base units of {self.goods.numeraire} after it, "
                    f"{surplus} are owed"
                )
            money[order] -= take
        goods_delta[:, num] = money
        # Every column sums to zero, so an account can pass MAX_BASE only if another goes
        # negative: a wrapped sum shows as a negative holding and is refused here.
        after = self._h[rows] + goods_delta
        if (after < 0).any():
            i, j = np.argwhere(after < 0)[0]
            raise ConservationError(
                f"exchange would leave account {rows[i]} with {after[i, j]} base units of "
                f"{self.goods.names[j]}"
            )
        self._h[rows] = after
        self.version += 1
        tid = self._trade_id()
        self._trades.flush()  # keep the journal in settlement order
        self._journal(tid, rows, goods_delta, prices)
        return tid

    def _journal(
        self, tid: int, rows: NDArray[np.intp], delta: IntArray, prices: NDArray[np.float64]
    ) -> None:
        """Journal an exchange: one ``trades`` row per account and good, whose ``cash`` (the
        nominal ``quantity * price``, the account's last row taking its rounding) adds up per
        account to exactly the money it paid."""
        num = self._num
        nz_r, nz_g = np.nonzero(delta)
        keep = nz_g != num
        r, j = nz_r[keep], nz_g[keep]
        paid = -delta[:, num]
        cash = np.rint(delta[r, j] * prices[j]).astype(np.int64)
        traded = np.zeros(rows.size, dtype=bool)
        if r.size:
            nominal = np.zeros(rows.size, dtype=np.int64)
            np.add.at(nominal, r, cash)
            last = np.flatnonzero(np.r_[r[1:] != r[:-1], True])  # r is sorted: rows in order
            cash[last] += paid[r[last]] - nominal[r[last]]
            traded[r] = True
        self._recorder.append(
            "trades",
            trade_id=tid,
            time=self._clock(),
            round=self.round,
            agent=rows[r],
            good=j,
            quantity=delta[r, j] / self.base_units,
            price=prices[j],
            cash=cash / self.base_units,
        )
        alone = np.flatnonzero(~traded & (paid != 0))
        if alone.size:
            only_money = np.zeros((alone.size, len(self.goods)), dtype=np.int64)
            only_money[:, num] = -paid[alone]
            self._journal_entry(rows[alone], only_money, f"rounding of trade {tid}", tid)

    def _journal_entry(
        self, rows: NDArray[np.intp], delta: IntArray, reason: str, trade_id: int = -1
    ) -> None:
        """Record the nonzero entries of ``delta`` (base units, one row per account in ``rows``)
        as one ``journal`` entry."""
        r, j = np.nonzero(delta)
        if not r.size:
            return
        self._next_entry += 1
        eid, now, rnd = self._next_entry, self._clock(), self.round
        q = delta[r, j] / self.base_units
        agents = np.asarray(rows)[r]
        if r.size <= _FEW:
            add = self._recorder.append_row
            for a, good, qty in zip(agents.tolist(), j.tolist(), q.tolist(), strict=True):
                add(_JOURNAL, (eid, now, rnd, trade_id, a, good, qty, reason))
            return
        self._recorder.rows(_JOURNAL)  # hand over buffered rows first: entries stay in order
        self._recorder.append(
            _JOURNAL,
            entry_id=eid,
            time=now,
            round=rnd,
            trade_id=trade_id,
            agent=agents,
            good=j,
            quantity=q,
            reason=np.full(r.size, reason, dtype=object),
        )

    def _admit(self, net: list[int], reason: str) -> None:
        """Refuse, before anything changes, a creation that would carry some good's total past
        :data:`MAX_BASE` (``net``: base units created per good, exact Python integers)."""
        total = self._total
        for j, n in enumerate(net):
            if n > 0 and total[j] + n > MAX_BASE:
                raise ConservationError(
                    f"{reason}: the total of {self.goods.names[j]} would reach "
                    f"{(total[j] + n) / self.base_units:.6g} units, past the ledger's limit of "
                    f"{self.goods.max_units:.6g} units per good (int64 base units of "
                    f"1/{self.base_units:g})"
                )

    def _count(self, net: list[int]) -> None:
        total = self._total
        for j, n in enumerate(net):
            total[j] += n

    def _journal_row(self, row: int, net: list[int], reason: str) -> None:
        """Journal one account's changes (base units per good) as one entry, row by row: the
        per-call path of a mechanism minting or burning for every trade."""
        self._next_entry += 1
        entry = (self._next_entry, self._clock(), self.round, -1, row)
        add = self._recorder.append_row
        for j, n in enumerate(net):
            if n:
                add(_JOURNAL, (*entry, j, n / self.base_units, reason))

    def create(self, row: int, amounts: IntArray, reason: str) -> None:
        """Create goods from outside the economy (an endowment shock, shares minted), journalled
        under ``reason``; refuses a creation that would pass the ledger's limit."""
        added = np.asarray(amounts, dtype=np.int64).reshape(len(self._total)).tolist()
        if min(added) < 0:
            raise InvalidParameter(f"create({reason}): amounts must be >= 0")
        self._admit(added, reason)
        h = self._mv  # scalar updates in Python integers: cheaper than numpy for one row
        at = row * self._width
        for j, a in enumerate(added):
            if a:
                h[at + j] += a
        self._count(added)
        self.version += 1
        self._journal_row(row, added, reason)

    def destroy(self, row: int, amounts: IntArray, reason: str) -> None:
        """Destroy goods (consumption, liquidity withdrawn, a supply shock), journalled under
        ``reason``; refuses overdrafts."""
        taken = np.asarray(amounts, dtype=np.int64).reshape(len(self._total)).tolist()
        h = self._mv
        at = row * self._width
        if any(d < 0 or h[at + j] < d for j, d in enumerate(taken)):
            raise ConservationError(f"destroy({reason}) would overdraw account {row}")
        for j, d in enumerate(taken):
            if d:
                h[at + j] -= d
        removed = [-d for d in taken]
        self._count(removed)
        self.version += 1
        self._journal_row(row, removed, reason)

    def produce(
        self, rows: NDArray[np.intp], inputs: IntArray, outputs: IntArray, technology: str
    ) -> int:
        """Production: account ``rows[i]`` turns ``inputs[i]`` into ``outputs[i]`` (base units,
        ``int64[len(rows), goods]``, both >= 0), atomically for all rows.

        Inputs are destroyed and outputs created (both counted, so conservation still checks
        exactly), and every nonzero entry is journalled in the ``production`` table under one
        production id, so every unit consumed or made has a record. Refuses, changing nothing, if
        an account lacks its inputs or the output would pass the ledger's limit. Returns the
        production id (-1 if nothing changed).
        """
        rows = np.asarray(rows, dtype=np.intp).ravel()
        g = len(self.goods)
        inputs = np.asarray(inputs, dtype=np.int64).reshape(rows.size, g)
        outputs = np.asarray(outputs, dtype=np.int64).reshape(rows.size, g)
        if np.unique(rows).size != rows.size:
            raise InvalidParameter(f"produce({technology}): rows must be distinct")
        if (inputs < 0).any() or (outputs < 0).any():
            raise InvalidParameter(f"produce({technology}): inputs and outputs must be >= 0")
        if (self._h[rows] < inputs).any():
            i, j = np.argwhere(self._h[rows] < inputs)[0]
            raise ConservationError(
                f"produce({technology}) would overdraw account {rows[i]}: it holds "
                f"{self._h[rows[i], j]} base units of {self.goods.names[j]}, needs {inputs[i, j]}"
            )
        if not (inputs.any() or outputs.any()):
            return -1
        made, used = exact_column_sums(outputs), exact_column_sums(inputs)
        self._admit([m - u for m, u in zip(made, used, strict=True)], f"produce({technology})")
        self._h[rows] += outputs - inputs
        self._count([m - u for m, u in zip(made, used, strict=True)])
        self.version += 1
        self._next_production += 1
        pid = self._next_production
        delta = outputs - inputs
        r, j = np.nonzero(delta)
        self._recorder.append(
            "production",
            production_id=pid,
            time=self._clock(),
            agent=rows[r],
            good=j,
            quantity=delta[r, j] / self.base_units,
            technology=technology,
        )
        return pid

    def adjust(self, rows: NDArray[np.intp], deltas: IntArray, reason: str) -> None:
        """Create (positive) and destroy (negative) goods for many accounts at once, e.g. an
        endowment shock, journalled under ``reason``; refuses, changing nothing, if any holding
        would go negative or a good's total would pass the ledger's limit."""
        rows = np.asarray(rows, dtype=np.intp)
        deltas = np.asarray(deltas, dtype=np.int64).reshape(rows.size, len(self.goods))
        added = exact_column_sums(np.maximum(deltas, 0))
        removed = exact_column_sums(np.maximum(-deltas, 0))
        net = [a - d for a, d in zip(added, removed, strict=True)]
        self._admit(net, reason)
        after = self._h[rows] + deltas  # cannot wrap: every total stays within MAX_BASE
        if (after < 0).any():
            raise ConservationError(f"adjust({reason}) would overdraw an account")
        self._h[rows] = after
        self._count(net)
        self.version += 1
        self._journal_entry(rows, deltas, reason)

    def adjust_each(
        self, rows: NDArray[np.intp], deltas: IntArray, created: str, destroyed: str
    ) -> None:
        """Create (positive) and destroy (negative) goods for many accounts at once, journalled
        as :meth:`create` then :meth:`destroy` would be account by account: for each row in
        order, one entry of what it gains (reason ``created``), then one of what it loses
        (``destroyed``), each only if nonzero. Refuses, changing nothing, if any holding would
        go negative or a good's total would pass the ledger's limit. (A period's renewal of
        every trader's endowment: one call instead of one per account.)"""
        rows = np.asarray(rows, dtype=np.intp)
        g = len(self.goods)
        deltas = np.asarray(deltas, dtype=np.int64).reshape(rows.size, g)
        # Entries in account order, gains before losses: rows 2i and 2i + 1 of `split`.
        split = np.empty((2 * rows.size, g), dtype=np.int64)
        np.maximum(deltas, 0, out=split[0::2])
        np.minimum(deltas, 0, out=split[1::2])
        added = exact_column_sums(split[0::2])
        removed = [-v for v in exact_column_sums(split[1::2])]
        self._admit(added, created)
        after = self._h[rows] + deltas  # cannot wrap: every total stays within MAX_BASE
        if (after < 0).any():
            i = int(np.flatnonzero((after < 0).any(axis=1))[0])
            raise ConservationError(f"destroy({destroyed}) would overdraw account {rows[i]}")
        self._h[rows] = after
        self._count([a - d for a, d in zip(added, removed, strict=True)])
        self.version += 1
        # The journal is worked out from the nonzero cells alone (a period's renewal touches
        # every account, but most of the table is zero): an entry per nonzero row of `split`,
        # numbered in order.
        cells = np.flatnonzero(split)
        if not cells.size:
            return
        r, j = np.divmod(cells, g)
        first = np.empty(r.size, dtype=bool)
        first[0] = True
        np.not_equal(r[1:], r[:-1], out=first[1:])
        ids = np.cumsum(first)
        ids += self._next_entry
        self._next_entry = int(ids[-1])
        self._recorder.rows(_JOURNAL)  # hand over buffered rows first: entries stay in order
        self._recorder.append(
            _JOURNAL,
            entry_id=ids,
            time=self._clock(),
            round=self.round,
            trade_id=-1,
            agent=rows[r >> 1],
            good=j,
            quantity=split.ravel()[cells] / self.base_units,
            reason=np.array([created, destroyed], dtype=object)[r & 1],
        )

    # ---- checking ------------------------------------------------------------------------
    def conserved(self) -> bool:
        """True when totals equal initial + created - destroyed for every good, exactly (sums in
        Python integers, so no wrapped sum can pass) and no holding is negative."""
        if (self._h < 0).any():
            return False
        return exact_column_sums(self._h) == self._total

    def check_conserved(self) -> None:
        """Raise :class:`ConservationError` naming the goods whose totals moved."""
        if not self.conserved():
            held = exact_column_sums(self._h)
            diff = [h - e for h, e in zip(held, self._total, strict=True)]
            bad = {self.goods.names[j]: d for j, d in enumerate(diff) if d}
            raise ConservationError(f"goods not conserved (base units off): {bad}")


class Settlement:
    """What a mechanism settles through: the ledger's reading and settling operations, and
    nothing that could bypass them.

    Reads: :attr:`holdings` (a read-only view), :meth:`units`, :meth:`totals`, :attr:`version`,
    :attr:`n_accounts`, :attr:`goods`; the mechanism's :attr:`round` stamped on the rows it
    settles. Settles: :meth:`trade`, :meth:`exchange` (journalled in ``trades``),
    :meth:`produce` (``production``), :meth:`create`, :meth:`destroy`, :meth:`adjust`,
    :meth:`open_account` (``journal``). Every operation is the ledger's own bound method, so the
    handle costs nothing per call.
    """

    __slots__ = (
        "_ledger",
        "adjust",
        "create",
        "destroy",
        "exchange",
        "open_account",
        "produce",
        "totals",
        "trade",
        "units",
    )

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self.trade = ledger.trade
        self.exchange = ledger.exchange
        self.produce = ledger.produce
        self.create = ledger.create
        self.destroy = ledger.destroy
        self.adjust = ledger.adjust
        self.open_account = ledger.open_account
        self.units = ledger.units
        self.totals = ledger.totals

    @property
    def holdings(self) -> IntArray:
        """Read-only view of all holdings in base units (take it again after
        :meth:`open_account`, which adds a row)."""
        return self._ledger.holdings

    @property
    def goods(self) -> Goods:
        return self._ledger.goods

    @property
    def n_accounts(self) -> int:
        return self._ledger.n_accounts

    @property
    def version(self) -> int:
        """Increases with every change of holdings."""
        return self._ledger.version

    @property
    def round(self) -> int:
        """The mechanism's round, stamped on every row it settles (-1 without rounds)."""
        return self._ledger.round

    @round.setter
    def round(self, value: int) -> None:
        self._ledger.round = value


def exact_column_sums(a: IntArray) -> list[int]:
    """Column sums of an ``int64`` matrix as exact Python integers, at numpy speed.

    Each value is split into its high and low 32 bits, whose column sums cannot overflow int64
    for fewer than 2**31 rows, and recombined in Python.
    """
    a = np.asarray(a, dtype=np.int64)
    a = a.reshape(-1, a.shape[-1]) if a.ndim != 2 else a
    hi = (a >> 32).sum(axis=0)
    lo = (a & 0xFFFFFFFF).sum(axis=0)
    return [(int(h) << 32) + int(lo_) for h, lo_ in zip(hi.tolist(), lo.tolist(), strict=True)]


class _TradeBuffer:
    """Bilateral trades journalled as compact packed rows (:data:`_TRADE_ROW`) in one byte
    buffer, extended in place by the ledger's hot path (one call per trade): ``(trade id,
    round, buyer, seller, good, qty, cash)`` as int64 then ``(time, price)`` as float64. They
    are handed to the recorder as two ``trades`` rows apiece (buyer, then seller) in bulk."""

    def __init__(self, recorder: Recorder, base_units: float) -> None:
        self.base_units = base_units
        self._recorder = recorder
        self.rows = bytearray()

    @property
    def size(self) -> int:
        return len(self.rows) // _TRADE_ROW.size

    def flush(self) -> None:
        if not self.rows:
            return
        packed = np.frombuffer(self.rows, dtype=_TRADE_DTYPE).copy()
        # Emptied in place: the ledger holds the buffer itself (and a live view would pin it).
        del self.rows[:]
        tid, rnd, buyer, seller, good, qty, cash = packed["ints"].T
        time, price = packed["floats"].T

        def twice(x: np.ndarray) -> np.ndarray:
            return np.repeat(x, 2)

        agent = np.empty(2 * tid.size, dtype=np.int64)
        agent[0::2], agent[1::2] = buyer, seller
        sign = np.tile(np.array([1.0, -1.0]), tid.size)
        self._recorder.append(
            "trades",
            trade_id=twice(tid),
            time=twice(time),
            round=twice(rnd),
            agent=agent,
            good=twice(good),
            quantity=sign * twice(qty / self.base_units),
            price=twice(price),
            cash=sign * twice(cash / self.base_units),
        )


def _balance_column(col: IntArray) -> None:
    """Make an integer column sum to zero by shrinking its long side proportionally.

    Only ever reduces trades (receivers receive less, or givers give less), so no holding can go
    negative; the reduction is spread in proportion to each trade, remainders one unit at a time
    to the largest.
    """
    received = int(col[col > 0].sum())
    given = int(-col[col < 0].sum())
    excess = received - given
    if excess == 0:
        return
    side = col > 0 if excess > 0 else col < 0
    idx = np.flatnonzero(side)
    size = np.abs(col[idx])
    total = received if excess > 0 else given
    cut = (size * (abs(excess) / total)).astype(np.int64)  # floor, since size >= 0
    left = abs(excess) - int(cut.sum())
    if left:
        cut[np.argsort(-(size - cut), kind="stable")[:left]] += 1
    col[idx] -= np.sign(excess) * cut


def sim_clock(env: Any) -> Callable[[], float]:
    """The clock a ledger journals trades by: a SimPy environment's ``now``, read through its
    property's getter bound to ``env`` (one Python frame per read, where ``lambda: env.now``
    takes two and ``partial(getattr, env, "now")`` pays the attribute lookup on top of one:
    the clock is read on every trade)."""
    return type(env).now.fget.__get__(env)
