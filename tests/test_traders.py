"""Trader behaviours of the order book: ZIP's learning rule against a literal transcription of
Cliff's rules, zero-intelligence price ranges, Poisson arrivals, latency, utility quotes and the
market maker."""

from __future__ import annotations

import attrs
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import mktsim
import mktsim.strategies
from mktsim import CobbDouglas, Consumers, Scenario
from mktsim.errors import InvalidParameter, UnknownName
from mktsim.induced import induced_scenario
from mktsim.strategies.market_maker import maker_quotes
from mktsim.strategies.zip import zip_rules, zip_step
from mktsim.valuation import utility_quote

finite = st.floats(0.05, 5.0)


# ---- ZIP -----------------------------------------------------------------------------------
def cliff_direction(
    seller: bool, price: float, active: bool, is_bid: bool, q: float, accepted: bool
) -> int:
    """+1 (price up), -1 (price down) or 0 for one trader, as Cliff (1997) states the rules."""
    if not active:
        return 0
    if seller:
        if accepted:
            if price <= q:
                return +1  # raise the profit margin
            if is_bid and price >= q:
                return -1
        elif not is_bid and price >= q:
            return -1
        return 0
    if accepted:
        if price >= q:
            return -1  # a buyer raising its margin bids less
        if not is_bid and price <= q:
            return +1
    elif is_bid and price <= q:
        return +1
    return 0


@given(
    st.lists(st.tuples(finite, st.booleans()), min_size=1, max_size=12),
    st.booleans(),
    st.booleans(),
    finite,
    st.booleans(),
)
def test_zip_rules_match_cliff(traders, seller, is_bid, q, accepted):
    prices = np.array([p for p, _ in traders])
    active = np.array([a for _, a in traders])
    up, down = zip_rules(prices, active, seller, is_bid, q, accepted)
    expected = [cliff_direction(seller, p, a, is_bid, q, accepted) for p, a in traders]
    assert (up.astype(int) - down.astype(int)).tolist() == expected
    assert not (up & down).any()


@given(
    finite,
    st.floats(-0.9, 0.9),
    st.floats(-1, 1),
    st.floats(0.1, 0.5),
    st.floats(0, 0.1),
    finite,
    st.booleans(),
    st.floats(0, 1),
    st.floats(0, 1),
)
def test_zip_step_is_widrow_hoff_with_momentum(
    limit, margin, gamma_prev, beta, gamma, q, up, r1, r2
):
    c_r, c_a = 0.05, 0.05
    p = limit * (1 + margin)
    target = q * (1 + c_r * r1) + c_a * r2 if up else q * (1 - c_r * r1) - c_a * r2
    delta = beta * (target - p)
    momentum = gamma * gamma_prev + (1 - gamma) * delta
    new_margin = (p + momentum) / limit - 1
    got_margin, got_momentum = zip_step(
        np.array([limit]),
        np.array([margin]),
        np.array([gamma_prev]),
        np.array([beta]),
        np.array([gamma]),
        q,
        np.array([up]),
        np.array([r1]),
        np.array([r2]),
        c_r,
        c_a,
    )
    assert got_margin[0] == pytest.approx(new_margin)
    assert got_momentum[0] == pytest.approx(momentum)
    if up:  # the target lies above q, below it otherwise
        assert target >= q
    else:
        assert target <= q


def test_zip_traders_learn_the_equilibrium_price_and_never_trade_at_a_loss():
    alphas_first, alphas_last, efficiency = [], [], []
    for seed in range(4):
        run = mktsim.simulate(mktsim.build_scenario("cliff_symmetric", periods=8), seed=seed)
        efficiency.append(run.summary["allocative_efficiency"])
        alpha = run.summary["alpha_by_period"]
        alphas_first.append(alpha[0])
        alphas_last.append(np.mean([a for a in alpha[-3:] if a is not None]))
        table = mktsim.induced.trade_surplus(run.trades, run.scenario)
        assert (table["value"] >= table["price"]).all() and (table["price"] >= table["cost"]).all()
        for behaviour in run.strategies.values():
            margins = behaviour.margin[:, 1]  # the traded good
            assert (margins[0] <= 0).all() and (margins[0] >= -1).all()  # buyers
            assert (margins[1] >= 0).all()  # sellers
    # Smith's alpha falls as the traders learn (Cliff: to a few percent)
    assert np.mean(alphas_last) < 0.6 * np.mean(alphas_first)
    assert np.mean(alphas_last) < 6
    # Cliff (1997): ZIP markets approach full efficiency; zero intelligence (zi_c) here is ~93%
    assert np.mean(efficiency) > 0.95


