"""Welfare per population: utility of final against initial holdings, and money-metric surplus.

A run folder holds the agents' holdings but not their utilities, so welfare is computed from a
:class:`~mktsim.run.Run` (its scenario's utility families and reference equilibrium) and saved with
the run as the ``welfare`` table, which reports then read like any other frame.

Money metric. Every shipped utility family is homogeneous of degree one, so the cheapest way to
reach utility level ``u`` at prices ``p`` costs ``u * e(p, 1)`` with ``e(p, 1) = 1 / u(x(p, 1))``,
``x(p, 1)`` being the demand at unit wealth. At the reference equilibrium prices ``p*`` the money
metric ``m_i(x) = u_i(x) / u_i(x_i(p*, 1))`` is in numeraire units and can be summed over agents.
Every feasible allocation has ``sum_i m_i(x_i) <= p* . (total endowment)``, with equality at the
competitive allocation (first welfare theorem), so

    efficiency = (sum_i m_i(final_i) - sum_i m_i(initial_i))
                 / (sum_i m_i(equilibrium_i) - sum_i m_i(initial_i))

is the share of the equilibrium's gains from trade that the run realised: 1 at the competitive
allocation, 0 without trade, negative if trade destroyed value. It is the exchange-economy analogue
of Gode and Sunder's allocative efficiency (realised surplus over maximum surplus).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = ["WELFARE_COLUMNS", "first_and_last_holdings", "money_metric", "welfare_table"]

Array = NDArray[np.float64]

#: Columns of :func:`welfare_table`, one row per population.
WELFARE_COLUMNS: dict[str, str] = {
    "population": "population name",
    "agents": "number of agents",
    "utility_initial": "mean utility of the holdings at the start",
    "utility_final": "mean utility of the holdings at the end",
    "utility_equilibrium": "mean utility of the reference equilibrium allocation",
    "gain_mean": "mean over agents of utility_final - utility_initial",
    "gain_min": "smallest agent's utility gain",
    "gain_max": "largest agent's utility gain",
    "share_better_off": "fraction of agents whose utility rose (relative change > 1e-8)",
    "share_worse_off": "fraction of agents whose utility fell (relative change < -1e-8)",
    "money_initial": "sum of money-metric utilities of the start holdings at p* (numeraire)",
    "money_final": "sum of money-metric utilities of the end holdings at p* (numeraire)",
    "money_equilibrium": "sum of money-metric utilities of the equilibrium allocation at p*",
    "surplus": "money_final - money_initial: gains from trade realised, numeraire units",
    "surplus_equilibrium": "money_equilibrium - money_initial: gains at the equilibrium",
    "efficiency": "surplus / surplus_equilibrium (NaN when the latter is ~0)",
}

_CHANGE = 1e-8  # holdings are fixed-point 1e-9 units: smaller utility changes are rounding


def first_and_last_holdings(
    holdings: pd.DataFrame, goods: list[str], n_agents: int
) -> tuple[Array, Array]:
    """Each agent's first and last recorded holdings, ``float64[n_agents, g]`` each.

    Args:
        holdings: the ``holdings`` frame (time, agent, population, good, quantity).
        goods: good names in column order.
        n_agents: rows of the result; agents outside ``range(n_agents)`` are ignored.
    """
    frame = holdings.sort_values("time", kind="stable")
    frame = frame.assign(good=frame["good"].astype(str))
    frame = frame[(frame["agent"] >= 0) & (frame["agent"] < n_agents)]
    out = []
    for keep in ("first", "last"):
        rows = frame.drop_duplicates(["agent", "good"], keep=keep)
        wide = rows.pivot(index="agent", columns="good", values="quantity")
        wide = wide.reindex(index=range(n_agents), columns=goods)
        out.append(wide.to_numpy(dtype=float))
    return out[0], out[1]


def _homogeneous(utility: Any, n_goods: int) -> bool:
    y = np.full((utility.n_agents, n_goods), 1.0)
    y[:, 0] = 2.0  # an uneven bundle, so Leontief/linear kinks are not all that is tested
    with np.errstate(all="ignore"):
        u1, u3 = utility.utility(y), utility.utility(3.0 * y)
    return bool(np.allclose(u3, 3.0 * u1, rtol=1e-9, atol=0.0))


def money_metric(utility: Any, x: Array, prices: Array) -> Array:
    """Money-metric utility ``float64[n]`` of bundles ``x[n, g]`` at ``prices[g]``, in numeraire.

    Valid for utilities homogeneous of degree one (every shipped family); NaN where an agent's
    utility at unit wealth is not positive.
    """
    n = x.shape[0]
    unit = utility.utility(utility.demand(prices, np.ones(n)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(unit > 0, utility.utility(x) / unit, np.nan)


def welfare_table(run: Any) -> pd.DataFrame:
    """Welfare per population of a run (see the module docstring for the money metric).

    Args:
        run: a :class:`~mktsim.run.Run` (needs ``scenario``, ``reference`` and the ``holdings``
            frame, recorded with ``record="all"``).

    Returns:
        One row per population that has a utility, with the columns of
        :data:`WELFARE_COLUMNS`; empty (with those columns) when the run recorded no holdings.
        Money columns are NaN without a reference equilibrium (status other than
        ``unique``/``found``) or for a utility that is not homogeneous of degree one.
    """
    scenario = run.scenario
    holdings = run.frame("holdings") if "holdings" in run.tables else pd.DataFrame()
    if holdings.empty:
        return pd.DataFrame({c: [] for c in WELFARE_COLUMNS})
    goods = list(scenario.goods.names)
    initial, final = first_and_last_holdings(holdings, goods, scenario.n_agents)
    ref = run.reference
    usable = ref is not None and ref.status in ("unique", "found") and ref.price_vector is not None
    p_star = np.asarray(ref.price_vector, dtype=float) if usable else None
    allocation = np.asarray(ref.allocation, dtype=float) if usable else None
    if allocation is not None and allocation.shape != initial.shape:
        allocation = None  # a reference that does not allocate every agent's bundle
    rows = []
    for pop, rows_slice in zip(
        scenario.populations, scenario.population_slices().values(), strict=True
    ):
        u = getattr(pop, "utility", None)
        if u is None or not callable(getattr(u, "utility", None)):
            continue  # a kind without a utility (a firm, an induced-value trader) has no welfare
        x0, x1 = initial[rows_slice], final[rows_slice]
        u0, u1 = u.utility(x0), u.utility(x1)
        gain = u1 - u0
        scale = np.maximum(np.maximum(np.abs(u0), np.abs(u1)), 1e-300)
        row: dict[str, Any] = {
            "population": pop.name,
            "agents": pop.size,
            "utility_initial": float(u0.mean()),
            "utility_final": float(u1.mean()),
            "utility_equilibrium": np.nan,
            "gain_mean": float(gain.mean()),
            "gain_min": float(gain.min()),
            "gain_max": float(gain.max()),
            "share_better_off": float(np.mean(gain > _CHANGE * scale)),
            "share_worse_off": float(np.mean(gain < -_CHANGE * scale)),
        }
        money = dict.fromkeys(("money_initial", "money_final", "money_equilibrium"), np.nan)
        if p_star is not None and allocation is not None:
            x_eq = allocation[rows_slice]
            row["utility_equilibrium"] = float(u.utility(x_eq).mean())
            if _homogeneous(u, len(goods)):
                for key, x in (
                    ("money_initial", x0),
                    ("money_final", x1),
                    ("money_equilibrium", x_eq),
                ):
                    money[key] = float(np.sum(money_metric(u, x, p_star)))
        row.update(money)
        row["surplus"] = money["money_final"] - money["money_initial"]
        row["surplus_equilibrium"] = money["money_equilibrium"] - money["money_initial"]
        row["efficiency"] = _ratio(
            row["surplus"], row["surplus_equilibrium"], money["money_equilibrium"]
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=list(WELFARE_COLUMNS))


def _ratio(num: float, den: float, size: float) -> float:
    """num / den, NaN when den is within rounding of zero relative to ``size``."""
    if not np.isfinite(num) or not np.isfinite(den) or abs(den) <= 1e-9 * max(abs(size), 1e-300):
        return float("nan")
    return float(num / den)
