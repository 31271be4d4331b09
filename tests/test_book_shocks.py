"""Market shocks and adversaries under the order book, checked from the runs' frames against
answers computed here: the shock rules applied to scripted order times, price bands written out
in ticks, holdings rebuilt from the trade journal, and welfare from the Cobb-Douglas closed form
of the money metric."""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
import simpy
from conftest import cobb_douglas_prices
from hypothesis import given, settings
from hypothesis import strategies as st
from mktsim.mechanisms.order_book import OrderBookMarket

import mktsim
from mktsim import CobbDouglas, Consumers, Scenario
from mktsim.counterfactual import add_adversary, counterfactual
from mktsim.errors import InvalidParameter
from mktsim.goods import to_base
from mktsim.ledger import Ledger
from mktsim.mechanism import MarketContext, Option, PopulationSlot
from mktsim.orders import Cancel, Limit, MarketOrder, Modify
from mktsim.random import Streams
from mktsim.recorder import Recorder
from mktsim.shocks import LatencySpike, LiquidityWithdrawal, Outage, PriceClamp
from mktsim.strategies import resolve as resolve_strategy
from mktsim.wrappers import ShockedMarket

GOODS = ["money", "x", "y"]
GOODS_CD = ["money", "good1", "good2"]  # the cobb_douglas crowd's
TICK, LOT = 0.01, 0.1
B = 10**9


# ---- a scripted population: handles driven at given times -----------------------------------
Step = tuple[float, int, Callable[[Any, list[Any]], Any]]


