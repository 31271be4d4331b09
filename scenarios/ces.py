"""Exchange economy of CES consumers; the elasticity of substitution is a parameter."""

from __future__ import annotations

from mktsim.scenarios._common import (
    check_count,
    check_size,
    dirichlet_rows,
    goods_names,
    uniform_rows,
)

from mktsim.population import Consumers
from mktsim.random import Streams
from mktsim.scenario import Scenario
from mktsim.utility import CES


def build(
    n_agents: int = 100, n_goods: int = 3, elasticity: float = 2.0, seed: int = 0
) -> Scenario:
    """CES consumers with elasticity ``elasticity`` (> 1: gross substitutes, a unique and stable
    equilibrium; < 1: complements). Weights uniform on the simplex, endowments on [0.5, 1.5)."""
    check_count("n_agents", n_agents, 1)
    check_count("n_goods", n_goods, 2)
    check_size(n_agents, n_goods)
    streams = Streams(seed)
    weights = dirichlet_rows(streams, "ces:weights", n_agents, n_goods)
    endowment = uniform_rows(streams, "ces:endowment", n_agents, n_goods, 0.5, 1.5)
    return Scenario(
        name="ces",
        goods=goods_names(n_goods),
        populations=[Consumers("consumers", CES(weights, elasticity), endowment)],
        params={"n_agents": n_agents, "n_goods": n_goods, "elasticity": elasticity, "seed": seed},
        description=__doc__ or "",
    )
