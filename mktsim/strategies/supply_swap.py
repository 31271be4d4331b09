"""Supply chains on pools: firms and sources swap against a maker's pools (registered as
``firm_swap`` and ``source_swap``).

Goods flow forwards as production, prices backwards as the firms' marginal valuations, one
``cycle`` per stage. Production and extraction are not trading: they run on the population's
:class:`~mktsim.production.plant.Plant`, outside every mechanism; these strategies only swap,
through ``market.submit`` (:class:`~mktsim.orders.Swap`, ``exact="in"``), reading pools from
``market.quote().pools`` (reserves x of the good and y of money, fee f, g = 1 − f). A refused
swap is the market's data, never an error.

* ``firm_swap`` (:class:`~mktsim.firms.Firms` with decreasing returns), a price taker at the
  margin. It values its output at the fixed price ``P`` of a final demand that buys it, else at
  the spot price ``y/x`` of the output's pool averaged exponentially over time (time constant
  ``smooth``, default one cycle): its batch is sold over the next cycle, while the spot swings
  within each cycle with every sale and purchase, and valuing at the spot of the moment would
  pass those swings up the chain. At each arrival a firm sells the part of its output held
  above its selling schedule (the output of its last run, sold down linearly over
  ``pace * cycle``), then, for each input k in turn, buys from the input's pool the amount q at
  which the marginal cost of the last unit, ``x·y / (g (x − q)²)``
  (:func:`~mktsim.margins.marginal_cost_of_purchase`), equals its marginal value product
  ``p_out ∂f/∂x_k(z)`` at the bundle z of
  :func:`~mktsim.production.planning.valuation_point`, within its money
  (:func:`~mktsim.margins.input_purchase`).
* ``source_swap`` (:class:`~mktsim.firms.Source`): its plant tops its stock up to its rate every
  ``cycle``; it sells the stock into the pool on a schedule, linearly over ``pace * cycle``: at
  each arrival it sells what it holds above the schedule (it values only money, so at any
  price). Selling a cycle's flow at once would crash the pool's price and let it recover every
  cycle.

**Planned on the input mix.** The bundle a firm values input k at
(:func:`~mktsim.production.planning.valuation_point`, shared with the firms on limit orders) is
``z_k = max(held_k + q, batch_k)`` and, for every other input j, ``max(held_j, batch_j)`` once the
firm has an expected batch of j (the plant's exponential average of the inputs of its runs),
else ``max(held_j, plan_j)`` with ``plan`` its profit-maximising bundle at the pools' spot prices
(:func:`~mktsim.production.planning.planned_inputs`). The floor at the batch makes it a price
taker for a whole batch: early in a cycle it holds little, and concave technologies have
near-infinite marginal products at 0. The plan matters before a multi-input firm's first run:
valued at its holding of 0 of the other input, a Cobb-Douglas input has marginal product 0, so
the firm would never buy either input and never produce.

Constant-returns (Leontief) industries have no marginal value product at a point and are
refused, as is a firm input that has no pool or that nobody will ever supply
(:func:`~mktsim.production.plant.check_supplied`).

**Stationary prices.** With raw supply perfectly inelastic (sources sell their whole flow) the
batches settle at the planner's quantities, each pool's ask at the marginal value product of its
buyers there, and the pools' prices at the planner's shadow prices (the back-propagated
derivatives on trees; for ``tupperware`` at x = 4: 3/2, 1/6, 1/24), less a few fees' worth: a
pool's spot price sits between the bid ``g·y/x`` its sellers get and the ask ``y/(g·x)`` its
buyers pay.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any, ClassVar

import numpy as np
import simpy
from numpy.typing import NDArray

from mktsim.errors import InvalidParameter
from mktsim.margins import input_purchase, money_for
from mktsim.mechanism import MarketContext, Option, PopulationSlot, positive_float
from mktsim.orders import BUY, SELL, Swap
from mktsim.production.planning import planned_inputs, valuation_point
from mktsim.production.plant import Plant, check_supplied
from mktsim.strategies._common import SwapStrategy, arrivals, tolerance

__all__ = ["FirmSwap", "SourceSwap"]

Array = NDArray[np.float64]


def _fraction(value: Any) -> float:
    """Converter for a share of something: a float in (0, 1]."""
    v = float(value)
    if not (math.isfinite(v) and 0.0 < v <= 1.0):
        raise ValueError("must be in (0, 1]")
    return v


CYCLE = Option(5.0, "time between production runs (or top-ups)", positive_float)
PACE = Option(0.8, "the stock is sold down linearly over pace * cycle, in (0, 1]", _fraction)


# ---- valuation on the input mix ---------------------------------------------------------------


def _marginal_value(
    technology: Any, z: Array, who: int, k: int, own: float, floor: float, p_out: float
) -> Callable[[float], float]:
    """Marginal value product of input k for firm ``who`` after buying q more units,
    ``p_out ∂f/∂x_k`` at ``z`` with ``z_k = max(own + q, floor)`` (``z`` written in place)."""

    def value(q: float) -> float:
        z[who, k] = max(own + q, floor)
        with np.errstate(all="ignore"):
            mp = technology.marginal_products(z)
        return p_out * float(mp[who, k])

    return value


# ---- selling on a schedule --------------------------------------------------------------------


class _Seller:
    """Sells one good of a population into its pool down a linear schedule: after each restock
    an agent may hold at most ``stock·(1 − (t − since)/horizon)``; it sells what it holds
    above."""

    def __init__(self, strategy: SwapStrategy, good: int, horizon: float) -> None:
        self.strategy = strategy
        self.base_units = strategy.base_units
        self.good = good
        self.name = strategy.ctx.goods.names[good]
        self.horizon = horizon
        self.stock = np.zeros(strategy.population.size)
        self.since = 0.0

    def restock(self) -> None:
        """Start a new schedule at the population's holdings now."""
        ctx, slot = self.strategy.ctx, self.strategy.slot
        self.stock = ctx.ledger.holdings[slot.rows, self.good] / self.base_units
        self.since = float(ctx.env.now)

    def sell(self, who: int) -> Generator[simpy.Event, Any, None]:
        """Sell what agent ``who`` (index in the population) holds above its schedule (nothing
        if the good's pool is closed)."""
        strategy = self.strategy
        if self.name not in strategy.market.quote().pools:
            return
        ctx = strategy.ctx
        agent = strategy.slot.rows.start + who
        held = int(ctx.ledger.holdings[agent, self.good])
        left = max(1.0 - (float(ctx.env.now) - self.since) / self.horizon, 0.0)
        over = held / self.base_units - float(self.stock[who]) * left
        units = min(math.floor(over * self.base_units), held)
        if units >= 1:
            yield from strategy.deliver(Swap(agent, self.name, SELL, units / self.base_units))


