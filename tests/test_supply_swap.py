"""Supply chains on constant-product pools driven by the shared strategies ``firm_swap`` and
``source_swap`` (mktsim.strategies.supply_swap).

References are computed here, independently of the simulation: the tupperware chain's
derivatives in closed form, the planner's shadow prices (scipy) for a graph that is not a tree,
and Cobb-Douglas input demand solved by hand. Holdings are rebuilt from the frames with pandas.
"""

from __future__ import annotations

import math

import attrs
import numpy as np
import pandas as pd
import pytest

import mktsim
from mktsim.errors import InvalidParameter
from mktsim.orders import Swap
from mktsim.production import planner
from mktsim.production.graph import FinalGood, FirmNode, RawResource, SupplyGraph
from mktsim.production.planning import planned_inputs, valuation_point
from mktsim.production.technology import CobbDouglas
from mktsim.strategies import default_for
from mktsim.supply_chain import scenario_from_graph


def time_average(prices: pd.DataFrame, good: str, start: float, end: float) -> float:
    """Time-weighted average of a pool's spot price (a step function of time) on [start, end]."""
    p = prices[prices.good == good].sort_values("time", kind="stable")
    t, v = p.time.to_numpy(), p.price.to_numpy()
    inside = (t > start) & (t < end)
    edges = np.concatenate([[start], t[inside], [end]])
    values = np.concatenate([[v[np.searchsorted(t, start, side="right") - 1]], v[inside]])
    return float(np.sum(values * np.diff(edges)) / (end - start))


def two_input_graph() -> SupplyGraph:
    """R -> M (refiner, M = R^0.5); firm1 makes Y1 = 2 M^0.3 R^0.3 from M and R; firm2 makes
    Y2 = 3 M^0.4 from M; Y1 and Y2 sell at 1. R is read twice and M too: not a tree."""
    return SupplyGraph(
        goods=("R", "M", "Y1", "Y2"),
        resources=[RawResource("R", 4.0)],
        firms=[
            FirmNode("refiner", CobbDouglas([[0.5]]), ["R"], "M"),
            FirmNode("firm1", CobbDouglas([[0.3, 0.3]], scale=2.0), ["M", "R"], "Y1"),
            FirmNode("firm2", CobbDouglas([[0.4]], scale=3.0), ["M"], "Y2"),
        ],
        finals=[FinalGood("Y1", price=1.0), FinalGood("Y2", price=1.0)],
    )


# ---- valuation on the input mix ----------------------------------------------------------------


def test_planned_inputs_are_cobb_douglas_input_demand_by_hand() -> None:
    # y = A M^a R^b: the first-order conditions p_j x_j = a_j p y give
    # y = (A (a p / p_M)^a (b p / p_R)^b)^(1 / (1 - a - b))
    a, b, scale, p, p_m, p_r = 0.3, 0.3, 2.0, 1.5, 1.2, 0.4
    y = (scale * (a * p / p_m) ** a * (b * p / p_r) ** b) ** (1 / (1 - a - b))
    plan = planned_inputs(CobbDouglas([[a, b]], scale=scale), p, [p_m, p_r])
    assert plan is not None
    assert plan[0] == pytest.approx([a * p * y / p_m, b * p * y / p_r], rel=1e-12)
    # no plan without positive prices
    assert planned_inputs(CobbDouglas([[a, b]], scale=scale), p, [0.0, p_r]) is None
    assert planned_inputs(CobbDouglas([[a, b]], scale=scale), math.nan, [p_m, p_r]) is None


