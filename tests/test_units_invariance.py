"""Results do not depend on the unit quantities are written in.

An exchange economy (a prediction market for the LMSR maker) with every quantity (money
included) multiplied by 10**k, and every quantity among the mechanism's options (an order book's
lot, the maker's liquidity b) with it, must give the same price path (to 1e-9 relative) with
holdings and money scaled by 10**k, conserve every good, or be refused in one line before the
run. The reference is the unscaled run of the same economy; the scaling is done
here, on the scenario and the options, never by the simulator.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mktsim.scenarios import prediction_market

import mktsim
from mktsim.errors import ConservationError, InvalidParameter, MktsimError
from mktsim.goods import Goods, base_units_for, checked_int64, power_of_ten
from mktsim.ledger import Ledger
from mktsim.ledger_range import run_goods
from mktsim.recorder import Recorder

UNTIL = 6.0
LOT = 0.01  # the order book's and the call market's lot at k = 0
B = 10.0  # the LMSR maker's liquidity at k = 0
MECHANISMS = ("walrasian", "order_book", "call_market", "cpmm", "lmsr")
#: The LMSR maker counts whole units of each share (its cost function's integer scale): an
#: economy whose largest total is past this many units has a base unit larger than a unit
#: (its largest total at 15 digits) and is refused.
LMSR_LARGEST = 1e15


def economy(
    kind: str, n_agents: int, n_goods: int, seed: int, spread: float, mechanism: str = ""
) -> mktsim.Scenario:
    """A random exchange economy: the scenario's preferences, endowments spread over
    ``spread`` decades (drawn here from ``seed``); for the LMSR maker, a prediction market
    with ``n_agents`` belief traders, some noise and informed traders, wealth spread ``spread``
    and ``n_goods`` outcomes."""
    if mechanism == "lmsr":
        truth = np.full(n_goods, 1.0 / n_goods)
        return prediction_market.build(
            n_traders=n_agents,
            n_noise=3,
            n_informed=2,
            true_probability=truth.tolist() if n_goods > 2 else 0.7,
            wealth_spread=spread,
            b=B,
            until=UNTIL,
            seed=seed,
        )
    scenario = mktsim.build_scenario(kind, n_agents=n_agents, n_goods=n_goods, seed=seed)
    rng = np.random.default_rng(seed)
    shape = scenario.endowments().shape
    return scenario.with_endowments(10.0 ** rng.uniform(-spread / 2, spread / 2, shape))


def scaled_run(
    scenario: mktsim.Scenario, mechanism: str, k: int, base_units: float | None = None
) -> mktsim.Run:
    factor = 10.0**k
    options = {"lot": LOT * factor} if mechanism in ("order_book", "call_market") else {}
    if mechanism == "lmsr":
        options = {"b": B * factor}
    return mktsim.simulate(
        scenario.with_endowments(scenario.endowments() * factor),
        mechanism,
        seed=7,
        until=UNTIL,
        base_units=base_units,
        **options,
    )


def same_integers(scenario: mktsim.Scenario, k: int) -> int | float:
    """The base unit that gives the unscaled economy the integers its run at ``10**k`` holds:
    the scaled run's own base unit, times ``10**k`` (exactly a power of ten)."""
    scaled = scenario.with_endowments(scenario.endowments() * 10.0**k)
    return power_of_ten(round(math.log10(run_goods(scaled).base_units)) + k)


def assert_same_up_to_scale(ref: mktsim.Run, run: mktsim.Run, k: int, rtol: float = 1e-9) -> None:
    assert run.summary["conservation_ok"] and ref.summary["conservation_ok"]
    p0, p1 = ref.prices, run.prices
    assert len(p0) == len(p1)
    assert np.array_equal(p0["time"].to_numpy(), p1["time"].to_numpy())
    a, b = p0["price"].to_numpy(), p1["price"].to_numpy()
    assert np.allclose(b, a, rtol=rtol, atol=0.0, equal_nan=True)
    # holdings (money included) scaled by 10**k, at every snapshot
    h0, h1 = ref.frame("holdings"), run.frame("holdings")
    assert len(h0) == len(h1) and len(h0) > 0
    for column in h0.columns:
        if column in ("time", "agent", "population", "round", "good"):
            continue
        x0 = h0[column].to_numpy(dtype=float)
        x1 = h1[column].to_numpy(dtype=float)
        assert np.allclose(x1, x0 * 10.0**k, rtol=rtol, atol=rtol * 10.0**k * np.abs(x0).max())


