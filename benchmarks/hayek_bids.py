"""The figure of the right-to-act page: winning bids against the true values-to-go over training.

``python -m benchmarks.hayek_bids [--out docs/figures/hayek_bids.png] [--seed 0]`` runs the
shipped ``hayek_chain`` (six states) once under each payment rule with the same learning bidders
and draws, per rule, the winning bid at each state against the auction's round, with the state's
value-to-go (computed by value iteration, :func:`mktsim.tasks.values`) as a dashed line of the
same colour. Under Vickrey and bucket-brigade payments the bids settle on the dashed lines; under
first-price payments (the world keeps the money) they fall to the one-step rewards.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from matplotlib.figure import Figure

import mktsim
from mktsim.tasks import ChainTask, values

RULES = ("vickrey", "bucket_brigade", "first_price")
OUT = Path("docs/figures/hayek_bids.png")


def draw(out: Path = OUT, seed: int = 0, length: int = 6) -> Path:
    """Draw the figure to ``out`` (PNG; its folder is made) and return the path."""
    truth, _ = values(ChainTask(length=length))
    fig = Figure(figsize=(12, 3.6))  # no pyplot: no global figure state, no display
    axes = fig.subplots(1, len(RULES), sharey=True)
    for ax, rule in zip(axes, RULES, strict=True):
        scenario = mktsim.build_scenario("hayek_chain", length=length, payment=rule)
        auctions = mktsim.simulate(scenario, seed=seed).frame("auctions")
        for state in range(length):
            colour = f"C{state}"
            won = auctions[auctions["state"] == state]
            ax.plot(won["round"], won["bid"], ".", ms=2, color=colour, label=f"state {state}")
            ax.axhline(truth[state], color=colour, ls="--", lw=1)
        ax.set_title(rule.replace("_", " "))
        ax.set_xlabel("auction (round)")
    axes[0].set_ylabel("winning bid (dashed: value-to-go)")
    axes[-1].legend(loc="upper right", fontsize=7, markerscale=4)
    fig.suptitle(f"hayek_chain, {length} states, two clones per action, seed {seed}")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, metadata={"Software": None})  # no version stamp: same run, same bytes
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT, help="PNG file to write")
    parser.add_argument("--seed", type=int, default=0, help="run seed")
    args = parser.parse_args(argv)
    print(draw(args.out, args.seed))


if __name__ == "__main__":
    main()
