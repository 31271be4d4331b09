"""The price-error path against pandas' groupby formulation of the same definition, and a
run's summary (worked out on the recorder's arrays) against its frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

import mktsim
from mktsim.metrics import (
    PriceRows,
    detect_cycle,
    price_error_path,
    time_to_tolerance,
    time_to_tolerance_of,
)

GOODS = ["a", "b", "c", "d"]
REFERENCE = {"a": 1.0, "b": 2.0, "c": 0.5}  # "d" has no reference price


def groupby_path(prices: pd.DataFrame, reference: dict[str, float]) -> pd.DataFrame:
    """The definition written with pandas: max over goods of |p - p*| / p* per (time, round)."""
    ref = prices["good"].astype(str).map(reference).astype(float)
    err = (prices["estimate"] - ref).abs() / ref
    frame = pd.DataFrame({"time": prices["time"], "round": prices["round"], "price_error": err})
    grouped = frame.groupby(["time", "round"], sort=True, observed=True)["price_error"]
    return grouped.max().reset_index()


row = st.tuples(
    st.integers(0, 4),  # time, in halves
    st.integers(-1, 2),  # round
    st.sampled_from(GOODS),
    st.one_of(st.none(), st.floats(0.01, 5.0)),  # estimate (None: missing)
)


@settings(max_examples=200, deadline=None)
@given(st.lists(row, min_size=1, max_size=30), st.booleans())
def test_path_matches_the_groupby_formulation(rows, categorical):
    t, rnd, good, est = zip(*rows, strict=True)
    prices = pd.DataFrame(
        {
            "time": np.array(t, dtype=float) / 2,
            "round": np.array(rnd, dtype=np.int64),
            "good": pd.Categorical(good, categories=GOODS) if categorical else list(good),
            "estimate": [np.nan if e is None else e for e in est],
        }
    )
    pd.testing.assert_frame_equal(
        price_error_path(prices, REFERENCE), groupby_path(prices, REFERENCE), check_exact=True
    )


@settings(max_examples=100, deadline=None)
@given(st.lists(row, min_size=1, max_size=30), st.floats(0.01, 2.0))
def test_time_to_tolerance_on_the_rows_matches_the_path(rows, tolerance):
    """What a run's summary reads (the recorder's arrays) against the groupby path of the same
    rows, read as a frame."""
    t, rnd, good, est = zip(*rows, strict=True)
    prices = pd.DataFrame(
        {
            "time": np.array(t, dtype=float) / 2,
            "round": np.array(rnd, dtype=np.int64),
            "good": list(good),
            "price": np.ones(len(rows)),
            "estimate": [np.nan if e is None else e for e in est],
        }
    )
    path = groupby_path(prices, REFERENCE)
    err, times = path["price_error"].to_numpy(), path["time"].to_numpy()
    above = np.flatnonzero(~(err < tolerance))
    want = (
        None
        if above.size and above[-1] == len(err) - 1
        else float(times[above[-1] + 1] if above.size else times[0])
    )
    assert time_to_tolerance_of(PriceRows.of(prices), REFERENCE, tolerance) == want
    assert time_to_tolerance(price_error_path(prices, REFERENCE), tolerance) == want


def test_a_runs_summary_reads_what_its_frames_show():
    """The summary works on the recorder's arrays: its final prices, excess-demand norm, time to
    tolerance and cycle are those worked out from the run's frames."""
    for scenario, mechanism in (("cobb_douglas", "walrasian"), ("scarf", "walrasian")):
        run = mktsim.simulate(mktsim.build_scenario(scenario), mechanism, seed=0)
        summary, prices, ed = run.summary, run.prices, run.excess_demand
        last = prices[prices["round"] == prices["round"].max()]
        column = "price" if summary["converged"] else "estimate"
        assert summary["final_prices"] == {
            str(g): float(v) for g, v in zip(last["good"], last[column], strict=True)
        }
        last_ed = ed[ed["round"] == ed["round"].max()]
        last_ed = last_ed[last_ed["time"] == last_ed["time"].max()]
        assert summary["excess_demand_norm"] == float(last_ed["relative"].abs().max())
        reference = run.reference.prices
        path = groupby_path(prices, reference)
        assert summary["time_to_tolerance"] == time_to_tolerance(path, 1e-3)
        cycle = detect_cycle(prices, reference, converged=summary["converged"])
        assert summary["cycle_detected"] == cycle.detected
