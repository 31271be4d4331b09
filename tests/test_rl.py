"""The step interface (mktsim.rl): Gymnasium's and PettingZoo's own checkers, reproducibility,
conservation after every step, rewards as wealth changes recomputed here from holdings and the
quote, actions as the orders they stand for, refusals, and the example learner."""

from __future__ import annotations

import math
import warnings

import attrs
import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test

import mktsim
from mktsim.errors import InvalidParameter, UnknownName
from mktsim.rl import MarketEnv, ParallelMarketEnv, StepCore
from mktsim.rl.examples import evaluate, random_policy, train_market_maker

MECHANISMS = ["order_book", "cpmm", "lmsr"]


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_gymnasium_checker_passes_without_warnings(mechanism: str) -> None:
    env = MarketEnv(mechanism=mechanism, max_steps=15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checker warns where it doubts: none is tolerated
        check_env(env, skip_render_check=True)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_pettingzoo_parallel_checker_passes(mechanism: str) -> None:
    parallel_api_test(ParallelMarketEnv(mechanism=mechanism, learners=3, max_steps=15), 40)


def test_no_arguments_gives_the_order_book() -> None:
    env = MarketEnv()
    assert env.core.mechanism.name == "order_book"
    assert env.action_space.shape == (1, 4)
    assert env.observation_space.shape == (6,)
    market = ParallelMarketEnv()
    assert market.core.mechanism.name == "order_book"
    assert market.possible_agents == ["learner_0", "learner_1"]


def test_parallel_same_seed_and_actions_replay_exactly() -> None:
    def play(market: ParallelMarketEnv, seed: int):
        obs, _ = market.reset(seed=seed)
        rng = np.random.default_rng(9)
        seen = [np.concatenate([obs[a] for a in market.possible_agents])]
        while market.agents:
            actions = {a: rng.uniform(-1, 1, 2) for a in market.agents}
            obs, rewards, _, _, infos = market.step(actions)
            assert all(info["conserved"] for info in infos.values())
            seen.append(np.concatenate([[rewards[a], *obs[a]] for a in market.possible_agents]))
        return np.concatenate(seen)

    first = play(ParallelMarketEnv(mechanism="cpmm", learners=2, max_steps=15), 4)
    again = play(ParallelMarketEnv(mechanism="cpmm", learners=2, max_steps=15), 4)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, play(ParallelMarketEnv(mechanism="cpmm", max_steps=15), 5))


def wealth_here(env: MarketEnv) -> float | None:
    """Money plus goods at the quote's prices, straight from the ledger and the market (None
    while the market shows no price, e.g. an empty book)."""
    core = env.core
    goods = core.scenario.goods.names
    held = core.ledger.holdings[env.row] / core.ctx.goods.base_units  # the run's base unit
    prices = core.market.quote().prices
    if any(prices[g] is None for g in goods[1:]):
        return None
    return float(held[0] + sum(held[goods.index(g)] * prices[g] for g in goods[1:]))


def episode(env: MarketEnv, seed: int, actions: list[np.ndarray]):
    obs, _ = env.reset(seed=seed)
    out = [obs]
    rewards = []
    for a in actions:
        obs, reward, terminated, truncated, _ = env.step(a)
        out.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            break
    return np.array(out), np.array(rewards)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_same_seed_and_actions_replay_exactly(mechanism: str) -> None:
    env = MarketEnv(mechanism=mechanism, max_steps=25)
    actions = list(np.random.default_rng(4).uniform(-1, 1, (25, *env.action_space.shape)))
    obs1, rew1 = episode(env, 11, actions)
    obs2, rew2 = episode(MarketEnv(mechanism=mechanism, max_steps=25), 11, actions)
    assert np.array_equal(obs1, obs2) and np.array_equal(rew1, rew2)
    obs3, _ = episode(env, 12, actions)
    assert not np.array_equal(obs1, obs3)  # another seed, another market


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_conservation_and_rewards_after_every_step(mechanism: str) -> None:
    env = MarketEnv(mechanism=mechanism, max_steps=40)
    rng = np.random.default_rng(0)
    env.reset(seed=5)
    core = env.core
    initial = core.scenario.endowments().sum(axis=0)
    before = wealth_here(env)
    traded = compared = 0
    for _ in range(40):
        action = rng.uniform(-1, 1, env.action_space.shape)
        _, reward, terminated, truncated, info = env.step(action)
        traded += sum(1 for r in info["receipts"] if r[1] > 0)
        # every good: held now = endowed + created - destroyed (the journal), summed here
        journal = core.recorder.frame("journal")
        made = np.zeros_like(initial)
        for good, qty in journal.groupby("good", observed=True)["quantity"].sum().items():
            made[core.scenario.goods.names.index(str(good))] = qty
        held = core.ctx.goods.from_base(np.asarray(core.ledger.holdings).sum(axis=0))
        assert np.allclose(held, initial + made, rtol=0, atol=1e-6)
        assert (np.asarray(core.ledger.holdings) >= 0).all()
        assert info["conserved"]
        now = wealth_here(env)
        if now is not None and before is not None:
            assert reward == pytest.approx(now - before, abs=1e-9)
            compared += 1
        before = now
        if terminated or truncated:
            break
    assert traded > 0  # the learner's orders did trade
    assert compared >= 10


