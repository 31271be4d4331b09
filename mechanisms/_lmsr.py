"""Pure math of Hanson's logarithmic market scoring rule (LMSR); no SimPy, no ledger.

An LMSR market maker over ``n >= 2`` mutually exclusive outcomes keeps ``q: float64[n]``, the
shares of each outcome it has sold (negative after net sales back to it). One share of the outcome
that resolves pays 1 unit of numeraire. With liquidity ``b > 0`` (numeraire units) its cost
function and prices are

    C(q) = b · ln Σ_i exp(q_i / b),        p(q) = softmax(q / b),   Σ_i p_i = 1,

and a trade ``dq: float64[n]`` (shares; > 0 bought from the maker, < 0 sold to it) costs the trader
``C(q + dq) − C(q)`` (negative: the maker pays). Cost depends only on the end points, so splitting
a trade changes nothing. Starting from ``q = 0`` the maker has collected ``C(q) − b·ln n`` and owes
``q_k`` if outcome ``k`` resolves; since ``C(q) >= max_i q_i`` its loss never exceeds
``b · ln n`` (the subsidy that buys the liquidity).

Numerics: every function works on ``q`` shifted by its maximum (log-sum-exp), so ``q/b`` of 1e6 or
more neither overflows nor loses the price of an outcome far behind. ``trade_cost`` is evaluated as
``b · ln Σ_i p_i exp(dq_i / b)`` rather than as a difference of two large costs, so a small trade
at a large ``q`` keeps full relative precision.

Base units and rounding: the ledger holds money and shares as integers, ``scale`` base units per
unit (pass ``mktsim.goods.BASE_UNITS``). Rounding favours the maker: ``charge_units`` rounds the
money a trader pays *up* (for a sale, where the cost is negative, that rounds the maker's payment
down), except that a cost within 8 ulps of a whole number of base units is taken as that number,
since the float cost is no more accurate than that. ``budget_order_units`` rounds the shares a
budget buys *down* and guarantees that the charge fits the budget. A share quantity that moves a
price (``shares_to_price``) should be rounded toward zero, so the target is not overshot, and
charged with ``charge_units``. Costs are float64, so a charge can fall short of the exact
real-number cost by float error only: under one base unit while ``|cost| * scale < 2**49``
(about 5.6e5 numeraire units at 10**9 base units per unit); beyond that float64 cannot resolve
single base units at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from fractions import Fraction
from numbers import Integral

import numpy as np
from attrs import evolve, field, frozen
from numpy.typing import ArrayLike, NDArray

from mktsim.errors import InvalidParameter

__all__ = [
    "LMSRBook",
    "budget_order_units",
    "charge_units",
    "cost",
    "prices",
    "replay",
    "shares_for_budget",
    "shares_to_price",
    "shares_to_prices",
    "trade_cost",
    "worst_case_loss",
]

# Above this exponent exp() is within a factor e**9 of float64 overflow; switch to log space.
_EXP_SAFE = 700.0
# Relative distance (8 ulps) within which a charge is float noise around a whole base unit.
_SNAP = Fraction(1, 2**49)


# --- validation -------------------------------------------------------------------------------


def _check_b(b: float) -> float:
    if not isinstance(b, int | float | np.floating | np.integer) or isinstance(b, bool):
        raise InvalidParameter(f"liquidity b(={b!r}) must be a real number > 0 and finite")
    b = float(b)
    if not (math.isfinite(b) and b > 0.0):
        raise InvalidParameter(f"liquidity b(={b}) must be > 0 and finite")
    return b


def _as_vector(v: ArrayLike, name: str, n: int | None = None) -> NDArray[np.float64]:
    try:
        arr = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidParameter(f"{name} must be a 1-D array of real numbers: {exc}") from None
    if arr.ndim != 1 or arr.shape[0] < 2:
        raise InvalidParameter(
            f"{name} must be a 1-D array over at least 2 outcomes, got shape {arr.shape}"
        )
    if n is not None and arr.shape[0] != n:
        raise InvalidParameter(f"{name} has {arr.shape[0]} outcomes, expected {n}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise InvalidParameter(f"{name}[{bad[0]}](={arr[bad[0]]}) must be finite")
    return arr


def _check_outcome(i: int, n: int) -> int:
    if not isinstance(i, Integral) or isinstance(i, bool):
        raise InvalidParameter(f"outcome index i(={i!r}) must be an integer")
    if not 0 <= int(i) < n:
        raise InvalidParameter(f"outcome index i(={i}) must be in [0, {n})")
    return int(i)


def _check_scale(scale: int) -> int:
    if not isinstance(scale, Integral) or isinstance(scale, bool) or int(scale) <= 0:
        raise InvalidParameter(f"scale(={scale!r}) must be a positive integer")
    return int(scale)


# --- stable building blocks ---------------------------------------------------------------------


def _log_prices(q: NDArray[np.float64], b: float) -> NDArray[np.float64]:
    """log softmax(q/b), finite even where the price itself underflows to 0."""
    z = (q - q.max()) / b
    return z - math.log(math.fsum(np.exp(z)))


def _logsumexp(w: NDArray[np.float64]) -> float:
    m = float(w.max())
    return m + math.log(math.fsum(np.exp(w - m)))


def _softplus(u: float) -> float:
    """ln(1 + e**u) without overflow."""
    return max(u, 0.0) + math.log1p(math.exp(-abs(u)))


def _log_expm1(a: float) -> float:
    """ln(e**a − 1) for a > 0, accurate for tiny and for huge a."""
    return a + math.log1p(-math.exp(-a)) if a > 1.0 else math.log(math.expm1(a))


# --- the cost function ----------------------------------------------------------------------


def cost(q: ArrayLike, b: float) -> float:
    """The LMSR cost function C(q) = b·ln Σ_i exp(q_i/b).

    Args:
        q: float64[n], outstanding shares per outcome (shares), n >= 2.
        b: liquidity (numeraire units), > 0.

    Returns:
        C(q) in numeraire units.
    """
    b = _check_b(b)
    qv = _as_vector(q, "q")
    m = float(qv.max())
    return m + b * math.log(math.fsum(np.exp((qv - m) / b)))


def prices(q: ArrayLike, b: float) -> NDArray[np.float64]:
    """Instantaneous prices softmax(q/b) (numeraire per share); they sum to 1.

    Args:
        q: float64[n], outstanding shares per outcome (shares).
        b: liquidity (numeraire units), > 0.

    Returns:
        float64[n] in [0, 1]; an outcome more than ~745·b behind the leader prices at exactly 0.
    """
    b = _check_b(b)
    qv = _as_vector(q, "q")
    e = np.exp((qv - qv.max()) / b)
    return np.asarray(e / e.sum(), dtype=np.float64)


def trade_cost(q: ArrayLike, dq: ArrayLike, b: float) -> float:
    """What the trade dq costs the trader: C(q + dq) − C(q) (numeraire units).

    Evaluated as b·ln Σ_i p_i exp(dq_i/b), with p = prices(q), so the level of q cancels exactly.

    Args:
        q: float64[n], outstanding shares before the trade (shares).
        dq: float64[n], shares bought (> 0) or sold back (< 0) per outcome.
        b: liquidity (numeraire units), > 0.

    Returns:
        The cost; negative when the trader is paid (a net sale).
    """
    b = _check_b(b)
    qv = _as_vector(q, "q")
    x = _as_vector(dq, "dq", qv.shape[0]) / b
    log_p = _log_prices(qv, b)
    if float(np.max(log_p + x)) < _EXP_SAFE:
        # C(q+dq)−C(q) = b·log1p(Σ p_i expm1(x_i)) keeps precision for small trades.
        p = np.exp(log_p)
        small = x <= 1.0
        terms = np.empty_like(x)
        terms[small] = p[small] * np.expm1(x[small])
        # For x > 1 exp(log p + x) does not underflow where p alone would.
        terms[~small] = np.exp(log_p[~small] + x[~small]) - p[~small]
        s = math.fsum(terms)
        if s > -0.5:  # near −1, log1p would lose the small remainder to cancellation
            return b * math.log1p(s)
    return b * _logsumexp(log_p + x)


def worst_case_loss(n: int, b: float) -> float:
    """The maker's worst-case loss b·ln n over n outcomes, starting from q = 0 (numeraire units)."""
    b = _check_b(b)
    if not isinstance(n, Integral) or isinstance(n, bool) or int(n) < 2:
        raise InvalidParameter(f"number of outcomes n(={n!r}) must be an integer >= 2")
    return b * math.log(int(n))


