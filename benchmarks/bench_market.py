"""Full-simulation throughput of the order book: agent actions per second.

Run from the repository root::

    python -m benchmarks.bench_market                  # 1,000 zi_c agents, about 2e5 actions
    python -m benchmarks.bench_market --until 50       # shorter

The economy is an induced-value market of 500 buyers and 500 sellers with ten units each per
period, values and costs uniform on 1..200 (drawn from a fixed seed), trading in four periods of
``until / 4`` under the ``order_book`` mechanism with ``zi_c`` behaviour at one shout per agent per
unit of time (Poisson arrivals drawn in chunks). Standing orders stay on the book between trades,
so it is several hundred orders deep. Everything a run does is timed: matching, reservations,
settlement through the ledger, recording every table (``record="all"``), the period renewals and
the summary. An *action* is one arrival of one agent (withdraw its standing order, post a new
one); ``actions/s`` is actions divided by the run's wall time.

The SimPy baseline is one process looping ``yield env.timeout(1)``, timed in the same run and
interleaved with the market runs (the machine may be shared): the ratio printed is actions per
second over bare timeouts per second, best run against best run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import simpy

import mktsim
from mktsim.induced import induced_scenario

__all__ = ["market_scenario", "simpy_timeouts_per_second"]


def market_scenario(n_agents: int = 1000, units: int = 10, until: float = 200.0) -> mktsim.Scenario:
    """The benchmark's induced-value market (half buyers, half sellers)."""
    rng = np.random.default_rng(2024)
    half = n_agents // 2
    values = -np.sort(-rng.integers(1, 201, (half, units)), axis=1)
    costs = np.sort(rng.integers(1, 201, (n_agents - half, units)), axis=1)
    scenario = induced_scenario(
        "bench_market",
        values.tolist(),
        costs.tolist(),
        behaviour="zi_c",
        periods=4,
        period_length=until / 4,
        mechanism_options={"clear_on_trade": False, "rate": 1.0},
    )
    # The efficiency metrics are post-processing, not simulation: leave them out of the timing.
    return attrs.evolve(scenario, metrics=None)


def simpy_timeouts_per_second(n_events: int) -> tuple[float, float]:
    """Bare SimPy: one process yielding ``n_events`` timeouts; events per wall second and per
    CPU second of this process."""

    def proc(env: simpy.Environment) -> Any:
        timeout = env.timeout
        while True:
            yield timeout(1.0)

    env = simpy.Environment()
    env.process(proc(env))
    started, cpu = time.perf_counter(), time.process_time()
    env.run(until=n_events)
    return n_events / (time.perf_counter() - started), n_events / (time.process_time() - cpu)


def run_market(scenario: mktsim.Scenario, seed: int) -> dict[str, float]:
    started, cpu = time.perf_counter(), time.process_time()
    run = mktsim.simulate(scenario, seed=seed, record="all")
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    s = run.summary
    assert s["conservation_ok"]
    return {
        "actions": float(s["actions"]),
        "fills": float(s["fills"]),
        "wall": wall,
        "actions_per_s": s["actions"] / wall,
        "actions_per_cpu_s": s["actions"] / cpu,
        "resting": float(s["resting_orders"]),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000, help="agents (half buyers)")
    parser.add_argument("--until", type=float, default=200.0, help="simulation horizon")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved repetitions")
    args = parser.parse_args(argv)
    scenario = market_scenario(args.agents, until=args.until)
    market, bare = [], []
    for k in range(args.repeat):
        result = run_market(scenario, seed=k)
        market.append(result)
        bare.append(simpy_timeouts_per_second(int(result["actions"])))
    best = max(market, key=lambda r: r["actions_per_s"])
    top = max(b[0] for b in bare)
    best_cpu = max(r["actions_per_cpu_s"] for r in market)
    top_cpu = max(b[1] for b in bare)
    print(
        f"order book, {args.agents} zi_c agents, horizon {args.until:g}: "
        f"{best['actions']:.0f} actions, {best['fills']:.0f} fills, wall {best['wall']:.2f} s"
    )
    runs = ", ".join(f"{r['actions_per_s']:,.0f}" for r in market)
    print(f"  actions/s         {best['actions_per_s']:>12,.0f}  (runs: {runs})")
    runs = ", ".join(f"{b[0]:,.0f}" for b in bare)
    print(f"  SimPy timeouts/s  {top:>12,.0f}  (runs: {runs})")
    print(f"  ratio             {best['actions_per_s'] / top:>12.3f}")
    print(
        f"  per CPU second: {best_cpu:,.0f} actions, {top_cpu:,.0f} timeouts, "
        f"ratio {best_cpu / top_cpu:.3f}"
    )


if __name__ == "__main__":
    main()
