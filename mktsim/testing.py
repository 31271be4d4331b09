"""A conformance checker any mechanism (ours or a third party's) can run in its own tests.

``check_mechanism("walrasian")`` exercises each call of the mechanism contract, in the manner of
Gymnasium's environment checker, and raises :class:`ConformanceError` naming the call that broke
it:

* declarations: ``name``, ``description``, ``options`` of :class:`~mktsim.mechanism.Option`,
  an unknown option refused with :class:`~mktsim.errors.UnknownName`;
* the market protocol (:mod:`mktsim.market`): ``accepts`` is a non-empty frozenset of order
  classes; ``quote()`` returns a frozen :class:`~mktsim.orders.Quote`; ``updated()`` and
  ``submit(order)`` return SimPy events, the latter's value a :class:`~mktsim.orders.Receipt`;
  hostile orders (an agent or population not in the run, a good it does not trade, the wrong
  round, non-finite numbers, the wrong shape, an order type it does not accept, a cancel of an
  order that does not exist) come back as rejected receipts and change no holding and no quote,
  there and then, and over the whole run (its frames equal those of a run without them);
* a run: every documented frame and summary key, exact conservation, no negative holding,
  balanced trades; the same seed gives identical frames and summary;
* every market shock applies in a run that still conserves every good: those the mechanism
  applies itself (``supported_shocks``) and those the shared wrappers of :mod:`mktsim.wrappers`
  apply around its ``submit`` (latency, outage, circuit breaker, and price bands where it takes
  priced orders).

A mechanism that does not declare ``accepts`` fails the check at once: every population is driven
by a strategy through the protocol, so a mechanism that takes no order could never trade.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

import attrs
import numpy as np
import pandas as pd
import simpy

from mktsim import wrappers
from mktsim.errors import UnknownName
from mktsim.goods import to_base
from mktsim.ledger import Ledger
from mktsim.mechanism import MarketContext, Option, PopulationSlot
from mktsim.orders import (
    BUY,
    Cancel,
    DemandReport,
    Limit,
    MarketOrder,
    Modify,
    Quote,
    Receipt,
    Swap,
)
from mktsim.pairing import assign_strategies, start_strategies
from mktsim.random import Streams
from mktsim.recorder import SCHEMAS, Recorder
from mktsim.registry import resolve
from mktsim.run import FRAMES, Run, simulate
from mktsim.scenario import Scenario
from mktsim.shocks import (
    SHOCKS,
    CircuitBreaker,
    LatencySpike,
    LiquidityWithdrawal,
    Outage,
    PriceCeiling,
    PriceClamp,
    PriceFloor,
)

__all__ = [
    "SUMMARY_KEYS",
    "ConformanceError",
    "check_mechanism",
    "small_economy",
    "standalone",
]

SUMMARY_KEYS = (
    "scenario",
    "mechanism",
    "method",
    "seed",
    "rounds",
    "sim_time",
    "wall_seconds",
    "converged",
    "final_prices",
    "equilibrium_prices",
    "price_error",
    "excess_demand_norm",
    "time_to_tolerance",
    "conservation_ok",
    "cycle_detected",
)

#: Frames that refused orders must leave exactly as they are (events may log the refusals).
UNCHANGED_BY_REFUSALS = tuple(name for name in FRAMES if name != "events")

_NO_ORDER = -424_242  # an order id no mechanism hands out


class ConformanceError(AssertionError):
    """A mechanism broke its contract; the message names the call and what was expected."""


def small_economy(n_agents: int = 20, n_goods: int = 3, seed: int = 0) -> Scenario:
    """A small Cobb-Douglas exchange economy for checks."""
    from mktsim.scenarios import cobb_douglas

    return cobb_douglas.build(n_agents=n_agents, n_goods=n_goods, seed=seed)


def check_mechanism(
    mechanism: Any,
    scenario: Scenario | None = None,
    until: float = 30.0,
    seed: int = 7,
    **options: Any,
) -> Run:
    """Check every call of the mechanism contract; returns the first run for further checks.

    Args:
        mechanism: registered name, ``module:Class`` or class.
        scenario: economy to run (default: the mechanism's ``example_scenario()`` if it has
            one, e.g. a prediction market for an LMSR maker, else :func:`small_economy`).
        until: horizon of each run.
        seed: seed of every run.
        **options: mechanism options.

    Raises:
        ConformanceError: naming the call that broke the contract.
    """
    cls = resolve(mechanism)
    _check_declarations(cls)
    if scenario is None:  # a mechanism for a special kind of economy offers its own example
        example = getattr(cls, "example_scenario", None)
        scenario = example() if callable(example) else small_economy()
    call = f"simulate({scenario.name!r}, {cls.__name__}, seed={seed}, until={until:g})"
    if not hasattr(cls, "accepts"):
        raise ConformanceError(
            f"{cls.__name__} declares no 'accepts': a mechanism names the order classes it takes "
            "(mktsim.orders), since every population acts through them"
        )
    _check_accepts(cls)  # each call first, then whole runs
    broken: list[ConformanceError] = []  # what the probe found, before the run went on
    try:
        probed = _run(
            f"{call} with hostile orders",
            scenario,
            _probed(cls, until, broken),
            seed,
            until,
            options,
        )
    except ConformanceError:
        if broken:
            raise broken[0] from None
        raise
    if broken:
        raise broken[0]
    _check_run(f"{call} with hostile orders", probed)
    first = _run(call, scenario, cls, seed, until, options)
    _check_run(call, first)
    second = _run(call, scenario, cls, seed, until, options)
    _check_same(f"{call} twice", first, second, first.tables, summaries=True)
    _check_same(
        f"{call} with hostile orders (refused) against {call}",
        first,
        probed,
        UNCHANGED_BY_REFUSALS,
        summaries=False,
    )
    own = tuple(getattr(cls, "supported_shocks", ()))
    for kind in (*own, *sorted(wrappers.provided(cls) - set(own))):
        _check_shock(cls, kind, scenario, seed, until, options)
    return first


# ---- declarations and runs -------------------------------------------------------------------
def _fail(message: str) -> ConformanceError:
    return ConformanceError(message)


def _check_declarations(cls: Any) -> None:
    owner = getattr(cls, "__name__", repr(cls))
    for attr in ("name", "description", "options"):
        if not hasattr(cls, attr):
            raise _fail(f"{owner} lacks class attribute {attr!r}")
    if not (isinstance(cls.name, str) and cls.name):
        raise _fail(f"{owner}.name must be a non-empty string, got {cls.name!r}")
    if not isinstance(cls.options, Mapping):
        raise _fail(f"{owner}.options must be a mapping of option name -> Option")
    for key, opt in cls.options.items():
        if not isinstance(opt, Option):
            raise _fail(f"{owner}.options[{key!r}] is a {type(opt).__name__}, not an Option")
    if not (getattr(cls, "behaviours", None) or getattr(cls, "accepts", None)):
        raise _fail(f"{owner} must accept some orders (accepts) or offer behaviours")
    try:
        cls(__no_such_option__=1)
    except UnknownName:
        pass
    except Exception as exc:
        raise _fail(
            f"{owner}(__no_such_option__=1) raised {type(exc).__name__}: an unknown option must "
            "raise UnknownName"
        ) from exc
    else:
        raise _fail(
            f"{owner}(__no_such_option__=1) succeeded: an unknown option must raise UnknownName"
        )


def _run(
    call: str, scenario: Scenario, cls: Any, seed: int, until: float, options: Any, **kw: Any
) -> Run:
    try:
        return simulate(scenario, cls, seed=seed, until=until, **kw, **options)
    except ConformanceError:
        raise
    except Exception as exc:
        raise _fail(f"{call} raised {type(exc).__name__}: {exc}") from exc


def _check_run(call: str, run: Run) -> None:
    for key in SUMMARY_KEYS:
        if key not in run.summary:
            raise _fail(f"{call}: the summary lacks {key!r}")
    if not run.summary["conservation_ok"]:
        raise _fail(f"{call}: the ledger did not conserve goods")
    for name in FRAMES:
        frame = run.frame(name)
        if list(frame.columns) != list(SCHEMAS[name]):
            raise _fail(f"{call}: frame {name!r} has columns {list(frame.columns)}")
    holdings = run.holdings
    if not (holdings["quantity"] >= 0).all():
        raise _fail(f"{call}: a holding went negative")
    trades = run.trades
    if len(trades):
        per_trade = trades.groupby(["trade_id", "good"], observed=True)["quantity"].sum()
        if not np.allclose(per_trade.to_numpy(), 0.0, atol=1e-6):
            raise _fail(f"{call}: a settlement was unbalanced (trades do not sum to zero)")
    try:
        run.mechanism.quote()
    except Exception as exc:
        raise _fail(f"{call}: quote() after the run raised {type(exc).__name__}: {exc}") from exc


def _check_same(call: str, a: Run, b: Run, tables: Any, *, summaries: bool) -> None:
    for name in tables:
        try:
            pd.testing.assert_frame_equal(a.frame(name), b.frame(name), check_exact=True)
        except AssertionError as exc:
            raise _fail(f"{call}: frame {name!r} differs: {exc}") from None
    if summaries:
        volatile = {"wall_seconds"}
        left = {k: v for k, v in a.summary.items() if k not in volatile}
        right = {k: v for k, v in b.summary.items() if k not in volatile}
        if repr(left) != repr(right):
            raise _fail(f"{call}: the same seed gave different summaries")


def _check_shock(
    cls: Any, kind: str, scenario: Scenario, seed: int, until: float, options: Any
) -> None:
    owner = cls.__name__
    if kind not in SHOCKS:
        raise _fail(f"{owner}.supported_shocks names {kind!r}, which is not a market shock")
    shock = _sample_shock(kind, scenario, until)
    call = f"simulate({scenario.name!r}, {owner}, shocks=[{shock!r}])"
    run = _run(call, scenario, cls, seed, until, options, shocks=[shock])
    _check_run(call, run)
    if not (run.events["kind"] == f"shock:{kind}").any():
        raise _fail(f"{call}: the shock was never applied (no 'shock:{kind}' event)")


def _sample_shock(kind: str, scenario: Scenario, until: float) -> Any:
    t = until / 4
    good = next(g for g in scenario.goods.names if g != scenario.goods.numeraire)
    return {
        "latency": lambda: LatencySpike(time=t, duration=t, delay=until / 10),
        "outage": lambda: Outage(time=t, duration=t / 2),
        "clamp": lambda: PriceClamp(time=t, good=good, price=1.0, duration=t),
        "ceiling": lambda: PriceCeiling(time=t, good=good, price=1.0, duration=t),
        "floor": lambda: PriceFloor(time=t, good=good, price=1.0, duration=t),
        "liquidity": lambda: LiquidityWithdrawal(time=t, fraction=0.5),
        "breaker": lambda: CircuitBreaker(time=t, threshold=0.01, halt=t / 4, duration=t),
    }[kind]()


# ---- the market protocol ---------------------------------------------------------------------
def _check_accepts(cls: Any) -> None:
    accepts = cls.accepts
    if not isinstance(accepts, frozenset) or not accepts:
        raise _fail(
            f"{cls.__name__}.accepts must be a non-empty frozenset of order classes, got "
            f"{accepts!r}"
        )
    for kind in accepts:
        if not (isinstance(kind, type) and attrs.has(kind)):
            raise _fail(
                f"{cls.__name__}.accepts holds {kind!r}, which is not an order class (a frozen "
                "attrs class such as mktsim.orders.Limit)"
            )


def _probed(cls: Any, until: float, broken: list[ConformanceError]) -> Any:
    """``cls`` with a probe started right after ``attach``: it exercises each call of the
    protocol at once (before any strategy has acted) and again a quarter into the run, and
    puts what it finds in ``broken`` (an error raised in a SimPy process would surface only
    after the strategies had run into the same fault)."""

    class Probed(cls):
        def attach(self, ctx: MarketContext) -> None:
            super().attach(ctx)
            ctx.env.process(_probe(self, ctx, cls.__name__, until / 4, broken))

    Probed.__name__ = Probed.__qualname__ = cls.__name__
    return Probed


def _probe(
    market: Any, ctx: MarketContext, owner: str, later: float, broken: list[ConformanceError]
) -> Generator[simpy.Event, Any, None]:
    try:
        yield from _probe_calls(market, ctx, owner)
        yield ctx.env.timeout(later)
        yield from _probe_calls(market, ctx, owner)
    except ConformanceError as exc:
        broken.append(exc)


def _probe_calls(market: Any, ctx: MarketContext, owner: str) -> Generator[simpy.Event, Any, None]:
    quote = _call(owner, "quote()", market.quote)
    _check_quote(owner, quote, ctx)
    event = _call(owner, "updated()", market.updated)
    if not isinstance(event, simpy.Event):
        raise _fail(f"{owner}.updated() returned {type(event).__name__}, not a SimPy event")
    for order, what in _hostile_orders(market, ctx, quote):
        call = f"{owner}.submit({order!r}) ({what})"
        holdings, version = ctx.ledger.holdings.copy(), ctx.ledger.version
        shown = repr(market.quote())
        event = _call(owner, f"submit({order!r})", lambda o=order: market.submit(o))
        if not isinstance(event, simpy.Event):
            raise _fail(f"{call} returned {type(event).__name__}, not a SimPy event")
        if ctx.ledger.version != version or not np.array_equal(ctx.ledger.holdings, holdings):
            raise _fail(f"{call} changed holdings: a refused order must change nothing")
        if repr(market.quote()) != shown:
            raise _fail(f"{call} changed the quote: a refused order must change nothing")
        receipt = event.value if event.triggered else (yield event)
        if not isinstance(receipt, Receipt):
            raise _fail(f"{call}: the event's value is {type(receipt).__name__}, not a Receipt")
        if receipt.status != "rejected" or not receipt.reason:
            raise _fail(
                f"{call} gave {receipt!r}: it must come back as a rejected receipt with a reason"
            )


def _call(owner: str, call: str, fn: Any) -> Any:
    try:
        return fn()
    except Exception as exc:
        raise _fail(
            f"{owner}.{call} raised {type(exc).__name__}: {exc} (refusals are rejected receipts)"
        ) from exc


def _check_quote(owner: str, quote: Any, ctx: MarketContext) -> None:
    if not isinstance(quote, Quote):
        raise _fail(f"{owner}.quote() returned {type(quote).__name__}, not a mktsim.orders.Quote")
    try:
        # the same value: a mutable quote is reported and left as it was
        quote.time = quote.time  # type: ignore[misc]
    except AttributeError:
        pass
    else:
        raise _fail(
            f"{owner}.quote() returned a {type(quote).__name__} whose fields can be assigned: "
            "a quote must be frozen"
        )
    if not isinstance(quote.prices, Mapping):
        raise _fail(f"{owner}.quote().prices is a {type(quote.prices).__name__}, not a mapping")
    unknown = set(quote.prices) - set(ctx.goods.names)
    if unknown:
        raise _fail(f"{owner}.quote().prices names goods not in the run: {sorted(unknown)}")


def _hostile_orders(market: Any, ctx: MarketContext, quote: Any) -> list[tuple[Any, str]]:
    """Orders every mechanism must refuse, for each order type it accepts, and a well-formed
    order of each type it does not accept."""
    goods = ctx.goods
    good = next(g for g in goods.names if g != goods.numeraire)
    g = len(goods)
    nobody = ctx.ledger.n_accounts + 5
    slot = ctx.slots[0]
    k = int(getattr(quote, "round", 0))
    accepts = market.accepts
    out: list[tuple[Any, str]] = []
    if DemandReport in accepts:
        zeros = np.zeros(g)
        out += [
            (DemandReport("__nobody__", k, zeros), "a population not in the run"),
            (DemandReport(slot.name, k + 7, zeros), "the wrong round"),
            (DemandReport(slot.name, k, np.full(g, np.nan)), "non-finite excess demand"),
            (DemandReport(slot.name, k, np.zeros(g + 1)), "excess demand of the wrong shape"),
            (
                DemandReport(slot.name, k, zeros, np.zeros((slot.population.size + 1, g))),
                "per-agent demands of the wrong shape",
            ),
        ]
    for kind, make in (
        (Limit, lambda a, x: Limit(a, x, BUY, 1.0, 1.0)),
        (MarketOrder, lambda a, x: MarketOrder(a, x, BUY, 1.0)),
        (Swap, lambda a, x: Swap(a, x, BUY, 1.0)),
    ):
        if kind in accepts:
            out += [
                (make(nobody, good), "an agent not in the run"),
                (make(0, "__no_such_good__"), "a good not in the run"),
                (make(0, goods.numeraire), "the numeraire as the good traded"),
            ]
    if Cancel in accepts:
        out += [(Cancel(0, good, _NO_ORDER), "an order that does not exist")]
    if Modify in accepts:
        out += [(Modify(0, good, _NO_ORDER, qty=1.0), "an order that does not exist")]
    samples = {
        DemandReport: lambda: DemandReport(slot.name, k, np.zeros(g)),
        Limit: lambda: Limit(0, good, BUY, 1.0, 1.0),
        MarketOrder: lambda: MarketOrder(0, good, BUY, 1.0),
        Swap: lambda: Swap(0, good, BUY, 1.0),
        Cancel: lambda: Cancel(0, good, _NO_ORDER),
        Modify: lambda: Modify(0, good, _NO_ORDER, qty=1.0),
    }
    unaccepted = [make for kind, make in samples.items() if kind not in accepts]
    return out + [(make(), "an order type it does not accept") for make in unaccepted]


def standalone(
    mechanism: Any, scenario: Scenario, seed: int = 0, **options: Any
) -> tuple[Any, MarketContext]:
    """Build ``mechanism`` (a registered name, ``module:Class`` or a class) with the scenario's
    default options for it overridden by ``options``, attach it to a fresh environment for
    ``scenario``, and return ``(market, context)`` without running anything: the wiring of
    :func:`mktsim.simulate` (strategies assigned and started after the market opens), for
    driving a market by hand (``market.submit(order).value``, ``ctx.env.run(until=...)``).

    Give populations the ``passive`` behaviour to keep them from trading on their own.
    """
    cls = resolve(mechanism)
    market = cls(**{**dict(scenario.mechanism_options.get(cls.name, {})), **options})
    env = simpy.Environment()
    recorder = Recorder(
        {"goods": scenario.goods.names, "populations": [p.name for p in scenario.populations]}
    )
    ledger = Ledger(scenario.goods, to_base(scenario.endowments()), recorder, lambda: env.now)
    slots = PopulationSlot.all_of(scenario)
    assigned = assign_strategies(cls, slots)
    ctx = MarketContext(
        env,
        scenario,
        scenario.goods,
        ledger,
        recorder,
        Streams(seed),
        slots,
        env.event(),
        strategies=assigned,
    )
    market.attach(ctx)
    start_strategies(market, ctx, assigned)
    return market, ctx
