"""What agents value, computed from holdings, with no knowledge of any mechanism.

Strategies turn these valuations and a market's quote into orders. Each valuation comes in two
forms:

* **row-wise**, for one agent at its current holdings: what a strategy needs on each action.
  It touches that agent's parameters only, so its cost does not grow with the population;
* **vectorised**, for many rows at once: what a learning rule that updates every trader after a
  shout needs (ZIP), or what a period's open and close need.

Consumers (:class:`ConsumerValuation`): the marginal rate of substitution of each good for the
numeraire at holdings ``x``, ``MRS_j = (du/dx_j) / (du/dx_numeraire)``, and the demand at prices
from holdings as wealth. Induced-value traders (:class:`InducedValuation`): the value (buyers) or
cost (sellers) of an agent's next unit, found from its holdings of the traded good (a buyer's
bought units are held until the period ends; a seller's unsold units are still held).

Holdings are read in base units (``int64``, the ledger's integers; :data:`mktsim.goods.BASE_UNITS`
per unit) or in units where the docstring says so.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mktsim.goods import BASE_UNITS

__all__ = ["ConsumerValuation", "InducedValuation", "check_can_price", "utility_quote"]

#: Slack when rounding a price to the tick, so a price exactly on a tick stays on it.
EPS = 1e-9

Array = NDArray[np.float64]


class ConsumerValuation:
    """Marginal rates of substitution and demand of one consumer population.

    Args:
        population: a population with a ``utility`` (``marginal_utility``, ``demand`` and
            ``take``), e.g. :class:`mktsim.population.Consumers`.
        numeraire: column of the numeraire.

    One agent's valuation uses the utility restricted to its own row (``utility.take``), built
    the first time that agent acts and kept: the arithmetic is the vectorised formula on one
    row, so both forms agree exactly.
    """

    def __init__(self, population: Any, numeraire: int) -> None:
        self.population = population
        self.utility = population.utility
        self.numeraire = numeraire
        self._rows: dict[int, Any] = {}

    def _row(self, i: int) -> Any:
        u = self._rows.get(i)
        if u is None:
            u = self._rows[i] = self.utility.take(np.array([i], dtype=np.intp))
        return u

    def mrs_row(self, i: int, x: Array) -> Array:
        """``float64[g]``: agent ``i``'s MRS of each good for the numeraire at holdings ``x``
        (units, ``float64[g]``); inf or NaN where the numeraire's marginal utility is 0."""
        with np.errstate(divide="ignore", invalid="ignore"):
            mu = self._row(i).marginal_utility(x[None, :])
            return (mu / mu[:, self.numeraire : self.numeraire + 1])[0]

    def mrs(self, x: Array) -> Array:
        """``float64[n, g]``: every agent's MRS at holdings ``x`` (units, ``float64[n, g]``)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            mu = self.utility.marginal_utility(x)
            return mu / mu[:, self.numeraire : self.numeraire + 1]

    def demand_row(self, i: int, prices: Array, x: Array) -> Array:
        """``float64[g]``: the bundle agent ``i`` wants at ``prices`` (numeraire = 1) with its
        holdings ``x`` (units) as wealth."""
        return self._row(i).demand(prices, x[None, :] @ prices)[0]

    def demand(self, prices: Array, x: Array) -> Array:
        """``float64[n, g]``: every agent's demand at ``prices`` from holdings ``x``."""
        return self.utility.demand(prices, x @ prices)


