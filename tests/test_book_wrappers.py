"""The order book and the call market under the shared shock wrappers (:mod:`mktsim.wrappers`),
checked against answers written here: the outage rule applied to every order a strategy sent,
arrival times and a naive price-time matching of orders delivered late, the book's state kept
through an outage, and conservation and same-seed identity under every market shock."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import pandas as pd
import pytest
import simpy
from mktsim.mechanisms.order_book import OrderBookMarket

import mktsim
from mktsim import CobbDouglas, Consumers, Scenario
from mktsim.goods import to_base
from mktsim.induced import induced_scenario
from mktsim.ledger import Ledger
from mktsim.mechanism import MarketContext, PopulationSlot
from mktsim.orders import Cancel, Limit, MarketOrder
from mktsim.random import Streams
from mktsim.recorder import Recorder
from mktsim.shocks import (
    CircuitBreaker,
    LatencySpike,
    LiquidityWithdrawal,
    Outage,
    PriceCeiling,
    PriceClamp,
    PriceFloor,
)
from mktsim.testing import check_mechanism
from mktsim.wrappers import CLOSED, Latency, ShockedMarket, wrap

GOODS = ["money", "x", "y"]
TICK, LOT = 0.01, 0.1


def crowd(seed: int = 3) -> Scenario:
    return mktsim.build_scenario("cobb_douglas", n_agents=30, seed=seed)


def zi_c_market() -> Scenario:
    rng = np.random.default_rng(11)
    values = (-np.sort(-rng.integers(1, 201, (20, 4)), axis=1)).tolist()
    costs = np.sort(rng.integers(1, 201, (20, 4)), axis=1).tolist()
    return induced_scenario("zic", values, costs, behaviour="zi_c", periods=2, period_length=20.0)


def make_market(n: int = 4) -> tuple[OrderBookMarket, MarketContext]:
    """A book of ``n`` 'external' agents holding 50 of everything, attached to a fresh run."""
    holdings = np.full((n, 3), 50.0)
    pop = Consumers("t", CobbDouglas(np.full((n, 3), 1 / 3)), holdings, behaviour="external")
    scenario = Scenario("t", GOODS, [pop])
    env = simpy.Environment()
    recorder = Recorder({"goods": GOODS, "populations": ["t"]})
    ledger = Ledger(scenario.goods, to_base(holdings), recorder, lambda: env.now)
    slots = (PopulationSlot(0, pop, slice(0, n)),)
    ctx = MarketContext(
        env, scenario, scenario.goods, ledger, recorder, Streams(1), slots, env.event()
    )
    market = OrderBookMarket(tick=TICK, lot=LOT, record_orders="all")
    market.attach(ctx)
    return market, ctx


# ---- outage ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mechanism", "scenario"),
    [
        ("order_book", crowd),
        ("order_book", zi_c_market),
        ("call_market", crowd),
        ("call_market", zi_c_market),
    ],
)
def test_an_outage_refuses_every_order_sent_in_it_and_nothing_trades(
    mechanism, scenario, monkeypatch
):
    sent: list[tuple[float, Any, Any]] = []  # (time, order, receipt) of every strategy order
    original = ShockedMarket.submit

    def spy(self: ShockedMarket, order: Any) -> simpy.Event:
        event = original(self, order)
        sent.append((float(self.env.now), order, event.value))
        return event

    monkeypatch.setattr(ShockedMarket, "submit", spy)
    start, end = 10.0, 16.0
    run = mktsim.simulate(scenario(), mechanism, seed=4, until=40, shocks=[Outage(start, 6.0)])
    inside = [(t, o, r) for t, o, r in sent if start <= t < end]
    orders = [(o, r) for _, o, r in inside if not isinstance(o, Cancel)]
    assert orders and any(isinstance(o, Cancel) for _, o, _ in inside)
    assert all(r.status == "rejected" and r.reason == CLOSED for _, r in orders)
    assert all(r.reason != CLOSED for t, _, r in sent if not start <= t < end)
    assert run.summary["rejections"][CLOSED] == len(orders)
    # no trade inside the window: a book receives no order to match; a call market's batches
    # hold only what was sent before it, which the clearing at its start settles
    times = run.trades["time"]
    first = start if mechanism == "order_book" else start + run.mechanism.interval
    assert not times.between(first, end, inclusive="left").any()
    assert (times >= end).any() and (times < start).any()
    assert run.summary["conservation_ok"]


def test_resting_orders_stay_through_an_outage_keep_their_priority_and_trade_after_it():
    market, ctx = make_market()
    env = ctx.env
    wrapped = wrap(market, env, [Outage(0, 5)], ctx.recorder)
    ask = wrapped.submit(Limit(0, "x", "sell", 1.0, 2.0)).value  # first in time at 2.0
    later = wrapped.submit(Limit(1, "x", "sell", 1.0, 2.0)).value
    bid = wrapped.submit(Limit(2, "x", "buy", 1.0, 1.5)).value
    reserved = (market.reserved(0), market.reserved(1), market.reserved(2))
    wrapped.apply_shock(Outage(0, 5))
    cross = wrapped.submit(Limit(3, "x", "buy", 1.0, 2.0)).value
    hit = wrapped.submit(MarketOrder(3, "x", "buy", 0.5)).value
    assert (cross.status, cross.reason, hit.status) == ("rejected", CLOSED, "rejected")
    # the book and every reservation are untouched; a cancel is accepted and releases one
    assert market.resting(0, "x", ask.order_id) == market.resting(1, "x", later.order_id) == 1.0
    assert (market.reserved(0), market.reserved(1), market.reserved(2)) == reserved
    gone = wrapped.submit(Cancel(2, "x", bid.order_id)).value
    assert gone.status == "cancelled" and market.reserved(2) == (0, [0, 0, 0])
    assert ctx.recorder.frame("trades").empty
    env.run(until=5.0)  # reopened: the first ask in time fills first, at its price
    fill = wrapped.submit(Limit(3, "x", "buy", 1.0, 2.5)).value
    assert (fill.status, fill.filled, fill.price) == ("filled", 1.0, 2.0)
    assert market.resting(0, "x", ask.order_id) == 0.0
    assert market.resting(1, "x", later.order_id) == 1.0
    # the refusals are in the book's orders table and in shock_refusals alike
    orders = ctx.recorder.frame("orders")
    assert (orders["reason"] == CLOSED).sum() == 2
    assert ctx.recorder.frame("shock_refusals")["reason"].tolist() == [CLOSED, CLOSED]


def test_handles_meet_the_wrappers_in_a_wrapped_book():
    market, ctx = make_market()
    wrapped = ShockedMarket(market, ctx.env, ctx.recorder, {"outage"})
    wrapped.apply_shock(Outage(0, 5))
    h = market.handle(1)
    assert h.limit("x", "buy", 0.5, 1.0).reason == CLOSED
    assert h.market_order("x", "sell", 0.5).reason == CLOSED
    assert h.limit("x", "buy", 0.55, 1.0).status == "rejected"  # off the lot grid: the handle's
    assert len(ctx.recorder.frame("shock_refusals")) == 2
    assert market.summary()["refused_closed"] == 2


# ---- latency -------------------------------------------------------------------------------
def naive_matching(orders: list[tuple[float, int, str, int, int]]) -> list[tuple[float, int, int]]:
    """Price-time priority written out: ``(arrival, agent, side, lots, ticks)`` in arrival order;
    each fill ``(time, ticks, lots)`` at the resting order's price."""
    bids: list[list[int]] = []  # [ticks, seq, lots]
    asks: list[list[int]] = []
    fills = []
    for seq, (t, _agent, side, lots, ticks) in enumerate(orders):
        book, other = (bids, asks) if side == "buy" else (asks, bids)
        while lots and other:
            best = (
                min(other, key=lambda o: (o[0], o[1]))
                if side == "buy"
                else max(other, key=lambda o: (o[0], -o[1]))
            )
            if (side == "buy" and best[0] > ticks) or (side == "sell" and best[0] < ticks):
                break
            q = min(lots, best[2])
            fills.append((t, best[0], q))
            lots -= q
            best[2] -= q
            if not best[2]:
                other.remove(best)
        if lots:
            book.append([ticks, seq, lots])
    return fills


