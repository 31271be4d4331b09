"""Convergence metrics computed from a run's frames (never from the simulator's state).

All functions take long-format frames as recorded (see :mod:`mktsim.recorder`) and return
numbers or frames, so reports, notebooks and tests share one definition of each metric.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["cycle_detected", "price_error_path", "time_to_tolerance"]


def price_error_path(
    prices: pd.DataFrame, reference: Mapping[str, float], column: str = "estimate"
) -> pd.DataFrame:
    """Max relative price error against the reference at each recorded time.

    Args:
        prices: the ``prices`` frame.
        reference: good -> equilibrium price (numeraire = 1).
        column: ``estimate`` (the mechanism's current best estimate) or ``price`` (as posted).

    Returns:
        DataFrame with columns ``time``, ``round``, ``price_error`` (max over goods of
        |p - p*| / p*), one row per recorded time and round.
    """
    if prices.empty:
        return pd.DataFrame({"time": [], "round": [], "price_error": []})
    ref = prices["good"].astype(str).map(dict(reference)).astype(float)
    err = (prices[column] - ref).abs() / ref
    out = (
        pd.DataFrame({"time": prices["time"], "round": prices["round"], "price_error": err})
        .groupby(["time", "round"], sort=True, observed=True)["price_error"]
        .max()
        .reset_index()
    )
    return out


def time_to_tolerance(path: pd.DataFrame, tolerance: float) -> float | None:
    """First recorded time after which ``price_error`` stays below ``tolerance`` (None if the
    last error is not below it)."""
    if path.empty:
        return None
    err = path["price_error"].to_numpy()
    above = np.flatnonzero(~(err < tolerance))
    if above.size == 0:
        return float(path["time"].iloc[0])
    last = above[-1]
    if last == len(err) - 1:
        return None
    return float(path["time"].iloc[last + 1])


def _turning_points(x: np.ndarray) -> int:
    step = np.diff(x)
    scale = max(float(np.abs(x).max()), 1e-300)
    moving = step[np.abs(step) > 1e-9 * scale]
    return int(np.count_nonzero(np.diff(np.sign(moving)) != 0))


def cycle_detected(
    prices: pd.DataFrame, excess_demand: pd.DataFrame, numeraire: str, converged: bool
) -> bool:
    """Persistent oscillation: the market did not converge, some good's price turns back at
    least twice in the last half of the run, and the excess demand does not die out (its largest
    relative value in the last quarter is at least half that in the quarter before)."""
    if converged or prices.empty or excess_demand.empty:
        return False
    norm = (
        excess_demand.assign(size=excess_demand["relative"].abs())
        .groupby("round")["size"]
        .max()
        .to_numpy()
    )
    n = norm.size
    if n < 16 or norm[3 * n // 4 :].max() < 0.5 * norm[n // 2 : 3 * n // 4].max():
        return False
    for good, frame in prices.groupby("good", observed=True):
        if str(good) == numeraire:
            continue
        x = frame.sort_values(["time", "round"])["estimate"].to_numpy()
        if _turning_points(x[x.size // 2 :]) >= 2:
            return True
    return False
