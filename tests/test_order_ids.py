"""Order ids a book cannot represent are refused as data and never reach its journal.

Ids are journalled as int64: an id of 2**63 or more, or one below 1, names no order (an id that is
not an integer is refused when the order is made).
Reference: the receipt is rejected, the journal still converts to frames, and a real order
placed afterwards is accepted and cancelled normally.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mktsim
from mktsim.orders import Cancel, Limit, Modify
from mktsim.testing import standalone

HOSTILE = st.one_of(st.integers(min_value=2**63, max_value=2**200), st.integers(max_value=0))


def idle_market(mechanism: str) -> tuple[Any, Any]:
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=4)
    idle = tuple(attrs.evolve(p, behaviour="idle") for p in scenario.populations)
    return standalone(mechanism, attrs.evolve(scenario, populations=idle))


@pytest.mark.parametrize("mechanism", ["order_book", "call_market"])
@settings(max_examples=40, deadline=None)
@given(ids=st.lists(HOSTILE, min_size=1, max_size=8))
def test_unrepresentable_ids_are_refused_as_data(mechanism: str, ids: list[int]) -> None:
    market, ctx = idle_market(mechanism)
    for oid in ids:
        for order in (Cancel(0, "good1", oid), Modify(0, "good1", oid, qty=1.0)):
            assert market.submit(order).value.status == "rejected"
    placed = market.submit(Limit(0, "good1", "buy", 1.0, 0.5)).value
    assert placed.status == "accepted"
    assert market.submit(Cancel(0, "good1", placed.order_id)).value.status != "rejected"
    ctx.env.run(until=1)
    for table in ctx.recorder.schemas:
        ctx.recorder.frame(table)  # the journal converts: nothing overflowed in it
