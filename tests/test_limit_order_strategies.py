"""The dealer market's and the adversaries' strategies on the market protocol, under the order
book and the call market.

Expectations are written here from the model's primitives: a dealer facing a fraction mu of
informed traders (who buy iff V = V_H) and noise traders (who buy with probability 1/2) quotes
ask = E[V | a buy] and bid = E[V | a sell] by Bayes' rule over who arrives (Glosten & Milgrom
1985); trades are checked pair by pair from the ledger's journal.
"""

from __future__ import annotations

import attrs
import numpy as np
import pandas as pd
import pytest

import mktsim
from mktsim.counterfactual import add_adversary
from mktsim.errors import InvalidParameter, MktsimError, UnknownName
from mktsim.orders import Limit, MarketOrder
from mktsim.random import Streams

V_L, V_H, TICK = 90.0, 110.0, 0.01
LIMIT_MARKETS = ["order_book", "call_market"]


# ---- the model, from its primitives ---------------------------------------------------------
def buy_probabilities(mu: float) -> tuple[float, float]:
    """P(an arrival buys | V = V_H), P(an arrival buys | V = V_L)."""
    return mu + (1.0 - mu) / 2.0, (1.0 - mu) / 2.0


def bayes(pi: float, mu: float, buy: bool) -> tuple[float, float]:
    """(P(V = V_H | the trade), E[V | the trade]) at prior ``pi``."""
    high, low = buy_probabilities(mu)
    like_h, like_l = (high, low) if buy else (1.0 - high, 1.0 - low)
    joint_h, joint_l = pi * like_h, (1.0 - pi) * like_l
    return joint_h / (joint_h + joint_l), (joint_h * V_H + joint_l * V_L) / (joint_h + joint_l)


def dealer_market(mu: float = 0.3, until: float = 1e-6, **params):
    """The dealer alone a strategy: both trader populations act only by hand (``external``)."""
    sc = mktsim.build_scenario("glosten_milgrom", mu=mu, until=until, **params)
    pops = [
        p
        if p.behaviour == "gm_dealer"
        else attrs.evolve(p, behaviour="external", behaviour_options={})
        for p in sc.populations
    ]
    return attrs.evolve(sc, populations=pops)


def touch(market) -> tuple[float, float]:
    q = market.quote().goods["asset"]
    return q.best_bid, q.best_ask


# ---- quotes after each trade ------------------------------------------------------------------
@pytest.mark.parametrize("mechanism", LIMIT_MARKETS)
def test_quotes_after_each_trade_are_the_bayesian_expectations(mechanism):
    mu = 0.4
    run = mktsim.simulate(dealer_market(mu), mechanism, seed=0)
    market = run.mechanism
    env = market.ctx.env
    rng = np.random.default_rng(11)
    pi = 0.5
    for k in range(12):
        bid, ask = touch(market)
        _, e_sell = bayes(pi, mu, False)
        _, e_buy = bayes(pi, mu, True)
        # on the tick grid: the bid at or below E[V | sell], the ask at or above E[V | buy],
        # each within one tick
        assert bid <= e_sell + 1e-9 and e_sell - bid < TICK
        assert ask >= e_buy - 1e-9 and ask - e_buy < TICK
        buy = bool(rng.random() < 0.5)
        side = "buy" if buy else "sell"
        agent = 1 + k % 10  # an informed agent acting by hand
        if mechanism == "order_book":
            r = market.submit(MarketOrder(agent, "asset", side, 1.0)).value
        else:  # an order at the dealer's quote, executed at the batch's clearing
            price = ask if buy else bid
            sent = market.submit(Limit(agent, "asset", side, 1.0, price, ioc=True)).value
            env.run(until=market.quote().next_clearing + 1e-9)
            r = market.receipt(sent.order_id)
        assert r.filled == 1.0 and abs(r.cash) == pytest.approx(ask if buy else bid, abs=1e-9)
        pi, _ = bayes(pi, mu, buy)
    dealer = run.strategies["dealer"]
    assert dealer.belief == pytest.approx(pi, rel=1e-12) and dealer.trades == 12


@pytest.mark.parametrize("mechanism", LIMIT_MARKETS)
@pytest.mark.parametrize("value", ["high", "low"])
def test_the_dealers_belief_converges_to_the_true_value(mechanism, value):
    run = mktsim.simulate(
        mktsim.build_scenario("glosten_milgrom", value=value, until=150.0), mechanism, seed=2
    )
    s = run.summary
    v = V_H if value == "high" else V_L
    assert s["true_value"] == v and s["conservation_ok"]
    assert s["dealer_trades"] > 30
    assert s["final_belief"] > 0.99 if value == "high" else s["final_belief"] < 0.01
    # the last quotes straddle V within 1% of the value range
    assert abs(s["final_bid"] - v) <= 0.01 * (V_H - V_L)
    assert abs(s["final_ask"] - v) <= 0.01 * (V_H - V_L)
    # profits only move between agents
    total = s["dealer_profit"] + s["informed_profit"] + s["noise_profit"]
    assert total == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_true_value_is_the_runs_stream_whatever_the_mechanism(seed):
    drawn = Streams(seed).generator("dealer_market:value").random() < 0.5
    for mechanism in LIMIT_MARKETS:
        run = mktsim.simulate(dealer_market(), mechanism, seed=seed, record="summary")
        assert run.summary["true_value"] == (V_H if drawn else V_L)


def test_every_population_must_share_the_model():
    sc = dealer_market()
    noise = sc.populations[2]
    other = attrs.evolve(
        noise, behaviour="gm_noise", behaviour_options={"v_low": 80.0, "v_high": 110.0}
    )
    with pytest.raises(InvalidParameter, match="same for every population"):
        mktsim.simulate(attrs.evolve(sc, populations=[*sc.populations[:2], other]), seed=0)


