"""An economy too small for an order book's lot and tick is refused before the run, in one line,
instead of a run that trades nothing and reports no price error."""

from __future__ import annotations

import attrs
import pytest

import mktsim
from mktsim.errors import InvalidParameter


def _scaled(factor: float) -> mktsim.Scenario:
    base = mktsim.build_scenario("cobb_douglas", n_agents=20, seed=1)
    pops = [attrs.evolve(p, endowment=p.endowment * factor) for p in base.populations]
    return attrs.evolve(base, populations=pops)


@pytest.mark.parametrize("mechanism", ["order_book", "call_market"])
def test_holdings_below_one_lot_are_refused(mechanism):
    with pytest.raises(InvalidParameter, match="lot and tick") as info:
        mktsim.simulate(_scaled(1e-6), mechanism, until=10, lot=0.002, tick=0.5)
    assert "\n" not in str(info.value)
    # the lot and the money for it at one tick, in units, whatever the run's base unit
    assert "one lot (0.002 units)" in str(info.value)
    assert "one tick (0.001)" in str(info.value)


@pytest.mark.parametrize("mechanism", ["order_book", "call_market"])
def test_a_grid_at_the_economy_s_scale_trades(mechanism):
    run = mktsim.simulate(_scaled(1e-6), mechanism, until=30, tick=0.1, lot=1e-8)
    assert len(run.trades) > 0 and run.summary["conservation_ok"]
