"""Price controls as an experiment: the shortage or surplus a control leaves, and what it costs.

A price control is a market shock (:mod:`mktsim.shocks`): ``ceiling`` (a good may not trade
above a price), ``floor`` (not below) or ``clamp`` (held at a price, or in a band around it).
Every mechanism that can honour one does: the auctioneer posts within the bounds and rations the
long side at settlement (:mod:`mktsim.mechanisms.walrasian`), the order book, the call market
and the pools refuse orders priced beyond them (:mod:`mktsim.wrappers`); a mechanism that cannot
is refused before the run. :func:`control_effects` is what a run's summary reports about them
(``price_controls``).

Shortage and surplus. For each controlled good, the excess demand at the run's final prices
(the controlled good's price kept within its bounds while the control holds; a control with a
``duration`` that ended before the run did is reported at the free final price, with
``in_force_at_end`` False), of the economy as endowed at the start:
``z_j = sum_i x_ij(p, p . e_i) - sum_i e_ij``, each population's own demand. Under tatonnement
nobody trades before settlement, so this is the auctioneer's excess demand at the posting it
settles. ``shortage = max(z_j, 0)``, ``surplus = max(-z_j, 0)``. For induced-value traders of one
good, per period from the schedules: units valued at or above the price minus units costing at
or below it (a unit worth exactly the price counts on its side).

Deadweight loss, against the *uncontrolled* competitive equilibrium, in numeraire:

* consumers: the money-metric loss ``sum_i [m_i(x_i*) - m_i(x_i)]``, where ``m_i`` is agent
  i's money-metric utility at the uncontrolled equilibrium prices p* (the cheapest spending at p*
  that reaches the utility; :func:`mktsim.welfare.money_metric`), ``x*`` the equilibrium
  allocation and ``x`` the holdings at the end of the run. It equals
  ``p* . (total endowment) - sum_i m_i(x_i)``, which is >= 0 for every feasible allocation and
  0 only at a competitive one (first welfare theorem): the aggregate equivalent variation of
  moving from the equilibrium to the run's outcome.
  Transfers between agents cancel; what is left is value destroyed. It is one figure for the
  economy, shared by every control in force together.
* induced-value traders: maximum surplus minus realised surplus (sum over units traded of value
  minus cost), per period (Gode & Sunder's surplus). Their money metric is their surplus
  (values and costs are in money, utility is quasi-linear), so this is the same measure. Beside
  this realised loss (``deadweight_loss``, and ``deadweight_loss_total`` over the periods run),
  each controlled good carries two references computed from the schedules alone
  (:func:`schedule_losses`): ``reference_loss_efficient_rationing``, the textbook triangle,
  the least any rationing of the units the control lets trade can lose (a lower bound on the
  realised loss when nobody trades at a loss, as under ``zi_c``), and
  ``reference_loss_random_rationing``, the expected loss when those units go by lottery among
  the units wanted at the control. Zero-intelligence traders under a ceiling ration by chance
  (whoever's bid happens to meet an ask), so the realised loss lies near the lottery's: on Gode
  & Sunder's market 1 with a ceiling at 80 (9 units of 12 trade; 15 units are worth at least
  80) the triangle is 60 per period, the lottery 237, and ``zi_c`` on the order book loses
  266 on average over seeds 0-19 (of which about 15 it loses without any control).

Both count every loss against the competitive equilibrium, so a mechanism's own inefficiency
(zero-intelligence traders leave some surplus unrealised without any control) is included: compare
with the same run without the control (:mod:`mktsim.counterfactual`) to separate the two.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mktsim.induced import InducedTraders, competitive_band
from mktsim.shocks import PRICE_CONTROLS
from mktsim.welfare import money_metric

__all__ = [
    "DEADWEIGHT_MEASURE",
    "bounds",
    "control_effects",
    "schedule_excess",
    "schedule_losses",
]

Array = NDArray[np.float64]

#: What ``deadweight_loss`` measures, as the summary states it.
DEADWEIGHT_MEASURE = {
    "consumers": (
        "money metric at the uncontrolled equilibrium prices p*: sum_i m_i(x_i*) - m_i(x_i), "
        "x the final holdings (numeraire units)"
    ),
    "induced": "max surplus - realised surplus (sum of value - cost over units traded), per period",
}


def bounds(shock: Any, band: float = 0.0) -> tuple[float, float]:
    """The (low, high) prices a control shock allows (numeraire = 1); a clamp's band
    ``[price (1 - band), price (1 + band)]`` (:meth:`mktsim.shocks.PriceControl.bounds`)."""
    low, high = shock.bounds(band)
    return float(low), float(high)


def schedule_excess(values: Iterable[float], costs: Iterable[float], price: float) -> float:
    """Units demanded minus units supplied at ``price`` by unit schedules: values at or above
    it, costs at or below it."""
    v = np.asarray(list(values), dtype=float)
    c = np.asarray(list(costs), dtype=float)
    return float(np.count_nonzero(v >= price) - np.count_nonzero(c <= price))


def control_effects(run: Any, planned: Iterable[Any], holdings: Array) -> dict[str, Any]:
    """The ``price_controls`` entry of a run's summary (see the module docstring).

    Args:
        run: a finished :class:`~mktsim.run.Run` (its ``scenario``, ``reference`` and
            ``summary``, with ``final_prices`` and, for induced-value markets, the induced
            metrics).
        planned: the run's shocks; the price controls among them are reported.
        holdings: ``float64[n_agents, g]`` every agent's holdings at the end, in units.

    Returns:
        ``{"goods": {good: {kind, price, low, high, final_price, equilibrium_price,
        excess_demand, shortage, surplus, binding, in_force_at_end}}, "deadweight_loss",
        "measure"}``; figures
        that cannot be computed for the economy are None. An induced-value market adds
        ``deadweight_loss_total``, gives shortages per period, and per good the schedules'
        reference losses ``reference_loss_efficient_rationing`` and
        ``reference_loss_random_rationing`` (:func:`schedule_losses`).
    """
    controls = [s for s in planned if getattr(s, "kind", None) in PRICE_CONTROLS]
    scenario, summary = run.scenario, run.summary
    band = float(summary.get("mechanism_options", {}).get("clamp_band", 0.0) or 0.0)
    induced = any(isinstance(p, InducedTraders) for p in scenario.populations)
    final = summary.get("final_prices") or {}
    ref = summary.get("equilibrium_prices") or {}
    names = list(scenario.goods.names)
    prices = np.array([float(final.get(g, np.nan)) for g in names])
    end_of_run = float(summary.get("sim_time", np.inf))
    for shock in controls:  # a good priced beyond a control in force is reported at the bound
        low, high = bounds(shock, band)
        j = names.index(shock.good)
        if _in_force(shock, end_of_run):
            prices[j] = min(max(prices[j], low), high)
    excess = None if induced else _excess(scenario, prices)
    goods: dict[str, dict[str, Any]] = {}
    for shock in controls:
        low, high = bounds(shock, band)
        j = names.index(shock.good)
        extra = _schedule_effects(scenario, shock, band) if induced else {}
        z = extra.pop("excess_demand") if induced else (None if excess is None else excess[j])
        z = None if z is None else float(z)
        binding = None if z is None else bool(shock.binds(float(z)))
        goods[shock.good] = {
            "kind": shock.kind,
            "price": float(shock.price),
            "low": low,
            "high": high,
            "final_price": None if np.isnan(prices[j]) else float(prices[j]),
            "equilibrium_price": ref.get(shock.good),
            "excess_demand": z,
            "shortage": None if z is None else max(float(z), 0.0),
            "surplus": None if z is None else max(-float(z), 0.0),
            "binding": binding,
            "in_force_at_end": _in_force(shock, end_of_run),
            **extra,
        }
    out: dict[str, Any] = {"goods": goods}
    if induced:
        out.update(_induced_loss(summary))
    else:
        out["deadweight_loss"] = _money_loss(run, holdings)
        out["measure"] = DEADWEIGHT_MEASURE["consumers"]
    return out


def _in_force(shock: Any, at: float) -> bool:
    """Whether a control shock still holds at time ``at``."""
    return shock.duration is None or float(shock.time) + float(shock.duration) > at


def _excess(scenario: Any, prices: Array) -> Array | None:
    """Excess demand ``float64[g]`` of the start endowments at ``prices`` (None when a price is
    missing or a population has no demand at posted prices)."""
    if not np.isfinite(prices).all() or (prices <= 0).any():
        return None
    z = np.zeros(prices.size)
    for pop in scenario.populations:
        if not hasattr(pop, "aggregate_demand"):
            return None
        e = np.asarray(pop.endowment, dtype=float)
        z += pop.aggregate_demand(prices, e) - e.sum(axis=0)
    return z


def schedule_losses(
    values: Iterable[float], costs: Iterable[float], low: float, high: float
) -> dict[str, float]:
    """Deadweight loss of holding unit schedules' price in ``[low, high]``, per period.

    Where the competitive price band lies above ``high`` the control is a binding ceiling:
    ``Q = S(high)`` units trade (every unit costing at most ``high``, fewer than demanded);
    below ``low`` a binding floor: ``Q = D(low)``. Otherwise nothing is lost. Two references:

    * ``efficient``: the Q units go to the highest values and come from the lowest costs (the
      textbook triangle between supply and demand);
    * ``random``: the short side's Q units are shared uniformly at random among the long side's
      units willing at the bound (rationing by lottery or queue), so each buys or sells the mean
      unit of the willing (Glaeser & Luttmer 2003 on the misallocation it adds).

    Returns ``{"efficient": ..., "random": ..., "quantity": Q}`` (numeraire per period).
    """
    v = np.sort(np.asarray(list(values), dtype=float))[::-1]
    c = np.sort(np.asarray(list(costs), dtype=float))
    best = competitive_band(v, c)
    if high < best.low:  # a binding ceiling: sellers are the short side
        q = int(np.sum(c <= high))
        willing = v[v >= high]
        random = q * float(willing.mean()) - float(c[:q].sum()) if q else 0.0
    elif low > best.high:  # a binding floor: buyers are the short side
        q = int(np.sum(v >= low))
        willing = c[c <= low]
        random = float(v[:q].sum()) - q * float(willing.mean()) if q else 0.0
    else:
        return {"efficient": 0.0, "random": 0.0, "quantity": float(best.quantity)}
    efficient = float((v[:q] - c[:q]).sum())
    return {
        "efficient": best.max_surplus - efficient,
        "random": best.max_surplus - random,
        "quantity": float(q),
    }


def _schedule_effects(scenario: Any, shock: Any, band: float) -> dict[str, Any]:
    """Schedule excess demand per period at the control's price, and the reference losses
    (:func:`schedule_losses`), for induced-value traders of the controlled good."""
    j = scenario.goods.index(shock.good)
    pops = [p for p in scenario.populations if isinstance(p, InducedTraders) and p.good == j]
    values = [p.limits[~np.isnan(p.limits)] for p in pops if p.role == "buyer"]
    costs = [p.limits[~np.isnan(p.limits)] for p in pops if p.role == "seller"]
    if not values or not costs:
        return {"excess_demand": None}
    v, c = np.concatenate(values), np.concatenate(costs)
    low, high = bounds(shock, band)
    losses = schedule_losses(v, c, low, high)
    return {
        "excess_demand": schedule_excess(v, c, float(shock.price)),
        "reference_loss_efficient_rationing": losses["efficient"],
        "reference_loss_random_rationing": losses["random"],
    }


def _induced_loss(summary: Mapping[str, Any]) -> dict[str, Any]:
    s_max = summary.get("max_surplus_per_period")
    realised = summary.get("realised_surplus")
    by_period = summary.get("allocative_efficiency_by_period") or []
    if s_max is None or realised is None or not by_period:
        return {
            "deadweight_loss": None,
            "deadweight_loss_total": None,
            "measure": DEADWEIGHT_MEASURE["induced"],
        }
    periods = len(by_period)
    total = periods * float(s_max) - float(realised)
    return {
        "deadweight_loss": total / periods,
        "deadweight_loss_total": total,
        "measure": DEADWEIGHT_MEASURE["induced"],
    }


def _money_loss(run: Any, holdings: Array) -> float | None:
    ref = run.reference
    if (
        ref is None
        or ref.status not in ("unique", "found")
        or ref.price_vector is None
        or ref.allocation is None
    ):
        return None
    p_star = np.asarray(ref.price_vector, dtype=float)
    allocation = np.asarray(ref.allocation, dtype=float)
    if allocation.shape != holdings.shape:
        return None
    loss = 0.0
    for pop, rows in zip(
        run.scenario.populations, run.scenario.population_slices().values(), strict=True
    ):
        utility = getattr(pop, "utility", None)
        if utility is None or not callable(getattr(utility, "utility", None)):
            return None
        best = money_metric(utility, allocation[rows], p_star)
        got = money_metric(utility, holdings[rows], p_star)
        if not (np.isfinite(best).all() and np.isfinite(got).all()):
            return None
        loss += float(best.sum() - got.sum())
    return loss
