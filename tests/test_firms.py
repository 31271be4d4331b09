"""Firm and final-demand populations, production in the ledger, and supply-chain validation.

Oracles: closed-form profit maximisation written out here, finite differences of the production
function (first-order conditions), hand bookkeeping of the ledger, and the economics of the
setters' signals (zero exactly at the setter's price).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mktsim import CobbDouglas as CDUtility
from mktsim import Consumers, Scenario
from mktsim.errors import ConservationError, InvalidParameter, MktsimError, ScenarioError
from mktsim.firms import FinalDemand, Firms, Source, link, replicate
from mktsim.goods import BASE_UNITS, Goods
from mktsim.ledger import Ledger
from mktsim.production import (
    CES,
    CallableTechnology,
    CobbDouglas,
    Leontief,
    log_technology,
    saturating_technology,
    sqrt_technology,
)
from mktsim.recorder import Recorder

FAST = settings(max_examples=20, deadline=None)
GOODS = Goods.of(["money", "ore", "metal", "widget"])


def money(n: int, amount: float) -> np.ndarray:
    e = np.zeros((n, len(GOODS)))
    e[:, 0] = amount
    return e


def prices(ore: float, metal: float, widget: float = 1.0) -> np.ndarray:
    return np.array([1.0, ore, metal, widget])


# --------------------------------------------------------------------------- firm demand


@FAST
@given(
    a=st.floats(0.1, 0.8),
    scale=st.floats(0.5, 3.0),
    p_in=st.floats(0.05, 5.0),
    p_out=st.floats(0.05, 5.0),
)
def test_power_firm_demand_is_the_closed_form_and_meets_the_foc(a, scale, p_in, p_out):
    firms = Firms("smelters", CobbDouglas([[a]], scale=scale), ["ore"], "metal", GOODS)
    h = money(1, 2.0)
    bundle = firms.demand(prices(p_in, p_out), h)
    # y = A x^a, max p_out A x^a - p_in x  =>  x = (a A p_out / p_in)^(1/(1-a))
    x = (a * scale * p_out / p_in) ** (1.0 / (1.0 - a))
    y = scale * x**a
    assert bundle[0, 1] == pytest.approx(x, rel=1e-10)
    assert bundle[0, 2] == pytest.approx(-y, rel=1e-10)
    # first-order condition by a central difference of the production function
    step = 1e-6 * x
    f_prime = scale * ((x + step) ** a - (x - step) ** a) / (2 * step)
    assert p_out * f_prime == pytest.approx(p_in, rel=1e-6)
    # money pays for the net trade: Walras' law per firm, and the profit is what it gains
    p = prices(p_in, p_out)
    assert (bundle - h)[0] @ p == pytest.approx(0.0, abs=1e-9 * (1 + p_out * y))
    assert bundle[0, 0] - h[0, 0] == pytest.approx(p_out * y - p_in * x, rel=1e-9, abs=1e-12)


def test_firms_buy_only_what_they_lack_and_sell_what_they_hold():
    firms = Firms("smelters", sqrt_technology(), ["ore"], "metal", GOODS)
    p = prices(0.25, 1.0)  # x = (p_out / (2 p_in))^2 = 4, y = 2
    h = np.array([[3.0, 1.5, 0.5, 0.0]])
    bundle = firms.demand(p, h)
    np.testing.assert_allclose(bundle[0, 1:3], [4.0, -2.0])  # holds the plan before production
    trade = bundle - h
    assert trade[0, 1] == pytest.approx(2.5) and trade[0, 2] == pytest.approx(-2.5)


def test_a_firm_whose_plan_loses_money_shuts_down():
    goods = Goods.of(["money", "poly", "tub"])
    p = np.array([1.0, 2.0, 1.0])
    # c = ln(b) + k: b* = p_c / p_b = 0.5, profit = p_c (ln 0.5 + k) - p_b b* = ln 0.5 + k - 1
    losing = Firms("m", log_technology(offset=1.2), ["poly"], "tub", goods)
    assert math.log(0.5) + 1.2 - 1 < 0
    x, y = losing.plan(p)
    assert x[0, 0] == 0.0 and y[0] == 0.0
    earning = Firms("m", log_technology(offset=2.0), ["poly"], "tub", goods)
    x, y = earning.plan(p)
    assert x[0, 0] == pytest.approx(0.5) and y[0] == pytest.approx(math.log(0.5) + 2.0)


def test_off_book_goods_are_not_reported_and_setters_signal_their_price():
    goods = Goods.of(["money", "poly", "tub"])
    moulders = Firms("m", log_technology(offset=3.0), ["poly"], "tub", goods)
    buyers = FinalDemand("b", goods, prices={"tub": 1.5}, budget=10.0)
    moulders, buyers = link([moulders, buyers])
    assert moulders.off_book == {"tub"} and buyers.off_book == {"tub"}
    p = np.array([1.0, 2.0, 1.2])
    trade = moulders.demand(p, np.zeros((1, 3)))
    assert trade[0, 2] == 0.0  # its output trades off the book
    assert trade[0, 1] == pytest.approx(1.2 / 2.0)  # b = p_c / p_b at the posted price
    signal = buyers.demand(p, buyers.endowment) - buyers.endowment
    assert signal[0, 2] == pytest.approx(math.log(1.5 / 1.2))
    assert signal[0] @ p == pytest.approx(0.0, abs=1e-12)
    at_price = buyers.demand(np.array([1.0, 2.0, 1.5]), buyers.endowment) - buyers.endowment
    assert np.abs(at_price).max() == 0.0


def test_constant_returns_industry_signals_its_unit_cost():
    goods = Goods.of(["money", "energy", "steel"])
    steel = Firms("steel", Leontief([[0.3, 0.5]]), ["energy", "money"], "steel", goods)
    (steel,) = link([steel])
    assert steel.constant_returns and steel.off_book == {"steel"}
    p = np.array([1.0, 2.0, 0.9])
    cost = 0.3 * 2.0 + 0.5 * 1.0
    trade = steel.demand(p, np.zeros((1, 3)))
    assert trade[0, 2] == pytest.approx(math.log(cost / 0.9))  # below cost: it buys back
    assert trade[0] @ p == pytest.approx(0.0, abs=1e-12)
    at_cost = steel.demand(np.array([1.0, 2.0, cost]), np.zeros((1, 3)))
    assert np.abs(at_cost).max() < 1e-15
    with pytest.raises(InvalidParameter, match="produce to order"):
        steel.plan(p)


def test_final_demand_orders_on_the_book_unless_a_setter_prices_the_good():
    on = FinalDemand("b", GOODS, quantities={"widget": 2.0}, budget=5.0)
    p = prices(1.0, 1.0, 0.7)
    trade = on.demand(p, on.endowment) - on.endowment
    assert trade[0, 3] == 2.0 and trade[0, 0] == pytest.approx(-1.4)
    off = FinalDemand("b", GOODS, quantities={"widget": 2.0}, off_book={"widget"}, budget=5.0)
    assert np.abs(off.demand(p, off.endowment) - off.endowment).max() == 0.0


def test_sources_sell_everything_they_hold():
    src = Source("wells", GOODS, "ore", [2.0, 3.0])
    np.testing.assert_array_equal(src.endowment[:, 1], [2.0, 3.0])
    p = prices(0.4, 1.0)
    bundle = src.demand(p, src.endowment)
    np.testing.assert_allclose(bundle[:, 1], 0.0)
    np.testing.assert_allclose(bundle[:, 0], [0.8, 1.2])


# --------------------------------------------------------------------------- replication


@FAST
@given(n=st.integers(1, 40), a=st.floats(0.1, 0.8), p_in=st.floats(0.1, 3.0))
def test_an_industry_of_n_firms_acts_as_one_firm(n, a, p_in):
    one = CobbDouglas([[a]], scale=1.5)
    many = replicate(one, n)
    x1 = one.input_demand(1.0, [p_in])
    xs = many.input_demand(1.0, [p_in])
    assert xs.sum() == pytest.approx(x1.sum(), rel=1e-10)
    assert many.supply(1.0, [p_in]).sum() == pytest.approx(one.supply(1.0, [p_in])[0], rel=1e-10)


@pytest.mark.parametrize("n", [1, 7])
def test_replicated_callables_and_ces_keep_supply(n):
    p_out, p_in = 1.0, np.array([0.2])
    for one in (saturating_technology(), log_technology(offset=2.0)):
        many = replicate(one, n)
        assert many.n_firms == n
        assert many.input_demand(p_out, p_in).sum() == pytest.approx(
            one.input_demand(p_out, p_in)[0, 0], rel=1e-12
        )
    ces = CES([[1.0, 2.0]], rho=0.5, returns_to_scale=0.6)
    many = replicate(ces, n)
    assert many.supply(1.0, [0.3, 0.4]).sum() == pytest.approx(ces.supply(1.0, [0.3, 0.4])[0])
    leo = replicate(Leontief([[0.2, 0.5]]), n)
    assert leo.n_firms == n and np.all(leo.coefficients == [0.2, 0.5])


# --------------------------------------------------------------------------- validation


def test_technology_refusals_are_clear():
    with pytest.raises(InvalidParameter, match="returns to scale"):
        Firms("f", CobbDouglas([[0.5, 0.5]]), ["ore", "metal"], "widget", GOODS)
    with pytest.raises(InvalidParameter, match="n_inputs=1"):
        Firms("f", sqrt_technology(), ["ore", "metal"], "widget", GOODS)
    with pytest.raises(ScenarioError, match="own output"):
        Firms("f", CobbDouglas([[0.2, 0.3]]), ["ore", "metal"], "metal", GOODS)
    with pytest.raises(ScenarioError, match="numeraire"):
        Firms("f", sqrt_technology(), ["ore"], "money", GOODS)
    with pytest.raises(InvalidParameter, match="must implement Technology"):
        Firms("f", object(), ["ore"], "metal", GOODS)  # type: ignore[arg-type]


def test_non_concave_and_non_finite_callables_are_refused():
    convex = CallableTechnology(f=lambda x: x[:, 0] ** 2, n_inputs=1)
    with pytest.raises(InvalidParameter, match="not concave"):
        Firms("f", convex, ["ore"], "metal", GOODS)
    blowup = CallableTechnology(f=lambda x: 1.0 / (x[:, 0] - 1.0), n_inputs=1)
    with pytest.raises(InvalidParameter, match="non-finite output"):
        Firms("f", blowup, ["ore"], "metal", GOODS)


def test_a_plan_that_is_not_finite_raises_naming_the_population():
    bad = CallableTechnology(
        f=lambda x: np.sqrt(x[:, 0]),
        n_inputs=1,
        demand=lambda po, pi: np.full((1, 1), np.inf),
    )
    with pytest.raises(InvalidParameter, match="demand"):
        Firms("smelters", bad, ["ore"], "metal", GOODS).plan(prices(1.0, 1.0))


def owners() -> Consumers:
    shares = np.zeros((1, len(GOODS)))
    shares[0, 0] = 1.0
    e = np.zeros((1, len(GOODS)))
    e[0, 1] = 4.0
    return Consumers("owners", CDUtility(shares), e)


def chain(*pops: object, linked: bool = True) -> Scenario:
    populations = link(pops) if linked else list(pops)
    return Scenario("chain", GOODS, populations)


def test_chain_validation_names_each_problem():
    smelt = Firms("smelters", sqrt_technology(), ["ore"], "metal", GOODS, endowment=money(1, 1))
    make = Firms("makers", sqrt_technology(), ["metal"], "widget", GOODS, endowment=money(1, 1))
    buy = FinalDemand("buyers", GOODS, prices={"widget": 1.0}, budget=5.0)
    chain(owners(), smelt, make, buy)  # fine
    with pytest.raises(ScenarioError, match="nobody uses or buys"):
        chain(owners(), smelt, make)
    with pytest.raises(MktsimError, match="metal"):  # an input nobody holds or makes
        chain(make, buy)
    with pytest.raises(ScenarioError, match="link"):
        chain(owners(), smelt, make, buy, linked=False)
    back = Firms("recyclers", CobbDouglas([[0.3, 0.3]]), ["widget", "ore"], "metal", GOODS)
    loop = Firms("loop", CobbDouglas([[0.3, 0.3]]), ["metal", "ore"], "widget", GOODS)
    with pytest.raises(ScenarioError, match=r"cycle: .*->"):
        chain(owners(), back, loop, buy)
    with pytest.raises(ScenarioError, match="no firm makes it"):
        chain(owners(), smelt, make, buy, FinalDemand("b2", GOODS, prices={"ore": 1.0}))
    two = FinalDemand("others", GOODS, prices={"widget": 2.0})
    with pytest.raises(ScenarioError, match="both"):
        chain(owners(), smelt, make, buy, two)
    shares = np.full((1, len(GOODS)), 0.25)
    fans = Consumers("fans", CDUtility(shares), money(1, 1.0))
    with pytest.raises(ScenarioError, match=r"fans.*widget"):
        chain(owners(), smelt, make, buy, fans)
    crs = Firms("crs", Leontief([[1.0]]), ["metal"], "widget", GOODS)
    order = FinalDemand("b", GOODS, quantities={"widget": 1.0}, budget=5.0)
    with pytest.raises(ScenarioError, match="traded on the book"):
        chain(owners(), smelt, crs, order)


# --------------------------------------------------------------------------- ledger.produce


def make_ledger(held: np.ndarray) -> tuple[Ledger, Recorder]:
    rec = Recorder({"goods": GOODS.names, "populations": ["p"]})
    return Ledger(GOODS, held, rec, lambda: 3.0), rec


def test_produce_destroys_inputs_creates_outputs_and_journals_every_unit():
    held = np.zeros((3, 4), dtype=np.int64)
    held[:, 1] = [5 * BASE_UNITS, 2 * BASE_UNITS, 7]
    ledger, rec = make_ledger(held)
    rows = np.array([0, 2])
    inputs = np.zeros((2, 4), dtype=np.int64)
    inputs[:, 1] = [4 * BASE_UNITS, 7]
    outputs = np.zeros((2, 4), dtype=np.int64)
    outputs[:, 2] = [2 * BASE_UNITS, 1]
    pid = ledger.produce(rows, inputs, outputs, "smelters")
    assert pid == 1
    expected = held.copy()
    expected[0] += outputs[0] - inputs[0]
    expected[2] += outputs[1] - inputs[1]
    np.testing.assert_array_equal(ledger.holdings, expected)
    assert ledger.conserved()
    journal = rec.frame("production")
    assert set(journal["production_id"]) == {1} and set(journal["technology"]) == {"smelters"}
    assert (journal["time"] == 3.0).all()
    by = journal.groupby(["agent", "good"], observed=True)["quantity"].sum()
    assert by[(0, "ore")] == -4.0 and by[(0, "metal")] == 2.0
    assert by[(2, "ore")] == -7 / BASE_UNITS and by[(2, "metal")] == 1 / BASE_UNITS


def test_produce_refuses_an_overdraft_and_changes_nothing():
    held = np.zeros((2, 4), dtype=np.int64)
    held[:, 1] = [5, 5]
    ledger, rec = make_ledger(held)
    inputs = np.zeros((2, 4), dtype=np.int64)
    inputs[:, 1] = [5, 6]
    with pytest.raises(ConservationError, match="overdraw account 1"):
        ledger.produce(np.array([0, 1]), inputs, np.zeros_like(inputs), "x")
    np.testing.assert_array_equal(ledger.holdings, held)
    assert len(rec.frame("production")) == 0
    with pytest.raises(InvalidParameter, match=">= 0"):
        ledger.produce(np.array([0]), -np.ones((1, 4), dtype=np.int64), inputs[:1], "x")
    with pytest.raises(InvalidParameter, match="distinct"):
        ledger.produce(np.array([0, 0]), inputs * 0, inputs * 0, "x")
