"""Firms, final demand and sources: population kinds that make goods, take them out of the
economy, and bring raw resources in.

:class:`Firms` is a population of many competitive, price-taking firms sharing one technology
family (parameters as arrays, one row per firm, so that no single firm moves prices). Each turns
its input goods into one output good. :class:`FinalDemand` is an outside buyer: it takes any
amount of a good at a fixed price (perfectly elastic demand) and/or orders fixed quantities
(perfectly inelastic demand), paying from its money budget. :class:`Source` brings a raw
resource in at a rate per settlement (a flow economy, for mechanisms that trade every round); a
stock of a raw resource is simply a ``Consumers`` population that values only money.

**Two kinds of goods.** Most goods are traded *on the book*: the mechanism discovers their price
from everyone's reports. A good whose price is set by one perfectly elastic party is traded *off
the book*, at the posted price, when trades are settled (:mod:`mktsim.settlement`):

- a good :class:`FinalDemand` buys at a fixed price P (any amount at P), and
- the output of a constant-returns (:class:`~mktsim.production.technology.Leontief`) industry,
  which supplies any amount at its unit cost c(p) and produces to order.

A perfectly elastic party's "excess demand" is infinite on one side of its price and zero on the
other, which no price-adjustment rule can clear. So the setter alone reports, for its good, a
regularised excess demand ``signal * ln(P / p)`` (a buyer) or ``signal * ln(c(p) / p)`` (a
constant-returns industry) that vanishes exactly at its price, and everyone else reports no trade
in that good. The auctioneer then drives the posted price to P (or to c(p): p = pA + v for an
input-output economy) while the quantities are settled from orders. ``off_book`` on each firm and
final-demand population lists those goods; :func:`link` fills it in for a list of populations.

**What a firm reports.** At posted prices p a decreasing-returns firm plans the profit-maximising
inputs x* (first-order conditions ``p_in = p_out f'(x)``) and output y* = f(x*), or shuts down
(x = 0, y = 0) when that plan loses money (technologies such as ``ln(b) + offset`` can). Its
``demand(prices, holdings)`` is the bundle it wants to hold *before production*: holdings plus the
on-book net trade: inputs bought (x* less what it holds), output sold (all it holds plus y*, so the
bundle's output entry is -y*: a commitment its production covers), money paying for the rest.
Trades settle in production order, so a firm has made its output before it must deliver it.

**Validation.** A technology must implement
:class:`~mktsim.production.technology.Technology`; increasing returns are refused by the
technology classes, constant returns other than Leontief are refused here, and a
:class:`~mktsim.production.callable.CallableTechnology` gets a midpoint-concavity spot check on a
grid at construction (concavity of a user function cannot be proved; a function that passes may
still be non-concave elsewhere, in which case the profit-maximisation solver's own checks may
raise). Non-finite plans raise :class:`~mktsim.errors.InvalidParameter` naming the population and
prices. How populations fit together (cycles, goods nobody makes or buys, prices nobody sets) is
checked by :func:`check_chain` when the scenario is made.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import product
from typing import Any

import attrs
import numpy as np
from attrs import field, frozen
from numpy.typing import NDArray

from mktsim.errors import InvalidParameter, ScenarioError
from mktsim.goods import Goods
from mktsim.population import check_delay, check_name
from mktsim.production.callable import CallableTechnology
from mktsim.production.technology import CES, CobbDouglas, Leontief, Technology
from mktsim.utility import as_matrix

__all__ = [
    "FinalDemand",
    "Firms",
    "Source",
    "check_chain",
    "link",
    "off_book_goods",
    "production_order",
    "replicate",
]

Array = NDArray[np.float64]

# Relative slack of the concavity spot check (f is evaluated in float64).
_CONCAVITY_RTOL = 1e-9


def _goods(value: Goods | Sequence[str]) -> Goods:
    if isinstance(value, Goods):
        return value
    return Goods.of(list(value))


def _names(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _frozen(value: Iterable[str]) -> frozenset[str]:
    return frozenset(str(v) for v in value)


def _signal(_: object, attribute: Any, value: float) -> None:
    if not np.isfinite(value) or value <= 0:
        raise InvalidParameter(f"{attribute.name}(={value}) must be > 0 and finite")


def _nonnegative(_: object, attribute: Any, value: float) -> None:
    if not np.isfinite(value) or value < 0:
        raise InvalidParameter(f"{attribute.name}(={value}) must be >= 0 and finite")


def _check_concave(name: str, tech: CallableTechnology) -> None:
    """Midpoint concavity on a grid of input bundles (all firms at once)."""
    levels = (0.25, 1.0, 4.0)
    points = [np.array(p, dtype=np.float64) for p in product(levels, repeat=tech.n_inputs)]
    if len(points) > 81:  # many inputs: the diagonal and the axes are enough for a spot check
        k = tech.n_inputs
        points = [np.full(k, v) for v in levels] + [
            np.where(np.arange(k) == j, v, 1.0) for j in range(k) for v in levels
        ]

    def f(x: Array) -> Array:
        with np.errstate(all="ignore"):
            return tech.output(np.broadcast_to(x, (tech.n_firms, tech.n_inputs)))

    values = [f(p) for p in points]
    for x, fx in zip(points, values, strict=True):
        if not np.isfinite(fx).all():
            raise InvalidParameter(
                f"technology of firms {name!r} gives non-finite output {fx.tolist()} at "
                f"x={x.tolist()}: a technology must be finite for positive inputs"
            )
    for i, (x, fx) in enumerate(zip(points, values, strict=True)):
        for y, fy in zip(points[i + 1 :], values[i + 1 :], strict=True):
            fm = f((x + y) / 2)
            chord = (fx + fy) / 2
            slack = _CONCAVITY_RTOL * (np.abs(fx) + np.abs(fy) + 1.0)
            bad = ~np.isfinite(fm) | (fm < chord - slack)
            if bad.any():
                k = int(np.argmax(bad))
                raise InvalidParameter(
                    f"technology of firms {name!r} is not concave: firm {k} makes "
                    f"{fm[k]!r} at the midpoint of x={x.tolist()} and x={y.tolist()}, less than "
                    f"the average {chord[k]!r} of its outputs there; a price taker then has no "
                    "reliable profit maximum"
                )


@frozen
class Firms:
    """A population of competitive firms with one technology family.

    Args:
        name: unique within the scenario.
        technology: a :class:`~mktsim.production.technology.Technology` with one row per firm;
            its inputs are ``inputs`` in order. Decreasing returns (``CobbDouglas``/``CES`` with
            returns to scale < 1, or a concave ``CallableTechnology``) or constant returns as
            ``Leontief`` (a zero-profit industry producing to order).
        inputs: input goods, distinct, in the technology's input order. The numeraire may be an
            input (e.g. value added paid per unit by a Leontief industry): the money is used up.
        output: the good made (not an input, not the numeraire).
        goods: the scenario's goods (arrays over goods follow their order).
        endowment: ``float64[n_firms, g]`` initial holdings in units, e.g. working capital in
            money to pay for inputs before the output is sold (default none).
        off_book: goods this population trades off the book (see the module docstring); set by
            :func:`link` and checked against the scenario.
        production_time: simulation time from receiving inputs to output, >= 0.
        signal: units of the zero-profit price signal of a constant-returns industry (> 0).
        behaviour, behaviour_options, delay: as for every population (the mechanism interprets
            the behaviour; ``delay`` is the response delay to a posting).
    """

    name: str = field(validator=check_name)
    technology: Technology = field()
    inputs: tuple[str, ...] = field(converter=_names)
    output: str = field(converter=str)
    goods: Goods = field(converter=_goods)
    endowment: Array = field(default=None)
    off_book: frozenset[str] = field(default=frozenset(), converter=_frozen)
    production_time: float = field(default=0.0, converter=float, validator=_nonnegative)
    signal: float = field(default=1.0, converter=float, validator=_signal)
    behaviour: str | type | None = None
    behaviour_options: Mapping[str, Any] = field(factory=dict, converter=dict)
    delay: float = field(default=0.0, converter=float, validator=check_delay)

    def __attrs_post_init__(self) -> None:
        tech = self.technology
        if not isinstance(tech, Technology):
            raise InvalidParameter(
                f"technology of firms {self.name!r}(={tech!r}) must implement Technology "
                "(n_firms, n_inputs, output, marginal_products, input_demand, supply)"
            )
        names = self.goods.names
        for good in (*self.inputs, self.output, *self.off_book):
            self.goods.index(good)  # unknown names list the valid ones
        if not self.inputs:
            raise ScenarioError(f"firms {self.name!r} have no inputs")
        if len(set(self.inputs)) != len(self.inputs):
            raise ScenarioError(f"firms {self.name!r} list an input twice: {list(self.inputs)}")
        if self.output in self.inputs:
            raise ScenarioError(f"firms {self.name!r} use their own output {self.output!r}")
        if self.output == self.goods.numeraire:
            raise ScenarioError(f"firms {self.name!r} cannot make the numeraire {self.output!r}")
        if tech.n_inputs != len(self.inputs):
            raise InvalidParameter(
                f"firms {self.name!r} list {len(self.inputs)} inputs {list(self.inputs)} but the "
                f"technology takes n_inputs={tech.n_inputs}"
            )
        if isinstance(tech, CobbDouglas | CES):
            rts = np.asarray(tech.returns_to_scale)
            if np.any(rts >= 1 - 1e-9):
                raise InvalidParameter(
                    f"firms {self.name!r}: {type(tech).__name__} with constant returns "
                    f"(returns to scale {rts.tolist()}) has no unique supply; use returns to "
                    "scale < 1, or Leontief for a constant-returns industry"
                )
        if isinstance(tech, Leontief):
            if not np.allclose(tech.coefficients, tech.coefficients[0], rtol=1e-12, atol=0):
                raise InvalidParameter(
                    f"firms {self.name!r}: a constant-returns industry must share one set of "
                    "coefficients (firms with higher unit cost would never produce)"
                )
        if self.goods.numeraire in self.inputs and not isinstance(tech, Leontief):
            raise ScenarioError(
                f"firms {self.name!r} use the numeraire as an input: only a Leontief industry "
                "may (as value added per unit)"
            )
        if isinstance(tech, CallableTechnology):
            _check_concave(self.name, tech)
        n = tech.n_firms
        end = np.zeros((n, len(names))) if self.endowment is None else self.endowment
        end = as_matrix(end, "endowment")
        if end.shape != (n, len(names)):
            raise InvalidParameter(
                f"firms {self.name!r}: endowment has shape {end.shape}, expected ({n}, "
                f"{len(names)})"
            )
        object.__setattr__(self, "endowment", end)

    # ---- the Population protocol -----------------------------------------------------------
    @property
    def size(self) -> int:
        return int(self.technology.n_firms)

    @property
    def kind(self) -> str:
        return "firms"

    @property
    def creates(self) -> tuple[str, ...]:
        """Goods this population brings into being (its output)."""
        return (self.output,)

    @property
    def constant_returns(self) -> bool:
        """True for a Leontief industry (zero profit, produces to order)."""
        return isinstance(self.technology, Leontief)

    @property
    def input_index(self) -> NDArray[np.intp]:
        return np.array([self.goods.index(g) for g in self.inputs], dtype=np.intp)

    @property
    def output_index(self) -> int:
        return self.goods.index(self.output)

    def check_scenario(self, scenario: Any) -> None:
        """Check how this population fits the scenario's other populations."""
        check_chain(scenario)

    # ---- choices at posted prices ----------------------------------------------------------
    @property
    def coefficients(self) -> Array:
        """Units of each input per unit of output, ``float64[n_firms, k]`` (Leontief only)."""
        tech = self.technology
        if not isinstance(tech, Leontief):
            raise InvalidParameter(f"firms {self.name!r} have no fixed coefficients")
        return np.asarray(tech.coefficients, dtype=np.float64)

    def unit_cost(self, prices: Array) -> Array:
        """Cost of one unit of output at ``prices`` (numeraire = 1), ``float64[n_firms]``.

        Constant-returns (Leontief) industries only: their zero-profit price.
        """
        tech = self.technology
        if not isinstance(tech, Leontief):
            raise InvalidParameter(f"firms {self.name!r} have no unit cost: not constant returns")
        return np.asarray(tech.unit_cost(np.asarray(prices)[self.input_index]), dtype=np.float64)

    def plan(self, prices: Array) -> tuple[Array, Array]:
        """Profit-maximising inputs ``float64[n, k]`` and output ``float64[n]`` at ``prices``.

        Firms whose best plan loses money, or makes a negative output, shut down (inputs 0,
        output 0). Constant-returns industries produce to order and have no plan at prices.

        Raises:
            InvalidParameter: a constant-returns industry, a technology that refuses the prices
                (e.g. a zero price for a used input), or a non-finite plan.
        """
        if self.constant_returns:
            raise InvalidParameter(
                f"firms {self.name!r} have constant returns: they produce to order, not to a plan"
            )
        p = np.asarray(prices, dtype=np.float64)
        p_out, p_in = float(p[self.output_index]), p[self.input_index]
        x = np.asarray(self.technology.input_demand(p_out, p_in), dtype=np.float64)
        with np.errstate(all="ignore"):
            y = np.asarray(self.technology.output(x), dtype=np.float64)
        if not (np.isfinite(x).all() and np.isfinite(y).all()) or (x < 0).any():
            bad = int(np.argmax(~np.isfinite(y) | ~np.isfinite(x).all(axis=1)))
            raise InvalidParameter(
                f"firms {self.name!r}: firm {bad} plans inputs {x[bad].tolist()} and output "
                f"{y[bad]!r} at output price {p_out!r} and input prices {p_in.tolist()}; a plan "
                "must be finite and >= 0"
            )
        profit = p_out * y - x @ p_in
        # numerical solvers leave profits of about -1e-12 of revenue at a zero-profit optimum
        loses = (y < 0) | (profit < -1e-12 * (np.abs(p_out * y) + x @ p_in + 1e-300))
        x = np.where(loses[:, None], 0.0, x)
        y = np.where(loses, 0.0, y)
        return x, y

    def demand(self, prices: Array, holdings: Array) -> Array:
        """The bundle each firm wants to hold before production, ``float64[n, g]``.

        On-book inputs: x* (buying what it lacks); on-book output: -y* (selling everything it
        holds and everything it plans to make); money pays for the on-book net trade at
        ``prices``. Off-book goods are not traded here: a constant-returns industry reports its
        zero-profit price signal ``(signal / n) ln(c(p) / p)`` for its output instead.
        """
        p = np.asarray(prices, dtype=np.float64)
        h = np.asarray(holdings, dtype=np.float64)
        trade = np.zeros_like(h)
        out = self.output_index
        if self.constant_returns:
            cost = self.unit_cost(p)
            if not (np.isfinite(cost).all() and (cost > 0).all()):
                raise InvalidParameter(
                    f"firms {self.name!r}: unit cost {cost.tolist()} at prices {p.tolist()} must "
                    "be > 0 and finite"
                )
            # more than cost: sell more (negative), less: buy back; zero exactly at p = c(p)
            trade[:, out] = self.signal / self.size * np.log(cost / p[out])
        else:
            x, y = self.plan(p)
            idx = self.input_index
            on = np.array([g not in self.off_book for g in self.inputs], dtype=bool)
            trade[:, idx[on]] = x[:, on] - h[:, idx[on]]
            if self.output not in self.off_book:
                trade[:, out] = -(h[:, out] + y)
        num = self.goods.numeraire_index
        trade[:, num] = 0.0
        trade[:, num] = -(trade @ p) / p[num]
        return h + trade

    def aggregate_demand(self, prices: Array, holdings: Array) -> Array:
        """Total of :meth:`demand` over firms, ``float64[g]``."""
        return self.demand(prices, holdings).sum(axis=0)


