"""Shocks as data: scheduled changes to the economy or to the market, applied at a time.

Economy shocks change holdings or preferences through the core, under any mechanism:
:class:`EndowmentShock` creates or destroys goods through the ledger, :class:`PreferenceShock`
swaps a population's utility. Market shocks ask the mechanism to change how it works:
:class:`LatencySpike`, :class:`Outage`, :class:`PriceClamp`, :class:`PriceCeiling`,
:class:`PriceFloor`, :class:`LiquidityWithdrawal`; a
mechanism declares the ones it supports in ``supported_shocks`` and a run refuses, before it
starts, a shock its mechanism cannot apply. Every applied shock is logged in the ``events`` table,
and economy shocks record a ``holdings`` snapshot at their time, so reports can recompute the
reference equilibrium of the shocked economy.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from typing import Any, ClassVar

import attrs
import numpy as np
import simpy
from attrs import field, frozen

from mktsim.errors import InvalidParameter, UnknownName

__all__ = [
    "PRICE_CONTROLS",
    "SHOCKS",
    "CircuitBreaker",
    "EndowmentShock",
    "LatencySpike",
    "LiquidityWithdrawal",
    "Outage",
    "PreferenceShock",
    "PriceCeiling",
    "PriceClamp",
    "PriceControl",
    "PriceFloor",
    "Shock",
    "parse_shock",
]


def _time(_: object, attribute: Any, value: float) -> None:
    if not np.isfinite(value) or value < 0:
        raise InvalidParameter(f"{attribute.name}(={value}) must be >= 0 and finite")


def _positive(_: object, attribute: Any, value: float) -> None:
    if not np.isfinite(value) or value <= 0:
        raise InvalidParameter(f"{attribute.name}(={value}) must be > 0 and finite")


def _optional_float(value: Any) -> float | None:
    """None (no end) or a float; text that is not a number is kept, for the validator to name."""
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _optional_positive(_: object, attribute: Any, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, float) or not np.isfinite(value) or value <= 0:
        raise InvalidParameter(f"{attribute.name}(={value!r}) must be > 0 and finite, or None")


def _name(_: object, attribute: Any, value: Any) -> None:
    if not isinstance(value, str):
        raise InvalidParameter(f"{attribute.name}(={value!r}) must be a good's name")


def _optional_name(_: object, attribute: Any, value: Any) -> None:
    if value is not None:
        _name(_, attribute, value)


@frozen
class EndowmentShock:
    """At ``time``, every agent of ``population`` (all if None) has its holding of ``good``
    multiplied by ``factor`` (0.5 destroys half the supply, 1.2 adds a fifth)."""

    kind: ClassVar[str] = "endowment"
    market: ClassVar[bool] = False
    time: float = field(converter=float, validator=_time)
    good: str = field(validator=_name)
    factor: float = field(converter=float, validator=_time)
    population: str | None = None

    def apply(self, ctx: Any) -> str:
        j = ctx.goods.index(self.good)
        total = 0
        for slot in ctx.slots:
            if self.population not in (None, slot.name):
                continue
            rows = slot.row_ids
            held = ctx.ledger.holdings[rows, j]
            deltas = np.zeros((rows.size, len(ctx.goods)), dtype=np.int64)
            deltas[:, j] = np.maximum(np.rint(held * (self.factor - 1.0)).astype(np.int64), -held)
            ctx.ledger.adjust(rows, deltas, f"endowment shock on {self.good}")
            total += int(deltas[:, j].sum())
        who = self.population or "everyone"
        units = float(ctx.goods.from_base(total))  # the run's base units, back to units
        return f"{self.good} of {who} x{self.factor:g} ({units:+.6g} units)"


@frozen
class PreferenceShock:
    """At ``time``, population ``population`` gets a new utility (same agents and goods)."""

    kind: ClassVar[str] = "preference"
    market: ClassVar[bool] = False
    time: float = field(converter=float, validator=_time)
    population: str
    utility: Any

    def apply(self, ctx: Any) -> str:
        slot = ctx.slot(self.population)
        old = ctx.current[slot.name]
        if not hasattr(old, "utility"):
            raise InvalidParameter(f"population {slot.name!r} has no utility to shock")
        if (self.utility.n_agents, self.utility.n_goods) != (old.size, len(ctx.goods)):
            raise InvalidParameter(
                f"preference shock for {slot.name!r}: utility has shape "
                f"({self.utility.n_agents}, {self.utility.n_goods}), expected ({old.size}, "
                f"{len(ctx.goods)})"
            )
        ctx.current[slot.name] = attrs.evolve(old, utility=self.utility)
        return f"{slot.name} now has {type(self.utility).__name__} preferences"


@frozen
class LatencySpike:
    """From ``time`` for ``duration``, every response takes ``delay`` longer."""

    kind: ClassVar[str] = "latency"
    market: ClassVar[bool] = True
    time: float = field(converter=float, validator=_time)
    duration: float = field(converter=float, validator=_positive)
    delay: float = field(converter=float, validator=_positive)


@frozen
class Outage:
    """From ``time`` for ``duration`` the mechanism does not clear (no postings, no matching)."""

    kind: ClassVar[str] = "outage"
    market: ClassVar[bool] = True
    time: float = field(converter=float, validator=_time)
    duration: float = field(converter=float, validator=_positive)


#: Shock kinds that hold a good's price: ``clamp`` (at a price, or in a band around it),
#: ``ceiling`` (at most) and ``floor`` (at least).
PRICE_CONTROLS = ("clamp", "ceiling", "floor")

#: Which side of the price each control bounds: (from below, from above).
_SIDES: Mapping[str, tuple[bool, bool]] = {
    "clamp": (True, True),
    "ceiling": (False, True),
    "floor": (True, False),
}


@frozen
class PriceControl:
    """From ``time`` (for ``duration``, or to the end if None) the price of ``good``
    (numeraire = 1) is bounded at ``price`` on the side(s) its ``kind`` names: from above
    (``ceiling``), from below (``floor``) or both (``clamp``). One implementation for the three
    controls; :class:`PriceClamp`, :class:`PriceCeiling` and :class:`PriceFloor` only name the
    side."""

    kind: ClassVar[str]
    market: ClassVar[bool] = True
    time: float = field(converter=float, validator=_time)
    good: str = field(validator=_name)
    price: float = field(converter=float, validator=_positive)
    duration: float | None = field(
        default=None, converter=_optional_float, validator=_optional_positive
    )

    @property
    def sides(self) -> tuple[bool, bool]:
        """Whether the control bounds the price (from below, from above)."""
        return _SIDES[self.kind]

    def bounds(self, band: float = 0.0) -> tuple[float, float]:
        """The (low, high) prices it allows; a clamp's ``[price (1 - band), price (1 + band)]``
        (``band``, a relative half-width, widens only a two-sided control)."""
        below, above = self.sides
        if below and above:
            return self.price * (1 - band), self.price * (1 + band)
        return (self.price if below else 0.0), (self.price if above else float("inf"))

    def binds(self, excess: float, tol: float = 1e-9) -> bool:
        """Whether excess demand ``excess`` at the control is on a side it pushes: a shortage
        (> tol) under a bound from above, a surplus (< -tol) under one from below."""
        below, above = self.sides
        return (above and excess > tol) or (below and excess < -tol)


class PriceClamp(PriceControl):
    """The price of ``good`` is held at ``price``, like a clamped weight; the excess demand it
    leaves, on either side, is rationed."""

    kind: ClassVar[str] = "clamp"


class PriceCeiling(PriceControl):
    """``good`` may not trade above ``price``: binds only where the market would price the good
    higher, leaving a shortage (see :mod:`mktsim.controls`)."""

    kind: ClassVar[str] = "ceiling"


class PriceFloor(PriceControl):
    """``good`` may not trade below ``price``: binds only where the market would price the good
    lower, leaving a surplus (see :mod:`mktsim.controls`)."""

    kind: ClassVar[str] = "floor"


@frozen
class LiquidityWithdrawal:
    """At ``time`` a fraction of the market's liquidity leaves (pool reserves, a maker's
    depth, resting orders)."""

    kind: ClassVar[str] = "liquidity"
    market: ClassVar[bool] = True
    time: float = field(converter=float, validator=_time)
    fraction: float = field(converter=float)

    @fraction.validator
    def _fraction(self, _: Any, value: float) -> None:
        if not 0 < value <= 1:
            raise InvalidParameter(f"fraction(={value}) must be in (0, 1]")


@frozen
class CircuitBreaker:
    """From ``time`` (for ``duration``, or to the end if None), trading in ``good`` (every
    good if None) halts for ``halt`` whenever its quoted price has moved more than
    ``threshold`` (relative) from its reference: the price when the breaker was armed, then the
    price at which it last tripped."""

    kind: ClassVar[str] = "breaker"
    market: ClassVar[bool] = True
    time: float = field(converter=float, validator=_time)
    threshold: float = field(converter=float, validator=_positive)
    halt: float = field(converter=float, validator=_positive)
    good: str | None = field(default=None, validator=_optional_name)
    duration: float | None = field(
        default=None, converter=_optional_float, validator=_optional_positive
    )


Shock = (
    EndowmentShock
    | PreferenceShock
    | LatencySpike
    | Outage
    | PriceClamp
    | PriceCeiling
    | PriceFloor
    | LiquidityWithdrawal
    | CircuitBreaker
)

SHOCKS: Mapping[str, type] = {
    cls.kind: cls
    for cls in (
        EndowmentShock,
        PreferenceShock,
        LatencySpike,
        Outage,
        PriceClamp,
        PriceCeiling,
        PriceFloor,
        LiquidityWithdrawal,
        CircuitBreaker,
    )
}


def parse_shock(text: str) -> Shock:
    """A shock from the CLI form ``kind:key=value,key=value`` (e.g.
    ``endowment:time=50,good=good1,factor=0.5``). Preference shocks need Python objects and are
    declared in scenario scripts."""
    import ast

    kind, _, rest = text.partition(":")
    if kind not in SHOCKS:
        raise UnknownName("shock", kind, list(SHOCKS))
    if kind == "preference":
        raise InvalidParameter("preference shocks carry a utility: declare them in a scenario")
    values: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidParameter(f"shock {text!r}: {item!r} is not key=value")
        try:
            values[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            values[key.strip()] = value
    fields = {a.name for a in attrs.fields(SHOCKS[kind])}
    unknown = set(values) - fields
    if unknown:
        raise UnknownName(f"field of {kind} shock", sorted(unknown)[0], sorted(fields))
    try:
        return SHOCKS[kind](**values)
    except (TypeError, ValueError) as exc:
        raise InvalidParameter(f"shock {text!r}: {exc}") from None


def check_supported(
    shocks: tuple[Shock, ...],
    mechanism: Any,
    goods: Any,
    populations: list[str],
    wrapped: Iterable[str] = (),
) -> None:
    """Refuse, before the run starts, shocks the mechanism cannot apply or naming unknown goods.
    ``wrapped``: market shock kinds a wrapper around ``submit`` applies for it
    (:func:`mktsim.wrappers.provided`). A mechanism whose goods carry obligations an economy
    shock could break (an LMSR maker's shares, a right to act) says so in its optional
    ``check_shock(shock, goods)``, raising :class:`InvalidParameter`."""
    supported = set(getattr(mechanism, "supported_shocks", ())) | set(wrapped)
    own_check = getattr(mechanism, "check_shock", None)
    for shock in shocks:
        if own_check is not None:
            own_check(shock, goods)
        if shock.market and shock.kind not in supported:
            raise InvalidParameter(
                f"mechanism {mechanism.name!r} does not support {shock.kind} shocks "
                f"(it supports: {', '.join(sorted(supported)) or 'none'})"
            )
        good = getattr(shock, "good", None)  # (a circuit breaker's None: every good)
        if good is not None:
            goods.index(good)
            if shock.kind in PRICE_CONTROLS and good == goods.numeraire:
                raise InvalidParameter(
                    f"{shock.kind} of {good!r}: the numeraire's price is 1 by definition"
                )
        name = getattr(shock, "population", None)
        if name is not None and name not in populations:
            raise UnknownName("population", name, populations)


def check_timing(shocks: Iterable[Shock], horizon: float) -> None:
    """Refuse, before the run starts, a shock due at or after the run's end (``until``): it
    would never act, and the run would read as if the economy had absorbed it."""
    for shock in shocks:
        if shock.time >= horizon:
            raise InvalidParameter(
                f"{shock.kind} shock at time={shock.time:g} is not before the end of the run "
                f"(until={horizon:g}): it would never act"
            )


def schedule(
    ctx: Any, mechanism: Any, shocks: tuple[Shock, ...], snapshot: Any, before: Any = None
) -> Generator[simpy.Event, Any, None]:
    """SimPy process applying shocks in time order (ties in declaration order).

    ``before()`` and ``snapshot()`` are called just before and just after each shock that
    changes the economy (endowments, preferences), so the run can close one economy's books and
    open the next one's.
    """
    env = ctx.env
    ordered = sorted(shocks, key=lambda s: s.time)
    ctx.pending_shocks.extend(ordered)  # before the market's first step: it reads them
    for item in ordered:
        shock: Any = item
        if shock.time > env.now:
            yield env.timeout(shock.time - env.now)
        if not shock.market and before is not None:
            before()
        detail = mechanism.apply_shock(shock) if shock.market else shock.apply(ctx)
        ctx.pending_shocks.remove(shock)
        ctx.log(f"shock:{shock.kind}", detail or repr(shock))
        if not shock.market:
            snapshot()
