"""Counterfactuals: the same economy and seed with and without a shock or an adversary.

``counterfactual(scenario, shocks=[...])`` runs the baseline (no shocks) and the shocked run with
the same seed, and reports the difference: the price deviation path, its peak, the time to recover
within tolerance of the shocked economy's own equilibrium, the welfare change of every population,
and, for adversaries (populations named in ``honest``, which behave truthfully in the baseline),
their gain and the harm to everyone else. Gains are money-metric welfare changes where a
population has a utility, else (belief traders, ...) the change in the value of its holdings at
the baseline's final prices (``value_change``, reported for every population).

:func:`add_adversary` adds a population of consumers driven by an adversarial strategy to an
honest economy, ready for ``counterfactual(..., honest=[its name])``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd
from attrs import frozen

from mktsim import metrics
from mktsim.equilibrium import equilibrium
from mktsim.errors import InvalidParameter, UnknownName
from mktsim.ledger_range import run_goods
from mktsim.population import Consumers
from mktsim.run import Run, build_mechanism, simulate
from mktsim.run_folder import write_folder
from mktsim.scenario import Scenario
from mktsim.utility import CobbDouglas
from mktsim.welfare import first_and_last_holdings, welfare_table

__all__ = ["ADVERSARIES", "Counterfactual", "add_adversary", "counterfactual", "price_deviation"]

#: Adversarial strategies :func:`add_adversary` adds, by the name a population gives: against
#: limit orders (an order book, a call market where it can run; :mod:`mktsim.strategies.
#: book_adversaries`), against pools (:mod:`mktsim.strategies.swap_adversaries`; under ``cpmm``
#: the names ``pump_and_dump`` and ``wash`` mean these), and the auctioneer's ``manipulator``.
ADVERSARIES = (
    "spoofer",
    "wash_trader",
    "pump_and_dump",
    "wash",
    "wash_swap",
    "pump_and_dump_swap",
    "manipulator",
)


@frozen
class Counterfactual:
    """A baseline run, a treated run (shocks and/or adversaries), and their comparison."""

    baseline: Run
    treated: Run
    deviation: pd.DataFrame
    summary: dict[str, Any]

    def save(self, directory: str | Path, figures: bool = True, overwrite: bool = False) -> Path:
        """``baseline/`` and ``treated/`` run folders, ``deviation.parquet`` and
        ``counterfactual.json``, written all at once like a run folder
        (:func:`mktsim.run_folder.write_folder`)."""

        config = self.treated.summary.get("config")
        config = None if config is None else {**config, "counterfactual": True}

        def write(out: Path) -> None:
            self.baseline.save(out / "baseline", figures=figures)
            self.treated.save(out / "treated", figures=figures)
            self.deviation.to_parquet(out / "deviation.parquet", index=False)
            text = json.dumps({**self.summary, "config": config}, indent=2, default=str)
            (out / "counterfactual.json").write_text(text)

        return write_folder(directory, write, config, overwrite)


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
    # the whole run against one yardstick (the initial economy's equilibrium), the same for the
    # baseline and the treated run, so their difference is the shocks' and adversaries' effect
    table = welfare_table(run, window="whole_run")
    return table.set_index("population") if not table.empty else table


def _value_changes(run: Run, prices: dict[str, float]) -> dict[str, float]:
    """Per population, the value at ``prices`` (good -> price, numeraire units) of its holdings
    at the last record less at the first: its trading profit marked at those prices."""
    if "holdings" not in run.tables or not prices:
        return {}
    holdings = run.frame("holdings")
    if holdings.empty:
        return {}
    scenario = run.scenario
    assert scenario is not None  # a live run (counterfactuals are computed, not reopened)
    goods = list(scenario.goods.names)
    first, last = first_and_last_holdings(holdings, goods, scenario.n_agents)
    p = np.array([prices.get(g, np.nan) for g in goods], dtype=float)
    return {
        pop.name: float(((last[rows] - first[rows]) @ p).sum())
        for pop, rows in zip(
            scenario.populations, scenario.population_slices().values(), strict=True
        )
    }


def _back_to_baseline(moving: pd.DataFrame, since: float, tolerance: float) -> dict[str, Any]:
    """After ``since``: the largest |deviation| from the baseline over the non-numeraire goods,
    and the time until it stays below ``tolerance`` (None if it does not by the end; a market
    shock has no new equilibrium to recover to, so this is its recovery)."""
    after = moving[moving["time"] >= since]
    if after.empty:
        return {"peak_deviation_after": None, "recovery_to_baseline": None}
    worst = (
        after.assign(price_error=after["deviation"].abs())
        .groupby("time", as_index=False)["price_error"]
        .max()
    )
    done = metrics.time_to_tolerance(worst, tolerance)
    return {
        "peak_deviation_after": float(worst["price_error"].max()),
        "recovery_to_baseline": None if done is None else done - since,
    }


_SIMULATE_KEYWORDS = frozenset(inspect.signature(simulate).parameters)


def counterfactual(
    scenario: Scenario,
    shocks: Sequence[Any] | None = None,
    honest: Sequence[str] = (),
    mechanism: Any = None,
    seed: int = 0,
    until: float | None = None,
    stream_to: str | Path | None = None,
    **options: Any,
) -> Counterfactual:
    """Run the baseline and the treated economy with the same seed and compare them.

    Args:
        scenario: the economy.
        shocks: shocks of the treated run (default the scenario's own); the baseline has none.
        honest: populations that behave truthfully (their mechanism's default behaviour) in the
            baseline: the adversaries whose effect is measured.
        stream_to: a folder to stream both runs' tables to while they go (``baseline/`` and
            ``treated/`` inside), as :func:`mktsim.simulate` does: both runs are held until
            they are compared and saved, so their tables stream together or not at all.
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
    # One base unit for both runs (the treated economy's, shocks included): step for step alike.
    # (options holds simulate's own keywords too: the mechanism is built from the rest)
    own = {k: v for k, v in options.items() if k not in _SIMULATE_KEYWORDS}
    made = getattr(build_mechanism(scenario, mechanism, own)[0], "creations", None)
    units = run_goods(scenario, treated_shocks, made).base_units
    common = {"mechanism": mechanism, "seed": seed, "until": until, "base_units": units, **options}
    spool = None if stream_to is None else Path(stream_to)
    baseline = simulate(
        baseline_scenario, shocks=(), stream_to=spool and spool / "baseline", **common
    )
    treated = simulate(
        scenario, shocks=treated_shocks, stream_to=spool and spool / "treated", **common
    )
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
    valuation = {str(g): float(v) for g, v in (baseline.summary.get("final_prices") or {}).items()}
    vb, vt = _value_changes(baseline, valuation), _value_changes(treated, valuation)
    value_change = {p: vt[p] - vb[p] for p in vt if p in vb}
    gain = {p: w["money_metric_change"] for p, w in welfare.items()}
    for p, v in value_change.items():
        gain.setdefault(p, v)  # a population without a utility: its holdings' value
    adversaries = {p: gain[p] for p in honest if p in gain}
    others = {p: g for p, g in gain.items() if p not in honest}
    summary = {
        "scenario": scenario.name,
        "mechanism": treated.summary["mechanism"],
        "seed": seed,
        "shocks": [repr(s) for s in treated_shocks],
        "adversaries": list(honest),
        "peak_price_deviation": float(peak.max()) if len(peak) else None,
        "peak_price_deviation_by_good": {str(g): v for g, v in peak.items()},
        "recovery": [
            {**row, **_back_to_baseline(moving, row["time"], treated.summary["price_tolerance"])}
            for row in treated.summary.get("shocks", [])
        ],
        "welfare_change": welfare,
        "adversary_gain": adversaries,
        "harm_to_others": float(-sum(others.values())) if others else None,
        "value_change": value_change,
        "valuation_prices": valuation,
        "baseline_converged": baseline.summary["converged"],
        "treated_converged": treated.summary["converged"],
    }
    return Counterfactual(baseline, treated, deviation, summary)


def add_adversary(
    scenario: Scenario,
    behaviour: str,
    *,
    name: str | None = None,
    agents: int = 1,
    endowment: Sequence[float] | None = None,
    shares: Sequence[float] | None = None,
    **options: Any,
) -> Scenario:
    """``scenario`` with one more population: ``agents`` Cobb-Douglas consumers driven by the
    adversarial strategy ``behaviour``.

    Args:
        scenario: the honest economy (its populations are kept as they are).
        behaviour: one of :data:`ADVERSARIES` (``spoofer``, ``wash_trader``, ``pump_and_dump``,
            ...); the mechanism it runs under must accept its orders.
        name: the population's name (default the behaviour's).
        agents: number of adversary agents.
        endowment: units of each good per agent, in the scenario's good order (default 20 of
            the numeraire and 2 of every other good).
        shares: Cobb-Douglas shares of every agent. They value the adversary's holdings in
            welfare reports and drive it when it trades honestly (the baseline of a
            counterfactual). Default: the value shares of ``endowment`` at the equilibrium
            prices of ``scenario`` (equal shares without one), so that honestly it would hardly
            trade and what it gains is what its manipulation earns.
        **options: the strategy's options (``good``, ``interval``, ...).
    """
    if behaviour not in ADVERSARIES:
        raise UnknownName("adversary behaviour", behaviour, list(ADVERSARIES))
    if isinstance(agents, bool) or not isinstance(agents, int) or agents < 1:
        raise InvalidParameter(f"agents(={agents!r}) must be an integer >= 1")
    goods = scenario.goods.names
    g = len(goods)
    e = np.full(g, 2.0) if endowment is None else np.asarray(endowment, dtype=float)
    if endowment is None:
        e[scenario.goods.numeraire_index] = 20.0
    if shares is None:
        eq = equilibrium(scenario)
        p = eq.price_vector if eq.status in ("unique", "found") else None
        value = e * (np.ones(g) if p is None else np.asarray(p, dtype=float))
        a = value / value.sum() if value.sum() > 0 else np.full(g, 1.0 / g)
    else:
        a = np.asarray(shares, dtype=float)
    if e.shape != (g,) or a.shape != (g,):
        raise InvalidParameter(f"endowment and shares must have one entry per good ({g})")
    population = Consumers(
        name or behaviour,
        CobbDouglas(np.tile(a, (agents, 1))),
        np.tile(e, (agents, 1)),
        behaviour=behaviour,
        behaviour_options=options,
    )
    return attrs.evolve(
        scenario,
        name=f"{scenario.name}+{population.name}",
        populations=[*scenario.populations, population],
    )
