"""The verdict that opens every report: what ran, against which reference, and what came of it.

Two sentences generated from the summary and the tables derived from the frames (never typed by
hand): the first names the scenario, the mechanism and the strategies and the reference the run
is measured against (or why there is none); the second says whether and when prices came within
the run's tolerance of it, or cycled, or recovered after each shock, and for a prediction market
how the event resolved and what the maker lost against its bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from mktsim.report.data import CounterfactualData, RunData, present
from mktsim.report.references import regimes

__all__ = ["counterfactual_verdict", "verdict"]


def _num(value: Any, digits: int = 3) -> str:
    return f"{float(value):.{digits}g}"


def _what(data: RunData) -> str:
    s = data.summary
    strategies = s.get("strategies")
    names = (
        sorted({str(v) for v in strategies.values() if v})
        if isinstance(strategies, Mapping)
        else []
    )
    # a method that only repeats the mechanism's or the strategies' names says nothing more
    said = {str(s.get("mechanism")), "+".join(names), *names}
    how = [str(v) for v in (s.get("mode"), s.get("method")) if v and str(v) not in said]
    mechanism = str(s.get("mechanism")) + (f" ({', '.join(how)})" if how else "")
    size = []
    if present(s.get("n_agents")):
        size.append(f"{int(s['n_agents'])} agents")
    if present(s.get("n_goods")):
        size.append(f"{int(s['n_goods'])} goods")
    text = f"{s.get('scenario')}" + (f" ({', '.join(size)})" if size else "")
    text += f" ran under {mechanism}"
    if names:
        text += " with " + ("strategy " if len(names) == 1 else "strategies ") + ", ".join(names)
    if present(s.get("sim_time")):
        text += f" until t = {float(s['sim_time']):g}"
    return text


def _reference(data: RunData) -> str:
    s = data.summary
    regs = regimes(data)
    if data.equilibrium is None:
        status = s.get("equilibrium_status")
        why = f"its status is {status}" if status else "the scenario defines none"
        return f"there is no reference equilibrium to measure it against ({why})"
    if "wealth_weighted_belief" in s:
        base = "the wealth-weighted belief of its traders (the market's competitive price)"
    elif s.get("price_derivative"):
        base = "the planner's shadow prices"
    else:
        base = f"the competitive equilibrium of its endowments ({s.get('equilibrium_status')})"
    changes = len(regs) - 1
    if changes:
        base += (
            f", then the equilibrium of the economy each of its {changes} economy shock(s) left"
            if changes > 1
            else ", then the equilibrium of the economy its shock left"
        )
    return "measured against " + base


def _after_shocks(shocks: pd.DataFrame, tol: float) -> str:
    parts = []
    for row in shocks.itertuples(index=False):
        what = f"after the {row.kind} shock at t = {row.time:g}"
        if not present(row.peak_price_error):
            parts.append(f"{what} there is no reference to measure recovery against")
        elif present(row.recovery_time):
            parts.append(
                f"{what} prices were back within {tol:g} of the {_target(row.reference)} "
                f"after {row.recovery_time:g} time units (peak error {_num(row.peak_price_error)})"
            )
        else:
            parts.append(
                f"{what} prices did not come back within {tol:g} of the "
                f"{_target(row.reference)} before t = {row.until:g} "
                f"(error {_num(row.end_price_error)} then)"
            )
    return "; ".join(parts)


def _target(reference: str) -> str:
    return "new equilibrium" if reference == "new equilibrium" else "equilibrium in force"


def _outcome(data: RunData, row: Mapping[str, Any], shocks: pd.DataFrame) -> str:
    s = data.summary
    tol = float(row.get("price_tolerance") or 1e-3)
    err: Any = row.get("price_error")
    ttt: Any = row.get("time_to_tolerance")
    holdings = row.get("price_error_vs_holdings_equilibrium")
    if not shocks.empty:
        text = _after_shocks(shocks, tol)
        if present(err):
            text += f"; the final price error is {_num(err)}"
        return text[0].upper() + text[1:]
    if not present(err):
        if present(row.get("excess_demand_norm")):
            return f"Its final excess-demand norm is {_num(row['excess_demand_norm'])}"
        return "No price error can be measured"
    if bool(row.get("cycle_detected")):
        period: Any = row.get("cycle_period")
        text = "Prices cycle around the equilibrium and never settle"
        if present(period):
            text += f" (period about {float(period):.3g} time units)"
        return text + f": the final price error is {_num(err)}"
    if present(ttt):
        return (
            f"It converged: the price error stayed below {tol:g} from t = {float(ttt):g} "
            f"and ends at {_num(err)}"
            + (" (the mechanism reports convergence)" if s.get("converged") else "")
        )
    text = f"It did not come within {tol:g}: the final price error is {_num(err)}"
    if s.get("stopped") == "quiet":
        text += " when trading stopped (no agent found a trade worth making at the market's prices)"
    if present(holdings):
        text += (
            f", and {_num(holdings)} against the equilibrium of the holdings it reached "
            "(trade out of equilibrium moved the economy)"
        )
    return text


def _prediction(data: RunData) -> str:
    s = data.summary
    outcome = s.get("outcome")
    if not s.get("resolved") or outcome is None:
        return ""
    truth = (s.get("true_probabilities") or {}).get(outcome)
    price = (s.get("final_price") or s.get("final_prices") or {}).get(outcome)
    text = f"The event resolved {outcome}"
    if present(truth):
        text += f" (true probability {_num(truth)})"
    if present(price):
        text += f" with its price at {_num(price)}"
    loss, bound = s.get("maker_loss"), s.get("maker_loss_bound")
    if present(loss) and present(bound):
        text += f"; the maker lost {_num(loss)} against its bound b·ln n = {_num(bound)}"
    return text


def verdict(data: RunData, row: Mapping[str, Any], shocks: pd.DataFrame) -> str:
    """One or two sentences on a run.

    Args:
        data: the run.
        row: its row of :func:`~mktsim.report.tables.convergence_table`.
        shocks: its :func:`~mktsim.report.references.shocks_table`.
    """
    first = f"{_what(data)}, {_reference(data)}."
    second = _outcome(data, row, shocks)
    pm = _prediction(data)
    if pm:
        second += ". " + pm
    return first + " " + second + "."


def _treatment(cf: CounterfactualData, shocked: str) -> str:
    s = cf.summary
    parts = []
    if shocked != "none":
        parts.append(("the shocks " if len(s.get("recovery") or []) > 1 else "the ") + shocked)
    adversaries = [str(a) for a in s.get("adversaries") or []]
    if adversaries:
        parts.append(
            ("adversary population " if len(adversaries) == 1 else "adversary populations ")
            + ", ".join(adversaries)
        )
    return " and ".join(parts) or "no treatment"


def _recoveries(recovery: pd.DataFrame, tol: float) -> str:
    parts = []
    for row in recovery.itertuples(index=False):
        what = f"after the {row.kind} shock at t = {float(row.time):g}"
        if present(row.recovery_time):
            new = (
                f" prices recovered to the equilibrium in force within {tol:g} "
                f"after {row.recovery_time:g} time units"
            )
        elif present(row.peak_price_error):
            new = f" prices did not recover to the equilibrium in force within {tol:g}"
        else:
            new = " prices"  # no reference to recover to: only the baseline's path
        if present(row.recovery_to_baseline):
            back = (
                f"and came back within {tol:g} of the baseline after {row.recovery_to_baseline:g}"
            )
        else:
            back = "and did not come back to the baseline"
        parts.append(f"{what}{new} {back}")
    return "; ".join(parts)


def _welfare_changes(welfare: pd.DataFrame) -> str:
    parts = []
    for row in welfare.itertuples(index=False):
        money, value = row.money_metric_change, row.value_change
        if present(money):
            parts.append(f"{row.population} {float(money):+.4g} (money metric)")
        elif present(value):
            parts.append(f"{row.population} {float(value):+.4g} (value of holdings)")
    return ", ".join(parts)


def counterfactual_verdict(
    cf: CounterfactualData,
    peak: Mapping[str, Any],
    recovery: pd.DataFrame,
    welfare: pd.DataFrame,
    shocked: str,
) -> str:
    """What the counterfactual compared and what the treatment did, in two or three sentences.

    Args:
        cf: the counterfactual.
        peak: its :func:`~mktsim.report.tables.peak_deviation`.
        recovery: its :func:`~mktsim.report.tables.recovery_table`.
        welfare: its :func:`~mktsim.report.tables.welfare_change_table`.
        shocked: what was shocked, one phrase (``endowment at 30 (good=good1, factor=0.5)``).
    """
    s = cf.summary
    tol = float(cf.treated.summary.get("price_tolerance") or 1e-3)
    text = (
        f"Counterfactual of {s.get('scenario')} under {s.get('mechanism')} (seed {s.get('seed')}): "
        f"the treated run differs from the baseline by {_treatment(cf, shocked)}."
    )
    if present(peak.get("peak_price_deviation")):
        size = float(peak["peak_price_deviation"])
        text += (
            f" Prices deviated from the baseline by at most {size:.3g} ({size:.1%}, "
            f"{peak['peak_good']} at t = {float(peak['peak_time']):g})"
        )
    else:
        text += " No price deviation was recorded"
    recovered = _recoveries(recovery, tol)
    text += ("; " + recovered if recovered else "") + "."
    changes = _welfare_changes(welfare)
    if changes:
        text += f" Welfare change against the baseline by population: {changes}."
    harm: Any = s.get("harm_to_others")
    if s.get("adversaries") and present(harm):
        text += f" Harm to the other populations: {float(harm):.4g}."
    return text
