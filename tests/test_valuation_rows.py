"""One agent's valuation in scalar arithmetic (``ConsumerValuation.row``): the closed forms of
each family, and the vectorised form's verdict (finite and positive or not) wherever holdings
or parameters are zero."""

from __future__ import annotations

import math

import numpy as np
import pytest

import mktsim
from mktsim import CES, CobbDouglas, Consumers, Leontief, Linear, Scenario
from mktsim.shocks import PreferenceShock
from mktsim.valuation import ConsumerValuation


def _valuation(utility: object, x: np.ndarray, numeraire: int = 0) -> ConsumerValuation:
    return ConsumerValuation(Consumers("c", utility, x), numeraire=numeraire)


def _dot(x: np.ndarray, p: np.ndarray) -> float:
    return math.fsum(float(a) * float(b) for a, b in zip(x, p, strict=True))


def test_cobb_douglas_row_is_the_closed_form():
    rng = np.random.default_rng(11)
    shares = rng.dirichlet(np.ones(4), 30)
    x = rng.uniform(0.05, 8.0, (30, 4))
    p = np.array([1.0, 0.7, 2.5, 1.3])
    val = _valuation(CobbDouglas(shares), x)
    for i in range(30):
        row = val.row(i)
        w = _dot(x[i], p)
        for g in (1, 2, 3):
            mrs = (shares[i, g] / shares[i, 0]) * (x[i, 0] / x[i, g])
            assert row.mrs(x[i].tolist(), g) == pytest.approx(mrs, rel=1e-14)
            assert row.demand(x[i].tolist(), p.tolist(), g) == pytest.approx(
                shares[i, g] * w / p[g], rel=1e-14
            )


@pytest.mark.parametrize("sigma", [0.5, 2.0, 7.0])
def test_ces_row_is_the_closed_form(sigma):
    rng = np.random.default_rng(12)
    a = rng.dirichlet(np.ones(3), 20) * 2.0
    x = rng.uniform(0.1, 4.0, (20, 3))
    p = np.array([1.0, 1.6, 0.4])
    rho = (sigma - 1) / sigma
    val = _valuation(CES(a, sigma), x)
    for i in range(20):
        row = val.row(i)
        w = _dot(x[i], p)
        denom = math.fsum(a[i, k] ** sigma * p[k] ** (1 - sigma) for k in range(3))
        for g in (1, 2):
            # du/dx_j is proportional to a_j x_j^(rho - 1)
            mrs = (a[i, g] / a[i, 0]) * (x[i, g] / x[i, 0]) ** (rho - 1)
            assert row.mrs(x[i].tolist(), g) == pytest.approx(mrs, rel=1e-12)
            demand = w * a[i, g] ** sigma * p[g] ** -sigma / denom
            assert row.demand(x[i].tolist(), p.tolist(), g) == pytest.approx(demand, rel=1e-12)


def test_ces_rows_with_one_elasticity_per_agent():
    a = np.array([[0.2, 0.3, 0.5], [0.5, 0.25, 0.25]])
    x = np.array([[1.0, 2.0, 3.0], [2.0, 1.0, 0.5]])
    val = _valuation(CES(a, [0.5, 3.0]), x)
    for i, sigma in enumerate((0.5, 3.0)):
        rho = (sigma - 1) / sigma
        mrs = (a[i, 2] / a[i, 0]) * (x[i, 2] / x[i, 0]) ** (rho - 1)
        assert val.row(i).mrs(x[i].tolist(), 2) == pytest.approx(mrs, rel=1e-12)


def test_leontief_row():
    c = np.array([[1.0, 2.0, 4.0]])
    val = _valuation(Leontief(c), np.ones((1, 3)))
    row = val.row(0)
    # every good binding: marginal utilities 1/c_j (shared equally), MRS_g = c_0 / c_g
    assert row.mrs([3.0, 6.0, 12.0], 2) == pytest.approx(1.0 / 4.0, rel=1e-15)
    # good 1 in surplus: worth nothing at the margin
    assert row.mrs([3.0, 9.0, 12.0], 1) == 0.0
    p = [1.0, 0.5, 0.25]
    w = 3.0 + 9.0 * 0.5 + 12.0 * 0.25
    # x = c w / (p . c) with p . c = 3
    assert row.demand([3.0, 9.0, 12.0], p, 2) == pytest.approx(4.0 * w / 3.0, rel=1e-15)


