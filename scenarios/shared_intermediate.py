"""One intermediate feeding two firms with fixed-price outputs: prices are shadow prices."""

from __future__ import annotations

from collections.abc import Sequence

from mktsim.errors import InvalidParameter
from mktsim.production import shared_intermediate_graph
from mktsim.scenario import Scenario
from mktsim.supply_chain import scenario_from_graph


def build(
    endowment: float = 4.0,
    upstream: Sequence[float] = (1.0, 0.5),
    users: Sequence[Sequence[float]] = ((2.0, 0.5), (3.0, 0.3)),
    prices: Sequence[float] = (1.0, 1.0),
    firms: int = 10,
    production_time: float = 0.0,
    flow: bool = False,
) -> Scenario:
    """Owners sell ``endowment`` units of ore; smelters make metal m = B ore^beta
    (``upstream`` = (B, beta)); maker k turns metal into final good ``final<k>``,
    y_k = A_k m_k^alpha_k (``users`` = ((A_0, alpha_0), ...)), which an outside buyer takes at
    the fixed price ``prices[k]``.

    Metal has two users, so the graph is not a tree: its competitive price is the planner's
    Lagrange multiplier (the marginal value of metal, equal in both uses), and the price of ore
    is its multiplier too.

    Args:
        endowment: units of ore, > 0.
        upstream: (B, beta) with B > 0 and 0 < beta < 1.
        users: (A_k, alpha_k) per maker, A_k > 0 and 0 < alpha_k < 1.
        prices: fixed price of each final good, > 0.
        firms: identical firms per firm node (together they act as one firm).
        production_time: simulation time each stage takes to produce.
        flow: the owners extract the endowment again after every settlement (a stationary
            economy for trading every round, e.g. the auctioneer's non_tatonnement mode).
    """
    if not endowment > 0:
        raise InvalidParameter(f"endowment(={endowment!r}) must be > 0")
    b, beta = (float(v) for v in upstream)
    pairs = tuple((float(a), float(alpha)) for a, alpha in users)
    for name, value in [("beta", beta), *((f"alpha_{k}", al) for k, (_, al) in enumerate(pairs))]:
        if not 0 < value < 1:
            raise InvalidParameter(f"{name}(={value!r}) must be in (0, 1): decreasing returns")
    graph = shared_intermediate_graph(
        endowment=endowment, upstream=(b, beta), users=pairs, prices=tuple(prices)
    )
    return scenario_from_graph(
        graph,
        "shared_intermediate",
        firms=firms,
        production_time=production_time,
        flow=bool(flow),
        until=5000.0,
        params={
            "endowment": endowment,
            "upstream": [b, beta],
            "users": [list(p) for p in pairs],
            "prices": [float(p) for p in prices],
            "firms": firms,
            "production_time": production_time,
            "flow": bool(flow),
        },
        description=__doc__ or "",
    )