@pytest.mark.parametrize("seed", range(4))
def test_a_zip_pair_whose_first_shouts_do_not_cross_learns_to_trade(seed):
    # buyer value 2.00, seller cost 1.90: initial margins of 5-35% put the bid at 1.30-1.90 and
    # the ask at 2.00-2.57, so only each trader's own unaccepted shouts can move it toward the
    # other (Cliff: "if the last shout was a bid and not accepted, any buyer with p <= q lowers
    # its margin"); on a tick grid its own shout must count as at its own price, or the pair
    # never trades
    from mktsim.induced import induced_scenario

    scenario = induced_scenario(
        "pair",
        [[2.0]],
        [[1.9]],
        behaviour="zip",
        periods=4,
        period_length=60.0,
        mechanism_options={"tick": 0.01},
    )
    run = mktsim.simulate(scenario, seed=seed)
    assert run.summary["units_traded_by_period"][1:] == [1, 1, 1]  # after the first period
    prices = run.trades.query("quantity > 0")["price"]
    assert ((prices >= 1.9) & (prices <= 2.0)).all()


# ---- zero intelligence ---------------------------------------------------------------------
def test_zi_c_never_trades_at_a_loss():
    scenario = mktsim.build_scenario("gode_sunder", market=4, periods=2)
    run = mktsim.simulate(scenario, seed=11)
    values = [p.limits for p in scenario.populations]
    n_buyers = values[0].shape[0]
    trades = run.trades.sort_values("trade_id")
    bought: dict[tuple[int, int], int] = {}
    sold: dict[tuple[int, int], int] = {}
    for _, t in trades.groupby("trade_id"):
        buyer = int(t.loc[t["quantity"] > 0, "agent"].iloc[0])
        seller = int(t.loc[t["quantity"] < 0, "agent"].iloc[0])
        price, period = float(t["price"].iloc[0]), int(t["round"].iloc[0])
        kb = bought.get((period, buyer), 0)
        ks = sold.get((period, seller), 0)
        assert values[0][buyer, kb] >= price >= values[1][seller - n_buyers, ks]
        bought[period, buyer] = kb + 1
        sold[period, seller] = ks + 1
    assert len(bought) > 0


def _zi_u_market(**mechanism_options):
    """Traders with many units (they never run out), ZI-U on 1..200, every order recorded."""
    values = [[150.0] * 60 for _ in range(5)]
    costs = [[50.0] * 60 for _ in range(5)]
    scenario = induced_scenario(
        "many_units",
        values,
        costs,
        behaviour="zi_u",
        periods=1,
        period_length=40.0,
        mechanism_options={"record_orders": "all", "clear_on_trade": False, **mechanism_options},
    )
    return scenario


def test_zi_u_prices_are_uniform_on_the_range_and_arrivals_are_poisson():
    rate = 1.0
    run = mktsim.simulate(_zi_u_market(rate=rate), seed=5)
    orders = run.frame("orders")
    limits = orders[orders["action"] == "limit"]
    n_agents, horizon = 10, 40.0
    # every arrival of a trader with units left posts one order: a Poisson count
    expected = rate * n_agents * horizon
    assert abs(len(limits) - expected) < 4 * np.sqrt(expected)
    gaps = np.diff(limits["time"].to_numpy())
    assert stats.kstest(gaps, "expon", args=(0, 1 / (rate * n_agents))).pvalue > 1e-3
    counts = np.bincount(limits["agent"], minlength=n_agents)
    assert stats.chisquare(counts).pvalue > 1e-3
    prices = limits["price"].to_numpy()
    assert prices.min() >= 1 and prices.max() <= 200 and (prices == np.round(prices)).all()
    hist = np.histogram(prices, bins=10, range=(0.5, 200.5))[0]
    assert stats.chisquare(hist).pvalue > 1e-3


def test_latency_delays_every_order_by_the_agents_latency():
    plain = mktsim.simulate(_zi_u_market(), seed=2, until=5)
    scenario = _zi_u_market()
    slow = attrs.evolve(
        scenario, populations=[attrs.evolve(p, delay=0.5) for p in scenario.populations]
    )
    late = mktsim.simulate(slow, seed=2, until=5)

    def orders_before_first_fill(run: mktsim.Run) -> pd.DataFrame:
        o = run.frame("orders")
        o = o[o["action"] == "limit"]
        first_fill = o.loc[o["filled"] > 0, "time"].min()
        return o[o["time"] < first_fill][["time", "agent", "side", "price"]].reset_index(drop=True)

    a, b = orders_before_first_fill(plain), orders_before_first_fill(late)
    n = min(len(a), len(b))
    assert n > 3
    assert np.array_equal(b["time"][:n], a["time"][:n] + 0.5)
    pd.testing.assert_frame_equal(
        a[["agent", "side", "price"]][:n], b[["agent", "side", "price"]][:n]
    )