def test_a_firm_holding_nothing_values_each_input_at_its_price_on_the_plan() -> None:
    tech = CobbDouglas([[0.3, 0.3]], scale=2.0)
    p, prices = 1.0, np.array([1.1, 0.36])
    plan = planned_inputs(tech, p, prices)
    held, batch = np.zeros((1, 2)), np.zeros((1, 2))
    for k in (0, 1):
        # at its holding of 0 of the other input the marginal product is 0: it would never buy
        assert tech.marginal_products(valuation_point(held, batch, k, extra=1.0))[0, k] == 0.0
        # on the plan, p f_k = p_k (the first-order condition, by hand: a_k y / x_k)
        z = valuation_point(held, batch, k, extra=float(plan[0, k]), plan=plan)
        y = 2.0 * z[0, 0] ** 0.3 * z[0, 1] ** 0.3
        assert p * 0.3 * y / z[0, k] == pytest.approx(prices[k], rel=1e-12)
        assert p * tech.marginal_products(z)[0, k] == pytest.approx(prices[k], rel=1e-12)
    # once it has an expected batch of an input, the batch (or more held) is used, not the plan
    batch = np.array([[0.5, 2.0]])
    z = valuation_point(np.array([[0.1, 3.0]]), batch, 0, extra=0.2, plan=plan)
    assert z.tolist() == [[0.5, 3.0]]
    z = valuation_point(np.array([[0.1, 0.0]]), np.array([[0.5, 0.0]]), 0, plan=plan)
    assert z[0, 1] == plan[0, 1]


def test_chain_kinds_default_to_the_swap_strategies_under_pools() -> None:
    assert default_for("firms", {Swap}) == "firm_swap"
    assert default_for("source", {Swap}) == "source_swap"


# ---- the two-input graph ----------------------------------------------------------------------

UNTIL = 75.0


@pytest.fixture(scope="module")
def shadow() -> dict[str, float]:
    return dict(planner(two_input_graph()).prices)


@pytest.mark.parametrize("seed", range(5))
def test_two_input_graph_prices_near_the_planners_shadow_prices(
    seed: int, shadow: dict[str, float]
) -> None:
    s = scenario_from_graph(two_input_graph(), "two_input", flow=True, firms=5)
    run = mktsim.simulate(s, "cpmm", seed=seed, until=UNTIL, quiet="never")
    assert run.summary["behaviours"]["firm1"] == "firm"
    for good in ("R", "M"):
        avg = time_average(run.prices, good, 2 * UNTIL / 3, UNTIL)
        assert abs(avg / shadow[good] - 1.0) < 0.05, (good, avg / shadow[good])
    # the two-input firm bought both its inputs (and so produced)
    rows = set(run.holdings[run.holdings.population == "firm1"].agent)
    bought = run.trades[run.trades.agent.isin(rows) & (run.trades.quantity > 0)]
    totals = bought.groupby("good", observed=True).quantity.sum()
    assert totals.get("M", 0.0) > 1.0 and totals.get("R", 0.0) > 1.0, totals.to_dict()
    assert (run.frame("production").technology == "firm1").any()


# ---- tupperware -------------------------------------------------------------------------------


def test_tupperware_flow_prices_within_five_percent_of_the_derivatives() -> None:
    # c(x) = ln(b(a(x))) + offset with a = sqrt(x), b = 1 - 1/(a + 1): derivatives by hand
    x = 4.0
    a = math.sqrt(x)
    b = 1.0 - 1.0 / (a + 1.0)
    p_b = 1.0 / b
    p_a = p_b / (a + 1.0) ** 2
    p_x = p_a / (2.0 * math.sqrt(x))
    until = 90.0
    s = mktsim.build_scenario("tupperware", natgas=x, flow=True, firms=5)
    run = mktsim.simulate(s, "cpmm", seed=0, until=until, quiet="never", record="summary")
    assert run.summary["behaviours"] == {
        "owners": "source",
        "cracker": "firm",
        "polymeriser": "firm",
        "moulder": "firm",
        "buyers": "final_demand",
    }
    for good, ref in (("polyethylene", p_b), ("ethylene", p_a), ("natgas", p_x)):
        avg = time_average(run.prices, good, 2 * until / 3, until)
        assert abs(avg / ref - 1.0) < 0.05, (good, avg / ref)


# ---- conservation, determinism, refusals -------------------------------------------------------


def _small_run(seed: int) -> mktsim.Run:
    s = scenario_from_graph(two_input_graph(), "two_input", flow=True, firms=2)
    return mktsim.simulate(s, "cpmm", seed=seed, until=15.0, quiet="never")


