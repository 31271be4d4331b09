"""Scripted swaps and idle agents (registered as ``scripted_swap`` and ``idle``).

``scripted_swap`` replays a list of ``orders``, each either

* ``(time, agent, good, side, amount)`` or ``(time, agent, good, side, amount, "in"|"out")``: a
  swap of ``side`` buy or sell, ``amount`` the units paid in (``"in"``, the default) or wanted
  out (``"out"``); or
* ``(time, agent, good, shares)``: ``shares`` signed units of the good, > 0 buys exactly that
  many, < 0 sells exactly that many (how prediction-market trades are written),

with ``agent`` an index within the population. Orders run in time order (ties in list order),
each sent at its time (plus the population's delay). ``idle`` never trades: for populations
driven by hand (a test, a notebook) through the market's public ``submit``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, ClassVar

import simpy

from mktsim.errors import InvalidParameter, UnknownName
from mktsim.mechanism import MarketContext, Option, PopulationSlot
from mktsim.orders import BUY, SELL, Cancel, DemandReport, Limit, MarketOrder, Modify, Swap
from mktsim.strategies._common import SwapStrategy

__all__ = ["Idle", "ScriptedSwap"]

_KINDS = frozenset(
    {"consumers", "induced", "firms", "source", "final_demand", "belief_traders", "dealer_market"}
)


class ScriptedSwap(SwapStrategy):
    """Replays given swaps (see the module docstring)."""

    name: ClassVar[str] = "scripted_swap"
    doc: ClassVar[str] = (
        "replay swaps [(time, agent, good, side, amount[, 'in'|'out']) or "
        "(time, agent, good, shares), ...]"
    )
    emits: ClassVar[frozenset[type]] = frozenset({Swap})
    serves: ClassVar[frozenset[str]] = _KINDS
    options: ClassVar[dict[str, Option]] = {"orders": Option((), "the swaps to replay")}

    def __init__(
        self, market: Any, ctx: MarketContext, slot: PopulationSlot, options: dict[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        pop = self.population
        names = list(market.quote().prices)
        plan = []
        for entry in self.opts["orders"]:
            entry = tuple(entry)
            if len(entry) == 4:
                time, who, good, shares = entry
                units = round(float(shares) * self.base_units)
                side, kind = (BUY, "out") if units > 0 else (SELL, "in")
                units = abs(units)
            elif len(entry) in (5, 6):
                time, who, good, side, amount = entry[:5]
                kind = entry[5] if len(entry) == 6 else "in"
                if side not in (BUY, SELL) or kind not in ("in", "out"):
                    raise InvalidParameter(f"scripted swap {entry!r}: side buy|sell, kind in|out")
                units = round(float(amount) * self.base_units)
            else:
                raise InvalidParameter(
                    f"scripted swap {entry!r} of population {pop.name!r} must be (time, agent, "
                    "good, side, amount[, 'in'|'out']) or (time, agent, good, shares)"
                )
            if good not in names:
                raise UnknownName("good in a scripted swap", str(good), names)
            if not 0 <= int(who) < pop.size:
                raise InvalidParameter(f"scripted agent(={who}) not in population {pop.name!r}")
            if units >= 1:
                plan.append((float(time), int(who), str(good), side, units, kind))
        self.plan = sorted(plan, key=lambda o: o[0])

    def run(self) -> Generator[simpy.Event, Any, None]:
        env, start = self.env, self.slot.rows.start
        for time, who, good, side, units, kind in self.plan:
            if time > env.now:
                yield env.timeout(time - env.now)
            if self.closed():
                return
            self.send(Swap(start + who, good, side, units / self.base_units, kind))


class Idle:
    """Never trades. It pairs with every mechanism (it would send nothing any of them refuses)."""

    name: ClassVar[str] = "idle"
    doc: ClassVar[str] = "never trade (drive the agents by hand through the market's submit)"
    emits: ClassVar[frozenset[type]] = frozenset(
        {Limit, MarketOrder, Cancel, Modify, Swap, DemandReport}
    )
    serves: ClassVar[frozenset[str]] = _KINDS
    options: ClassVar[dict[str, Option]] = {}

    def __init__(self, market: Any, ctx: Any, slot: Any, options: dict[str, Any]) -> None:
        self.slot = slot

    def start(self) -> None:
        """Nothing to start."""
