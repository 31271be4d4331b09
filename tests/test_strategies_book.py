"""The shared strategies driven against the order book through the market protocol, each checked
against expectations computed here: zi_c never prices a unit at a loss, utility consumers never
quote across their own MRS (Cobb-Douglas closed form), ZIP margins follow Cliff's rules and the
Widrow-Hoff step recomputed scalar by scalar, and protocol orders settle as a hand count says.
Also the valuations: one agent's row against the closed forms and the vectorised form."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import simpy
from mktsim.mechanisms.order_book import BookQuote, OrderBookMarket

import mktsim
from mktsim import CES, CobbDouglas, Consumers, Leontief, Linear, Scenario
from mktsim.goods import BASE_UNITS, to_base
from mktsim.induced import InducedTraders
from mktsim.ledger import Ledger
from mktsim.market import Market, Shout
from mktsim.mechanism import MarketContext, PopulationSlot
from mktsim.orders import Cancel, Limit, MarketOrder, Modify, Quote
from mktsim.pairing import assign_strategies
from mktsim.random import Streams
from mktsim.recorder import Recorder
from mktsim.strategies.zip import ZeroIntelligencePlus
from mktsim.valuation import ConsumerValuation, InducedValuation


# ---- valuations -----------------------------------------------------------------------------
def test_one_agents_mrs_is_the_cobb_douglas_closed_form_and_matches_the_vectorised_form():
    rng = np.random.default_rng(3)
    shares = rng.dirichlet(np.ones(4), 50)
    x = rng.uniform(0.1, 5.0, (50, 4))
    val = ConsumerValuation(Consumers("c", CobbDouglas(shares), x), numeraire=0)
    for i in (0, 17, 49):
        expected = (shares[i] / shares[i, 0]) * (x[i, 0] / x[i])  # MRS_j = (a_j/a_0)(x_0/x_j)
        np.testing.assert_allclose(val.mrs_row(i, x[i]), expected, rtol=1e-12)
    np.testing.assert_array_equal(np.array([val.mrs_row(i, x[i]) for i in range(50)]), val.mrs(x))


@pytest.mark.parametrize(
    "utility",
    [
        CES(np.full((6, 3), 1 / 3) + np.arange(6)[:, None] * 0.1, 0.5),
        Leontief(np.array([[1.0, 2.0, 1.0]] * 6)),
        Linear(np.arange(1, 19, dtype=float).reshape(6, 3)),
    ],
)
def test_row_valuations_agree_with_the_whole_population(utility):
    x = np.random.default_rng(1).uniform(0.5, 3.0, (6, 3))
    val = ConsumerValuation(Consumers("c", utility, x), numeraire=0)
    prices = np.array([1.0, 1.3, 0.7])
    with np.errstate(all="ignore"):
        whole, demand = val.mrs(x), val.demand(prices, x)
    for i in range(6):
        np.testing.assert_array_equal(val.mrs_row(i, x[i]), whole[i])
        np.testing.assert_allclose(val.demand_row(i, prices, x[i]), demand[i], rtol=1e-14)


def test_induced_next_unit_from_holdings():
    values = np.array([[9.0, 7.0, np.nan], [5.0, 4.0, 3.0]])
    buyers = InducedValuation(InducedTraders("b", "buyer", values, 100.0))
    # a buyer holds what it bought: its next unit is the count held
    assert [buyers.limit(0, k * BASE_UNITS) for k in range(3)] == [9.0, 7.0, None]
    costs = np.array([[1.0, 2.0, 6.0]])
    sellers = InducedValuation(InducedTraders("s", "seller", costs, 0.0))
    # a seller holds what it has not sold (a partly held unit is still held)
    assert sellers.limit(0, 3 * BASE_UNITS) == 1.0
    assert sellers.limit(0, 2 * BASE_UNITS + 1) == 1.0
    assert sellers.limit(0, 2 * BASE_UNITS) == 2.0
    assert sellers.limit(0, 0) is None
    held = np.array([0, 1, 2]) * BASE_UNITS
    np.testing.assert_array_equal(
        InducedValuation(InducedTraders("b", "buyer", np.tile(values[1], (3, 1)), 1.0)).limits_of(
            held
        ),
        [5.0, 4.0, 3.0],
    )


# ---- zi_c ------------------------------------------------------------------------------------
def test_zi_c_prices_every_order_and_fill_within_the_units_value_or_cost():
    scenario = mktsim.build_scenario("gode_sunder", market=2, periods=2)
    run = mktsim.simulate(scenario, seed=4, record_orders="all")
    values, costs = (p.limits for p in scenario.populations)
    n_buyers = values.shape[0]
    orders = run.frame("orders")
    orders = orders[orders["action"] == "limit"]
    trades = run.trades.sort_values("trade_id")
    assert len(trades) > 0
    # units traded so far by (period, agent), replayed in time order with the orders
    events = [("order", r.time, r) for r in orders.itertuples()]
    for _, t in trades.groupby("trade_id"):
        events.append(("trade", float(t["time"].iloc[0]), t))
    events.sort(key=lambda e: (e[1], e[0] != "order"))  # a fill settles after its order
    done: dict[tuple[int, int], int] = {}
    period_of = run.frame("events")
    starts = sorted(period_of.loc[period_of["kind"] == "session_end", "time"])

    def period(time: float) -> int:
        return int(np.searchsorted(starts, time, side="right"))

    checked = 0
    for kind, time, row in events:
        if kind == "order":
            agent = int(row.agent)
            k = done.get((period(time), agent), 0)
            if row.side == "buy":
                assert row.price <= values[agent, k], (time, agent, k)
            else:
                assert row.price >= costs[agent - n_buyers, k], (time, agent, k)
            checked += 1
            continue
        buyer = int(row.loc[row["quantity"] > 0, "agent"].iloc[0])
        seller = int(row.loc[row["quantity"] < 0, "agent"].iloc[0])
        price = float(row["price"].iloc[0])
        p = period(time)
        kb, ks = done.get((p, buyer), 0), done.get((p, seller), 0)
        assert values[buyer, kb] >= price >= costs[seller - n_buyers, ks]
        done[p, buyer], done[p, seller] = kb + 1, ks + 1
    assert checked > 50


# ---- utility -------------------------------------------------------------------------------
def test_utility_consumers_never_quote_across_their_mrs():
    n = 40
    rng = np.random.default_rng(8)
    shares = rng.dirichlet(np.ones(3), n)
    endowment = rng.uniform(0.5, 3.0, (n, 3))
    scenario = Scenario("cd", ["money", "a", "b"], [Consumers("c", CobbDouglas(shares), endowment)])
    run = mktsim.simulate(scenario, "order_book", seed=2, until=30, record_orders="all")
    assert run.summary["behaviours"] == {"c": "utility"}
    orders = run.frame("orders")
    orders = orders[orders["action"] == "limit"].copy()
    orders["good"] = orders["good"].astype(str)
    trades = run.trades.assign(good=run.trades["good"].astype(str))
    assert run.summary["fills"] > 20
    column = {"money": 0, "a": 1, "b": 2}
    tick = 0.001
    for row in orders.itertuples():
        before = trades[(trades["agent"] == row.agent) & (trades["time"] < row.time)]
        x = endowment[row.agent].copy()
        for t in before.itertuples():
            x[column[t.good]] += t.quantity
            x[0] -= t.cash
        j = column[row.good]
        mrs = (shares[row.agent, j] / shares[row.agent, 0]) * (x[0] / x[j])
        if row.side == "buy":
            assert row.price <= mrs + tick * 1e-6, row
        else:
            assert row.price >= mrs - tick * 1e-6, row


def test_utility_cost_per_action_reads_only_the_acting_agent(monkeypatch):
    # the per-agent valuation never asks the whole population: no n x g marginal utility or
    # demand evaluation during the run
    base = mktsim.build_scenario("cobb_douglas", n_agents=200, seed=1)
    calls: list[int] = []
    original = CobbDouglas.marginal_utility

    def counting(self: CobbDouglas, x: Any) -> Any:
        calls.append(np.asarray(x).shape[0])
        return original(self, x)

    monkeypatch.setattr(CobbDouglas, "marginal_utility", counting)
    run = mktsim.simulate(base, "order_book", seed=0, until=5, record_interval=100.0)
    assert run.summary["actions"] > 500
    assert calls and max(calls[1:]) == 1  # after the start-up check, one row at a time


# ---- zip -----------------------------------------------------------------------------------
def market_with(populations: list[Any], goods: list[str], **options: Any) -> tuple[Any, Any]:
    scenario = Scenario("t", goods, populations)
    env = simpy.Environment()
    recorder = Recorder({"goods": goods, "populations": [p.name for p in populations]})
    ledger = Ledger(scenario.goods, to_base(scenario.endowments()), recorder, lambda: env.now)
    slots = tuple(
        PopulationSlot(i, p, r)
        for i, (p, r) in enumerate(
            zip(populations, scenario.population_slices().values(), strict=True)
        )
    )
    ctx = MarketContext(
        env,
        scenario,
        scenario.goods,
        ledger,
        recorder,
        Streams(7),
        slots,
        env.event(),
        strategies=assign_strategies(OrderBookMarket, slots),
    )
    market = OrderBookMarket(**options)
    market.attach(ctx)
    return market, ctx


def cliff_move(seller: bool, price: float, is_bid: bool, q: float, accepted: bool) -> int:
    """+1 / -1 / 0: Cliff's (1997) rules for one active trader, transcribed literally."""
    if seller:
        if accepted and price <= q:
            return +1
        if accepted and is_bid and price >= q:
            return -1
        if not accepted and not is_bid and price >= q:
            return -1
        return 0
    if accepted and price >= q:
        return -1
    if accepted and not is_bid and price <= q:
        return +1
    if not accepted and is_bid and price <= q:
        return +1
    return 0


