"""Induced-value markets (Smith 1962; Gode & Sunder 1993).

Buyers hold money and a *redemption value* for each unit they may buy; sellers hold units and a
*cost* for each. A buyer's k-th purchase in a period earns its k-th value, a seller's k-th sale
costs its k-th cost (values non-increasing, costs non-decreasing: units trade in order). The
competitive benchmark comes from the schedules alone (:func:`competitive_band`), and a run is
judged by allocative efficiency, Smith's alpha and the price deviation (:func:`metrics`).

Periods (run by the order book's sessions, ``periods`` / ``period_length`` options): at the end
of each, buyers' bought units are redeemed (destroyed) and sellers' unsold units expire
(destroyed); at the start of the next, every trader's holdings are reset to its endowment (money
and units created, or earnings withdrawn, through the ledger with the reason logged). Profits
are therefore not carried from period to period in the ledger; they are measured from trades.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from attrs import field, frozen
from numpy.typing import ArrayLike, NDArray

from mktsim.equilibrium import Equilibrium
from mktsim.errors import InvalidParameter
from mktsim.mechanism import MarketContext, PopulationSlot
from mktsim.population import check_delay, check_name
from mktsim.scenario import Scenario

__all__ = [
    "Band",
    "InducedTraders",
    "close_period",
    "competitive_band",
    "induced_scenario",
    "metrics",
    "open_period",
    "reference",
    "schedules",
    "trade_surplus",
]

Array = NDArray[np.float64]


def _role(_: object, __: object, value: str) -> None:
    if value not in ("buyer", "seller"):
        raise InvalidParameter(f"role(={value!r}) must be 'buyer' or 'seller'")


def _schedule(value: Any) -> Array:
    arr = np.array(value, dtype=np.float64, copy=True)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise InvalidParameter(
            f"limits must be a matrix (agents x units) with at least one agent; got shape "
            f"{arr.shape}"
        )
    return arr


@frozen
class InducedTraders:
    """A population of induced-value traders on one side of one good's market.

    Args:
        name: unique within the scenario.
        role: ``buyer`` (limits are redemption values) or ``seller`` (limits are unit costs).
        limits: ``float64[n, k]``, numeraire per unit; row i lists agent i's units in trading
            order (buyers non-increasing, sellers non-decreasing), NaN after its last unit.
        money: numeraire each agent holds at the start of every period (scalar or one per
            agent); buyers need enough to pay their bids.
        good: column of the traded good; ``numeraire``: column of money; ``n_goods``: number
            of goods of the scenario.
        behaviour, behaviour_options: how the traders act (order book: ``zi_c`` by default).
        delay: latency from decision to market, simulation time.
    """

    name: str = field(validator=check_name)
    role: str = field(validator=_role)
    limits: Array = field(converter=_schedule)
    money: Array = field(default=0.0, converter=lambda v: np.array(v, dtype=np.float64))
    good: int = 1
    n_goods: int = 2
    numeraire: int = 0
    behaviour: str | type | None = None
    behaviour_options: Mapping[str, Any] = field(factory=dict, converter=dict)
    delay: float = field(default=0.0, converter=float, validator=check_delay)

    def __attrs_post_init__(self) -> None:
        lim = self.limits
        present = ~np.isnan(lim)
        if not np.isfinite(lim[present]).all() or (lim[present] <= 0).any():
            raise InvalidParameter(f"population {self.name!r}: limits must be > 0 and finite")
        # NaN only after the last unit of a row.
        if (present[:, 1:] & ~present[:, :-1]).any():
            raise InvalidParameter(
                f"population {self.name!r}: a row of limits has a unit after a NaN (NaN pads "
                "the end of a shorter schedule)"
            )
        step = np.diff(np.where(present, lim, np.nan), axis=1)
        bad = step > 0 if self.role == "buyer" else step < 0
        if np.nan_to_num(bad.astype(float)).any():
            i = int(np.argwhere(bad)[0][0])
            order = "non-increasing" if self.role == "buyer" else "non-decreasing"
            raise InvalidParameter(
                f"population {self.name!r}: the {self.role}s' limits of agent {i} must be "
                f"{order} (units trade in order), got {lim[i].tolist()}"
            )
        money = np.broadcast_to(self.money, (lim.shape[0],)) if self.money.ndim <= 1 else None
        if money is None or not np.isfinite(money).all() or (money < 0).any():
            raise InvalidParameter(
                f"population {self.name!r}: money must be >= 0 and finite, one value or one "
                f"per agent ({lim.shape[0]})"
            )
        object.__setattr__(self, "money", np.array(money, dtype=np.float64))
        for what, v in (("good", self.good), ("numeraire", self.numeraire)):
            if not 0 <= v < self.n_goods:
                raise InvalidParameter(f"{what}(={v}) must be in [0, n_goods={self.n_goods})")
        if self.good == self.numeraire:
            raise InvalidParameter(f"good(={self.good}) must differ from numeraire")

    @property
    def size(self) -> int:
        return int(self.limits.shape[0])

    @property
    def kind(self) -> str:
        return "induced"

    @property
    def units(self) -> NDArray[np.int64]:
        """Units in each agent's schedule ``int64[n]``."""
        return (~np.isnan(self.limits)).sum(axis=1).astype(np.int64)

    @property
    def endowment(self) -> Array:
        """Holdings at the start of every period ``float64[n, n_goods]``: money, and a seller's
        units."""
        e = np.zeros((self.size, self.n_goods))
        e[:, self.numeraire] = self.money
        if self.role == "seller":
            e[:, self.good] = self.units
        return e


