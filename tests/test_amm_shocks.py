"""Shocks and adversaries under the market makers (``lmsr``, ``cpmm``), checked from the runs'
frames against answers computed here: closed forms of the pool and of the LMSR written out in
exact rationals or with scipy, and holdings rebuilt from the trade journal."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

import mktsim
from mktsim import CobbDouglas, Consumers, Scenario
from mktsim.beliefs import BeliefTraders, prediction_market
from mktsim.counterfactual import counterfactual
from mktsim.errors import InvalidParameter
from mktsim.orders import Swap
from mktsim.shocks import LatencySpike, LiquidityWithdrawal, Outage, PriceClamp
from mktsim.testing import standalone

GOODS = ["money", "bread", "wine"]
UNTIL = 30.0


# ---- builders ---------------------------------------------------------------------------------


def pool_economy(orders=(), n=2, endowment=(50.0, 50.0, 50.0), delay=0.0, until=UNTIL):
    """``n`` scripted traders (orders: (time, agent, good, side, amount[, kind]))."""
    pop = Consumers(
        "traders",
        CobbDouglas(np.full((n, 3), 1 / 3)),
        np.tile(endowment, (n, 1)),
        behaviour="scripted",
        behaviour_options={"orders": list(orders)},
        delay=delay,
    )
    return Scenario("scripted_pools", GOODS, [pop], until=until)


def prediction(orders=(), k=2, b=10.0, money=200.0, sets=5.0, delay=0.0, until=UNTIL):
    """One scripted belief trader (orders: (time, 0, outcome, shares)) and one passive one."""
    scripted = BeliefTraders.of(
        "scripted",
        np.full((1, k), 1.0 / k),
        money,
        sets,
        behaviour="scripted",
        behaviour_options={"orders": list(orders)},
        delay=delay,
    )
    passive = BeliefTraders.of(
        "passive", np.full((1, k), 1.0 / k), money, sets, behaviour="passive"
    )
    return prediction_market([scripted, passive], [1.0 / k] * k, b=b, until=until)


def closed_form_out(r_in: int, r_out: int, d: int, fee: float) -> int:
    """floor(r_out·g·d / (r_in + g·d)), g = 1 − fee, in exact rationals."""
    g = 1 - Fraction(fee)
    return math.floor(Fraction(r_out) * g * d / (r_in + g * d))


def holdings_table(run) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(first, last) recorded holdings, agent x good, units."""
    h = run.holdings.assign(good=run.holdings["good"].astype(str))
    wide = h.pivot_table(index=["time", "agent"], columns="good", values="quantity")
    times = sorted(h["time"].unique())
    return wide.loc[times[0]], wide.loc[times[-1]]


def assert_only_own_trades_moved_holdings(run, skip=()):
    """For every agent and good: last − first holding == its journalled trades (money: − cash
    paid). ``skip``: goods destroyed outside trades (prediction-market shares at resolution)."""
    first, last = holdings_table(run)
    trades = run.trades.assign(good=run.trades["good"].astype(str))
    goods_in = trades.groupby(["agent", "good"])["quantity"].sum()
    cash_out = trades.groupby("agent")["cash"].sum()
    numeraire = run.scenario.goods.numeraire
    for agent in first.index:
        for good in first.columns:
            if good in skip:
                continue
            if good == numeraire:
                moved = -cash_out.get(agent, 0.0)
            else:
                moved = goods_in.get((agent, good), 0.0)
            assert last.loc[agent, good] - first.loc[agent, good] == pytest.approx(
                moved, abs=1e-8
            ), (agent, good)


