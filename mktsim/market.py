"""The market protocol: what every mechanism offers and every strategy acts through.

A mechanism *clears*: it takes orders (:mod:`mktsim.orders`) through :meth:`Market.submit`,
answers each with one :class:`~mktsim.orders.Receipt` (the value of the returned SimPy event),
shows a frozen, typed :class:`~mktsim.orders.Quote`, and moves holdings only through the ledger.
A strategy *decides*: it reads a quote and its agents' valuations and submits orders. Neither
knows the other's internals, so N strategies and M mechanisms cost N + M.

``accepts`` lists the order types a mechanism takes; a strategy whose ``emits`` shares nothing
with it is refused before the run (:func:`check_pairing` names the mechanisms that would do).

Optional parts, for markets where orders rest (an order book offers them all; a strategy
falls back to what it can do without them):

* ``observe(listener)``: ``listener(shout)`` is called with a :class:`Shout` after every order
  that reaches the market, before its receipt is handed back: a public feed of shouts and
  trades, for strategies that learn from other traders' prices (Cliff's ZIP);
* ``available(agent, good) -> int``: base units (the ledger's integers, the run's
  ``ctx.goods.base_units`` per unit) of
  ``good`` the agent holds beyond what its resting orders reserve, so a strategy can size an
  order to what it may commit;
* ``resting(agent, good, order_id) -> float``: units of one of the agent's orders still resting
  (0.0 once it has traded, expired or been withdrawn; NaN while it is still on its way to the
  market), so a strategy withdraws only what is there;
* ``repost(agent, good, order_id, buy, lots, ticks) -> int | None``: the withdraw-and-post of
  a strategy that keeps one order resting per good, in one call: withdraw ``order_id`` (0:
  none) if it still rests, then post a limit order of at most ``lots`` lots at ``ticks`` ticks
  (the quote's grids), cut to what the agent may commit; the id it rests under (0 if it does
  not rest). Exactly what a ``Cancel`` and a ``Limit`` through ``submit`` would do, without
  building them; None (nothing done) when the market cannot take that path at the moment (a
  shock in force, say), and the strategy submits the orders instead. Wrappers never pass it
  through: they act on ``submit``;
* ``reference_prices() -> Mapping[str, float | None]``: what ``quote().prices`` would show
  (one reference price per non-numeraire good, None where there is none yet), without building
  the quote: its best quantities, depth and validation cost more than the prices themselves, and
  a strategy that reads only prices on every action asks this instead, falling back to
  ``quote().prices`` when a market does not offer it.

A quote may also carry ``tick`` and ``lot``: the grids prices and quantities must lie on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

import simpy
from attrs import frozen

from mktsim.orders import Quote, Receipt, order_name

__all__ = [
    "Market",
    "Shout",
    "Top",
    "accepted_by",
    "check_grid",
    "check_pairing",
    "grid_bases",
    "prices_reader",
    "run_grid",
    "settled",
    "unpriced",
    "whole",
]


@frozen
class Shout:
    """One order as the market's public feed shows it (no agent id: shouts are anonymous).

    Attributes:
        time: when it reached the market.
        good: the good's name.
        side: ``buy`` or ``sell``.
        price: its limit price (numeraire per unit); None for a market order.
        traded: the price of its last fill; None when it did not trade (it rests, or found
            nothing).
    """

    time: float
    good: str
    side: str
    price: float | None
    traded: float | None


@frozen
class Top:
    """One good's top of the market (numeraire per unit; None where there is none).

    Attributes:
        best_bid, best_ask: the highest resting bid and lowest resting ask.
        last: the last trade (clearing) price.
        estimate: the market's price estimate (an average of recent trade prices; an order
            book shows the mid before its first trade).
    """

    best_bid: float | None
    best_ask: float | None
    last: float | None
    estimate: float | None


@runtime_checkable
class Market(Protocol):
    """What a strategy sees of a market (a mechanism, or a wrapper around one).

    ``submit`` returns an event whose value is the order's receipt; mechanisms that answer at
    once return it already processed (:func:`settled`), so a strategy may read
    ``event.value`` straight away or ``yield`` it at no cost. ``updated`` fires at the next
    change a strategy may wait for (the auctioneer's next posting, a batch's clearing); markets
    that change continuously fire it at the next fill.
    """

    accepts: ClassVar[frozenset[type]]

    def submit(self, order: Any) -> simpy.Event: ...

    def quote(self) -> Quote: ...

    def updated(self) -> simpy.Event: ...


class _Settled(simpy.Event):
    """An event that is already processed, carrying its value: yielding it resumes the process
    at once, and nothing is put on the event queue (an immediate answer costs no scheduling).
    What every such event shares lives on the class, so making one sets two attributes."""

    callbacks = None  # type: ignore[assignment]  # processed: yielding it never waits
    _ok = True
    _defused = False
    # A plain attribute in place of the base class's property: reading a receipt is then one
    # dictionary lookup (strategies read one on every action).
    value = None

    def __init__(self, env: simpy.Environment, value: Any) -> None:
        self.env = env
        self._value = self.value = value


#: ``settled(env, receipt)``: an already-processed event whose value is ``receipt`` (an
#: immediate answer). The class itself, so that making one costs a single call.
settled: Callable[[simpy.Environment, Receipt], simpy.Event] = _Settled


def prices_reader(market: Any) -> Callable[[], Mapping[str, float | None]]:
    """What a strategy calls for ``market``'s reference prices: its optional
    ``reference_prices`` where it offers one, else ``quote().prices`` (the same prices, at the
    cost of building the whole quote). Looked up once, before the run."""
    fast = getattr(market, "reference_prices", None)
    if fast is not None:
        return fast
    return lambda: market.quote().prices


def accepted_by(emits: Iterable[type], mechanisms: dict[str, Any]) -> list[str]:
    """Names of the mechanisms (name -> class) that accept any order type in ``emits``."""
    wanted = set(emits)
    return sorted(
        name for name, cls in mechanisms.items() if wanted & set(getattr(cls, "accepts", ()))
    )


def check_pairing(
    strategy: str,
    emits: Iterable[type],
    mechanism: str,
    accepts: Iterable[type],
    elsewhere: list[str],
) -> str | None:
    """The one-line reason a strategy cannot run under a mechanism, or None if it can."""
    emits, accepts = set(emits), set(accepts)
    if emits & accepts:
        return None
    sends = ", ".join(sorted(order_name(k) for k in emits)) or "no"
    takes = ", ".join(sorted(order_name(k) for k in accepts)) or "no"
    where = f"; it runs under {', '.join(elsewhere)}" if elsewhere else ""
    return (
        f"strategy {strategy!r} sends {sends} orders, which {mechanism} does not accept (it "
        f"takes {takes}){where}"
    )


def whole(x: float) -> int | None:
    """``x`` as an int >= 1 if it is one to within float rounding, else None (None too for an
    infinite or NaN ``x``: no count of base units)."""
    if not math.isfinite(x):
        return None
    r = round(x)
    return int(r) if r >= 1 and abs(x - r) <= 1e-9 * max(1.0, abs(x)) else None


def grid_bases(tick: float, lot: float, base_units: float, exact: bool = True) -> tuple[int, int]:
    """A market's lot and tick-times-lot in ledger base units (``base_units`` per unit: the
    run's, ``ctx.goods.base_units``, which depends on the economy's size), refusing a grid past
    what the ledger can count and, if ``exact``, one on which fills could not settle exactly
    (both must be whole numbers of base units); otherwise both are rounded (a mechanism's
    placeholders before a run gives it its base unit)."""
    from mktsim.errors import InvalidParameter
    from mktsim.goods import MAX_BASE

    base = base_units
    for name, value, count in (("lot", lot, lot * base), ("tick", tick, tick * lot * base)):
        # (NaN too) no ledger count could hold one lot or one tick; before a run gives the
        # market its base unit, only a count no base unit could bring back is refused
        if not (count < MAX_BASE if exact else math.isfinite(count)):
            raise InvalidParameter(
                f"{name}(={value}) is past what the ledger can count: a lot, and its value at "
                f"one tick, must each be under {MAX_BASE / base:.6g} units (int64 base units "
                f"of 1/{base:g})"
            )
    if not exact:
        return round(lot * base), round(tick * lot * base)
    lot_base = whole(lot * base)
    if lot_base is None:
        raise InvalidParameter(
            f"lot(={lot}) must be a whole number (>= 1) of base units (1/{base:g} of a unit)"
        )
    tick_base = whole(tick * lot * base)
    if tick_base is None:
        raise InvalidParameter(
            f"tick(={tick}) x lot(={lot}) must be a whole number (>= 1) of base units of "
            f"the numeraire (1/{base:g}), so fills settle exactly"
        )
    return lot_base, tick_base


def run_grid(ctx: Any, tick: float, lot: float, mechanism: str) -> tuple[int, int]:
    """A limit-order market's ``(lot_base, tick_base)`` for the run of ``ctx``
    (:func:`grid_bases` at the run's base unit), having refused, before the run, a grid on which
    nothing could trade (:func:`check_grid`; not checked when the economy produces goods)."""
    base_units = ctx.goods.base_units
    lot_base, tick_base = grid_bases(tick, lot, base_units)
    if not any(getattr(s.population, "creates", ()) for s in ctx.slots):
        rows = ctx.ledger.holdings[: ctx.scenario.n_agents]
        # strategies trade only with each other: one agent alone cannot (a market driven by
        # hand, without strategies, may test what its own orders do when they meet)
        counterpart = bool(ctx.strategies)
        num = ctx.goods.numeraire_index
        check_grid(rows, num, lot_base, tick_base, mechanism, base_units, counterpart)
    return lot_base, tick_base


def check_grid(
    holdings: Any,
    numeraire: int,
    lot_base: int,
    tick_base: int,
    mechanism: str,
    base_units: float,
    counterpart: bool = True,
) -> None:
    """Refuse, before the run, an economy in which no agent holds one lot of any good, or none
    holds the money for one lot at one tick, or only one agent holds either (``holdings``: the
    ledger's int64 base units, agents' rows, ``base_units`` of them per unit): no order could
    be both placed and met by another's, and the run would trade nothing without saying why.
    (Economies whose goods are produced during the run are not checked.) ``counterpart=False``
    accepts one agent holding everything: a market driven by hand, where what its own orders
    do when they meet is what is tested."""
    import numpy as np

    from mktsim.errors import InvalidParameter

    goods = np.delete(np.asarray(holdings), numeraire, axis=1)
    sellers = np.flatnonzero((goods >= lot_base).any(axis=1))
    buyers = np.flatnonzero(np.asarray(holdings)[:, numeraire] >= tick_base)
    if counterpart and sellers.size == buyers.size == 1 and sellers[0] == buyers[0]:
        # an order fills only against another agent's (self-trade prevention)
        raise InvalidParameter(
            f"only agent {sellers[0]} holds a lot of any good or the money for one, and an "
            f"order fills only against another agent's, so nothing can trade under {mechanism}"
        )
    if sellers.size and buyers.size:
        return
    raise InvalidParameter(
        f"no agent holds one lot ({lot_base / base_units:g} units) of a good, or none holds the "
        f"money for one lot at one tick ({tick_base / base_units:g}), so nothing can trade under "
        f"{mechanism}: set the options lot and tick to the economy's scale"
    )


def unpriced(recorder: Any, never: list[str], why: str) -> dict[str, Any]:
    """A limit-order market's summary entries on goods it never priced: ``unpriced_goods``
    (``never``: their names) and, when that left the prices table empty (its rows start once
    every good has a price), ``no_prices``, the one-line reason the run has no final prices and
    no price error although it may have traded."""
    empty = "prices" in recorder.enabled and not recorder.rows("prices")
    reason = None
    if never and empty:
        reason = (
            f"no prices recorded: {', '.join(never)} {why}, and rows start once every good has "
            "a price, so the run has no final prices and no price error"
        )
    return {"unpriced_goods": never, "no_prices": reason}
