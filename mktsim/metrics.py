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


def cycle_detected(prices: pd.DataFrame, numeraire: str, converged: bool) -> bool:
    """Persistent oscillation of prices: in the last half of the run some good's price keeps
    crossing its own mean (at least 4 times) and the swing in the last quarter is at least half
    the swing in the quarter before it (so damped oscillations that die out do not count)."""
    if converged or prices.empty:
        return False
    for good, frame in prices.groupby("good", observed=True):
        if str(good) == numeraire:
            continue
        x = frame.sort_values(["time", "round"])["estimate"].to_numpy()
        n = x.size
        if n < 16:
            continue
        half = x[n // 2 :]
        centred = half - half.mean()
        scale = max(abs(half.mean()), 1e-300)
        if np.ptp(half) / scale < 1e-6:
            continue  # flat: converged to numerical precision
        crossings = int(np.count_nonzero(np.diff(np.sign(centred[centred != 0])) != 0))
        q3, q4 = x[n // 2 : 3 * n // 4], x[3 * n // 4 :]
        if crossings >= 4 and np.ptp(q4) >= 0.5 * np.ptp(q3):
            return True
    return False
