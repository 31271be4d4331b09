"""Append-only columnar tables: the single record of what happened in a run.

Each table has a fixed, documented schema. Rows are appended in column chunks (numpy arrays or
scalars broadcast to the chunk length), never row by row into DataFrames, so recording costs
O(rows) with small constants and no per-agent Python objects. Categorical columns (goods,
populations, kinds) are stored as integer codes and decoded once when a frame is built.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
from attrs import frozen

from mktsim.errors import InvalidParameter, MktsimError, UnknownName

__all__ = ["SCHEMAS", "Column", "Recorder", "read_frame", "read_json_object", "write_frame"]

#: Parquet schema metadata key holding each categorical column's categories: an empty table's
#: dictionary is empty, so without it a saved empty frame would lose its categories.
_CATEGORIES_KEY = b"mktsim.categories"

#: Rows :meth:`Recorder.append_row` buffers before turning them into column chunks.
_BATCH = 65_536


def write_frame(frame: pd.DataFrame, path: str | Path | BinaryIO) -> None:
    """Write a frame as Parquet (to a path or a binary file), keeping every categorical
    column's categories."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    categories = {
        str(name): [str(c) for c in frame[name].cat.categories]
        for name in frame.columns
        if isinstance(frame[name].dtype, pd.CategoricalDtype)
    }
    metadata = {**(table.schema.metadata or {}), _CATEGORIES_KEY: json.dumps(categories).encode()}
    pq.write_table(table.replace_schema_metadata(metadata), path)


def read_frame(path: str | Path) -> pd.DataFrame:
    """Read a Parquet file or a folder of parts written by :func:`write_frame`, with the
    categories it was written with."""
    import json

    import pyarrow.parquet as pq

    path = Path(path)
    frame = pd.read_parquet(path)
    first = min(path.glob("*.parquet")) if path.is_dir() else path
    metadata = pq.read_schema(first).metadata or {}
    for name, categories in json.loads(metadata.get(_CATEGORIES_KEY, b"{}")).items():
        if name in frame.columns:
            values = frame[name].astype(object)
            frame[name] = pd.Categorical(values, categories=pd.Index(categories))
    return frame


def read_json_object(path: str | Path) -> dict[str, Any]:
    """The JSON object in ``path`` (a run's ``summary.json``, a counterfactual's
    ``counterfactual.json``): one reader for every place that opens a saved run, so that a
    missing, unreadable or malformed file is refused in the same words everywhere.

    Raises:
        MktsimError: one line naming the file: it cannot be read or is not JSON, or its JSON is
            not an object.
    """
    import json

    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise MktsimError(f"cannot read {path}: {exc}") from exc
    if not isinstance(value, dict):
        raise MktsimError(f"{path} does not hold a JSON object")
    return value


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
    "production": {
        "production_id": _c("int64", "one id per production batch; all rows of a batch share it"),
        "time": _c("float64", "simulation time"),
        "agent": _c("int64", "producing agent id (row of the ledger)"),
        "good": _c("category", "good name", "goods"),
        "quantity": _c("float64", "units created as output (+) or consumed as input (-)"),
        "technology": _c("object", "what produced it (the firm population's name)"),
    },
    "journal": {
        "entry_id": _c("int64", "one id per ledger entry; all rows of an entry share it"),
        "time": _c("float64", "simulation time"),
        "round": _c("int64", "round of the mechanism"),
        "trade_id": _c("int64", "the trade the row settles (exchange rounding), else -1"),
        "agent": _c("int64", "account id (row of the ledger; mechanism accounts follow agents)"),
        "good": _c("category", "good name (the numeraire too)", "goods"),
        "quantity": _c("float64", "units created (+) or destroyed (-), or moved by rounding"),
        "reason": _c("object", "why (an endowment shock, shares minted, an account opened, ...)"),
    },
    "events": {
        "time": _c("float64", "simulation time"),
        "kind": _c("object", "what happened (settlement, converged, shock, ...)"),
        "detail": _c("object", "human-readable detail"),
    },
}


