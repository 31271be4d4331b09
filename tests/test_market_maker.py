"""The LMSR market maker as a mechanism: every trade, price and payout checked from the run's
frames against the textbook LMSR written out here (scipy's logsumexp / softmax)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mktsim.mechanisms.market_maker import LMSRMarket
from scipy import special

import mktsim
from mktsim.beliefs import BeliefTraders, prediction_market
from mktsim.errors import InvalidParameter, UnknownName
from mktsim.orders import Swap
from mktsim.testing import standalone


def share_order(agent: int, outcome: str, units: int) -> Swap:
    """Buy (units > 0) or sell exactly |units| base units of an outcome's shares."""
    if units > 0:
        return Swap(agent, outcome, "buy", units / 1e9, "out")
    return Swap(agent, outcome, "sell", -units / 1e9, "in")


UNTIL = 100.0


def naive_cost(q, b):
    """C(q) = b·ln Σ exp(q_i / b)."""
    return b * special.logsumexp(np.asarray(q, dtype=float) / b)


def scripted_market(scripts, k, b, money=1000.0, sets=5.0, truth=None):
    """One scripted trader per script; each holds ``money`` and ``sets`` complete sets."""
    pops = [
        BeliefTraders.of(
            f"t{i}",
            np.full((1, k), 1.0 / k),
            money,
            sets,
            behaviour="scripted",
            behaviour_options={"orders": orders},
        )
        for i, orders in enumerate(scripts)
    ]
    return prediction_market(pops, truth or [1.0 / k] * k, b=b, until=UNTIL)


def maker_history(run):
    """Per trade, from the ledger's journal: (good index among outcomes, shares the maker sold,
    money the trader paid), in settlement order, before resolution."""
    trades = run.trades
    maker = run.scenario.n_agents
    names = run.scenario.goods.names[1:]
    rows = trades[(trades["agent"] == maker) & (trades["time"] < UNTIL)].sort_values("trade_id")
    return [
        (names.index(str(g)), -float(qty), -float(cash))
        for g, qty, cash in zip(rows["good"], rows["quantity"], rows["cash"], strict=True)
    ]


@st.composite
def order_flows(draw):
    k = draw(st.integers(2, 4))
    b = draw(st.floats(0.5, 50.0))
    names = ["yes", "no"] if k == 2 else [f"outcome{i}" for i in range(1, k + 1)]
    shares = st.floats(-30.0, 30.0).filter(lambda s: abs(s) > 1e-3)
    order = st.tuples(st.floats(0.0, UNTIL - 1), st.just(0), st.sampled_from(names), shares)
    scripts = [draw(st.lists(order, max_size=15)) for _ in range(2)]
    return k, b, scripts


@settings(max_examples=25, deadline=None)
@given(order_flows(), st.integers(0, 3))
def test_every_trade_is_priced_by_the_cost_function_and_the_loss_is_bounded(flow, seed):
    k, b, scripts = flow
    run = mktsim.simulate(scripted_market(scripts, k, b), "lmsr", seed=seed)
    s = run.summary
    assert s["conservation_ok"] and (run.holdings["quantity"] >= 0).all()
    history = maker_history(run)
    assert len(history) == s["trades"]
    prices = run.prices
    q, revenue, bound = np.zeros(k), 0.0, b * math.log(k)
    unit = 1 / s["base_units"]  # one base unit of the run, in units of money
    for n, (i, sold, paid) in enumerate(history, start=1):
        after = q.copy()
        after[i] += sold
        cost = naive_cost(after, b) - naive_cost(q, b)
        # charged in whole base units of the run, rounded in the maker's favour
        assert -1e-12 * max(1.0, abs(cost)) <= paid - cost <= unit + 1e-12 * abs(cost)
        q, revenue = after, revenue + paid
        p = prices[prices["round"] == n].set_index("good")["price"]
        expected = special.softmax(q / b)
        got = np.array([p[name] for name in s["outcomes"]])
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-15)
        assert got.sum() == pytest.approx(1.0, abs=1e-12)
        # the maker's loss if any outcome resolved now
        assert q.max() - revenue <= bound + 1e-9
    assert s["resolved"]
    k_won = s["outcomes"].index(s["outcome"])
    assert s["maker_loss"] == pytest.approx(q[k_won] - revenue, abs=1e-8)
    assert s["maker_loss"] <= bound + 1e-9


@settings(max_examples=10, deadline=None)
@given(order_flows())
def test_resolution_pays_each_winning_share_one_unit_and_destroys_all_shares(flow):
    k, b, scripts = flow
    run = mktsim.simulate(scripted_market(scripts, k, b), "lmsr", seed=1)
    s = run.summary
    won = s["outcome"]
    h = run.holdings
    start, end = h[h["time"] == 0.0], h[h["time"] == UNTIL]
    trades = run.trades
    before = trades[trades["time"] < UNTIL]
    for agent in range(run.scenario.n_agents):
        mine = before[before["agent"] == agent]
        money0 = start[(start["agent"] == agent) & (start["good"] == "money")]["quantity"].item()
        sets0 = start[(start["agent"] == agent) & (start["good"] == won)]["quantity"].item()
        held = sets0 + mine[mine["good"] == won]["quantity"].sum()
        money_end = end[(end["agent"] == agent) & (end["good"] == "money")]["quantity"].item()
        assert money_end == pytest.approx(money0 - mine["cash"].sum() + held, abs=1e-8)
    assert (end[end["good"] != "money"]["quantity"] == 0).all()
    assert s["conservation_ok"]


