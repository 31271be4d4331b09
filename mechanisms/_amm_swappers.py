"""The pools' own processes: arbitrage, adversaries and supply chains on constant-product pools.

Consumers are driven by the shared strategies (:mod:`mktsim.strategies`); these behaviours still
run as the market's processes. Each population is one process: Poisson arrivals (``rate`` per
agent per unit time, drawn in blocks from the run's stream ``cpmm:<population>``); at each
arrival one agent looks at the pools and its own holdings and sends at most one
:class:`~mktsim.orders.Swap`. A population's ``delay`` is the time between looking and the swap
reaching the pool (a latency spike adds to it inside the market); it then fills at the pool's
state at that later time.

* ``arbitrage``: traders who can trade at external ``prices`` (good -> price) elsewhere swap a
  pool to that price from the profitable side, within their holdings.
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
from collections.abc import Generator, Mapping
from typing import Any

import numpy as np
import simpy
from mktsim.mechanisms import _amm_firms
from mktsim.mechanisms._amm_base import arrivals, behaviour_settings, positive_rate, swap
from mktsim.mechanisms._cpmm import SwapSide, arbitrage_to_price

from mktsim.errors import InvalidParameter, UnknownName
from mktsim.goods import BASE_UNITS
from mktsim.mechanism import PopulationSlot
from mktsim.orders import Receipt, Swap

__all__ = ["BEHAVIOURS", "start_behaviour"]

#: Behaviour name -> one-line description.
BEHAVIOURS: Mapping[str, str] = {
    "arbitrage": "swap pools to external prices (rate, prices)",
    "pump_and_dump": (
        "buy a good in bursts to push its price, then sell into the others' trades "
        "(good, start, bursts, gap, spend, rate, slices, patience)"
    ),
    "wash": "buy and at once sell back: round trips that only pay fees (rate, good, amount)",
    **_amm_firms.BEHAVIOURS,
}

_DEFAULTS: dict[str, dict[str, Any]] = {
    "arbitrage": {"rate": 1.0, "prices": {}},
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
    """Start the process of one population."""
    pop = slot.population
    settings = behaviour_settings(pop.name, behaviour, pop.behaviour_options, _DEFAULTS[behaviour])
    env = market.ctx.env
    if behaviour in _amm_firms.BEHAVIOURS:
        _amm_firms.start(market, slot, behaviour, settings)
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


def _send(market: Any, slot: PopulationSlot, order: Swap) -> Generator[simpy.Event, Any, None]:
    """Deliver a swap after the population's delay (in its own process if delayed)."""
    delay = float(slot.population.delay)
    if not delay:
        yield market.submit(order)
        return

    def later() -> Generator[simpy.Event, Any, None]:
        yield market.ctx.env.timeout(delay)
        yield market.submit(order)

    market.ctx.env.process(later())


def _deliver(
    market: Any, slot: PopulationSlot, order: Swap
) -> Generator[simpy.Event, Any, Receipt]:
    """Deliver a swap after the population's delay, waiting for it, and return its receipt (for
    behaviours whose next order depends on this one's fill)."""
    delay = float(slot.population.delay)
    if delay:
        yield market.ctx.env.timeout(delay)
    receipt: Receipt = yield market.submit(order)
    return receipt


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
            yield from _send(market, slot, swap(market, agent, j, plan.side, units))


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
                yield from _send(market, slot, swap(market, agent, j, SwapSide.BUY, units))
    deadline = env.now + s["patience"]
    settle = float(slot.population.delay) + market.extra_delay()
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
            yield from _send(market, slot, swap(market, rows[who], j, SwapSide.SELL, units))
    if deadline > env.now:
        yield env.timeout(deadline - env.now)
    for who, agent in enumerate(rows):
        left = pumped(who)
        if left >= 1:
            yield from _send(market, slot, swap(market, agent, j, SwapSide.SELL, left))


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
        bought = yield from _deliver(market, slot, swap(market, agent, j, SwapSide.BUY, units))
        if bought.status == "filled":
            back = swap(market, agent, j, SwapSide.SELL, round(bought.filled * BASE_UNITS))
            yield from _deliver(market, slot, back)