def test_orders_delayed_by_a_spike_arrive_in_send_order_and_match_as_a_naive_book_would():
    market, ctx = make_market()
    env = ctx.env
    spike = LatencySpike(2.0, 4.0, 3.0)  # actions sent in [2, 6) take 3 longer
    wrapped = wrap(market, env, [spike], ctx.recorder)
    rng = np.random.default_rng(5)
    n = 60
    sends = np.sort(rng.uniform(0, 12, n))
    scripted = [
        (float(t), int(b), "buy" if b < 2 else "sell", int(q), int(p))
        for t, b, q, p in zip(
            sends,
            rng.integers(0, 4, n),
            rng.integers(1, 5, n),
            rng.integers(90, 111, n),
            strict=True,
        )
    ]  # buyers are agents 0 and 1, sellers 2 and 3: no self-trade

    def trader() -> Generator[simpy.Event, Any, None]:
        for t, agent, side, lots, ticks in scripted:
            yield env.timeout(t - env.now)
            wrapped.submit(Limit(agent, "x", side, lots * LOT, ticks * TICK))

    def shock() -> Generator[simpy.Event, Any, None]:
        yield env.timeout(spike.time)
        wrapped.apply_shock(spike)

    env.process(shock())
    env.process(trader())
    env.run(until=20)
    # arrival: sent + delay inside the spike, and never before an action sent earlier
    arrivals, last = [], -np.inf
    for t, *_ in scripted:
        last = max(t + (3.0 if 2.0 <= t < 6.0 else 0.0), last)
        arrivals.append(last)
    orders = ctx.recorder.frame("orders")
    placed = orders[orders["action"] == "limit"]
    np.testing.assert_allclose(placed["time"].to_numpy(), arrivals)
    assert placed["agent"].tolist() == [a for _, a, *_ in scripted]
    expected = naive_matching(
        [
            (a, agent, side, lots, ticks)
            for a, (_, agent, side, lots, ticks) in zip(arrivals, scripted, strict=True)
        ]
    )
    trades = ctx.recorder.frame("trades")
    bought = trades[
        (trades["quantity"] > 0) & (trades["agent"] < 2) & (trades["good"].astype(str) == "x")
    ]
    got = [
        (t, round(p / TICK), round(q / LOT))
        for t, p, q in zip(bought["time"], bought["price"], bought["quantity"], strict=True)
    ]
    assert len(expected) > 5
    assert [(round(t, 9), p, q) for t, p, q in got] == [(round(t, 9), p, q) for t, p, q in expected]
    assert ctx.ledger.conserved()
    latency = wrapped.wrappers["latency"]
    assert isinstance(latency, Latency)
    assert latency.delayed == sum(a > t for a, (t, *_) in zip(arrivals, scripted, strict=True))