# --- closed-form inverses -------------------------------------------------------------------


def shares_for_budget(q: ArrayLike, i: int, budget: float, b: float) -> float:
    """Shares of outcome i that spending exactly ``budget`` buys.

    Solves C(q + s·e_i) − C(q) = budget in closed form:
    s = b·ln(1 + (exp(budget/b) − 1)/p_i), computed in log space.

    Args:
        q: float64[n], outstanding shares (shares).
        i: the outcome bought, 0 <= i < n.
        budget: money to spend (numeraire units), >= 0 and finite.
        b: liquidity (numeraire units), > 0.

    Returns:
        s >= 0 (shares). Grows without bound with the budget, but never faster than budget/p_i.
    """
    b = _check_b(b)
    qv = _as_vector(q, "q")
    i = _check_outcome(i, qv.shape[0])
    budget = float(budget)
    if not (math.isfinite(budget) and budget >= 0.0):
        raise InvalidParameter(f"budget(={budget}) must be >= 0 and finite")
    if budget == 0.0:
        return 0.0
    log_pi = float(_log_prices(qv, b)[i])
    return b * _softplus(_log_expm1(budget / b) - log_pi)


def _check_probability(t: float, name: str) -> float:
    t = float(t)
    if not (math.isfinite(t) and 0.0 < t < 1.0):
        raise InvalidParameter(f"{name}(={t}) must be in the open interval (0, 1)")
    return t


