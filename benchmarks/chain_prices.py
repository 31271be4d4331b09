"""Supply chains on limit orders and pools: how near the prices settle to the planner's.

Run from the repository root (about a minute per run; give scenario:mechanism pairs and
``--seeds N`` to run fewer)::

    python -m benchmarks.chain_prices [two_inputs:call_market ...] [--seeds 10] [--until 300]

For each pair, ``flow=True`` with the scenario's defaults (``near_constant``: ``two_inputs``
with ``assembler=(2, 0.1, 0.8)``, a near-constant-returns assembler), seeds 0..N-1: the ``estimate``
column of ``prices`` over the last third of the run divided by the reference, the planner's
shadow prices (:func:`mktsim.production.planner`, scipy, no market) for ``two_inputs`` and the
closed forms 1/24, 1/6, 3/2 (natgas, ethylene, polyethylene at x = 4) for ``tupperware``.
Printed per seed: the largest relative error and the mean signed error of each priced
intermediate, and the firms the run reports stalled (``stalled_firms``).
"""

from __future__ import annotations

import argparse
import math

import numpy as np

import mktsim
from mktsim.production import planner

#: Variants of the scenarios by name: (scenario, its parameters besides ``flow``).
VARIANTS: dict[str, tuple[str, dict[str, object]]] = {
    "two_inputs": ("two_inputs", {}),
    "tupperware": ("tupperware", {}),
    # a near-constant-returns assembler: exponents summing to 0.9, 90% of its sales on inputs
    "near_constant": ("two_inputs", {"assembler": (2.0, 0.1, 0.8)}),
}

PAIRS = (
    "two_inputs:call_market",
    "two_inputs:order_book",
    "tupperware:call_market",
    "tupperware:order_book",
)


def reference(name: str) -> dict[str, float]:
    """The prices the chain should settle at, numeraire per unit."""
    scenario, params = VARIANTS[name]
    if scenario == "two_inputs":
        from mktsim.scenarios.two_inputs import graph

        shadow = planner(graph(**params)).prices  # type: ignore[arg-type]
        return {"ore": shadow["ore"], "metal": shadow["metal"]}
    a = math.sqrt(4.0)
    b = 1.0 - 1.0 / (a + 1.0)
    p_b = 1.0 / b
    p_a = p_b / (a + 1.0) ** 2
    return {"natgas": p_a / (2.0 * math.sqrt(4.0)), "ethylene": p_a, "polyethylene": p_b}


def measure(name: str, mechanism: str, seed: int, until: float) -> str:
    ref = reference(name)
    scenario, params = VARIANTS[name]
    built = mktsim.build_scenario(scenario, flow=True, **params)
    run = mktsim.simulate(built, mechanism, seed=seed, until=until)
    est = run.prices.pivot_table(index="time", columns="good", values="estimate", observed=True)
    late = est[est.index >= 2.0 * until / 3.0]
    cells = []
    for good, want in ref.items():
        ratio = late[good].to_numpy() / want - 1.0
        cells.append(f"{good} max {np.abs(ratio).max():6.2%} mean {ratio.mean():+6.2%}")
    stalled = run.summary.get("stalled_firms")
    return f"{name} {mechanism} seed {seed}: " + "; ".join(cells) + f"; stalled {stalled}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", nargs="*", default=list(PAIRS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--until", type=float, default=300.0)
    args = parser.parse_args(argv)
    for pair in args.pairs:
        name, mechanism = pair.split(":")
        for seed in range(args.seeds):
            print(measure(name, mechanism, seed, args.until), flush=True)


if __name__ == "__main__":
    main()
