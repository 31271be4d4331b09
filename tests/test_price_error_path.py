"""The price-error path against pandas' groupby formulation of the same definition."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from mktsim.metrics import price_error_path

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
