"""The market makers pass the public conformance check on economies they can run."""

from __future__ import annotations

import mktsim
from mktsim.testing import check_mechanism


def test_lmsr_conforms_on_its_example_prediction_market():
    run = check_mechanism("lmsr")
    assert run.scenario.name == "prediction_market" and run.summary["resolved"]


def test_lmsr_conforms_with_informed_traders_and_cara_risk():
    sc = mktsim.build_scenario(
        "prediction_market", n_traders=8, n_noise=2, n_informed=3, risk="cara", until=15.0
    )
    check_mechanism("lmsr", scenario=sc, until=30.0, record_every=7)


def test_cpmm_conforms_without_a_fee_and_with_noise_traders():
    check_mechanism("cpmm", fee=0.0, depth=0.02)
    pop = mktsim.build_scenario("cobb_douglas", n_agents=10, seed=1).populations[0]
    noisy = mktsim.Consumers("noise", pop.utility, pop.endowment, behaviour="noise")
    sc = mktsim.Scenario("noisy", ["money", "good1", "good2"], [noisy])
    check_mechanism("cpmm", scenario=sc, until=20.0)
