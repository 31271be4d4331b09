"""Convergence reports: tables and figures of saved runs, and a self-contained HTML/Markdown page.

Everything here reads run folders (``summary.json`` plus one ``<table>.parquet`` per frame, as
written by ``Run.save``) or an object offering the same (``summary`` and ``frame(name)``, e.g. a
:class:`~mktsim.run.Run` in a notebook); nothing reads the simulator's state. Tables are pandas
DataFrames; figure functions draw on a matplotlib ``Axes`` (a new one when ``ax`` is None) and
return it.

Core tables (``prices``, ``excess_demand``) give price error, excess demand and cycles. Optional
ones are used when present and skipped otherwise:

* ``trades``: volume, turnover, Smith's alpha and volatility of transaction prices;
* ``quotes`` (columns ``time, good, bid, ask``; or ``bid``/``ask`` columns in ``prices``): spreads;
* ``welfare`` (see :mod:`mktsim.welfare`): welfare per population and allocative efficiency;
* ``excess_demand_by_population``: each population's part of the excess demand.

Definitions (the same in every table, figure and page):

* price error at a time: max over goods of ``|p_j - p*_j| / p*_j`` against the reference
  equilibrium ``p*`` (numeraire = 1), using the mechanism's ``estimate`` column, each good's last
  recorded value carried forward (so goods recorded at different times are compared together);
* excess-demand norm: max over goods of ``|z_j| / supply_j`` (the ``relative`` column); the vector
  ``z`` is the market's gradient, the direction in which a Walrasian auctioneer moves prices;
* time to tolerance: first recorded time after which the price error stays below the run's
  ``price_tolerance``;
* cycle: see :func:`detect_cycle`.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from attrs import field, frozen

from mktsim.errors import InvalidParameter, MktsimError
from mktsim.metrics import Cycle, detect_cycle, time_to_tolerance
from mktsim.recorder import read_frame

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "CONVERGENCE_COLUMNS",
    "Cycle",
    "ReportPaths",
    "RunData",
    "convergence_table",
    "detect_cycle",
    "excess_demand_by_population_table",
    "excess_demand_path",
    "excess_demand_table",
    "load",
    "market_table",
    "plot_excess_demand",
    "plot_excess_demand_norm",
    "plot_log_error",
    "plot_phase",
    "plot_prices",
    "plot_volume",
    "plot_welfare",
    "price_error_path",
    "run_labels",
    "welfare",
    "write_report",
]

#: Columns of :func:`convergence_table` (one row per run) and what they mean.
CONVERGENCE_COLUMNS: dict[str, str] = {
    "run": "label of the run (the settings that differ between the runs compared)",
    "scenario": "scenario name",
    "mechanism": "clearing mechanism",
    "mode": "mechanism mode (e.g. tatonnement, non_tatonnement), if any",
    "method": "step rule or method, if any",
    "seed": "run seed",
    "n_agents": "number of agents",
    "n_goods": "number of goods (numeraire included)",
    "converged": "the mechanism reported convergence",
    "rounds": "rounds of the mechanism",
    "sim_time": "simulation time at the end of the run",
    "price_error": "final max relative price error against the reference equilibrium",
    "time_to_tolerance": "first time after which the price error stays below price_tolerance",
    "rounds_to_tolerance": "round at time_to_tolerance",
    "price_tolerance": "tolerance used for time_to_tolerance",
    "excess_demand_norm": "final max over goods of |excess demand| / supply",
    "cycle_detected": "prices keep oscillating around a centre (see detect_cycle)",
    "cycle_period": "period of the oscillation, simulation time",
    "cycle_amplitude": "relative amplitude of the last complete half-swing",
    "trades": "number of settlements (distinct trade ids)",
    "turnover": "numeraire paid for goods over the run",
    "smith_alpha": "Smith's alpha of transaction prices, worst good (percent)",
    "volatility": "std of log returns between transactions, worst good",
    "spread": "mean relative bid-ask spread over goods and quotes",
    "allocative_efficiency": "gains from trade realised / gains at the equilibrium (welfare)",
    "share_worse_off": "fraction of all agents whose utility fell",
    "conservation_ok": "the ledger conserved every good",
    "equilibrium_status": "status of the reference equilibrium",
    "wall_seconds": "wall-clock seconds of the simulation",
    "source": "run folder",
}

#: Convergence-table columns shown only when some run has a value for them.
_OPTIONAL = (
    "mode",
    "method",
    "time_to_tolerance",
    "rounds_to_tolerance",
    "cycle_period",
    "cycle_amplitude",
    "trades",
    "turnover",
    "smith_alpha",
    "volatility",
    "spread",
    "allocative_efficiency",
    "share_worse_off",
)

_QUOTES = "quotes"
_NAN = float("nan")


# ---- loading --------------------------------------------------------------------------------


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
    try:
        summary = json.loads(summary_file.read_text())
    except (OSError, ValueError) as exc:
        raise MktsimError(f"cannot read {summary_file}: {exc}") from exc
    if not isinstance(summary, dict):
        raise MktsimError(f"{summary_file} does not hold a JSON object")
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
    compute_welfare = hasattr(run, "scenario") and "welfare" not in names

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


def _many(runs: RunLike | Sequence[RunLike]) -> list[RunData]:
    if isinstance(runs, RunData | str | Path) or hasattr(runs, "summary"):
        return [load(runs)]
    return [load(r) for r in runs]


def run_labels(runs: RunLike | Sequence[RunLike]) -> list[str]:
    """Short distinct labels: the settings that differ between the runs (all of them for one)."""
    data = _many(runs)
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


# ---- paths over time ------------------------------------------------------------------------


def _wide(frame: pd.DataFrame, value: str, goods: list[str]) -> pd.DataFrame:
    """(time, round) x good of ``value``, each good's last value carried forward."""
    f = frame[["time", "round", "good", value]].copy()
    f["good"] = f["good"].astype(str)
    wide = f.pivot_table(
        index=["time", "round"], columns="good", values=value, aggfunc="last", sort=True
    )
    return wide.reindex(columns=[g for g in goods if g in wide.columns]).ffill()


