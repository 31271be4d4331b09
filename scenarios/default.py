"""The first-run economy: 1,000 Cobb-Douglas consumers trading 4 goods under the auctioneer."""

from __future__ import annotations

from mktsim.scenarios import cobb_douglas

from mktsim.scenario import Scenario


def build(n_agents: int = 1000, n_goods: int = 4, seed: int = 0) -> Scenario:
    """The ``cobb_douglas`` economy with 1,000 agents and 4 goods (money, good1..good3)."""
    base = cobb_douglas.build(n_agents=n_agents, n_goods=n_goods, seed=seed)
    return Scenario(
        name="default",
        goods=base.goods,
        populations=base.populations,
        params=base.params,
        description=__doc__ or "",
    )
