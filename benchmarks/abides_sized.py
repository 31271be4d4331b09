"""Order-book runs the size of ABIDES's RMSC04 and beyond, as ratios to bare SimPy.

Run from the repository root::

    python -m benchmarks.abides_sized            # everything (about 10 minutes on a busy machine)
    python -m benchmarks.abides_sized --quick    # fewer sizes and repetitions

Every figure is a ratio to a baseline measured in the same process, interleaved with it, and
the median over repetitions (the machine may be shared; CPU time of this process is used
where a whole run is timed):

* **Bare SimPy**: one process looping ``yield env.timeout(1)``; its CPU time per timeout is the
  unit of the order-book figures, printed as *timeouts per order* (lower is faster) and as
  *ratio* = orders per second over timeouts per second (higher is faster).
* **Cost per order**, whole ``mktsim.simulate`` (setup, session opening and closing, matching,
  reservations, ledger settlement, recording and the summary included): 1,000 ``zi_c`` traders
  (:mod:`benchmarks.bench_market`'s induced-value market, four periods) and 1,000 Cobb-Douglas
  consumers with the ``utility`` strategy (:mod:`benchmarks.bench_utility`), each for about
  3,000 orders (the ABIDES-sized run) and about 200,000. An order is one agent's action: it
  withdraws its standing order, if any, and posts a new one. The ~3,000-order runs are
  repeated 15 times (9 with ``--quick``), each between two bare measurements; the same runs
  in machine instructions, which the machine's load does not move, are counted by
  :mod:`benchmarks.instructions`.
* **Per-action cost against population size** (100 to 100,000 agents): the difference in CPU
  time between a run of about 25,000 actions and one of about 5,000, per action, so that
  building the population is left out; and the ratio of the largest population's cost per
  action to 1,000 agents', the two measured back to back (runs of 120,000 and 20,000 actions)
  in each repetition, the median over the pairs.
* **Ledger settlement**: a SimPy process that settles one bilateral trade through the ledger
  on every event, against the bare process: the cost of an event with a settlement over a bare
  one.
* **Start-up**: wall time of a whole ``mktsim run benchmarks/abides_scenario.py --no-report``
  process, minus the time inside ``simulate`` (its summary's ``wall_seconds``), against a
  process running ``python -c "import simpy, numpy, pandas"``.
* **Tatonnement round** (Cobb-Douglas, 5 goods) against the reduced-form numpy evaluation of
  the same aggregate demand, ``((holdings @ p) @ shares) / p``, in CPU time with one BLAS
  thread, runs alternating with blocks of evaluations, warm-up left out
  (:mod:`benchmarks.bench_tatonnement`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import simpy

import mktsim
from benchmarks import bench_market, bench_utility
from benchmarks.bench_tatonnement import measure
from mktsim.goods import Goods
from mktsim.ledger import Ledger, sim_clock
from mktsim.recorder import Recorder

__all__ = [
    "bare_timeout",
    "per_action",
    "per_order",
    "population_ratio",
    "run_scenario",
    "settlement_ratio",
    "startup",
    "timed_run",
]


def bare_timeout(n: int = 50_000) -> float:
    """CPU seconds per timeout of one SimPy process looping ``yield env.timeout(1)``."""
    env = simpy.Environment()

    def proc() -> Any:
        timeout = env.timeout
        while True:
            yield timeout(1.0)

    env.process(proc())
    cpu = time.process_time()
    env.run(until=n)
    return (time.process_time() - cpu) / n


def run_scenario(kind: str, agents: int, until: float) -> tuple[mktsim.Scenario, dict[str, Any]]:
    """(scenario, ``simulate`` keywords) of a run of ``agents`` ``kind`` traders (``zi_c`` or
    ``utility``) until ``until``: at one action per agent per unit of time, about ``agents *
    until`` orders."""
    if kind == "zi_c":
        return bench_market.market_scenario(agents, until=until), {"record": "all"}
    sc = bench_utility.scenario(agents)
    return sc, {"mechanism": "order_book", "until": until, "record_interval": until}


def timed_run(kind: str, agents: int, until: float) -> tuple[float, int]:
    """(CPU seconds of one whole simulate, orders)."""
    sc, kw = run_scenario(kind, agents, until)
    cpu = time.process_time()
    run = mktsim.simulate(sc, seed=1, **kw)
    return time.process_time() - cpu, int(run.summary["actions"])


def per_order(kind: str, agents: int, until: float, repeat: int) -> tuple[float, int]:
    """(median bare timeouts per order, orders) of whole runs, each timed between two bare
    measurements."""
    ratios = []
    orders = 0
    for _ in range(repeat):
        before = bare_timeout()
        cpu, orders = timed_run(kind, agents, until)
        after = bare_timeout()
        ratios.append(cpu / orders / ((before + after) / 2))
    return statistics.median(ratios), orders


def _marginal(kind: str, agents: int, short: int, long: int) -> float:
    """CPU seconds per action of a run of ``long`` actions over one of ``short``, so that
    building the population is left out."""
    c1, a1 = timed_run(kind, agents, short / agents)
    c2, a2 = timed_run(kind, agents, long / agents)
    return (c2 - c1) / (a2 - a1)


def per_action(kind: str, agents: int, repeat: int) -> float:
    """Median bare timeouts per action at ``agents``, population building left out."""
    ratios = []
    for _ in range(repeat):
        before = bare_timeout()
        cost = _marginal(kind, agents, 5_000, 25_000)
        after = bare_timeout()
        ratios.append(cost / ((before + after) / 2))
    return statistics.median(ratios)


def population_ratio(kind: str, agents: int, repeat: int) -> tuple[float, list[float]]:
    """(median, each) of the cost per action at ``agents`` over that at 1,000, the two
    measured back to back in each repetition (the machine's speed drifts between repetitions
    by more than the difference sought) over 100,000 actions each, so that one full garbage
    collection or a slow population build does not decide the figure."""
    pairs = []
    for _ in range(repeat):
        small = _marginal(kind, 1_000, 20_000, 120_000)
        large = _marginal(kind, agents, 20_000, 120_000)
        pairs.append(large / small)
    return statistics.median(pairs), pairs


def settlement_ratio(repeat: int, n: int = 20_000) -> float:
    """Median cost of an event that settles a trade through the ledger over a bare one."""
    goods = Goods.of(["money", "good"])

    def settling() -> float:
        env = simpy.Environment()
        rec = Recorder({"goods": goods.names, "populations": ["p"]})
        ledger = Ledger(goods, np.full((1000, 2), 10**15, dtype=np.int64), rec, sim_clock(env))

        def trader() -> Any:
            for i in range(n):
                ledger.trade(i % 1000, (i * 7 + 1) % 1000, 1, 5, 7, 1.4)
                yield env.timeout(1)

        env.process(trader())
        cpu = time.process_time()
        env.run()
        rec.rows("trades")  # hand the buffered rows over: part of the cost
        return (time.process_time() - cpu) / n

    ratios = []
    for _ in range(repeat):
        before = bare_timeout(n)
        cost = settling()
        after = bare_timeout(n)
        ratios.append(cost / ((before + after) / 2))
    return statistics.median(ratios)


def _timed(cmd: Sequence[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a child process."""
    import resource

    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    wall = time.perf_counter() - started
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (now.ru_utime + now.ru_stime) - (used.ru_utime + used.ru_stime)


