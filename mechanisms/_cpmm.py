"""Pure math of the constant-product market maker (x·y = k); no SimPy, no ledger.

A pool holds a reserve ``x`` of a good and ``y`` of the numeraire; its spot price is ``y/x``
(numeraire per unit of good). A fee ``f ∈ [0, 1)`` is taken from the input and stays in the pool;
with ``g = 1 − f`` a trader paying ``d`` into the reserve ``r_in`` receives

    out = r_out · g·d / (r_in + g·d)

from ``r_out``, so that ``(r_in + g·d)(r_out − out) = r_in·r_out``: the product of the reserves
after the trade, ``(r_in + d)(r_out − out)``, equals ``k`` without a fee and grows with one.
For an infinitesimal trade the pool buys the good at ``g·y/x`` (its bid) and sells it at
``y/(g·x)`` (its ask).

Two layers:

* float closed forms (``swap_out``, ``swap_in_for_out``, ``spot_price``, ``marginal_prices``,
  ``arbitrage_to_price``) for analysis and for behaviours that plan a swap;
* ``Pool``, a frozen value with reserves in integer base units, whose swaps are exact rational
  arithmetic rounded in the pool's favour and so can settle through the ledger as they are.

Base units and rounding: both reserves are held in the ledger's base units (the same ``scale``
for every good), so prices are ratios of base units and need no conversion. The pool never pays
out more, nor takes in less, than the closed form: an output is rounded *down* and a required
input *up*, both computed exactly in integers with the fee taken at the exact binary value of the
float ``fee``. Hence ``x·y`` never decreases, even without a fee; the rounding gain to the pool is
below one base unit per swap (of the output for an exact-input swap, of the input for an
exact-output one). A swap that would leave a reserve empty, or whose
output rounds to nothing, is refused with a reason, never raised.
"""

from __future__ import annotations

import enum
import math
from fractions import Fraction
from numbers import Integral, Real

from attrs import evolve, field, frozen

from mktsim.errors import InvalidParameter

__all__ = [
    "ArbitrageTrade",
    "Pool",
    "Rejection",
    "SwapResult",
    "SwapSide",
    "arbitrage_to_price",
    "marginal_prices",
    "spot_price",
    "swap_in_for_out",
    "swap_out",
]


class SwapSide(enum.Enum):
    """The trader's side, seen from the good (x).

    BUY: the trader pays numeraire (y) into the pool and receives the good (x).
    SELL: the trader pays the good (x) into the pool and receives numeraire (y).
    """

    BUY = "buy"
    SELL = "sell"


@frozen
class Rejection:
    """A swap the pool cannot make, with the reason (normal market life, not an error)."""

    reason: str


# --- validation -------------------------------------------------------------------------------


def _real(v: float, name: str) -> float:
    if not isinstance(v, Real) or isinstance(v, bool):
        raise InvalidParameter(f"{name}(={v!r}) must be a real number")
    v = float(v)
    if not math.isfinite(v):
        raise InvalidParameter(f"{name}(={v}) must be finite")
    return v


def _positive(v: float, name: str) -> float:
    v = _real(v, name)
    if v <= 0.0:
        raise InvalidParameter(f"{name}(={v}) must be > 0")
    return v


def _nonnegative(v: float, name: str) -> float:
    v = _real(v, name)
    if v < 0.0:
        raise InvalidParameter(f"{name}(={v}) must be >= 0")
    return v


def _fee(fee: float) -> float:
    fee = _real(fee, "fee")
    if not 0.0 <= fee < 1.0:
        raise InvalidParameter(f"fee(={fee}) must be in [0, 1)")
    return fee


# --- float closed forms -----------------------------------------------------------------------


def swap_out(r_in: float, r_out: float, dx: float, fee: float = 0.0) -> float:
    """Output of paying ``dx`` into the pool: r_out·g·dx / (r_in + g·dx).

    Args:
        r_in: reserve of what the trader pays in (units), > 0.
        r_out: reserve of what the trader receives (units), > 0.
        dx: amount paid in (units of the input), >= 0.
        fee: fee rate taken from the input, in [0, 1).

    Returns:
        The amount received (units of the output), < r_out (up to float rounding when
        dx is many orders of magnitude above r_in).
    """
    r_in, r_out = _positive(r_in, "r_in"), _positive(r_out, "r_out")
    dx, g = _nonnegative(dx, "dx"), 1.0 - _fee(fee)
    return r_out * g * dx / (r_in + g * dx)


