"""Price controls: the auctioneer settles at a ceiling or a floor with the long side rationed,
the order book, the call market and the pools never trade beyond one, and the summary's
shortage and deadweight loss match answers computed here (closed-form Cobb-Douglas demand and
money metric; Gode & Sunder's schedules)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import mktsim
from mktsim.errors import InvalidParameter
from mktsim.shocks import PriceCeiling, PriceClamp, PriceControl, PriceFloor, parse_shock


@pytest.mark.parametrize(
    ("cls", "allowed", "widened", "binds_on"),
    [
        (PriceClamp, (2.0, 2.0), (1.8, 2.2), {"shortage", "surplus"}),
        (PriceCeiling, (0.0, 2.0), (0.0, 2.0), {"shortage"}),
        (PriceFloor, (2.0, np.inf), (2.0, np.inf), {"surplus"}),
    ],
)
def test_the_three_controls_are_one_shock_with_the_side_as_data(cls, allowed, widened, binds_on):
    shock = cls(1.0, "good1", 2.0)
    assert isinstance(shock, PriceControl) and shock.market
    assert shock.bounds() == allowed
    assert shock.bounds(0.1) == pytest.approx(widened)  # a band widens a clamp only
    assert {"shortage": shock.binds(0.5), "surplus": shock.binds(-0.5)} == {
        side: side in binds_on for side in ("shortage", "surplus")
    }
    assert not shock.binds(0.0)
    assert parse_shock(f"{shock.kind}:time=1,good=good1,price=2") == shock
    assert repr(shock).startswith(f"{cls.__name__}(time=1.0, good='good1', price=2.0")


def cd_parts(scenario):
    pop = scenario.populations[0]
    return pop.utility.shares, pop.endowment


def cd_clearing_price_of_good2(alpha, e, p1):
    """Price of good2 (money = 1, good1 held at p1) that clears good2 for Cobb-Douglas
    consumers: sum_i a_i2 (e_i0 + p1 e_i1 + p2 e_i2) = p2 E_2, linear in p2."""
    a2 = alpha[:, 2]
    return float(a2 @ (e[:, 0] + p1 * e[:, 1]) / (e[:, 2].sum() - a2 @ e[:, 2]))


def cd_excess(alpha, e, p):
    """x_ij = a_ij (p . e_i) / p_j summed, minus supply."""
    wealth = e @ p
    return (alpha * wealth[:, None] / p[None, :]).sum(axis=0) - e.sum(axis=0)


def cd_money_metric(alpha, x, p):
    """u(x) / v(p, 1) with v(p, 1) = prod_j (a_j / p_j)^a_j."""
    u = np.prod(x**alpha, axis=1)
    v = np.prod((alpha / p[None, :]) ** alpha, axis=1)
    return u / v


def final_holdings(run):
    h = run.holdings
    last = h[h["time"] == h["time"].max()].sort_values(["agent", "good"])
    goods = list(run.scenario.goods.names)
    wide = last.pivot(index="agent", columns="good", values="quantity")
    return wide[goods].to_numpy(dtype=float)


def test_a_ceiling_below_equilibrium_settles_with_the_shortage_of_the_closed_form():
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=100)
    alpha, e = cd_parts(scenario)
    eq = mktsim.equilibrium(scenario)
    ceiling = 0.8 * eq.prices["good1"]
    run = mktsim.simulate(scenario, shocks=[PriceCeiling(time=0, good="good1", price=ceiling)])
    assert run.summary["converged"] and run.summary["conservation_ok"]
    assert len(run.trades) > 0
    posted = run.prices[run.prices["good"] == "good1"]["price"]
    np.testing.assert_allclose(posted, ceiling, rtol=1e-12)  # never above; at it when settling
    # the shortage, independently: good2 cleared in closed form with good1 at the ceiling
    p = np.array([1.0, ceiling, cd_clearing_price_of_good2(alpha, e, ceiling)])
    z = cd_excess(alpha, e, p)
    assert abs(z[2]) < 1e-6 and z[1] > 0
    control = run.summary["price_controls"]["goods"]["good1"]
    assert control["binding"] and control["surplus"] == 0.0
    assert control["shortage"] == pytest.approx(z[1], abs=1e-6)
    assert run.summary["final_prices"]["good2"] == pytest.approx(p[2], rel=1e-6)
    # the long side (buyers of good1) is rationed: sold = bought < demanded at the ceiling
    t = run.trades.assign(good=run.trades["good"].astype(str))
    g1 = t[t["good"] == "good1"]["quantity"]
    bought, sold = g1[g1 > 0].sum(), -g1[g1 < 0].sum()
    assert bought == pytest.approx(sold, abs=1e-6)
    demanded = (alpha[:, 1] * (e @ p) / ceiling - e[:, 1]).clip(min=0).sum()
    assert 0 < bought < demanded - z[1] / 2
    # deadweight loss: money metric at the uncontrolled equilibrium prices, written out here
    p_star = np.asarray(eq.price_vector)
    x = final_holdings(run)
    expected = p_star @ e.sum(axis=0) - cd_money_metric(alpha, x, p_star).sum()
    loss = run.summary["price_controls"]["deadweight_loss"]
    assert expected > 0.01 * p_star @ e.sum(axis=0)  # a control 20% off costs something
    assert loss == pytest.approx(expected, rel=1e-6)


def test_a_floor_above_equilibrium_leaves_the_closed_form_surplus():
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=60, seed=2)
    alpha, e = cd_parts(scenario)
    floor = 1.25 * mktsim.equilibrium(scenario).prices["good1"]
    run = mktsim.simulate(scenario, shocks=[PriceFloor(time=0, good="good1", price=floor)])
    assert run.summary["converged"] and len(run.trades) > 0
    p = np.array([1.0, floor, cd_clearing_price_of_good2(alpha, e, floor)])
    z = cd_excess(alpha, e, p)
    control = run.summary["price_controls"]["goods"]["good1"]
    assert z[1] < 0 and control["binding"] and control["shortage"] == 0.0
    assert control["surplus"] == pytest.approx(-z[1], abs=1e-6)
    assert run.summary["price_controls"]["deadweight_loss"] > 0


def test_a_ceiling_that_does_not_bind_costs_nothing():
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=60, seed=1)
    eq = mktsim.equilibrium(scenario).prices
    run = mktsim.simulate(
        scenario, shocks=[PriceCeiling(time=0, good="good1", price=1.5 * eq["good1"])]
    )
    assert run.summary["converged"] and run.summary["price_error"] < 1e-6
    controls = run.summary["price_controls"]
    assert controls["goods"]["good1"]["binding"] is False
    assert abs(controls["deadweight_loss"]) < 1e-6


def test_the_clamp_of_the_command_line_example_settles_and_trades():
    # a clamp under tatonnement used to wait forever for the numeraire to clear
    run = mktsim.simulate(
        mktsim.build_scenario("cobb_douglas", n_agents=100),
        shocks=[parse_shock("clamp:time=0,good=good1,price=0.9")],
    )
    assert run.summary["converged"] and len(run.trades) > 0
    assert run.summary["price_controls"]["goods"]["good1"]["shortage"] > 0


def gs_schedules():
    """Gode & Sunder market 1, written out: values and costs of every unit, trader by trader
    (six buyers and six sellers of three units each, each trading its units in this order)."""
    values = [170, 130, 90, 165, 125, 85, 160, 120, 80, 155, 115, 75, 150, 110, 70, 145, 105, 65]
    costs = [30, 70, 110, 35, 75, 115, 40, 80, 120, 45, 85, 125, 50, 90, 130, 55, 95, 135]
    return np.array(values, float), np.array(costs, float)


def realised_surplus_from_trades(trades, values, costs, period_length):
    """Gode & Sunder's realised surplus, from the trades frame alone: within each period the
    n-th unit an agent trades is its n-th unit (buyers rows 0-5, sellers rows 6-11)."""
    limits = np.concatenate([values, costs]).reshape(12, 3)
    t = trades.sort_values(["time", "trade_id"])
    traded: dict[tuple[int, int], int] = {}
    surplus = 0.0
    for row in t.itertuples():
        period = int(row.time // period_length)
        n = traded.get((period, row.agent), 0)
        traded[(period, row.agent)] = n + 1
        unit = limits[row.agent, n]
        surplus += unit if row.quantity > 0 else -unit
    return surplus


def test_a_ceiling_on_gode_sunder_market_1_loses_what_random_rationing_predicts():
    values, costs = gs_schedules()
    v, c = np.sort(values)[::-1], np.sort(costs)
    q_star = int(np.sum(v > c))  # 12
    max_surplus = float((v[:q_star] - c[:q_star]).sum())  # 900
    ceiling = 80.0
    supplied = int(np.sum(c <= ceiling))  # 9 units cost at most 80: nobody sells more at a loss
    # the textbook triangle between demand and supply from the 9 units sold to the 12 of the
    # free market: the least any rationing of the 9 units can lose
    triangle = float(sum(v[k] - c[k] for k in range(supplied, q_star)))
    assert (supplied, triangle) == (9, 60.0)
    # rationing by lottery: the 9 units go to 9 of the 15 units worth at least the ceiling,
    # every such set equally likely; the expectation, exactly, over all C(15, 9) = 5005 sets
    willing = v[v >= ceiling]
    sets = np.array(list(itertools.combinations(range(willing.size), supplied)))
    assert len(sets) == math.comb(15, 9)
    lottery = float(willing[sets].sum(axis=1).mean()) - float(c[:supplied].sum())
    random_loss = max_surplus - lottery
    assert random_loss == pytest.approx(237.0)
    scenario = mktsim.build_scenario("gode_sunder", market=1, behaviour="zi_c", periods=3)
    good = scenario.goods.names[1]
    losses = []
    for seed in range(20):
        run = mktsim.simulate(
            scenario,
            "order_book",
            seed=seed,
            shocks=[PriceCeiling(time=0, good=good, price=ceiling)],
        )
        assert run.summary["max_surplus_per_period"] == max_surplus
        periods = run.summary["periods_run"]
        controls = run.summary["price_controls"]
        # the reported loss is max surplus less the surplus the trades realised, per period
        realised = realised_surplus_from_trades(
            run.trades, values, costs, run.summary["period_length"]
        )
        assert controls["deadweight_loss"] == pytest.approx(max_surplus - realised / periods)
        assert controls["deadweight_loss_total"] == pytest.approx(periods * max_surplus - realised)
        losses.append(controls["deadweight_loss"])
        assert controls["deadweight_loss"] >= triangle  # nobody trades at a loss
    control = controls["goods"][good]
    assert control["shortage"] == np.sum(values >= 80) - np.sum(costs <= 80) == 6
    assert control["reference_loss_efficient_rationing"] == pytest.approx(triangle)
    assert control["reference_loss_random_rationing"] == pytest.approx(random_loss)
    assert abs(np.mean(losses) - random_loss) < 0.05 * max_surplus
    assert np.mean(losses) > triangle  # rationing by lottery loses more than the triangle


def test_no_trade_crosses_a_ceiling_under_the_book_or_the_call_market():
    scenario = mktsim.build_scenario("gode_sunder", market=1, behaviour="zi_c", periods=1)
    good = scenario.goods.names[1]
    for mechanism in ("order_book", "call_market"):
        run = mktsim.simulate(
            scenario, mechanism, shocks=[PriceCeiling(time=0, good=good, price=80.0)]
        )
        prices = run.trades["price"]
        assert len(prices) > 0 and (prices <= 80.0 + 1e-9).all(), mechanism
        run = mktsim.simulate(
            scenario, mechanism, shocks=[PriceFloor(time=0, good=good, price=120.0)]
        )
        prices = run.trades["price"]
        assert len(prices) > 0 and (prices >= 120.0 - 1e-9).all(), mechanism
        assert run.summary["price_controls"]["goods"][good]["surplus"] == 6  # 12 sold, 6 bought


def test_a_ceiling_on_a_pool_refuses_every_swap_that_would_lift_its_price_above_it():
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=30, seed=3)
    ceiling = 0.9 * mktsim.equilibrium(scenario).prices["good1"]
    run = mktsim.simulate(
        scenario, "cpmm", until=40, shocks=[PriceCeiling(time=0, good="good1", price=ceiling)]
    )
    prices = run.prices[run.prices["good"] == "good1"]["price"].to_numpy()
    # the pool opens above the ceiling (at 1); every fill leaves its price at or below it
    moved = prices[prices != prices[0]]
    assert prices[0] > ceiling and len(moved) > 0
    assert (moved <= ceiling * (1 + 1e-12)).all()
    assert run.summary["rejections"].get("circuit breaker", 0) > 0


def test_controls_on_the_numeraire_or_a_mechanism_without_prices_are_refused_before_the_run():
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=10)
    with pytest.raises(InvalidParameter, match="numeraire"):
        mktsim.simulate(scenario, shocks=[PriceCeiling(time=0, good="money", price=2.0)])
    with pytest.raises(InvalidParameter, match="does not support floor"):
        mktsim.simulate(
            mktsim.build_scenario("hayek_chain"),
            "right_to_act",
            shocks=[PriceFloor(time=0, good="good1", price=2.0)],
        )


def test_a_clamp_still_holds_the_price_exactly_under_non_tatonnement():
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=40)
    run = mktsim.simulate(
        scenario,
        mode="non_tatonnement",
        until=50,
        shocks=[PriceClamp(time=0, good="good1", price=0.9)],
    )
    posted = run.prices[run.prices["good"] == "good1"]["price"]
    np.testing.assert_allclose(posted, 0.9, rtol=1e-12)


def test_a_ceiling_that_lifts_lets_the_auctioneer_clear_and_settle_again():
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=50)
    ceiling = 0.8 * mktsim.equilibrium(scenario).prices["good1"]
    run = mktsim.simulate(
        scenario,
        shocks=[PriceCeiling(time=0, good="good1", price=ceiling, duration=100)],
        until=1000,
    )
    assert run.summary["converged"] and run.summary["sim_time"] > 100
    settled = sorted(run.trades["time"].unique())
    assert len(settled) == 2 and settled[0] < 100 < settled[1]  # at the ceiling, then free
    # the second settlement clears the economy the rationed trade left behind
    assert run.summary["price_error_vs_holdings_equilibrium"] < 1e-6
    control = run.summary["price_controls"]["goods"]["good1"]
    assert control["in_force_at_end"] is False


@pytest.mark.parametrize(
    ("shock", "inside"),
    [
        (PriceCeiling(time=1, good="yes", price=0.4), lambda p: p <= 0.4 + 1e-12),
        (PriceFloor(time=1, good="yes", price=0.6), lambda p: p >= 0.6 - 1e-12),
    ],
)
def test_the_lmsr_maker_fills_no_swap_beyond_a_ceiling_or_a_floor(shock, inside):
    run = mktsim.simulate(mktsim.build_scenario("prediction_market"), "lmsr", shocks=[shock])
    t = run.trades.assign(good=run.trades["good"].astype(str))
    # (the resolution's payouts at the end are not trades at a price of the market)
    during = t[(t["good"] == "yes") & (t["time"] > 1) & (t["time"] < run.summary["sim_time"])]
    assert len(during) > 0 and inside(during["price"]).all()
