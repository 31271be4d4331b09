"""Saved runs read back part by part, whether or not their tables streamed.

A streamed table is a folder of Parquet parts, possibly larger than memory in all. What the
command line reads of a run folder afterwards is therefore read one part at a time: the report
reduces a streamed ``trades`` table to one row per settlement and good (:func:`report_input`,
for ``mktsim run``, ``mktsim run --counterfactual`` and ``mktsim report`` alike), and ``mktsim
rerun`` compares two saved tables block by block (:func:`same_table`). This module reads frames
only (the report's contract), never the simulator.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mktsim.errors import MktsimError
from mktsim.recorder import read_frame

__all__ = ["report_input", "same_table"]


def report_input(folder: str | Path, counterfactual: bool = True) -> Any:
    """A saved run or (with ``counterfactual``) counterfactual folder as the report reads it,
    whether or not it streamed.

    A streamed ``trades`` table (a folder of parts) is read part by part and reduced to what
    reports use of it, one buyers' row per settlement and good (time and price of the
    settlement, units bought and money paid summed, agent -1), so a report never holds a table
    larger than memory; every other frame, and every table saved whole, is read as it is. A
    folder where nothing streamed is returned as given.
    """
    from mktsim.report.data import CounterfactualData, counterfactual_of, load

    path = Path(folder)
    if not any(_streamed_trades(path / run) for run in ("", "baseline", "treated")):
        return folder  # nothing streamed: the report reads the folder as it always does
    cf = counterfactual_of(path) if counterfactual else None
    if cf is None:
        return _reduced(load(path), path)
    return CounterfactualData(
        cf.summary,
        cf.deviation,
        _reduced(cf.baseline, path / "baseline"),
        _reduced(cf.treated, path / "treated"),
        cf.source,
    )


def _streamed_trades(folder: Path) -> bool:
    return (folder / "trades.parquet").is_dir()


def _reduced(data: Any, folder: Path) -> Any:
    from mktsim.report.data import RunData

    trades = folder / "trades.parquet"
    if not _streamed_trades(folder):
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


def same_table(saved: Sequence[Path], again: Sequence[Path]) -> bool:
    """Whether two saved tables, each given as its Parquet parts in order (one file for a
    table saved whole), hold the same frame: the same columns, dtypes and categories, and the
    same rows. Compared one block at a time, at most a part of each side in memory, because
    either side may have streamed (its parts need not line up with the other's)."""
    left, right = _blocks(saved), _blocks(again)
    first_left, first_right = next(left, None), next(right, None)
    if first_left is None or first_right is None:
        return first_left is None and first_right is None
    if not _equal(first_left.iloc[:0], first_right.iloc[:0]):
        return False  # columns, dtypes or categories differ
    a, b = first_left, first_right
    while True:
        a = _non_empty(a, left)
        b = _non_empty(b, right)
        if a is None or b is None:
            return a is None and b is None
        n = min(len(a), len(b))
        if not _equal(a.iloc[:n], b.iloc[:n]):
            return False
        a, b = a.iloc[n:], b.iloc[n:]


def _blocks(parts: Sequence[Path]) -> Iterator[pd.DataFrame]:
    for part in parts:
        try:
            frame = read_frame(part)
        except Exception as exc:  # a missing or damaged file: any pyarrow or OS error
            raise MktsimError(f"cannot read {part}: {exc}") from None
        yield frame


def _non_empty(frame: pd.DataFrame | None, rest: Iterator[pd.DataFrame]) -> pd.DataFrame | None:
    while frame is not None and frame.empty:
        frame = next(rest, None)
    return frame


def _equal(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    try:
        pd.testing.assert_frame_equal(
            a.reset_index(drop=True), b.reset_index(drop=True), check_exact=True
        )
    except AssertionError:
        return False
    return True
