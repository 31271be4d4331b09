"""A small Leontief input-output economy: prices are v (I - A)^-1, whatever the demand."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

from mktsim.errors import InvalidParameter
from mktsim.firms import FinalDemand, Firms, link, replicate
from mktsim.goods import Goods
from mktsim.production import Leontief, leontief_prices
from mktsim.scenario import Scenario
from mktsim.supply_chain import leontief_reference, stable_step, supply_chain_metrics

GOODS = ("energy", "steel", "machinery")
#: A[i, j] = units of good i used per unit of good j (acyclic: energy -> steel -> machinery).
INPUTS = ((0.0, 0.3, 0.2), (0.0, 0.0, 0.4), (0.0, 0.0, 0.0))


def build(
    value_added: Sequence[float] = (1.0, 0.5, 0.8),
    final_demand: Sequence[float] = (2.0, 1.0, 3.0),
    inputs: Sequence[Sequence[float]] = INPUTS,
    firms: int = 5,
    production_time: float = 0.0,
) -> Scenario:
    """Three goods made by constant-returns (Leontief) industries: good j needs ``inputs[i][j]``
    units of each good i and ``value_added[j]`` money per unit (paid to primary factors outside
    the scenario, so that money leaves the economy). Households order ``final_demand`` units of
    each good whatever the price.

    Competitive industries price at unit cost, so p = pA + v, i.e. p = v (I - A)^-1 (also the LP
    shadow prices of delivering the final demand at least cost); they produce to order, so gross
    outputs are (I - A)^-1 d. Each industry reports to the auctioneer only its zero-profit signal
    ln(c(p) / p), which drives the posted prices to unit costs; goods change hands at settlement,
    made to order in production order. The input matrix must be acyclic (a production order).

    Args:
        value_added: money per unit of each good, >= 0.
        final_demand: units of each good ordered by households, >= 0.
        inputs: the 3 x 3 input matrix A (>= 0, acyclic, spectral radius < 1).
        firms: identical firms per industry.
        production_time: simulation time each industry takes to produce.
    """
    a = np.array(inputs, dtype=float)
    v = np.array(value_added, dtype=float)
    d = np.array(final_demand, dtype=float)
    n = len(GOODS)
    for name, arr, shape in (
        ("inputs", a, (n, n)),
        ("value_added", v, (n,)),
        ("final_demand", d, (n,)),
    ):
        if arr.shape != shape:
            raise InvalidParameter(f"{name} must have shape {shape}; got {arr.shape}")
    prices = leontief_prices(a, v)  # validates A and v (finite, >= 0, productive)
    if not np.isfinite(d).all() or (d < 0).any():
        raise InvalidParameter(f"final_demand(={d.tolist()}) must be >= 0 and finite")
    gross = np.linalg.solve(np.eye(n) - a, d)
    goods = Goods.of(["money", *GOODS], numeraire="money")
    pops: list[object] = []
    for j, good in enumerate(GOODS):
        used = [i for i in range(n) if a[i, j] > 0]
        coefficients = [[*(a[i, j] for i in used), v[j]]]
        money = np.zeros((firms, len(goods)))
        # working capital: twice the cost of the reference output, plus 1, split over the firms
        money[:, 0] = (2.0 * prices[j] * gross[j] + 1.0) / firms
        pops.append(
            Firms(
                good,
                replicate(Leontief(coefficients), firms),
                [*(GOODS[i] for i in used), "money"],
                good,
                goods,
                endowment=money,
                production_time=production_time,
            )
        )
    pops.append(
        FinalDemand(
            "households",
            goods,
            quantities=dict(zip(GOODS, d.tolist(), strict=True)),
            budget=2.0 * float(prices @ d) + 1.0,
        )
    )
    reference = leontief_reference(a, v, d, GOODS)
    scenario = Scenario(
        name="leontief_io",
        goods=goods,
        populations=link(pops),
        until=1000.0,
        params={
            "value_added": v.tolist(),
            "final_demand": d.tolist(),
            "inputs": a.tolist(),
            "firms": firms,
            "production_time": production_time,
        },
        description=__doc__ or "",
        reference=lambda _scenario: reference,
        metrics=supply_chain_metrics,
    )
    assert reference.prices is not None
    step = stable_step(scenario, reference.prices)
    return attrs.evolve(
        scenario, mechanism_options={"walrasian": {"method": "multiplicative", "step": step}}
    )
