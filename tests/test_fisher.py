"""Fisher markets: the Eisenberg-Gale prices against the textbook demand, and the auctioneer
against Eisenberg-Gale."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mktsim
from mktsim.errors import InvalidParameter
from mktsim.fisher import eisenberg_gale


def ces_demand(weights: np.ndarray, sigma: float, prices: np.ndarray, wealth: float) -> np.ndarray:
    """x_j = w a_j^s p_j^-s / sum_k a_k^s p_k^(1-s), written out (SCIENCE.md)."""
    num = weights**sigma * prices**-sigma
    return wealth * num / (weights**sigma * prices ** (1 - sigma)).sum()


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(1, 12),
    g=st.integers(1, 5),
    sigma=st.sampled_from([0.3, 0.5, 2.0, 4.0]),
    seed=st.integers(0, 10_000),
)
def test_eisenberg_gale_prices_clear_the_market_with_optimal_bundles(n, g, sigma, seed):
    rng = np.random.default_rng(seed)
    budgets = rng.uniform(0.5, 3.0, n)
    weights = rng.dirichlet(np.ones(g), n)
    supply = rng.uniform(0.5, 2.0, g)
    eq = eisenberg_gale(budgets, weights, supply, sigma)
    for i in range(n):  # each buyer gets its own demand at the prices...
        np.testing.assert_allclose(
            eq.allocation[i], ces_demand(weights[i], sigma, eq.prices, budgets[i]), rtol=1e-9
        )
    # ... and the goods are all sold, the budgets all spent
    np.testing.assert_allclose(eq.allocation.sum(axis=0), supply, rtol=1e-7)
    np.testing.assert_allclose(eq.allocation @ eq.prices, budgets, rtol=1e-9)


def test_cobb_douglas_buyers_spend_their_shares():
    budgets = np.array([1.0, 3.0])
    shares = np.array([[0.5, 0.5], [0.25, 0.75]])
    eq = eisenberg_gale(budgets, shares, [2.0, 1.0])
    # p_j s_j = sum_i a_ij B_i: p = (0.5 + 0.75, 0.5 + 2.25) / (2, 1)
    np.testing.assert_allclose(eq.prices, [0.625, 2.75])


@pytest.mark.parametrize("elasticity", [1, 0.5, 2.0, 5.0])
def test_the_auctioneer_finds_the_eisenberg_gale_prices(elasticity):
    s = mktsim.build_scenario("fisher", n_buyers=40, elasticity=elasticity, seed=3)
    buyers = s.populations[0]
    weights = buyers.utility.shares if elasticity == 1 else buyers.utility.weights
    ref = eisenberg_gale(
        buyers.endowment[:, 0], weights[:, 1:], [1.0] * 3, None if elasticity == 1 else elasticity
    )
    run = mktsim.simulate(s, "walrasian", seed=0)
    assert run.summary["converged"]
    simulated = [run.summary["final_prices"][g] for g in s.goods.names[1:]]
    np.testing.assert_allclose(simulated, ref.prices, rtol=1e-6)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([1.0], [[0.5, 0.5]], [1.0, -1.0]), "supply must be > 0"),
        (([1.0, 2.0], [[0.5, 0.5]], [1.0, 1.0]), "must be"),
        (([1.0], [[0.0, 0.0]], [1.0, 1.0]), "positive entry"),
        (([np.nan], [[0.5, 0.5]], [1.0, 1.0]), "budgets must be > 0"),
    ],
)
def test_bad_input_is_named(args, match):
    with pytest.raises(InvalidParameter, match=match):
        eisenberg_gale(*args)
    with pytest.raises(InvalidParameter, match="elasticity"):
        eisenberg_gale([1.0], [[1.0]], [1.0], -2.0)


@pytest.mark.parametrize("mechanism", ["order_book", "cpmm"])
def test_buyers_who_value_money_at_zero_are_refused_where_orders_are_priced_by_mrs(mechanism):
    # their marginal rate of substitution for money is infinite: no order could be priced, and
    # the run would trade nothing (book) or only the seller's dumped stock (pools)
    s = mktsim.build_scenario("fisher", n_buyers=5)
    with pytest.raises(InvalidParameter, match="values money at zero") as err:
        mktsim.simulate(s, mechanism, seed=0, until=5)
    assert "\n" not in str(err.value)


def test_a_run_whose_agents_sold_every_unit_to_the_pools_still_summarises():
    # the seller (who values only money) sells all its goods into the pools: the holdings
    # reached have no goods left, so there is no equilibrium of them to report (None, no error)
    s = mktsim.build_scenario("fisher", n_buyers=5)
    buyers = s.populations[0]
    noise = attrs.evolve(buyers, behaviour="passive")
    run = mktsim.simulate(attrs.evolve(s, populations=[noise, s.populations[1]]), "cpmm", seed=0)
    assert run.summary["conservation_ok"]
    assert run.summary["price_error_vs_holdings_equilibrium"] is None
