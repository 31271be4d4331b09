"""Market shocks as wrappers around submit: on a toy market defined here (which logs what
reaches it and when) and on the call market, alone and through whole runs."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, ClassVar

import attrs
import numpy as np
import pytest
import simpy
from test_call_market import CALL, gode_sunder, make_market, zi_registered  # noqa: F401

import mktsim
from mktsim.errors import InvalidParameter
from mktsim.market import Market, settled
from mktsim.orders import Cancel, Limit, MarketOrder, Modify, Quote, Receipt, Swap, rejected
from mktsim.recorder import Recorder
from mktsim.shocks import CircuitBreaker as Breaker
from mktsim.shocks import LatencySpike, LiquidityWithdrawal, Outage, PriceClamp
from mktsim.wrappers import (
    BREAKER,
    CLOSED,
    OUT_OF_BAND,
    CircuitBreaker,
    Latency,
    PriceBand,
    ShockedMarket,
    provided,
    wrap,
)
from mktsim.wrappers import Outage as OutageWrapper


class Toy:
    """A market that takes every limit order (resting) and fills every market order at once,
    logging ``(time, order)`` as each reaches it."""

    name: ClassVar[str] = "toy"
    accepts: ClassVar[frozenset[type]] = frozenset({Limit, MarketOrder, Cancel, Modify})

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.seen: list[tuple[float, Any]] = []
        self.live: dict[int, Limit] = {}
        self.next_id = 1

    def submit(self, order: Any) -> simpy.Event:
        self.seen.append((self.env.now, order))
        if isinstance(order, Limit):
            oid, self.next_id = self.next_id, self.next_id + 1
            if order.ioc:
                return settled(self.env, Receipt("cancelled", oid, "ioc", resting=0.0))
            self.live[oid] = order
            return settled(self.env, Receipt("accepted", oid, resting=order.qty))
        if isinstance(order, MarketOrder):
            oid, self.next_id = self.next_id, self.next_id + 1
            return settled(self.env, Receipt("filled", oid, filled=order.qty, price=1.0))
        if isinstance(order, (Cancel, Modify)):
            mine = self.live.get(order.order_id)
            if mine is None or mine.agent != order.agent:
                return settled(self.env, rejected("not yours"))
            if isinstance(order, Cancel):
                del self.live[order.order_id]
                return settled(self.env, Receipt("cancelled", order.order_id))
            return settled(self.env, Receipt("accepted", order.order_id, resting=mine.qty))
        return settled(self.env, rejected("not taken"))

    def quote(self) -> Quote:
        return Quote(self.env.now, {"x": None})

    def updated(self) -> simpy.Event:
        return self.env.event()

    def open_orders(self, good: str) -> list[tuple[int, int, str, float, float]]:
        return [
            (o.agent, i, o.side, o.price, o.qty) for i, o in self.live.items() if o.good == good
        ]


def toy() -> tuple[simpy.Environment, Toy, Recorder]:
    env = simpy.Environment()
    return env, Toy(env), Recorder({"goods": ["money", "x"], "populations": []})


def at(env: simpy.Environment, t: float, action: Any) -> None:
    """Run ``action()`` at time ``t``."""

    def go() -> Generator[simpy.Event, Any, None]:
        yield env.timeout(t - env.now)
        action()

    env.process(go())


# ---- latency -----------------------------------------------------------------------------------
def test_latency_delivers_late_in_the_order_sent_and_maps_provisional_ids():
    env, market, rec = toy()
    slow = Latency(market, env, rec)
    slow.slow(1.0, 2.0, 2.0)  # actions sent in [1, 2) take 2 longer
    got: dict[str, Any] = {}

    def send(key: str, order: Any) -> None:
        got[key] = slow.submit(order).value

    at(env, 0.5, lambda: send("before", Limit(0, "x", "buy", 1.0, 1.0)))
    at(env, 1.0, lambda: send("a", Limit(0, "x", "buy", 2.0, 1.0)))
    at(env, 1.5, lambda: send("m", MarketOrder(1, "x", "sell", 1.0)))
    at(env, 1.6, lambda: send("cancel_a", Cancel(0, "x", got["a"].order_id)))
    at(env, 1.7, lambda: send("cancel_m", Cancel(1, "x", got["m"].order_id)))
    at(env, 2.5, lambda: send("b", Limit(2, "x", "sell", 1.0, 3.0)))  # behind the backlog
    at(env, 4.0, lambda: send("after", Limit(3, "x", "sell", 1.0, 3.0)))
    arrival: list[Any] = []
    at(env, 1.2, lambda: slow.delivered(got["a"].order_id).callbacks.append(arrival.append))
    env.run(until=10)
    assert got["before"].status == "accepted"
    assert got["a"].status == "pending" and got["a"].order_id == -1 and got["a"].resting == 2.0
    assert got["m"].status == "pending" and got["m"].order_id == -2
    assert got["cancel_a"].status == "pending" and got["b"].status == "pending"
    assert got["after"].status == "accepted"
    seen = [(t, type(o).__name__, getattr(o, "order_id", None)) for t, o in market.seen]
    assert seen == [
        (0.5, "Limit", None),
        (3.0, "Limit", None),  # a: sent at 1.0, + 2
        (3.5, "MarketOrder", None),
        (3.6, "Cancel", 2),  # the provisional -1 mapped to the market's id 2
        (3.7, "Limit", None),  # b: sent after the spike, delivered once the backlog drained
        (4.0, "Limit", None),
    ]
    # the cancel of a market order that never rested is refused on arrival, as data
    assert slow.refused == 1
    refusals = rec.frame("shock_refusals")
    assert refusals["time"].tolist() == [3.7] and "did not rest" in refusals["reason"][0]
    assert arrival[0].value.status == "accepted" and arrival[0].value.order_id == 2
    assert slow.resolve(-1) == 2 and slow.resolve(-2) is None and slow.resolve(7) == 7
    assert slow.delayed == 5


class SwapToy:
    """A pool that fills every swap at once, logging ``(time, order)`` as each reaches it, and
    tells of the shocks the wrappers apply around it."""

    accepts: ClassVar[frozenset[type]] = frozenset({Swap})

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.seen: list[tuple[float, Any]] = []
        self.noted: list[tuple[float, str]] = []

    def submit(self, order: Any) -> simpy.Event:
        self.seen.append((self.env.now, order))
        return settled(self.env, Receipt("filled", None, filled=order.amount, price=2.0))

    def quote(self) -> Quote:
        return Quote(self.env.now, {"x": 2.0})

    def note_shock(self, shock: Any) -> None:
        self.noted.append((self.env.now, shock.kind))


def test_a_delayed_swap_is_answered_when_it_reaches_the_market_and_never_overtaken():
    env = simpy.Environment()
    pool = SwapToy(env)
    shocked = ShockedMarket(pool, env, None, ["latency"])
    answers: dict[str, list[tuple[float, Any]]] = {}

    def send(key: str, amount: float) -> None:
        event = shocked.submit(Swap(0, "x", "buy", amount))
        answers[key] = []
        if event.processed:  # no spike, no backlog: the market's own immediate answer
            answers[key].append((env.now, event.value))
        else:
            event.callbacks.append(lambda e: answers[key].append((env.now, e.value)))

    at(env, 0.5, lambda: send("before", 1.0))
    at(env, 1.0, lambda: shocked.apply_shock(LatencySpike(1.0, 1.0, 2.5)))
    at(env, 1.5, lambda: send("during", 2.0))  # reaches the pool at 4.0
    at(env, 2.5, lambda: send("after", 3.0))  # the spike is over, but 'during' is on its way
    at(env, 5.0, lambda: send("later", 4.0))
    env.run(until=10)
    expected = [(0.5, 1.0), (4.0, 2.0), (4.0, 3.0), (5.0, 4.0)]
    assert [(t, o.amount) for t, o in pool.seen] == expected
    for key, (when, amount) in zip(["before", "during", "after", "later"], expected, strict=True):
        ((t, receipt),) = answers[key]
        assert t == when and receipt.status == "filled" and receipt.filled == amount
    assert pool.noted == [(1.0, "latency")]  # the market's own clock hears of the spike
    assert shocked.wrappers["latency"].delayed == 2


# ---- outage ----------------------------------------------------------------------------------
def test_outage_refuses_all_but_cancels_and_reopens():
    env, market, rec = toy()
    closed = OutageWrapper(market, env, rec)
    resting = closed.submit(Limit(0, "x", "buy", 1.0, 1.0)).value
    closed.close(1.0, 3.0)
    got: list[Any] = []
    at(env, 1.0, lambda: got.append(closed.submit(Limit(1, "x", "buy", 1.0, 1.0)).value))
    at(env, 1.5, lambda: got.append(closed.submit(MarketOrder(1, "x", "buy", 1.0)).value))
    at(env, 2.0, lambda: got.append(closed.submit(Modify(0, "x", resting.order_id, 0.5)).value))
    at(env, 2.5, lambda: got.append(closed.submit(Cancel(0, "x", resting.order_id)).value))
    at(env, 3.0, lambda: got.append(closed.submit(Limit(1, "x", "buy", 1.0, 1.0)).value))
    env.run(until=5)
    assert [r.status for r in got] == ["rejected"] * 3 + ["cancelled", "accepted"]
    assert all(r.reason == CLOSED for r in got[:3])
    assert [t for t, _ in market.seen] == [0.0, 2.5, 3.0]  # refusals never reach the market
    refusals = rec.frame("shock_refusals")
    assert refusals["order"].tolist() == ["limit", "marketorder", "modify"]
    assert refusals["agent"].tolist() == [1, 1, 0]
    assert closed.reasons == {CLOSED: 3}


@attrs.frozen
class GateQuote(Quote):
    open: bool = True


class Gated(Toy):
    """A toy whose quote says whether it takes orders (as a market maker's does)."""

    def quote(self) -> GateQuote:
        return GateQuote(self.env.now, {"x": 1.0})


def test_an_outage_shows_the_market_closed_in_a_quote_that_says_so():
    env = simpy.Environment()
    market = Gated(env)
    closed = OutageWrapper(market, env)
    closed.close(1.0, 3.0)
    seen: list[tuple[float, bool, bool]] = []
    for t in (0.5, 1.0, 2.9, 3.0):
        at(env, t, lambda: seen.append((env.now, closed.quote().open, market.quote().open)))
    env.run(until=5)
    # through the wrapper: closed on [1, 3); the market's own quote knows nothing of it
    assert seen == [(0.5, True, True), (1.0, False, True), (2.9, False, True), (3.0, True, True)]
    # a quote without such a field passes through as it is
    plain = OutageWrapper(Toy(env), env)
    plain.close(0.0, 10.0)
    assert plain.quote() == Quote(env.now, {"x": None})


# ---- price band ------------------------------------------------------------------------------
def test_price_band_refuses_outside_caps_market_orders_and_cancels_resting():
    env, market, rec = toy()
    band = PriceBand(market, env, rec)
    low = band.submit(Limit(0, "x", "buy", 1.0, 1.5)).value
    inside = band.submit(Limit(1, "x", "sell", 1.0, 2.0)).value
    other = band.submit(Limit(2, "y", "sell", 1.0, 9.0)).value
    assert band.limit("x", 2.0, 2.0, end=5.0) == 1  # the bid at 1.5 is cancelled
    assert set(market.live) == {inside.order_id, other.order_id}
    assert low.order_id not in market.live
    r = [
        band.submit(Limit(0, "x", "buy", 1.0, 2.5)).value,
        band.submit(Limit(0, "x", "sell", 1.0, 1.9)).value,
        band.submit(Modify(1, "x", inside.order_id, price=2.1)).value,
        band.submit(Limit(0, "x", "buy", 1.0, 2.0)).value,
        band.submit(Modify(1, "x", inside.order_id, qty=0.5)).value,
        band.submit(Limit(0, "y", "buy", 1.0, 50.0)).value,  # y has no band
    ]
    assert [x.status for x in r] == ["rejected"] * 3 + ["accepted"] * 3
    assert all(x.reason == OUT_OF_BAND for x in r[:3])
    band.submit(MarketOrder(0, "x", "buy", 1.0))
    band.submit(MarketOrder(0, "x", "sell", 1.0))
    capped = [o for _, o in market.seen[-2:]]
    assert capped == [
        Limit(0, "x", "buy", 1.0, 2.0, ioc=True),
        Limit(0, "x", "sell", 1.0, 2.0, True),
    ]
    env.run(until=5.0)  # the band is over
    assert band.submit(Limit(0, "x", "buy", 1.0, 9.0)).value.status == "accepted"


def test_price_band_tightens_a_swaps_limit():
    class Pool:
        accepts = frozenset({Swap})

        def __init__(self, env: simpy.Environment) -> None:
            self.env, self.seen = env, []

        def submit(self, order: Any) -> simpy.Event:
            self.seen.append(order)
            return settled(self.env, Receipt("filled", None, filled=1.0))

    env = simpy.Environment()
    pool = Pool(env)
    band = PriceBand(pool, env, None, band=0.1)
    band.apply(PriceClamp(0.0, "x", 10.0))
    band.submit(Swap(0, "x", "buy", 5.0))
    band.submit(Swap(0, "x", "buy", 5.0, limit=10.5))
    band.submit(Swap(0, "x", "sell", 1.0, limit=12.0))
    assert [s.limit for s in pool.seen] == pytest.approx([11.0, 10.5, 12.0])
    band.submit(Swap(0, "x", "sell", 1.0))
    assert pool.seen[-1].limit == pytest.approx(9.0)
    assert provided(Pool) == {"latency", "outage", "clamp", "ceiling", "floor", "breaker"}


def test_a_delayed_order_is_judged_when_it_arrives():
    env, market, rec = toy()
    shocked = ShockedMarket(market, env, rec, ["latency", "outage", "clamp"])
    shocked.apply_shock(LatencySpike(0.0, 1.0, 2.0))
    r = shocked.submit(Limit(0, "x", "buy", 1.0, 1.0)).value
    at(env, 1.5, lambda: shocked.apply_shock(Outage(1.5, 1.0)))
    env.run(until=5)
    assert r.status == "pending" and market.seen == []
    assert rec.frame("shock_refusals")[["time", "reason"]].values.tolist() == [[2.0, CLOSED]]
    assert isinstance(shocked, Market) and shocked.quote().prices == {"x": None}
    assert shocked.next_id == 1  # other attributes are the market's


def test_wrap_only_for_shocks_the_mechanism_does_not_apply_itself():
    env, market, rec = toy()
    assert wrap(market, env, [], rec) is market
    assert wrap(market, env, [LiquidityWithdrawal(1.0, 0.5)], rec) is market  # not a wrapper's
    shocked = wrap(market, env, [Outage(1.0, 2.0), PriceClamp(1.0, "x", 2.0)], rec)
    assert set(shocked.wrappers) == {"outage", "clamp"}
    market.supported_shocks = ("outage",)  # applied inside: only the band is wrapped
    assert set(wrap(market, env, [Outage(1.0, 2.0), PriceClamp(1.0, "x", 2.0)]).wrappers) == {
        "clamp"
    }
    assert provided(object()) == frozenset()


# ---- circuit breaker -------------------------------------------------------------------------
def test_circuit_breaker_halts_a_good_after_a_large_move():
    env, market, rec = toy()
    price = {"x": 10.0}
    market.quote = lambda: Quote(env.now, dict(price))  # type: ignore[method-assign]
    breaker = CircuitBreaker(market, env, rec)
    breaker.apply(Breaker(0.0, threshold=0.1, halt=2.0, good="x", duration=10.0))
    got: list[tuple[float, str]] = []

    def send(order: Any) -> None:
        got.append((env.now, breaker.submit(order).value.status))

    buy = Limit(0, "x", "buy", 1.0, 10.0)
    at(env, 1.0, lambda: send(buy))  # 10 -> 10: passes
    at(env, 1.5, lambda: price.update(x=11.5))  # a 15% move
    at(env, 2.0, lambda: send(buy))  # trips: halted until 4
    at(env, 3.0, lambda: send(Cancel(0, "x", 1)))  # cancels pass
    at(env, 3.5, lambda: send(buy))
    at(env, 4.0, lambda: send(buy))  # reopened, reference now 11.5
    at(env, 5.0, lambda: price.update(x=12.0))  # 4% from 11.5: no trip
    at(env, 6.0, lambda: send(buy))
    at(env, 10.5, lambda: price.update(x=30.0))
    at(env, 11.0, lambda: send(buy))  # the breaker is over
    env.run(until=12)
    assert got == [
        (1.0, "accepted"),
        (2.0, "rejected"),
        (3.0, "cancelled"),
        (3.5, "rejected"),
        (4.0, "accepted"),
        (6.0, "accepted"),
        (11.0, "accepted"),
    ]
    assert breaker.trips == 1
    assert rec.frame("shock_refusals")["reason"].tolist() == [BREAKER, BREAKER]


# ---- whole runs on the call market -----------------------------------------------------------
RUN = dict(CALL, record_orders="all")


def test_shocks_on_the_call_market_through_wrappers(zi_registered):  # noqa: F811
    shocks = [Outage(10.0, 10.0), LatencySpike(30.0, 5.0, 3.0), PriceClamp(62.0, "good", 100.0)]
    run = mktsim.simulate(gode_sunder(1), "call_market", seed=2, shocks=shocks, **RUN)
    assert run.summary["conservation_ok"]
    kinds = run.events["kind"].tolist()
    assert {"shock:outage", "shock:latency", "shock:clamp"} <= set(kinds)
    orders = run.frame("orders")
    arrived = orders[orders["action"] == "limit"]["time"]
    # outage: nothing new reaches the market; latency: actions sent in [30, 35) arrive 3 later
    assert not arrived.between(10.0, 20.0, inclusive="left").any()
    assert not arrived.between(30.0, 33.0, inclusive="neither").any()
    assert arrived.between(33.0, 38.0).any()
    refusals = run.frame("shock_refusals")
    assert (refusals["reason"] == CLOSED).sum() > 0
    # every refusal is counted by reason where the summary counts rejections
    assert run.summary["rejections"] == refusals["reason"].value_counts().to_dict()
    closed = refusals.loc[refusals["reason"] == CLOSED, "time"]
    assert closed.between(10.0, 20.0, inclusive="left").all()
    # the clamp (from 62, third period): resting orders outside are cancelled, orders priced
    # off 100 refused, and every later clearing (if any: ZI traders rarely shout exactly 100)
    # is at 100
    batches = run.frame("batches")
    traded = batches[batches["volume"] > 0]
    assert (traded["time"] < 62.0).any()
    assert (traded.loc[traded["time"] > 62.0, "price"] == 100.0).all()
    assert (refusals["reason"] == OUT_OF_BAND).sum() > 0
    cancels = orders[(orders["action"] == "cancel") & (orders["time"] == 62.0)]
    assert len(cancels) > 0


def test_a_wrapped_run_is_deterministic(zi_registered):  # noqa: F811
    shocks = [
        Outage(5.0, 5.0),
        LatencySpike(12.0, 4.0, 2.5),
        PriceClamp(40.0, "good", 90.0, 20),
        Breaker(60.0, threshold=0.02, halt=4.0),
    ]
    a, b = (
        mktsim.simulate(gode_sunder(2), "call_market", seed=9, shocks=shocks, **RUN)
        for _ in range(2)
    )
    for name in a.tables:
        assert a.frame(name).equals(b.frame(name)), name
    reasons = set(a.frame("shock_refusals")["reason"])
    assert {CLOSED, OUT_OF_BAND, BREAKER} <= reasons


def test_shocks_no_wrapper_provides_are_refused_before_the_run(zi_registered):  # noqa: F811
    with pytest.raises(InvalidParameter, match="does not support liquidity"):
        mktsim.simulate(gode_sunder(1), "call_market", shocks=[LiquidityWithdrawal(1.0, 0.5)])
    np.testing.assert_equal(
        provided(mktsim.registry.resolve("call_market")),
        {"latency", "outage", "clamp", "ceiling", "floor", "breaker"},
    )
