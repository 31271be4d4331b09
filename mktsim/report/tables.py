"""Tables of a run: paths over time, each good at the end, trading per good, one row per run.

Every error here is measured against the reference in force (:mod:`mktsim.report.references`):
the equilibrium of the economy the run started in, then of the economy each shock left.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mktsim.metrics import Cycle, detect_cycle, time_to_tolerance
from mktsim.report.data import CounterfactualData, RunData, RunLike, load, many, run_labels
from mktsim.report.references import (
    error_path,
    final_reference,
    regimes,
    shock_details,
    wide_frame,
)

__all__ = [
    "CONVERGENCE_COLUMNS",
    "COUNTERFACTUAL_COLUMNS",
    "OPTIONAL",
    "RECOVERY_COLUMNS",
    "chain_table",
    "convergence_table",
    "counterfactual_table",
    "deviation_goods",
    "excess_demand_by_population_table",
    "excess_demand_path",
    "excess_demand_table",
    "market_table",
    "payout_ids",
    "peak_deviation",
    "price_error_path",
    "recovery_table",
    "trade_count",
    "transactions",
    "welfare",
    "welfare_change_table",
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
    "base_units": "the ledger's integers per unit of every good, chosen from the economy's size",
    "converged": "the mechanism reported convergence",
    "rounds": "rounds of the mechanism",
    "sim_time": "simulation time at the end of the run",
    "price_error": "final max relative price error against the reference equilibrium in force "
    "(after the last shock that changed the economy, if any)",
    "price_error_vs_holdings_equilibrium": "final price error against the equilibrium of the "
    "holdings reached (trade out of equilibrium moves the economy: path dependence)",
    "time_to_tolerance": "first time after which the price error stays below price_tolerance",
    "rounds_to_tolerance": "round at time_to_tolerance",
    "price_tolerance": "tolerance used for time_to_tolerance",
    "excess_demand_norm": "final max over goods of |excess demand| / supply",
    "cycle_detected": "prices keep oscillating around a centre (see detect_cycle)",
    "cycle_period": "period of the oscillation, simulation time",
    "cycle_amplitude": "relative amplitude of the last complete half-swing",
    "trades": "number of settlements (distinct trade ids; redemptions at resolution excluded)",
    "turnover": "numeraire paid for goods over the run",
    "smith_alpha": "Smith's alpha of transaction prices against the reference in force at each "
    "transaction, worst good (percent)",
    "volatility": "std of log returns between transactions, worst good",
    "spread": "mean relative bid-ask spread over goods and quotes",
    "allocative_efficiency": "gains from trade realised / gains at the equilibrium (welfare), "
    "against the equilibrium in force (from the last shock that changed the economy, if any)",
    "allocative_efficiency_vs_initial_equilibrium": "the same over the whole run against the "
    "initial economy's equilibrium (only after shocks that changed the economy)",
    "share_worse_off": "fraction of all agents whose utility fell",
    "conservation_ok": "the ledger conserved every good",
    "equilibrium_status": "status of the reference equilibrium",
    "wall_seconds": "wall-clock seconds of the simulation",
    "source": "run folder",
}

#: Convergence-table columns shown only when some run has a value for them.
OPTIONAL = (
    "mode",
    "method",
    "price_error_vs_holdings_equilibrium",
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
    "allocative_efficiency_vs_initial_equilibrium",
    "share_worse_off",
)

_QUOTES = "quotes"
_NAN = float("nan")


# ---- paths over time ------------------------------------------------------------------------


def price_error_path(run: RunLike, column: str = "estimate") -> pd.DataFrame:
    """Price error against the reference equilibrium in force at each recorded (time, round).

    Args:
        run: a run (folder, Run or RunData).
        column: ``estimate`` (the mechanism's current best estimate) or ``price`` (as posted or
            traded).

    Returns:
        DataFrame ``time, round, price_error`` (max over goods of |p - p*| / p*); empty when
        the run has no reference equilibrium or no prices.
    """
    return error_path(load(run), column)


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
    wide = wide_frame(ed, "relative", data.goods)
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
        ``price_error`` (signed, (final - p*) / p*, p* the reference in force at the end),
        ``excess_demand`` (units) and ``relative_excess_demand`` (units / supply).
        Missing values are NaN.
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
    ref = final_reference(data) or {}
    out["equilibrium_price"] = out["good"].map(ref).astype(float)
    out["price_error"] = (out["final_price"] - out["equilibrium_price"]) / out["equilibrium_price"]
    if not ed.empty:
        last = _last_per(ed, ["good"])
        out["excess_demand"] = out["good"].map(last["excess_demand"]).astype(float)
        out["relative_excess_demand"] = out["good"].map(last["relative"]).astype(float)
    else:
        out["excess_demand"] = out["relative_excess_demand"] = _NAN
    return out


def chain_table(data: RunData) -> pd.DataFrame:
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


def transactions(trades: pd.DataFrame, exclude: frozenset[int] = frozenset()) -> pd.DataFrame:
    """One row per (settlement, good): time, trade_id, good, price, volume, turnover.

    Args:
        trades: the ``trades`` frame.
        exclude: trade ids that are not trades (see :func:`payout_ids`).
    """
    t = trades.assign(good=trades["good"].astype(str))
    if exclude:
        t = t[~t["trade_id"].isin(exclude)]
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


def payout_ids(data: RunData) -> frozenset[int]:
    """Trade ids that settle a resolved event, not a trade: a prediction market redeems each
    winning share for one unit of money through the ledger at resolution. They are the
    settlements from the ``resolution`` event on that the maker's own table (``market_maker``,
    one row per trade) does not list; empty for runs without a resolution."""
    events, trades = data.frame("events"), data.frame("trades")
    if events.empty or trades.empty or "kind" not in events:
        return frozenset()
    resolved = events.loc[events["kind"].astype(str) == "resolution", "time"]
    if resolved.empty:
        return frozenset()
    after = trades.loc[trades["time"] >= float(resolved.min()), "trade_id"]
    maker = data.frame("market_maker")
    listed = set(maker["trade_id"].tolist()) if "trade_id" in maker else set()
    return frozenset(int(i) for i in after.unique() if int(i) not in listed)


def trade_count(data: RunData) -> int:
    """Settlements that are trades (distinct trade ids, redemptions at resolution excluded)."""
    ids = data.frame("trades")["trade_id"]
    return int(ids[~ids.isin(payout_ids(data))].nunique())


def _smith_alpha(prices: np.ndarray, p0: np.ndarray) -> float:
    """100 sqrt(mean (P_k - P0_k)^2 / P0_k^2) (Smith 1962), P0_k the reference in force at
    transaction k (constant without shocks); NaN without trades or a reference."""
    ok = np.isfinite(p0) & (p0 > 0)
    if prices.size == 0 or not ok.all():
        return _NAN
    return float(100.0 * np.sqrt(np.mean(((prices - p0) / p0) ** 2)))


def _reference_at(data: RunData, times: np.ndarray, good: str) -> np.ndarray:
    """The reference price of ``good`` in force at each time (NaN where there is none)."""
    regs = regimes(data)
    which = np.searchsorted([r.start for r in regs], times, side="right") - 1
    values = np.array([(r.prices or {}).get(good, _NAN) for r in regs], dtype=float)
    return values[which]


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
    ``last_price``, ``equilibrium_price`` (the reference in force at the end), ``smith_alpha``
    (100 sqrt(mean ((P_k - P0_k) / P0_k)^2) over transaction prices P_k, P0_k the reference
    in force at the transaction; redemptions at a prediction market's resolution are not
    trades), ``volatility`` (std of log returns between consecutive transactions),
    ``spread_mean`` and ``spread_median`` (relative bid-ask spread, from a ``quotes`` table).
    Empty when the run neither traded nor quoted.
    """
    data = load(run)
    ref = final_reference(data) or {}
    rows: dict[str, dict[str, Any]] = {}
    if data.has("trades"):
        tx = transactions(data.frame("trades"), payout_ids(data))
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
                "smith_alpha": _smith_alpha(
                    p, _reference_at(data, g["time"].to_numpy(float), str(good))
                ),
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


