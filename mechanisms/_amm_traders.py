"""Prediction-market behaviours: SimPy processes trading with an LMSR maker.

Each population is one process: Poisson arrivals (``rate`` per agent per unit time, drawn in
blocks from the run's stream ``lmsr:<population>``); at each arrival one agent looks at the
maker's quote and its own holdings and sends at most one order. A population's ``delay``, plus
the market's extra delay during a latency spike, is the time between looking and the order
reaching the maker (the order is then filled at the maker's state at that later time, or
refused).

* ``belief``: expected-utility traders (:class:`~mktsim.beliefs.BeliefTraders`) trade the
  outcome whose reservation price is furthest from the maker's price, up to where the two are
  equal (:func:`~mechanisms._amm_plans.lmsr_plan`), within their budget.
* ``informed``: belief traders who first receive a private signal of the outcome, right with
  probability ``accuracy``, and trade on their Bayesian posterior. This is the adversary that
  drains the maker's subsidy: it trades toward the truth through the public interface only, and
  its profit (``trader_profit`` in the summary) comes out of the maker's loss and, through the
  prices it moves, the other traders' profits.
* ``noise``: buy a random outcome with a random fraction (up to ``max_fraction``) of their money,
  or with probability ``sell_probability`` sell a random fraction of a random holding.
* ``scripted``: replay ``orders``, a list of ``(time, agent, outcome, shares)`` (agent within the
  population; shares signed units: > 0 buys).
* ``passive``: never trade (for driving the market by hand).
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping
from typing import Any

import numpy as np
import simpy
from mktsim.mechanisms._amm_base import arrivals, behaviour_settings, positive_rate
from mktsim.mechanisms._amm_orders import BudgetOrder, ShareOrder
from mktsim.mechanisms._amm_plans import lmsr_plan

from mktsim.errors import InvalidParameter, UnknownName
from mktsim.goods import BASE_UNITS
from mktsim.mechanism import PopulationSlot

__all__ = ["BEHAVIOURS", "posterior", "start_behaviour"]

#: Behaviour name -> one-line description (the first is the belief traders' default).
BEHAVIOURS: Mapping[str, str] = {
    "belief": "trade toward the price where the reservation price equals the maker's (rate, tol)",
    "informed": "belief trading on a posterior after a private signal (rate, tol, accuracy)",
    "noise": "random buys and sells (rate, max_fraction, sell_probability)",
    "scripted": "replay orders [(time, agent, outcome, shares), ...]",
    "passive": "never trade",
}

_DEFAULTS: dict[str, dict[str, Any]] = {
    "belief": {"rate": 1.0, "tol": 1e-3},
    "informed": {"rate": 1.0, "tol": 1e-3, "accuracy": 1.0},
    "noise": {"rate": 1.0, "max_fraction": 0.2, "sell_probability": 0.5},
    "scripted": {"orders": ()},
    "passive": {},
}


def posterior(prior: np.ndarray, signals: np.ndarray, accuracy: float) -> np.ndarray:
    """Bayesian posteriors ``float64[n, k]`` after one signal each.

    A signal names the true outcome with probability ``accuracy`` and each other outcome with
    probability (1 − accuracy)/(k − 1). A prior that rules out a certain signal is replaced by
    the signal.
    """
    n, k = prior.shape
    like = np.full((n, k), (1.0 - accuracy) / (k - 1))
    like[np.arange(n), signals] = accuracy
    post = prior * like
    total = post.sum(axis=1, keepdims=True)
    certain = np.zeros((n, k))
    certain[np.arange(n), signals] = 1.0
    return np.where(total > 0, post / np.where(total > 0, total, 1.0), certain)


def start_behaviour(market: Any, slot: PopulationSlot, behaviour: str) -> None:
    """Start the process of one population (nothing for ``passive``)."""
    pop: Any = slot.population  # belief and informed populations were checked by the market
    settings = behaviour_settings(pop.name, behaviour, pop.behaviour_options, _DEFAULTS[behaviour])
    env = market.ctx.env
    if behaviour == "passive":
        return
    if behaviour == "scripted":
        env.process(_scripted(market, slot, settings["orders"]))
        return
    rate = positive_rate(settings["rate"])
    if behaviour == "noise":
        for key in ("max_fraction", "sell_probability"):
            v = float(settings[key])
            if not 0.0 <= v <= 1.0:
                raise InvalidParameter(f"{key}(={v}) of population {pop.name!r} must be in [0, 1]")
        env.process(_noise(market, slot, rate, settings))
        return
    beliefs = np.array(pop.beliefs, dtype=np.float64)
    if behaviour == "informed":
        accuracy = float(settings["accuracy"])
        if not 0.0 <= accuracy <= 1.0:
            raise InvalidParameter(
                f"accuracy(={accuracy}) of population {pop.name!r} not in [0, 1]"
            )
        rng = market.ctx.streams.generator(f"lmsr:{pop.name}:signals")
        beliefs = posterior(beliefs, market.signals(accuracy, rng, pop.size), accuracy)
    tol = float(settings["tol"])
    if not (math.isfinite(tol) and tol >= 0):
        raise InvalidParameter(f"tol(={tol}) of population {pop.name!r} must be >= 0")
    env.process(_belief(market, slot, beliefs, rate, tol))


def _send(market: Any, slot: PopulationSlot, order: Any) -> Generator[simpy.Event, Any, None]:
    """Deliver an order after the population's delay plus the market's extra delay (a latency
    spike), in its own process if delayed."""
    delay = float(slot.population.delay) + market.extra_delay()
    if not delay:
        yield market.submit(order)
        return

    def later() -> Generator[simpy.Event, Any, None]:
        yield market.ctx.env.timeout(delay)
        if not market.resolved:
            yield market.submit(order)

    market.ctx.env.process(later())


def _belief(
    market: Any, slot: PopulationSlot, beliefs: np.ndarray, rate: float, tol: float
) -> Generator[simpy.Event, Any, None]:
    ctx = market.ctx
    pop: Any = slot.population
    env, ledger = ctx.env, ctx.ledger
    num, cols = ctx.goods.numeraire_index, market.share_columns
    aversion = pop.aversion
    rng = ctx.streams.generator(f"lmsr:{pop.name}")
    for gap, who in arrivals(rng, rate, pop.size):
        yield env.timeout(gap)
        if market.resolved:
            return
        agent = slot.rows.start + who
        h = ledger.holdings[agent]
        money = int(h[num])
        plan = lmsr_plan(
            market.state,
            market.b,
            beliefs[who],
            money / BASE_UNITS,
            h[cols] / BASE_UNITS,
            pop.risk,
            float(aversion[who]),
            tol,
        )
        if plan is None:
            continue
        col = int(cols[plan.outcome])
        order: ShareOrder | BudgetOrder
        if plan.shares > 0 and plan.whole_budget:
            order = BudgetOrder(agent, col, money)
        elif plan.shares < 0 and plan.whole_budget:
            order = ShareOrder(agent, col, -int(h[col]))
        else:
            units = math.trunc(plan.shares * BASE_UNITS)  # toward zero: never overshoot
            if units == 0:
                continue
            order = ShareOrder(agent, col, units)
        yield from _send(market, slot, order)


def _noise(
    market: Any, slot: PopulationSlot, rate: float, settings: Mapping[str, Any]
) -> Generator[simpy.Event, Any, None]:
    ctx = market.ctx
    pop = slot.population
    env, ledger = ctx.env, ctx.ledger
    num, cols = ctx.goods.numeraire_index, market.share_columns
    top, p_sell = float(settings["max_fraction"]), float(settings["sell_probability"])
    rng = ctx.streams.generator(f"lmsr:{pop.name}")
    for gap, who in arrivals(rng, rate, pop.size):
        yield env.timeout(gap)
        if market.resolved:
            return
        agent = slot.rows.start + who
        outcome, u_side, u_size = rng.integers(0, cols.size), rng.random(), rng.random()
        col = int(cols[outcome])
        h = ledger.holdings[agent]
        order: ShareOrder | BudgetOrder
        if u_side < p_sell and h[col] > 0:
            units = int(u_size * top * h[col])
            if units == 0:
                continue
            order = ShareOrder(agent, col, -units)
        else:
            money = int(u_size * top * h[num])
            if money == 0:
                continue
            order = BudgetOrder(agent, col, money)
        yield from _send(market, slot, order)


def _scripted(market: Any, slot: PopulationSlot, orders: Any) -> Generator[simpy.Event, Any, None]:
    ctx = market.ctx
    pop = slot.population
    names = list(market.quote().outcomes)
    cols = market.share_columns
    plan = []
    for entry in orders:
        try:
            time, who, outcome, shares = entry
        except (TypeError, ValueError):
            raise InvalidParameter(
                f"scripted order {entry!r} of population {pop.name!r} must be "
                "(time, agent, outcome, shares)"
            ) from None
        if outcome not in names:
            raise UnknownName("outcome in a scripted order", str(outcome), names)
        if not 0 <= int(who) < pop.size:
            raise InvalidParameter(f"scripted agent(={who}) not in population {pop.name!r}")
        units = round(float(shares) * BASE_UNITS)
        if units:
            plan.append((float(time), int(who), int(cols[names.index(outcome)]), units))
    plan.sort(key=lambda o: o[0])
    env = ctx.env
    for time, who, col, units in plan:
        if time > env.now:
            yield env.timeout(time - env.now)
        if market.resolved:
            return
        yield from _send(market, slot, ShareOrder(slot.rows.start + who, col, units))
