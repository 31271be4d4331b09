"""Supply chains on constant-product pools: firm, source and final-demand behaviours."""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

import mktsim
from mktsim.errors import InvalidParameter
from mktsim.firms import FinalDemand, Firms, Source, link
from mktsim.goods import Goods
from mktsim.margins import input_purchase, marginal_cost_of_purchase
from mktsim.production import planner, shared_intermediate_graph
from mktsim.scenario import Scenario


def _cycle_average(prices: pd.DataFrame, good: str, start: float, end: float) -> float:
    """Time-weighted average of a pool's spot price (a step function of time) over [start, end],
    integrated by hand from the recorded steps."""
    p = prices[prices.good == good].sort_values("time", kind="stable")
    t = p.time.to_numpy()
    v = p.price.to_numpy()
    last = np.searchsorted(t, start, side="right") - 1
    edges = np.concatenate([[start], t[(t > start) & (t < end)], [end]])
    values = np.concatenate([[v[last]], v[(t > start) & (t < end)]])
    return float(np.sum(values * np.diff(edges)) / (end - start))


def test_chain_kinds_get_their_cpmm_behaviours_by_default() -> None:
    s = mktsim.build_scenario("tupperware", flow=True, firms=2)
    run = mktsim.simulate(s, "cpmm", seed=0, until=6, record="summary")
    assert run.summary["behaviours"] == {
        "owners": "source",
        "cracker": "firm",
        "polymeriser": "firm",
        "moulder": "firm",
        "buyers": "final_demand",
    }


@settings(max_examples=40, deadline=None)
@given(
    x=st.floats(0.1, 10.0),
    price=st.floats(0.05, 5.0),
    fee=st.sampled_from([0.0, 0.003, 0.05]),
    scale=st.floats(0.1, 3.0),
    batch=st.floats(0.0, 2.0),
)
def test_input_purchase_equates_marginal_cost_and_marginal_value(
    x: float, price: float, fee: float, scale: float, batch: float
) -> None:
    y = x * price
    g = 1.0 - fee

    # money paid for q units, solved by hand from (y + g d)(x − q) = x y
    def paid(q: float) -> float:
        return y * q / (g * (x - q))

    # a firm with f(z) = scale·sqrt(z) valued at z = max(q, batch) (held 0)
    def value(q: float) -> float:
        return scale / (2.0 * math.sqrt(max(q, batch))) if max(q, batch) > 0 else math.inf

    h = 1e-7 * x
    assert marginal_cost_of_purchase(x, y, fee, 0.3 * x) == pytest.approx(
        (paid(0.3 * x + h) - paid(0.3 * x - h)) / (2 * h), rel=1e-5
    )
    rich = input_purchase(x, y, fee, value, money=1e9, flat=batch)
    ask = y / (g * x)
    if value(0.0) <= ask:
        assert rich == 0.0
    else:
        # independent root: d paid / dq (central differences) = value, by scipy's brentq
        def gap(q: float) -> float:
            e = 1e-6 * min(q, x - q)
            return value(q) - (paid(q + e) - paid(q - e)) / (2 * e)

        ref = brentq(gap, 1e-12 * x, x * (1 - 1e-6), xtol=1e-13 * x)
        assert rich == pytest.approx(ref, rel=1e-4, abs=1e-9 * x)
    # a poorer buyer spends all its money, never more
    poor = input_purchase(x, y, fee, value, money=0.5 * paid(rich), flat=batch)
    if rich > 0:
        assert paid(poor) == pytest.approx(0.5 * paid(rich), rel=1e-9)


def test_tupperware_pool_prices_within_five_percent_of_the_derivatives() -> None:
    # closed forms: the prices are the derivatives of c(x) = ln(b(a(x))) + offset along the chain
    x = 4.0
    a = math.sqrt(x)
    b = 1.0 - 1.0 / (a + 1.0)
    p_b = 1.0 / b
    p_a = p_b / (a + 1.0) ** 2
    p_x = p_a / (2.0 * math.sqrt(x))
    assert (p_b, p_a, p_x) == pytest.approx((3 / 2, 1 / 6, 1 / 24))
    s = mktsim.build_scenario("tupperware", natgas=x, flow=True)
    run = mktsim.simulate(s, "cpmm", seed=0, until=140, quiet="never", record="summary")
    opening = run.prices[run.prices.time == 0].set_index("good").price
    assert (opening.drop("money") == 1.0).all()  # pools open far from the derivatives
    # the spot moves with every swap within a cycle (sales push it down, purchases up): the
    # price of a cycle is its time-weighted average, checked over each of the last 4 cycles
    for start in (120.0, 125.0, 130.0, 135.0):
        for good, ref in (("polyethylene", p_b), ("ethylene", p_a), ("natgas", p_x)):
            avg = _cycle_average(run.prices, good, start, start + 5.0)
            assert abs(avg / ref - 1.0) < 0.05, (good, start, avg / ref)