# ---- constant-product pools: liquidity withdrawal ---------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    st.floats(0.01, 0.99),
    st.sampled_from([0.0, 0.003, 0.05]),
    st.tuples(st.floats(0.5, 500.0), st.floats(0.5, 500.0)),
    st.floats(0.01, 5.0),
)
def test_withdrawal_leaves_one_minus_f_of_the_reserves_at_the_same_price(f, fee, reserve, d):
    sc = pool_economy()
    reserves = {"bread": list(reserve), "wine": [reserve[1], reserve[0]]}
    market, ctx = standalone("cpmm", sc, fee=fee, reserves=reserves)
    ledger = ctx.ledger
    agents_before = ledger.holdings[: sc.n_agents].copy()
    totals_before = ledger.totals().copy()
    before = {j: (market.pool(j).x, market.pool(j).y) for j in market.pool_goods}
    market.apply_shock(LiquidityWithdrawal(time=0, fraction=f))
    out = ctx.recorder.frame("liquidity").set_index("good")
    withdrawn = np.zeros(len(GOODS), dtype=np.int64)
    for j, (x, y) in before.items():
        pool = market.pool(j)
        # what stays is (1 − f)·(x, y), rounded up to whole base units
        keep = 1 - Fraction(f)
        assert 0 <= pool.x - keep * x < 1 and 0 <= pool.y - keep * y < 1
        assert pool.price == pytest.approx(y / x, rel=1 / pool.x + 1 / pool.y + 1e-12)
        assert pool.k == pytest.approx((1 - f) ** 2 * x * y, rel=2 / pool.x + 2 / pool.y + 1e-9)
        # the pool's ledger account holds exactly the reserves; the rest is accounted for
        row = ctx.ledger.holdings[ctx.ledger.n_accounts - len(before) + list(before).index(j)]
        assert (row[j], row[0]) == (pool.x, pool.y)
        name = GOODS[j]
        assert (out.loc[name, "x_out"], out.loc[name, "y_out"]) == (x - pool.x, y - pool.y)
        withdrawn[j] += x - pool.x
        withdrawn[0] += y - pool.y
    np.testing.assert_array_equal(ledger.totals(), totals_before - withdrawn)
    np.testing.assert_array_equal(ledger.holdings[: sc.n_agents], agents_before)
    assert ledger.conserved()
    # the pool trades on from the new reserves
    bread = GOODS.index("bread")
    x, y = market.pool(bread).x, market.pool(bread).y
    base = ctx.goods.base_units
    units = round(d * base)
    receipt = market.submit(Swap(0, "bread", "buy", units / base, "in")).value
    expected = closed_form_out(y, x, units, fee)
    if expected:
        assert receipt.status == "filled" and receipt.filled == expected / base
    else:
        assert receipt.reason == "output rounds to zero"


def test_withdrawal_in_a_run_is_journalled_and_later_swaps_price_off_the_smaller_pool():
    orders = [(1.0, 0, "bread", "buy", 2.0), (6.0, 1, "bread", "sell", 3.0)]
    sc = pool_economy(orders)
    run = mktsim.simulate(
        sc,
        "cpmm",
        fee=0.003,
        reserves={"bread": [10, 20], "wine": [10, 10]},
        quiet="never",
        shocks=[LiquidityWithdrawal(time=4, fraction=0.5)],
    )
    assert run.summary["conservation_ok"]
    base = run.summary["base_units"]  # the pools table is in the run's base units
    pools = run.frame("pools")
    bread = pools[pools["good"] == "bread"].reset_index(drop=True)
    assert list(bread["side"]) == ["open", "buy", "withdraw", "sell"]
    before, after, sale = bread.iloc[1], bread.iloc[2], bread.iloc[3]
    assert after["time"] == 4.0
    assert abs(after["x"] - before["x"] / 2) <= 1 and abs(after["y"] - before["y"] / 2) <= 1
    # the sale is priced off the halved reserves
    assert sale["amount_out"] == closed_form_out(int(after["x"]), int(after["y"]), 3 * base, 0.003)
    events = run.events
    assert events["kind"].str.startswith("shock:liquidity").sum() == 1
    withdrawn = run.summary["liquidity_withdrawn"]["bread"]
    assert round(withdrawn["x"] * base) == before["x"] - after["x"]
    assert round(withdrawn["y"] * base) == before["y"] - after["y"]


