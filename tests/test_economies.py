"""Benchmark families: reproducible draws, economies as documented, and the Scarf-Hirota
stability condition against continuous-time tatonnement integrated independently."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import mktsim
from mktsim import economies
from mktsim.equilibrium import aggregate_excess_demand


@pytest.mark.parametrize("family", sorted(economies.FAMILIES))
def test_families_are_reproducible_and_prefix_stable(family):
    make = economies.FAMILIES[family]
    a, b, other = make(10, seed=4), make(3, seed=4), make(10, seed=5)
    for x, y in zip(a[:3], b, strict=True):
        assert x.name == y.name and x.params == y.params
        np.testing.assert_array_equal(x.endowments(), y.endowments())
    assert not np.array_equal(a[9].endowments(), other[9].endowments())
    assert all(isinstance(s, mktsim.Scenario) for s in a)
    assert [s.params["index"] for s in a] == list(range(10))


def test_scarf_hirota_economy_zero_is_scarfs():
    scarf = economies.scarf_hirota(1)[0]
    shipped = mktsim.build_scenario("scarf")
    # the same economy up to relabelling consumers: Scarf's consumer i owns good i and wants
    # goods i and i + 1, i.e. is the Scarf-Hirota consumer i - 1 (who wants all but good i - 1)
    rng = np.random.default_rng(0)
    for _ in range(5):
        p = rng.uniform(0.3, 3, 3)
        np.testing.assert_allclose(
            aggregate_excess_demand(scarf, p), aggregate_excess_demand(shipped, p), atol=1e-12
        )
    assert not economies.hirota_stable(economies.SCARF_ENDOWMENT)


def test_scarf_hirota_draws_clear_at_one_and_the_jacobian_is_exact():
    for s in economies.scarf_hirota(20, seed=3):
        a = np.array(s.params["endowment"])
        z = aggregate_excess_demand(s, np.ones(3))
        assert np.max(np.abs(z)) < 1e-9
        p = np.array([1.0, 1.7, 0.6])
        fd = np.column_stack(
            [
                (aggregate_excess_demand(s, p + h) - aggregate_excess_demand(s, p - h)) / 2e-6
                for h in 1e-6 * np.eye(3)
            ]
        )
        np.testing.assert_allclose(economies.hirota_jacobian(a, p), fd, atol=1e-6)


def test_hirota_condition_predicts_continuous_tatonnement():
    # dp/dt = z(p), prices not normalised, integrated by scipy from a start 20% away from
    # p* = 1 on the sphere |p| = |p0|; converged when the direction error fell twentyfold.
    draws = economies.scarf_hirota(40, seed=2)
    rng = np.random.default_rng(5)
    agree = stable = 0

    def hit_zero(t, y):
        return y.min() - 1e-6

    hit_zero.terminal = True  # type: ignore[attr-defined]

    def error(x):
        return np.linalg.norm(x / np.linalg.norm(x) * np.sqrt(3) - 1)

    for s in draws:
        a = np.array(s.params["endowment"])
        want = 1 - np.eye(3)  # consumer j wants every good but j

        def z(t, p, a=a, want=want):
            return (a.T @ p / (p.sum() - p)) @ want - a.sum(axis=1)

        u = rng.normal(size=3)
        u -= u.mean()
        p0 = 1 + 0.2 * np.sqrt(3) * u / np.linalg.norm(u)
        sol = solve_ivp(z, (0, 3000), p0, rtol=1e-7, atol=1e-10, events=hit_zero)
        converged = sol.status == 0 and error(sol.y[:, -1]) < 0.05 * error(p0)
        predicted = economies.hirota_stable(a)
        stable += predicted
        agree += converged == predicted
    assert 0.5 < stable / len(draws) < 0.95  # both kinds are drawn
    assert agree / len(draws) >= 0.95


def test_even_cyclic_scarf_has_a_continuum_of_equilibria():
    # n = 4: p = (1, t, 1, t) clears every market for any t (each consumer spends half its
    # wealth on each of its two goods, and every good is wanted by two consumers of equal wealth
    # ratio), so the solver reports several points, each verified
    s = economies.cyclic_scarf_economy(4)
    for t in (0.5, 2.0):
        assert np.max(np.abs(aggregate_excess_demand(s, np.array([1, t, 1, t])))) < 1e-12
    assert mktsim.equilibrium(s).status == "multiple"


def test_cyclic_scarf_economies_clear_at_one():
    for s in economies.cyclic_scarf(16, seed=1):
        g = len(s.goods)
        assert 3 <= g <= 10
        z = aggregate_excess_demand(s, np.ones(g))
        assert np.max(np.abs(z)) < 1e-9


def test_ces_complements_include_several_equilibria_and_gross_substitutes_are_unique():
    several = [
        s
        for s in economies.ces_complements(20, seed=0)
        if mktsim.equilibrium(s).status == "multiple"
    ]
    assert several
    for s in several:
        assert mktsim.equilibrium(s).index_sum == 1
    for s in economies.gross_substitutes(5, seed=0):
        assert mktsim.equilibrium(s).status == "unique"
        assert s.populations[0].utility.elasticity[0] > 1


def test_bad_counts_are_refused():
    with pytest.raises(mktsim.InvalidParameter, match="n"):
        economies.scarf_hirota(0)
    with pytest.raises(mktsim.InvalidParameter, match="n_goods"):
        economies.cyclic_scarf_economy(2)