def test_shared_intermediate_pool_prices_near_shadow_prices() -> None:
    # not a tree: the reference is the planner's shadow prices (scipy), not the simulation
    s = mktsim.build_scenario("shared_intermediate", flow=True)
    shadow = planner(shared_intermediate_graph()).prices  # the scenario's defaults
    run = mktsim.simulate(s, "cpmm", seed=0, until=100, quiet="never", record="summary")
    for start in (85.0, 90.0, 95.0):
        for good in ("ore", "metal"):
            avg = _cycle_average(run.prices, good, start, start + 5.0)
            assert abs(avg / shadow[good] - 1.0) < 0.05, (good, start, avg / shadow[good])


def test_every_change_of_totals_is_a_production_record() -> None:
    s = mktsim.build_scenario("tupperware", flow=True, firms=3)
    run = mktsim.simulate(s, "cpmm", seed=1, until=40, quiet="never")
    assert run.summary["conservation_ok"]
    h = run.holdings
    traders = h[h.population.isin([p.name for p in s.populations])]
    start = traders[traders.time == h.time.min()].groupby("good", observed=True).quantity.sum()
    end = traders[traders.time == h.time.max()].groupby("good", observed=True).quantity.sum()
    pools = run.frame("pools")  # in the run's base units
    base = run.summary["base_units"]
    opening = pools[pools.side == "open"].set_index("good")
    closing = pools.groupby("good", observed=True).last()
    prod = run.frame("production").groupby("good", observed=True).quantity.sum()
    for good in s.goods.names:
        made = float(prod.get(good, 0.0))
        # what the traders gained, net of what the pools lost, was made (or used up)
        pooled = 0.0
        if good == "money":
            pooled = float((closing.y - opening.y).sum()) / base
        elif good in closing.index:
            pooled = float(closing.x[good] - opening.x[good]) / base
        assert end.get(good, 0.0) - start.get(good, 0.0) + pooled == pytest.approx(
            made, abs=1e-8
        ), good
    p = run.frame("production")
    assert (p.technology == "owners").any() and (p.technology == "moulder").any()
    for _, rec in p[p.technology != "owners"].groupby("production_id"):
        assert (rec.quantity < 0).any() and (rec.quantity > 0).any()


def test_constant_returns_firms_are_refused_in_one_line() -> None:
    s = mktsim.build_scenario("leontief_io")
    assert any(isinstance(p, Firms) and p.constant_returns for p in s.populations)
    with pytest.raises(InvalidParameter, match="constant returns") as info:
        mktsim.simulate(s, "cpmm", seed=0, until=1)
    assert "\n" not in str(info.value)


def test_a_resource_nobody_supplies_is_refused() -> None:
    # passive owners never trade, and no source or firm makes natgas: the cracker could never buy
    s = mktsim.build_scenario("tupperware")
    pops: list[Any] = list(s.populations)
    pops = [attrs.evolve(p, behaviour="passive") if p.name == "owners" else p for p in pops]
    with pytest.raises(InvalidParameter, match=r"nobody supplies .*flow=True") as info:
        mktsim.simulate(attrs.evolve(s, populations=pops), "cpmm", seed=0, until=1)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("money", [0.0, 1.0])
def test_stock_chain_runs_and_its_owners_sell_everything(money: float) -> None:
    # without flow the owners are consumers valuing only money: their marginal rate of
    # substitution for natgas is 0, below every bid, so they sell their whole stock into the pool
    # (whether or not they hold money to start with)
    s = mktsim.build_scenario("tupperware", firms=2)
    pops = []
    for p in list[Any](s.populations):
        if p.name == "owners":
            end = np.array(p.endowment)
            end[:, s.goods.numeraire_index] = money
            p = attrs.evolve(p, endowment=end)
        pops.append(p)
    run = mktsim.simulate(attrs.evolve(s, populations=pops), "cpmm", seed=0, until=12)
    assert run.summary["conservation_ok"]
    h = run.holdings
    owners = h[(h.population == "owners") & (h.good == "natgas")]
    assert owners[owners.time == owners.time.min()].quantity.sum() == pytest.approx(4.0)
    assert owners[owners.time == owners.time.max()].quantity.sum() == 0.0
    assert (run.frame("production").technology == "cracker").any()


def test_final_demand_with_fixed_quantities_is_refused() -> None:
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
    s = Scenario(name="t", goods=goods, populations=link([owners, firms, final]), until=5.0)
    with pytest.raises(InvalidParameter, match="limit price"):
        mktsim.simulate(s, "cpmm", seed=0, until=1)