def swap_in_for_out(r_in: float, r_out: float, dy: float, fee: float = 0.0) -> float | Rejection:
    """Input needed to receive exactly ``dy``: r_in·dy / (g·(r_out − dy)).

    Args:
        r_in: reserve of what the trader pays in (units), > 0.
        r_out: reserve of what the trader receives (units), > 0.
        dy: amount wanted (units of the output), >= 0.
        fee: fee rate taken from the input, in [0, 1).

    Returns:
        The amount to pay in, or a ``Rejection`` if ``dy >= r_out`` (no finite input buys it).
    """
    r_in, r_out = _positive(r_in, "r_in"), _positive(r_out, "r_out")
    dy, g = _nonnegative(dy, "dy"), 1.0 - _fee(fee)
    if dy >= r_out:
        return Rejection(f"output {dy} is not below the reserve {r_out}: no input can buy it")
    return r_in * dy / (g * (r_out - dy))


def spot_price(x: float, y: float) -> float:
    """The pool's marginal price without fee, y/x (numeraire per unit of good)."""
    return _positive(y, "y") / _positive(x, "x")


def marginal_prices(x: float, y: float, fee: float = 0.0) -> tuple[float, float]:
    """The pool's (bid, ask) for an infinitesimal trade: (g·y/x, y/(g·x)), numeraire per good."""
    p, g = spot_price(x, y), 1.0 - _fee(fee)
    return g * p, p / g


@frozen
class ArbitrageTrade:
    """An arbitrageur's trade against the pool at an external price, and the reserves after it.

    Attributes:
        side: the arbitrageur's side, or None when the price lies within [bid, ask] already.
        amount_in: paid into the pool (numeraire if BUY, good if SELL), >= 0.
        amount_out: received from the pool (good if BUY, numeraire if SELL), >= 0.
        x: good reserve after the trade.
        y: numeraire reserve after the trade.
    """

    side: SwapSide | None
    amount_in: float
    amount_out: float
    x: float
    y: float


def arbitrage_to_price(x: float, y: float, price: float, fee: float = 0.0) -> ArbitrageTrade:
    """The single trade that brings the pool's marginal price to ``price`` (P), from the side the
    trader gains on: the most profitable trade for an arbitrageur who can trade at P elsewhere.

    Without fee the reserves go to x' = √(k/P), y' = √(k·P), where y'/x' = P. With a fee the trade
    runs until the price of its last infinitesimal unit equals P: a buyer paying d stops at
    (y + g·d)² = g·P·x·y, a seller paying e at (x + g·e)² = g·x·y/P, which is where the profit
    P·out − d (or out − P·e) peaks. The fee, added to the reserves, leaves the pool's quoted ask
    after a purchase slightly above P (bid after a sale slightly below): P lies within the new
    [bid, ask], so no further trade pays.

    Args:
        x: good reserve (units), > 0.
        y: numeraire reserve (units), > 0.
        price: the external price P (numeraire per good), > 0.
        fee: fee rate in [0, 1).

    Returns:
        The trade; ``side=None`` with zero amounts if bid <= P <= ask already.
    """
    x, y = _positive(x, "x"), _positive(y, "y")
    price, g = _positive(price, "price"), 1.0 - _fee(fee)
    if g * price * x > y:  # the pool's ask y/(g·x) is below P: buy the good
        s = math.sqrt(g * price * x) * math.sqrt(y)  # y + g·d at the optimum
        d = y * (g * price * x - y) / (g * (s + y))  # (s − y)/g without cancellation
        return ArbitrageTrade(SwapSide.BUY, d, x * g * d / s, x * (y / s), y + d)
    if g * y > price * x:  # the pool's bid g·y/x is above P: sell the good
        s = math.sqrt(g * x / price) * math.sqrt(y)  # x + g·e at the optimum
        e = x * (g * y / price - x) / (g * (s + x))
        return ArbitrageTrade(SwapSide.SELL, e, y * g * e / s, x + e, y * (x / s))
    return ArbitrageTrade(None, 0.0, 0.0, x, y)


# --- the pool in integer base units -----------------------------------------------------------


def _units(v: object, name: str, minimum: int) -> int:
    if not isinstance(v, Integral) or isinstance(v, bool):
        raise InvalidParameter(f"{name}(={v!r}) must be an integer number of base units")
    n = int(v)  # a Python int: products of reserves overflow int64
    if n < minimum:
        raise InvalidParameter(f"{name}(={n}) must be >= {minimum} base units")
    return n


def _reserve_x(v: object) -> int:
    return _units(v, "x", 1)


