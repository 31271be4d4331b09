"""What the Poisson-arrival strategies share: options, arrivals, limits and order placement.

Every strategy here is one SimPy process per population. Arrivals are Poisson: gaps are
exponential with the population's total rate ``rate * size`` and the acting agent is uniform
over the population, both drawn in vectorised chunks from the population's own stream
(``<market>:arrivals:<population>``, e.g. ``order_book:arrivals:buyers``), together with two
uniforms per action that the strategy turns into a choice and a price. With a per-agent
``latency`` the agent decides at its arrival (seeing the market then) and its order reaches the
market ``latency`` later, unless the unit it was for has traded meanwhile.

What an order is worth to an agent comes from its valuation (:mod:`mktsim.valuation`), one
agent at a time: the value or cost of an induced-value trader's next unit, or a consumer's
marginal rate of substitution of a good for the numeraire at its current holdings (a consumer
may buy or sell any good, chosen uniformly with the side on each action).

Each agent keeps at most one resting order per good: a new action withdraws the previous one
(a ``Cancel``, sent only if the market says it still rests), then posts a ``Limit`` cut to what
the agent can commit. Prices are whole ticks and quantities whole lots of the market's grids
(the quote's ``tick`` and ``lot``).
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterator, Mapping
from functools import partial
from typing import Any, ClassVar

import numpy as np
import simpy
from numpy.typing import NDArray

from mktsim.errors import InvalidParameter
from mktsim.market import prices_reader
from mktsim.mechanism import Option, PopulationSlot
from mktsim.orders import BUY, SELL, Cancel, Limit
from mktsim.valuation import ConsumerValuation, InducedValuation, ScalarForm

__all__ = ["CHUNK", "COMMON", "PoissonStrategy", "price_of", "to_ticks"]

Array = NDArray[np.float64]
#: Arrivals drawn per chunk.
CHUNK = 2048
EPS = 1e-9
#: Grids for markets whose quotes name none.
DEFAULT_TICK = 0.001
DEFAULT_LOT = 0.001


def _integral(x: float) -> int | None:
    r = round(x)
    return int(r) if r >= 1 and abs(x - r) <= 1e-9 * max(1.0, abs(x)) else None


def price_of(ticks: int, tick: float) -> float:
    """Ticks -> numeraire per unit, as an order book reports them (``ticks / (1 / tick)`` when
    that is an integer: 1.234 rather than 1.2340000000000002)."""
    k = _integral(1.0 / tick)
    return ticks / k if k is not None else ticks * tick


def to_ticks(price: float, tick: float) -> int:
    """A price on the grid back to whole ticks."""
    return round(price / tick)


_new = object.__new__
_put = object.__setattr__


def grid_limit(agent: int, good: str, side: str, qty: float, price: float) -> Limit:
    """``Limit(agent, good, side, qty, price)`` without running its validators, for an order
    built from values that satisfy them by construction (an agent of the population's rows, a
    good's name, :data:`BUY` or :data:`SELL`, whole lots and ticks as positive floats): one is
    built on every action, and checking it again costs as much as the rest of building it."""
    order = _new(Limit)
    _put(order, "agent", agent)
    _put(order, "good", good)
    _put(order, "side", side)
    _put(order, "qty", qty)
    _put(order, "price", price)
    _put(order, "ioc", False)
    return order


def grid_cancel(agent: int, good: str, order_id: int) -> Cancel:
    """``Cancel(agent, good, order_id)`` without its validators, for an id the market gave the
    agent (see :func:`grid_limit`)."""
    order = _new(Cancel)
    _put(order, "agent", agent)
    _put(order, "good", good)
    _put(order, "order_id", order_id)
    return order


# ---- limits: what an order is worth to an agent ------------------------------------------
class InducedLimits:
    """Next-unit values (buyers) or costs (sellers) of an induced-value population."""

    kind = "induced"
    default_size = 1.0

    def __init__(self, ctx: Any, slot: PopulationSlot) -> None:
        self.unit_base = ctx.goods.whole_base
        self.valuation = InducedValuation(slot.population, self.unit_base)
        self.start = slot.rows.start
        self.n = slot.population.size
        self.good = self.valuation.good
        self.goods = [self.good]
        self.buy = self.valuation.buyer
        self.holdings = ctx.ledger.holdings
        self._hv = memoryview(self.holdings)
        self._units = self.valuation.units
        self._limits = self.valuation.limits

    @property
    def unit_limits(self) -> list[list[float]]:
        """Each agent's unit values (buyers) or costs (sellers), in trading order."""
        return self._limits

    @property
    def schedule_lengths(self) -> list[int]:
        """Each agent's number of units per period."""
        return self._units

    def unit(self, local: int) -> int:
        """Index of the agent's next unit, -1 when it has none left."""
        return self.valuation.next_unit(local, self._hv[self.start + local, self.good])

    def pick(self, local: int, u: float) -> tuple[int, bool, float, int] | None:
        """``(good, buy, limit, unit)`` of the agent's next order, or None (:meth:`unit`
        written out: every arrival asks)."""
        held = self._hv[self.start + local, self.good]
        units = self._units[local]
        unit = self.unit_base
        k = held // unit if self.buy else units - (held + unit - 1) // unit
        if k < 0 or k >= units:
            return None
        return self.good, self.buy, self._limits[local][k], k

    def all_limits(self, good: int) -> tuple[Array, Array]:
        """Every agent's limit (buy side, sell side); NaN where it cannot act."""
        none = np.full(self.n, np.nan)
        if good != self.good:
            return none, none
        held = self.holdings[self.start : self.start + self.n, self.good]
        lim = self.valuation.limits_of(held)
        return (lim, none) if self.buy else (none, lim)


class MarginalLimits:
    """Consumers' marginal rates of substitution for the numeraire at current holdings,
    computed for the acting agent only (a preference shock is seen at the next action)."""

    kind = "consumers"
    default_size = 0.03

    def __init__(self, ctx: Any, slot: PopulationSlot) -> None:
        self.ctx = ctx
        self.base_units = ctx.goods.base_units
        self.slot = slot
        self.start = slot.rows.start
        self.n = slot.population.size
        self.num = ctx.goods.numeraire_index
        self.goods = [j for j in range(len(ctx.goods)) if j != self.num]
        self.holdings = ctx.ledger.holdings
        # a flat view: a row is the slice [row * goods, (row + 1) * goods)
        self._flat = memoryview(self.holdings.reshape(-1))
        self._width = len(ctx.goods)
        self._base = float(self.base_units)
        self.pop: Any = None
        self.valuation: ConsumerValuation | None = None
        self._form: ScalarForm | None = None
        # the populations as they are now, by name (what ctx.population(slot) reads)
        self._now, self._name = ctx.current, slot.name

    def current(self) -> ConsumerValuation:
        """The valuation of the population as it is now (shocks replace it)."""
        pop = self.ctx.population(self.slot)
        if pop is not self.pop or self.valuation is None:
            self.pop = pop
            self.valuation = ConsumerValuation(pop, self.num)
            self._form = self.valuation.form
        return self.valuation

    def units(self, local: int) -> Array:
        """The agent's holdings in units ``float64[g]``."""
        return self.holdings[self.start + local] / self.base_units

    def agent(self, local: int) -> tuple[ScalarForm, list[float]]:
        """The population's valuation in scalar arithmetic as it is now (ask it for agent
        ``local``) and the agent's holdings in units as Python floats (each as :meth:`units` has
        it: the integer rounded to a float, then divided), in one call: every action of a
        consumer asks."""
        form = self._form
        if form is None or self._now[self._name] is not self.pop:  # ctx.population(slot)
            form = self.current().form
        start = (self.start + local) * self._width
        base, flat = self._base, self._flat
        if self._width == 3:  # money and two goods, the usual economy: no slice to make
            return form, [flat[start] / base, flat[start + 1] / base, flat[start + 2] / base]
        return form, [h / base for h in flat[start : start + self._width]]

    def mrs(self, local: int, good: int) -> float:
        form, x = self.agent(local)
        return form.mrs(local, x, good)

    def pick(self, local: int, u: float) -> tuple[int, bool, float, int] | None:
        k = int(u * 2 * len(self.goods))
        g = self.goods[k >> 1]
        m = self.mrs(local, g)
        if not (m > 0 and math.isfinite(m)):
            return None
        return g, not (k & 1), m, 0

    def unit(self, local: int) -> int:
        return 0

    def all_limits(self, good: int) -> tuple[Array, Array]:
        x = self.holdings[self.start : self.start + self.n] / self.base_units
        m = self.current().mrs(x)[:, good].copy()
        m[~(np.isfinite(m) & (m > 0))] = np.nan
        return m, m


def limits_for(ctx: Any, slot: PopulationSlot, strategy: str) -> InducedLimits | MarginalLimits:
    """The limit provider of a population, by kind."""
    pop = slot.population
    if pop.kind == "induced":
        return InducedLimits(ctx, slot)
    if hasattr(pop, "utility"):
        return MarginalLimits(ctx, slot)
    raise InvalidParameter(
        f"population {slot.name!r} ({pop.kind}) has neither unit values nor a utility: "
        f"strategy {strategy!r} cannot price its orders (use 'external')"
    )


# ---- options ------------------------------------------------------------------------------
def optional_rate(v: Any) -> float | None:
    if v is None:
        return None
    x = float(v)
    if not math.isfinite(x) or x <= 0:
        raise ValueError("must be > 0 and finite")
    return x


def _latency(v: Any) -> Any:
    if v is None:
        return None
    arr = np.asarray(v, dtype=float)
    if arr.ndim > 1 or not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError("must be a number or one number per agent, each >= 0 and finite")
    return arr


COMMON: dict[str, Option] = {
    "rate": Option(
        None, "actions per agent per unit of time (None: the market's rate)", optional_rate
    ),
    "latency": Option(
        None,
        "time from decision to the market, one number or one per agent (None: the "
        "population's delay)",
        _latency,
    ),
    "order_size": Option(
        None,
        "units per order (None: one unit for induced traders, 0.03 for consumers)",
        optional_rate,
    ),
}


# ---- the strategy base ------------------------------------------------------------------------
class PoissonStrategy:
    """Base: options, the arrival process, and placing one order for one agent.

    Subclasses define ``decide(agent, u1, u2)`` returning an order ``(agent, good, buy, ticks,
    unit)`` or None, from two uniforms on [0, 1).
    """

    name: ClassVar[str] = ""
    doc: ClassVar[str] = ""
    emits: ClassVar[frozenset[type]] = frozenset({Limit, Cancel})
    serves: ClassVar[frozenset[str]] = frozenset({"consumers", "induced"})
    options: ClassVar[Mapping[str, Option]] = COMMON

    def __init__(
        self, market: Any, ctx: Any, slot: PopulationSlot, options: Mapping[str, Any]
    ) -> None:
        self.market = market
        self.ctx = ctx
        self.base_units = ctx.goods.base_units
        self.slot = slot
        self.opts = dict(options)
        self.env: simpy.Environment = ctx.env
        pop = slot.population
        self.n = pop.size
        self.start_row = slot.rows.start
        self.prefix = str(getattr(market, "name", "market"))
        quote = market.quote()
        self.tick = float(getattr(quote, "tick", None) or DEFAULT_TICK)
        self.lot = float(getattr(quote, "lot", None) or DEFAULT_LOT)
        self.tick_base = round(self.tick * self.lot * self.base_units)
        self.lot_base = round(self.lot * self.base_units)
        self._per_unit = _integral(1.0 / self.tick)
        self.rate = self.opts["rate"] or float(getattr(market, "rate", 1.0))
        ctx.check_rate("rate", self.rate, self.n, slot.name)
        latency = self.opts["latency"]
        lat = np.asarray(pop.delay if latency is None else latency, dtype=float)
        if lat.ndim == 0:
            lat = np.full(self.n, float(lat))
        if lat.shape != (self.n,):
            raise InvalidParameter(
                f"latency of population {slot.name!r} has {lat.shape[0]} entries for "
                f"{self.n} agents"
            )
        self.latency: list[float] | None = lat.tolist() if (lat > 0).any() else None
        self.actions = 0
        self.limits: Any = self.make_limits(ctx, slot)
        size = self.opts["order_size"]
        if size is None:
            size = self.limits.default_size
        lots = size / self.lot
        self.lots = max(1, round(lots))
        if self.limits.kind == "induced" and abs(lots - round(lots)) > 1e-9 * max(1.0, lots):
            raise InvalidParameter(
                f"order_size(={size}) of population {slot.name!r} must be a whole number "
                f"of lots (lot = {self.lot})"
            )
        self.names: list[str] = list(ctx.goods.names)
        self.num = ctx.goods.numeraire_index
        self.live: dict[int, list[int]] = {g: [0] * self.n for g in self.limits.goods}
        self.submit = market.submit
        self._available = getattr(market, "available", None)
        self._resting = getattr(market, "resting", None)
        self._repost = getattr(market, "repost", None)
        self._hv = memoryview(ctx.ledger.holdings)
        # The reference prices alone, where the market can show them without its quote.
        self.reference_prices = prices_reader(market)

    def make_limits(self, ctx: Any, slot: PopulationSlot) -> Any:
        """What the population's orders are worth (:func:`limits_for`); a strategy for another
        kind of population brings its own (``kind``, ``default_size`` in units, ``goods``)."""
        return limits_for(ctx, slot, self.name)

    def stream(self, what: str) -> str:
        """The name of one of the population's random streams (``<market>:<what>:<pop>``)."""
        return f"{self.prefix}:{what}:{self.slot.name}"

    # -- process
    def start(self) -> None:
        self.env.process(self._arrivals())

    def _arrivals(self) -> Generator[simpy.Event, Any, None]:
        """The population's first step, where a process's first step runs: from there each
        arrival is a timeout whose callback acts and schedules the next one. (A process
        resuming a generator on every arrival costs about as much again as the timeout.)"""
        rng = self.ctx.streams.generator(self.stream("arrivals"))
        mean_gap = 1.0 / (self.rate * self.n)
        lo, hi = self.start_row, self.start_row + self.n

        def chunk() -> Iterator[tuple[float, int, float, float]]:
            gaps = rng.exponential(mean_gap, CHUNK).tolist()
            who = rng.integers(lo, hi, CHUNK).tolist()
            u1 = rng.random(CHUNK).tolist()
            u2 = rng.random(CHUNK).tolist()
            return zip(gaps, who, u1, u2, strict=True)

        draws = chunk()
        timeout = self.env.timeout
        act = self.act if self.latency is None else self._act_later
        pending = next(draws)

        def arrive(event: simpy.Event) -> None:
            nonlocal pending, draws
            _gap, agent, x, y = pending
            self.actions += 1
            act(agent, x, y)
            following = next(draws, None)
            if following is None:
                draws = chunk()
                following = next(draws)
            pending = following
            timeout(following[0]).callbacks.append(arrive)

        timeout(pending[0]).callbacks.append(arrive)
        return
        yield  # a generator, so that its first step runs where a process's would

    # -- acting
    def decide(self, agent: int, u1: float, u2: float) -> tuple[Any, ...] | None:
        """The order an arrival makes ``(agent, good, buy, ticks, unit)``, or None."""
        raise NotImplementedError

    def act(self, agent: int, u1: float, u2: float) -> None:
        """Decide and place at once (no latency)."""
        order = self.decide(agent, u1, u2)
        if order is not None:
            self.place(order)

    def _act_later(self, agent: int, u1: float, u2: float) -> None:
        order = self.decide(agent, u1, u2)
        if order is None:
            return
        assert self.latency is not None
        delay = self.latency[agent - self.start_row]
        if delay > 0:
            self.env.timeout(delay).callbacks.append(partial(self._deliver, order))
        else:
            self.execute(order)

    def _deliver(self, order: tuple[Any, ...], _: simpy.Event) -> None:
        self.execute(order)

    def execute(self, order: tuple[Any, ...]) -> None:
        """Place an order decided ``latency`` ago, unless the agent has traded the unit it was
        for in the meantime (its decision is then stale)."""
        unit = order[4]
        if unit >= 0 and self.limits.unit(order[0] - self.start_row) != unit:
            return
        self.place(order)

    def place(self, order: tuple[Any, ...]) -> None:
        agent, g, buy, ticks, _ = order
        self.post(agent, g, buy, ticks, self.lots)

    def post(self, agent: int, g: int, buy: bool, ticks: int, lots: int) -> None:
        """Withdraw the agent's resting order in the good, then post the new one."""
        local = agent - self.start_row
        if not 0 <= local < self.n:
            raise InvalidParameter(
                f"population {self.slot.name!r} cannot act for agent {agent} (its agents are "
                f"{self.start_row}..{self.start_row + self.n - 1})"
            )
        live = self.live[g]
        live[local] = self.replace(agent, g, live[local], buy, lots, ticks)

    def withdraw(self, agent: int, g: int, order_id: int) -> None:
        """Cancel the agent's order ``order_id`` (0: none) if the market says it still rests."""
        if order_id and (self._resting is None or self._resting(agent, self.names[g], order_id)):
            self.submit(Cancel(agent, self.names[g], order_id))

    def affordable(self, agent: int, g: int, buy: bool, ticks: int) -> int:
        """Whole lots the agent can commit to an order at ``ticks``."""
        if buy:
            free = (
                self._hv[agent, self.num]
                if self._available is None
                else self._available(agent, self.names[self.num])
            )
            return int(free // (ticks * self.tick_base))
        free = (
            self._hv[agent, g] if self._available is None else self._available(agent, self.names[g])
        )
        return int(free // self.lot_base)

    def limit(self, agent: int, g: int, buy: bool, lots: int, ticks: int) -> int:
        """Post a limit order; the id it rests under (0 if it does not rest; a provisional
        negative id while it is on its way)."""
        per = self._per_unit
        price = ticks / per if per is not None else ticks * self.tick
        order = Limit(agent, self.names[g], BUY if buy else SELL, lots * self.lot, price)
        receipt = self.submit(order).value
        return (receipt.order_id or 0) if receipt.resting else 0

    def replace(self, agent: int, g: int, old: int, buy: bool, lots: int, ticks: int) -> int:
        """Withdraw ``old``, then post at most ``lots`` at ``ticks``, cut to what the agent can
        commit; the new order's id if it rests, else 0.

        :meth:`withdraw`, :meth:`affordable` and :meth:`limit` in one call: every action of
        every agent passes here. A market that does all of it in one call (its optional
        ``repost``) is asked first."""
        repost = self._repost
        if repost is not None:
            new = repost(agent, self.names[g], old, buy, lots, ticks)
            if new is not None:
                return new
        name = self.names[g]
        if old and (self._resting is None or self._resting(agent, name, old)):
            # grid_cancel(agent, name, old) written out (as grid_limit below): the hot path.
            cancel = _new(Cancel)
            _put(cancel, "agent", agent)
            _put(cancel, "good", name)
            _put(cancel, "order_id", old)
            self.submit(cancel)
        available = self._available
        if buy:
            num = self.num
            free = self._hv[agent, num] if available is None else available(agent, self.names[num])
            afford = free // (ticks * self.tick_base)
        else:
            free = self._hv[agent, g] if available is None else available(agent, name)
            afford = free // self.lot_base
        if afford < lots:
            lots = int(afford)
            if lots <= 0:
                return 0
        per = self._per_unit
        price = ticks / per if per is not None else ticks * self.tick
        order = _new(Limit)
        _put(order, "agent", agent)
        _put(order, "good", name)
        _put(order, "side", BUY if buy else SELL)
        _put(order, "qty", lots * self.lot)
        _put(order, "price", price)
        _put(order, "ioc", False)
        receipt = self.submit(order).value
        return (receipt.order_id or 0) if receipt.resting else 0
