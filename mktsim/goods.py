"""Goods and the numeraire.

Money is just a good: the numeraire, whose price is 1 by definition. Every quantity in the ledger
is held in fixed-point integer base units (``BASE_UNITS`` per unit), so that trade can conserve
goods exactly; floats exist only in prices, preferences and reports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
from attrs import field, frozen
from numpy.typing import NDArray

from mktsim.errors import InvalidParameter, UnknownName

__all__ = ["BASE_UNITS", "MAX_BASE", "MAX_UNITS", "Good", "Goods", "from_base", "to_base"]

#: Base units per unit of every good: holdings are integers in 1e-9 of a unit.
BASE_UNITS = 10**9
#: The most base units of one good the economy can hold (int64): about 9.22e9 units.
MAX_BASE = 2**63 - 1
#: :data:`MAX_BASE` in units.
MAX_UNITS = MAX_BASE / BASE_UNITS

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


def to_base(units: NDArray[np.float64] | float, what: str = "quantity") -> NDArray[np.int64]:
    """Convert units to integer base units, rounding to nearest.

    Raises:
        InvalidParameter: a value is not finite or past :data:`MAX_UNITS` in magnitude (a cast
            would wrap around silently); ``what`` names the quantity in the message.
    """
    scaled = np.rint(np.asarray(units, dtype=float) * BASE_UNITS)
    if not (np.abs(scaled) < 2.0**63).all():  # also false for NaN
        flat = np.ravel(scaled)
        bad = float(np.ravel(units)[np.argmax(~(np.abs(flat) < 2.0**63))])
        raise InvalidParameter(
            f"{what}(={bad:.6g}) must be finite and at most {MAX_UNITS:.6g} units in magnitude "
            f"(int64 base units of 1/{BASE_UNITS})"
        )
    return scaled.astype(np.int64)


def from_base(base: NDArray[np.int64] | int) -> NDArray[np.float64]:
    """Convert integer base units to float units."""
    return np.asarray(base, dtype=np.float64) / BASE_UNITS