def test_resting_answers_for_a_provisional_id_until_and_after_its_order_arrives():
    market, ctx = make_market()
    env = ctx.env
    wrapped = wrap(market, env, [LatencySpike(0, 5, 2.0)], ctx.recorder)
    wrapped.apply_shock(LatencySpike(0, 5, 2.0))
    rests = wrapped.submit(Limit(0, "x", "buy", 1.0, 1.0)).value
    fills = wrapped.submit(Limit(2, "x", "sell", 0.4, 1.0)).value
    assert rests.status == fills.status == "pending" and rests.order_id < 0
    assert np.isnan(wrapped.resting(0, "x", rests.order_id))  # on its way
    env.run(until=3)
    assert wrapped.resting(0, "x", rests.order_id) == pytest.approx(0.6)
    assert wrapped.resting(2, "x", fills.order_id) == 0.0  # it traded in full: never rested
    # a cancel naming it reaches the book under the book's id
    assert wrapped.submit(Cancel(0, "x", rests.order_id)).value.status == "pending"
    env.run(until=6)
    assert wrapped.resting(0, "x", rests.order_id) == 0.0 and market.reserved(0)[0] == 0


# ---- every shock: conservation and same-seed identity ---------------------------------------
SHOCKS = {
    "outage": Outage(8, 6),
    "latency": LatencySpike(8, 6, 1.5),
    "clamp": PriceClamp(8, "good1", 1.0, 10),
    "ceiling": PriceCeiling(8, "good1", 1.0, 10),
    "floor": PriceFloor(8, "good1", 1.0, 10),
    "breaker": CircuitBreaker(8, threshold=0.02, halt=3.0),
    "liquidity": LiquidityWithdrawal(8, 0.5),
}


@pytest.mark.parametrize("mechanism", ["order_book", "call_market"])
@pytest.mark.parametrize("kind", sorted(SHOCKS))
def test_every_shock_conserves_and_reruns_bit_for_bit(mechanism, kind):
    shock = SHOCKS[kind]
    if kind == "liquidity" and mechanism == "call_market":
        pytest.skip("liquidity withdrawal is internal to a mechanism; the call market has none")
    runs = [
        mktsim.simulate(crowd(), mechanism, seed=6, until=25, record_orders="all", shocks=[shock])
        for _ in range(2)
    ]
    assert runs[0].summary["conservation_ok"]
    assert (runs[0].events["kind"] == f"shock:{kind}").any()
    assert runs[0].tables == runs[1].tables
    for name in runs[0].tables:
        pd.testing.assert_frame_equal(runs[0].frame(name), runs[1].frame(name))


@pytest.mark.parametrize("mechanism", ["order_book", "call_market"])
def test_the_checker_passes(mechanism):
    check_mechanism(mechanism)
