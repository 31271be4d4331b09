"""Prediction markets on limit orders over many seeds: the order book and the call market.

``python -m benchmarks.prediction_limit [--seeds N] [--quick]`` prints one Markdown table for the
default ``prediction_market`` (50 log-utility belief traders, 10 noise traders, P(yes) = 0.7, 50
time units; scenario seed = run seed, 0..N-1, default 30) under ``order_book``,
``call_market`` and, for comparison, the ``lmsr`` maker: the share of seeds whose final price
of ``yes`` is closer to the truth than 1/2 is, the mean and largest distance from the
wealth-weighted mean belief (the log-utility competitive price, computed here from the beliefs
and endowments), the mean distance from the truth, and the mean |Σ prices − 1|.
"""

from __future__ import annotations

import argparse

import numpy as np

import mktsim

MECHANISMS = ("order_book", "call_market", "lmsr")


def wealth_weighted_belief(scenario: mktsim.Scenario) -> float:
    """P(yes) at the competitive price: Σ_i W_i π_i / Σ_i W_i over the belief traders."""
    pop = scenario.populations[0]
    wealth = pop.endowment[:, 0] + pop.endowment[:, 1]
    return float((wealth * pop.beliefs[:, 0]).sum() / wealth.sum())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="10 seeds, 20 time units")
    args = parser.parse_args(argv)
    seeds, until = (10, 20.0) if args.quick else (args.seeds, 50.0)
    print(
        "| mechanism | closer to the truth than 1/2 | mean \\|final − wwb\\| | max | "
        "mean \\|final − truth\\| | mean \\|Σ prices − 1\\| |"
    )
    print("|---|---|---|---|---|---|")
    for mechanism in MECHANISMS:
        closer, gap, truth, total = [], [], [], []
        for seed in range(seeds):
            scenario = mktsim.build_scenario("prediction_market", until=until, seed=seed)
            s = mktsim.simulate(scenario, mechanism, seed=seed, record="summary").summary
            final = s["final_price"]
            closer.append(abs(final["yes"] - 0.7) < 0.2)
            gap.append(abs(final["yes"] - wealth_weighted_belief(scenario)))
            truth.append(abs(final["yes"] - 0.7))
            total.append(abs(sum(final.values()) - 1.0))
        print(
            f"| `{mechanism}` | {sum(closer)}/{seeds} | {np.mean(gap):.4f} | {np.max(gap):.4f} "
            f"| {np.mean(truth):.4f} | {np.mean(total):.4f} |"
        )


if __name__ == "__main__":
    main()
