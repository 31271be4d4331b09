"""Pool behaviours: SimPy processes swapping against constant-product pools.

Each population is one process: Poisson arrivals (``rate`` per agent per unit time, drawn in
blocks from the run's stream ``cpmm:<population>``); at each arrival one agent looks at the pools
and its own holdings and sends at most one swap. A population's ``delay``, plus the market's
extra delay during a latency spike, is the time between looking and the swap reaching the pool
(it then fills at the pool's state at that later time).

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
* ``firm``, ``source``, ``final_demand``: the supply-chain behaviours of
  :mod:`mechanisms._amm_firms` (the defaults of firms, sources and final demand).

Adversaries, acting only through :meth:`~mechanisms.cpmm.ConstantProductMarket.submit` and the
public quote, like everyone else:

* ``pump_and_dump``: from ``start``, every agent buys ``good`` in ``bursts`` bursts ``gap`` apart,
  spending ``spend`` of the money it held at ``start`` in equal parts, to push the pool's price up.
  Then it sells what it bought back into the others' trades: at each of its arrivals (``rate``)
  an agent sells a ``1/slices`` part of its pumped inventory if the pool's marginal bid is at
  least the average price it paid; ``patience`` time after the last burst it sells whatever is
  left at any price.
* ``wash``: at each arrival an agent buys ``good`` (a random pool if None) with ``amount`` of its
  money and at once sells everything it received back. Its holdings of the good end where they
  started; it loses the fee twice per round trip (and the pool's rounding), which the pool keeps:
  wash volume on a constant-product pool is a pure transfer to the liquidity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Mapping
from typing import Any

import numpy as np
import simpy
from mktsim.mechanisms import _amm_firms
from mktsim.mechanisms._amm_base import Receipt, arrivals, behaviour_settings, positive_rate
from mktsim.mechanisms._amm_orders import SwapOrder
from mktsim.mechanisms._amm_plans import pool_plan
from mktsim.mechanisms._cpmm import SwapSide, arbitrage_to_price

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
    "pump_and_dump": (
        "buy a good in bursts to push its price, then sell into the others' trades "
        "(good, start, bursts, gap, spend, rate, slices, patience)"
    ),
    "wash": "buy and at once sell back: round trips that only pay fees (rate, good, amount)",
    **_amm_firms.BEHAVIOURS,
}

_DEFAULTS: dict[str, dict[str, Any]] = {
    "mrs": {"rate": 1.0, "tol": 1e-4},
    "noise": {"rate": 1.0, "max_fraction": 0.2},
    "arbitrage": {"rate": 1.0, "prices": {}},
    "scripted": {"orders": ()},
    "passive": {},
    "pump_and_dump": {
        "good": None,
        "start": 0.0,
        "bursts": 5,
        "gap": 1.0,
        "spend": 0.5,
        "rate": 1.0,
        "slices": 10,
        "patience": 20.0,
    },
    "wash": {"rate": 1.0, "good": None, "amount": 0.1},
    **{name: dict(options) for name, options in _amm_firms.DEFAULTS.items()},
}


def start_behaviour(market: Any, slot: PopulationSlot, behaviour: str) -> None:
    """Start the process of one population (nothing for ``passive``)."""
    pop = slot.population
    settings = behaviour_settings(pop.name, behaviour, pop.behaviour_options, _DEFAULTS[behaviour])
    env = market.ctx.env
    if behaviour == "passive":
        return
    if behaviour in _amm_firms.BEHAVIOURS:
        _amm_firms.start(market, slot, behaviour, settings)
        return
    if behaviour == "scripted":
        env.process(_scripted(market, slot, settings["orders"]))
        return
    if behaviour == "pump_and_dump":
        env.process(_pump_and_dump(market, slot, _pump_settings(market, pop, settings)))
        return
    rate = positive_rate(settings["rate"])
    if behaviour == "wash":
        amount = float(settings["amount"])
        if not 0.0 < amount <= 1.0:
            raise InvalidParameter(f"amount(={amount}) of population {pop.name!r} not in (0, 1]")
        good = None if settings["good"] is None else _pool_good(market, settings["good"])
        env.process(_wash(market, slot, rate, good, amount))
        return
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


def _pool_good(market: Any, name: Any) -> int:
    goods = market.ctx.goods
    if name not in goods.names or goods.index(name) not in market.pool_goods:
        raise UnknownName("pool good", str(name), [goods.names[j] for j in market.pool_goods])
    return int(goods.index(name))


def _pump_settings(market: Any, pop: Any, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The pump-and-dump options, checked."""
    if settings["good"] is None:
        raise InvalidParameter(
            f"behaviour 'pump_and_dump' of population {pop.name!r} needs good=<a pool's good>"
        )
    out = dict(settings)
    out["good"] = _pool_good(market, settings["good"])
    for key in ("bursts", "slices"):
        n = int(settings[key])
        if n < 1:
            raise InvalidParameter(f"{key}(={settings[key]!r}) of population {pop.name!r} >= 1")
        out[key] = n
    for key in ("start", "gap", "patience"):
        v = float(settings[key])
        if not (math.isfinite(v) and v >= 0):
            raise InvalidParameter(f"{key}(={v}) of population {pop.name!r} must be >= 0")
        out[key] = v
    spend = float(settings["spend"])
    if not 0.0 < spend <= 1.0:
        raise InvalidParameter(f"spend(={spend}) of population {pop.name!r} not in (0, 1]")
    out["spend"] = spend
    out["rate"] = positive_rate(settings["rate"])
    return out


