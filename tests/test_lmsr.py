"""LMSR kernel against an independent high-precision reference (decimal, 60 digits)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from contextlib import AbstractContextManager
from decimal import Context, Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mktsim.mechanisms import _lmsr as lmsr

from mktsim.errors import InvalidParameter

SCALE = 10**9

# --- an independent reference: the textbook formulas in 60-digit decimal arithmetic -------------


def _ctx() -> AbstractContextManager[Context]:
    return localcontext(Context(prec=60, Emax=10**8, Emin=-(10**8)))


def ref_cost(q: Sequence[float | Decimal], b: float) -> Decimal:
    """C(q) = b·ln Σ exp(q_i/b), evaluated directly (no shift) in decimal."""
    with _ctx():
        bb = Decimal(b)
        return bb * sum(((Decimal(x) / bb).exp() for x in q), Decimal(0)).ln()


def ref_trade_cost(q: Sequence[float], dq: Sequence[float], b: float) -> Decimal:
    with _ctx():
        after = [Decimal(a) + Decimal(d) for a, d in zip(q, dq, strict=True)]
        return ref_cost(after, b) - ref_cost(q, b)


def ref_prices(q: Sequence[float | Decimal], b: float) -> list[Decimal]:
    with _ctx():
        bb = Decimal(b)
        e = [(Decimal(x) / bb).exp() for x in q]
        total = sum(e)
        return [v / total for v in e]


def close(got: float, ref: Decimal, tol: float) -> bool:
    with _ctx():
        return abs(Decimal(got) - ref) <= Decimal(tol)


# --- strategies --------------------------------------------------------------------------------

liquidity = st.floats(0.01, 1000.0)
unit = st.floats(-50.0, 50.0)  # q and dq are drawn in units of b


@st.composite
def market(draw: st.DrawFn, n_min: int = 2, n_max: int = 6) -> tuple[float, list[float]]:
    b = draw(liquidity)
    n = draw(st.integers(n_min, n_max))
    level = draw(st.sampled_from([0.0, 1e3, -1e5, 1e6]))  # a common offset, in units of b
    q = [b * (level + draw(unit)) for _ in range(n)]
    return b, q


# --- prices and cost ---------------------------------------------------------------------------


@settings(max_examples=60)
@given(market())
def test_prices_match_reference_and_sum_to_one(bq: tuple[float, list[float]]) -> None:
    b, q = bq
    p = lmsr.prices(q, b)
    assert math.isclose(math.fsum(p), 1.0, abs_tol=1e-14)
    for got, ref in zip(p, ref_prices(q, b), strict=True):
        assert close(float(got), ref, 1e-12 * float(ref) + 1e-300)


@settings(max_examples=60)
@given(market())
def test_cost_matches_reference(bq: tuple[float, list[float]]) -> None:
    b, q = bq
    ref = ref_cost(q, b)
    assert close(lmsr.cost(q, b), ref, 1e-14 * abs(float(ref)) + 1e-14 * b)


def test_prices_are_the_gradient_of_cost() -> None:
    b, q = 3.0, np.array([1.0, -2.0, 4.0, 0.5])
    h = 1e-5
    for i in range(q.size):
        e = np.zeros_like(q)
        e[i] = h
        fd = (lmsr.cost(q + e, b) - lmsr.cost(q - e, b)) / (2 * h)
        assert math.isclose(fd, lmsr.prices(q, b)[i], rel_tol=1e-8)


# --- trade cost ---------------------------------------------------------------------------------


@settings(max_examples=80)
@given(market(), st.data())
def test_trade_cost_equals_cost_difference(
    bq: tuple[float, list[float]], data: st.DataObject
) -> None:
    b, q = bq
    dq = [b * data.draw(unit) for _ in q]
    ref = ref_trade_cost(q, dq, b)
    # Error scales with the trade, never with the level of q (which cancels exactly); the last
    # term is the reference's own resolution (60 digits of C(q)).
    tol = 1e-12 * (abs(float(ref)) + max(abs(d) for d in dq)) + 1e-50 * (abs(max(q)) + b)
    assert close(lmsr.trade_cost(q, dq, b), ref, tol)


def test_small_trade_at_large_level_keeps_relative_precision() -> None:
    # C(q) ~ 1e6: a difference of two costs would lose ~6 of the 16 digits here.
    b = 1.0
    q = [1e6, 1e6 - 2.0, 0.0]
    dq = [0.0, 1e-3, 0.0]
    ref = ref_trade_cost(q, dq, b)
    assert close(lmsr.trade_cost(q, dq, b), ref, 1e-13 * float(ref))


def test_huge_sale_does_not_lose_the_remainder() -> None:
    # Selling back far more than was bought: cost ≈ −(sold), the log1p form would cancel.
    b, q, dq = 2.0, [10.0, 0.0], [-400.0, -390.0]
    ref = ref_trade_cost(q, dq, b)
    assert close(lmsr.trade_cost(q, dq, b), ref, 1e-13 * abs(float(ref)))


@settings(max_examples=50)
@given(market(), st.lists(st.lists(unit, min_size=6, max_size=6), min_size=1, max_size=6))
def test_path_independence(bq: tuple[float, list[float]], raw: list[list[float]]) -> None:
    b, q0 = bq
    n = len(q0)
    trades = [np.array(t[:n]) * b for t in raw]
    stepwise, q = [], np.array(q0)
    for dq in trades:
        stepwise.append(lmsr.trade_cost(q, dq, b))
        q = q + dq
    reverse, q = [], np.array(q0)
    for dq in reversed(trades):
        reverse.append(lmsr.trade_cost(q, dq, b))
        q = q + dq
    at_once = lmsr.trade_cost(q0, np.sum(trades, axis=0), b)
    scale = sum(np.abs(t).max() for t in trades) + abs(at_once)
    assert math.isclose(math.fsum(stepwise), at_once, abs_tol=1e-11 * scale)
    assert math.isclose(math.fsum(reverse), at_once, abs_tol=1e-11 * scale)


# --- large q/b ------------------------------------------------------------------------------


def test_no_overflow_at_large_q_over_b() -> None:
    b = 0.5
    q = [1e6 * b, (1e6 - 3.0) * b, -1e6 * b]
    dq = [2.0 * b, -1.0 * b, 5e5 * b]
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        c = lmsr.cost(q, b)
        p = lmsr.prices(q, b)
        tc = lmsr.trade_cost(q, dq, b)
        s_budget = lmsr.shares_for_budget(q, 2, 10.0, b)
        s_price = lmsr.shares_to_price(q, 2, 0.25, b)
        s_buy_huge = lmsr.shares_for_budget(q, 0, 1e9, b)
    assert close(c, ref_cost(q, b), 1e-14 * c)
    for got, ref in zip(p, ref_prices(q, b), strict=True):
        assert close(float(got), ref, 1e-12 * float(ref) + 1e-300)
    assert p[2] == 0.0  # e**-4e6 underflows; it must not turn into nan
    assert close(tc, ref_trade_cost(q, dq, b), 1e-12 * (abs(tc) + 5e5 * b))
    assert close(lmsr.trade_cost(q, [0, 0, s_budget], b), Decimal(10), 1e-9)
    with _ctx():
        after = list(map(Decimal, q))
        after[2] += Decimal(s_price)
        assert close(0.25, ref_prices(after, b)[2], 1e-9)
    assert close(lmsr.trade_cost(q, [s_buy_huge, 0, 0], b), Decimal(10**9), 1e-6)


# --- closed-form inverses -------------------------------------------------------------------


@settings(max_examples=60)
@given(market(), st.data())
def test_shares_for_budget_spends_exactly_the_budget(
    bq: tuple[float, list[float]], data: st.DataObject
) -> None:
    b, q = bq
    i = data.draw(st.integers(0, len(q) - 1))
    budget = b * data.draw(st.floats(1e-9, 1e3))
    s = lmsr.shares_for_budget(q, i, budget, b)
    assert s >= 0.0
    dq = [0.0] * len(q)
    dq[i] = s
    # Conditioning: d(cost)/ds = p_i' <= 1, so an error of a few ulps in s moves cost by as much.
    assert close(budget, ref_trade_cost(q, dq, b), 1e-12 * (budget + s))
    assert lmsr.shares_for_budget(q, i, 0.0, b) == 0.0


@settings(max_examples=60)
@given(market(), st.data())
def test_shares_to_price_lands_on_target(
    bq: tuple[float, list[float]], data: st.DataObject
) -> None:
    b, q = bq
    i = data.draw(st.integers(0, len(q) - 1))
    target = data.draw(st.floats(1e-6, 1 - 1e-6))
    s = lmsr.shares_to_price(q, i, target, b)
    with _ctx():
        after = list(map(Decimal, q))
        after[i] += Decimal(s)
        p_after = ref_prices(after, b)
    # dp/ds = p(1−p)/b: a relative error eps in s moves the price by p(1−p)·eps·|s|/b.
    tol = 1e-12 * target * (1 - target) * (1 + abs(s) / b)
    assert close(target, p_after[i], tol)
    p_before = float(ref_prices(q, b)[i])
    assert (s > 0) == (target > p_before) or math.isclose(target, p_before, rel_tol=1e-9)


@settings(max_examples=50)
@given(market(n_max=5), st.data())
def test_shares_to_prices_is_buys_only_and_costs_the_max_log_ratio(
    bq: tuple[float, list[float]], data: st.DataObject
) -> None:
    b, q = bq
    w = np.array([data.draw(st.floats(0.01, 1.0)) for _ in q])
    target = w / w.sum()
    dq = lmsr.shares_to_prices(q, target, b)
    assert dq.min() == 0.0 and (dq >= 0).all()
    with _ctx():
        after = [Decimal(a) + Decimal(d) for a, d in zip(q, dq, strict=True)]
        p_after = ref_prices(after, b)
        p_before = ref_prices(q, b)
        # Moving p -> p' with buys only costs b·max_j ln(p_j / p'_j).
        expected = Decimal(b) * max(
            (pb / Decimal(t)).ln() for pb, t in zip(p_before, target, strict=True)
        )
    for got, ref in zip(target, p_after, strict=True):
        assert close(float(got), ref, 1e-10)
    assert close(lmsr.trade_cost(q, dq, b), expected, 1e-10 * (b + float(dq.max())))


# --- the maker's books ------------------------------------------------------------------------

trade_lists = st.lists(st.lists(unit, min_size=6, max_size=6), min_size=1, max_size=12)


@settings(max_examples=60)
@given(st.integers(2, 6), liquidity, trade_lists)
def test_maker_loss_never_exceeds_b_ln_n(n: int, b: float, raw: list[list[float]]) -> None:
    book = lmsr.LMSRBook.start(n, b)
    charged = []
    for t in raw:
        book, c = book.trade(np.array(t[:n]) * b)
        charged.append(c)
        assert math.isclose(math.fsum(book.prices()), 1.0, abs_tol=1e-14)
    bound = b * math.log(n)
    slack = 1e-11 * (b + sum(abs(x) for t in raw for x in t) * b)
    for k in range(n):
        assert book.loss(k) <= bound + slack
        assert book.loss(k) == book.payout(k) - book.revenue
    # Revenue telescopes to C(q_T) − C(0), computed independently.
    assert close(book.revenue, ref_cost(book.q, b) - ref_cost([0.0] * n, b), slack)
    assert math.isclose(book.revenue, math.fsum(charged), abs_tol=slack)


@pytest.mark.parametrize("n", [2, 3, 7])
def test_worst_case_loss_is_approached_by_buying_one_outcome(n: int) -> None:
    b = 4.0
    book = lmsr.replay([[20.0 * b if j == 1 else 0.0 for j in range(n)]], n, b)
    bound = lmsr.worst_case_loss(n, b)
    assert math.isclose(bound, b * math.log(n), rel_tol=1e-15)
    # Loss = q_1 − (C(q) − C(0)) = b·ln n − b·ln(1 + (n−1)·e**−20): just below the bound.
    expected = b * math.log(n) - b * math.log1p((n - 1) * math.exp(-20.0))
    assert math.isclose(book.loss(1), expected, rel_tol=0, abs_tol=1e-12)
    assert book.loss(1) < bound
    # Any other outcome resolving costs the maker nothing: it pays 0 and kept the revenue.
    assert book.loss(0) < 0


def test_book_is_a_value() -> None:
    book = lmsr.LMSRBook.start(3, 1.0)
    after, c = book.trade([1.0, 0.0, 0.0])
    assert book.q == (0.0, 0.0, 0.0) and book.revenue == 0.0
    assert after.q == (1.0, 0.0, 0.0) and after.revenue == c > 0
    assert math.isclose(book.quote([1.0, 0.0, 0.0]), c)


# --- integer base units -------------------------------------------------------------------------


@given(st.floats(-1e5, 1e5))
def test_charge_rounds_in_the_makers_favour(c: float) -> None:
    charge = lmsr.charge_units(c, SCALE)
    exact = Fraction(c) * SCALE
    # The smallest whole charge not below the cost, up to float noise (8 ulps) in the cost.
    assert charge >= exact - abs(exact) * Fraction(1, 2**49)
    assert charge - 1 < exact


@pytest.mark.parametrize(
    ("cost", "units"),
    [(2e-9, 2), (2.5e-9, 3), (-2.5e-9, -2), (1.0000000005, SCALE + 1), (1 + 2**-52, SCALE)],
)
def test_charge_examples(cost: float, units: int) -> None:
    # 2e-9 is stored just above 2e-9 and must not cost 3 base units; −2.5e-9 means the maker pays
    # 2 base units, not 3; half a base unit above 1 rounds up, one ulp above 1 is noise.
    assert lmsr.charge_units(cost, SCALE) == units


def check_budget_order(q: list[float], i: int, budget: int, b: float) -> None:
    units, charge = lmsr.budget_order_units(q, i, budget, b, scale=SCALE)
    assert 0 <= charge <= budget and units >= 0

    def ref_units_cost(u: int) -> Decimal:
        dq = [0.0] * len(q)
        dq[i] = u / SCALE
        return ref_trade_cost(q, dq, b) * SCALE

    if units:
        assert Decimal(charge) >= ref_units_cost(units) - Decimal(1)  # float cost: <= 1 unit off
    # Two more share base units would overspend (one more may sit on a float rounding edge).
    assert ref_units_cost(units + 2) > budget


@settings(max_examples=50)
@given(market(n_max=4), st.data())
def test_budget_order_never_overspends_and_is_maximal(
    bq: tuple[float, list[float]], data: st.DataObject
) -> None:
    b, q = bq
    i = data.draw(st.integers(0, len(q) - 1))
    # Within the documented float range |cost|·scale < 2**52.
    check_budget_order(q, i, data.draw(st.integers(0, 10**5 * SCALE)), b)


def test_budget_order_steps_back_when_rounding_overshoots() -> None:
    # Found by search: here the floored share count's float cost rounds one base unit over.
    q = [-2323.6044142064893, 3118.4828523330534, -2299.0500247333416]
    check_budget_order(q, 2, 3800, 69.00993638986066)


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize("b", [0.0, -1.0, math.inf, math.nan])
def test_bad_liquidity_is_refused(b: float) -> None:
    with pytest.raises(InvalidParameter, match=r"liquidity b"):
        lmsr.prices([0.0, 0.0], b)
    with pytest.raises(InvalidParameter, match=r"liquidity b"):
        lmsr.LMSRBook.start(2, b)


@pytest.mark.parametrize(
    ("q", "match"),
    [([0.0, math.nan], r"q\[1\]"), ([1.0], r"at least 2"), ([[0.0, 1.0]], r"1-D")],
)
def test_bad_q_is_refused(q: list[float], match: str) -> None:
    with pytest.raises(InvalidParameter, match=match):
        lmsr.cost(q, 1.0)


def test_bad_arguments_are_refused() -> None:
    q = [0.0, 1.0, 2.0]
    with pytest.raises(InvalidParameter, match=r"dq has 2 outcomes, expected 3"):
        lmsr.trade_cost(q, [1.0, 1.0], 1.0)
    with pytest.raises(InvalidParameter, match=r"outcome index i\(=3\)"):
        lmsr.shares_for_budget(q, 3, 1.0, 1.0)
    with pytest.raises(InvalidParameter, match=r"budget\(=-1.0\)"):
        lmsr.shares_for_budget(q, 0, -1.0, 1.0)
    for t in (0.0, 1.0, math.nan):
        with pytest.raises(InvalidParameter, match=r"target"):
            lmsr.shares_to_price(q, 0, t, 1.0)
    with pytest.raises(InvalidParameter, match=r"sum to 1"):
        lmsr.shares_to_prices(q, [0.5, 0.5, 0.5], 1.0)
    with pytest.raises(InvalidParameter, match=r"n\(=1\)"):
        lmsr.worst_case_loss(1, 1.0)
    with pytest.raises(InvalidParameter, match=r"outcome index"):
        lmsr.LMSRBook.start(2, 1.0).payout(2)
    with pytest.raises(InvalidParameter, match=r"scale"):
        lmsr.charge_units(1.0, 0)
