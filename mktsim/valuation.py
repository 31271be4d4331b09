"""What agents value, computed from holdings, with no knowledge of any mechanism.

Strategies turn these valuations and a market's quote into orders. Each valuation comes in two
forms:

* **row-wise**, for one agent at its current holdings: what a strategy needs on each action.
  It touches that agent's parameters only, so its cost does not grow with the population;
  :meth:`ConsumerValuation.row` gives it in scalar arithmetic (:class:`RowForm`), the cost of a
  few float operations;
* **vectorised**, for many rows at once: what a learning rule that updates every trader after a
  shout needs (ZIP), or what a period's open and close need.

Consumers (:class:`ConsumerValuation`): the marginal rate of substitution of each good for the
numeraire at holdings ``x``, ``MRS_j = (du/dx_j) / (du/dx_numeraire)``, and the demand at prices
from holdings as wealth. Induced-value traders (:class:`InducedValuation`): the value (buyers) or
cost (sellers) of an agent's next unit, found from its holdings of the traded good (a buyer's
bought units are held until the period ends; a seller's unsold units are still held).

Holdings are read in base units (``int64``, the ledger's integers: the run's
``ctx.goods.base_units`` per unit, :data:`mktsim.goods.BASE_UNITS` for goods built outside a run)
or in units where the docstring says so.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mktsim.goods import BASE_UNITS
from mktsim.utility import CES, CobbDouglas, Leontief, Linear

__all__ = [
    "ConsumerValuation",
    "InducedValuation",
    "RowForm",
    "ScalarForm",
    "check_can_price",
    "utility_quote",
    "wealth",
]

#: Slack when rounding a price to the tick, so a price exactly on a tick stays on it.
EPS = 1e-9

Array = NDArray[np.float64]


class ConsumerValuation:
    """Marginal rates of substitution and demand of one consumer population.

    Args:
        population: a population with a ``utility`` (``marginal_utility``, ``demand`` and
            ``take``), e.g. :class:`mktsim.population.Consumers`.
        numeraire: column of the numeraire.

    One agent's valuation in numpy uses the utility restricted to its own row (``utility.take``,
    built the first time it is needed and kept): the arithmetic is the vectorised formula on one
    row, so both forms agree exactly. In scalar arithmetic (:attr:`form`, :meth:`row`) it reads
    the agent's parameters from the population's arrays on each call: nothing is built per
    agent, so an agent's first action costs what its next ones do, and a large population adds
    no objects for the garbage collector to walk.
    """

    def __init__(self, population: Any, numeraire: int) -> None:
        self.population = population
        self.utility = population.utility
        self.numeraire = numeraire
        self._rows: dict[int, Any] = {}
        self._form: ScalarForm | None = None

    def _row(self, i: int) -> Any:
        u = self._rows.get(i)
        if u is None:
            u = self._rows[i] = self.utility.take(np.array([i], dtype=np.intp))
        return u

    @property
    def form(self) -> ScalarForm:
        """The population's valuation in scalar arithmetic (:class:`ScalarForm`), by agent."""
        form = self._form
        if form is None:
            form = self._form = _FORMS.get(type(self.utility), ScalarForm)(self)
        return form

    def row(self, i: int) -> RowForm:
        """Agent ``i``'s valuation in scalar arithmetic (:class:`RowForm`): what an action needs,
        at a cost that does not depend on the population."""
        return RowForm(self.form, i)

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


# ---- one agent's valuation in scalar arithmetic -------------------------------------------------
def _flat(values: Any) -> Any:
    """A parameter array as a flat ``memoryview`` of float64: indexing it gives the Python float
    ``tolist`` would, without converting the rest of the array."""
    flat: Any = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    return memoryview(flat)


def wealth(x: list[float], prices: list[float]) -> float:
    """``x . prices``, summed left to right (by index: a third cheaper than over a zip for a
    handful of goods)."""
    w = 0.0
    for j in range(len(x)):
        w += x[j] * prices[j]
    return w


