"""The shared swap strategies (mrs_swap, belief_swap, noise_swap, scripted_swap, idle) against
independent computations: constant-product and LMSR maths written out here, never read from
the mechanisms."""

from __future__ import annotations

import math

import numpy as np
import pytest

import mktsim
from mktsim import CobbDouglas, Consumers, Scenario
from mktsim.beliefs import BeliefTraders, prediction_market
from mktsim.errors import InvalidParameter
from mktsim.orders import Receipt, Swap
from mktsim.testing import standalone

BASE = 1e9


def one_consumer(alpha, endowment, behaviour="mrs_swap", options=None, until=50.0):
    pop = Consumers(
        "c",
        CobbDouglas(np.array([alpha])),
        np.array([endowment], dtype=float),
        behaviour=behaviour,
        behaviour_options=options or {},
    )
    return Scenario("one_consumer", ["money", "good"], [pop], until=until)


def mrs(alpha, h):
    """Cobb-Douglas marginal rate of substitution of the good for money: (α1/h1)/(α0/h0)."""
    return (alpha[1] / h[1]) / (alpha[0] / h[0])


def first_fill(market, ctx):
    event = market.updated()
    ctx.env.run(until=event)
    return event.value


@pytest.mark.parametrize("fee", [0.0, 0.003, 0.05])
@pytest.mark.parametrize("side", ["buy", "sell"])
def test_after_an_mrs_swap_fill_the_mrs_equals_the_marginal_price_of_the_last_unit(fee, side):
    alpha = [0.5, 0.5]
    h0 = np.array([10.0, 1.0]) if side == "buy" else np.array([1.0, 10.0])
    x, y = 100.0, 100.0
    sc = one_consumer(alpha, h0)
    market, ctx = standalone("cpmm", sc, fee=fee, reserves={"good": [x, y]}, quiet="never")
    receipt = first_fill(market, ctx)
    assert isinstance(receipt, Receipt) and receipt.status == "filled"
    g = 1.0 - fee

    # The pool's maths, continuous: paying t in moves the holdings and the last unit's price.
    if side == "buy":
        paid = receipt.cash

        def gap(t):
            out = x * g * t / (y + g * t)
            price = (y + g * t) ** 2 / (g * x * y)  # money per unit of the last unit bought
            return mrs(alpha, h0 + np.array([-t, out])) - price

    else:
        paid = receipt.filled

        def gap(t):
            out = y * g * t / (x + g * t)
            price = g * x * y / (x + g * t) ** 2  # money per unit of the last unit sold
            return price - mrs(alpha, h0 + np.array([out, -t]))

    # the trader stops within a couple of base units short of where MRS = marginal price
    scale = 1e-12 * mrs(alpha, h0)
    assert gap(paid) >= -scale
    assert gap(paid + 2 / BASE) <= scale
    assert paid > 1.0  # a real trade, not dust
    # and the holdings moved by exactly what the receipt says
    h = ctx.ledger.holdings[0] / BASE
    sign = 1 if side == "buy" else -1
    assert h[1] == pytest.approx(h0[1] + sign * receipt.filled, abs=1 / BASE)
    assert h[0] == pytest.approx(h0[0] - receipt.cash, abs=1 / BASE)


def test_the_pool_price_converges_to_the_mrs_of_identical_consumers():
    # many identical Cobb-Douglas agents swapping to the margin end where no one wants to trade:
    # every agent's MRS inside the pool's final [bid, ask] (within tol)
    alpha = np.tile([0.5, 0.5], (20, 1))
    pop = Consumers("c", CobbDouglas(alpha), np.tile([10.0, 2.0], (20, 1)), behaviour="mrs_swap")
    sc = Scenario("identical", ["money", "good"], [pop], until=400.0)
    run = mktsim.simulate(sc, "cpmm", seed=3, fee=0.003, quiet=20.0, reserves={"good": [4, 20]})
    assert run.summary["converged"] and run.summary["behaviours"] == {"c": "mrs_swap"}
    h = run.holdings
    last = h[h.time == h.time.max()].pivot_table(index="agent", columns="good", values="quantity")
    pool = run.summary["pools"]["good"]
    bid, ask = 0.997 * pool["y"] / pool["x"], pool["y"] / (0.997 * pool["x"])
    rates = (last["good"] ** -1) / (last["money"] ** -1)  # α equal: MRS = money / good
    assert ((rates >= bid / (1 + 1e-3)) & (rates <= ask * (1 + 1e-3))).all()


