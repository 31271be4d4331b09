"""Belief-holding traders and prediction-market scenarios.

A prediction market trades one *share* per outcome of an event; a share of the outcome that
happens pays one unit of money, the others pay nothing. Money pays 1 in every state, so it is the
same asset as a complete set of shares (one of each outcome). An agent's *state wealth* in state
s is its money plus its shares of outcome s: ``w[s] = money + shares[s]``.

:class:`BeliefTraders` hold subjective probabilities ``beliefs: float64[n, k]`` over the k
outcomes and a risk attitude (expected utility of state wealth):

* ``log``: u(w) = ln w (Kelly bettors);
* ``cara``: u(w) = −exp(−a·w), ``risk_aversion`` a > 0 per unit of money;
* ``neutral``: u(w) = w.

An agent's *reservation prices* are ``r[s] = π[s]·u'(w[s]) / Σ_t π[t]·u'(w[t])``: the price of a
share of s, in money, at which it neither wants to buy nor to sell (its marginal rate of
substitution between share s and money). They sum to 1, like a market maker's prices.

Competitive benchmark (log utility): at prices p with Σ p = 1 each trader spends its wealth
``W_i = money_i + p·shares_i`` on state wealth ``w_is = π_is·W_i / p_s``. Markets clear when
``p_s·(M + S_s) = Σ_i π_is·W_i`` (M total money, S_s total shares of s); with complete sets
(S_s the same for every s) that is ``p = Σ_i W_i·π_i / Σ_i W_i``, the wealth-weighted mean belief.
:func:`competitive_prices` solves the general linear system; :func:`prediction_market` builds a
scenario whose reference equilibrium is that price.

BeliefTraders have no ``demand`` at posted prices: money and a complete set of shares are perfect
substitutes, so every demand at Σ p = 1 is a correspondence (any split of the riskless part of
state wealth between money and complete sets is optimal), and at Σ p ≠ 1 demand jumps (a complete
set is then strictly cheaper or dearer than money). An auctioneer moving each price on its own
excess demand cannot clear that; the reference solver computes the competitive price directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from attrs import field, frozen
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq

from mktsim.equilibrium import Equilibrium
from mktsim.errors import InvalidParameter, UnknownName
from mktsim.goods import Goods
from mktsim.population import check_delay, check_name
from mktsim.scenario import Scenario
from mktsim.utility import as_matrix

__all__ = [
    "RISK_ATTITUDES",
    "BeliefTraders",
    "competitive_prices",
    "desired_trade",
    "marginal_utility",
    "outcome_names",
    "posterior",
    "prediction_event",
    "prediction_market",
    "prediction_metrics",
    "prediction_reference",
    "reservation_row",
]

Array = NDArray[np.float64]

#: Risk attitudes a :class:`BeliefTraders` population may have.
RISK_ATTITUDES = ("log", "cara", "neutral")

# State wealth below this is treated as this, so log utility's u'(0) = inf stays finite.
_TINY_WEALTH = 1e-300


def _beliefs(value: ArrayLike) -> Array:
    arr = as_matrix(value, "beliefs")
    if arr.shape[1] < 2:
        raise InvalidParameter(f"beliefs must cover at least 2 outcomes; got {arr.shape[1]}")
    sums = arr.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > 1e-9)
    if off.size:
        i = off[0]
        raise InvalidParameter(f"beliefs[{i}] must sum to 1; sums to {sums[i]!r}")
    return arr


def _risk(_: object, __: object, value: str) -> None:
    if value not in RISK_ATTITUDES:
        raise UnknownName("risk attitude", str(value), list(RISK_ATTITUDES))


def _risk_aversion(value: ArrayLike) -> Array:
    arr = np.atleast_1d(np.array(value, dtype=float, copy=True))
    if arr.ndim != 1 or arr.size == 0:
        raise InvalidParameter(
            f"risk_aversion must be a scalar or one value per agent; shape {arr.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(arr) | (arr <= 0))
    if bad.size:
        raise InvalidParameter(f"risk_aversion(={arr[bad[0]]}) must be > 0 and finite")
    arr.setflags(write=False)
    return arr


def marginal_utility(
    wealth: Array, risk: str, risk_aversion: Array | float = 1.0
) -> NDArray[np.float64]:
    """u'(w) of state wealth, up to a positive factor per agent (enough for every ratio).

    Args:
        wealth: ``float64[n, k]`` state wealth in money units (>= 0).
        risk: ``log`` | ``cara`` | ``neutral``.
        risk_aversion: CARA coefficient a (per unit of money), scalar or ``float64[n]``.

    Returns:
        ``float64[n, k]``, > 0. CARA is scaled by exp(a·min_s w) per agent so it cannot underflow.
    """
    w = np.asarray(wealth, dtype=float)
    if risk == "log":
        return 1.0 / np.maximum(w, _TINY_WEALTH)
    if risk == "cara":
        a = np.asarray(risk_aversion, dtype=float)
        if w.ndim == 2 and a.ndim == 1:
            a = a[:, None]
        return np.exp(-a * (w - w.min(axis=-1, keepdims=True)))
    if risk == "neutral":
        return np.ones_like(w)
    raise UnknownName("risk attitude", str(risk), list(RISK_ATTITUDES))


def reservation_row(
    beliefs: Array, wealth: Array, risk: str, risk_aversion: float = 1.0
) -> NDArray[np.float64]:
    """One agent's reservation prices ``float64[k]``, ``π_s u'(w_s) / Σ_t π_t u'(w_t)``: what
    :meth:`BeliefTraders.reservation_prices` gives for a whole population, for the acting agent
    alone (a strategy's cost per action must not grow with its population).

    Args:
        beliefs: ``float64[k]`` the probabilities the agent trades on.
        wealth: ``float64[k]`` its state wealth (money + shares of each outcome), money units.
        risk: ``log`` | ``cara`` | ``neutral``.
        risk_aversion: its CARA coefficient per unit of money.
    """
    mu = beliefs * marginal_utility(wealth, risk, risk_aversion)
    return np.asarray(mu / mu.sum(), dtype=np.float64)


def desired_trade(
    beliefs: Array,
    wealth: Array,
    outcome: int,
    price: float,
    risk: str,
    risk_aversion: float = 1.0,
    bounds: tuple[float, float] = (-math.inf, math.inf),
) -> float:
    """Shares of ``outcome`` that maximise expected utility when bought (> 0) or sold (< 0) at
    ``price`` each: the trade after which the reservation price of the outcome equals ``price``.

    A share bought at ``p`` adds ``1 - p`` to the state wealth of its outcome and takes ``p``
    from every other state, so along the trade ``q`` the slope of expected utility is
    ``D(q) = Σ_t π_t u'(w_t + q d_t) d_t`` with ``d = e_s - p``, decreasing in ``q``, and
    ``D(0) = (r_s - p) Σ_t π_t u'(w_t)``. The root is found by Brent's method within ``bounds``
    (units of shares; what the agent can pay or deliver), and a bound is returned when ``D``
    keeps its sign up to it (a risk-neutral trader goes all the way).

    Args:
        beliefs: ``float64[k]`` subjective probabilities.
        wealth: ``float64[k]`` state wealth (money + shares of each outcome), units of money.
        outcome: index of the share traded.
        price: money per share, in (0, 1).
        risk: ``log`` | ``cara`` | ``neutral``.
        risk_aversion: CARA coefficient per unit of money.
        bounds: ``(lowest, highest)`` trade, lowest <= 0 <= highest.
    """
    pi = np.asarray(beliefs, dtype=float)
    w = np.asarray(wealth, dtype=float)
    d = np.full(pi.shape, -price)
    d[outcome] += 1.0

    def slope(q: float) -> float:
        mu = marginal_utility(w + q * d, risk, risk_aversion)
        return float(np.dot(pi * mu, d) / np.dot(pi, mu))

    lo, hi = bounds
    s0 = slope(0.0)
    if s0 == 0.0:
        return 0.0
    end = hi if s0 > 0 else lo
    if not math.isfinite(end):
        # log and CARA utility turn D negative within the state wealth: search outwards
        end = (1.0 if s0 > 0 else -1.0) * max(1.0, float(np.abs(w).max()))
        while (slope(end) > 0) == (s0 > 0) and abs(end) < 1e12:
            end *= 2.0
    s_end = slope(end)
    if (s_end > 0) == (s0 > 0):
        return float(end)
    a, b = (0.0, end) if end > 0 else (end, 0.0)
    return float(brentq(slope, a, b, xtol=1e-12, rtol=1e-10))


@frozen
class BeliefTraders:
    """Traders with subjective probabilities over the outcomes of one event.

    Args:
        name: unique within the scenario.
        beliefs: ``float64[n, k]`` subjective probabilities, rows summing to 1.
        endowment: ``float64[n, 1 + k]`` in units: money, then shares of each outcome, in the
            order of the scenario's goods (numeraire first, then the outcomes).
        risk: ``log`` (default), ``cara`` or ``neutral``.
        risk_aversion: CARA coefficient per unit of money (scalar or one per agent); used only
            when ``risk="cara"``.
        behaviour: how the population trades, interpreted by the mechanism (None: its default
            for belief traders); ``behaviour_options`` tunes it.
        delay: response delay in simulation time.
    """

    name: str = field(validator=check_name)
    beliefs: Array = field(converter=_beliefs)
    endowment: Array = field(converter=lambda v: as_matrix(v, "endowment"))
    risk: str = field(default="log", validator=_risk)
    risk_aversion: Array = field(default=1.0, converter=_risk_aversion)
    behaviour: str | type | None = None
    behaviour_options: Mapping[str, Any] = field(factory=dict, converter=dict)
    delay: float = field(default=0.0, converter=float, validator=check_delay)

    def __attrs_post_init__(self) -> None:
        n, k = self.beliefs.shape
        if self.endowment.shape != (n, 1 + k):
            raise InvalidParameter(
                f"population {self.name!r}: endowment has shape {self.endowment.shape}, expected "
                f"({n}, {1 + k}) (money, then shares of each of the {k} outcomes)"
            )
        if self.risk_aversion.size not in (1, n):
            raise InvalidParameter(
                f"risk_aversion has {self.risk_aversion.size} values for {n} agents"
            )

    @classmethod
    def of(
        cls,
        name: str,
        beliefs: ArrayLike,
        money: ArrayLike,
        complete_sets: ArrayLike = 0.0,
        **kwargs: Any,
    ) -> BeliefTraders:
        """Build from beliefs ``float64[n, k]``, money ``float64[n]`` (or a scalar) and a number
        of complete sets (one share of every outcome) per agent."""
        pi = _beliefs(beliefs)
        n, k = pi.shape
        m = np.broadcast_to(np.asarray(money, dtype=float), (n,))
        c = np.broadcast_to(np.asarray(complete_sets, dtype=float), (n,))
        return cls(name, pi, np.column_stack([m, np.repeat(c[:, None], k, axis=1)]), **kwargs)

    @classmethod
    def from_frame(
        cls, name: str, frame: pd.DataFrame, outcomes: Sequence[str], **kwargs: Any
    ) -> BeliefTraders:
        """Build from a table with columns ``belief_<outcome>``, ``money`` and optionally
        ``shares_<outcome>`` (missing share columns are 0)."""
        cols = [f"belief_{o}" for o in outcomes]
        missing = [c for c in [*cols, "money"] if c not in frame.columns]
        if missing:
            raise InvalidParameter(f"population {name!r}: missing columns {missing}")
        shares = np.column_stack(
            [
                frame[f"shares_{o}"].to_numpy(float)
                if f"shares_{o}" in frame.columns
                else np.zeros(len(frame))
                for o in outcomes
            ]
        )
        endowment = np.column_stack([frame["money"].to_numpy(float), shares])
        return cls(name, frame[cols].to_numpy(float), endowment, **kwargs)

    @property
    def size(self) -> int:
        return int(self.beliefs.shape[0])

    @property
    def kind(self) -> str:
        return "belief_traders"

    @property
    def n_outcomes(self) -> int:
        return int(self.beliefs.shape[1])

    @property
    def aversion(self) -> Array:
        """CARA coefficient of every agent, ``float64[n]`` (the scalar broadcast)."""
        return np.broadcast_to(self.risk_aversion, (self.size,))

    def state_wealth(self, holdings: Array) -> Array:
        """``float64[n, k]``: money plus shares of each outcome, from holdings ``[n, 1 + k]``."""
        h = np.asarray(holdings, dtype=float)
        return h[:, :1] + h[:, 1:]

    def reservation_prices(self, holdings: Array) -> Array:
        """``float64[n, k]``: π_s u'(w_s) / Σ_t π_t u'(w_t) at holdings ``[n, 1 + k]``."""
        mu = self.beliefs * marginal_utility(self.state_wealth(holdings), self.risk, self.aversion)
        return mu / mu.sum(axis=1, keepdims=True)

    def expected_utility(self, holdings: Array) -> Array:
        """``float64[n]``: Σ_s π_s u(w_s) (log: −inf where a believed state has no wealth)."""
        w = self.state_wealth(holdings)
        if self.risk == "log":
            with np.errstate(divide="ignore"):
                u = np.where(self.beliefs > 0, np.log(w), 0.0)
        elif self.risk == "cara":
            a = self.aversion[:, None]
            u = -np.exp(-a * w)
        else:
            u = w
        return np.asarray((self.beliefs * u).sum(axis=1), dtype=float)


# --- the competitive benchmark ------------------------------------------------------------------


def outcome_names(k: int) -> list[str]:
    """Default share-good names: ``yes``/``no`` for two outcomes, else ``outcome1..k``."""
    if k < 2:
        raise InvalidParameter(f"number of outcomes(={k}) must be >= 2")
    return ["yes", "no"] if k == 2 else [f"outcome{i}" for i in range(1, k + 1)]


def competitive_prices(beliefs: Array, endowment: Array) -> Array:
    """The log-utility competitive share prices ``float64[k]`` (they sum to 1).

    Solves ``p_s·(M + S_s) = Σ_i π_is·(m_i + p·e_i)`` for p, a linear system; with complete
    sets it reduces to the wealth-weighted mean belief.

    Args:
        beliefs: ``float64[n, k]``, rows summing to 1.
        endowment: ``float64[n, 1 + k]``: money, then shares per outcome (units).
    """
    pi = np.asarray(beliefs, dtype=float)
    e = np.asarray(endowment, dtype=float)
    money, shares = e[:, 0], e[:, 1:]
    total = money.sum() + shares.sum(axis=0)
    if money.sum() <= 0:
        raise InvalidParameter("the belief traders hold no money: the competitive price is free")
    a = np.diag(total) - pi.T @ shares
    p = np.linalg.solve(a, pi.T @ money)
    return np.asarray(p / p.sum(), dtype=float)  # sums to 1 up to rounding; make it exact


def _belief_populations(scenario: Scenario) -> list[BeliefTraders]:
    return [
        p
        for p in scenario.populations
        if isinstance(p, BeliefTraders) and p.behaviour not in ("noise", "passive", "scripted")
    ]


def prediction_reference(
    scenario: Scenario, true_probabilities: Sequence[float] | None = None
) -> Equilibrium:
    """Reference equilibrium of a prediction market: the log-utility competitive price of its
    belief traders (noise, passive and scripted populations keep their endowments).

    ``allocation`` holds each agent's competitive state wealth split as money = its riskless part
    (min over states) and shares = the rest; ``extra`` carries ``true_probabilities`` (outcome ->
    probability), ``wealth`` (``float64[n_agents]``, market value of each endowment at the
    prices, NaN for agents outside the benchmark) and ``risk`` (the attitudes present).
    """
    goods = scenario.goods
    if goods.numeraire_index != 0:
        raise InvalidParameter(
            f"a prediction market lists the numeraire first (money, then the outcomes); "
            f"{goods.numeraire!r} is good {goods.numeraire_index}"
        )
    outcomes = [g for g in goods.names if g != goods.numeraire]
    pops = _belief_populations(scenario)
    if not pops:
        return Equilibrium(
            "none",
            None,
            None,
            None,
            "wealth_weighted_belief",
            math.nan,
            "no belief traders (other than noise, passive or scripted ones) in the scenario",
        )
    k = len(outcomes)
    for p in pops:
        if p.n_outcomes != k:
            raise InvalidParameter(
                f"population {p.name!r} has beliefs over {p.n_outcomes} outcomes, the scenario "
                f"{k} ({', '.join(outcomes)})"
            )
    beliefs = np.vstack([p.beliefs for p in pops])
    endowment = np.vstack([p.endowment for p in pops])
    share_prices = competitive_prices(beliefs, endowment)
    price_vector = np.ones(len(goods))
    price_vector[[goods.index(o) for o in outcomes]] = share_prices

    allocation = scenario.endowments().copy()
    wealth = np.full(scenario.n_agents, math.nan)
    slices = scenario.population_slices()
    for p in pops:
        rows = slices[p.name]
        w_total = p.endowment[:, 0] + p.endowment[:, 1:] @ share_prices
        state = p.beliefs * (w_total[:, None] / share_prices[None, :])
        riskless = state.min(axis=1)
        allocation[rows, 0] = riskless
        allocation[rows, 1:] = state - riskless[:, None]
        wealth[rows] = w_total
    # Clearing is about state wealth (money and complete sets are interchangeable).
    state_demand = allocation[:, :1] + allocation[:, 1:]
    state_supply = scenario.endowments()[:, :1] + scenario.endowments()[:, 1:]
    residual = float(
        np.max(np.abs(state_demand.sum(axis=0) - state_supply.sum(axis=0)) / state_supply.sum(0))
    )
    risks = sorted({p.risk for p in pops})
    message = "log-utility competitive price: the wealth-weighted mean belief"
    if risks != ["log"]:
        message += f" (a benchmark: the traders' risk attitudes are {', '.join(risks)})"
    extra: dict[str, Any] = {"wealth": wealth, "risk": risks}
    if true_probabilities is not None:
        extra["true_probabilities"] = dict(
            zip(outcomes, map(float, true_probabilities), strict=True)
        )
    return Equilibrium(
        "unique" if risks == ["log"] else "found",
        goods.as_dict(price_vector),
        price_vector,
        allocation,
        "wealth_weighted_belief",
        residual,
        message,
        extra=extra,
    )


def prediction_event(scenario: Scenario) -> tuple[Array | None, float, str | None]:
    """The event a prediction-market scenario resolves, for any mechanism that runs it.

    :func:`prediction_market` records the event once, as the defaults of the ``lmsr`` market
    maker (which draws and pays the outcome); under a mechanism without a maker of its own (the
    order book, the call market) the run's event (:mod:`mktsim.prediction`) reads it from there.

    Returns:
        ``(true_probabilities, resolve_at, outcome)``: ``float64[k]`` in outcome order (None when
        the scenario gives none: nature then draws uniformly), the resolution time (the
        scenario's ``until`` unless set; ``inf`` for never) and a forced outcome's name (None:
        drawn).
    """
    opts = dict(scenario.mechanism_options.get("lmsr", {}))
    truth = opts.get("true_probabilities")
    probabilities = None
    if truth is not None:
        outcomes = [g for g in scenario.goods.names if g != scenario.goods.numeraire]
        if isinstance(truth, Mapping):
            truth = [float(truth.get(o, 0.0)) for o in outcomes]
        probabilities = np.asarray(truth, dtype=float)
        if probabilities.shape != (len(outcomes),) or abs(probabilities.sum() - 1.0) > 1e-9:
            raise InvalidParameter(
                f"true_probabilities(={truth}) must be {len(outcomes)} probabilities summing to "
                f"1, one per outcome ({', '.join(outcomes)})"
            )
    at = opts.get("resolve_at")
    if at in (None, "", "none"):  # as lmsr reads its option
        resolve_at = float(scenario.until)
    else:
        resolve_at = math.inf if at == "never" else float(at)
    outcome = opts.get("outcome")
    return probabilities, resolve_at, None if outcome is None else str(outcome)


def prediction_metrics(run: Any) -> dict[str, Any]:
    """Summary entries of a prediction-market run, from its frames and summary.

    ``initial_price`` and ``final_price`` (outcome -> the market's price estimate at its first
    and last record: a maker's price, or an order book's moving average of trade prices),
    ``wealth_weighted_belief`` (the reference price), ``true_probabilities``, the max absolute
    distance of the initial and final price from the truth (``distance_initial``,
    ``distance_final``), whether the market ended closer, ``price_sum`` (the final prices'
    sum: 1 without arbitrage, since a complete set is worth one unit of money),
    ``distance_reference`` (max absolute distance of the final price from the reference), and
    the market maker's ``maker_loss`` when the mechanism reports one (None without a maker).
    """
    scenario = run.scenario
    outcomes = [g for g in scenario.goods.names if g != scenario.goods.numeraire]
    prices = run.prices
    out: dict[str, Any] = {
        "initial_price": None,
        "final_price": None,
        "wealth_weighted_belief": None,
        "true_probabilities": None,
        "distance_initial": None,
        "distance_final": None,
        "closer_than_initial": None,
        "price_sum": None,
        "distance_reference": None,
        "maker_loss": run.summary.get("maker_loss"),
    }
    ref = run.reference
    if ref is not None and ref.prices is not None:
        out["wealth_weighted_belief"] = {o: float(ref.prices[o]) for o in outcomes}
    truth = ref.extra.get("true_probabilities") if ref is not None else None
    if truth is not None:
        out["true_probabilities"] = dict(truth)
    if prices.empty:
        return out
    first = prices[prices["round"] == prices["round"].min()]
    # a mechanism that does not count rounds (the order book: -1 throughout) records many rows
    # in its first round: the initial price is the earliest
    first = first[first["time"] == first["time"].min()].drop_duplicates("good")
    col = "estimate"
    initial = {str(g): float(v) for g, v in zip(first["good"], first[col], strict=True)}
    final = run.summary.get("final_prices") or {}
    out["initial_price"] = {o: initial[o] for o in outcomes if o in initial}
    out["final_price"] = {o: float(final[o]) for o in outcomes if o in final}
    if len(out["final_price"]) == len(outcomes):
        out["price_sum"] = float(sum(out["final_price"].values()))
        if out["wealth_weighted_belief"] is not None:
            wwb = out["wealth_weighted_belief"]
            out["distance_reference"] = max(abs(out["final_price"][o] - wwb[o]) for o in outcomes)
    if truth is not None and len(out["final_price"]) == len(outcomes):
        d0 = max(abs(out["initial_price"][o] - truth[o]) for o in outcomes)
        d1 = max(abs(out["final_price"][o] - truth[o]) for o in outcomes)
        out.update(distance_initial=d0, distance_final=d1, closer_than_initial=bool(d1 < d0))
    return out


def prediction_market(
    populations: Sequence[Any],
    true_probabilities: ArrayLike,
    *,
    outcomes: Sequence[str] | None = None,
    name: str = "prediction_market",
    b: float = 10.0,
    resolve_at: float | None = None,
    until: float = 100.0,
    mechanism_options: Mapping[str, Mapping[str, Any]] | None = None,
    params: Mapping[str, Any] | None = None,
    description: str = "",
) -> Scenario:
    """A prediction-market scenario: goods = money + one share good per outcome.

    Args:
        populations: the traders (:class:`~mktsim.population.Population` values, usually
            :class:`BeliefTraders`, whose endowments have columns money + one per outcome).
        true_probabilities: ``float[k]`` the event's true outcome probabilities (sum to 1);
            the market maker draws the outcome from them with the run seed.
        outcomes: share-good names (default :func:`outcome_names`).
        name: scenario name.
        b: the LMSR liquidity (money units).
        resolve_at: time the event resolves (default ``until``).
        until: default horizon.
        mechanism_options: extra defaults per mechanism, merged over the LMSR ones.
        params: recorded in summaries (``true_probabilities`` is added).
        description: one line for listings.

    Returns:
        A scenario with ``mechanism="lmsr"``, the wealth-weighted-belief reference
        (:func:`prediction_reference`) and :func:`prediction_metrics`.
    """
    truth = np.asarray(true_probabilities, dtype=float)
    if truth.ndim != 1 or truth.size < 2:
        raise InvalidParameter(
            f"true_probabilities must list at least 2 probabilities; got shape {truth.shape}"
        )
    if not np.isfinite(truth).all() or (truth < 0).any() or abs(truth.sum() - 1) > 1e-9:
        raise InvalidParameter(f"true_probabilities(={truth.tolist()}) must be >= 0 and sum to 1")
    names = list(outcomes) if outcomes is not None else outcome_names(truth.size)
    if len(names) != truth.size:
        raise InvalidParameter(
            f"outcomes has {len(names)} names for {truth.size} true probabilities"
        )
    for p in populations:
        if p.endowment.shape[1] != 1 + len(names):
            raise InvalidParameter(
                f"population {p.name!r} has {p.endowment.shape[1]} endowment columns; a "
                f"prediction market over {len(names)} outcomes needs {1 + len(names)} "
                "(money, then shares per outcome)"
            )
    held = sum(np.asarray(p.endowment, dtype=float).sum(axis=0) for p in populations)
    empty = [o for o, h in zip(names, np.atleast_1d(held)[1:], strict=True) if h <= 0]
    if empty:
        raise InvalidParameter(
            f"no trader holds shares of {', '.join(empty)}: every good of a scenario needs a "
            "positive supply, so endow traders with complete sets (BeliefTraders.of(..., "
            "complete_sets=1.0)); the market maker collateralises them"
        )
    lmsr: dict[str, Any] = {"b": b, "true_probabilities": truth.tolist()}
    lmsr["resolve_at"] = until if resolve_at is None else resolve_at
    options: dict[str, dict[str, Any]] = {"lmsr": lmsr}
    for mech, opts in (mechanism_options or {}).items():
        options[mech] = {**options.get(mech, {}), **dict(opts)}
    return Scenario(
        name=name,
        goods=Goods.of(["money", *names]),
        populations=list(populations),
        mechanism="lmsr",
        mechanism_options=options,
        until=until,
        params={**dict(params or {}), "true_probabilities": truth.tolist()},
        description=description,
        reference=partial(prediction_reference, true_probabilities=truth.tolist()),
        metrics=prediction_metrics,
    )


def posterior(prior: Array, signals: NDArray[np.intp], accuracy: float) -> Array:
    """Bayesian posteriors ``float64[n, k]`` after one private signal each.

    A signal names the true outcome with probability ``accuracy`` and each other outcome with
    probability (1 − accuracy)/(k − 1). A prior that rules out a certain signal is replaced by
    the signal.
    """
    n, k = prior.shape
    like = np.full((n, k), (1.0 - accuracy) / (k - 1))
    like[np.arange(n), signals] = accuracy
    post = prior * like
    total = post.sum(axis=1, keepdims=True)
    certain = np.zeros((n, k))
    certain[np.arange(n), signals] = 1.0
    return np.where(total > 0, post / np.where(total > 0, total, 1.0), certain)
