"""Market shocks as wrappers around ``submit``: written once, valid for every mechanism that
speaks the market protocol (:mod:`mktsim.market`).

A wrapper is itself a :class:`~mktsim.market.Market`: it takes an order, does what the shock
demands, and hands the order on (or answers it). Strategies submit to the outermost wrapper and
never know. A run wraps a mechanism only for the market shocks it plans and the mechanism does
not apply itself (``supported_shocks``), so runs without them are untouched. What is truly
internal to one mechanism (a pool's liquidity, a book's resting depth) stays inside it.

* **Latency** (:class:`Latency`, shock ``latency``: ``time``, ``duration``, ``delay``): every
  action sent during the spike reaches the market ``delay`` later, in the order it was sent;
  once the spike ends, new actions queue behind the backlog until it has drained, so the market
  never sees actions out of order (it takes them one after another, as one server would: a
  sender is never overtaken by one who sent later). The action is judged when it arrives. What
  the caller gets depends on what it sent:

  - an order that may rest or be referred to later (limit, market order, cancel, modify) is
    answered at once with a ``pending`` receipt: an order's carries a provisional negative id,
    which cancels and modifications may use (it maps to the market's id on arrival; to none if
    the order did not rest, and such a cancel is refused). :meth:`Latency.delivered` gives an
    event that fires with the market's receipt on arrival.
  - a :class:`~mktsim.orders.Swap` is answered on arrival: ``submit`` returns an event that
    fires with the market's receipt when the swap reaches it. A swap fills at once or not at
    all and nothing can refer to it afterwards, so a provisional id would give its sender
    nothing; what it waits for is the fill, at the market's state when the swap arrives (as a
    transaction sent to a pool learns its price when it is executed).

  A market's ``resting(agent, good, order_id)``, read through the wrapper, answers for a
  provisional id too (NaN while its order is on its way). A mechanism with a clock of its own (a
  pool market's ``quiet`` rule) is told of each shock a wrapper applies around it through its
  optional ``note_shock(shock)``.
* **Outage** (:class:`Outage`, shock ``outage``: ``time``, ``duration``): the market is closed:
  every order but a cancellation is refused with reason ``market closed`` (withdrawing an order
  cannot trade). What rests stays, and nothing new arrives to trade with it. A quote with an
  ``open`` field (a market maker's) reads ``open=False`` through the wrapper while it lasts.
* **Price band** (:class:`PriceBand`, shock ``clamp``: ``good``, ``price``, ``duration``): the
  good trades only at prices in ``[price (1 - b), price (1 + b)]`` (``b``: ``band``, default 0:
  at ``price`` itself). A limit order or a modification priced outside is refused with reason
  ``outside price band``; a market order runs as immediate-or-cancel at the band's edge (the
  top for a buy, the bottom for a sell) where the market takes limit orders; a swap's limit
  (its worst average price) is tightened to the edge, and a sale while the market's price stands
  above the band (a purchase while it stands below) is refused, since it would fill outside it.
  When the band starts, resting orders priced outside it are cancelled where the market lists
  them (``open_orders(good)``): by the market on its own authority where it offers
  ``cancel_for(agent, good, order_id, reason)``, else by a ``Cancel`` on the owner's behalf. On a
  market whose quote carries a price grid (``tick``) the band's edges move inward onto it (to
  the grid price nearest the clamp when none lies inside); a mechanism's ``clamp_band`` sets the
  band's width where the run does not.
  A **ceiling** (shock ``ceiling``: ``good``, ``price``, ``duration``) is the one-sided band
  ``[0, price]`` and a **floor** (shock ``floor``) the band ``[price, inf)``, held by the same
  wrapper (the ``band`` width does not widen them).
* **Circuit breaker** (:class:`CircuitBreaker`, shock ``breaker``: ``threshold``, ``halt``,
  ``good``, ``duration``): when a good's quoted price has moved more than ``threshold``
  (relative) from its reference (the price when armed, then where it last tripped), trading in
  it halts for ``halt``: orders but cancellations are refused with reason ``circuit breaker``.
  The move is seen when the next order arrives, and that order is the first refused.

Every refusal a wrapper makes is a rejected receipt and a row of the ``shock_refusals`` table
(declared with its first row: a run in which no wrapper refused anything has no such table),
and is counted by reason (:func:`refusals`): a run adds these counts to its summary's
``rejections``, with the mechanism's own, whatever the mechanism. A mechanism that keeps a log of
the orders it is sent is told of each refusal through its optional ``note_refusal(order,
reason)``, and one that hands out access points of its own (an order book's trader handles) is
given the outermost wrapper through ``note_wrapped(market)``, so that orders sent there pass the
wrappers too. The outermost wrapper offers the mechanism's one-call ``repost`` (see
:mod:`mktsim.market`) only while no wrapper acts; it answers None otherwise.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterable
from functools import partial
from typing import Any, cast

import attrs
import simpy

from mktsim.market import settled, whole
from mktsim.orders import BUY, Cancel, Limit, MarketOrder, Modify, Receipt, Swap, rejected
from mktsim.recorder import Column, Recorder

__all__ = [
    "BREAKER",
    "CLOSED",
    "NOT_RESTING",
    "OUT_OF_BAND",
    "REFUSALS_SCHEMA",
    "WRAPPERS",
    "CircuitBreaker",
    "Latency",
    "Outage",
    "PriceBand",
    "ShockedMarket",
    "Wrapper",
    "provided",
    "refusals",
    "wrap",
]

CLOSED = "market closed"
BREAKER = "circuit breaker"
OUT_OF_BAND = "outside price band"
#: Reason of a cancel or modification naming a provisional id whose order did not rest (one
#: reason for all, so that the summary counts them together).
NOT_RESTING = "the order did not rest: nothing to act on"
#: Relative slack when comparing a price with a band's edges (float rounding of price * (1 ± b)).
_SLACK = 1e-9

#: Columns of the ``shock_refusals`` table: one row per order a wrapper refused.
REFUSALS_SCHEMA: dict[str, Column] = {
    "time": Column("float64", None, "simulation time of the refusal"),
    "agent": Column("int64", None, "agent id (-1 when the order names none)"),
    "good": Column("object", None, "good named by the order ('' when none)"),
    "order": Column("object", None, "order type (limit, market, cancel, modify, swap, ...)"),
    "reason": Column("object", None, "why it was refused"),
}


class Wrapper:
    """A market around a market: passes every call through unless a subclass intervenes.

    Attributes other than the protocol's (a mechanism's own ``receipt``, ``open_orders``,
    ``summary``, ...) are read from the wrapped market.
    """

    kind = ""
    #: A market's one-call withdraw-and-post (``repost``) would go around :meth:`submit`, where
    #: wrappers act: not passed through (the outermost handle, :class:`ShockedMarket`, offers
    #: it only while no wrapper is acting).
    repost: Callable[..., int | None] | None = None

    def __init__(self, inner: Any, env: simpy.Environment, recorder: Recorder | None = None):
        self.inner = inner
        self.env = env
        self.recorder = recorder
        self.accepts = frozenset(getattr(inner, "accepts", ()))
        self.refused = 0
        self.reasons: Counter[str] = Counter()  # refusals by reason

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (during construction or unpickling)
            raise AttributeError(name)
        return getattr(self.inner, name)

    def apply(self, shock: Any) -> str:
        """Apply a market shock of this wrapper's kind; what was done, for the events table."""
        raise NotImplementedError

    def submit(self, order: Any) -> simpy.Event:
        return self.inner.submit(order)

    def quote(self) -> Any:
        return self.inner.quote()

    def updated(self) -> simpy.Event:
        return self.inner.updated()

    def idle(self) -> bool:
        """Whether the wrapper would hand every order on unchanged now (no shock in force)."""
        return True

    def refuse(self, order: Any, reason: str) -> simpy.Event:
        """Answer ``order`` with a rejected receipt, recorded."""
        self.refused += 1
        self.reasons[reason] += 1
        if self.recorder is not None:
            # declared with its first row, so a shock that refuses nothing adds no table
            self.recorder.add_table("shock_refusals", REFUSALS_SCHEMA)
            agent = getattr(order, "agent", -1)
            self.recorder.append_row(
                "shock_refusals",
                (
                    float(self.env.now),
                    int(agent) if isinstance(agent, int) else -1,
                    str(getattr(order, "good", "")),
                    type(order).__name__.lower(),
                    reason,
                ),
            )
        note = getattr(self.inner, "note_refusal", None)
        if note is not None:  # a mechanism keeping a log of every order it was sent is told
            note(order, reason)
        return settled(self.env, rejected(reason))


