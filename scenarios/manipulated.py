"""A Cobb-Douglas economy where a large seller misreports its demand to the auctioneer."""

from __future__ import annotations

from typing import Any

import numpy as np
from mktsim.scenarios import cobb_douglas
from mktsim.scenarios._common import check_number

from mktsim.population import Consumers
from mktsim.scenario import Scenario
from mktsim.utility import CobbDouglas


def build(factor: float = 1.5, n_agents: int = 100, seed: int = 5) -> Scenario:
    """A tenth of the agents (population ``manipulator``) hold twenty times the others' good1 and,
    while prices are discovered, report ``factor`` times their true demand for it (keeping the
    report within budget), then trade truthfully at the distorted prices. ``factor`` > 1 withholds
    supply and raises good1's price. Compare with ``--counterfactual --adversary manipulator``."""
    factor = check_number("factor", factor, strict=False)
    base = cobb_douglas.build(n_agents=n_agents, n_goods=3, seed=seed)
    pop: Any = base.populations[0]  # a Consumers population
    big = np.arange(n_agents) < max(1, n_agents // 10)
    manipulator = Consumers(
        "manipulator",
        CobbDouglas(pop.utility.shares[big]),
        pop.endowment[big] * np.array([1.0, 20.0, 1.0]),
        behaviour="manipulator",
        behaviour_options={"good": "good1", "factor": factor},
    )
    others = Consumers("honest", CobbDouglas(pop.utility.shares[~big]), pop.endowment[~big])
    return Scenario(
        name="manipulated",
        goods=base.goods,
        populations=[manipulator, others],
        until=2000.0,
        params={"factor": factor, "n_agents": n_agents, "seed": seed},
        description=__doc__ or "",
    )
