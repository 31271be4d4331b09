"""Fisher markets: buyers with budgets, sellers with fixed supply, and the Eisenberg-Gale program.

In a Fisher market buyer i holds only money (its budget B_i) and values only goods; the goods'
owners value only money. The competitive equilibrium is the solution of the Eisenberg-Gale
convex program (Eisenberg & Gale 1959)

    maximise  sum_i B_i ln u_i(x_i)   subject to  sum_i x_ij <= s_j,  x >= 0,

whose multipliers are the prices: p_j = B_i (du_i/dx_ij) / u_i(x_i) for every buyer who gets
some of good j. :func:`eisenberg_gale` solves it with scipy for CES buyers (Cobb-Douglas as the
limit), through the program's convex dual over prices, independently of any market dynamics: a
reference for the auctioneer, the book and the pools on the ``fisher`` scenario.
"""

from __future__ import annotations

import numpy as np
from attrs import frozen
from numpy.typing import ArrayLike, NDArray
from scipy import optimize

from mktsim.errors import InvalidParameter, NoEquilibrium

__all__ = ["FisherEquilibrium", "eisenberg_gale"]

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
