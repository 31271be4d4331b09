"""The Glosten-Milgrom (1985) dealer market on the order book, against the model's closed forms.

Every expectation here is computed in this file from the model's primitives (an informed trader
buys iff V is high, a noise trader buys with probability 1/2), not from mktsim.mechanisms._dealer:
the first spread mu (V_H - V_L), the quotes after a scripted sequence of trades, the prices of
a whole random run replayed trade by trade, convergence to V, and zero expected dealer profit.
"""

from __future__ import annotations

import math

import attrs
import numpy as np
import pytest

import mktsim
from mktsim.errors import InvalidParameter, MktsimError

V_L, V_H, TICK = 90.0, 110.0, 0.01


# ---- the model, written out from its primitives ------------------------------------------
def posterior(pi: float, mu: float, buy: bool) -> float:
    """P(V = V_H | a trade on ``buy``'s side) by Bayes' rule over who arrives."""
    buy_if_high = mu * 1.0 + (1.0 - mu) * 0.5  # informed buy when V is high
    buy_if_low = mu * 0.0 + (1.0 - mu) * 0.5  # informed sell when V is low
    like_high = buy_if_high if buy else 1.0 - buy_if_high
    like_low = buy_if_low if buy else 1.0 - buy_if_low
    return pi * like_high / (pi * like_high + (1.0 - pi) * like_low)


def expected_value(pi: float, mu: float, buy: bool) -> float:
    q = posterior(pi, mu, buy)
    return q * V_H + (1.0 - q) * V_L


def tick_quotes(pi: float, mu: float) -> tuple[float, float]:
    """(bid, ask) on the tick grid: E[V | sell] rounded down, E[V | buy] rounded up."""
    bid = math.floor(expected_value(pi, mu, False) / TICK + 1e-6) * TICK
    ask = math.ceil(expected_value(pi, mu, True) / TICK - 1e-6) * TICK
    return bid, ask


def scenario(**params):
    return mktsim.build_scenario("glosten_milgrom", **params)


# ---- first quotes --------------------------------------------------------------------------
@pytest.mark.parametrize("mu", [0.1, 0.25, 0.3, 0.5, 0.8])
def test_first_spread_is_mu_times_the_value_range(mu):
    run = mktsim.simulate(scenario(mu=mu, until=1e-6), seed=0)
    first = run.frame("quotes").iloc[0]
    # at pi = 1/2: E[V | buy] - E[V | sell] = (V_H - V_L) [(1 + mu) - (1 - mu)] / 2
    assert run.summary["first_spread"] == pytest.approx(mu * (V_H - V_L), abs=1e-9)
    assert (first["bid"], first["ask"]) == pytest.approx(tick_quotes(0.5, mu), abs=1e-9)
    assert first["belief"] == 0.5 and first["trades"] == 0


@pytest.mark.parametrize(("prior", "mu"), [(0.2, 0.3), (0.7, 0.45), (0.9, 0.1)])
def test_first_quotes_at_other_priors(prior, mu):
    run = mktsim.simulate(scenario(mu=mu, prior=prior, until=1e-6), seed=0)
    first = run.frame("quotes").iloc[0]
    assert (first["bid"], first["ask"]) == pytest.approx(tick_quotes(prior, mu), abs=1e-9)


# ---- a scripted sequence of trades ---------------------------------------------------------
def scripted_market(mu: float):
    """The scenario with both trader populations driven through handles."""
    sc = scenario(mu=mu, until=1e-6)
    pops = [
        p
        if p.behaviour == "gm_dealer"
        else attrs.evolve(p, behaviour="external", behaviour_options={})
        for p in sc.populations
    ]
    run = mktsim.simulate(attrs.evolve(sc, populations=pops), seed=0)
    return run.mechanism


@pytest.mark.parametrize("mu", [0.3, 0.6])
def test_quotes_after_a_sequence_equal_bayes(mu):
    market = scripted_market(mu)
    trader = market.handle(5)  # an informed agent acting by hand
    pi = 0.5
    for buy in [True, True, False, True, False, False, False, True, True, True, True]:
        bid, ask = tick_quotes(pi, mu)
        r = trader.market_order("asset", "buy" if buy else "sell", 1.0)
        assert r.status == "filled" and r.filled == 1.0
        # it traded at the quote the dealer had posted for this belief
        assert abs(r.cash) == pytest.approx(ask if buy else bid, abs=1e-9)
        pi = posterior(pi, mu, buy)
        q = market.quote().goods["asset"]
        assert (q.best_bid, q.best_ask) == pytest.approx(tick_quotes(pi, mu), abs=1e-9)


# ---- a random run, replayed ----------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_every_trade_of_a_run_is_at_the_bayesian_quote(seed):
    mu = 0.3
    run = mktsim.simulate(scenario(mu=mu, until=60.0), seed=seed)
    dealer = run.trades[run.trades["agent"] == 0].sort_values("trade_id")
    assert len(dealer) > 20
    pi = 0.5
    for quantity, price in zip(dealer["quantity"], dealer["price"], strict=True):
        buy = quantity < 0  # the dealer gave the asset: a buyer arrived
        bid, ask = tick_quotes(pi, mu)
        assert price == pytest.approx(ask if buy else bid, abs=1e-9)
        pi = posterior(pi, mu, buy)
    s = run.summary
    assert s["dealer_trades"] == len(dealer)
    assert s["final_belief"] == pytest.approx(pi, rel=1e-9, abs=1e-12)
    assert (s["final_bid"], s["final_ask"]) == pytest.approx(tick_quotes(pi, mu), abs=1e-9)


