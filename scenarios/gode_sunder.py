"""Gode & Sunder (1993) double-auction markets: zero-intelligence traders under the order book.

Five markets of six buyers and six sellers with unit schedules on Gode and Sunder's price range
1..200, shaped like their designs (not their published numbers): a symmetric market, a flat supply
against a steep demand, extramarginal traders out of reach of the intramarginal ones, excess
supply, and many small-margin units per trader. ``behaviour`` is ``zi_c`` (constrained not to
trade at a loss), ``zi_u`` (unconstrained, prices uniform on 1..200) or ``zip``.

Market rules follow theirs: each shout is for one unit, a crossing shout trades at the standing
order's price, and by default (``clear_on_trade=True``) every standing order of the book is
cancelled after each transaction. Six periods; endowments are renewed each period.
"""

from __future__ import annotations

from mktsim.errors import InvalidParameter, UnknownName
from mktsim.induced import induced_scenario
from mktsim.scenario import Scenario

#: market -> (buyers' redemption values, sellers' unit costs), one list per trader, in the order
#: the units trade (values falling, costs rising).
MARKETS: dict[int, tuple[list[list[float]], list[list[float]]]] = {
    # 1: symmetric: three units per trader, costs mirror values around 100.
    1: (
        [
            [170, 130, 90],
            [165, 125, 85],
            [160, 120, 80],
            [155, 115, 75],
            [150, 110, 70],
            [145, 105, 65],
        ],
        [[30, 70, 110], [35, 75, 115], [40, 80, 120], [45, 85, 125], [50, 90, 130], [55, 95, 135]],
    ),
    # 2: flat supply (costs 60..70) against a steep demand running down to 25.
    2: (
        [[190, 150], [180, 130], [170, 100], [160, 80], [140, 45], [120, 25]],
        [[60, 64], [61, 65], [62, 66], [63, 67], [64, 69], [65, 70]],
    ),
    # 3: extramarginal traders out of reach: two buyers value their units below every cost
    #    and two sellers cost theirs above every value; only unconstrained traders trade them.
    3: (
        [[180, 170, 160], [175, 165, 155], [150, 140, 130], [145, 135, 125], [45, 40], [35, 30]],
        [[50, 60, 70], [55, 65, 75], [80, 90, 100], [85, 95, 105], [185, 190], [195, 200]],
    ),
    # 4: excess supply: three buyers with four units each, three with one cheap unit, six
    #    sellers with many units; the equilibrium sits on the supply's slope.
    4: (
        [[180, 170, 160, 110], [175, 165, 155, 105], [172, 162, 150, 100], [30], [20], [10]],
        [[40, 55, 70], [45, 60, 75], [48, 62, 80], [50, 65, 85], [52, 68, 90], [54, 72, 95]],
    ),
    # 5: four small-margin units per trader around an equilibrium near 110.
    5: (
        [
            [150, 135, 120, 105],
            [148, 132, 118, 102],
            [145, 130, 116, 100],
            [143, 128, 114, 98],
            [140, 126, 112, 96],
            [138, 124, 110, 94],
        ],
        [
            [70, 85, 100, 115],
            [72, 88, 102, 118],
            [75, 90, 104, 120],
            [77, 92, 106, 122],
            [80, 95, 108, 125],
            [82, 97, 110, 128],
        ],
    ),
}

_BEHAVIOURS = ("zi_c", "zi_u", "zip")


def build(
    market: int = 1,
    behaviour: str = "zi_c",
    periods: int = 6,
    period_length: float = 60.0,
    rate: float = 1.0,
    clear_on_trade: bool = True,
) -> Scenario:
    """One of the five markets.

    Args:
        market: 1..5 (see ``MARKETS``).
        behaviour: ``zi_c``, ``zi_u`` or ``zip`` for every trader.
        periods: trading periods; ``period_length``: simulation time per period.
        rate: shouts per trader per unit of time (Poisson).
        clear_on_trade: cancel the standing orders after each transaction (Gode & Sunder's
            rule); False keeps them on the book.
    """
    if market not in MARKETS:
        raise InvalidParameter(f"market(={market!r}) must be one of {sorted(MARKETS)}")
    if behaviour not in _BEHAVIOURS:
        raise UnknownName("behaviour of scenario gode_sunder", str(behaviour), list(_BEHAVIOURS))
    values, costs = MARKETS[market]
    options: dict[str, float] = {"max_price": 200.0} if behaviour in ("zi_c", "zi_u") else {}
    # The traders' own arrival rate, so that mechanisms with no rate of their own (the call
    # market) see the same order flow as the order book, which takes it as its rate too.
    options["rate"] = rate
    return induced_scenario(
        f"gode_sunder_{market}",
        values,
        costs,
        behaviour=behaviour,
        behaviour_options=options,
        periods=periods,
        period_length=period_length,
        money=None,
        mechanism_options={"rate": rate, "clear_on_trade": bool(clear_on_trade)},
        params={
            "market": market,
            "behaviour": behaviour,
            "periods": periods,
            "period_length": period_length,
            "rate": rate,
            "clear_on_trade": bool(clear_on_trade),
        },
        description=__doc__ or "",
    )