def test_zip_margins_follow_cliffs_rules_and_the_widrow_hoff_step():
    tick = 0.01
    values = np.array([[2.0], [1.8], [1.6], [1.4]])
    costs = np.array([[0.6], [0.8], [1.0], [1.2]])
    zip_buyers = InducedTraders("zb", "buyer", values, 10.0, behaviour="zip")
    zip_sellers = InducedTraders("zs", "seller", costs, 0.0, behaviour="zip")
    traders = InducedTraders("ext_b", "buyer", np.full((2, 5), 3.0), 50.0, behaviour="external")
    makers = InducedTraders("ext_s", "seller", np.full((2, 5), 0.1), 0.0, behaviour="external")
    pops = [zip_buyers, zip_sellers, traders, makers]
    market, ctx = market_with(pops, ["money", "good"], tick=tick, lot=1.0)
    opts = {
        "rate": None,
        "latency": None,
        "order_size": None,
        "beta_range": (0.1, 0.5),
        "gamma_range": (0.0, 0.1),
        "margin_range": (0.05, 0.35),
        "c_r": 0.05,
        "c_a": 0.05,
    }
    # constructed, not started: only the shouts below happen, and the strategies watch them
    zb = ZeroIntelligencePlus(market, ctx, ctx.slots[0], opts)
    zs = ZeroIntelligencePlus(market, ctx, ctx.slots[1], opts)
    seen: list[Shout] = []
    market.observe(seen.append)
    # the independent copy: margins, momenta, and each population's own update stream
    state = {}
    for z, limits, seller in ((zb, values[:, 0], False), (zs, costs[:, 0], True)):
        side = 1 if seller else 0
        state[z.slot.name] = {
            "limit": limits.tolist(),
            "margin": z.margin[side, 1].tolist(),
            "momentum": [0.0] * 4,
            "beta": z.beta.tolist(),
            "gamma": z.gamma.tolist(),
            "seller": seller,
            "rng": Streams(7).generator(f"order_book:zip:updates:{z.slot.name}"),
        }
    start = {name: list(s["margin"]) for name, s in state.items()}
    shouts = [  # (agent, side, price): bids and asks of the external traders
        (8, "buy", 1.10),
        (10, "sell", 1.90),
        (9, "buy", 1.25),
        (11, "sell", 1.20),  # crosses the bid at 1.25: a trade at 1.25
        (10, "sell", 1.70),
        (8, "buy", 1.70),  # takes the ask: a trade at 1.70
        (9, "buy", 1.30),
    ]
    for agent, side, price in shouts:
        receipt = market.submit(Limit(agent, "good", side, 1.0, price)).value
        assert receipt.ok
        shout = seen[-1]
        accepted = shout.traded is not None
        q = shout.traded if accepted else shout.price
        is_bid = side == "buy"
        for s in state.values():
            moved = []
            for i in range(4):
                lim, m = s["limit"][i], s["margin"][i]
                raw = lim * (1 + m) / tick
                if s["seller"]:
                    p = max(math.ceil(raw - 1e-9), math.ceil(lim / tick - 1e-9))
                else:
                    p = min(math.floor(raw + 1e-9), math.floor(lim / tick + 1e-9))
                moved.append(cliff_move(s["seller"], p, is_bid, round(q / tick), accepted))
            if not any(moved):
                continue
            r = s["rng"].random((2, 4))
            for i, d in enumerate(moved):
                if not d:
                    continue
                lim, m = s["limit"][i], s["margin"][i]
                if d > 0:
                    target = q * (1 + 0.05 * r[0, i]) + 0.05 * r[1, i]
                else:
                    target = q * (1 - 0.05 * r[0, i]) - 0.05 * r[1, i]
                price_now = lim * (1 + m)
                delta = s["beta"][i] * (target - price_now)
                s["momentum"][i] = s["gamma"][i] * s["momentum"][i] + (1 - s["gamma"][i]) * delta
                m = (price_now + s["momentum"][i]) / lim - 1
                s["margin"][i] = max(m, 0.0) if s["seller"] else min(max(m, -1.0), 0.0)
        np.testing.assert_allclose(zb.margin[0, 1], state["zb"]["margin"], rtol=1e-12)
        np.testing.assert_allclose(zs.margin[1, 1], state["zs"]["margin"], rtol=1e-12)
    assert [s.traded for s in seen] == [None, None, None, 1.25, None, 1.70, None]
    # every shout moved some margin of each population away from its start
    assert zb.margin[0, 1].tolist() != start["zb"] and zs.margin[1, 1].tolist() != start["zs"]


