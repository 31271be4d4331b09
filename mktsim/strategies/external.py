"""``external``: no process. The population's agents act only through what your own code submits
(a script, a test, a learning agent): ``market.submit(order)`` with any order the mechanism
accepts, reading ``market.quote()`` and waiting on ``market.updated()``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from mktsim.mechanism import Option, PopulationSlot
from mktsim.orders import Cancel, Limit, MarketOrder, Modify, Swap

__all__ = ["External"]


class External:
    """Drives nothing: its agents are yours to drive."""

    name: ClassVar[str] = "external"
    doc: ClassVar[str] = "no process: the agents act only through orders your own code submits"
    # Not demand reports: an auctioneer would wait for reports nobody sends.
    emits: ClassVar[frozenset[type]] = frozenset({Limit, MarketOrder, Cancel, Modify, Swap})
    serves: ClassVar[frozenset[str]] = frozenset(
        {
            "consumers",
            "induced",
            "firms",
            "source",
            "final_demand",
            "belief_traders",
            "dealer_market",
        }
    )
    options: ClassVar[Mapping[str, Option]] = {}
    actions = 0

    def __init__(
        self, market: Any, ctx: Any, slot: PopulationSlot, options: Mapping[str, Any]
    ) -> None:
        self.market = market
        self.slot = slot

    def start(self) -> None:
        """Nothing to start."""
