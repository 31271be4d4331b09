"""The market protocol: what every mechanism offers and every strategy acts through.

A mechanism *clears*: it takes orders (:mod:`mktsim.orders`) through :meth:`Market.submit`,
answers each with one :class:`~mktsim.orders.Receipt` (the value of the returned SimPy event),
shows a frozen, typed :class:`~mktsim.orders.Quote`, and moves holdings only through the ledger.
A strategy *decides*: it reads a quote and its agents' valuations and submits orders. Neither
knows the other's internals, so N strategies and M mechanisms cost N + M.

``accepts`` lists the order types a mechanism takes; a strategy whose ``emits`` shares nothing
with it is refused before the run (:func:`check_pairing` names the mechanisms that would do).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Protocol, cast, runtime_checkable

import simpy

from mktsim.orders import Quote, Receipt, order_name

__all__ = ["Market", "accepted_by", "check_pairing", "settled"]


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
    at once, and nothing is put on the event queue (an immediate answer costs no scheduling)."""

    def __init__(self, env: simpy.Environment, value: Any) -> None:
        self.env = env
        self.callbacks = cast(Any, None)  # processed: yielding it does not wait
        self._value = value
        self._ok = True
        self._defused = False


def settled(env: simpy.Environment, receipt: Receipt) -> simpy.Event:
    """An already-processed event whose value is ``receipt`` (an immediate answer)."""
    return _Settled(env, receipt)


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
