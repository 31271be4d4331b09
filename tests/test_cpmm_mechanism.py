"""Constant-product pools as a mechanism: every swap checked from the run's frames against the
closed form written out here in exact rationals, and consumers against textbook Cobb-Douglas."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mktsim.mechanisms.cpmm import ConstantProductMarket

import mktsim
from mktsim import CobbDouglas, Consumers, Scenario
from mktsim.beliefs import BeliefTraders
from mktsim.errors import InvalidParameter, UnknownName
from mktsim.orders import Swap
from mktsim.testing import standalone
from tests.conftest import cobb_douglas_prices

GOODS = ["money", "bread", "wine"]


def closed_form_out(r_in: int, r_out: int, d: int, fee: float) -> int:
    """floor(r_out·g·d / (r_in + g·d)), g = 1 − fee, in exact rationals."""
    g = 1 - Fraction(fee)
    return math.floor(Fraction(r_out) * g * d / (r_in + g * d))


def scripted_economy(orders, endowment=(50.0, 50.0, 50.0)):
    pop = Consumers(
        "traders",
        CobbDouglas(np.full((2, 3), 1 / 3)),
        np.tile(endowment, (2, 1)),
        behaviour="scripted",
        behaviour_options={"orders": orders},
    )
    return Scenario("scripted", GOODS, [pop], until=100.0)


swap = st.tuples(
    st.floats(0.0, 99.0),
    st.integers(0, 1),
    st.sampled_from(["bread", "wine"]),
    st.sampled_from(["buy", "sell"]),
    st.floats(1e-6, 80.0),
)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(swap, max_size=25),
    st.sampled_from([0.0, 0.003, 0.05]),
    st.tuples(st.floats(0.5, 200.0), st.floats(0.5, 200.0)),
)
def test_every_swap_matches_the_closed_form_and_never_shrinks_k(orders, fee, reserve):
    sc = scripted_economy(orders)
    reserves = {"bread": list(reserve), "wine": [reserve[1], reserve[0]]}
    run = mktsim.simulate(sc, "cpmm", fee=fee, reserves=reserves, quiet="never")
    assert run.summary["conservation_ok"] and (run.holdings["quantity"] >= 0).all()
    pools = run.frame("pools")  # in the run's base units
    base = run.summary["base_units"]
    prices = run.prices
    for good, rows in pools.groupby("good", observed=True):
        rows = rows.sort_values("trade_id")
        x, y = int(rows["x"].iloc[0]), int(rows["y"].iloc[0])
        assert (x, y) == (round(reserves[good][0] * base), round(reserves[good][1] * base))
        for side, d, out, x1, y1, rnd in zip(
            rows["side"].iloc[1:],
            rows["amount_in"].iloc[1:],
            rows["amount_out"].iloc[1:],
            rows["x"].iloc[1:],
            rows["y"].iloc[1:],
            rows["trade_id"].iloc[1:],
            strict=True,
        ):
            d, out = int(d), int(out)
            if side == "buy":  # money in, bread/wine out
                assert out == closed_form_out(y, x, d, fee)
                assert (x1, y1) == (x - out, y + d)
            else:
                assert out == closed_form_out(x, y, d, fee)
                assert (x1, y1) == (x + d, y - out)
            k0, k1 = x * y, int(x1) * int(y1)
            assert k1 >= k0
            if fee == 0.0:  # equality up to the rounding of one base unit of output
                assert k1 - k0 < max(int(x1), int(y1))
            x, y = int(x1), int(y1)
            p = prices[(prices["round"] == rnd) & (prices["good"] == good)]["price"]
            assert p.item() == pytest.approx(y / x, rel=1e-15)
    # the pools' ledger accounts hold exactly their reserves
    final = run.mechanism.summary()["pools"]
    for good in ("bread", "wine"):
        last = pools[pools["good"] == good].sort_values("trade_id").iloc[-1]
        assert final[good]["x"] == pytest.approx(last["x"] / base)


def test_swaps_the_pool_or_the_trader_cannot_fill_are_refused_with_a_reason():
    sc = scripted_economy([], endowment=(5.0, 5.0, 5.0))
    market, ctx = standalone("cpmm", sc, fee=0.003, reserves={"bread": [10, 10], "wine": [10, 10]})
    bread = ctx.goods.index("bread")
    before = ctx.ledger.holdings.copy()
    pool = market.pool(bread)
    too_big = market.submit(Swap(0, "bread", "buy", pool.x / 1e9, "out")).value
    assert not too_big.ok and too_big.reason == "larger than the pool's reserve"
    unaffordable = market.submit(Swap(0, "bread", "buy", (pool.x - 10**9) / 1e9, "out")).value
    assert unaffordable.reason == "insufficient money"  # 9 of 10 loaves cost ~ 100
    dust = market.submit(Swap(0, "bread", "sell", 1e-9, "in")).value
    assert dust.reason == "output rounds to zero"
    np.testing.assert_array_equal(ctx.ledger.holdings, before)
    exact = market.submit(Swap(1, "bread", "buy", 1.0, "out")).value
    assert exact.status == "filled" and exact.filled == 1.0
    # exact output: pay ceil(r_in·want / (g·(r_out − want)))
    g = 1 - Fraction(0.003)
    paid = math.ceil(Fraction(10**10) * 10**9 / (g * (10**10 - 10**9)))
    assert exact.cash == paid / 1e9 and exact.price == paid / 10**9
    assert market.summary()["rejections"] == {
        "insufficient money": 1,
        "larger than the pool's reserve": 1,
        "output rounds to zero": 1,
    }
    assert ctx.ledger.conserved()
    with pytest.raises(InvalidParameter, match="exact"):
        Swap(0, "bread", "buy", 1.0, "both")
    assert market.submit(Swap(0, "money", "buy", 1e-9)).value.reason == "no pool for that good"


def cd_utility(shares: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.prod(x**shares, axis=1)


def test_consumers_trade_voluntarily_and_prices_approach_the_walrasian_equilibrium():
    sc = mktsim.build_scenario("cobb_douglas", n_agents=30, n_goods=3, seed=2)
    pop = sc.populations[0]
    shares = pop.utility.shares
    run = mktsim.simulate(sc, "cpmm", seed=1, fee=0.003, depth=0.05, until=60)
    assert run.summary["conservation_ok"]
    h = run.holdings.pivot_table(
        index=["time", "agent"], columns="good", values="quantity", observed=True
    )[["money", "good1", "good2"]]
    start, end = h.loc[0.0].to_numpy(), h.loc[run.summary["sim_time"]].to_numpy()
    assert (end >= 0).all()
    # every swap was chosen to raise the trader's utility, so nobody ends worse off
    assert (cd_utility(shares, end) >= cd_utility(shares, start) * (1 - 1e-12)).all()
    assert (cd_utility(shares, end) > cd_utility(shares, start)).mean() > 0.5
    p_star = cobb_douglas_prices(shares, pop.endowment)
    final = run.summary["final_prices"]
    error = max(abs(final[g] / p_star[j] - 1) for j, g in enumerate(["money", "good1", "good2"]))
    initial = max(abs(1.0 / p - 1) for p in p_star)  # the pools open at price 1
    assert error < initial / 2


def test_a_lone_consumer_stops_where_its_mrs_lies_within_the_pool_band():
    alpha = np.array([[0.3, 0.7]])
    pop = Consumers("one", CobbDouglas(alpha), [[4.0, 1.0]])
    sc = Scenario("lone", ["money", "good"], [pop], until=500.0)
    fee, tol = 0.01, 1e-4
    run = mktsim.simulate(sc, "cpmm", fee=fee, reserves={"good": [2.0, 2.0]})
    s = run.summary
    assert s["converged"] and s["stopped"] == "quiet" and s["swaps"] >= 1
    h = run.holdings
    end = h[h["time"] == s["sim_time"]].set_index("good")["quantity"]
    mrs = (alpha[0, 1] / end["good"]) / (alpha[0, 0] / end["money"])
    pool = s["pools"]["good"]
    bid, ask = (1 - fee) * pool["y"] / pool["x"], pool["y"] / pool["x"] / (1 - fee)
    assert bid / (1 + tol) <= mrs * (1 + 1e-9) and mrs <= ask * (1 + tol) * (1 + 1e-9)


def test_arbitrageurs_move_a_feeless_pool_to_the_external_price():
    arb = Consumers(
        "arb",
        CobbDouglas([[0.5, 0.5]]),
        [[100.0, 100.0]],
        behaviour="arbitrage",
        behaviour_options={"prices": {"good": 2.5}},
    )
    sc = Scenario("arb", ["money", "good"], [arb], until=20.0)
    run = mktsim.simulate(sc, "cpmm", fee=0.0, reserves={"good": [10.0, 10.0]})
    pool = run.summary["pools"]["good"]
    # x' = √(k/P), y' = √(k·P), k = 100
    assert pool["price"] == pytest.approx(2.5, rel=1e-8)
    assert pool["x"] == pytest.approx(math.sqrt(100 / 2.5), rel=1e-8)
    assert run.summary["converged"]


def test_options_and_populations_are_checked():
    sc = mktsim.build_scenario("cobb_douglas", n_agents=4)
    with pytest.raises(InvalidParameter, match="fee"):
        ConstantProductMarket(fee=1.0)
    with pytest.raises(UnknownName, match="good in reserves"):
        mktsim.simulate(sc, "cpmm", until=2, reserves={"gold": [1, 1]})
    with pytest.raises(InvalidParameter, match="initial_prices"):
        mktsim.simulate(sc, "cpmm", until=2, initial_prices={"good1": -1})
    believers = BeliefTraders.of("b", [[0.5, 0.5]], 1.0, complete_sets=1.0)
    with pytest.raises(InvalidParameter, match="no utility"):
        mktsim.simulate(Scenario("b", ["money", "yes", "no"], [believers]), "cpmm", until=2)
    noisy = Consumers("c", CobbDouglas([[0.5, 0.5]]), [[1.0, 1.0]], behaviour_options={"speed": 2})
    with pytest.raises(UnknownName, match="speed"):
        mktsim.simulate(Scenario("c", ["money", "good"], [noisy]), "cpmm", until=2)
