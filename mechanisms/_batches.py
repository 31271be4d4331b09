"""Firm populations on the order book and on the pools: production runs, and the check that
every input has a supplier.

Every ``cycle`` each firm turns every input it holds into output: one
:meth:`~mktsim.ledger.Ledger.produce` per run (the ``production`` table), after the population's
``production_time``. The firms' expected batch, an exponential average of the inputs of their
runs, is what their purchases are sized and valued by.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy
from numpy.typing import NDArray

from mktsim.errors import InvalidParameter
from mktsim.firms import FinalDemand, Firms, Source
from mktsim.goods import BASE_UNITS
from mktsim.ledger import Ledger
from mktsim.mechanism import MarketContext, PopulationSlot

__all__ = ["check_supplied", "production_runs"]

#: A consumer's marginal utilities of a good and of money (``float64[k]`` each, agents holding
#: the good) -> which of them would sell it through the mechanism.
Sells = Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.bool_]]


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
    """
    for slot in ctx.slots:
        pop: Any = slot.population
        if isinstance(pop, Source) and pop.good_index == good:
            return
        if isinstance(pop, Firms) and pop.output_index == good:
            return
        if isinstance(pop, (Source, Firms, FinalDemand)) or slot is buyer:
            continue
        h = np.asarray(ctx.ledger.holdings[slot.rows]) / BASE_UNITS
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
    ledger: Ledger,
    slot: PopulationSlot,
    cycle: float,
    batch: NDArray[np.float64],
    memory: float,
    after: Callable[[NDArray[np.bool_], NDArray[np.float64]], None],
) -> Generator[simpy.Event, Any, None]:
    """SimPy process of one firm population's runs.

    Args:
        env, ledger, slot: the run's engine, ledger and the population's place in it.
        cycle: time between runs.
        batch: expected batch, units ``float64[n, inputs]``, updated in place after each run
            (weight ``memory`` on the newest; a firm's first run sets it outright).
        memory: weight of the newest batch, in (0, 1].
        after: called after each run with the firms that produced (``bool[n]``) and their
            outputs (units ``float64[n]``).
    """
    pop = slot.population
    assert isinstance(pop, Firms)
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
        x = use[:, idx] / BASE_UNITS
        with np.errstate(all="ignore"):
            y = np.asarray(pop.technology.output(x), dtype=np.float64)
        idle = ~np.isfinite(y) | (y <= 0)
        use[idle] = 0
        made = np.zeros_like(use)
        made[:, out] = np.floor(np.where(idle, 0.0, y) * BASE_UNITS).astype(np.int64)
        busy = ~idle
        w = np.where((batch[busy] > 0).all(axis=1), memory, 1.0)[:, None]
        batch[busy] = w * x[busy] + (1.0 - w) * batch[busy]
        ledger.produce(slot.row_ids, use, made, pop.name)
        after(busy, y)
