"""An ABIDES-sized order-book market as a scenario script, for ``mktsim run``.

``mktsim run benchmarks/abides_scenario.py --no-report`` runs 1,000 ``zi_c`` traders (500 buyers,
500 sellers, four periods) for about 3,000 orders; ``--set kind='"utility"'`` runs 1,000
Cobb-Douglas consumers with the ``utility`` strategy instead (``--mechanism order_book``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import attrs

import mktsim

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script by path

from benchmarks import bench_market, bench_utility


def build(agents: int = 1000, until: float = 3.0, kind: str = "zi_c") -> mktsim.Scenario:
    """``kind`` ``zi_c``: the induced-value market of :mod:`benchmarks.bench_market`;
    ``utility``: the consumers of :mod:`benchmarks.bench_utility` (horizon ``until``)."""
    if kind == "zi_c":
        return bench_market.market_scenario(agents, until=until)
    return attrs.evolve(
        bench_utility.scenario(agents),
        mechanism="order_book",
        until=until,
        mechanism_options={"order_book": {"record_interval": until}},
    )
