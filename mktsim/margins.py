"""What a price-taking-at-the-margin trader wants from a market maker: pure math, no SimPy.

Mechanism-free: the planners read a maker's price curve from what its quote shows (an LMSR's
pricing state and liquidity, a pool's reserves and fee), so strategies and the supply-chain
traders share them without knowing any mechanism.

Both planners move one trader along the maker's price curve to where it no longer wants to trade,
within its budget:

* :func:`lmsr_plan`: a belief trader facing an LMSR maker trades s shares of one outcome i
  (s > 0 buys, s < 0 sells), the outcome and s maximising expected utility
  Σ_t π_t u(w_t + s·[t = i] − cost(s)). The optimum is where the
  maker's price after the trade equals the trader's reservation price after it.
* :func:`pool_plan`: a consumer facing constant-product pools (one per good, against the
  numeraire) picks the good whose marginal rate of substitution is furthest outside the pool's
  [bid, ask] and swaps until the MRS equals the pool's marginal price of the last unit.
* :func:`input_purchase`: a price-taking buyer (a firm buying an input) buys from a pool up to
  where the marginal cost of the last unit (:func:`marginal_cost_of_purchase`) equals its
  marginal value of that unit; :func:`money_for` is what those units cost.

Both objectives are concave (or quasi-concave) along the curve, so the first-order condition
changes sign once and is found by bisection; a trader whose condition still points outward at the
edge of its budget trades its whole budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
from attrs import frozen
from numpy.typing import NDArray

from mktsim.beliefs import marginal_utility
from mktsim.orders import BUY, SELL

__all__ = [
    "PoolPlan",
    "SharePlan",
    "input_purchase",
    "lmsr_plan",
    "lmsr_shares_for_budget",
    "marginal_cost_of_purchase",
    "money_for",
    "pool_arbitrage",
    "pool_plan",
    "root_from_below",
]

Array = NDArray[np.float64]

_ITERATIONS = 200  # root-finding steps at most
_REL_TOL = 1e-12  # relative width of the final bracket
_F_TOL = 1e-13  # a first-order condition this close to 0 is met
_PURCHASE_TOL = 1e-6  # relative width of the final bracket of a purchase (units)


@frozen
class SharePlan:
    """A belief trader's wanted LMSR trade.

    Attributes:
        outcome: index of the outcome traded (0..k-1).
        shares: units of its share to buy (> 0) or sell (< 0).
        whole_budget: True when the trade is limited by the budget (all money spent, or all
            shares of the outcome sold) rather than by the trader's optimum.
    """

    outcome: int
    shares: float
    whole_budget: bool


@frozen
class PoolPlan:
    """A consumer's wanted swap.

    Attributes:
        good: ledger column of the good traded against the numeraire.
        side: ``buy`` (pay money, get the good) or ``sell`` (pay the good, get money).
        amount_in: units paid into the pool (money if BUY, the good if SELL).
        whole_budget: True when the swap spends the whole holding of the input.
    """

    good: int
    side: str
    amount_in: float
    whole_budget: bool


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _log(x: float) -> float:
    return math.log(x) if x > 0 else -math.inf


def _log_ratio(a: float, c: float) -> float:
    """ln(a / c) for marginal values a, c >= 0; NaN when undefined (treated as "stop")."""
    if not (a >= 0 and c >= 0) or (a == 0 and c == 0):
        return math.nan
    return _log(a) - _log(c)


def root_from_below(
    excess: Callable[[float], float],
    lo: float,
    hi: float,
    *,
    rel_tol: float = _REL_TOL,
    floor: float = 1.0,
    f_lo: float | None = None,
    f_hi: float | None = None,
) -> float:
    """Where a decreasing ``excess`` (> 0 at lo, <= 0 or NaN at hi) crosses 0, from below.

    Regula falsi with the Illinois fix while it at least halves the bracket every other step,
    else bisection (also where a value is not finite: a pool's marginal cost explodes at its
    reserve, where secants crawl); stops when the bracket is narrower than ``rel_tol`` times
    ``max(floor, |lo|, |hi|)``. Returns a point on the ``excess > 0`` side, so a trade planned from
    it never overshoots. ``f_lo`` and ``f_hi`` pass values of ``excess`` already computed.
    """
    f_lo = excess(lo) if f_lo is None else f_lo
    f_hi = excess(hi) if f_hi is None else f_hi
    side = 0
    width = hi - lo
    for _ in range(_ITERATIONS):
        if hi - lo <= rel_tol * max(floor, abs(lo), abs(hi)):
            break
        x = 0.5 * (lo + hi)
        secant = hi - lo < 0.5 * width
        if secant and math.isfinite(f_lo) and math.isfinite(f_hi) and f_lo != f_hi:
            guess = lo + (hi - lo) * f_lo / (f_lo - f_hi)
            if lo < guess < hi:
                x = guess
        width = hi - lo if secant else 2.0 * width
        fx = excess(x)
        if fx > 0:
            if fx < _F_TOL:
                return x
            lo, f_lo = x, fx
            if side == 1:
                f_hi *= 0.5
            side = 1
        else:
            hi, f_hi = x, fx
            if side == -1:
                f_lo *= 0.5
            side = -1
    return lo


def _log_uprime(risk: str, a: float) -> Callable[[float], float]:
    """ln u'(x) of state wealth x (any additive constant is irrelevant)."""
    if risk == "log":
        return lambda x: -math.log(x) if x > 0 else math.inf
    if risk == "cara":
        return lambda x: -a * x
    return lambda x: 0.0


