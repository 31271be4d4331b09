"""Supply chains on the order book: the firm, source and final-demand strategies
(mktsim.strategies.supply_chain), under the book's old behaviour names too."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mktsim
from mktsim.errors import InvalidParameter
from mktsim.firms import FinalDemand, Firms, Source, link
from mktsim.goods import Goods
from mktsim.production import planner, shared_intermediate_graph
from mktsim.scenario import Scenario
from mktsim.strategies import default_for, resolve
from mktsim.strategies.supply_chain import (
    FinalDemandLimit,
    FirmLimit,
    SourceLimit,
    marginal_value_bid,
)


def test_behaviours_registered_and_default_for_chain_kinds() -> None:
    from mktsim.mechanisms.order_book import OrderBookMarket

    assert resolve("firm_limit") is FirmLimit
    assert resolve("source_limit") is SourceLimit
    assert resolve("final_demand_limit") is FinalDemandLimit
    accepts = OrderBookMarket.accepts
    assert default_for("firms", accepts) == "firm_limit"
    assert default_for("source", accepts) == "source_limit"
    assert default_for("final_demand", accepts) == "final_demand_limit"
    # the book's old names mean the strategies
    assert {k: OrderBookMarket.aliases[k] for k in ("firm", "source", "final_demand")} == {
        "firm": "firm_limit",
        "source": "source_limit",
        "final_demand": "final_demand_limit",
    }
    s = mktsim.build_scenario("tupperware", flow=True, firms=2)
    run = mktsim.simulate(s, "order_book", seed=0, until=12, record="summary")
    assert run.summary["behaviours"] == {
        "owners": "source_limit",
        "cracker": "firm_limit",
        "polymeriser": "firm_limit",
        "moulder": "firm_limit",
        "buyers": "final_demand_limit",
    }


@settings(max_examples=30, deadline=None)
@given(
    p_out=st.floats(0.01, 10.0),
    x=st.floats(0.01, 10.0),
)
def test_marginal_value_bid_is_price_times_derivative_rounded_down(p_out: float, x: float) -> None:
    tick = 0.001
    # f(x) = sqrt(x): f'(x) = 1 / (2 sqrt x), written out by hand
    value = p_out / (2.0 * math.sqrt(x))
    ticks = marginal_value_bid(p_out, 0.5 / math.sqrt(x), tick)
    assert ticks * tick <= value + 1e-12
    assert (ticks + 1) * tick > value - 1e-12


def test_marginal_value_bid_refuses_non_prices() -> None:
    assert marginal_value_bid(1.0, math.inf, 0.001) == 0
    assert marginal_value_bid(1.0, -1.0, 0.001) == 0
    assert marginal_value_bid(0.0, 1.0, 0.001) == 0


def _fixed_quantity_scenario() -> Scenario:
    from mktsim.production.technology import CobbDouglas as PowerTech

    goods = Goods.of(["money", "ore", "widget"], numeraire="money")
    owners = Source("owners", goods, "ore", [10.0])
    firms = Firms(
        "makers",
        PowerTech([[0.5]]),
        ["ore"],
        "widget",
        goods,
        endowment=np.array([[5.0, 0.0, 0.0]]),
    )
    final = FinalDemand("buyers", goods, quantities={"widget": 1.0}, budget=10.0)
    return Scenario(name="t", goods=goods, populations=link([owners, firms, final]), until=5.0)


def test_constant_returns_firms_are_refused() -> None:
    s = mktsim.build_scenario("leontief_io")
    assert any(isinstance(p, Firms) and p.constant_returns for p in s.populations)
    with pytest.raises(InvalidParameter, match="constant returns"):
        mktsim.simulate(s, "order_book", seed=0, until=1)


@pytest.mark.parametrize("name", ["tupperware", "shared_intermediate"])
def test_a_resource_nobody_offers_is_refused(name: str) -> None:
    # without flow the owners are consumers who value only money: they never quote the resource
    with pytest.raises(InvalidParameter, match=r"nobody offers .*flow=True"):
        mktsim.simulate(mktsim.build_scenario(name), "order_book", seed=0, until=1)


def test_final_demand_with_fixed_quantities_is_refused() -> None:
    s = _fixed_quantity_scenario()
    with pytest.raises(InvalidParameter, match="limit price"):
        mktsim.simulate(s, "order_book", seed=0, until=1)


def test_every_change_of_totals_is_a_production_record() -> None:
    s = mktsim.build_scenario("tupperware", flow=True, firms=3)
    run = mktsim.simulate(s, "order_book", seed=1, until=40)
    h = run.holdings
    start = h[h.time == h.time.min()].groupby("good", observed=True).quantity.sum()
    end = h[h.time == h.time.max()].groupby("good", observed=True).quantity.sum()
    prod = run.frame("production").groupby("good", observed=True).quantity.sum()
    for good in s.goods.names:
        made = float(prod.get(good, 0.0))
        assert end[good] - start[good] == pytest.approx(made, abs=1e-8), good
    # inputs are destroyed in the same record that creates the output: each firm record
    # with a negative entry has a positive one
    p = run.frame("production")
    firm = p[p.technology != "owners"]
    for _, rec in firm.groupby("production_id"):
        assert (rec.quantity < 0).any() and (rec.quantity > 0).any()


@pytest.mark.parametrize("seed", [0, 1])
def test_tupperware_order_book_within_five_percent(seed: int) -> None:
    # closed forms: the prices are the derivatives of c(x) = ln(b(a(x))) + offset along the chain
    x = 4.0
    a = math.sqrt(x)
    b = 1.0 - 1.0 / (a + 1.0)
    p_b = 1.0 / b
    p_a = p_b / (a + 1.0) ** 2
    p_x = p_a / (2.0 * math.sqrt(x))
    assert (p_b, p_a, p_x) == pytest.approx((3 / 2, 1 / 6, 1 / 24))
    s = mktsim.build_scenario("tupperware", natgas=x, flow=True)
    run = mktsim.simulate(s, "order_book", seed=seed, until=250)
    est = run.prices.pivot_table(index="time", columns="good", values="estimate", observed=True)
    late = est[est.index >= 150]  # 20 cycles of 5 after the start, 20 more checked
    assert len(late) >= 90
    for good, ref in (("polyethylene", p_b), ("ethylene", p_a), ("natgas", p_x)):
        err = np.abs(late[good].to_numpy() / ref - 1.0)
        assert err.max() < 0.05, (good, float(err.max()))


def test_shared_intermediate_order_book_near_shadow_prices() -> None:
    # not a tree: the reference is the planner's shadow prices (scipy), not the simulation
    s = mktsim.build_scenario("shared_intermediate", flow=True)
    shadow = planner(shared_intermediate_graph()).prices  # the scenario's defaults
    run = mktsim.simulate(s, "order_book", seed=0, until=300)
    est = run.prices.pivot_table(index="time", columns="good", values="estimate", observed=True)
    late = est[est.index >= 200]
    for good in ("ore", "metal"):
        err = np.abs(late[good].to_numpy() / shadow[good] - 1.0)
        assert err.max() < 0.05, (good, float(err.max()))
