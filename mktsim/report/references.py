"""The reference in force: the equilibrium a run's prices are measured against, piecewise in time.

A run's summary keeps the equilibrium of the economy it started in (``equilibrium_prices``) and,
for each shock that changed the economy (endowments, preferences), the equilibrium of the shocked
economy computed when it struck (``shocks[k]["equilibrium_prices"]``). Market shocks (latency,
outage, price clamp, liquidity withdrawal, circuit breaker) change how orders reach the market,
not what clears it: the reference stays. So from each economy shock up to the next, prices are
measured against the equilibrium that shock left; a price recorded at the very time of a shock
already belongs to the shocked economy (shocks act before the market at the same time).

Where the shocked economy's equilibrium was not recomputed (a scenario that brings its own
reference, such as a supply chain), there is no reference from that shock on and errors are
missing rather than measured against an economy that no longer exists.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from attrs import frozen

from mktsim.metrics import time_to_tolerance
from mktsim.report.data import RunData, RunLike, load
from mktsim.shocks import SHOCKS

__all__ = ["SHOCK_COLUMNS", "Regime", "error_path", "final_reference", "regimes", "shocks_table"]

#: Columns of :func:`shocks_table` and what they mean.
SHOCK_COLUMNS: dict[str, str] = {
    "time": "simulation time the shock struck",
    "kind": "kind of shock (endowment, preference, latency, outage, clamp, liquidity, breaker)",
    "shock": "what the shock did",
    "reference": "the reference equilibrium from this shock on",
    "until": "end of the shock's window: the next shock, or the end of the run",
    "peak_price_error": "largest price error against the reference in force within the window",
    "recovery_time": "time from the shock until the price error stays below price_tolerance "
    "within its window (none: it never did before the next shock or the end)",
    "end_price_error": "price error against the reference in force at the end of the window",
    "allocative_efficiency": "for a shock that changed the economy: gains from trade realised "
    "from it up to the next such shock over the gains at the new equilibrium (welfare of the "
    "holdings, utilities and equilibrium in force)",
}


@frozen
class Regime:
    """A stretch of the run measured against one reference.

    Attributes:
        start: first time of the stretch (``-inf`` for the economy the run started in).
        prices: the reference equilibrium, good -> price (numeraire = 1), or None.
        cause: what set it (``initial economy`` or the shock).
    """

    start: float
    prices: dict[str, float] | None
    cause: str


def _economy(row: dict[str, Any]) -> bool:
    cls: Any = SHOCKS.get(str(row.get("kind")))
    return not cls.market if cls is not None else "equilibrium_prices" in row


def _prices(value: Any) -> dict[str, float] | None:
    if not isinstance(value, dict):
        return None
    return {str(k): float(v) for k, v in value.items()}


def shocks(data: RunData) -> list[dict[str, Any]]:
    """The summary's shocks, sorted by time (empty when the run had none)."""
    rows = data.summary.get("shocks") or []
    return sorted((r for r in rows if isinstance(r, dict)), key=lambda r: float(r["time"]))


def regimes(data: RunData) -> list[Regime]:
    """The references of a run in time order: the initial equilibrium, then one per economy
    shock (see the module's docstring)."""
    out = [Regime(float("-inf"), data.equilibrium, "initial economy")]
    for row in shocks(data):
        if _economy(row):
            when = float(row["time"])
            out.append(Regime(when, _prices(row.get("equilibrium_prices")), _describe(row)))
    return out


def final_reference(data: RunData) -> dict[str, float] | None:
    """The reference in force at the end of the run."""
    return regimes(data)[-1].prices


def _details(row: dict[str, Any]) -> str:
    """``good=good1, factor=0.5`` from the summary's ``EndowmentShock(time=100.0, ...)``."""
    text = str(row.get("shock", ""))
    inside = text[text.find("(") + 1 : text.rfind(")")] if "(" in text else text
    parts = [p.strip() for p in re.split(r",\s*(?=\w+=)", inside) if p.strip()]
    kept = [p.replace("'", "") for p in parts if not p.startswith(("time=", "kind="))]
    return ", ".join(p for p in kept if not p.endswith("=None"))


