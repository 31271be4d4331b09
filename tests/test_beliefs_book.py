"""Prediction markets under the order book: belief traders quoting shares on the books.

References are independent of the simulator: the log-utility competitive price with complete
sets is the wealth-weighted mean belief (computed here from the beliefs and endowments), the
desired trade of a log (CARA) trader in a two-outcome market has a closed form, reservation
prices are recomputed naively from holdings replayed out of the trades and production frames.
"""

from __future__ import annotations

import math

import attrs
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mktsim
from mktsim.beliefs import BeliefTraders, desired_trade, prediction_market
from mktsim.errors import InvalidParameter, MktsimError
from mktsim.population import Consumers
from mktsim.utility import CobbDouglas


# ---- references ---------------------------------------------------------------------------
def wealth_weighted_belief(scenario) -> np.ndarray:
    """Σ_i W_i π_i / Σ_i W_i over the belief traders without an explicit behaviour, W_i =
    money + complete sets (a complete set is worth 1 at prices summing to 1)."""
    pops = [p for p in scenario.populations if p.behaviour is None]
    pi = np.vstack([p.beliefs for p in pops])
    e = np.vstack([p.endowment for p in pops])
    assert np.allclose(e[:, 1:], e[:, 1:2])  # complete sets only
    w = e[:, 0] + e[:, 1]
    return (w[:, None] * pi).sum(axis=0) / w.sum()


def log_reservation(pi: np.ndarray, w: np.ndarray) -> np.ndarray:
    """π_s / w_s normalised: a log trader's reservation prices, written out."""
    x = [p / v for p, v in zip(pi, w, strict=True)]
    total = sum(x)
    return np.array([v / total for v in x])


def replay(run):
    """Yield ``(kind, rows, holdings_before)`` for every trade and production batch in the order
    they happened, holdings in units ``float64[agents, goods]`` rebuilt from the frames."""
    goods = run.scenario.goods.names
    start = run.holdings[run.holdings["time"] == run.holdings["time"].min()]
    h = np.zeros((run.scenario.n_agents, len(goods)))
    for a, g, q in zip(start["agent"], start["good"].astype(str), start["quantity"], strict=True):
        h[a, goods.index(g)] = q
    trades = run.trades.assign(kind="trade", key=1, id=run.trades["trade_id"])
    prod = run.frame("production")
    prod = prod.assign(
        kind=prod["technology"],
        key=np.where(prod["technology"].str.startswith("resolution"), 2, 0),
        id=prod["production_id"],
        price=np.nan,
        cash=0.0,
    )
    cols = ["time", "key", "id", "kind", "agent", "good", "quantity", "price", "cash"]
    events = pd.concat([trades[cols], prod[cols]]).sort_values(["time", "key", "id"], kind="stable")
    for (_, _, _), rows in events.groupby(["time", "key", "id"], sort=False):
        before = h.copy()
        yield rows["kind"].iloc[0], rows, before
        for a, g, q, cash in zip(
            rows["agent"], rows["good"].astype(str), rows["quantity"], rows["cash"], strict=True
        ):
            h[a, goods.index(g)] += q
            h[a, 0] -= cash
    yield "end", None, h


@pytest.fixture(scope="module")
def yes_no():
    scenario = mktsim.build_scenario("prediction_market", seed=3)
    return mktsim.simulate(scenario, "order_book", seed=3)


@pytest.fixture(scope="module")
def three_outcomes():
    scenario = mktsim.build_scenario(
        "prediction_market", true_probability=[0.5, 0.3, 0.2], n_noise=0, seed=2
    )
    return mktsim.simulate(scenario, "order_book", seed=2)


# ---- the desired trade --------------------------------------------------------------------
probability = st.floats(0.05, 0.95)
price = st.floats(0.05, 0.95)
wealth = st.floats(0.5, 50.0)


@given(probability, price, wealth, wealth)
def test_desired_trade_log_closed_form(pi, p, w_yes, w_no):
    # π(1-p)/(w_yes + q(1-p)) = (1-π)p/(w_no - qp)  <=>  q = (π(1-p) w_no - (1-π) p w_yes)/(p(1-p))
    expected = (pi * (1 - p) * w_no - (1 - pi) * p * w_yes) / (p * (1 - p))
    got = desired_trade(np.array([pi, 1 - pi]), np.array([w_yes, w_no]), 0, p, "log")
    assert got == pytest.approx(expected, rel=1e-7, abs=1e-9)


