"""The ledger: every agent's holdings of every good, in integer base units.

Holdings change only through balanced operations, each recorded in the ``trades`` table:
a multilateral exchange at prices, a bilateral trade, or production and consumption (which create
and destroy goods by a named rule and are counted, so conservation can be checked exactly).
Mechanisms and agents read holdings through a read-only view; nobody writes the array directly.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mktsim.errors import ConservationError, InvalidParameter
from mktsim.goods import BASE_UNITS, Goods
from mktsim.recorder import Recorder

__all__ = ["Ledger"]

IntArray = NDArray[np.int64]


class Ledger:
    """Holdings ``int64[accounts, goods]`` with exact conservation.

    Args:
        goods: the scenario's goods (column order).
        holdings: initial holdings in base units, one row per account (agents first, then any
            accounts the mechanisms open, such as a market maker's inventory).
        recorder: where settlements are journalled.
        clock: returns the current simulation time.
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
        self._h = holdings
        # Scalar access as Python ints, about twice as fast as numpy indexing: the hot path.
        self._mv = memoryview(holdings)  # type: ignore[arg-type]
        self._recorder = recorder
        self._clock = clock
        self._initial = holdings.sum(axis=0)
        self._created = np.zeros(len(goods), dtype=np.int64)
        self._destroyed = np.zeros(len(goods), dtype=np.int64)
        self._next_trade = 0
        self._next_production = 0
        self._num = goods.numeraire_index
        self._trades = _TradeBuffer(recorder)
        recorder.add_flush_hook("trades", self._trades.flush)
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
        return h.astype(np.float64) / BASE_UNITS

    def totals(self) -> IntArray:
        """Total of each good over all accounts, base units: what the economy started with plus
        what was created minus what was destroyed (O(goods); :meth:`conserved` checks that the
        accounts really add up to it)."""
        return self._initial + self._created - self._destroyed

    def open_account(self, holdings: IntArray | None = None) -> int:
        """Add an account (e.g. a market maker) funded from outside the economy, counted as
        created so conservation still balances. Returns its row."""
        row = np.zeros((1, len(self.goods)), dtype=np.int64)
        if holdings is not None:
            row[0] = holdings
            if (row < 0).any():
                raise InvalidParameter("a new account's holdings must be >= 0")
        self._h = np.vstack([self._h, row])
        self._mv = memoryview(self._h)  # type: ignore[arg-type]
        self._created += row[0]
        self.version += 1
        return self.n_accounts - 1

    # ---- changing ------------------------------------------------------------------------
    def _trade_id(self) -> int:
        self._next_trade += 1
        return self._next_trade

    def trade(self, buyer: int, seller: int, good: int, qty: int, cash: int, price: float) -> int:
        """Bilateral trade: ``qty`` base units of ``good`` from seller to buyer, ``cash`` base
        units of the numeraire from buyer to seller. Refuses overdrafts. Returns the trade id.

        This is the order book's hot path: scalar updates and a buffered journal row.
        """
        h = self._mv
        num = self._num
        if qty <= 0 or cash < 0 or buyer == seller or good == num:
            raise InvalidParameter(
                f"trade(buyer={buyer}, seller={seller}, good={good}, qty={qty}, cash={cash}) "
                "is not a trade"
            )
        if h[seller, good] < qty or h[buyer, num] < cash:
            raise ConservationError(
                f"trade would overdraw: seller {seller} holds {h[seller, good]} < {qty} or "
                f"buyer {buyer} holds {h[buyer, num]} < {cash} cash"
            )
        h[seller, good] -= qty
        h[buyer, good] += qty
        h[buyer, num] -= cash
        h[seller, num] += cash
        self.version += 1
        self._next_trade += 1
        tid = self._next_trade
        self._trades.add(tid, self._clock(), self.round, buyer, seller, good, qty, cash, price)
        return tid

    def exchange(
        self, rows: NDArray[np.intp], deltas: NDArray[np.float64], prices: NDArray[np.float64]
    ) -> int:
        """Multilateral exchange at prices: account ``rows[i]`` receives ``deltas[i, j]`` units of
        each non-numeraire good j and pays for them in the numeraire at ``prices`` (numeraire = 1).

        ``deltas`` must sum to (nearly) zero over rows. Rounding to base units only ever shrinks
        trades, and the numeraire is rounded in each agent's favour with the rounding surplus
        taken from the largest money holders, so every column balances exactly and no holding
        goes negative. Returns the trade id (-1 if nothing moved).
        """
        rows = np.asarray(rows, dtype=np.intp)
        deltas = np.asarray(deltas, dtype=np.float64)
        g = len(self.goods)
        if deltas.shape != (rows.size, g) or not np.isfinite(deltas).all():
            raise InvalidParameter(f"exchange deltas must be finite with shape ({rows.size}, {g})")
        num = self._num
        goods_delta = np.trunc(deltas * BASE_UNITS).astype(np.int64)  # toward zero: trades shrink
        goods_delta[:, num] = 0
        for j in range(g):
            if j != num:
                volume = float(np.abs(goods_delta[:, j]).sum())
                if abs(int(goods_delta[:, j].sum())) > rows.size + 1e-8 * volume:
                    raise ConservationError(
                        f"exchange of {self.goods.names[j]} does not balance: net "
                        f"{goods_delta[:, j].sum() / BASE_UNITS:g} units over {rows.size} accounts"
                    )
                _balance_column(goods_delta[:, j])
        if not goods_delta.any():
            return -1
        # Money: exact cost of the integer goods, rounded in the agents' favour (they pay less).
        cost = (goods_delta.astype(np.float64) @ prices) / BASE_UNITS  # units of numeraire
        money = -np.floor(cost * BASE_UNITS).astype(np.int64)  # received (+) / paid (-)
        # The rounding left the agents `surplus` base units ahead: take them back from the
        # largest money balances after the trade (which together hold at least that much).
        surplus = int(money.sum())
        if surplus < 0:  # float rounding can leave agents a unit short: the largest holder gets it
            money[np.argmax(self._h[rows, num] + money)] -= surplus
        elif surplus > 0:
            post = self._h[rows, num] + money
            order = np.argsort(-post, kind="stable")
            before = np.cumsum(post[order]) - post[order]
            take = np.minimum(post[order], np.maximum(surplus - before, 0))
            money[order] -= take
        goods_delta[:, num] = money
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
        num = self._num
        nz_r, nz_g = np.nonzero(delta)
        keep = nz_g != num
        r, j = nz_r[keep], nz_g[keep]
        q = delta[r, j] / BASE_UNITS
        self._recorder.append(
            "trades",
            trade_id=tid,
            time=self._clock(),
            round=self.round,
            agent=rows[r],
            good=j,
            quantity=q,
            price=prices[j],
            cash=q * prices[j],
        )

    def create(self, row: int, amounts: IntArray, reason: str) -> None:
        """Create goods from outside the economy (an endowment shock, production output)."""
        amounts = np.asarray(amounts, dtype=np.int64)
        if (amounts < 0).any():
            raise InvalidParameter(f"create({reason}): amounts must be >= 0")
        self._h[row] += amounts
        self._created += amounts
        self.version += 1

    def destroy(self, row: int, amounts: IntArray, reason: str) -> None:
        """Destroy goods (consumption, production inputs, a supply shock); refuses overdrafts."""
        amounts = np.asarray(amounts, dtype=np.int64)
        if (amounts < 0).any() or (self._h[row] < amounts).any():
            raise ConservationError(f"destroy({reason}) would overdraw account {row}")
        self._h[row] -= amounts
        self._destroyed += amounts
        self.version += 1

    def produce(
        self, rows: NDArray[np.intp], inputs: IntArray, outputs: IntArray, technology: str
    ) -> int:
        """Production: account ``rows[i]`` turns ``inputs[i]`` into ``outputs[i]`` (base units,
        ``int64[len(rows), goods]``, both >= 0), atomically for all rows.

        Inputs are destroyed and outputs created (both counted, so conservation still checks
        exactly), and every nonzero entry is journalled in the ``production`` table under one
        production id, so every unit consumed or made has a record. Refuses, changing nothing, if
        an account lacks its inputs. Returns the production id (-1 if nothing changed).
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
        self._h[rows] += outputs - inputs
        self._created += outputs.sum(axis=0)
        self._destroyed += inputs.sum(axis=0)
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
            quantity=delta[r, j] / BASE_UNITS,
            technology=technology,
        )
        return pid

    def adjust(self, rows: NDArray[np.intp], deltas: IntArray, reason: str) -> None:
        """Create (positive) and destroy (negative) goods for many accounts at once, e.g. an
        endowment shock; refuses, changing nothing, if any holding would go negative."""
        rows = np.asarray(rows, dtype=np.intp)
        deltas = np.asarray(deltas, dtype=np.int64)
        after = self._h[rows] + deltas
        if (after < 0).any():
            raise ConservationError(f"adjust({reason}) would overdraw an account")
        self._h[rows] = after
        self._created += np.where(deltas > 0, deltas, 0).sum(axis=0)
        self._destroyed += np.where(deltas < 0, -deltas, 0).sum(axis=0)
        self.version += 1

    # ---- checking ------------------------------------------------------------------------
    def conserved(self) -> bool:
        """True when totals equal initial + created - destroyed for every good, exactly."""
        expected = self._initial + self._created - self._destroyed
        return bool(np.array_equal(self._h.sum(axis=0), expected)) and bool((self._h >= 0).all())

    def check_conserved(self) -> None:
        """Raise :class:`ConservationError` naming the goods whose totals moved."""
        if not self.conserved():
            expected = self._initial + self._created - self._destroyed
            diff = self._h.sum(axis=0) - expected
            bad = {self.goods.names[j]: int(d) for j, d in enumerate(diff) if d}
            raise ConservationError(f"goods not conserved (base units off): {bad}")


class _TradeBuffer:
    """Bilateral trades journalled one compact row each in typed arrays (cheap to append),
    handed to the recorder as two ``trades`` rows apiece (buyer, then seller) in bulk."""

    _FIELDS = (
        ("tid", "q"),
        ("time", "d"),
        ("round", "q"),
        ("buyer", "q"),
        ("seller", "q"),
        ("good", "q"),
        ("qty", "q"),
        ("cash", "q"),
        ("price", "d"),
    )

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._reset()

    def _reset(self) -> None:
        self._cols: list[Any] = [array(code) for _, code in self._FIELDS]
        self._append: list[Any] = [c.append for c in self._cols]
        self.size = 0

    def add(
        self,
        tid: int,
        time: float,
        rnd: int,
        buyer: int,
        seller: int,
        good: int,
        qty: int,
        cash: int,
        price: float,
    ) -> None:
        a = self._append
        a[0](tid), a[1](time), a[2](rnd), a[3](buyer), a[4](seller)
        a[5](good), a[6](qty), a[7](cash), a[8](price)
        self.size += 1
        if self.size >= 65_536:
            self.flush()

    def flush(self) -> None:
        if not self.size:
            return
        tid, time, rnd, buyer, seller, good, qty, cash, price = (
            np.frombuffer(c, dtype=np.int64 if c.typecode == "q" else np.float64).copy()
            for c in self._cols
        )
        self._reset()

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
            quantity=sign * twice(qty / BASE_UNITS),
            price=twice(price),
            cash=sign * twice(cash / BASE_UNITS),
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
