"""How cost grows: engine overhead per event, memory per agent, peak memory against events.

Run from the repository root::

    python -m benchmarks.bench_scale            # up to 10^7 recorded events, 10^6 agents
    python -m benchmarks.bench_scale --quick

* Engine overhead: one SimPy process settling a bilateral trade through the ledger (checks,
  integer updates, a journal row) each event, against a bare SimPy process yielding timeouts, both
  measured in this run; the ratio is the cost of an event with a ledger settlement over a bare one.
* Memory per agent: peak resident memory of a fresh process that builds a Cobb-Douglas economy of
  n agents x 5 goods and runs tatonnement (summary recording) to convergence, minus the same for a
  tiny economy, divided by n.
* Peak memory against event count: a fresh process settles N trades streamed to Parquet in
  chunks (the recorder of ``simulate(..., stream_to=...)``); its peak resident memory should stay
  flat as N grows (the target: under 1 GiB at 10^7 events).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np
import simpy

_TRADES = """
import resource, sys, tempfile, numpy as np, simpy
from mktsim.goods import Goods
from mktsim.ledger import Ledger
from mktsim.recorder import Recorder
n = int(sys.argv[1])
goods = Goods.of(["money", "good"])
with tempfile.TemporaryDirectory() as spool:
    env = simpy.Environment()
    rec = Recorder({"goods": goods.names, "populations": ["p"]}, spool=spool, chunk_rows=500_000)
    ledger = Ledger(goods, np.full((1000, 2), 10**15, dtype=np.int64), rec, lambda: env.now)
    def trader():
        for i in range(n):
            ledger.trade(i % 1000, (i * 7 + 1) % 1000, 1, 5, 7, 1.4)
            yield env.timeout(1)
    env.process(trader())
    env.run()
    assert ledger.conserved() and rec.rows("trades") == 2 * n
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""

_AGENTS = """
import resource, sys, time, mktsim
n = int(sys.argv[1])
t = time.perf_counter()
s = mktsim.build_scenario("cobb_douglas", n_agents=n, n_goods=5)
run = mktsim.simulate(s, record="summary", until=2000)
assert run.summary["converged"] and run.summary["price_error"] < 1e-6
print(time.perf_counter() - t, run.summary["rounds"])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def _run(script: str, arg: int) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", script, str(arg)], capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()


def _peak_mib(script: str, arg: int) -> float:
    return float(_run(script, arg)[-1])


def simpy_events_per_second(n: int = 200_000) -> float:
    env = simpy.Environment()

    def tick():
        for _ in range(n):
            yield env.timeout(1)

    env.process(tick())
    t = time.perf_counter()
    env.run()
    return n / (time.perf_counter() - t)


def ledger_events_per_second(n: int = 200_000) -> float:
    from mktsim.goods import Goods
    from mktsim.ledger import Ledger, sim_clock
    from mktsim.recorder import Recorder

    goods = Goods.of(["money", "good"])
    env = simpy.Environment()
    rec = Recorder({"goods": goods.names, "populations": ["p"]})
    ledger = Ledger(goods, np.full((1000, 2), 10**15, dtype=np.int64), rec, sim_clock(env))

    def trader():
        for i in range(n):
            ledger.trade(i % 1000, (i * 7 + 1) % 1000, 1, 5, 7, 1.4)
            yield env.timeout(1)

    env.process(trader())
    t = time.perf_counter()
    env.run()
    return n / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)

    bare, settled = simpy_events_per_second(), ledger_events_per_second()
    print("engine overhead per event")
    print(
        f"  bare SimPy timeouts/s {bare:,.0f}; with a ledger settlement {settled:,.0f}/s; "
        f"cost ratio {bare / settled:.2f}x"
    )

    print("memory per agent and wall time (Cobb-Douglas, 5 goods, tatonnement to convergence)")
    base = _peak_mib(_AGENTS, 10)
    for n in [10**4, 10**5] if args.quick else [10**4, 10**5, 10**6]:
        lines = _run(_AGENTS, n)
        wall, rounds = lines[-2].split()
        peak = float(lines[-1])
        print(
            f"  {n:>9,} agents: converged in {int(rounds)} rounds, {float(wall):6.1f} s "
            f"(with building the economy); peak {peak:8.1f} MiB, "
            f"{1024**2 * (peak - base) / n:6.0f} bytes/agent above a 10-agent run"
        )

    print("peak memory against recorded events (trades streamed to Parquet)")
    for n in [10**5, 10**6] if args.quick else [10**5, 10**6, 10**7]:
        t = time.perf_counter()
        peak = _peak_mib(_TRADES, n // 2)  # each trade records two journal rows
        print(f"  {n:>11,} events: peak {peak:8.1f} MiB ({time.perf_counter() - t:6.1f} s)")


if __name__ == "__main__":
    main()
