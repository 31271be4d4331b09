"""A period's renewal message names what the journal shows it created and withdrew, printed as
numpy prints the vectors of units per good."""

from __future__ import annotations

import numpy as np
import pytest

import mktsim


@pytest.mark.parametrize(("market", "behaviour"), [(1, "zi_c"), (4, "zi_u")])
def test_renewal_message_prints_the_journalled_amounts(market, behaviour):
    scenario = mktsim.build_scenario("gode_sunder", market=market, behaviour=behaviour)
    run = mktsim.simulate(scenario, seed=5)
    journal, events = run.frame("journal"), run.events
    base = scenario.goods.base_units
    populations = {p.name: p for p in scenario.populations}
    starts = {
        p.name: sum(q.size for q in scenario.populations[:i])
        for i, p in enumerate(scenario.populations)
    }
    messages = events[events["kind"] == "period_start"]
    assert len(messages) == 2 * 5  # two populations, periods 1..5
    for t, detail in zip(messages["time"], messages["detail"], strict=True):
        period, name = int(detail.split()[1].rstrip(":")), detail.split()[2]
        lo = starts[name]
        rows = journal[
            (journal["time"] == t) & journal["agent"].between(lo, lo + populations[name].size - 1)
        ]
        amounts = []
        for reason, sign in (("period endowment", 1), ("earnings withdrawn", -1)):
            part = rows[rows["reason"] == reason]
            per_good = np.zeros(len(scenario.goods), dtype=np.int64)
            for good, q in zip(part["good"], part["quantity"], strict=True):
                per_good[scenario.goods.index(str(good))] += sign * round(q * base)
            amounts.append(per_good / base)
        assert detail == (
            f"period {period}: {name} endowments renewed (created {amounts[0]}, "
            f"withdrawn {amounts[1]})"
        )