@given(probability, price, wealth, wealth, st.floats(0.1, 3.0))
def test_desired_trade_cara_closed_form(pi, p, w_yes, w_no, a):
    # π(1-p) e^{-a(w_yes + q(1-p))} = (1-π) p e^{-a(w_no - qp)}
    expected = (math.log(pi * (1 - p) / ((1 - pi) * p)) - a * (w_yes - w_no)) / a
    got = desired_trade(np.array([pi, 1 - pi]), np.array([w_yes, w_no]), 0, p, "cara", a)
    assert got == pytest.approx(expected, rel=1e-7, abs=1e-8)


def test_desired_trade_of_a_risk_neutral_trader_is_a_bound():
    pi, w = np.array([0.2, 0.5, 0.3]), np.array([3.0, 3.0, 3.0])
    assert desired_trade(pi, w, 1, 0.4, "neutral", bounds=(-2.0, 7.5)) == 7.5
    assert desired_trade(pi, w, 1, 0.6, "neutral", bounds=(-2.0, 7.5)) == -2.0


# ---- prices -------------------------------------------------------------------------------
@pytest.mark.parametrize("fixture", ["yes_no", "three_outcomes"])
def test_prices_approach_the_wealth_weighted_mean_belief(fixture, request):
    run = request.getfixturevalue(fixture)
    outcomes = run.scenario.goods.names[1:]
    reference = wealth_weighted_belief(run.scenario)
    final = np.array([run.summary["final_price"][o] for o in outcomes])
    assert np.abs(final - reference).max() < 0.015
    # the market lands much closer to the reference than the beliefs' spread around it
    pi = np.vstack([p.beliefs for p in run.scenario.populations if p.behaviour is None])
    assert np.abs(final - reference).max() < 0.25 * pi.std(axis=0).max()
    # ... and the summary's reference is that closed form
    wwb = run.summary["wealth_weighted_belief"]
    assert [wwb[o] for o in outcomes] == pytest.approx(reference, abs=1e-12)


@pytest.mark.parametrize("fixture", ["yes_no", "three_outcomes"])
def test_prices_of_the_outcomes_sum_to_about_one(fixture, request):
    run = request.getfixturevalue(fixture)
    final = run.summary["final_price"]
    assert sum(final.values()) == pytest.approx(1.0, abs=0.01)
    assert run.summary["price_sum"] == pytest.approx(sum(final.values()), abs=1e-12)
    # every trade price of a share lies in (0, 1): nobody pays more than a unit of money
    assert run.trades["price"].between(0, 1, inclusive="neither").all()


def test_without_complete_sets_nobody_can_go_short_and_prices_sum_above_one():
    # Without conversion each share's supply is fixed: a bearish trader cannot sell what it
    # does not hold, so bullish and bearish traders bid both shares up (prices sum above 1).
    scenario = mktsim.build_scenario("prediction_market", seed=1, until=30.0)
    pops = [
        attrs.evolve(p, behaviour_options={**p.behaviour_options, "complete_sets": False})
        if p.behaviour is None
        else p
        for p in scenario.populations
    ]
    run = mktsim.simulate(attrs.evolve(scenario, populations=pops), "order_book", seed=1)
    assert run.summary["complete_sets_issued"] == 0
    assert run.summary["price_sum"] > 1.02
    assert run.summary["conservation_ok"]