class ScalarForm:
    """Agents' MRS and demand on Python floats, by agent index, from the population's parameters.

    An action values one agent over a handful of goods, where numpy on one-row arrays spends
    more on dispatch than on arithmetic. The forms of the families in :mod:`mktsim.utility`
    evaluate the same formulas term by term in the same order (sums left to right, as numpy sums
    a short row); Cobb-Douglas's MRS is its closed form ``(a_g x_n) / (a_n x_g)``, the utility
    level in both marginal utilities cancelling. The last digit may differ from the vectorised
    form where that one uses numpy's SIMD ``exp``/``log``/``power`` (the C library's are used
    here), forms a dot product with fused multiply-adds (BLAS; wealth ``x . p`` is summed left
    to right here) or keeps the utility level. Whatever a form cannot classify as the vectorised
    form would (a zero holding, an overflow, a utility of 0), and every family without a form of
    its own (this base class), it computes with the vectorised form on the agent's row.

    Parameters are read from flat views of the population's arrays (agent ``i``'s row is
    ``[i * goods, (i + 1) * goods)``), so the form holds nothing per agent.
    """

    __slots__ = ("fallback", "g", "goods", "n")

    def __init__(self, valuation: ConsumerValuation) -> None:
        self.fallback = valuation
        self.n = valuation.numeraire
        self.g = int(getattr(valuation.utility, "n_goods", 0))
        self.goods = range(self.g)

    def mrs(self, i: int, x: list[float], g: int) -> float:
        """Agent ``i``'s MRS of good ``g`` for the numeraire at holdings ``x`` (units)."""
        return float(self.fallback.mrs_row(i, np.array(x))[g])

    def demand(self, i: int, x: list[float], prices: list[float], g: int) -> float:
        """Agent ``i``'s demand for good ``g`` at ``prices`` (numeraire = 1), its holdings
        ``x`` (units) as wealth."""
        return float(self.fallback.demand_row(i, np.array(prices), np.array(x))[g])


class RowForm:
    """One agent's valuation in scalar arithmetic: its population's :class:`ScalarForm` at
    agent ``i``."""

    __slots__ = ("form", "i")

    def __init__(self, form: ScalarForm, i: int) -> None:
        self.form = form
        self.i = i

    def wealth(self, x: list[float], prices: list[float]) -> float:
        """``x . prices``, summed left to right."""
        return wealth(x, prices)

    def mrs(self, x: list[float], g: int) -> float:
        """The agent's MRS of good ``g`` for the numeraire at holdings ``x`` (units)."""
        return self.form.mrs(self.i, x, g)

    def demand(self, x: list[float], prices: list[float], g: int) -> float:
        """The agent's demand for good ``g`` at ``prices`` (numeraire = 1), its holdings ``x``
        (units) as wealth."""
        return self.form.demand(self.i, x, prices, g)


class _CobbDouglasForm(ScalarForm):
    """``MRS_g = (a_g x_n) / (a_n x_g)``: the utility level in ``a_j u / x_j`` cancels; demand
    ``a_g (w / p_g)``."""

    __slots__ = ("a", "positive")

    def __init__(self, valuation: ConsumerValuation) -> None:
        super().__init__(valuation)
        shares = valuation.utility.shares
        self.a = _flat(shares)
        # whether every share of the agent is positive (else only its valued goods must be held)
        positive: Any = np.ascontiguousarray((np.asarray(shares) > 0).all(axis=1))
        self.positive = memoryview(positive)

    def mrs(self, i: int, x: list[float], g: int) -> float:
        a, n = self.a, self.n
        row = i * self.g
        ag, an = a[row + g], a[row + n]
        if ag == 1.0 or an == 1.0:  # u = x_g alone: a marginal utility of 1, not a u / x
            return ScalarForm.mrs(self, i, x, g)
        if self.positive[i]:
            if 0.0 in x:  # u = 0: every marginal utility is 0 or 0/0 (holdings are >= 0)
                return math.nan
        elif not all(xj > 0 for xj, aj in zip(x, a[row : row + self.g]) if aj > 0):  # noqa: B905
            return math.nan
        if an == 0.0:
            return math.inf if ag > 0 else math.nan
        if ag == 0.0:
            return 0.0
        den = an * x[g]
        if not den > 0:
            return ScalarForm.mrs(self, i, x, g)
        return (ag * x[n]) / den

    def demand(self, i: int, x: list[float], prices: list[float], g: int) -> float:
        w = 0.0  # wealth(x, prices) written out: every action of a consumer asks
        for j in self.goods:
            w += x[j] * prices[j]
        return self.a[i * self.g + g] * (w / prices[g])


