"""After a shock that changes the economy, the summary's price error and the welfare table are
measured against the equilibrium in force, computed here from the Cobb-Douglas closed form of the
shocked endowments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import cobb_douglas_prices

import mktsim
from mktsim import report
from mktsim.errors import InvalidParameter
from mktsim.shocks import EndowmentShock, PreferenceShock
from mktsim.welfare import welfare_table


def test_price_error_after_an_endowment_shock_is_against_the_new_equilibrium() -> None:
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=100)
    shock = EndowmentShock(time=100, good="good1", factor=0.5)
    run = mktsim.simulate(scenario, "walrasian", shocks=[shock])
    pop = scenario.populations[0]
    shares = np.asarray(pop.utility.shares)
    shocked = np.array(pop.endowment, dtype=float)
    shocked[:, scenario.goods.index("good1")] *= 0.5  # tatonnement trades nothing before it
    expected = dict(zip(scenario.goods.names, cobb_douglas_prices(shares, shocked), strict=True))
    s = run.summary
    for good, price in expected.items():
        assert s["equilibrium_prices_in_force"][good] == pytest.approx(price, rel=1e-8)
    error = max(abs(s["final_prices"][g] / p - 1) for g, p in expected.items())
    assert s["price_error"] == pytest.approx(error, abs=1e-8)
    assert s["price_error"] <= 1e-6 and s["price_error_vs_initial_equilibrium"] > 0.1
    # back within tolerance of the new equilibrium after the shock, and the time says so
    # the first time from the shock on after which every price stays within tolerance of the
    # closed form, read off the prices frame here
    after = run.prices[run.prices["time"] >= 100]
    worst = (
        after.assign(error=(after["price"] / after["good"].astype(str).map(expected) - 1).abs())
        .groupby("time")["error"]
        .max()
    )
    outside = worst.index[worst > s["price_tolerance"]]
    first_inside = worst.index[worst.index > outside.max()].min()
    assert s["time_to_tolerance"] == pytest.approx(first_inside)
    assert s["time_to_tolerance_vs_initial_equilibrium"] is None


def test_welfare_after_an_endowment_shock_is_against_the_new_equilibrium() -> None:
    """Half of good1 is destroyed at t = 20, before the auctioneer has settled anything: the
    shocked economy is the endowments with good1 halved, whose equilibrium, equilibrium
    allocation and money metric are written out here (Cobb-Douglas closed forms)."""
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=100)
    run = mktsim.simulate(
        scenario, "walrasian", shocks=[EndowmentShock(time=20, good="good1", factor=0.5)]
    )
    assert run.trades["time"].min() > 20  # nothing traded before the shock
    goods = scenario.goods.names
    pop = scenario.populations[0]
    a = np.asarray(pop.utility.shares)
    endowed = np.array(pop.endowment, dtype=float)
    shocked = endowed.copy()
    shocked[:, goods.index("good1")] *= 0.5
    h = run.holdings.assign(good=run.holdings["good"].astype(str))
    last = h[h["time"] == h["time"].max()]
    final = last.pivot(index="agent", columns="good", values="quantity")[goods].to_numpy()

    def u(x: np.ndarray) -> np.ndarray:
        return np.prod(x**a, axis=1)

    def money(x: np.ndarray, p: np.ndarray) -> float:
        # the cheapest bundle reaching utility 1 at p costs prod_j (p_j / a_j)^a_j
        return float((u(x) * np.prod((p / a) ** a, axis=1)).sum())

    def efficiency(start: np.ndarray, p: np.ndarray) -> tuple[float, float]:
        gains = money(final, p) - money(start, p)
        return gains, gains / (float(start.sum(axis=0) @ p) - money(start, p))

    p_new = cobb_douglas_prices(a, shocked)
    # the competitive allocation of the shocked economy: x_ij = a_ij (p . e_i) / p_j
    np.testing.assert_allclose(final, a * (shocked @ p_new)[:, None] / p_new, rtol=1e-6, atol=1e-7)
    gains, expected = efficiency(shocked, p_new)
    w = run.welfare().iloc[0]
    assert w["since"] == 20.0
    assert w["money_initial"] == pytest.approx(money(shocked, p_new), rel=1e-9)
    assert w["money_final"] == pytest.approx(money(final, p_new), rel=1e-9)
    assert w["money_equilibrium"] == pytest.approx(float(shocked.sum(axis=0) @ p_new), rel=1e-9)
    assert w["surplus"] == pytest.approx(gains, rel=1e-7)
    assert w["efficiency"] == pytest.approx(expected, rel=1e-7)
    assert w["efficiency"] == pytest.approx(1.0, abs=1e-6)  # traded at the new equilibrium
    assert run.summary["shocks"][0]["allocative_efficiency"] == pytest.approx(expected, rel=1e-7)
    # beside it, the whole run against the equilibrium of the endowments, as before the shock
    p_old = cobb_douglas_prices(a, endowed)
    gains_old, expected_old = efficiency(endowed, p_old)
    assert w["surplus_vs_initial_equilibrium"] == pytest.approx(gains_old, rel=1e-7)
    assert w["efficiency_vs_initial_equilibrium"] == pytest.approx(expected_old, rel=1e-7)
    assert expected_old < 0.5  # destroyed supply reads as lost gains against the stale reference
    table = report.convergence_table(run).iloc[0]
    assert table["allocative_efficiency"] == pytest.approx(expected, rel=1e-7)
    assert table["allocative_efficiency_vs_initial_equilibrium"] == pytest.approx(
        expected_old, rel=1e-7
    )
    shocks = report.shocks_table(run)
    assert shocks["allocative_efficiency"].iloc[0] == pytest.approx(expected, rel=1e-7)
    # the window before the shock: no trade, against the initial economy
    before = welfare_table(run, window=0).iloc[0]
    assert before["since"] == 0.0 and before["surplus"] == 0.0 and before["efficiency"] == 0.0
    assert before["money_equilibrium"] == pytest.approx(float(endowed.sum(axis=0) @ p_old))
    with pytest.raises(InvalidParameter, match="window"):
        welfare_table(run, window=2)


def test_a_run_without_economy_shocks_keeps_one_welfare_window() -> None:
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=20)
    run = mktsim.simulate(scenario, "walrasian")
    w = run.welfare()
    assert (w["since"] == 0.0).all() and w["efficiency_vs_initial_equilibrium"].isna().all()
    pd.testing.assert_frame_equal(w, welfare_table(run, window="whole_run"))
    assert np.isnan(
        report.convergence_table(run).iloc[0]["allocative_efficiency_vs_initial_equilibrium"]
    )


def test_each_window_between_economy_shocks_has_its_own_reference() -> None:
    """Half of good1 destroyed at t = 10, then new Cobb-Douglas shares at t = 150: each window
    is valued with its own holdings, utilities and equilibrium, all written out here."""
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=30)
    goods = scenario.goods.names
    pop = scenario.populations[0]
    old = np.asarray(pop.utility.shares)
    new = np.random.default_rng(0).dirichlet(np.ones(3), size=30)
    shocks = [
        EndowmentShock(time=10, good="good1", factor=0.5),
        PreferenceShock(time=150, population="consumers", utility=mktsim.CobbDouglas(new)),
    ]
    run = mktsim.simulate(scenario, "walrasian", until=600, shocks=shocks)
    h = run.holdings.assign(good=run.holdings["good"].astype(str))

    def at(time: float) -> np.ndarray:
        rows = h[h["time"] == time]
        return rows.pivot(index="agent", columns="good", values="quantity")[goods].to_numpy()

    def money(x: np.ndarray, a: np.ndarray, p: np.ndarray) -> float:
        return float((np.prod(x**a, axis=1) * np.prod((p / a) ** a, axis=1)).sum())

    # a preference shock moves no holdings: those recorded at t = 150 close window 1
    start = np.array(pop.endowment, dtype=float)
    start[:, goods.index("good1")] *= 0.5
    windows = [(start, at(150.0), old), (at(150.0), at(h["time"].max()), new)]
    for k, (x0, x1, a) in enumerate(windows, start=1):
        p = cobb_douglas_prices(a, x0)
        m0, m1, top = money(x0, a, p), money(x1, a, p), float(x0.sum(axis=0) @ p)
        w = welfare_table(run, window=k).iloc[0]
        assert w["since"] == (10.0, 150.0)[k - 1]
        assert w["money_initial"] == pytest.approx(m0, rel=1e-9)
        assert w["money_final"] == pytest.approx(m1, rel=1e-9)
        assert w["money_equilibrium"] == pytest.approx(top, rel=1e-9)
        assert w["efficiency"] == pytest.approx((m1 - m0) / (top - m0), rel=1e-7, abs=1e-9)
        row = run.summary["shocks"][k - 1]
        assert row["allocative_efficiency"] == pytest.approx(w["efficiency"], abs=1e-12)
    pd.testing.assert_frame_equal(run.welfare(), welfare_table(run, window=2))


def test_after_a_preference_shock_the_auctioneer_settles_the_new_allocation() -> None:
    """New Cobb-Douglas shares at t = 300, after the first settlement, move no holdings but
    make the settled allocation inefficient: the auctioneer converges again and settles the new
    competitive allocation, written out here from the closed form."""
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=20)
    goods = scenario.goods.names
    pop = scenario.populations[0]
    new = np.random.default_rng(1).dirichlet(np.ones(3), size=20)
    shock = PreferenceShock(time=300, population="consumers", utility=mktsim.CobbDouglas(new))
    run = mktsim.simulate(scenario, "walrasian", until=2000, shocks=[shock])
    h = run.holdings.assign(good=run.holdings["good"].astype(str))
    final = h[h["time"] == h["time"].max()]
    final = final.pivot(index="agent", columns="good", values="quantity")[goods].to_numpy()
    # before the shock the economy settled its own competitive allocation (from the endowments)
    old = np.asarray(pop.utility.shares)
    e = np.asarray(pop.endowment, dtype=float)
    p0 = cobb_douglas_prices(old, e)
    settled = old * (e @ p0)[:, None] / p0
    p1 = cobb_douglas_prices(new, settled)
    expected = new * (settled @ p1)[:, None] / p1
    assert run.trades["time"].min() < 300 <= run.trades["time"].max()
    np.testing.assert_allclose(final, expected, rtol=1e-5, atol=1e-6)


def test_non_tatonnement_recovers_from_two_preference_shocks_to_its_holdings_equilibrium() -> None:
    """Trading out of equilibrium moves the holdings, so after each preference shock the market
    reaches the equilibrium of the holdings it trades to, with the new shares: the final one is
    written out here from the Cobb-Douglas closed form, and both recoveries are finite."""
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=100)
    goods = scenario.goods.names
    rng = np.random.default_rng(0)
    shares = [rng.dirichlet(np.ones(3), size=100) for _ in range(2)]
    shocks = [
        PreferenceShock(time=t, population="consumers", utility=mktsim.CobbDouglas(a))
        for t, a in zip((100, 200), shares, strict=True)
    ]
    run = mktsim.simulate(scenario, "walrasian", until=400, shocks=shocks, mode="non_tatonnement")
    h = run.holdings.assign(good=run.holdings["good"].astype(str))
    final = h[h["time"] == h["time"].max()]
    final = final.pivot(index="agent", columns="good", values="quantity")[goods].to_numpy()
    p = dict(zip(goods, cobb_douglas_prices(shares[1], final), strict=True))
    s = run.summary
    error = max(abs(s["final_prices"][g] / p[g] - 1) for g in goods)
    assert s["price_error_vs_holdings_equilibrium"] == pytest.approx(error, abs=1e-9)
    assert error < 1e-6
    rows = s["shocks"]
    assert [r["kind"] for r in rows] == ["preference", "preference"]
    assert all(0 < r["recovery_time_vs_holdings_equilibrium"] < 100 for r in rows)
    for good in goods:
        assert rows[1]["holdings_equilibrium_prices"][good] == pytest.approx(p[good], rel=1e-8)
