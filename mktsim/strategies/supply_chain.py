"""Supply chains on markets that take limit orders: firms, sources of raw resources, final demand.

Written against the market protocol (``Limit`` and ``Cancel`` orders, a quote with each good's
best bid and ask), so the same strategies run a chain on an order book and on a call market.
Production is not a market's business: firms and sources produce through the run's
:class:`~mktsim.production.plant.Plant` of their population, whatever the mechanism.

Prices travel backwards as bids and goods forwards as production, one ``cycle`` per stage:

* ``firm_limit`` (:class:`~mktsim.firms.Firms` with decreasing returns): a price taker. It
  values its output at the market's estimate (recent trade prices; before any trade, the best
  bid). For an input it bids for lots of ``step`` of its expected batch (on a batch market,
  the rest of it: see below) at the *marginal value product* of the lot, valued at the bundle
  of :func:`~mktsim.production.planning.valuation_point`: the lot's midpoint on top of its
  holding, never below the expected batch, and every *other* input at its expected batch, or,
  before the firm has produced with it, at the profit-maximising plan at its current price
  estimates (a two-input firm that holds none of one input would otherwise value the other at
  a marginal product of 0 and never bid). Before its first run (no batch yet) it bids for
  ``order_size`` units, or ``step`` of its plan where it has one if that is less (a first lot
  far above the plan would be valued below the price and never fill: ``order_size`` is in
  units, whatever the economy's scale), at no more than the best ask (on a batch market, the
  best ask or the last clearing price, the higher: there the price is the marginal bid's, above
  the asks, and a first bid at the best ask would lose to every firm that has a batch), or,
  without either, at a price that starts at one tick and rises by ``adjust`` per action: bids
  at the marginal products at 0 would drain the chain's working capital to the first sellers.
  *Below its batch* an input worth less than its price estimate at the batch (the firm bought
  cheap last cycle, or the price rose) is valued instead at the holding where it is worth that
  price (:func:`~mktsim.production.planning.worth_price`), and the firm bids for the lots up to
  that holding: a price taker buys up to where the input is worth its price. Floored at the
  batch its demand was all or nothing: identical firms whose batch was a little too large bid
  below the price for every lot and bought nothing that cycle, so a concave firm's inputs came
  in lumps and its output fell (near-constant-returns assemblers, which take whatever ore the
  smelters leave, made the smelters' ore so lumpy that metal traded 7-8% high on the call
  market and swung up to 37% on the book). On a continuous book the holding is the one
  worth ``adjust`` less than the estimate: there a bid fills at its own price, and bids at
  the estimate itself hold the estimate where it is (the trades at them keep the average of
  trades), so firms whose batch is worth less than the price would never pull it down
  (``tupperware``'s ethylene settled 1.3-2.3% high on the book). On a batch market a bid does
  not set the price it pays, and the holding is the one worth the estimate.
  A bid is capped at what its free cash pays for one lot. It sells its output at the best bid
  as soon as it has it, ``fraction`` of its last output per ask, or of its whole stock where
  that is more (on a batch market: on a schedule, as a source does, see below): a stock left
  unsold by earlier runs is money the firm lacks for its inputs, and a firm short of cash bids
  below its marginal value (a three-input assembler, with more inputs sharing its actions,
  held about 15 cycles' output unsold on the call market and coal settled 9-10% low). The
  plant turns every input it holds into output every ``cycle``.

  *The expected batch is counted per cycle*: the plant's exponential average of the inputs of
  its runs (weight ``memory`` on the newest) times how often the firm runs (the exponential
  average, weight ``memory``, of whether it ran, since its first run). A firm whose batch is
  overestimated (it bought cheap early on) bids the marginal value product there, below the
  price, buys nothing and does not run; with a per-run average it would keep the
  overestimate, and stall, for ever (the flows' prices settled about 5% low on the call
  market, and a two-input firm held one input without ever buying the other on an order book
  with scaled quantities). Counted per cycle its batch shrinks while it does not run, until
  its bids buy again. A firm that runs every cycle has the plant's batch exactly.
* ``source_limit`` (:class:`~mktsim.firms.Source`): its plant tops its stock up to its rate
  every ``cycle``, and it sells the stock on a schedule: linearly over ``pace * cycle``, at an
  asking price that falls by ``adjust`` per action while behind the schedule and rises while
  ahead, never below the best bid (on a continuous market) nor, while no bid rests, below the
  last trade. A source that sold at once would sell to whichever low bids happen to rest; and
  its own asking price falls behind the bids it sells to (it is behind its schedule while it
  sells at the best bid), so posted with no bid in the book it would rest near one tick and the
  next buyer would take it there (a good with one buyer, coal for a three-input assembler,
  traded at one tick each time the book ran out of bids).
* ``final_demand_limit`` (:class:`~mktsim.firms.FinalDemand` with fixed prices): a standing bid
  at each fixed price ``P`` for all it would buy at P, an equal share of its money per good
  (at least ``order_size`` units), renewed at every arrival: perfectly elastic demand, while
  its budget lasts. A bid of ``order_size`` units per arrival capped the chain's output at
  ``order_size * rate`` a good: beyond it the firms' output piled up unsold, their cash ran
  out and their bids, cut to their cash, set prices far below the shadow prices (a
  three-input assembler's inputs 9-22% low on the order book, a near-constant-returns one's
  about half). Fixed quantities are refused (a price-insensitive order has no limit price).

Every agent keeps at most one order per good: an action withdraws the previous one and posts
the new one cut to what the agent can commit. Arrivals are Poisson, drawn in chunks from the
population's stream ``<market>:arrivals:<population>``.

**Stationary prices.** In a flow economy whose inputs are all bought each cycle (raw supply is
perfectly inelastic) the batches settle at the planner's quantities, the marginal value bids at
those quantities are the derivatives of final value, and the chain's prices become the
planner's shadow prices (the back-propagated derivatives on a tree: for ``tupperware`` at
x = 4, 3/2, 1/6, 1/24). Every population of a chain must use the same ``cycle`` (a technology
turns a *batch* into output, so the sources' rates and the firms' batches are per cycle):
different cycles are refused before the run, as are constant-returns (Leontief) industries (no
marginal value product at a point), an input nobody offers (a raw stock held by owners who
never sell it: build the chain with ``flow=True``), and final demand in fixed quantities.

**Batch markets.** Where every crossing order of a batch trades at one uniform price (a call
market; a strategy knows one by its quote, which names the time of the next clearing, or by
the option ``clearing``), two rules above would set the wrong price, and change:

* *Sellers ask their reservation price, not the best bid.* On a continuous book each fill is at
  the resting bid's own price, so an ask at the best bid sells to the buyer who values the good
  most, at its value, and never asking below it keeps a seller from walking down to the lowest
  bids. In a batch an ask at the best bid crosses that bid alone: each clearing would fill only
  the top bid, at its price, and a flow would trade at its buyers' *highest* marginal value
  rather than the marginal one (ore settled about 30% high on ``two_inputs``). A unit already
  made costs nothing more; what it is worth to its seller is what it would fetch later, and the
  selling schedule finds that: the ask falls while the seller is behind its schedule and rises
  while ahead, and nothing lifts it to the best bid. An ask below the clearing price does not
  lower the price: only the marginal orders set a uniform price, so a small seller loses
  nothing by asking its reservation price (the gain from shading vanishes as the number of
  traders grows). Firms sell their output the same way, down over ``pace`` of a cycle after
  each run, instead of at the best bid.
* *A firm bids for the rest of its expected batch in one order*, all of it at the marginal
  value product of the batch (what the batch's last lot is worth: every lot of the cycle is a
  substitute for that one), rather than ``step`` of the batch at a time. A uniform price is the
  marginal order's, for the whole batch's volume. A firm whose quarter-batch bid has just
  filled has nothing in the book until its next action; a clearing that then meets fewer
  resting bids than the flow offers clears at the bids of firms already *beyond* their batch
  (the marginal value of a lot above it), and every unit of that clearing trades there. The
  error has one sign, so it does not average out: with quarter batches the chain's prices fell
  through each cycle and settled 2-3% low (``two_inputs``, seeds 0-9: ore 2.1-2.5% low on
  average, metal 0.6-0.9%). With the rest of its batch resting, a firm's demand stays in the
  book until it has its batch, and its order costs it nothing more (it pays the uniform price,
  not its limit; the order is cut to what its free cash reserves, as every order is).
* (*Final demand bids for all it would buy at P*, as on every market. In a batch this matters
  twice: the size of the bids sets the price as much as their limits: with ``order_size``
  units bid, the first asks fill them and the batch's other asks set the price at their own
  reservations, far below P.)

Buyers' limits are unchanged: a firm bids its marginal value product and final demand ``P``,
what a unit is worth to them, which a small trader in a uniform-price auction has no reason to
shade. On ``two_inputs`` with ``flow=True`` (seeds 0-9, the last third of a run of 300) ore and
metal then stay within 1.3% of the planner's shadow prices on the call market (0.3-0.6% low
on average; with quarter-batch bids ore was 2.5-3.2% off, 2.1-2.5% low on average).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from mktsim import strategies
from mktsim.errors import InvalidParameter
from mktsim.mechanism import Option, PopulationSlot, in_range, positive_float
from mktsim.orders import Cancel, Limit
from mktsim.production.planning import (
    marginal_value,
    planned_inputs,
    valuation_point,
    worth_price,
)
from mktsim.production.plant import Plant, check_supplied
from mktsim.strategies._arrivals import COMMON, PoissonStrategy

__all__ = ["FinalDemandLimit", "FirmLimit", "SourceLimit", "marginal_value_bid"]

Array = NDArray[np.float64]
_EPS = 1e-9

_fraction = in_range(0.0, 1.0, low_open=True)
_CYCLE = Option(5.0, "simulation time between production runs / top-ups", positive_float)
_ADJUST = Option(0.02, "relative change of the asking price per action", _fraction)
_CLEARING = Option(
    "auto",
    "how the market prices a trade: continuous (each fill at the resting order's price), "
    "batch (one uniform price per clearing), auto (batch when the quote names its next clearing)",
    str,
    choices=("auto", "continuous", "batch"),
)


def _rate(default: float) -> Option:
    return Option(default, "actions per agent per unit of time", positive_float)


def marginal_value_bid(p_out: float, marginal_product: float, tick: float) -> int:
    """Ticks of a bid at the marginal value product ``p_out * marginal_product``, rounded down
    (0 when it is not a positive finite price)."""
    v = p_out * marginal_product
    return math.floor(v / tick + _EPS) if math.isfinite(v) and v > 0 else 0


def batch_clearing(clearing: str, quote: Any) -> bool:
    """Whether asks are priced for a uniform-price batch market: ``clearing`` is ``"batch"``,
    or ``"auto"`` and the market's quote names the time of its next clearing (the public mark
    of a market that trades only at clearings)."""
    if clearing == "auto":
        return getattr(quote, "next_clearing", None) is not None
    return clearing == "batch"


class _Goods:
    """What :class:`PoissonStrategy` asks of a population's valuation: its kind, its default
    order size and the goods it posts in (each agent keeps one order per good)."""

    def __init__(self, kind: str, goods: list[int], default_size: float) -> None:
        self.kind = kind
        self.goods = goods
        self.default_size = default_size


def _one_cycle(ctx: Any, slot: PopulationSlot, cycle: float) -> None:
    """Refuse a chain whose populations produce on different cycles."""
    cycles: dict[str, float] = ctx.service("supply_chain:cycles", dict)
    for name, other in cycles.items():
        if other != cycle:
            raise InvalidParameter(
                f"population {slot.name!r} produces every cycle={cycle:g}, population "
                f"{name!r} every {other:g}: a chain's populations share one cycle (rates and "
                "batches are per cycle)"
            )
    cycles[slot.name] = cycle


class _ChainStrategy(PoissonStrategy):
    """Orders ``(agent, good, buy, ticks, lots)``: each decision sizes its own order."""

    emits: ClassVar[frozenset[type]] = frozenset({Limit, Cancel})
    kind: ClassVar[str] = ""
    goods_of: ClassVar[str] = ""

    def __init__(
        self, market: Any, ctx: Any, slot: PopulationSlot, options: Mapping[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        self.horizon = self.opts.get("pace", 1.0) * self.opts.get("cycle", 1.0)
        self.stock: list[float] = [0.0] * self.n
        self.since = 0.0
        self.adjust = self.opts.get("adjust", 0.0)
        #: Asking price per agent, numeraire per unit (0 before its first ask).
        self.asks: list[float] = [0.0] * self.n
        self.num_name = ctx.goods.names[self.num]
        self._top = getattr(market, "top", None)
        #: Asks priced for a uniform-price batch market (:func:`batch_clearing`).
        self.batch_market = batch_clearing(self.opts.get("clearing", "auto"), market.quote())

    def make_limits(self, ctx: Any, slot: PopulationSlot) -> Any:
        pop: Any = slot.population
        if pop.kind != self.kind:
            raise InvalidParameter(
                f"strategy {self.name!r} needs {self.kind}; population {slot.name!r} is {pop.kind}"
            )
        return _Goods(self.kind, self.traded(ctx, pop), 0.001)

    def traded(self, ctx: Any, pop: Any) -> list[int]:
        """Goods (indices) the population posts orders in."""
        raise NotImplementedError

    # -- reading the market
    def book(self, g: int) -> Any:
        """Good ``g``'s best bid and ask, last trade and estimate: the market's ``top`` where it
        has one, else its quote's entry for the good."""
        if self._top is not None:
            return self._top(self.names[g])
        return self.market.quote().goods[self.names[g]]

    def ticks(self, price: float | None) -> int | None:
        return None if price is None else round(price / self.tick)

    def free_cash(self, agent: int) -> int:
        """Numeraire the agent can commit, base units."""
        if self._available is None:
            return int(self._hv[agent, self.num])
        return int(self._available(agent, self.num_name))

    # -- placing
    def place(self, order: tuple[Any, ...]) -> None:
        agent, g, buy, ticks, lots = order
        self.post(agent, g, buy, ticks, lots)

    def execute(self, order: tuple[Any, ...]) -> None:
        """A decision reaches the market ``latency`` later as it was made."""
        self.place(order)

    def lots_of(self, units: float) -> int:
        """Whole lots in ``units`` (at least one)."""
        return max(1, round(units / self.lot)) if math.isfinite(units) else 1

    # -- selling a stock on a schedule
    def restock(self, held: Array) -> None:
        """Start a new selling schedule at the stocks ``held`` (units ``float64[n]``)."""
        self.stock = np.asarray(held, dtype=np.float64).tolist()
        self.since = float(self.env.now)

    def sell_paced(self, agent: int, g: int, lots: int) -> tuple[Any, ...] | None:
        """An ask for the stock held above the selling schedule (at most ``lots``), at the
        agent's asking price; None while it is ahead of schedule.

        The schedule runs the stock of the last restock down linearly over ``pace * cycle``.
        The asking price starts at one tick (never below the best bid) and moves by the factor
        ``1 -/+ adjust`` at each action, down while the agent is behind its schedule and up
        while ahead: a seller of a flow finds the price at which buyers take the flow, rather
        than dumping its stock on whichever bids happen to rest (those of the buyers who value
        the good least).
        """
        local = agent - self.start_row
        price = self.asks[local]
        if price <= 0:  # no price yet: start low and let the schedule raise it
            price = self.tick
        left = 1.0 - (float(self.env.now) - self.since) / self.horizon
        target = self.stock[local] * max(left, 0.0)
        excess = int((self._hv[agent, g] / self.base_units - target) / self.lot + _EPS)
        if excess < 1:
            self.asks[local] = price * (1.0 + self.adjust)
            return None
        price *= 1.0 - self.adjust
        self.asks[local] = price
        ticks = max(1, math.ceil(price / self.tick - _EPS))
        if not self.batch_market:
            state = self.book(g)
            best = self.ticks(state.best_bid)
            if best is None:
                # no bid to sell to: the asking price may have fallen far behind the bids it
                # sold to, so it waits at the last trade's price for the next bid
                best = self.ticks(state.last)
            if best is not None and best > ticks:  # never ask below what a buyer bids
                ticks = best
        return agent, g, False, ticks, min(lots, excess)

    def sell_now(self, agent: int, g: int, lots: int) -> tuple[Any, ...] | None:
        """An ask at the best bid for up to ``lots`` of the agent's stock (None without a bid
        or a whole lot)."""
        best = self.ticks(self.book(g).best_bid)
        have = int(self._hv[agent, g] / (self.lot * self.base_units) + _EPS)
        if best is None or have < 1:
            return None
        return agent, g, False, best, min(lots, have)


