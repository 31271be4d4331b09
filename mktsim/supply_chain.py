"""Supply-chain scenarios: a :class:`~mktsim.production.graph.SupplyGraph` as populations, with
its market-free reference prices as the scenario's reference equilibrium.

:func:`scenario_from_graph` turns a graph into a :class:`~mktsim.scenario.Scenario`:

- each raw resource is held by an owner who values only money (a Cobb-Douglas consumer with all
  its weight on the numeraire), so it is sold whatever its price (perfectly inelastic supply),
  or, with ``flow=True``, by a :class:`~mktsim.firms.Source` that extracts it again after every
  settlement;
- each firm node becomes a :class:`~mktsim.firms.Firms` population of ``firms`` identical firms
  that together act as the node's one firm (:func:`~mktsim.firms.replicate`), with working
  capital in money to pay for inputs before its output is sold;
- final goods with a fixed price are bought by one :class:`~mktsim.firms.FinalDemand` (perfectly
  elastic demand at that price).

:func:`graph_reference` and :func:`leontief_reference` build the reference
:class:`~mktsim.equilibrium.Equilibrium` (numeraire = 1) from :mod:`mktsim.production.reference`:
back-propagated derivatives on trees, the planner's shadow prices on any acyclic graph, and
``v (I - A)^-1`` with the LP duals for Leontief input-output economies. Its ``extra`` holds both
columns of the "price = derivative" table (:func:`mktsim.production.report.price_derivative_table`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
from numpy.typing import ArrayLike

from mktsim.equilibrium import Equilibrium
from mktsim.errors import InvalidParameter, ScenarioError
from mktsim.firms import FinalDemand, Firms, Source, link, replicate
from mktsim.goods import Goods
from mktsim.population import Consumers
from mktsim.production.graph import SupplyGraph
from mktsim.production.reference import (
    backprop_prices,
    leontief_lp_shadow_prices,
    leontief_prices,
    planner,
)
from mktsim.scenario import Scenario
from mktsim.utility import CobbDouglas

__all__ = [
    "graph_reference",
    "leontief_reference",
    "scenario_from_graph",
    "stable_step",
    "supply_chain_metrics",
]


#: Call-market options of a flow chain. Firms bid for their inputs a lot at a time, walking
#: down their marginal value products, and sell output to the best bid; an order trades only at
#: a clearing, so a chain needs about one clearing per firm action (firms act 8 times per unit
#: of time) to move a cycle's flow. The estimate's weight keeps the book's time constant.
CHAIN_CALL_MARKET = {"interval": 0.125, "estimate_weight": 0.02}


def graph_reference(graph: SupplyGraph, numeraire: str = "money") -> Equilibrium:
    """Reference prices of a supply graph whose final goods have fixed prices.

    ``prices`` are the back-propagated derivatives when the graph is a tree (exact closed-form
    arithmetic), the planner's shadow prices otherwise; ``extra`` has ``derivative`` (backprop
    prices, or None off trees), ``shadow`` (planner multipliers), ``roles`` (raw, intermediate,
    final), ``outputs`` (the planner's output per firm node) and ``kkt_residual``.
    """
    plan = planner(graph)
    derivative = dict(backprop_prices(graph).prices) if graph.is_tree() else None
    shadow = dict(plan.prices)
    chosen = derivative if derivative is not None else shadow
    prices = {numeraire: 1.0, **{g: float(chosen[g]) for g in graph.goods}}
    return Equilibrium(
        "unique",
        prices,
        None,
        None,
        "backprop" if derivative is not None else "planner",
        float(plan.kkt_residual),
        "back-propagated derivatives (a tree)"
        if derivative is not None
        else "the planner's shadow prices (not a tree)",
        extra={
            "derivative": derivative,
            "shadow": shadow,
            "roles": {g: graph.kind(g) for g in graph.goods},
            "outputs": dict(plan.firm_outputs),
            "inputs": {k: v.tolist() for k, v in plan.firm_inputs.items()},
            "kkt_residual": float(plan.kkt_residual),
        },
    )


def leontief_reference(
    a: ArrayLike,
    v: ArrayLike,
    final_demand: ArrayLike,
    goods: Sequence[str],
    numeraire: str = "money",
) -> Equilibrium:
    """Reference of a Leontief input-output economy: ``p = v (I - A)^-1``.

    ``extra`` has ``derivative`` (v (I - A)^-1: the derivative of total value added with
    respect to final demand), ``shadow`` (the LP duals for ``final_demand``), ``roles`` and
    ``gross_output`` ((I - A)^-1 d from the LP, per good).
    """
    p = leontief_prices(a, v)
    lp = leontief_lp_shadow_prices(a, v, final_demand)
    names = list(goods)
    derivative = {g: float(x) for g, x in zip(names, p, strict=True)}
    return Equilibrium(
        "unique",
        {numeraire: 1.0, **derivative},
        None,
        None,
        "leontief",
        0.0,
        "zero-profit prices v (I - A)^-1 of a productive Leontief economy",
        extra={
            "derivative": derivative,
            "shadow": {g: float(x) for g, x in zip(names, lp.prices, strict=True)},
            "roles": dict.fromkeys(names, "produced"),
            "gross_output": {g: float(x) for g, x in zip(names, lp.gross_output, strict=True)},
        },
    )


def stable_step(scenario: Scenario, prices: Mapping[str, float], scale: str = "supply") -> float:
    """A step size for the auctioneer's multiplicative rule ``p <- p exp(h z / supply)`` near
    ``prices``: ``h = 1 / rho(J)``, with J the Jacobian of supply-scaled aggregate excess demand
    with respect to log prices (numeraire held fixed; central differences). With
    ``scale="none"`` the excess demand is in raw units (the auctioneer's ``scale`` option).

    The linearised iteration ``I + h J`` then has spectral radius < 1 when J's eigenvalues are
    real and negative (as in these chains: supply rises and demand falls with a good's own
    price). Produced goods have no stock to scale by (they are scaled by 1, as the auctioneer
    does), so their excess demand grows with the chain's quantities; a fixed step that suits one
    scale diverges at another.
    """
    goods = scenario.goods
    g, num = len(goods), goods.numeraire_index
    if scale not in ("supply", "none"):
        raise InvalidParameter(f"scale(={scale!r}) must be 'supply' or 'none'")
    supply = scenario.endowments().sum(axis=0)
    supply = np.where((supply > 0) & (scale == "supply"), supply, 1.0)
    base = np.array([float(prices[n]) for n in goods.names])
    pops: list[Any] = list(scenario.populations)

    def z(p: np.ndarray) -> np.ndarray:
        total = np.zeros(g)
        for pop in pops:
            total += pop.aggregate_demand(p, pop.endowment) - pop.endowment.sum(axis=0)
        return total / supply

    others = [j for j in range(g) if j != num]
    jac = np.zeros((len(others), len(others)))
    h = 1e-6
    for k, j in enumerate(others):
        up, down = base.copy(), base.copy()
        up[j] *= np.exp(h)
        down[j] *= np.exp(-h)
        jac[:, k] = ((z(up) - z(down)) / (2 * h))[others]
    rho = float(np.max(np.abs(np.linalg.eigvals(jac))))
    if not (np.isfinite(rho) and rho > 0):
        raise InvalidParameter(f"excess demand Jacobian has spectral radius {rho!r} at {prices}")
    return 1.0 / rho


def _check_firms(firms: int) -> int:
    if isinstance(firms, bool) or not isinstance(firms, int | np.integer) or firms < 1:
        raise InvalidParameter(f"firms(={firms!r}) must be an integer >= 1")
    return int(firms)


def scenario_from_graph(
    graph: SupplyGraph,
    name: str,
    *,
    numeraire: str = "money",
    firms: int = 1,
    production_time: float = 0.0,
    flow: bool = False,
    working_capital: float | Mapping[str, float] | None = None,
    budget: float | None = None,
    mechanism_options: Mapping[str, Mapping[str, Any]] | None = None,
    until: float = 1000.0,
    params: Mapping[str, Any] | None = None,
    description: str = "",
) -> Scenario:
    """A scenario of the graph's owners, firm populations and fixed-price final demand.

    Args:
        graph: a supply graph whose final goods all have fixed prices.
        name: scenario name.
        numeraire: name of the money good added in front of the graph's goods.
        firms: identical firms per firm node (together they act as the node's firm).
        production_time: simulation time each firm population takes to produce.
        flow: raw resources flow (:class:`~mktsim.firms.Source`: the endowment again after
            every settlement) instead of being a stock sold once: a stationary economy whose
            every round has the same equilibrium, for mechanisms that trade every round.
        working_capital: money per firm population (a number, or firm node -> number); default
            twice what the population's inputs cost at the reference, plus 1.
        budget: money of the final demand; default twice the reference value of final goods,
            plus 1 (times ``until`` with ``flow``: one round's worth per unit of time).
        mechanism_options: as for :class:`~mktsim.scenario.Scenario`; by default the
            auctioneer takes multiplicative steps of :func:`stable_step` at the reference, and
            with ``flow`` the call market clears every 1/8 of a unit of time
            (:data:`CHAIN_CALL_MARKET`).
        until, params, description: as for :class:`~mktsim.scenario.Scenario`.

    Raises:
        ScenarioError: a final good bought by consumers (give the consumers yourself), or a good
            called like the numeraire.
    """
    n = _check_firms(firms)
    if numeraire in graph.goods:
        raise ScenarioError(f"the graph already has a good called {numeraire!r}")
    consumed = [f.good for f in graph.finals if f.price is None]
    if consumed:
        raise ScenarioError(
            f"final goods {consumed} are bought by consumers: scenario_from_graph builds only "
            "fixed-price final demand; add Firms and Consumers populations yourself"
        )
    goods = Goods.of([numeraire, *graph.goods], numeraire=numeraire)
    g = len(goods)
    ref = graph_reference(graph, numeraire)
    ref_prices = ref.prices or {}
    inputs = ref.extra["inputs"]
    outputs = ref.extra["outputs"]

    def capital(node: str) -> float:
        if working_capital is None:
            firm = graph.firm(node)
            cost = sum(ref_prices[x] * q for x, q in zip(firm.inputs, inputs[node], strict=True))
            return 2.0 * cost + 1.0
        if isinstance(working_capital, Mapping):
            return float(working_capital[node])
        return float(working_capital)

    pops: list[Any] = []
    if flow:
        for r in graph.resources:
            owner = "owners" if len(graph.resources) == 1 else f"owners_{r.good}"
            pops.append(Source(owner, goods, r.good, [r.endowment]))
    elif graph.resources:
        shares = np.zeros((len(graph.resources), g))
        shares[:, goods.numeraire_index] = 1.0
        endow = np.zeros((len(graph.resources), g))
        for i, r in enumerate(graph.resources):
            endow[i, goods.index(r.good)] = r.endowment
        pops.append(Consumers("owners", CobbDouglas(shares), endow))
    for node in graph.firms:
        money = np.zeros((n, g))
        money[:, goods.numeraire_index] = capital(node.name) / n
        pops.append(
            Firms(
                node.name,
                replicate(node.technology, n),
                node.inputs,
                node.output,
                goods,
                endowment=money,
                production_time=production_time,
            )
        )
    finals = {f.good: float(f.price) for f in graph.finals if f.price is not None}
    if finals:
        value = sum(finals[f.output] * outputs[f.name] for f in graph.firms if f.output in finals)
        pops.append(
            FinalDemand(
                "buyers",
                goods,
                prices=finals,
                budget=(2.0 * abs(value) + 1.0) * (until if flow else 1.0)
                if budget is None
                else budget,
            )
        )
    scenario = Scenario(
        name=name,
        goods=goods,
        populations=link(pops),
        mechanism_options=mechanism_options or {},
        until=until,
        params=params or {},
        description=description,
        reference=lambda _scenario: ref,
        metrics=supply_chain_metrics,
    )
    if mechanism_options is None:
        if flow:
            # Trading every round leaves produced goods with tiny stocks at posting time, which
            # would blow up the supply-scaled gradient: step in raw units, and more cautiously
            # (inventories add dynamics of their own).
            step = 0.5 * stable_step(scenario, ref_prices, scale="none")
            options = {
                "walrasian": {"method": "multiplicative", "scale": "none", "step": step},
                "call_market": dict(CHAIN_CALL_MARKET),
            }
        else:
            step = stable_step(scenario, ref_prices)
            options = {"walrasian": {"method": "multiplicative", "step": step}}
        scenario = attrs.evolve(scenario, mechanism_options=options)
    return scenario


def supply_chain_metrics(run: Any) -> dict[str, Any]:
    """Summary entries of a supply-chain run: the "price = derivative" table (as records),
    net production per good, and the largest change of a good's total that no production
    record explains (0 when every unit consumed or made is journalled)."""
    from mktsim.production.report import price_derivative_table, production_balance

    table = price_derivative_table(run)
    records = [
        {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}
        for r in table.to_dict("records")
    ]
    out: dict[str, Any] = {
        "price_derivative": records,
        "net_production": None,
        "unrecorded_change": None,
    }
    if len(run.holdings):  # (a summary-only run records no holdings)
        balance = production_balance(run)
        out["net_production"] = {str(k): float(v) for k, v in balance["produced"].items()}
        out["unrecorded_change"] = float(balance["unrecorded"].abs().max())
    return out