def test_a_full_withdrawal_closes_the_pools_and_refuses_every_later_swap():
    orders = [(1.0, 0, "bread", "buy", 2.0), (6.0, 1, "bread", "sell", 1.0)]
    orders += [(7.0, 0, "wine", "buy", 1.0), (8.0, 1, "bread", "buy", 1.0)]
    run = mktsim.simulate(
        pool_economy(orders),
        "cpmm",
        reserves={"bread": [10, 20], "wine": [10, 10]},
        quiet="never",
        shocks=[LiquidityWithdrawal(time=4, fraction=1.0)],
    )
    s = run.summary
    assert s["conservation_ok"] and s["rejections"] == {"pool withdrawn": 3}
    assert (run.trades["time"] < 4).all()
    assert s["pools"]["bread"]["x"] == 0.0 and s["pools"]["bread"]["k_growth"] is None
    # every pool's last price is carried, so every good still has one
    assert set(s["final_prices"]) == set(GOODS)


# ---- constant-product pools: outage, latency, circuit breaker ---------------------------------


def test_no_swap_fills_during_an_outage_and_every_refusal_is_counted():
    times = [1.0, 3.0, 4.0, 5.5, 8.999, 9.0, 12.0]
    orders = [(t, i % 2, "bread", "buy", 0.5) for i, t in enumerate(times)]
    run = mktsim.simulate(
        pool_economy(orders),
        "cpmm",
        reserves={"bread": [10, 10], "wine": [10, 10]},
        quiet="never",
        shocks=[Outage(time=4, duration=5)],
    )
    trades = run.trades
    filled = sorted(trades["time"].unique())
    assert filled == [1.0, 3.0, 9.0, 12.0]  # the outage covers [4, 9)
    assert run.summary["rejections"] == {"market closed": 3}


def test_an_outage_longer_than_quiet_does_not_end_the_market():
    sc = mktsim.build_scenario("cobb_douglas", n_agents=20, seed=3)
    run = mktsim.simulate(sc, "cpmm", quiet=2.0, until=60, shocks=[Outage(time=3, duration=8)])
    trades = run.trades
    assert not ((trades["time"] >= 3) & (trades["time"] < 11)).any()
    assert (trades["time"] >= 11).any()  # trading resumed after the outage
    assert run.summary["rejections"]["market closed"] > 0
    assert run.summary["conservation_ok"]


@pytest.mark.parametrize("mechanism", ["cpmm", "lmsr"])
def test_a_latency_spike_delays_orders_sent_during_it_by_its_delay(mechanism):
    sent = [1.0, 5.0, 6.0, 12.0]
    if mechanism == "cpmm":
        orders = [(t, 0, "bread", "buy", 0.5) for t in sent]
        sc = pool_economy(orders, delay=0.5)
        options = {"reserves": {"bread": [10, 10], "wine": [10, 10]}, "quiet": "never"}
    else:
        sc = prediction([(t, 0, "yes", 1.0) for t in sent], delay=0.5)
        options = {}
    run = mktsim.simulate(sc, mechanism, shocks=[LatencySpike(4, 4, 2.5)], **options)
    filled = run.trades[run.trades["quantity"] != 0]["time"]
    filled = sorted(filled[filled < sc.until].unique())
    # own delay 0.5 always; 2.5 more for orders sent within [4, 8)
    np.testing.assert_allclose(filled, [1.5, 8.0, 9.0, 12.5])


def test_a_swap_sent_after_a_spike_waits_behind_the_backlog_and_quiet_waits_for_it():
    # spike [4, 6), delay 10: the swap sent at 5 reaches the pool at 15; the one sent at 7,
    # after the spike, queues behind it rather than overtaking it; quiet (2) must not end the
    # run while they are on their way
    orders = [(1.0, 0, "bread", "buy", 0.5), (5.0, 0, "bread", "buy", 0.5)]
    orders.append((7.0, 1, "bread", "buy", 0.5))
    run = mktsim.simulate(
        pool_economy(orders, until=100.0),
        "cpmm",
        reserves={"bread": [10, 10], "wine": [10, 10]},
        quiet=2.0,
        shocks=[LatencySpike(4, 2, 10.0)],
    )
    swaps = run.frame("pools")
    swaps = swaps[swaps["side"] == "buy"]
    assert swaps["time"].tolist() == [1.0, 15.0, 15.0]
    assert swaps["agent"].tolist() == [0, 0, 1]  # in the order sent
    assert run.summary["stopped"] == "quiet" and run.summary["sim_time"] >= 17.0


