"""Constant-product pools, one per good against the numeraire (registered as ``cpmm``).

Each non-numeraire good j gets a pool holding reserves x_j of the good and y_j of money, in its
own ledger account funded from outside the economy when the market opens (counted as created,
so conservation still balances). Liquidity is set by options: by default each pool holds
``depth`` times the economy's total endowment of its good (of a good nobody holds at the opening,
such as a firm's output: the largest total endowment of any pooled good), priced at
``initial_prices`` (default 1); ``reserves`` gives them explicitly. A swap pays ``d`` into one
reserve and takes ``r_out·g·d / (r_in + g·d)`` out of the other (fee f, g = 1 − f, kept by the
pool), in exact integer arithmetic rounded in the pool's favour (kernel:
:mod:`mechanisms._cpmm`), so x·y never decreases. A swap the pool cannot fill (an output not
below its reserve, an output rounding to nothing) or the trader cannot pay for is refused with a
reason, never raised.

The pools take the protocol's :class:`~mktsim.orders.Swap` (``accepts``): ``exact="in"`` pays
``amount`` in, ``exact="out"`` asks for ``amount`` out; ``limit`` refuses a fill whose average
price is worse. :meth:`ConstantProductMarket.submit` answers at once with one
:class:`~mktsim.orders.Receipt` (``filled`` units of the good, ``cash`` money paid (+) or
received (−), ``price`` their ratio). :meth:`~ConstantProductMarket.quote` shows each pool's
reserves, fee, spot price and marginal bid/ask (:class:`CPMMQuote`). Consumers are driven by the
shared strategies (``mrs_swap`` by default: swap up to where the marginal rate of substitution
equals the pool's marginal price; ``mrs``, ``noise``, ``scripted`` and ``passive`` name
``mrs_swap``, ``noise_swap``, ``scripted_swap`` and ``idle`` here); firms and sources trade as
a supply chain (:mod:`mktsim.strategies.supply_swap`: ``firm`` and ``source`` name
``firm_swap`` and ``source_swap``, the defaults of their kinds; their production runs outside
the market, on :class:`mktsim.production.plant.Plant`). ``arbitrage``, ``pump_and_dump``,
``wash`` and ``final_demand`` name the shared strategies ``arbitrage_swap``,
``pump_and_dump_swap``, ``wash_swap`` and ``final_demand_swap`` (the default of final demand).
Every population is driven by a shared strategy: the market only clears. The summary's
``behaviours`` gives each population's behaviour as named, a default by the name this market
has always used. The market stops early when no swap has filled for ``quiet`` time units
(``converged`` is then True: nobody finds a trade worth making). Pools trade only against the
numeraire, so cross-rates between goods are consistent by construction and need no arbitrage.

Tables: ``prices`` (money = 1 and every pool's spot price y/x after every ``record_every``-th
swap; ``round`` counts swaps), ``pools`` (the opening reserves, then one row per swap: side,
amounts and reserves in base units; and a ``withdraw`` row per pool at a liquidity withdrawal) and
``liquidity`` (one row per pool and withdrawal: the amounts that left and the reserves after).

Market shocks (:mod:`mktsim.shocks`), all acting only on the market, never on traders' holdings:

* liquidity withdrawal of fraction f: the liquidity providers take f of both reserves of every
  pool, rounded down to base units (so what stays is at least (1 − f)·(x, y)); the amounts leave
  the economy through the ledger (``destroy``, counted, so conservation still checks) and are
  listed in the ``liquidity`` table. The spot price y/x is unchanged up to one base unit of
  rounding, k = x·y scales by (1 − f)², and a later small swap moves the price 1/(1 − f) times
  as far per unit (to first order): the same order flow now has more price impact. With f = 1 a
  pool closes: its swaps are refused (``pool withdrawn``) and its last price is carried in the
  prices table.
* outage: applied by the shared wrapper (:class:`mktsim.wrappers.Outage`): from its time for its
  duration no swap fills; every submission is refused as data with reason ``market closed``
  (counted in the run summary's ``rejections``).
* latency spike: applied by the shared wrapper (:class:`mktsim.wrappers.Latency`): every swap
  sent during the spike reaches the pools ``delay`` later (on top of the population's own
  delay), in the order sent, and fills at the pool's state then; the sender's event fires with
  the receipt when it does.
* price clamp: a circuit breaker on one pool. Seen from the pool's price when the clamp starts,
  ``price`` is a ceiling (if the pool is at or below it) or a floor (if above): a swap that would
  carry the spot price across it is refused (``circuit breaker``), swaps that keep the price on its
  side fill. The pool's price cannot be *held* at a level the way an auctioneer posts one, since
  every fill moves it; the refusals counted are the rationing the clamp causes. A ``ceiling``
  or a ``floor`` is the same breaker with its side given.

While shocks are still to come, or an outage, a latency spike (with its delayed orders) or a clamp
with a duration lasts, the ``quiet`` rule does not end the run.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Generator, Mapping
from fractions import Fraction
from typing import Any, ClassVar

import numpy as np
import simpy
from attrs import frozen
from mktsim.mechanisms._cpmm import Pool, SwapSide

from mktsim.errors import ConservationError, InvalidParameter, UnknownName
from mktsim.goods import MAX_BASE
from mktsim.market import settled
from mktsim.mechanism import MarketContext, Option, parse_options, positive_float, positive_int
from mktsim.orders import Quote, Receipt, Swap, rejected
from mktsim.recorder import Column

__all__ = [
    "LIQUIDITY_TABLE",
    "POOL_TABLE",
    "CPMMQuote",
    "ConstantProductMarket",
    "PoolState",
    "SwapSide",
]

#: Schema of the ``pools`` table (opening reserves, then one row per filled swap).
POOL_TABLE: dict[str, Column] = {
    "time": Column("float64", doc="simulation time"),
    "trade_id": Column("int64", doc="ledger trade id (0 for the opening row)"),
    "agent": Column("int64", doc="trader's ledger row (-1 for the opening row)"),
    "good": Column("category", "goods", "the pool's good"),
    "side": Column(
        "object",
        doc="buy (money in, good out) | sell (good in, money out) | open | withdraw (liquidity "
        "withdrawn: amounts 0 here, see the liquidity table)",
    ),
    "amount_in": Column("int64", doc="base units paid into the pool"),
    "amount_out": Column("int64", doc="base units paid out of the pool"),
    "x": Column("int64", doc="good reserve after the swap, base units"),
    "y": Column("int64", doc="money reserve after the swap, base units"),
    "price": Column("float64", doc="spot price y/x after the swap"),
}

#: Schema of the ``liquidity`` table (one row per pool and liquidity withdrawal).
LIQUIDITY_TABLE: dict[str, Column] = {
    "time": Column("float64", doc="simulation time"),
    "good": Column("category", "goods", "the pool's good"),
    "fraction": Column("float64", doc="fraction of the reserves withdrawn"),
    "x_out": Column("int64", doc="good withdrawn, base units (left the economy, counted)"),
    "y_out": Column("int64", doc="money withdrawn, base units (left the economy, counted)"),
    "x": Column("int64", doc="good reserve after, base units"),
    "y": Column("int64", doc="money reserve after, base units"),
    "price": Column("float64", doc="spot price y/x after (the last price if the pool closed)"),
}


def _count(value: float, option: str, good: str) -> int:
    """A pool reserve in base units, refusing one no count could hold (a float overflowed to
    infinity); a finite one past int64 is the ledger's to refuse when the pool opens."""
    if not math.isfinite(value):
        raise InvalidParameter(
            f"{option} gives the pool of {good} a reserve of {value:.6g} base units, past the "
            f"ledger's limit of {MAX_BASE:.6g}"
        )
    return round(value)


