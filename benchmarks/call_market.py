"""The frequent batch auction with the shared strategies, over many seeds.

``python -m benchmarks.call_market [--seeds N] [--quick]`` prints two Markdown tables:

* Gode & Sunder's markets 1-4 (``gode_sunder``, six sessions) with constrained
  zero-intelligence traders (``zi_c``) under ``call_market``: allocative efficiency, mean and
  minimum over seeds 0..N-1 (default 20), and the share of batches whose price lies in the
  competitive range of the orders present (rebuilt from the ``orders`` table; should be 1);
* ``cobb_douglas`` (100 consumers, three goods) with the consumers' default strategy
  (``utility``): the final price estimate's relative error against the equilibrium of the
  holdings reached (``price_error_vs_holdings_equilibrium``), mean and maximum over seeds
  0..M-1 (default 10), and against the equilibrium of the endowments (``price_error``).
"""

from __future__ import annotations

import argparse
import math

import numpy as np

import mktsim


def competitive_share(run: mktsim.Run) -> float:
    """Share of trading batches cleared inside ``[max(a_V, b_V+1), min(b_V, a_V+1)]`` of the
    unit orders present (V the crossing volume)."""
    orders = run.frame("orders")
    arrived = orders[(orders["action"] == "limit") & (orders["status"] == "accepted")]
    gone = orders[
        orders["action"].isin(["fill", "expire", "close"])
        | ((orders["action"] == "cancel") & (orders["status"] == "cancelled"))
    ]
    left = arrived["order_id"].map(gone.groupby("order_id")["time"].min()).fillna(math.inf)
    t, out = arrived["time"].to_numpy(), left.to_numpy()
    buy, price = (arrived["side"] == "buy").to_numpy(), arrived["price"].to_numpy()
    inside = total = 0
    for batch in run.frame("batches").itertuples():
        if not batch.volume:
            continue
        present = (t < batch.time) & (out >= batch.time)
        b = sorted(price[present & buy], reverse=True)
        a = sorted(price[present & ~buy])
        v = int(batch.volume)
        lo = max(a[v - 1], b[v] if v < len(b) else -math.inf)
        hi = min(b[v - 1], a[v] if v < len(a) else math.inf)
        total += 1
        inside += lo <= batch.price <= hi
    return inside / total if total else math.nan


def gode_sunder(seeds: int) -> None:
    print("| market | efficiency mean | efficiency min | batches in the competitive range |")
    print("|---|---|---|---|")
    for market in (1, 2, 3, 4):
        eff, share = [], []
        for seed in range(seeds):
            scenario = mktsim.build_scenario("gode_sunder", market=market)
            run = mktsim.simulate(scenario, "call_market", seed=seed, record_orders="all")
            eff.append(run.summary["allocative_efficiency"])
            share.append(competitive_share(run))
        print(
            f"| {market} | {np.mean(eff):.2%} | {np.min(eff):.2%} | {np.mean(share):.3f} |",
            flush=True,
        )


def cobb_douglas(seeds: int) -> None:
    print("\n| cobb_douglas | mean | max |")
    print("|---|---|---|")
    held, endowed = [], []
    for seed in range(seeds):
        run = mktsim.simulate(mktsim.build_scenario("cobb_douglas"), "call_market", seed=seed)
        held.append(run.summary["price_error_vs_holdings_equilibrium"])
        endowed.append(run.summary["price_error"])
    print(f"| error vs holdings equilibrium | {np.mean(held):.2%} | {np.max(held):.2%} |")
    print(f"| error vs endowment equilibrium | {np.mean(endowed):.2%} | {np.max(endowed):.2%} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=20, help="Gode-Sunder seeds per market")
    parser.add_argument("--cd-seeds", type=int, default=10, help="cobb_douglas seeds")
    parser.add_argument("--quick", action="store_true", help="3 and 2 seeds")
    args = parser.parse_args(argv)
    gode_sunder(3 if args.quick else args.seeds)
    cobb_douglas(2 if args.quick else args.cd_seeds)


if __name__ == "__main__":
    main()
