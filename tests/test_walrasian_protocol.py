"""The auctioneer on the market protocol: its quote, refusals as data, postings, and the demand
strategies (truthful, manipulator) against closed-form Cobb-Douglas demands."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import pandas as pd
import pytest
from conftest import cobb_douglas_prices
from mktsim.mechanisms.walrasian import AuctioneerQuote, WalrasianAuctioneer

import mktsim
from mktsim.cli import main
from mktsim.errors import InvalidParameter, UnknownName
from mktsim.orders import BUY, DemandReport, Limit, Quote, Receipt
from mktsim.testing import ConformanceError, check_mechanism


def economy(n: int = 12, seed: int = 3) -> mktsim.Scenario:
    return mktsim.build_scenario("cobb_douglas", n_agents=n, n_goods=3, seed=seed)


def with_script(script: Any) -> type:
    """The auctioneer with a test process started right after attach (before any strategy)."""

    class Scripted(WalrasianAuctioneer):
        def attach(self, ctx: Any) -> None:
            super().attach(ctx)
            self.log: list[Any] = []
            ctx.env.process(script(self, ctx, self.log))

    return Scripted


def test_the_quote_is_a_frozen_protocol_quote_of_the_latest_posting():
    scenario = economy()
    run = mktsim.simulate(scenario, until=500)
    quote = run.mechanism.quote()
    assert isinstance(quote, AuctioneerQuote) and isinstance(quote, Quote)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        quote.round = 0
    with pytest.raises(TypeError):
        quote.prices["good1"] = 2.0  # type: ignore[index]
    # the last posting is the settlement, at the equilibrium prices (numeraire not shown)
    pop = scenario.populations[0]
    expected = cobb_douglas_prices(pop.utility.shares, pop.endowment)
    assert quote.settle and set(quote.prices) == {"good1", "good2"}
    np.testing.assert_allclose(
        [quote.prices["good1"], quote.prices["good2"]], expected[1:], rtol=1e-6
    )
    np.testing.assert_allclose(quote.posted, expected, rtol=1e-6)
    # postings are numbered from 0: every price round, then the settlement
    assert quote.round == run.summary["rounds"]


def test_reports_it_cannot_use_are_rejected_receipts_and_change_nothing():
    def script(market, ctx, log):
        name, g = "consumers", len(ctx.goods)
        before = (ctx.ledger.holdings.copy(), market.quote())
        for order in [
            Limit(0, "good1", BUY, 1.0, 1.0),
            DemandReport("ghost", 0, np.zeros(g)),
            DemandReport(name, 1, np.zeros(g)),
            DemandReport(name, 0, np.array([0.0, np.nan, 0.0])),
            DemandReport(name, 0, np.zeros(g + 1)),
            DemandReport(name, 0, ["a", "b", "c"]),  # type: ignore[arg-type]
            DemandReport(name, 0, np.zeros(g), np.zeros((5, g))),
        ]:
            event = market.submit(order)
            log.append(event.value)
        after = (ctx.ledger.holdings.copy(), market.quote())
        log.append(np.array_equal(before[0], after[0]) and before[1] == after[1])
        yield ctx.env.timeout(0.5)  # every report of posting 0 is in; posting 1 comes at 1
        log.append(market.submit(DemandReport(name, 0, np.zeros(g))).value)

    scenario = economy()
    run = mktsim.simulate(scenario, with_script(script), until=40)
    *receipts, unchanged, late = run.mechanism.log
    assert all(isinstance(r, Receipt) and r.status == "rejected" for r in [*receipts, late])
    assert [r.reason for r in receipts] == [
        "walrasian takes demand reports, not Limit",
        "population 'ghost' is not in this run",
        "report answers posting 1, but the open posting is 0",
        "excess has non-finite entries",
        "excess has shape (4,), expected (3,)",
        "excess must be numbers",
        "per_agent has shape (5, 3), expected (12, 3)",
    ]
    assert unchanged
    assert late.reason == "no posting is open (the last, 0, has every report)"
    # each refusal is recorded, and the run is the one without them
    assert (run.events["kind"] == "refused").sum() == len(receipts) + 1
    plain = mktsim.simulate(scenario, until=40)
    for name in ("prices", "excess_demand", "trades", "holdings"):
        pd.testing.assert_frame_equal(run.frame(name), plain.frame(name), check_exact=True)


def test_a_settling_posting_needs_per_agent_demands_and_one_answer_per_population():
    def script(market, ctx, log):
        g, n = len(ctx.goods), ctx.slot("manipulator").population.size
        log.append(market.submit(DemandReport("manipulator", 0, np.zeros(g))).value)
        zero = DemandReport("manipulator", 0, np.zeros(g), np.zeros((n, g)))
        log.append(market.submit(zero).value)  # accepted: the population has answered
        yield ctx.env.timeout(0)

    scenario = mktsim.build_scenario("manipulated", n_agents=20)
    run = mktsim.simulate(scenario, with_script(script), mode="non_tatonnement", until=3)
    missing, first = run.mechanism.log[:2]
    assert missing.reason == "posting 0 settles: the report needs per_agent demands"
    assert first.status == "accepted"
    # ... so the strategy's own answer to posting 0 is refused, and logged
    refused = run.events[run.events["kind"] == "refused"]["detail"].tolist()
    assert "population 'manipulator' has answered posting 0 already" in refused
    # the zero report is what counted in round 0
    round0 = run.excess_demand_by_population.query("round == 0 and population == 'manipulator'")
    assert len(round0) == 3 and (round0["excess_demand"] == 0).all()


def test_updated_fires_at_the_next_posting_with_its_quote():
    def script(market, ctx, log):
        log.append(market.quote())
        quote = yield market.updated()
        log.append((ctx.env.now, quote, quote is market.quote()))

    slow = economy()
    pop = slow.populations[0]
    slow = mktsim.Scenario(
        "slow", slow.goods, [mktsim.Consumers("c", pop.utility, pop.endowment, delay=2.5)]
    )
    run = mktsim.simulate(slow, with_script(script), interval=1.0, until=20)
    first, (when, second, same) = run.mechanism.log
    assert first.round == 0 and first.time == 0 and not first.settle
    # the population answers 2.5 later, so posting 1 comes at 2.5 (the interval is shorter)
    assert second.round == 1 and when == second.time == 2.5 and same


def cd_excess(shares, endowment, p):
    """Aggregate Cobb-Douglas demand and excess demand at prices p (closed form)."""
    wealth = endowment @ p
    demand = (shares * wealth[:, None] / p).sum(axis=0)
    return demand, demand - endowment.sum(axis=0)


def test_truthful_and_manipulated_reports_match_closed_form_demands():
    scenario = mktsim.build_scenario("manipulated", factor=1.5, n_agents=40, seed=5)
    run = mktsim.simulate(scenario, until=30)
    prices = run.prices.pivot(index="round", columns="good", values="price")
    reports = run.excess_demand_by_population
    manip, honest = scenario.populations
    checked = 0
    for rnd in range(5):
        p = prices.loc[rnd].to_numpy()
        rows = reports[reports["round"] == rnd]
        got = {
            pop: rows[rows["population"] == pop].sort_values("good")["excess_demand"].to_numpy()
            for pop in ("manipulator", "honest")
        }
        _, truthful = cd_excess(honest.utility.shares, honest.endowment, p)
        np.testing.assert_allclose(got["honest"], truthful, rtol=1e-9, atol=1e-9)
        demand, _ = cd_excess(manip.utility.shares, manip.endowment, p)
        biased = demand.copy()
        biased[1] *= 1.5  # good1
        biased[0] += p @ demand - p @ biased  # the difference in money (numeraire price 1)
        np.testing.assert_allclose(
            got["manipulator"], biased - manip.endowment.sum(axis=0), rtol=1e-9, atol=1e-9
        )
        # both keep Walras' law: the value of what they report is zero
        assert abs(p @ got["manipulator"]) < 1e-8 and abs(p @ got["honest"]) < 1e-8
        checked += 1
    assert checked == 5


def test_manipulator_options_are_checked_before_the_run():
    base = mktsim.build_scenario("manipulated", n_agents=20)
    manip = base.populations[0]

    def run_with(options):
        pop = attrs.evolve(manip, behaviour_options=options)
        scenario = attrs.evolve(base, populations=[pop, base.populations[1]])
        return mktsim.simulate(scenario, until=5)

    with pytest.raises(InvalidParameter, match="manipulator 'manipulator' needs"):
        run_with({"factor": 2.0})
    with pytest.raises(UnknownName, match="colour"):
        run_with({"good": "good1", "colour": "red"})
    with pytest.raises(InvalidParameter, match=r"factor\(=-1\.0\)|factor\(=-1\)"):
        run_with({"good": "good1", "factor": -1.0})
    with pytest.raises(UnknownName, match="gold"):
        run_with({"good": "gold"})


def test_pairings_without_demand_reports_are_refused_in_one_line():
    gode_sunder = mktsim.build_scenario("gode_sunder")
    with pytest.raises(InvalidParameter) as refused:
        mktsim.simulate(gode_sunder, "walrasian", until=5)
    assert str(refused.value) == (
        "population 'buyers' (induced) has no demand at posted prices, so the walrasian "
        "auctioneer cannot clear it"
    )
    manipulated = mktsim.build_scenario("manipulated", n_agents=20)
    with pytest.raises(InvalidParameter) as refused:
        mktsim.simulate(manipulated, "cpmm", until=5)
    message = str(refused.value)
    assert "strategy 'manipulator' sends demand report orders" in message
    assert message.endswith("it runs under walrasian") and "\n" not in message


def test_mktsim_list_names_the_strategies_the_auctioneer_accepts(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    block = out[out.index("  walrasian:") :]
    assert (
        "behaviours: idle, manipulator, proportional_response, truthful"
        in block.split("scenarios:")[0]
    )


def test_the_checker_catches_an_auctioneer_that_takes_stale_reports():
    class Stale(WalrasianAuctioneer):
        def _check(self, report: Any) -> str:
            reason = super()._check(report)
            return "" if reason.startswith("report answers posting") else reason

    with pytest.raises(ConformanceError, match=r"\(the wrong round\) gave Receipt\(status='acc"):
        check_mechanism(Stale, until=10.0)
