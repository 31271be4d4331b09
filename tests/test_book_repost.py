"""The order book's one-call withdraw-and-post (``repost``) against what it stands for, written
out here through the protocol: a ``Cancel`` sent when ``resting`` says the order still rests,
then a ``Limit`` cut to the whole lots ``available`` pays for. Two markets fed the same random
actions, one each way, must end with the same books, reservations, holdings, counts and ids;
under a shock the one-call path declines and changes nothing, and wrappers never offer it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st
from mktsim.mechanisms.order_book import OrderBookMarket

from mktsim import CobbDouglas, Consumers, Scenario
from mktsim.goods import to_base
from mktsim.ledger import Ledger
from mktsim.mechanism import MarketContext, PopulationSlot
from mktsim.orders import Cancel, Limit
from mktsim.random import Streams
from mktsim.recorder import Recorder
from mktsim.shocks import CircuitBreaker, LatencySpike, Outage
from mktsim.wrappers import wrap

GOODS = ("money", "x", "y")
TICK, LOT = 0.01, 0.1
B = 10**9
TB = round(TICK * LOT * B)  # base units of money per tick per lot
LB = round(LOT * B)  # base units of a good per lot


def make_market(holdings: Any, **options: Any) -> tuple[OrderBookMarket, MarketContext]:
    holdings = np.asarray(holdings, dtype=float)
    n = holdings.shape[0]
    pop = Consumers(
        "traders", CobbDouglas(np.full((n, 3), 1 / 3)), holdings + 1, behaviour="external"
    )
    scenario = Scenario("t", list(GOODS), [pop])
    env = simpy.Environment()
    recorder = Recorder({"goods": list(GOODS), "populations": ["traders"]})
    ledger = Ledger(scenario.goods, to_base(holdings), recorder, lambda: env.now)
    slots = (PopulationSlot(0, pop, slice(0, n)),)
    ctx = MarketContext(
        env, scenario, scenario.goods, ledger, recorder, Streams(0), slots, env.event()
    )
    market = OrderBookMarket(tick=TICK, lot=LOT, **options)
    market.attach(ctx)
    return market, ctx


def by_orders(
    market: OrderBookMarket, agent: int, good: str, old: int, buy: bool, lots: int, ticks: int
) -> int:
    """The withdraw-and-post written out through submit (the reference)."""
    if old and market.resting(agent, good, old):
        market.submit(Cancel(agent, good, old))
    if buy:
        afford = market.available(agent, "money") // (ticks * TB)
    else:
        afford = market.available(agent, good) // LB
    lots = min(lots, afford)
    if lots <= 0:
        return 0
    receipt = market.submit(
        Limit(agent, good, "buy" if buy else "sell", lots * LOT, ticks * TICK)
    ).value
    return (receipt.order_id or 0) if receipt.resting else 0


def state(market: OrderBookMarket, ctx: MarketContext) -> tuple[Any, ...]:
    books = tuple(
        tuple(market.book(g).orders("buy")) + tuple(market.book(g).orders("sell")) for g in (1, 2)
    )
    reserved = tuple(market.reserved(a) for a in range(ctx.scenario.n_agents))
    return ctx.ledger.holdings.tolist(), books, reserved, dict(market.counts)


ACTION = st.tuples(
    st.integers(0, 3),  # agent
    st.sampled_from(["x", "y"]),
    st.booleans(),  # buy
    st.integers(1, 30),  # lots
    st.integers(80, 120),  # ticks
)


@settings(max_examples=40, deadline=None)
@given(st.lists(ACTION, min_size=1, max_size=60), st.sampled_from(["rejected", "all"]))
def test_repost_does_what_a_cancel_and_a_sized_limit_do(actions, record_orders):
    holdings = [[3.0, 1.0, 2.0], [1.0, 2.5, 0.5], [10.0, 0.0, 0.0], [0.0, 4.0, 4.0]]
    fast, fast_ctx = make_market(holdings, record_orders=record_orders)
    slow, slow_ctx = make_market(holdings, record_orders=record_orders)
    live_fast: dict[tuple[int, str], int] = {}
    live_slow: dict[tuple[int, str], int] = {}
    for agent, good, buy, lots, ticks in actions:
        key = (agent, good)
        new = fast.repost(agent, good, live_fast.get(key, 0), buy, lots, ticks)
        assert new is not None
        live_fast[key] = new
        live_slow[key] = by_orders(slow, agent, good, live_slow.get(key, 0), buy, lots, ticks)
        assert live_fast[key] == live_slow[key]
        assert state(fast, fast_ctx) == state(slow, slow_ctx)
    assert fast_ctx.recorder.frame("trades").equals(slow_ctx.recorder.frame("trades"))
    assert fast_ctx.recorder.frame("orders").equals(slow_ctx.recorder.frame("orders"))


@pytest.mark.parametrize(
    "shock", [Outage(time=0, duration=5), LatencySpike(time=0, duration=5, delay=1.0)]
)
def test_repost_declines_under_a_shock_and_changes_nothing(shock):
    market, ctx = make_market([[3.0, 1.0, 2.0], [1.0, 2.5, 0.5]])
    wrapped = wrap(market, ctx.env, [shock])
    oid = wrapped.repost(0, "x", 0, True, 5, 100)  # no shock in force yet: the book's own
    assert oid and market.resting(0, "x", oid) == pytest.approx(0.5)
    wrapped.apply_shock(shock)
    before = state(market, ctx)
    assert wrapped.repost(0, "x", oid, True, 5, 101) is None
    assert wrapped.repost(1, "x", 0, False, 5, 90) is None
    assert state(market, ctx) == before


def test_wrappers_pass_repost_through_only_while_no_shock_acts():
    market, ctx = make_market([[3.0, 1.0, 2.0], [1.0, 2.5, 0.5]])
    wrapped = wrap(market, ctx.env, [CircuitBreaker(time=0, threshold=0.1, halt=1.0)])
    assert wrapped is not market
    assert wrapped.repost(0, "x", 0, True, 5, 100)  # the breaker is not armed yet
    wrapped.apply_shock(CircuitBreaker(time=0, threshold=0.1, halt=1.0))
    before = state(market, ctx)
    assert wrapped.repost(1, "x", 0, False, 5, 90) is None  # armed: orders go through submit
    assert state(market, ctx) == before
    assert wrapped.available(0, "money") == market.available(0, "money")  # others pass through
