"""Orders a trader sends to a market maker: small frozen values in integer base units.

Agents and goods are ledger rows and columns. Malformed orders (a zero amount, an unknown good, an
account that is not a trader) raise :class:`~mktsim.errors.InvalidParameter` when the market
checks them; orders the market cannot fill come back as a refused
:class:`~mechanisms._amm_base.Receipt`.
"""

from __future__ import annotations

from attrs import field, frozen
from attrs.validators import gt, instance_of
from mktsim.mechanisms._cpmm import SwapSide

from mktsim.errors import InvalidParameter

__all__ = ["BudgetOrder", "ShareOrder", "SwapOrder"]


def _nonzero(_: object, __: object, value: int) -> None:
    if value == 0:
        raise InvalidParameter("shares(=0) must be non-zero: > 0 buys, < 0 sells")


@frozen
class ShareOrder:
    """Buy (``shares`` > 0) or sell (< 0) shares of one outcome from/to an LMSR maker.

    Attributes:
        agent: the trader's ledger row.
        good: ledger column of the outcome's share good.
        shares: base units of shares, signed.
    """

    agent: int = field(converter=int)
    good: int = field(converter=int)
    shares: int = field(converter=int, validator=_nonzero)


@frozen
class BudgetOrder:
    """Spend up to ``money`` base units on shares of one outcome (as many whole base units of
    shares as the budget buys at the maker's cost function).

    Attributes:
        agent: the trader's ledger row.
        good: ledger column of the outcome's share good.
        money: base units of money, > 0.
    """

    agent: int = field(converter=int)
    good: int = field(converter=int)
    money: int = field(converter=int, validator=gt(0))


@frozen
class SwapOrder:
    """Swap against the pool of ``good``: pay exactly ``amount_in`` base units, or receive exactly
    ``amount_out`` base units (give one of the two).

    Attributes:
        agent: the trader's ledger row.
        good: ledger column of the pool's good.
        side: BUY pays money for the good; SELL pays the good for money.
        amount_in: base units paid in (money if BUY, the good if SELL), or None.
        amount_out: base units wanted out (the good if BUY, money if SELL), or None.
    """

    agent: int = field(converter=int)
    good: int = field(converter=int)
    side: SwapSide = field(validator=instance_of(SwapSide))
    amount_in: int | None = None
    amount_out: int | None = None

    def __attrs_post_init__(self) -> None:
        given = [a for a in (self.amount_in, self.amount_out) if a is not None]
        if len(given) != 1:
            raise InvalidParameter(
                f"a swap gives exactly one of amount_in(={self.amount_in}) and "
                f"amount_out(={self.amount_out})"
            )
        if int(given[0]) <= 0:
            raise InvalidParameter(f"swap amount(={given[0]}) must be > 0 base units")