class FirmLimit(_ChainStrategy):
    """Bids for inputs at marginal value product planned on the input mix, sells its output to
    the best bid at once; its plant produces every ``cycle`` (see the module docstring)."""

    name = "firm_limit"
    doc = "bids for inputs at marginal value product, sells its output, produces (firms)"
    serves: ClassVar[frozenset[str]] = frozenset({"firms"})
    kind = "firms"
    options: ClassVar[Mapping[str, Option]] = {
        **COMMON,
        "rate": _rate(8.0),
        "order_size": Option(0.01, "units per bid before the first production run", positive_float),
        "fraction": Option(0.15, "ask size as a fraction of the last output", _fraction),
        "step": Option(
            0.25,
            "bid size as a fraction of the expected batch (on a batch market, at least the "
            "rest of the batch)",
            _fraction,
        ),
        "memory": Option(0.2, "weight of the newest batch in the expected batch", _fraction),
        "cycle": _CYCLE,
        "adjust": Option(
            0.02,
            "relative step per action of a price being searched for: a bid before the first "
            "run; on a batch market, the asking price of the output; on a continuous market, "
            "how far below its price estimate a firm values an input below its batch",
            _fraction,
        ),
        "pace": Option(
            0.6,
            "on a batch market, the output is sold down over this fraction of a cycle",
            _fraction,
        ),
        "clearing": _CLEARING,
    }

    def __init__(
        self, market: Any, ctx: Any, slot: PopulationSlot, options: Mapping[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        pop: Any = slot.population
        self.refuse(market, ctx, slot)
        self.pop = pop
        self.inputs = [int(j) for j in pop.input_index]
        _one_cycle(ctx, slot, self.opts["cycle"])
        self.output = pop.output_index
        self.rows = slot.rows
        k = len(self.inputs)
        self.fraction = self.opts["fraction"]
        self.first = self.opts["order_size"]
        self.step = self.opts["step"]
        #: Last bid per input, ticks ``float64[n, k]`` (0 before the first).
        self.offer = np.zeros((self.n, k))
        self.plant: Plant | None = None
        #: Expected batch and last output: the plant's, once started.
        self.batch = np.zeros((self.n, k))
        self.made = np.zeros(self.n)

    @classmethod
    def refuse(cls, market: Any, ctx: Any, slot: PopulationSlot) -> None:
        """Refuse, before the run, a constant-returns industry or an input nobody offers."""
        pop: Any = slot.population
        if pop.constant_returns:
            raise InvalidParameter(
                f"strategy 'firm_limit' needs decreasing-returns Firms; population {slot.name!r} "
                "has constant returns (a constant-returns industry has no marginal value "
                "product at a point)"
            )
        where = str(getattr(market, "name", "this market"))
        default = strategies.default_for("consumers", getattr(market, "accepts", ())) or ""
        for j in pop.input_index:
            # a consumer with zero marginal utility for the good never quotes it
            check_supplied(
                ctx,
                slot,
                int(j),
                idle=("idle",),
                default=default,
                consumer_sells=lambda mu_good, mu_money: mu_good > 0,
                refusal=f"nobody offers under {where}: its holders value only other goods "
                "and no source or firm supplies it (a supply chain on limit orders needs its "
                "resources to flow: build it with flow=True, e.g. --set flow=True)",
            )

    def traded(self, ctx: Any, pop: Any) -> list[int]:
        return [*(int(j) for j in pop.input_index), pop.output_index]

    def start(self) -> None:
        super().start()
        self.plant = Plant.of(
            self.ctx, self.slot, cycle=self.opts["cycle"], memory=self.opts["memory"]
        )
        self.made = self.plant.made
        #: How often each firm runs: the exponential average (weight ``memory``) of whether it
        #: ran, over the cycles since its first run.
        self.runs = np.ones(self.n)
        self.batch = self.plant.batch.copy()
        self.plant.listen(self.cycled)

    def cycled(self, produced: NDArray[np.bool_], amounts: Array) -> None:
        """After each production run: count the expected batch per cycle, the plant's (per
        run) times how often the firm runs (see the module docstring), and on a batch market
        restart the output's selling schedule."""
        if self.batch_market:
            self.restock(self.ctx.ledger.holdings[self.rows, self.output] / self.base_units)
        assert self.plant is not None
        m = self.plant.memory
        started = (self.plant.batch > 0).any(axis=1)  # cycles count from a firm's first run
        self.runs = np.where(started, (1.0 - m) * self.runs + m * produced, 1.0)
        self.batch = self.plant.batch * self.runs[:, None]

    def estimate(self, g: int) -> float | None:
        """The market's estimate of good ``g`` from its trades (None before any)."""
        state = self.book(g)
        if state.last is None:
            return None
        est = getattr(state, "estimate", None)
        return state.last if est is None else float(est)

    def output_value(self) -> float | None:
        """What the output is worth: the market's estimate; before any trade, the best bid."""
        est = self.estimate(self.output)
        if est is not None:
            return est
        state = self.book(self.output)
        return state.best_bid if state.best_bid is not None else state.last

    def decide(self, agent: int, u1: float, u2: float) -> tuple[Any, ...] | None:
        local = agent - self.start_row
        k = int(u1 * (len(self.inputs) + 1))
        if k == len(self.inputs):
            # a stock left over from earlier runs is sold down too, not carried for ever
            size = max(self.made[local], self._hv[agent, self.output] / self.base_units)
            lots = self.lots_of(self.fraction * size) if size > 0 else 1
            if self.batch_market:
                return self.sell_paced(agent, self.output, lots)
            return self.sell_now(agent, self.output, lots)
        p_out = self.output_value()
        if p_out is None:
            return None
        g = self.inputs[k]
        held = np.asarray(self.ctx.ledger.holdings[self.rows][:, self.inputs]) / self.base_units
        batch = self.batch[local, k]
        lots = self.lots_of(self.step * batch if batch > 0 else self.first)
        if self.batch_market and batch > held[local, k]:
            # the rest of the batch in one order, all of it worth the batch's marginal lot
            lots = max(lots, self.lots_of(batch - held[local, k]))
        plan = None
        if batch <= 0 or (len(self.inputs) > 1 and (np.delete(self.batch[local], k) <= 0).any()):
            p_in = [self.estimate(j) for j in self.inputs]
            if all(p is not None for p in p_in):
                plan = planned_inputs(self.pop.technology, p_out, np.array(p_in, dtype=float))
        if batch <= 0 and plan is not None:
            # a first bid above ``step`` of what the firm plans to use would value its lot far
            # beyond the plan, below the price, and never fill (``order_size`` is in units,
            # whatever the economy's scale)
            lots = min(lots, self.lots_of(self.step * plan[local, k]))
        z = valuation_point(
            held, self.batch, k, extra=lots * self.lot / 2, plan=plan, fallback=self.first
        )
        value = marginal_value(self.pop.technology, p_out, z, local, k)
        price = self.estimate(g)
        low = held[local, k] + self.lot / 2
        if batch > 0 and price is not None and value < price and low < batch:
            # worth less than its price at the batch: buy up to the holding worth the price,
            # not all of the batch or nothing; on a continuous book a step below it (see the
            # module docstring)
            target = price if self.batch_market else price * (1.0 - self.adjust)
            q = worth_price(self.pop.technology, p_out, z, local, k, target, low, batch)
            if q is not None:
                z[local, k] = q
                value = marginal_value(self.pop.technology, p_out, z, local, k)
                rest = self.lots_of(q - held[local, k] + self.lot / 2)
                lots = rest if self.batch_market else min(lots, rest)
        ticks = math.floor(value / self.tick + _EPS)
        # before the first run there is no batch to value the lot in: take the best ask, or
        # search upwards from one tick, rather than bid the marginal product at 0
        if batch <= 0:
            state = self.book(g)
            ask = self.ticks(state.best_ask)
            if self.batch_market and state.last is not None:
                # in a batch the price is the marginal bid's, above the asks: a first bid at
                # the best ask would lose to every firm that has a batch, for ever
                ask = max(ask or 0, self.ticks(state.last) or 0)
            if ask is None:
                ask = max(1, math.ceil(self.offer[local, k] * (1.0 + self.adjust)))
            ticks = min(ticks, ask)
        # a cash-short firm still bids for one lot (the market cuts larger orders to its cash)
        ticks = min(ticks, self.free_cash(agent) // self.tick_base)
        if ticks < 1:
            return None
        self.offer[local, k] = ticks
        return agent, g, True, ticks, lots


class SourceLimit(_ChainStrategy):
    """Sells its stock on a schedule; its plant tops it up to its rate every ``cycle``."""

    name = "source_limit"
    doc = "sells a resource flow on a schedule (sources)"
    serves: ClassVar[frozenset[str]] = frozenset({"source"})
    kind = "source"
    options: ClassVar[Mapping[str, Option]] = {
        **COMMON,
        "rate": _rate(20.0),
        "fraction": Option(0.05, "ask size as a fraction of the rate", _fraction),
        "cycle": _CYCLE,
        "pace": Option(
            0.6, "the stock is sold down evenly over this fraction of a cycle", _fraction
        ),
        "adjust": _ADJUST,
        "clearing": _CLEARING,
    }

    def __init__(
        self, market: Any, ctx: Any, slot: PopulationSlot, options: Mapping[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        pop: Any = slot.population
        self.good = pop.good_index
        self.sizes = [self.lots_of(self.opts["fraction"] * r) for r in pop.rate.tolist()]
        _one_cycle(ctx, slot, self.opts["cycle"])

    def traded(self, ctx: Any, pop: Any) -> list[int]:
        return [pop.good_index]

    def start(self) -> None:
        super().start()
        self.restock(self.ctx.ledger.holdings[self.slot.rows, self.good] / self.base_units)
        plant = Plant.of(self.ctx, self.slot, cycle=self.opts["cycle"])
        plant.listen(lambda topped, stock: self.restock(stock))

    def decide(self, agent: int, u1: float, u2: float) -> tuple[Any, ...] | None:
        return self.sell_paced(agent, self.good, self.sizes[agent - self.start_row])


class FinalDemandLimit(_ChainStrategy):
    """A standing bid at each fixed price, renewed to ``order_size`` units at every arrival."""

    name = "final_demand_limit"
    doc = "standing bids at fixed final prices (final demand)"
    serves: ClassVar[frozenset[str]] = frozenset({"final_demand"})
    kind = "final_demand"
    options: ClassVar[Mapping[str, Option]] = {
        **COMMON,
        "rate": _rate(1.0),
        "order_size": Option(
            1.0,
            "least units of each standing bid (it bids for what its money buys)",
            positive_float,
        ),
        "clearing": _CLEARING,
    }

    def __init__(
        self, market: Any, ctx: Any, slot: PopulationSlot, options: Mapping[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        pop: Any = slot.population
        self.refuse(market, ctx, slot)
        self.bids: list[tuple[int, int]] = []
        for good, price in pop.prices.items():
            ticks = math.floor(price / self.tick + _EPS)
            if ticks < 1:
                raise InvalidParameter(
                    f"price of {good!r} for final demand {slot.name!r}(={price}) is below one "
                    f"tick ({self.tick})"
                )
            self.bids.append((pop.goods.index(good), ticks))

    @classmethod
    def refuse(cls, market: Any, ctx: Any, slot: PopulationSlot) -> None:
        """Refuse, before the run, final demand in fixed quantities."""
        pop: Any = slot.population
        if pop.quantities:
            raise InvalidParameter(
                f"final demand {slot.name!r} orders fixed quantities "
                f"{dict(pop.quantities)}: limit orders need a limit price (use prices)"
            )

    def traded(self, ctx: Any, pop: Any) -> list[int]:
        return [pop.goods.index(g) for g in (*pop.prices, *pop.quantities)]

    def decide(self, agent: int, u1: float, u2: float) -> tuple[Any, ...] | None:
        g, ticks = self.bids[min(int(u1 * len(self.bids)), len(self.bids) - 1)]
        # all it would buy at P: an equal share of its money for each good
        share = self._hv[agent, self.num] // (len(self.bids) * ticks * self.tick_base)
        return agent, g, True, ticks, max(self.lots, int(share))
