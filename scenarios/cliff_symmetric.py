"""Cliff's (1997) symmetric market: 11 buyers and 11 sellers with one unit each.

Limit prices run from 0.75 to 3.25 in steps of 0.25 on both sides, so supply and demand are
mirror images crossing at 2.00 with 6 units traded (maximum surplus 7.50 per period). The
default behaviour is ``zip`` (Cliff's zero-intelligence-plus traders, who learn their way to the
equilibrium price over the periods); ``zi_c`` and ``zi_u`` are available for comparison.
Resting orders stay on the book between trades (``clear_on_trade=False``) unless asked.
"""

from __future__ import annotations

from mktsim.errors import InvalidParameter, UnknownName
from mktsim.induced import induced_scenario
from mktsim.scenario import Scenario

_BEHAVIOURS = ("zip", "zi_c", "zi_u")


def build(
    behaviour: str = "zip",
    n_traders: int = 11,
    periods: int = 10,
    period_length: float = 20.0,
    rate: float = 1.0,
    clear_on_trade: bool = False,
) -> Scenario:
    """The symmetric schedule.

    Args:
        behaviour: ``zip``, ``zi_c`` or ``zi_u``.
        n_traders: traders per side; limit prices ``0.75 + 0.25 k`` for k = 0..n-1 (Cliff: 11).
        periods, period_length: trading periods (Cliff's "days") and their length.
        rate: shouts per trader per unit of time.
        clear_on_trade: cancel the standing orders after each trade.
    """
    if behaviour not in _BEHAVIOURS:
        raise UnknownName(
            "behaviour of scenario cliff_symmetric", str(behaviour), list(_BEHAVIOURS)
        )
    if isinstance(n_traders, bool) or not isinstance(n_traders, int) or n_traders < 1:
        raise InvalidParameter(f"n_traders(={n_traders!r}) must be an integer >= 1")
    limits = [0.75 + 0.25 * k for k in range(n_traders)]
    top = max(limits)
    options = {"max_price": 4.0} if behaviour in ("zi_c", "zi_u") else {}
    return induced_scenario(
        "cliff_symmetric",
        [[v] for v in reversed(limits)],
        [[c] for c in limits],
        behaviour=behaviour,
        behaviour_options=options,
        periods=periods,
        period_length=period_length,
        money=max(top, 4.0),
        mechanism_options={
            "tick": 0.01,
            "lot": 1.0,
            "rate": rate,
            "clear_on_trade": bool(clear_on_trade),
        },
        params={
            "behaviour": behaviour,
            "n_traders": n_traders,
            "periods": periods,
            "period_length": period_length,
            "rate": rate,
            "clear_on_trade": bool(clear_on_trade),
        },
        description=__doc__ or "",
    )
