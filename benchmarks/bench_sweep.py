"""Sweep throughput against workers: runs per second with a local process pool.

Run from the repository root::

    python -m benchmarks.bench_sweep [--runs 48]

Two grids of ``cobb_douglas`` economies (2 or 3 goods, four step rules, seeds): *small* runs of
20 agents (a few milliseconds each, so pool overhead dominates) and *large* runs of 200,000 agents
(where the work dominates). Each is swept with 1 worker (in process) and with 2 pool workers
into fresh folders; the ratio is runs/s over the 1-worker figure measured in the same run. The
first pool sweep includes starting the fork server (one interpreter importing numpy, pandas and
scipy), as a user's first sweep would; later sweeps in the same process reuse it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mktsim.sweep import sweep


def runs_per_second(workers: int, seeds: int, agents: int, out: Path) -> float:
    grid = {
        "n_agents": agents,
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
    parser.add_argument("--runs", type=int, default=48, help="small runs per sweep (multiple of 8)")
    args = parser.parse_args(argv)
    seeds = max(1, args.runs // 8)
    print("sweep throughput (ratio = runs/s over 1 worker in process)")
    with tempfile.TemporaryDirectory() as tmp:
        for label, agents, n_seeds in (("small", 20, seeds), ("large", 200_000, 3)):
            base = runs_per_second(1, n_seeds, agents, Path(tmp) / f"{label}1")
            print(f"  {label} runs ({agents} agents, {8 * n_seeds} runs)")
            print(f"    1 worker : {base:7.2f} runs/s  1.00")
            rate = runs_per_second(2, n_seeds, agents, Path(tmp) / f"{label}2")
            print(f"    2 workers: {rate:7.2f} runs/s  {rate / base:.2f}")


if __name__ == "__main__":
    main()
