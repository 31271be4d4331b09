"""Cost of one tatonnement round against agents and goods.

Run from the repository root::

    python -m benchmarks.bench_tatonnement            # consumers 1e3..1e6, goods 2..50
    python -m benchmarks.bench_tatonnement --quick    # smaller grid

For each size, the marginal cost of a round is measured by running the auctioneer for R1 and R2
rounds (with a tolerance it cannot reach, so it never stops early) and dividing the difference in
wall time by R2 - R1; setup (building the economy, the reference equilibrium, recording holdings)
cancels out. The baseline, measured in the same run at the same size, is one bare numpy evaluation
of Cobb-Douglas excess demand written the straightforward way:
``(shares * (e @ p)[:, None] / p).sum(0) - e.sum(0)``. A ratio below 1 means a whole round (SimPy
events, reports, recording and the price step) costs less than that one evaluation, because the
population aggregates demand as (w @ shares) / p without forming the n x g demand matrix.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import mktsim


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def round_cost(scenario: mktsim.Scenario, r1: int, r2: int) -> float:
    """Marginal wall seconds per round."""

    def run(rounds: int) -> float:
        t = time.perf_counter()
        mktsim.simulate(scenario, until=rounds, tol=1e-300, record="summary")
        return time.perf_counter() - t

    return (min(run(r2) for _ in range(3)) - min(run(r1) for _ in range(3))) / (r2 - r1)


def baseline_cost(scenario: mktsim.Scenario) -> float:
    pop = scenario.populations[0]
    shares, e = pop.utility.shares, pop.endowment
    p = np.linspace(0.5, 1.5, e.shape[1])

    def naive() -> None:
        (shares * (e @ p)[:, None] / p).sum(0) - e.sum(0)

    return best_of(naive, 5)


def measure(n_agents: int, n_goods: int) -> dict[str, float]:
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=n_agents, n_goods=n_goods)
    # enough rounds that the difference of two wall times is well above timer noise
    rounds = 800 if n_agents <= 10**4 else 60 if n_agents <= 10**5 else 16
    per_round = round_cost(scenario, rounds // 4, rounds)
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