# ---- firms ------------------------------------------------------------------------------------


def _final_price(ctx: MarketContext, good: str) -> float | None:
    """The highest fixed price a final demand of the run pays for ``good`` (None: nobody)."""
    best: float | None = None
    for slot in ctx.slots:
        pop: Any = slot.population
        if pop.kind == "final_demand" and good in getattr(pop, "prices", {}):
            price = float(pop.prices[good])
            best = price if best is None else max(best, price)
    return best


class FirmSwap(SwapStrategy):
    """Firms buy inputs at their marginal value product on the planned input mix and sell their
    output on a schedule; their plant produces every cycle (see the module docstring)."""

    name: ClassVar[str] = "firm_swap"
    doc: ClassVar[str] = (
        "buy inputs from pools up to the marginal value product on the planned input mix, sell "
        "output on a schedule, produce every cycle (rate, cycle, pace, memory, smooth)"
    )
    emits: ClassVar[frozenset[type]] = frozenset({Swap})
    serves: ClassVar[frozenset[str]] = frozenset({"firms"})
    options: ClassVar[dict[str, Option]] = {
        # as on the book: more arrivals, smaller dips between purchases
        "rate": Option(8.0, "arrivals per agent per unit time", positive_float),
        "cycle": CYCLE,
        "pace": PACE,
        "memory": Option(
            0.3, "weight of the newest run in the expected batch, in (0, 1]", _fraction
        ),
        "smooth": Option(
            5.0,
            "time constant of the output's averaged pool price (0: the spot); one cycle",
            tolerance,
        ),
    }

    def __init__(
        self, market: Any, ctx: MarketContext, slot: PopulationSlot, options: dict[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        pop = self.population
        reason = self.refusal(pop)
        if reason:
            raise InvalidParameter(reason)
        goods = ctx.goods
        pools = getattr(market.quote(), "pools", None)
        if pools is None:
            raise InvalidParameter(
                f"strategy 'firm_swap' of population {pop.name!r} needs a market that quotes "
                "pools (reserves and fee), as cpmm does"
            )
        self.inputs = [int(j) for j in pop.input_index]
        self.names = [goods.names[j] for j in self.inputs]
        for name in self.names:
            if name not in pools:
                raise InvalidParameter(f"firms {pop.name!r} use {name!r}, which has no pool")
        for j in self.inputs:
            # a consumer swaps if its marginal rate of substitution is finite, so that some
            # pool bid lies above it; with no positive marginal utility of money it never swaps
            check_supplied(
                ctx,
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
        self.output = goods.names[pop.output_index]
        self.final = _final_price(ctx, self.output)
        self.seller = _Seller(self, pop.output_index, self.opts["pace"] * self.opts["cycle"])
        #: The output's price as the population sees it (money per unit; None before a look).
        self.estimate: float | None = None
        self.seen = 0.0
        self.plant: Plant | None = None

    @classmethod
    def refusal(cls, population: Any) -> str | None:
        """Why this strategy cannot drive ``population`` (one line), checked before the run:
        it needs decreasing-returns :class:`~mktsim.firms.Firms` (a constant-returns industry
        has no marginal value product at a point)."""
        if hasattr(population, "technology") and not getattr(population, "constant_returns", 1):
            return None
        returns = " with constant returns" if population.kind == "firms" else ""
        return (
            f"strategy {cls.name!r} needs decreasing-returns Firms; population "
            f"{population.name!r} is {population.kind}{returns} (a constant-returns industry "
            "has no marginal value product at a point)"
        )

    def start(self) -> None:
        self.env.process(self.run())
        self.plant = Plant.of(
            self.ctx, self.slot, cycle=self.opts["cycle"], memory=self.opts["memory"]
        )
        self.plant.listen(lambda produced, amounts: self.seller.restock())

    def output_value(self) -> float | None:
        """The fixed final price, else the output pool's spot price averaged exponentially over
        time (time constant ``smooth``): a batch's output is sold over the next cycle, at the
        pool's average price then, not at the spot of one moment."""
        if self.final is not None:
            return self.final
        pool = self.market.quote().pools.get(self.output)
        if pool is None:
            return None
        spot = pool.y / pool.x
        now = float(self.env.now)
        smooth = self.opts["smooth"]
        if self.estimate is None or not smooth:
            self.estimate = spot
        else:
            self.estimate += -math.expm1(-(now - self.seen) / smooth) * (spot - self.estimate)
        self.seen = now
        return self.estimate

    def plan(self, who: int, batch: Array, p_out: float) -> Array | None:
        """Planned inputs at the pools' spot prices, needed only while firm ``who`` of a
        multi-input population lacks an expected batch of some input (None otherwise, or when
        no plan can be made: an input's pool closed)."""
        if len(self.inputs) < 2 or (batch[who] > 0).all():
            return None
        pools = self.market.quote().pools
        if any(name not in pools for name in self.names):
            return None
        prices = [pools[name].y / pools[name].x for name in self.names]
        return planned_inputs(self.population.technology, p_out, prices)

    def run(self) -> Generator[simpy.Event, Any, None]:
        """Poisson arrivals: the arriving firm sells its output above schedule, then buys each
        input up to its marginal value product."""
        ctx, env, slot = self.ctx, self.env, self.slot
        ledger, num = ctx.ledger, ctx.goods.numeraire_index
        tech = self.population.technology
        for gap, who in arrivals(self.stream(), self.opts["rate"], self.population.size):
            yield env.timeout(gap)
            agent = slot.rows.start + who
            yield from self.seller.sell(who)
            p_out = self.output_value()
            if p_out is None or not p_out > 0 or self.plant is None:
                continue
            batch = self.plant.batch
            plan = self.plan(who, batch, p_out)
            for k, name in enumerate(self.names):
                pool = self.market.quote().pools.get(name)
                if pool is None:
                    continue
                x, y = pool.x, pool.y
                held = ledger.holdings[slot.rows][:, self.inputs] / self.base_units
                z = valuation_point(held, batch, k, plan=plan)
                own, floor = float(held[who, k]), float(batch[who, k])
                value = _marginal_value(tech, z, who, k, own, floor, p_out)
                money = int(ledger.holdings[agent, num])
                flat = max(floor - own, 0.0)
                q = input_purchase(x, y, pool.fee, value, money / self.base_units, flat)
                if q <= 0:
                    continue
                units = min(math.floor(money_for(x, y, pool.fee, q) * self.base_units), money)
                if units >= 1:
                    yield from self.deliver(Swap(agent, name, BUY, units / self.base_units))


# ---- sources ----------------------------------------------------------------------------------


class SourceSwap(SwapStrategy):
    """Sources sell the flow their plant extracts into the pool on a schedule."""

    name: ClassVar[str] = "source_swap"
    doc: ClassVar[str] = (
        "top the stock up every cycle and sell it into the pool on a schedule (rate, cycle, pace)"
    )
    emits: ClassVar[frozenset[type]] = frozenset({Swap})
    serves: ClassVar[frozenset[str]] = frozenset({"source"})
    options: ClassVar[dict[str, Option]] = {
        "rate": Option(20.0, "arrivals per agent per unit time", positive_float),
        "cycle": CYCLE,
        "pace": PACE,
    }

    def __init__(
        self, market: Any, ctx: MarketContext, slot: PopulationSlot, options: dict[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        pop = self.population
        if not hasattr(pop, "good_index"):
            raise InvalidParameter(
                f"strategy 'source_swap' needs a Source; population {pop.name!r} is {pop.kind}"
            )
        self.seller = _Seller(self, pop.good_index, self.opts["pace"] * self.opts["cycle"])
        self.seller.restock()

    def start(self) -> None:
        self.env.process(self.run())
        plant = Plant.of(self.ctx, self.slot, cycle=self.opts["cycle"])
        plant.listen(lambda produced, amounts: self.seller.restock())

    def run(self) -> Generator[simpy.Event, Any, None]:
        for gap, who in arrivals(self.stream(), self.opts["rate"], self.population.size):
            yield self.env.timeout(gap)
            yield from self.seller.sell(who)