class Outage(Wrapper):
    """Closed windows ``[start, end)``: orders other than cancellations are refused."""

    kind = "outage"

    def __init__(self, inner: Any, env: simpy.Environment, recorder: Recorder | None = None):
        super().__init__(inner, env, recorder)
        self.windows: list[tuple[float, float]] = []

    def close(self, start: float, end: float) -> None:
        self.windows.append((float(start), float(end)))

    def apply(self, shock: Any) -> str:
        now = float(self.env.now)
        self.close(now, now + shock.duration)
        return f"market closed until {now + shock.duration:g} (wrapper)"

    def closed(self) -> bool:
        now = self.env.now
        return any(start <= now < end for start, end in self.windows)

    def idle(self) -> bool:
        return not self.windows or not self.closed()

    def submit(self, order: Any) -> simpy.Event:
        if self.windows and not isinstance(order, Cancel) and self.closed():
            return self.refuse(order, CLOSED)
        return self.inner.submit(order)

    def quote(self) -> Any:
        """The market's quote; one that says whether the market takes orders (``open``) says
        no while the market is closed, since it is the wrapper that refuses them."""
        quote = self.inner.quote()
        if self.windows and _has_open(quote) and quote.open and self.closed():
            return attrs.evolve(quote, open=False)
        return quote


