"""Pool behaviours: SimPy processes swapping against constant-product pools.

Each population is one process: Poisson arrivals (``rate`` per agent per unit time, drawn in
blocks from the run's stream ``cpmm:<population>``); at each arrival one agent looks at the pools
and its own holdings and sends at most one swap. A population's ``delay`` is the time between
looking and the swap reaching the pool (it then fills at the pool's state at that later time).

* ``mrs``: consumers (populations with a utility) swap the good whose marginal rate of
  substitution against money lies furthest outside the pool's [bid, ask], up to where the MRS
  equals the pool's marginal price (:func:`~mechanisms._amm_plans.pool_plan`); ``tol`` is the
  least relative gap worth a trade.
* ``noise``: swap a random fraction (up to ``max_fraction``) of a random holding in a random pool.
* ``arbitrage``: traders who can trade at external ``prices`` (good -> price) elsewhere swap a
  pool to that price from the profitable side, within their holdings.
* ``scripted``: replay ``orders``: ``(time, agent, good, side, amount)`` with side ``buy`` or
  ``sell`` and ``amount`` the units paid in, or ``(time, agent, good, side, amount, "out")`` for an
  exact output.
* ``passive``: never trade.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Mapping
from typing import Any

import numpy as np
import simpy

from mechanisms._amm_base import arrivals, behaviour_settings, positive_rate
from mechanisms._amm_orders import SwapOrder
from mechanisms._amm_plans import pool_plan
from mechanisms._cpmm import SwapSide, arbitrage_to_price
from mktsim.errors import InvalidParameter, UnknownName
from mktsim.goods import BASE_UNITS
from mktsim.mechanism import PopulationSlot

__all__ = ["BEHAVIOURS", "start_behaviour"]

#: Behaviour name -> one-line description (the first is the consumers' default).
BEHAVIOURS: Mapping[str, str] = {
    "mrs": "swap until the marginal rate of substitution equals the pool price (rate, tol)",
    "noise": "random swaps (rate, max_fraction)",
    "arbitrage": "swap pools to external prices (rate, prices)",
    "scripted": "replay orders [(time, agent, good, side, amount[, 'in'|'out']), ...]",
    "passive": "never trade",
}

_DEFAULTS: dict[str, dict[str, Any]] = {
    "mrs": {"rate": 1.0, "tol": 1e-4},
    "noise": {"rate": 1.0, "max_fraction": 0.2},
    "arbitrage": {"rate": 1.0, "prices": {}},
    "scripted": {"orders": ()},
    "passive": {},
}


def start_behaviour(market: Any, slot: PopulationSlot, behaviour: str) -> None:
    """Start the process of one population (nothing for ``passive``)."""
    pop = slot.population
    settings = behaviour_settings(pop.name, behaviour, pop.behaviour_options, _DEFAULTS[behaviour])
    env = market.ctx.env
    if behaviour == "passive":
        return
    if behaviour == "scripted":
        env.process(_scripted(market, slot, settings["orders"]))
        return
    rate = positive_rate(settings["rate"])
    if behaviour == "mrs":
        tol = float(settings["tol"])
        if not (math.isfinite(tol) and tol >= 0):
            raise InvalidParameter(f"tol(={tol}) of population {pop.name!r} must be >= 0")
        env.process(_mrs(market, slot, rate, tol))
    elif behaviour == "noise":
        top = float(settings["max_fraction"])
        if not 0.0 <= top <= 1.0:
            raise InvalidParameter(f"max_fraction(={top}) of population {pop.name!r} not in [0, 1]")
        env.process(_noise(market, slot, rate, top))
    else:
        env.process(_arbitrage(market, slot, rate, _external_prices(market, pop, settings)))


def _external_prices(market: Any, pop: Any, settings: Mapping[str, Any]) -> dict[int, float]:
    given = settings["prices"]
    if not isinstance(given, Mapping) or not given:
        raise InvalidParameter(
            f"behaviour 'arbitrage' of population {pop.name!r} needs prices: good -> price"
        )
    goods = market.ctx.goods
    out = {}
    for name, value in given.items():
        if name not in goods.names or goods.index(name) not in market.pool_goods:
            raise UnknownName("pool good in arbitrage prices", str(name), goods.names[1:])
        v = float(value)
        if not (math.isfinite(v) and v > 0):
            raise InvalidParameter(f"arbitrage price of {name}(={value!r}) must be > 0")
        out[goods.index(name)] = v
    return out


def _send(market: Any, slot: PopulationSlot, order: SwapOrder) -> Generator[simpy.Event, Any, None]:
    """Deliver a swap after the population's delay (in its own process if delayed)."""
    delay = slot.population.delay
    if not delay:
        yield market.submit(order)
        return

    def later() -> Generator[simpy.Event, Any, None]:
        yield market.ctx.env.timeout(delay)
        yield market.submit(order)

    market.ctx.env.process(later())


