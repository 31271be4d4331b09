"""Supply chains on constant-product pools: firms, sources of raw resources, final demand.

One SimPy process per population (plus a production or extraction clock for firms and sources);
every swap goes through :meth:`~mechanisms.cpmm.ConstantProductMarket.submit` as a
:class:`~mktsim.orders.Swap`, and a refused swap is the market's data (counted in
its ``rejections``), never an error. Goods flow forwards as production, prices backwards as the
firms' marginal valuations, one ``cycle`` per stage, as on the order book
(:mod:`mechanisms._firm_traders`):

* ``firm`` (:class:`~mktsim.firms.Firms` with decreasing returns), a price taker at the margin.
  It values its output at the fixed price ``P`` of a final demand that buys it, else at the spot
  price ``y/x`` of the output's pool averaged exponentially over time (time constant ``smooth``,
  default one cycle): its batch is sold over the next cycle, while the spot swings within each
  cycle with every sale and purchase, and valuing at the spot of the moment would pass those
  swings up the chain. At each arrival an agent sells the part of its output held
  above its selling schedule (the output of its last run, sold down linearly over
  ``pace * cycle``), then, for each input k, buys from the input's pool the amount q at which the
  marginal cost of the last unit, ``x·y / (g (x − q)²)`` (pool reserves x of the good, y of
  money, g = 1 − fee), equals its marginal value product ``p_out f'_k(z)`` at
  ``z_k = max(held_k + q, batch_k)`` (other inputs at ``max(held, batch)``), ``batch`` being its
  expected batch (an exponential average of the inputs of its runs, weight ``memory`` on the
  newest). The floor at the expected batch is what makes it a price taker for a whole batch:
  early in a cycle it holds little, and concave technologies have near-infinite marginal
  products at 0. Purchases are capped by its money. Every ``cycle`` each firm turns every input
  it holds into output (one :meth:`~mktsim.ledger.Ledger.produce`, after the population's
  ``production_time``), as on the book.
* ``source`` (:class:`~mktsim.firms.Source`): tops its stock up to its rate every ``cycle`` and
  sells it into the pool on a schedule, linearly over ``pace * cycle``: at each arrival it sells
  what it holds above the schedule (it values only money, so at any price). Selling a cycle's
  flow at once would crash the pool's price and let it recover every cycle.
* final demand (:class:`~mktsim.firms.FinalDemand` with fixed prices) is driven by the shared
  strategy ``final_demand_swap`` (:mod:`mktsim.strategies.swap_to_margin`): it buys each good
  whose pool's marginal ask is below its fixed price P up to where the last unit costs P.

Constant-returns (Leontief) industries have no marginal value product at a point and are
refused, as is a firm input nobody will ever supply to its pool (no source or firm makes it and
no holder of it trades).

**Stationary prices.** With raw supply perfectly inelastic (sources sell their whole flow) the
batches settle at the planner's quantities, each pool's ask settles at the marginal value product
of its buyers at those quantities, and the pools' prices become the back-propagated derivatives
(for ``tupperware`` at x = 4: 3/2, 1/6, 1/24), less a few fees' worth: a pool's spot price sits
between the bid ``g·y/x`` its sellers get and the ask ``y/(g·x)`` its buyers pay.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Mapping
from typing import Any

import numpy as np
import simpy
from mktsim.mechanisms._amm_base import arrivals, positive_rate, swap
from mktsim.mechanisms._batches import check_supplied, production_runs
from mktsim.mechanisms._cpmm import SwapSide
from numpy.typing import NDArray

from mktsim.errors import InvalidParameter
from mktsim.firms import FinalDemand, Firms, Source
from mktsim.goods import BASE_UNITS
from mktsim.margins import root_from_below
from mktsim.mechanism import PopulationSlot
from mktsim.orders import Receipt, Swap

__all__ = [
    "BEHAVIOURS",
    "DEFAULTS",
    "KIND_DEFAULTS",
    "input_purchase",
    "marginal_cost_of_purchase",
    "start",
]

Array = NDArray[np.float64]

#: Behaviour name -> one-line description.
BEHAVIOURS: Mapping[str, str] = {
    "firm": (
        "buy inputs up to where the pool's marginal price equals the marginal value product at "
        "the expected batch, sell output on a schedule, produce every cycle "
        "(rate, cycle, pace, memory, smooth)"
    ),
    "source": "top the stock up every cycle and sell it into the pool on a schedule (rate, "
    "cycle, pace)",
}

#: Default options of each behaviour.
DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    # smooth: one cycle; rate: as on the book (more arrivals, smaller dips between purchases)
    "firm": {"rate": 8.0, "cycle": 5.0, "pace": 0.8, "memory": 0.3, "smooth": 5.0},
    "source": {"rate": 20.0, "cycle": 5.0, "pace": 0.8},
}

#: Population kind -> its default behaviour under cpmm.
KIND_DEFAULTS: Mapping[str, str] = {
    "firms": "firm",
    "source": "source",
}

_REL_TOL = 1e-6  # relative width of the final bracket (of a purchase, in units)


def marginal_cost_of_purchase(x: float, y: float, fee: float, q: float) -> float:
    """Money per unit of the last unit when buying ``q`` units of the good from a pool.

    Paying d money buys ``out = x g d / (y + g d)``; the marginal cost of the output is
    ``dd/d(out) = (y + g d)² / (g x y)``, and with ``y + g d = x y / (x − q)`` at ``out = q``
    this is ``x y / (g (x − q)²)``: the pool's ask ``y / (g x)`` at q = 0, rising to infinity as
    q approaches the reserve.

    Args:
        x: good reserve (units), > 0.
        y: money reserve (units), > 0.
        fee: fee rate in [0, 1).
        q: units bought, in [0, x).
    """
    return x * y / ((1.0 - fee) * (x - q) ** 2)


def input_purchase(
    x: float,
    y: float,
    fee: float,
    value: Callable[[float], float],
    money: float,
    flat: float = 0.0,
) -> float:
    """Units of the good a price taker buys from a pool: the q at which the marginal cost of the
    last unit (:func:`marginal_cost_of_purchase`) equals its marginal value ``value(q)``.

    Args:
        x: good reserve (units), > 0.
        y: money reserve (units), > 0.
        fee: fee rate in [0, 1).
        value: marginal value of the q-th unit (money per unit), non-increasing in q and
            continuous; a non-finite value counts as infinite (a concave technology at 0).
        money: the buyer's money (units), >= 0: caps q at what it pays for,
            ``x g m / (y + g m)``.
        flat: ``value`` is constant on [0, flat] (units, >= 0): there the root has the closed
            form ``q = x − sqrt(x y / (g v))`` and ``value`` is called once.

    Returns:
        q in units, >= 0; 0 when the pool's ask is at or above the value of the first unit.
    """
    g = 1.0 - fee
    top = x * g * money / (y + g * money)  # all the money

    def excess(q: float) -> float:
        v = value(q)
        if not math.isfinite(v):
            v = math.inf
        return v - marginal_cost_of_purchase(x, y, fee, q)

    if top <= 0:
        return 0.0
    v0 = value(0.0)
    if flat > 0 and math.isfinite(v0):
        if v0 <= y / (g * x):
            return 0.0
        q = x - math.sqrt(x * y / (g * v0))
        if q <= flat:
            return min(q, top)
        lo = min(flat, top)
    else:
        lo = 0.0
    f_lo = excess(lo)
    if not f_lo > 0:
        return lo
    hi = top
    f_hi = excess(hi)
    if f_hi >= 0:
        return top
    return root_from_below(excess, lo, hi, rel_tol=_REL_TOL, floor=0.0, f_lo=f_lo, f_hi=f_hi)


def _money_for(x: float, y: float, fee: float, q: float) -> float:
    """Money to pay in to receive q units (units): y q / (g (x − q))."""
    return y * q / ((1.0 - fee) * (x - q))


def check(pop: Any, behaviour: str) -> None:
    """Refuse, before the market opens, a population that cannot take a supply-chain behaviour
    (nothing to check for other behaviours).

    Raises:
        InvalidParameter: ``firm`` for anything but decreasing-returns :class:`Firms` (a
            constant-returns industry has no marginal value product at a point), ``source`` for
            anything but a :class:`Source`.
    """
    if behaviour == "firm" and (not isinstance(pop, Firms) or pop.constant_returns):
        raise InvalidParameter(
            f"behaviour 'firm' needs decreasing-returns Firms; population {pop.name!r} is "
            f"{pop.kind}{' with constant returns' if isinstance(pop, Firms) else ''} (a "
            "constant-returns industry has no marginal value product at a point)"
        )
    if behaviour == "source" and not isinstance(pop, Source):
        raise InvalidParameter(
            f"behaviour 'source' needs a Source; population {pop.name!r} is {pop.kind}"
        )


def start(market: Any, slot: PopulationSlot, behaviour: str, settings: Mapping[str, Any]) -> None:
    """Start the processes of one population with behaviour ``firm`` or ``source`` (options
    already merged with :data:`DEFAULTS`)."""
    env = market.ctx.env
    if behaviour == "firm":
        firm = _Firm(market, slot, settings)
        env.process(firm.trade())
        env.process(firm.production())
    elif behaviour == "source":
        source = _Source(market, slot, settings)
        env.process(source.trade())
        env.process(source.extraction())
    else:  # pragma: no cover - the caller dispatches only these names
        raise InvalidParameter(f"behaviour(={behaviour!r}) is not a supply-chain behaviour")


# ---- shared pieces ----------------------------------------------------------------------------


def _fraction(pop: Any, name: str, value: Any) -> float:
    v = float(value)
    if not (math.isfinite(v) and 0.0 < v <= 1.0):
        raise InvalidParameter(f"{name}(={value!r}) of population {pop.name!r} not in (0, 1]")
    return v


def _deliver(
    market: Any, slot: PopulationSlot, order: Swap
) -> Generator[simpy.Event, Any, Receipt]:
    """Deliver a swap after the population's delay (plus any latency spike), wait for it and
    return its receipt: the next swap of the same arrival depends on this one's fill."""
    delay = float(slot.population.delay)  # a latency spike adds to it inside the market
    if delay:
        yield market.ctx.env.timeout(delay)
    receipt: Receipt = yield market.submit(order)
    return receipt


