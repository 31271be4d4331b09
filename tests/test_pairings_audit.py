"""Pairings and edges: every option value, shock and economy a mechanism accepts either runs
(conserving, and saying why when nothing trades) or is refused before the run in one line
naming what is wrong: never a traceback from deep inside a mechanism."""

from __future__ import annotations

import re

import attrs
import numpy as np
import pytest

import mktsim
from mktsim import cli
from mktsim.errors import InvalidParameter
from mktsim.shocks import (
    CircuitBreaker,
    EndowmentShock,
    PriceCeiling,
    PriceClamp,
    PriceFloor,
)


@pytest.fixture(scope="module")
def economy() -> mktsim.Scenario:
    return mktsim.build_scenario("cobb_douglas", n_agents=5)


@pytest.fixture(scope="module")
def prediction() -> mktsim.Scenario:
    return mktsim.build_scenario("prediction_market", n_traders=5, n_noise=2, until=5.0)


# Values whose count of ledger base units is past any int64 (1e300 units is 1e309 base units at
# the default 1e9 per unit: infinite as a float): each must be refused naming its option.
@pytest.mark.parametrize(
    ("mechanism", "option", "value"),
    [
        ("order_book", "tick", 1e300),
        ("order_book", "lot", 1e300),
        ("call_market", "tick", 1e300),
        ("call_market", "lot", 1e300),
        ("cpmm", "depth", 1e300),
        ("cpmm", "initial_prices", {"good1": 1e300}),
        ("cpmm", "reserves", {"good1": [1e300, 1.0]}),
    ],
)
def test_huge_option_values_are_refused_naming_the_option(economy, mechanism, option, value):
    with pytest.raises(InvalidParameter, match=option):
        mktsim.simulate(economy, mechanism, until=2, **{option: value})


def test_an_lmsr_subsidy_past_the_economys_room_gets_a_coarser_unit_or_is_refused_naming_b(
    prediction,
):
    # b ln 2 units of subsidy: 1e12 ln 2 = 6.9e11 units, past the room the prediction market's
    # own unit leaves (1e13 base units per unit: 9.2e5 units): the maker says what it creates
    # when it opens, and the run takes a unit that holds it. So deep a maker barely moves:
    # LMSR prices are exp(q_i / b) / sum_j exp(q_j / b), 1/2 each to within trades / b.
    plain = mktsim.simulate(prediction, "lmsr", until=2)
    deep = mktsim.simulate(prediction, "lmsr", until=2, b=1e12)
    assert deep.summary["base_units"] < plain.summary["base_units"]
    assert deep.summary["conservation_ok"]
    for outcome in ("yes", "no"):
        assert deep.summary["final_prices"][outcome] == pytest.approx(0.5, abs=1e-9)
    # a subsidy no unit counting whole shares holds beside the traders' money: one line
    # naming b (1e16 ln 2 units is past the 1e15 units a whole-share unit gives a good)
    for b in (1e16, 1e300):
        with pytest.raises(InvalidParameter, match=re.escape(f"b(={b:g}) asks a subsidy")):
            mktsim.simulate(prediction, "lmsr", until=2, b=b)


def test_an_endowment_shock_minting_lmsr_shares_is_refused_before_the_run(prediction):
    # A share is a claim on the maker for 1 unit of money if its outcome resolves; the maker
    # holds collateral for the shares that existed when it opened. Tripling the traders' "yes"
    # shares mints claims nobody collateralised: the payout at resolution could not be met.
    shock = EndowmentShock(time=1.0, good="yes", factor=3.0)
    with pytest.raises(InvalidParameter, match=r"factor\(=3"):
        mktsim.simulate(prediction, "lmsr", seed=1, until=5, shocks=[shock])


def test_an_endowment_shock_destroying_lmsr_shares_pays_out_what_is_left(prediction):
    run = mktsim.simulate(
        prediction, "lmsr", seed=1, until=5, shocks=[EndowmentShock(1.0, "yes", 0.5)]
    )
    assert run.summary["conservation_ok"]
    assert "resolution" in set(run.events["kind"])


@pytest.mark.parametrize("factor", [0.0, 0.5, 3.0])
def test_an_endowment_shock_on_the_right_to_act_is_refused_before_the_run(factor):
    # The deed is one indivisible right, sold whole from owner to owner: scaling an owner's
    # holding of it leaves a fraction nobody can sell (or copies nobody can own).
    world = mktsim.build_scenario("hayek_chain", episodes=5)
    with pytest.raises(InvalidParameter, match="deed"):
        mktsim.simulate(world, "right_to_act", seed=1, shocks=[EndowmentShock(2.0, "deed", factor)])


