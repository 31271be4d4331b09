"""Fisher market: buyers with budgets and CES, Cobb-Douglas or linear tastes, one seller of fixed
supply.

Buyers hold only money and value only goods; the seller holds the goods (one unit of each) and
values only money. The equilibrium is the Eisenberg-Gale program's
(:func:`mktsim.fisher.eisenberg_gale`), and the market is an exchange economy, so it runs under
the auctioneer, the order book and the pools alike. With ``linear=True`` buyers have linear
utilities with the same weights, bid by proportional response under the auctioneer's
``proportional_response`` method, and the reference is
:func:`mktsim.fisher.linear_fisher_reference`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from mktsim.scenarios._common import (
    check_count,
    check_size,
    dirichlet_rows,
    goods_names,
    uniform_rows,
)

from mktsim.fisher import linear_fisher_reference
from mktsim.population import Consumers
from mktsim.random import Streams
from mktsim.scenario import Scenario
from mktsim.utility import CES, CobbDouglas, Linear


def build(
    n_buyers: int = 50,
    n_goods: int = 3,
    elasticity: float = 2.0,
    seed: int = 0,
    linear: bool = False,
) -> Scenario:
    """``n_buyers`` buyers with budgets uniform on [1, 2) and weights uniform on the simplex over
    ``n_goods`` goods (money excluded); ``elasticity`` 1 gives Cobb-Douglas buyers, ``linear``
    linear ones (``elasticity`` is then ignored). One seller owns one unit of every good."""
    check_count("n_buyers", n_buyers, 1)
    check_count("n_goods", n_goods, 1)
    check_size(n_buyers + 1, n_goods + 1)
    streams = Streams(seed)
    g = n_goods + 1  # money first
    weights = np.zeros((n_buyers, g))
    weights[:, 1:] = dirichlet_rows(streams, "fisher:weights", n_buyers, n_goods)
    budgets = np.zeros((n_buyers, g))
    budgets[:, 0] = uniform_rows(streams, "fisher:budgets", n_buyers, 1, 1.0, 2.0)[:, 0]
    utility: Any = (
        Linear(weights)
        if linear
        else CobbDouglas(weights)
        if elasticity == 1
        else CES(weights, elasticity)
    )
    seller_taste = np.zeros((1, g))
    seller_taste[0, 0] = 1.0
    supply = np.ones((1, g))
    supply[0, 0] = 0.0
    return Scenario(
        name="fisher",
        goods=goods_names(g),
        populations=[
            Consumers(
                "buyers", utility, budgets, behaviour="proportional_response" if linear else None
            ),
            Consumers("seller", CobbDouglas(seller_taste), supply),
        ],
        params={
            "n_buyers": n_buyers,
            "n_goods": n_goods,
            "elasticity": elasticity,
            "seed": seed,
            **({"linear": True} if linear else {}),
        },
        mechanism_options={"walrasian": {"method": "proportional_response"}} if linear else {},
        reference=linear_fisher_reference if linear else None,
        # proportional response with linear buyers takes hundreds of rounds, not dozens
        until=5000.0 if linear else 200.0,
        description=__doc__ or "",
    )
