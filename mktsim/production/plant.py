"""Production outside every mechanism: firms' production runs and sources' extraction.

A supply chain's goods are made, not only traded: firms turn inputs into output and sources
extract raw resources, whatever market the chain trades on. This module holds that part, so a
strategy on any mechanism (an order book, a call market, pools) gets the same production by
asking the run for its population's :class:`Plant`:

.. code-block:: python

    plant = Plant.of(ctx, slot, cycle=5.0, memory=0.2)   # once per population and run
    plant.listen(lambda produced, amounts: ...)           # after every run / top-up
    plant.batch      # firms: expected batch, units float64[n, inputs] (0 before the first run)
    plant.made       # firms: output of each firm's last run, units float64[n]

The interface (stable):

* :meth:`Plant.of` ``(ctx, slot, *, cycle, memory=0.2)`` returns the run's plant of a
  :class:`~mktsim.firms.Firms` or :class:`~mktsim.firms.Source` population (a run-wide service
  of the context, ``plant:<population>``), started on the first ask; asking again with other
  settings is refused, since one population has one production clock.
* **Firms.** Every ``cycle`` each firm turns every input it holds into output: one
  ``ctx.settlement.produce`` per run (the ``production`` table), taken after the population's
  ``production_time`` (inputs bought meanwhile are not in this run; inputs are capped at what is
  still held). A firm whose output would not be positive and finite does not run and keeps its
  inputs. :attr:`Plant.batch` is the expected batch, the exponential average of the inputs of
  each firm's runs with weight ``memory`` on the newest (a firm's first run sets it outright):
  what a price-taking firm sizes and values its purchases by.
* **Sources.** Every ``cycle`` each source tops its stock up to its rate (a production with no
  inputs, journalled as one).
* :meth:`Plant.listen` ``(fn)``: ``fn(produced, amounts)`` after each run or top-up, with
  ``produced`` ``bool[n]`` (the firms that ran, or the sources topped up) and ``amounts``
  ``float64[n]`` (firms: each firm's output, units; sources: each stock after the top-up).
* :func:`check_supplied` refuses, before the run, a firm input that no population will ever
  sell: the firm would bid forever and nothing would trade.
* **Stalls are said, not silent.** A firm that has not produced for :data:`STALL_CYCLES`
  cycles in a row (it lacks one of its inputs, or the cash to buy it, while it holds the
  others) is *stalled*: the first time, an ``events`` row of kind ``production_stalled`` names
  the population, the firms and what they hold (the usual causes: too little cash for a lot,
  or a market's lot or tick too coarse for the firm's batch or the price); the run's summary
  has ``stalled_firms`` (population -> firms stalled at the end, 0 for a population that kept
  producing).

Holdings change only through ``ctx.settlement``; nothing here knows a mechanism.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy
from numpy.typing import NDArray

from mktsim.errors import InvalidParameter
from mktsim.goods import checked_int64
from mktsim.mechanism import MarketContext, PopulationSlot

__all__ = [
    "STALL_CYCLES",
    "Listener",
    "Plant",
    "Sells",
    "Stalls",
    "check_supplied",
    "production_runs",
]

Array = NDArray[np.float64]

#: A consumer's marginal utilities of a good and of money (``float64[k]`` each, agents holding
#: the good) -> which of them would sell it through the mechanism.
Sells = Callable[[Array, Array], NDArray[np.bool_]]
#: ``listener(produced, amounts)``: ``bool[n]`` and units ``float64[n]`` (see the module).
Listener = Callable[[NDArray[np.bool_], Array], None]
#: Population kinds of a supply chain (:mod:`mktsim.firms`; named by kind, since the firms'
#: module builds on this package).
_CHAIN = ("firms", "source", "final_demand")
#: Cycles in a row without producing after which a firm counts as stalled.
STALL_CYCLES = 4


class Stalls:
    """The run's record of stalled firms (a service, ``production:stalls``): population ->
    firms stalled now; :meth:`summary` is the run summary's ``stalled_firms``."""

    def __init__(self) -> None:
        self.now: dict[str, int] = {}

    def summary(self) -> dict[str, Any]:
        return {"stalled_firms": dict(self.now)}