def _lone_holder(n_agents: int) -> mktsim.Scenario:
    """``n_agents`` Cobb-Douglas consumers of whom only the first holds anything."""
    endowment = np.zeros((n_agents, 3))
    endowment[0] = [1.0, 2.0, 3.0]
    shares = np.full((n_agents, 3), 1 / 3)
    return mktsim.Scenario(
        "lone", ["money", "a", "b"], [mktsim.Consumers("c", mktsim.CobbDouglas(shares), endowment)]
    )


@pytest.mark.parametrize("mechanism", ["order_book", "call_market"])
@pytest.mark.parametrize("n_agents", [1, 4])
def test_a_book_where_one_agent_holds_everything_is_refused(mechanism, n_agents):
    # A limit order fills only against another agent's (self-trade prevention): with one agent
    # holding every good and all the money, no order can ever be met, and the run would trade
    # nothing without saying why.
    with pytest.raises(InvalidParameter, match="only agent 0"):
        mktsim.simulate(_lone_holder(n_agents), mechanism, until=5)


def test_a_lone_holder_still_trades_against_a_pool():
    run = mktsim.simulate(_lone_holder(1), "cpmm", until=20)
    assert run.summary["conservation_ok"] and len(run.trades) > 0


def test_tatonnement_ended_before_clearing_says_why_nothing_traded():
    # Tatonnement trades only at prices that clear every market to within tol; five postings
    # are too few from prices of 1, so the run ends with nothing traded and must say so.
    run = mktsim.simulate(mktsim.build_scenario("cobb_douglas", n_agents=20), until=5)
    assert run.trades.empty
    last = run.excess_demand[run.excess_demand["round"] == run.excess_demand["round"].max()]
    worst = float(last["relative"].abs().max())
    assert worst > run.summary["tolerance"]  # the reason, read off the recorded rounds
    reason = run.summary["no_trade"]
    assert "tatonnement" in reason and f"{worst:.3g}" in reason


def test_a_settled_tatonnement_gives_no_reason_for_not_trading():
    run = mktsim.simulate(mktsim.build_scenario("ces", n_agents=20), until=200)
    assert len(run.trades) > 0 and run.summary["no_trade"] is None


def _nobody_wants_b() -> mktsim.Scenario:
    """Ten consumers who hold good b but give it no weight: nobody ever bids for b, so the
    book never shows a price for it, although a and money trade."""
    rng = np.random.default_rng(0)
    shares = rng.dirichlet([1, 1, 1], size=10)
    shares[:, 2] = 0.0
    shares /= shares.sum(axis=1, keepdims=True)
    endowment = rng.uniform(0.5, 1.5, (10, 3))
    consumers = mktsim.Consumers("c", mktsim.CobbDouglas(shares), endowment)
    return mktsim.Scenario("nobody_wants_b", ["money", "a", "b"], [consumers])


@pytest.mark.parametrize("mechanism", ["order_book", "call_market"])
def test_a_good_never_priced_is_named_when_no_price_is_recorded(mechanism):
    run = mktsim.simulate(_nobody_wants_b(), mechanism, seed=2, until=30)
    traded = set(run.trades["good"].astype(str))
    assert traded == {"a"}  # b never changed hands: no bid for it
    assert run.prices.empty and run.summary["final_prices"] == {}
    assert run.summary["unpriced_goods"] == ["b"]
    assert "b" in run.summary["no_prices"]


@pytest.mark.parametrize("mechanism", ["order_book", "call_market"])
def test_a_run_with_prices_names_no_unpriced_good(mechanism):
    run = mktsim.simulate(mktsim.build_scenario("cobb_douglas", n_agents=20), mechanism, until=30)
    assert not run.prices.empty
    assert run.summary["unpriced_goods"] == [] and run.summary["no_prices"] is None


# A time step of 1e-300 over a horizon of 20 is 2e301 postings, batches or price rows: the run
# never ends. It is refused before the run, naming the option.
@pytest.mark.parametrize(
    ("scenario", "mechanism", "option"),
    [
        ("scarf", "walrasian", "interval"),  # cycles: never converges, so never stops early
        ("cobb_douglas", "call_market", "interval"),
        ("cobb_douglas", "order_book", "record_interval"),
    ],
)
def test_a_time_step_the_horizon_cannot_hold_is_refused(scenario, mechanism, option):
    with pytest.raises(InvalidParameter, match=rf"{option}\(=1e-300\)"):
        mktsim.simulate(mktsim.build_scenario(scenario), mechanism, until=20, **{option: 1e-300})