def price_error_path(run: RunLike, column: str = "estimate") -> pd.DataFrame:
    """Price error against the reference equilibrium at each recorded (time, round).

    Args:
        run: a run (folder, Run or RunData).
        column: ``estimate`` (the mechanism's current best estimate) or ``price`` (as posted or
            traded).

    Returns:
        DataFrame ``time, round, price_error`` (max over goods of |p - p*| / p*); empty when
        the run has no reference equilibrium or no prices.
    """
    data = load(run)
    prices, ref = data.frame("prices"), data.equilibrium
    if prices.empty or not ref:
        return pd.DataFrame({"time": [], "round": [], "price_error": []})
    wide = _wide(prices, column, [g for g in data.goods if g in ref])
    p_star = pd.Series(ref)[wide.columns]
    err = wide.sub(p_star, axis=1).abs().div(p_star, axis=1).max(axis=1, skipna=True)
    out = err.rename("price_error").reset_index()
    return out.dropna(subset=["price_error"]).reset_index(drop=True)


def excess_demand_path(run: RunLike) -> pd.DataFrame:
    """Norms of the relative excess-demand vector at each recorded (time, round).

    Returns:
        DataFrame ``time, round, excess_demand_norm`` (max over goods of |z_j| / supply_j) and
        ``excess_demand_l2`` (Euclidean norm of z / supply); empty without the frame.
    """
    data = load(run)
    ed = data.frame("excess_demand")
    if ed.empty:
        return pd.DataFrame(
            {"time": [], "round": [], "excess_demand_norm": [], "excess_demand_l2": []}
        )
    wide = _wide(ed, "relative", data.goods)
    out = pd.DataFrame(
        {
            "excess_demand_norm": wide.abs().max(axis=1, skipna=True),
            "excess_demand_l2": np.sqrt((wide**2).sum(axis=1, min_count=1)),
        }
    ).reset_index()
    return out


# ---- final state per good -------------------------------------------------------------------


