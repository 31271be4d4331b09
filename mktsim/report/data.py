"""Runs as reports see them: a summary and frames read on first use, from a folder or memory.

Nothing here reads the simulator's state: a run folder (``summary.json`` plus one
``<table>.parquet`` per frame, as written by ``Run.save``) or any object offering ``summary`` and
``frame(name)`` (a live :class:`~mktsim.run.Run` in a notebook) is enough.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from attrs import field, frozen

from mktsim.errors import InvalidParameter, MktsimError
from mktsim.recorder import read_frame, read_json_object

__all__ = [
    "CounterfactualData",
    "RunData",
    "RunLike",
    "cell",
    "counterfactual_of",
    "load",
    "many",
    "present",
    "run_labels",
]


@frozen
class RunData:
    """One run as reports see it: its summary and its frames, read on first use.

    Attributes:
        summary: the run's ``summary.json`` as a dict.
        source: the run folder, or a description of an in-memory run.
        tables: names of the frames the run offers.
    """

    summary: dict[str, Any]
    source: str
    tables: tuple[str, ...]
    _read: Callable[[str], pd.DataFrame] = field(repr=False, eq=False)
    _cache: dict[str, pd.DataFrame] = field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_frames(
        cls,
        summary: Mapping[str, Any],
        frames: Mapping[str, pd.DataFrame],
        source: str = "<frames>",
    ) -> RunData:
        """A run from a summary dict and frames held in memory (e.g. edited or synthetic)."""
        held = dict(frames)
        return cls(dict(summary), source, tuple(held), held.__getitem__)

    def frame(self, name: str) -> pd.DataFrame:
        """A frame by name; an empty DataFrame when the run does not offer it."""
        if name not in self.tables:
            return pd.DataFrame()
        if name not in self._cache:
            self._cache[name] = self._read(name)
        return self._cache[name]

    def has(self, name: str) -> bool:
        """The run offers a non-empty frame of that name."""
        return not self.frame(name).empty

    @property
    def equilibrium(self) -> dict[str, float] | None:
        """Reference equilibrium prices, good -> price (numeraire = 1), or None."""
        eq = self.summary.get("equilibrium_prices")
        return {str(k): float(v) for k, v in eq.items()} if isinstance(eq, Mapping) else None

    @property
    def goods(self) -> list[str]:
        """Good names in scenario order."""
        prices = self.frame("prices")
        if "good" in prices and isinstance(prices["good"].dtype, pd.CategoricalDtype):
            return [str(g) for g in prices["good"].cat.categories]
        final = self.summary.get("final_prices") or self.equilibrium or {}
        if final:
            return [str(g) for g in final]
        return [str(g) for g in pd.unique(prices["good"].astype(str))] if "good" in prices else []


RunLike = Any  # RunData | str | Path | an object with ``summary`` and ``frame(name)``


@frozen
class CounterfactualData:
    """A counterfactual as reports see it: its comparison and the two runs it compares.

    Attributes:
        summary: ``counterfactual.json`` as a dict (peak deviation, recovery per shock, welfare
            change per population, ...; see :func:`mktsim.counterfactual.counterfactual`).
        deviation: ``deviation.parquet``: per time and good, both runs' prices and
            ``treated / baseline - 1``.
        baseline: the run without the shocks (adversaries behaving truthfully).
        treated: the run with them.
        source: the counterfactual folder, or a description of an in-memory counterfactual.
    """

    summary: dict[str, Any]
    deviation: pd.DataFrame = field(repr=False, eq=False)
    baseline: RunData
    treated: RunData
    source: str


def counterfactual_of(what: Any) -> CounterfactualData | None:
    """A counterfactual folder (``counterfactual.json``, ``deviation.parquet``, ``baseline/``,
    ``treated/``) or an in-memory :class:`~mktsim.counterfactual.Counterfactual` as
    :class:`CounterfactualData`; None for anything else (runs, lists of runs).

    Raises:
        MktsimError: the folder holds ``counterfactual.json`` but it or its parts are unreadable.
    """
    if isinstance(what, CounterfactualData):
        return what
    if isinstance(what, str | Path):
        path = Path(what)
        if not (path / "counterfactual.json").is_file():
            return None
        summary = read_json_object(path / "counterfactual.json")
        deviation_file = path / "deviation.parquet"
        _readable(deviation_file)
        return CounterfactualData(
            summary,
            read_frame(deviation_file),
            _load_folder(path / "baseline"),
            _load_folder(path / "treated"),
            str(path),
        )
    parts = ("baseline", "treated", "deviation", "summary")
    if all(hasattr(what, p) for p in parts) and isinstance(what.deviation, pd.DataFrame):
        summary = json.loads(json.dumps(what.summary, default=str))  # as the folder would hold
        label = f"<counterfactual of {summary.get('scenario', 'a run')} in memory>"
        return CounterfactualData(
            summary, what.deviation, load(what.baseline), load(what.treated), label
        )
    return None


def load(run: RunLike) -> RunData:
    """A run folder (path), an in-memory run (``summary`` + ``frame``), or a RunData as RunData.

    Raises:
        MktsimError: the folder does not exist or holds no readable ``summary.json``.
    """
    if isinstance(run, RunData):
        return run
    if isinstance(run, str | Path):
        return _load_folder(Path(run))
    if hasattr(run, "summary") and hasattr(run, "frame"):
        return _load_memory(run)
    raise InvalidParameter(
        f"run(={run!r}) must be a run folder, a Run or a RunData; got {type(run).__name__}"
    )


def _load_folder(path: Path) -> RunData:
    if not path.is_dir():
        raise MktsimError(f"run folder {str(path)!r} does not exist")
    summary_file = path / "summary.json"
    if not summary_file.is_file():
        raise MktsimError(f"{str(path)!r} is not a run folder: it has no summary.json")
    summary = read_json_object(summary_file)
    missing = [key for key in ("scenario", "mechanism") if key not in summary]
    if missing:
        raise MktsimError(f"{summary_file} is not a run's summary: it lacks {', '.join(missing)}")
    names = tuple(sorted(p.stem for p in path.glob("*.parquet")))
    for name in names:  # a damaged file is refused before anything is written
        _readable(path / f"{name}.parquet")
    return RunData(summary, str(path), names, lambda name: read_frame(path / f"{name}.parquet"))


def _readable(path: Path) -> None:
    import pyarrow.parquet as pq

    try:
        if path.is_dir():
            for part in sorted(path.glob("*.parquet")):
                pq.read_schema(part)
        else:
            pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several kinds for damaged files
        raise MktsimError(f"{path} is not a readable Parquet file: {exc}") from None


def _load_memory(run: Any) -> RunData:
    names = list(getattr(run, "tables", []))
    compute_welfare = getattr(run, "scenario", None) is not None and "welfare" not in names

    def read(name: str) -> pd.DataFrame:
        if name == "welfare" and compute_welfare:
            from mktsim.welfare import welfare_table

            return welfare_table(run)
        return pd.DataFrame(run.frame(name))

    if compute_welfare:
        names.append("welfare")
    summary = json.loads(run.summary_json())  # exactly what a saved folder would hold
    label = f"<{summary.get('scenario', 'run')} in memory>"
    return RunData(summary, label, tuple(names), read)


def many(runs: RunLike | Sequence[RunLike]) -> list[RunData]:
    """One run or several, each as :class:`RunData`."""
    if isinstance(runs, RunData | str | Path) or hasattr(runs, "summary"):
        return [load(runs)]
    return [load(r) for r in runs]


def run_labels(runs: RunLike | Sequence[RunLike]) -> list[str]:
    """Short distinct labels: the settings that differ between the runs (all of them for one)."""
    data = many(runs)
    keys = ("scenario", "mechanism", "mode", "method", "seed")

    def show(key: str, value: Any) -> str:
        return f"seed {value}" if key == "seed" else str(value)

    if len(data) == 1:
        s = data[0].summary
        return [" / ".join(show(k, s[k]) for k in keys if s.get(k) is not None)]
    parts: list[list[str]] = [[] for _ in data]
    for key in keys:
        values = [d.summary.get(key) for d in data]
        if len({repr(v) for v in values}) > 1:
            for part, value in zip(parts, values, strict=True):
                if value is not None:  # a setting a run does not have is no part of its label
                    part.append(show(key, value))
    # scenario parameters count where they differ between runs of the same scenario
    params = [d.summary.get("params") or {} for d in data]
    scenarios = [d.summary.get("scenario") for d in data]
    for key in sorted({k for p in params for k in p}):
        varies = {
            sc
            for sc in set(scenarios)
            if len({repr(p.get(key)) for p, s in zip(params, scenarios, strict=True) if s == sc})
            > 1
        }
        for part, p, sc in zip(parts, params, scenarios, strict=True):
            if sc in varies:
                part.append(f"{key}={p.get(key)}")
    labels = [" / ".join(p) if p else Path(d.source).name for p, d in zip(parts, data, strict=True)]
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return out


def present(value: Any) -> bool:
    """A scalar that is not None, NaN or pandas' NA."""
    if value is None or value is pd.NA:
        return False
    return not (isinstance(value, float | np.floating) and math.isnan(value))


def cell(value: Any) -> str:
    """A value as a table shows it: ``–`` when missing, yes/no, floats to 4 significant digits."""
    if not present(value):
        return "–"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return f"{float(value):.4g}"
    return str(value)