def check_supplied(
    ctx: MarketContext,
    buyer: PopulationSlot,
    good: int,
    *,
    idle: tuple[str, ...],
    default: str,
    consumer_sells: Sells,
    refusal: str,
) -> None:
    """Refuse a firm input that no population will ever sell: the firm would bid forever and
    nothing would trade.

    A good is supplied by a source of it, a firm making it, or a population holding it that
    trades: one with a named behaviour not in ``idle``, or a consumer on the consumers'
    behaviour ``default`` of whom ``consumer_sells`` says some holder sells. ``refusal``
    follows "population X buys G, which " in the error.

    Raises:
        InvalidParameter: nobody supplies ``good`` (one line).
    """
    for slot in ctx.slots:
        pop: Any = slot.population
        if pop.kind == "source" and pop.good_index == good:
            return
        if pop.kind == "firms" and pop.output_index == good:
            return
        if pop.kind in _CHAIN or slot is buyer:
            continue
        h = np.asarray(ctx.ledger.holdings[slot.rows]) / ctx.goods.base_units
        held = h[:, good] > 0
        if pop.behaviour in idle or not held.any():
            continue
        if pop.behaviour not in (None, default) or not hasattr(pop, "utility"):
            return
        with np.errstate(all="ignore"):
            mu = np.asarray(pop.utility.marginal_utility(h), dtype=np.float64)
        if np.any(consumer_sells(mu[held, good], mu[held, ctx.goods.numeraire_index])):
            return
    name = ctx.goods.names[good]
    raise InvalidParameter(f"population {buyer.name!r} buys {name!r}, which {refusal}")


def production_runs(
    env: simpy.Environment,
    ledger: Any,
    slot: PopulationSlot,
    cycle: float,
    batch: Array,
    memory: float,
    after: Listener,
) -> Generator[simpy.Event, Any, None]:
    """SimPy process of one firm population's runs.

    Args:
        env: the run's engine.
        ledger: what holdings are read from and production settled through (``holdings`` and
            ``produce``: the context's settlement, or the ledger itself).
        slot: the population's place in the run.
        cycle: time between runs.
        batch: expected batch, units ``float64[n, inputs]``, updated in place after each run
            (weight ``memory`` on the newest; a firm's first run sets it outright).
        memory: weight of the newest batch, in (0, 1].
        after: called after each run with the firms that produced (``bool[n]``) and their
            outputs (units ``float64[n]``).
    """
    pop: Any = slot.population
    rows, idx, out = slot.rows, [int(j) for j in pop.input_index], pop.output_index
    delay = pop.production_time
    while True:
        yield env.timeout(cycle)
        held = np.array(ledger.holdings[rows])
        use = np.zeros_like(held)
        use[:, idx] = held[:, idx]
        if delay:
            yield env.timeout(delay)
            # firms only buy inputs, so they still hold them; capped all the same
            use = np.minimum(use, ledger.holdings[rows])
        x = use[:, idx] / ledger.goods.base_units
        with np.errstate(all="ignore"):
            y = np.asarray(pop.technology.output(x), dtype=np.float64)
        idle = ~np.isfinite(y) | (y <= 0)
        use[idle] = 0
        made = np.zeros_like(use)
        made[:, out] = checked_int64(
            np.floor(np.where(idle, 0.0, y) * ledger.goods.base_units), pop.name
        )
        busy = ~idle
        w = np.where((batch[busy] > 0).all(axis=1), memory, 1.0)[:, None]
        batch[busy] = w * x[busy] + (1.0 - w) * batch[busy]
        ledger.produce(slot.row_ids, use, made, pop.name)
        after(busy, y)


def _extraction(
    env: simpy.Environment, settlement: Any, slot: PopulationSlot, cycle: float, after: Listener
) -> Generator[simpy.Event, Any, None]:
    """SimPy process of one source population: every ``cycle`` each stock is topped up to the
    source's rate (a production without inputs)."""
    pop: Any = slot.population
    rows, j = slot.rows, pop.good_index
    cap = checked_int64(np.floor(pop.rate * settlement.goods.base_units), pop.name)
    g = len(settlement.goods)
    while True:
        yield env.timeout(cycle)
        made = np.zeros((pop.size, g), dtype=np.int64)
        made[:, j] = np.maximum(cap - settlement.holdings[rows, j], 0)
        settlement.produce(slot.row_ids, np.zeros_like(made), made, pop.name)
        after(made[:, j] > 0, settlement.holdings[rows, j] / settlement.goods.base_units)


def _positive(name: str, value: Any, who: str) -> float:
    x = float(value)
    if not (np.isfinite(x) and x > 0):
        raise InvalidParameter(f"{name}(={value!r}) of population {who!r} must be > 0 and finite")
    return x