def _prices_map(value: Mapping[str, float] | None) -> dict[str, float]:
    return {str(k): float(v) for k, v in dict(value or {}).items()}


@frozen
class FinalDemand:
    """An outside buyer of final goods (one agent).

    Args:
        name: unique within the scenario.
        goods: the scenario's goods.
        prices: good -> fixed price P (> 0): buys any amount offered at P (perfectly elastic
            demand). These goods are traded off the book and this buyer sets their price.
        quantities: good -> units ordered at whatever the price is (perfectly inelastic demand),
            each settlement; on the book, or as an order where a constant-returns industry sets
            the price.
        budget: money the buyer starts with (pays for everything it buys; counted in the
            economy's totals like any endowment), >= 0: shorthand for ``endowment``.
        endowment: ``float64[1, g]`` initial holdings (default: ``budget`` in money).
        off_book: set by :func:`link`.
        signal: units of the regularised demand ``signal * ln(P / p)`` it reports for a priced
            good (> 0).
        behaviour, behaviour_options, delay: as for every population.
    """

    name: str = field(validator=check_name)
    goods: Goods = field(converter=_goods)
    prices: Mapping[str, float] = field(factory=dict, converter=_prices_map)
    quantities: Mapping[str, float] = field(factory=dict, converter=_prices_map)
    budget: float = field(default=0.0, converter=float, validator=_nonnegative)
    endowment: Array = field(default=None)
    off_book: frozenset[str] = field(default=frozenset(), converter=_frozen)
    signal: float = field(default=1.0, converter=float, validator=_signal)
    behaviour: str | type | None = None
    behaviour_options: Mapping[str, Any] = field(factory=dict, converter=dict)
    delay: float = field(default=0.0, converter=float, validator=check_delay)

    def __attrs_post_init__(self) -> None:
        num = self.goods.numeraire
        if not self.prices and not self.quantities:
            raise ScenarioError(
                f"final demand {self.name!r} buys nothing: give prices or quantities"
            )
        for good, price in self.prices.items():
            self.goods.index(good)
            if good == num:
                raise ScenarioError(f"final demand {self.name!r} cannot buy the numeraire")
            if not np.isfinite(price) or price <= 0:
                raise InvalidParameter(
                    f"price of {good!r} for final demand {self.name!r}(={price!r}) must be > 0 "
                    "and finite"
                )
        for good, qty in self.quantities.items():
            self.goods.index(good)
            if good == num:
                raise ScenarioError(f"final demand {self.name!r} cannot order the numeraire")
            if good in self.prices:
                raise ScenarioError(
                    f"final demand {self.name!r} gives {good!r} both a price and a quantity"
                )
            if not np.isfinite(qty) or qty < 0:
                raise InvalidParameter(
                    f"quantity of {good!r} for final demand {self.name!r}(={qty!r}) must be >= 0 "
                    "and finite"
                )
        for good in self.off_book:
            self.goods.index(good)
        if self.endowment is None:
            end = np.zeros((1, len(self.goods)))
            end[0, self.goods.numeraire_index] = self.budget
        else:
            end = as_matrix(self.endowment, "endowment")
        if end.shape != (1, len(self.goods)):
            raise InvalidParameter(
                f"final demand {self.name!r}: endowment has shape {end.shape}, expected "
                f"(1, {len(self.goods)})"
            )
        end.setflags(write=False)
        object.__setattr__(self, "endowment", end)

    @property
    def size(self) -> int:
        return 1

    @property
    def kind(self) -> str:
        return "final_demand"

    def check_scenario(self, scenario: Any) -> None:
        """Check how this population fits the scenario's other populations."""
        check_chain(scenario)

    def demand(self, prices: Array, holdings: Array) -> Array:
        """``float64[1, g]``: holdings plus on-book orders, plus ``signal ln(P / p)`` of each
        priced good; money pays for them at ``prices``."""
        p = np.asarray(prices, dtype=np.float64)
        h = np.asarray(holdings, dtype=np.float64)
        trade = np.zeros_like(h)
        for good, price in self.prices.items():
            j = self.goods.index(good)
            trade[:, j] = self.signal * np.log(price / p[j])
        for good, qty in self.quantities.items():
            if good not in self.off_book:
                trade[:, self.goods.index(good)] = qty
        num = self.goods.numeraire_index
        trade[:, num] = -(trade @ p) / p[num]
        return h + trade

    def aggregate_demand(self, prices: Array, holdings: Array) -> Array:
        """``float64[g]``, the single agent's demand."""
        return self.demand(prices, holdings).sum(axis=0)