def lmsr_plan(
    q: Array,
    b: float,
    beliefs: Array,
    money: float,
    shares: Array,
    risk: str = "log",
    risk_aversion: float = 1.0,
    tol: float = 1e-3,
) -> SharePlan | None:
    """The expected-utility-maximising single-outcome trade against an LMSR maker.

    Args:
        q: ``float64[k]`` the maker's outstanding shares per outcome.
        b: the maker's liquidity (money units).
        beliefs: ``float64[k]`` the trader's probabilities.
        money: the trader's money (units, >= 0).
        shares: ``float64[k]`` the trader's shares per outcome (units, >= 0).
        risk: ``log`` | ``cara`` | ``neutral``.
        risk_aversion: CARA coefficient (per unit of money).
        tol: least |ln(reservation price / maker price)| worth trading on.

    Returns:
        The plan, or None if no outcome's price is off by more than ``tol`` where the trader can
        act (buying needs money, selling needs shares). Every outcome that is off is solved and
        the one giving the highest expected utility is kept.
    """
    q = np.asarray(q, dtype=float)
    pi = np.asarray(beliefs, dtype=float)
    held = np.asarray(shares, dtype=float)
    wealth = money + held
    mu = pi * marginal_utility(wealth, risk, risk_aversion)
    with np.errstate(divide="ignore"):
        gap = np.log(mu / mu.sum()) - (q / b - _logsumexp(q / b))  # ln(r / p)
    threshold = math.log1p(tol)
    best: tuple[float, SharePlan] | None = None
    for i in range(q.size):
        g = float(gap[i])
        if (g > threshold and money > 0) or (-g > threshold and held[i] > 0):
            plan = _lmsr_outcome_plan(q, b, pi, money, held, i, g > 0, risk, risk_aversion)
            value = _expected_utility(pi, money, held, q, b, plan, risk, risk_aversion)
            # Plans of equal value in exact arithmetic (buying one outcome or selling the other
            # from a complete set) differ only by rounding: the first is kept, so the choice
            # does not depend on the unit money is written in.
            if best is None or value > best[0] + _TIE * max(1.0, abs(best[0])):
                best = (value, plan)
    return None if best is None else best[1]


#: Relative gap in expected utility below which two plans count as equally good.
_TIE = 1e-12


def _lmsr_outcome_plan(
    q: Array,
    b: float,
    pi: Array,
    money: float,
    held: Array,
    i: int,
    buy: bool,
    risk: str,
    risk_aversion: float,
) -> SharePlan:
    """The optimal trade in outcome i alone (a buy if ``buy``, else a sale)."""
    wealth = money + held
    others = [t for t in range(q.size) if t != i]
    logit = float(q[i] / b - _logsumexp(q[others] / b))
    log_pi = [_log(float(x)) for x in pi]
    believed = [t for t in others if pi[t] > 0]
    log_up = _log_uprime(risk, risk_aversion)

    def excess(s: float) -> float:
        # ln of the two terms of f(s) = (1 − P)·π_i·u'(w_i + s − c) − P·Σ_{t≠i} π_t·u'(w_t − c):
        # positive while buying one more share of i raises expected utility
        z = logit + s / b
        c = b * (_softplus(z) - _softplus(logit))
        lhs = (
            -_softplus(z) + log_pi[i] + log_up(float(wealth[i]) + s - c) if pi[i] > 0 else -math.inf
        )
        # outcomes believed impossible add nothing (and 0·u'(0) must not become NaN)
        terms = [log_pi[t] + log_up(float(wealth[t]) - c) for t in believed]
        m = max(terms, default=-math.inf)
        rhs = (
            -_softplus(-z) + m + math.log(math.fsum(math.exp(x - m) for x in terms))
            if math.isfinite(m)
            else m
        )
        if lhs == rhs:  # equal infinities: neither way pays
            return 0.0
        return lhs - rhs

    if buy:  # s in (0, all the money buys]
        top = lmsr_shares_for_budget(q, i, money, b)
        if excess(top) > 0:
            return SharePlan(i, top, True)
        return SharePlan(i, root_from_below(excess, 0.0, top, floor=0.0), False)
    bottom = -float(held[i])  # sell: s in [−holdings, 0)
    if not excess(bottom) > 0:
        return SharePlan(i, bottom, True)
    # selling: the excess is < 0 at 0 and > 0 at the bottom; search on u = −s
    return SharePlan(i, -root_from_below(lambda u: -excess(-u), 0.0, -bottom, floor=0.0), False)


