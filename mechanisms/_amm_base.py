"""Pieces shared by the market-maker mechanisms (LMSR and constant-product pools).

* :func:`swap`: the protocol's :class:`~mktsim.orders.Swap` for an amount in base units;
* :func:`arrivals`: Poisson arrivals of a population, drawn in vectorised blocks;
* :func:`behaviour_settings`: a behaviour's options with defaults, unknown names refused;
* :func:`standalone`: wire a scenario and a market maker into a SimPy environment without running
  it, so a notebook or a test can submit orders by hand.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import simpy
from mktsim.mechanisms._cpmm import SwapSide

from mktsim.errors import InvalidParameter, UnknownName
from mktsim.goods import BASE_UNITS, to_base
from mktsim.ledger import Ledger
from mktsim.mechanism import MarketContext, PopulationSlot
from mktsim.orders import BUY, SELL, Swap
from mktsim.random import Streams
from mktsim.recorder import Recorder
from mktsim.registry import resolve
from mktsim.scenario import Scenario

__all__ = [
    "arrivals",
    "behaviour_settings",
    "positive_rate",
    "standalone",
    "swap",
]


def swap(market: Any, agent: int, j: int, side: SwapSide, units: int, exact: str = "in") -> Swap:
    """The protocol order for a swap of ``units`` base units in the pool of good column j."""
    name = market.ctx.goods.names[j]
    return Swap(agent, name, BUY if side is SwapSide.BUY else SELL, units / BASE_UNITS, exact)


def arrivals(
    rng: np.random.Generator, rate: float, size: int, block: int = 512
) -> Iterator[tuple[float, int]]:
    """Poisson arrivals of a population: endless ``(gap, agent)`` pairs.

    Each of ``size`` agents arrives at ``rate`` per unit time, so the population's gaps are
    exponential with mean ``1 / (rate·size)`` and each arrival is a uniformly drawn agent (index
    within the population). Draws come ``block`` at a time from ``rng``.
    """
    scale = 1.0 / (rate * size)
    while True:
        gaps = rng.exponential(scale, block)
        agents = rng.integers(0, size, block)
        yield from zip(gaps.tolist(), agents.tolist(), strict=True)


def positive_rate(value: Any, name: str = "rate") -> float:
    """A finite float > 0 (a behaviour option), or InvalidParameter naming it."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"{name}(={value!r}) must be a number > 0") from None
    if not np.isfinite(x) or x <= 0:
        raise InvalidParameter(f"{name}(={value!r}) must be > 0 and finite")
    return x


def behaviour_settings(
    population: str, behaviour: str, given: Mapping[str, Any], defaults: Mapping[str, Any]
) -> dict[str, Any]:
    """A behaviour's options: ``defaults`` overridden by ``given``; unknown names refused."""
    for key in given:
        if key not in defaults:
            raise UnknownName(
                f"option of behaviour {behaviour!r} (population {population!r})",
                key,
                list(defaults),
            )
    return {**dict(defaults), **dict(given)}


def standalone(
    mechanism: Any, scenario: Scenario, seed: int = 0, **options: Any
) -> tuple[Any, MarketContext]:
    """Build ``mechanism`` (a registered name, ``module:Class`` or a class) with the scenario's
    default options for it overridden by ``options``, attach it to a fresh environment for
    ``scenario``, and return ``(market, context)`` without running anything: the wiring of
    :func:`mktsim.simulate` (strategies assigned and started after the market opens), for
    driving a market by hand (``market.submit(order).value``, ``ctx.env.run(until=...)``).

    Give populations the ``passive`` behaviour to keep them from trading on their own.
    """
    from mktsim.pairing import assign_strategies, start_strategies

    cls = resolve(mechanism)
    market = cls(**{**dict(scenario.mechanism_options.get(cls.name, {})), **options})
    env = simpy.Environment()
    recorder = Recorder(
        {"goods": scenario.goods.names, "populations": [p.name for p in scenario.populations]}
    )
    ledger = Ledger(scenario.goods, to_base(scenario.endowments()), recorder, lambda: env.now)
    slots = tuple(
        PopulationSlot(i, pop, rows)
        for i, (pop, rows) in enumerate(
            zip(scenario.populations, scenario.population_slices().values(), strict=True)
        )
    )
    assigned = assign_strategies(cls, slots)
    ctx = MarketContext(
        env,
        scenario,
        scenario.goods,
        ledger,
        recorder,
        Streams(seed),
        slots,
        env.event(),
        strategies=assigned,
    )
    market.attach(ctx)
    start_strategies(market, ctx, assigned)
    return market, ctx