def test_the_circuit_breaker_refuses_exactly_the_swaps_that_would_cross_the_clamp():
    amounts = [0.4, 0.3, 0.5, 0.2, 0.05, 0.3, 0.6]
    orders = [(1.0 + i, 0, "bread", "sell" if i == 5 else "buy", a) for i, a in enumerate(amounts)]
    fee, clamp = 0.003, 1.12
    run = mktsim.simulate(
        pool_economy(orders),
        "cpmm",
        fee=fee,
        reserves={"bread": [10, 10], "wine": [10, 10]},
        quiet="never",
        shocks=[PriceClamp(time=0.5, good="bread", price=clamp)],
    )
    # a naive pool, in exact rationals, at the run's base unit: a swap fills unless its price
    # after exceeds the ceiling
    base = run.summary["base_units"]
    x, y, filled, refused = 10 * base, 10 * base, [], 0
    for t, _, _, side, a in orders:
        d = round(a * base)
        if side == "buy":
            out = closed_form_out(y, x, d, fee)
            nx, ny = x - out, y + d
        else:
            out = closed_form_out(x, y, d, fee)
            nx, ny = x + d, y - out
        if Fraction(ny, nx) > Fraction(clamp):
            refused += 1
        else:
            x, y = nx, ny
            filled.append(t)
    assert refused >= 1 and len(filled) >= 2  # the example exercises both
    assert sorted(run.trades["time"].unique()) == filled
    assert run.summary["rejections"] == {"circuit breaker": refused}
    prices = run.prices[run.prices["good"] == "bread"]["price"]
    assert (prices <= clamp).all()


def test_a_floor_clamp_refuses_sales_below_it():
    orders = [(1.0, 0, "bread", "sell", 0.2), (2.0, 0, "bread", "sell", 3.0)]
    run = mktsim.simulate(
        pool_economy(orders),
        "cpmm",
        fee=0.0,
        reserves={"bread": [10, 10], "wine": [10, 10]},
        quiet="never",
        shocks=[PriceClamp(time=0, good="bread", price=0.9)],
    )
    # 0.2 in: price 10·10/10.2² ≈ 0.961 stays above 0.9; 3 more: 100/13.2² ≈ 0.57 would not
    assert sorted(run.trades["time"].unique()) == [1.0]
    assert run.summary["rejections"] == {"circuit breaker": 1}


def test_a_clamp_on_the_maker_is_a_price_band_and_misdirected_shocks_are_refused():
    # the maker has no clamp of its own: the band wrapper refuses every swap it would not fill
    # at the clamped price (width 0: exactly 0.5), so nothing in 'yes' trades once it holds
    run = mktsim.simulate(prediction(), "lmsr", shocks=[PriceClamp(time=1, good="yes", price=0.5)])
    trades = run.trades
    traded = trades[(trades["good"] == "yes") & (trades["time"] > 1)]
    assert (traded["time"] == run.summary["sim_time"]).all()  # only the resolution's payouts
    with pytest.raises(InvalidParameter, match="numeraire"):
        mktsim.simulate(
            pool_economy(),
            "cpmm",
            quiet="never",
            shocks=[PriceClamp(time=1, good="money", price=1.0)],
        )


# ---- constant-product pools: adversaries ------------------------------------------------------


