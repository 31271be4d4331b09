"""Fisher markets: buyers with budgets, sellers with fixed supply, and the Eisenberg-Gale program.

In a Fisher market buyer i holds only money (its budget B_i) and values only goods; the goods'
owners value only money. The competitive equilibrium is the solution of the Eisenberg-Gale
convex program (Eisenberg & Gale 1959)

    maximise  sum_i B_i ln u_i(x_i)   subject to  sum_i x_ij <= s_j,  x >= 0,

whose multipliers are the prices: p_j = B_i (du_i/dx_ij) / u_i(x_i) for every buyer who gets
some of good j. :func:`eisenberg_gale` solves it with scipy for CES buyers (Cobb-Douglas as the
limit), through the program's convex dual over prices, independently of any market dynamics: a
reference for the auctioneer, the book and the pools on the ``fisher`` scenario.
:func:`eisenberg_gale_linear` solves it exactly for linear buyers, whose demand is a
correspondence, and :func:`linear_fisher_reference` is its reference solver for scenarios;
proportional-response dynamics (:mod:`mktsim.strategies.proportional_response` with the
auctioneer's ``method="proportional_response"``) reach the same prices by trading.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from attrs import frozen
from numpy.typing import ArrayLike, NDArray
from scipy import optimize

from mktsim.equilibrium import Equilibrium
from mktsim.errors import InvalidParameter, NoEquilibrium

__all__ = [
    "FisherEquilibrium",
    "eisenberg_gale",
    "eisenberg_gale_linear",
    "linear_fisher_reference",
]

Array = NDArray[np.float64]


@frozen
class FisherEquilibrium:
    """Prices (money per unit, per good) and allocations ``float64[n_buyers, n_goods]``."""

    prices: Array
    allocation: Array


def eisenberg_gale(
    budgets: ArrayLike, weights: ArrayLike, supply: ArrayLike, elasticity: float | None = None
) -> FisherEquilibrium:
    """Solve the Eisenberg-Gale program for CES buyers (Cobb-Douglas when ``elasticity`` is None).

    Args:
        budgets: money of each buyer, ``float64[n]``, > 0.
        weights: ``float64[n, g]`` CES weights (Cobb-Douglas shares), >= 0, a positive entry per
            row; goods are the market's goods without money.
        supply: units of each good, ``float64[g]``, > 0.
        elasticity: CES elasticity of substitution sigma (> 0, not 1), or None for Cobb-Douglas.

    Raises:
        InvalidParameter: a malformed input. NoEquilibrium: the solver did not converge.
    """
    b = np.asarray(budgets, dtype=np.float64)
    a = np.asarray(weights, dtype=np.float64)
    s = np.asarray(supply, dtype=np.float64)
    if a.ndim != 2 or b.shape != (a.shape[0],) or s.shape != (a.shape[1],):
        raise InvalidParameter(
            f"budgets {b.shape}, weights {a.shape} and supply {s.shape} must be [n], [n, g], [g]"
        )
    for name, v in (("budgets", b), ("supply", s)):
        if not (np.isfinite(v).all() and (v > 0).all()):
            raise InvalidParameter(f"{name} must be > 0 and finite")
    if not (np.isfinite(a).all() and (a >= 0).all() and (a.sum(axis=1) > 0).all()):
        raise InvalidParameter("weights must be >= 0 and finite, with a positive entry per row")
    if elasticity is not None and not (np.isfinite(elasticity) and elasticity > 0):
        raise InvalidParameter(f"elasticity(={elasticity}) must be > 0 and finite")
    if elasticity is None:
        # sum_j a_ij ln x_ij separates by good: buyer i spends a_ij B_i / sum a_i on good j
        alpha = a / a.sum(axis=1, keepdims=True)
        prices = (alpha * b[:, None]).sum(axis=0) / s
        return FisherEquilibrium(prices, alpha * b[:, None] / prices)
    if elasticity == 1.0:
        raise InvalidParameter("elasticity(=1.0) is Cobb-Douglas: pass elasticity=None")
    sigma = float(elasticity)
    # The program's dual: minimise D(p) = sum_j p_j s_j - sum_i B_i ln e_i(p) over p > 0, with
    # e_i(p) = (sum_j a_ij^sigma p_j^(1-sigma))^(1/(1-sigma)) the CES price index; at its
    # minimum each good's supply is bought (dD/dp_j = 0). Solved in log prices.
    used = a > 0
    log_a = np.log(np.where(used, a, 1.0))

    def shares(logp: Array) -> tuple[Array, Array]:
        """Expenditure shares w_ij and ln e_i at prices exp(logp)."""
        t = np.where(used, sigma * log_a + (1.0 - sigma) * logp[None, :], -np.inf)
        top = t.max(axis=1, keepdims=True)
        w = np.exp(t - top)
        total = w.sum(axis=1, keepdims=True)
        log_e = (top[:, 0] + np.log(total[:, 0])) / (1.0 - sigma)
        return w / total, log_e

    def dual(logp: Array) -> tuple[float, Array]:
        w, log_e = shares(logp)
        p = np.exp(logp)
        value = float(p @ s - b @ log_e)
        return value, p * s - b @ w  # d/d ln p_j: p_j s_j - sum_i B_i w_ij

    g = a.shape[1]
    start = np.log(np.full(g, b.sum() / g) / s)
    res = optimize.minimize(dual, start, jac=True, method="BFGS", options={"gtol": 1e-12})
    # BFGS stalls near 1e-8 on flat duals: polish the stationarity condition dD = 0 directly
    polished = optimize.root(lambda logp: dual(logp)[1], res.x, method="hybr", tol=1e-14)
    logp = polished.x if np.all(np.isfinite(polished.x)) else res.x
    w, _ = shares(logp)
    prices = np.exp(logp)
    excess = (b @ w) / prices - s
    if not np.all(np.abs(excess) <= 1e-8 * s):
        raise NoEquilibrium(
            f"Eisenberg-Gale: the dual did not converge (excess demand {excess.tolist()})"
        )
    return FisherEquilibrium(prices, w * b[:, None] / prices[None, :])


def eisenberg_gale_linear(
    budgets: ArrayLike, values: ArrayLike, supply: ArrayLike
) -> FisherEquilibrium:
    """Solve the Eisenberg-Gale program for linear buyers ``u_i(x) = sum_j U_ij x_ij`` exactly.

    Linear utilities make demand a correspondence (a buyer spends only on goods of maximal
    bang per buck ``U_ij / p_j``, in any split), so a smooth solver can only approach the
    answer. Equilibrium prices are unique (the program is strictly concave in utilities), and
    they follow exactly from which buyers spend on which goods: along an edge (i, j) of that
    spending graph ``p_j = U_ij / beta_i`` with ``beta_i`` buyer i's best bang per buck, so
    prices within a connected component are fixed up to one scale, which the component's
    budgets pay for: ``sum_j p_j s_j = sum_i B_i`` over its goods and buyers. The solver

    1. solves the program's convex dual in log prices, ``min sum_j s_j p_j - sum_i B_i ln
       beta_i`` s.t. ``ln beta_i + ln U_ij <= ln p_j`` (scipy SLSQP), to locate the edges;
    2. computes the exact prices of that graph as above and a spending ``b_ij >= 0`` on its
       edges that exhausts every budget and buys every unit (a transport problem, scipy
       linprog);
    3. accepts the answer only if it satisfies the program's optimality conditions: every
       budget spent, every good sold, money only on goods of maximal bang per buck (relative
       1e-12). Any such point is the equilibrium, so the result does not depend on step 1's
       accuracy, only on its finding the graph (looser edge tolerances are tried in turn).

    Args:
        budgets: money of each buyer, ``float64[n]``, > 0.
        values: ``float64[n, g]`` utility per unit ``U_ij``, >= 0, a positive entry in every
            row (a buyer wants something) and every column (every good is wanted).
        supply: units of each good, ``float64[g]``, > 0.

    Returns:
        Prices ``float64[g]`` (money per unit) and one equilibrium allocation (the split among
        goods of equal bang per buck is not unique; the prices and utilities are).

    Raises:
        InvalidParameter: a malformed input. NoEquilibrium: no spending graph was verified.
    """
    b = np.asarray(budgets, dtype=np.float64)
    u = np.asarray(values, dtype=np.float64)
    s = np.asarray(supply, dtype=np.float64)
    if u.ndim != 2 or b.shape != (u.shape[0],) or s.shape != (u.shape[1],):
        raise InvalidParameter(
            f"budgets {b.shape}, values {u.shape} and supply {s.shape} must be [n], [n, g], [g]"
        )
    for name, v in (("budgets", b), ("supply", s)):
        if not (np.isfinite(v).all() and (v > 0).all()):
            raise InvalidParameter(f"{name} must be > 0 and finite")
    if not (np.isfinite(u).all() and (u >= 0).all()):
        raise InvalidParameter("values must be >= 0 and finite")
    if not ((u.sum(axis=1) > 0).all() and (u.sum(axis=0) > 0).all()):
        raise InvalidParameter("values need a positive entry in every row and every column")
    approx = _linear_dual(b, u, s)
    for slack in (1e-9, 1e-7, 1e-5, 1e-3, 1e-2):
        found = _round_to_graph(b, u, s, approx, slack)
        if found is not None:
            return found
    raise NoEquilibrium("Eisenberg-Gale (linear): no spending graph satisfied the conditions")


def _linear_dual(b: Array, u: Array, s: Array) -> Array:
    """Approximate equilibrium prices from the convex dual in log prices and log betas."""
    n, g = u.shape
    rows, cols = np.nonzero(u > 0)
    # constraint k: ln p_j - ln beta_i - ln U_ij >= 0 for the k-th positive U_ij
    a = np.zeros((rows.size, g + n))
    a[np.arange(rows.size), cols] = 1.0
    a[np.arange(rows.size), g + rows] = -1.0
    log_u = np.log(u[rows, cols])

    def objective(y: Array) -> tuple[float, Array]:
        p = np.exp(y[:g])
        grad = np.concatenate([s * p, -b])
        return float(s @ p - b @ y[g:]), grad

    scale = b.sum() / s.sum()
    start = np.concatenate([np.full(g, np.log(scale)), np.log(u.max(axis=1) / scale) - 1.0])
    res = optimize.minimize(
        objective,
        start,
        jac=True,
        method="SLSQP",
        constraints=[{"type": "ineq", "fun": lambda y: a @ y - log_u, "jac": lambda y: a}],
        options={"maxiter": 1000, "ftol": 1e-14},
    )
    return np.exp(np.asarray(res.x[:g], dtype=np.float64))


def _round_to_graph(
    b: Array, u: Array, s: Array, approx: Array, slack: float
) -> FisherEquilibrium | None:
    """The exact equilibrium of the spending graph read off ``approx`` prices with relative
    ``slack`` on bang per buck, if it satisfies the optimality conditions (else None)."""
    n, g = u.shape
    bang = u / approx
    best = bang.max(axis=1, keepdims=True)
    edges = (bang >= best * (1 - slack)) & (u > 0)
    # connected components of buyers (0..n-1) and goods (n..n+g-1), each priced up to a scale
    relative = np.full(g, np.nan)
    beta = np.full(n, np.nan)
    component = np.full(n + g, -1)
    for root in range(g):
        if component[n + root] >= 0:
            continue
        relative[root] = 1.0
        component[n + root] = root
        stack = [n + root]
        while stack:
            node = stack.pop()
            if node >= n:  # a good: reach the buyers spending on it
                j = node - n
                for i in np.flatnonzero(edges[:, j]):
                    if component[i] < 0:
                        component[i], beta[i] = root, u[i, j] / relative[j]
                        stack.append(int(i))
            else:
                for j in np.flatnonzero(edges[node]):
                    if component[n + j] < 0:
                        component[n + j], relative[j] = root, u[node, j] / beta[node]
                        stack.append(n + int(j))
    if (component[:n] < 0).any():
        return None  # a buyer with no good (cannot happen with positive values; kept safe)
    prices = np.empty(g)
    for root in np.unique(component[n:]):
        goods = component[n:] == root
        buyers = component[:n] == root
        prices[goods] = relative[goods] * b[buyers].sum() / (relative[goods] @ s[goods])
    bang = u / prices
    best = bang.max(axis=1)
    i_e, j_e = np.nonzero(edges)
    if not np.allclose(bang[i_e, j_e], best[i_e], rtol=1e-12, atol=0.0):
        return None  # the graph's cycles disagree, or an edge is not a best buy
    # spending on the edges: every budget spent, every good's value paid
    m = i_e.size
    eq = np.zeros((n + g, m))
    eq[i_e, np.arange(m)] = 1.0
    eq[n + j_e, np.arange(m)] = 1.0
    rhs = np.concatenate([b, prices * s])
    lp = optimize.linprog(np.zeros(m), A_eq=eq, b_eq=rhs, bounds=(0, None), method="highs")
    if lp.status != 0:
        return None
    spend = np.zeros((n, g))
    spend[i_e, j_e] = np.maximum(lp.x, 0.0)
    if not (
        np.allclose(spend.sum(axis=1), b, rtol=1e-9, atol=0.0)
        and np.allclose(spend.sum(axis=0), prices * s, rtol=1e-9, atol=0.0)
    ):
        return None
    return FisherEquilibrium(prices, spend / prices[None, :])


def linear_fisher_reference(scenario: Any) -> Equilibrium:
    """Reference solver for ``Scenario(reference=...)`` of a linear Fisher market: buyers with
    :class:`~mktsim.utility.Linear` utilities holding only the numeraire, and sellers holding
    only goods and valuing only the numeraire. Prices from :func:`eisenberg_gale_linear`
    (numeraire = 1); ``allocation`` gives buyers one equilibrium bundle (ties are split as the
    solver found them) and sellers the money their goods fetch."""
    from mktsim.utility import Linear

    num = scenario.goods.numeraire_index
    goods = np.array([j for j in range(len(scenario.goods)) if j != num], dtype=np.intp)
    buyers = [
        (p, rows)
        for p, rows in zip(scenario.populations, scenario.population_slices().values(), strict=True)
        if isinstance(getattr(p, "utility", None), Linear)
    ]
    if not buyers:
        raise InvalidParameter(f"scenario {scenario.name!r} has no linear buyers")
    endowment = scenario.endowments()
    values = np.vstack([p.utility.values for p, _ in buyers])
    rows = np.concatenate([np.arange(r.start, r.stop) for _, r in buyers])
    budgets = endowment[rows, num]
    supply = endowment[:, goods].sum(axis=0)
    eq = eisenberg_gale_linear(budgets, values[:, goods], supply)
    prices = np.ones(len(scenario.goods))
    prices[goods] = eq.prices
    allocation = np.zeros_like(endowment)
    allocation[np.ix_(rows, goods)] = eq.allocation
    sellers = np.setdiff1d(np.arange(endowment.shape[0]), rows)
    allocation[sellers, num] = endowment[sellers] @ prices
    return Equilibrium(
        "unique",
        scenario.goods.as_dict(prices),
        prices,
        allocation,
        "eisenberg_gale_linear",
        0.0,
        "linear Fisher market: Eisenberg-Gale prices, exact from the spending graph",
    )
