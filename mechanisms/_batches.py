"""Production runs of firm populations, shared by the order book and the pools.

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

from mktsim.firms import Firms
from mktsim.goods import BASE_UNITS
from mktsim.ledger import Ledger
from mktsim.mechanism import PopulationSlot

__all__ = ["production_runs"]


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