def startup(kind: str, repeat: int) -> tuple[float, float, float, float]:
    """Medians of: start-up wall seconds of ``mktsim run ... --no-report`` less its simulate,
    wall seconds of ``python -c "import simpy, numpy, pandas"``, the ratio of the two, and the
    ratio of the two processes' whole CPU times (simulate included: a bound that a busy
    machine's waiting does not blur)."""
    script = Path(__file__).with_name("abides_scenario.py")
    runs, bases, ratios, cpu_ratios = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "mktsim.cli", "run", str(script), "--no-report"]
        cmd += ["--set", f"kind={kind!r}", "--out", str(out), "--overwrite"]
        for _ in range(repeat):
            base, base_cpu = _timed([sys.executable, "-c", "import simpy, numpy, pandas"])
            whole, whole_cpu = _timed(cmd)
            inside = json.loads((out / "summary.json").read_text())["wall_seconds"]
            runs.append(whole - inside)
            bases.append(base)
            ratios.append((whole - inside) / base)
            cpu_ratios.append(whole_cpu / base_cpu)
    return (
        statistics.median(runs),
        statistics.median(bases),
        statistics.median(ratios),
        statistics.median(cpu_ratios),
    )


def tatonnement(agents: int, repeat: int) -> tuple[float, float, float, list[float]]:
    """(round ms, reduced-form numpy ms, ratio, each pair's ratio) for Cobb-Douglas consumers
    over 5 goods: medians over ``repeat`` pairs of a run and a block of evaluations."""
    r = measure(agents, 5, repeat)
    return 1e3 * r["round_s"], 1e3 * r["numpy_s"], r["ratio"], r["ratios"]