class _CESForm(ScalarForm):
    """``du/dx_j = a_j x_j^(rho-1) u^(1-rho)`` with ``u = (sum a_j x_j^rho)^(1/rho)``; demand
    ``w t_g / sum_k t_k p_k`` with ``t_j = exp(s (log a_j - log p_j))``."""

    __slots__ = ("a", "sigma")

    def __init__(self, valuation: ConsumerValuation) -> None:
        super().__init__(valuation)
        utility = valuation.utility
        self.a = _flat(utility.weights)
        self.sigma = _flat(utility.elasticity)

    def _params(self, i: int) -> tuple[list[float], float]:
        sigma = self.sigma
        return self.a[i * self.g : (i + 1) * self.g].tolist(), sigma[i if len(sigma) > 1 else 0]

    def mrs(self, i: int, x: list[float], g: int) -> float:
        a, s = self._params(i)
        rho, n = (s - 1.0) / s, self.n
        try:
            inner = 0.0
            for j in [j for j, aj in enumerate(a) if aj > 0]:
                if not x[j] > 0:
                    raise ZeroDivisionError
                inner += a[j] * x[j] ** rho
            scale = (inner ** (1.0 / rho)) ** (1.0 - rho)
            mu_g = a[g] * x[g] ** (rho - 1.0) * scale if a[g] > 0 else 0.0
            mu_n = a[n] * x[n] ** (rho - 1.0) * scale if a[n] > 0 else 0.0
            if 0.0 < scale < math.inf and 0.0 < mu_n < math.inf and mu_g < math.inf:
                return mu_g / mu_n
        except (ZeroDivisionError, OverflowError):
            pass
        return ScalarForm.mrs(self, i, x, g)

    def demand(self, i: int, x: list[float], prices: list[float], g: int) -> float:
        a, s = self._params(i)
        exp, log = math.exp, math.log
        denom = 0.0
        term_g = 0.0
        try:
            for j, aj in enumerate(a):
                if aj > 0:
                    t = exp(s * (log(aj) - log(prices[j])))
                    denom += t * prices[j]
                    if j == g:
                        term_g = t
        except (ValueError, OverflowError):
            return ScalarForm.demand(self, i, x, prices, g)
        if not 0.0 < denom < math.inf:
            return ScalarForm.demand(self, i, x, prices, g)
        return (wealth(x, prices) * term_g) / denom


class _LeontiefForm(ScalarForm):
    """A subgradient (the binding goods share ``1 / c_j``) and demand ``c_g (w / (p . c))``."""

    __slots__ = ("c",)

    def __init__(self, valuation: ConsumerValuation) -> None:
        super().__init__(valuation)
        self.c = _flat(valuation.utility.coefficients)

    def mrs(self, i: int, x: list[float], g: int) -> float:
        c = self.c[i * self.g : (i + 1) * self.g].tolist()
        u = math.inf
        for cj, xj in zip(c, x, strict=True):
            if cj > 0:
                u = min(u, xj / cj)
        if not math.isfinite(u):
            return ScalarForm.mrs(self, i, x, g)

        def binding(j: int) -> bool:
            cu = c[j] * u
            return c[j] > 0 and abs(x[j] - cu) <= 1e-12 * abs(cu)

        count = max(sum(binding(j) for j in range(len(c))), 1)
        mu_g = (1.0 / c[g] if binding(g) else 0.0) / count
        mu_n = (1.0 / c[self.n] if binding(self.n) else 0.0) / count
        if mu_n == 0.0:
            return math.inf if mu_g > 0 else math.nan
        return mu_g / mu_n

    def demand(self, i: int, x: list[float], prices: list[float], g: int) -> float:
        c = self.c[i * self.g : (i + 1) * self.g].tolist()
        return c[g] * (wealth(x, prices) / wealth(c, prices))


class _LinearForm(ScalarForm):
    """``MRS_g = v_g / v_n``; wealth spent equally on the goods of the best ``v_j / p_j``."""

    __slots__ = ("v",)

    def __init__(self, valuation: ConsumerValuation) -> None:
        super().__init__(valuation)
        self.v = _flat(valuation.utility.values)

    def mrs(self, i: int, x: list[float], g: int) -> float:
        v, row = self.v, i * self.g
        vn = v[row + self.n]
        if vn == 0.0:
            return math.inf if v[row + g] > 0 else math.nan
        return v[row + g] / vn

    def demand(self, i: int, x: list[float], prices: list[float], g: int) -> float:
        v = self.v[i * self.g : (i + 1) * self.g].tolist()
        bang = [vj / pj for vj, pj in zip(v, prices, strict=True)]
        top = max(bang) * (1 - 1e-12)
        best = [b >= top and vj > 0 for b, vj in zip(bang, v, strict=True)]
        count = sum(best)
        if not count:
            return ScalarForm.demand(self, i, x, prices, g)
        if not best[g]:
            return 0.0
        return (wealth(x, prices) * 1.0 / count) / prices[g]


_FORMS: dict[type, type[ScalarForm]] = {
    CobbDouglas: _CobbDouglasForm,
    CES: _CESForm,
    Leontief: _LeontiefForm,
    Linear: _LinearForm,
}


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
        # Python floats first (numpy scalars one by one cost several times as much), and rows
        # filtered only where some schedule is shorter than the matrix (NaN-padded).
        matrix = np.asarray(population.limits, dtype=np.float64)
        rows = matrix.tolist()
        self.limits: list[list[float]] = (
            [[v for v in row if not math.isnan(v)] for row in rows]
            if np.isnan(matrix).any()
            else rows
        )
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
    # (conditionals, not min and max: a quote is priced on every action)
    if buy:
        return math.floor((mrs if mrs < price else price) / tick + EPS)
    return math.ceil((mrs if mrs > price else price) / tick - EPS)


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