def _has_open(quote: Any) -> bool:
    return attrs.has(type(quote)) and "open" in attrs.fields_dict(type(quote))


class PriceBand(Wrapper):
    """Price bands per good: ``good -> (low, high, end)`` in numeraire per unit."""

    kind = "clamp"

    def __init__(
        self,
        inner: Any,
        env: simpy.Environment,
        recorder: Recorder | None = None,
        band: float = 0.0,
    ):
        super().__init__(inner, env, recorder)
        if not 0 <= band < 1:
            raise ValueError(f"band(={band}) must be in [0, 1)")
        self.band = float(band)
        self.bands: dict[str, tuple[float, float, float]] = {}
        self.cancelled = 0

    def limit(self, good: str, low: float, high: float, end: float = math.inf) -> int:
        """Hold ``good`` within ``[low, high]`` until ``end``; cancels resting orders priced
        outside where the market lists them. Returns how many it cancelled."""
        self.bands[good] = (float(low), float(high), float(end))
        lister: Callable[[str], Iterable[Any]] | None = getattr(self.inner, "open_orders", None)
        # a market that can cancel on its own authority (and record it so) is asked to
        cancel_for: Callable[..., bool] | None = getattr(self.inner, "cancel_for", None)
        n = 0
        for agent, order_id, _side, price, _qty in list(lister(good) if lister else ()):
            if price is not None and not self._inside(price, low, high):
                if cancel_for is not None:
                    n += bool(cancel_for(agent, good, order_id, OUT_OF_BAND))
                    continue
                receipt = self.inner.submit(Cancel(agent, good, order_id)).value
                n += receipt is not None and receipt.ok
        self.cancelled += n
        return n

    def apply(self, shock: Any) -> str:
        now = float(self.env.now)
        end = math.inf if shock.duration is None else now + float(shock.duration)
        low, high = self.on_grid(*shock.bounds(self.band))
        n = self.limit(shock.good, low, high, end)
        return (
            f"{shock.good} held in [{low:g}, {high:g}] until {end:g} (wrapper); "
            f"{n} resting orders outside cancelled"
        )

    def on_grid(self, low: float, high: float) -> tuple[float, float]:
        """A band's edges moved inward onto the market's price grid (its quote's ``tick``, if
        it has one), so that an order at an edge is one the market takes; when no grid price
        lies inside a two-sided band, the grid price nearest its centre (where the good then
        trades, the long side queueing). Unchanged for a market without a grid."""
        quote = getattr(self.inner, "quote", None)
        tick = getattr(quote(), "tick", None) if quote is not None else None
        if not tick:
            return low, high
        per = whole(1.0 / tick)  # prices as ticks / (ticks per unit): as the market prints them

        def price(k: int) -> float:
            return k / per if per is not None else k * tick

        lo = max(1, math.ceil(low / tick - _SLACK)) if low > 0 else 0
        hi = math.floor(high / tick + _SLACK) if high < math.inf else None
        if hi is not None and hi < lo:
            lo = hi = max(1, round((low + high) / 2 / tick))
        return price(lo) if lo else low, price(hi) if hi is not None else high

    def idle(self) -> bool:
        now = self.env.now
        return not any(now < end for _, _, end in self.bands.values())

    @staticmethod
    def _inside(price: float, low: float, high: float) -> bool:
        return low * (1 - _SLACK) <= price <= high * (1 + _SLACK)

    def bounds(self, good: str) -> tuple[float, float] | None:
        """The band holding ``good`` now, or None."""
        held = self.bands.get(good)
        if held is None or self.env.now >= held[2]:
            return None
        return held[0], held[1]

    def submit(self, order: Any) -> simpy.Event:
        held = self.bounds(getattr(order, "good", "")) if self.bands else None
        if held is None:
            return self.inner.submit(order)
        low, high = held
        if isinstance(order, (Limit, Modify)):
            price = order.price
            if price is not None and not self._inside(price, low, high):
                return self.refuse(order, OUT_OF_BAND)
        elif isinstance(order, MarketOrder) and Limit in self.accepts:
            edge = high if order.side == BUY else low
            if 0 < edge < math.inf:  # (a floor does not cap a buy, nor a ceiling a sale)
                order = Limit(order.agent, order.good, order.side, order.qty, edge, ioc=True)
        elif isinstance(order, Swap):
            # a swap fills along the market's price from where it stands: a sale starting above
            # the band (a purchase starting below it) would trade outside it on average
            quote = getattr(self.inner, "quote", None)
            now = None if quote is None else quote().prices.get(order.good)
            if now is not None and (now > high if order.side != BUY else now < low):
                return self.refuse(order, OUT_OF_BAND)
            if order.side == BUY and high < math.inf:
                worst = high if order.limit is None else min(order.limit, high)
                order = attrs.evolve(order, limit=worst)
            elif order.side != BUY and low > 0:
                worst = low if order.limit is None else max(order.limit, low)
                order = attrs.evolve(order, limit=worst)
        return self.inner.submit(order)