class Plant:
    """The production of one firm or source population in one run (see the module docstring).

    Obtain it with :meth:`of`, so that every strategy of the run asking for the population's
    plant gets the same one, started once.

    Attributes:
        slot: the population's place in the run.
        firms: True for firms, False for a source.
        cycle: time between runs (or top-ups).
        memory: weight of the newest batch in :attr:`batch`, in (0, 1].
        batch: firms: expected batch, units ``float64[n, inputs]`` (0 before a firm's first
            run); sources: ``float64[n, 0]``.
        made: firms: output of each firm's last run, units ``float64[n]`` (0 before it);
            sources: each stock after the last top-up.
        runs: runs (top-ups) so far.
    """

    def __init__(
        self, ctx: MarketContext, slot: PopulationSlot, *, cycle: float, memory: float = 0.2
    ) -> None:
        pop: Any = slot.population
        if pop.kind not in ("firms", "source"):
            raise InvalidParameter(
                f"population {slot.name!r} ({pop.kind}) produces nothing: a plant runs firms "
                "or sources"
            )
        self.ctx = ctx
        self.slot = slot
        self.cycle = _positive("cycle", cycle, slot.name)
        memory = float(memory)
        if not 0 < memory <= 1:
            raise InvalidParameter(
                f"memory(={memory!r}) of population {slot.name!r} must be in (0, 1]"
            )
        self.memory = memory
        self.firms = pop.kind == "firms"
        k = len(pop.input_index) if self.firms else 0
        self.batch: Array = np.zeros((pop.size, k))
        self.made: Array = np.zeros(pop.size)
        self.runs = 0
        #: Firms: cycles in a row each firm has not produced, ``int[n]``.
        self.idle = np.zeros(pop.size, dtype=np.int64)
        self._said = np.zeros(pop.size, dtype=bool)
        self._stalls: Stalls | None = None
        if self.firms:
            self._stalls = ctx.service("production:stalls", Stalls)
            self._stalls.now[slot.name] = 0
        self._listeners: list[Listener] = []
        self._started = False

    @classmethod
    def of(
        cls, ctx: MarketContext, slot: PopulationSlot, *, cycle: float, memory: float = 0.2
    ) -> Plant:
        """The run's plant of ``slot``'s population, made and started on the first ask.

        Raises:
            InvalidParameter: the population is neither firms nor a source, or its plant was
                already asked for with another ``cycle`` or ``memory``.
        """
        plant: Plant = ctx.service(
            f"plant:{slot.name}", lambda: cls(ctx, slot, cycle=cycle, memory=memory)
        )
        if (plant.cycle, plant.memory) != (float(cycle), float(memory)):
            raise InvalidParameter(
                f"population {slot.name!r} already produces every {plant.cycle:g} with memory "
                f"{plant.memory:g}; asked for cycle={cycle!r}, memory={memory!r}"
            )
        plant.start()
        return plant

    def listen(self, listener: Listener) -> None:
        """Call ``listener(produced, amounts)`` after every run or top-up."""
        self._listeners.append(listener)

    def start(self) -> None:
        """Start the production (or extraction) clock; again: nothing."""
        if self._started:
            return
        self._started = True
        env, settlement = self.ctx.env, self.ctx.settlement
        if self.firms:
            env.process(
                production_runs(
                    env, settlement, self.slot, self.cycle, self.batch, self.memory, self._ran
                )
            )
        else:
            env.process(_extraction(env, settlement, self.slot, self.cycle, self._ran))

    def _ran(self, produced: NDArray[np.bool_], amounts: Array) -> None:
        self.runs += 1
        if self.firms:
            self.made[produced] = amounts[produced]
            self._count_stalls(produced)
        else:
            self.made[:] = amounts
        for listener in self._listeners:
            listener(produced, amounts)

    def _count_stalls(self, produced: NDArray[np.bool_]) -> None:
        """Count the cycles each firm has gone without producing; say so once when firms
        stall (see the module docstring)."""
        self.idle = np.where(produced, 0, self.idle + 1)
        stalled = self.idle >= STALL_CYCLES
        assert self._stalls is not None
        self._stalls.now[self.slot.name] = int(stalled.sum())
        new = stalled & ~self._said
        if not new.any():
            return
        self._said |= new
        pop: Any = self.slot.population
        names = self.ctx.goods.names
        rows = np.flatnonzero(new)
        held = self.ctx.ledger.holdings[self.slot.rows][rows] / self.ctx.goods.base_units
        inputs = [int(j) for j in pop.input_index]
        what = ", ".join(
            f"{names[j]} {held[:, j].sum():.6g}" for j in [*inputs, self.ctx.goods.numeraire_index]
        )
        self.ctx.log(
            "production_stalled",
            f"{rows.size} of {pop.size} firms of {self.slot.name!r} (firms {rows.tolist()[:10]}) "
            f"have not produced for {STALL_CYCLES} cycles; they hold {what} (their bids for "
            "an input they lack do not fill: too little cash, or a market lot or tick too "
            "coarse for the quantities and prices they need)",
        )
