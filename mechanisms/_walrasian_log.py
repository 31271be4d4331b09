"""The auctioneer's round log: its three tables, written in blocks of rounds.

Every round adds one row per good to ``prices`` and ``excess_demand``, and one per population
and good to ``excess_demand_by_population``. Handing the recorder a few rows at a time costs
about as much per round as the round's own price arithmetic (each append converts and copies
every column), and at 10^5 agents that is a visible share of a round. So the rounds are written
into preallocated blocks here and handed over, a block at a time, when a block is full and
whenever the recorder is read, flushed or spilled (a flush hook): the tables hold exactly the
rows, values and order they would hold row by row; only the moment they reach the recorder
changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["RoundLog"]

Array = NDArray[np.float64]

#: Rounds held before they are handed to the recorder (a block's memory is a few rows per good).
BLOCK = 1024


class RoundLog:
    """Buffered rows of the auctioneer's tables for one run.

    Args:
        recorder: the run's recorder; tables it does not record are not buffered.
        goods: number of goods.
        populations: each population's index in the recorder's ``populations`` category, in
            the order their rows are written each round.
        block: rounds per block.
    """

    TABLES = ("prices", "excess_demand", "excess_demand_by_population")

    def __init__(
        self, recorder: Any, goods: int, populations: Sequence[int], block: int = BLOCK
    ) -> None:
        self.recorder = recorder
        self.block = block
        k = len(populations)
        self._goods = np.arange(goods)
        self._populations = np.asarray(populations, dtype=np.int64)
        enabled = recorder.enabled
        self._prices = "prices" in enabled
        self._excess = "excess_demand" in enabled
        self._by_population = "excess_demand_by_population" in enabled and k > 0
        self._times = np.empty(block)
        self._rounds = np.empty(block, dtype=np.int64)
        self._price = np.empty((block, goods)) if self._prices else None
        self._estimate = np.empty((block, goods)) if self._prices else None
        self._z = np.empty((block, goods)) if self._excess else None
        self._relative = np.empty((block, goods)) if self._excess else None
        self._per_population = np.empty((block, k, goods)) if self._by_population else None
        self._used = 0
        for table in self.TABLES:
            recorder.add_flush_hook(table, self.flush)

    def add(
        self,
        time: float,
        round_number: int,
        price: Array,
        estimate: Array,
        z: Array,
        relative: Array,
        per_population: Sequence[Array],
    ) -> None:
        """Log one round: prices and estimate already in numeraire, the total and relative
        excess demand, and each population's excess demand (in ``populations`` order)."""
        i = self._used
        self._times[i] = time
        self._rounds[i] = round_number
        if self._price is not None and self._estimate is not None:
            self._price[i] = price
            self._estimate[i] = estimate
        if self._z is not None and self._relative is not None:
            self._z[i] = z
            self._relative[i] = relative
        if self._per_population is not None:
            for j, excess in enumerate(per_population):
                self._per_population[i, j] = excess
        self._used = i + 1
        if self._used == self.block:
            self.flush()

    def flush(self) -> None:
        """Hand every logged round to the recorder, in order."""
        used = self._used
        if not used:
            return
        self._used = 0  # first: appending may spill, and a spill flushes again
        g = self._goods.size
        time = np.repeat(self._times[:used], g)
        rounds = np.repeat(self._rounds[:used], g)
        goods = np.tile(self._goods, used)
        rec = self.recorder
        if self._price is not None and self._estimate is not None:
            rec.append(
                "prices",
                time=time,
                round=rounds,
                good=goods,
                price=self._price[:used].ravel(),
                estimate=self._estimate[:used].ravel(),
            )
        if self._z is not None and self._relative is not None:
            rec.append(
                "excess_demand",
                time=time,
                round=rounds,
                good=goods,
                excess_demand=self._z[:used].ravel(),
                relative=self._relative[:used].ravel(),
            )
        if self._per_population is not None:
            k = self._populations.size
            rec.append(
                "excess_demand_by_population",
                time=np.repeat(self._times[:used], k * g),
                round=np.repeat(self._rounds[:used], k * g),
                population=np.tile(np.repeat(self._populations, g), used),
                good=np.tile(self._goods, used * k),
                excess_demand=self._per_population[:used].ravel(),
            )