def _expected_utility(
    pi: Array,
    money: float,
    held: Array,
    q: Array,
    b: float,
    plan: SharePlan,
    risk: str,
    risk_aversion: float,
) -> float:
    """Σ_t π_t u(w_t) after the plan (to compare plans in different outcomes)."""
    i, s = plan.outcome, plan.shares
    others = [t for t in range(q.size) if t != i]
    logit = float(q[i] / b - _logsumexp(q[others] / b))
    c = b * (_softplus(logit + s / b) - _softplus(logit))
    total = 0.0
    for t in range(q.size):
        if pi[t] == 0:
            continue
        w = money - c + float(held[t]) + (s if t == i else 0.0)
        if risk == "log":
            u = math.log(w) if w > 0 else -math.inf
        elif risk == "cara":
            u = -math.exp(-risk_aversion * w)
        else:
            u = w
        total += float(pi[t]) * u
    return total


def lmsr_shares_for_budget(q: Array, i: int, budget: float, b: float) -> float:
    """Shares of outcome i that spending exactly ``budget`` (money units, >= 0) buys from an LMSR
    maker at pricing state ``q`` with liquidity ``b``: the closed-form root of
    C(q + s·e_i) − C(q) = budget, s = b·ln(1 + (exp(budget/b) − 1)/p_i), in log space."""
    if budget <= 0.0:
        return 0.0
    z = (q - q.max()) / b
    log_pi = float(z[i] - math.log(math.fsum(np.exp(z))))
    a = budget / b
    log_expm1 = a + math.log1p(-math.exp(-a)) if a > 1.0 else math.log(math.expm1(a))
    return b * _softplus(log_expm1 - log_pi)


def _logsumexp(x: Array) -> float:
    m = float(np.max(x))
    return m + math.log(math.fsum(np.exp(x - m)))


def pool_plan(
    marginal: Callable[[Array], Array],
    holdings: Array,
    numeraire: int,
    pools: Mapping[int, tuple[float, float]],
    fee: float,
    tol: float = 1e-4,
) -> PoolPlan | None:
    """The utility-maximising single swap against constant-product pools.

    Args:
        marginal: the trader's marginal utilities, ``float64[g] -> float64[g]``.
        holdings: ``float64[g]`` the trader's holdings (units).
        numeraire: column of money.
        pools: good column -> (good reserve, money reserve), units.
        fee: the pools' fee rate in [0, 1).
        tol: least relative gap between MRS and the pool's bid/ask worth trading on.

    Returns:
        The plan, or None if every MRS lies within [bid/(1+tol), ask·(1+tol)] where the trader
        can act.
    """
    h = np.asarray(holdings, dtype=float)
    g = 1.0 - fee
    mu = np.asarray(marginal(h), dtype=float)
    mu0 = float(mu[numeraire])
    best: tuple[float, int, str] | None = None
    threshold = math.log1p(tol)
    for j, (x, y) in pools.items():
        muj = float(mu[j])
        if not (np.isfinite(muj) and np.isfinite(mu0)):
            continue
        buy_gap = _log(muj) - _log(y / (g * x) * mu0) if h[numeraire] > 0 else -math.inf
        sell_gap = _log(g * y / x * mu0) - _log(muj) if h[j] > 0 else -math.inf
        for gap, side in ((buy_gap, BUY), (sell_gap, SELL)):
            if gap > threshold and (best is None or gap > best[0]):
                best = (gap, j, side)
    if best is None:
        return None
    _, j, side = best
    x, y = pools[j]
    if side == BUY:
        budget = float(h[numeraire])

        def excess(d: float) -> float:
            out = x * g * d / (y + g * d)
            after = h.copy()
            after[numeraire] -= d
            after[j] += out
            m = marginal(after)
            # d(utility)/dd = mu_j·d(out)/dd − mu_0; NaN (utility collapsing) counts as "stop"
            return _log_ratio(float(m[j]) * (x * g * y / (y + g * d) ** 2), float(m[numeraire]))

    else:
        budget = float(h[j])

        def excess(d: float) -> float:
            out = y * g * d / (x + g * d)
            after = h.copy()
            after[j] -= d
            after[numeraire] += out
            m = marginal(after)
            return _log_ratio(float(m[numeraire]) * (y * g * x / (x + g * d) ** 2), float(m[j]))

    if excess(budget) > 0:
        return PoolPlan(j, side, budget, True)
    return PoolPlan(j, side, root_from_below(excess, 0.0, budget, floor=0.0), False)


