"""Ore feeds metal and, with metal, gadgets; metal also makes widgets: a firm with two inputs."""

from __future__ import annotations

from mktsim.errors import InvalidParameter
from mktsim.production import CobbDouglas, FinalGood, FirmNode, RawResource, SupplyGraph
from mktsim.scenario import Scenario
from mktsim.supply_chain import scenario_from_graph


def graph(
    endowment: float = 4.0,
    smelter: tuple[float, float] = (1.0, 0.5),
    assembler: tuple[float, float, float] = (2.0, 0.3, 0.3),
    maker: tuple[float, float] = (1.5, 0.5),
    prices: tuple[float, float] = (1.0, 1.0),
) -> SupplyGraph:
    """The supply graph: ``metal = B ore^beta`` (``smelter`` = (B, beta)); ``gadget = A1
    metal^a ore^b`` (``assembler`` = (A1, a, b), a + b < 1); ``widget = A2 metal^alpha``
    (``maker`` = (A2, alpha)); gadgets and widgets bought at the fixed ``prices``."""
    b, beta = (float(v) for v in smelter)
    a1, a, bb = (float(v) for v in assembler)
    a2, alpha = (float(v) for v in maker)
    for name, value in (("beta", beta), ("alpha", alpha), ("a + b", a + bb)):
        if not 0 < value < 1:
            raise InvalidParameter(f"{name}(={value!r}) must be in (0, 1): decreasing returns")
    if not (a > 0 and bb > 0):
        raise InvalidParameter(f"assembler exponents (={a!r}, {bb!r}) must both be > 0")
    return SupplyGraph(
        goods=("ore", "metal", "gadget", "widget"),
        resources=[RawResource("ore", endowment)],
        firms=[
            FirmNode("smelter", CobbDouglas([[beta]], scale=b), ["ore"], "metal"),
            FirmNode("assembler", CobbDouglas([[a, bb]], scale=a1), ["metal", "ore"], "gadget"),
            FirmNode("maker", CobbDouglas([[alpha]], scale=a2), ["metal"], "widget"),
        ],
        finals=[FinalGood("gadget", price=prices[0]), FinalGood("widget", price=prices[1])],
    )


def build(
    endowment: float = 4.0,
    smelter: tuple[float, float] = (1.0, 0.5),
    assembler: tuple[float, float, float] = (2.0, 0.3, 0.3),
    maker: tuple[float, float] = (1.5, 0.5),
    prices: tuple[float, float] = (1.0, 1.0),
    firms: int = 10,
    production_time: float = 0.0,
    flow: bool = False,
) -> Scenario:
    """Owners sell ``endowment`` units of ore R. Smelters make metal M = B R^beta; assemblers
    make gadgets from metal *and* ore, Y1 = A1 M^a R^b; makers make widgets from metal,
    Y2 = A2 M^alpha; an outside buyer takes gadgets and widgets at fixed ``prices``.

    Ore and metal each have two users, so the graph is not a tree: the competitive prices are
    the planner's Lagrange multipliers. The assemblers need both inputs (a Cobb-Douglas firm
    holding no ore has no marginal product of metal), so they value each input on a planned
    input mix, not at their holdings.

    Args:
        endowment: units of ore, > 0.
        smelter: (B, beta), B > 0, 0 < beta < 1.
        assembler: (A1, a, b), A1 > 0, a, b > 0, a + b < 1.
        maker: (A2, alpha), A2 > 0, 0 < alpha < 1.
        prices: fixed prices of gadgets and widgets, > 0.
        firms: identical firms per firm node (together they act as one firm).
        production_time: simulation time each stage takes to produce.
        flow: the owners extract the endowment again every cycle (a stationary economy for
            markets that trade continuously).
    """
    if not endowment > 0:
        raise InvalidParameter(f"endowment(={endowment!r}) must be > 0")
    g = graph(endowment, tuple(smelter), tuple(assembler), tuple(maker), tuple(prices))  # type: ignore[arg-type]
    return scenario_from_graph(
        g,
        "two_inputs",
        firms=firms,
        production_time=production_time,
        flow=bool(flow),
        until=5000.0,
        params={
            "endowment": endowment,
            "smelter": [float(v) for v in smelter],
            "assembler": [float(v) for v in assembler],
            "maker": [float(v) for v in maker],
            "prices": [float(v) for v in prices],
            "firms": firms,
            "production_time": production_time,
            "flow": bool(flow),
        },
        description=__doc__ or "",
    )