def _rates(value: Any) -> Array:
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64)).copy()
    if arr.ndim != 1 or arr.size == 0 or not np.isfinite(arr).all() or (arr < 0).any():
        raise InvalidParameter(
            f"rate(={value!r}) must be one finite value >= 0 per agent (a 1-d array)"
        )
    arr.setflags(write=False)
    return arr


@frozen
class Source:
    """Owners of a raw resource that flows (wells, mines): a stationary economy to trade in
    every round.

    Agent i holds ``rate[i]`` units of ``good`` at the start and after every settlement extracts
    enough to hold ``rate[i]`` again (a production without inputs, journalled in the
    ``production`` table): a capacity per round, so what goes unsold is not stockpiled beyond it
    and every round offers the same supply. It values only money, so it sells whatever it holds
    at any price (perfectly inelastic supply).

    Args:
        name: unique within the scenario.
        goods: the scenario's goods.
        good: the resource (not the numeraire).
        rate: units per agent per settlement, ``float64[n]`` (a scalar is one agent).
        endowment: ``float64[n, g]`` initial holdings (default: ``rate`` of ``good``).
        behaviour, behaviour_options, delay: as for every population.
    """

    name: str = field(validator=check_name)
    goods: Goods = field(converter=_goods)
    good: str = field(converter=str)
    rate: Array = field(converter=_rates)
    endowment: Array = field(default=None)
    behaviour: str | type | None = None
    behaviour_options: Mapping[str, Any] = field(factory=dict, converter=dict)
    delay: float = field(default=0.0, converter=float, validator=check_delay)

    def __attrs_post_init__(self) -> None:
        j = self.goods.index(self.good)
        if self.good == self.goods.numeraire:
            raise ScenarioError(f"source {self.name!r} cannot extract the numeraire")
        shape = (self.rate.size, len(self.goods))
        if self.endowment is None:
            end = np.zeros(shape)
            end[:, j] = self.rate
        else:
            end = as_matrix(self.endowment, "endowment")
        if end.shape != shape:
            raise InvalidParameter(
                f"source {self.name!r}: endowment has shape {end.shape}, expected {shape}"
            )
        end.setflags(write=False)
        object.__setattr__(self, "endowment", end)

    @property
    def size(self) -> int:
        return int(self.rate.size)

    @property
    def kind(self) -> str:
        return "source"

    @property
    def creates(self) -> tuple[str, ...]:
        return (self.good,)

    @property
    def good_index(self) -> int:
        return self.goods.index(self.good)

    def demand(self, prices: Array, holdings: Array) -> Array:
        """Everything held of ``good`` sold for money at ``prices``, ``float64[n, g]``."""
        p = np.asarray(prices, dtype=np.float64)
        h = np.asarray(holdings, dtype=np.float64)
        out = h.copy()
        j, num = self.good_index, self.goods.numeraire_index
        out[:, j] = 0.0
        out[:, num] += h[:, j] * p[j] / p[num]
        return out

    def aggregate_demand(self, prices: Array, holdings: Array) -> Array:
        return self.demand(prices, holdings).sum(axis=0)