class Script:
    """Test strategy: at each ``(time, agent, call)`` of ``steps`` it calls ``call(handle,
    receipts)`` with the handle of the population's agent and appends ``(time, receipt)``."""

    name: ClassVar[str] = "script"
    doc: ClassVar[str] = "actions at given times, through trader handles"
    emits: ClassVar[frozenset[type]] = frozenset({Limit, MarketOrder, Cancel, Modify})
    serves: ClassVar[frozenset[str]] = frozenset({"consumers"})
    options: ClassVar[dict[str, Option]] = {
        "steps": Option([], "(time, agent, call) steps"),
        "receipts": Option([], "where (time, receipt) pairs go"),
    }
    actions = 0

    def __init__(self, market: Any, ctx: Any, slot: PopulationSlot, options: Any) -> None:
        self.market, self.env, self.slot = market, ctx.env, slot
        self.steps: list[Step] = options["steps"]
        self.receipts: list[Any] = options["receipts"]

    def start(self) -> None:
        self.env.process(self.run(self.env))

    def run(self, env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        for t, agent, call in self.steps:
            yield env.timeout(t - env.now)
            handle = self.market.handle(self.slot.rows.start + agent)
            self.receipts.append((env.now, call(handle, self.receipts)))


@pytest.fixture
def script():
    def run(steps: list[Step], shocks: list[Any], until: float = 30.0, **options: Any):
        receipts: list[Any] = []
        pop = Consumers(
            "traders",
            CobbDouglas(np.full((3, 3), 1 / 3)),
            np.full((3, 3), 10.0),
            behaviour=Script,
            behaviour_options={"steps": steps, "receipts": receipts},
        )
        scenario = Scenario("scripted", GOODS, [pop], until=until)
        opts = {"tick": TICK, "lot": LOT, "record_orders": "all", **options}
        run = mktsim.simulate(scenario, "order_book", shocks=shocks, **opts)
        return run, receipts

    return run


def crowd(n: int = 40, seed: int = 3) -> Scenario:
    return mktsim.build_scenario("cobb_douglas", n_agents=n, seed=seed)


def orders_of(run) -> pd.DataFrame:
    o = run.frame("orders")
    return o.assign(good=o["good"].astype(str))


# ---- outage -----------------------------------------------------------------------------------
def test_outage_refuses_orders_keeps_the_book_and_nothing_trades(script):
    steps: list[Step] = [
        (1.0, 0, lambda h, r: h.limit("x", "sell", 1.0, 2.0)),  # rests through the outage
        (2.0, 2, lambda h, r: h.limit("x", "buy", 0.5, 1.0)),  # withdrawn during it
        (6.0, 1, lambda h, r: h.limit("x", "buy", 0.5, 2.5)),  # would cross: refused
        (7.0, 1, lambda h, r: h.market_order("x", "buy", 0.5)),
        (8.0, 0, lambda h, r: h.modify("x", r[0][1].order_id, price=1.9)),
        (9.0, 2, lambda h, r: h.cancel("x", r[1][1].order_id)),  # cancels are accepted
        (12.0, 1, lambda h, r: h.limit("x", "buy", 0.5, 2.5)),  # reopened: trades at 2.0
    ]
    run, receipts = script(steps, [Outage(time=5, duration=5)])
    statuses = [r.status for _, r in receipts]
    assert statuses == [
        "accepted",
        "accepted",
        "rejected",
        "rejected",
        "rejected",
        "cancelled",
        "filled",
    ]
    assert all(r.reason == "market closed" for _, r in receipts[2:5])
    trades = run.trades
    assert set(trades["time"]) == {12.0} and set(trades["price"]) == {2.0}  # the old ask's price
    o = orders_of(run)
    closed = o[o["reason"] == "market closed"]
    assert list(closed["time"]) == [6.0, 7.0, 8.0] and set(closed["status"]) == {"rejected"}
    inside = o[(o["time"] >= 5) & (o["time"] < 10)]
    assert set(inside[inside["status"] != "rejected"]["action"]) == {"cancel"}
    assert run.summary["refused_closed"] == 3 and run.summary["conservation_ok"]


def test_outage_in_a_crowd_stops_trade_and_records_every_refusal():
    run = mktsim.simulate(crowd(), "order_book", until=50, shocks=[Outage(time=20, duration=10)])
    t = run.trades["time"]
    assert ((t >= 20) & (t < 30)).sum() == 0 and (t >= 30).any() and (t < 20).any()
    o = orders_of(run)
    refused = o[o["reason"] == "market closed"]
    assert len(refused) > 0 and refused["time"].between(20, 30, inclusive="left").all()
    assert len(refused) == run.summary["refused_closed"] == run.summary["rejected"]
    assert run.summary["conservation_ok"]


# ---- latency ----------------------------------------------------------------------------------
def test_latency_delays_actions_in_the_order_sent(script):
    d = 3.0
    steps: list[Step] = [
        (5.0, 0, lambda h, r: h.limit("x", "sell", 0.5, 2.0)),  # before the spike: at once
        (12.0, 0, lambda h, r: h.limit("x", "sell", 0.5, 2.1)),  # reaches the book at 15
        (13.0, 0, lambda h, r: h.cancel("x", r[1][1].order_id)),  # provisional id; at 16
        (19.5, 1, lambda h, r: h.limit("x", "buy", 0.5, 2.5)),  # at 22.5
        (21.0, 1, lambda h, r: h.limit("x", "buy", 0.2, 2.5)),  # after the spike, queued: 22.5
        (25.0, 2, lambda h, r: h.limit("y", "sell", 0.1, 1.0)),  # backlog drained: at once
    ]
    run, receipts = script(steps, [LatencySpike(time=10, duration=10, delay=d)])
    assert [r.status for _, r in receipts] == [
        "accepted",
        "pending",
        "pending",
        "pending",
        "pending",
        "accepted",
    ]
    assert receipts[1][1].order_id < 0  # provisional
    o = orders_of(run)
    assert list(zip(o["time"], o["action"], o["status"], strict=True)) == [
        (5.0, "limit", "accepted"),
        (12.0 + d, "limit", "accepted"),
        (13.0 + d, "cancel", "cancelled"),
        (19.5 + d, "limit", "filled"),  # the ask at 2.0: the one at 2.1 was cancelled
        (19.5 + d, "limit", "accepted"),  # rests: nothing left to buy
        (25.0, "limit", "accepted"),
    ]
    trades = run.trades
    assert set(trades["time"]) == {22.5} and set(trades["price"]) == {2.0}


def test_latency_in_a_crowd_leaves_the_book_silent_for_the_delay():
    spike = LatencySpike(time=20, duration=10, delay=2.0)
    plain = mktsim.simulate(crowd(), "order_book", until=40, record_orders="all")
    run = mktsim.simulate(crowd(), "order_book", until=40, record_orders="all", shocks=[spike])
    for r in (plain, run):
        o = orders_of(r)
        o = o[o["action"].isin(["limit", "cancel"])]
        silent = o["time"].between(20, 22, inclusive="left").sum()
        assert (silent == 0) == (r is run)  # actions sent from 20 arrive from 22
    assert run.summary["delayed"] > 0 and run.summary["conservation_ok"]


# ---- price clamp ------------------------------------------------------------------------------
def band_ticks(price: float, width: float, tick: float) -> tuple[int, int]:
    lo, hi = (
        math.ceil(price * (1 - width) / tick - 1e-9),
        math.floor(price * (1 + width) / tick + 1e-9),
    )
    return (lo, hi) if lo <= hi else (round(price / tick),) * 2


def test_clamp_keeps_every_trade_in_the_band_and_refuses_orders_outside():
    sc = crowd()
    p = cobb_douglas_prices(sc.populations[0].utility.shares, sc.populations[0].endowment)[1]
    width, tick = 0.02, 0.001
    clamp = PriceClamp(time=20, good="good1", price=round(p, 3), duration=30)
    run = mktsim.simulate(
        sc, "order_book", until=70, record_orders="all", clamp_band=width, shocks=[clamp]
    )
    lo, hi = band_ticks(clamp.price, width, tick)
    trades = run.trades.assign(good=run.trades["good"].astype(str))
    held = trades[(trades["time"] >= 20) & (trades["time"] < 50) & (trades["good"] == "good1")]
    assert len(held) > 0
    ticks = np.rint(held["price"] / tick)
    assert ((ticks >= lo) & (ticks <= hi)).all()
    o = orders_of(run)
    window = o[(o["time"] >= 20) & (o["time"] < 50) & (o["good"] == "good1")]
    refused = window[window["reason"].str.startswith("outside price band")]
    assert len(refused) > 0
    out = np.rint(refused["price"] / tick)
    assert ((out < lo) | (out > hi)).all()
    placed = window[window["action"].isin(["limit", "ioc"]) & (window["status"] != "rejected")]
    inside = np.rint(placed["price"] / tick)
    assert ((inside >= lo) & (inside <= hi)).all()
    after = trades[(trades["time"] >= 50) & (trades["good"] == "good1")]
    assert len(after) > 0  # the clamp lifted
    assert run.summary["conservation_ok"]


def make_market(holdings: Any, **options: Any) -> tuple[OrderBookMarket, MarketContext]:
    """A market of 'external' agents (no processes) holding ``holdings`` (units, n x 3)."""
    holdings = np.asarray(holdings, dtype=float)
    n = holdings.shape[0]
    pop = Consumers(
        "traders", CobbDouglas(np.full((n, 3), 1 / 3)), holdings + 1, behaviour="external"
    )
    scenario = Scenario("t", GOODS, [pop])
    env = simpy.Environment()
    recorder = Recorder({"goods": GOODS, "populations": ["traders"]})
    ledger = Ledger(scenario.goods, to_base(holdings), recorder, lambda: env.now)
    slots = (PopulationSlot(0, pop, slice(0, n)),)
    ctx = MarketContext(
        env, scenario, scenario.goods, ledger, recorder, Streams(7), slots, env.event()
    )
    market = OrderBookMarket(tick=TICK, lot=LOT, record_orders="all", **options)
    market.attach(ctx)
    return market, ctx


ORDER = st.tuples(
    st.integers(0, 3),  # agent
    st.sampled_from(["limit", "ioc", "market", "modify"]),
    st.sampled_from(["buy", "sell"]),
    st.integers(1, 5),  # lots
    st.integers(50, 200),  # ticks
)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(ORDER, max_size=12),
    st.lists(ORDER, min_size=1, max_size=25),
    st.integers(80, 170),
    st.sampled_from([0.0, 0.05, 0.2]),
)
def test_no_fill_outside_the_band_whatever_the_orders(before, during, centre, width):
    market, ctx = make_market(np.full((4, 3), 20.0), clamp_band=width)

    def send(orders: list[Any]) -> None:
        for agent, kind, side, lots, ticks in orders:
            h = market.handle(agent)
            if kind == "limit":
                h.limit("x", side, lots * LOT, ticks * TICK)
            elif kind == "ioc":
                h.ioc("x", side, lots * LOT, ticks * TICK)
            elif kind == "market":
                h.market_order("x", side, lots * LOT)
            elif h.orders("x"):
                h.modify("x", h.orders("x")[0].order_id, quantity=lots * LOT, price=ticks * TICK)

    send(before)
    start = len(ctx.recorder.frame("trades"))
    # the clamp is the shared band wrapper; the book's handles send through it once it wraps
    wrapped = ShockedMarket(market, ctx.env, ctx.recorder, {"clamp"}, band=width)
    wrapped.apply_shock(PriceClamp(time=0, good="x", price=centre * TICK))
    lo, hi = band_ticks(centre * TICK, width, TICK)
    resting = market.book(1).orders("buy") + market.book(1).orders("sell")
    assert all(lo <= o.price <= hi for o in resting)  # those outside were cancelled
    send(during)
    trades = ctx.recorder.frame("trades").iloc[start:]
    ticks = np.rint(trades["price"].to_numpy() / TICK)
    assert ((ticks >= lo) & (ticks <= hi)).all()
    assert ctx.ledger.conserved()