def _describe(row: dict[str, Any]) -> str:
    """``endowment shock at 100: good=good1, factor=0.5``."""
    head = f"{row.get('kind')} shock at {float(row['time']):g}"
    details = _details(row)
    return head + (": " + details if details else "")


def error_path(data: RunData, column: str = "estimate") -> pd.DataFrame:
    """Price error against the reference in force at each recorded (time, round).

    Returns:
        DataFrame ``time, round, price_error`` (max over goods of |p - p*| / p*, each good's
        last recorded value carried forward); rows whose reference is unknown are dropped; empty
        when the run has no prices or no reference at all.
    """
    prices, regs = data.frame("prices"), regimes(data)
    empty = pd.DataFrame({"time": [], "round": [], "price_error": []})
    if prices.empty or all(r.prices is None for r in regs):
        return empty
    wide = wide_frame(prices, column, data.goods)
    times = wide.index.get_level_values("time").to_numpy(float)
    which = np.searchsorted([r.start for r in regs], times, side="right") - 1
    err = pd.Series(np.nan, index=wide.index)
    for k, regime in enumerate(regs):
        rows = which == k
        if regime.prices is None or not rows.any():
            continue
        cols = [g for g in wide.columns if g in regime.prices]
        p_star = pd.Series(regime.prices)[cols]
        part = wide.loc[rows, cols]
        err[rows] = part.sub(p_star, axis=1).abs().div(p_star, axis=1).max(axis=1, skipna=True)
    out = err.rename("price_error").reset_index()
    return out.dropna(subset=["price_error"]).reset_index(drop=True)


def wide_frame(frame: pd.DataFrame, value: str, goods: list[str]) -> pd.DataFrame:
    """(time, round) x good of ``value``, each good's last value carried forward."""
    f = frame[["time", "round", "good", value]].copy()
    f["good"] = f["good"].astype(str)
    wide = f.pivot_table(
        index=["time", "round"], columns="good", values=value, aggfunc="last", sort=True
    )
    return wide.reindex(columns=[g for g in goods if g in wide.columns]).ffill()


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else np.nan


def shocks_table(run: RunLike) -> pd.DataFrame:
    """One row per shock with the columns of :data:`SHOCK_COLUMNS`: each measured from its time
    up to the next shock (or the end), against the reference in force in that window."""
    data = load(run)
    rows = shocks(data)
    if not rows:
        return pd.DataFrame({c: [] for c in SHOCK_COLUMNS})
    path = error_path(data)
    tol = float(data.summary.get("price_tolerance") or 1e-3)
    end = float(data.summary.get("sim_time") or np.inf)
    current = data.equilibrium
    out = []
    for k, row in enumerate(rows):
        when = float(row["time"])
        until = float(rows[k + 1]["time"]) if k + 1 < len(rows) else end
        if _economy(row):
            current = _prices(row.get("equilibrium_prices"))
            reference = "new equilibrium" if current is not None else "none (not recomputed)"
        else:
            reference = "unchanged" if current is not None else "none"
        last = k + 1 == len(rows)
        inside = path[
            (path["time"] >= when) & ((path["time"] <= until) if last else (path["time"] < until))
        ]
        peak = recovery = end_error = np.nan
        if current is not None and not inside.empty:
            peak = float(inside["price_error"].max())
            end_error = float(inside["price_error"].iloc[-1])
            done = time_to_tolerance(inside, tol)
            recovery = np.nan if done is None else done - when
        out.append(
            {
                "time": when,
                "kind": str(row.get("kind")),
                "shock": _details(row),
                "reference": reference,
                "until": until,
                "peak_price_error": peak,
                "recovery_time": recovery,
                "end_price_error": end_error,
                "allocative_efficiency": _number(row.get("allocative_efficiency")),
            }
        )
    return pd.DataFrame(out, columns=list(SHOCK_COLUMNS))
