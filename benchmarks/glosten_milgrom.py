"""Glosten-Milgrom dealer market: spreads, convergence of quotes and profits, measured.

Run from the repository root (about a minute)::

    python -m benchmarks.glosten_milgrom [--seeds 100]

Three tables for the README: the first spread at belief 1/2 against mu (V_H - V_L); the number
of dealer trades until both quotes are within 0.2 of the true value, against the drift estimate
(ln 99 + lambda) / (mu lambda), lambda = ln((1 + mu) / (1 - mu)) (the log-odds move by lambda
per informed trade and the belief must get from 1/2 to 0.99); and the profits of the dealer, the
informed and the noise traders at the true value.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np

import mktsim


def summary(seed: int, **params: Any) -> dict[str, Any]:
    scenario = mktsim.build_scenario("glosten_milgrom", **params)
    return mktsim.simulate(scenario, seed=seed, record="summary").summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100, help="seeds per setting")
    seeds = range(parser.parse_args(argv).seeds)
    print("mu    first spread  mu (V_H - V_L)")
    for mu in (0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 0.95):
        s = summary(0, mu=mu, until=1e-6)
        print(f"{mu:<5} {s['first_spread']:12.2f}  {mu * (s['v_high'] - s['v_low']):14.2f}")
    print("\nmu    dealer trades to within 0.2 of V: mean  median  90%  never  drift estimate")
    for mu in (0.1, 0.3, 0.5):
        k = np.array(
            [summary(seed, mu=mu)["trades_to_converge"] for seed in seeds], dtype=np.float64
        )  # None -> nan: not within the horizon
        lam = math.log((1 + mu) / (1 - mu))
        print(
            f"{mu:<5} {np.nanmean(k):41.1f} {np.nanmedian(k):7.0f} {np.nanpercentile(k, 90):4.0f}"
            f" {int(np.isnan(k).sum()):6d} {(math.log(99) + lam) / (mu * lam):15.1f}"
        )
    runs = [summary(seed) for seed in range(2 * len(seeds))]
    print(f"\nprofits at the defaults, {len(runs)} seeds: mean, sd, standard error")
    for who in ("dealer", "informed", "noise"):
        x = np.array([r[f"{who}_profit"] for r in runs])
        sd = x.std(ddof=1)
        print(f"  {who:<9} {x.mean():8.2f} {sd:8.2f} {sd / math.sqrt(len(x)):6.2f}")


if __name__ == "__main__":
    main()