def off_book_goods(populations: Iterable[Any]) -> frozenset[str]:
    """Goods whose price a perfectly elastic party sets: bought by a final demand at a fixed
    price, or made by a constant-returns industry."""
    out: set[str] = set()
    for pop in populations:
        if isinstance(pop, FinalDemand):
            out.update(pop.prices)
        elif isinstance(pop, Firms) and pop.constant_returns:
            out.add(pop.output)
    return frozenset(out)


def production_order(firms: Sequence[Firms]) -> list[Firms]:
    """Firm populations so that every good's producers come before its users.

    Raises:
        ScenarioError: the populations form a cycle (named as ``good -> firms -> good ...``).
    """
    makers: dict[str, list[Firms]] = {}
    for f in firms:
        makers.setdefault(f.output, []).append(f)
    waiting = {f.name: sum(len(makers.get(g, ())) for g in f.inputs) for f in firms}
    ready = [f for f in firms if waiting[f.name] == 0]
    order: list[Firms] = []
    while ready:
        f = ready.pop(0)
        order.append(f)
        for user in firms:
            if f.output in user.inputs:
                waiting[user.name] -= 1
                if waiting[user.name] == 0:
                    ready.append(user)
    if len(order) < len(firms):
        left = {f.name: f for f in firms if f not in order}
        # every remaining population has an input made by a remaining one: walk back to a repeat
        f = next(iter(left.values()))
        path: list[tuple[str, Firms]] = []
        seen: dict[str, int] = {}
        while f.name not in seen:
            seen[f.name] = len(path)
            good, prev = next((g, m) for g in f.inputs for m in makers.get(g, ()) if m.name in left)
            path.append((good, f))
            f = prev
        loop = path[seen[f.name] :][::-1]
        text = " -> ".join(f"{good} -> {pop.name}" for good, pop in loop) + f" -> {loop[0][0]}"
        raise ScenarioError(f"the firms form a production cycle: {text}")
    return order


