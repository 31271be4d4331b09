"""Append-only columnar tables: the single record of what happened in a run.

Each table has a fixed, documented schema. Rows are appended in column chunks (numpy arrays or
scalars broadcast to the chunk length), never row by row into DataFrames, so recording costs
O(rows) with small constants and no per-agent Python objects. Categorical columns (goods,
populations, kinds) are stored as integer codes and decoded once when a frame is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from attrs import frozen

from mktsim.errors import InvalidParameter, UnknownName

__all__ = ["SCHEMAS", "Column", "Recorder"]


@frozen
class Column:
    """A column: numpy dtype, or ``"category"`` with the name of its category list."""

    dtype: str
    categories: str | None = None
    doc: str = ""


def _c(dtype: str, doc: str, categories: str | None = None) -> Column:
    return Column(dtype, categories, doc)


#: The tables every run records. Long format; ``time`` is SimPy time; ``round`` is the
#: mechanism's round counter (-1 where the mechanism has no rounds).
SCHEMAS: dict[str, dict[str, Column]] = {
    "prices": {
        "time": _c("float64", "simulation time"),
        "round": _c("int64", "round of the mechanism"),
        "good": _c("category", "good name", "goods"),
        "price": _c("float64", "posted or traded price, numeraire = 1"),
        "estimate": _c("float64", "the mechanism's current estimate of the clearing price"),
    },
    "excess_demand": {
        "time": _c("float64", "simulation time"),
        "round": _c("int64", "round of the mechanism"),
        "good": _c("category", "good name", "goods"),
        "excess_demand": _c("float64", "aggregate demand minus holdings, in units"),
        "relative": _c("float64", "excess demand divided by the total holdings of the good"),
    },
    "excess_demand_by_population": {
        "time": _c("float64", "simulation time"),
        "round": _c("int64", "round of the mechanism"),
        "population": _c("category", "population name", "populations"),
        "good": _c("category", "good name", "goods"),
        "excess_demand": _c("float64", "the population's demand minus its holdings, in units"),
    },
    "trades": {
        "trade_id": _c("int64", "one id per settlement; all rows of a settlement share it"),
        "time": _c("float64", "simulation time"),
        "round": _c("int64", "round of the mechanism"),
        "agent": _c("int64", "agent id (row of the ledger)"),
        "good": _c("category", "good name (never the numeraire)", "goods"),
        "quantity": _c("float64", "units received (+) or given (-)"),
        "price": _c("float64", "price per unit, numeraire = 1"),
        "cash": _c("float64", "numeraire paid (+) or received (-) for this row"),
    },
    "holdings": {
        "time": _c("float64", "simulation time"),
        "agent": _c("int64", "agent id (row of the ledger)"),
        "population": _c("category", "population name", "populations"),
        "good": _c("category", "good name", "goods"),
        "quantity": _c("float64", "units held"),
    },
    "events": {
        "time": _c("float64", "simulation time"),
        "kind": _c("object", "what happened (settlement, converged, shock, ...)"),
        "detail": _c("object", "human-readable detail"),
    },
}


class Recorder:
    """Columnar buffers for the tables in ``schemas``.

    Args:
        categories: name -> category labels, e.g. ``{"goods": [...], "populations": [...]}``.
        schemas: table name -> column schema; defaults to :data:`SCHEMAS`.
        enabled: table names to record; others are accepted and dropped (summary-only runs).
    """

    def __init__(
        self,
        categories: Mapping[str, Sequence[str]],
        schemas: Mapping[str, Mapping[str, Column]] | None = None,
        enabled: Sequence[str] | None = None,
    ) -> None:
        self.schemas = dict(schemas or SCHEMAS)
        self.categories = {k: list(v) for k, v in categories.items()}
        self.enabled = set(self.schemas if enabled is None else enabled)
        self._chunks: dict[str, dict[str, list[np.ndarray]]] = {
            t: {c: [] for c in cols} for t, cols in self.schemas.items()
        }
        self._rows = dict.fromkeys(self.schemas, 0)
        self._pending: dict[str, list[tuple[Any, ...]]] = {t: [] for t in self.schemas}

    def add_table(self, name: str, columns: Mapping[str, Column]) -> None:
        """Declare an extra table (a mechanism's own, e.g. an order log)."""
        if name in self.schemas:
            return
        self.schemas[name] = dict(columns)
        self._chunks[name] = {c: [] for c in columns}
        self._pending[name] = []
        self._rows[name] = 0
        self.enabled.add(name)

    def append(self, table: str, **columns: Any) -> None:
        """Append a chunk of rows; scalars broadcast to the length of the array columns."""
        if table not in self.schemas:
            raise UnknownName("table", table, list(self.schemas))
        if table not in self.enabled:
            return
        schema = self.schemas[table]
        if set(columns) != set(schema):
            missing, extra = set(schema) - set(columns), set(columns) - set(schema)
            raise InvalidParameter(
                f"table {table!r}: missing columns {sorted(missing)}, unexpected {sorted(extra)}"
            )
        arrays = {k: np.asarray(v) for k, v in columns.items()}
        n = max((a.shape[0] for a in arrays.values() if a.ndim > 0), default=1)
        chunks = self._chunks[table]
        for name, col in schema.items():
            arr = arrays[name]
            dtype = np.int32 if col.dtype == "category" else col.dtype
            arr = np.broadcast_to(arr, (n,)).astype(dtype, copy=True)
            chunks[name].append(arr)
        self._rows[table] += n

    def append_row(self, table: str, row: tuple[Any, ...]) -> None:
        """Append one row (values in schema order) on a hot path: rows are buffered as tuples
        and turned into column chunks in bulk. Category values are integer codes."""
        if table in self.enabled:
            pending = self._pending[table]
            pending.append(row)
            if len(pending) >= 65_536:
                self._flush(table)

    def _flush(self, table: str) -> None:
        pending = self._pending[table]
        if not pending:
            return
        self._pending[table] = []
        columns = list(zip(*pending, strict=True))
        self.append(table, **dict(zip(self.schemas[table], columns, strict=True)))

    def rows(self, table: str) -> int:
        """Rows recorded so far in a table."""
        return self._rows[table] + len(self._pending[table])

    def column(self, table: str, name: str) -> np.ndarray:
        """One column as a numpy array (category columns as integer codes)."""
        self._flush(table)
        chunks = self._chunks[table][name]
        if not chunks:
            col = self.schemas[table][name]
            return np.empty(0, dtype=np.int32 if col.dtype == "category" else col.dtype)
        return np.concatenate(chunks)

    def frame(self, table: str) -> pd.DataFrame:
        """The whole table as a pandas DataFrame with its schema's dtypes."""
        if table not in self.schemas:
            raise UnknownName("table", table, list(self.schemas))
        data: dict[str, Any] = {}
        for name, col in self.schemas[table].items():
            values = self.column(table, name)
            if col.dtype == "category":
                assert col.categories is not None
                data[name] = pd.Categorical.from_codes(
                    values, categories=self.categories[col.categories]
                )
            else:
                data[name] = values
        return pd.DataFrame(data)

    @property
    def tables(self) -> list[str]:
        return list(self.schemas)
