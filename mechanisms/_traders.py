"""The order book's own population behaviours (firms, belief traders).

Consumers and induced-value traders are driven by the shared strategies of
:mod:`mktsim.strategies` (``utility``, ``zi_c``, ``zi_u``, ``zip``, ``market_maker``,
``external``), which act through the market protocol. The behaviours registered here in
:data:`BEHAVIOURS` still act on the book in ticks and lots: :class:`Behaviour` gives them their
options, a Poisson arrival process drawn in vectorised chunks from the population's stream
(``order_book:arrivals:<population>``) and single-order execution with a per-agent latency.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import simpy

from mktsim.errors import InvalidParameter
from mktsim.mechanism import Option, PopulationSlot, parse_options
from mktsim.registry import unknown_behaviour

# The consumers' quote rule, shared with the belief traders' behaviours.
from mktsim.valuation import utility_quote

if TYPE_CHECKING:
    from mktsim.mechanisms.order_book import OrderBookMarket

__all__ = [
    "BEHAVIOURS",
    "COMMON",
    "Behaviour",
    "External",
    "make_behaviour",
    "utility_quote",
]

#: Arrivals drawn per chunk.
CHUNK = 2048


# ---- behaviours --------------------------------------------------------------------------
def _optional_rate(v: Any) -> float | None:
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


def _optional_size(v: Any) -> float | None:
    return None if v is None else _optional_rate(v)


COMMON: dict[str, Option] = {
    "rate": Option(
        None, "actions per agent per unit of time (None: the market's rate)", _optional_rate
    ),
    "latency": Option(
        None,
        "time from decision to the book, one number or one per agent (None: the population's "
        "delay)",
        _latency,
    ),
    "order_size": Option(
        None,
        "units per order (None: one unit for induced traders, 0.03 for consumers)",
        _optional_size,
    ),
}


class Behaviour:
    """Base: options, the arrival process, and single-order execution.

    Subclasses define ``decide(agent, u1, u2)`` returning an order ``(agent, good, buy, ticks,
    unit)`` or None, from two uniforms on [0, 1).
    """

    name: ClassVar[str] = ""
    options: ClassVar[Mapping[str, Option]] = COMMON
    needs_limits: ClassVar[bool] = False

    def __init__(self, market: OrderBookMarket, slot: PopulationSlot) -> None:
        pop = slot.population
        self.opts = parse_options(
            f"behaviour {self.name} of population {slot.name!r}",
            self.options,
            dict(pop.behaviour_options),
        )
        self.market = market
        self.slot = slot
        self.desk = market.desk(slot)
        self.n = pop.size
        self.start_row = slot.rows.start
        self.rate = self.opts["rate"] or market.opts["rate"]
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
        self.tick = market.tick
        self.limits: Any = None
        size = self.opts["order_size"]
        self.lots = 1 if size is None else max(1, round(size / market.lot))
        goods = market._traded
        self.live: dict[int, list[int]] = {g: [0] * self.n for g in goods}

    # -- process
    def start(self, env: simpy.Environment) -> None:
        env.process(self._arrivals(env))

    def _arrivals(self, env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        rng = self.market.ctx.streams.generator(f"order_book:arrivals:{self.slot.name}")
        mean_gap = 1.0 / (self.rate * self.n)
        lo, hi = self.start_row, self.start_row + self.n
        timeout = env.timeout
        act = self.act if self.latency is None else self._act_later
        while True:
            gaps = rng.exponential(mean_gap, CHUNK).tolist()
            who = rng.integers(lo, hi, CHUNK).tolist()
            u1 = rng.random(CHUNK).tolist()
            u2 = rng.random(CHUNK).tolist()
            for i in range(CHUNK):
                yield timeout(gaps[i])
                self.actions += 1
                act(who[i], u1[i], u2[i])

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
            self.market._env.timeout(delay).callbacks.append(partial(self._deliver, order))
        else:
            self.execute(order)

    def _deliver(self, order: tuple[Any, ...], _: simpy.Event) -> None:
        self.execute(order)

    def execute(self, order: tuple[Any, ...]) -> None:
        """Place an order decided ``latency`` ago."""
        self.place(order)

    def place(self, order: tuple[Any, ...]) -> None:
        agent, g, buy, ticks, _ = order
        self._post(agent, g, buy, ticks, self.lots)

    def _post(self, agent: int, g: int, buy: bool, ticks: int, lots: int) -> None:
        """Withdraw the agent's resting order in the good, then post the new one, sized to
        what the agent can commit (after checking that the agent is one of this
        population's)."""
        local = agent - self.start_row
        if not 0 <= local < self.n:
            self.desk._check(agent)
        live = self.live[g]
        live[local] = self.market._replace(agent, g, live[local], buy, lots, ticks)


class External(Behaviour):
    """No process: the agents act only through handles (scripts, tests, learning agents)."""

    name = "external"
    needs_limits = False

    def start(self, env: simpy.Environment) -> None:
        pass


BEHAVIOURS: dict[str, type[Behaviour]] = {"external": External}


def default_behaviour(slot: PopulationSlot) -> str:
    """The default of the populations the shared strategies do not drive: ``firm``, ``source``
    and ``final_demand`` for supply chains, ``belief`` for belief traders."""
    pop = slot.population
    if pop.kind in ("firms", "source", "final_demand"):  # mechanisms._firm_traders
        return "firm" if pop.kind == "firms" else pop.kind
    if pop.kind == "belief_traders":  # mechanisms._belief_traders
        return "belief"
    raise InvalidParameter(
        f"population {slot.name!r} ({pop.kind}) has no default behaviour under order_book: "
        f"name one of {', '.join(BEHAVIOURS)}"
    )


def make_behaviour(market: OrderBookMarket, slot: PopulationSlot) -> Behaviour:
    """The behaviour object of one population (validated options, not yet started)."""
    name = slot.population.behaviour or default_behaviour(slot)
    if name not in BEHAVIOURS:
        raise unknown_behaviour(slot.name, "order_book", str(name), list(BEHAVIOURS))
    return BEHAVIOURS[name](market, slot)
