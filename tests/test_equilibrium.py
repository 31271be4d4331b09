"""Reference equilibria against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ces_excess_demand, cobb_douglas_prices
from scipy import optimize

import mktsim
from mktsim import CES, CobbDouglas, Consumers, Leontief, Linear, Scenario


def test_cobb_douglas_closed_form_matches_independent_solve():
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=300, n_goods=6, seed=3)
    pop = scenario.populations[0]
    eq = mktsim.equilibrium(scenario)
    expected = cobb_douglas_prices(pop.utility.shares, pop.endowment)
    assert eq.status == "unique" and eq.method == "closed_form"
    np.testing.assert_allclose(eq.price_vector, expected, rtol=1e-10)
    # the allocation clears every market
    np.testing.assert_allclose(eq.allocation.sum(axis=0), pop.endowment.sum(axis=0), rtol=1e-10)


def test_ces_equilibrium_matches_scipy_on_textbook_formula():
    scenario = mktsim.build_scenario("ces", n_agents=50, n_goods=4, elasticity=2.0, seed=1)
    pop = scenario.populations[0]
    weights, e = pop.utility.weights, pop.endowment

    def f(logp):
        p = np.concatenate([[1.0], np.exp(logp)])
        return ces_excess_demand(weights, 2.0, e, p)[1:]

    sol = optimize.fsolve(f, np.zeros(3), xtol=1e-13)
    expected = np.concatenate([[1.0], np.exp(sol)])
    eq = mktsim.equilibrium(scenario)
    assert eq.status == "unique"
    np.testing.assert_allclose(eq.price_vector, expected, rtol=1e-9)


def test_scarf_equilibrium_is_the_symmetric_point():
    eq = mktsim.equilibrium(mktsim.build_scenario("scarf"))
    np.testing.assert_allclose(eq.price_vector, [1.0, 1.0, 1.0], rtol=1e-9)
    assert eq.status == "found"  # Leontief is not gross substitutes: uniqueness not claimed


def test_linear_economy_is_reported_honestly():
    # Two linear traders; root-finding on a discontinuous excess demand either finds an
    # equilibrium that truly clears or says it found none.
    goods = ["money", "apple"]
    pops = [
        Consumers("a", Linear([[1.0, 2.0]]), [[1.0, 0.0]]),
        Consumers("b", Linear([[1.0, 0.5]]), [[0.0, 1.0]]),
    ]
    eq = mktsim.equilibrium(Scenario("linear", goods, pops))
    assert eq.status in ("none", "found", "multiple")
    if eq.status == "none":
        assert eq.prices is None and "no equilibrium" in eq.message
    else:
        assert eq.residual < 1e-8


def test_decomposable_cobb_douglas_economy_has_no_unique_price():
    # two islands that never trade with each other: relative price across islands is free
    shares = np.array(
        [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.5]]
    )
    e = np.array([[0, 1.0, 0, 0], [1.0, 0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    scenario = Scenario("islands", ["m", "a", "b", "c"], [Consumers("c", CobbDouglas(shares), e)])
    eq = mktsim.equilibrium(scenario)
    assert eq.status == "multiple" and eq.prices is None


def test_equilibrium_prices_alone_match_independent_references_and_refuse_the_rest():
    # Cobb-Douglas (closed form, no stability analysis): the independent linear solve
    cd = mktsim.build_scenario("cobb_douglas", n_agents=40, n_goods=4, seed=2)
    pop = cd.populations[0]
    prices = mktsim.equilibrium_prices(cd)
    expected = cobb_douglas_prices(pop.utility.shares, pop.endowment)
    np.testing.assert_allclose(list(prices.values()), expected, rtol=1e-10)
    assert prices == mktsim.equilibrium(cd).prices
    # CES (a search): scipy's root of the textbook excess demand
    ces = mktsim.build_scenario("ces", n_agents=30, n_goods=3, elasticity=2.0, seed=4)
    weights, e = ces.populations[0].utility.weights, ces.populations[0].endowment

    def excess(logp):
        p = np.concatenate([[1.0], np.exp(logp)])
        return ces_excess_demand(weights, 2.0, e, p)[1:]

    root = optimize.fsolve(excess, np.zeros(2), xtol=1e-13)
    prices = mktsim.equilibrium_prices(ces)
    np.testing.assert_allclose(list(prices.values())[1:], np.exp(root), rtol=1e-9)
    # no unique price: the islands economy (decomposable) and three equilibria
    shares = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]])
    e = np.array([[0, 1.0, 0, 0], [1.0, 0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    islands = Scenario("islands", ["m", "a", "b", "c"], [Consumers("c", CobbDouglas(shares), e)])
    assert mktsim.equilibrium_prices(islands) is None
    three = Scenario("three", ["m", "a"], [Consumers("c", CES(HOME, 0.2), OWN)])
    assert mktsim.equilibrium_prices(three) is None


def test_two_good_ces_below_one_is_unique_by_an_exhaustive_scan():
    weights, e = np.array([[0.5, 0.5], [0.3, 0.7]]), np.array([[1.0, 0.0], [0.0, 1.0]])
    scenario = Scenario("complements", ["m", "a"], [Consumers("c", CES(weights, 0.5), e)])
    eq = mktsim.equilibrium(scenario)
    # an independent scan of the one relative price finds exactly one sign change
    grid = np.exp(np.linspace(-20, 20, 8001))
    z = np.array([ces_excess_demand(weights, 0.5, e, np.array([1.0, q]))[1] for q in grid])
    assert np.count_nonzero(np.sign(z[:-1]) != np.sign(z[1:])) == 1
    assert eq.status == "unique" and eq.residual < 1e-9


def test_ces_below_one_with_three_goods_is_found_not_claimed_unique():
    eq = mktsim.equilibrium(mktsim.build_scenario("ces", n_agents=30, elasticity=0.5, seed=2))
    assert eq.status in ("found", "multiple") and eq.residual < 1e-9


# Two traders with home bias and strong complementarity: each owns one good and puts weight 0.95
# on it, elasticity 0.2. Symmetric, so p = 1 clears; two more equilibria lie on either side.
HOME = np.array([[0.95, 0.05], [0.05, 0.95]])
OWN = np.eye(2)


def _three_equilibria_independently() -> list[float]:
    def z(q: float) -> float:
        return float(ces_excess_demand(HOME, 0.2, OWN, np.array([1.0, q]))[1])

    grid = np.exp(np.linspace(-6, 6, 6001))
    roots = []
    values = [z(q) for q in grid]
    for a, b, za, zb in zip(grid[:-1], grid[1:], values[:-1], values[1:], strict=True):
        if za == 0:
            roots.append(a)
        elif za * zb < 0:
            roots.append(optimize.brentq(z, a, b, xtol=1e-15, rtol=1e-15))
    return roots


def test_home_biased_complements_have_three_equilibria_all_found_and_classified():
    expected = _three_equilibria_independently()
    assert len(expected) == 3
    scenario = Scenario("three", ["m", "a"], [Consumers("c", CES(HOME, 0.2), OWN)])
    eq = mktsim.equilibrium(scenario)
    assert eq.status == "multiple" and len(eq.equilibria) == 3
    found = sorted(q.prices["a"] for q in eq.equilibria)
    np.testing.assert_allclose(found, expected, rtol=1e-9)
    by_price = sorted(eq.equilibria, key=lambda q: q.prices["a"])
    assert [q.stability for q in by_price] == ["stable", "unstable", "stable"]
    assert [q.index for q in by_price] == [1, -1, 1] and eq.index_sum == 1
    # the middle one is unstable: dz/dp > 0 there, checked by a difference of the formula
    mid = expected[1]
    slope = (
        ces_excess_demand(HOME, 0.2, OWN, np.array([1.0, mid * 1.001]))[1]
        - ces_excess_demand(HOME, 0.2, OWN, np.array([1.0, mid * 0.999]))[1]
    )
    assert slope > 0
    # every reported point clears every market, the numeraire's included
    for q in eq.equilibria:
        z = ces_excess_demand(HOME, 0.2, OWN, q.price_vector)
        assert np.max(np.abs(z)) < 1e-9
    assert {tuple(a.items()) for a in eq.alternatives} == {
        tuple(q.prices.items()) for q in eq.equilibria[1:]
    }


def test_ces_elasticity_point_three_reports_no_spurious_equilibrium():
    scenario = mktsim.build_scenario("ces", elasticity=0.3)
    eq = mktsim.equilibrium(scenario)
    pop = scenario.populations[0]
    assert eq.equilibria
    for q in eq.equilibria:
        assert np.all(q.price_vector < 1e3) and np.all(q.price_vector > 1e-3)
        z = ces_excess_demand(pop.utility.weights, 0.3, pop.endowment, q.price_vector)
        assert np.max(np.abs(z) / pop.endowment.sum(axis=0)) < 1e-8


def test_leontief_two_by_two_complements_are_unique():
    # u_a = min(x0, x1 / 2), u_b = min(x0 / 2, x1); a owns good 0, b owns good 1.
    # Demand for good 1: 2 w_a / (1 + 2p) + w_b / (2 + p) with w_a = 1, w_b = p; setting it to 1
    # gives 2(2 + p) + p(1 + 2p) = (1 + 2p)(2 + p), i.e. 4 + 3p + 2p^2 = 2 + 5p + 2p^2, p = 1.
    scenario = Scenario(
        "leontief2",
        ["m", "a"],
        [Consumers("c", Leontief([[1.0, 2.0], [2.0, 1.0]]), [[1.0, 0.0], [0.0, 1.0]])],
    )
    eq = mktsim.equilibrium(scenario)
    assert eq.status == "unique" and len(eq.equilibria) == 1
    assert eq.prices["a"] == pytest.approx(1.0, rel=1e-10)
    assert eq.equilibria[0].stability == "stable" and eq.index_sum == 1


def test_scarf_equilibrium_is_marginal_with_imaginary_eigenvalues():
    eq = mktsim.equilibrium(mktsim.build_scenario("scarf"))
    (point,) = eq.equilibria
    assert point.stability == "marginal" and point.index == 1
    # z_1 = p1 / (p1 + p2) + p0 / (p0 + p1) - 1 and z_2 = p2 / (p2 + p0) + p1 / (p1 + p2) - 1,
    # so at p = 1 with good 0 fixed J = [[0, -1/4], [1/4, 0]]: eigenvalues +-i/4
    np.testing.assert_allclose(sorted(point.eigenvalues.imag), [-0.25, 0.25], atol=1e-6)
    np.testing.assert_allclose(point.eigenvalues.real, 0.0, atol=1e-6)


@pytest.mark.parametrize("n_goods", [2, 5, 10])
def test_walras_law_holds_at_any_prices(n_goods, rng):
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=40, n_goods=n_goods, seed=2)
    p = rng.uniform(0.2, 5, n_goods)
    z = mktsim.equilibrium  # noqa: F841  (module under test is the aggregate function below)
    from mktsim.equilibrium import aggregate_excess_demand

    assert abs(p @ aggregate_excess_demand(scenario, p)) < 1e-9 * n_goods * 40


SMALL = {"cobb_douglas": {"n_agents": 20}, "ces": {"n_agents": 20}, "default": {"n_agents": 50}}


@pytest.mark.parametrize("name", sorted(mktsim.list_scenarios()))
def test_price_error_is_a_number_for_every_scenario_the_auctioneer_runs(name):
    scenario = mktsim.build_scenario(name, **SMALL.get(name, {}))
    try:
        run = mktsim.simulate(scenario, "walrasian", seed=1, until=5.0)
    except mktsim.MktsimError:
        return  # refused before it starts (no Walrasian demand): nothing to compare
    assert isinstance(run.summary["price_error"], float)
    assert np.isfinite(run.summary["price_error"])
