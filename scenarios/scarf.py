"""Scarf's (1960) economy: three Leontief consumers around which tatonnement cycles."""

from __future__ import annotations

import numpy as np

from mktsim.population import Consumers
from mktsim.scenario import Scenario
from mktsim.utility import Leontief


def build() -> Scenario:
    """Three goods, three consumers; consumer i owns one unit of good i and has utility
    min(x_i, x_{i+1 mod 3}). The unique equilibrium is p = (1, 1, 1) (numeraire good0). Continuous
    tatonnement orbits it forever; by default the auctioneer takes additive steps of 0.1 holding
    good0's price at 1, starting off equilibrium at p0 = (1, 1.3, 0.7)."""
    coefficients = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    return Scenario(
        name="scarf",
        goods=["good0", "good1", "good2"],
        populations=[Consumers("consumers", Leontief(coefficients), np.eye(3))],
        mechanism_options={
            "walrasian": {
                "normalize": "numeraire",
                "method": "additive",
                "step": 0.1,
                "initial_prices": {"good0": 1.0, "good1": 1.3, "good2": 0.7},
            }
        },
        until=400.0,
        description=__doc__ or "",
    )
