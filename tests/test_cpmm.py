"""Constant-product kernel against exact rational closed forms written out here."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mktsim.mechanisms import _cpmm as cp

from mktsim.errors import InvalidParameter

# --- independent references: the closed forms in exact rationals ------------------------------


def ref_out(r_in: float, r_out: float, d: float, fee: float) -> Fraction:
    """Output for input d: solves (r_in + g·d)(r_out − out) = r_in·r_out."""
    g = 1 - Fraction(fee)
    r_in_, r_out_, d_ = Fraction(r_in), Fraction(r_out), Fraction(d)
    return r_out_ - r_in_ * r_out_ / (r_in_ + g * d_)


def ref_in(r_in: float, r_out: float, want: float, fee: float) -> Fraction:
    """Input for output want: the same invariant solved for the input."""
    g = 1 - Fraction(fee)
    r_in_, r_out_ = Fraction(r_in), Fraction(r_out)
    return (r_in_ * r_out_ / (r_out_ - Fraction(want)) - r_in_) / g


def rel_close(got: float, ref: Fraction | float, rel: float) -> bool:
    return abs(Fraction(got) - Fraction(ref)) <= Fraction(rel) * abs(Fraction(ref))


reserve = st.floats(1e-3, 1e9)
fees = st.sampled_from([0.0, 0.0005, 0.003, 0.01, 0.3])


# --- float closed forms -----------------------------------------------------------------------


@settings(max_examples=80)
@given(reserve, reserve, st.one_of(st.just(0.0), st.floats(1e-12, 1e10)), fees)
def test_swap_out_matches_closed_form_and_keeps_k(
    r_in: float, r_out: float, d: float, f: float
) -> None:
    out = cp.swap_out(r_in, r_out, d, f)
    assert 0.0 <= out < r_out or math.isclose(out, r_out, rel_tol=1e-15)
    assert rel_close(out, ref_out(r_in, r_out, d, f), 1e-13)
    # k holds up to the float rounding of `out`, which r_out − out magnifies by (r_in + d)·r_out.
    k_after = (Fraction(r_in) + Fraction(d)) * (Fraction(r_out) - Fraction(out))
    slack = Fraction(1e-15) * (Fraction(r_in) + Fraction(d)) * Fraction(r_out)
    k = Fraction(r_in) * Fraction(r_out)
    assert k_after >= k - slack
    if f == 0.0:
        assert k_after <= k + slack


@settings(max_examples=80)
@given(reserve, reserve, st.one_of(st.just(0.0), st.floats(1e-12, 0.999)), fees)
def test_swap_in_for_out_matches_closed_form(
    r_in: float, r_out: float, frac: float, f: float
) -> None:
    want = r_out * frac
    pay = cp.swap_in_for_out(r_in, r_out, want, f)
    assert isinstance(pay, float)
    assert rel_close(pay, ref_in(r_in, r_out, want, f), 1e-12)


@pytest.mark.parametrize("want", [200.0, 250.0])
def test_swap_in_for_out_refuses_what_the_pool_cannot_supply(want: float) -> None:
    res = cp.swap_in_for_out(100.0, 200.0, want, 0.003)
    assert isinstance(res, cp.Rejection)
    assert "reserve" in res.reason


def test_marginal_prices_are_derivatives_of_the_swap() -> None:
    x, y, f, h = 120.0, 480.0, 0.003, 1e-7
    bid, ask = cp.marginal_prices(x, y, f)
    assert math.isclose(cp.spot_price(x, y), y / x)
    # Selling h of the good yields bid·h; buying h of the good costs ask·h (to first order).
    assert math.isclose(cp.swap_out(x, y, h, f) / h, bid, rel_tol=1e-6)
    assert math.isclose(h / cp.swap_out(y, x, h, f), ask, rel_tol=1e-6)


@settings(max_examples=80)
@given(reserve, reserve, st.floats(-6.0, 6.0))
def test_arbitrage_without_fee_lands_on_the_square_root_closed_form(
    x: float, y: float, log_ratio: float
) -> None:
    price = y / x * math.exp(log_ratio)
    t = cp.arbitrage_to_price(x, y, price, 0.0)
    k = x * y
    assert math.isclose(t.x, math.sqrt(k / price), rel_tol=1e-12)
    assert math.isclose(t.y, math.sqrt(k * price), rel_tol=1e-12)
    assert math.isclose(t.y / t.x, price, rel_tol=1e-12)
    if t.side is cp.SwapSide.BUY:
        assert rel_close(t.amount_out, ref_out(y, x, t.amount_in, 0.0), 1e-12)
    elif t.side is cp.SwapSide.SELL:
        assert rel_close(t.amount_out, ref_out(x, y, t.amount_in, 0.0), 1e-12)
    else:
        assert math.isclose(price, y / x, rel_tol=1e-15)


def slope(r_in: float, r_out: float, d: float, f: float) -> Fraction:
    """d(out)/d(input) at input d, differentiating the closed form by hand."""
    g = 1 - Fraction(f)
    return g * Fraction(r_in) * Fraction(r_out) / (Fraction(r_in) + g * Fraction(d)) ** 2


@settings(max_examples=80)
@given(reserve, reserve, st.floats(-6.0, 6.0), fees.filter(lambda f: f > 0))
def test_arbitrage_with_fee_is_the_most_profitable_trade(
    x: float, y: float, log_ratio: float, f: float
) -> None:
    price = y / x * math.exp(log_ratio)
    g = 1 - f
    t = cp.arbitrage_to_price(x, y, price, f)
    if g * y / x <= price <= y / (g * x):
        assert t.side is None and t.amount_in == 0.0
        return
    buy = t.side is cp.SwapSide.BUY
    r_in, r_out = (y, x) if buy else (x, y)
    out = ref_out(r_in, r_out, t.amount_in, f)
    assert rel_close(t.amount_out, out, 1e-12)
    # First-order condition: the last unit of the trade is priced at P.
    last_unit_price = 1 / slope(r_in, r_out, t.amount_in, f) if buy else slope(x, y, t.amount_in, f)
    assert rel_close(price, last_unit_price, 1e-10)

    def profit(d: float) -> float:  # at the external price, in numeraire
        o = float(ref_out(r_in, r_out, d, f))
        return price * o - d if buy else o - price * d

    best = profit(t.amount_in)
    assert best > 0
    for step in (0.99, 1.01):
        assert profit(t.amount_in * step) <= best
    # Afterwards P lies within the pool's quoted [bid, ask]: no further trade pays.
    x_after = Fraction(x) - out if buy else Fraction(x) + Fraction(t.amount_in)
    y_after = Fraction(y) + Fraction(t.amount_in) if buy else Fraction(y) - out
    assert rel_close(t.x, x_after, 1e-12) and rel_close(t.y, y_after, 1e-12)
    bid, ask = Fraction(g) * y_after / x_after, y_after / (Fraction(g) * x_after)
    assert bid < Fraction(price) < ask


# --- the integer pool -------------------------------------------------------------------------

ops = st.lists(
    st.tuples(
        st.sampled_from(["in", "out"]),
        st.sampled_from(list(cp.SwapSide)),
        st.integers(1, 10**13),
    ),
    min_size=1,
    max_size=20,
)


@settings(max_examples=80)
@given(st.integers(1, 10**13), st.integers(1, 10**13), fees, ops)
def test_pool_swaps_round_for_the_pool_and_never_shrink_k(
    x: int, y: int, f: float, steps: list[tuple[str, cp.SwapSide, int]]
) -> None:
    pool = cp.Pool(x, y, f)
    for kind, side, amount in steps:
        r_in, r_out = (pool.y, pool.x) if side is cp.SwapSide.BUY else (pool.x, pool.y)
        res = pool.swap(side, amount) if kind == "in" else pool.swap_for(side, amount)
        if not res.accepted:
            assert res.reason and res.pool == pool and res.amount_in == res.amount_out == 0
            if kind == "out":
                assert amount >= r_out
            else:
                assert ref_out(r_in, r_out, amount, f) < 1
            continue
        if kind == "in":
            exact = ref_out(r_in, r_out, amount, f)
            assert res.amount_in == amount and res.amount_out == math.floor(exact)
        else:
            exact = ref_in(r_in, r_out, amount, f)
            assert res.amount_out == amount and res.amount_in == math.ceil(exact)
        # Reserves move by exactly the amounts traded, and never empty.
        new_in, new_out = (
            (res.pool.y, res.pool.x) if side is cp.SwapSide.BUY else (res.pool.x, res.pool.y)
        )
        assert (new_in, new_out) == (r_in + res.amount_in, r_out - res.amount_out)
        assert new_out >= 1
        k, k_after = r_in * r_out, new_in * new_out
        assert k_after >= k
        if f == 0.0:
            # Equality but for rounding: at most one base unit of either side, valued at the other.
            assert k_after - k < max(new_in, new_out)
        pool = res.pool


def test_exact_output_input_is_the_least_that_suffices() -> None:
    pool = cp.Pool(10**12, 3 * 10**12, 0.003)
    res = pool.swap_for(cp.SwapSide.BUY, 10**9)
    assert res.accepted
    assert ref_out(pool.y, pool.x, res.amount_in, 0.003) >= 10**9
    assert ref_out(pool.y, pool.x, res.amount_in - 1, 0.003) < 10**9


def test_pool_refusals_are_data() -> None:
    pool = cp.Pool(1000, 1000, 0.0)
    too_big = pool.swap_for(cp.SwapSide.SELL, 1000)
    assert not too_big.accepted and "reserve" in (too_big.reason or "")
    assert too_big.pool is pool
    dust = cp.Pool(10**12, 1, 0.0).swap(cp.SwapSide.SELL, 1)  # 1 unit of good buys < 1 of y
    assert not dust.accepted and dust.amount_out == 0


def test_pool_uses_exact_integers_beyond_int64() -> None:
    big = 10**20
    pool = cp.Pool(np.int64(2**62), big)  # a reserve from the ledger's int64 array
    assert isinstance(pool.x, int) and pool.k == 2**62 * big
    res = pool.swap(cp.SwapSide.BUY, big)
    assert res.amount_out == math.floor(ref_out(big, 2**62, big, 0.0)) == 2**61


@settings(max_examples=50)
@given(st.integers(10**9, 10**14), st.integers(10**9, 10**14), st.floats(-3.0, 3.0), fees)
def test_pool_arbitrage_leaves_no_arbitrage(x: int, y: int, log_ratio: float, f: float) -> None:
    pool = cp.Pool(x, y, f)
    price = y / x * math.exp(log_ratio)
    res = pool.arbitrage(price)
    bid, ask = pool.marginal_prices()
    # Rounding moves each reserve by at most a base unit or two.
    tol = 4.0 / min(pool.x, pool.y) + 1e-12
    if not res.accepted:  # nothing to do, or less than a base unit to do
        assert res.reason and res.pool is pool
        assert bid * (1 - tol) <= price <= ask * (1 + tol)
        return
    after = res.pool
    tol = 4.0 / min(after.x, after.y) + 1e-12
    new_bid, new_ask = after.marginal_prices()
    assert new_bid <= price * (1 + tol) and new_ask >= price * (1 - tol)
    if f == 0.0:
        assert math.isclose(after.x, math.sqrt(x * y / price), rel_tol=tol)
        assert math.isclose(after.y, math.sqrt(x * y * price), rel_tol=tol)
    again = after.arbitrage(price)  # nothing left but rounding dust
    assert not again.accepted or again.amount_in <= 2 + tol * max(after.x, after.y)


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"x": 0, "y": 1}, r"x\(=0\) must be >= 1"),
        ({"x": 1.5, "y": 1}, r"x\(=1.5\) must be an integer"),
        ({"x": 1, "y": True}, r"y\(=True\)"),
        ({"x": 1, "y": 1, "fee": 1.0}, r"fee\(=1.0\) must be in \[0, 1\)"),
        ({"x": 1, "y": 1, "fee": math.nan}, r"fee\(=nan\) must be finite"),
    ],
)
def test_bad_pool_is_refused(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(InvalidParameter, match=match):
        cp.Pool(**kwargs)


def test_bad_arguments_are_refused() -> None:
    pool = cp.Pool(100, 100)
    with pytest.raises(InvalidParameter, match=r"amount_in\(=0\)"):
        pool.swap(cp.SwapSide.BUY, 0)
    with pytest.raises(InvalidParameter, match=r"amount_out\(=-3\)"):
        pool.swap_for(cp.SwapSide.SELL, -3)
    with pytest.raises(InvalidParameter, match=r"side"):
        pool.swap("buy", 5)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter, match=r"r_in\(=-1.0\) must be > 0"):
        cp.swap_out(-1.0, 1.0, 1.0)
    with pytest.raises(InvalidParameter, match=r"dx\(=-1.0\) must be >= 0"):
        cp.swap_out(1.0, 1.0, -1.0)
    with pytest.raises(InvalidParameter, match=r"price\(=0.0\)"):
        cp.arbitrage_to_price(1.0, 1.0, 0.0)
    with pytest.raises(InvalidParameter, match=r"y\(=inf\) must be finite"):
        cp.spot_price(1.0, math.inf)