def assert_scaled_run_alike(
    scenario: mktsim.Scenario, mechanism: str, ref: mktsim.Run, k: int
) -> None:
    """The run of the economy scaled by ``10**k`` against the unscaled run ``ref``: the base
    unit depends on the decade of the largest total only, so the scaled run's is ``10**-k``
    times the unscaled one's, the runs hold the same integers and agree to 1e-9 directly."""
    run = scaled_run(scenario, mechanism, k)
    assert same_integers(scenario, k) == run_goods(scenario).base_units == ref.summary["base_units"]
    assert_same_up_to_scale(ref, run, k)


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(["cobb_douglas", "ces"]),
    n_agents=st.integers(3, 8),
    n_goods=st.integers(2, 3),
    seed=st.integers(0, 10_000),
    spread=st.floats(0.0, 3.0),
    mechanism=st.sampled_from(MECHANISMS),
    k=st.integers(-6, 12),
)
def test_a_scaled_economy_runs_the_same_or_is_refused_in_one_line(
    kind, n_agents, n_goods, seed, spread, mechanism, k
):
    scenario = economy(kind, n_agents, n_goods, seed, spread, mechanism)
    try:
        ref = scaled_run(scenario, mechanism, 0)
    except MktsimError as refusal:  # e.g. no agent holds one lot: refused alike at every scale
        assert "\n" not in str(refusal)
        with pytest.raises(type(refusal)) as again:
            scaled_run(scenario, mechanism, k)
        assert "\n" not in str(again.value)
        return
    largest = scenario.endowments().sum(axis=0).max() * 10.0**k
    if mechanism == "lmsr" and largest > LMSR_LARGEST:
        with pytest.raises(InvalidParameter) as info:
            scaled_run(scenario, mechanism, k)
        assert "\n" not in str(info.value) and "whole number of base units" in str(info.value)
        return
    assert_scaled_run_alike(scenario, mechanism, ref, k)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_every_decade_from_minus_6_to_12_gives_the_same_prices(mechanism):
    """One economy at each end of the range and in between; the ledger's base unit moves with
    the scale, so the runs' integers are the same."""
    scenario = economy("cobb_douglas", 6, 3, seed=11, spread=1.0, mechanism=mechanism)
    ref = scaled_run(scenario, mechanism, 0)
    largest = scenario.endowments().sum(axis=0).max()
    for k in (-6, -1, 5, 9, 12):
        if largest * 10.0**k > (LMSR_LARGEST if mechanism == "lmsr" else math.inf):
            continue  # refused in one line (the property test checks the refusal)
        assert_scaled_run_alike(scenario, mechanism, ref, k)


def test_the_base_unit_is_a_power_of_ten_that_moves_with_the_scale():
    # the largest total in (1e14, 1e15] base units, worked out by hand: a total of t units
    # with 10**(d-1) < t <= 10**d gets 10**(15 - d) base units per unit
    assert base_units_for(10.0) == 10**14  # d = 1
    assert base_units_for(10.5) == 10**13  # d = 2
    assert base_units_for(100.16) == 10**12  # d = 3 (the default cobb_douglas economy)
    assert base_units_for(1e6) == 10**9  # d = 6
    assert base_units_for(1e6 * (1 + 1e-12)) == 10**9  # a sum's rounding keeps the decade
    assert base_units_for(1.5e6) == 10**8  # d = 7
    assert base_units_for(1e12) == 10**3
    assert base_units_for(1e15) == 1
    assert base_units_for(1e17) == pytest.approx(1e-2, rel=1e-15)
    assert base_units_for(1e-3) == 10**18  # d = -3: the last power kept as an int
    assert base_units_for(1e-6) == pytest.approx(1e21, rel=1e-15)
    assert base_units_for(1e-7) == pytest.approx(1e22, rel=1e-15)
    assert base_units_for(0.0) == 10**9  # an empty economy keeps the default
    for total in (3.7, 10.0, 2e3, 5e-3):
        # base units per unit times the scale is one constant at every scale
        scaled = [base_units_for(total * 10.0**k) * 10.0**k for k in range(-6, 13)]
        assert scaled == pytest.approx([scaled[0]] * len(scaled), rel=1e-12)