def test_book_actions_post_the_documented_quotes() -> None:
    env = MarketEnv(max_steps=5)
    env.reset(seed=1)
    env.step(np.zeros((1, 4), dtype=np.float32))  # let the book fill
    core = env.core
    ref = core.prices()["good"]
    # full size (10 lots of 1 unit) at ref·(1 − 0.1·0.5) and ref·(1 + 0.1·0.5)
    core.act(env.row, np.array([[1.0, 0.5, 1.0, 0.5]]))
    orders = core.mechanism.handle(env.row).orders("good")
    bids = [o for o in orders if o.side == "buy"]
    asks = [o for o in orders if o.side == "sell"]
    assert [o.price for o in bids] == [math.floor(ref * 0.95)]
    assert [o.price for o in asks] == [math.ceil(ref * 1.05)]
    assert sum(o.quantity for o in bids) <= 10 and sum(o.quantity for o in asks) <= 10
    # the next action withdraws them first: only the new quotes rest
    core.act(env.row, np.array([[-1.0, 0.0, 1.0, 1.0]]))
    orders = core.mechanism.handle(env.row).orders("good")
    assert [(o.side, o.price) for o in orders] == [("sell", math.ceil(ref * 1.1))]


def test_swap_actions_spend_the_documented_budget() -> None:
    env = MarketEnv(mechanism="cpmm", max_steps=5)
    env.reset(seed=0)
    core = env.core
    money0 = core.holdings(env.row)[0]
    budget = 0.05 * core.w0[env.row]
    receipts = core.act(env.row, np.array([0.5, 0.0]))
    assert len(receipts) == 1 and receipts[0].status == "filled"
    assert receipts[0].cash == pytest.approx(0.5 * budget, abs=1e-9)
    assert core.holdings(env.row)[0] == pytest.approx(money0 - 0.5 * budget, abs=1e-9)


def test_an_existing_population_can_learn() -> None:
    env = MarketEnv("prediction_market", "lmsr", population="noise", agent=2, max_steps=5)
    assert env.core.population == "noise_learner"
    check_env(env, skip_render_check=True)
    with pytest.raises(InvalidParameter, match="agent"):
        MarketEnv("prediction_market", "lmsr", population="noise", agent=99)
    with pytest.raises(UnknownName):
        MarketEnv("prediction_market", "lmsr", population="nobody")


@pytest.mark.parametrize(
    ("scenario", "mechanism", "match"),
    [
        (None, "walrasian", "limit orders or swaps"),
        (None, "right_to_act", "limit orders or swaps"),
        ("gode_sunder", "lmsr", "zi_c"),
    ],
)
def test_pairs_it_cannot_act_in_are_refused_in_one_line(scenario, mechanism, match) -> None:
    with pytest.raises(InvalidParameter, match=match) as err:
        MarketEnv(scenario, mechanism)
    assert "\n" not in str(err.value)


def test_bad_arguments_are_refused() -> None:
    for kwargs in (
        {"dt": 0},
        {"max_offset": 1.5},
        {"max_qty": -1.0},
        {"max_steps": 0},
        {"max_steps": "ten"},
    ):
        with pytest.raises(InvalidParameter):
            StepCore(**kwargs)
    with pytest.raises(UnknownName):
        StepCore(endowment={"gold": 1.0})