# ---- liquidity withdrawal ---------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from(["x", "y"]), st.booleans(), st.integers(1, 4)),
        min_size=0,
        max_size=30,
    ),
    st.floats(0.01, 1.0),
)
def test_withdrawal_cancels_the_expected_orders_and_conserves_everything(orders, fraction):
    market, ctx = make_market(np.full((4, 3), 50.0))
    for agent, good, buy, lots in orders:  # bids at 0.5..0.8, asks at 2.0..2.3: all rest
        price = (0.5 + 0.1 * agent) if buy else (2.0 + 0.1 * agent)
        market.handle(agent).limit(good, "buy" if buy else "sell", lots * LOT, price)
    listed = [
        (g, o)
        for g in (1, 2)
        for side in ("buy", "sell")
        for o in market.book(g).orders(side)  # good by good, bids then asks, priority order
    ]
    n = len(listed)
    k = math.floor(fraction * n + 0.5)
    pick = Streams(7).generator("order_book:liquidity:0").choice(n, size=k, replace=False)
    expected_gone = {(listed[i][0], listed[i][1].order_id) for i in pick.tolist()}
    holdings = ctx.ledger.holdings.copy()
    market.apply_shock(LiquidityWithdrawal(time=0, fraction=fraction))
    left = {(g, o.order_id) for g, o in listed} - expected_gone
    now = {
        (g, o.order_id)
        for g in (1, 2)
        for side in ("buy", "sell")
        for o in market.book(g).orders(side)
    }
    assert now == left
    o = ctx.recorder.frame("orders")
    assert (o["action"] == "withdraw").sum() == k
    # nothing moved; what stays reserved is exactly what the remaining orders commit
    np.testing.assert_array_equal(ctx.ledger.holdings, holdings)
    assert ctx.ledger.conserved()
    for agent in range(4):
        cash = goods_x = goods_y = 0
        for g, info in ((g, o) for g, o in listed if (g, o.order_id) in left):
            if info.owner != agent:
                continue
            if info.side == "buy":
                cash += info.price * info.qty * round(TICK * LOT * B)
            elif g == 1:
                goods_x += info.qty * round(LOT * B)
            else:
                goods_y += info.qty * round(LOT * B)
        assert market.reserved(agent) == (cash, [0, goods_x, goods_y])


