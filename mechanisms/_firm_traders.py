"""Order-book behaviours of a supply chain: firms, sources of raw resources, final demand.

Prices travel backwards as bids and goods forwards as production, one ``cycle`` per stage:

* ``firm`` (:class:`~mktsim.firms.Firms` with decreasing returns): a price taker. It values its
  output at the market's estimate (recent trade prices; before any trade, the best bid). For an
  input it bids for lots of ``step`` of its expected batch (an exponential average of the
  inputs of its runs, weight ``memory`` on the newest) at the *marginal value product*
  ``p_out f'_k(x)`` of the lot (at its midpoint), with ``x`` never below the expected batch:
  early in a cycle it holds few units, but the lot will be part of a whole batch, and concave
  technologies have near-infinite marginal products at 0. Before its first run (no batch yet)
  it bids for ``order_size`` units at no more than the best ask, or, without an ask, at a
  price that starts at one tick and rises by ``adjust`` per action: bids at the marginal
  products at 0 would drain the chain's working capital to the first sellers. A bid is capped
  at what its free cash pays for one lot. It sells its output at the best bid as soon as it
  has it, ``fraction`` of its last output per ask. Every ``cycle`` each firm turns every input
  it holds into output (one :meth:`~mktsim.ledger.Ledger.produce`, after the population's
  ``production_time``).
* ``source`` (:class:`~mktsim.firms.Source`): tops its stock up to its rate every ``cycle`` (a
  rate per cycle) and sells it on a schedule: linearly over ``pace * cycle``, at an asking
  price that falls by ``adjust`` per action while behind the schedule and rises while ahead,
  never below the best bid. A source that sold at once would sell to whichever low bids
  happen to rest.
* ``final_demand`` (:class:`~mktsim.firms.FinalDemand` with fixed prices): a standing bid at each
  fixed price ``P``, renewed to ``order_size`` units at every arrival (perfectly elastic demand,
  while its budget lasts). Fixed quantities are refused (a price-insensitive order has no limit
  price).

**Stationary prices.** In a flow economy whose inputs are all bought each cycle (raw supply is
perfectly inelastic) the batches settle at the planner's quantities, the marginal value bids
at those quantities are the derivatives of final value, and the chain's prices become the
back-propagated derivatives (for ``tupperware`` at x = 4: 3/2, 1/6, 1/24, reached within 5%
in a few dozen cycles, see ``tests/test_firms_book.py``). Every population of a chain must use
the same ``cycle``: a technology turns a *batch* into output, so the rates of sources and the
batches of firms are per cycle. Constant-returns (Leontief) industries have no marginal value
product at a point and are refused.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import simpy
from mktsim.mechanisms._batches import check_supplied, production_runs
from mktsim.mechanisms._traders import BEHAVIOURS, COMMON, Behaviour
from numpy.typing import NDArray

from mktsim.errors import InvalidParameter
from mktsim.firms import FinalDemand, Firms, Source
from mktsim.goods import BASE_UNITS
from mktsim.mechanism import Option, PopulationSlot, in_range, positive_float

if TYPE_CHECKING:
    from mktsim.mechanisms.order_book import OrderBookMarket

__all__ = ["FinalBuyer", "FirmTrader", "SourceSeller", "marginal_value_bid"]

Array = NDArray[np.float64]
_EPS = 1e-9


_fraction = in_range(0.0, 1.0, low_open=True)
_CYCLE = Option(5.0, "simulation time between production runs / top-ups", positive_float)
_ADJUST = Option(0.02, "relative change of the asking price per action", _fraction)


def _rate(default: float) -> Option:
    return Option(default, "actions per agent per unit of time", positive_float)


def marginal_value_bid(p_out: float, marginal_product: float, tick: float) -> int:
    """Ticks of a bid at the marginal value product ``p_out * marginal_product``, rounded down
    (0 when it is not a positive finite price)."""
    v = p_out * marginal_product
    return math.floor(v / tick + _EPS) if math.isfinite(v) and v > 0 else 0


class _Flow(Behaviour):
    """Orders ``(agent, good, buy, ticks, lots)``: each decision sizes its own order."""

    needs_limits = False

    def __init__(self, market: OrderBookMarket, slot: PopulationSlot) -> None:
        super().__init__(market, slot)
        self.lot = market.lot
        self.horizon = self.opts.get("pace", 1.0) * self.opts.get("cycle", 1.0)
        self.stock: list[float] = [0.0] * self.n
        self.since = 0.0
        self.adjust = self.opts.get("adjust", 0.0)
        #: Asking price per agent, numeraire per unit (0 before its first ask).
        self.asks: list[float] = [0.0] * self.n

    def place(self, order: tuple[Any, ...]) -> None:
        agent, g, buy, ticks, lots = order
        self._post(agent, g, buy, ticks, lots)

    def execute(self, order: tuple[Any, ...]) -> None:
        self.place(order)

    def lots_of(self, units: float) -> int:
        """Whole lots in ``units`` (at least one)."""
        return max(1, round(units / self.lot)) if math.isfinite(units) else 1

    def restock(self, held: Array) -> None:
        """Start a new selling schedule at the stocks ``held`` (units ``float64[n]``)."""
        self.stock = np.asarray(held, dtype=np.float64).tolist()
        self.since = float(self.market._env.now)

    def sell_paced(self, agent: int, g: int, lots: int) -> tuple[Any, ...] | None:
        """An ask for the stock held above the selling schedule (at most ``lots``), at the
        agent's asking price; None while it is ahead of schedule or has no price yet.

        The schedule runs the stock of the last restock down linearly over ``pace * cycle``.
        The asking price starts at one tick (never below the best bid) and moves by the factor
        ``1 -/+ adjust`` at each action, down while the agent is behind its schedule and up
        while ahead: a seller of a flow finds the price at which buyers take the flow, rather
        than dumping its stock on whichever bids happen to rest (those of the buyers who value
        the good least).
        """
        m = self.market
        local = agent - self.start_row
        price = self.asks[local]
        if price <= 0:  # no price yet: start low and let the schedule raise it
            price = self.tick
        left = 1.0 - (float(m._env.now) - self.since) / self.horizon
        target = self.stock[local] * max(left, 0.0)
        excess = int((m._hv[agent, g] / BASE_UNITS - target) / self.lot + _EPS)
        if excess < 1:
            self.asks[local] = price * (1.0 + self.adjust)
            return None
        price *= 1.0 - self.adjust
        self.asks[local] = price
        ticks = max(1, math.ceil(price / self.tick - _EPS))
        best = m._books[g].best_bid
        if best is not None and best > ticks:  # never ask below what a buyer bids
            ticks = best
        return agent, g, False, ticks, min(lots, excess)

    def sell_now(self, agent: int, g: int, lots: int) -> tuple[Any, ...] | None:
        """An ask at the best bid for up to ``lots`` of the agent's stock (None without a bid
        or a whole lot)."""
        m = self.market
        best = m._books[g].best_bid
        have = int(m._hv[agent, g] / (self.lot * BASE_UNITS) + _EPS)
        if best is None or have < 1:
            return None
        return agent, g, False, best, min(lots, have)


class FirmTrader(_Flow):
    """Bids for inputs at marginal value product, sells its output to the best bid at once,
    produces every ``cycle`` (see the module docstring)."""

    name = "firm"
    options: ClassVar[Mapping[str, Option]] = {
        **COMMON,
        "rate": _rate(8.0),
        "order_size": Option(0.01, "units per bid before the first production run", positive_float),
        "fraction": Option(0.15, "ask size as a fraction of the last output", _fraction),
        "step": Option(0.25, "bid size as a fraction of the expected batch", _fraction),
        "memory": Option(0.2, "weight of the newest batch in the expected batch", _fraction),
        "cycle": _CYCLE,
        "adjust": Option(0.02, "relative rise per action of a bid before the first run", _fraction),
    }

    def __init__(self, market: OrderBookMarket, slot: PopulationSlot) -> None:
        super().__init__(market, slot)
        pop = slot.population
        if not isinstance(pop, Firms) or pop.constant_returns:
            raise InvalidParameter(
                f"behaviour 'firm' needs decreasing-returns Firms; population {slot.name!r} is "
                f"{pop.kind}{' with constant returns' if isinstance(pop, Firms) else ''} (a "
                "constant-returns industry has no marginal value product at a point)"
            )
        self.pop: Firms = pop
        self.inputs = [int(j) for j in pop.input_index]
        for j in self.inputs:
            # a consumer with zero marginal utility for the good never quotes it
            check_supplied(
                market.ctx,
                slot,
                j,
                idle=(),
                default="utility",
                consumer_sells=lambda mu_good, mu_money: mu_good > 0,
                refusal="nobody offers under order_book: its holders value only other goods "
                "and no source or firm supplies it (a supply chain under the book needs its "
                "resources to flow: build it with flow=True, e.g. --set flow=True)",
            )
        self.output = pop.output_index
        self.rows = slot.rows
        k = len(self.inputs)
        #: Expected batch (inputs of the next run), units ``float64[n, k]``; 0 before any run.
        self.batch = np.zeros((self.n, k))
        #: Output of the last run, units ``float64[n]``.
        self.made = np.zeros(self.n)
        self.fraction = self.opts["fraction"]
        self.memory = self.opts["memory"]
        self.first = self.opts["order_size"]
        self.step = self.opts["step"]
        #: Last bid per input, ticks ``float64[n, k]`` (0 before the first).
        self.offer = np.zeros((self.n, k))

    def start(self, env: simpy.Environment) -> None:
        super().start(env)
        env.process(
            production_runs(
                env,
                self.market._ledger,
                self.slot,
                self.opts["cycle"],
                self.batch,
                self.memory,
                self._after_run,
            )
        )

    def _output_value(self) -> float | None:
        m = self.market
        est = m._est[self.output]
        if est is not None:
            return est
        best = m._books[self.output].best_bid
        return m.price_of(best) if best is not None else m._last[self.output]

    def decide(self, agent: int, u1: float, u2: float) -> tuple[Any, ...] | None:
        local = agent - self.start_row
        k = int(u1 * (len(self.inputs) + 1))
        m = self.market
        if k == len(self.inputs):
            lots = self.lots_of(self.fraction * self.made[local]) if self.made[local] > 0 else 1
            return self.sell_now(agent, self.output, lots)
        p_out = self._output_value()
        if p_out is None:
            return None
        g = self.inputs[k]
        held = np.asarray(m._h[self.rows][:, self.inputs], dtype=np.float64) / BASE_UNITS
        batch = self.batch[local, k]
        lots = self.lots_of(self.step * batch if batch > 0 else self.first)
        x = np.maximum(held, self.batch)
        x[local, k] = max(held[local, k] + lots * self.lot / 2, batch)
        with np.errstate(all="ignore"):
            mp = float(self.pop.technology.marginal_products(x)[local, k])
        ticks = marginal_value_bid(p_out, mp, self.tick)
        # before the first run there is no batch to value the lot in: take the best ask, or
        # search upwards from one tick, rather than bid the marginal product at 0
        if batch <= 0:
            ask = m._books[g].best_ask
            if ask is None:
                ask = max(1, math.ceil(self.offer[local, k] * (1.0 + self.adjust)))
            ticks = min(ticks, ask)
        # a cash-short firm still bids for one lot (the book cuts larger orders to its cash)
        ticks = min(ticks, m.free_cash(agent) // m.tick_base)
        if ticks < 1:
            return None
        self.offer[local, k] = ticks
        return agent, g, True, ticks, lots

    def _after_run(self, busy: NDArray[np.bool_], y: Array) -> None:
        self.made[busy] = y[busy]


class SourceSeller(_Flow):
    """Sells its stock on a schedule; tops it up to its rate every ``cycle``."""

    name = "source"
    options: ClassVar[Mapping[str, Option]] = {
        **COMMON,
        "rate": _rate(20.0),
        "fraction": Option(0.05, "ask size as a fraction of the rate", _fraction),
        "cycle": _CYCLE,
        "pace": Option(
            0.6, "the stock is sold down evenly over this fraction of a cycle", _fraction
        ),
        "adjust": _ADJUST,
    }

    def __init__(self, market: OrderBookMarket, slot: PopulationSlot) -> None:
        super().__init__(market, slot)
        pop = slot.population
        if not isinstance(pop, Source):
            raise InvalidParameter(
                f"behaviour 'source' needs a Source; population {slot.name!r} is {pop.kind}"
            )
        self.pop: Source = pop
        self.good = pop.good_index
        self.sizes = [self.lots_of(self.opts["fraction"] * r) for r in pop.rate.tolist()]

    def start(self, env: simpy.Environment) -> None:
        super().start(env)
        self.restock(self.market._h[self.slot.rows, self.good] / BASE_UNITS)
        env.process(self._extract(env))

    def decide(self, agent: int, u1: float, u2: float) -> tuple[Any, ...] | None:
        return self.sell_paced(agent, self.good, self.sizes[agent - self.start_row])

    def _extract(self, env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        ledger = self.market._ledger
        cap = np.floor(self.pop.rate * BASE_UNITS).astype(np.int64)
        g = len(self.market._goods)
        while True:
            yield env.timeout(self.opts["cycle"])
            made = np.zeros((self.n, g), dtype=np.int64)
            made[:, self.good] = np.maximum(cap - ledger.holdings[self.slot.rows, self.good], 0)
            ledger.produce(self.slot.row_ids, np.zeros_like(made), made, self.pop.name)
            self.restock(ledger.holdings[self.slot.rows, self.good] / BASE_UNITS)


class FinalBuyer(_Flow):
    """A standing bid at each fixed price, renewed to ``order_size`` units at every arrival."""

    name = "final_demand"
    options: ClassVar[Mapping[str, Option]] = {
        **COMMON,
        "rate": _rate(1.0),
        "order_size": Option(1.0, "units of each standing bid", positive_float),
    }

    def __init__(self, market: OrderBookMarket, slot: PopulationSlot) -> None:
        super().__init__(market, slot)
        pop = slot.population
        if not isinstance(pop, FinalDemand):
            raise InvalidParameter(
                f"behaviour 'final_demand' needs FinalDemand; population {slot.name!r} is "
                f"{pop.kind}"
            )
        if pop.quantities:
            raise InvalidParameter(
                f"final demand {slot.name!r} orders fixed quantities "
                f"{dict(pop.quantities)}: the order book needs a limit price (use prices)"
            )
        tick = market.tick
        self.bids: list[tuple[int, int]] = []
        for good, price in pop.prices.items():
            ticks = math.floor(price / tick + _EPS)
            if ticks < 1:
                raise InvalidParameter(
                    f"price of {good!r} for final demand {slot.name!r}(={price}) is below one "
                    f"tick ({tick})"
                )
            self.bids.append((pop.goods.index(good), ticks))

    def decide(self, agent: int, u1: float, u2: float) -> tuple[Any, ...] | None:
        g, ticks = self.bids[min(int(u1 * len(self.bids)), len(self.bids) - 1)]
        return agent, g, True, ticks, self.lots


BEHAVIOURS.update({"firm": FirmTrader, "source": SourceSeller, "final_demand": FinalBuyer})
