"""Supply chains trading on the order book and on pools, under random parameters: nothing is
created or lost except through production records, and nobody's holdings go negative."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mktsim


def totals(frame, when):
    return frame[frame.time == when].groupby("good", observed=True).quantity.sum()


@settings(max_examples=6, deadline=None)
@given(
    mechanism=st.sampled_from(["order_book", "cpmm"]),
    scenario=st.sampled_from(["tupperware", "shared_intermediate"]),
    firms=st.integers(1, 4),
    seed=st.integers(0, 1_000),
)
def test_chains_conserve_through_production_only(mechanism, scenario, firms, seed):
    s = mktsim.build_scenario(scenario, flow=True, firms=firms)
    run = mktsim.simulate(s, mechanism, seed=seed, until=15)
    assert run.summary["conservation_ok"]
    h = run.holdings
    # traders' holdings (pools are the market's own accounts, outside the populations)
    assert (h.quantity >= -1e-9).all()
    prod = run.frame("production")
    assert len(prod) > 0
    made = prod.groupby("good", observed=True).quantity.sum()
    start, end = totals(h, h.time.min()), totals(h, h.time.max())
    # what the populations hold changes by production, plus what they swapped with the pools
    # (a trade between two traders nets to zero; a swap with a pool does not)
    mine = run.trades[run.trades.agent < s.n_agents]  # the pools' own rows come after
    swapped = mine.groupby("good", observed=True).quantity.sum().to_dict()
    swapped[s.goods.numeraire] = -mine.cash.sum()
    for good in s.goods.names:
        change = end.get(good, 0.0) - start.get(good, 0.0)
        expected = made.get(good, 0.0) + (swapped.get(good, 0.0) if mechanism == "cpmm" else 0.0)
        assert change == pytest.approx(expected, abs=1e-7), good