@frozen
class PoolState:
    """One pool as quoted: reserves in units, fee, spot price and marginal bid/ask."""

    x: float
    y: float
    fee: float
    price: float
    bid: float
    ask: float


@frozen
class CPMMQuote(Quote):
    """What the pools show at ``time``: ``prices`` (good -> spot price y/x; a withdrawn pool's
    last price) and ``pools`` (good -> :class:`PoolState`, open pools only)."""

    pools: Mapping[str, PoolState]


def _fee(value: Any) -> float:
    f = float(value)
    if not (math.isfinite(f) and 0.0 <= f < 1.0):
        raise ValueError("must be in [0, 1)")
    return f


def _optional_mapping(value: Any) -> Any:
    if value in (None, "", "none"):
        return None
    if not isinstance(value, Mapping):
        raise ValueError("must map good names to values")
    return dict(value)


def _quiet(value: Any) -> float | None:
    if value in (None, "", "none", "never"):
        return None
    return positive_float(value)


class ConstantProductMarket:
    """Constant-product pools against the numeraire; see the module docstring."""

    name: ClassVar[str] = "cpmm"
    description: ClassVar[str] = (
        "constant-product pools (x·y = k) per good against the numeraire, fee kept by the pool; "
        "consumers swap to where their MRS equals the pool price; firms buy inputs up to their "
        "marginal value product"
    )
    accepts: ClassVar[frozenset[type]] = frozenset({Swap})
    #: Behaviour names this market has always taken -> the shared strategy each means here.
    aliases: ClassVar[Mapping[str, str]] = {
        "mrs": "mrs_swap",
        "noise": "noise_swap",
        "arbitrage": "arbitrage_swap",
        "scripted": "scripted_swap",
        "passive": "idle",
        "pump_and_dump": "pump_and_dump_swap",
        "wash": "wash_swap",
        "final_demand": "final_demand_swap",
        "firm": "firm_swap",
        "source": "source_swap",
    }
    supported_shocks: ClassVar[tuple[str, ...]] = (
        "clamp",
        "ceiling",
        "floor",
        "liquidity",
    )
    options: ClassVar[Mapping[str, Option]] = {
        "fee": Option(0.003, "fee rate taken from every input, in [0, 1)", _fee),
        "depth": Option(
            0.1,
            "each pool's good reserve as a fraction of the economy's total endowment of it "
            "(of a good nobody holds at the opening, e.g. a firm's output: of the largest total "
            "endowment of any pooled good)",
            positive_float,
        ),
        "initial_prices": Option(
            None, "good -> the pools' opening price (default 1)", _optional_mapping
        ),
        "reserves": Option(
            None,
            "good -> [good reserve, money reserve] in units (overrides depth/initial_prices)",
            _optional_mapping,
        ),
        "quiet": Option(
            10.0, "stop when no swap has filled for this long ('never': run to the horizon)", _quiet
        ),
        "record_every": Option(1, "record prices after every k-th swap", positive_int),
    }

    def __init__(self, **options: Any) -> None:
        self.opts = parse_options(self.name, self.options, options)
        self.fee: float = self.opts["fee"]
        self.swaps = 0
        self.rejections: Counter[str] = Counter()
        self.converged = False
        self._last_fill = 0.0
        self._quiet_from = 0.0  # a shock restarts the quiet clock (an outage: from its end)
        self._clamps: dict[int, tuple[float, float, bool]] = {}  # j -> (price, end, ceiling)
        self._closed: dict[int, float] = {}  # pools withdrawn entirely: j -> last price
        self._withdrawn: dict[int, list[int]] = {}  # j -> [good, money] base units withdrawn
        self._next_fill: simpy.Event | None = None

    @classmethod
    def refusal(cls, population: Any) -> str | None:
        """Why the pools cannot take a population as it is given (None if they can): one with
        no utility over goods, no behaviour and no supply-chain kind gives no way to choose its
        swaps."""
        chain = population.kind in ("firms", "source", "final_demand")
        if population.behaviour is not None or hasattr(population, "utility") or chain:
            return None
        return (
            f"population {population.name!r} ({population.kind}) has no utility over goods, so "
            f"cpmm cannot choose its swaps: give it a behaviour ({', '.join(cls.aliases)})"
        )

    # ---- set-up -----------------------------------------------------------------------------
    def creations(self, scenario: Any, totals: list[float]) -> list[float] | None:
        """Units of each good (in the goods' order) the pools will hold when they open, from
        each good's total endowment ``totals``: what :meth:`attach` funds from outside, worked
        out in floats so that the run can choose a base unit with room for it. None where an
        option is off (:meth:`attach` refuses it, naming it)."""
        goods = scenario.goods
        num = goods.numeraire_index
        made = [0.0] * len(goods)
        scale = max((t for j, t in enumerate(totals) if j != num), default=0.0)
        try:
            prices = dict(self.opts["initial_prices"] or {})
            reserves = dict(self.opts["reserves"] or {})
            for j, name in enumerate(goods.names):
                if j == num:
                    continue
                if name in reserves:
                    x, y = (abs(float(v)) for v in reserves[name])
                else:
                    x = self.opts["depth"] * (totals[j] or scale)
                    y = x * abs(float(prices.get(name, 1.0)))
                made[j] += x
                made[num] += y
        except (TypeError, ValueError):
            return None
        return made

    def attach(self, ctx: MarketContext) -> None:
        self.ctx = ctx
        self.base_units = ctx.goods.base_units
        goods, ledger = ctx.goods, ctx.ledger
        self._num = goods.numeraire_index
        self._n_agents = ctx.scenario.n_agents
        totals = ledger.totals()
        prices = self._named(self.opts["initial_prices"], "initial_prices")
        reserves = self._named(self.opts["reserves"], "reserves")
        self._pools: dict[int, Pool] = {}
        self._rows: dict[int, int] = {}
        self._k0: dict[int, float] = {}  # opening k, rescaled by each withdrawal
        # a good nobody holds yet (a firm's output) has no stock to size its pool by
        scale = max((int(totals[j]) for j in range(len(goods)) if j != self._num), default=0)
        known = {strategy: name for name, strategy in self.aliases.items()}
        self._behaviours = {
            slot.name: slot.population.behaviour
            or known.get(ctx.strategies[slot.name][0].name, ctx.strategies[slot.name][0].name)
            for slot in ctx.slots
            if slot.name in ctx.strategies
        }
        ctx.recorder.add_table("pools", POOL_TABLE)
        ctx.recorder.add_table("liquidity", LIQUIDITY_TABLE)
        for j in range(len(goods)):
            if j == self._num:
                continue
            name = goods.names[j]
            if name in reserves:
                x, y = self._reserve_pair(name, reserves[name])
                sized_by = f"reserves[{name}]"
            else:
                sized_by = f"depth(={self.opts['depth']:g}) and initial_prices"
                p0 = float(prices.get(name, 1.0))
                if not (math.isfinite(p0) and p0 > 0):
                    raise InvalidParameter(f"initial_prices[{name}](={p0}) must be > 0 and finite")
                x = _count(self.opts["depth"] * (int(totals[j]) or scale), "depth", name)
                y = _count(x * p0, "initial_prices", name)
            if x < 1 or y < 1:
                raise InvalidParameter(
                    f"the pool of {name} would open with reserves ({x}, {y}) base units: raise "
                    "depth or give reserves"
                )
            funding = [0] * len(goods)  # exact integers: the ledger refuses them past int64
            funding[j], funding[self._num] = x, y
            try:
                self._rows[j] = ledger.open_account(funding)
            except ConservationError as exc:  # past what the ledger can count: say which option
                raise InvalidParameter(f"{sized_by} make the pool of {name}: {exc}") from None
            self._pools[j] = Pool(x, y, self.fee)
            self._k0[j] = x * y
            self._record_pool(0, -1, j, "open", 0, 0)
        ctx.log(
            "cpmm_open",
            f"{len(self._pools)} pools, fee {self.fee:g}: "
            + ", ".join(
                f"{goods.names[j]} ({p.x / self.base_units:g}, {p.y / self.base_units:g})"
                for j, p in self._pools.items()
            ),
        )
        self._record_prices()
        if self.opts["quiet"] is not None:
            ctx.env.process(self._watch_quiet(self.opts["quiet"]))

    def _named(self, mapping: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
        out = dict(mapping or {})
        valid = [g for g in self.ctx.goods.names if g != self.ctx.goods.numeraire]
        for name in out:
            if name not in valid:
                raise UnknownName(f"good in {what}", str(name), valid)
        return out

    def _reserve_pair(self, name: str, pair: Any) -> tuple[int, int]:
        try:
            x, y = (float(v) for v in pair)
        except (TypeError, ValueError):
            raise InvalidParameter(f"reserves[{name}](={pair!r}) must be [good, money]") from None
        if not (math.isfinite(x) and math.isfinite(y) and x > 0 and y > 0):
            raise InvalidParameter(f"reserves[{name}](={pair!r}) must be > 0 and finite")
        return _count(x * self.base_units, "reserves", name), _count(
            y * self.base_units, "reserves", name
        )

    # ---- public interface -------------------------------------------------------------------
    def reserves(self) -> dict[int, tuple[float, float]]:
        """Good column -> (good reserve, money reserve) in units."""
        return {j: (p.x / self.base_units, p.y / self.base_units) for j, p in self._pools.items()}

    def pool(self, good: int) -> Pool:
        """The pool of a good (by ledger column), as a frozen value."""
        return self._pools[good]

    @property
    def pool_goods(self) -> list[int]:
        """Ledger columns of the goods that have a pool."""
        return list(self._pools)

    def quote(self) -> CPMMQuote:
        """Every pool as it is now: spot prices, and reserves, fee and marginal bid/ask."""
        names = self.ctx.goods.names
        out = {}
        for j, p in self._pools.items():
            bid, ask = p.marginal_prices()
            out[names[j]] = PoolState(
                p.x / self.base_units, p.y / self.base_units, p.fee, p.price, bid, ask
            )
        prices = {
            names[j]: self._pools[j].price if j in self._pools else self._closed[j]
            for j in self._rows
        }
        return CPMMQuote(float(self.ctx.env.now), prices, out)

    def updated(self) -> simpy.Event:
        """An event that fires at the next filled swap (its value: the receipt)."""
        if self._next_fill is None:
            self._next_fill = self.ctx.env.event()
        return self._next_fill

    def submit(self, order: Swap) -> simpy.Event:
        """Execute a swap; the returned event, already processed, holds its
        :class:`~mktsim.orders.Receipt`."""
        return settled(self.ctx.env, self.execute(order))

    def execute(self, order: Swap) -> Receipt:
        """Execute a swap at once and return its receipt (filled, or refused with a reason)."""
        if not isinstance(order, Swap):
            return self._refuse("cpmm takes swap orders only")
        agent = int(order.agent)
        if not 0 <= agent < self._n_agents:
            return self._refuse("unknown agent")
        goods = self.ctx.goods
        j = goods.index(order.good) if order.good in goods.names else -1
        if j in self._closed:
            return self._refuse("pool withdrawn")
        if j not in self._pools:
            return self._refuse("no pool for that good")
        units = round(float(order.amount) * self.base_units)
        if units < 1:
            return self._refuse("amount below one base unit")
        pool, side = self._pools[j], SwapSide(order.side)
        if order.exact == "in":
            result = pool.swap(side, units)
            code = "output rounds to zero"
        else:
            result = pool.swap_for(side, units)
            code = "larger than the pool's reserve"
        if not result.accepted:
            return self._refuse(code)
        d_in, d_out = result.amount_in, result.amount_out
        if order.limit is not None:
            price = d_in / d_out if side is SwapSide.BUY else d_out / d_in
            if (price > order.limit) if side is SwapSide.BUY else (price < order.limit):
                return self._refuse("limit")
        if self._breaker(j, result.pool.price):
            return self._refuse("circuit breaker")
        h = self.ctx.ledger.holdings
        pays = self._num if side is SwapSide.BUY else j
        if d_in > h[agent, pays]:
            return self._refuse(f"insufficient {'money' if side is SwapSide.BUY else 'goods'}")
        ledger, row = self.ctx.ledger, self._rows[j]
        ledger.round = self.swaps + 1
        if side is SwapSide.BUY:
            tid = ledger.trade(agent, row, j, d_out, d_in, d_in / d_out)
            receipt = Receipt(
                "filled", None, "", d_out / self.base_units, d_in / d_out, d_in / self.base_units
            )
        else:
            tid = ledger.trade(row, agent, j, d_in, d_out, d_out / d_in)
            receipt = Receipt(
                "filled", None, "", d_in / self.base_units, d_out / d_in, -d_out / self.base_units
            )
        self._pools[j] = new = result.pool
        if ledger.holdings[row, j] != new.x or ledger.holdings[row, self._num] != new.y:
            raise ConservationError(f"pool of good {j} and its ledger account disagree")
        self.swaps += 1
        self._last_fill = self.ctx.env.now
        self._record_pool(tid, agent, j, side.value, d_in, d_out)
        if self.swaps % self.opts["record_every"] == 0:
            self._record_prices()
        if self._next_fill is not None:
            fired, self._next_fill = self._next_fill, None
            fired.succeed(receipt)
        return receipt

    def summary(self) -> dict[str, Any]:
        names = self.ctx.goods.names
        pools: dict[str, dict[str, float | None]] = {
            names[j]: {
                "x": p.x / self.base_units,
                "y": p.y / self.base_units,
                "price": p.price,
                "k_growth": p.k / self._k0[j],
            }
            for j, p in self._pools.items()
        }
        for j, price in self._closed.items():
            pools[names[j]] = {"x": 0.0, "y": 0.0, "price": price, "k_growth": None}
        return {
            "method": "constant_product",
            "rounds": self.swaps,
            "converged": self.converged,
            "fee": self.fee,
            "depth": self.opts["depth"],
            "swaps": self.swaps,
            "rejections": dict(sorted(self.rejections.items())),
            "stopped": "quiet" if self.converged else "horizon",
            "behaviours": dict(self._behaviours),
            "pools": {g: pools[g] for g in names if g in pools},
            "liquidity_withdrawn": {
                names[j]: {"x": x / self.base_units, "y": y / self.base_units}
                for j, (x, y) in self._withdrawn.items()
            },
        }

    # ---- shocks -----------------------------------------------------------------------------
    def apply_shock(self, shock: Any) -> str:
        """Liquidity withdrawal and price clamp (circuit breaker); see the module docstring.
        Returns what was done, for the events table."""
        now = self.ctx.env.now
        if shock.kind == "liquidity":
            return self._withdraw(float(shock.fraction))
        if shock.kind in ("clamp", "ceiling", "floor"):
            goods = self.ctx.goods
            j = goods.index(shock.good)
            if j not in self._pools and j not in self._closed:
                raise InvalidParameter(
                    f"clamp on {shock.good!r}: the numeraire has no pool (clamp a pool's good: "
                    f"{', '.join(goods.names[g] for g in self._rows)})"
                )
            end = math.inf if shock.duration is None else now + shock.duration
            price = self._pools[j].price if j in self._pools else self._closed[j]
            below, above = shock.sides
            # a two-sided clamp bounds the pool on the side it stands: from above if at or below
            ceiling = price <= shock.price if below and above else above
            self._clamps[j] = (float(shock.price), end, ceiling)
            # refused swaps are not quiet: traders come back once a clamp with an end lifts
            self._quiet_from = max(self._quiet_from, now if math.isinf(end) else end)
            side = "above" if ceiling else "below"
            return (
                f"circuit breaker on {shock.good}: swaps taking its price {side} "
                f"{shock.price:g} refused until {end:g} (price now {price:.6g})"
            )
        raise InvalidParameter(f"cpmm does not support {shock.kind} shocks")

    def note_shock(self, shock: Any) -> None:
        """A market shock a wrapper applied around the pools (an outage, a latency spike, a
        circuit breaker): the quiet clock restarts when its effect ends, ``duration`` (if any) and
        ``delay`` (if any) from now, since swaps still on their way or refused are not quiet."""
        lasts = float(getattr(shock, "duration", None) or 0.0)
        lasts += float(getattr(shock, "delay", 0.0))
        self._quiet_from = max(self._quiet_from, self.ctx.env.now + lasts)

    def _withdraw(self, fraction: float) -> str:
        """The liquidity providers take ``fraction`` of both reserves of every pool."""
        ctx, ledger = self.ctx, self.ctx.ledger
        f = Fraction(fraction)
        now = ctx.env.now
        self._quiet_from = max(self._quiet_from, now)
        parts = []
        for j, pool in list(self._pools.items()):
            # rounded down: what stays is at least (1 − f)·(x, y), in the remaining LPs' favour
            x_out, y_out = math.floor(f * pool.x), math.floor(f * pool.y)
            amounts = np.zeros(len(ctx.goods), dtype=np.int64)
            amounts[j], amounts[self._num] = x_out, y_out
            row, name = self._rows[j], ctx.goods.names[j]
            ledger.destroy(row, amounts, f"cpmm: liquidity withdrawn from the pool of {name}")
            total = self._withdrawn.setdefault(j, [0, 0])
            total[0] += x_out
            total[1] += y_out
            x, y = pool.x - x_out, pool.y - y_out
            if x < 1 or y < 1:  # everything left: the pool closes
                del self._pools[j]
                self._closed[j] = pool.price
                price = pool.price
                parts.append(
                    f"{name} closed ({x_out / self.base_units:g}, {y_out / self.base_units:g} out)"
                )
            else:
                new = Pool(x, y, self.fee)
                self._k0[j] *= new.k / pool.k  # so k_growth keeps measuring fee income only
                self._pools[j] = new
                price = new.price
                parts.append(
                    f"{name} ({x_out / self.base_units:g}, {y_out / self.base_units:g}) out, "
                    f"price {price:.6g}"
                )
            if ledger.holdings[row, j] != x or ledger.holdings[row, self._num] != y:
                raise ConservationError(f"pool of good {j} and its ledger account disagree")
            ctx.recorder.append_row("pools", (now, 0, -1, j, "withdraw", 0, 0, x, y, price))
            ctx.recorder.append_row("liquidity", (now, j, fraction, x_out, y_out, x, y, price))
        return f"liquidity providers withdrew {fraction:g} of every pool: " + "; ".join(parts)

    def _breaker(self, j: int, price: float) -> str:
        """Why a swap leaving pool j at ``price`` trips its circuit breaker ("" if it does not)."""
        clamp = self._clamps.get(j)
        if clamp is None or self.ctx.env.now >= clamp[1]:
            return ""
        limit, _, ceiling = clamp
        if (ceiling and price > limit) or (not ceiling and price < limit):
            return f"price would move to {price:.6g}, {'above' if ceiling else 'below'} {limit:g}"
        return ""

    # ---- internals --------------------------------------------------------------------------
    def _refuse(self, reason: str) -> Receipt:
        self.rejections[reason] += 1
        return rejected(reason)

    def _record_pool(self, tid: int, agent: int, j: int, side: str, d_in: int, d_out: int) -> None:
        p = self._pools[j]
        self.ctx.recorder.append_row(
            "pools", (self.ctx.env.now, tid, agent, j, side, d_in, d_out, p.x, p.y, p.price)
        )

    def _record_prices(self) -> None:
        record, now, rnd = self.ctx.recorder.append_row, self.ctx.env.now, self.swaps
        record("prices", (now, rnd, self._num, 1.0, 1.0))
        for j in self._rows:
            price = self._pools[j].price if j in self._pools else self._closed[j]
            record("prices", (now, rnd, j, price, price))

    def _watch_quiet(self, quiet: float) -> Generator[simpy.Event, Any, None]:
        env = self.ctx.env
        waited = False
        while True:
            if self.ctx.shocks_ahead():  # stay open for them
                waited = True
                yield env.timeout(quiet)
                continue
            if waited:  # the last shock came since the previous look: quiet counts from now
                waited = False
                self._quiet_from = max(self._quiet_from, env.now)
            wait = max(self._last_fill, self._quiet_from) + quiet - env.now
            if wait > 0:
                yield env.timeout(wait)
                continue
            if self.swaps % self.opts["record_every"]:
                self._record_prices()
            self.converged = True
            self.ctx.log("quiet", f"no swap filled for {quiet:g} time units after {self.swaps}")
            self.ctx.done.succeed()
            return