def shares_to_price(q: ArrayLike, i: int, target: float, b: float) -> float:
    """Shares of outcome i to buy (> 0) or sell (< 0) so that its price becomes ``target``.

    The other outcomes' prices scale by a common factor. Closed form: with logit(p) = ln(p/(1−p)),
    s = b·(logit(target) − logit(p_i)), and logit(p_i) = q_i/b − ln Σ_{j≠i} exp(q_j/b).

    Args:
        q: float64[n], outstanding shares (shares).
        i: the outcome traded, 0 <= i < n.
        target: the wanted price of outcome i, in (0, 1).
        b: liquidity (numeraire units), > 0.

    Returns:
        s (shares of outcome i). Its cost is ``trade_cost(q, s·e_i, b)``.
    """
    b = _check_b(b)
    qv = _as_vector(q, "q")
    i = _check_outcome(i, qv.shape[0])
    target = _check_probability(target, "target")
    others = np.delete(qv, i)
    m = float(others.max())
    logit_pi = (float(qv[i]) - m) / b - math.log(math.fsum(np.exp((others - m) / b)))
    logit_target = math.log(target) - math.log1p(-target)
    return b * (logit_target - logit_pi)


def shares_to_prices(q: ArrayLike, target: ArrayLike, b: float) -> NDArray[np.float64]:
    """The cheapest buys-only trade that moves all prices to ``target``.

    dq_j = b·ln(target_j / p_j) + c, with c the smallest shift that makes every dq_j >= 0; the
    trade then costs exactly c = b·max_j ln(p_j / target_j).

    Args:
        q: float64[n], outstanding shares (shares).
        target: float64[n], wanted prices, each in (0, 1), summing to 1 within 1e-9
            (renormalised before use).
        b: liquidity (numeraire units), > 0.

    Returns:
        dq: float64[n] >= 0 (shares), with min(dq) == 0.
    """
    b = _check_b(b)
    qv = _as_vector(q, "q")
    t = _as_vector(target, "target", qv.shape[0])
    bad = np.flatnonzero((t <= 0.0) | (t >= 1.0))
    if bad.size:
        raise InvalidParameter(f"target[{bad[0]}](={t[bad[0]]}) must be in (0, 1)")
    total = math.fsum(t)
    if abs(total - 1.0) > 1e-9:
        raise InvalidParameter(f"target must sum to 1 (within 1e-9), sums to {total!r}")
    gap = np.log(t / total) - _log_prices(qv, b)  # ln(target_j / p_j)
    dq = b * (gap - gap.min())
    return np.asarray(dq, dtype=np.float64)


# --- the maker's books ------------------------------------------------------------------------


def _to_q_tuple(v: ArrayLike) -> tuple[float, ...]:
    return tuple(float(x) for x in _as_vector(v, "q"))


def _validate_revenue(_inst: object, _attr: object, value: float) -> None:
    if not math.isfinite(value):
        raise InvalidParameter(f"revenue(={value}) must be finite")


@frozen
class LMSRBook:
    """An LMSR maker's state and profit-and-loss, as a value: each trade makes a new book.

    Attributes:
        b: liquidity (numeraire units), > 0.
        q: outstanding shares sold per outcome (shares), length n >= 2.
        revenue: money collected minus money paid out for trades so far (numeraire units).
    """

    b: float = field(converter=_check_b)
    q: tuple[float, ...] = field(converter=_to_q_tuple)
    revenue: float = field(default=0.0, converter=float, validator=_validate_revenue)

    @classmethod
    def start(cls, n: int, b: float) -> LMSRBook:
        """A fresh maker over n outcomes: q = 0, nothing collected, uniform prices."""
        worst_case_loss(n, b)  # validates n and b
        return cls(b=b, q=(0.0,) * int(n))

    @property
    def n(self) -> int:
        """Number of outcomes."""
        return len(self.q)

    def prices(self) -> NDArray[np.float64]:
        """Current prices, float64[n], summing to 1."""
        return prices(self.q, self.b)

    def quote(self, dq: ArrayLike) -> float:
        """Cost of the trade dq at the current state, without making it (numeraire units)."""
        return trade_cost(self.q, dq, self.b)

    def trade(self, dq: ArrayLike) -> tuple[LMSRBook, float]:
        """Make the trade dq (shares per outcome).

        Returns:
            (the book after the trade, the cost charged to the trader in numeraire units).
        """
        c = trade_cost(self.q, dq, self.b)
        q_after = np.asarray(self.q, dtype=np.float64) + np.asarray(dq, dtype=np.float64)
        return evolve(self, q=q_after, revenue=self.revenue + c), c

    def payout(self, k: int) -> float:
        """What the maker owes traders if outcome k resolves: q_k (numeraire units)."""
        return self.q[_check_outcome(k, self.n)]

    def loss(self, k: int) -> float:
        """The maker's loss (subsidy) if outcome k resolves: payout − revenue (numeraire units).

        From q = 0 this is at most ``worst_case_loss(n, b)`` for every k.
        """
        return self.payout(k) - self.revenue


