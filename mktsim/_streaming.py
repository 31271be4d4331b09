"""``mktsim run`` on runs too large for memory: decide before the run whether to stream.

Before a run the command line estimates its memory (:func:`mktsim.footprint.estimate`). A run
whose per-agent state cannot fit in this machine's memory is refused with the estimate. A run
whose recorded tables would exceed the memory budget (``--memory-budget``, default
:data:`~mktsim.footprint.DEFAULT_MEMORY_BUDGET`) streams them as Parquet parts into a hidden
folder beside its run folder while it goes; saving links the parts into the run folder (a
folder of parts per table, which ``pandas.read_parquet`` and :func:`mktsim.load` read as one
table). The report then reads the streamed ``trades`` part by part, keeping only what it shows.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mktsim.errors import MktsimError
from mktsim.footprint import (
    DEFAULT_MEMORY_BUDGET,
    Footprint,
    estimate,
    format_bytes,
    parse_bytes,
    physical_memory,
)
from mktsim.recorder import read_frame
from mktsim.registry import resolve

__all__ = ["Streaming", "add_arguments"]


def add_arguments(parser: Any) -> None:
    """The run's ``--memory-budget`` and ``--stream`` flags."""
    parser.add_argument(
        "--memory-budget",
        default=None,
        metavar="SIZE",
        help="recorded tables estimated above this are streamed to the run folder as Parquet "
        "parts while the run goes (e.g. 512MiB, 4GiB; default "
        f"{format_bytes(DEFAULT_MEMORY_BUDGET)})",
    )
    parser.add_argument(
        "--stream",
        action="store_true",
        help="stream the recorded tables to the run folder whatever their estimated size",
    )


class Streaming:
    """Whether and where one ``mktsim run`` streams its tables.

    Args:
        scenario: the scenario to run.
        mechanism: the mechanism as given (None: the scenario's).
        options: mechanism options as given.
        until: the horizon as given (None: the scenario's).
        shocks: shocks as given (None: the scenario's).
        out: the ``--out`` folder as given, or None for the default under ``reports/runs``.
        budget: ``--memory-budget`` as given (None: the default).
        force: ``--stream``.

    Raises:
        MktsimError: the run's state cannot fit in this machine's memory.
    """

    def __init__(
        self,
        scenario: Any,
        mechanism: Any,
        options: dict[str, Any],
        until: float | None,
        shocks: Sequence[Any] | None,
        out: Path | None,
        budget: str | None,
        force: bool,
    ) -> None:
        limit = DEFAULT_MEMORY_BUDGET if budget is None else parse_bytes(budget, "--memory-budget")
        cls = resolve(scenario.mechanism if mechanism is None else mechanism)
        merged = {**dict(scenario.mechanism_options.get(cls.name, {})), **options}
        horizon = scenario.until if until is None else float(until)
        planned = tuple(scenario.shocks if shocks is None else shocks)
        self.footprint: Footprint = estimate(scenario, cls, merged, horizon, "all", planned)
        have = physical_memory()
        if self.footprint.state_bytes > have:
            raise MktsimError(
                f"{scenario.name} with {scenario.n_agents} agents and {len(scenario.goods)} goods "
                f"needs about {format_bytes(self.footprint.state_bytes)} of memory for its state "
                f"alone; this machine has {format_bytes(have)}"
            )
        self.on = force or self.footprint.table_bytes > limit
        self.limit = limit
        self.parent = (out.parent if out is not None else Path("reports") / "runs") or Path(".")
        self.folder: Path | None = None

    def __enter__(self) -> Streaming:
        if self.on:
            try:
                self.parent.mkdir(parents=True, exist_ok=True)
                self.folder = Path(tempfile.mkdtemp(prefix=".stream.", dir=self.parent))
            except OSError as exc:
                raise MktsimError(f"cannot stream into {str(self.parent)!r}: {exc}") from None
            print(
                f"mktsim: recorded tables estimated at {format_bytes(self.footprint.table_bytes)}"
                + (
                    f" (over the memory budget of {format_bytes(self.limit)})"
                    if self.footprint.table_bytes > self.limit
                    else ""
                )
                + ": streaming them to the run folder as Parquet parts",
                file=sys.stderr,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def report_data(self, out: Path) -> Any:
        """The saved run as the report reads it: a streamed ``trades`` table is read part by
        part and reduced to what reports use of it, one buyers' row per settlement and good
        (time and price of the settlement, units bought and money paid summed, agent -1)."""
        from mktsim.report.data import RunData, load

        data = load(out)
        trades = out / "trades.parquet"
        if not self.on or not trades.is_dir():
            return data

        def read(name: str) -> pd.DataFrame:
            if name == "trades":
                return _bought_per_settlement(sorted(trades.glob("*.parquet")))
            return data.frame(name)

        return RunData(data.summary, data.source, data.tables, read)


#: One row per settlement and good: the units bought and the money paid for them.
_PER_SETTLEMENT = {
    "time": ("time", "first"),
    "round": ("round", "first"),
    "price": ("price", "first"),
    "quantity": ("quantity", "sum"),
    "cash": ("cash", "sum"),
}


def _bought_per_settlement(parts: list[Path]) -> pd.DataFrame:
    keys = ["trade_id", "good"]
    pieces = []
    columns: list[str] = []
    for part in parts:
        frame = read_frame(part)
        columns = list(frame.columns)
        bought = frame[frame["quantity"] > 0]
        pieces.append(
            bought.groupby(keys, sort=False, observed=True).agg(**_PER_SETTLEMENT).reset_index()
        )
    if not pieces:
        raise MktsimError("the streamed trades table has no parts")
    joined = pd.concat(pieces, ignore_index=True)  # a settlement may span two parts
    out = joined.groupby(keys, sort=False, observed=True).agg(**_PER_SETTLEMENT).reset_index()
    out["agent"] = -1
    return out[columns]
