"""Convergence metrics computed from a run's frames (never from the simulator's state).

All functions take long-format frames as recorded (see :mod:`mktsim.recorder`) and return
numbers or frames, so reports, notebooks and tests share one definition of each metric.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from attrs import frozen

from mktsim.errors import InvalidParameter

_NAN = float("nan")

__all__ = ["Cycle", "detect_cycle", "price_error_path", "time_to_tolerance"]


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
    good = prices["good"]
    if isinstance(good.dtype, pd.CategoricalDtype):  # as recorded: look up each category once
        lookup = np.array([reference.get(str(c), _NAN) for c in good.cat.categories] + [_NAN])
        ref = lookup[good.cat.codes.to_numpy()]  # code -1 (missing) reads the trailing NaN
    else:
        ref = good.astype(str).map(dict(reference)).astype(float).to_numpy()
    err = np.abs(prices[column].to_numpy(np.float64) - ref) / ref
    # The largest error per (time, round), in that order, missing errors left out unless a
    # group has nothing else: a groupby's max, worked out on the arrays (pandas' groupby costs
    # milliseconds, a share of a short run's whole summary).
    t, rnd = prices["time"].to_numpy(), prices["round"].to_numpy()
    order = np.lexsort((rnd, t))
    t, rnd, err = t[order], rnd[order], err[order]
    starts = np.flatnonzero(np.r_[True, (t[1:] != t[:-1]) | (rnd[1:] != rnd[:-1])])
    return pd.DataFrame(
        {"time": t[starts], "round": rnd[starts], "price_error": np.fmax.reduceat(err, starts)}
    )


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


@frozen
class Cycle:
    """The outcome of :func:`detect_cycle`.

    Attributes:
        detected: some good's price oscillates persistently and regularly.
        good: the good with the largest such oscillation (None if none).
        period: estimated period, simulation time (twice the mean half-swing duration).
        amplitude: largest |p / centre - 1| in the last complete half-swing.
        swings: complete half-swings observed.
        ratio: amplitude of the last complete half-swing over the first.
    """

    detected: bool
    good: str | None = None
    period: float = _NAN
    amplitude: float = _NAN
    swings: int = 0
    ratio: float = _NAN


def detect_cycle(
    prices: pd.DataFrame,
    reference: Mapping[str, float] | None = None,
    *,
    converged: bool = False,
    tolerance: float = 1e-3,
    decay: float = 0.5,
    regularity: float = 0.5,
    column: str = "estimate",
) -> Cycle:
    """Detect persistent oscillation of prices around a centre.

    For each good, ``d = p / centre - 1`` with the centre its reference equilibrium price (or,
    without one, the mean of the second half of its path). A crossing is a change of side with
    hysteresis: ``d`` must reach ``+tolerance`` and then ``-tolerance`` (or the reverse), so
    numerical noise below the tolerance never counts. A good cycles when it shows at least two
    complete half-swings (one full period), the amplitude of the last is at least ``decay``
    times the first (damped oscillations that die out do not count; spirals that grow do), and
    the half-swing durations are regular (coefficient of variation at most ``regularity``, which
    separates a cycle from noise around the centre). A converged run never cycles.

    Args:
        prices: the ``prices`` frame.
        reference: good -> equilibrium price, or None.
        converged: whether the mechanism reported convergence.
        tolerance: relative deviation below which the price counts as at its centre.
        decay: least ratio of last to first half-swing amplitude for a persistent cycle.
        regularity: largest coefficient of variation of half-swing durations.
        column: price column to examine.
    """
    for name, value in (("tolerance", tolerance), ("decay", decay), ("regularity", regularity)):
        if not np.isfinite(value) or value <= 0:
            raise InvalidParameter(f"{name}(={value}) must be > 0 and finite")
    if converged or prices.empty:
        return Cycle(False)
    best, best_amplitude = Cycle(False), 0.0
    # Each good's path in (time, round) order, ties in recorded order; goods in order of first
    # appearance (a groupby without sorting, on the arrays: pandas' costs milliseconds).
    names = prices["good"].astype(str).to_numpy()
    times, rounds = prices["time"].to_numpy(float), prices["round"].to_numpy()
    values = prices[column].to_numpy(float)
    for good in pd.unique(names):
        rows = np.flatnonzero(names == good)
        rows = rows[np.lexsort((rounds[rows], times[rows]))]
        x, t = values[rows], times[rows]
        keep = np.isfinite(x) & (x > 0)
        x, t = x[keep], t[keep]
        if x.size < 4:
            continue
        centre = (reference or {}).get(str(good))
        if centre is None or not np.isfinite(centre) or centre <= 0:
            centre = float(x[x.size // 2 :].mean())
        d = x / centre - 1.0
        side = np.where(d >= tolerance, 1, np.where(d <= -tolerance, -1, 0))
        marked = np.flatnonzero(side)
        flips = marked[1:][side[marked[1:]] != side[marked[:-1]]]
        if flips.size < 3:
            continue
        amplitudes = np.array([np.abs(d[a:b]).max() for a, b in itertools.pairwise(flips)])
        durations = np.diff(t[flips])
        mean_duration = float(durations.mean())
        cv = float(durations.std() / mean_duration) if mean_duration > 0 else math.inf
        ratio = float(amplitudes[-1] / amplitudes[0])
        if ratio >= decay and cv <= regularity and amplitudes[-1] > best_amplitude:
            best_amplitude = float(amplitudes[-1])
            best = Cycle(
                True,
                str(good),
                2.0 * mean_duration,
                float(amplitudes[-1]),
                int(amplitudes.size),
                ratio,
            )
    return best
