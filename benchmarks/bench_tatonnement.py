"""Cost of one tatonnement round against agents and goods.

Run from the repository root::

    python -m benchmarks.bench_tatonnement            # consumers 1e3..1e6, goods 2..50
    python -m benchmarks.bench_tatonnement --quick    # smaller grid

For each size, the cost of a round is the median wall time between consecutive calls of the step
rule while the auctioneer runs with a tolerance it cannot reach (so it never stops early): one
whole round of posting, reports, recording and stepping, with setup excluded. The baseline,
measured in the same run at the same size, is one bare numpy evaluation of Cobb-Douglas excess
demand written the straightforward way:
``(shares * (e @ p)[:, None] / p).sum(0) - e.sum(0)``. A ratio below 1 means a whole round (SimPy
events, reports, recording and the price step) costs less than that one evaluation, because the
population aggregates demand as (w @ shares) / p without forming the n x g demand matrix.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import mktsim
from mktsim.steps import Multiplicative


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def round_cost(scenario: mktsim.Scenario, rounds: int) -> float:
    """Median wall seconds between consecutive price steps: one whole round (posting, every
    population's report, recording, the step), with setup excluded."""
    stamps: list[float] = []
    rule = Multiplicative(0.5)

    def timed(p: np.ndarray, z: np.ndarray, state: dict) -> np.ndarray:
        stamps.append(time.perf_counter())
        return rule(p, z, state)

    mktsim.simulate(scenario, method=timed, until=rounds, tol=1e-300, record="summary")
    return float(np.median(np.diff(stamps)))


def baseline_cost(scenario: mktsim.Scenario) -> float:
    pop = scenario.populations[0]
    shares, e = pop.utility.shares, pop.endowment
    p = np.linspace(0.5, 1.5, e.shape[1])

    def naive() -> None:
        (shares * (e @ p)[:, None] / p).sum(0) - e.sum(0)

    return best_of(naive, 5)


def measure(n_agents: int, n_goods: int) -> dict[str, float]:
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=n_agents, n_goods=n_goods)
    per_round = round_cost(scenario, 200 if n_agents <= 10**5 else 30)
    base = baseline_cost(scenario)
    return {
        "agents": n_agents,
        "goods": n_goods,
        "round_s": per_round,
        "numpy_eval_s": base,
        "ratio": per_round / base,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller grid")
    args = parser.parse_args(argv)
    agents = [10**3, 10**4, 10**5] if args.quick else [10**3, 10**4, 10**5, 10**6]
    goods = [2, 10, 50] if args.quick else [2, 5, 10, 20, 50]
    print("tatonnement round cost (ratio = round / one bare numpy excess-demand evaluation)")
    print(f"{'agents':>9} {'goods':>5} {'round ms':>10} {'numpy ms':>10} {'ratio':>7}")
    rows = [measure(n, 5) for n in agents]
    rows += [measure(10**4 if args.quick else 10**5, g) for g in goods if g != 5]
    for r in rows:
        print(
            f"{r['agents']:>9} {r['goods']:>5} {1e3 * r['round_s']:>10.3f} "
            f"{1e3 * r['numpy_eval_s']:>10.3f} {r['ratio']:>7.2f}"
        )


if __name__ == "__main__":
    main()
