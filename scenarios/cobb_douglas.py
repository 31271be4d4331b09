"""Exchange economy of Cobb-Douglas consumers with random preferences and endowments."""

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
from mktsim.utility import CobbDouglas


def build(n_agents: int = 100, n_goods: int = 3, seed: int = 0) -> Scenario:
    """``n_agents`` consumers over ``n_goods`` goods (the first, ``money``, is the numeraire).

    Shares are uniform on the simplex and endowments uniform on [0.5, 1.5) per good, each drawn
    per agent from (seed, agent id), so adding agents leaves the others unchanged.
    """
    check_count("n_agents", n_agents, 1)
    check_count("n_goods", n_goods, 2)
    check_size(n_agents, n_goods)
    streams = Streams(seed)
    shares = dirichlet_rows(streams, "cobb_douglas:shares", n_agents, n_goods)
    endowment = uniform_rows(streams, "cobb_douglas:endowment", n_agents, n_goods, 0.5, 1.5)
    return Scenario(
        name="cobb_douglas",
        goods=goods_names(n_goods),
        populations=[Consumers("consumers", CobbDouglas(shares), endowment)],
        params={"n_agents": n_agents, "n_goods": n_goods, "seed": seed},
        description=__doc__ or "",
    )