def test_informed_trade_only_on_the_right_side_of_the_value():
    run = mktsim.simulate(scenario(until=60.0), seed=3)
    v = run.summary["true_value"]
    t = run.trades
    informed = t[(t["agent"] >= 1) & (t["agent"] <= 10)]
    assert len(informed)
    # an informed buyer pays below V, an informed seller gets above it
    assert ((informed["quantity"] > 0) == (informed["price"] < v)).all()


# ---- convergence ---------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["high", "low"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quotes_converge_to_the_true_value(value, seed):
    mu = 0.3
    run = mktsim.simulate(scenario(mu=mu, value=value, until=100.0), seed=seed)
    v = V_H if value == "high" else V_L
    assert run.summary["true_value"] == v
    q = run.frame("quotes")
    err = np.maximum((q["bid"] - v).abs(), (q["ask"] - v).abs()).to_numpy()
    # at pi = 1/2 the farther quote is (V_H - V_L)(1 + mu)/2 from V
    assert err[0] == pytest.approx((V_H - V_L) * (1 + mu) / 2, abs=TICK)
    # ~80 trades: the log-odds drift mu ln((1+mu)/(1-mu)) = 0.19 per trade puts the belief past
    # 0.998 after ~35 trades, quotes then within 20 (1 - 0.996) = 0.08 of V: the median error
    # over the second half of the postings is below 1% of the value range
    assert np.median(err[len(err) // 2 :]) <= 0.01 * (V_H - V_L)
    belief = run.summary["final_belief"]
    assert belief > 0.99 if value == "high" else belief < 0.01


# ---- zero expected profit ------------------------------------------------------------------
def test_dealer_breaks_even_on_average_and_loses_to_the_informed_what_noise_pays():
    n = 20
    rows = []
    for seed in range(n):
        run = mktsim.simulate(scenario(until=100.0), seed=seed, record="summary")
        s = run.summary
        assert s["conservation_ok"]
        total = s["dealer_profit"] + s["informed_profit"] + s["noise_profit"]
        assert total == pytest.approx(0.0, abs=1e-6)  # profits only move between agents
        rows.append((s["dealer_profit"], s["informed_profit"], s["dealer_trades"]))
    dealer, informed, trades = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    se = dealer.std(ddof=1) / math.sqrt(n)
    # E[dealer profit] = 0 (each quote is E[V | the trade it gets]); 3 standard errors, plus the
    # tick: rounding the bid down and the ask up moves each price by less than a tick
    assert abs(dealer.mean()) <= 3 * se + TICK * trades.mean()
    # the informed gain every trade (they trade only on the right side of V); the dealer's
    # confidence interval lies well inside that gain, so the noise traders pay for it
    assert (informed > 0).all()
    assert abs(dealer.mean()) + 3 * se < informed.mean()


def test_profits_match_the_trades_valued_at_the_true_value():
    run = mktsim.simulate(scenario(until=50.0), seed=4)
    v = run.summary["true_value"]
    t = run.trades
    # value received less money paid, per agent, summed by population
    gain = (t["quantity"] * v - t["cash"]).groupby(t["agent"]).sum()
    by_pop = {
        "dealer": gain.get(0, 0.0),
        "informed": gain[(gain.index >= 1) & (gain.index <= 10)].sum(),
        "noise": gain[gain.index > 10].sum(),
    }
    for role, expected in by_pop.items():
        assert run.summary[f"{role}_profit"] == pytest.approx(expected, abs=1e-6)


# ---- refusals ------------------------------------------------------------------------------
@pytest.mark.parametrize("mechanism", ["walrasian", "lmsr", "cpmm"])
def test_other_mechanisms_refuse_in_one_line(mechanism):
    with pytest.raises(MktsimError) as info:
        mktsim.simulate(scenario(), mechanism, seed=0, until=5.0)
    assert str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"mu": 1.0}, "mu"),
        ({"mu": 0.0}, "mu"),
        ({"v_low": 120.0}, "v_low"),
        ({"prior": 1.0}, "prior"),
        ({"value": "middle"}, "value"),
        ({"quote_size": 1.5}, "quote_size"),
    ],
)
def test_bad_parameters_are_named(params, name):
    with pytest.raises(InvalidParameter, match=name):
        scenario(**params)


def test_dealer_must_be_one_agent():
    sc = scenario(until=1.0)
    dealer = sc.populations[0]
    two = attrs.evolve(dealer, endowment=np.vstack([dealer.endowment] * 2))
    with pytest.raises(InvalidParameter, match="one agent"):
        mktsim.simulate(attrs.evolve(sc, populations=[two, *sc.populations[1:]]), seed=0)


def test_same_seed_same_run():
    a = mktsim.simulate(scenario(until=30.0), seed=7)
    b = mktsim.simulate(scenario(until=30.0), seed=7)
    assert a.frame("quotes").equals(b.frame("quotes"))
    assert a.summary["true_value"] == b.summary["true_value"]
