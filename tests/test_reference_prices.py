"""The protocol's optional prices-only read (``reference_prices``) against the prices a quote
shows, worked out here from the book's best bid and ask and last trade: the geometric mid of a
two-sided book, the one best price of a one-sided book, the last trade of an empty one, None
before any; a market without the fast path is read through its quote."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from test_book_repost import make_market

from mktsim.market import prices_reader
from mktsim.orders import Cancel, Limit, MarketOrder, Modify, Quote


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


def _shown(market: Any) -> dict[str, float | None]:
    """The reference prices worked out from what the full quote shows of each book."""
    quote = market.quote()
    return {g: _expected(q.best_bid, q.best_ask, q.last) for g, q in quote.goods.items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kept_prices_are_read_again_whenever_a_book_changes(seed: int) -> None:
    """The read keeps each good's price while its book stands still: after every step of a
    random run of orders, cancels, modifies, market orders, one-call reposts, expiries and
    clears, it equals the prices the quote reads afresh, and those worked out here from the
    quote's best bid and ask and last trade."""
    rng = np.random.default_rng(seed)
    market, ctx = make_market([[100.0, 5.0, 5.0]] * 6, order_lifetime=3.0)
    env = ctx.env
    resting: list[tuple[int, str, int]] = []
    for step in range(400):
        agent, good = int(rng.integers(6)), str(rng.choice(["x", "y"]))
        side = "buy" if rng.random() < 0.5 else "sell"
        price, qty = round(float(rng.uniform(0.8, 1.2)), 2), 0.1 * int(rng.integers(1, 4))
        kind = rng.random()
        if kind < 0.45:
            receipt = market.submit(Limit(agent, good, side, qty, price)).value
            if receipt.resting:
                resting.append((agent, good, receipt.order_id))
        elif kind < 0.6 and resting:
            who, where, oid = resting.pop(int(rng.integers(len(resting))))
            market.submit(Cancel(who, where, oid))
        elif kind < 0.72 and resting:
            who, where, oid = resting[int(rng.integers(len(resting)))]
            market.submit(Modify(who, where, oid, qty=0.1, price=price))
        elif kind < 0.8:
            market.submit(MarketOrder(agent, good, side, 0.1))
        elif kind < 0.9:
            old = resting.pop()[2] if resting and resting[-1][:2] == (agent, good) else 0
            new = market.repost(agent, good, old, side == "buy", 1, round(price / 0.01))
            if new:
                resting.append((agent, good, new))
        elif kind < 0.97:
            env.run(until=env.now + float(rng.uniform(0.5, 2.0)))  # lifetimes run out
        else:
            market.clear()
            resting.clear()
        kept, shown = market.reference_prices(), _shown(market)
        assert kept == dict(market.quote().prices), f"step {step}"  # read afresh
        assert kept.keys() == shown.keys()
        for good, price in shown.items():
            assert kept[good] == (None if price is None else pytest.approx(price, rel=1e-12))
