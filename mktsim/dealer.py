"""The Glosten-Milgrom (1985) dealer market: its agents and the figures a run is judged by.

An asset is worth ``V`` in {``v_low``, ``v_high``}, drawn once per run with P(V = v_high) =
``prior``. A competitive, risk-neutral dealer quotes the asset against money; traders arrive
one at a time, a fraction ``mu`` of them informed (they know ``V``) and the rest noise traders
(buying or selling with probability 1/2 each). With ``pi`` the dealer's belief P(V = v_high),
zero expected profit on every trade gives

* ``ask = E[V | buy] = v_low + (v_high - v_low) pi_buy``,
  ``pi_buy = pi (1 + mu) / (pi (1 + mu) + (1 - pi)(1 - mu))``;
* ``bid = E[V | sell] = v_low + (v_high - v_low) pi_sell``,
  ``pi_sell = pi (1 - mu) / (pi (1 - mu) + (1 - pi)(1 + mu))``;

so at ``pi = 1/2`` the spread is ``mu (v_high - v_low)``. After each trade the dealer's belief
becomes ``pi_buy`` or ``pi_sell``; quotes converge to ``V`` and the dealer's expected profit is
zero: what it loses to the informed it gains from the noise traders.

This module holds what is mechanism-free: the population kind (:class:`DealerMarketTraders`,
agents with money and the asset and no preferences: their behaviour is their strategy) and the
summary entries of a run (:func:`metrics`). The strategies are in
:mod:`mktsim.strategies.dealer` (they run on any market taking limit orders: the order book,
the call market); the scenario is ``scenarios/glosten_milgrom.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from attrs import field, frozen
from numpy.typing import ArrayLike, NDArray

from mktsim.errors import InvalidParameter
from mktsim.population import check_delay, check_name

__all__ = ["CONVERGENCE_TOLERANCE", "DealerMarketTraders", "metrics"]

Array = NDArray[np.float64]
#: Quotes have converged once both are within this fraction of ``v_high - v_low`` of ``V``.
CONVERGENCE_TOLERANCE = 0.01


def _endowment(value: Any) -> Array:
    arr = np.array(value, dtype=np.float64, copy=True)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] != 2:
        raise InvalidParameter(
            f"endowment must be a matrix (agents x 2: money, asset) with at least one agent; "
            f"got shape {arr.shape}"
        )
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise InvalidParameter("endowment must be >= 0 and finite")
    return arr


@frozen
class DealerMarketTraders:
    """Agents of a dealer market: each holds money and units of the asset, nothing more.

    They have no utility and no demand at posted prices: only the dealer-market strategies
    (``gm_dealer``, ``gm_informed``, ``gm_noise``, which send limit orders) drive them, and
    mechanisms that take no limit orders refuse them. Build with :meth:`of`.

    Args:
        name: unique within the scenario.
        endowment: ``float64[n, 2]`` holdings at the start in units: money, asset.
        behaviour: the strategy by name (``gm_dealer``, ``gm_informed``, ``gm_noise``).
        behaviour_options: its options (model parameters, rates; see
            :mod:`mktsim.strategies.dealer`).
        delay: latency from decision to market, simulation time.
    """

    name: str = field(validator=check_name)
    endowment: Array = field(converter=_endowment)
    behaviour: str | type | None = None
    behaviour_options: Mapping[str, Any] = field(factory=dict, converter=dict)
    delay: float = field(default=0.0, converter=float, validator=check_delay)

    @classmethod
    def of(
        cls, name: str, size: int, money: ArrayLike, stock: ArrayLike, **kwargs: Any
    ) -> DealerMarketTraders:
        """``size`` agents holding ``money`` and ``stock`` units of the asset (each one value
        or one per agent)."""
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise InvalidParameter(f"population {name!r}: size(={size!r}) must be an int >= 1")
        cols = []
        for what, v in (("money", money), ("stock", stock)):
            arr = np.atleast_1d(np.asarray(v, dtype=np.float64))
            if arr.ndim != 1 or arr.shape[0] not in (1, size):
                raise InvalidParameter(
                    f"population {name!r}: {what} must be one value or one per agent ({size}), "
                    f"got shape {arr.shape}"
                )
            cols.append(np.broadcast_to(arr, (size,)))
        return cls(name, np.column_stack(cols), **kwargs)

    @property
    def size(self) -> int:
        return int(self.endowment.shape[0])

    @property
    def kind(self) -> str:
        return "dealer_market"


# ---- summary entries --------------------------------------------------------------------------
def _profits(holdings: pd.DataFrame, goods: list[str], value: float) -> dict[str, float]:
    """Per population: value of its holdings at the end less at the start, money = 1 and the
    asset worth ``value``."""
    if holdings.empty:
        return {}
    worth = {goods[0]: 1.0, goods[1]: value}
    h = holdings.assign(
        good=holdings["good"].astype(str), population=holdings["population"].astype(str)
    )
    h = h.assign(value=h["quantity"] * h["good"].map(worth).fillna(0.0))
    first, last = h["time"].min(), h["time"].max()
    start = h[h["time"] == first].groupby("population")["value"].sum()
    end = h[h["time"] == last].groupby("population")["value"].sum()
    return {str(k): float(end.get(k, 0.0) - start.get(k, 0.0)) for k in start.index}


def _convergence(quotes: pd.DataFrame, value: float, band: float) -> tuple[int | None, Any]:
    """Dealer trades, and time, when both quotes were first within ``band`` of ``value``."""
    near = ((quotes["bid"] - value).abs() <= band) & ((quotes["ask"] - value).abs() <= band)
    hits = np.flatnonzero(near.to_numpy())  # (NaN, a side it could not quote, is never near)
    if hits.size == 0:
        return None, None
    row = quotes.iloc[int(hits[0])]
    return int(row["trades"]), float(row["time"])


def metrics(run: Any) -> dict[str, Any]:
    """Summary entries of a dealer-market run (``Scenario(metrics=...)``).

    * ``first_spread``: ask - bid of the dealer's first quotes (money per unit).
    * ``final_bid``, ``final_ask``, ``final_belief``: its last quotes and belief P(V = v_high).
    * ``dealer_trades``: trades with the dealer (Bayesian updates).
    * ``trades_to_converge``, ``time_to_converge``: dealer trades (and simulation time) when
      both quotes were first within ``CONVERGENCE_TOLERANCE (v_high - v_low)`` of ``V`` (None
      if never). With prices on ticks they need not stay there: once the ask rounds up to
      ``v_high`` (or the bid down to ``v_low``) the informed stop trading, only noise trades
      move the belief, and the quotes wander until the informed come back.
    * ``dealer_profit``, ``informed_profit``, ``noise_profit``: the change in the value of each
      side's holdings with the asset valued at the true ``V`` (money units); they add up to 0.
      Populations are told apart by behaviour; ``profit_by_population`` lists each.

    ``true_value``, ``v_low`` and ``v_high`` come from the run's summary (the run-wide
    true-value service of :mod:`mktsim.strategies.dealer`); without them nothing is added.
    """
    s = run.summary
    if s.get("true_value") is None or "quotes" not in run.tables:
        return {}
    value = float(s["true_value"])
    quotes = run.frame("quotes")
    out: dict[str, Any] = {}
    if len(quotes):
        first, last = quotes.iloc[0], quotes.iloc[-1]
        spread = float(first["ask"] - first["bid"])
        out["first_spread"] = None if math.isnan(spread) else spread
        out["final_bid"] = None if math.isnan(last["bid"]) else float(last["bid"])
        out["final_ask"] = None if math.isnan(last["ask"]) else float(last["ask"])
        out["final_belief"] = float(last["belief"])
        out["dealer_trades"] = int(last["trades"])
        band = CONVERGENCE_TOLERANCE * (float(s["v_high"]) - float(s["v_low"]))
        out["trades_to_converge"], out["time_to_converge"] = _convergence(quotes, value, band)
    else:
        out.update(dict.fromkeys(("first_spread", "final_bid", "final_ask", "final_belief")))
    goods = list(run.scenario.goods.names)
    by_pop = _profits(run.holdings, goods, value)
    roles = s.get("behaviours") or {
        p.name: p.behaviour for p in getattr(run.scenario, "populations", ())
    }
    for role, behaviour in (
        ("dealer", "gm_dealer"),
        ("informed", "gm_informed"),
        ("noise", "gm_noise"),
    ):
        out[f"{role}_profit"] = sum(v for k, v in by_pop.items() if roles.get(k) == behaviour)
    out["profit_by_population"] = by_pop
    return out