def _reserve_y(v: object) -> int:
    return _units(v, "y", 1)


def _g_ratio(fee: float) -> tuple[int, int]:
    """g = 1 − fee as an exact fraction (numerator, denominator) of the float's binary value."""
    g = 1 - Fraction(fee)
    return g.numerator, g.denominator


@frozen
class SwapResult:
    """What a swap did, or why it did not happen.

    Attributes:
        pool: the pool after the swap (the same pool if refused).
        side: the trader's side (None for an arbitrage that found nothing to do).
        amount_in: base units the trader pays into the pool (0 if refused).
        amount_out: base units the pool pays the trader (0 if refused).
        reason: None if the swap was made, else why it was refused.
    """

    pool: Pool
    side: SwapSide | None
    amount_in: int
    amount_out: int
    reason: str | None = None

    @property
    def accepted(self) -> bool:
        """True if the swap was made."""
        return self.reason is None


@frozen
class Pool:
    """A constant-product pool with reserves in integer base units.

    Swaps return a new pool and leave this one as it was, so a swap doubles as its own quote.

    Attributes:
        x: good reserve (base units), >= 1.
        y: numeraire reserve (base units), >= 1.
        fee: fee rate taken from every input, in [0, 1).
    """

    x: int = field(converter=_reserve_x)
    y: int = field(converter=_reserve_y)
    fee: float = field(default=0.0, converter=_fee)

    @property
    def k(self) -> int:
        """The invariant x·y (base units squared); never decreases under swaps."""
        return self.x * self.y

    @property
    def price(self) -> float:
        """Spot price y/x (numeraire per good)."""
        return self.y / self.x

    def marginal_prices(self) -> tuple[float, float]:
        """(bid, ask) for an infinitesimal trade (numeraire per good)."""
        return marginal_prices(self.x, self.y, self.fee)

    def _reserves(self, side: SwapSide) -> tuple[int, int]:
        """(reserve paid into, reserve paid out of) for the trader's side."""
        if side is SwapSide.BUY:
            return self.y, self.x
        if side is SwapSide.SELL:
            return self.x, self.y
        raise InvalidParameter(f"side(={side!r}) must be a SwapSide")

    def _after(self, side: SwapSide, amount_in: int, amount_out: int) -> SwapResult:
        if side is SwapSide.BUY:
            pool = evolve(self, x=self.x - amount_out, y=self.y + amount_in)
        else:
            pool = evolve(self, x=self.x + amount_in, y=self.y - amount_out)
        return SwapResult(pool, side, amount_in, amount_out)

    def swap(self, side: SwapSide, amount_in: int) -> SwapResult:
        """Pay exactly ``amount_in`` base units in; receive floor(closed-form output).

        Refused (returned, not raised) if the output rounds down to 0 base units.
        """
        r_in, r_out = self._reserves(side)
        d = _units(amount_in, "amount_in", 1)
        gn, gd = _g_ratio(self.fee)
        out = (r_out * gn * d) // (r_in * gd + gn * d)  # < r_out, so a reserve never empties
        if out == 0:
            return SwapResult(self, side, 0, 0, f"input {d} base units buys less than 1 base unit")
        return self._after(side, d, out)

    def swap_for(self, side: SwapSide, amount_out: int) -> SwapResult:
        """Receive exactly ``amount_out`` base units; pay ceil(closed-form input).

        Refused (returned, not raised) if the pool holds no more than ``amount_out``.
        """
        r_in, r_out = self._reserves(side)
        want = _units(amount_out, "amount_out", 1)
        if want >= r_out:
            return SwapResult(
                self, side, 0, 0, f"output {want} base units is not below the reserve {r_out}"
            )
        gn, gd = _g_ratio(self.fee)
        pay = -((-r_in * want * gd) // (gn * (r_out - want)))  # ceiling division
        return self._after(side, pay, want)

    def arbitrage(self, price: float) -> SwapResult:
        """The arbitrageur's exact-input swap at external price ``price`` (see
        ``arbitrage_to_price``), with its input rounded down so the optimum is not overshot.

        Refused with a reason if ``price`` lies within [bid, ask] or the trade rounds to nothing.
        """
        plan = arbitrage_to_price(self.x, self.y, price, self.fee)
        if plan.side is None:
            return SwapResult(self, None, 0, 0, f"price {price} lies within the pool's [bid, ask]")
        units = math.floor(plan.amount_in)
        if units < 1:
            return SwapResult(self, plan.side, 0, 0, "arbitrage trade rounds to 0 base units")
        return self.swap(plan.side, units)
