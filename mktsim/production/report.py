"""The "price = derivative" table of a finished run, and its production accounts.

:func:`price_derivative_table` lines up, per good, the price the market reached with the two
market-free references the scenario's reference equilibrium carries in ``extra`` (see
:mod:`mktsim.supply_chain`): the derivative of final value with respect to the good
(back-propagation on trees, ``v (I - A)^-1`` for Leontief economies) and the shadow price (the
planner's Lagrange multiplier or the LP dual).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["price_derivative_table", "production_balance", "simulated_prices"]

COLUMNS = [
    "good",
    "role",
    "simulated",
    "derivative",
    "shadow",
    "rel_error_derivative",
    "rel_error_shadow",
]


def simulated_prices(run: Any) -> dict[str, float]:
    """The price each good reached: the run's final price (posted or estimated, as in the
    summary) where there is one, else the last price it traded at, else NaN."""
    final = dict(run.summary.get("final_prices") or {})
    out: dict[str, float] = {}
    trades = run.trades if "trades" in run.tables else pd.DataFrame()
    for good in run.scenario.goods.names:
        if good in final:
            out[good] = float(final[good])
            continue
        rows = trades[trades["good"] == good] if len(trades) else trades
        out[good] = float(rows["price"].iloc[-1]) if len(rows) else float("nan")
    return out


def _rel(a: float, b: float | None) -> float:
    if b is None or not np.isfinite(a) or b == 0:
        return float("nan")
    return abs(a - b) / abs(b)


def price_derivative_table(run: Any) -> pd.DataFrame:
    """Per good (the numeraire left out): role, simulated price, derivative, shadow price, and
    the relative errors of the simulated price against each. Missing references are NaN.

    Args:
        run: a finished :class:`~mktsim.run.Run` whose reference came from
            :func:`mktsim.supply_chain.graph_reference` or ``leontief_reference`` (other
            references give NaN reference columns).
    """
    ref = run.reference
    extra: dict[str, Any] = dict(ref.extra) if ref is not None else {}
    derivative = extra.get("derivative") or {}
    shadow = extra.get("shadow") or {}
    roles = extra.get("roles") or {}
    sim = simulated_prices(run)
    rows = []
    for good in run.scenario.goods.names:
        if good == run.scenario.goods.numeraire:
            continue
        d = derivative.get(good)
        s = shadow.get(good)
        rows.append(
            {
                "good": good,
                "role": roles.get(good, ""),
                "simulated": sim[good],
                "derivative": float("nan") if d is None else float(d),
                "shadow": float("nan") if s is None else float(s),
                "rel_error_derivative": _rel(sim[good], d),
                "rel_error_shadow": _rel(sim[good], s),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def production_balance(run: Any) -> pd.DataFrame:
    """Per good: total held at the start and the end, net production from the ``production``
    table, and ``unrecorded`` = end - start - production (0 when nothing but recorded
    production changed totals). Indexed by good name."""
    goods = run.scenario.goods.names
    holdings = run.holdings
    times = holdings["time"]
    first = holdings[times == times.min()].groupby("good", observed=False)["quantity"].sum()
    last = holdings[times == times.max()].groupby("good", observed=False)["quantity"].sum()
    prod = run.frame("production")
    made = prod.groupby("good", observed=False)["quantity"].sum() if len(prod) else pd.Series()
    out = pd.DataFrame(index=pd.Index(goods, name="good"))
    out["start"] = first.reindex(goods).fillna(0.0).to_numpy()
    out["end"] = last.reindex(goods).fillna(0.0).to_numpy()
    out["produced"] = made.reindex(goods).fillna(0.0).to_numpy() if len(made) else 0.0
    out["unrecorded"] = out["end"] - out["start"] - out["produced"]
    return out
