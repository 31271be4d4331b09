"""Counterfactuals: the same economy and seed with and without a shock or an adversary.

``counterfactual(scenario, shocks=[...])`` runs the baseline (no shocks) and the shocked run with
the same seed, and reports the difference: the price deviation path, its peak, the time to recover
within tolerance of the shocked economy's own equilibrium, the welfare change of every population,
and, for adversaries (populations named in ``honest``, which behave truthfully in the baseline),
their gain and the harm to everyone else.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd
from attrs import frozen

from mktsim.errors import UnknownName
from mktsim.run import Run, simulate
from mktsim.scenario import Scenario

__all__ = ["Counterfactual", "counterfactual", "price_deviation"]


@frozen
class Counterfactual:
    """A baseline run, a treated run (shocks and/or adversaries), and their comparison."""

    baseline: Run
    treated: Run
    deviation: pd.DataFrame
    summary: dict[str, Any]

    def save(self, directory: str | Path, figures: bool = True) -> Path:
        """``baseline/`` and ``treated/`` run folders, ``deviation.parquet`` and
        ``counterfactual.json``."""
        out = Path(directory)
        self.baseline.save(out / "baseline", figures=figures)
        self.treated.save(out / "treated", figures=figures)
        self.deviation.to_parquet(out / "deviation.parquet", index=False)
        (out / "counterfactual.json").write_text(json.dumps(self.summary, indent=2, default=str))
        return out


def price_deviation(baseline: pd.DataFrame, treated: pd.DataFrame) -> pd.DataFrame:
    """Per time and good, both runs' price estimates (each carried forward to times only the
    other recorded) and the relative deviation ``treated / baseline - 1``."""

    def wide(frame: pd.DataFrame) -> pd.DataFrame:
        last = frame.assign(good=frame["good"].astype(str)).drop_duplicates(
            ["time", "good"], keep="last"
        )
        return last.pivot(index="time", columns="good", values="estimate")

    a, b = wide(baseline), wide(treated)
    times = a.index.union(b.index)
    a, b = a.reindex(times).ffill(), b.reindex(times).ffill()
    out = pd.DataFrame(
        {
            "time": np.repeat(times.to_numpy(), len(a.columns)),
            "good": np.tile(a.columns.to_numpy(), len(times)),
            "baseline": a.to_numpy().ravel(),
            "treated": b.reindex(columns=a.columns).to_numpy().ravel(),
        }
    )
    out["deviation"] = out["treated"] / out["baseline"] - 1.0
    return out


def _welfare_by_population(run: Run) -> pd.DataFrame:
    table = run.welfare()
    return table.set_index("population") if not table.empty else table


def counterfactual(
    scenario: Scenario,
    shocks: Sequence[Any] | None = None,
    honest: Sequence[str] = (),
    mechanism: Any = None,
    seed: int = 0,
    until: float | None = None,
    **options: Any,
) -> Counterfactual:
    """Run the baseline and the treated economy with the same seed and compare them.

    Args:
        scenario: the economy.
        shocks: shocks of the treated run (default the scenario's own); the baseline has none.
        honest: populations that behave truthfully (their mechanism's default behaviour) in the
            baseline: the adversaries whose effect is measured.
        mechanism, seed, until, **options: as for :func:`mktsim.simulate`.
    """
    names = [p.name for p in scenario.populations]
    for name in honest:
        if name not in names:
            raise UnknownName("population", name, names)
    treated_shocks = tuple(scenario.shocks if shocks is None else shocks)
    baseline_scenario = attrs.evolve(
        scenario,
        populations=[
            attrs.evolve(p, behaviour=None, behaviour_options={}) if p.name in honest else p  # type: ignore[misc]
            for p in scenario.populations
        ],
    )
    common = {"mechanism": mechanism, "seed": seed, "until": until, **options}
    baseline = simulate(baseline_scenario, shocks=(), **common)
    treated = simulate(scenario, shocks=treated_shocks, **common)
    deviation = price_deviation(baseline.prices, treated.prices)
    numeraire = scenario.goods.numeraire
    moving = deviation[deviation["good"] != numeraire]
    peak = moving.groupby("good")["deviation"].apply(lambda d: float(d.abs().max()))
    wb, wt = _welfare_by_population(baseline), _welfare_by_population(treated)
    welfare: dict[str, dict[str, float]] = {}
    if not wb.empty and not wt.empty:
        for pop in wt.index:
            welfare[str(pop)] = {
                "utility_change_mean": float(wt.loc[pop, "gain_mean"] - wb.loc[pop, "gain_mean"]),
                "money_metric_change": float(wt.loc[pop, "surplus"] - wb.loc[pop, "surplus"]),
            }
    adversaries = {p: welfare[p] for p in honest if p in welfare}
    others = {p: w for p, w in welfare.items() if p not in honest}
    summary = {
        "scenario": scenario.name,
        "mechanism": treated.summary["mechanism"],
        "seed": seed,
        "shocks": [repr(s) for s in treated_shocks],
        "adversaries": list(honest),
        "peak_price_deviation": float(peak.max()) if len(peak) else None,
        "peak_price_deviation_by_good": {str(g): v for g, v in peak.items()},
        "recovery": treated.summary.get("shocks", []),
        "welfare_change": welfare,
        "adversary_gain": {p: w["money_metric_change"] for p, w in adversaries.items()},
        "harm_to_others": float(-sum(w["money_metric_change"] for w in others.values()))
        if others
        else None,
        "baseline_converged": baseline.summary["converged"],
        "treated_converged": treated.summary["converged"],
    }
    return Counterfactual(baseline, treated, deviation, summary)
