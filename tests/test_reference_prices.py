"""The protocol's optional prices-only read (``reference_prices``) against the prices a quote
shows, worked out here from the book's best bid and ask and last trade: the geometric mid of a
two-sided book, the one best price of a one-sided book, the last trade of an empty one, None
before any; a market without the fast path is read through its quote."""

from __future__ import annotations

import math

import pytest
from test_book_repost import make_market

from mktsim.market import prices_reader
from mktsim.orders import Limit, Quote


def _expected(bid: float | None, ask: float | None, last: float | None) -> float | None:
    if bid is not None and ask is not None:
        return math.sqrt(bid * ask)
    if bid is not None or ask is not None:
        return bid if ask is None else ask
    return last


def test_reference_prices_follow_the_book_as_it_fills_and_empties():
    market, _ctx = make_market([[100.0, 5.0, 5.0]] * 4)
    read = prices_reader(market)
    assert read == market.reference_prices
    assert read() == {"x": None, "y": None} == dict(market.quote().prices)
    steps = [
        Limit(0, "x", "buy", 0.2, 1.25),  # x: a bid only
        Limit(1, "x", "sell", 0.1, 1.60),  # x: both sides
        Limit(2, "y", "sell", 0.1, 0.75),  # y: an ask only
        Limit(3, "y", "buy", 0.1, 0.75),  # y trades the ask away: its last trade
        Limit(3, "x", "buy", 0.1, 1.60),  # x: the ask taken, the bid left
    ]
    wanted = [
        {"x": 1.25, "y": None},
        {"x": _expected(1.25, 1.60, None), "y": None},
        {"x": _expected(1.25, 1.60, None), "y": 0.75},
        {"x": _expected(1.25, 1.60, None), "y": 0.75},
        {"x": 1.25, "y": 0.75},
    ]
    for order, want in zip(steps, wanted, strict=True):
        assert market.submit(order).value.status != "rejected"
        got = read()
        assert got.keys() == want.keys()
        for good, price in want.items():
            assert got[good] == (None if price is None else pytest.approx(price, rel=1e-12))
        # what the quote shows, and the base quote built from the same read
        assert got == dict(market.quote().prices) == dict(market.reference_quote().prices)


def test_a_market_without_the_fast_path_is_read_through_its_quote():
    class Posted:
        """A market showing fixed prices through its quote alone."""

        def quote(self) -> Quote:
            return Quote(0.0, {"x": 2.0, "y": None})

    assert prices_reader(Posted())() == {"x": 2.0, "y": None}