# ---- adversaries --------------------------------------------------------------------------------
ADVERSARIES = {
    "spoofer": ({"interval": 1.0, "dwell": 0.3, "offset": 1.0}, 1),
    "wash_trader": ({"interval": 0.5, "size": 0.05}, 2),
    "pump_and_dump": ({"start": 5.0, "pump": 10.0, "dump": 20.0, "size": 0.1}, 1),
}
N = 30


def with_adversary(kind: str) -> mktsim.Scenario:
    options, agents = ADVERSARIES[kind]
    honest = mktsim.build_scenario("cobb_douglas", n_agents=N, seed=3)
    return add_adversary(honest, kind, agents=agents, **options)


def same_run(a, b) -> None:
    for name in ("trades", "holdings"):
        pd.testing.assert_frame_equal(a.frame(name), b.frame(name))


@pytest.mark.parametrize("kind", sorted(ADVERSARIES))
def test_adversaries_under_the_call_market_run_or_are_refused_in_one_line(kind):
    try:
        run = mktsim.simulate(with_adversary(kind), "call_market", seed=4, until=30.0)
    except MktsimError as exc:
        assert kind == "wash_trader", exc  # only a wash pair needs a continuous market
        assert "\n" not in str(exc) and "call_market" in str(exc)
        return
    assert kind != "wash_trader"
    adversary = run.trades[run.trades["agent"] >= N]
    assert len(adversary) > 0 and run.summary["conservation_ok"]
    same_run(run, mktsim.simulate(with_adversary(kind), "call_market", seed=4, until=30.0))


def test_the_dealer_market_under_the_call_market_is_conserved_and_deterministic():
    sc = mktsim.build_scenario("glosten_milgrom", until=40.0)
    a = mktsim.simulate(sc, "call_market", seed=6)
    b = mktsim.simulate(sc, "call_market", seed=6)
    assert a.summary["conservation_ok"] and len(a.trades) > 0
    same_run(a, b)
    pd.testing.assert_frame_equal(a.frame("quotes"), b.frame("quotes"))


def test_a_wash_pairs_fills_are_only_between_the_pair_and_it_is_deterministic():
    run = mktsim.simulate(with_adversary("wash_trader"), "order_book", seed=4, until=30.0)
    t = run.trades
    pair = {N, N + 1}
    sides = t.groupby("trade_id")["agent"].agg(set)
    theirs = sides[sides.apply(lambda agents: bool(agents & pair))]
    assert len(theirs) > 0
    assert all(agents <= pair for agents in theirs)  # no fill with anyone else
    assert run.summary["conservation_ok"]
    same_run(run, mktsim.simulate(with_adversary("wash_trader"), "order_book", seed=4, until=30.0))


@pytest.mark.parametrize("kind", ["spoofer", "pump_and_dump"])
def test_adversaries_under_the_order_book_are_conserved_and_deterministic(kind):
    a = mktsim.simulate(with_adversary(kind), "order_book", seed=8, until=30.0)
    assert a.summary["conservation_ok"] and (a.trades["agent"] >= N).any()
    same_run(a, mktsim.simulate(with_adversary(kind), "order_book", seed=8, until=30.0))


@pytest.mark.parametrize("name", ["spoofer", "wash_trader", "pump_and_dump", "gm_dealer"])
@pytest.mark.parametrize("mechanism", ["walrasian", "lmsr"])
def test_markets_without_limit_orders_refuse_them_naming_where_they_run(name, mechanism):
    sc = with_adversary("spoofer") if name != "gm_dealer" else dealer_market()
    pops = [
        attrs.evolve(p, behaviour=name, behaviour_options={})
        if p.behaviour in ("spoofer", "gm_dealer")
        else p
        for p in sc.populations
    ]
    with pytest.raises(MktsimError) as info:
        mktsim.simulate(attrs.evolve(sc, populations=pops), mechanism, seed=0, until=1.0)
    message = str(info.value)
    assert "\n" not in message
    if name != "gm_dealer":  # (the dealer market's other populations may be refused first)
        assert "order_book" in message and "call_market" in message


def test_pump_and_dump_under_the_pools_is_still_the_swap_strategy():
    honest = mktsim.build_scenario("cobb_douglas", n_agents=10, seed=3)
    sc = add_adversary(honest, "pump_and_dump", good="good1", bursts=2, gap=0.5)
    run = mktsim.simulate(sc, "cpmm", seed=0, until=5.0)
    assert run.strategies["pump_and_dump"].name == "pump_and_dump_swap"


def test_add_adversary_names_what_it_takes():
    honest = mktsim.build_scenario("cobb_douglas", n_agents=5, seed=3)
    with pytest.raises(UnknownName, match="spoofer"):
        add_adversary(honest, "spoofing")
    with pytest.raises(InvalidParameter, match="agents"):
        add_adversary(honest, "spoofer", agents=0)
    sc = add_adversary(honest, "spoofer", name="bad", dwell=3.0, interval=2.0)
    with pytest.raises(InvalidParameter, match="dwell"):
        mktsim.simulate(sc, "order_book", seed=0, until=1.0)


def test_the_dealer_is_one_agent_under_the_call_market_too():
    sc = dealer_market()
    dealer = sc.populations[0]
    two = attrs.evolve(dealer, endowment=np.vstack([dealer.endowment] * 2))
    with pytest.raises(InvalidParameter, match="one agent"):
        mktsim.simulate(attrs.evolve(sc, populations=[two, *sc.populations[1:]]), "call_market")