def test_economies_past_the_old_limit_now_run_the_same():
    """A 20-agent economy at 1e9 and 4e8 times its size (past the former fixed limit of
    about 9.2e9 units a good) gives the unscaled run's prices."""
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=20)
    ref = mktsim.simulate(scenario, "walrasian", seed=3, until=UNTIL)
    for factor in (1e9, 4e8):
        big = scenario.with_endowments(scenario.endowments() * factor)
        run = mktsim.simulate(big, "walrasian", seed=3, until=UNTIL)
        assert run.summary["conservation_ok"]
        assert np.allclose(run.prices["price"], ref.prices["price"], rtol=1e-6, atol=0.0)


def test_a_lot_finer_than_the_base_unit_is_refused_in_one_line():
    scenario = economy("cobb_douglas", 5, 2, seed=1, spread=0.0)  # totals ~5 units: 1e14 base
    for mechanism in ("order_book", "call_market"):
        with pytest.raises(InvalidParameter) as info:
            mktsim.simulate(scenario, mechanism, until=1.0, lot=1e-15)
        message = str(info.value)
        assert "\n" not in message and "lot(=1e-15) must be a whole number" in message


def test_an_endowment_too_small_beside_the_largest_is_refused_in_one_line():
    scenario = economy("cobb_douglas", 5, 2, seed=1, spread=0.0)
    tiny = scenario.endowments()
    tiny[2, 1] = 1e-16  # a hundredth of a base unit (1e-14) when the largest total is ~5 units
    with pytest.raises(InvalidParameter) as info:
        mktsim.simulate(scenario.with_endowments(tiny), "walrasian", until=1.0)
    message = str(info.value)
    assert "\n" not in message and "endowment of good1 (=1e-16) rounds to 0" in message


def test_an_injected_overflow_in_production_is_caught_not_wrapped():
    """A production whose output in base units is past int64 would wrap to a negative number
    on a plain cast; the checked cast raises, and a creation past the limit raises in the
    ledger, leaving every holding and the conservation check as they were."""
    with pytest.raises(ConservationError, match="past the ledger's limit"):
        checked_int64(np.array([1.0, 2.0**63]), "production of bakers")
    with pytest.raises(ConservationError):
        checked_int64(np.array([np.nan]), "production of bakers")
    assert checked_int64(np.array([2.0**62]), "x").tolist() == [2**62]
    goods = Goods.of(["money", "bread"])
    ledger = Ledger(
        goods,
        np.array([[5, 2**62], [5, 2**62 - 10]], dtype=np.int64),
        Recorder({"goods": goods.names, "populations": ["p"]}),
    )
    before = ledger.holdings.copy()
    made = np.array([[0, 10]], dtype=np.int64)  # the total would pass 2**63 - 1 by one
    with pytest.raises(ConservationError, match="bread would reach"):
        ledger.produce(np.array([0]), np.zeros_like(made), made, "bakers")
    assert np.array_equal(ledger.holdings, before) and ledger.conserved()
    # the same production one base unit smaller fits exactly at the limit
    ledger.produce(np.array([0]), np.zeros_like(made), made - np.array([[0, 1]]), "bakers")
    assert int(ledger.holdings[:, 1].astype(object).sum()) == 2**63 - 1 and ledger.conserved()


def test_an_injected_overflow_in_a_run_s_production_stops_it_with_the_reason(monkeypatch):
    """Firms create goods over the run: a technology whose output is past int64 (injected
    here) is refused when it is settled (a ConservationError naming the limit), never settled
    wrapped around and never reported as conserved."""
    scenario = mktsim.build_scenario("tupperware")
    firms = [p for p in scenario.populations if p.kind == "firms"]
    technology = type(firms[0].technology)
    monkeypatch.setattr(technology, "output", lambda self, x: np.full(len(x), 1e30))
    with pytest.raises(ConservationError) as info:
        mktsim.simulate(scenario, "walrasian", until=20.0, mode="non_tatonnement")
    assert "\n" not in str(info.value) and "past the ledger's limit" in str(info.value)
