"""Supply chains under the auctioneer: firms trade their way to prices that are derivatives.

Every reference here is computed in the test from first principles: the tupperware chain's
back-propagated derivatives in closed form, the shared intermediate's equilibrium by a
one-dimensional root search on the metal market (scipy brentq) plus the firms' first-order
conditions at the planner's solution, and ``v (I - A)^-1`` and ``(I - A)^-1 d`` by a linear solve.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from mktsim import build_scenario, simulate
from mktsim.cli import main
from mktsim.production import planner, shared_intermediate_graph
from mktsim.production.report import price_derivative_table
from mktsim.testing import check_mechanism


def final(run) -> dict[str, float]:
    return run.summary["final_prices"]


def tupperware_prices(x: float) -> dict[str, float]:
    """p_c = 1; b = 1 - 1/(a+1), a = sqrt(x): p_b = 1/b, p_a = p_b/(a+1)^2, p_x = p_a/(2 sqrt x)."""
    a = math.sqrt(x)
    b = 1.0 - 1.0 / (a + 1.0)
    p_b = 1.0 / b
    p_a = p_b / (a + 1.0) ** 2
    return {"polyethylene": p_b, "ethylene": p_a, "natgas": p_a / (2.0 * math.sqrt(x))}


@pytest.fixture(scope="module")
def tupperware_run():
    return simulate(build_scenario("tupperware", natgas=4.0))


# --------------------------------------------------------------------------- tupperware


def test_tupperware_at_x_4_reaches_three_halves_one_sixth_one_twentyfourth(tupperware_run):
    run = tupperware_run
    assert run.summary["converged"] and run.summary["conservation_ok"]
    p = final(run)
    for good, want in {"polyethylene": 3 / 2, "ethylene": 1 / 6, "natgas": 1 / 24}.items():
        assert p[good] == pytest.approx(want, rel=1e-4), good
    assert p["tupperware"] == pytest.approx(1.0, rel=1e-8)


@pytest.mark.parametrize("x", [0.25, 9.0])
def test_tupperware_prices_are_the_derivatives_for_other_endowments(x):
    run = simulate(build_scenario("tupperware", natgas=x, firms=3))
    assert run.summary["converged"]
    for good, want in tupperware_prices(x).items():
        assert final(run)[good] == pytest.approx(want, rel=1e-4), (x, good)


def test_tupperware_production_follows_the_technologies(tupperware_run):
    prod = tupperware_run.frame("production")
    made = prod.groupby(["technology", "good"], observed=True)["quantity"].sum()
    offset = tupperware_run.scenario.params["offset"]
    # all 4 units of gas are cracked into 2 of ethylene, which make 2/3 of polyethylene
    assert made[("cracker", "natgas")] == pytest.approx(-4.0, abs=1e-7)
    assert made[("cracker", "ethylene")] == pytest.approx(2.0, abs=1e-7)
    assert made[("polymeriser", "ethylene")] == pytest.approx(-2.0, abs=1e-7)
    assert made[("polymeriser", "polyethylene")] == pytest.approx(2 / 3, abs=1e-7)
    assert made[("moulder", "tupperware")] == pytest.approx(math.log(2 / 3) + offset, abs=1e-7)
    # each batch obeys its firm's technology, firm by firm
    tech = {
        "cracker": math.sqrt,
        "polymeriser": lambda a: 1 - 1 / (a + 1),
        "moulder": lambda b: math.log(b) + offset,
    }
    n = tupperware_run.scenario.params["firms"]
    for (_, agent, name), rows in prod.groupby(["production_id", "agent", "technology"]):
        used = -rows[rows["quantity"] < 0]["quantity"].sum()
        out = rows[rows["quantity"] > 0]["quantity"].sum()
        # a firm of an n-firm industry has f(n x) / n
        assert out == pytest.approx(tech[name](n * used) / n, abs=2e-9), (agent, name)


def test_every_unit_consumed_is_in_a_production_record(tupperware_run):
    run = tupperware_run
    holdings = run.holdings
    start = holdings[holdings["time"] == 0].groupby("good", observed=False)["quantity"].sum()
    end = holdings[holdings["time"] == holdings["time"].max()]
    end = end.groupby("good", observed=False)["quantity"].sum()
    made = run.frame("production").groupby("good", observed=False)["quantity"].sum()
    change = (end - start).reindex(made.index)
    # nothing but production changed any total (to rounding in the float frames)
    np.testing.assert_allclose(change.to_numpy(), made.to_numpy(), atol=1e-12)
    # and every input a firm gave up went into production, not elsewhere
    trades = run.trades
    for name, good in [("cracker", "natgas"), ("polymeriser", "ethylene")]:
        rows = run.frame("production")
        used = -rows[(rows["technology"] == name) & (rows["good"] == good)]["quantity"].sum()
        agents = rows[rows["technology"] == name]["agent"].unique()
        bought = trades[trades["agent"].isin(agents) & (trades["good"] == good)]["quantity"].sum()
        assert used == pytest.approx(bought, abs=1e-12)
    assert run.summary["unrecorded_change"] < 1e-12


def test_price_derivative_table_is_in_the_summary(tupperware_run):
    table = price_derivative_table(tupperware_run)
    assert list(table["good"]) == ["natgas", "ethylene", "polyethylene", "tupperware"]
    want = tupperware_prices(4.0)
    for row in table.itertuples():
        if row.good in want:
            assert row.derivative == pytest.approx(want[row.good], rel=1e-12)
            assert row.shadow == pytest.approx(want[row.good], rel=1e-6)
            assert row.rel_error_derivative < 1e-6
    records = tupperware_run.summary["price_derivative"]
    assert [r["good"] for r in records] == list(table["good"])
    json.dumps(records)  # plain JSON, no NaN


def test_production_takes_its_time_stage_by_stage():
    run = simulate(build_scenario("tupperware", production_time=2.5, firms=2))
    prod = run.frame("production").groupby("technology")["time"].first()
    settled = run.events[run.events["kind"] == "converged"]["time"].iloc[0]
    assert prod["cracker"] == pytest.approx(settled + 2.5)
    assert prod["polymeriser"] == pytest.approx(settled + 5.0)
    assert prod["moulder"] == pytest.approx(settled + 7.5)
    assert run.summary["sim_time"] == pytest.approx(settled + 7.5)
    sold = run.trades[(run.trades["good"] == "tupperware") & (run.trades["quantity"] > 0)]
    assert (sold["time"] == settled + 7.5).all()


def test_trading_every_round_in_a_flow_economy_reaches_the_same_prices():
    scenario = build_scenario("tupperware", flow=True, firms=2)
    run = simulate(scenario, mode="non_tatonnement", until=400)
    assert run.summary["conservation_ok"]
    for good, want in tupperware_prices(4.0).items():
        assert final(run)[good] == pytest.approx(want, rel=1e-3), good
    prod = run.frame("production")
    # firms produced in (nearly) every round, and the wells topped up what was sold
    assert prod[prod["technology"] == "moulder"]["production_id"].nunique() > 300
    assert prod[prod["technology"] == "owners"]["quantity"].min() > 0


# --------------------------------------------------------------------------- shared intermediate


def shared_equilibrium(e, b, beta, users, prices):
    """Metal market clearing solved in p_m: sum_k m_k(p_m) = B e^beta with
    m_k = (alpha_k A_k P_k / p_m)^(1/(1 - alpha_k)); then p_ore = p_m B beta e^(beta - 1)."""
    supply = b * e**beta

    def excess(log_pm):
        pm = math.exp(log_pm)
        demand = sum(
            (al * a * p / pm) ** (1 / (1 - al)) for (a, al), p in zip(users, prices, strict=True)
        )
        return demand - supply

    pm = math.exp(optimize.brentq(excess, -20, 20, xtol=1e-15))
    return {"metal": pm, "ore": pm * b * beta * e ** (beta - 1)}


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"endowment": 9.0, "users": ((1.0, 0.6), (2.0, 0.2)), "prices": (1.5, 0.5)},
    ],
)
def test_shared_intermediate_prices_are_the_planners_shadow_prices(params):
    scenario = build_scenario("shared_intermediate", **params)
    run = simulate(scenario)
    assert run.summary["converged"] and run.summary["conservation_ok"]
    kw = {"endowment": 4.0, "users": ((2.0, 0.5), (3.0, 0.3)), "prices": (1.0, 1.0)} | params
    graph = shared_intermediate_graph(
        endowment=kw["endowment"], users=kw["users"], prices=kw["prices"]
    )
    plan = planner(graph)
    by_hand = shared_equilibrium(kw["endowment"], 1.0, 0.5, kw["users"], kw["prices"])
    for good in ("ore", "metal"):
        assert final(run)[good] == pytest.approx(plan.prices[good], rel=1e-4), good
        assert plan.prices[good] == pytest.approx(by_hand[good], rel=1e-6), good
    # the planner's allocation meets each firm's first-order condition at those prices
    lam = plan.prices
    for k, ((a, alpha), p) in enumerate(zip(kw["users"], kw["prices"], strict=True)):
        m = plan.firm_inputs[f"maker{k}"][0]
        assert p * a * alpha * m ** (alpha - 1) == pytest.approx(lam["metal"], rel=1e-5)
    ore = plan.firm_inputs["smelter"][0]
    assert lam["metal"] * 0.5 * ore ** (0.5 - 1) == pytest.approx(lam["ore"], rel=1e-5)
    table = price_derivative_table(run)
    assert table["derivative"].isna().all()  # not a tree: no backprop column
    assert (table["rel_error_shadow"] < 1e-4).all()


# --------------------------------------------------------------------------- Leontief


def test_leontief_io_prices_are_v_times_the_leontief_inverse():
    a = np.array([[0.0, 0.3, 0.2], [0.0, 0.0, 0.4], [0.0, 0.0, 0.0]])
    v = np.array([1.0, 0.5, 0.8])
    d = np.array([2.0, 1.0, 3.0])
    run = simulate(build_scenario("leontief_io"))
    assert run.summary["converged"] and run.summary["conservation_ok"]
    p = np.linalg.solve((np.eye(3) - a).T, v)  # p (I - A) = v
    for good, want in zip(("energy", "steel", "machinery"), p, strict=True):
        assert final(run)[good] == pytest.approx(want, rel=1e-6, abs=0), good
    # industries produced to order: gross outputs (I - A)^-1 d, all delivered to households
    prod = run.frame("production")
    made = prod[prod["quantity"] > 0].groupby("good", observed=True)["quantity"].sum()
    gross = np.linalg.solve(np.eye(3) - a, d)
    np.testing.assert_allclose(made[["energy", "steel", "machinery"]], gross, atol=1e-7)
    # value added used up = value of final demand (national accounts)
    paid = -prod[prod["good"] == "money"]["quantity"].sum()
    assert paid == pytest.approx(p @ d, abs=1e-7)
    table = price_derivative_table(run)
    assert (table["rel_error_shadow"] < 1e-6).all()


# --------------------------------------------------------------------------- contract


@pytest.mark.parametrize("name", ["tupperware", "shared_intermediate", "leontief_io"])
def test_supply_chains_pass_the_conformance_check(name):
    run = check_mechanism("walrasian", scenario=build_scenario(name, firms=2), until=1000)
    assert run.summary["converged"]


def test_cli_runs_tupperware(tmp_path):
    out = tmp_path / "tw"
    code = main(["run", "tupperware", "--set", "natgas=4", "--out", str(out), "--no-report"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["good"]: r for r in summary["price_derivative"]}
    assert rows["polyethylene"]["simulated"] == pytest.approx(1.5, rel=1e-4)
    production = pd.read_parquet(out / "production.parquet")
    assert list(production.columns) == [
        "production_id",
        "time",
        "agent",
        "good",
        "quantity",
        "technology",
    ]