# ---- trading never beyond the reservation price; holdings; conservation; resolution ------
def test_replayed_holdings_stay_non_negative_and_trades_respect_reservation_prices(yes_no):
    run = yes_no
    scenario = run.scenario
    slices = scenario.population_slices()
    belief_rows = slices["traders"]
    pi = scenario.populations[0].beliefs
    checked = 0
    end = None
    for kind, rows, h in replay(run):
        assert (h > -1e-9).all()
        if kind == "end":
            end = h
            continue
        if kind != "trade":
            continue
        for a, g, q, p in zip(
            rows["agent"], rows["good"].astype(str), rows["quantity"], rows["price"], strict=True
        ):
            if not belief_rows.start <= a < belief_rows.stop:
                continue
            s = scenario.goods.names.index(g) - 1
            r = log_reservation(pi[a - belief_rows.start], h[a, 0] + h[a, 1:])[s]
            # a buy at a price above r (or a sell below it) would lower expected utility
            assert (p <= r + 1e-9) if q > 0 else (p >= r - 1e-9), (a, g, q, p, r)
            checked += 1
    assert checked > 500
    # the replay reproduces the holdings the run ended with
    last = run.holdings[run.holdings["time"] == run.holdings["time"].max()]
    final = np.zeros_like(end)
    for a, g, q in zip(last["agent"], last["good"].astype(str), last["quantity"], strict=True):
        final[a, scenario.goods.names.index(g)] = q
    assert np.allclose(end, final, atol=1e-6)


def test_conservation_and_resolution_pay_the_outcome(yes_no):
    run = yes_no
    s = run.summary
    assert s["conservation_ok"] and s["resolved"] and s["maker_loss"] is None
    names = run.scenario.goods.names
    start = run.scenario.endowments()
    h = run.holdings
    last = h[h["time"] == h["time"].max()]
    end = np.zeros_like(start)
    for a, g, q in zip(last["agent"], last["good"].astype(str), last["quantity"], strict=True):
        end[a, names.index(g)] = q
    assert (end[:, 1:] == 0).all()  # every share is gone at resolution
    # money in = money out: money + shares of the outcome, summed over everyone (complete sets
    # are bought at par, and pay 1 in the outcome's state)
    win = names.index(s["outcome"])
    assert end[:, 0].sum() == pytest.approx(start[:, 0].sum() + start[:, win].sum(), abs=1e-6)
    # so the traders' profits add up to zero (no maker)
    assert sum(s["trader_profit"].values()) == pytest.approx(0.0, abs=1e-6)
    for pop, rows in run.scenario.population_slices().items():
        value = end[rows, 0].sum() - start[rows, 0].sum() - start[rows, win].sum()
        assert s["trader_profit"][pop] == pytest.approx(value, abs=1e-6)
    # the resolution's payout is every share of the outcome held just before it
    prod = run.frame("production")
    res = prod[prod["technology"] == f"resolution: {s['outcome']}"]
    assert s["payout"] == pytest.approx(res.loc[res["good"] == "money", "quantity"].sum())
    assert s["outcome"] in run.events.loc[run.events["kind"] == "resolution", "detail"].iloc[0]


def test_the_outcome_is_the_one_lmsr_draws_for_the_same_seed():
    scenario = mktsim.build_scenario("prediction_market", n_traders=8, n_noise=0, until=5.0)
    for seed in range(4):
        book = mktsim.simulate(scenario, "order_book", seed=seed, record="summary")
        lmsr = mktsim.simulate(scenario, "lmsr", seed=seed, record="summary")
        assert book.summary["outcome"] == lmsr.summary["outcome"]


def test_informed_traders_move_the_price_toward_the_outcome():
    base = mktsim.build_scenario("prediction_market", seed=2, until=30.0)
    informed = mktsim.build_scenario("prediction_market", seed=2, until=30.0, n_informed=5)
    a = mktsim.simulate(base, "order_book", seed=2, record="summary").summary
    b = mktsim.simulate(informed, "order_book", seed=2, record="summary").summary
    assert a["outcome"] == b["outcome"]
    target = {o: float(o == b["outcome"]) for o in b["final_price"]}
    gap_a = max(abs(a["final_price"][o] - target[o]) for o in target)
    gap_b = max(abs(b["final_price"][o] - target[o]) for o in target)
    assert gap_b < gap_a
    assert b["trader_profit"]["informed"] > 0  # they know the outcome (accuracy 1)


# ---- determinism, behaviours and refusals -------------------------------------------------
def test_same_seed_gives_identical_frames():
    scenario = mktsim.build_scenario("prediction_market", n_traders=20, n_noise=4, until=15.0)
    a = mktsim.simulate(scenario, "order_book", seed=5)
    b = mktsim.simulate(scenario, "order_book", seed=5)
    for name in ("trades", "prices", "holdings", "production", "events"):
        pd.testing.assert_frame_equal(a.frame(name), b.frame(name))
    assert len(a.trades) > 0
    c = mktsim.simulate(scenario, "order_book", seed=6)
    assert not a.trades.equals(c.trades)