def _line(label: str, value: str) -> None:
    print(f"  {label:<58} {value}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repetitions")
    args = parser.parse_args(argv)
    rep = 3 if args.quick else 5
    print(
        f"bare SimPy: {1e9 * statistics.median(bare_timeout() for _ in range(5)):,.0f} ns CPU "
        "per timeout (the unit below; the machine may be shared)"
    )

    print("cost per order, whole run (timeouts per order; ratio = orders/s over timeouts/s)")
    # a short run is cheap and its time spreads with the machine's load: many repetitions
    sizes: list[tuple[str, float, int]] = [("~3,000 orders", 3.0, 3 * rep)]
    if not args.quick:
        sizes.append(("~200,000 orders", 200.0, 1))
    for kind in ("zi_c", "utility"):
        for label, until, k in sizes:
            t, orders = per_order(kind, 1000, until, k)
            _line(f"1,000 {kind} agents, {label} ({orders:,})", f"{t:7.1f}  ratio {1 / t:.3f}")

    print("per-action cost against population size (timeouts per action)")
    agents: list[int] = [100, 1_000, 10_000] if args.quick else [100, 1_000, 10_000, 100_000]
    for kind in ("zi_c", "utility"):
        costs = {
            n: per_action(kind, n, 1 if n >= 100_000 else (2 if args.quick else 3)) for n in agents
        }
        row = ", ".join(f"{n:,}: {c:.1f}" for n, c in costs.items())
        _line(f"{kind}", row)
        ratio, pairs = population_ratio(kind, agents[-1], 3 if args.quick else 7)
        spread = f"{min(pairs):.2f}-{max(pairs):.2f}"
        _line(f"  {agents[-1]:,} / 1,000, back to back", f"{ratio:.2f} (pairs {spread})")

    print("ledger settlement (an event that settles a trade over a bare event)")
    _line("cost ratio", f"{settlement_ratio(11 if args.quick else 31):.2f}")

    print(
        "start-up: mktsim run ... --no-report less simulate, against python -c "
        '"import simpy, numpy, pandas"'
    )
    for kind in ("zi_c", "utility"):
        run_s, base_s, ratio, cpu = startup(kind, 3 if args.quick else 5)
        _line(
            f"1,000 {kind} agents",
            f"{run_s:.2f} s vs {base_s:.2f} s, ratio {ratio:.2f} (whole CPU: {cpu:.2f})",
        )

    print("tatonnement round against ((holdings @ p) @ shares) / p, 5 goods (CPU, one BLAS thread)")
    for n in [10**5] if args.quick else [10**5, 10**6]:
        round_ms, base_ms, ratio, ratios = tatonnement(n, 3 if args.quick else 7)
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        _line(
            f"{n:,} agents",
            f"{round_ms:.3f} ms vs {base_ms:.3f} ms, ratio {ratio:.2f} (pairs {spread})",
        )


if __name__ == "__main__":
    main()