class _Schedule:
    """Sell a stock down linearly over ``horizon`` time from its last restock (one per agent)."""

    def __init__(self, n: int, horizon: float) -> None:
        self.stock = np.zeros(n)
        self.since = 0.0
        self.horizon = horizon

    def restock(self, held: Array, now: float) -> None:
        """Start a new schedule at the stocks ``held`` (units, ``float64[n]``)."""
        self.stock = np.asarray(held, dtype=np.float64).copy()
        self.since = now

    def excess(self, who: int, held: float, now: float) -> float:
        """Units agent ``who`` holds above its schedule at ``now`` (may be <= 0)."""
        left = max(1.0 - (now - self.since) / self.horizon, 0.0)
        return held - float(self.stock[who]) * left


class _Seller:
    """A population selling one good into its pool on a schedule (sources, firms' output)."""

    def __init__(self, market: Any, slot: PopulationSlot, good: int, cycle: float, pace: float):
        self.market, self.slot, self.good = market, slot, good
        self.schedule = _Schedule(slot.population.size, pace * cycle)

    def sell(self, who: int) -> Generator[simpy.Event, Any, None]:
        """Sell what agent ``who`` holds above its schedule (nothing if its pool is closed)."""
        market, j = self.market, self.good
        if j not in market.reserves():
            return
        agent = self.slot.rows.start + who
        held = int(market.ctx.ledger.holdings[agent, j])
        over = self.schedule.excess(who, held / BASE_UNITS, float(market.ctx.env.now))
        units = min(math.floor(over * BASE_UNITS), held)
        if units >= 1:
            yield from _deliver(market, self.slot, swap(market, agent, j, SwapSide.SELL, units))

    def restock(self) -> None:
        held = self.market.ctx.ledger.holdings[self.slot.rows, self.good] / BASE_UNITS
        self.schedule.restock(held, float(self.market.ctx.env.now))