def check_chain(scenario: Any) -> None:
    """Validate the firms and final demand of a scenario.

    Raises:
        ScenarioError: a production cycle; an input nobody holds or makes; an output nobody
            uses or buys; a fixed-price good nobody makes, or priced twice; a constant-returns
            good with other makers or a fixed price as well; a constant-returns industry using a
            good traded on the book; another population trading an off-book good; ``off_book``
            fields that do not match the scenario (use :func:`mktsim.firms.link`).
    """
    pops = list(scenario.populations)
    firms = [p for p in pops if isinstance(p, Firms)]
    finals = [p for p in pops if isinstance(p, FinalDemand)]
    if not firms and not finals:
        return
    goods = scenario.goods
    both: list[Firms | FinalDemand] = [*firms, *finals]
    for p in both:
        if p.goods != goods:
            raise ScenarioError(
                f"population {p.name!r} was made for goods {p.goods.names} "
                f"(numeraire {p.goods.numeraire}), the scenario has {goods.names} "
                f"(numeraire {goods.numeraire})"
            )
    off = off_book_goods(pops)
    for p in both:
        trades = {*p.inputs, p.output} if isinstance(p, Firms) else {*p.prices, *p.quantities}
        if p.off_book != off & trades:
            raise ScenarioError(
                f"population {p.name!r} has off_book={sorted(p.off_book)} but trades "
                f"{sorted(off & trades)} off the book in this scenario: build the population "
                "list with mktsim.firms.link(populations)"
            )
    makers: dict[str, list[Firms]] = {g: [] for g in goods.names}
    users: dict[str, list[Firms]] = {g: [] for g in goods.names}
    for f in firms:
        makers[f.output].append(f)
        for g in f.inputs:
            users[g].append(f)
    priced: dict[str, str] = {}
    for fd in finals:
        for g in fd.prices:
            if g in priced:
                raise ScenarioError(
                    f"good {g!r} has a fixed price from both {priced[g]!r} and {fd.name!r}"
                )
            priced[g] = fd.name
    production_order(firms)
    total = scenario.endowments().sum(axis=0)
    others = [p for p in pops if not isinstance(p, Firms | FinalDemand)]
    for g in goods.names:
        j = goods.index(g)
        crs = [f for f in makers[g] if f.constant_returns]
        if g in priced and not makers[g]:
            raise ScenarioError(
                f"final demand {priced[g]!r} buys {g!r} at a fixed price but no firm makes it"
            )
        if crs and (len(makers[g]) > 1 or g in priced):
            raise ScenarioError(
                f"good {g!r} is made by the constant-returns industry {crs[0].name!r}, which sets "
                f"its price at unit cost: it cannot also have other makers "
                f"{[f.name for f in makers[g] if f is not crs[0]]} or a fixed price"
            )
        if users[g] and not makers[g] and total[j] <= 0 and g != goods.numeraire:
            raise ScenarioError(
                f"good {g!r} is an input of firms {[f.name for f in users[g]]} but nobody holds "
                "or makes it"
            )
        ordered = any(g in fd.quantities for fd in finals)
        if g in off and not makers[g] and ordered:
            raise ScenarioError(f"good {g!r} is ordered off the book but nobody makes it")
        if ordered and not makers[g] and total[j] <= 0:
            raise ScenarioError(f"final demand orders {g!r} but nobody holds or makes it")
        if makers[g] and not users[g] and g not in priced and not ordered:
            wanted = any(_wants(p, g, goods) for p in others)
            if not wanted:
                raise ScenarioError(
                    f"good {g!r} is made by firms {[f.name for f in makers[g]]} but nobody uses "
                    "or buys it: give it a final demand (a fixed price or quantities), a "
                    "consumer who wants it, or a firm that uses it"
                )
        if g in off:
            for p in others:
                if p.endowment[:, j].any() or _wants(p, g, goods):
                    raise ScenarioError(
                        f"population {p.name!r} ({p.kind}) trades {g!r}, whose price is set off "
                        "the book; only firms and final demand may trade it"
                    )
    for f in firms:
        if f.constant_returns:
            on_book = [g for g in f.inputs if g not in off and g != goods.numeraire]
            if on_book:
                raise ScenarioError(
                    f"constant-returns industry {f.name!r} uses {on_book}, traded on the book: "
                    "its input demand follows orders known only at settlement, so its inputs "
                    "must be off-book goods (fixed-price or constant-returns) or the numeraire"
                )