def test_withdrawal_in_a_crowd_is_logged_and_reproducible():
    shock = [LiquidityWithdrawal(time=25, fraction=0.5)]
    runs = [
        mktsim.simulate(crowd(), "order_book", until=30, record_orders="all", shocks=shock)
        for _ in range(2)
    ]
    pd.testing.assert_frame_equal(runs[0].frame("orders"), runs[1].frame("orders"))
    o = orders_of(runs[0])
    gone = o[o["action"] == "withdraw"]
    assert len(gone) > 0 and set(gone["time"]) == {25.0}
    assert runs[0].summary["withdrawn"] == len(gone) and runs[0].summary["conservation_ok"]


def test_clamping_the_numeraire_is_refused():
    with pytest.raises(InvalidParameter, match="numeraire"):
        mktsim.simulate(
            crowd(n=5), "order_book", until=5, shocks=[PriceClamp(time=1, good="money", price=1)]
        )


# ---- adversaries -----------------------------------------------------------------------------
ADVERSARIES = {
    "spoofer": {"interval": 1.0, "dwell": 0.3, "offset": 1.0},
    "wash_trader": {"interval": 0.5, "size": 0.05},
    "pump_and_dump": {"start": 5.0, "pump": 10.0, "dump": 20.0, "size": 0.1},
}


