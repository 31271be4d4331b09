"""Cost of one tatonnement round against the numpy evaluation of the same aggregate demand.

Run from the repository root::

    python -m benchmarks.bench_tatonnement            # consumers 1e3..1e6, goods 2..50
    python -m benchmarks.bench_tatonnement --quick    # smaller grid

A round is everything between two consecutive price steps while the auctioneer runs with a
tolerance it cannot reach (so it never stops early): the posting, every population's report,
recording, the convergence test and the step. Its baseline is the reduced-form numpy evaluation
of the same Cobb-Douglas aggregate excess demand, ``((holdings @ p) @ shares) / p``, the algebra a
round cannot avoid, written the fastest way found here: into preallocated outputs
(``np.matmul(..., out=)``) and as the plain expression, the faster of the two counting.

How it is measured, so that a shared machine blurs it as little as possible:

* **CPU time** of this process (``time.process_time``), not wall time: waiting for a core does
  not count.
* **Interleaved**: runs of the auctioneer alternate with blocks of as many baseline
  evaluations, so both see the same load; the ratio is the median over the pairs. Blocks, not
  single evaluations, alternate: at 10^5 agents each side streams about 9 MB per evaluation, and
  alternating them round by round makes each evict the other's arrays from the shared cache,
  which slows both by a third to a half and measures the cache, not the round.
* **Warm-up excluded**: the first rounds of each run and the first evaluations of each block
  (first-touch page faults, cold caches) are dropped; each figure is a median over the rest.
* **One BLAS thread**: the measurement runs in a child process with ``OPENBLAS_NUM_THREADS=1``
  (and the OpenMP and MKL equivalents). Threaded BLAS on a busy two-core machine spins and
  stalls, which adds CPU time to both sides at random and makes the ratio noise; one thread is
  also the cheapest in CPU time, so the baseline is not slowed by it.

The naive n x g evaluation, ``(shares * (holdings @ p)[:, None] / p).sum(0) - holdings.sum(0)``,
is printed too for reference: a round costs much less than it from 10^4 agents on, because the
population never forms the n x g demand matrix.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import mktsim
from mktsim.steps import Multiplicative

#: Environment variables that pin BLAS (OpenBLAS, OpenMP builds, MKL) to one thread.
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

#: Rounds dropped at the start of each run.
WARMUP = 10


class ReducedForm:
    """The baseline: Cobb-Douglas aggregate demand ``((holdings @ p) @ shares) / p``.

    It holds its own copies of the holdings and shares and times two ways of writing the
    evaluation, alternately: into preallocated outputs and as the plain expression;
    :meth:`fastest` is the faster of their medians.
    """

    def __init__(self, holdings: np.ndarray, shares: np.ndarray) -> None:
        self.holdings = np.array(holdings, dtype=np.float64, order="C", copy=True)
        self.shares = np.array(shares, dtype=np.float64, order="C", copy=True)
        self._wealth = np.empty(self.holdings.shape[0])
        self._out = np.empty(self.holdings.shape[1])

    def preallocated(self, p: np.ndarray) -> None:
        np.matmul(self.holdings, p, out=self._wealth)
        np.matmul(self._wealth, self.shares, out=self._out)
        np.divide(self._out, p, out=self._out)

    def plain(self, p: np.ndarray) -> None:
        ((self.holdings @ p) @ self.shares) / p

    def fastest(self, evaluations: int) -> float:
        """Median CPU seconds of the faster form over ``evaluations`` of each (alternating,
        the first :data:`WARMUP` of each left out)."""
        p = np.linspace(0.5, 1.5, self.holdings.shape[1])
        forms: dict[str, Callable[[np.ndarray], None]] = {
            "out=": self.preallocated,
            "plain": self.plain,
        }
        times: dict[str, list[float]] = {name: [] for name in forms}
        clock = time.process_time
        for k in range(evaluations):
            for name in sorted(forms, reverse=bool(k % 2)):
                started = clock()
                forms[name](p)
                times[name].append(clock() - started)
        skip = min(WARMUP, evaluations // 2)
        return min(statistics.median(t[skip:]) for t in times.values())


def round_cost(scenario: mktsim.Scenario, rounds: int) -> float:
    """Median CPU seconds of a round over one run of ``rounds`` rounds (the first
    :data:`WARMUP` left out): the time from one price step to the next, the step included."""
    rule = Multiplicative(0.5)
    clock = time.process_time
    stamps: list[float] = []

    def timed(p: np.ndarray, z: np.ndarray, state: dict) -> np.ndarray:
        stamps.append(clock())
        return rule(p, z, state)

    mktsim.simulate(scenario, method=timed, until=rounds, tol=1e-300, record="summary")
    costs = np.diff(stamps)
    return float(np.median(costs[min(WARMUP, costs.size // 2) :]))


def naive_cost(scenario: mktsim.Scenario, repeat: int = 5) -> float:
    """Median CPU seconds of the naive n x g evaluation (for reference only)."""
    pop: Any = scenario.populations[0]
    shares, e = pop.utility.shares, pop.endowment
    p = np.linspace(0.5, 1.5, e.shape[1])
    times = []
    for _ in range(repeat):
        started = time.process_time()
        (shares * (e @ p)[:, None] / p).sum(0) - e.sum(0)
        times.append(time.process_time() - started)
    return statistics.median(times)


def rounds_for(n_agents: int) -> int:
    """Rounds per run: enough for a stable median, few enough for 10^6 agents."""
    return 300 if n_agents <= 10**5 else 60


def measure_here(n_agents: int, n_goods: int, repeat: int, naive: bool = False) -> dict[str, Any]:
    """Measure in this process: ``repeat`` pairs of a run and a block of baseline evaluations
    as long, alternating which comes first; medians over the pairs."""
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=n_agents, n_goods=n_goods)
    pop: Any = scenario.populations[0]
    base = ReducedForm(pop.endowment, pop.utility.shares)
    rounds = rounds_for(n_agents)
    costs, bases, ratios = [], [], []
    for k in range(repeat):
        if k % 2:
            b, r = base.fastest(rounds), round_cost(scenario, rounds)
        else:
            r, b = round_cost(scenario, rounds), base.fastest(rounds)
        costs.append(r)
        bases.append(b)
        ratios.append(r / b)
    return {
        "agents": n_agents,
        "goods": n_goods,
        "round_s": statistics.median(costs),
        "numpy_s": statistics.median(bases),
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "naive_s": naive_cost(scenario) if naive else None,
    }


def measure(n_agents: int, n_goods: int, repeat: int, naive: bool = False) -> dict[str, Any]:
    """:func:`measure_here` in a child process with one BLAS thread (see the module docstring)."""
    cmd = [sys.executable, "-m", "benchmarks.bench_tatonnement", "--child"]
    cmd += [f"--agents={n_agents}", f"--goods={n_goods}", f"--repeat={repeat}"]
    if naive:
        cmd.append("--naive")
    env = {**os.environ, **ONE_THREAD}
    root = Path(__file__).resolve().parents[1]  # where ``benchmarks`` imports from
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=root)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller grid")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (median)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--agents", type=int, default=10**5, help=argparse.SUPPRESS)
    parser.add_argument("--goods", type=int, default=5, help=argparse.SUPPRESS)
    parser.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure_here(args.agents, args.goods, args.repeat, args.naive)))
        return
    agents = [10**3, 10**4, 10**5] if args.quick else [10**3, 10**4, 10**5, 10**6]
    goods = [2, 10, 50] if args.quick else [2, 5, 10, 20, 50]
    print(
        "tatonnement round against ((holdings @ p) @ shares) / p (CPU ms, one BLAS thread, "
        f"medians over {args.repeat} runs; naive: the n x g evaluation, for reference)"
    )
    print(
        f"{'agents':>9} {'goods':>5} {'round ms':>10} {'numpy ms':>10} {'ratio':>7} {'naive ms':>9}"
    )
    sizes = [(n, 5) for n in agents]
    sizes += [(10**4 if args.quick else 10**5, g) for g in goods if g != 5]
    for n, g in sizes:
        r = measure(n, g, args.repeat, naive=True)
        print(
            f"{r['agents']:>9} {r['goods']:>5} {1e3 * r['round_s']:>10.3f} "
            f"{1e3 * r['numpy_s']:>10.3f} {r['ratio']:>7.2f} {1e3 * r['naive_s']:>9.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