# ---- firms ------------------------------------------------------------------------------------


def _final_prices(market: Any) -> dict[int, float]:
    """Good column -> the fixed price a final demand pays for it."""
    out: dict[int, float] = {}
    for slot in market.ctx.slots:
        pop = slot.population
        if isinstance(pop, FinalDemand):
            for name, price in pop.prices.items():
                out[pop.goods.index(name)] = max(out.get(pop.goods.index(name), 0.0), price)
    return out


class _Firm:
    """Buys inputs at marginal value product, sells output on a schedule, produces every cycle."""

    def __init__(self, market: Any, slot: PopulationSlot, s: Mapping[str, Any]) -> None:
        pop = slot.population
        check(pop, "firm")
        assert isinstance(pop, Firms)
        self.market, self.slot, self.pop = market, slot, pop
        self.rate = positive_rate(s["rate"])
        self.cycle = positive_rate(s["cycle"], "cycle")
        self.memory = _fraction(pop, "memory", s["memory"])
        pace = _fraction(pop, "pace", s["pace"])
        self.inputs = [int(j) for j in pop.input_index]
        pools = market.pool_goods
        num = market.ctx.goods.numeraire_index
        for j in self.inputs:
            if j == num or j not in pools:
                raise InvalidParameter(
                    f"firms {pop.name!r} use {market.ctx.goods.names[j]!r}, which has no pool"
                )
            # a consumer swaps if its marginal rate of substitution is finite, so that some
            # pool bid lies above it; with no positive marginal utility of money it never swaps
            check_supplied(
                market.ctx,
                slot,
                j,
                idle=("passive", "idle"),
                default="mrs",
                consumer_sells=lambda mu_good, mu_money: (
                    np.isfinite(mu_good) & np.isfinite(mu_money) & (mu_money > 0)
                ),
                refusal="nobody supplies under cpmm: no source or firm makes it and no holder "
                "of it trades (give its holders a trading behaviour, or build the chain with "
                "flow=True)",
            )
        self.output = pop.output_index
        self.final = _final_prices(market).get(self.output)
        self.seller = _Seller(market, slot, self.output, self.cycle, pace)
        #: Expected batch (inputs of the next run), units ``float64[n, k]``; 0 before any run.
        self.batch = np.zeros((pop.size, len(self.inputs)))
        smooth = float(s["smooth"])
        if not (math.isfinite(smooth) and smooth >= 0):
            raise InvalidParameter(f"smooth(={smooth!r}) of population {pop.name!r} must be >= 0")
        self.smooth = smooth
        #: The output's price as the population sees it (money per unit; None before a look).
        self.estimate: float | None = None
        self.seen = 0.0

    def _output_value(self) -> float | None:
        """The fixed final price, else the output pool's spot price averaged exponentially over
        time (time constant ``smooth``): a batch's output is sold over the next cycle, at the
        pool's average price then, not at the spot of one moment."""
        if self.final is not None:
            return self.final
        pool = self.market.reserves().get(self.output)
        if pool is None:
            return None
        spot = pool[1] / pool[0]
        now = float(self.market.ctx.env.now)
        if self.estimate is None or not self.smooth:
            self.estimate = spot
        else:
            self.estimate += -math.expm1(-(now - self.seen) / self.smooth) * (spot - self.estimate)
        self.seen = now
        return self.estimate

    def trade(self) -> Generator[simpy.Event, Any, None]:
        """Poisson arrivals: the arriving firm sells its output above schedule, then buys each
        input up to its marginal value product."""
        market, slot = self.market, self.slot
        ctx = market.ctx
        ledger, num, tech = ctx.ledger, ctx.goods.numeraire_index, self.pop.technology
        rng = ctx.streams.generator(f"cpmm:{self.pop.name}")
        for gap, who in arrivals(rng, self.rate, self.pop.size):
            yield ctx.env.timeout(gap)
            agent = slot.rows.start + who
            yield from self.seller.sell(who)
            p_out = self._output_value()
            if p_out is None or not p_out > 0:
                continue
            for k, j in enumerate(self.inputs):
                pool = market.reserves().get(j)
                if pool is None:
                    continue
                x, y = pool
                held = ledger.holdings[slot.rows][:, self.inputs] / BASE_UNITS
                point = np.maximum(held, self.batch)
                own, floor = float(held[who, k]), float(self.batch[who, k])

                value = _marginal_value(tech, point, who, k, own, floor, p_out)
                money = int(ledger.holdings[agent, num])
                flat = max(floor - own, 0.0)
                q = input_purchase(x, y, market.fee, value, money / BASE_UNITS, flat)
                if q <= 0:
                    continue
                units = min(math.floor(_money_for(x, y, market.fee, q) * BASE_UNITS), money)
                if units >= 1:
                    yield from _deliver(market, slot, swap(market, agent, j, SwapSide.BUY, units))

    def production(self) -> Generator[simpy.Event, Any, None]:
        """Every ``cycle``: each firm turns every input it holds into output (as on the book),
        then restocks its selling schedule."""
        ctx = self.market.ctx
        return production_runs(
            ctx.env,
            ctx.ledger,
            self.slot,
            self.cycle,
            self.batch,
            self.memory,
            lambda busy, y: self.seller.restock(),
        )


