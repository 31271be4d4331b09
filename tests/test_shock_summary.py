"""After a shock that changes the economy, the summary's price error is measured against the
equilibrium in force, computed here from the Cobb-Douglas closed form of the shocked endowments."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import cobb_douglas_prices

import mktsim
from mktsim.shocks import EndowmentShock


def test_price_error_after_an_endowment_shock_is_against_the_new_equilibrium() -> None:
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=100)
    shock = EndowmentShock(time=100, good="good1", factor=0.5)
    run = mktsim.simulate(scenario, "walrasian", shocks=[shock])
    pop = scenario.populations[0]
    shares = np.asarray(pop.utility.shares)
    shocked = np.array(pop.endowment, dtype=float)
    shocked[:, scenario.goods.index("good1")] *= 0.5  # tatonnement trades nothing before it
    expected = dict(zip(scenario.goods.names, cobb_douglas_prices(shares, shocked), strict=True))
    s = run.summary
    for good, price in expected.items():
        assert s["equilibrium_prices_in_force"][good] == pytest.approx(price, rel=1e-8)
    error = max(abs(s["final_prices"][g] / p - 1) for g, p in expected.items())
    assert s["price_error"] == pytest.approx(error, abs=1e-8)
    assert s["price_error"] <= 1e-6 and s["price_error_vs_initial_equilibrium"] > 0.1
    # back within tolerance of the new equilibrium after the shock, and the time says so
    # the first time from the shock on after which every price stays within tolerance of the
    # closed form, read off the prices frame here
    after = run.prices[run.prices["time"] >= 100]
    worst = (
        after.assign(error=(after["price"] / after["good"].astype(str).map(expected) - 1).abs())
        .groupby("time")["error"]
        .max()
    )
    outside = worst.index[worst > s["price_tolerance"]]
    first_inside = worst.index[worst.index > outside.max()].min()
    assert s["time_to_tolerance"] == pytest.approx(first_inside)
    assert s["time_to_tolerance_vs_initial_equilibrium"] is None
