"""Tupperware chain: natgas -> ethylene -> polyethylene -> tupperware; prices are derivatives."""

from __future__ import annotations

import math

from mktsim.scenarios._common import check_number

from mktsim.production import tupperware_graph
from mktsim.scenario import Scenario
from mktsim.supply_chain import scenario_from_graph


def build(
    natgas: float = 4.0,
    offset: float | None = None,
    price: float = 1.0,
    firms: int = 10,
    production_time: float = 0.0,
    flow: bool = False,
) -> Scenario:
    """Owners sell ``natgas`` units of natural gas x; crackers make ethylene a = sqrt(x),
    polymerisers polyethylene b = 1 - 1/(a + 1), moulders tupperware c = ln(b) + offset, which an
    outside buyer takes at a fixed ``price`` (numeraire ``money``). Competitive prices are the
    derivatives of c(x): p_b = price / b, p_a = p_b / (a + 1)^2, p_x = p_a / (2 sqrt(x)); at x = 4
    they are 3/2, 1/6 and 1/24.

    ln(b) is negative for b < 1, and a firm whose output would be negative (or whose plan loses
    money) shuts down. The offset changes no derivative and so no price; by default it is
    2 - ln(b*) for the equilibrium b* = 1 - 1/(sqrt(x) + 1), so moulders make c* = 2 units,
    earn a positive profit (price) and every holding stays non-negative.

    Args:
        natgas: natural gas endowment x (units), > 0.
        offset: constant added to ln(b) (default 2 - ln(b*)).
        price: fixed tupperware price, > 0.
        firms: identical firms per stage (together they act as one firm).
        production_time: simulation time each stage takes to produce.
        flow: the owners extract the endowment again after every settlement (a stationary
            economy for trading every round, e.g. the auctioneer's non_tatonnement mode).
    """
    natgas = check_number("natgas", natgas)
    a_star = math.sqrt(natgas)
    b_star = 1.0 - 1.0 / (a_star + 1.0)
    chosen = 2.0 - math.log(b_star) if offset is None else float(offset)
    graph = tupperware_graph(natgas=natgas, offset=chosen, price=price)
    return scenario_from_graph(
        graph,
        "tupperware",
        firms=firms,
        production_time=production_time,
        flow=bool(flow),
        until=5000.0,
        params={
            "natgas": natgas,
            "offset": chosen,
            "price": price,
            "firms": firms,
            "production_time": production_time,
            "flow": bool(flow),
        },
        description=__doc__ or "",
    )