def test_the_market_finishing_ends_the_episode() -> None:
    """The prediction market resolves at its horizon: the episode terminates there, and the
    shares the learner held are paid out (its wealth is then all money)."""
    env = MarketEnv(mechanism="lmsr", dt=5.0)
    env.reset(seed=0)
    terminated = truncated = False
    while not (terminated or truncated):
        _, _, terminated, truncated, info = env.step(np.array([0.3, 0.0]))
    assert terminated
    held = env.core.holdings(env.row)
    assert held[1:].sum() == 0 and info["wealth"] == pytest.approx(held[0])


def test_a_scenario_named_runs_under_its_own_mechanism() -> None:
    env = MarketEnv("prediction_market", max_steps=3)
    assert env.core.mechanism.name == "lmsr"
    assert env.action_space.shape == (2,)


def test_a_scenario_given_in_python_runs_under_a_mechanism_given() -> None:
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=10)
    env = MarketEnv(scenario, "cpmm", options={"quiet": "never"}, max_steps=10)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2 + 4 * 2,)
    _, _, _, truncated, _ = env.step(env.action_space.sample())
    assert not truncated


def test_the_example_market_maker_profits_where_a_random_agent_loses() -> None:
    """Trained briefly through MarketEnv on the order book; 20 held-out seeds each."""
    kwargs = {"max_steps": 30}
    maker = train_market_maker(episodes=20, seed=0, **kwargs)
    held_out = range(1000, 1020)
    learned = evaluate(maker.act, held_out, **kwargs)
    random = evaluate(random_policy(0, **kwargs), held_out, **kwargs)
    assert learned.mean() > 0
    assert random.mean() < 0


def idle(env: MarketEnv) -> np.ndarray:
    """An action that submits nothing: no size on either side (book), no trade (swap)."""
    if env.core.mode == "book":
        return np.tile(np.array([-1.0, 0.0, -1.0, 0.0], dtype=np.float32), (len(env.core.goods), 1))
    return np.zeros(env.action_space.shape, dtype=np.float32)


def run_idle(env: MarketEnv, seed: int) -> None:
    env.reset(seed=seed)
    done = False
    while not done:
        _, _, terminated, truncated, info = env.step(idle(env))
        assert info["conserved"]
        done = terminated or truncated


@pytest.mark.parametrize(
    ("scenario", "mechanism", "population", "options"),
    [
        ("gode_sunder", "order_book", "buyers", {}),
        ("prediction_market", "lmsr", "noise", {}),
        ("cobb_douglas", "cpmm", "consumers", {"quiet": "never"}),
    ],
)
def test_the_rest_of_a_learners_population_keeps_trading(scenario, mechanism, population, options):
    """Only the learning agent is handed to you: the others of its population still trade."""
    env = MarketEnv(scenario, mechanism, population=population, agent=2, options=options)
    env.core.max_steps = min(env.core.max_steps, 40)
    original = next(p for p in env.core.original.populations if p.name == population)
    pops = {p.name: p for p in env.core.scenario.populations}
    learner = pops[f"{population}_learner"]
    assert learner.size == 1 and pops[population].size == original.size - 1
    assert np.array_equal(learner.endowment, original.endowment[[2]])
    assert pops[population].behaviour == original.behaviour
    run_idle(env, seed=3)
    slots = {s.name: s for s in env.core.ctx.slots}
    others = set(slots[population].row_ids.tolist())
    trades = env.core.recorder.frame("trades")
    assert trades["agent"].isin(others).sum() > 0
    assert not trades["agent"].isin([env.row]).any()
    # the learner's row is untouched, and its endowment is the one it had in its population
    held = env.core.holdings(env.row)
    assert np.allclose(held, original.endowment[2], rtol=0, atol=1e-9)