def _delay(market: Any, slot: PopulationSlot) -> float:
    """The population's delay plus the market's extra delay now (a latency spike)."""
    return float(slot.population.delay) + market.extra_delay()


def _send(market: Any, slot: PopulationSlot, order: SwapOrder) -> Generator[simpy.Event, Any, None]:
    """Deliver a swap after the delay (in its own process if delayed)."""
    delay = _delay(market, slot)
    if not delay:
        yield market.submit(order)
        return

    def later() -> Generator[simpy.Event, Any, None]:
        yield market.ctx.env.timeout(delay)
        yield market.submit(order)

    market.ctx.env.process(later())


def _deliver(
    market: Any, slot: PopulationSlot, order: SwapOrder
) -> Generator[simpy.Event, Any, Receipt]:
    """Deliver a swap after the delay, waiting for it, and return its receipt (for behaviours
    whose next order depends on this one's fill)."""
    delay = _delay(market, slot)
    if delay:
        yield market.ctx.env.timeout(delay)
    receipt: Receipt = yield market.submit(order)
    return receipt


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
        pool = market.reserves().get(j)
        if pool is None:  # withdrawn
            continue
        x, y = pool
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


def _pump_and_dump(
    market: Any, slot: PopulationSlot, s: Mapping[str, Any]
) -> Generator[simpy.Event, Any, None]:
    ctx = market.ctx
    pop = slot.population
    env, ledger, num, j = ctx.env, ctx.ledger, ctx.goods.numeraire_index, s["good"]
    rows = slot.row_ids.tolist()
    if s["start"] > env.now:
        yield env.timeout(s["start"] - env.now)
    before = np.array(ledger.holdings[slot.rows])  # holdings when the pump starts
    budget = np.floor(s["spend"] * before[:, num] / s["bursts"]).astype(np.int64)
    for burst in range(s["bursts"]):
        if burst:
            yield env.timeout(s["gap"])
        for who, agent in enumerate(rows):
            units = min(int(budget[who]), int(ledger.holdings[agent, num]))
            if units >= 1:
                yield from _send(market, slot, SwapOrder(agent, j, SwapSide.BUY, amount_in=units))
    deadline = env.now + s["patience"]
    settle = _delay(market, slot)
    if settle:  # the last burst's orders are still on their way
        yield env.timeout(settle)
    now_h = np.array(ledger.holdings[slot.rows])
    bought = np.maximum(now_h[:, j] - before[:, j], 0)
    spent = np.maximum(before[:, num] - now_h[:, num], 0)
    slice_units = -(-bought // s["slices"])  # ceiling: at most `slices` sales each
    g = 1.0 - market.fee
    rng = ctx.streams.generator(f"cpmm:{pop.name}")

    def pumped(who: int) -> int:
        """What is left of the agent's pumped inventory (never its own endowment)."""
        return min(int(ledger.holdings[rows[who], j] - before[who, j]), int(bought[who]))

    for gap, who in arrivals(rng, s["rate"], pop.size):
        if env.now + gap >= deadline:
            break
        yield env.timeout(gap)
        left = pumped(who)
        pool = market.reserves().get(j)
        if left < 1 or pool is None or not bought[who]:
            continue
        x, y = pool
        if g * y / x >= spent[who] / bought[who]:  # the bid covers what it paid on average
            units = min(left, int(slice_units[who]))
            yield from _send(market, slot, SwapOrder(rows[who], j, SwapSide.SELL, amount_in=units))
    if deadline > env.now:
        yield env.timeout(deadline - env.now)
    for who, agent in enumerate(rows):
        left = pumped(who)
        if left >= 1:
            yield from _send(market, slot, SwapOrder(agent, j, SwapSide.SELL, amount_in=left))


def _wash(
    market: Any, slot: PopulationSlot, rate: float, good: int | None, amount: float
) -> Generator[simpy.Event, Any, None]:
    ctx = market.ctx
    pop = slot.population
    env, ledger, num = ctx.env, ctx.ledger, ctx.goods.numeraire_index
    rng = ctx.streams.generator(f"cpmm:{pop.name}")
    for gap, who in arrivals(rng, rate, pop.size):
        yield env.timeout(gap)
        agent = slot.rows.start + who
        pools = market.pool_goods
        if good is not None:
            j = good
        elif pools:
            j = int(pools[int(rng.integers(0, len(pools)))])
        else:
            continue
        units = math.floor(amount * int(ledger.holdings[agent, num]))
        if units < 1:
            continue
        bought = yield from _deliver(
            market, slot, SwapOrder(agent, j, SwapSide.BUY, amount_in=units)
        )
        if bought.accepted:
            back = SwapOrder(agent, j, SwapSide.SELL, amount_in=bought.quantity)
            yield from _deliver(market, slot, back)
