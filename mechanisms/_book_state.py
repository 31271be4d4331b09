"""The state the order book's parts share: the attributes
:class:`mktsim.mechanisms.order_book.OrderBookMarket` sets up, declared once for its mixins.

The market is one class assembled from mixins, one module per responsibility (order entry,
shocks, sessions, recording, reading). Each mixin derives from :class:`_BookState`, so the
type checker knows the attributes and the methods they call on each other; at run time the
declarations add nothing (annotations only, stubs only under ``TYPE_CHECKING``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, cast

import numpy as np
import simpy
from mktsim.mechanisms._book import OrderBook, Result, Status

from mktsim.market import Shout
from mktsim.mechanism import MarketContext, PopulationSlot
from mktsim.orders import Receipt

_REJECTED = Status.REJECTED
#: Status of an action sent during a latency spike, not yet at the book (not an engine status).
_PENDING = cast(Status, "pending")
_NAN = math.nan
#: Each engine status as the plain string a receipt carries.
_STATUS: dict[Any, str] = {status: str(status) for status in Status}
#: Most distinct prices (and quantities) whose grid steps a market remembers.
_GRID_MEMO = 1 << 16
#: Order ids are journalled as int64: a larger id cannot name an order and is refused as data.
_ID_LIMIT = 2**63


class _BookState:
    """Attributes of the order book market (set in its ``__init__`` and ``attach``)."""

    name: ClassVar[str]
    accepts: ClassVar[frozenset[type]]
    opts: dict[str, Any]
    tick: float
    lot: float
    base_units: float
    lot_base: int
    tick_base: int
    _ticks_per_unit: int | None
    _tick_price: float
    _ticks_of: dict[float, int]
    _lots_of: dict[float, int]
    actions: int
    counts: dict[str, int]
    _withdrawals: int
    _front: Any
    sessions_run: int
    behaviour_names: dict[str, str]
    _observers: list[Callable[[Shout], None]]
    _tell: bool
    _updated: simpy.Event | None
    services: dict[str, Any]
    ctx: MarketContext
    _env: simpy.Environment
    _ledger: Any
    _num: int
    _g: int
    _goods: Sequence[str]
    _traded: list[int]
    _index: dict[str, int]
    _numeraire_name: str
    _books: list[OrderBook]
    _rc: list[int]
    _rg: list[list[int]]  # reserved goods, base units: _rg[good][agent]
    _n_agents: int
    _h: np.ndarray
    _hv: memoryview
    _last: list[float | None]
    _kept: list[float | None]
    _kept_at: list[int]
    _est: list[float | None]
    _w: float
    _lifetime: float | None
    _expiry: deque[tuple[float, int, int, int]]
    _clear: bool
    _record_all: bool
    _record_rejected: bool
    _append: Callable[..., Any]
    _seen: int
    _demand_slots: Sequence[PopulationSlot]

    if TYPE_CHECKING:
        # The methods the mixins call on each other (defined in one of them).
        def _submit(self, order: Any) -> Receipt: ...

        def _order_receipt(self, r: Result, buy: bool | None) -> Receipt: ...

        def price_of(self, ticks: int) -> float: ...

        def free_cash(self, agent: int) -> int: ...

        def free_goods(self, agent: int, good: int) -> int: ...

        def _estimate(self, g: int) -> float | None: ...

        def _settle(self, g: int, r: Result, taker_limit: int | None) -> None: ...

        def clear(self, good: int | None = None, action: str = "clear") -> int: ...

        def _reconcile(self) -> None: ...

        def sync_shock_counts(self) -> None: ...

        def _expire(self) -> None: ...

        def _refuse(
            self,
            agent: int,
            g: int,
            action: str,
            buy: bool | None,
            ticks: int | None,
            lots: int | None,
            reason: str,
            order_id: int | None = None,
        ) -> Result: ...

        def _log_result(
            self,
            agent: int,
            g: int,
            action: str,
            buy: bool | None,
            ticks: int | None,
            lots: int | None,
            r: Result,
            order_id: int | None = None,
        ) -> None: ...

        def _record_prices(self) -> None: ...

        def _limit(
            self, agent: int, g: int, buy: bool, lots: int, ticks: int, kind: str
        ) -> Result: ...

        def _market(self, agent: int, g: int, buy: bool, lots: int) -> Result: ...

        def _cancel(
            self, agent: int, g: int, order_id: int, log_rejection: bool = True
        ) -> Result: ...

        def _modify(
            self, agent: int, g: int, order_id: int, new_lots: int | None, new_ticks: int | None
        ) -> Result: ...

        def _after(
            self, agent: int, g: int, buy: bool, lots: int, ticks: int, kind: str, r: Result
        ) -> Result: ...

        def record_rejection(
            self,
            agent: int,
            g: int,
            action: str,
            side: str,
            price: float,
            quantity: float,
            reason: str,
            order_id: int = -1,
        ) -> None: ...