class Latency(Wrapper):
    """Delay windows ``[start, end)`` adding ``delay`` each; actions delivered in send order."""

    kind = "latency"

    def __init__(self, inner: Any, env: simpy.Environment, recorder: Recorder | None = None):
        super().__init__(inner, env, recorder)
        self.windows: list[tuple[float, float, float]] = []
        self.delayed = 0
        # (due, order, provisional id or None, the event answering it on arrival or None)
        self._queue: deque[tuple[float, Any, int | None, simpy.Event | None]] = deque()
        self._backlog_until = -math.inf
        self._delivering = False
        self._next = -1
        self._ids: dict[int, int | None] = {}  # provisional id -> the market's (None: not resting)
        self._flying: set[int] = set()  # provisional ids of orders still on their way
        self._arrivals: dict[int, simpy.Event] = {}

    def __getattr__(self, name: str) -> Any:
        found = super().__getattr__(name)
        if name == "resting":  # a market's resting(agent, good, order_id) knows no provisional id
            return partial(self._resting, found)
        return found

    def _resting(
        self, resting: Callable[[int, str, int], float], agent: int, good: str, order_id: int
    ) -> float:
        """The market's ``resting`` for a provisional id too: NaN while its order is on its way,
        0.0 if it did not rest, else what rests under the market's id."""
        if order_id < 0:
            if order_id in self._flying:
                return math.nan
            real = self._ids.get(order_id)
            if real is None:
                return 0.0
            order_id = real
        return resting(agent, good, order_id)

    def idle(self) -> bool:
        return not self._queue and (not self.windows or self.extra_delay() <= 0)

    def slow(self, start: float, end: float, delay: float) -> None:
        self.windows.append((float(start), float(end), float(delay)))

    def apply(self, shock: Any) -> str:
        now = float(self.env.now)
        self.slow(now, now + shock.duration, shock.delay)
        return f"actions delayed by {shock.delay:g} until {now + shock.duration:g} (wrapper)"

    def extra_delay(self) -> float:
        """What an action sent now waits before it reaches the market (spikes only)."""
        now = self.env.now
        return sum(d for start, end, d in self.windows if start <= now < end)

    def resolve(self, order_id: int) -> int | None:
        """The market's id for a provisional one (the id itself if it is not provisional;
        None while in flight or if the order did not rest)."""
        return self._ids.get(order_id) if order_id < 0 else order_id

    def delivered(self, order_id: int) -> simpy.Event:
        """An event that fires with the market's receipt when the order sent with provisional
        id ``order_id`` reaches it."""
        if order_id not in self._ids:
            raise KeyError(f"order_id(={order_id!r}) is not a provisional id of this market")
        if order_id not in self._arrivals:
            self._arrivals[order_id] = self.env.event()
        return self._arrivals[order_id]

    def submit(self, order: Any) -> simpy.Event:
        now = self.env.now
        delay = self.extra_delay() if self.windows else 0.0
        if delay <= 0 and not self._queue:
            return self._hand_on(order)
        due = max(now + delay, self._backlog_until)
        self._backlog_until = due
        self.delayed += 1
        if isinstance(order, Swap):  # answered on arrival (see the module docstring)
            answer = self.env.event()
            self._enqueue(due, order, None, answer)
            return answer
        provisional = None
        if isinstance(order, (Limit, MarketOrder)):
            provisional = self._next
            self._next -= 1
            self._ids[provisional] = None
            self._flying.add(provisional)
        self._enqueue(due, order, provisional, None)
        ref = provisional if provisional is not None else getattr(order, "order_id", None)
        qty = float(getattr(order, "qty", None) or 0.0)
        return settled(self.env, Receipt("pending", ref, "", resting=qty))

    def _enqueue(
        self, due: float, order: Any, provisional: int | None, answer: simpy.Event | None
    ) -> None:
        self._queue.append((due, order, provisional, answer))
        if not self._delivering:
            self._delivering = True
            self.env.process(self._deliver())

    def _hand_on(self, order: Any) -> simpy.Event:
        """Submit to the market, mapping a provisional id to the market's."""
        target = getattr(order, "order_id", None)
        if isinstance(order, (Cancel, Modify)) and target is not None and target < 0:
            real = self._ids.get(target)
            if real is None:
                return self.refuse(order, NOT_RESTING)
            order = attrs.evolve(order, order_id=real)
        return self.inner.submit(order)

    def _deliver(self) -> Generator[simpy.Event, Any, None]:
        env, queue = self.env, self._queue
        while queue:
            due, order, provisional, answer = queue[0]
            if due > env.now:
                yield env.timeout(due - env.now)
            queue.popleft()
            event = self._hand_on(order)
            if provisional is not None:
                _when_processed(event, partial(self._arrived, provisional))
            elif answer is not None:
                _when_processed(event, partial(_forward, answer))
        self._delivering = False

    def _arrived(self, provisional: int, event: simpy.Event) -> None:
        receipt = cast(Receipt, event.value)
        self._ids[provisional] = receipt.order_id if receipt.resting > 0 else None
        self._flying.discard(provisional)
        waiting = self._arrivals.pop(provisional, None)
        if waiting is not None:
            waiting.succeed(receipt)


