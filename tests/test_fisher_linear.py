"""Linear Fisher markets: the exact Eisenberg-Gale reference against the textbook 2 x 2 answer
and the equilibrium conditions written out here, and proportional-response dynamics (a naive
loop here, and the auctioneer with proportional-response buyers) against the reference."""

from __future__ import annotations

import numpy as np
import pytest

import mktsim
from mktsim import Consumers, Scenario
from mktsim.errors import InvalidParameter
from mktsim.fisher import eisenberg_gale_linear
from mktsim.utility import CobbDouglas, Linear

U2 = np.array([[2.0, 1.0], [1.0, 2.0]])
B2 = np.array([3.0, 1.0])


def naive_proportional_response(values, budgets, supply, rounds):
    """Zhang's dynamics: b_ij <- B_i U_ij x_ij / u_i with x = b / p, p_j = sum_i b_ij / s_j."""
    bids = budgets[:, None] * values / values.sum(axis=1, keepdims=True)
    for _ in range(rounds):
        prices = bids.sum(axis=0) / supply
        gain = values * bids / prices
        bids = budgets[:, None] * gain / gain.sum(axis=1, keepdims=True)
    return bids.sum(axis=0) / supply


def assert_equilibrium(values, budgets, supply, eq):
    """The conditions of a linear Fisher equilibrium, checked one by one."""
    x, p = eq.allocation, eq.prices
    assert (x >= -1e-12).all() and (p > 0).all()
    np.testing.assert_allclose(x.sum(axis=0), supply, rtol=1e-8)  # every unit sold
    np.testing.assert_allclose(x @ p, budgets, rtol=1e-8)  # every budget spent
    bang = values / p
    best = bang.max(axis=1, keepdims=True)
    spent = x * p > 1e-9 * budgets[:, None]
    assert (bang >= np.broadcast_to(best, bang.shape) * (1 - 1e-10))[spent].all()


def linear_fisher(values, budgets, supply):
    n, g = np.shape(values)
    utilities = np.zeros((n, g + 1))
    utilities[:, 1:] = values
    money = np.zeros((n, g + 1))
    money[:, 0] = budgets
    stock = np.zeros((1, g + 1))
    stock[0, 1:] = supply
    taste = np.zeros((1, g + 1))
    taste[0, 0] = 1.0
    return Scenario(
        "linear_fisher",
        ["money", *(f"good{j + 1}" for j in range(g))],
        [
            Consumers("buyers", Linear(utilities), money, behaviour="proportional_response"),
            Consumers("seller", CobbDouglas(taste), stock),
        ],
        until=5000,
    )


def test_the_two_by_two_textbook_case():
    eq = eisenberg_gale_linear(B2, U2, [1.0, 1.0])
    np.testing.assert_allclose(eq.prices, [8 / 3, 4 / 3], rtol=0, atol=1e-9)
    # buyer 1 is indifferent (2 / (8/3) = 1 / (4/3)) and buys all of good 1; buyer 2 only good 2
    np.testing.assert_allclose(eq.allocation, [[1.0, 0.25], [0.0, 0.75]], atol=1e-9)
    naive = naive_proportional_response(U2, B2, np.ones(2), 200)
    np.testing.assert_allclose(naive, [8 / 3, 4 / 3], atol=1e-9)


def test_the_auctioneer_with_proportional_response_reaches_the_two_by_two_prices():
    run = mktsim.simulate(linear_fisher(U2, B2, [1.0, 1.0]), method="proportional_response")
    assert run.summary["converged"] and run.summary["conservation_ok"]
    final = run.summary["final_prices"]
    assert abs(final["good1"] - 8 / 3) < 1e-6 and abs(final["good2"] - 4 / 3) < 1e-6
    assert len(run.trades) > 0


@pytest.mark.parametrize("seed", range(12))
def test_random_markets_meet_the_conditions_and_proportional_response(seed):
    rng = np.random.default_rng(seed)
    n, g = int(rng.integers(2, 7)), int(rng.integers(2, 5))
    values = rng.uniform(0.1, 1.0, (n, g))
    budgets = rng.uniform(0.5, 2.0, n)
    supply = rng.uniform(0.5, 2.0, g)
    eq = eisenberg_gale_linear(budgets, values, supply)
    assert_equilibrium(values, budgets, supply, eq)
    naive = naive_proportional_response(values, budgets, supply, 20_000)
    np.testing.assert_allclose(eq.prices, naive, rtol=1e-6)


@pytest.mark.parametrize("seed", range(12))
def test_sparse_markets_meet_the_conditions(seed):
    # buyers who value only some goods: spending graphs with several components and ties
    rng = np.random.default_rng(100 + seed)
    n, g = int(rng.integers(1, 8)), int(rng.integers(1, 6))
    values = rng.uniform(0, 1, (n, g)) * (rng.uniform(size=(n, g)) < 0.5)
    values[np.arange(n), rng.integers(0, g, n)] += 0.5
    values[rng.integers(0, n, g), np.arange(g)] += 0.5
    budgets = rng.uniform(0.5, 2.0, n)
    supply = rng.uniform(0.5, 2.0, g)
    assert_equilibrium(values, budgets, supply, eisenberg_gale_linear(budgets, values, supply))


def test_the_linear_fisher_scenario_converges_to_its_reference():
    s = mktsim.build_scenario("fisher", n_buyers=15, n_goods=3, linear=True, seed=2)
    run = mktsim.simulate(s, record="summary")
    assert run.summary["equilibrium_status"] == "unique"
    assert run.summary["converged"] and run.summary["price_error"] < 1e-6
    buyers = s.populations[0]
    naive = naive_proportional_response(
        buyers.utility.values[:, 1:], buyers.endowment[:, 0], np.ones(3), 20_000
    )
    final = [run.summary["final_prices"][g] for g in s.goods.names[1:]]
    np.testing.assert_allclose(final, naive, rtol=1e-6)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([1.0], [[1.0, 1.0]], [1.0, -1.0]), "supply must be > 0"),
        (([1.0, 2.0], [[1.0, 1.0]], [1.0, 1.0]), "must be"),
        (([1.0], [[0.0, 1.0]], [1.0, 1.0]), "every row and every column"),
        (([1.0], [[-1.0, 1.0]], [1.0, 1.0]), "values must be >= 0"),
    ],
)
def test_bad_input_is_named(args, match):
    with pytest.raises(InvalidParameter, match=match):
        eisenberg_gale_linear(*args)
