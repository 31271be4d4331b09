"""Sweep throughput against workers: runs per second with a local process pool.

Run from the repository root::

    python -m benchmarks.bench_sweep [--runs 48]

A grid of small ``cobb_douglas`` economies (20 agents, 2 or 3 goods, four step rules, seeds) is
swept with 1 worker (in process) and with 2 pool workers into fresh folders; the ratio is runs/s
over the 1-worker figure measured in the same run. Pool start-up (spawned interpreters importing
numpy, pandas and scipy) is included, as a user would see it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mktsim.sweep import sweep


def runs_per_second(workers: int, seeds: int, out: Path) -> float:
    grid = {
        "n_agents": 20,
        "n_goods": [2, 3],
        "method": ["additive", "multiplicative", "momentum", "adam"],
    }
    t = time.perf_counter()
    frame = sweep(
        "cobb_douglas",
        grid,
        seeds,
        mechanisms="walrasian",
        out=out,
        workers=workers,
        progress=False,
        record="summary",
    )
    elapsed = time.perf_counter() - t
    assert (frame["status"] == "ok").all()
    return len(frame) / elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=48, help="runs per sweep (multiple of 8)")
    args = parser.parse_args(argv)
    seeds = max(1, args.runs // 8)
    with tempfile.TemporaryDirectory() as tmp:
        base = runs_per_second(1, seeds, Path(tmp) / "w1")
        print("sweep throughput (ratio = runs/s over 1 worker in process)")
        print(f"  1 worker : {base:6.2f} runs/s  1.00")
        for workers in (2,):
            rate = runs_per_second(workers, seeds, Path(tmp) / f"w{workers}")
            print(f"  {workers} workers: {rate:6.2f} runs/s  {rate / base:.2f}")


if __name__ == "__main__":
    main()