def with_adversary(kind: str, n: int = 40, **options: Any) -> Scenario:
    agents = 2 if kind == "wash_trader" else 1
    return add_adversary(crowd(n), kind, agents=agents, **{**ADVERSARIES[kind], **options})


def holdings_first_last(run) -> tuple[pd.DataFrame, pd.DataFrame]:
    h = run.holdings.assign(good=run.holdings["good"].astype(str))
    wide = h.pivot_table(index=["time", "agent"], columns="good", values="quantity")
    times = sorted(h["time"].unique())
    return wide.loc[times[0]], wide.loc[times[-1]]


@pytest.mark.parametrize("kind", sorted(ADVERSARIES))
def test_adversaries_move_holdings_only_by_their_trades_and_touch_only_their_orders(
    kind, monkeypatch
):
    sent: set[int] = set()  # agents the adversary's strategy sent orders for
    strategy = resolve_strategy(kind)
    original = strategy.__init__

    class Spy:
        """The market as the adversary sees it, noting whom each of its orders is for."""

        def __init__(self, market: Any) -> None:
            self.market = market

        def __getattr__(self, name: str) -> Any:
            return getattr(self.market, name)

        def submit(self, order: Any) -> Any:
            sent.add(order.agent)
            return self.market.submit(order)

    def init(self: Any, market: Any, *args: Any) -> None:
        original(self, Spy(market), *args)

    monkeypatch.setattr(strategy, "__init__", init)
    run = mktsim.simulate(with_adversary(kind), "order_book", until=40, record_orders="all")
    adversary = set(range(40, run.scenario.n_agents))
    assert sent == adversary  # it sends orders for its own agents (all of them) only ...
    # every agent's holdings changed by exactly its journalled trades (money: minus cash paid)
    first, last = holdings_first_last(run)
    trades = run.trades.assign(good=run.trades["good"].astype(str))
    goods_in = trades.groupby(["agent", "good"])["quantity"].sum()
    paid = trades.groupby("agent")["cash"].sum()
    for agent in first.index:
        for good in GOODS_CD:
            moved = -paid.get(agent, 0.0) if good == "money" else goods_in.get((agent, good), 0.0)
            assert last.loc[agent, good] - first.loc[agent, good] == pytest.approx(
                moved, abs=1e-8
            ), (agent, good)
    assert set(trades["agent"]) & adversary  # it did trade
    # every order the adversary cancelled or modified was one it had placed itself
    o = orders_of(run)
    owner = o[o["action"].isin(["limit", "ioc", "market"]) & (o["order_id"] > 0)]
    owner = owner.drop_duplicates(["good", "order_id"]).set_index(["good", "order_id"])["agent"]
    touched = o[o["action"].isin(["cancel", "modify"]) & o["agent"].isin(adversary)]
    assert len(touched) > 0 or kind != "spoofer"  # a spoofer cancels
    for row in touched.itertuples():  # ... and it cancels or modifies only its own orders
        assert owner[(row.good, row.order_id)] == row.agent
    assert run.summary["conservation_ok"]