def _wants(pop: Any, good: str, goods: Any) -> bool:
    """Whether a (consumer) population demands a good at unit prices."""
    demand = getattr(pop, "demand", None)
    if demand is None:
        return False
    with np.errstate(all="ignore"):
        x = np.asarray(demand(np.ones(len(goods)), pop.endowment))
    return bool(np.any(x[:, goods.index(good)] > 0))


def link(populations: Iterable[Any]) -> list[Any]:
    """The populations with ``off_book`` of every firm and final-demand population set to the
    goods they trade off the book. Other populations are returned unchanged."""
    pops = list(populations)
    off = off_book_goods(pops)
    out: list[Any] = []
    for pop in pops:
        if isinstance(pop, Firms):
            mine = off & {*pop.inputs, pop.output}
            out.append(attrs.evolve(pop, off_book=mine))
        elif isinstance(pop, FinalDemand):
            mine = off & {*pop.prices, *pop.quantities}
            out.append(attrs.evolve(pop, off_book=mine))
        else:
            out.append(pop)
    return out


def replicate(technology: Technology, n: int) -> Technology:
    """An industry of ``n`` identical firms that together act as one firm with ``technology``.

    Each firm gets ``f_n(x) = f(n x) / n``: at any prices a price taker with f_n chooses 1/n of
    the inputs of one firm with f and makes 1/n of its output, so the industry's supply and input
    demand, and hence every equilibrium price, are those of the single firm, while no firm is
    more than 1/n of the market. For power and CES technologies this rescales productivity
    (``A n**(s - 1)`` with s the returns to scale); Leontief (constant returns) is unchanged; a
    :class:`~mktsim.production.callable.CallableTechnology` is wrapped (its ``f``, ``df`` and
    ``demand`` must accept any number of rows).

    Args:
        technology: a one-firm technology (``n_firms == 1``).
        n: number of firms, >= 1.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise InvalidParameter(f"n(={n!r}) must be an integer >= 1")
    n = int(n)
    if technology.n_firms != 1:
        raise InvalidParameter(
            f"replicate needs a one-firm technology; got n_firms={technology.n_firms}"
        )
    if isinstance(technology, CobbDouglas):
        rts = float(technology.returns_to_scale[0])
        return CobbDouglas(
            np.repeat(technology.exponents, n, axis=0),
            scale=float(technology.scale[0]) * n ** (rts - 1.0),
        )
    if isinstance(technology, CES):
        nu = float(technology.returns_to_scale[0])
        return CES(
            np.repeat(technology.weights, n, axis=0),
            rho=float(technology.rho[0]),
            returns_to_scale=nu,
            scale=float(technology.scale[0]) * n ** (nu - 1.0),
        )
    if isinstance(technology, Leontief):
        return Leontief(np.repeat(technology.coefficients, n, axis=0), rtol=technology.rtol)
    if isinstance(technology, CallableTechnology):
        one = technology
        if n == 1:
            return one
        f, df, demand = one.f, one.df, one.demand

        def f_n(x: Array) -> Array:
            return np.asarray(f(n * x), dtype=np.float64) / n

        def df_n(x: Array) -> Array:
            assert df is not None
            return np.asarray(df(n * x), dtype=np.float64)

        def demand_n(p_out: Array, p_in: Array) -> Array:
            assert demand is not None
            return np.asarray(demand(p_out, p_in), dtype=np.float64) / n

        return CallableTechnology(
            f=f_n,
            n_inputs=one.n_inputs,
            n_firms=n,
            df=None if df is None else df_n,
            demand=None if demand is None else demand_n,
            x0=None if one.x0 is None else np.repeat(np.asarray(one.x0) / n, n, axis=0),
            kkt_rtol=one.kkt_rtol,
        )
    raise InvalidParameter(
        f"replicate does not know how to split a {type(technology).__name__}; build the "
        "n-firm technology directly"
    )