def lmsr_cost(q, b):
    m = max(q)
    return m + b * math.log(sum(math.exp((v - m) / b) for v in q))


def test_a_risk_neutral_belief_swap_moves_the_price_to_its_belief_and_pays_the_cost():
    b, belief = 10.0, 0.7
    trader = BeliefTraders.of(
        "t", [[belief, 1 - belief]], 100.0, 1.0, risk="neutral", behaviour="belief"
    )
    sc = prediction_market([trader], [0.5, 0.5], b=b, until=50.0)
    market, ctx = standalone("lmsr", sc)
    receipt = first_fill(market, ctx)
    # p_yes = 1 / (1 + exp(−s/b)) = belief  <=>  s = b·ln(belief / (1 − belief))
    s = b * math.log(belief / (1 - belief))
    assert receipt.filled <= s and s - receipt.filled < 2 / BASE
    quote = market.quote()
    assert quote.prices["yes"] == pytest.approx(belief, abs=1e-9)
    cost = lmsr_cost([receipt.filled, 0.0], b) - lmsr_cost([0.0, 0.0], b)
    # charged in the maker's favour, by less than one base unit
    assert 0 <= receipt.cash - cost < 1.01 / BASE
    assert receipt.price == pytest.approx(receipt.cash / receipt.filled, rel=1e-12)


def test_noise_swap_fills_are_charged_the_lmsr_cost_differences():
    noise = BeliefTraders.of("n", np.full((5, 2), 0.5), 20.0, 2.0, behaviour="noise")
    sc = prediction_market([noise], [0.5, 0.5], b=5.0, until=30.0)
    run = mktsim.simulate(sc, "lmsr", seed=2)
    mm = run.frame("market_maker")
    assert len(mm) > 20 and (mm.shares < 0).any() and (mm.shares > 0).any()
    q = {"yes": 0.0, "no": 0.0}
    for row in mm.itertuples():
        before = lmsr_cost(list(q.values()), 5.0)
        q[str(row.good)] += row.shares
        cost = lmsr_cost(list(q.values()), 5.0) - before
        assert row.cost == pytest.approx(cost, rel=1e-9, abs=1e-9)
        # rounded in the maker's favour, by less than one of the run's base units (up to the
        # float error of the cost difference computed here, a few ulps of the cost function)
        slack = 1e-13 * max(1.0, abs(before))
        assert -slack <= row.cash - cost < 1.01 / run.summary["base_units"] + slack
    assert run.summary["conservation_ok"]


def test_scripted_swap_replays_both_forms():
    # prediction-market form: (time, agent, outcome, signed shares)
    t = BeliefTraders.of(
        "t",
        np.full((2, 2), 0.5),
        50.0,
        2.0,
        behaviour="scripted",
        behaviour_options={"orders": [(1.0, 0, "yes", 3.0), (2.0, 1, "no", -1.5)]},
    )
    run = mktsim.simulate(prediction_market([t], [0.5, 0.5], b=10.0, until=5.0), "lmsr")
    mm = run.frame("market_maker")
    assert list(mm.shares) == [3.0, -1.5] and list(mm.good.astype(str)) == ["yes", "no"]
    # pool form: (time, agent, good, side, amount[, in|out])
    orders = [(1.0, 0, "good", "buy", 2.0, "out"), (2.0, 0, "good", "sell", 1.0)]
    sc = one_consumer([0.5, 0.5], [50.0, 5.0], "scripted", {"orders": orders}, until=5.0)
    run = mktsim.simulate(sc, "cpmm", fee=0.0, reserves={"good": [10, 10]}, quiet="never")
    pools = run.frame("pools")  # in the run's base units
    base = run.summary["base_units"]
    swaps = pools[pools.side != "open"]
    assert list(swaps.side) == ["buy", "sell"]
    assert swaps.amount_out.iloc[0] == 2 * base  # exactly 2 out
    # x·y = k: 2 goods out of (10, 10) cost 10·10/8 − 10 = 2.5, rounded up in the pool's favour
    assert swaps.amount_in.iloc[0] == 5 * base // 2
    assert swaps.amount_in.iloc[1] == base  # exactly 1 in


