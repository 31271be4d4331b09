"""Pieces shared by the market-maker mechanisms (LMSR and constant-product pools).

* :class:`Receipt`: what a trader gets back for an order, filled or refused with a reason
  (refusals are market life, never exceptions);
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
from attrs import frozen

from mktsim.errors import InvalidParameter, UnknownName
from mktsim.goods import to_base
from mktsim.ledger import Ledger
from mktsim.mechanism import MarketContext, PopulationSlot
from mktsim.random import Streams
from mktsim.recorder import Recorder
from mktsim.registry import resolve
from mktsim.scenario import Scenario

__all__ = [
    "FILLED",
    "REJECTED",
    "Receipt",
    "arrivals",
    "behaviour_settings",
    "positive_rate",
    "standalone",
]

FILLED = "filled"
REJECTED = "rejected"


@frozen
class Receipt:
    """The answer to an order.

    Attributes:
        status: ``filled`` or ``rejected``.
        agent: the trader's ledger row.
        good: the traded good's ledger column.
        quantity: base units of ``good`` the trader received (+) or gave (−); 0 if refused.
        cash: base units of the numeraire the trader paid (+) or received (−); 0 if refused.
        reason: None if filled, else a short fixed phrase (``insufficient money``, ...) that
            summaries count by.
        detail: the numbers behind a refusal.
    """

    status: str
    agent: int
    good: int
    quantity: int = 0
    cash: int = 0
    reason: str | None = None
    detail: str = ""

    @property
    def accepted(self) -> bool:
        return self.status == FILLED

    @property
    def price(self) -> float:
        """Money per unit of the good (NaN if nothing traded)."""
        return abs(self.cash / self.quantity) if self.quantity else float("nan")


def rejected(agent: int, good: int, reason: str, detail: str = "") -> Receipt:
    """A refusal with a reason."""
    return Receipt(REJECTED, agent, good, reason=reason, detail=detail)


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
    :func:`mktsim.simulate`, for driving a market by hand (``market.execute(order)``,
    ``ctx.env.run(until=...)``).

    Give populations the ``passive`` behaviour to keep them from trading on their own.
    """
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
    ctx = MarketContext(
        env, scenario, scenario.goods, ledger, recorder, Streams(seed), slots, env.event()
    )
    market.attach(ctx)
    return market, ctx
