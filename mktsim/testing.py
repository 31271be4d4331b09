"""A conformance check any mechanism (ours or a third party's) can run in its own tests.

``check_mechanism("walrasian")`` runs a small exchange economy twice under the mechanism and
asserts the contract every mechanism must keep: declared options and behaviours, unknown options
refused, a finished run with every documented frame and summary key, exact conservation and no
negative holdings, and bit-for-bit identical frames for the same seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mktsim.errors import UnknownName
from mktsim.mechanism import Option
from mktsim.recorder import SCHEMAS
from mktsim.registry import resolve
from mktsim.run import FRAMES, Run, simulate
from mktsim.scenario import Scenario

__all__ = ["SUMMARY_KEYS", "check_mechanism", "small_economy"]

SUMMARY_KEYS = (
    "scenario",
    "mechanism",
    "method",
    "seed",
    "rounds",
    "sim_time",
    "wall_seconds",
    "converged",
    "final_prices",
    "equilibrium_prices",
    "price_error",
    "excess_demand_norm",
    "time_to_tolerance",
    "conservation_ok",
    "cycle_detected",
)


def small_economy(n_agents: int = 20, n_goods: int = 3, seed: int = 0) -> Scenario:
    """A small Cobb-Douglas exchange economy for checks."""
    from mktsim.scenarios import cobb_douglas

    return cobb_douglas.build(n_agents=n_agents, n_goods=n_goods, seed=seed)


def _check_declarations(cls: Any) -> None:
    for attr in ("name", "description", "options"):
        assert hasattr(cls, attr), f"{cls.__name__} lacks class attribute {attr!r}"
    assert isinstance(cls.name, str) and cls.name, "name must be a non-empty string"
    assert isinstance(cls.options, Mapping), "options must be a mapping"
    for key, opt in cls.options.items():
        assert isinstance(opt, Option), f"option {key!r} is not an Option"
    assert getattr(cls, "behaviours", None) or getattr(cls, "accepts", None), (
        "a mechanism must offer at least one behaviour or accept some orders"
    )
    try:
        cls(__no_such_option__=1)
    except UnknownName:
        pass
    else:
        raise AssertionError("an unknown option must raise UnknownName")


def _check_run(run: Run) -> None:
    for key in SUMMARY_KEYS:
        assert key in run.summary, f"summary lacks {key!r}"
    assert run.summary["conservation_ok"], "the ledger did not conserve goods"
    for name in FRAMES:
        frame = run.frame(name)
        assert list(frame.columns) == list(SCHEMAS[name]), f"frame {name!r} has wrong columns"
    holdings = run.holdings
    assert (holdings["quantity"] >= 0).all(), "a holding went negative"
    trades = run.trades
    if len(trades):
        per_trade = trades.groupby(["trade_id", "good"], observed=True)["quantity"].sum()
        assert np.allclose(per_trade.to_numpy(), 0.0, atol=1e-6), "a settlement was unbalanced"
    run.mechanism.quote()


def check_mechanism(
    mechanism: Any,
    scenario: Scenario | None = None,
    until: float = 30.0,
    seed: int = 7,
    **options: Any,
) -> Run:
    """Assert the mechanism contract; returns the first run for further checks.

    Args:
        mechanism: registered name, ``module:Class`` or class.
        scenario: economy to run (default: the mechanism's ``example_scenario()`` if it has
            one, e.g. a prediction market for an LMSR maker, else :func:`small_economy`).
        until: horizon of each run.
        seed: seed used for both runs.
        **options: mechanism options.
    """
    cls = resolve(mechanism)
    _check_declarations(cls)
    if scenario is None:  # a mechanism for a special kind of economy offers its own example
        example = getattr(cls, "example_scenario", None)
        scenario = example() if callable(example) else small_economy()
    first = simulate(scenario, cls, seed=seed, until=until, **options)
    _check_run(first)
    second = simulate(scenario, cls, seed=seed, until=until, **options)
    for name in first.tables:
        pd.testing.assert_frame_equal(first.frame(name), second.frame(name), check_exact=True)
    volatile = {"wall_seconds"}
    assert {k: v for k, v in first.summary.items() if k not in volatile} == {
        k: v for k, v in second.summary.items() if k not in volatile
    }, "same seed gave different summaries"
    return first
