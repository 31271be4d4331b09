"""Firm technologies: output, marginal products and price-taking choices, vectorised over firms.

A technology object holds the parameters of ``n_firms`` firms at once, one row per firm. Each firm
turns ``n_inputs`` inputs into one output. Shapes used by every method:

- ``x``: float64[n_firms, n_inputs], input quantities (a float64[n_inputs] row is used by every
  firm). Quantities are in the goods' own units and must be finite and >= 0.
- ``p_out``: scalar or float64[n_firms], price of the output (numeraire per unit of output).
- ``p_in``: float64[n_inputs] or float64[n_firms, n_inputs], input prices (numeraire per unit).

Every technology answers four questions (the :class:`Technology` protocol):

- ``output(x) -> float64[n_firms]``
- ``marginal_products(x) -> float64[n_firms, n_inputs]``, dy/dx_j
- ``input_demand(p_out, p_in) -> float64[n_firms, n_inputs]``, the profit-maximising inputs of a
  price-taking firm, from the first-order conditions ``p_in_j = p_out * dy/dx_j`` (interior) or
  ``p_in_j >= p_out * dy/dx_j`` (an unused input)
- ``supply(p_out, p_in) -> float64[n_firms]``, the output made with those inputs

Profit maximisation at given prices has a unique finite answer only for strictly decreasing
returns to scale. Increasing returns make a technology non-concave and are refused at
construction. Constant returns (Cobb-Douglas with exponents summing to 1, CES with
``returns_to_scale = 1``) are accepted for ``output`` and ``marginal_products`` but their
``supply`` raises, because a price taker then makes nothing, anything, or an unbounded amount;
their zero-profit price is ``unit_cost(p_in)``. :class:`Leontief` is constant returns by
construction and is used for zero-profit (input-output) pricing: its ``supply`` encodes the
correspondence with IEEE values (0, ``inf``, or ``nan`` for "any amount"), see the class.
Technologies given by a user's function are in :mod:`mktsim.production.callable`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from attrs import field, frozen
from numpy.typing import ArrayLike, NDArray

from mktsim.errors import InvalidParameter
from mktsim.production.checks import (
    RTS_TOL,
    as_float,
    check,
    finite_optimum,
    freeze,
    inputs,
    matrix,
    need_positive_prices,
    per_firm,
    prices,
    refuse_constant_returns,
)

__all__ = [
    "CES",
    "CobbDouglas",
    "Leontief",
    "Technology",
]

FloatArray = NDArray[np.float64]


@runtime_checkable
class Technology(Protocol):
    """What the rest of mktsim needs from a technology (see the module docstring for shapes)."""

    @property
    def n_firms(self) -> int:
        """Number of firms (rows of parameters)."""
        ...

    @property
    def n_inputs(self) -> int:
        """Number of inputs each firm uses."""
        ...

    def output(self, x: ArrayLike) -> FloatArray:
        """Output float64[n_firms] from inputs x float64[n_firms, n_inputs]."""
        ...

    def marginal_products(self, x: ArrayLike) -> FloatArray:
        """dy/dx, float64[n_firms, n_inputs]."""
        ...

    def input_demand(self, p_out: ArrayLike, p_in: ArrayLike) -> FloatArray:
        """Profit-maximising inputs of price takers, float64[n_firms, n_inputs]."""
        ...

    def supply(self, p_out: ArrayLike, p_in: ArrayLike) -> FloatArray:
        """Profit-maximising output of price takers, float64[n_firms]."""
        ...


# --------------------------------------------------------------------------- Cobb-Douglas


@frozen(eq=False)
class CobbDouglas:
    """Power (Cobb-Douglas) technology ``y = A * prod_j x_j**a_j``.

    Attributes:
        exponents: float64[n_firms, n_inputs], a_ij >= 0 with sum_j a_ij <= 1 (returns to scale).
            A 1-d row means one firm.
        scale: float64[n_firms] or scalar, total factor productivity A > 0.

    Raises:
        InvalidParameter: non-finite or negative exponents, non-positive scale, or returns to
            scale > 1 (not concave).
    """

    exponents: FloatArray = field(converter=lambda v: matrix("exponents", v))
    scale: FloatArray = field(default=1.0, converter=lambda v: as_float("scale", v))

    def __attrs_post_init__(self) -> None:
        a = self.exponents
        check("exponents", a, a < 0, ">= 0")
        scale = per_firm("scale", self.scale, a.shape[0])
        check("scale", scale, scale <= 0, "> 0")
        object.__setattr__(self, "scale", scale)
        rts = a.sum(axis=1)
        too_big = rts > 1 + RTS_TOL
        if too_big.any():
            i = int(np.argmax(too_big))
            raise InvalidParameter(
                f"returns to scale sum(exponents[{i}])(={rts[i]!r}) must be <= 1: increasing "
                "returns make the technology non-concave, so a price taker has no finite profit "
                "maximum (and < 1 is needed for a unique supply)"
            )
        freeze(self.exponents, self.scale)

    @property
    def n_firms(self) -> int:
        """Number of firms."""
        return int(self.exponents.shape[0])

    @property
    def n_inputs(self) -> int:
        """Number of inputs per firm."""
        return int(self.exponents.shape[1])

    @property
    def returns_to_scale(self) -> FloatArray:
        """sum_j a_ij, float64[n_firms]."""
        return np.asarray(self.exponents.sum(axis=1), dtype=np.float64)

    def output(self, x: ArrayLike) -> FloatArray:
        """Output float64[n_firms] (0**0 = 1: an input with exponent 0 does not matter)."""
        xx = inputs(x, self.n_firms, self.n_inputs)
        return np.asarray(self.scale * np.prod(xx**self.exponents, axis=1), dtype=np.float64)

    def marginal_products(self, x: ArrayLike) -> FloatArray:
        """dy/dx_j = A a_j x_j**(a_j-1) prod_{k!=j} x_k**a_k, float64[n_firms, n_inputs].

        At x_j = 0 with 0 < a_j < 1 this is +inf when every other used input is positive (the
        Inada condition) and 0 when another used input is zero (output stays 0 along x_j).
        """
        xx = inputs(x, self.n_firms, self.n_inputs)
        a = self.exponents
        powers = xx**a
        m = self.n_inputs
        # product over k != j: replace column j by 1 (m is small, so an (n, m, m) array is fine)
        others = np.where(np.eye(m, dtype=bool)[None, :, :], 1.0, powers[:, None, :]).prod(axis=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            own = a * xx ** (a - 1.0)
            mp = self.scale[:, None] * own * others
        mp = np.where((a == 0) | (others == 0), 0.0, mp)
        return np.asarray(mp, dtype=np.float64)

    def _optimum(self, p_out: ArrayLike, p_in: ArrayLike) -> tuple[FloatArray, FloatArray]:
        po, pi = prices(p_out, p_in, self.n_firms, self.n_inputs)
        a = self.exponents
        rts = self.returns_to_scale
        refuse_constant_returns("CobbDouglas", rts)
        used = a > 0
        need_positive_prices(pi, used)
        # FOC p_in_j x_j = a_j p_out y  =>  y**(1-s) = A prod_j (a_j p_out / p_in_j)**a_j
        safe_a = np.where(used, a, 1.0)
        safe_p = np.where(used, pi, 1.0)
        with np.errstate(divide="ignore"):
            log_po = np.log(po)
            terms = np.where(used, a * (np.log(safe_a) + log_po[:, None] - np.log(safe_p)), 0.0)
        log_y = (np.log(self.scale) + terms.sum(axis=1)) / (1.0 - rts)
        with np.errstate(over="ignore"):
            y = np.exp(log_y)
        # p_out = 0 with an empty exponent row leaves log_y finite: output A, no inputs
        with np.errstate(over="ignore", invalid="ignore"):
            x = np.where(used, a * (po * y)[:, None] / safe_p, 0.0)
        return finite_optimum("CobbDouglas", y, np.asarray(x, dtype=np.float64))

    def input_demand(self, p_out: ArrayLike, p_in: ArrayLike) -> FloatArray:
        """x_j = a_j p_out y / p_in_j at the optimum, float64[n_firms, n_inputs].

        Raises:
            InvalidParameter: a firm with constant returns, or a zero price for a used input.
        """
        return self._optimum(p_out, p_in)[1]

    def supply(self, p_out: ArrayLike, p_in: ArrayLike) -> FloatArray:
        """y = (A prod_j (a_j p_out / p_in_j)**a_j)**(1/(1-s)), float64[n_firms].

        Raises:
            InvalidParameter: a firm with constant returns, or a zero price for a used input.
        """
        return self._optimum(p_out, p_in)[0]

    def unit_cost(self, p_in: ArrayLike) -> FloatArray:
        """Cost of one unit of output (1/A) prod_j (p_j/a_j)**a_j, float64[n_firms].

        Only defined for constant returns (the zero-profit price of the output).
        """
        rts = self.returns_to_scale
        if np.any(np.abs(rts - 1) > RTS_TOL):
            raise InvalidParameter(
                f"unit_cost needs constant returns (sum of exponents = 1); got {rts.tolist()}"
            )
        _, pi = prices(0.0, p_in, self.n_firms, self.n_inputs)
        a = self.exponents
        used = a > 0
        ratio = np.where(used, pi / np.where(used, a, 1.0), 1.0)
        return np.asarray(np.prod(ratio ** np.where(used, a, 0.0), axis=1) / self.scale)


# --------------------------------------------------------------------------- CES


@frozen(eq=False)
class CES:
    """Constant elasticity of substitution ``y = A * (sum_j d_j x_j**rho)**(nu/rho)``.

    The elasticity of substitution between inputs is sigma = 1/(1 - rho). ``rho -> 0`` is
    Cobb-Douglas (use :class:`CobbDouglas`), ``rho -> -inf`` is Leontief.

    Attributes:
        weights: float64[n_firms, n_inputs], d_ij >= 0, at least one > 0 per firm.
        rho: float64[n_firms] or scalar, rho < 1 and rho != 0.
        returns_to_scale: float64[n_firms] or scalar, nu in (0, 1]; nu < 1 for supply.
        scale: float64[n_firms] or scalar, A > 0.

    Raises:
        InvalidParameter: bad values; rho >= 1 (rho > 1 is not concave; rho = 1 makes inputs
            perfect substitutes, whose input demand is a tie-prone corner); nu > 1 (not concave).
    """

    weights: FloatArray = field(converter=lambda v: matrix("weights", v))
    rho: FloatArray = field(converter=lambda v: as_float("rho", v))
    returns_to_scale: FloatArray = field(
        default=1.0, converter=lambda v: as_float("returns_to_scale", v)
    )
    scale: FloatArray = field(default=1.0, converter=lambda v: as_float("scale", v))

    def __attrs_post_init__(self) -> None:
        d = self.weights
        n = d.shape[0]
        check("weights", d, d < 0, ">= 0")
        empty = ~(d > 0).any(axis=1)
        if empty.any():
            raise InvalidParameter(
                f"weights[{int(np.argmax(empty))}] must have at least one entry > 0"
            )
        rho = per_firm("rho", self.rho, n)
        check("rho", rho, rho == 0, "!= 0 (the rho -> 0 limit is CobbDouglas)")
        check(
            "rho",
            rho,
            rho >= 1,
            "< 1: rho > 1 is not concave and rho = 1 (perfect substitutes) has no unique demand",
        )
        nu = per_firm("returns_to_scale", self.returns_to_scale, n)
        check("returns_to_scale", nu, nu <= 0, "> 0")
        check(
            "returns_to_scale",
            nu,
            nu > 1 + RTS_TOL,
            "<= 1: increasing returns are not concave and have no finite profit maximum",
        )
        scale = per_firm("scale", self.scale, n)
        check("scale", scale, scale <= 0, "> 0")
        for name, value in (("rho", rho), ("returns_to_scale", nu), ("scale", scale)):
            object.__setattr__(self, name, value)
        freeze(self.weights, self.rho, self.returns_to_scale, self.scale)

    @property
    def n_firms(self) -> int:
        """Number of firms."""
        return int(self.weights.shape[0])

    @property
    def n_inputs(self) -> int:
        """Number of inputs per firm."""
        return int(self.weights.shape[1])

    @property
    def sigma(self) -> FloatArray:
        """Elasticity of substitution 1/(1 - rho), float64[n_firms]."""
        return np.asarray(1.0 / (1.0 - self.rho), dtype=np.float64)

    def _aggregate(self, xx: FloatArray) -> FloatArray:
        """S = sum_j d_j x_j**rho over used inputs (inf when rho < 0 and a used x_j = 0)."""
        used = self.weights > 0
        with np.errstate(divide="ignore"):
            terms = np.where(used, self.weights * xx ** self.rho[:, None], 0.0)
        return np.asarray(terms.sum(axis=1), dtype=np.float64)

    def output(self, x: ArrayLike) -> FloatArray:
        """Output float64[n_firms]; with rho < 0 a zero used input gives zero output."""
        xx = inputs(x, self.n_firms, self.n_inputs)
        s = self._aggregate(xx)
        with np.errstate(divide="ignore"):
            y = self.scale * s ** (self.returns_to_scale / self.rho)
        return np.asarray(y, dtype=np.float64)

    def marginal_products(self, x: ArrayLike) -> FloatArray:
        """dy/dx_j = A nu S**(nu/rho - 1) d_j x_j**(rho-1), float64[n_firms, n_inputs].

        Where used inputs are zero the formula is 0 * inf; the directional limits are used:
        along x_j the output behaves like A d_j**(nu/rho) x_j**nu when x_j is the only zero input
        (rho < 0) or every used input is zero (rho > 0), so the derivative is +inf for nu < 1 and
        A d_j**(1/rho) for nu = 1; it is 0 when some other used input stays zero and rho < 0.
        With rho > 0 and other inputs positive, a zero x_j has derivative +inf.
        """
        xx = inputs(x, self.n_firms, self.n_inputs)
        d, rho, nu, scale = self.weights, self.rho, self.returns_to_scale, self.scale
        used = d > 0
        s = self._aggregate(xx)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            mp = (scale * nu * s ** (nu / rho - 1.0))[:, None] * d * xx ** (rho[:, None] - 1.0)
        zero = used & (xx == 0)
        n_zero = zero.sum(axis=1)
        # limit along x_j alone when it is the binding zero (see docstring)
        with np.errstate(divide="ignore"):
            crs_limit = scale[:, None] * np.where(used, d, 1.0) ** (1.0 / rho[:, None])
        along = np.where((nu < 1 - RTS_TOL)[:, None], np.inf, crs_limit)
        neg = (rho < 0)[:, None]
        only_zero = zero & (n_zero == 1)[:, None]
        all_zero = (n_zero == used.sum(axis=1))[:, None]
        mp = np.where(neg & (n_zero >= 1)[:, None], np.where(only_zero, along, 0.0), mp)
        mp = np.where(~neg & zero & all_zero, along, mp)
        mp = np.where(~neg & zero & ~all_zero, np.inf, mp)
        mp = np.where(used, mp, 0.0)
        return np.asarray(mp, dtype=np.float64)

    def _unit_aggregate_cost(self, pi: FloatArray) -> FloatArray:
        """Cost of one unit of the aggregate (sum d x**rho)**(1/rho).

        That is (sum_j d_j**sigma p_j**(1-sigma))**(1/(1-sigma)), float64[n_firms].
        """
        used = self.weights > 0
        sig = self.sigma[:, None]
        terms = np.where(
            used, np.where(used, self.weights, 1.0) ** sig * np.where(used, pi, 1.0) ** (1 - sig), 0
        )
        return np.asarray(terms.sum(axis=1) ** (1.0 / (1.0 - self.sigma)), dtype=np.float64)

    def _optimum(self, p_out: ArrayLike, p_in: ArrayLike) -> tuple[FloatArray, FloatArray]:
        po, pi = prices(p_out, p_in, self.n_firms, self.n_inputs)
        nu = self.returns_to_scale
        refuse_constant_returns("CES", nu)
        used = self.weights > 0
        need_positive_prices(pi, used)
        c = self._unit_aggregate_cost(pi)
        # profit p A g**nu - c g over the aggregate g gives g = (nu p A / c)**(1/(1-nu));
        # cost-minimising inputs per unit of g are (c d_j / p_j)**sigma
        with np.errstate(over="ignore"):
            g = (nu * po * self.scale / c) ** (1.0 / (1.0 - nu))
        per_unit = np.where(
            used,
            (c[:, None] * self.weights / np.where(used, pi, 1.0)) ** self.sigma[:, None],
            0.0,
        )
        with np.errstate(over="ignore", invalid="ignore"):
            x = g[:, None] * per_unit
            y = self.scale * g**nu
        return finite_optimum("CES", np.asarray(y, np.float64), np.asarray(x, np.float64))

    def input_demand(self, p_out: ArrayLike, p_in: ArrayLike) -> FloatArray:
        """Profit-maximising inputs float64[n_firms, n_inputs] (closed form via the cost function).

        Raises:
            InvalidParameter: a firm with constant returns, or a zero price for a used input.
        """
        return self._optimum(p_out, p_in)[1]

    def supply(self, p_out: ArrayLike, p_in: ArrayLike) -> FloatArray:
        """Profit-maximising output float64[n_firms].

        Raises:
            InvalidParameter: a firm with constant returns, or a zero price for a used input.
        """
        return self._optimum(p_out, p_in)[0]

    def unit_cost(self, p_in: ArrayLike) -> FloatArray:
        """Cost of one unit of output, float64[n_firms]; constant returns (nu = 1) only."""
        nu = self.returns_to_scale
        if np.any(np.abs(nu - 1) > RTS_TOL):
            raise InvalidParameter(
                f"unit_cost needs constant returns (returns_to_scale = 1); got {nu.tolist()}"
            )
        _, pi = prices(0.0, p_in, self.n_firms, self.n_inputs)
        need_positive_prices(pi, self.weights > 0)
        return np.asarray(self._unit_aggregate_cost(pi) / self.scale, dtype=np.float64)


# --------------------------------------------------------------------------- Leontief


@frozen(eq=False)
class Leontief:
    """Fixed coefficients ``y = min_{j: c_j > 0} x_j / c_j`` (constant returns).

    Inputs with c_j = 0 are not needed. Price-taking profit maximisation is a correspondence:
    profit per unit is ``p_out - c.p_in``. :meth:`supply` returns 0 when that is negative,
    ``+inf`` (unbounded) when positive, and ``nan`` ("any y >= 0", zero profit) when it is zero
    within ``rtol``; :meth:`supply_bounds` gives the same as an interval. The zero-profit price
    is :meth:`unit_cost`, which input-output pricing uses.

    Attributes:
        coefficients: float64[n_firms, n_inputs], units of input j per unit of output, >= 0 with
            at least one > 0 per firm.
        rtol: relative tolerance for "p_out equals unit cost".
    """

    coefficients: FloatArray = field(converter=lambda v: matrix("coefficients", v))
    rtol: float = 1e-9

    def __attrs_post_init__(self) -> None:
        c = self.coefficients
        check("coefficients", c, c < 0, ">= 0")
        empty = ~(c > 0).any(axis=1)
        if empty.any():
            raise InvalidParameter(
                f"coefficients[{int(np.argmax(empty))}] must have at least one entry > 0 "
                "(a firm that needs no input would make unbounded output)"
            )
        if not (np.isfinite(self.rtol) and self.rtol >= 0):
            raise InvalidParameter(f"rtol(={self.rtol!r}) must be >= 0 and finite")
        freeze(c)

    @property
    def n_firms(self) -> int:
        """Number of firms."""
        return int(self.coefficients.shape[0])

    @property
    def n_inputs(self) -> int:
        """Number of inputs per firm."""
        return int(self.coefficients.shape[1])

    @property
    def returns_to_scale(self) -> FloatArray:
        """Always 1, float64[n_firms]."""
        return np.ones(self.n_firms)

    def output(self, x: ArrayLike) -> FloatArray:
        """min_j x_j / c_j over needed inputs, float64[n_firms]."""
        xx = inputs(x, self.n_firms, self.n_inputs)
        c = self.coefficients
        ratio = np.where(c > 0, xx / np.where(c > 0, c, 1.0), np.inf)
        return np.asarray(ratio.min(axis=1), dtype=np.float64)

    def marginal_products(self, x: ArrayLike) -> FloatArray:
        """1/c_j for the single binding input, 0 for slack inputs, float64[n_firms, n_inputs].

        Where two or more inputs bind (a kink, including the efficient point x = y c) the
        gradient does not exist and the binding entries are ``nan``; use :meth:`unit_cost` for
        prices.
        """
        xx = inputs(x, self.n_firms, self.n_inputs)
        c = self.coefficients
        need = c > 0
        ratio = np.where(need, xx / np.where(need, c, 1.0), np.inf)
        y = ratio.min(axis=1, keepdims=True)
        binding = need & (ratio <= y * (1 + self.rtol))
        n_bind = binding.sum(axis=1, keepdims=True)
        mp = np.where(binding, np.where(n_bind == 1, 1.0 / np.where(need, c, 1.0), np.nan), 0.0)
        return np.asarray(mp, dtype=np.float64)

    def unit_cost(self, p_in: ArrayLike) -> FloatArray:
        """Zero-profit output price c . p_in, float64[n_firms]."""
        _, pi = prices(0.0, p_in, self.n_firms, self.n_inputs)
        return np.asarray((self.coefficients * pi).sum(axis=1), dtype=np.float64)

    def supply_bounds(self, p_out: ArrayLike, p_in: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """The supply correspondence as [low, high], two float64[n_firms].

        [0, 0] below unit cost, [inf, inf] above it, [0, inf] at it.
        """
        po, _ = prices(p_out, p_in, self.n_firms, self.n_inputs)
        cost = self.unit_cost(p_in)
        tie = np.abs(po - cost) <= self.rtol * np.maximum(np.abs(po), np.abs(cost))
        low = np.where(~tie & (po > cost), np.inf, 0.0)
        high = np.where(~tie & (po < cost), 0.0, np.inf)
        return low, high

    def supply(self, p_out: ArrayLike, p_in: ArrayLike) -> FloatArray:
        """0 (p_out < c.p_in), inf (p_out > c.p_in) or nan (indeterminate), float64[n_firms]."""
        low, high = self.supply_bounds(p_out, p_in)
        return np.where(low == high, low, np.nan)

    def input_demand(self, p_out: ArrayLike, p_in: ArrayLike) -> FloatArray:
        """c_j * supply with 0 for unneeded inputs, float64[n_firms, n_inputs] (same encoding)."""
        y = self.supply(p_out, p_in)[:, None]
        c = self.coefficients
        with np.errstate(invalid="ignore"):  # 0 * inf for unneeded inputs, replaced by 0
            return np.asarray(np.where(c > 0, c * y, 0.0), dtype=np.float64)