def _passive_market(k=2, b=10.0, money=(5.0, 5.0), sets=1.0, **options):
    pops = [
        BeliefTraders.of(f"t{i}", np.full((1, k), 1.0 / k), m, sets, behaviour="passive")
        for i, m in enumerate(money)
    ]
    return standalone("lmsr", prediction_market(pops, [1.0 / k] * k, b=b, until=UNTIL), **options)


def test_large_q_over_b_neither_overflows_nor_loses_the_price_sum():
    market, ctx = _passive_market(k=3, b=1e-3, money=(1e7, 1e7))
    cols = list(market.quote().outcomes)
    steps = [(0, cols[0], 1000.0), (1, cols[1], 500.0), (0, cols[2], 2000.0), (0, cols[2], -300.0)]
    q = np.zeros(3)
    for agent, col, shares in steps:
        units = round(shares * 1e9)
        receipt = market.submit(share_order(agent, col, units)).value
        assert receipt.status == "filled", receipt
        i = cols.index(col)
        after = q.copy()
        after[i] += shares
        cost = naive_cost(after, 1e-3) - naive_cost(q, 1e-3)
        assert receipt.cash == pytest.approx(cost, rel=1e-9, abs=1e-9)
        q = after
        p = market.prices()
        assert np.isfinite(p).all() and p.sum() == pytest.approx(1.0, abs=1e-15)
        np.testing.assert_allclose(p, special.softmax(q / 1e-3), atol=1e-300)
    assert q.max() / 1e-3 >= 1e6
    # outcome 0 now trails by 700/b = 7e5: its price is 0 in float64 and so is what it sells for
    assert market.submit(share_order(0, cols[0], -(10**9))).value.reason == "proceeds round to zero"
    assert ctx.ledger.conserved()


def test_refusals_are_data():
    market, ctx = _passive_market(money=(1.0, 1.0))
    yes, no = market.quote().outcomes
    before = ctx.ledger.holdings.copy()
    cases = [
        (share_order(0, yes, 10**11), "insufficient money"),  # 100 shares cost ~ 95
        (share_order(0, yes, -(2 * 10**9)), "insufficient shares"),  # holds 1 share
    ]
    for order, reason in cases:
        receipt = market.submit(order).value
        assert not receipt.ok and receipt.reason == reason
        assert receipt.filled == 0 and receipt.cash == 0
    np.testing.assert_array_equal(ctx.ledger.holdings, before)
    budget = Swap(1, no, "buy", 1.0, "in")  # spend 1 unit of money
    assert market.submit(budget).value.status == "filled"
    assert market.submit(budget).value.reason == "insufficient money"
    market.resolve()
    assert market.submit(share_order(0, yes, 10**9)).value.reason == "market resolved"
    assert market.summary()["rejections"] == {
        "insufficient money": 2,
        "insufficient shares": 1,
        "market resolved": 1,
    }
    # the maker's own account and a good that is no outcome's share: refused as data too
    assert market.submit(share_order(market.maker, yes, 1)).value.reason == "unknown agent"
    assert market.submit(share_order(0, "money", 1)).value.reason == "not an outcome's share good"
    with pytest.raises(InvalidParameter, match="amount"):
        share_order(0, yes, 0)


def test_signals_are_right_with_the_stated_accuracy():
    market, _ = _passive_market(k=4, outcome="outcome3")
    sig = market.signals(0.6, np.random.default_rng(3), 40_000)
    right = np.mean(sig == 2)
    assert abs(right - 0.6) < 4 * math.sqrt(0.24 / sig.size)
    wrong = np.bincount(sig[sig != 2], minlength=4)[[0, 1, 3]]
    assert wrong.min() > 0.9 * wrong.max()  # uniform over the other outcomes


def test_options_and_populations_are_checked():
    with pytest.raises(InvalidParameter, match="b"):
        LMSRMarket(b=0)
    with pytest.raises(UnknownName, match="liquidity"):
        LMSRMarket(liquidity=3)
    with pytest.raises(InvalidParameter, match="no beliefs over outcomes"):
        mktsim.simulate(mktsim.build_scenario("cobb_douglas", n_agents=5), "lmsr", until=5)
    sc = mktsim.build_scenario("prediction_market", n_traders=3, n_noise=0)
    with pytest.raises(InvalidParameter, match="true_probabilities"):
        mktsim.simulate(sc, "lmsr", until=5, true_probabilities=[0.2, 0.3, 0.5])
    with pytest.raises(UnknownName, match="outcome"):
        mktsim.simulate(sc, "lmsr", until=5, outcome="maybe")


def test_price_ends_closer_to_the_truth_than_it_started_in_a_clear_majority_of_seeds():
    closer = []
    for seed in range(10):
        sc = mktsim.build_scenario(
            "prediction_market", n_traders=30, n_noise=5, until=20.0, seed=seed
        )
        run = mktsim.simulate(sc, "lmsr", seed=seed, record="summary")
        assert run.summary["resolved"] and run.summary["maker_loss"] <= 10 * math.log(2)
        closer.append(run.summary["closer_than_initial"])
    assert sum(closer) >= 8


def test_informed_traders_move_the_price_toward_the_outcome():
    def final_no(n_informed):
        sc = mktsim.build_scenario(
            "prediction_market",
            n_traders=20,
            n_noise=0,
            n_informed=n_informed,
            accuracy=1.0,
            until=20.0,
            seed=4,
        )
        run = mktsim.simulate(sc, "lmsr", seed=4, outcome="no", record="summary")
        return run.summary["final_prices"]["no"]

    assert final_no(10) > final_no(0) + 0.05
