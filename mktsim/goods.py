"""Goods and the numeraire.

Money is just a good: the numeraire, whose price is 1 by definition. Every quantity in the ledger
is held in fixed-point integer base units, so that trade can conserve goods exactly; floats exist
only in prices, preferences and reports.

How many base units make a unit is a property of the run (:attr:`Goods.base_units`), chosen
before it from the economy's magnitudes (:func:`base_units_for`): a power of ten that puts the
largest good's total near :data:`TOTAL_DIGITS` digits. Scaling every quantity of an economy
(money included) by ``10**k`` then scales the base unit by ``10**-k`` and leaves every integer
holding, and so every step of the run's arithmetic, as it was: results do not depend on the unit
quantities are written in. :data:`BASE_UNITS` is the default for goods built outside a run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import numpy as np
from attrs import field, frozen
from numpy.typing import NDArray

from mktsim.errors import ConservationError, InvalidParameter, UnknownName

__all__ = [
    "BASE_UNITS",
    "MAX_BASE",
    "MAX_UNITS",
    "TOTAL_DIGITS",
    "Good",
    "Goods",
    "base_units_for",
    "checked_int64",
    "from_base",
    "to_base",
]

#: Base units per unit of goods built outside a run (a run chooses its own): 1e-9 of a unit.
BASE_UNITS = 10**9
#: The most base units of one good the economy can hold (int64).
MAX_BASE = 2**63 - 1
#: :data:`MAX_BASE` in units at the default :data:`BASE_UNITS`: about 9.22e9 units.
MAX_UNITS = MAX_BASE / BASE_UNITS
#: A run's base unit puts its largest good's total at most ``10**TOTAL_DIGITS`` base units: a
#: resolution of 1e-15 of that total or better (about a float's own), totals within 2**53 (so
#: every holding converts to a float exactly), and a margin of about 9,200 times that total for
#: what the run creates (shocks, pools, production) before int64's limit.
TOTAL_DIGITS = 15
# Powers of ten up to 10**18 are kept as Python ints (exact integer arithmetic, and the values
# existing runs always used); beyond, and below 1, as floats (exact powers of ten up to 1e22).
_INT_DIGITS = 18
# The largest power of ten a float holds exactly (so it is still a whole number of base units).
_EXACT_DIGITS = 22
# A total within this relative distance above a power of ten counts as that power, so that an
# economy scaled by 10**k (whose sums round a little differently) gets the same digits shifted.
_SNAP = 1e-9


def base_units_for(largest_total: float) -> int | float:
    """The base units per unit for an economy whose largest good's total is ``largest_total``
    units: the power of ten ``10**e`` with ``largest_total * 10**e`` in
    ``(10**(TOTAL_DIGITS - 1), 10**TOTAL_DIGITS]``. The rule depends on the total's decade
    only, so an economy scaled by ``10**k`` gets a base unit ``10**k`` times as large and the
    same integers: its results are the unscaled run's, scaled. An empty economy keeps
    :data:`BASE_UNITS`.

    Raises:
        InvalidParameter: the total is not finite.
    """
    if not np.isfinite(largest_total) or largest_total < 0:
        raise InvalidParameter(f"largest total(={largest_total}) must be finite and >= 0")
    if largest_total == 0:
        return BASE_UNITS
    digits = math.ceil(math.log10(largest_total) - _SNAP)
    return power_of_ten(TOTAL_DIGITS - digits)


def power_of_ten(e: int) -> int | float:
    """``10**e``: a Python int for 0 <= e <= 18, else a float."""
    return 10**e if 0 <= e <= _INT_DIGITS else 10.0**e


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def _valid_name(_: object, attribute: object, value: str) -> None:
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidParameter(
            f"good name(={value!r}) must start with a letter or '_' and hold only letters, "
            "digits, '_', '.', '-'"
        )


@frozen
class Good:
    """A tradable good. ``unit`` is only a label for reports."""

    name: str = field(validator=_valid_name)
    unit: str = "unit"


def _good_tuple(goods: Iterable[Good]) -> tuple[Good, ...]:
    return tuple(goods)


@frozen
class Goods:
    """The ordered set of goods of a scenario, one of which is the numeraire.

    Arrays over goods (prices, endowments, shares) follow this order.
    """

    goods: tuple[Good, ...] = field(converter=_good_tuple)
    numeraire: str = field()
    #: Base units per unit of every good (a run sets its own: :func:`base_units_for`).
    base_units: int | float = field(default=BASE_UNITS, kw_only=True)

    @base_units.validator
    def _check_base(self, _: object, value: float) -> None:
        if not (isinstance(value, int | float) and np.isfinite(value) and value > 0):
            raise InvalidParameter(f"base_units(={value!r}) must be a positive finite number")

    @goods.validator
    def _check(self, _: object, goods: tuple[Good, ...]) -> None:
        if len(goods) < 2:
            raise InvalidParameter(f"goods(={len(goods)} given) must number at least 2")
        names = [g.name for g in goods]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidParameter(f"goods must have distinct names; repeated: {', '.join(dupes)}")

    @numeraire.validator
    def _check_numeraire(self, _: object, numeraire: str) -> None:
        if numeraire not in self.names:
            raise UnknownName("numeraire good", numeraire, self.names)

    @classmethod
    def of(cls, names: Iterable[str | Good], numeraire: str | None = None) -> Goods:
        """Build from names; the numeraire defaults to the first good."""
        goods = tuple(g if isinstance(g, Good) else Good(g) for g in names)
        if not goods:
            raise InvalidParameter("goods must not be empty")
        return cls(goods, numeraire if numeraire is not None else goods[0].name)

    @property
    def names(self) -> list[str]:
        return [g.name for g in self.goods]

    def __len__(self) -> int:
        return len(self.goods)

    def index(self, name: str) -> int:
        """Position of a good in arrays over goods; unknown names list the valid ones."""
        try:
            return self.names.index(name)
        except ValueError:
            raise UnknownName("good", name, self.names) from None

    @property
    def numeraire_index(self) -> int:
        return self.index(self.numeraire)

    def vector(self, values: dict[str, float] | Sequence[float], what: str) -> NDArray[np.float64]:
        """A float vector over goods from a mapping (missing goods are 0) or a sequence."""
        if isinstance(values, dict):
            out = np.zeros(len(self))
            for name, v in values.items():
                out[self.index(name)] = v
        else:
            out = np.asarray(values, dtype=float)
            if out.shape != (len(self),):
                raise InvalidParameter(f"{what} has shape {out.shape}, expected ({len(self)},)")
        return out

    def as_dict(self, vector: NDArray[np.float64]) -> dict[str, float]:
        """Good name -> value, for summaries."""
        return {n: float(v) for n, v in zip(self.names, vector, strict=True)}

    @property
    def max_units(self) -> float:
        """The most units of one good the ledger can hold at this base unit (int64)."""
        return MAX_BASE / self.base_units

    @property
    def whole_base(self) -> int:
        """Base units in one unit as an int, for counting whole units (induced-value schedules).

        Raises:
            InvalidParameter: the run's base unit is larger than a unit, or so small that one
                unit is no exact whole number (the economy's totals are outside about 1e-7 to
                1e15 units).
        """
        if isinstance(self.base_units, int):
            return self.base_units
        # a float power of ten past 10**18 is still exact up to 1e22: the same whole number
        if 1 <= self.base_units <= 10.0**_EXACT_DIGITS and float(self.base_units).is_integer():
            return int(self.base_units)
        raise InvalidParameter(
            f"base_units(={self.base_units:g}) must be a whole number of base units per unit "
            f"(at most 1e{_EXACT_DIGITS}) to count whole units: express the goods in a unit "
            f"that puts each good's total within 1e{TOTAL_DIGITS - _EXACT_DIGITS} to "
            f"1e{TOTAL_DIGITS} units"
        )

    def to_base(
        self, units: NDArray[np.float64] | float, what: str = "quantity"
    ) -> NDArray[np.int64]:
        """Units to integer base units of this run (see :func:`to_base`)."""
        return to_base(units, what, self.base_units)

    def from_base(self, base: NDArray[np.int64] | int) -> NDArray[np.float64]:
        """Integer base units of this run to float units."""
        return np.asarray(base, dtype=np.float64) / self.base_units


def to_base(
    units: NDArray[np.float64] | float, what: str = "quantity", base_units: float = BASE_UNITS
) -> NDArray[np.int64]:
    """Convert units to integer base units (``base_units`` per unit), rounding to nearest.

    Raises:
        InvalidParameter: a value is not finite or past int64's limit in magnitude (a cast
            would wrap around silently); ``what`` names the quantity in the message.
    """
    scaled = np.rint(np.asarray(units, dtype=float) * base_units)
    if not (np.abs(scaled) < 2.0**63).all():  # also false for NaN
        flat = np.ravel(scaled)
        bad = float(np.ravel(units)[np.argmax(~(np.abs(flat) < 2.0**63))])
        raise InvalidParameter(
            f"{what}(={bad:.6g}) must be finite and at most {MAX_BASE / base_units:.6g} units "
            f"in magnitude (int64 base units of 1/{base_units:g})"
        )
    return scaled.astype(np.int64)


def from_base(base: NDArray[np.int64] | int, base_units: float = BASE_UNITS) -> NDArray[np.float64]:
    """Convert integer base units (``base_units`` per unit) to float units."""
    return np.asarray(base, dtype=np.float64) / base_units


def checked_int64(base: NDArray[np.float64], what: str) -> NDArray[np.int64]:
    """Whole base units computed in floats (already rounded) as int64, refusing what a cast
    would wrap around: a quantity made during a run (production, extraction) past int64.

    Raises:
        ConservationError: a value is not finite or past int64's limit; ``what`` names it.
    """
    if not (np.abs(base) < 2.0**63).all():  # also false for NaN
        flat = np.ravel(base)
        bad = float(flat[np.argmax(~(np.abs(flat) < 2.0**63))])
        raise ConservationError(
            f"{what} of {bad:.6g} base units is past the ledger's limit of {MAX_BASE} base units"
        )
    return base.astype(np.int64)
