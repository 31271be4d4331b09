"""Pieces every swap strategy shares: Poisson arrivals, the population's own delay, options.

A strategy is one SimPy process per population. Its agents arrive as a Poisson process (each
agent at ``rate`` per unit time), drawn in vectorised blocks from the run's stream
``<market>:<population>`` so that a population's draws do not depend on any other population's.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterator
from typing import Any, ClassVar

import numpy as np
import simpy

from mktsim.mechanism import MarketContext, Option, PopulationSlot, positive_float

__all__ = ["RATE", "SwapStrategy", "arrivals", "tolerance"]

#: The arrival-rate option every Poisson strategy takes.
RATE = Option(1.0, "arrivals per agent per unit time", positive_float)


def tolerance(value: Any) -> float:
    """Converter for a tolerance: a finite float >= 0."""
    x = float(value)
    if not (math.isfinite(x) and x >= 0):
        raise ValueError("must be >= 0 and finite")
    return x


def arrivals(
    rng: np.random.Generator, rate: float, size: int, block: int = 512
) -> Iterator[tuple[float, int]]:
    """Poisson arrivals of a population: endless ``(gap, agent)`` pairs.

    Each of ``size`` agents arrives at ``rate`` per unit time, so the population's gaps are
    exponential with mean ``1 / (rate·size)`` and each arrival is a uniformly drawn agent (index
    within the population). Draws come ``block`` at a time: gaps, then agents.
    """
    scale = 1.0 / (rate * size)
    while True:
        gaps = rng.exponential(scale, block)
        agents = rng.integers(0, size, block)
        yield from zip(gaps.tolist(), agents.tolist(), strict=True)


class SwapStrategy:
    """Base of the swap strategies: holds the market, context, slot and options, and delivers
    orders after the population's ``delay`` (time between looking at the market and the order
    reaching it)."""

    name: ClassVar[str]
    doc: ClassVar[str]
    emits: ClassVar[frozenset[type]]
    serves: ClassVar[frozenset[str]]
    options: ClassVar[dict[str, Option]] = {}

    def __init__(
        self, market: Any, ctx: MarketContext, slot: PopulationSlot, options: dict[str, Any]
    ) -> None:
        self.market = market
        self.ctx = ctx
        self.base_units = ctx.goods.base_units
        self.slot = slot
        self.opts = dict(options)
        self.population: Any = slot.population
        self.env: simpy.Environment = ctx.env
        if self.opts.get("rate") is not None:  # the arrival rate of the Poisson strategies
            ctx.check_rate("rate", float(self.opts["rate"]), slot.population.size, slot.name)

    def start(self) -> None:
        self.env.process(self.run())

    def run(self) -> Generator[simpy.Event, Any, None]:
        """The population's process."""
        raise NotImplementedError
        yield  # pragma: no cover

    def stream(self) -> np.random.Generator:
        """The population's random stream, ``<market>:<population>``."""
        market = getattr(self.market, "name", "market")
        return self.ctx.streams.generator(f"{market}:{self.population.name}")

    def closed(self) -> bool:
        """True once the market says it has resolved (a prediction market)."""
        return bool(getattr(self.market.quote(), "resolved", False))

    def send(self, order: Any) -> simpy.Event:
        """Deliver ``order`` after the population's delay without waiting for its receipt (a
        delayed order travels in its own process, and one reaching a resolved market is
        dropped). Returns the event that fires when the order has been answered."""
        delay = float(self.population.delay)
        if not delay:
            return self.market.submit(order)

        def later() -> Generator[simpy.Event, Any, Any]:
            yield self.env.timeout(delay)
            if self.closed():
                return None
            receipt = yield self.market.submit(order)
            return receipt

        return self.env.process(later())

    def deliver(self, order: Any) -> Generator[simpy.Event, Any, Any]:
        """Deliver ``order`` after the population's delay and return its receipt (for strategies
        whose next order depends on this one's fill)."""
        delay = float(self.population.delay)
        if delay:
            yield self.env.timeout(delay)
        receipt = yield self.market.submit(order)
        return receipt