def test_updated_fires_at_the_next_fill_with_its_receipt_and_refusals_change_nothing():
    sc = one_consumer([0.5, 0.5], [5.0, 5.0], "passive")
    market, ctx = standalone("cpmm", sc, fee=0.0, reserves={"good": [10, 10]})
    event = market.updated()
    before = ctx.ledger.holdings.copy()
    # average price of 1 good out of (10, 10) is 10/9 > 1.1: refused by the limit
    refused = market.submit(Swap(0, "good", "buy", 1.0, "out", limit=1.1)).value
    assert refused.reason == "limit" and not event.triggered
    np.testing.assert_array_equal(ctx.ledger.holdings, before)
    filled = market.submit(Swap(0, "good", "buy", 1.0, "out", limit=1.12)).value
    assert event.triggered and event.value == filled and filled.price == pytest.approx(10 / 9)
    quote = market.quote()
    assert quote.prices["good"] == pytest.approx((10 + 10 / 9) / 9, rel=1e-8)
    assert quote.pools["good"].x == 9.0


def test_an_lmsr_sale_for_an_exact_sum_is_refused_as_data():
    t = BeliefTraders.of("t", [[0.5, 0.5]], 5.0, 1.0, behaviour="passive")
    market, _ = standalone("lmsr", prediction_market([t], [0.5, 0.5], b=10.0, until=5.0))
    receipt = market.submit(Swap(0, "yes", "sell", 0.2, "out")).value
    assert not receipt.ok and receipt.reason.startswith("sale for an exact sum")


def test_swap_strategies_are_refused_where_swaps_are_not_taken():
    sc = one_consumer([0.5, 0.5], [5.0, 5.0], "mrs_swap")
    with pytest.raises(InvalidParameter, match="runs under cpmm, lmsr") as info:
        mktsim.simulate(sc, "order_book", until=2.0)
    assert "\n" not in str(info.value)
    # and a belief strategy refuses a pool market, which quotes no outcome prices
    t = BeliefTraders.of("t", [[0.5, 0.5]], 5.0, 1.0, behaviour="belief_swap")
    with pytest.raises(InvalidParameter, match="cost-function maker"):
        mktsim.simulate(prediction_market([t], [0.5, 0.5], until=2.0), "cpmm")


@pytest.mark.parametrize(("price", "side"), [(2.5, "buy"), (0.4, "sell")])
def test_an_arbitrage_swap_stops_where_the_last_unit_costs_the_external_price(price, side):
    fee, x, y = 0.01, 10.0, 10.0
    options = {"prices": {"good": price}}
    sc = one_consumer([0.5, 0.5], [100.0, 100.0], "arbitrage", options, until=20.0)
    market, ctx = standalone("cpmm", sc, fee=fee, reserves={"good": [x, y]}, quiet="never")
    receipt = first_fill(market, ctx)
    g = 1 - fee
    if side == "buy":  # paid d: the last unit costs (y + g·d)² / (g·x·y)
        d = receipt.cash
        last = (y + g * d) ** 2 / (g * x * y)
        per_unit = 2 * (y + g * d) / (x * y)  # d(last)/dd
    else:  # paid e of the good: the last unit fetches g·x·y / (x + g·e)²
        d = receipt.filled
        last = g * x * y / (x + g * d) ** 2
        per_unit = 2 * g * g * x * y / (x + g * d) ** 3
    assert receipt.status == "filled" and d > 1.0
    # floored to base units: short of P by at most one base unit's worth
    assert 0 <= (price - last if side == "buy" else last - price) <= 1.01 * per_unit / BASE