# ---- utility traders and market makers ------------------------------------------------------
@given(
    finite,
    st.one_of(st.none(), finite),
    st.booleans(),
    st.floats(0, 0.999),
    st.floats(0, 0.9),
    st.floats(0, 1),
)
def test_utility_quotes_never_cross_the_mrs(mrs, ref, buy, u, spread, anchor):
    tick = 0.001
    ticks = utility_quote(mrs, ref, buy, u, spread, anchor, tick)
    price = ticks * tick
    if buy:
        assert price <= mrs + 1e-12
    else:
        assert price >= mrs - 1e-12
    centre = mrs if ref is None else mrs ** (1 - anchor) * ref**anchor
    raw = centre * (1 + spread * (u - 0.5))
    assert abs(price - (min(raw, mrs) if buy else max(raw, mrs))) <= tick + 1e-12


def test_consumers_quote_their_cobb_douglas_mrs():
    shares = np.array([[0.5, 0.3, 0.2], [0.2, 0.2, 0.6]])
    endowment = np.array([[2.0, 1.0, 4.0], [1.0, 3.0, 0.5]])
    scenario = Scenario(
        "two", ["money", "a", "b"], [Consumers("c", CobbDouglas(shares), endowment)]
    )
    run = mktsim.simulate(scenario, "order_book", seed=0, until=1e-6)
    limits = run.strategies["c"].limits
    for i in range(2):
        for j in (1, 2):
            expected = (shares[i, j] / shares[i, 0]) * (endowment[i, 0] / endowment[i, j])
            assert limits.mrs(i, j) == pytest.approx(expected)


@given(finite, st.floats(-2, 2), st.floats(0.005, 0.3), st.floats(0, 0.5))
def test_market_maker_quotes_lean_against_inventory(ref, inventory, spread, skew):
    tick = 0.001
    bid, ask = maker_quotes(ref, inventory, spread, skew, tick)
    assert 1 <= bid < ask
    more_bid, more_ask = maker_quotes(ref, inventory + 0.5, spread, skew, tick)
    assert more_bid <= bid and more_ask <= ask  # holding more: quote lower to sell
    if skew == 0:
        assert bid * tick <= ref * (1 - spread) + tick and ask * tick >= ref * (1 + spread) - tick


def test_a_market_maker_population_quotes_both_sides():
    base = mktsim.build_scenario("cobb_douglas", n_agents=30, seed=4)
    maker = Consumers(
        "maker",
        CobbDouglas(np.full((2, 3), 1 / 3)),
        np.full((2, 3), 20.0),
        behaviour="market_maker",
        behaviour_options={"order_size": 0.05},
    )
    scenario = attrs.evolve(base, populations=[*base.populations, maker])
    run = mktsim.simulate(scenario, "order_book", seed=1, until=40, record_orders="all")
    assert run.summary["conservation_ok"]
    orders = run.frame("orders")
    mine = orders[(orders["agent"] >= 30) & (orders["action"] == "limit")]
    assert set(mine["side"]) == {"buy", "sell"}
    trades = run.trades
    assert (trades["agent"] >= 30).any()  # it traded


def test_behaviour_options_are_checked():
    base = mktsim.build_scenario("gode_sunder", market=1, periods=1)
    buyers, sellers = base.populations

    def run_with(**opts):
        pops = [attrs.evolve(p, behaviour_options=opts) for p in (buyers, sellers)]
        return mktsim.simulate(attrs.evolve(base, populations=pops), until=1)

    with pytest.raises(UnknownName, match="max_price"):
        run_with(max_prize=10)
    with pytest.raises(InvalidParameter, match="rate"):
        run_with(rate=-1)
    with pytest.raises(InvalidParameter, match="latency"):
        run_with(latency=[0.1, 0.2])
    utility = [
        attrs.evolve(p, behaviour="utility", behaviour_options={}) for p in (buyers, sellers)
    ]
    with pytest.raises(InvalidParameter, match="utility"):
        mktsim.simulate(attrs.evolve(base, populations=utility), until=1)


def test_same_seed_same_zip_market():
    a = mktsim.simulate(mktsim.build_scenario("cliff_symmetric", periods=2), seed=9)
    b = mktsim.simulate(mktsim.build_scenario("cliff_symmetric", periods=2), seed=9)
    for name in ("trades", "prices", "events"):
        pd.testing.assert_frame_equal(a.frame(name), b.frame(name), check_exact=True)


def test_every_registered_behaviour_is_documented_by_the_mechanism() -> None:
    # `mktsim list` prints OrderBookMarket.behaviours: exactly what a population can name, the
    # shared strategies whose orders it accepts
    from mktsim.mechanisms.order_book import OrderBookMarket

    shared = {
        name
        for name in mktsim.strategies.available()
        if mktsim.strategies.resolve(name).emits & OrderBookMarket.accepts
    }
    assert {"zi_c", "zi_u", "zip", "utility", "market_maker", "external"} <= shared
    assert set(OrderBookMarket.behaviours) == shared