@frozen
class Band:
    """Competitive equilibrium of unit schedules: price band ``[low, high]``, quantity and the
    maximum total surplus per period (numeraire)."""

    low: float
    high: float
    quantity: int
    max_surplus: float

    @property
    def midpoint(self) -> float:
        return (self.low + self.high) / 2


def competitive_band(values: ArrayLike, costs: ArrayLike) -> Band:
    """Equilibrium of unit demand and supply schedules.

    With values sorted down and costs up, ``Q`` is the largest q with ``v_q >= c_q``; the band
    is ``[max(c_Q, v_{Q+1}), min(v_Q, c_{Q+1})]`` (missing terms dropped) and the maximum surplus
    ``sum_{k <= Q} (v_k - c_k)``. With no profitable unit (Q = 0) the band is every price
    between the best value and the best cost.
    """
    v = np.sort(np.asarray(values, dtype=float))[::-1]
    c = np.sort(np.asarray(costs, dtype=float))
    if v.size == 0 or c.size == 0:
        raise InvalidParameter("a market needs at least one buyer unit and one seller unit")
    m = min(v.size, c.size)
    profitable = v[:m] >= c[:m]
    q = int(np.argmin(profitable)) if not profitable.all() else m
    if q == 0:
        lo, hi = float(min(v[0], c[0])), float(max(v[0], c[0]))
        return Band(lo, hi, 0, 0.0)
    lo = max(c[q - 1], v[q] if q < v.size else -np.inf)
    hi = min(v[q - 1], c[q] if q < c.size else np.inf)
    return Band(float(lo), float(hi), q, float((v[:q] - c[:q]).sum()))


def schedules(scenario: Scenario) -> tuple[Array, Array, int]:
    """All buyer values and seller costs of a scenario's induced traders, and their good."""
    pops = [p for p in scenario.populations if isinstance(p, InducedTraders)]
    if not pops:
        raise InvalidParameter(f"scenario {scenario.name!r} has no induced-value traders")
    goods = {p.good for p in pops}
    if len(goods) != 1:
        raise InvalidParameter("induced-value traders of one scenario must trade one good")
    values = [p.limits[~np.isnan(p.limits)] for p in pops if p.role == "buyer"]
    costs = [p.limits[~np.isnan(p.limits)] for p in pops if p.role == "seller"]
    empty = np.empty(0)
    return (
        np.concatenate(values) if values else empty,
        np.concatenate(costs) if costs else empty,
        goods.pop(),
    )


def reference(scenario: Scenario) -> Equilibrium:
    """Reference solver for ``Scenario(reference=...)``: the competitive band of the schedules.

    ``prices`` puts the good at the band's midpoint (numeraire = 1); ``extra`` holds
    ``price_band``, ``quantity`` and ``max_surplus`` (per period).
    """
    others = [p.name for p in scenario.populations if not isinstance(p, InducedTraders)]
    num = scenario.goods.numeraire_index
    for p in scenario.populations:
        if isinstance(p, InducedTraders) and p.numeraire != num:
            raise InvalidParameter(
                f"population {p.name!r} has numeraire column {p.numeraire}, the scenario {num}"
            )
    values, costs, good = schedules(scenario)
    if others or len(scenario.goods) != 2:
        return Equilibrium(
            "none",
            None,
            None,
            None,
            "induced_values",
            np.nan,
            "the competitive band covers induced-value traders of one good and money only",
        )
    band = competitive_band(values, costs)
    prices = np.ones(len(scenario.goods))
    prices[good] = band.midpoint
    return Equilibrium(
        "found",
        scenario.goods.as_dict(prices),
        prices,
        None,
        "induced_values",
        0.0,
        f"competitive price band [{band.low:g}, {band.high:g}], quantity {band.quantity}; "
        "prices at the midpoint",
        extra={
            "price_band": (band.low, band.high),
            "quantity": band.quantity,
            "max_surplus": band.max_surplus,
        },
    )