def _marginal_value(
    tech: Any, point: Array, who: int, k: int, own: float, floor: float, p_out: float
) -> Callable[[float], float]:
    """Marginal value product of input k for firm ``who`` after buying q more units:
    ``p_out f'_k(z)`` with ``z_k = max(own + q, floor)`` and the other entries of ``point``
    (units ``float64[n, inputs]``, written in place)."""

    def value(q: float) -> float:
        point[who, k] = max(own + q, floor)
        with np.errstate(all="ignore"):
            mp = tech.marginal_products(point)
        return p_out * float(mp[who, k])

    return value


# ---- sources ----------------------------------------------------------------------------------


class _Source:
    """Tops its stock up to its rate every cycle and sells it into the pool on a schedule."""

    def __init__(self, market: Any, slot: PopulationSlot, s: Mapping[str, Any]) -> None:
        pop = slot.population
        check(pop, "source")
        assert isinstance(pop, Source)
        self.market, self.slot, self.pop = market, slot, pop
        self.rate = positive_rate(s["rate"])
        self.cycle = positive_rate(s["cycle"], "cycle")
        pace = _fraction(pop, "pace", s["pace"])
        self.seller = _Seller(market, slot, pop.good_index, self.cycle, pace)
        self.seller.restock()

    def trade(self) -> Generator[simpy.Event, Any, None]:
        ctx = self.market.ctx
        rng = ctx.streams.generator(f"cpmm:{self.pop.name}")
        for gap, who in arrivals(rng, self.rate, self.pop.size):
            yield ctx.env.timeout(gap)
            yield from self.seller.sell(who)

    def extraction(self) -> Generator[simpy.Event, Any, None]:
        """Every ``cycle``: extract up to the rate (journalled as a production without inputs)."""
        ctx = self.market.ctx
        ledger, rows, j = ctx.ledger, self.slot.rows, self.pop.good_index
        cap = np.floor(self.pop.rate * BASE_UNITS).astype(np.int64)
        while True:
            yield ctx.env.timeout(self.cycle)
            made = np.zeros((self.pop.size, len(ctx.goods)), dtype=np.int64)
            made[:, j] = np.maximum(cap - ledger.holdings[rows, j], 0)
            ledger.produce(self.slot.row_ids, np.zeros_like(made), made, self.pop.name)
            self.seller.restock()