def test_an_idle_learner_leaves_the_economy_of_an_idle_agent():
    """Splitting buyer 2 out of Gode and Sunder's market and never acting gives the same trades,
    bit for bit, as a run of the economy built here by hand: the five other buyers under zi_c
    and buyer 2 alone in a population that never acts."""
    from mktsim.induced import InducedTraders

    scenario = mktsim.build_scenario(
        "gode_sunder", market=1, periods=1, period_length=50.0, clear_on_trade=False
    )
    env = MarketEnv(scenario, "order_book", population="buyers", agent=2)
    run_idle(env, seed=7)
    buyers = scenario.populations[0]
    assert buyers.name == "buyers" and buyers.size == 6

    def part(name, rows, behaviour, options):
        return InducedTraders(
            name, "buyer", buyers.limits[rows], buyers.money[rows], good=buyers.good,
            n_goods=buyers.n_goods, numeraire=buyers.numeraire, behaviour=behaviour,
            behaviour_options=options,
        )  # fmt: skip

    by_hand = attrs.evolve(
        scenario,
        populations=[
            part("buyers", [0, 1, 3, 4, 5], buyers.behaviour, buyers.behaviour_options),
            part("buyers_learner", [2], "external", {}),
            *scenario.populations[1:],
        ],
    )
    reference = mktsim.simulate(by_hand, "order_book", seed=7).frame("trades")
    stepped = env.core.recorder.frame("trades")
    assert len(reference) > 0
    pd.testing.assert_frame_equal(stepped.reset_index(drop=True), reference.reset_index(drop=True))
    # every unit and every coin is where the endowments and the journal (units redeemed) put it
    assert env.core.conserved()
    journal = env.core.recorder.frame("journal")
    made = journal.groupby("good", observed=True)["quantity"].sum()
    totals = env.core.ctx.goods.from_base(np.asarray(env.core.ledger.holdings).sum(axis=0))
    expected = by_hand.endowments().sum(axis=0) + [made.get(g, 0.0) for g in ("money", "good")]
    assert np.allclose(totals, expected, rtol=0, atol=1e-9)
    assert np.array_equal(env.core.holdings(env.row), buyers.endowment[2])


def test_several_agents_of_a_population_can_learn_together():
    market = ParallelMarketEnv("gode_sunder", population="sellers", agents=[4, 1], max_steps=10)
    assert market.possible_agents == ["sellers_1", "sellers_4"]
    pops = {p.name: p.size for p in market.core.scenario.populations}
    assert pops == {"buyers": 6, "sellers": 4, "sellers_learner": 2}
    parallel_api_test(market, 10)
    with pytest.raises(InvalidParameter, match="population="):
        ParallelMarketEnv(agents=[0])
    with pytest.raises(InvalidParameter, match="population="):
        MarketEnv(agent=1)
    with pytest.raises(InvalidParameter, match="twice"):
        ParallelMarketEnv("gode_sunder", population="sellers", agents=[1, 1])
    with pytest.raises(InvalidParameter, match="split"):
        MarketEnv("tupperware", "cpmm", population="moulder", agent=1)


def test_the_example_makers_choices_are_the_documented_quotes():
    """Symmetric widths, then leaning quotes: the side that restores the starting inventory at
    LEAN times the width (short: the bid; long: the ask), symmetric when about even."""
    from mktsim.rl.examples import LEAN, WIDTHS, QuotingLearner

    maker = QuotingLearner(2)
    assert maker.q.shape == (3, 9)
    assert np.array_equal(maker.action(3, 0), np.tile([1.0, 0.5, 1.0, 0.5], (2, 1)))
    assert np.allclose(maker.action(len(WIDTHS) + 2, 0)[0], [1.0, LEAN * 0.5, 1.0, 0.5])
    assert np.allclose(maker.action(len(WIDTHS) + 2, 2)[0], [1.0, 0.5, 1.0, LEAN * 0.5])
    assert np.allclose(maker.action(len(WIDTHS) + 3, 1)[0], [1.0, 1.0, 1.0, 1.0])
    # sample means by default: two rewards of one choice average exactly
    maker.update(0, 1, 4.0, 0, last=True)
    maker.update(0, 1, 1.0, 0, last=True)
    assert maker.q[0, 1] == 2.5
    # inventory states from the observation's units (index 5), against the first one seen
    obs = np.zeros(6, dtype=np.float32)
    obs[5] = 1.0
    assert maker.state(obs) == 1
    obs[5] = 0.7
    assert maker.state(obs) == 0
    obs[5] = 1.3
    assert maker.state(obs) == 2
