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

After shocks that change the economy (endowments, preferences) the table is piecewise: each
:class:`Window` from one such shock to the next is measured with its own holdings, utilities and
equilibrium (the reference in force), and the run's table reports the last one, keeping the
whole run measured against the initial economy's equilibrium beside it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from attrs import frozen
from numpy.typing import NDArray

from mktsim.errors import InvalidParameter

__all__ = [
    "WELFARE_COLUMNS",
    "Window",
    "efficiency",
    "first_and_last_holdings",
    "money_metric",
    "welfare_table",
]

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
    "since": "start of the window measured: the run's start, or the last shock that changed the "
    "economy (endowments, preferences), from which holdings, utilities and the reference "
    "equilibrium p* are those in force",
    "surplus_vs_initial_equilibrium": "gains from trade over the whole run at the initial "
    "economy's equilibrium prices and utilities (only after shocks that changed the economy)",
    "surplus_equilibrium_vs_initial_equilibrium": "the gains at the initial economy's "
    "equilibrium, from the initial endowments (only after shocks that changed the economy)",
    "efficiency_vs_initial_equilibrium": "surplus_vs_initial_equilibrium / "
    "surplus_equilibrium_vs_initial_equilibrium: the whole run measured as if nothing had "
    "changed the economy (only after shocks that changed it)",
}

# Holdings are whole base units of the run (1e-15 of the largest total or finer): relative
# utility changes smaller than this are rounding, not gains or losses.
_CHANGE = 1e-8


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


@frozen(eq=False)
class Window:
    """One stretch of a run with one economy: from the run's start, or from a shock that changed
    the economy (endowments, preferences), up to the next such shock or the end of the run.

    Welfare is measured window by window because a shock changes what the reference is: after
    half of a good is destroyed, the allocation the market should reach is the equilibrium of the
    holdings left, valued at that equilibrium's prices with the utilities then in force.

    Attributes:
        start: simulation time the window opens.
        populations: the populations in force (their utilities), in the scenario's order.
        reference: the equilibrium of the economy in force (None where it was not recomputed,
            e.g. a scenario that brings its own reference).
        initial: every agent's holdings as the window opens, ``float64[n_agents, g]`` units.
        final: the holdings as it closes (just before the next shock), or None for the last
            window, which closes with the run's last recorded holdings.
    """

    start: float
    populations: tuple[Any, ...]
    reference: Any
    initial: Array
    final: Array | None = None


def welfare_table(run: Any, window: int | str = "in_force") -> pd.DataFrame:
    """Welfare per population of a run (see the module docstring for the money metric).

    A run whose economy was changed by shocks (``run.windows``, one :class:`Window` per economy)
    is measured against the reference in force: by default over the last window, from the last
    such shock to the end, with that economy's utilities, holdings and equilibrium; the
    whole-run figures against the equilibrium of the initial economy stay beside them in the
    ``*_vs_initial_equilibrium`` columns.

    Args:
        run: a :class:`~mktsim.run.Run` (needs ``scenario``, ``reference`` and the ``holdings``
            frame, recorded with ``record="all"``).
        window: ``"in_force"`` (the last window), ``"whole_run"`` (from the start to the end,
            against the initial economy's equilibrium and utilities: the measure of a run
            without shocks), or the index of a window (0: the initial economy up to the first
            shock that changed it; k: from the k-th such shock up to the next).

    Returns:
        One row per population that has a utility, with the columns of
        :data:`WELFARE_COLUMNS`; empty (with those columns) when the run recorded no holdings.
        Money columns are NaN without a reference equilibrium (status other than
        ``unique``/``found``) or for a utility that is not homogeneous of degree one.

    Raises:
        InvalidParameter: ``window`` names no window of the run.
    """
    scenario = run.scenario
    holdings = run.frame("holdings") if "holdings" in run.tables else pd.DataFrame()
    if holdings.empty:
        return pd.DataFrame({c: [] for c in WELFARE_COLUMNS})
    goods = list(scenario.goods.names)
    initial, final = first_and_last_holdings(holdings, goods, scenario.n_agents)
    whole = _rows(scenario, tuple(scenario.populations), initial, final, run.reference)
    windows: list[Window] = list(getattr(run, "windows", None) or [])
    shocked = len(windows) > 1
    last = len(windows) - 1 if shocked else 0
    if window == "in_force":
        k = last
    elif window == "whole_run":
        k = -1
    elif isinstance(window, int) and not isinstance(window, bool) and 0 <= window <= last:
        k = window
    else:
        raise InvalidParameter(
            f"window(={window!r}) must be 'in_force', 'whole_run' or a window index in 0..{last}"
        )
    since = 0.0 if not windows else float(windows[0].start)
    rows = whole
    if shocked and k >= 0:
        w = windows[k]
        end = final if w.final is None else w.final
        rows = _rows(scenario, w.populations, w.initial, end, w.reference)
        since = float(w.start)
    by_name = {r["population"]: r for r in whole}
    for row in rows:
        row["since"] = since
        before = by_name.get(row["population"], {})
        for column in ("surplus", "surplus_equilibrium", "efficiency"):
            row[f"{column}_vs_initial_equilibrium"] = (
                before.get(column, np.nan) if shocked else np.nan
            )
    return pd.DataFrame(rows, columns=list(WELFARE_COLUMNS))


def efficiency(table: pd.DataFrame) -> float:
    """Allocative efficiency of a whole run or window: the gains from trade realised over the
    gains at the equilibrium, summed over the populations of a :func:`welfare_table` (NaN when
    the latter are within rounding of zero or unknown)."""
    if table.empty:
        return float("nan")
    return _ratio(
        float(table["surplus"].sum(min_count=1)),
        float(table["surplus_equilibrium"].sum(min_count=1)),
        float(table["money_equilibrium"].abs().sum(min_count=1)),
    )


def _rows(
    scenario: Any,
    populations: tuple[Any, ...],
    initial: Array,
    final: Array,
    ref: Any,
) -> list[dict[str, Any]]:
    """One welfare row per population with a utility: holdings ``initial`` to ``final``
    (``float64[n_agents, g]``) valued with ``populations``' utilities at ``ref``'s prices."""
    goods = list(scenario.goods.names)
    usable = ref is not None and ref.status in ("unique", "found") and ref.price_vector is not None
    p_star = np.asarray(ref.price_vector, dtype=float) if usable else None
    allocation = np.asarray(ref.allocation, dtype=float) if usable else None
    if allocation is not None and allocation.shape != initial.shape:
        allocation = None  # a reference that does not allocate every agent's bundle
    rows = []
    for pop, rows_slice in zip(populations, scenario.population_slices().values(), strict=True):
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
    return rows


def _ratio(num: float, den: float, size: float) -> float:
    """num / den, NaN when den is within rounding of zero relative to ``size``."""
    if not np.isfinite(num) or not np.isfinite(den) or abs(den) <= 1e-9 * max(abs(size), 1e-300):
        return float("nan")
    return float(num / den)