def _last_per(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The last recorded row of each key (stable in time, then round)."""
    order = [c for c in ("time", "round") if c in frame]
    f = frame.sort_values(order, kind="stable") if order else frame
    f = f.assign(**{k: f[k].astype(str) for k in keys})
    return f.drop_duplicates(keys, keep="last").set_index(keys)


def excess_demand_table(run: RunLike) -> pd.DataFrame:
    """Each good at the end of the run: final price, equilibrium price and excess demand.

    Returns:
        DataFrame with one row per good: ``good``, ``final_price`` (the posted price if the
        mechanism converged, else its estimate, as in the summary), ``equilibrium_price``,
        ``price_error`` (signed, (final - p*) / p*), ``excess_demand`` (units) and
        ``relative_excess_demand`` (units / supply). Missing values are NaN.
    """
    data = load(run)
    goods = data.goods
    out = pd.DataFrame({"good": goods})
    prices, ed = data.frame("prices"), data.frame("excess_demand")
    column = "price" if data.summary.get("converged") else "estimate"
    if not prices.empty:
        out["final_price"] = out["good"].map(_last_per(prices, ["good"])[column]).astype(float)
    else:
        out["final_price"] = _NAN
    ref = data.equilibrium or {}
    out["equilibrium_price"] = out["good"].map(ref).astype(float)
    out["price_error"] = (out["final_price"] - out["equilibrium_price"]) / out["equilibrium_price"]
    if not ed.empty:
        last = _last_per(ed, ["good"])
        out["excess_demand"] = out["good"].map(last["excess_demand"]).astype(float)
        out["relative_excess_demand"] = out["good"].map(last["relative"]).astype(float)
    else:
        out["excess_demand"] = out["relative_excess_demand"] = _NAN
    return out


def _chain_table(data: RunData) -> pd.DataFrame:
    """The "price = derivative" table of a supply-chain run as its summary keeps it (computed at
    the end of the run by :func:`mktsim.production.report.price_derivative_table`), so that a
    run folder shows it; empty for other runs.

    Returns:
        DataFrame with one row per good of the supply graph: ``good``, ``role`` (raw,
        intermediate, final), ``simulated`` (the run's final price), ``derivative`` (the
        back-propagated derivative of final value, where the graph is a tree), ``shadow`` (the
        planner's shadow price) and ``rel_error_derivative`` / ``rel_error_shadow``. Missing
        values are NaN.
    """
    records = data.summary.get("price_derivative") or []
    columns = ["good", "role", "simulated", "derivative", "shadow"]
    columns += ["rel_error_derivative", "rel_error_shadow"]
    table = pd.DataFrame.from_records(records, columns=columns)
    numbers = columns[2:]
    table[numbers] = table[numbers].astype(float)
    return table


def excess_demand_by_population_table(run: RunLike) -> pd.DataFrame:
    """Each population's excess demand (units) per good at the end: rows populations, columns
    goods; empty when the run did not record it."""
    data = load(run)
    frame = data.frame("excess_demand_by_population")
    if frame.empty:
        return pd.DataFrame()
    last = _last_per(frame, ["population", "good"])["excess_demand"].unstack("good")
    last = last.reindex(columns=[g for g in data.goods if g in last.columns])
    last.columns.name = None
    return last.rename_axis("population").reset_index()


# ---- trades, quotes, welfare -----------------------------------------------------------------


def _transactions(trades: pd.DataFrame) -> pd.DataFrame:
    """One row per (settlement, good): time, trade_id, good, price, volume, turnover."""
    t = trades.assign(good=trades["good"].astype(str))
    bought = t[t["quantity"] > 0]
    agg = (
        bought.groupby(["trade_id", "good"], sort=False)
        .agg(
            time=("time", "first"),
            price=("price", "first"),
            volume=("quantity", "sum"),
            turnover=("cash", "sum"),
        )
        .reset_index()
    )
    return agg.sort_values(["time", "trade_id"], kind="stable").reset_index(drop=True)


def _smith_alpha(prices: np.ndarray, p0: float | None) -> float:
    """100 sqrt(mean (P_k - P0)^2) / P0 (Smith 1962); NaN without trades or a reference."""
    if p0 is None or not np.isfinite(p0) or p0 <= 0 or prices.size == 0:
        return _NAN
    return float(100.0 * np.sqrt(np.mean((prices - p0) ** 2)) / p0)


def _volatility(prices: np.ndarray) -> float:
    """Sample std of log returns between consecutive transactions; NaN with fewer than 2."""
    if prices.size < 3 or (prices <= 0).any():
        return _NAN
    return float(np.std(np.diff(np.log(prices)), ddof=1))


def _quotes(data: RunData) -> pd.DataFrame:
    for name in (_QUOTES, "prices"):
        frame = data.frame(name)
        if {"time", "good", "bid", "ask"} <= set(frame.columns):
            q = frame[["time", "good", "bid", "ask"]].copy()
            q["good"] = q["good"].astype(str)
            q = q[np.isfinite(q["bid"]) & np.isfinite(q["ask"]) & (q["bid"] > 0)]
            q["spread"] = (q["ask"] - q["bid"]) / ((q["ask"] + q["bid"]) / 2)
            return q
    return pd.DataFrame()


_MARKET_COLUMNS = (
    "good",
    "trades",
    "volume",
    "turnover",
    "vwap",
    "first_price",
    "last_price",
    "equilibrium_price",
    "smith_alpha",
    "volatility",
    "spread_mean",
    "spread_median",
)


def market_table(run: RunLike) -> pd.DataFrame:
    """Trading statistics per non-numeraire good (only goods that traded or were quoted).

    Columns: ``good``, ``trades`` (settlements involving the good), ``volume`` (units bought),
    ``turnover`` (numeraire paid), ``vwap`` (turnover / volume), ``first_price``,
    ``last_price``, ``equilibrium_price``, ``smith_alpha`` (100 sqrt(mean (P_k - P0)^2) / P0
    over transaction prices P_k, P0 = equilibrium price), ``volatility`` (std of log returns
    between consecutive transactions), ``spread_mean`` and ``spread_median`` (relative
    bid-ask spread, from a ``quotes`` table). Empty when the run neither traded nor quoted.
    """
    data = load(run)
    ref = data.equilibrium or {}
    rows: dict[str, dict[str, Any]] = {}
    if data.has("trades"):
        tx = _transactions(data.frame("trades"))
        for good, g in tx.groupby("good", sort=False):
            p = g["price"].to_numpy(float)
            volume = float(g["volume"].sum())
            rows[str(good)] = {
                "trades": int(g["trade_id"].nunique()),
                "volume": volume,
                "turnover": float(g["turnover"].sum()),
                "vwap": float(g["turnover"].sum()) / volume if volume > 0 else _NAN,
                "first_price": float(p[0]),
                "last_price": float(p[-1]),
                "smith_alpha": _smith_alpha(p, ref.get(str(good))),
                "volatility": _volatility(p),
            }
    quotes = _quotes(data)
    for good, q in quotes.groupby("good", sort=False) if not quotes.empty else ():
        row = rows.setdefault(str(good), {})
        row["spread_mean"] = float(q["spread"].mean())
        row["spread_median"] = float(q["spread"].median())
    if not rows:
        return pd.DataFrame({c: [] for c in _MARKET_COLUMNS})
    order = [g for g in data.goods if g in rows] + [g for g in rows if g not in data.goods]
    out = pd.DataFrame([{"good": g, **rows[g]} for g in order])
    out["equilibrium_price"] = out["good"].map(ref).astype(float)
    return out.reindex(columns=list(_MARKET_COLUMNS))


def welfare(run: RunLike) -> pd.DataFrame:
    """The run's welfare table (one row per population, see :mod:`mktsim.welfare`); empty when
    the run has none."""
    return load(run).frame("welfare")


# ---- cycles ---------------------------------------------------------------------------------


def _cycle(data: RunData) -> Cycle:
    tol = data.summary.get("price_tolerance") or 1e-3
    return detect_cycle(
        data.frame("prices"),
        data.equilibrium,
        converged=bool(data.summary.get("converged")),
        tolerance=float(tol),
    )


# ---- the convergence table ------------------------------------------------------------------


def convergence_table(runs: RunLike | Sequence[RunLike]) -> pd.DataFrame:
    """One row per run with the columns of :data:`CONVERGENCE_COLUMNS` (NaN where a metric does
    not apply, e.g. no trades or no reference equilibrium).

    Price error, time to tolerance, excess-demand norm and cycles are recomputed from the frames;
    the final price error uses the posted price when the mechanism converged and its estimate
    otherwise, as the summary does.
    """
    data = _many(runs)
    labels = run_labels(data)
    rows = []
    for label, d in zip(labels, data, strict=True):
        s = d.summary
        row: dict[str, Any] = {k: s.get(k) for k in CONVERGENCE_COLUMNS}
        row["run"], row["source"] = label, d.source
        final = excess_demand_table(d)
        errors = final["price_error"].abs()
        row["price_error"] = float(errors.max()) if errors.notna().any() else _NAN
        tol = float(s.get("price_tolerance") or 1e-3)
        row["price_tolerance"] = tol
        path = price_error_path(d)
        ttt = time_to_tolerance(path, tol) if not path.empty else None
        row["time_to_tolerance"] = _NAN if ttt is None else ttt
        row["rounds_to_tolerance"] = (
            _NAN if ttt is None else int(path.loc[path["time"] == ttt, "round"].iloc[0])
        )
        ed = excess_demand_path(d)
        row["excess_demand_norm"] = (
            float(ed["excess_demand_norm"].iloc[-1]) if not ed.empty else _NAN
        )
        cycle = _cycle(d)
        row["cycle_detected"] = cycle.detected
        row["cycle_period"], row["cycle_amplitude"] = cycle.period, cycle.amplitude
        market = market_table(d)
        if d.has("trades"):
            row["trades"] = int(d.frame("trades")["trade_id"].nunique())
        row["turnover"] = (
            float(market["turnover"].sum()) if market["turnover"].notna().any() else _NAN
        )
        for key, col in (("smith_alpha", "smith_alpha"), ("volatility", "volatility")):
            row[key] = float(market[col].max()) if market[col].notna().any() else _NAN
        row["spread"] = (
            float(market["spread_mean"].mean()) if market["spread_mean"].notna().any() else _NAN
        )
        w = d.frame("welfare")
        if not w.empty and {"surplus", "surplus_equilibrium"} <= set(w.columns):
            den = float(w["surplus_equilibrium"].sum())
            size = float(w["money_equilibrium"].abs().sum()) if "money_equilibrium" in w else 1.0
            ok = np.isfinite(den) and abs(den) > 1e-9 * max(size, 1e-300)
            row["allocative_efficiency"] = float(w["surplus"].sum()) / den if ok else _NAN
            row["share_worse_off"] = float(
                (w["share_worse_off"] * w["agents"]).sum() / w["agents"].sum()
            )
        rows.append(row)
    out = pd.DataFrame(rows, columns=list(CONVERGENCE_COLUMNS))
    for col in out.columns:
        if out[col].map(lambda v: v is None).all():
            out[col] = _NAN
    for col in ("seed", "n_agents", "n_goods", "rounds", "rounds_to_tolerance", "trades"):
        values = pd.to_numeric(out[col], errors="coerce")
        if ((values % 1 == 0) | values.isna()).all():  # counts stay integers beside missing ones
            out[col] = values.astype("Int64")
    return out


# ---- figures ----------------------------------------------------------------------------------


def _axes(ax: Axes | None, figsize: tuple[float, float] = (7.5, 4.0)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=figsize)
    return new


def _constant(x: pd.Series) -> bool:
    v = x.to_numpy(float)
    return v.size == 0 or bool(np.nanmax(v) - np.nanmin(v) <= 1e-12 * max(np.nanmax(np.abs(v)), 1))


def plot_prices(run: RunLike, ax: Axes | None = None, column: str = "estimate") -> Axes:
    """Each good's price path (``column``) against time, its equilibrium price dashed."""
    data = load(run)
    ax = _axes(ax)
    prices, ref = data.frame("prices"), data.equilibrium or {}
    if prices.empty:
        return _empty(ax, "no prices recorded")
    wide = _wide(prices, column, data.goods).reset_index()
    for i, good in enumerate(c for c in wide.columns if c not in ("time", "round")):
        color = f"C{i % 10}"
        ax.plot(wide["time"], wide[good], color=color, lw=1.2, label=str(good))
        if good in ref:
            ax.axhline(ref[good], color=color, ls="--", lw=0.8)
    ax.set_xlabel("simulation time")
    ax.set_ylabel("price (numeraire = 1)")
    ax.set_title("prices" + ("  (dashed: equilibrium)" if ref else ""))
    if len(data.goods) <= 12:
        ax.legend(loc="best", fontsize="small")
    return ax


def _paths_per_run(
    runs: RunLike | Sequence[RunLike],
    ax: Axes | None,
    labels: Sequence[str] | None,
    path: Callable[[RunData], pd.DataFrame],
    column: str,
) -> tuple[Axes, list[RunData], int]:
    """One line per run of ``path(run)[column]`` against time; returns how many were drawn."""
    data = _many(runs)
    labels = list(labels) if labels is not None else run_labels(data)
    ax = _axes(ax)
    drawn = 0
    for i, (label, d) in enumerate(zip(labels, data, strict=True)):
        frame = path(d)
        if frame.empty:
            continue
        ax.plot(
            frame["time"], frame[column].clip(lower=1e-16), color=f"C{i % 10}", lw=1.2, label=label
        )
        drawn += 1
    return ax, data, drawn


def plot_log_error(
    runs: RunLike | Sequence[RunLike], ax: Axes | None = None, labels: Sequence[str] | None = None
) -> Axes:
    """Price error against the equilibrium (log scale) over time, one line per run."""
    ax, data, drawn = _paths_per_run(runs, ax, labels, price_error_path, "price_error")
    if not drawn:
        return _empty(ax, "no reference equilibrium")
    tols = {d.summary.get("price_tolerance") for d in data} - {None}
    for tol in tols:
        ax.axhline(float(tol), color="grey", ls=":", lw=0.8)  # type: ignore[arg-type]
    _log_y(ax)
    ax.set_xlabel("simulation time")
    ax.set_ylabel("max relative price error")
    ax.set_title("price error against the equilibrium" + ("  (dotted: tolerance)" if tols else ""))
    _legend_below(ax)
    return ax


def plot_excess_demand(run: RunLike, ax: Axes | None = None, linthresh: float = 1e-6) -> Axes:
    """Relative excess demand of each good over time (the market's gradient), symlog scale
    (linear within ±``linthresh``)."""
    data = load(run)
    ax = _axes(ax)
    ed = data.frame("excess_demand")
    if ed.empty:
        return _empty(ax, "no excess demand recorded")
    wide = _wide(ed, "relative", data.goods).reset_index()
    for i, good in enumerate(c for c in wide.columns if c not in ("time", "round")):
        ax.plot(wide["time"], wide[good], color=f"C{i % 10}", lw=1.2, label=str(good))
    ax.axhline(0.0, color="black", lw=0.6)
    _log_y(ax, "symlog", linthresh=linthresh)
    ax.set_xlabel("simulation time")
    ax.set_ylabel("excess demand / supply")
    ax.set_title(f"excess demand per good (symlog, linear within ±{_power_label(linthresh)})")
    if len(data.goods) <= 12:
        ax.legend(loc="best", fontsize="small")
    return ax


def plot_excess_demand_norm(
    runs: RunLike | Sequence[RunLike], ax: Axes | None = None, labels: Sequence[str] | None = None
) -> Axes:
    """Max relative excess demand over goods (log scale) over time, one line per run."""
    ax, _, drawn = _paths_per_run(runs, ax, labels, excess_demand_path, "excess_demand_norm")
    if not drawn:
        return _empty(ax, "no excess demand recorded")
    _log_y(ax)
    ax.set_xlabel("simulation time")
    ax.set_ylabel("max |excess demand| / supply")
    ax.set_title("excess-demand norm")
    _legend_below(ax)
    return ax


def _moving_goods(data: RunData, column: str = "estimate") -> list[str]:
    prices = data.frame("prices")
    if prices.empty:
        return []
    wide = _wide(prices, column, data.goods)
    return [g for g in wide.columns if not _constant(wide[g])]


def plot_phase(run: RunLike, goods: Sequence[str] | None = None, ax: Axes | None = None) -> Axes:
    """Two goods' prices against each other (a phase portrait), start and equilibrium marked.

    Args:
        goods: the two goods (default: the first two whose price moves).
    """
    data = load(run)
    ax = _axes(ax, (5.0, 4.5))
    pair = list(goods) if goods is not None else _moving_goods(data)[:2]
    if len(pair) != 2:
        return _empty(ax, "fewer than two goods with moving prices")
    wide = _wide(data.frame("prices"), "estimate", data.goods)
    missing = [g for g in pair if g not in wide.columns]
    if missing:
        raise InvalidParameter(f"goods {missing} have no prices; goods: {list(wide.columns)}")
    x, y = wide[pair[0]].to_numpy(float), wide[pair[1]].to_numpy(float)
    ax.plot(x, y, color="C0", lw=1.0)
    ax.plot(x[:1], y[:1], "o", color="C2", label="start")
    ax.plot(x[-1:], y[-1:], "s", color="C3", label="end")
    ref = data.equilibrium or {}
    if pair[0] in ref and pair[1] in ref:
        ax.plot([ref[pair[0]]], [ref[pair[1]]], "*", color="black", ms=12, label="equilibrium")
    ax.set_xlabel(f"price of {pair[0]}")
    ax.set_ylabel(f"price of {pair[1]}")
    ax.set_title("price phase portrait")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return ax


def plot_welfare(run: RunLike, ax: Axes | None = None) -> Axes:
    """Gains from trade per population: money-metric surplus realised against the surplus at
    the equilibrium allocation (numeraire units); mean utility gain when money is unavailable."""
    data = load(run)
    ax = _axes(ax, (6.0, 4.0))
    w = data.frame("welfare")
    if w.empty:
        return _empty(ax, "no welfare table")
    names = w["population"].astype(str).tolist()
    pos = np.arange(len(names))
    if "surplus" in w and w["surplus"].notna().any():
        ax.bar(pos - 0.17, w["surplus"], width=0.34, color="C0", label="realised")
        ax.bar(pos + 0.17, w["surplus_equilibrium"], width=0.34, color="C1", label="at equilibrium")
        ax.set_ylabel("money-metric surplus (numeraire)")
        ax.legend(loc="best", fontsize="small")
    else:
        ax.bar(pos, w["gain_mean"], width=0.6, color="C0")
        ax.set_ylabel("mean utility gain")
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_xticks(pos, names)
    ax.set_xlim(-0.9, len(names) - 0.1)
    ax.set_title("gains from trade per population")
    return ax


def plot_volume(run: RunLike, ax: Axes | None = None) -> Axes:
    """Cumulative volume (units bought) of each good over time."""
    data = load(run)
    ax = _axes(ax)
    if not data.has("trades"):
        return _empty(ax, "no trades")
    tx = _transactions(data.frame("trades"))
    for i, (good, g) in enumerate(tx.groupby("good", sort=False)):
        ax.step(g["time"], g["volume"].cumsum(), where="post", color=f"C{i % 10}", label=str(good))
    ax.set_xlabel("simulation time")
    ax.set_ylabel("cumulative units bought")
    ax.set_title("traded volume")
    ax.legend(loc="best", fontsize="small")
    return ax


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _power_label(value: float, _pos: Any = None) -> str:
    """Tick label 10ⁿ in plain text (mathtext labels cost most of a log plot's drawing time)."""
    if value == 0:
        return "0"
    sign = "−" if value < 0 else ""
    exponent = math.log10(abs(value))
    if abs(exponent - round(exponent)) < 1e-9:
        e = round(exponent)
        return sign + ("1" if e == 0 else "10" + str(e).translate(_SUPERSCRIPT))
    return f"{value:.2g}"


def _log_y(ax: Axes, scale: str = "log", **kwargs: Any) -> None:
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_yscale(scale, **kwargs)
    ax.yaxis.set_major_formatter(FuncFormatter(_power_label))
    if scale == "symlog":
        ax.yaxis.set_minor_formatter(NullFormatter())


def _legend_below(ax: Axes) -> None:
    # run labels are long: below the axes they never hide a line
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize="small", frameon=False)


def _empty(ax: Axes, text: str) -> Axes:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return ax


# ---- the report page --------------------------------------------------------------------------


@frozen
class ReportPaths:
    """Files written by :func:`write_report`."""

    html: Path
    markdown: Path | None
    figures: tuple[Path, ...]


@frozen
class _Heading:
    level: int
    text: str


@frozen
class _Text:
    text: str


@frozen
class _Terms:
    """A definition list: term -> meaning."""

    items: tuple[tuple[str, str], ...]


@frozen
class _Table:
    frame: pd.DataFrame = field(eq=False)
    caption: str = ""


@frozen
class _Image:
    name: str
    png: bytes = field(repr=False)
    caption: str


_Block = _Heading | _Text | _Terms | _Table | _Image


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    # no Software tag: the page must not mention any address, even inside image metadata
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


def _figure(draw: Callable[[Axes], Any], size: tuple[float, float] = (7.5, 4.0)) -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    draw(fig.subplots())
    return _png(fig)


def _comparison_blocks(data: list[RunData], labels: list[str]) -> list[_Block]:
    from matplotlib.figure import Figure

    blocks: list[_Block] = [_Heading(2, "Comparison")]
    table = convergence_table(data)
    shown, common = _shown(table)
    if common:
        blocks.append(
            _Text("All runs: " + ", ".join(f"{k} {_cell(v)}" for k, v in common.items()) + ".")
        )
    blocks.append(_Table(shown, "Convergence, one row per run"))
    scenarios: dict[str, list[int]] = {}
    for i, d in enumerate(data):
        scenarios.setdefault(str(d.summary.get("scenario")), []).append(i)
    for k, (scenario, idx) in enumerate(scenarios.items()):
        runs, names = [data[i] for i in idx], [labels[i] for i in idx]
        fig = Figure(figsize=(12.0, 4.0 + 0.22 * len(runs)), layout="constrained")
        left, right = fig.subplots(1, 2)
        plot_log_error(runs, left, names)
        plot_excess_demand_norm(runs, right, names)
        fig.suptitle(f"scenario {scenario}")
        blocks.append(
            _Image(
                f"compare_{k}",
                _png(fig),
                f"{scenario}: price error and excess-demand norm of each run",
            )
        )
    return blocks


def _run_blocks(i: int, d: RunData, label: str, compared: bool) -> list[_Block]:
    row = convergence_table([d]).iloc[0]
    blocks: list[_Block] = [_Heading(2, f"Run: {label}")]
    facts = {k: row[k] for k in CONVERGENCE_COLUMNS if k not in ("run",) and _present(row[k])}
    params = d.summary.get("params")
    if params:
        facts["params"] = ", ".join(f"{k}={v}" for k, v in params.items())
    blocks.append(
        _Table(pd.DataFrame({"metric": list(facts), "value": list(facts.values())}), "Summary")
    )
    blocks.append(
        _Table(
            excess_demand_table(d),
            "Each good at the end of the run (excess demand: the market's gradient)",
        )
    )
    chain = _chain_table(d)
    if not chain.empty:
        blocks.append(
            _Table(
                _drop_empty(chain),
                "Price = derivative: the run's prices against the back-propagated derivative of "
                "final value (tree graphs) and the planner's shadow prices",
            )
        )
    by_pop = excess_demand_by_population_table(d)
    if len(by_pop) > 1:
        blocks.append(_Table(by_pop, "Excess demand per population at the end (units)"))
    market = market_table(d)
    if not market.empty:
        blocks.append(_Table(_drop_empty(market), "Trading per good"))
    w = d.frame("welfare")
    if not w.empty:
        blocks.append(_Table(_drop_empty(w), "Welfare per population (money at p*)"))
    figures: list[tuple[str, Callable[[Axes], Any], str, tuple[float, float]]] = []
    if d.has("prices"):
        figures.append(
            (
                "prices",
                lambda ax: plot_prices(d, ax),
                "Price paths against the equilibrium (dashed)",
                (7.5, 4.0),
            )
        )
        if d.equilibrium and not compared:  # a comparison already overlays every run's error
            figures.append(
                (
                    "log_error",
                    lambda ax: plot_log_error([d], ax, [label]),
                    "Price error against time (log scale)",
                    (7.5, 4.0),
                )
            )
    if d.has("excess_demand"):
        figures.append(
            (
                "excess_demand",
                lambda ax: plot_excess_demand(d, ax),
                "Excess demand per good against time",
                (7.5, 4.0),
            )
        )
    if len(_moving_goods(d)) >= 2:
        figures.append(
            ("phase", lambda ax: plot_phase(d, ax=ax), "Price phase portrait", (6.2, 4.5))
        )
    if not w.empty:
        figures.append(
            (
                "welfare",
                lambda ax: plot_welfare(d, ax),
                "Gains from trade per population",
                (6.0, 4.0),
            )
        )
    if d.has("trades") and d.frame("trades")["trade_id"].nunique() > 1:
        figures.append(
            ("volume", lambda ax: plot_volume(d, ax), "Cumulative traded volume", (7.5, 4.0))
        )
    for kind, draw, caption, size in figures:
        blocks.append(_Image(f"run{i}_{kind}", _figure(draw, size), caption))
    return blocks


def _present(value: Any) -> bool:
    """A scalar that is not None, NaN or pandas' NA."""
    if value is None or value is pd.NA:
        return False
    return not (isinstance(value, float | np.floating) and math.isnan(value))


def _drop_empty(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.loc[:, [c for c in frame.columns if frame[c].map(_present).any()]]


def _shown(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The convergence table as displayed, and the settings every run shares.

    Settings (scenario, mechanism, ...) that are equal in every run move out of the table; the
    others are already in the run labels or stay as columns. Optional metrics without any value
    are dropped.
    """
    settings = (
        "scenario",
        "mechanism",
        "mode",
        "method",
        "seed",
        "n_agents",
        "n_goods",
        "price_tolerance",
        "equilibrium_status",
    )
    in_label = ("scenario", "mechanism", "mode", "method", "seed")
    common = {
        c: table[c].iloc[0]
        for c in settings
        if _present(table[c].iloc[0]) and table[c].map(_cell).nunique() == 1
    }
    drop = {"source", "wall_seconds", "rounds_to_tolerance", *common, *in_label}
    keep = [
        c
        for c in table.columns
        if c not in drop and (c not in _OPTIONAL or table[c].map(_present).any())
    ]
    return table.loc[:, keep], common


def _cell(value: Any) -> str:
    if not _present(value):
        return "–"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return f"{float(value):.4g}"
    return str(value)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1150px;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{font-size:1.3em;border-bottom:1px solid #ccc;margin-top:2em}
.scroll{overflow-x:auto}table{border-collapse:collapse;margin:.5em 0 1.2em;font-size:.85em}
caption{text-align:left;font-weight:600;padding:.3em 0}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right;white-space:nowrap}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}
figure{margin:1em 0}figure img{max-width:100%;height:auto}figcaption{font-size:.9em;color:#555}
dt{font-weight:600}dd{margin:0 0 .4em 1.5em}
"""


def _html_table(table: _Table) -> str:
    frame = table.frame
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False, name=None)
    )
    caption = f"<caption>{html.escape(table.caption)}</caption>" if table.caption else ""
    return (
        f'<div class="scroll"><table>{caption}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _md_table(table: _Table) -> str:
    frame = table.frame

    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"**{esc(table.caption)}**", ""] if table.caption else []
    lines.append("| " + " | ".join(esc(str(c)) for c in frame.columns) + " |")
    lines.append("|" + "|".join("---" for _ in frame.columns) + "|")
    for row in frame.itertuples(index=False, name=None):
        lines.append("| " + " | ".join(esc(_cell(v)) for v in row) + " |")
    return "\n".join(lines)


def _glossary(welfare_shown: bool) -> list[_Block]:
    blocks: list[_Block] = [
        _Heading(2, "Definitions"),
        _Terms(tuple((k, v) for k, v in CONVERGENCE_COLUMNS.items() if k != "source")),
    ]
    if welfare_shown:
        from mktsim.welfare import WELFARE_COLUMNS

        blocks += [_Heading(3, "Welfare columns"), _Terms(tuple(WELFARE_COLUMNS.items()))]
    return blocks


def _render_html(title: str, blocks: Iterable[_Block]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for b in blocks:
        if isinstance(b, _Heading):
            parts.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, _Text):
            parts.append(f"<p>{html.escape(b.text)}</p>")
        elif isinstance(b, _Terms):
            terms = (f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in b.items)
            parts.append("<dl>" + "".join(terms) + "</dl>")
        elif isinstance(b, _Table):
            parts.append(_html_table(b))
        else:
            data = base64.b64encode(b.png).decode("ascii")
            parts.append(
                f'<figure><img alt="{html.escape(b.caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(b.caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _render_markdown(title: str, blocks: Iterable[_Block], figure_dir: str) -> str:
    parts = [f"# {title}"]
    for b in blocks:
        if isinstance(b, _Heading):
            parts.append("#" * b.level + " " + b.text)
        elif isinstance(b, _Text):
            parts.append(b.text)
        elif isinstance(b, _Terms):
            parts.append("\n".join(f"- **{k}**: {v}" for k, v in b.items))
        elif isinstance(b, _Table):
            parts.append(_md_table(b))
        else:
            parts.append(f"![{b.caption}]({figure_dir}/{b.name}.png)\n\n*{b.caption}*")
    return "\n\n".join(parts) + "\n"


def write_report(
    runs: RunLike | Sequence[RunLike],
    out_dir: str | Path | None = None,
    *,
    title: str | None = None,
    markdown: bool = True,
) -> ReportPaths:
    """Write ``report.html`` (self-contained: figures as data URIs, inline CSS, no scripts and no
    external resource) and, with ``markdown``, ``report.md`` with its PNG figures in
    ``report_figures/``.

    With several runs the page opens with a comparison (convergence table, price error and
    excess-demand norm of every run overlaid, per scenario), then one section per run.

    Args:
        runs: run folders, Runs or RunData (one or several).
        out_dir: output folder; default the run's own folder for a single saved run.
        title: page title (default from the runs).
        markdown: also write the Markdown twin and its PNG files.

    Raises:
        InvalidParameter: no runs, or no ``out_dir`` where there is no single run folder.
    """
    data = _many(runs)
    if not data:
        raise InvalidParameter("runs must name at least one run")
    if out_dir is None:
        if len(data) != 1 or not Path(data[0].source).is_dir():
            raise InvalidParameter("out_dir(=None) is only allowed for a single saved run folder")
        out_dir = data[0].source
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidParameter(f"out_dir(={str(out)!r}) is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidParameter(f"out_dir(={str(out)!r}) cannot be created: {exc}") from None
    labels = run_labels(data)
    if title is None:
        title = (
            f"mktsim report: {labels[0]}"
            if len(data) == 1
            else f"mktsim report: {len(data)} runs compared"
        )
    blocks: list[_Block] = []
    if len(data) > 1:
        blocks += _comparison_blocks(data, labels)
    for i, (d, label) in enumerate(zip(data, labels, strict=True)):
        blocks += _run_blocks(i, d, label, len(data) > 1)
    blocks += _glossary(
        any(isinstance(b, _Table) and b.caption.startswith("Welfare") for b in blocks)
    )

    html_path = out / "report.html"
    html_path.write_text(_render_html(title, blocks), encoding="utf-8")
    md_path: Path | None = None
    figures: list[Path] = []
    if markdown:
        fig_dir = out / "report_figures"
        fig_dir.mkdir(exist_ok=True)
        for b in blocks:
            if isinstance(b, _Image):
                path = fig_dir / f"{b.name}.png"
                path.write_bytes(b.png)
                figures.append(path)
        md_path = out / "report.md"
        md_path.write_text(_render_markdown(title, blocks, fig_dir.name), encoding="utf-8")
    return ReportPaths(html_path, md_path, tuple(figures))