@pytest.mark.parametrize("duration", [-5.0, 0.0, float("nan"), float("inf"), "soon"])
@pytest.mark.parametrize("kind", [PriceClamp, PriceCeiling, PriceFloor])
def test_a_price_control_with_a_bad_duration_is_refused(kind, duration):
    with pytest.raises(InvalidParameter, match="duration"):
        kind(time=5.0, good="good1", price=1.0, duration=duration)


@pytest.mark.parametrize("duration", [-1.0, float("nan")])
def test_a_breaker_with_a_bad_duration_is_refused(duration):
    with pytest.raises(InvalidParameter, match="duration"):
        CircuitBreaker(time=5.0, threshold=0.1, halt=1.0, duration=duration)


@pytest.mark.parametrize(
    "text",
    [
        "clamp:time=5,good=good1,price=1,duration=nan",
        "clamp:time=5,good=5,price=1",
        "endowment:time=5,good=1,factor=2",
        "breaker:time=5,threshold=0.1,halt=1,good=3",
    ],
)
def test_a_shock_with_a_bad_field_is_refused_on_the_command_line(text, capsys):
    assert cli.main(["run", "cobb_douglas", "--set", "n_agents=5", "--shock", text]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mktsim: error:") and len(err.splitlines()) == 1


@pytest.mark.parametrize("mechanism", ["walrasian", "order_book", "call_market", "cpmm"])
def test_a_shock_due_at_or_after_the_end_is_refused_before_the_run(mechanism, tmp_path, capsys):
    args = ["run", "cobb_douglas", "--set", "n_agents=5", "--mechanism", mechanism]
    args += ["--until", "20", "--out", str(tmp_path / "run"), "--no-report"]
    for when in ("20", "50"):
        assert cli.main([*args, "--shock", f"endowment:time={when},good=good1,factor=0.5"]) == 2
        err = capsys.readouterr().err.strip()
        assert err == (
            f"mktsim: error: endowment shock at time={when} is not before the end of the run "
            "(until=20): it would never act"
        )
    assert not (tmp_path / "run").exists()
    # just before the end it acts
    assert cli.main([*args, "--shock", "endowment:time=19.5,good=good1,factor=0.5"]) == 0
    run = mktsim.load(tmp_path / "run")
    assert (run.frame("events")["kind"] == "shock:endowment").sum() == 1


@pytest.mark.parametrize(
    ("scenario", "mechanism", "options"),
    [
        ("cobb_douglas", "order_book", {"rate": 1e12}),  # the market's rate, the strategies'
        ("glosten_milgrom", "order_book", {"rate": 1e12}),  # the dealer's own arrivals
    ],
)
def test_an_arrival_rate_no_run_could_finish_is_refused_naming_it(scenario, mechanism, options):
    sc = mktsim.build_scenario(scenario)
    with pytest.raises(InvalidParameter, match=r"rate\(=1e\+12\) makes about .* actions"):
        mktsim.simulate(sc, mechanism, until=100.0, **options)


def test_a_swap_strategy_rate_no_run_could_finish_is_refused_naming_it():
    sc = mktsim.build_scenario("prediction_market", n_traders=4, n_noise=2)
    noise = next(p for p in sc.populations if p.behaviour == "noise")
    fast = attrs.evolve(noise, behaviour_options={**noise.behaviour_options, "rate": 1e12})
    sc = attrs.evolve(sc, populations=[fast if p is noise else p for p in sc.populations])
    with pytest.raises(InvalidParameter, match=rf"population {noise.name!r}"):
        mktsim.simulate(sc, until=50.0)


@pytest.mark.parametrize(
    ("mechanism", "option", "said"),
    [
        ("order_book", "rate=1e12", "rate(=1e+12) makes about 1e+16 actions"),
        ("walrasian", "interval=1e-300", "interval(=1e-300) makes 1e+302 postings"),
    ],
)
def test_a_run_too_long_to_finish_is_one_line_on_the_command_line(
    mechanism, option, said, tmp_path, capsys
):
    # its estimated tables would stream, but a refused run says only why it is refused
    args = ["run", "cobb_douglas", "--mechanism", mechanism, "--option", option, "--until", "100"]
    assert cli.main([*args, "--out", str(tmp_path / "r"), "--no-report"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"mktsim: error: {said}")
    assert not (tmp_path / "r").exists()


def test_tatonnement_without_a_report_says_no_posting_was_answered():
    # The auctioneer closes a round when every population has reported; an idle population
    # never does, so no round completes and nothing can trade.
    base = mktsim.build_scenario("cobb_douglas", n_agents=5)
    idle = attrs.evolve(base, populations=[attrs.evolve(base.populations[0], behaviour="idle")])
    run = mktsim.simulate(idle, until=5)
    assert run.trades.empty and run.summary["rounds"] == 0
    assert "no posting was answered" in run.summary["no_trade"]
