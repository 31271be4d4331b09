"""Shocks, adversaries and counterfactuals under the auctioneer, against independent answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import cobb_douglas_prices

import mktsim
from mktsim.counterfactual import counterfactual
from mktsim.errors import InvalidParameter, UnknownName
from mktsim.shocks import (
    EndowmentShock,
    LatencySpike,
    Outage,
    PreferenceShock,
    PriceClamp,
    parse_shock,
)


def economy(n=120, g=3, seed=2):
    return mktsim.build_scenario("cobb_douglas", n_agents=n, n_goods=g, seed=seed)


def holdings_at(run, time):
    h = run.holdings[run.holdings["time"] == time]
    return h.pivot(index="agent", columns="good", values="quantity")


def test_endowment_shock_recomputes_the_equilibrium_and_recovers():
    scenario = economy()
    run = mktsim.simulate(
        scenario, shocks=[EndowmentShock(time=150, good="good1", factor=0.5)], until=1_000
    )
    s = run.summary
    assert s["conservation_ok"] and s["converged"]
    shock = s["shocks"][0]
    # the shocked economy's equilibrium, solved here from the holdings right after the shock
    after = holdings_at(run, 150.0)[scenario.goods.names].to_numpy()
    shares = scenario.populations[0].utility.shares
    expected = cobb_douglas_prices(shares, after)
    got = np.array([shock["equilibrium_prices"][g] for g in scenario.goods.names])
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert shock["recovery_time"] is not None and 0 < shock["recovery_time"] < 500
    final = np.array([s["final_prices"][g] for g in scenario.goods.names])
    np.testing.assert_allclose(final, expected, rtol=1e-6)
    # half the supply of good1 was destroyed, and the ledger counted it
    before = holdings_at(run, 0.0)["good1"].sum()
    assert run.holdings[run.holdings["time"] == s["sim_time"]].query("good == 'good1'")[
        "quantity"
    ].sum() == pytest.approx(after[:, 1].sum())
    assert after[:, 1].sum() == pytest.approx(before / 2, rel=1e-8)


def test_preference_shock_moves_prices_to_the_new_preferences():
    scenario = economy(n=60)
    rng = np.random.default_rng(0)
    new_shares = rng.dirichlet(np.ones(3), size=60)
    shock = PreferenceShock(
        time=120, population="consumers", utility=mktsim.CobbDouglas(new_shares)
    )
    run = mktsim.simulate(scenario, shocks=[shock], until=1_000)
    after = holdings_at(run, 120.0)[scenario.goods.names].to_numpy()
    expected = cobb_douglas_prices(new_shares, after)
    final = np.array([run.summary["final_prices"][g] for g in scenario.goods.names])
    np.testing.assert_allclose(final, expected, rtol=1e-6)


def test_disabled_shock_is_identical_to_the_baseline_frame_for_frame():
    scenario = economy(n=50)
    plain = mktsim.simulate(scenario, seed=4, mode="non_tatonnement", until=120)
    pair = counterfactual(scenario, shocks=(), seed=4, mode="non_tatonnement", until=120)
    for name in plain.tables:
        pd.testing.assert_frame_equal(plain.frame(name), pair.baseline.frame(name))
        pd.testing.assert_frame_equal(plain.frame(name), pair.treated.frame(name))
    assert pair.summary["peak_price_deviation"] == 0.0


def test_counterfactual_reports_deviation_recovery_and_welfare(tmp_path):
    scenario = economy(n=80)
    pair = counterfactual(
        scenario, shocks=[EndowmentShock(time=120, good="good2", factor=0.3)], until=800
    )
    s = pair.summary
    assert s["peak_price_deviation"] > 0.5  # scarcer good2 gets dearer
    assert s["recovery"][0]["recovery_time"] is not None
    assert s["welfare_change"]["consumers"]["money_metric_change"] < 0  # supply was destroyed
    dev = pair.deviation
    assert set(dev.columns) == {"time", "good", "baseline", "treated", "deviation"}
    early = dev[dev["time"] < 120]
    # identical until the shock, up to the open market's post-settlement jitter (< tol)
    assert (early["deviation"].abs() < 1e-7).all()
    out = pair.save(tmp_path / "cf")
    assert (out / "baseline" / "summary.json").exists() and (out / "deviation.parquet").exists()


def test_price_clamp_holds_the_price_and_leaves_rationed_excess_demand():
    scenario = economy(n=80)
    eq = mktsim.equilibrium(scenario).prices
    clamp = 0.7 * eq["good1"]
    run = mktsim.simulate(
        scenario,
        mode="non_tatonnement",
        shocks=[PriceClamp(time=0, good="good1", price=clamp)],
        until=300,
    )
    posted = run.prices[run.prices["good"] == "good1"]["price"]
    np.testing.assert_allclose(posted, clamp, rtol=1e-12)
    ed = run.excess_demand[run.excess_demand["good"] == "good1"]
    assert (ed["excess_demand"] > 0).all()  # too cheap: demand exceeds supply every round
    assert run.summary["conservation_ok"]


def test_outage_and_latency_are_simulation_time():
    scenario = economy(n=20)
    run = mktsim.simulate(scenario, shocks=[Outage(time=10, duration=20)], until=60, tol=1e-300)
    times = run.prices["time"].unique()
    assert not ((times > 10) & (times < 30)).any()
    assert 30.0 in times
    run = mktsim.simulate(
        scenario, shocks=[LatencySpike(time=10, duration=10, delay=4.0)], until=40, tol=1e-300
    )
    times = run.prices["time"].unique()  # rounds are recorded when the last report arrives
    # the round posted at 10 is answered at 14; while the spike lasts each round takes the
    # 4 of latency (more than the 1.0 interval), then rounds are 1.0 apart again
    np.testing.assert_allclose(times[(times >= 9) & (times <= 24)], [9, 14, 18, 22, 23, 24])


def test_manipulator_moves_prices_only_through_its_reports():
    base = economy(n=100, seed=5)
    pop = base.populations[0]
    half = np.arange(100) < 10
    manip = mktsim.Consumers(
        "manipulator",
        mktsim.CobbDouglas(pop.utility.shares[half]),
        pop.endowment[half] * np.array([1.0, 20.0, 1.0]),
        behaviour="manipulator",
        behaviour_options={"good": "good1", "factor": 0.5},
    )
    honest = mktsim.Consumers(
        "honest", mktsim.CobbDouglas(pop.utility.shares[~half]), pop.endowment[~half]
    )
    scenario = mktsim.Scenario("manipulated", base.goods, [manip, honest])
    pair = counterfactual(scenario, honest=["manipulator"], until=2_000)
    treated = pair.treated
    assert treated.summary["conservation_ok"] and treated.summary["converged"]
    # under-reporting demand for good1 (which it mostly sells) ... lowers good1's price
    assert treated.summary["final_prices"]["good1"] < pair.baseline.summary["final_prices"]["good1"]
    # every holding changed exactly by the agent's own journalled trades
    h = treated.holdings
    first = h[h["time"] == 0].set_index(["agent", "good"])["quantity"]
    last = h[h["time"] == h["time"].max()].set_index(["agent", "good"])["quantity"]
    traded = treated.trades.groupby(["agent", "good"], observed=True)["quantity"].sum()
    for (agent, good), q in traded.items():
        assert last[(agent, good)] - first[(agent, good)] == pytest.approx(q, abs=1e-8)
    assert "manipulator" in pair.summary["adversary_gain"]
    assert pair.summary["harm_to_others"] is not None


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        ("quake:time=1", UnknownName, "unknown shock 'quake'"),
        ("endowment:time=1,good=good1", InvalidParameter, "factor"),
        ("endowment:time=-1,good=good1,factor=2", InvalidParameter, r"time\(=-1.0\)"),
        ("clamp:time=1,good=good1,price=0", InvalidParameter, r"price\(=0.0\) must be > 0"),
        ("outage:time=1,duration=5,colour=1", UnknownName, "colour"),
        ("liquidity:time=1,fraction=2", InvalidParameter, "fraction"),
    ],
)
def test_bad_shock_specs(text, error, match):
    with pytest.raises(error, match=match):
        parse_shock(text)


def test_shock_checked_before_the_run():
    with pytest.raises(UnknownName, match="unknown good 'gold'"):
        mktsim.simulate(economy(n=5), shocks=[EndowmentShock(time=1, good="gold", factor=2)])
    with pytest.raises(UnknownName, match="unknown population 'nobody'"):
        mktsim.simulate(
            economy(n=5),
            shocks=[EndowmentShock(time=1, good="good1", factor=2, population="nobody")],
        )