def test_wash_pair_inflates_volume_and_a_single_account_is_stopped_by_self_trade_prevention():
    pair = mktsim.simulate(with_adversary("wash_trader"), "order_book", until=40)
    trades = pair.trades
    wash_agents = {40, 41}
    sides = trades.groupby("trade_id")["agent"].agg(set)
    wash_ids = sides[sides.apply(lambda s: s <= wash_agents)].index
    wash = trades[trades["trade_id"].isin(wash_ids) & (trades["quantity"] > 0)]
    assert len(wash) > 0
    # each wash trade passes the size between the two, roles alternating: holdings go back
    # and forth and the pair's total never changes
    assert set(np.round(wash["quantity"], 9)) == {0.05}
    assert wash.groupby("agent").size().max() - wash.groupby("agent").size().min() <= 1
    honest = trades[~trades["trade_id"].isin(wash_ids) & (trades["quantity"] > 0)]
    assert wash["quantity"].sum() / honest["quantity"].sum() > 0.05  # visible inflation

    single = add_adversary(crowd(), "wash_trader", agents=1, accounts="single", interval=0.5)
    run = mktsim.simulate(single, "order_book", until=40, record_orders="all")
    o = orders_of(run)
    mine = o[o["agent"] == 40]
    buys = mine[mine["action"] == "ioc"]
    assert len(buys) > 0 and (buys["filled"] == 0).all()  # its own resting sell was cancelled
    assert 40 not in set(run.trades["agent"])
    assert run.mechanism.book(1).orders("sell", owner=40) == []


def money_metric(shares: np.ndarray, x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Cobb-Douglas money metric at prices p: prod_j (x_j p_j / a_j)^a_j (closed form)."""
    return np.prod((x * p / shares) ** shares, axis=1)


def test_counterfactual_reports_the_adversary_gain_and_the_harm_to_others():
    scenario = with_adversary("pump_and_dump", size=0.2, slippage=0.05)
    pair = counterfactual(
        scenario, mechanism="order_book", honest=["pump_and_dump"], seed=1, until=60
    )
    s = pair.summary
    shares = np.vstack([p.utility.shares for p in scenario.populations])
    endowment = np.vstack([p.endowment for p in scenario.populations])
    p_star = cobb_douglas_prices(shares, endowment)
    adversary = np.arange(scenario.n_agents) >= 40

    def welfare_gain(run) -> np.ndarray:
        first, last = holdings_first_last(run)
        x0, x1 = first[GOODS_CD].to_numpy(), last[GOODS_CD].to_numpy()
        return money_metric(shares, x1, p_star) - money_metric(shares, x0, p_star)

    delta = welfare_gain(pair.treated) - welfare_gain(pair.baseline)
    assert s["adversary_gain"]["pump_and_dump"] == pytest.approx(delta[adversary].sum(), rel=1e-6)
    assert s["harm_to_others"] == pytest.approx(-delta[~adversary].sum(), rel=1e-6)
    # the pump bought, the dump sold it back (its good1 from its own trades)
    tr = pair.treated.trades.assign(good=pair.treated.trades["good"].astype(str))
    path = tr[(tr["agent"] == 40) & (tr["good"] == "good1")].sort_values("time")
    held = path["quantity"].cumsum()
    assert held.max() > 0.5 and abs(held.iloc[-1]) < 0.25 * held.max()
    # the peak deviation of the price estimates, each run's carried forward to the other's times
    est = {
        name: run.prices.assign(good=run.prices["good"].astype(str))
        .drop_duplicates(["time", "good"], keep="last")
        .pivot(index="time", columns="good", values="estimate")
        for name, run in (("b", pair.baseline), ("t", pair.treated))
    }
    times = est["b"].index.union(est["t"].index)
    b, t = (est[k].reindex(times).ffill()[["good1", "good2"]] for k in ("b", "t"))
    assert s["peak_price_deviation"] == pytest.approx(float(np.nanmax(np.abs(t / b - 1))))


def test_a_counterfactual_without_the_shock_is_the_baseline_frame_for_frame():
    scenario = crowd(30)
    opts: dict[str, Any] = {"seed": 2, "until": 25, "record_orders": "all"}
    plain = mktsim.simulate(scenario, "order_book", **opts)
    pair = counterfactual(scenario, shocks=(), mechanism="order_book", **opts)
    assert "orders" in plain.tables
    for name in plain.tables:
        pd.testing.assert_frame_equal(plain.frame(name), pair.baseline.frame(name))
        pd.testing.assert_frame_equal(plain.frame(name), pair.treated.frame(name))
    assert pair.summary["peak_price_deviation"] == 0.0
