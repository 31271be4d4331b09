"""The ledger conserves every good exactly and never lets a holding go negative."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mktsim.errors import ConservationError, InvalidParameter
from mktsim.goods import BASE_UNITS, Goods
from mktsim.ledger import Ledger
from mktsim.recorder import Recorder


def make_ledger(holdings: np.ndarray) -> Ledger:
    goods = Goods.of([f"g{j}" for j in range(holdings.shape[1])])
    rec = Recorder({"goods": goods.names, "populations": ["p"]})
    return Ledger(goods, holdings, rec)


@st.composite
def economies(draw):
    n = draw(st.integers(2, 12))
    g = draw(st.integers(2, 5))
    held = draw(arrays(np.int64, (n, g), elements=st.integers(0, 10 * BASE_UNITS)))
    return held


@given(economies(), st.data())
def test_random_exchanges_conserve_exactly(held, data):
    ledger = make_ledger(held)
    n, g = held.shape
    totals = held.sum(axis=0)
    for _ in range(data.draw(st.integers(1, 6))):
        prices = np.concatenate(
            [[1.0], data.draw(arrays(float, g - 1, elements=st.floats(0.01, 100)))]
        )
        # a random voluntary trade: each agent moves a fraction toward a random affordable bundle
        x = ledger.units()
        target = data.draw(arrays(float, (n, g), elements=st.floats(0, 1))) + 1e-3
        target *= ((x @ prices) / (target @ prices))[:, None]
        z = target - x
        # clear each good by scaling its long side, as a mechanism would
        for j in range(1, g):
            pos, neg = z[:, j].clip(0).sum(), -z[:, j].clip(None, 0).sum()
            if pos > neg:
                z[z[:, j] > 0, j] *= neg / pos
            elif neg > pos:
                z[z[:, j] < 0, j] *= pos / neg
        # money may not be affordable after rationing: keep only agents who can pay
        cost = z[:, 1:] @ prices[1:]
        ok = cost <= x[:, 0]
        if not ok.all():
            continue
        ledger.exchange(np.arange(n), z, prices)
        assert np.array_equal(ledger.holdings.sum(axis=0), totals)
        assert (ledger.holdings >= 0).all()
        assert ledger.conserved()


@given(economies(), st.integers(0, 11), st.integers(0, 11), st.integers(1, 3 * BASE_UNITS))
def test_bilateral_trade_conserves_or_refuses(held, buyer, seller, qty):
    ledger = make_ledger(held)
    n = held.shape[0]
    buyer, seller = buyer % n, seller % n
    before = ledger.holdings.copy()
    cash = qty // 2
    if buyer == seller:
        with pytest.raises(InvalidParameter):
            ledger.trade(buyer, seller, 1, qty, cash, 0.5)
    elif before[seller, 1] < qty or before[buyer, 0] < cash:
        with pytest.raises(ConservationError):
            ledger.trade(buyer, seller, 1, qty, cash, 0.5)
        assert np.array_equal(ledger.holdings, before)
    else:
        ledger.trade(buyer, seller, 1, qty, cash, 0.5)
        after = ledger.holdings
        assert after[buyer, 1] - before[buyer, 1] == qty
        assert after[seller, 0] - before[seller, 0] == cash
        assert ledger.conserved()


def test_holdings_are_read_only():
    ledger = make_ledger(np.ones((2, 2), dtype=np.int64))
    with pytest.raises(ValueError):
        ledger.holdings[0, 0] = 5


def test_unbalanced_exchange_is_refused():
    ledger = make_ledger(np.full((3, 2), 10 * BASE_UNITS, dtype=np.int64))
    with pytest.raises(ConservationError):
        ledger.exchange(np.arange(3), np.array([[0, 5.0], [0, 5.0], [0, 0.0]]), np.ones(2))


def test_create_and_destroy_are_counted():
    ledger = make_ledger(np.full((2, 2), BASE_UNITS, dtype=np.int64))
    ledger.create(0, np.array([0, 5]), "gift")
    ledger.destroy(1, np.array([3, 0]), "eaten")
    assert ledger.conserved()
    with pytest.raises(ConservationError):
        ledger.destroy(1, np.array([10 * BASE_UNITS, 0]), "too much")


def test_rounding_an_exchange_to_base_units_never_creates_money():
    """Goods rounded toward zero can leave a buyer that spends all its money short by less than
    a base unit's worth of each good: it pays what it holds, the seller absorbs the difference,
    and every column still balances (found by the property test above at base-unit scale)."""
    ledger = make_ledger(np.array([[10, 20, 10], [10, 10, 10], [10, 0, 10]]))
    deltas = np.array([[0.0, -9.0566, 0.9434], [0.0, 0.0, 0.0], [0.0, 9.0566, -0.9434]]) * 1e-9
    ledger.exchange(np.arange(3), deltas, np.array([1.0, 1.25, 11.0]))
    h = ledger.holdings
    # 9 base units of g1 change hands, none of g2 (0.94 rounds to 0); they are worth 11.25 base
    # units of money, of which the buyer holds 10: it pays those 10 to the seller
    assert h.tolist() == [[20, 11, 10], [10, 10, 10], [0, 9, 10]]
    assert ledger.conserved()