def _agent_tables(scenario: Scenario) -> tuple[Array, NDArray[np.int8]]:
    """Limits of every ledger row ``float64[n_agents, kmax]`` (NaN where none) and roles
    (+1 buyer, -1 seller, 0 not an induced trader)."""
    kmax = max(
        (p.limits.shape[1] for p in scenario.populations if isinstance(p, InducedTraders)),
        default=1,
    )
    lim = np.full((scenario.n_agents, kmax), np.nan)
    role = np.zeros(scenario.n_agents, dtype=np.int8)
    for p, rows in zip(scenario.populations, scenario.population_slices().values(), strict=True):
        if isinstance(p, InducedTraders):
            lim[rows, : p.limits.shape[1]] = p.limits
            role[rows] = 1 if p.role == "buyer" else -1
    return lim, role


def trade_surplus(trades: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """Per unit traded: who, at what price, and what it earned its induced-value traders.

    Args:
        trades: the run's ``trades`` frame (bilateral settlements of whole units).
        scenario: the scenario whose induced traders' schedules give values and costs.

    Returns:
        One row per unit, in trade order: ``trade_id, time, period, buyer, seller, price,
        value, cost, surplus``. The k-th unit a buyer buys in a period is worth its k-th value
        (0 beyond its schedule); the k-th a seller sells costs its k-th cost. ``value`` is NaN
        when the buyer is not an induced trader, ``cost`` when the seller is not; ``surplus``
        is the induced traders' profit on the unit (``value - cost`` between two of them).
    """
    lim, role = _agent_tables(scenario)
    cols = ["trade_id", "time", "period", "buyer", "seller", "price", "value", "cost", "surplus"]
    if trades.empty:
        return pd.DataFrame({c: [] for c in cols})
    t = trades.sort_values("trade_id", kind="stable")
    b = t[t["quantity"] > 0][["trade_id", "time", "round", "agent", "quantity", "price"]]
    s = t[t["quantity"] < 0][["trade_id", "agent"]]
    m = b.merge(s, on="trade_id", suffixes=("_b", "_s"), validate="one_to_one")
    q = m["quantity"].to_numpy()
    units = np.rint(q).astype(np.int64)
    if (np.abs(q - units) > 1e-9).any() or (units < 1).any():
        raise InvalidParameter("induced-value metrics need trades of whole units")
    rep = np.repeat(np.arange(len(m)), units)
    period = np.maximum(m["round"].to_numpy(), 0)[rep]
    buyer = m["agent_b"].to_numpy()[rep]
    seller = m["agent_s"].to_numpy()[rep]
    price = m["price"].to_numpy()[rep]
    frame = pd.DataFrame({"period": period, "buyer": buyer, "seller": seller})
    kb = frame.groupby(["period", "buyer"], sort=False).cumcount().to_numpy()
    ks = frame.groupby(["period", "seller"], sort=False).cumcount().to_numpy()
    kmax = lim.shape[1]
    value = np.where(kb < kmax, lim[buyer, np.minimum(kb, kmax - 1)], np.nan)
    value = np.where(role[buyer] == 1, np.nan_to_num(value, nan=0.0), np.nan)
    cost = np.where(ks < kmax, lim[seller, np.minimum(ks, kmax - 1)], np.nan)
    cost = np.where(role[seller] == -1, cost, np.nan)
    surplus = np.where(role[buyer] == 1, value - price, 0.0) + np.where(
        role[seller] == -1, price - cost, 0.0
    )
    return pd.DataFrame(
        {
            "trade_id": m["trade_id"].to_numpy()[rep],
            "time": m["time"].to_numpy()[rep],
            "period": period,
            "buyer": buyer,
            "seller": seller,
            "price": price,
            "value": value,
            "cost": cost,
            "surplus": surplus,
        }
    )


def metrics(run: Any) -> dict[str, Any]:
    """Summary entries of an induced-value run (``Scenario(metrics=...)``).

    * ``allocative_efficiency``: realised surplus over all periods / (periods x max surplus);
      ``allocative_efficiency_by_period`` per period (Gode & Sunder 1993).
    * ``alpha_by_period``: Smith's alpha, ``100 sqrt(mean_k (P_k - P0)^2) / P0`` over the
      period's unit trade prices, with ``P0`` the midpoint of the competitive band (None for a
      period without trades).
    * ``rms_price_deviation``: ``sqrt(mean (P_k - P0)^2)`` over every unit traded, numeraire.

    The number of periods is the sessions the mechanism ran (``periods_run`` in the summary),
    else one more than the last period with a trade.
    """
    ref = run.reference
    if ref is None or "max_surplus" not in ref.extra:
        return {}
    s_max = float(ref.extra["max_surplus"])
    lo, hi = ref.extra["price_band"]
    p0 = (lo + hi) / 2
    table = trade_surplus(run.trades, run.scenario)
    periods = run.summary.get("periods_run") or (
        int(table["period"].max()) + 1 if len(table) else 1
    )
    by_period = table.groupby("period")["surplus"].sum()
    realised = [float(by_period.get(k, 0.0)) for k in range(periods)]
    alpha: list[float | None] = []
    units: list[int] = []
    for k in range(periods):
        prices = table.loc[table["period"] == k, "price"].to_numpy()
        units.append(int(prices.size))
        alpha.append(
            float(100 * np.sqrt(np.mean((prices - p0) ** 2)) / p0) if prices.size else None
        )
    all_prices = table["price"].to_numpy()
    return {
        "allocative_efficiency": sum(realised) / (periods * s_max) if s_max > 0 else None,
        "allocative_efficiency_by_period": [r / s_max if s_max > 0 else None for r in realised],
        "alpha_by_period": alpha,
        "rms_price_deviation": (
            float(np.sqrt(np.mean((all_prices - p0) ** 2))) if all_prices.size else None
        ),
        "realised_surplus": sum(realised),
        "max_surplus_per_period": s_max,
        "equilibrium_price": p0,
        "price_band": (lo, hi),
        "equilibrium_quantity": ref.extra["quantity"],
        "units_traded_by_period": units,
    }


# ---- periods ----------------------------------------------------------------------------
def close_period(ctx: MarketContext, slot: PopulationSlot, period: int) -> None:
    """End of a period for one population (its orders already cancelled): buyers' bought units
    are redeemed, sellers' unsold units expire; both destroyed through the ledger."""
    pop = slot.population
    if not isinstance(pop, InducedTraders):
        return
    ledger = ctx.ledger
    held = np.array(ledger.holdings[slot.rows, pop.good])
    reason = "redeemed" if pop.role == "buyer" else "expired"
    who = np.flatnonzero(held)
    if who.size:  # every holder at once, journalled one entry per holder
        taken = np.zeros((who.size, len(ctx.goods)), dtype=np.int64)
        taken[:, pop.good] = -held[who]
        ledger.adjust_each(slot.rows.start + who, taken, reason, reason)
    unit = ctx.goods.base_units
    ctx.log(
        reason,
        f"period {period}: {held.sum() / unit:g} units of {ctx.goods.names[pop.good]} "
        f"{reason} ({pop.role}s of {pop.name})",
    )


def open_period(ctx: MarketContext, slot: PopulationSlot, period: int) -> None:
    """Start of a period for one population: holdings reset to the endowment (the difference
    created, reason ``period endowment``, or destroyed, reason ``earnings withdrawn``)."""
    pop = slot.population
    if not isinstance(pop, InducedTraders):
        return
    ledger = ctx.ledger
    target = ctx.goods.to_base(pop.endowment)
    diff = target - ledger.holdings[slot.rows]
    created = np.maximum(diff, 0)
    destroyed = np.maximum(-diff, 0)
    # Every agent at once, journalled as a create then a destroy per agent would be.
    rows = np.arange(slot.rows.start, slot.rows.start + pop.size)
    ledger.adjust_each(rows, diff, "period endowment", "earnings withdrawn")
    ctx.log(
        "period_start",
        f"period {period}: {pop.name} endowments renewed (created "
        f"{_vector_text(created.sum(axis=0) / ctx.goods.base_units)}, "
        f"withdrawn {_vector_text(destroyed.sum(axis=0) / ctx.goods.base_units)})",
    )


#: The print options under which :func:`_vector_text` writes what numpy would.
_PRINT_DEFAULTS = {
    "floatmode": "maxprec",
    "formatter": None,
    "legacy": False,
    "linewidth": 75,
    "sign": "-",
    "suppress": False,
}


def _vector_text(values: Array) -> str:
    """``str(values)`` for a short vector of units, as numpy prints it.

    Whole, non-negative amounts of a similar size (the common case: units created or withdrawn
    per good) are written directly; anything else goes to numpy's printer, whose set-up costs
    about as much as renewing a period's endowments (a tenth of a millisecond per call).
    """
    options: dict[str, Any] = dict(np.get_printoptions())
    v = values.tolist()
    nonzero = [x for x in v if x]
    if (
        values.ndim == 1
        and all(options[k] == d for k, d in _PRINT_DEFAULTS.items())
        and all(x > 0 or (x == 0 and math.copysign(1.0, x) > 0) for x in v)
        and all(x.is_integer() for x in v)
        and (not nonzero or (max(nonzero) < 1e8 and max(nonzero) / min(nonzero) <= 1000.0))
    ):
        texts = [f"{int(x)}." for x in v]
        width = max(map(len, texts), default=0)
        line = "[" + " ".join(t.rjust(width) for t in texts) + "]"
        if len(line) < options["linewidth"] - 5:  # numpy would not wrap it
            return line
    return str(values)


# ---- building scenarios -----------------------------------------------------------------
def induced_scenario(
    name: str,
    values: Sequence[Sequence[float]],
    costs: Sequence[Sequence[float]],
    *,
    behaviour: str = "zi_c",
    behaviour_options: Mapping[str, Any] | None = None,
    periods: int = 6,
    period_length: float = 30.0,
    money: float | None = None,
    goods: Sequence[str] = ("money", "good"),
    mechanism_options: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    description: str = "",
) -> Scenario:
    """A two-sided induced-value market under the order book.

    Args:
        name: scenario name.
        values: per buyer, its redemption values in trading order (ragged lists allowed).
        costs: per seller, its unit costs in trading order.
        behaviour, behaviour_options: both sides' behaviour.
        periods, period_length: trading sessions; the horizon is one period longer, so the
            last session closes before it.
        money: each buyer's cash per period (default: its units times the larger of 200 and
            its highest value, enough for any bid on [1, 200] of Gode & Sunder's range).
        goods: the numeraire and the traded good.
        mechanism_options: further ``order_book`` options (default tick 1, lot 1, price
            estimate weight 0.2). ``call_market`` gets the same grid, sessions and estimate
            weight, so both mechanisms trade the same units in the same periods.
        params: recorded in summaries.
    """

    def matrix(rows: Sequence[Sequence[float]]) -> Array:
        k = max((len(r) for r in rows), default=0)
        out = np.full((len(rows), max(k, 1)), np.nan)
        for i, r in enumerate(rows):
            out[i, : len(r)] = r
        return out

    v, c = matrix(values), matrix(costs)
    opts = dict(behaviour_options or {})
    units = (~np.isnan(v)).sum(axis=1)
    ceiling = np.maximum(float(opts.get("max_price", 200.0)), np.nanmax(v, axis=1))
    cash = units * ceiling if money is None else np.full(len(values), float(money))
    buyers = InducedTraders("buyers", "buyer", v, cash, behaviour=behaviour, behaviour_options=opts)
    sellers = InducedTraders(
        "sellers", "seller", c, 0.0, behaviour=behaviour, behaviour_options=opts
    )
    # (typed Any: the Population protocol declares settable attributes, frozen kinds have none)
    populations: list[Any] = [buyers, sellers]
    # A period sees only Q-ish trades: the price estimate weighs each one more than in a busy
    # exchange economy.
    book = {
        "tick": 1.0,
        "lot": 1.0,
        "periods": periods,
        "period_length": period_length,
        "estimate_weight": 0.2,
    }
    book.update(mechanism_options or {})
    # The batch auction shares the grid and the sessions (the book's own rules, such as
    # clear_on_trade or its arrival rate, are not its options).
    call = {k: book[k] for k in ("tick", "lot", "periods", "period_length", "estimate_weight")}
    return Scenario(
        name=name,
        goods=list(goods),
        populations=populations,
        mechanism="order_book",
        mechanism_options={"order_book": book, "call_market": call},
        until=float(book["period_length"]) * (int(book["periods"]) + 1),
        params=dict(params or {}),
        description=description,
        reference=reference,
        metrics=metrics,
        metrics_tables=("trades",),
    )
