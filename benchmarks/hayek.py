"""First-price, Vickrey and bucket-brigade payments on the same task worlds (Hayek machine).

``python -m benchmarks.hayek [--seeds N] [--quick]`` runs the shipped ``hayek_chain`` (six
states) and ``hayek_grid`` (two rooms) scenarios under each payment rule of the
``right_to_act`` auction, with the same learning bidders (``bid_learner``), and prints one
Markdown row per task and rule:

* bid error: max over states auctioned in the last fifth of the run of |last winning bid −
  value-to-go| / value-to-go (mean over seeds);
* best-agent wins: share of those auctions won by an agent whose action is optimal there;
* rounds to settle: auctions until every later winning bid stays within 5% of its state's
  value, counted only when that holds over the whole last fifth (median over the seeds that
  settle; "never" when none does);
* gain from shading: what the winner paid above the runner-up's bid, per auction (mean over
  the last fifth): what a winner would save by bidding just above the runner-up. Zero under
  second-price payments whatever the bids (truthful bidding costs nothing there); positive
  under the first-price rules, which is why truthful bids are not an equilibrium of those.
"""

from __future__ import annotations

import argparse

import numpy as np

import mktsim

RULES = ("first_price", "vickrey", "bucket_brigade")
#: (scenario, parameters): the default cloned societies (two agents per action), and the chain
#: with one agent per action, where a second-price payment passes on only the runner-up's bid.
TASKS: tuple[tuple[str, dict[str, object]], ...] = (
    ("hayek_chain", {}),
    ("hayek_chain", {"clones": 1}),
    ("hayek_grid", {}),
)


def measure(task: str, payment: str, seeds: int, **params: object) -> dict[str, object]:
    """Mean bid error, mean best-agent share and median rounds to settle over seeds."""
    errors, shares, settle, gains = [], [], [], []
    for seed in range(seeds):
        run = mktsim.simulate(mktsim.build_scenario(task, payment=payment, **params), seed=seed)
        errors.append(run.summary["value_error"])
        shares.append(run.summary["best_action_share"])
        settle.append(run.summary["rounds_to_settle"])
        gains.append(run.summary["shading_gain"])
    settled = [s for s in settle if s is not None]
    return {
        "task": task,
        "payment": payment,
        "bid_error": float(np.mean(errors)),
        "best_wins": float(np.mean(shares)),
        "settle": int(np.median(settled)) if settled else None,
        "settled": f"{len(settled)}/{seeds}",
        "shading_gain": float(np.mean(gains)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3, help="seeds per cell")
    parser.add_argument("--quick", action="store_true", help="one seed")
    args = parser.parse_args(argv)
    seeds = 1 if args.quick else args.seeds
    print(
        "| task | clones | payment | bid error | best-agent wins | rounds to settle (settled) "
        "| gain from shading |"
    )
    print("|---|---:|---|---:|---:|---:|---:|")
    for task, params in TASKS:
        for payment in RULES:
            row = measure(task, payment, seeds, **params)
            settle = "never" if row["settle"] is None else str(row["settle"])
            print(
                f"| {task} | {params.get('clones', 2)} | {payment} | {row['bid_error']:.1%} | "
                f"{row['best_wins']:.1%} | {settle} ({row['settled']}) | "
                f"{row['shading_gain']:.3f} |"
            )


if __name__ == "__main__":
    main()
