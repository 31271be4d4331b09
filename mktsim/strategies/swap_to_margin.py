"""Swap to the margin: consumers trade against a market maker until their marginal rate of
substitution equals the maker's marginal price (registered as ``mrs_swap``).

At each arrival one agent looks at the quote (each pool's reserves and fee) and its own
holdings, picks the good whose MRS against money lies furthest outside the pool's marginal
[bid, ask] = [g·y/x, y/(g·x)] (g = 1 − fee), and swaps exactly the amount of money (buying) or of
the good (selling) after which the MRS equals the marginal price of the last unit
(:func:`mktsim.margins.pool_plan`); ``tol`` is the least relative gap worth a trade. A trader
whose MRS is still outside at the edge of its holding pays in the whole holding. Amounts are
floored to base units, so a swap never overshoots the margin.

The valuation is the acting agent's own row of the population's utility (marginal utilities at
its holdings); nothing else of the population is evaluated.

``arbitrage_swap`` is the same move against an outside valuation: traders who can trade at
external ``prices`` (good -> price) elsewhere swap a random one of those pools to its external
price from the side that gains (:func:`mktsim.margins.pool_arbitrage`), within their holdings.
``final_demand_swap`` is the buying half of it for a final demand
(:class:`~mktsim.firms.FinalDemand`) with fixed prices P: for each good it buys whose pool's
marginal ask is below P it buys up to where the last unit costs P, within its money: perfectly
elastic demand at P. Fixed quantities are refused (they have no limit price).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Mapping
from typing import Any, ClassVar

import numpy as np
import simpy

from mktsim.errors import InvalidParameter, UnknownName
from mktsim.margins import pool_arbitrage, pool_plan
from mktsim.mechanism import MarketContext, Option, PopulationSlot
from mktsim.orders import BUY, Swap
from mktsim.population import check_values_money
from mktsim.strategies._common import RATE, SwapStrategy, arrivals, tolerance
from mktsim.valuation import check_can_price

__all__ = ["ArbitrageSwap", "FinalDemandSwap", "MrsSwap"]


class MrsSwap(SwapStrategy):
    """Consumers swap until their MRS equals the pool's marginal price (see the module doc)."""

    name: ClassVar[str] = "mrs_swap"
    doc: ClassVar[str] = (
        "swap until the marginal rate of substitution equals the maker's marginal price (rate, tol)"
    )
    emits: ClassVar[frozenset[type]] = frozenset({Swap})
    serves: ClassVar[frozenset[str]] = frozenset({"consumers"})
    options: ClassVar[dict[str, Option]] = {
        "rate": RATE,
        "tol": Option(1e-4, "least relative gap between MRS and bid/ask worth a trade", tolerance),
    }

    def __init__(
        self, market: Any, ctx: MarketContext, slot: PopulationSlot, options: dict[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        pop = self.population
        if not hasattr(pop, "utility"):
            raise InvalidParameter(
                f"strategy 'mrs_swap' needs a utility: population {pop.name!r} is {pop.kind}"
            )
        check_values_money(pop, ctx.goods.numeraire_index, self.name)
        num, units = ctx.goods.numeraire_index, ctx.ledger.units(slot.rows)
        check_can_price(pop, units, num, self.name, sells_at_zero=True)
        if not hasattr(market.quote(), "pools"):
            raise InvalidParameter(
                f"strategy 'mrs_swap' of population {pop.name!r} needs a market that quotes "
                "pools (reserves and fee), as cpmm does"
            )
        self._marginal: dict[int, Callable[[np.ndarray], np.ndarray]] = {}

    def marginal(self, who: int) -> Callable[[np.ndarray], np.ndarray]:
        """Marginal utilities of one agent (index within the population), ``float64[g] ->
        float64[g]``; its one-row utility is taken on first use."""
        if who not in self._marginal:
            one = self.population.utility.take(np.array([who]))
            self._marginal[who] = lambda x: one.marginal_utility(x[None, :])[0]
        return self._marginal[who]

    def run(self) -> Generator[simpy.Event, Any, None]:
        ctx, env = self.ctx, self.env
        goods, ledger = ctx.goods, ctx.ledger
        num = goods.numeraire_index
        tol = self.opts["tol"]
        start = self.slot.rows.start
        for gap, who in arrivals(self.stream(), self.opts["rate"], self.population.size):
            yield env.timeout(gap)
            pools = self.market.quote().pools
            if not pools:
                continue
            fee = next(iter(pools.values())).fee
            reserves = {goods.index(g): (p.x, p.y) for g, p in pools.items()}
            agent = start + who
            h = np.array(ledger.holdings[agent])
            plan = pool_plan(self.marginal(who), h / self.base_units, num, reserves, fee, tol)
            if plan is None:
                continue
            pays = num if plan.side == BUY else plan.good
            units = (
                int(h[pays]) if plan.whole_budget else math.floor(plan.amount_in * self.base_units)
            )
            units = min(units, int(h[pays]))
            if units < 1:
                continue
            order = Swap(agent, goods.names[plan.good], plan.side, units / self.base_units, "in")
            self.send(order)


def _prices(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping) or not value:
        raise ValueError("must map pool goods to external prices (good -> price)")
    out = {}
    for name, price in value.items():
        p = float(price)
        if not (math.isfinite(p) and p > 0):
            raise ValueError(f"the price of {name}(={price!r}) must be > 0 and finite")
        out[str(name)] = p
    return out


class ArbitrageSwap(SwapStrategy):
    """Traders who can trade at external ``prices`` elsewhere swap a pool to that price."""

    name: ClassVar[str] = "arbitrage_swap"
    doc: ClassVar[str] = "swap pools to external prices (rate, prices)"
    emits: ClassVar[frozenset[type]] = frozenset({Swap})
    serves: ClassVar[frozenset[str]] = frozenset({"consumers"})
    options: ClassVar[dict[str, Option]] = {
        "rate": RATE,
        "prices": Option({}, "good -> the external price it can be traded at", _prices),
    }

    def __init__(
        self, market: Any, ctx: MarketContext, slot: PopulationSlot, options: dict[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        pools = list(getattr(market.quote(), "pools", {}))
        if not self.opts["prices"]:
            raise InvalidParameter(
                f"strategy 'arbitrage_swap' of population {self.population.name!r} needs "
                "prices: good -> price"
            )
        for name in self.opts["prices"]:
            if name not in pools:
                raise UnknownName("pool good in arbitrage prices", name, pools)

    def run(self) -> Generator[simpy.Event, Any, None]:
        ctx, env = self.ctx, self.env
        goods, ledger = ctx.goods, ctx.ledger
        num = goods.numeraire_index
        prices = self.opts["prices"]
        names = list(prices)
        rng = self.stream()
        for gap, who in arrivals(rng, self.opts["rate"], self.population.size):
            yield env.timeout(gap)
            agent = self.slot.rows.start + who
            name = names[int(rng.integers(0, len(names)))]
            pool = self.market.quote().pools.get(name)
            if pool is None:  # withdrawn
                continue
            plan = pool_arbitrage(pool.x, pool.y, prices[name], pool.fee)
            if plan is None:
                continue
            side, amount = plan
            pays = num if side == BUY else goods.index(name)
            units = min(math.floor(amount * self.base_units), int(ledger.holdings[agent, pays]))
            if units >= 1:
                self.send(Swap(agent, name, side, units / self.base_units, "in"))


class FinalDemandSwap(SwapStrategy):
    """Final demand at fixed prices: buys each priced good while the pool's ask is below P."""

    name: ClassVar[str] = "final_demand_swap"
    doc: ClassVar[str] = (
        "buy a final good whenever its pool is below the fixed price, up to it (rate)"
    )
    emits: ClassVar[frozenset[type]] = frozenset({Swap})
    serves: ClassVar[frozenset[str]] = frozenset({"final_demand"})
    options: ClassVar[dict[str, Option]] = {
        "rate": Option(50.0, "arrivals per agent per unit time", RATE.convert)
    }

    def __init__(
        self, market: Any, ctx: MarketContext, slot: PopulationSlot, options: dict[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        pop = self.population
        if not hasattr(pop, "prices") or not hasattr(pop, "quantities"):
            raise InvalidParameter(
                f"strategy 'final_demand_swap' needs FinalDemand; population {pop.name!r} is "
                f"{pop.kind}"
            )
        if pop.quantities:
            raise InvalidParameter(
                f"final demand {pop.name!r} orders fixed quantities {dict(pop.quantities)}: "
                "a swap to the margin needs a limit price (use prices)"
            )
        self.prices = {str(g): float(p) for g, p in pop.prices.items()}

    def run(self) -> Generator[simpy.Event, Any, None]:
        ctx, env = self.ctx, self.env
        ledger, num = ctx.ledger, ctx.goods.numeraire_index
        for gap, who in arrivals(self.stream(), self.opts["rate"], self.population.size):
            yield env.timeout(gap)
            agent = self.slot.rows.start + who
            for name, price in self.prices.items():
                pool = self.market.quote().pools.get(name)
                if pool is None:
                    continue
                plan = pool_arbitrage(pool.x, pool.y, price, pool.fee)
                if plan is None or plan[0] != BUY:
                    continue
                money = int(ledger.holdings[agent, num])
                units = min(math.floor(plan[1] * self.base_units), money)
                if units >= 1:
                    yield from self.deliver(Swap(agent, name, BUY, units / self.base_units))