def pool_arbitrage(x: float, y: float, price: float, fee: float) -> tuple[str, float] | None:
    """The single swap that brings a constant-product pool's marginal price to an external
    ``price`` P from the side that gains: ``(side, amount paid in)`` in units, or None when P
    lies within the pool's marginal [bid, ask] = [g·y/x, y/(g·x)] (g = 1 − fee).

    A buyer paying d stops where the price of its last unit equals P, (y + g·d)² = g·P·x·y; a
    seller paying e in at (x + g·e)² = g·x·y/P: where its profit against P peaks.
    """
    g = 1.0 - fee
    if g * price * x > y:  # the ask is below P: buy the good
        s = math.sqrt(g * price * x) * math.sqrt(y)  # y + g·d at the optimum
        return BUY, y * (g * price * x - y) / (g * (s + y))  # (s − y)/g without cancellation
    if g * y > price * x:  # the bid is above P: sell the good
        s = math.sqrt(g * x / price) * math.sqrt(y)  # x + g·e at the optimum
        return SELL, x * (g * y / price - x) / (g * (s + x))
    return None


def marginal_cost_of_purchase(x: float, y: float, fee: float, q: float) -> float:
    """Money per unit of the last unit when buying ``q`` units of the good from a pool.

    Paying d money buys ``out = x g d / (y + g d)``; the marginal cost of the output is
    ``dd/d(out) = (y + g d)² / (g x y)``, and with ``y + g d = x y / (x − q)`` at ``out = q``
    this is ``x y / (g (x − q)²)``: the pool's ask ``y / (g x)`` at q = 0, rising to infinity as
    q approaches the reserve.

    Args:
        x: good reserve (units), > 0.
        y: money reserve (units), > 0.
        fee: fee rate in [0, 1).
        q: units bought, in [0, x).
    """
    return x * y / ((1.0 - fee) * (x - q) ** 2)


def money_for(x: float, y: float, fee: float, q: float) -> float:
    """Money to pay into a pool (reserves x of the good, y of money, units) to receive q units
    of the good: ``y q / (g (x − q))``, q in [0, x)."""
    return y * q / ((1.0 - fee) * (x - q))


def input_purchase(
    x: float,
    y: float,
    fee: float,
    value: Callable[[float], float],
    money: float,
    flat: float = 0.0,
) -> float:
    """Units of the good a price taker buys from a pool: the q at which the marginal cost of the
    last unit (:func:`marginal_cost_of_purchase`) equals its marginal value ``value(q)``.

    Args:
        x: good reserve (units), > 0.
        y: money reserve (units), > 0.
        fee: fee rate in [0, 1).
        value: marginal value of the q-th unit (money per unit), non-increasing in q and
            continuous; a non-finite value counts as infinite (a concave technology at 0).
        money: the buyer's money (units), >= 0: caps q at what it pays for,
            ``x g m / (y + g m)``.
        flat: ``value`` is constant on [0, flat] (units, >= 0): there the root has the closed
            form ``q = x − sqrt(x y / (g v))`` and ``value`` is called once.

    Returns:
        q in units, >= 0; 0 when the pool's ask is at or above the value of the first unit.
        The root is approached from below, so the purchase never overshoots the margin.
    """
    g = 1.0 - fee
    top = x * g * money / (y + g * money)  # all the money

    def excess(q: float) -> float:
        v = value(q)
        if not math.isfinite(v):
            v = math.inf
        return v - marginal_cost_of_purchase(x, y, fee, q)

    if top <= 0:
        return 0.0
    v0 = value(0.0)
    if flat > 0 and math.isfinite(v0):
        if v0 <= y / (g * x):
            return 0.0
        q = x - math.sqrt(x * y / (g * v0))
        if q <= flat:
            return min(q, top)
        lo = min(flat, top)
    else:
        lo = 0.0
    f_lo = excess(lo)
    if not f_lo > 0:
        return lo
    hi = top
    f_hi = excess(hi)
    if f_hi >= 0:
        return top
    return root_from_below(excess, lo, hi, rel_tol=_PURCHASE_TOL, floor=0.0, f_lo=f_lo, f_hi=f_hi)
