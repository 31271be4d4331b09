"""Which step rules converge on Scarf's economy? A measured table, printed as Markdown.

Run from the repository root::

    python -m benchmarks.scarf_step_rules [--until 3000]

Every built-in step rule runs on the ``scarf`` scenario (start p0 = (1, 1.3, 0.7), good0 held at 1)
at three step sizes; the table gives whether the auctioneer reached ``tol`` (max relative excess
demand 1e-9), the final max relative price error against the equilibrium (1, 1, 1), and whether a
persistent cycle was detected.
"""

from __future__ import annotations

import argparse

import mktsim
from mktsim.steps import rule_names

STEPS = (0.02, 0.1, 0.5, 1.0)


def table(until: float) -> list[dict[str, object]]:
    scenario = mktsim.build_scenario("scarf")
    rows = []
    for method in rule_names():
        for step in STEPS:
            s = mktsim.simulate(scenario, method=method, step=step, until=until).summary
            rows.append(
                {
                    "method": method,
                    "step": step,
                    "converged": s["converged"],
                    "rounds": s["rounds"],
                    "price_error": s["price_error"],
                    "cycle": s["cycle_detected"],
                }
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--until", type=float, default=5000.0)
    args = parser.parse_args(argv)
    print(f"Scarf's economy, {args.until:g} rounds at most\n")
    print("| method | step | converged | rounds | final price error | cycle detected |")
    print("|---|---|---|---|---|---|")
    for r in table(args.until):
        print(
            f"| {r['method']} | {r['step']} | {r['converged']} | {r['rounds']} | "
            f"{r['price_error']:.2e} | {r['cycle']} |"
        )


if __name__ == "__main__":
    main()
