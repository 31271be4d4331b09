"""The Walrasian auctioneer: post prices, collect demands, move prices along excess demand.

Two modes:

* ``tatonnement``: nobody trades until the largest relative excess demand is below ``tol``; then
  the allocation demanded at those prices is settled through the ledger and the market closes.
* ``non_tatonnement``: every round agents trade at the posted prices; where a good's demand and
  supply differ, its long side is rationed proportionally (each agent trades a uniform fraction of
  its desired trade, so trade is voluntary), holdings change, and prices keep adjusting.

Each population's behaviour is a SimPy process: it waits for a posting, takes its response delay,
computes its demand at the posted prices from its current holdings, and reports. The auctioneer
waits for every report, records the round, and steps prices with a step rule (see
:mod:`mktsim.steps`). Rounds are ``interval`` apart in simulation time.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any, ClassVar

import numpy as np
import simpy
from attrs import frozen
from mktsim.mechanisms._rationing import uniform_fractions
from numpy.typing import NDArray

from mktsim.errors import InvalidParameter, UnknownName
from mktsim.mechanism import (
    MarketContext,
    Option,
    PopulationSlot,
    in_range,
    nonnegative_float,
    positive_float,
)
from mktsim.registry import unknown_behaviour
from mktsim.settlement import settle
from mktsim.steps import make_rule, rule_names

__all__ = ["DemandReport", "Posting", "WalrasianAuctioneer"]

Array = NDArray[np.float64]


@frozen
class Posting:
    """Prices posted (``round`` numbers postings, settlements included). ``settle`` asks for
    per-agent demands (a trading round)."""

    round: int
    prices: Array
    settle: bool


@frozen
class DemandReport:
    """A population's answer to a posting: its aggregate excess demand ``float64[g]`` in units,
    and per-agent excess demands ``float64[n, g]`` when the posting settles."""

    population: str
    round: int
    excess: Array
    per_agent: Array | None = None


@frozen
class AuctioneerQuote:
    """What the auctioneer shows: the round and the prices posted in it (numeraire = 1)."""

    round: int
    prices: dict[str, float]


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
    behaviours: ClassVar[Mapping[str, str]] = {
        "truthful": "report the utility-maximising demand at the posted prices",
        "manipulator": (
            "adversary: while prices are discovered, report demand for behaviour_options['good'] "
            "multiplied by behaviour_options['factor'] to move its price; trade truthfully at "
            "the prices it distorted"
        ),
    }
    supported_shocks: ClassVar[tuple[str, ...]] = ("latency", "outage", "clamp")
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
            "non-tatonnement rationing passes per round",
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
        self.rationing_passes = 0
        self._prices: Array | None = None

    # ---- public interface ------------------------------------------------------------------
    def attach(self, ctx: MarketContext) -> None:
        self.ctx = ctx
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
        self._prices = p
        self._postings: dict[int, simpy.Event] = {}
        self._seq = 0  # postings so far (price rounds and settlements)
        self._latency: list[tuple[float, float, float]] = []
        self._outages: list[tuple[float, float, float]] = []
        self._clamps: dict[int, tuple[float, float]] = {}
        self._reports: dict[str, DemandReport] = {}
        self._all_in: simpy.Event = env.event()
        for slot in ctx.slots:
            if not hasattr(slot.population, "demand"):
                raise InvalidParameter(
                    f"population {slot.name!r} ({slot.population.kind}) has no demand at posted "
                    "prices, so the walrasian auctioneer cannot clear it"
                )
            behaviour = slot.population.behaviour or "truthful"
            if behaviour not in self.behaviours:
                raise unknown_behaviour(slot.name, "walrasian", behaviour, list(self.behaviours))
            env.process(self._truthful(slot, self._bias(slot, behaviour)))
        env.process(self._auctioneer())

    def quote(self) -> AuctioneerQuote:
        assert self._prices is not None
        p = self._prices / self._prices[self.ctx.goods.numeraire_index]
        return AuctioneerQuote(self.rounds, self.ctx.goods.as_dict(p))

    def posting(self, round: int) -> simpy.Event:
        """The event of posting number ``round`` (its value is a :class:`Posting`).

        Postings are numbered from 0; a behaviour that has answered posting k waits for k + 1,
        so it cannot miss a posting made while it was still busy.
        """
        if round not in self._postings:
            self._postings[round] = self.ctx.env.event()
        return self._postings[round]

    def submit(self, report: DemandReport, slot: PopulationSlot) -> simpy.Event:
        """Hand in a population's report for the current round; returns a fired event."""
        if report.population != slot.name:
            raise InvalidParameter(
                f"population {slot.name!r} cannot report for {report.population!r}"
            )
        if not np.isfinite(report.excess).all():
            raise InvalidParameter(f"population {slot.name!r} reported non-finite demand")
        self._reports[slot.name] = report
        if len(self._reports) == len(self.ctx.slots) and not self._all_in.triggered:
            self._all_in.succeed(dict(self._reports))
        return self.ctx.env.timeout(0, value=True)

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
        }

    # ---- processes ---------------------------------------------------------------------------
    def _bias(self, slot: PopulationSlot, behaviour: str) -> Array | None:
        """Per-good multipliers of reported demand (None when truthful)."""
        if behaviour == "truthful":
            return None
        opts = dict(slot.population.behaviour_options)
        unknown = set(opts) - {"good", "factor"}
        if unknown or "good" not in opts:
            raise InvalidParameter(
                f"manipulator {slot.name!r} needs behaviour_options good=... and factor=...; "
                f"got {sorted(opts)}"
            )
        factor = float(opts.get("factor", 2.0))
        if not np.isfinite(factor) or factor < 0:
            raise InvalidParameter(f"factor(={factor}) of manipulator {slot.name!r} must be >= 0")
        bias = np.ones(len(self.ctx.goods))
        bias[self.ctx.goods.index(str(opts["good"]))] = factor
        return bias

    def _truthful(
        self, slot: PopulationSlot, bias: Array | None = None
    ) -> Generator[simpy.Event, Any, None]:
        """A population reporting its demand at each posting: truthfully, or (with ``bias``)
        misreporting it during price discovery while settling truthfully."""
        env, ledger = self.ctx.env, self.ctx.ledger
        cached_version, x, x_total = -1, np.empty(0), np.empty(0)
        next_round = 0
        while True:
            posting: Posting = yield self.posting(next_round)
            next_round = posting.round + 1
            pop: Any = self.ctx.population(slot)  # as it is now: preferences may be shocked
            delay = pop.delay + self._extra_delay()
            if delay:
                yield env.timeout(delay)
            if ledger.version != cached_version:  # holdings change only at settlements
                x = ledger.units(slot.rows)
                x_total = x.sum(axis=0)
                cached_version = ledger.version
            p = posting.prices
            if posting.settle:
                per_agent = pop.demand(p, x) - x
                report = DemandReport(slot.name, posting.round, per_agent.sum(axis=0), per_agent)
            else:
                demand = pop.aggregate_demand(p, x)
                if bias is not None:  # the misreport moves prices; settlement stays truthful
                    # ... and stays within the budget (Walras' law), the difference in money
                    num = self.ctx.goods.numeraire_index
                    biased = bias * demand
                    biased[num] += (p @ demand - p @ biased) / p[num]
                    demand = biased
                report = DemandReport(slot.name, posting.round, demand - x_total)
            yield self.submit(report, slot)

    def _post(self, prices: Array, settle: bool) -> simpy.Event:
        self._reports = {}
        self._all_in = self.ctx.env.event()
        seq = self._seq
        self._seq += 1
        self.posting(seq).succeed(Posting(seq, prices.copy(), settle))
        self._postings.pop(seq - 1, None)  # answered by everyone already
        return self._all_in

    def _auctioneer(self) -> Generator[simpy.Event, Any, None]:
        ctx, opts = self.ctx, self.opts
        env, goods = ctx.env, ctx.goods
        num = goods.numeraire_index
        trading = opts["mode"] == "non_tatonnement"
        mask = np.ones(len(goods))
        if opts["normalize"] == "numeraire":
            mask[num] = 0.0
        state: dict[str, Any] = {}
        assert self._prices is not None
        p = self._prices
        settled_at = -1  # ledger version right after the last settlement
        while True:
            outage = self._window(self._outages)
            if outage is not None:
                yield env.timeout(outage - env.now)
            clamped = self._apply_clamps(p)
            ctx.ledger.round = self.rounds
            started = env.now
            reports: dict[str, DemandReport] = yield self._post(p, settle=trading)
            z = np.sum([r.excess for r in reports.values()], axis=0)
            supply = ctx.ledger.totals().astype(float)
            supply = supply / 1e9
            # a good nobody holds yet (a firm's output; rounding crumbs after settlement) is
            # measured in units, not relative to a vanishing stock
            supply = np.where(supply > 1e-6, supply, 1.0)
            relative = z / supply
            estimate = np.asarray(state.get("estimate", p))
            self._record(p, estimate, z, relative, reports)
            self.rounds += 1
            # a clamped good cannot clear: convergence is judged on the others, and what its
            # clamp leaves unmatched is rationed at settlement
            free = np.ones(len(goods), dtype=bool)
            free[clamped] = False
            clear = bool(np.max(np.abs(relative[free]), initial=0.0) < opts["tol"])
            if trading:
                yield from self._trade(p, reports)
            if clear and not self.converged:
                self.converged = True
                ctx.log(
                    "converged",
                    f"round {self.rounds - 1}: max relative excess demand "
                    f"{np.max(np.abs(relative[free]), initial=0.0):.3g} < tol {opts['tol']}",
                )
            if clear and not trading and ctx.ledger.version != settled_at:
                if opts["settle_delay"]:
                    yield env.timeout(opts["settle_delay"])
                reports = yield self._post(p, settle=True)
                yield from self._trade(p, reports)
                settled_at = ctx.ledger.version
            if clear and not ctx.shocks_ahead():
                ctx.done.succeed()
                return
            if np.max(np.abs(relative[free]), initial=0.0) > 10 * opts["tol"]:
                self.converged = False  # (hysteresis: settlement rounding is not a new shock)
            gradient = (relative if opts["scale"] == "supply" else z) * mask
            gradient[clamped] = 0.0
            p = np.asarray(self.rule(p, gradient, state), dtype=float)
            if p.shape != z.shape or not np.isfinite(p).all() or (p <= 0).any():
                raise InvalidParameter(
                    f"step rule returned invalid prices {p!r}: they must be finite and > 0"
                )
            self._prices = p
            wait = opts["interval"] - (env.now - started)
            if wait > 0:
                yield env.timeout(wait)

    # ---- shocks ------------------------------------------------------------------------------
    def apply_shock(self, shock: Any) -> str:
        """Latency spikes, outages and price clamps (see :mod:`mktsim.shocks`)."""
        now = self.ctx.env.now
        if shock.kind == "latency":
            self._latency.append((now, now + shock.duration, shock.delay))
            return f"responses take {shock.delay:g} longer until {now + shock.duration:g}"
        if shock.kind == "outage":
            self._outages.append((now, now + shock.duration, 0.0))
            return f"no postings until {now + shock.duration:g}"
        if shock.kind == "clamp":
            end = np.inf if shock.duration is None else now + shock.duration
            self._clamps[self.ctx.goods.index(shock.good)] = (shock.price, end)
            return f"price of {shock.good} held at {shock.price:g} until {end:g}"
        raise InvalidParameter(f"walrasian does not support {shock.kind} shocks")

    def _window(self, windows: list[tuple[float, float, float]]) -> float | None:
        """End of the window containing now, if any."""
        now = self.ctx.env.now
        ends = [end for start, end, _ in windows if start <= now < end]
        return max(ends) if ends else None

    def _extra_delay(self) -> float:
        now = self.ctx.env.now
        return sum(d for start, end, d in self._latency if start <= now < end)

    def _apply_clamps(self, p: Array) -> list[int]:
        """Hold clamped prices (in numeraire) in ``p``; return the clamped goods."""
        now, num = self.ctx.env.now, self.ctx.goods.numeraire_index
        active = [j for j, (_, end) in self._clamps.items() if now < end]
        for j in active:
            p[j] = self._clamps[j][0] * p[num]
        return active

    def _trade(
        self, p: Array, reports: dict[str, DemandReport]
    ) -> Generator[simpy.Event, Any, None]:
        slots = self.ctx.slots
        z = np.vstack([reports[s.name].per_agent for s in slots])  # type: ignore[misc]
        rows = np.concatenate([s.row_ids for s in slots])
        t, passes = uniform_fractions(z, max_sweeps=self.opts["max_rationing_passes"])
        self.rationing_passes += passes
        # firms deliver what they make only after making it: settle in production order
        yield from settle(self.ctx, rows, z * t[:, None], p)

    def _record(
        self,
        p: Array,
        estimate: Array,
        z: Array,
        relative: Array,
        reports: dict[str, DemandReport],
    ) -> None:
        rec, now, rnd = self.ctx.recorder, self.ctx.env.now, self.rounds
        num = self.ctx.goods.numeraire_index
        goods = np.arange(len(p))
        rec.append(
            "prices",
            time=now,
            round=rnd,
            good=goods,
            price=p / p[num],
            estimate=estimate / estimate[num],
        )
        rec.append(
            "excess_demand", time=now, round=rnd, good=goods, excess_demand=z, relative=relative
        )
        for slot in self.ctx.slots:
            rec.append(
                "excess_demand_by_population",
                time=now,
                round=rnd,
                population=slot.index,
                good=goods,
                excess_demand=reports[slot.name].excess,
            )