def _marginals(pop: Any) -> Callable[[int], Callable[[np.ndarray], np.ndarray]]:
    """Per-agent marginal utility functions, built on first use (one-row utilities)."""
    cache: dict[int, Callable[[np.ndarray], np.ndarray]] = {}

    def of(who: int) -> Callable[[np.ndarray], np.ndarray]:
        if who not in cache:
            one = pop.utility.take(np.array([who]))
            cache[who] = lambda x: one.marginal_utility(x[None, :])[0]
        return cache[who]

    return of


def _mrs(
    market: Any, slot: PopulationSlot, rate: float, tol: float
) -> Generator[simpy.Event, Any, None]:
    ctx = market.ctx
    pop = slot.population
    env, ledger, num = ctx.env, ctx.ledger, ctx.goods.numeraire_index
    marginal = _marginals(pop)
    rng = ctx.streams.generator(f"cpmm:{pop.name}")
    for gap, who in arrivals(rng, rate, pop.size):
        yield env.timeout(gap)
        agent = slot.rows.start + who
        h = np.array(ledger.holdings[agent])
        plan = pool_plan(marginal(who), h / BASE_UNITS, num, market.reserves(), market.fee, tol)
        if plan is None:
            continue
        pays = num if plan.side is SwapSide.BUY else plan.good
        units = int(h[pays]) if plan.whole_budget else math.floor(plan.amount_in * BASE_UNITS)
        units = min(units, int(h[pays]))
        if units < 1:
            continue
        yield from _send(market, slot, SwapOrder(agent, plan.good, plan.side, amount_in=units))


def _noise(
    market: Any, slot: PopulationSlot, rate: float, top: float
) -> Generator[simpy.Event, Any, None]:
    ctx = market.ctx
    pop = slot.population
    env, ledger, num = ctx.env, ctx.ledger, ctx.goods.numeraire_index
    goods = np.array(market.pool_goods)
    rng = ctx.streams.generator(f"cpmm:{pop.name}")
    for gap, who in arrivals(rng, rate, pop.size):
        yield env.timeout(gap)
        agent = slot.rows.start + who
        j = int(goods[rng.integers(0, goods.size)])
        side = SwapSide.BUY if rng.random() < 0.5 else SwapSide.SELL
        pays = num if side is SwapSide.BUY else j
        units = int(rng.random() * top * ledger.holdings[agent, pays])
        if units >= 1:
            yield from _send(market, slot, SwapOrder(agent, j, side, amount_in=units))


def _arbitrage(
    market: Any, slot: PopulationSlot, rate: float, prices: dict[int, float]
) -> Generator[simpy.Event, Any, None]:
    ctx = market.ctx
    pop = slot.population
    env, ledger, num = ctx.env, ctx.ledger, ctx.goods.numeraire_index
    goods = list(prices)
    rng = ctx.streams.generator(f"cpmm:{pop.name}")
    for gap, who in arrivals(rng, rate, pop.size):
        yield env.timeout(gap)
        agent = slot.rows.start + who
        j = goods[int(rng.integers(0, len(goods)))]
        x, y = market.reserves()[j]
        plan = arbitrage_to_price(x, y, prices[j], market.fee)
        if plan.side is None:
            continue
        pays = num if plan.side is SwapSide.BUY else j
        units = min(math.floor(plan.amount_in * BASE_UNITS), int(ledger.holdings[agent, pays]))
        if units >= 1:
            yield from _send(market, slot, SwapOrder(agent, j, plan.side, amount_in=units))


def _scripted(market: Any, slot: PopulationSlot, orders: Any) -> Generator[simpy.Event, Any, None]:
    ctx = market.ctx
    pop = slot.population
    goods = ctx.goods
    plan = []
    for entry in orders:
        entry = tuple(entry)
        if len(entry) not in (5, 6):
            raise InvalidParameter(
                f"scripted swap {entry!r} of population {pop.name!r} must be "
                "(time, agent, good, side, amount[, 'in'|'out'])"
            )
        time, who, good, side, amount = entry[:5]
        kind = entry[5] if len(entry) == 6 else "in"
        if good not in goods.names or goods.index(good) not in market.pool_goods:
            raise UnknownName("pool good in a scripted swap", str(good), goods.names)
        if side not in ("buy", "sell") or kind not in ("in", "out"):
            raise InvalidParameter(f"scripted swap {entry!r}: side buy|sell, kind in|out")
        if not 0 <= int(who) < pop.size:
            raise InvalidParameter(f"scripted agent(={who}) not in population {pop.name!r}")
        units = round(float(amount) * BASE_UNITS)
        if units >= 1:
            plan.append((float(time), int(who), goods.index(good), SwapSide(side), units, kind))
    plan.sort(key=lambda o: o[0])
    env = ctx.env
    for time, who, j, side, units, kind in plan:
        if time > env.now:
            yield env.timeout(time - env.now)
        amounts = {"amount_in": units} if kind == "in" else {"amount_out": units}
        yield from _send(market, slot, SwapOrder(slot.rows.start + who, j, side, **amounts))
