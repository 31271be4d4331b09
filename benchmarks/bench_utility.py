"""Per-action cost of the consumers' ``utility`` strategy on the order book, by population size.

Run from the repository root::

    python -m benchmarks.bench_utility                 # 100, 1,000 and 10,000 agents
    python -m benchmarks.bench_utility 100 100000

Cobb-Douglas consumers over three goods (shares Dirichlet(1, 1, 1), endowments uniform on
[0.5, 2], seed 0) trade on the book for about 20,000 actions (horizon ``20000 / n`` at one action
per agent per unit of time); the prices table is recorded once. Printed: CPU microseconds per
action, best of two runs. Each action values only the acting agent (its MRS and its demand at
the quoted prices), so the figure should not grow with the population.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import numpy as np

import mktsim
from mktsim import CobbDouglas, Consumers, Scenario

__all__ = ["per_action", "scenario"]


def scenario(n: int, seed: int = 0) -> Scenario:
    """``n`` Cobb-Douglas consumers over money and two goods."""
    rng = np.random.default_rng(seed)
    shares = rng.dirichlet(np.ones(3), n)
    endowment = rng.uniform(0.5, 2.0, (n, 3))
    return Scenario(
        "bench_utility", ["money", "a", "b"], [Consumers("c", CobbDouglas(shares), endowment)]
    )


def per_action(n: int, actions: int = 20_000, repeat: int = 2) -> tuple[float, int, int]:
    """(best CPU microseconds per action, actions, fills) of ``n`` agents."""
    until = actions / n
    best = float("inf")
    acts = fills = 0
    for _ in range(repeat):
        sc = scenario(n)
        c0 = time.process_time()
        run = mktsim.simulate(sc, "order_book", seed=1, until=until, record_interval=until)
        cpu = time.process_time() - c0
        acts, fills = run.summary["actions"], run.summary["fills"]
        best = min(best, cpu / acts * 1e6)
    return best, acts, fills


def main(argv: Sequence[str] | None = None) -> None:
    sizes = [int(a) for a in (sys.argv[1:] if argv is None else argv)] or [100, 1000, 10000]
    for n in sizes:
        us, acts, fills = per_action(n)
        print(f"{n:>7,} agents: {acts:,} actions, {fills:,} fills, {us:,.1f} us CPU per action")


if __name__ == "__main__":
    main()
