"""The Walrasian auctioneer: post prices, collect demands, move prices along excess demand.

Two modes:

* ``tatonnement``: nobody trades until the largest relative excess demand is below ``tol``; then
  the allocation demanded at those prices is settled through the ledger and the market closes.
* ``non_tatonnement``: every round agents trade at the posted prices; where a good's demand and
  supply differ, its long side is rationed proportionally (each agent trades a uniform fraction of
  its desired trade, so trade is voluntary), holdings change, and prices keep adjusting.

Price controls (shocks ``clamp``, ``ceiling`` and ``floor``) bound the posted prices. A good a
control holds (a clamp always; a ceiling when demand exceeds supply at it; a floor when supply
exceeds demand) is left out of the step and of the convergence test, and so is the numeraire,
whose market takes up the value the held goods leave unmatched (Walras' law): the other prices
clear their markets at the agents' notional demands, and at settlement the long side of each held
good is rationed proportionally like every other imbalance. Under tatonnement the auctioneer so
settles at the controlled price with the long side rationed; a control with an end keeps the
market open, and once it lifts the auctioneer clears the free market and settles again.

The auctioneer only clears. Each posting shows in the quote (:class:`AuctioneerQuote`: its
number, the posted prices and whether it settles) and fires :meth:`~WalrasianAuctioneer.updated`;
every population answers it through :meth:`~WalrasianAuctioneer.submit` with one
:class:`~mktsim.orders.DemandReport`, as its strategy decides (:mod:`mktsim.strategies.demand`:
``truthful`` by default, or ``manipulator``). The auctioneer waits for every report, records the
round, and steps prices with a step rule (see :mod:`mktsim.steps`). Rounds are ``interval``
apart in simulation time. A report it cannot use (another run's population, the wrong posting,
non-finite numbers, the wrong shape) is refused with a rejected receipt and changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import simpy
from attrs import frozen
from mktsim.mechanisms._rationing import uniform_fractions
from mktsim.mechanisms._walrasian_log import RoundLog
from numpy.typing import NDArray

from mktsim.errors import InvalidParameter, UnknownName
from mktsim.market import settled
from mktsim.mechanism import MarketContext, Option, in_range, nonnegative_float, positive_float
from mktsim.orders import DemandReport, Quote, Receipt, rejected
from mktsim.settlement import settle
from mktsim.steps import make_rule, rule_names

__all__ = ["AuctioneerQuote", "WalrasianAuctioneer"]

Array = NDArray[np.float64]

#: The receipt of every report taken (a frozen value, so one serves them all).
_ACCEPTED = Receipt("accepted")


@frozen
class AuctioneerQuote(Quote):
    """What the auctioneer shows: its latest posting.

    Attributes:
        time: when it was posted (simulation time).
        prices: posted price of each non-numeraire good, numeraire = 1.
        round: the posting's number (from 0, settlements included; -1 before the first); a
            report answers exactly this posting.
        posted: the price vector as posted, ``float64[g]`` in the goods' order (not normalised:
            with ``normalize="none"`` the numeraire's price moves too).
        settle: True when the posting trades, so reports must carry per-agent demands.
    """

    round: int
    posted: tuple[float, ...]
    settle: bool


_momentum = in_range(0.0, 1.0, high_open=True)


def _method(value: Any) -> Any:
    if callable(value):
        return value
    if value not in rule_names():
        raise UnknownName("method", str(value), rule_names())
    return value


def _optional_prices(value: Any) -> Any:
    return None if value in (None, "", "none") else value


class WalrasianAuctioneer:
    """Walrasian auctioneer; see the module docstring."""

    name: ClassVar[str] = "walrasian"
    description: ClassVar[str] = (
        "Walrasian auctioneer: tatonnement (trade only at clearing prices) or non-tatonnement "
        "(trade every round with proportional rationing); pluggable step rules"
    )
    accepts: ClassVar[frozenset[type]] = frozenset({DemandReport})
    supported_shocks: ClassVar[tuple[str, ...]] = ("latency", "outage", "clamp", "ceiling", "floor")
    options: ClassVar[Mapping[str, Option]] = {
        "mode": Option(
            "tatonnement",
            "tatonnement | non_tatonnement",
            str,
            choices=("tatonnement", "non_tatonnement"),
        ),
        "method": Option(
            "multiplicative", f"step rule: {' | '.join(rule_names())} | a callable", _method
        ),
        "step": Option(
            None,
            "step size h (None: the rule's default)",
            lambda v: None if v in (None, "none") else positive_float(v),
        ),
        "beta": Option(
            None,
            "momentum coefficient in [0, 1) (momentum rule)",
            lambda v: None if v in (None, "none") else _momentum(v),
        ),
        "tol": Option(1e-9, "convergence: max_j |z_j| / supply_j below this", positive_float),
        "interval": Option(1.0, "simulation time between postings", positive_float),
        "normalize": Option(
            "numeraire",
            "numeraire: hold its price at 1 | none: move every price",
            str,
            choices=("numeraire", "none"),
        ),
        "scale": Option(
            "supply",
            "gradient: excess demand / total supply (supply) or raw units (none)",
            str,
            choices=("supply", "none"),
        ),
        "initial_prices": Option(None, "good -> starting price (default all 1)", _optional_prices),
        "max_rationing_passes": Option(
            10_000,
            "non-tatonnement rationing passes per round; a round not cleared within them "
            "trades nothing (an event says so)",
            int,
            check=lambda v: None if v >= 1 else "must be >= 1",
        ),
        "settle_delay": Option(0.0, "time from convergence to settlement", nonnegative_float),
    }

    def __init__(self, **options: Any) -> None:
        from mktsim.mechanism import parse_options

        self.opts = parse_options("walrasian", self.options, options)
        self.rule = make_rule(self.opts["method"], self.opts["step"], beta=self.opts["beta"])
        self.rounds = 0
        self.converged = False
        self._settled = False  # a tatonnement settlement took place
        self._worst = math.nan  # the last round's largest relative excess demand it judged
        self.rationing_passes = 0
        #: Rounds whose rationing did not clear within ``max_rationing_passes`` (no trade).
        self.rounds_unrationed = 0
        self._prices: Array | None = None

    @classmethod
    def refusal(cls, population: Any) -> str | None:
        """Why the auctioneer cannot clear a population (None if it can): it needs a demand at
        posted prices, which induced-value, belief and dealer-market traders do not have."""
        if hasattr(population, "demand") and hasattr(population, "aggregate_demand"):
            return None
        return (
            f"population {population.name!r} ({population.kind}) has no demand at posted "
            "prices, so the walrasian auctioneer cannot clear it"
        )

    @classmethod
    def recorded_rows(
        cls, scenario: Any, horizon: float, opts: Mapping[str, Any]
    ) -> dict[str, int]:
        """Rows the auctioneer records over ``horizon`` at most (one posting per ``interval``),
        for :func:`mktsim.footprint.estimate`: each round a price, an excess demand and one per
        population for every good; trades for every agent and good each round under
        ``non_tatonnement``, once at convergence otherwise."""
        rounds = math.floor(horizon / opts["interval"]) + 1
        n, g = int(scenario.n_agents), len(scenario.goods)
        settled = rounds if opts["mode"] == "non_tatonnement" else 1
        return {
            "prices": rounds * g,
            "excess_demand": rounds * g,
            "excess_demand_by_population": rounds * g * len(scenario.populations),
            "trades": settled * n * (g - 1),
        }

    # ---- public interface ------------------------------------------------------------------
    def attach(self, ctx: MarketContext) -> None:
        self.ctx = ctx
        ctx.check_step("interval", self.opts["interval"], "postings")
        env = ctx.env
        g = len(ctx.goods)
        p = np.ones(g)
        if self.opts["initial_prices"] is not None:
            init = self.opts["initial_prices"]
            if not isinstance(init, Mapping):
                raise InvalidParameter(f"initial_prices(={init!r}) must map good names to prices")
            for name, value in init.items():
                v = float(value)
                if not np.isfinite(v) or v <= 0:
                    raise InvalidParameter(
                        f"initial_prices[{name}](={value}) must be > 0 and finite"
                    )
                p[ctx.goods.index(name)] = v
        for slot in ctx.slots:
            reason = self.refusal(slot.population)
            if reason:
                raise InvalidParameter(reason)
        self._prices = p
        self._sizes = {slot.name: slot.population.size for slot in ctx.slots}
        # fixed for the run, read every round: computed once (``Goods`` derives them on demand)
        self._num = ctx.goods.numeraire_index
        self._shown = [(j, name) for j, name in enumerate(ctx.goods.names) if j != self._num]
        self._log = RoundLog(ctx.recorder, g, [slot.index for slot in ctx.slots])
        self._quote = self._make_quote(-1, p, settle=False)
        self._next: simpy.Event = env.event()
        self._open = False  # a posting is waiting for reports
        self._answered: set[str] = set()  # populations that answered it (some may be in flight)
        self._latency: list[tuple[float, float, float]] = []
        self._outages: list[tuple[float, float, float]] = []
        self._controls: dict[int, tuple[float, float, float]] = {}  # good -> low, high, end
        self._lifted = False
        self._reports: dict[str, DemandReport] = {}
        self._all_in: simpy.Event = env.event()
        env.process(self._auctioneer())

    def quote(self) -> AuctioneerQuote:
        """The latest posting (round -1, the starting prices, before the first)."""
        return self._quote

    def updated(self) -> simpy.Event:
        """The event of the next posting; its value is that posting's quote.

        The auctioneer posts again only when every population has answered the current
        posting, so a strategy that compares ``quote().round`` with the last posting it answered
        before waiting here never misses one.
        """
        return self._next

    def submit(self, report: Any) -> simpy.Event:
        """Hand in a population's report for the open posting.

        Returns an event whose value is the :class:`~mktsim.orders.Receipt`: ``accepted``, or
        ``rejected`` (nothing changes) for anything but a well-formed report answering the open
        posting once. During a latency spike the report counts, and the event fires, the
        spike's delay later.
        """
        env = self.ctx.env
        clean, reason = self._admit(report)
        if clean is None:
            self.ctx.log("refused", reason)
            return settled(env, rejected(reason))
        self._answered.add(clean.population)
        # a latency spike delays responses to the postings made while it lasts
        delay = self._extra_delay(self._quote.time) if self._latency else 0.0
        if not delay:
            self._collect(clean)
            return settled(env, _ACCEPTED)
        arrival = env.timeout(delay, value=_ACCEPTED)
        arrival.callbacks.append(lambda _: self._collect(clean))
        return arrival

    def _admit(self, report: Any) -> tuple[DemandReport | None, str]:
        """The report as the auctioneer keeps it, with its own float copies of the arrays, or
        None and why it cannot be used. The copy is made once and checked (a round's report is
        read again after the strategy may have reused its arrays)."""
        reason = self._check(report)
        if reason:
            return None, reason
        name, k = report.population, self._quote.round
        g = len(self._quote.posted)
        excess = _finite_copy(report.excess, (g,))
        if excess is None:
            return None, _bad_array("excess", report.excess, (g,))
        if report.per_agent is None:
            if self._quote.settle:
                return None, f"posting {k} settles: the report needs per_agent demands"
            return DemandReport(name, report.round, excess), ""
        shape = (self._sizes[name], g)
        per_agent = _finite_copy(report.per_agent, shape)
        if per_agent is None:
            return None, _bad_array("per_agent", report.per_agent, shape)
        return DemandReport(name, report.round, excess, per_agent), ""

    def _check(self, report: Any) -> str:
        """Why a report cannot answer the open posting ("" if it can; :meth:`_admit` checks its
        arrays)."""
        if not isinstance(report, DemandReport):
            return f"walrasian takes demand reports, not {type(report).__name__}"
        name = report.population
        if name not in self._sizes:
            return f"population {name!r} is not in this run"
        k = self._quote.round
        if not self._open:
            return f"no posting is open (the last, {k}, has every report)"
        if report.round != k:
            return f"report answers posting {report.round!r}, but the open posting is {k}"
        if name in self._answered:
            return f"population {name!r} has answered posting {k} already"
        return ""

    def _collect(self, report: DemandReport) -> None:
        self._reports[report.population] = report
        if len(self._reports) == len(self._sizes):
            self._open = False
            self._all_in.succeed(dict(self._reports))

    def summary(self) -> dict[str, Any]:
        method = self.opts["method"]
        return {
            "mode": self.opts["mode"],
            "method": method
            if isinstance(method, str)
            else getattr(method, "__name__", "callable"),
            "rounds": self.rounds,
            "converged": self.converged,
            "tolerance": self.opts["tol"],
            "rationing_passes": self.rationing_passes,
            "rounds_unrationed": self.rounds_unrationed,
            "no_trade": self._no_trade(),
        }

    def _no_trade(self) -> str | None:
        """Why a tatonnement run traded nothing (None if it settled, or trades every round)."""
        if self.opts["mode"] != "tatonnement" or self._settled:
            return None
        if self.rounds == 0:
            return (
                "tatonnement trades only at clearing prices, and no posting was answered by "
                "every population (one that never reports, e.g. 'idle', holds every round)"
            )
        return (
            "tatonnement trades only at clearing prices, and the largest relative excess "
            f"demand ({self._worst:.3g}) was still above tol ({self.opts['tol']:g}) when the "
            f"run ended after {self.rounds} rounds"
        )

    # ---- processes ---------------------------------------------------------------------------
    def _make_quote(self, number: int, prices: Array, settle: bool) -> AuctioneerQuote:
        relative = (prices / prices[self._num]).tolist()
        shown = {name: relative[j] for j, name in self._shown}
        return AuctioneerQuote(
            self.ctx.env.now, MappingProxyType(shown), number, tuple(prices.tolist()), settle
        )

    def _post(self, prices: Array, settle: bool) -> simpy.Event:
        """Post ``prices``; returns the event of every report having arrived."""
        self._reports = {}
        self._answered = set()
        self._all_in = self.ctx.env.event()
        self._open = True
        self._quote = self._make_quote(self._quote.round + 1, prices, settle)
        posted, self._next = self._next, self.ctx.env.event()
        posted.succeed(self._quote)
        return self._all_in

    def _auctioneer(self) -> Generator[simpy.Event, Any, None]:
        """One round per posting: collect, log, test convergence, settle, step.

        A round is cheap next to the demand it collects only if its own bookkeeping is: facts
        fixed for the run are read once, the total supply is recomputed only when the ledger
        changed, the maximum relative excess demand is computed once, and controls, outages and
        latency spikes cost nothing while there are none.
        """
        ctx, opts = self.ctx, self.opts
        env, ledger = ctx.env, ctx.ledger
        num, tol = self._num, opts["tol"]
        trading = opts["mode"] == "non_tatonnement"
        by_supply = opts["scale"] == "supply"
        mask = np.ones(len(ctx.goods))
        if opts["normalize"] == "numeraire":
            mask[num] = 0.0
        state: dict[str, Any] = {}
        assert self._prices is not None
        p = self._prices
        settled_at = -1  # ledger version right after the last settlement
        # the populations as they were then: a preference shock moves no holding but makes the
        # settled allocation inefficient, so it must be settled again too
        settled_economy: tuple[Any, ...] = ()
        supply, supply_version = np.ones(len(p)), -1  # supply at that ledger version (-1: none)
        while True:
            outage = self._window(self._outages) if self._outages else None
            if outage is not None:
                yield env.timeout(outage - env.now)
            controlled = self._apply_controls(p) if self._controls else {}
            if self._lifted:  # a control ended: the economy may settle again at free prices
                self._lifted, settled_at, self.converged = False, -1, False
            ledger.round = self.rounds
            started = env.now
            reports: dict[str, DemandReport] = yield self._post(p, settle=trading)
            z = _total(reports)
            if ledger.version != supply_version:  # totals change only with the ledger
                supply, supply_version = self._supply(), ledger.version
            relative = z / supply
            shown = p / p[num]  # in numeraire
            estimate = state.get("estimate")  # a rule's own estimate, else the posted prices
            if estimate is not None:
                estimate = np.asarray(estimate)
                estimate = estimate / estimate[num]
            excess = [reports[name].excess for name in self._sizes]  # in slot order
            self._log.add(
                env.now,
                self.rounds,
                shown,
                shown if estimate is None else estimate,
                z,
                relative,
                excess,
            )
            self.rounds += 1
            # a good held at a control's edge cannot clear: convergence is judged on the
            # others, and what the control leaves unmatched is rationed at settlement
            clamped = _held(shown, z, controlled) if controlled else []
            if clamped:  # the numeraire's market takes up the rest (Walras' law)
                free = np.ones(len(p), dtype=bool)
                free[clamped] = False
                free[num] = False
                worst = float(np.max(np.abs(relative[free]), initial=0.0))
            else:
                worst = float(np.abs(relative).max())
            clear = worst < tol
            self._worst = worst
            if trading:
                yield from self._trade(p, reports)
            if clear and not self.converged:
                self.converged = True
                ctx.log(
                    "converged",
                    f"round {self.rounds - 1}: max relative excess demand {worst:.3g} < tol {tol}",
                )
            if clear and not trading:
                economy = tuple(ctx.current.values())
                unchanged = len(economy) == len(settled_economy) and all(
                    a is b for a, b in zip(economy, settled_economy, strict=True)
                )
                if ledger.version != settled_at or not unchanged:
                    if opts["settle_delay"]:
                        yield env.timeout(opts["settle_delay"])
                    reports = yield self._post(p, settle=True)
                    yield from self._trade(p, reports)
                    self._settled = True
                    settled_at, settled_economy = ledger.version, economy
            if clear and not ctx.shocks_ahead() and not self._ending():
                ctx.done.succeed()
                return
            if worst > 10 * tol:
                self.converged = False  # (hysteresis: settlement rounding is not a new shock)
            gradient = (relative if by_supply else z) * mask
            if clamped:
                gradient[clamped] = 0.0
                gradient[num] = 0.0
            p = np.asarray(self.rule(p, gradient, state), dtype=float)
            if p.shape != z.shape or not _positive_and_finite(p):
                raise InvalidParameter(
                    f"step rule returned invalid prices {p!r}: they must be finite and > 0"
                )
            wait = opts["interval"] - (env.now - started)
            if wait > 0:
                yield env.timeout(wait)

    def _supply(self) -> Array:
        """Total holdings of each good in units, the scale of its excess demand. A good nobody
        holds yet (a firm's output; rounding crumbs after settlement: at most a thousand base
        units) is measured in units, not relative to a vanishing stock."""
        held = self.ctx.ledger.totals().astype(float)
        return np.where(held > 1e3, held / self.ctx.goods.base_units, 1.0)

    # ---- shocks ------------------------------------------------------------------------------
    def apply_shock(self, shock: Any) -> str:
        """Latency spikes (responses to postings made during the spike arrive ``delay`` later),
        outages and price clamps (see :mod:`mktsim.shocks`)."""
        now = self.ctx.env.now
        if shock.kind == "latency":
            self._latency.append((now, now + shock.duration, shock.delay))
            return f"responses take {shock.delay:g} longer until {now + shock.duration:g}"
        if shock.kind == "outage":
            self._outages.append((now, now + shock.duration, 0.0))
            return f"no postings until {now + shock.duration:g}"
        if shock.kind in ("clamp", "ceiling", "floor"):
            end = np.inf if shock.duration is None else now + shock.duration
            price = float(shock.price)
            low, high = shock.bounds()
            self._controls[self.ctx.goods.index(shock.good)] = (low, high, end)
            held = {"clamp": "held at", "ceiling": "held at most at", "floor": "held at least at"}
            return f"price of {shock.good} {held[shock.kind]} {price:g} until {end:g}"
        raise InvalidParameter(f"walrasian does not support {shock.kind} shocks")

    def _window(self, windows: list[tuple[float, float, float]]) -> float | None:
        """End of the window containing now, if any."""
        now = self.ctx.env.now
        ends = [end for start, end, _ in windows if start <= now < end]
        return max(ends) if ends else None

    def _extra_delay(self, at: float) -> float:
        """Latency added to responses to a posting made at ``at``."""
        return sum(d for start, end, d in self._latency if start <= at < end)

    def _ending(self) -> bool:
        """Whether a control in force has an end still to come (the market stays open for it)."""
        now = self.ctx.env.now
        return any(now < end < np.inf for _, _, end in self._controls.values())

    def _apply_controls(self, p: Array) -> dict[int, tuple[float, float]]:
        """Move controlled prices in ``p`` into their bounds (in numeraire); return the
        controls in force, good -> (low, high)."""
        now, num = self.ctx.env.now, self.ctx.goods.numeraire_index
        active = {j: (lo, hi) for j, (lo, hi, end) in self._controls.items() if now < end}
        if len(active) < len(self._controls):
            self._controls = {j: c for j, c in self._controls.items() if j in active}
            self._lifted = True
        for j, (lo, hi) in active.items():
            p[j] = min(max(p[j], lo * p[num]), hi * p[num])
        return active

    def _trade(
        self, p: Array, reports: dict[str, DemandReport]
    ) -> Generator[simpy.Event, Any, None]:
        slots = self.ctx.slots
        z = np.vstack([reports[s.name].per_agent for s in slots])  # type: ignore[misc]
        rows = np.concatenate([s.row_ids for s in slots])
        cap = self.opts["max_rationing_passes"]
        atol = 1.0 / self.ctx.goods.base_units  # one base unit of the ledger
        t, passes, cleared = uniform_fractions(z, atol=atol, max_sweeps=cap)
        self.rationing_passes += passes
        if not cleared:  # the fractions leave goods unbalanced: nothing is settled
            self.rounds_unrationed += 1
            self.ctx.log(
                "rationing",
                f"round {self.rounds}: rationing did not clear every good within "
                f"max_rationing_passes={cap}; no trade this round",
            )
            return
        # firms deliver what they make only after making it: settle in production order
        yield from settle(self.ctx, rows, z * t[:, None], p)


def _held(relative: Array, z: Array, controls: Mapping[int, tuple[float, float]]) -> list[int]:
    """Goods a control holds now: a clamp always; a ceiling where the price is at it and
    demand exceeds supply; a floor where the price is at it and supply exceeds demand.

    Args:
        relative: posted prices in numeraire, ``float64[g]``.
        z: excess demand there, ``float64[g]``.
        controls: good -> (low, high) in numeraire.
    """
    out = []
    for j, (lo, hi) in controls.items():
        at_top = relative[j] >= hi * (1 - 1e-12)
        at_bottom = relative[j] <= lo * (1 + 1e-12)
        if (at_top and at_bottom) or (at_top and z[j] > 0) or (at_bottom and z[j] < 0):
            out.append(j)
    return sorted(out)


def _total(reports: Mapping[str, DemandReport]) -> Array:
    """The sum of the reports' excess demands in arrival order, added as ``np.sum`` over them
    adds (one report: a copy of its own)."""
    excess = [r.excess for r in reports.values()]
    return excess[0].copy() if len(excess) == 1 else np.sum(excess, axis=0)


def _positive_and_finite(p: Array) -> bool:
    """Whether every price is > 0 and finite (a NaN is neither); over a few goods a loop over
    Python floats is quicker than numpy's reductions."""
    return all(0.0 < v < math.inf for v in p.tolist())


def _finite_copy(value: Any, shape: tuple[int, ...]) -> Array | None:
    """A float copy of ``value`` if it is a finite array of ``shape``, else None."""
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if array.shape != shape or not np.isfinite(array).all():
        return None
    return array


def _bad_array(name: str, value: Any, shape: tuple[int, ...]) -> str:
    """Why ``value`` is not a finite float array of ``shape`` ("" if it is)."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return f"{name} must be numbers"
    if array.shape != shape:
        return f"{name} has shape {array.shape}, expected {shape}"
    if not np.isfinite(array).all():
        return f"{name} has non-finite entries"
    return ""