# ---- the protocol on the book ----------------------------------------------------------------
def test_external_agents_trade_through_submit_and_receipts_add_up():
    endowment = np.array([[10.0, 0.0], [0.0, 3.0]])
    pop = Consumers("me", CobbDouglas(np.full((2, 2), 0.5)), endowment, behaviour="external")
    market, ctx = market_with([pop], ["money", "x"], tick=0.01, lot=0.1)
    assert isinstance(market, Market)
    assert market.accepts == frozenset({Limit, MarketOrder, Cancel, Modify})
    ask = market.submit(Limit(1, "x", "sell", 1.0, 2.0)).value
    assert ask.status == "accepted" and ask.resting == 1.0
    assert market.resting(1, "x", ask.order_id) == 1.0
    assert market.available(1, "x") == 2 * BASE_UNITS  # one unit reserved by the ask
    moved = market.submit(Modify(1, "x", ask.order_id, price=1.5)).value
    assert moved.ok
    quote = market.quote()
    assert isinstance(quote, BookQuote) and isinstance(quote, Quote)
    assert quote.goods["x"].best_ask == 1.5 and quote.prices["x"] == 1.5
    event = market.updated()
    bought = market.submit(MarketOrder(0, "x", "buy", 0.4)).value
    assert event.triggered
    assert (bought.status, bought.filled, bought.price, bought.cash) == ("filled", 0.4, 1.5, 0.6)
    gone = market.submit(Cancel(1, "x", ask.order_id)).value
    assert gone.status == "cancelled"
    assert market.resting(1, "x", ask.order_id) == 0.0
    np.testing.assert_array_equal(ctx.ledger.holdings, to_base(np.array([[9.4, 0.4], [0.6, 2.6]])))
    refused = market.submit(Limit(0, "money", "buy", 1.0, 1.0)).value
    assert refused.status == "rejected" and "numeraire" in refused.reason
    off_grid = market.submit(Limit(0, "x", "buy", 0.05, 1.0)).value
    assert off_grid.status == "rejected" and "lots" in off_grid.reason
    assert market.summary()["rejected"] == 2