def _whole_run_efficiency(w: pd.DataFrame) -> float:
    """Whole-run efficiency against the initial economy's equilibrium, summed over populations
    (NaN for runs whose economy no shock changed)."""
    num, den = "surplus_vs_initial_equilibrium", "surplus_equilibrium_vs_initial_equilibrium"
    if not {num, den} <= set(w.columns):
        return _NAN
    gains, at_eq = float(w[num].sum(min_count=1)), float(w[den].sum(min_count=1))
    ok = np.isfinite(gains) and np.isfinite(at_eq) and abs(at_eq) > 1e-12
    return gains / at_eq if ok else _NAN


# ---- cycles ---------------------------------------------------------------------------------


def _cycle(data: RunData) -> Cycle:
    # after the last shock that changed the economy, around the equilibrium it left
    tol = data.summary.get("price_tolerance") or 1e-3
    last = regimes(data)[-1]
    prices = data.frame("prices")
    if np.isfinite(last.start) and not prices.empty:
        prices = prices[prices["time"] >= last.start]
    return detect_cycle(
        prices,
        last.prices,
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
    data = many(runs)
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
            row["trades"] = trade_count(d)
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
            row["allocative_efficiency_vs_initial_equilibrium"] = _whole_run_efficiency(w)
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


# ---- counterfactuals ------------------------------------------------------------------------

#: Figures of a counterfactual (``counterfactual.json`` and the tables derived from it).
COUNTERFACTUAL_COLUMNS: dict[str, str] = {
    "peak_price_deviation": "largest |treated / baseline - 1| of a price over goods (numeraire "
    "excluded) and time: how far the treatment moved prices from where they would have been",
    "peak_time": "first time the deviation reached its peak",
    "recovery_time": "time from the shock until the treated run's price error against the "
    "equilibrium of the economy the shock left stays below price_tolerance (none: never)",
    "peak_deviation_after": "largest deviation from the baseline from the shock on",
    "recovery_to_baseline": "time from the shock until the deviation from the baseline stays below "
    "price_tolerance (none: never; a shock that changed the economy moves the equilibrium away "
    "from the baseline's for good)",
    "money_metric_change": "treated less baseline money-metric welfare of the population, both "
    "against the initial economy's equilibrium (numeraire units)",
    "utility_change_mean": "treated less baseline mean utility gain of the population's agents",
    "value_change": "treated less baseline change in the value of the population's holdings at "
    "the baseline's final prices",
    "adversary_gain": "an adversary population's gain (money metric, else value change)",
    "harm_to_others": "minus the sum of the gains of every population that is not an adversary",
}


def deviation_goods(cf: CounterfactualData) -> list[str]:
    """Goods whose deviation counts (the non-numeraire goods, in the runs' order)."""
    by_good = cf.summary.get("peak_price_deviation_by_good") or {}
    goods = cf.treated.goods or [str(g) for g in pd.unique(cf.deviation["good"].astype(str))]
    return [g for g in goods if g in by_good] if by_good else goods


def peak_deviation(cf: CounterfactualData) -> dict[str, Any]:
    """The largest |deviation| in ``deviation.parquet``: its value, good and first time.

    Returns:
        ``{"peak_price_deviation", "peak_good", "peak_time"}``, each None without deviations.
    """
    dev = cf.deviation
    moving = dev[dev["good"].astype(str).isin(deviation_goods(cf))]
    size = moving["deviation"].abs().to_numpy(float)
    if not np.isfinite(size).any():
        return {"peak_price_deviation": None, "peak_good": None, "peak_time": None}
    k = int(np.nanargmax(size))  # the first row (earliest time) holding the maximum
    row = moving.iloc[k]
    return {
        "peak_price_deviation": float(size[k]),
        "peak_good": str(row["good"]),
        "peak_time": float(row["time"]),
    }


def _what_shocked(cf: CounterfactualData) -> str:
    rows = cf.summary.get("recovery") or []
    if rows:
        return "; ".join(
            f"{r.get('kind')} shock at t = {float(r['time']):g}"
            + (f" ({shock_details(r)})" if shock_details(r) else "")
            for r in rows
        )
    shocks = cf.summary.get("shocks") or []
    return "; ".join(str(s) for s in shocks) if shocks else "none"


def counterfactual_table(cf: CounterfactualData) -> pd.DataFrame:
    """``metric, value``: the counterfactual's settings and figures, values as recorded."""
    s = cf.summary
    peak = peak_deviation(cf)
    rows: list[tuple[str, Any]] = [
        ("scenario", s.get("scenario")),
        ("mechanism", s.get("mechanism")),
        ("seed", s.get("seed")),
        ("shocks", _what_shocked(cf)),
        ("adversaries", ", ".join(map(str, s.get("adversaries") or [])) or "none"),
        ("peak_price_deviation", s.get("peak_price_deviation")),
    ]
    by_good = s.get("peak_price_deviation_by_good") or {}
    rows += [(f"peak_price_deviation ({g})", v) for g, v in by_good.items()]
    rows += [("peak_time", peak["peak_time"]), ("peak_good", peak["peak_good"])]
    for pop, gain in (s.get("adversary_gain") or {}).items():
        rows.append((f"adversary_gain ({pop})", gain))
    if s.get("harm_to_others") is not None:
        rows.append(("harm_to_others", s["harm_to_others"]))
    rows += [
        ("baseline_converged", s.get("baseline_converged")),
        ("treated_converged", s.get("treated_converged")),
    ]
    return pd.DataFrame(rows, columns=["metric", "value"])


#: Columns of :func:`recovery_table`.
RECOVERY_COLUMNS = (
    "time",
    "kind",
    "shock",
    "peak_price_error",
    "recovery_time",
    "peak_deviation_after",
    "recovery_to_baseline",
    "allocative_efficiency",
)


def recovery_table(cf: CounterfactualData) -> pd.DataFrame:
    """One row per shock of the treated run: its recovery to the new equilibrium in force and
    back to the baseline (``counterfactual.json``'s ``recovery``)."""
    rows = [
        {
            **{c: r.get(c) for c in RECOVERY_COLUMNS},
            "shock": shock_details(r) or r.get("shock"),
        }
        for r in cf.summary.get("recovery") or []
    ]
    return pd.DataFrame(rows, columns=list(RECOVERY_COLUMNS))


def welfare_change_table(cf: CounterfactualData) -> pd.DataFrame:
    """One row per population: treated less baseline welfare (``welfare_change``), value of
    holdings (``value_change``) and, for adversaries, their gain."""
    s = cf.summary
    welfare = s.get("welfare_change") or {}
    value = s.get("value_change") or {}
    gain = s.get("adversary_gain") or {}
    pops = list(dict.fromkeys([*welfare, *value, *gain]))
    table = pd.DataFrame(
        {
            "population": pops,
            "money_metric_change": [
                (welfare.get(p) or {}).get("money_metric_change") for p in pops
            ],
            "utility_change_mean": [
                (welfare.get(p) or {}).get("utility_change_mean") for p in pops
            ],
            "value_change": [value.get(p) for p in pops],
            "adversary_gain": [gain.get(p) for p in pops],
        }
    )
    return table if gain else table.drop(columns="adversary_gain")
