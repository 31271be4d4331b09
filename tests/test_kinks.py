"""Consumers at kinks of their preferences cannot price an order by a marginal rate: refused
before the run, never a run that trades nothing (or "converges" where nothing traded)."""

from __future__ import annotations

import numpy as np
import pytest

import mktsim
from mktsim.errors import InvalidParameter
from mktsim.valuation import check_can_price


@pytest.mark.parametrize("mechanism", ["order_book", "call_market"])
def test_scarf_is_refused_where_orders_are_priced_by_marginal_rates(mechanism):
    with pytest.raises(InvalidParameter, match="kinked preferences") as info:
        mktsim.simulate(mktsim.build_scenario("scarf"), mechanism)
    assert "\n" not in str(info.value)


def test_leontief_consumers_never_have_a_finite_positive_rate_for_money():
    # min(x0, x1, x2): whichever good binds has marginal utility 1 and the others 0, so the rate
    # of a good for money is 0 (money binds) or 1/0 (a good binds): never finite and positive
    utility = mktsim.Leontief(np.ones((3, 3)))
    holdings = np.array([[1.0, 2.0, 3.0], [2.0, 1.0, 3.0], [3.0, 2.0, 1.0]])
    pop = mktsim.Consumers("c", utility, holdings)
    with pytest.raises(InvalidParameter, match="kinked"):
        check_can_price(pop, holdings, 0, "utility")


def test_an_owner_valuing_only_money_sells_into_a_pool_at_any_price():
    # rate 0 for every good: nothing to quote a bid or an ask from, but a pool takes a sale
    pop = mktsim.Consumers("owner", mktsim.CobbDouglas(np.array([[1.0, 0.0]])), np.ones((1, 2)))
    with pytest.raises(InvalidParameter, match="kinked"):
        check_can_price(pop, pop.endowment, 0, "utility")
    check_can_price(pop, pop.endowment, 0, "mrs_swap", sells_at_zero=True)


def test_smooth_preferences_always_price():
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=5)
    pop = scenario.populations[0]
    check_can_price(pop, pop.endowment, 0, "utility")
