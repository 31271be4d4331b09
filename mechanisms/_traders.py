"""Trader behaviours of the order book: how a population's agents turn into orders.

Every behaviour (except ``external``) is one SimPy process per population. Arrivals are Poisson:
gaps are exponential with the population's total rate ``rate * size`` and the acting agent is
uniform over the population, both drawn in vectorised chunks from the population's own stream
(``ctx.streams.generator("order_book:arrivals:<population>")``), together with two uniforms per
action that the behaviour turns into a choice and a price. With a per-agent ``latency`` the agent
decides at its arrival (seeing the market then) and its order reaches the book ``latency`` later.

What an order is worth to an agent comes from a *limit* provider:

* induced-value traders (:class:`mktsim.induced.InducedTraders`): the value (buyers) or cost
  (sellers) of the next unit of their schedule, found from their holdings (a buyer's bought units
  are held until the period ends; a seller's unsold units are still held, reserved or not);
* consumers: the marginal rate of substitution of a good for the numeraire at current holdings,
  ``MRS_j = (du/dx_j) / (du/dx_numeraire)``, from ``population.utility.marginal_utility``; a
  consumer may buy or sell any good (chosen uniformly with the side on each action).

Each agent keeps at most one resting order per good (two for the market maker): a new action
withdraws the previous one first. Per-agent state is held in arrays (numpy where it is updated in
bulk, as ZIP's margins; Python lists where a single entry is read and written per action).
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import simpy
from numpy.typing import NDArray

from mktsim.errors import InvalidParameter
from mktsim.goods import BASE_UNITS
from mktsim.mechanism import Option, PopulationSlot, nonnegative_float, parse_options
from mktsim.population import check_values_money
from mktsim.registry import unknown_behaviour

if TYPE_CHECKING:
    from mktsim.mechanisms.order_book import OrderBookMarket

__all__ = [
    "BEHAVIOURS",
    "MarketMaker",
    "UtilityTrader",
    "ZeroIntelligence",
    "ZeroIntelligencePlus",
    "make_behaviour",
    "maker_quotes",
    "zip_rules",
    "zip_step",
]

Array = NDArray[np.float64]
#: Arrivals drawn per chunk.
CHUNK = 2048
_EPS = 1e-9


# ---- limit providers ---------------------------------------------------------------------
class _Schedule:
    """Unit values (buyers) or costs (sellers) of induced-value traders."""

    kind = "induced"

    def __init__(self, market: OrderBookMarket, slot: PopulationSlot) -> None:
        pop: Any = slot.population
        self.market = market
        self.start = slot.rows.start
        self.n = pop.size
        self.buy = pop.role == "buyer"
        self.good = int(pop.good)
        self.goods = [self.good]
        self.limits: list[list[float]] = [
            [float(v) for v in row if not math.isnan(v)] for row in pop.limits
        ]
        self.units = [len(row) for row in self.limits]
        self._units = np.array(self.units, dtype=np.int64)
        self._matrix = np.array(pop.limits, dtype=np.float64)
        self.default_size = 1.0

    def unit(self, local: int) -> int:
        """Index of the agent's next unit in its schedule, -1 when it has none left."""
        held = self.market._hv[self.start + local, self.good]
        if self.buy:
            k = held // BASE_UNITS
        else:
            k = self.units[local] - (held + BASE_UNITS - 1) // BASE_UNITS
        return k if k < self.units[local] else -1

    def pick(self, local: int, u: float) -> tuple[int, bool, float, int] | None:
        k = self.unit(local)
        if k < 0:
            return None
        return self.good, self.buy, self.limits[local][k], k

    def all_limits(self, good: int) -> tuple[Array, Array]:
        """Limit prices of every agent (buy side, sell side); NaN where it cannot act."""
        none = np.full(self.n, np.nan)
        if good != self.good:
            return none, none
        held = np.asarray(self.market._h[self.start : self.start + self.n, self.good])
        units = self._units
        k = held // BASE_UNITS if self.buy else units - (held + BASE_UNITS - 1) // BASE_UNITS
        active = k < units
        lim = none.copy()
        lim[active] = self._matrix[np.flatnonzero(active), k[active]]
        return (lim, none) if self.buy else (none, lim)


