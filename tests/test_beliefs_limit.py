"""Prediction markets on limit orders, under the order book and the call market alike.

The belief traders are shared strategies (:mod:`mktsim.strategies.beliefs_limit`) and the event
(outcome, complete sets, resolution) is the run's (:mod:`mktsim.prediction`). References are
independent of the simulator: the truth and the wealth-weighted mean belief (the log-utility
competitive price with complete sets) computed here from the scenario; final holdings rebuilt
with pandas from the initial holdings and the journal frames; reservation prices recomputed
from holdings replayed out of the frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mktsim
from mktsim.beliefs import BeliefTraders, prediction_market
from mktsim.errors import InvalidParameter

MECHANISMS = ["call_market", "order_book"]
FRAMES = ("trades", "prices", "holdings", "production", "events", "orders")


def wealth_weighted_belief(scenario) -> np.ndarray:
    """Σ_i W_i π_i / Σ_i W_i over the belief traders without an explicit behaviour (W_i =
    money + complete sets: a complete set is worth 1 at prices summing to 1)."""
    pops = [p for p in scenario.populations if p.behaviour is None]
    pi = np.vstack([p.beliefs for p in pops])
    e = np.vstack([p.endowment for p in pops])
    w = e[:, 0] + e[:, 1]
    return (w[:, None] * pi).sum(axis=0) / w.sum()


def base(units, run) -> np.ndarray:
    """Units of a run's frames in the run's base units (whole numbers of them)."""
    return np.rint(np.asarray(units, dtype=float) * run.summary["base_units"]).astype(np.int64)


def holdings_at(run, which) -> pd.Series:
    """Recorded holdings (base units by agent and good) at the first or last snapshot."""
    h = run.holdings
    snap = h[h["time"] == which(h["time"])].drop_duplicates(["agent", "good"], keep="last")
    return pd.Series(base(snap["quantity"], run), index=[snap["agent"], snap["good"].astype(str)])


def rebuilt_final(run) -> pd.Series:
    """Final holdings, base units by (agent, good): initial holdings plus every trade (goods
    in, cash out), production (complete sets, resolution) and journal entry."""
    start = holdings_at(run, min)
    num = run.scenario.goods.numeraire
    t, p, j = run.trades, run.frame("production"), run.frame("journal")
    parts = [
        pd.Series(start.to_numpy(), index=start.index),
        pd.Series(base(t["quantity"], run), index=[t["agent"], t["good"].astype(str)]),
        pd.Series(-base(t["cash"], run), index=[t["agent"], pd.Series(num, index=t.index)]),
        pd.Series(base(p["quantity"], run), index=[p["agent"], p["good"].astype(str)]),
        pd.Series(base(j["quantity"], run), index=[j["agent"], j["good"].astype(str)]),
    ]
    every = pd.concat(parts)
    every = every[every.index.get_level_values(0) < run.scenario.n_agents]
    return every.groupby(level=[0, 1]).sum()


def thin_money_market() -> mktsim.Scenario:
    """Traders with little money and two complete sets each, so bids are paid by redeeming
    sets and bearish asks by issuing them; noise traders and scripted market orders besides."""
    beliefs = np.array(
        [[0.85, 0.15], [0.15, 0.85], [0.6, 0.4], [0.4, 0.6], [0.75, 0.25], [0.25, 0.75]]
    )
    traders = BeliefTraders.of("traders", beliefs, 0.3, 2.0)
    noise = BeliefTraders.of("noise", np.full((3, 2), 0.5), 1.0, 1.0, behaviour="noise")
    orders = [
        (3.5, 0, "yes", 0.4),
        (7.25, 1, "no", -0.3),
        (12.5, 0, "no", 0.2),
        (15.0, 1, "yes", -0.6),
    ]
    script = BeliefTraders.of(
        "script", np.full((2, 2), 0.5), 1.0, 0.5, behaviour="scripted",
        behaviour_options={"orders": orders},
    )  # fmt: skip
    return prediction_market([traders, noise, script], [0.6, 0.4], until=20.0)


# ---- prices find the truth (and the competitive price) -------------------------------------
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_final_price_is_closer_to_the_truth_than_one_half(mechanism):
    # 10 seeds here; benchmarks/prediction_limit.py runs 30 at the default size
    closer, gaps = 0, []
    for seed in range(10):
        scenario = mktsim.build_scenario(
            "prediction_market", n_traders=20, n_noise=4, until=20.0, seed=seed
        )
        s = mktsim.simulate(scenario, mechanism, seed=seed, record="summary").summary
        final = s["final_price"]["yes"]
        closer += abs(final - 0.7) < abs(0.5 - 0.7)
        gaps.append(abs(final - wealth_weighted_belief(scenario)[0]))
        assert s["resolved"] and s["conservation_ok"]
    assert closer >= 9
    # and it lands near the competitive price of the traders' beliefs and wealth
    assert np.mean(gaps) < 0.03


def test_call_market_trades_never_beyond_the_reservation_price():
    scenario = mktsim.build_scenario("prediction_market", n_traders=15, n_noise=3, until=20.0)
    run = mktsim.simulate(scenario, "call_market", seed=4)
    goods = scenario.goods.names
    rows = scenario.population_slices()["traders"]
    pi = scenario.populations[0].beliefs
    h = np.zeros((scenario.n_agents, len(goods)))
    start = holdings_at(run, min)
    for (a, g), q in start.items():
        h[a, goods.index(g)] = q / run.summary["base_units"]
    prod = run.frame("production")
    key = np.where(prod["technology"].str.startswith("resolution"), 2, 0)
    t = run.trades.assign(key=1, id=run.trades["trade_id"], technology="")
    p = prod.assign(key=key, id=prod["production_id"], price=np.nan, cash=0.0)
    cols = ["time", "key", "id", "technology", "agent", "good", "quantity", "price", "cash"]
    events = pd.concat([t[cols], p[cols]]).sort_values(["time", "key", "id"], kind="stable")
    checked = 0
    for row in events.itertuples():
        a, j = row.agent, goods.index(str(row.good))
        if row.key == 1 and rows.start <= a < rows.stop:
            w = h[a, 0] + h[a, 1:]  # state wealth; a log trader's r_s = π_s/w_s normalised
            r = pi[a - rows.start] / w / (pi[a - rows.start] / w).sum()
            assert (
                (row.price <= r[j - 1] + 1e-9)
                if row.quantity > 0
                else (row.price >= r[j - 1] - 1e-9)
            )
            checked += 1
        h[a, j] += row.quantity
        h[a, 0] -= row.cash
        assert h[a].min() > -1e-9
    assert checked > 100


# ---- money and shares ------------------------------------------------------------------------
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_money_and_shares_are_conserved_through_issue_redeem_and_resolution(mechanism):
    scenario = thin_money_market()
    run = mktsim.simulate(scenario, mechanism, seed=1)
    s = run.summary
    assert s["conservation_ok"] and s["resolved"]
    assert s["complete_sets_issued"] > 0 and s["complete_sets_redeemed"] > 0
    final = holdings_at(run, max)
    rebuilt = rebuilt_final(run).reindex(final.index, fill_value=0)
    pd.testing.assert_series_equal(rebuilt, final, check_names=False)
    # complete sets: each issue turns x money into x of every share, each redeem the reverse
    prod = run.frame("production")
    for tech, sign, total in (
        ("complete set: issue", 1, s["complete_sets_issued"]),
        ("complete set: redeem", -1, s["complete_sets_redeemed"]),
    ):
        rows = prod[prod["technology"] == tech]
        per = rows.pivot_table("quantity", "production_id", "good", aggfunc="sum", observed=True)
        assert (per["yes"] == per["no"]).all() and (per["money"] == -per["yes"]).all()
        assert sign * per["yes"].sum() == pytest.approx(total, abs=1e-9)
    # resolution: every share gone, each share of the outcome paid one unit of money
    names = scenario.goods.names
    start = scenario.endowments()
    end = np.zeros_like(start)
    for (a, g), q in final.items():
        end[a, names.index(g)] = q / run.summary["base_units"]
    win = names.index(s["outcome"])
    assert (end[:, 1:] == 0).all()
    assert end[:, 0].sum() == pytest.approx(start[:, 0].sum() + start[:, win].sum(), abs=1e-9)
    # no maker: what one population gained another lost
    assert sum(s["trader_profit"].values()) == pytest.approx(0.0, abs=1e-9)
    for pop, rows in scenario.population_slices().items():
        gained = end[rows, 0].sum() - start[rows, 0].sum() - start[rows, win].sum()
        assert s["trader_profit"][pop] == pytest.approx(gained, abs=1e-9)
    # the scripted market orders traded
    script = scenario.population_slices()["script"]
    assert run.trades["agent"].between(script.start, script.stop - 1).any()


# ---- determinism, names, one event per run --------------------------------------------------
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_same_seed_gives_identical_frames(mechanism):
    scenario = mktsim.build_scenario("prediction_market", n_traders=10, n_noise=3, until=12.0)
    a = mktsim.simulate(scenario, mechanism, seed=7, record_orders="all")
    b = mktsim.simulate(scenario, mechanism, seed=7, record_orders="all")
    for name in FRAMES:
        pd.testing.assert_frame_equal(a.frame(name), b.frame(name))
    assert len(a.trades) > 0 and a.summary["trader_profit"] == b.summary["trader_profit"]
    c = mktsim.simulate(scenario, mechanism, seed=8, record_orders="all")
    assert not a.trades.equals(c.trades)


def test_strategies_by_kind_and_by_the_names_the_book_always_took():
    scenario = mktsim.build_scenario("prediction_market", n_traders=6, n_noise=2, until=3.0)
    passive = BeliefTraders.of("idle", [[0.5, 0.5]], 1.0, 1.0, behaviour="passive")
    scenario = prediction_market([*scenario.populations, passive], [0.7, 0.3], until=3.0)
    expected = {"traders": "belief", "noise": "noise", "idle": "idle"}
    for mechanism in ["call_market", "order_book"]:  # the book last: its summary is read below
        run = mktsim.simulate(scenario, mechanism, record="summary")
        assert {pop: s.name for pop, s in run.strategies.items()} == expected
        assert run.summary["resolved"]
    assert run.summary["behaviours"] == expected  # the order book reports them too


def test_the_event_is_the_one_lmsr_resolves_for_the_seed_and_never_resolved_twice():
    scenario = mktsim.build_scenario("prediction_market", n_traders=6, n_noise=0, until=4.0)
    for seed in range(3):
        call = mktsim.simulate(scenario, "call_market", seed=seed)
        lmsr = mktsim.simulate(scenario, "lmsr", seed=seed)
        assert call.summary["outcome"] == lmsr.summary["outcome"]
        for run in (call, lmsr):
            assert (run.events["kind"] == "resolution").sum() == 1
        # the maker resolves its own market: no event service, no complete sets of the run's
        assert not lmsr.frame("production")["technology"].str.startswith("complete").any()


def test_informed_traders_profit_under_the_call_market():
    scenario = mktsim.build_scenario(
        "prediction_market", n_traders=12, n_noise=3, n_informed=4, until=20.0, seed=2
    )
    s = mktsim.simulate(scenario, "call_market", seed=2, record="summary").summary
    assert s["trader_profit"]["informed"] > 0  # accuracy 0.8 by default: they mostly know it


def test_a_limit_strategy_is_refused_by_a_maker_in_one_line():
    scenario = mktsim.build_scenario("prediction_market", n_traders=4, n_noise=0, until=2.0)
    pops = [
        BeliefTraders.of(
            "t", [[0.6, 0.4]], 5.0, 1.0, behaviour="mktsim.strategies.beliefs_limit:BeliefTrader"
        ),
        *scenario.populations,
    ]
    with pytest.raises(InvalidParameter) as err:
        mktsim.simulate(prediction_market(pops, [0.7, 0.3], until=2.0), "lmsr")
    message = str(err.value)
    assert "\n" not in message and "call_market" in message and "order_book" in message
