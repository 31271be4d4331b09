"""No quantity wraps around silently: the ledger holds int64 base units (1e-9 of a unit for goods
built outside a run; a run chooses its own from its economy's magnitudes), a creation or
settlement that would pass int64's limit raises, what cannot be represented in any unit is
refused before the run, and conservation is checked with exact integers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import mktsim
from mktsim.cli import main
from mktsim.counterfactual import counterfactual
from mktsim.errors import ConservationError, InvalidParameter, MktsimError
from mktsim.goods import Goods, to_base
from mktsim.ledger import Ledger, exact_column_sums
from mktsim.recorder import Recorder
from mktsim.shocks import EndowmentShock

LIMIT = 2**63 - 1  # int64's largest value, written out here rather than imported


def make_ledger(holdings) -> Ledger:
    holdings = np.asarray(holdings, dtype=np.int64)
    goods = Goods.of([f"g{j}" for j in range(holdings.shape[1])])
    return Ledger(goods, holdings, Recorder({"goods": goods.names, "populations": ["p"]}))


@given(arrays(np.int64, st.tuples(st.integers(1, 40), st.integers(1, 4))))
def test_exact_column_sums_equal_python_integer_sums(a):
    assert exact_column_sums(a) == [sum(int(v) for v in a[:, j]) for j in range(a.shape[1])]


def test_initial_holdings_past_the_limit_are_refused():
    # two accounts of 2**62 each: 2**63 in all, which an int64 sum would wrap to -2**63
    with pytest.raises(InvalidParameter, match=r"g1 total 9.22337e\+09 units, past .* limit"):
        make_ledger([[1, 2**62], [1, 2**62]])


@pytest.mark.parametrize(
    "operation",
    [
        lambda ledger: ledger.create(0, np.array([0, 11]), "minted"),
        lambda ledger: ledger.adjust(np.array([0, 1]), np.array([[0, 6], [0, 5]]), "shock"),
        lambda ledger: ledger.produce(np.array([1]), np.array([[5, 0]]), np.array([[0, 11]]), "f"),
        lambda ledger: ledger.open_account(np.array([0, 11])),
    ],
    ids=["create", "adjust", "produce", "open_account"],
)
def test_a_creation_past_the_limit_raises_and_changes_nothing(operation):
    ledger = make_ledger([[10, LIMIT - 10], [10, 0]])
    before = ledger.holdings.copy()
    with pytest.raises(ConservationError, match=r"g1 would reach .* past the ledger's limit"):
        operation(ledger)
    assert np.array_equal(ledger.holdings, before) and ledger.conserved()
    # exactly up to the limit is fine
    ledger.create(1, np.array([0, 10]), "minted")
    assert int(ledger.holdings[:, 1].astype(object).sum()) == LIMIT and ledger.conserved()


def test_an_exchange_too_large_for_int64_raises_instead_of_wrapping():
    ledger = make_ledger([[10**18, 10**18], [10**18, 10**18]])
    before = ledger.holdings.copy()
    with pytest.raises(ConservationError, match="past the ledger's limit"):
        # 2e10 units is 2e19 base units: a cast to int64 would wrap to a negative number
        ledger.exchange(np.array([0, 1]), np.array([[0.0, 2e10], [0.0, -2e10]]), np.ones(2))
    with pytest.raises(ConservationError, match="past the ledger's limit"):
        # quantities fit, but their value at this price does not
        ledger.exchange(np.array([0, 1]), np.array([[0.0, 1.0], [0.0, -1.0]]), np.array([1, 1e10]))
    assert np.array_equal(ledger.holdings, before)


def test_counters_stay_exact_past_int64_over_a_long_run():
    """Created and destroyed amounts add up over a run far beyond int64; totals stay exact."""
    ledger = make_ledger([[0, 0], [0, 0]])
    for _ in range(5):
        ledger.create(0, np.array([2**62, 0]), "minted")
        ledger.destroy(0, np.array([2**62, 0]), "burned")
    ledger.create(1, np.array([3, 2**62]), "minted")
    assert ledger.totals().tolist() == [3, 2**62] and ledger.conserved()


def test_to_base_refuses_what_it_cannot_hold():
    assert to_base(9.2e9).item() == 9_200_000_000 * 10**9
    for bad in (9.3e9, -9.3e9, float("nan"), float("inf")):
        with pytest.raises(InvalidParameter, match=r"at most 9.22337e\+09 units"):
            to_base(np.array([1.0, bad]), "amount")


def scaled(factor: float, n_agents: int = 10) -> mktsim.Scenario:
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=n_agents)
    return scenario.with_endowments(scenario.endowments() * factor)


def test_an_economy_scaled_past_the_old_fixed_limit_runs_with_the_same_prices():
    """At a fixed 1e-9 base unit, 1e9 or 1e10 times this economy was past int64; the run's base
    unit now moves with the scale and the prices stay those of the unscaled economy."""
    ref = mktsim.simulate(scaled(1.0), "walrasian", until=3.0)
    for factor in (1e9, 1e10):
        run = mktsim.simulate(scaled(factor), "walrasian", until=3.0)
        assert run.summary["conservation_ok"]
        assert np.allclose(run.prices["price"], ref.prices["price"], rtol=1e-9, atol=0.0)


def test_an_endowment_that_rounds_to_zero_is_refused_naming_it():
    scenario = scaled(1.0)
    tiny = scenario.endowments()
    tiny[3, 2] = 1e-16  # largest total ~10.9 units: base units of 1e-13, this is 0.001 of one
    with pytest.raises(InvalidParameter) as info:
        mktsim.simulate(scenario.with_endowments(tiny), "walrasian")
    assert "population 'consumers': endowment of good2 (=1e-16) rounds to 0" in str(info.value)


def test_a_shock_that_would_pass_the_limit_is_refused_before_the_run():
    scenario = scaled(1.0)  # ~10 units of good1 in all
    # the base unit is chosen to hold what the shocks could make: 1e10 times the total fits
    run = mktsim.simulate(
        scenario,
        "walrasian",
        until=2.0,
        shocks=[EndowmentShock(1.0, "good1", 1e5), EndowmentShock(1.5, "good1", 1e5)],
    )
    assert run.summary["conservation_ok"]
    with pytest.raises(InvalidParameter, match=r"could carry the total of good1 to inf units"):
        mktsim.simulate(
            scenario,
            "walrasian",
            shocks=[EndowmentShock(1.0, "good1", 1e200), EndowmentShock(2.0, "good1", 1e200)],
        )


def test_cli_refuses_an_unrepresentable_shock_and_runs_a_scaled_economy(tmp_path, capsys):
    script = tmp_path / "big.py"
    script.write_text(
        "import mktsim\n"
        "def build(scale=1.0):\n"
        "    s = mktsim.build_scenario('cobb_douglas', n_agents=10)\n"
        "    return s.with_endowments(s.endowments() * scale)\n"
    )
    out = tmp_path / "out"
    shock = "endowment:time=1,good=good1,factor=1e308"  # ~10 units of good1: inf
    assert main(["run", "cobb_douglas", "--shock", shock, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could carry the total of good1" in err
    assert "Traceback" not in err and not out.exists()
    argv = ["run", str(script), "--set", "scale=1e10", "--until", "2", "--out", str(out)]
    assert main([*argv, "--no-report"]) == 0


def test_a_refusal_is_a_package_error():
    with pytest.raises(MktsimError):
        mktsim.simulate(scaled(1e10), "order_book")


def test_pools_past_the_economys_room_open_at_a_coarser_unit_or_are_refused_naming_depth():
    """What a mechanism creates at the opening (a pool's reserves, funded from outside) counts:
    the run's base unit leaves about 9,200 times the economy's largest total of room, and pools
    1e8 times as deep as the economy need more. The run then takes the unit that holds them
    (a run they fit keeps the economy's own unit), or, where no unit holds both the pools and
    the economy's endowments, refuses before any event, naming the options."""
    scenario = scaled(5e8)
    plain = mktsim.simulate(scenario, "cpmm", until=1.0, depth=1.0)
    deep = mktsim.simulate(scenario, "cpmm", until=1.0, depth=1e8)
    assert plain.summary["base_units"] == 1e5  # the economy's own: 5e9 units at 15 digits
    assert deep.summary["base_units"] == 1e-4  # 1.1e18 units of money in the two pools: 19 digits
    assert deep.summary["conservation_ok"] and plain.summary["conservation_ok"]
    opened = deep.frame("pools").groupby("good", observed=True).first()
    totals = dict(zip(scenario.goods.names, scenario.endowments().sum(axis=0), strict=True))
    for good, row in opened.iterrows():
        assert row["x"] * 1e4 == pytest.approx(1e8 * totals[good], rel=1e-5)
    # a counterfactual's two runs share the unit that holds the pools
    shock = EndowmentShock(time=0.5, good="good1", factor=0.5)
    pair = counterfactual(scenario, [shock], mechanism="cpmm", until=1.0, depth=1e8)
    assert pair.baseline.summary["base_units"] == pair.treated.summary["base_units"] == 1e-4
    with pytest.raises(InvalidParameter) as info:
        mktsim.simulate(scenario, "cpmm", until=1.0, depth=1e30)
    message = str(info.value)
    assert "\n" not in message and message.startswith("cpmm options {'depth': 1e+30}")
    assert "rounds to 0 base units" in message