class _Marginal:
    """Marginal rates of substitution of consumers, cached while holdings do not change."""

    kind = "consumers"

    def __init__(self, market: OrderBookMarket, slot: PopulationSlot) -> None:
        pop: Any = slot.population
        self.market = market
        self.slot = slot
        self.pop: Any = None  # the population the cache was computed for (shocks replace it)
        self.rows = slot.rows
        self.start = slot.rows.start
        self.n = pop.size
        self.num = market._num
        self.goods = list(market._traded)
        self.default_size = 0.03
        self._version = -1
        self._x: NDArray[np.int64] | None = None
        self._mrs: Array = np.empty((0, 0))
        self._units: Array = np.empty((0, 0))
        self._rows_mrs: list[list[float]] = []

    def _refresh(self) -> None:
        self.pop = self.market.ctx.population(self.slot)
        x = np.array(self.market._h[self.rows])
        with np.errstate(divide="ignore", invalid="ignore"):
            mu = self.pop.utility.marginal_utility(x / BASE_UNITS)
            mrs = mu / mu[:, self.num : self.num + 1]
        self._x = x
        self._units = x / BASE_UNITS
        self._mrs = mrs
        self._rows_mrs = mrs.tolist()
        self._version = self.market._ledger.version

    def _current(self, local: int | None) -> None:
        if self.market.ctx.current[self.slot.name] is not self.pop:
            self._refresh()  # a preference shock
            return
        if self._version == self.market._ledger.version:
            return
        if local is not None and self._x is not None:
            # Only this agent's own holdings change its MRS.
            if np.array_equal(self.market._h[self.start + local], self._x[local]):
                return
        self._refresh()

    def units(self) -> Array:
        """Current holdings of the population in units ``float64[n, g]`` (cached)."""
        self._current(None)
        return self._units

    def mrs(self, local: int, good: int) -> float:
        self._current(local)
        return self._rows_mrs[local][good]

    def pick(self, local: int, u: float) -> tuple[int, bool, float, int] | None:
        k = int(u * 2 * len(self.goods))
        g = self.goods[k >> 1]
        m = self.mrs(local, g)
        if not (m > 0 and math.isfinite(m)):
            return None
        return g, not (k & 1), m, 0

    def unit(self, local: int) -> int:
        return 0

    def all_limits(self, good: int) -> tuple[Array, Array]:
        self._current(None)
        m = self._mrs[:, good].copy()
        m[~(np.isfinite(m) & (m > 0))] = np.nan
        return m, m


def _limits(market: OrderBookMarket, slot: PopulationSlot) -> _Schedule | _Marginal:
    from mktsim.induced import InducedTraders

    pop = slot.population
    if isinstance(pop, InducedTraders):
        return _Schedule(market, slot)
    if hasattr(pop, "utility"):
        return _Marginal(market, slot)
    raise InvalidParameter(
        f"population {slot.name!r} ({pop.kind}) has neither unit values nor a utility: the "
        "order book's behaviours cannot price its orders (use behaviour 'external')"
    )


# ---- behaviours --------------------------------------------------------------------------
def _optional_rate(v: Any) -> float | None:
    if v is None:
        return None
    x = float(v)
    if not math.isfinite(x) or x <= 0:
        raise ValueError("must be > 0 and finite")
    return x


def _latency(v: Any) -> Any:
    if v is None:
        return None
    arr = np.asarray(v, dtype=float)
    if arr.ndim > 1 or not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError("must be a number or one number per agent, each >= 0 and finite")
    return arr


def _optional_size(v: Any) -> float | None:
    return None if v is None else _optional_rate(v)


COMMON: dict[str, Option] = {
    "rate": Option(
        None, "actions per agent per unit of time (None: the market's rate)", _optional_rate
    ),
    "latency": Option(
        None,
        "time from decision to the book, one number or one per agent (None: the population's "
        "delay)",
        _latency,
    ),
    "order_size": Option(
        None,
        "units per order (None: one unit for induced traders, 0.03 for consumers)",
        _optional_size,
    ),
}


