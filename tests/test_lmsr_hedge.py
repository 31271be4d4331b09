"""The LMSR maker as an online learner (Chen & Vaughan 2010): its prices are the Hedge
(exponential weights) distribution over outcomes on the cumulative shares sold, learning rate
1/b, and its regret against the best fixed outcome never exceeds b·ln n, a bound the worst case
reaches. Hedge is written out here as the multiplicative-weights update, one trade at a time."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import mktsim
from mktsim.beliefs import BeliefTraders, prediction_market
from mktsim.orders import Swap
from mktsim.testing import standalone


class Hedge:
    """Exponential weights over ``n`` experts with learning rate ``eta``: after gains ``g`` each
    weight is multiplied by exp(eta·g_i) and the distribution renormalised (kept as log-weights
    shifted by their maximum, so large cumulative gains do not overflow)."""

    def __init__(self, n: int, eta: float) -> None:
        self.log_w = np.zeros(n)
        self.eta = eta

    def update(self, gains: np.ndarray) -> None:
        self.log_w = self.log_w + self.eta * gains
        self.log_w -= self.log_w.max()

    def distribution(self) -> np.ndarray:
        w = np.exp(self.log_w)
        return w / w.sum()


def market(k: int, b: float, money: float = 10_000.0, scripts=None, until: float = 100.0):
    """One trader per script (or one passive trader), each with ``money`` and 5 complete sets."""
    scripts = scripts if scripts is not None else [[]]
    pops = [
        BeliefTraders.of(
            f"t{i}",
            np.full((1, k), 1.0 / k),
            money,
            5.0,
            behaviour="scripted" if orders else "passive",
            behaviour_options={"orders": orders} if orders else {},
        )
        for i, orders in enumerate(scripts)
    ]
    return prediction_market(pops, [1.0 / k] * k, b=b, until=until)


trades = st.lists(
    st.tuples(st.integers(0, 4), st.sampled_from(["buy", "sell"]), st.floats(0.01, 30.0)),
    min_size=1,
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(k=st.integers(2, 5), b=st.floats(0.5, 50.0), sequence=trades)
def test_lmsr_prices_are_the_hedge_distribution_on_cumulative_shares(k, b, sequence) -> None:
    maker, ctx = standalone("lmsr", market(k, b), seed=0)
    names = list(maker.quote().prices)
    hedge = Hedge(k, 1.0 / b)
    assert np.allclose(list(maker.quote().prices.values()), hedge.distribution(), atol=1e-12)
    for outcome, side, amount in sequence:
        good = names[outcome % k]
        held = ctx.ledger.holdings[0, 1 + outcome % k] / 1e9
        if side == "sell":
            amount = min(amount, held)
            if amount <= 1e-9:
                continue
        order = Swap(0, good, side, amount, "out" if side == "buy" else "in")
        receipt = maker.submit(order).value
        if receipt.status != "filled":
            continue
        gains = np.zeros(k)
        gains[outcome % k] = receipt.filled if side == "buy" else -receipt.filled
        hedge.update(gains)
        shown = np.array([maker.quote().prices[n] for n in names])
        assert np.max(np.abs(shown - hedge.distribution())) <= 1e-12


def regret_from_trades(run) -> float:
    """max_ω q_ω − revenue, read from the ledger's trades: the maker's rows give the shares it
    sold (−quantity) per outcome and the money it received (−cash)."""
    trades = run.trades
    mine = trades[trades["agent"] == run.scenario.n_agents]
    sold = {g: 0.0 for g in run.scenario.goods.names[1:]}
    for good, qty in mine.groupby("good", observed=True)["quantity"].sum().items():
        sold[run.scenario.goods.names[int(good)] if not isinstance(good, str) else good] = -qty
    return max(sold.values()) + float(mine["cash"].sum())


adversaries = st.lists(
    st.tuples(st.integers(0, 3), st.floats(-40.0, 60.0).filter(lambda x: abs(x) > 1e-3)),
    min_size=1,
    max_size=20,
)


@settings(max_examples=15, deadline=None)
@given(k=st.integers(2, 4), b=st.floats(1.0, 20.0), sequence=adversaries)
def test_regret_never_exceeds_b_ln_n(k, b, sequence) -> None:
    outcomes = market(k, b).goods.names[1:]
    orders = [(1.0 + t, 0, outcomes[j % k], x) for t, (j, x) in enumerate(sequence)]
    run = mktsim.simulate(market(k, b, scripts=[orders]), "lmsr", seed=3, until=50.0)
    s = run.summary
    assert s["maker_regret_bound"] == b * math.log(k)
    assert abs(s["maker_regret"] - regret_from_trades(run)) < 1e-9
    assert s["maker_regret"] <= b * math.log(k) + 1e-9


def test_the_worst_case_reaches_the_bound_within_one_percent() -> None:
    """Buying one outcome without end drives the maker's regret to b·ln n: after Q shares it is
    b·ln n − b·ln(1 + (n − 1)·exp(−Q/b)), within 1% of the bound once Q ≥ 8b."""
    b, k = 10.0, 3
    outcome = market(k, b).goods.names[1]
    orders = [(1.0 + t, 0, outcome, 10.0) for t in range(8)]  # 80 shares in 8 buys
    run = mktsim.simulate(market(k, b, scripts=[orders]), "lmsr", seed=0, until=50.0)
    s = run.summary
    bound = b * math.log(k)
    closed_form = bound - b * math.log(1 + (k - 1) * math.exp(-80.0 / b))
    assert s["maker_regret_outcome"] == outcome
    assert s["maker_regret"] <= bound
    assert s["maker_regret"] >= 0.99 * bound
    assert abs(s["maker_regret"] - closed_form) < 1e-6


@settings(max_examples=25, deadline=None)
@given(
    k=st.integers(2, 5),
    b=st.floats(0.5, 20.0),
    amounts=st.lists(st.floats(0.01, 20.0), min_size=1, max_size=30),
    leader=st.booleans(),
)
def test_adaptive_adversaries_stay_within_the_bound(k, b, amounts, leader) -> None:
    """An adversary that each time buys the dearest outcome (following the leader) or the
    cheapest; the regret, recomputed from the trader's own holdings, stays below b·ln n."""
    maker, ctx = standalone("lmsr", market(k, b), seed=0)
    for x in amounts:
        prices = maker.quote().prices
        pick = (max if leader else min)(prices, key=lambda o: prices[o])
        assert maker.submit(Swap(0, pick, "buy", x, "out")).value.status == "filled"
    s = maker.summary()
    held = ctx.ledger.holdings[0] / 1e9
    paid, bought = 10_000.0 - held[0], held[1:] - 5.0
    assert abs(s["maker_regret"] - (bought.max() - paid)) < 1e-6
    assert s["maker_regret"] <= b * math.log(k) + 1e-9