def test_linear_row():
    v = np.array([[2.0, 3.0, 1.0]])
    row = _valuation(Linear(v), np.ones((1, 3))).row(0)
    assert row.mrs([1.0, 1.0, 1.0], 1) == 1.5
    x, p = [1.0, 2.0, 4.0], [1.0, 1.0, 1.0]
    # good 1 alone has the best value per unit of money: all wealth (7) goes to it
    assert row.demand(x, p, 1) == 7.0
    assert row.demand(x, p, 2) == 0.0
    # a tie between goods 0 and 1 (2/1 = 3/1.5) splits wealth equally
    p = [1.0, 1.5, 1.0]
    w = 1.0 + 3.0 + 4.0
    assert row.demand(x, p, 1) == pytest.approx(w / 2 / 1.5, rel=1e-15)


def _ok(m: float) -> bool:
    return bool(m > 0 and math.isfinite(m))


@pytest.mark.parametrize("family", ["cobb_douglas", "ces_low", "ces_high", "leontief", "linear"])
def test_rows_agree_with_the_vectorised_form_including_zeros(family):
    """Zero holdings and zero shares or weights: the row says an agent can price a good exactly
    when the vectorised form does, and at the same value (to the last digits its transcendental
    functions and dot products may round differently)."""
    rng = np.random.default_rng(13)
    n, g = 200, 4
    params = rng.dirichlet(np.ones(g), n)
    params[rng.random((n, g)) < 0.15] = 0.0
    params[params.sum(axis=1) == 0, 0] = 1.0
    x = rng.uniform(0.1, 3.0, (n, g))
    x[rng.random((n, g)) < 0.15] = 0.0
    if family == "cobb_douglas":
        params /= params.sum(axis=1, keepdims=True)
        utility: object = CobbDouglas(params)
    elif family == "ces_low":
        utility = CES(params, 0.4)
    elif family == "ces_high":
        utility = CES(params, 2.5)
    elif family == "leontief":
        utility = Leontief(params)
    else:
        utility = Linear(params)
    val = _valuation(utility, x)
    p = np.array([1.0, 0.8, 1.7, 0.3])
    with np.errstate(all="ignore"):
        whole, demand = val.mrs(x), val.demand(p, x)
    for i in range(n):
        row = val.row(i)
        for j in range(1, g):
            m = row.mrs(x[i].tolist(), j)
            assert _ok(m) == _ok(whole[i, j]), (i, j, m, whole[i, j])
            if _ok(m):
                assert m == pytest.approx(whole[i, j], rel=1e-12)
            d = row.demand(x[i].tolist(), p.tolist(), j)
            if math.isfinite(demand[i, j]):
                assert d == pytest.approx(demand[i, j], rel=1e-12, abs=1e-300)


def test_a_family_without_a_row_form_uses_the_vectorised_row():
    class Doubled:
        """Cobb-Douglas with good 1's marginal utility doubled (a family of its own)."""

        def __init__(self, shares: np.ndarray) -> None:
            self.inner = CobbDouglas(shares)
            self.n_agents, self.n_goods = self.inner.shares.shape

        def demand(self, prices, wealth):  # type: ignore[no-untyped-def]
            return self.inner.demand(prices, wealth)

        def utility(self, x):  # type: ignore[no-untyped-def]
            return self.inner.utility(x)

        def marginal_utility(self, x):  # type: ignore[no-untyped-def]
            return self.inner.marginal_utility(x) * np.array([1.0, 2.0, 1.0])

        def take(self, rows):  # type: ignore[no-untyped-def]
            return Doubled(self.inner.shares[rows])

    shares = np.array([[0.5, 0.25, 0.25]])
    x = np.array([[1.0, 1.0, 2.0]])
    row = _valuation(Doubled(shares), x).row(0)
    # twice the Cobb-Douglas MRS of good 1: (0.25 / 0.5) (1 / 1) * 2
    assert row.mrs([1.0, 1.0, 2.0], 1) == pytest.approx(1.0, rel=1e-15)
    # demand is the inner Cobb-Douglas demand: 0.25 * (1 + 1 + 2) / 1
    assert row.demand([1.0, 1.0, 2.0], [1.0, 1.0, 1.0], 1) == pytest.approx(1.0, rel=1e-15)


def test_a_preference_shock_is_seen_by_the_next_action():
    shares = np.array([[0.5, 0.3, 0.2], [0.2, 0.2, 0.6]])
    endowment = np.array([[2.0, 1.0, 4.0], [1.0, 3.0, 0.5]])
    weights = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
    scenario = Scenario(
        "two", ["money", "a", "b"], [Consumers("c", CobbDouglas(shares), endowment)]
    )
    shock = PreferenceShock(0.5, "c", CES(weights, 2.0))
    run = mktsim.simulate(scenario, "order_book", seed=0, until=1.0, shocks=[shock])
    limits = run.strategies["c"].limits
    rho = 0.5
    for i in range(2):
        x = limits.units(i)
        for j in (1, 2):
            expected = (weights[i, j] / weights[i, 0]) * (x[j] / x[0]) ** (rho - 1)
            assert limits.mrs(i, j) == pytest.approx(expected, rel=1e-12)
