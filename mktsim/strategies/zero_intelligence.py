"""Gode & Sunder's zero-intelligence traders (1993), constrained and unconstrained.

``zi_u``: prices uniform on the whole range [min_price, max_price]. ``zi_c``: constrained never
to trade at a loss: buyers bid uniform on [min_price, limit] and sellers ask uniform on [limit,
max_price], where the limit is the unit's value or cost (or a consumer's marginal rate of
substitution). Prices are whole ticks; a market that trades at the resting order's price (an
order book) so keeps every trade of a constrained trader within its own limit.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping
from itertools import accumulate, chain
from typing import Any, ClassVar

import numpy as np

from mktsim.errors import InvalidParameter
from mktsim.mechanism import Option, PopulationSlot
from mktsim.strategies._arrivals import (
    COMMON,
    EPS,
    InducedLimits,
    PoissonStrategy,
    optional_rate,
)

__all__ = ["UnconstrainedZeroIntelligence", "ZeroIntelligence"]


class ZeroIntelligence(PoissonStrategy):
    """``zi_c``: random prices that never trade at a loss (see the module docstring)."""

    name = "zi_c"
    doc = "Gode-Sunder zero intelligence, constrained: random prices never at a loss"
    constrained = True
    options: ClassVar[Mapping[str, Option]] = {
        **COMMON,
        "min_price": Option(None, "lowest price (None: one tick)", optional_rate),
        "max_price": Option(200.0, "highest price (Gode & Sunder: 200)", optional_rate),
    }

    def __init__(
        self, market: Any, ctx: Any, slot: PopulationSlot, options: Mapping[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        tick = self.tick
        lo = self.opts["min_price"]
        self.lo_ticks = 1 if lo is None else max(1, math.ceil(lo / tick - EPS))
        self.hi_ticks = math.floor(self.opts["max_price"] / tick + EPS)
        if self.hi_ticks < self.lo_ticks:
            raise InvalidParameter(
                f"max_price(={self.opts['max_price']}) of population {slot.name!r} must be at "
                f"least min_price (and one tick, {tick})"
            )

        limits = self.limits
        if isinstance(limits, InducedLimits):
            # Unit values and costs are fixed for the run: each unit's price range in ticks is
            # worked out once, and an arrival only looks up its agent's next unit.
            tick, lo_t, hi_t, buy = self.tick, self.lo_ticks, self.hi_ticks, limits.buy
            rows, lengths = limits.unit_limits, limits.schedule_lengths
            flat = np.fromiter(chain.from_iterable(rows), dtype=np.float64, count=sum(lengths))
            if not self.constrained:
                bounds = np.full(flat.size, hi_t if buy else lo_t, dtype=np.int64)
            elif buy:  # as in act: min(hi, floor(limit / tick + EPS)), elementwise
                bounds = np.minimum(np.floor(flat / tick + EPS), hi_t).astype(np.int64)
            else:  # max(lo, ceil(limit / tick - EPS))
                bounds = np.maximum(np.ceil(flat / tick - EPS), lo_t).astype(np.int64)
            # One flat table, each agent's units from its offset: no list per agent, so an
            # arrival reads two contiguous tables however large the population, and the
            # collector has no per-agent objects to walk.
            self._bounds: list[int] = bounds.tolist()
            self._first = array("q", [0])
            self._first.extend(accumulate(lengths[:-1]))
            self._schedule = limits.schedule_lengths
            self._unit = limits.unit_base
            self._good = limits.good
            self._name = self.names[limits.good]
            self._buy = buy
            self.act = self._act_induced  # type: ignore[method-assign]

    def decide(self, agent: int, u1: float, u2: float) -> tuple[Any, ...] | None:
        pick = self.limits.pick(agent - self.start_row, u1)
        if pick is None:
            return None
        g, buy, limit, unit = pick
        lo, hi = self.lo_ticks, self.hi_ticks
        if self.constrained:
            if buy:
                hi = min(hi, math.floor(limit / self.tick + EPS))
            else:
                lo = max(lo, math.ceil(limit / self.tick - EPS))
        if hi < lo:
            return None
        return agent, g, buy, lo + int(u2 * (hi - lo + 1)), unit

    def act(self, agent: int, u1: float, u2: float) -> None:
        """:meth:`decide` then :meth:`~PoissonStrategy.post`, in one call (an arrival without
        latency: the hot path of a zero-intelligence market)."""
        local = agent - self.start_row
        pick = self.limits.pick(local, u1)
        if pick is None:
            return
        g, buy, limit, _ = pick
        lo, hi = self.lo_ticks, self.hi_ticks
        if self.constrained:
            if buy:
                hi = min(hi, math.floor(limit / self.tick + EPS))
            else:
                lo = max(lo, math.ceil(limit / self.tick - EPS))
        if hi >= lo:
            live = self.live[g]
            live[local] = self.replace(
                agent, g, live[local], buy, self.lots, lo + int(u2 * (hi - lo + 1))
            )

    def _act_induced(self, agent: int, u1: float, u2: float) -> None:
        """:meth:`act` for induced-value traders: the next unit from the agent's holdings (as
        :meth:`InducedLimits.pick`), its price range from the table made at the start."""
        local = agent - self.start_row
        held = self._hv[agent, self._good]
        units = self._schedule[local]
        if self._buy:
            k = held // self._unit
            if k >= units:
                return
            lo, hi = self.lo_ticks, self._bounds[self._first[local] + k]
        else:
            k = units - (held + self._unit - 1) // self._unit
            if k < 0 or k >= units:
                return
            lo, hi = self._bounds[self._first[local] + k], self.hi_ticks
        if hi >= lo:
            g = self._good
            live = self.live[g]
            ticks, old, buy = lo + int(u2 * (hi - lo + 1)), live[local], self._buy
            # The market's one-call withdraw-and-post (see replace), asked from here directly.
            repost = self._repost
            new = None if repost is None else repost(agent, self._name, old, buy, self.lots, ticks)
            live[local] = self.replace(agent, g, old, buy, self.lots, ticks) if new is None else new


class UnconstrainedZeroIntelligence(ZeroIntelligence):
    """``zi_u``: random prices on the whole range, losses allowed."""

    name = "zi_u"
    doc = "Gode-Sunder zero intelligence, unconstrained: random prices on a fixed range"
    constrained = False
