"""Closed-form demands against numerical utility maximisation, and their textbook properties."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from mktsim import CES, CobbDouglas, InvalidParameter, Leontief, Linear


def numerical_demand(u, p: np.ndarray, w: float) -> np.ndarray:
    """Maximise u on the budget set with SLSQP (independent of the closed forms)."""
    g = p.size
    x0 = np.full(g, w / p.sum())
    res = optimize.minimize(
        lambda x: -u(np.maximum(x, 1e-12)),
        x0,
        constraints=[{"type": "eq", "fun": lambda x: p @ x - w}],
        bounds=[(1e-12, None)] * g,
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    return res.x


def test_cobb_douglas_demand_maximises_utility(rng):
    shares = rng.dirichlet(np.ones(4))
    p, w = rng.uniform(0.5, 2, 4), 3.0
    u = CobbDouglas(shares)
    closed = u.demand(p, np.array([w]))[0]
    numeric = numerical_demand(lambda x: np.sum(shares * np.log(x)), p, w)
    np.testing.assert_allclose(closed, numeric, rtol=1e-4)


@pytest.mark.parametrize("sigma", [0.5, 2.0, 4.0])
def test_ces_demand_maximises_utility(rng, sigma):
    a = rng.dirichlet(np.ones(3))
    p, w = rng.uniform(0.5, 2, 3), 2.0
    rho = (sigma - 1) / sigma
    closed = CES(a, sigma).demand(p, np.array([w]))[0]
    numeric = numerical_demand(lambda x: np.log(np.sum(a * x**rho)) / rho, p, w)
    np.testing.assert_allclose(closed, numeric, rtol=1e-4, atol=1e-6)


def test_leontief_and_linear_demand():
    p, w = np.array([1.0, 2.0, 4.0]), np.array([14.0])
    # Leontief min(x0/1, x1/2): x = c * w / (p.c) = (1, 2, 0) * 14 / 5
    np.testing.assert_allclose(Leontief([1.0, 2.0, 0.0]).demand(p, w)[0], [2.8, 5.6, 0.0])
    # Linear: best bang per buck is good 0 (3/1 > 4/2 > 1/4); ties split wealth equally
    np.testing.assert_allclose(Linear([3.0, 4.0, 1.0]).demand(p, w)[0], [14.0, 0.0, 0.0])
    np.testing.assert_allclose(Linear([2.0, 4.0, 0.0]).demand(p, w)[0], [7.0, 3.5, 0.0])


@pytest.mark.parametrize(
    "utility",
    [
        CobbDouglas(np.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])),
        CES(np.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]]), 2.0),
        Leontief(np.array([[1.0, 2.0, 0.5], [0.0, 1.0, 1.0]])),
        Linear(np.array([[1.0, 2.0, 0.5], [0.3, 1.0, 1.0]])),
    ],
)
def test_budget_exhausted_and_homogeneous_of_degree_zero(utility):
    p = np.array([1.0, 1.7, 0.6])
    w = np.array([2.0, 5.0])
    x = utility.demand(p, w)
    np.testing.assert_allclose(x @ p, w, rtol=1e-12)
    np.testing.assert_allclose(utility.demand(3 * p, 3 * w), x, rtol=1e-12)


def test_marginal_utility_matches_finite_differences(rng):
    x = rng.uniform(0.5, 2, (3, 4))
    for u in (CobbDouglas(rng.dirichlet(np.ones(4), 3)), CES(rng.dirichlet(np.ones(4), 3), 3.0)):
        grad = u.marginal_utility(x)
        h = 1e-6
        for j in range(4):
            e = np.zeros(4)
            e[j] = h
            fd = (u.utility(x + e) - u.utility(x - e)) / (2 * h)
            np.testing.assert_allclose(grad[:, j], fd, rtol=1e-5)


def test_cobb_douglas_with_one_good_has_marginal_utility_one_even_at_zero():
    # u(x) = x_0: du/dx_0 = 1 everywhere, du/dx_j = 0 for the goods it does not value
    u = CobbDouglas([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    for x in ([[0.0, 4.0, 0.0], [3.0, 0.0, 1.0]], [[2.0, 0.0, 5.0], [0.0, 7.0, 0.0]]):
        np.testing.assert_array_equal(
            u.marginal_utility(np.array(x)), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
        )


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: CobbDouglas([0.5, 0.6]), r"shares\[0\] must sum to 1"),
        (lambda: CobbDouglas([0.5, np.nan]), "must be finite"),
        (lambda: CobbDouglas([1.5, -0.5]), "must be >= 0"),
        (lambda: CES([0.5, 0.5], 0.0), r"elasticity\(=0.0\) must be > 0"),
        (lambda: CES([0.5, 0.5], -1.0), r"elasticity\(=-1.0\) must be > 0"),
        (lambda: Leontief([0.0, 0.0]), "must have a positive entry"),
    ],
)
def test_bad_parameters_are_named(make, match):
    with pytest.raises(InvalidParameter, match=match):
        make()