def _when_processed(event: simpy.Event, then: Callable[[simpy.Event], None]) -> None:
    """Call ``then(event)`` now if the market answered at once, else when it answers."""
    if event.processed:
        then(event)
    elif event.callbacks is not None:
        event.callbacks.append(then)


def _forward(answer: simpy.Event, event: simpy.Event) -> None:
    """Answer a swap's sender with the market's receipt."""
    answer.succeed(event.value)


class CircuitBreaker(Wrapper):
    """Trading halts in a good whose quoted price (``quote().prices``) has moved more than
    ``threshold`` from its reference; checked as orders arrive, so a halt starts at the first
    order after the move."""

    kind = "breaker"

    def __init__(self, inner: Any, env: simpy.Environment, recorder: Recorder | None = None):
        super().__init__(inner, env, recorder)
        self.armed: dict[str | None, tuple[float, float, float]] = {}  # good -> rule, end
        self.reference: dict[str, float] = {}
        self.halted: dict[str, float] = {}  # good -> end of its halt
        self.trips = 0

    def arm(self, good: str | None, threshold: float, halt: float, end: float = math.inf) -> None:
        """Watch ``good`` (every good if None) until ``end``; references start from the
        prices quoted now."""
        self.armed[good] = (float(threshold), float(halt), float(end))
        prices = self.inner.quote().prices
        for name, price in prices.items():
            if (good is None or name == good) and price is not None and price > 0:
                self.reference[name] = float(price)

    def apply(self, shock: Any) -> str:
        now = float(self.env.now)
        end = math.inf if shock.duration is None else now + float(shock.duration)
        self.arm(shock.good, shock.threshold, shock.halt, end)
        return (
            f"circuit breaker on {shock.good or 'every good'}: halt {shock.halt:g} on a move "
            f"over {shock.threshold:g} until {end:g} (wrapper)"
        )

    def idle(self) -> bool:
        now = self.env.now
        return not any(now < end for _, _, end in self.armed.values())

    def _rule(self, good: str) -> tuple[float, float] | None:
        rule = self.armed.get(good) or self.armed.get(None)
        if rule is None or self.env.now >= rule[2]:
            return None
        return rule[0], rule[1]

    def submit(self, order: Any) -> simpy.Event:
        good = getattr(order, "good", None)
        rule = self._rule(good) if self.armed and isinstance(good, str) else None
        if rule is None or isinstance(order, Cancel):
            return self.inner.submit(order)
        assert isinstance(good, str)
        now = self.env.now
        if now < self.halted.get(good, -math.inf):
            return self.refuse(order, BREAKER)
        price = self.inner.quote().prices.get(good)
        ref = self.reference.get(good)
        if price is not None and price > 0:
            if ref is None:
                self.reference[good] = float(price)
            elif abs(price / ref - 1.0) > rule[0]:
                self.trips += 1
                self.halted[good] = now + rule[1]
                self.reference[good] = float(price)
                return self.refuse(order, BREAKER)
        return self.inner.submit(order)