class InducedValuation:
    """Unit values (buyers) or costs (sellers) of an induced-value population.

    Args:
        population: a :class:`mktsim.induced.InducedTraders`.

    An agent's next unit is the ``k``-th of its schedule: for a buyer ``k`` = units held (it
    holds what it bought until the period closes), for a seller ``k`` = schedule length - units
    still held (partly held units count as held). ``k`` past the schedule means nothing left.
    """

    def __init__(self, population: Any, unit: int = BASE_UNITS) -> None:
        self.population = population
        #: Base units per unit (the run's :attr:`mktsim.goods.Goods.whole_base`).
        self.unit = unit
        self.buyer = population.role == "buyer"
        self.good = int(population.good)
        self.limits: list[list[float]] = [
            [float(v) for v in row if not math.isnan(v)] for row in population.limits
        ]
        self.units: list[int] = [len(row) for row in self.limits]
        self._units = np.array(self.units, dtype=np.int64)
        self._matrix = np.array(population.limits, dtype=np.float64)

    def next_unit(self, i: int, held: int) -> int:
        """Index of agent ``i``'s next unit given ``held`` base units of the good; -1 if none."""
        if self.buyer:
            k = held // self.unit
        else:
            k = self.units[i] - (held + self.unit - 1) // self.unit
        return k if k < self.units[i] else -1

    def limit(self, i: int, held: int) -> float | None:
        """Value or cost of agent ``i``'s next unit (numeraire per unit); None if it has none."""
        k = self.next_unit(i, held)
        return None if k < 0 else self.limits[i][k]

    def next_units(self, held: NDArray[np.int64]) -> NDArray[np.int64]:
        """``int64[n]``: every agent's next unit from its holdings ``held`` (base units, one per
        agent); -1 where it has none left."""
        held = np.asarray(held, dtype=np.int64)
        units = self._units
        if self.buyer:
            k = held // self.unit
        else:
            k = units - (held + self.unit - 1) // self.unit
        return np.where(k < units, k, -1)

    def limits_of(self, held: NDArray[np.int64]) -> Array:
        """``float64[n]``: every agent's next unit's value or cost; NaN where it has none."""
        k = self.next_units(held)
        out = np.full(k.shape, np.nan)
        active = k >= 0
        out[active] = self._matrix[np.flatnonzero(active), k[active]]
        return out


def utility_quote(
    mrs: float,
    reference: float | None,
    buy: bool,
    u: float,
    spread: float,
    anchor: float,
    tick: float,
) -> int:
    """Price in ticks of a utility trader's quote (see the module docstring): centre
    ``mrs^(1-anchor) reference^anchor`` (``mrs`` without a reference) times ``1 + spread (u -
    1/2)``, capped at ``mrs`` for a bid (rounded down) and floored at it for an ask (rounded
    up)."""
    centre = mrs if reference is None else mrs ** (1.0 - anchor) * reference**anchor
    price = centre * (1.0 + spread * (u - 0.5))
    if buy:
        return math.floor(min(price, mrs) / tick + EPS)
    return math.ceil(max(price, mrs) / tick - EPS)


def check_can_price(
    population: Any, holdings: Array, numeraire: int, strategy: str, sells_at_zero: bool = False
) -> None:
    """Refuse, before the run, consumers none of whom has a finite positive marginal rate of
    substitution for money in any good at their holdings (``float64[n, g]`` units): Leontief
    consumers each at a kink of their own, as in Scarf's economy. A strategy pricing orders by
    that rate could never act, and the run would trade nothing without saying why.

    With ``sells_at_zero`` a rate of 0 counts too: against a market maker an agent that values a
    good at nothing sells it into the pool at any positive price (owners who value only money).

    Agents are tried one at a time, stopping at the first that can price, so the usual case
    costs one row.
    """
    from mktsim.errors import InvalidParameter

    valuation = ConsumerValuation(population, numeraire)
    goods = [j for j in range(holdings.shape[1]) if j != numeraire]
    for i in range(holdings.shape[0]):
        m = valuation.mrs_row(i, holdings[i])
        if any(math.isfinite(m[j]) and (m[j] > 0 or (sells_at_zero and m[j] == 0)) for j in goods):
            return
    raise InvalidParameter(
        f"population {population.name!r} has no finite positive marginal rate of substitution "
        f"for money at its holdings (kinked preferences), so strategy {strategy!r} cannot price "
        "an order: run it under the walrasian auctioneer"
    )