@pytest.mark.parametrize("fee", [0.0, 0.003, 0.01])
def test_wash_trading_against_a_pool_is_a_pure_fee_loss_the_pool_keeps(fee):
    wash = Consumers(
        "wash",
        CobbDouglas(np.full((2, 3), 1 / 3)),
        np.tile([50.0, 5.0, 5.0], (2, 1)),
        behaviour="wash",
        behaviour_options={"good": "bread", "amount": 0.1, "rate": 0.5},
    )
    sc = Scenario("wash", GOODS, [wash], until=20.0)
    run = mktsim.simulate(sc, "cpmm", fee=fee, reserves={"bread": [10, 10], "wine": [10, 10]})
    assert run.summary["conservation_ok"]
    pools = run.frame("pools")
    bread = pools[pools["good"] == "bread"].reset_index(drop=True)
    x, y = int(bread.loc[0, "x"]), int(bread.loc[0, "y"])
    sides = list(bread["side"].iloc[1:])
    assert len(sides) >= 4 and sides == ["buy", "sell"] * (len(sides) // 2)
    loss = {}
    for buy, sell in zip(bread.iloc[1::2].itertuples(), bread.iloc[2::2].itertuples(), strict=True):
        assert buy.agent == sell.agent and buy.time == sell.time
        got = closed_form_out(y, x, int(buy.amount_in), fee)
        assert buy.amount_out == got and sell.amount_in == got  # sells back all it got
        back = closed_form_out(x - got, y + int(buy.amount_in), got, fee)
        assert sell.amount_out == back
        loss[buy.agent] = loss.get(buy.agent, 0) + int(buy.amount_in) - back
        y += int(buy.amount_in) - back  # x is back where it was
        assert (int(sell.x), int(sell.y)) == (x, y)
    first, last = holdings_table(run)
    base = run.summary["base_units"]  # the pools table is in the run's base units
    for agent, lost in loss.items():
        assert last.loc[agent, "bread"] == first.loc[agent, "bread"]
        # holdings are whole base units, so units x base units rounds back to them exactly
        paid = round(first.loc[agent, "money"] * base) - round(last.loc[agent, "money"] * base)
        assert paid == lost
        if fee:
            # ~ the fee on the way in plus the fee on the way out
            assert lost > 0
    # what the wash traders lost, the pool kept
    assert y - int(bread.loc[0, "y"]) == sum(loss.values())


def pump_economy():
    base = mktsim.build_scenario("cobb_douglas", n_agents=30, seed=4)
    pumper = Consumers(
        "pumper",
        CobbDouglas(np.full((2, 3), 1 / 3)),
        np.tile([20.0, 0.5, 0.5], (2, 1)),
        behaviour="pump_and_dump",
        behaviour_options={"good": "good1", "start": 5.0, "bursts": 3, "gap": 2.0, "patience": 8.0},
    )
    return Scenario("pump", base.goods, [base.populations[0], pumper], until=30.0)


def test_pump_and_dump_trades_only_through_the_pools_and_its_effect_is_reported():
    sc = pump_economy()
    pair = counterfactual(sc, honest=["pumper"], mechanism="cpmm", seed=2, quiet="never")
    treated, baseline = pair.treated, pair.baseline
    assert treated.summary["conservation_ok"] and baseline.summary["conservation_ok"]
    assert_only_own_trades_moved_holdings(treated)
    assert_only_own_trades_moved_holdings(baseline)
    # the pump: buys at start + i·gap only, then sells back exactly what it bought
    rows = range(30, 32)
    trades = treated.trades.assign(good=treated.trades["good"].astype(str))
    mine = trades[trades["agent"].isin(rows) & (trades["good"] == "good1")]
    assert sorted(mine[mine["quantity"] > 0]["time"].unique()) == [5.0, 7.0, 9.0]
    assert (mine[mine["quantity"] < 0]["time"] >= 9.0).all()
    first, last = holdings_table(treated)
    for agent in rows:
        assert last.loc[agent, "good1"] == pytest.approx(first.loc[agent, "good1"], abs=1e-9)
    # value changes at the baseline's final prices, rebuilt from the holdings frames
    s = pair.summary
    prices = pd.Series(s["valuation_prices"])
    assert set(prices.index) == set(sc.goods.names)

    def value(run, pop_rows):
        a, b = holdings_table(run)
        return float(((b.loc[pop_rows] - a.loc[pop_rows]) @ prices[a.columns]).sum())

    consumers = list(range(30))
    for name, pop_rows in (("consumers", consumers), ("pumper", list(rows))):
        expected = value(treated, pop_rows) - value(baseline, pop_rows)
        assert s["value_change"][name] == pytest.approx(expected, abs=1e-7)
    # gain and harm are the money-metric welfare changes (consumers have utilities)
    wt = treated.welfare().set_index("population")["surplus"]
    wb = baseline.welfare().set_index("population")["surplus"]
    assert s["adversary_gain"]["pumper"] == pytest.approx(wt["pumper"] - wb["pumper"])
    assert s["harm_to_others"] == pytest.approx(-(wt["consumers"] - wb["consumers"]))
    # buying high and selling low: the pump loses money against trading honestly
    assert s["value_change"]["pumper"] < 0


# ---- LMSR --------------------------------------------------------------------------------------


def lse_cost(s, b):
    return b * special.logsumexp(np.asarray(s, dtype=float) / b)


@pytest.mark.parametrize("f", [0.3, 0.5, 0.9])
def test_lmsr_withdrawal_lowers_b_keeps_prices_and_the_loss_follows_the_closed_form(f):
    b, t_w = 10.0, 10.0
    orders = [(2.0, 0, "yes", 12.0), (5.0, 0, "no", 3.0), (12.0, 0, "yes", 4.0)]
    orders += [(14.0, 0, "no", -2.0), (16.0, 0, "yes", 6.0)]
    sc = prediction(orders, b=b)
    run = mktsim.simulate(
        sc, "lmsr", outcome="yes", shocks=[LiquidityWithdrawal(time=t_w, fraction=f)]
    )
    s = run.summary
    assert s["conservation_ok"] and s["resolved"] and not s["rejections"]
    assert s["b"] == pytest.approx((1 - f) * b) and s["b_initial"] == b
    mm = run.frame("market_maker").assign(good=lambda d: d["good"].astype(str))
    names = ["yes", "no"]
    # replay with a textbook LMSR: b up to the withdrawal, then b' = (1 − f)·b at the state
    # s' = (b'/b)·q, where prices are unchanged
    state, q, bb, revenue = np.zeros(2), np.zeros(2), b, 0.0
    p_at_withdrawal = None
    for row in mm.itertuples():
        if row.time > t_w and p_at_withdrawal is None:
            p_at_withdrawal = special.softmax(state / bb)
            state, bb = state * (1 - f), bb * (1 - f)
            np.testing.assert_allclose(special.softmax(state / bb), p_at_withdrawal, rtol=1e-12)
        i = names.index(row.good)
        after = state.copy()
        after[i] += row.shares
        cost = lse_cost(after, bb) - lse_cost(state, bb)
        assert row.cost == pytest.approx(cost, rel=1e-9, abs=1e-12)
        # charged in whole base units, rounded in the maker's favour
        assert -1e-12 * max(1.0, abs(cost)) <= row.cash - cost <= 1e-9 + 1e-12 * abs(cost)
        state, revenue = after, revenue + row.cash
        q[i] += row.shares
        assert row.price == pytest.approx(special.softmax(state / bb)[i], rel=1e-9)
    assert p_at_withdrawal is not None
    # the maker's loss if "yes" resolves: b·ln n + (b − b')·ln p(t) + b'·ln p(T), less rounding
    p_end = special.softmax(state / bb)
    closed = b * math.log(2) + (b - bb) * math.log(p_at_withdrawal[0]) + bb * math.log(p_end[0])
    assert s["maker_loss"] == pytest.approx(q[0] - revenue, abs=1e-8)
    assert -1e-9 <= closed - s["maker_loss"] <= len(mm) * 1e-9 + 1e-9
    assert s["maker_loss"] <= s["maker_loss_bound"] + 1e-9 <= b * math.log(2) + 1e-9
    # the money released leaves the maker just what the new worst case needs
    before = mm[mm["time"] < t_w]
    q_t = np.array([before[before["good"] == n]["shares"].sum() for n in names])
    endowed = 2 * 5.0  # two traders, five complete sets each
    need = max(endowed + q_t[i] + bb * math.log(1 / p_at_withdrawal[i]) for i in range(2))
    left = s["maker_subsidy"] + s["maker_collateral"] + before["cash"].sum() - s["maker_withdrawn"]
    assert s["maker_withdrawn"] > 0
    assert need - 1e-9 <= left <= need + 4e-9


def test_lmsr_full_withdrawal_stops_quoting_but_still_pays_out():
    orders = [(2.0, 0, "yes", 5.0), (12.0, 0, "yes", 1.0), (13.0, 0, "no", -1.0)]
    run = mktsim.simulate(
        prediction(orders), "lmsr", outcome="yes", shocks=[LiquidityWithdrawal(10, 1.0)]
    )
    s = run.summary
    assert s["conservation_ok"] and s["resolved"]
    assert s["rejections"] == {"maker withdrew": 2}
    assert (run.frame("market_maker")["time"] < 10).all()
    # the loss if "yes" resolves: b·ln 2 + b·ln p_yes(t) (b' = 0), p from the one trade
    p = special.softmax(np.array([5.0, 0.0]) / 10.0)
    assert s["maker_loss_bound"] == pytest.approx(10 * math.log(2) + 10 * math.log(p[0]))
    assert s["maker_loss"] <= s["maker_loss_bound"] + 1e-9
    # paid out: every holder's "yes" shares (five endowed, five bought by trader 0) at 1
    first, last = holdings_table(run)
    paid = run.frame("market_maker")["cash"].sum()
    np.testing.assert_allclose(last["money"], first["money"] + [10.0 - paid, 5.0], atol=1e-9)


def test_lmsr_outage_refuses_orders_as_data():
    orders = [(t, 0, "yes", 1.0) for t in (1.0, 4.0, 6.0, 8.9, 9.0)]
    run = mktsim.simulate(prediction(orders), "lmsr", shocks=[Outage(time=4, duration=5)])
    mm = run.frame("market_maker")
    assert list(mm["time"]) == [1.0, 9.0]
    assert run.summary["rejections"] == {"market closed": 3}


def test_lmsr_withdrawal_under_live_trading_never_leaves_a_payout_uncovered():
    sc = mktsim.build_scenario(
        "prediction_market", n_traders=15, n_noise=5, n_informed=3, until=20.0, seed=2
    )
    for f in (0.5, 0.95):
        run = mktsim.simulate(sc, seed=2, shocks=[LiquidityWithdrawal(time=8, fraction=f)])
        s = run.summary
        assert s["conservation_ok"] and s["resolved"]
        assert "maker could not cover payouts" not in s["rejections"]
        assert s["maker_loss"] <= s["maker_loss_bound"] + 1e-9


def test_informed_traders_profit_comes_out_of_the_maker_and_the_counterfactual_reports_it():
    sc = mktsim.build_scenario(
        "prediction_market", n_traders=12, n_noise=3, n_informed=3, accuracy=1.0, until=20.0, seed=1
    )
    pair = counterfactual(sc, honest=["informed"], seed=1)
    treated, baseline = pair.treated, pair.baseline
    for run in (treated, baseline):
        s = run.summary
        assert (
            s["conservation_ok"] and s["resolved"] and s["trader_profit_valued_at"] == "resolution"
        )
        won = s["outcome"]
        losing = [o for o in s["outcomes"] if o != won]
        assert_only_own_trades_moved_holdings(run, skip=losing)
        first, last = holdings_table(run)
        assert (last[losing] == 0).all().all()
        # profit at resolution from the holdings: money gained less the winning shares held
        payoff = pd.Series(0.0, index=first.columns)
        payoff[["money", won]] = 1.0
        gained = (last - first) @ payoff
        slices = run.scenario.population_slices()
        for pop, rows in slices.items():
            assert s["trader_profit"][pop] == pytest.approx(gained.iloc[rows].sum(), abs=1e-8)
        # traders' profits add up to the maker's loss, which is q(outcome) − revenue
        mm = run.frame("market_maker").assign(good=lambda d: d["good"].astype(str))
        loss = mm[mm["good"] == won]["shares"].sum() - mm["cash"].sum()
        assert s["maker_loss"] == pytest.approx(loss, abs=1e-8)
        assert sum(s["trader_profit"].values()) == pytest.approx(loss, abs=1e-8)
    # the adversary's gain over trading on the public probabilities alone
    s = pair.summary
    rows = sc.population_slices()["informed"]
    money = {}
    for name, run in (("treated", treated), ("baseline", baseline)):
        money[name] = holdings_table(run)[1]["money"].iloc[rows].sum()
    assert s["adversary_gain"]["informed"] == pytest.approx(
        money["treated"] - money["baseline"], abs=1e-8
    )
    # zero sum: what the informed traders gain beyond what the others lose, the maker pays
    d_loss = treated.summary["maker_loss"] - baseline.summary["maker_loss"]
    assert s["adversary_gain"]["informed"] - s["harm_to_others"] == pytest.approx(d_loss, abs=1e-8)
    # knowing the outcome pays
    assert treated.summary["trader_profit"]["informed"] > 0
    assert s["adversary_gain"]["informed"] > 0


# ---- a disabled shock changes nothing ---------------------------------------------------------


def _same_frames(a, b):
    assert a.tables == b.tables
    for name in a.tables:
        pd.testing.assert_frame_equal(a.frame(name), b.frame(name), obj=name)


@pytest.mark.parametrize("mechanism", ["cpmm", "lmsr"])
def test_a_counterfactual_pair_without_shocks_is_the_baseline_frame_for_frame(mechanism):
    if mechanism == "lmsr":
        sc = mktsim.build_scenario("prediction_market", n_traders=10, n_noise=3, until=15.0)
        options = {}
    else:
        sc = mktsim.build_scenario("cobb_douglas", n_agents=15, seed=1)
        options = {"until": 30.0, "quiet": "never"}
    plain = mktsim.simulate(sc, mechanism, seed=3, **options)
    pair = counterfactual(sc, shocks=(), mechanism=mechanism, seed=3, **options)
    _same_frames(plain, pair.baseline)
    _same_frames(plain, pair.treated)
    assert pair.summary["peak_price_deviation"] == 0.0
    # a shock that would never come (due at or after the end) is refused before the run
    end = options.get("until", sc.until)
    for late in (Outage(time=1e6, duration=1.0), LatencySpike(end, 1.0, 1.0)):
        with pytest.raises(InvalidParameter, match="not before the end of the run"):
            mktsim.simulate(sc, mechanism, seed=3, shocks=[late], **options)


def test_the_quiet_rule_waits_for_shocks_still_to_come_and_for_a_clamp_to_lift():
    sc = mktsim.build_scenario("cobb_douglas", n_agents=20, seed=3)
    options = {"fee": 0.03, "quiet": 3.0, "until": 500.0}
    plain = mktsim.simulate(sc, "cpmm", **options)
    assert plain.summary["stopped"] == "quiet"
    end = plain.summary["sim_time"]
    shock = LiquidityWithdrawal(time=end + 20, fraction=0.5)
    run = mktsim.simulate(sc, "cpmm", shocks=[shock], **options)
    assert (run.events["kind"] == "shock:liquidity").sum() == 1
    assert run.summary["sim_time"] >= end + 23 and run.summary["stopped"] == "quiet"
    pd.testing.assert_frame_equal(plain.trades, run.trades[run.trades["time"] < end])
    # a clamp with an end holds the market open until it lifts, and trade resumes after it
    orders = [(1.0, 0, "bread", "buy", 2.0), (31.0, 0, "bread", "buy", 2.0)]
    run = mktsim.simulate(
        pool_economy(orders),
        "cpmm",
        reserves={"bread": [10, 10], "wine": [10, 10]},
        quiet=3.0,
        shocks=[PriceClamp(time=0.0, good="bread", price=1.05, duration=30.0)],
        until=100.0,
    )
    assert run.summary["rejections"] == {"circuit breaker": 1}
    assert list(run.trades["time"].unique()) == [31.0]
    assert run.summary["sim_time"] == 34.0 and run.summary["stopped"] == "quiet"
