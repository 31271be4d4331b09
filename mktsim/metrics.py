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

__all__ = [
    "Cycle",
    "PriceRows",
    "detect_cycle",
    "price_error_path",
    "time_to_tolerance",
    "time_to_tolerance_of",
]


@frozen
class PriceRows:
    """A ``prices`` table as the arrays the metrics read (goods by name): a run's summary hands
    its recorder's columns over as they are, without building a frame, whose column reads and
    masks cost a short run's summary more than the metrics themselves."""

    time: np.ndarray
    round: np.ndarray
    good: np.ndarray
    price: np.ndarray
    estimate: np.ndarray

    @classmethod
    def of(cls, prices: pd.DataFrame | PriceRows) -> PriceRows:
        """The rows of a ``prices`` frame (rows already as arrays pass through)."""
        if isinstance(prices, PriceRows):
            return prices
        missing = np.full(len(prices), _NAN)  # a frame may carry one price column only

        def values(column: str) -> np.ndarray:
            return prices[column].to_numpy(np.float64) if column in prices else missing

        return cls(
            prices["time"].to_numpy(np.float64),
            prices["round"].to_numpy(),
            prices["good"].astype(str).to_numpy(object),
            values("price"),
            values("estimate"),
        )

    def __len__(self) -> int:
        return int(self.time.shape[0])


def _check_column(prices: pd.DataFrame | PriceRows, column: str) -> None:
    if column not in ("estimate", "price"):
        raise InvalidParameter(f"column(={column!r}) must be 'estimate' or 'price'")
    if isinstance(prices, pd.DataFrame) and column not in prices:
        raise InvalidParameter(f"column(={column!r}) is not a column of the prices frame")


def _error_path(
    rows: PriceRows, reference: Mapping[str, float], column: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(time, round, price error) per recorded (time, round): see :func:`price_error_path`."""
    names, codes = np.unique(rows.good, return_inverse=True)
    lookup = np.array([reference.get(str(name), _NAN) for name in names], dtype=np.float64)
    ref = lookup[codes.reshape(-1)]
    err = np.abs(getattr(rows, column) - ref) / ref
    # The largest error per (time, round), in that order, missing errors left out unless a
    # group has nothing else: a groupby's max, worked out on the arrays (pandas' groupby costs
    # milliseconds, a share of a short run's whole summary).
    t, rnd = rows.time, rows.round
    order = np.lexsort((rnd, t))
    t, rnd, err = t[order], rnd[order], err[order]
    starts = np.flatnonzero(np.r_[True, (t[1:] != t[:-1]) | (rnd[1:] != rnd[:-1])])
    return t[starts], rnd[starts], np.fmax.reduceat(err, starts)


def price_error_path(
    prices: pd.DataFrame | PriceRows, reference: Mapping[str, float], column: str = "estimate"
) -> pd.DataFrame:
    """Max relative price error against the reference at each recorded time.

    Args:
        prices: the ``prices`` frame (or its :class:`PriceRows`).
        reference: good -> equilibrium price (numeraire = 1).
        column: ``estimate`` (the mechanism's current best estimate) or ``price`` (as posted).

    Returns:
        DataFrame with columns ``time``, ``round``, ``price_error`` (max over goods of
        |p - p*| / p*), one row per recorded time and round.
    """
    _check_column(prices, column)
    rows = PriceRows.of(prices)
    if not len(rows):
        return pd.DataFrame({"time": [], "round": [], "price_error": []})
    t, rnd, err = _error_path(rows, reference, column)
    return pd.DataFrame({"time": t, "round": rnd, "price_error": err})


def time_to_tolerance(path: pd.DataFrame, tolerance: float) -> float | None:
    """First recorded time after which ``price_error`` stays below ``tolerance`` (None if the
    last error is not below it)."""
    if path.empty:
        return None
    return _first_time_below(path["time"].to_numpy(), path["price_error"].to_numpy(), tolerance)


def time_to_tolerance_of(
    rows: PriceRows, reference: Mapping[str, float], tolerance: float
) -> float | None:
    """:func:`time_to_tolerance` of the :func:`price_error_path` of ``rows`` (estimates),
    without building the path's frame."""
    if not len(rows):
        return None
    t, _, err = _error_path(rows, reference, "estimate")
    return _first_time_below(t, err, tolerance)


def _first_time_below(time: np.ndarray, err: np.ndarray, tolerance: float) -> float | None:
    above = np.flatnonzero(~(err < tolerance))
    if above.size == 0:
        return float(time[0])
    last = above[-1]
    if last == len(err) - 1:
        return None
    return float(time[last + 1])


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
    prices: pd.DataFrame | PriceRows,
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
        prices: the ``prices`` frame (or its :class:`PriceRows`).
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
    _check_column(prices, column)
    if converged or not len(prices):
        return Cycle(False)
    best, best_amplitude = Cycle(False), 0.0
    # Each good's path in (time, round) order, ties in recorded order; goods in order of first
    # appearance (a groupby without sorting, on the arrays: pandas' costs milliseconds).
    table = PriceRows.of(prices)
    names, times, rounds, values = table.good, table.time, table.round, getattr(table, column)
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