def test_final_holdings_rebuild_from_the_journal() -> None:
    run = _small_run(3)
    assert run.summary["conservation_ok"]
    base = run.summary["base_units"]  # the run's ledger integers per unit (the pools table's)

    def _base_units(values: pd.Series) -> np.ndarray:
        return np.rint(values.to_numpy(dtype=float) * base).astype(np.int64)

    goods = run.scenario.goods
    held = run.holdings
    first = held[held.time == held.time.min()]
    last = held[held.time == held.time.max()]
    trades, made, journal = run.trades, run.frame("production"), run.frame("journal")
    parts = [
        pd.DataFrame(
            {"agent": first.agent, "good": first.good.astype(str), "q": _base_units(first.quantity)}
        ),
        pd.DataFrame(
            {
                "agent": trades.agent,
                "good": trades.good.astype(str),
                "q": _base_units(trades.quantity),
            }
        ),
        pd.DataFrame(
            {"agent": trades.agent, "good": goods.numeraire, "q": -_base_units(trades.cash)}
        ),
        pd.DataFrame(
            {"agent": made.agent, "good": made.good.astype(str), "q": _base_units(made.quantity)}
        ),
        pd.DataFrame(
            {
                "agent": journal.agent,
                "good": journal.good.astype(str),
                "q": _base_units(journal.quantity),
            }
        ),
    ]
    every = pd.concat(parts, ignore_index=True)
    every = every[every.agent < run.scenario.n_agents]  # the pools' own accounts follow
    rebuilt = every.groupby(["agent", "good"]).q.sum()
    recorded = (
        pd.DataFrame(
            {"agent": last.agent, "good": last.good.astype(str), "q": _base_units(last.quantity)}
        )
        .groupby(["agent", "good"])
        .q.sum()
    )
    assert rebuilt.reindex(recorded.index, fill_value=0).equals(recorded)
    # every firm population produced, and the two-input firm used both inputs in its runs
    assert {"refiner", "firm1", "firm2", "owners"} <= set(made.technology)
    used = made[(made.technology == "firm1") & (made.quantity < 0)]
    assert set(used.good.astype(str)) == {"M", "R"}
    # the pools hold what they opened with plus what traders paid in, less what they took out
    pools = run.frame("pools")
    for good, rows in pools.groupby("good", observed=True):
        opening, closing = rows.iloc[0], rows.iloc[-1]
        t = trades[(trades.good == good) & (trades.agent < run.scenario.n_agents)]
        assert closing.x - opening.x == -_base_units(t.quantity).sum()
        assert closing.y - opening.y == _base_units(t.cash).sum()


def test_same_seed_same_run() -> None:
    one, two = _small_run(4), _small_run(4)
    for table in ("prices", "trades", "pools", "production"):
        pd.testing.assert_frame_equal(one.frame(table), two.frame(table))
    assert not one.frame("trades").equals(_small_run(5).frame("trades"))


def test_constant_returns_and_markets_without_pools_are_refused() -> None:
    s = mktsim.build_scenario("leontief_io")
    with pytest.raises(InvalidParameter, match="constant returns") as info:
        mktsim.simulate(s, "cpmm", seed=0, until=1)
    assert "\n" not in str(info.value)
    # firm_swap emits swaps: the order book takes none, and says which markets would
    s = scenario_from_graph(two_input_graph(), "two_input", flow=True, firms=2)
    pops = [
        attrs.evolve(p, behaviour="firm_swap") if p.kind == "firms" else p for p in s.populations
    ]
    with pytest.raises(InvalidParameter, match="cpmm") as info:
        mktsim.simulate(attrs.evolve(s, populations=pops), "order_book", seed=0, until=1)
    assert "\n" not in str(info.value)


def test_options_are_checked_with_their_names() -> None:
    s = scenario_from_graph(two_input_graph(), "two_input", flow=True, firms=2)
    for option, value in (("memory", 1.5), ("pace", 0.0), ("smooth", -1.0), ("cycle", 0.0)):
        pops = [
            attrs.evolve(p, behaviour_options={option: value}) if p.name == "firm1" else p
            for p in s.populations
        ]
        with pytest.raises(InvalidParameter, match=option):
            mktsim.simulate(attrs.evolve(s, populations=pops), "cpmm", seed=0, until=1)