@functools.lru_cache(maxsize=256)
def category_dtype(labels: tuple[str, ...]) -> pd.CategoricalDtype:
    """The dtype of a column of ``labels`` (goods, populations), built once per set of labels:
    pandas checks the labels each time it builds one, which costs more than the frame of a
    short run."""
    return pd.CategoricalDtype(list(labels))


class Recorder:
    """Columnar buffers for the tables in ``schemas``.

    Args:
        categories: name -> category labels, e.g. ``{"goods": [...], "populations": [...]}``.
        schemas: table name -> column schema; defaults to :data:`SCHEMAS`.
        enabled: table names to record; others are accepted and dropped (summary-only runs).
        spool: a folder to stream tables to: once a table holds ``chunk_rows`` rows in memory they
            are written to ``spool/<table>/part-NNNNN.parquet`` and dropped, so memory stays flat
            however long the run. None keeps everything in memory.
        chunk_rows: rows per spilled part. Rows appended one at a time (:meth:`append_row`)
            are handed over in batches of at most ``chunk_rows`` when spooling, so parts appear
            while the run goes; rows a hot path buffers on its own (:meth:`add_flush_hook`) are
            handed over whenever :meth:`flush` is called.
    """

    def __init__(
        self,
        categories: Mapping[str, Sequence[str]],
        schemas: Mapping[str, Mapping[str, Column]] | None = None,
        enabled: Sequence[str] | None = None,
        spool: str | Path | None = None,
        chunk_rows: int = 1_000_000,
    ) -> None:
        if chunk_rows < 1:
            raise InvalidParameter(f"chunk_rows(={chunk_rows}) must be >= 1")
        self.spool = None if spool is None else Path(spool)
        self.chunk_rows = int(chunk_rows)
        #: Rows :meth:`append_row` buffers per table before handing them over in bulk.
        self._batch = _BATCH if self.spool is None else min(_BATCH, self.chunk_rows)
        self._parts: dict[str, list[Path]] = {}
        self._in_memory: dict[str, int] = {}
        self.schemas = dict(schemas or SCHEMAS)
        self.categories = {k: list(v) for k, v in categories.items()}
        self.enabled = set(self.schemas if enabled is None else enabled)
        self._chunks: dict[str, dict[str, list[np.ndarray]]] = {
            t: {c: [] for c in cols} for t, cols in self.schemas.items()
        }
        self._rows = dict.fromkeys(self.schemas, 0)
        self._pending: dict[str, list[tuple[Any, ...]]] = {t: [] for t in self.schemas}
        for t in self.schemas:
            self._parts[t], self._in_memory[t] = [], 0
        self._hooks: dict[str, list[Callable[[], None]]] = {}

    def add_table(self, name: str, columns: Mapping[str, Column]) -> None:
        """Declare an extra table (a mechanism's own, e.g. an order log)."""
        if name in self.schemas:
            return
        self.schemas[name] = dict(columns)
        self._chunks[name] = {c: [] for c in columns}
        self._pending[name] = []
        self._rows[name] = 0
        self._parts[name], self._in_memory[name] = [], 0
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
        self._in_memory[table] += n
        if self.spool is not None and self._in_memory[table] >= self.chunk_rows:
            self._spill(table)

    def _in_memory_values(self, table: str, name: str) -> np.ndarray:
        """One column's rows held in memory, as recorded (categories as int32 codes)."""
        chunks = self._chunks[table][name]
        col = self.schemas[table][name]
        dtype = np.int32 if col.dtype == "category" else col.dtype
        return np.concatenate(chunks) if chunks else np.empty(0, dtype=dtype)

    def _memory_frame(self, table: str) -> pd.DataFrame:
        data: dict[str, Any] = {}
        for name, col in self.schemas[table].items():
            values = self._in_memory_values(table, name)
            if col.dtype == "category":
                assert col.categories is not None
                data[name] = pd.Categorical.from_codes(
                    values, dtype=category_dtype(tuple(self.categories[col.categories]))
                )
            else:
                data[name] = values
        return pd.DataFrame(data)

    def _spill(self, table: str) -> None:
        assert self.spool is not None
        folder = self.spool / table
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"part-{len(self._parts[table]):05d}.parquet"
        write_frame(self._memory_frame(table), path)
        self._parts[table].append(path)
        self._chunks[table] = {c: [] for c in self.schemas[table]}
        self._in_memory[table] = 0

    def add_flush_hook(self, table: str, hook: Callable[[], None]) -> None:
        """Register a writer that buffers rows of ``table`` on its own (a hot path): the hook is
        called to hand them over before the table is read or spilled."""
        self._hooks.setdefault(table, []).append(hook)

    def append_row(self, table: str, row: tuple[Any, ...]) -> None:
        """Append one row (values in schema order) on a hot path: rows are buffered as tuples
        and turned into column chunks in bulk. Category values are integer codes."""
        if table in self.enabled:
            pending = self._pending[table]
            pending.append(row)
            if len(pending) >= self._batch:
                self._flush(table)

    def flush(self) -> None:
        """Hand every buffered row (:meth:`append_row`, flush hooks) to its table, spilling
        tables that reach ``chunk_rows``: a streaming run calls it now and then, so parts
        appear on disk while the run goes even when rows come from hot paths that buffer them."""
        for table in self.schemas:
            self._flush(table)

    def _flush(self, table: str) -> None:
        for hook in self._hooks.get(table, ()):
            hook()
        pending = self._pending[table]
        if not pending:
            return
        self._pending[table] = []
        columns = list(zip(*pending, strict=True))
        self.append(table, **dict(zip(self.schemas[table], columns, strict=True)))

    def columns(self, table: str) -> dict[str, np.ndarray] | None:
        """The table's columns as arrays, categories as their labels (object arrays), without a
        frame; None once rows have been spilled to disk (read :meth:`frame` then)."""
        if table not in self.schemas:
            raise UnknownName("table", table, list(self.schemas))
        self._flush(table)
        if self._parts[table]:
            return None
        out: dict[str, np.ndarray] = {}
        for name, col in self.schemas[table].items():
            values = self._in_memory_values(table, name)
            if col.dtype == "category":
                assert col.categories is not None
                labels = np.array([*self.categories[col.categories], None], dtype=object)
                values = labels[values]  # code -1 (none) reads the trailing None
            out[name] = values
        return out

    def rows(self, table: str) -> int:
        """Rows recorded so far in a table."""
        self._flush(table)
        return self._rows[table]

    def frame(self, table: str) -> pd.DataFrame:
        """The whole table as a pandas DataFrame with its schema's dtypes (spilled parts are
        read back; for tables larger than memory, use :meth:`parts` and read them one by one)."""
        if table not in self.schemas:
            raise UnknownName("table", table, list(self.schemas))
        self._flush(table)
        memory = self._memory_frame(table)
        if not self._parts[table]:
            return memory
        frames = [pd.read_parquet(p) for p in self._parts[table]]
        out = pd.concat([*frames, memory], ignore_index=True)
        for name, col in self.schemas[table].items():
            if col.dtype == "category":
                assert col.categories is not None
                out[name] = pd.Categorical(
                    out[name].astype(object),
                    dtype=category_dtype(tuple(self.categories[col.categories])),
                )
        return out

    def parts(self, table: str) -> list[Path]:
        """Spill every table row still in memory and return the table's Parquet parts, in order
        (empty when the recorder does not spool)."""
        self._flush(table)
        if self.spool is not None and self._in_memory[table]:
            self._spill(table)
        return list(self._parts[table])

    def write(self, table: str, path: str | Path) -> Path:
        """Write a table to ``path``: one Parquet file, or for a spooled recorder a folder of
        parts (a Parquet dataset: ``pandas.read_parquet`` reads either), hard-linked to the
        spooled parts where the file system allows."""
        path = Path(path)
        if self.spool is None:
            write_frame(self.frame(table), path)
            return path
        import os
        import shutil

        parts = self.parts(table)
        path.mkdir(parents=True, exist_ok=True)
        if not parts:  # an empty table still gets its schema
            write_frame(self._memory_frame(table), path / "part-00000.parquet")
        for part in parts:
            try:  # a part is never written again: a hard link saves copying it
                os.link(part, path / part.name)
            except OSError:  # another file system, or links not supported
                shutil.copyfile(part, path / part.name)
        return path

    @property
    def tables(self) -> list[str]:
        return list(self.schemas)