@pytest.mark.parametrize("seed", range(5))
def test_quote_depth_is_the_best_non_empty_levels(seed):
    # quote() is read on every action: the book walks its heap instead of sorting every level;
    # here against a plain sort of the resting orders, with levels emptied by cancels and fills
    from mktsim.mechanisms._book import OrderBook

    rng = np.random.default_rng(seed)
    book = OrderBook("x")
    ids = []
    for _ in range(300):
        side = "buy" if rng.random() < 0.5 else "sell"
        price = int(rng.integers(90, 101) if side == "buy" else rng.integers(100, 111))
        r = book.limit(int(rng.integers(0, 20)), side, int(rng.integers(1, 5)), price)
        if r.order_id is not None:
            ids.append((r.order_id, book.order(r.order_id)))
        if rng.random() < 0.3 and ids:
            oid, info = ids.pop(int(rng.integers(0, len(ids))))
            if info is not None:
                book.cancel(info.owner, oid)
    for k in (1, 2, 3, 7):
        got = book.depth(k)
        for half, side, best_first in ((got.bids, "buy", True), (got.asks, "sell", False)):
            levels: dict[int, int] = {}
            for o in book.orders(side):
                levels[o.price] = levels.get(o.price, 0) + o.qty
            expected = sorted(levels.items(), reverse=best_first)[:k]
            assert list(half) == expected