class Behaviour:
    """Base: options, the arrival process, and single-order execution.

    Subclasses define ``decide(agent, u1, u2)`` returning an order ``(agent, good, buy, ticks,
    unit)`` or None, from two uniforms on [0, 1).
    """

    name: ClassVar[str] = ""
    options: ClassVar[Mapping[str, Option]] = COMMON
    needs_limits: ClassVar[bool] = True

    def __init__(self, market: OrderBookMarket, slot: PopulationSlot) -> None:
        pop = slot.population
        self.opts = parse_options(
            f"behaviour {self.name} of population {slot.name!r}",
            self.options,
            dict(pop.behaviour_options),
        )
        self.market = market
        self.slot = slot
        self.desk = market.desk(slot)
        self.n = pop.size
        self.start_row = slot.rows.start
        self.rate = self.opts["rate"] or market.opts["rate"]
        latency = self.opts["latency"]
        lat = np.asarray(pop.delay if latency is None else latency, dtype=float)
        if lat.ndim == 0:
            lat = np.full(self.n, float(lat))
        if lat.shape != (self.n,):
            raise InvalidParameter(
                f"latency of population {slot.name!r} has {lat.shape[0]} entries for "
                f"{self.n} agents"
            )
        self.latency: list[float] | None = lat.tolist() if (lat > 0).any() else None
        self.actions = 0
        self.tick = market.tick
        self.limits: Any = _limits(market, slot) if self.needs_limits else None
        size = self.opts["order_size"]
        if size is None and self.limits is not None:
            size = self.limits.default_size
        self.lots = 1
        if size is not None:
            lots = size / market.lot
            self.lots = max(1, round(lots))
            if (
                self.limits is not None
                and self.limits.kind == "induced"
                and (abs(lots - round(lots)) > 1e-9 * max(1.0, lots))
            ):
                raise InvalidParameter(
                    f"order_size(={size}) of population {slot.name!r} must be a whole number "
                    f"of lots (lot = {market.lot})"
                )
        goods = self.limits.goods if self.limits is not None else market._traded
        self.live: dict[int, list[int]] = {g: [0] * self.n for g in goods}

    # -- process
    def start(self, env: simpy.Environment) -> None:
        env.process(self._arrivals(env))

    def _arrivals(self, env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        rng = self.market.ctx.streams.generator(f"order_book:arrivals:{self.slot.name}")
        mean_gap = 1.0 / (self.rate * self.n)
        lo, hi = self.start_row, self.start_row + self.n
        timeout = env.timeout
        act = self.act if self.latency is None else self._act_later
        while True:
            gaps = rng.exponential(mean_gap, CHUNK).tolist()
            who = rng.integers(lo, hi, CHUNK).tolist()
            u1 = rng.random(CHUNK).tolist()
            u2 = rng.random(CHUNK).tolist()
            for i in range(CHUNK):
                yield timeout(gaps[i])
                self.actions += 1
                act(who[i], u1[i], u2[i])

    # -- acting
    def decide(self, agent: int, u1: float, u2: float) -> tuple[Any, ...] | None:
        """The order an arrival makes ``(agent, good, buy, ticks, unit)``, or None."""
        raise NotImplementedError

    def act(self, agent: int, u1: float, u2: float) -> None:
        """Decide and place at once (no latency)."""
        order = self.decide(agent, u1, u2)
        if order is not None:
            self.place(order)

    def _act_later(self, agent: int, u1: float, u2: float) -> None:
        order = self.decide(agent, u1, u2)
        if order is None:
            return
        assert self.latency is not None
        delay = self.latency[agent - self.start_row]
        if delay > 0:
            self.market._env.timeout(delay).callbacks.append(partial(self._deliver, order))
        else:
            self.execute(order)

    def _deliver(self, order: tuple[Any, ...], _: simpy.Event) -> None:
        self.execute(order)

    def execute(self, order: tuple[Any, ...]) -> None:
        """Place an order decided ``latency`` ago, unless the agent has traded the unit it was
        for in the meantime (its decision is then stale)."""
        unit = order[4]
        if unit >= 0 and self.limits.unit(order[0] - self.start_row) != unit:
            return
        self.place(order)

    def place(self, order: tuple[Any, ...]) -> None:
        agent, g, buy, ticks, _ = order
        self._post(agent, g, buy, ticks, self.lots)

    def _post(self, agent: int, g: int, buy: bool, ticks: int, lots: int) -> None:
        """Withdraw the agent's resting order in the good, then post the new one, sized to
        what the agent can commit (after checking that the agent is one of this
        population's)."""
        local = agent - self.start_row
        if not 0 <= local < self.n:
            self.desk._check(agent)
        live = self.live[g]
        live[local] = self.market._replace(agent, g, live[local], buy, lots, ticks)


class External(Behaviour):
    """No process: the agents act only through handles (scripts, tests, learning agents)."""

    name = "external"
    needs_limits = False

    def start(self, env: simpy.Environment) -> None:
        pass


class ZeroIntelligence(Behaviour):
    """Gode & Sunder's zero-intelligence traders.

    ``zi_u``: prices uniform on the whole range [min_price, max_price]. ``zi_c``: constrained
    never to trade at a loss, buyers bid uniform on [min_price, limit] and sellers ask uniform on
    [limit, max_price], where the limit is the unit's value or cost (or the MRS of a consumer).
    Prices are whole ticks; since trades happen at the resting order's price, a constrained
    trader's trade price is always within its own limit.
    """

    name = "zi_c"
    constrained = True
    options: ClassVar[Mapping[str, Option]] = {
        **COMMON,
        "min_price": Option(None, "lowest price (None: one tick)", _optional_rate),
        "max_price": Option(200.0, "highest price (Gode & Sunder: 200)", _optional_rate),
    }

    def __init__(self, market: OrderBookMarket, slot: PopulationSlot) -> None:
        super().__init__(market, slot)
        tick = market.tick
        lo = self.opts["min_price"]
        self.lo_ticks = 1 if lo is None else max(1, math.ceil(lo / tick - _EPS))
        self.hi_ticks = math.floor(self.opts["max_price"] / tick + _EPS)
        if self.hi_ticks < self.lo_ticks:
            raise InvalidParameter(
                f"max_price(={self.opts['max_price']}) of population {slot.name!r} must be at "
                f"least min_price (and one tick, {tick})"
            )

    def decide(self, agent: int, u1: float, u2: float) -> tuple[Any, ...] | None:
        pick = self.limits.pick(agent - self.start_row, u1)
        if pick is None:
            return None
        g, buy, limit, unit = pick
        lo, hi = self.lo_ticks, self.hi_ticks
        if self.constrained:
            if buy:
                hi = min(hi, math.floor(limit / self.tick + _EPS))
            else:
                lo = max(lo, math.ceil(limit / self.tick - _EPS))
        if hi < lo:
            return None
        return agent, g, buy, lo + int(u2 * (hi - lo + 1)), unit

    def act(self, agent: int, u1: float, u2: float) -> None:
        # decide() and place() inlined: this is the benchmark's hot path.
        local = agent - self.start_row
        pick = self.limits.pick(local, u1)
        if pick is None:
            return
        g, buy, limit, _ = pick
        lo, hi = self.lo_ticks, self.hi_ticks
        if self.constrained:
            if buy:
                hi = min(hi, math.floor(limit / self.tick + _EPS))
            else:
                lo = max(lo, math.ceil(limit / self.tick - _EPS))
        if hi >= lo:
            live = self.live[g]
            live[local] = self.market._replace(
                agent, g, live[local], buy, self.lots, lo + int(u2 * (hi - lo + 1))
            )


class UnconstrainedZeroIntelligence(ZeroIntelligence):
    __doc__ = ZeroIntelligence.__doc__
    name = "zi_u"
    constrained = False


class UtilityTrader(Behaviour):
    """Consumers trading toward their demand at the market's prices, never beyond their MRS.

    On each action the agent picks a good ``j``. With ``P`` the market's reference prices (each
    book's geometric mid, else its last trade; numeraire = 1) it computes its demand at ``P``
    from its current holdings (``population.demand``) and so its desired trade ``d_j`` of the
    good: it buys if ``d_j > 0`` and sells if ``d_j < 0``, an order of ``step |d_j|`` units
    (at least one lot; at most ``order_size`` if given). Its quote is centred on ``c = m^(1-anchor)
    P_j^anchor`` with ``m`` its marginal rate of substitution of ``j`` for the numeraire at
    current holdings, and spread uniformly over ``c (1 +/- spread/2)``; a bid is never above
    ``m`` and an ask never below it (rounded down and up to the tick), so every lot it trades
    raises its utility to first order. ``anchor = 0`` quotes around the agent's own MRS,
    ``anchor = 1`` around the market price (the agent keeps its valuation to itself).

    Sizing orders by the desired trade makes the order flow at a price follow the excess demand
    in quantities (as tatonnement does); fixed-size orders would instead balance the *number* of
    agents on each side, i.e. find the median MRS. While some good has no market price yet, the
    agent sends a one-lot probe on a random side around its own MRS, so that first quotes at
    extreme valuations move little wealth.
    """

    name = "utility"
    options: ClassVar[Mapping[str, Option]] = {
        **COMMON,
        "spread": Option(
            0.2,
            "width of the quote range relative to its centre",
            float,
            check=lambda v: None if 0 <= v < 1 else "must be in [0, 1)",
        ),
        "anchor": Option(
            1.0,
            "weight of the market price in the quote's centre (0: the agent's MRS)",
            float,
            check=lambda v: None if 0 <= v <= 1 else "must be in [0, 1]",
        ),
        "step": Option(
            0.1,
            "fraction of the desired trade sent per order",
            float,
            check=lambda v: None if 0 < v <= 1 else "must be in (0, 1]",
        ),
    }

    def __init__(self, market: OrderBookMarket, slot: PopulationSlot) -> None:
        super().__init__(market, slot)
        if not isinstance(self.limits, _Marginal) or not hasattr(slot.population, "demand"):
            raise InvalidParameter(
                f"behaviour 'utility' needs consumers with a utility and a demand; population "
                f"{slot.name!r} is {slot.population.kind} (use zi_c, zi_u or zip)"
            )
        check_values_money(slot.population, market._num, self.name)
        self.spread = self.opts["spread"]
        self.anchor = self.opts["anchor"]
        self.step = self.opts["step"]
        self.lot = market.lot
        # order_size caps an order here; by default the desired trade alone sizes it.
        self.cap = self.lots if self.opts["order_size"] is not None else 2**62

    def decide(self, agent: int, u1: float, u2: float) -> tuple[Any, ...] | None:
        limits: _Marginal = self.limits
        local = agent - self.start_row
        goods = limits.goods
        k = int(u1 * 2 * len(goods))
        g = goods[k >> 1]
        m = limits.mrs(local, g)
        if not (m > 0 and math.isfinite(m)):
            return None
        market = self.market
        prices = np.ones(len(market._goods))
        for j in goods:
            ref = market.reference_price(j)
            if ref is None:
                ticks = utility_quote(m, None, not (k & 1), u2, self.spread, self.anchor, self.tick)
                return (agent, g, not (k & 1), ticks, 1) if ticks >= 1 else None
            prices[j] = ref
        x = limits.units()
        want = float(limits.pop.demand(prices, x)[local, g] - x[local, g])
        lots = min(self.cap, max(1, int(self.step * abs(want) / self.lot)))
        buy = want > 0
        ticks = utility_quote(m, prices[g], buy, u2, self.spread, self.anchor, self.tick)
        if ticks < 1 or want == 0:
            return None
        return agent, g, buy, ticks, lots

    def place(self, order: tuple[Any, ...]) -> None:
        agent, g, buy, ticks, lots = order
        self._post(agent, g, buy, ticks, lots)

    def execute(self, order: tuple[Any, ...]) -> None:
        self.place(order)


def utility_quote(
    mrs: float,
    reference: float | None,
    buy: bool,
    u: float,
    spread: float,
    anchor: float,
    tick: float,
) -> int:
    """Price in ticks of a utility trader's quote (see :class:`UtilityTrader`): centre
    ``mrs^(1-anchor) reference^anchor`` (``mrs`` without a reference) times ``1 + spread (u -
    1/2)``, capped at ``mrs`` for a bid (rounded down) and floored at it for an ask (rounded
    up)."""
    centre = mrs if reference is None else mrs ** (1.0 - anchor) * reference**anchor
    price = centre * (1.0 + spread * (u - 0.5))
    if buy:
        return math.floor(min(price, mrs) / tick + _EPS)
    return math.ceil(max(price, mrs) / tick - _EPS)


# ---- ZIP -----------------------------------------------------------------------------------
def zip_rules(
    prices: Array, active: NDArray[np.bool_], seller: bool, is_bid: bool, q: float, accepted: bool
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Which traders move their shout price up and which down after one shout (Cliff 1997).

    Sellers: after a trade at ``q``, every seller whose price is at most ``q`` raises its margin
    (price up); otherwise, if the shout was a bid, active sellers priced at or above ``q`` lower
    it. After an unaccepted offer at ``q``, active sellers priced at or above ``q`` lower it.
    Buyers mirror this: after a trade, buyers priced at or above ``q`` raise their margin (price
    down); otherwise, if the shout was an offer, active buyers priced at or below ``q`` lower it
    (price up). After an unaccepted bid, active buyers priced at or below ``q`` lower it.
    Traders without a current limit (nothing left to trade) are never updated.

    Returns:
        ``(up, down)``: boolean masks of traders whose price moves up / down.
    """
    none = np.zeros(prices.shape, dtype=bool)
    if seller:
        if accepted:
            up = active & (prices <= q)
            down = active & ~up & (prices >= q) if is_bid else none
        else:
            up = none
            down = active & (prices >= q) if not is_bid else none
        return up, down
    if accepted:
        down = active & (prices >= q)
        up = active & ~down & (prices <= q) if not is_bid else none
    else:
        down = none
        up = active & (prices <= q) if is_bid else none
    return up, down


def zip_step(
    limit: Array,
    margin: Array,
    momentum: Array,
    beta: Array,
    gamma: Array,
    q: float,
    up: NDArray[np.bool_],
    r_rel: Array,
    r_abs: Array,
    c_r: float,
    c_a: float,
) -> tuple[Array, Array]:
    """One Widrow-Hoff step with momentum of ZIP margins toward a target around ``q``.

    Target ``tau = R q + A``: for a move up ``R = 1 + c_r r_rel``, ``A = c_a r_abs``; down
    ``R = 1 - c_r r_rel``, ``A = -c_a r_abs`` (``r_*`` uniform on [0, 1)). With the current price
    ``p = limit (1 + margin)``: ``delta = beta (tau - p)``, ``momentum' = gamma momentum +
    (1 - gamma) delta``, ``margin' = (p + momentum') / limit - 1`` (not yet clamped).

    All arrays have the same shape; returns ``(margin', momentum')``.
    """
    p = limit * (1.0 + margin)
    target = np.where(
        up, q * (1.0 + c_r * r_rel) + c_a * r_abs, q * (1.0 - c_r * r_rel) - c_a * r_abs
    )
    delta = beta * (target - p)
    new_momentum = gamma * momentum + (1.0 - gamma) * delta
    return (p + new_momentum) / limit - 1.0, new_momentum


def zip_shout_ticks(limit: Any, margin: Any, buy: bool, tick: float) -> Any:
    """The price, in ticks, a ZIP trader shouts: ``limit (1 + margin)`` rounded to the tick away
    from the trade (down for a bid, up for an ask) and never beyond its own limit. Works on
    scalars and arrays alike (NaN where the limit is NaN)."""
    price = limit * (1.0 + margin)
    with np.errstate(invalid="ignore"):
        if buy:
            return np.minimum(np.floor(price / tick + _EPS), np.floor(limit / tick + _EPS))
        return np.maximum(np.ceil(price / tick - _EPS), np.ceil(limit / tick - _EPS))


def _pair(v: Any) -> tuple[float, float]:
    lo, hi = (float(x) for x in v)
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi):
        raise ValueError("must be a pair (low, high) with 0 <= low <= high")
    return lo, hi


class ZeroIntelligencePlus(Behaviour):
    """Cliff's ZIP traders (HP Labs HPL-97-91, 1997): each shouts ``limit (1 + margin)``.

    Margins live per agent, good and side (sellers' >= 0, buyers' in [-1, 0]); learning rate
    ``beta`` and momentum ``gamma`` per agent, drawn once uniform on ``beta_range`` and
    ``gamma_range``; initial margins of size uniform on ``margin_range``. After every shout in a
    good each trader of the population updates by :func:`zip_rules` and :func:`zip_step`
    (``c_r``, ``c_a``: relative and absolute target perturbations). The "last shout" is the
    order that reached the book: an order that crosses accepts the standing quote (as an
    accepting shout does in Cliff's double auction) and ``q`` is then the trade price; one
    that rests is an unaccepted shout at its own price. Shouts are rounded to the tick away from
    the trade and never cross the trader's own limit (:func:`zip_shout_ticks`); the rules compare
    those shouted prices with ``q``.
    """

    name = "zip"
    options: ClassVar[Mapping[str, Option]] = {
        **COMMON,
        "beta_range": Option((0.1, 0.5), "learning rate range", _pair),
        "gamma_range": Option((0.0, 0.1), "momentum range", _pair),
        "margin_range": Option((0.05, 0.35), "initial |margin| range", _pair),
        "c_r": Option(0.05, "relative target perturbation", nonnegative_float),
        "c_a": Option(0.05, "absolute target perturbation (numeraire)", nonnegative_float),
    }

    def __init__(self, market: OrderBookMarket, slot: PopulationSlot) -> None:
        super().__init__(market, slot)
        streams = market.ctx.streams
        ids = np.arange(self.n)
        name = slot.name

        def draw(what: str, bounds: tuple[float, float], k: int = 0) -> Array:
            u = streams.uniform(f"order_book:zip:{what}:{name}", ids, k)
            return bounds[0] + (bounds[1] - bounds[0]) * u

        self.beta = draw("beta", self.opts["beta_range"])
        self.gamma = draw("gamma", self.opts["gamma_range"])
        g = len(market._goods)
        # margin[side, good, agent]: side 0 buying, 1 selling.
        self.margin = np.zeros((2, g, self.n))
        self.momentum = np.zeros((2, g, self.n))
        for j in self.limits.goods:
            self.margin[0, j] = -draw("margin", self.opts["margin_range"], 2 * j)
            self.margin[1, j] = draw("margin", self.opts["margin_range"], 2 * j + 1)
        self.rng = streams.generator(f"order_book:zip:updates:{name}")
        self.c_r, self.c_a = self.opts["c_r"], self.opts["c_a"]
        market.subscribe(self.observe)

    def decide(self, agent: int, u1: float, u2: float) -> tuple[Any, ...] | None:
        local = agent - self.start_row
        pick = self.limits.pick(local, u1)
        if pick is None:
            return None
        g, buy, limit, unit = pick
        margin = float(self.margin[0 if buy else 1, g, local])
        ticks = int(zip_shout_ticks(limit, margin, buy, self.tick))
        if ticks < 1:
            return None
        return agent, g, buy, ticks, unit

    def observe(self, good: int, is_bid: bool, shout: float | None, traded: float | None) -> None:
        """Update every trader's margin after a shout in ``good`` (see :func:`zip_rules`)."""
        if good not in self.limits.goods:
            return
        q = traded if traded is not None else shout
        if q is None:
            return
        accepted = traded is not None
        q_ticks = round(q / self.tick)
        buy_limits, sell_limits = self.limits.all_limits(good)
        for side, limits in ((0, buy_limits), (1, sell_limits)):
            active = np.isfinite(limits)
            if not active.any():
                continue
            margin = self.margin[side, good]
            # Cliff's rules compare the price each trader would shout with q: with prices on
            # ticks a trader's own unaccepted shout must count as "at q", or rounding away from
            # the trade (bids down, asks up) stops it from ever moving toward the other side
            # (compared in whole ticks: q is on the tick grid)
            shouts = zip_shout_ticks(limits, margin, side == 0, self.tick)
            up, down = zip_rules(shouts, active, side == 1, is_bid, q_ticks, accepted)
            move = up | down
            if not move.any():
                continue
            r = self.rng.random((2, self.n))
            new_margin, new_momentum = zip_step(
                limits[move],
                margin[move],
                self.momentum[side, good][move],
                self.beta[move],
                self.gamma[move],
                q,
                up[move],
                r[0][move],
                r[1][move],
                self.c_r,
                self.c_a,
            )
            if side == 1:
                new_margin = np.maximum(new_margin, 0.0)
            else:
                new_margin = np.clip(new_margin, -1.0, 0.0)
            margin[move] = new_margin
            self.momentum[side, good][move] = new_momentum


# ---- market maker -----------------------------------------------------------------------
def maker_quotes(
    reference: float, inventory: float, spread: float, skew: float, tick: float
) -> tuple[int, int]:
    """Bid and ask in ticks of an inventory-aware market maker.

    The quotes straddle ``center = reference (1 - skew d)`` at relative half-spread ``spread``,
    where ``d`` is the inventory deviation from target clipped to [-1, 1]: a maker holding too
    much lowers both quotes (to sell more and buy less), one holding too little raises them.
    The bid is rounded down and the ask up, and they are at least one tick apart.
    """
    d = min(1.0, max(-1.0, inventory))
    center = reference * (1.0 - skew * d)
    bid = max(1, math.floor(center * (1.0 - spread) / tick + _EPS))
    ask = max(bid + 1, math.ceil(center * (1.0 + spread) / tick - _EPS))
    return bid, ask


class MarketMaker(Behaviour):
    """A simple inventory-aware market maker: two-sided quotes around the book.

    On each action the agent picks a good and quotes :func:`maker_quotes` around a reference
    price: the book's mid, else its last trade, else ``fair_price``, else the agent's own limit
    (MRS or unit value). The inventory deviation is ``(held - target) / max(target,
    order_size)`` with the target its holdings when the market opened. It withdraws its
    previous pair first; each side is sized to what it can commit.
    """

    name = "market_maker"
    options: ClassVar[Mapping[str, Option]] = {
        **COMMON,
        "spread": Option(
            0.02,
            "relative half-spread",
            float,
            check=lambda v: None if 0 < v < 1 else "must be in (0, 1)",
        ),
        "skew": Option(
            0.05,
            "relative shift of the quotes at full inventory deviation",
            float,
            check=lambda v: None if 0 <= v < 1 else "must be in [0, 1)",
        ),
        "fair_price": Option(None, "reference price before the book has one", _optional_rate),
    }

    def __init__(self, market: OrderBookMarket, slot: PopulationSlot) -> None:
        super().__init__(market, slot)
        self.target = np.array(market._h[slot.rows], dtype=np.float64) / BASE_UNITS
        self.size = self.lots * market.lot
        self.live_ask: dict[int, list[int]] = {g: [0] * self.n for g in self.live}

    def decide(self, agent: int, u1: float, u2: float) -> tuple[Any, ...] | None:
        local = agent - self.start_row
        goods = self.limits.goods
        g = goods[min(int(u1 * len(goods)), len(goods) - 1)]
        m = self.market
        book = m._books[g]
        b, a = book.best_bid, book.best_ask
        if b is not None and a is not None:
            ref: float | None = m.price_of(b + a) / 2
        else:
            ref = m._last[g] or self.opts["fair_price"]
        if ref is None:
            pick = self.limits.pick(local, u1)
            ref = None if pick is None or pick[0] != g else pick[2]
        if ref is None or not ref > 0:
            return None
        target = self.target[local, g]
        held = m._hv[agent, g] / BASE_UNITS
        d = (held - target) / max(target, self.size)
        bid, ask = maker_quotes(ref, d, self.opts["spread"], self.opts["skew"], self.tick)
        return agent, g, bid, ask

    def execute(self, order: tuple[Any, ...]) -> None:
        self.place(order)

    def place(self, order: tuple[Any, ...]) -> None:
        agent, g, bid, ask = order
        local = agent - self.start_row
        m, desk = self.market, self.desk
        for live in (self.live[g], self.live_ask[g]):
            if live[local]:
                desk.cancel(agent, g, live[local])
                live[local] = 0
        lots = min(self.lots, m.free_cash(agent) // (bid * m.tick_base))
        if lots > 0:
            r = desk.limit(agent, g, True, lots, bid)
            if r[5]:
                self.live[g][local] = r[0] or 0
        lots = min(self.lots, m.free_goods(agent, g) // m.lot_base)
        if lots > 0:
            r = desk.limit(agent, g, False, lots, ask)
            if r[5]:
                self.live_ask[g][local] = r[0] or 0


BEHAVIOURS: dict[str, type[Behaviour]] = {
    "utility": UtilityTrader,
    "zi_c": ZeroIntelligence,
    "zi_u": UnconstrainedZeroIntelligence,
    "zip": ZeroIntelligencePlus,
    "market_maker": MarketMaker,
    "external": External,
}
# The order book's adversaries subclass Behaviour and add themselves to BEHAVIOURS on import.
from mktsim.mechanisms import _adversaries  # noqa: E402, F401


def default_behaviour(slot: PopulationSlot) -> str:
    """``utility`` for populations with a utility, ``zi_c`` for induced-value traders,
    ``belief`` for belief traders."""
    pop = slot.population
    if pop.kind == "induced":
        return "zi_c"
    if pop.kind in ("firms", "source", "final_demand"):  # mechanisms._firm_traders
        return "firm" if pop.kind == "firms" else pop.kind
    if pop.kind == "belief_traders":  # mechanisms._belief_traders
        return "belief"
    if hasattr(pop, "utility"):
        return "utility"
    raise InvalidParameter(
        f"population {slot.name!r} ({pop.kind}) has no default behaviour under order_book: "
        f"name one of {', '.join(BEHAVIOURS)}"
    )


def make_behaviour(market: OrderBookMarket, slot: PopulationSlot) -> Behaviour:
    """The behaviour object of one population (validated options, not yet started)."""
    name = slot.population.behaviour or default_behaviour(slot)
    if name not in BEHAVIOURS:
        raise unknown_behaviour(slot.name, "order_book", name, list(BEHAVIOURS))
    return BEHAVIOURS[name](market, slot)


# The supply-chain (mechanisms._firm_traders), prediction-market (mechanisms._belief_traders) and
# dealer-market (mechanisms._dealer) behaviours subclass Behaviour and add themselves to BEHAVIOURS
# on import.
from mktsim.mechanisms import _belief_traders, _dealer, _firm_traders  # noqa: E402, F401
