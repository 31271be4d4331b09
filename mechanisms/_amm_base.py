"""Pieces shared by the market-maker mechanisms (LMSR and constant-product pools).

* :func:`swap`: the protocol's :class:`~mktsim.orders.Swap` for an amount in base units;
* :func:`arrivals`: Poisson arrivals of a population, drawn in vectorised blocks;
* :func:`behaviour_settings`: a behaviour's options with defaults, unknown names refused;
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from mktsim.mechanisms._cpmm import SwapSide

from mktsim.errors import InvalidParameter, UnknownName
from mktsim.goods import BASE_UNITS
from mktsim.orders import BUY, SELL, Swap

__all__ = [
    "arrivals",
    "behaviour_settings",
    "positive_rate",
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
