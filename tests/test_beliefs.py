"""Belief traders, the prediction-market benchmark and the traders' optimal trades, against
independent computations (finite differences, scipy optimisers, textbook Bayes)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, special

import mktsim
from mktsim.beliefs import BeliefTraders, competitive_prices, posterior, prediction_market
from mktsim.equilibrium import equilibrium
from mktsim.errors import InvalidParameter, UnknownName
from mktsim.margins import lmsr_plan, pool_plan

# --- independent references --------------------------------------------------------------------


def naive_expected_utility(pi, money, shares, risk, a=1.0):
    """Σ_s π_s u(money + shares_s), written out directly."""
    w = money + np.asarray(shares, dtype=float)
    if risk == "log":
        u = np.log(w)
    elif risk == "cara":
        u = -np.exp(-a * w)
    else:
        u = w
    return float(np.sum(np.asarray(pi) * u))


def naive_cost(q, b):
    return b * special.logsumexp(np.asarray(q, dtype=float) / b)


def probabilities(k):
    return st.lists(st.floats(0.05, 1.0), min_size=k, max_size=k).map(
        lambda v: np.array(v) / np.sum(v)
    )


# --- the population ------------------------------------------------------------------------------


def test_population_validates_its_fields():
    with pytest.raises(InvalidParameter, match=r"beliefs\[0\] must sum to 1"):
        BeliefTraders.of("t", [[0.5, 0.6]], 1.0)
    with pytest.raises(InvalidParameter, match="endowment has shape"):
        BeliefTraders("t", [[0.5, 0.5]], [[1.0, 0.0]])
    with pytest.raises(UnknownName, match="risk attitude"):
        BeliefTraders.of("t", [[0.5, 0.5]], 1.0, risk="crra")
    with pytest.raises(InvalidParameter, match="risk_aversion"):
        BeliefTraders.of("t", [[0.5, 0.5]], 1.0, risk="cara", risk_aversion=-1.0)
    pop = BeliefTraders.of("t", [[0.3, 0.7], [0.6, 0.4]], [2.0, 3.0], complete_sets=1.0)
    assert pop.size == 2 and pop.kind == "belief_traders" and pop.n_outcomes == 2
    np.testing.assert_array_equal(pop.endowment, [[2.0, 1.0, 1.0], [3.0, 1.0, 1.0]])
    assert isinstance(pop, mktsim.population.Population)


def test_from_frame_reads_beliefs_money_and_shares():
    frame = pd.DataFrame(
        {
            "belief_yes": [0.2, 0.9],
            "belief_no": [0.8, 0.1],
            "money": [5.0, 7.0],
            "shares_no": [1, 2],
        }
    )
    pop = BeliefTraders.from_frame("t", frame, ["yes", "no"])
    np.testing.assert_array_equal(pop.endowment, [[5.0, 0.0, 1.0], [7.0, 0.0, 2.0]])
    with pytest.raises(InvalidParameter, match="missing columns"):
        BeliefTraders.from_frame("t", frame.drop(columns="money"), ["yes", "no"])


@settings(max_examples=40)
@given(
    st.integers(2, 4).flatmap(lambda k: st.tuples(probabilities(k), st.just(k))),
    st.floats(0.5, 20.0),
    st.sampled_from(["log", "cara", "neutral"]),
    st.floats(0.1, 2.0),
    st.data(),
)
def test_reservation_prices_are_marginal_rates_of_substitution(pk, money, risk, a, data):
    """r_s = (∂EU/∂shares_s) / (∂EU/∂money), by central finite differences."""
    pi, k = pk
    shares = np.array(data.draw(st.lists(st.floats(0.0, 5.0), min_size=k, max_size=k)))
    pop = BeliefTraders.of("t", pi[None, :], money, risk=risk, risk_aversion=a)
    holdings = np.concatenate([[money], shares])[None, :]
    r = pop.reservation_prices(holdings)[0]
    h = 1e-6
    eu = lambda m, s: naive_expected_utility(pi, m, s, risk, a)  # noqa: E731
    d_money = (eu(money + h, shares) - eu(money - h, shares)) / (2 * h)
    for s in range(k):
        up, down = shares.copy(), shares.copy()
        up[s] += h
        down[s] -= h
        d_share = (eu(money, up) - eu(money, down)) / (2 * h)
        assert r[s] == pytest.approx(d_share / d_money, rel=1e-5, abs=1e-9)
    assert r.sum() == pytest.approx(1.0)


# --- the competitive benchmark ------------------------------------------------------------------


def test_competitive_price_with_complete_sets_is_the_wealth_weighted_mean_belief(rng):
    n, k = 40, 3
    beliefs = rng.dirichlet(np.ones(k), size=n)
    money = rng.lognormal(1.0, 1.0, n)
    sets = rng.uniform(0, 2, n)
    endowment = np.column_stack([money, np.repeat(sets[:, None], k, axis=1)])
    wealth = money + sets  # a complete set is worth 1 when prices sum to 1
    expected = (wealth[:, None] * beliefs).sum(axis=0) / wealth.sum()
    np.testing.assert_allclose(competitive_prices(beliefs, endowment), expected, rtol=1e-12)


def test_competitive_price_clears_every_state_with_unequal_share_supplies(rng):
    """Kelly (log-utility) demand for state wealth π_s W / p_s, summed, equals the supply of
    wealth in each state, M + S_s."""
    n, k = 25, 3
    beliefs = rng.dirichlet(np.ones(k), size=n)
    endowment = np.column_stack([rng.uniform(1, 5, n), rng.uniform(0, 2, (n, k))])
    p = competitive_prices(beliefs, endowment)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    wealth = endowment[:, 0] + endowment[:, 1:] @ p
    demand = (beliefs * wealth[:, None] / p[None, :]).sum(axis=0)
    supply = endowment[:, 0].sum() + endowment[:, 1:].sum(axis=0)
    np.testing.assert_allclose(demand, supply, rtol=1e-10)


def test_prediction_market_reference_and_refusals():
    traders = BeliefTraders.of("t", [[0.8, 0.2], [0.4, 0.6]], [3.0, 1.0], complete_sets=1.0)
    noise = BeliefTraders.of("n", [[0.5, 0.5]], 50.0, complete_sets=1.0, behaviour="noise")
    sc = prediction_market([traders, noise], [0.7, 0.3], b=5.0, until=10.0)
    assert sc.goods.names == ["money", "yes", "no"] and sc.mechanism == "lmsr"
    eq = equilibrium(sc)
    # wealth 4 and 2 (money + one complete set); noise traders are not in the benchmark
    assert eq.status == "unique"
    assert eq.prices["yes"] == pytest.approx((4 * 0.8 + 2 * 0.4) / 6)
    assert eq.prices["money"] == 1.0
    assert eq.extra["true_probabilities"] == pytest.approx({"yes": 0.7, "no": 0.3})
    assert eq.residual < 1e-12
    bare = BeliefTraders.of("t", [[0.5, 0.5]], 1.0)
    with pytest.raises(InvalidParameter, match="complete sets"):
        prediction_market([bare], [0.5, 0.5])
    with pytest.raises(InvalidParameter, match="sum to 1"):
        prediction_market([traders], [0.7, 0.7])


def test_the_auctioneer_refuses_belief_traders_by_name():
    """Money and a complete set are perfect substitutes, so there is no demand function."""
    sc = mktsim.build_scenario("prediction_market", n_traders=3, n_noise=0, seed=0)
    with pytest.raises(InvalidParameter, match="no demand at posted prices"):
        mktsim.simulate(sc, "walrasian", until=5)


def test_scenario_beliefs_average_to_the_truth():
    sc = mktsim.build_scenario("prediction_market", n_traders=4000, n_noise=0, seed=5)
    beliefs = sc.populations[0].beliefs[:, 0]
    # Dirichlet(κθ) has mean θ and variance θ(1−θ)/(κ+1): the sample mean is within 4 SE
    se = math.sqrt(0.7 * 0.3 / 21 / beliefs.size)
    assert abs(beliefs.mean() - 0.7) < 4 * se
    again = mktsim.build_scenario("prediction_market", n_traders=4001, n_noise=0, seed=5)
    np.testing.assert_array_equal(again.populations[0].beliefs[:4000, 0], beliefs)


def test_posterior_is_bayes_rule():
    prior = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    post = posterior(prior, np.array([1, 0]), 0.7)
    # P(signal j | outcome s) = 0.7 if j == s else 0.15
    for i, sig in enumerate([1, 0]):
        like = np.where(np.arange(3) == sig, 0.7, 0.15)
        np.testing.assert_allclose(post[i], prior[i] * like / np.sum(prior[i] * like))
    np.testing.assert_array_equal(posterior(prior, np.array([2, 0]), 1.0)[1], [1.0, 0.0, 0.0])


# --- the belief trader's plan against an LMSR maker ---------------------------------------------


def _best_single_outcome_trade(q, b, pi, money, shares, risk, a):
    """Brute force: for each outcome maximise expected utility of a trade in it with scipy."""
    best = (naive_expected_utility(pi, money, shares, risk, a), None, 0.0)
    for i in range(len(q)):

        def eu(s, i=i):
            dq = np.zeros(len(q))
            dq[i] = s
            c = naive_cost(q + dq, b) - naive_cost(q, b)
            after = shares + dq
            if money - c < 0 or (after < 0).any():
                return -np.inf
            return naive_expected_utility(pi, money - c, after, risk, a)

        # the most money buys: C(q + s e_i) − C(q) = money, solved with brentq
        hi = optimize.brentq(
            lambda s, i=i: naive_cost(q + s * np.eye(len(q))[i], b) - naive_cost(q, b) - money,
            0.0,
            money / 1e-9 + 10 * b,
        )
        res = optimize.minimize_scalar(
            lambda s: -eu(s),
            bounds=(-shares[i], hi * (1 - 1e-12)),
            method="bounded",
            options={"xatol": 1e-10},
        )
        if -res.fun > best[0]:
            best = (-res.fun, i, res.x)
    return best


@settings(max_examples=30)
@given(
    probabilities(3),
    st.lists(st.floats(-15.0, 15.0), min_size=3, max_size=3),
    st.floats(1.0, 20.0),
    st.floats(0.5, 20.0),
    st.lists(st.floats(0.0, 3.0), min_size=3, max_size=3),
    st.sampled_from(["log", "cara", "neutral"]),
)
def test_lmsr_plan_maximises_expected_utility(pi, q, b, money, shares, risk):
    q, shares, a = np.array(q), np.array(shares), 0.3
    plan = lmsr_plan(q, b, pi, money, shares, risk, a, tol=1e-9)
    before = naive_expected_utility(pi, money, shares, risk, a)
    best_value, _, _ = _best_single_outcome_trade(q, b, pi, money, shares, risk, a)
    if plan is None:
        assert best_value <= before + 1e-9 * abs(before) + 1e-12
        return
    dq = np.zeros(3)
    dq[plan.outcome] = plan.shares
    c = naive_cost(q + dq, b) - naive_cost(q, b)
    assert c <= money * (1 + 1e-9) + 1e-12 and (shares + dq >= -1e-9).all()
    value = naive_expected_utility(pi, max(money - c, 0.0), shares + dq, risk, a)
    assert value >= before - 1e-12  # voluntary
    # The plan trades the best outcome: single-outcome brute force cannot do noticeably better.
    assert value >= best_value - 1e-7 * max(1.0, abs(best_value))


def test_lmsr_plan_stops_where_the_makers_price_equals_the_reservation_price():
    q, b, pi = np.array([0.0, 0.0]), 10.0, np.array([0.8, 0.2])
    plan = lmsr_plan(q, b, pi, 20.0, np.zeros(2), "log", tol=1e-9)
    assert plan is not None and plan.outcome == 0 and not plan.whole_budget
    s = plan.shares
    after = q + np.array([s, 0.0])
    c = naive_cost(after, b) - naive_cost(q, b)
    p_after = special.softmax(after / b)
    pop = BeliefTraders.of("t", pi[None, :], 20.0 - c)
    r_after = pop.reservation_prices(np.array([[20.0 - c, s, 0.0]]))[0]
    np.testing.assert_allclose(p_after, r_after, rtol=1e-8)


def test_an_informed_trader_certain_of_the_outcome_spends_its_budget():
    plan = lmsr_plan(np.zeros(2), 5.0, np.array([0.0, 1.0]), 3.0, np.zeros(2), "log")
    assert plan is not None and plan.outcome == 1 and plan.whole_budget


# --- the consumer's plan against a pool -----------------------------------------------------


@settings(max_examples=30)
@given(
    probabilities(2),
    st.floats(0.1, 5.0),
    st.floats(0.1, 5.0),
    st.floats(0.5, 50.0),
    st.floats(0.2, 5.0),
    st.sampled_from([0.0, 0.003, 0.05]),
)
def test_pool_plan_maximises_cobb_douglas_utility_along_the_curve(alpha, m, x0, depth, p0, fee):
    h = np.array([m, x0])
    X, Y = depth, depth * p0
    g = 1 - fee

    def marginal(z):
        with np.errstate(divide="ignore", invalid="ignore"):
            return alpha * np.prod(z**alpha) / z

    u = lambda z: float(np.prod(np.maximum(z, 0) ** alpha))  # noqa: E731
    plan = pool_plan(marginal, h, 0, {1: (X, Y)}, fee, tol=1e-9)

    def after(side, d):
        if side == "buy":
            return h + np.array([-d, X * g * d / (Y + g * d)])
        return h + np.array([Y * g * d / (X + g * d), -d])

    best = u(h)
    for side, top in (("buy", m), ("sell", x0)):
        res = optimize.minimize_scalar(
            lambda d, side=side: -u(after(side, d)),
            bounds=(0, top),
            method="bounded",
            options={"xatol": 1e-12},
        )
        best = max(best, -res.fun)
    if plan is None:
        assert best <= u(h) * (1 + 1e-8)
        return
    got = u(after(plan.side, plan.amount_in))
    assert got >= u(h)
    assert got == pytest.approx(best, rel=1e-8)
