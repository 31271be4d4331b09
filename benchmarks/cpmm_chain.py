"""Supply chain on constant-product pools: how fast pool prices reach the derivatives.

Run from the repository root (about 6 minutes; pass row numbers to run some configurations)::

    python -m benchmarks.cpmm_chain [ROW ...]

``tupperware`` at natgas = 4 with ``flow=True`` under ``cpmm``, seeds 0..5, pools opening at
price 1, for several pool depths and fees. The references are the closed forms 3/2, 1/6, 1/24
(polyethylene, ethylene, natgas). Two measures of each pool's price: the spot price after every
swap, and its time-weighted average over the preceding cycle (5 time units), which removes the
swings within a cycle as each batch is bought and sold. "Settles" is the time after which the
largest of the three relative errors stays below 5% ("never" if it is still above at the end).
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

import mktsim

UNTIL = 250.0
CYCLE = 5.0
GRID = 0.05
REFERENCE = {"polyethylene": 1.5, "ethylene": 1 / 6, "natgas": 1 / 24}
CONFIGS = (
    ("defaults (depth 0.1, fee 0.003)", {}),
    ("depth 0.05", {"depth": 0.05}),
    ("depth 0.3", {"depth": 0.3}),
    ("depth 1", {"depth": 1.0}),
    ("fee 0", {"fee": 0.0}),
    ("fee 0.01", {"fee": 0.01}),
)


def settles(times: np.ndarray, error: np.ndarray) -> float:
    """The time after which ``error`` stays below 5% (inf if it is still above within the last
    cycle)."""
    bad = times[error >= 0.05]
    if not len(bad):
        return 0.0
    return math.inf if bad.max() >= UNTIL - CYCLE else float(bad.max())


def measure(seed: int, options: dict[str, float]) -> tuple[float, float, float, float, float]:
    """(spot settles, cycle-average settles, worst spot error and worst cycle-average error over
    the last 50 time units, wall seconds) of one run."""
    scenario = mktsim.build_scenario("tupperware", natgas=4, flow=True)
    start = time.perf_counter()
    run = mktsim.simulate(
        scenario, "cpmm", seed=seed, until=UNTIL, quiet="never", record="summary", **options
    )
    wall = time.perf_counter() - start
    prices = run.prices.pivot_table(index="time", columns="good", values="price", observed=True)
    prices = prices.ffill()
    times = prices.index.to_numpy()
    spot = np.max([np.abs(prices[g].to_numpy() / v - 1) for g, v in REFERENCE.items()], axis=0)
    # the spot as a step function on a fine grid, then its moving average over one cycle
    grid = np.arange(0.0, UNTIL + 1e-9, GRID)
    step = np.maximum(np.searchsorted(times, grid, side="right") - 1, 0)
    width = round(CYCLE / GRID)
    averaged = []
    for good, ref in REFERENCE.items():
        cumulative = np.concatenate([[0.0], np.cumsum(prices[good].to_numpy()[step] / ref)])
        averaged.append(np.abs((cumulative[width:] - cumulative[:-width]) / width - 1))
    average_error = np.max(averaged, axis=0)
    average_times = grid[width - 1 :][: len(average_error)]
    late = times >= UNTIL - 50
    return (
        settles(times, spot),
        settles(average_times, average_error),
        float(spot[late].max()),
        float(average_error[average_times >= UNTIL - 50].max()),
        wall,
    )


def main(argv: list[str] | None = None) -> None:
    rows = [int(a) for a in (sys.argv[1:] if argv is None else argv)] or range(len(CONFIGS))
    print("tupperware (natgas 4, flow) under cpmm, seeds 0..5: time to 5% of 3/2, 1/6, 1/24")
    for row in rows:
        label, options = CONFIGS[row]
        results = [measure(seed, options) for seed in range(6)]

        def show(v: float) -> str:
            return "never" if math.isinf(v) else f"{v:.0f}"

        print(
            f"  {label}: cycle average settles {', '.join(show(r[1]) for r in results)}; "
            f"spot settles {', '.join(show(r[0]) for r in results)}; last 50: worst cycle "
            f"average error {max(r[3] for r in results):.1%}, worst spot error "
            f"{max(r[2] for r in results):.1%}; {np.mean([r[4] for r in results]):.1f} s/run",
            flush=True,
        )


if __name__ == "__main__":
    main()