def replay(trades: Iterable[ArrayLike], n: int, b: float) -> LMSRBook:
    """Run a sequence of trades (each float64[n], shares) through a fresh maker; return its book."""
    book = LMSRBook.start(n, b)
    for dq in trades:
        book, _ = book.trade(dq)
    return book


# --- integer base units -----------------------------------------------------------------------


def charge_units(cost: float, scale: int) -> int:
    """Money the trader pays for a trade costing ``cost``, in base units, rounded in the maker's
    favour: up (for a sale, where the cost is negative, that rounds the maker's payment down).

    A cost within 8 ulps of a whole number of base units is taken as that number: the float cost
    is itself only that accurate, and rounding its noise up would overcharge a whole base unit
    (a cost of exactly 2 base units, held as the float 2e-9, sits just above 2).

    Args:
        cost: trade cost (numeraire units), e.g. from ``trade_cost``.
        scale: base units per unit (``mktsim.goods.BASE_UNITS``).

    Returns:
        ceil(cost·scale), computed exactly from the float's binary value, after snapping.
    """
    scale = _check_scale(scale)
    if not math.isfinite(cost):
        raise InvalidParameter(f"cost(={cost}) must be finite")
    exact = Fraction(cost) * scale
    nearest = round(exact)
    if abs(exact - nearest) <= _SNAP * abs(exact):
        return nearest
    return math.ceil(exact)


def budget_order_units(
    q: ArrayLike | Sequence[float], i: int, budget_units: int, b: float, *, scale: int
) -> tuple[int, int]:
    """Whole share base units of outcome i that ``budget_units`` of money buys, and their charge.

    The share count is rounded down and the charge up, and the charge never exceeds the budget
    (if float rounding pushes it one base unit over, the largest count that fits is found by
    bisection).

    Args:
        q: float64[n], outstanding shares (shares, i.e. share base units / scale).
        i: the outcome bought.
        budget_units: money available (base units), >= 0.
        b: liquidity (numeraire units), > 0.
        scale: base units per unit, for both money and shares.

    Returns:
        (share base units bought, money base units charged); (0, 0) if the budget buys nothing.
    """
    scale = _check_scale(scale)
    if not isinstance(budget_units, Integral) or isinstance(budget_units, bool):
        raise InvalidParameter(f"budget_units(={budget_units!r}) must be an integer")
    budget_units = int(budget_units)
    if budget_units < 0:
        raise InvalidParameter(f"budget_units(={budget_units}) must be >= 0")
    qv = _as_vector(q, "q")
    i = _check_outcome(i, qv.shape[0])
    dq = np.zeros_like(qv)

    def charge_for(units: int) -> int:
        dq[i] = units / scale
        return charge_units(trade_cost(qv, dq, b), scale)

    def units_for(spend: int) -> int:
        return math.floor(Fraction(shares_for_budget(qv, i, spend / scale, b)) * scale)

    # The closed form usually fits at once; float rounding can put it one base unit over.
    over = units_for(budget_units)
    if over <= 0:
        return 0, 0
    charge = charge_for(over)
    if charge <= budget_units:
        return over, charge
    # Find a count that fits by aiming lower, then bisect for the largest one (cost rises with
    # shares; where a share costs far less than a base unit, aiming lower alone undershoots).
    spend, fits = budget_units, 0
    while spend > 0:
        spend -= max(1, charge - budget_units)
        fits = units_for(spend) if spend > 0 else 0
        if fits <= 0 or (charge := charge_for(fits)) <= budget_units:
            break
    fits = max(fits, 0)
    while over - fits > 1:
        mid = (over + fits) // 2
        if charge_for(mid) <= budget_units:
            fits = mid
        else:
            over = mid
    return (fits, charge_for(fits)) if fits > 0 else (0, 0)