#: Wrappers by market shock kind, innermost first (latency outermost: a delayed action is
#: judged by the outage and the band when it arrives). One price band wrapper holds the three
#: price controls (their side is the shock's data: ``shock.bounds``).
WRAPPERS: dict[str, type[Wrapper]] = {
    "clamp": PriceBand,
    "ceiling": PriceBand,
    "floor": PriceBand,
    "breaker": CircuitBreaker,
    "outage": Outage,
    "latency": Latency,
}


def provided(mechanism: Any) -> frozenset[str]:
    """Market shock kinds the wrappers can apply to ``mechanism`` (a class or an instance):
    latency, outages and circuit breakers to any market that takes orders through ``submit``;
    price bands to one that takes limit, market or swap orders."""
    accepts = frozenset(getattr(mechanism, "accepts", ()))
    if not accepts or not hasattr(mechanism, "submit"):
        return frozenset()
    priced = bool(accepts & {Limit, MarketOrder, Swap})
    return frozenset(kind for kind, cls in WRAPPERS.items() if priced or cls is not PriceBand)


class ShockedMarket(Wrapper):
    """The outermost handle of a wrapped mechanism: strategies submit to it and the shock
    schedule applies shocks through it (to a wrapper, or to the mechanism for the kinds it
    applies itself)."""

    def __init__(
        self,
        mechanism: Any,
        env: simpy.Environment,
        recorder: Recorder | None,
        kinds: Iterable[str],
        band: float = 0.0,
    ):
        wanted = set(kinds)
        market: Any = mechanism
        self.wrappers: dict[str, Wrapper] = {}
        for cls in dict.fromkeys(WRAPPERS.values()):  # each wrapper once, innermost first
            held = wanted & {kind for kind, c in WRAPPERS.items() if c is cls}
            if held:
                extra = {"band": band} if cls is PriceBand else {}
                market = cls(market, env, recorder, **extra)
                self.wrappers.update(dict.fromkeys(held, market))
        super().__init__(market, env, None)
        self.mechanism = mechanism
        self._chain = tuple(dict.fromkeys(self.wrappers.values()))
        if callable(getattr(mechanism, "repost", None)):
            self.repost = self._repost
        bind = getattr(mechanism, "note_wrapped", None)
        if bind is not None:  # its own access points (an order book's handles) send through us
            bind(self)

    def _repost(
        self, agent: int, good: str, order_id: int, buy: bool, lots: int, ticks: int
    ) -> int | None:
        """The mechanism's one-call withdraw-and-post while no wrapper is acting (it is then
        exactly what the orders sent through the wrappers would do); None otherwise, and the
        strategy submits its orders."""
        for wrapper in self._chain:
            if not wrapper.idle():
                return None
        if order_id < 0:  # a provisional id from a latency spike now over: the market's id
            latency = self.wrappers.get("latency")
            real = latency.resolve(order_id) if isinstance(latency, Latency) else None
            order_id = real or 0
        return cast(int | None, self.mechanism.repost(agent, good, order_id, buy, lots, ticks))

    def apply_shock(self, shock: Any) -> str:
        wrapper = self.wrappers.get(shock.kind)
        if wrapper is None:
            return str(self.mechanism.apply_shock(shock))
        done = str(wrapper.apply(shock))
        note = getattr(self.mechanism, "note_shock", None)
        if note is not None:  # a mechanism keeping a clock of its own (a quiet rule) is told
            note(shock)
        return done

    def refusals(self) -> Counter[str]:
        """What the wrappers refused, by reason."""
        out: Counter[str] = Counter()
        for wrapper in dict.fromkeys(self.wrappers.values()):
            out.update(wrapper.reasons)
        return out


def refusals(market: Any) -> dict[str, int]:
    """What the shock wrappers around ``market`` refused, by reason (empty when ``market`` is
    not wrapped, or when they refused nothing)."""
    return dict(market.refusals()) if isinstance(market, ShockedMarket) else {}


def wrap(
    mechanism: Any,
    env: simpy.Environment,
    shocks: Iterable[Any],
    recorder: Recorder | None = None,
    band: float | None = None,
) -> Any:
    """The market strategies should submit to: ``mechanism`` itself, or a
    :class:`ShockedMarket` wrapping it for the planned market shocks it does not apply
    itself. ``band``: a price clamp's relative half-width (None: the mechanism's own
    ``clamp_band`` if it has one, else 0)."""
    internal = set(getattr(mechanism, "supported_shocks", ()))
    kinds = {s.kind for s in shocks if s.market and s.kind not in internal}
    kinds &= provided(mechanism)
    if not kinds:
        return mechanism
    if band is None:
        band = float(getattr(mechanism, "clamp_band", 0.0))
    return ShockedMarket(mechanism, env, recorder, kinds, band)