def test_behaviours_are_chosen_by_kind_and_name():
    run_summary = mktsim.simulate(
        mktsim.build_scenario("prediction_market", n_traders=6, n_noise=2, until=3.0),
        "order_book",
        record="summary",
    ).summary
    assert run_summary["behaviours"] == {"traders": "belief", "noise": "noise"}


def test_scripted_orders_trade_at_the_book():
    traders = mktsim.build_scenario("prediction_market", n_noise=0, seed=0).populations[0]
    script = BeliefTraders.of(
        "script",
        np.array([[0.5, 0.5]]),
        [5.0],
        1.0,
        behaviour="scripted",
        behaviour_options={"orders": [(8.0, 0, "yes", 0.2), (9.0, 0, "no", -0.1)]},
    )
    scenario = prediction_market([traders, script], [0.6, 0.4], until=10.0)
    run = mktsim.simulate(scenario, "order_book", seed=0)
    mine = run.trades[run.trades["agent"] == traders.size]
    assert set(mine["time"]) <= {8.0, 9.0}
    assert mine.loc[mine["good"] == "yes", "quantity"].sum() == pytest.approx(0.2)
    assert mine.loc[mine["good"] == "no", "quantity"].sum() == pytest.approx(-0.1)


def test_refusals_are_one_line():
    consumers = Consumers("c", CobbDouglas([[0.5, 0.5]]), [[1.0, 1.0]], behaviour="belief")
    scenario = mktsim.Scenario(
        name="x", goods=mktsim.goods.Goods.of(["money", "apples"]), populations=[consumers]
    )
    # refused before the run by the pairing: the strategy serves belief traders only
    with pytest.raises(InvalidParameter, match="drives belief_traders, not population 'c'") as err:
        mktsim.simulate(scenario, "order_book", until=1.0)
    assert "\n" not in str(err.value)
    traders = BeliefTraders.of("t", np.array([[0.6, 0.4]]), [1.0], 1.0, behaviour="zi_u")
    with pytest.raises(MktsimError) as err:
        mktsim.simulate(prediction_market([traders], [0.5, 0.5]), "order_book", until=1.0)
    assert "\n" not in str(err.value)


order = st.tuples(
    st.floats(0.5, 9.5),  # time
    st.integers(0, 2),  # agent within the scripted population
    st.sampled_from(["yes", "no"]),
    st.sampled_from([-0.3, -0.1, -0.02, 0.02, 0.1, 0.3]),  # signed shares, whole lots
)


@settings(max_examples=15, deadline=None)
@given(orders=st.lists(order, min_size=1, max_size=25), seed=st.integers(0, 1_000))
def test_random_order_flow_conserves_and_resolves(orders, seed):
    # belief traders quote, scripted agents hit them at random (selling shares they may not
    # hold: complete sets are bought first); nothing is created or lost beyond the recorded
    # conversions, nobody goes negative, and the resolution pays exactly the outcome's shares
    traders = BeliefTraders.of(
        "traders", np.array([[0.7, 0.3], [0.4, 0.6], [0.55, 0.45]]), [3.0, 3.0, 3.0], 1.0
    )
    script = BeliefTraders.of(
        "script",
        np.full((3, 2), 0.5),
        [2.0, 2.0, 2.0],
        0.5,
        behaviour="scripted",
        behaviour_options={"orders": sorted(orders)},
    )
    scenario = prediction_market([traders, script], [0.6, 0.4], until=10.0)
    run = mktsim.simulate(scenario, "order_book", seed=seed)
    s = run.summary
    assert s["conservation_ok"] and s["resolved"]
    final = None
    for _, _, h in replay(run):
        assert (h >= -1e-9).all()
        final = h
    names = scenario.goods.names
    start = scenario.endowments()
    win = names.index(s["outcome"])
    assert final is not None
    assert np.allclose(final[:, 1:], 0.0)
    assert final[:, 0].sum() == pytest.approx(start[:, 0].sum() + start[:, win].sum(), abs=1e-6)
