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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
from attrs import field, frozen
from numpy.typing import ArrayLike, NDArray

from mktsim.errors import InvalidParameter

__all__ = [
    "CES",
    "CallableTechnology",
    "CobbDouglas",
    "Leontief",
    "Technology",
    "log_technology",
    "numerical_gradient",
    "saturating_technology",
    "sqrt_technology",
    "tupperware_chain",
]

FloatArray = NDArray[np.float64]

# Sums of float exponents such as 0.1 + 0.2 + 0.7 miss 1 by an ulp or so; anything within this of
# 1 counts as constant returns.
_RTS_TOL = 1e-9

# Numerical profit maximisation: short joint L-BFGS-B passes over all unsolved firms (each
# rescaling by the last estimate, which beats long passes on badly scaled firms), then passes
# firm by firm, then the optimality check. The lower bound on inputs is relative to each
# input's scale at the start of a pass.
_JOINT_PASSES = 8
_PASS_ITERATIONS = 20
_SINGLE_PASSES = 2
_LOWER = 1e-12


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


# --------------------------------------------------------------------------- validation helpers


def _where(name: str, arr: FloatArray, bad: NDArray[np.bool_]) -> str:
    """``name[i, j](=value)`` for the first offending entry."""
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    label = f"{name}[{', '.join(map(str, idx))}]" if idx else name
    return f"{label}(={float(arr[idx])!r})"


def _as_float(name: str, value: ArrayLike) -> FloatArray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidParameter(f"{name} must be numeric; got {value!r}") from exc
    bad = ~np.isfinite(arr)
    if bad.any():
        raise InvalidParameter(f"{_where(name, arr, bad)} must be finite")
    return arr


def _matrix(name: str, value: ArrayLike) -> FloatArray:
    """A parameter matrix float64[n_firms, n_inputs]; a 1-d row means one firm."""
    arr = _as_float(name, value)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidParameter(
            f"{name} must have shape (n_firms, n_inputs) with both >= 1; got {arr.shape}"
        )
    return arr


def _per_firm(name: str, value: ArrayLike, n_firms: int) -> FloatArray:
    """A per-firm parameter float64[n_firms]; a scalar is shared by every firm."""
    arr = _as_float(name, value)
    if arr.ndim == 0:
        arr = np.full(n_firms, float(arr))
    if arr.shape != (n_firms,):
        raise InvalidParameter(
            f"{name} must be a scalar or have shape ({n_firms},); got {arr.shape}"
        )
    return arr


def _check(name: str, arr: FloatArray, bad: NDArray[np.bool_], rule: str) -> None:
    if bad.any():
        raise InvalidParameter(f"{_where(name, arr, bad)} must be {rule}")


def _freeze(*arrays: FloatArray) -> None:
    for arr in arrays:
        arr.setflags(write=False)


def _inputs(x: ArrayLike, n_firms: int, n_inputs: int) -> FloatArray:
    arr = _as_float("x", x)
    try:
        arr = np.array(np.broadcast_to(arr, (n_firms, n_inputs)))
    except ValueError as exc:
        raise InvalidParameter(
            f"x must have shape ({n_inputs},) or ({n_firms}, {n_inputs}); got {arr.shape}"
        ) from exc
    _check("x", arr, arr < 0, ">= 0")
    return arr


def _prices(
    p_out: ArrayLike, p_in: ArrayLike, n_firms: int, n_inputs: int
) -> tuple[FloatArray, FloatArray]:
    po = _as_float("p_out", p_out)
    pi = _as_float("p_in", p_in)
    try:
        po = np.array(np.broadcast_to(po, (n_firms,)))
    except ValueError as exc:
        raise InvalidParameter(
            f"p_out must be a scalar or have shape ({n_firms},); got {po.shape}"
        ) from exc
    try:
        pi = np.array(np.broadcast_to(pi, (n_firms, n_inputs)))
    except ValueError as exc:
        raise InvalidParameter(
            f"p_in must have shape ({n_inputs},) or ({n_firms}, {n_inputs}); got {pi.shape}"
        ) from exc
    _check("p_out", po, po < 0, ">= 0")
    _check("p_in", pi, pi < 0, ">= 0")
    return po, pi


def _need_positive_prices(pi: FloatArray, used: NDArray[np.bool_]) -> None:
    bad = used & (pi <= 0)
    if bad.any():
        raise InvalidParameter(
            f"{_where('p_in', pi, bad)} must be > 0 for an input the technology uses: "
            "a free productive input makes a price taker's demand for it unbounded"
        )


def _finite_optimum(name: str, y: FloatArray, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    bad = ~(np.isfinite(y) & np.isfinite(x).all(axis=1))
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidParameter(
            f"{name} firm {i}: the profit-maximising output (={float(y[i])!r}) overflows float64; "
            "returns to scale very close to 1 make supply explode, so rescale prices or lower "
            "the returns to scale"
        )
    return y, x


def _refuse_constant_returns(name: str, rts: FloatArray) -> None:
    crs = rts >= 1 - _RTS_TOL
    if crs.any():
        i = int(np.argmax(crs))
        raise InvalidParameter(
            f"{name} firm {i} has returns to scale (={rts[i]!r}) of 1: with constant returns a "
            "price taker's supply is 0, any amount or unbounded depending on whether p_out is "
            "below, at or above unit_cost(p_in), so it has no unique supply; use decreasing "
            "returns (< 1) for supply/input_demand, or unit_cost for the zero-profit price"
        )


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

    exponents: FloatArray = field(converter=lambda v: _matrix("exponents", v))
    scale: FloatArray = field(default=1.0, converter=lambda v: _as_float("scale", v))

    def __attrs_post_init__(self) -> None:
        a = self.exponents
        _check("exponents", a, a < 0, ">= 0")
        scale = _per_firm("scale", self.scale, a.shape[0])
        _check("scale", scale, scale <= 0, "> 0")
        object.__setattr__(self, "scale", scale)
        rts = a.sum(axis=1)
        too_big = rts > 1 + _RTS_TOL
        if too_big.any():
            i = int(np.argmax(too_big))
            raise InvalidParameter(
                f"returns to scale sum(exponents[{i}])(={rts[i]!r}) must be <= 1: increasing "
                "returns make the technology non-concave, so a price taker has no finite profit "
                "maximum (and < 1 is needed for a unique supply)"
            )
        _freeze(self.exponents, self.scale)

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
        xx = _inputs(x, self.n_firms, self.n_inputs)
        return np.asarray(self.scale * np.prod(xx**self.exponents, axis=1), dtype=np.float64)

    def marginal_products(self, x: ArrayLike) -> FloatArray:
        """dy/dx_j = A a_j x_j**(a_j-1) prod_{k!=j} x_k**a_k, float64[n_firms, n_inputs].

        At x_j = 0 with 0 < a_j < 1 this is +inf when every other used input is positive (the
        Inada condition) and 0 when another used input is zero (output stays 0 along x_j).
        """
        xx = _inputs(x, self.n_firms, self.n_inputs)
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
        po, pi = _prices(p_out, p_in, self.n_firms, self.n_inputs)
        a = self.exponents
        rts = self.returns_to_scale
        _refuse_constant_returns("CobbDouglas", rts)
        used = a > 0
        _need_positive_prices(pi, used)
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
        return _finite_optimum("CobbDouglas", y, np.asarray(x, dtype=np.float64))

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
        if np.any(np.abs(rts - 1) > _RTS_TOL):
            raise InvalidParameter(
                f"unit_cost needs constant returns (sum of exponents = 1); got {rts.tolist()}"
            )
        _, pi = _prices(0.0, p_in, self.n_firms, self.n_inputs)
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

    weights: FloatArray = field(converter=lambda v: _matrix("weights", v))
    rho: FloatArray = field(converter=lambda v: _as_float("rho", v))
    returns_to_scale: FloatArray = field(
        default=1.0, converter=lambda v: _as_float("returns_to_scale", v)
    )
    scale: FloatArray = field(default=1.0, converter=lambda v: _as_float("scale", v))

    def __attrs_post_init__(self) -> None:
        d = self.weights
        n = d.shape[0]
        _check("weights", d, d < 0, ">= 0")
        empty = ~(d > 0).any(axis=1)
        if empty.any():
            raise InvalidParameter(
                f"weights[{int(np.argmax(empty))}] must have at least one entry > 0"
            )
        rho = _per_firm("rho", self.rho, n)
        _check("rho", rho, rho == 0, "!= 0 (the rho -> 0 limit is CobbDouglas)")
        _check(
            "rho",
            rho,
            rho >= 1,
            "< 1: rho > 1 is not concave and rho = 1 (perfect substitutes) has no unique demand",
        )
        nu = _per_firm("returns_to_scale", self.returns_to_scale, n)
        _check("returns_to_scale", nu, nu <= 0, "> 0")
        _check(
            "returns_to_scale",
            nu,
            nu > 1 + _RTS_TOL,
            "<= 1: increasing returns are not concave and have no finite profit maximum",
        )
        scale = _per_firm("scale", self.scale, n)
        _check("scale", scale, scale <= 0, "> 0")
        for name, value in (("rho", rho), ("returns_to_scale", nu), ("scale", scale)):
            object.__setattr__(self, name, value)
        _freeze(self.weights, self.rho, self.returns_to_scale, self.scale)

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
        xx = _inputs(x, self.n_firms, self.n_inputs)
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
        xx = _inputs(x, self.n_firms, self.n_inputs)
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
        along = np.where((nu < 1 - _RTS_TOL)[:, None], np.inf, crs_limit)
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
        po, pi = _prices(p_out, p_in, self.n_firms, self.n_inputs)
        nu = self.returns_to_scale
        _refuse_constant_returns("CES", nu)
        used = self.weights > 0
        _need_positive_prices(pi, used)
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
        return _finite_optimum("CES", np.asarray(y, np.float64), np.asarray(x, np.float64))

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
        if np.any(np.abs(nu - 1) > _RTS_TOL):
            raise InvalidParameter(
                f"unit_cost needs constant returns (returns_to_scale = 1); got {nu.tolist()}"
            )
        _, pi = _prices(0.0, p_in, self.n_firms, self.n_inputs)
        _need_positive_prices(pi, self.weights > 0)
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

    coefficients: FloatArray = field(converter=lambda v: _matrix("coefficients", v))
    rtol: float = 1e-9

    def __attrs_post_init__(self) -> None:
        c = self.coefficients
        _check("coefficients", c, c < 0, ">= 0")
        empty = ~(c > 0).any(axis=1)
        if empty.any():
            raise InvalidParameter(
                f"coefficients[{int(np.argmax(empty))}] must have at least one entry > 0 "
                "(a firm that needs no input would make unbounded output)"
            )
        if not (np.isfinite(self.rtol) and self.rtol >= 0):
            raise InvalidParameter(f"rtol(={self.rtol!r}) must be >= 0 and finite")
        _freeze(c)

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
        xx = _inputs(x, self.n_firms, self.n_inputs)
        c = self.coefficients
        ratio = np.where(c > 0, xx / np.where(c > 0, c, 1.0), np.inf)
        return np.asarray(ratio.min(axis=1), dtype=np.float64)

    def marginal_products(self, x: ArrayLike) -> FloatArray:
        """1/c_j for the single binding input, 0 for slack inputs, float64[n_firms, n_inputs].

        Where two or more inputs bind (a kink, including the efficient point x = y c) the
        gradient does not exist and the binding entries are ``nan``; use :meth:`unit_cost` for
        prices.
        """
        xx = _inputs(x, self.n_firms, self.n_inputs)
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
        _, pi = _prices(0.0, p_in, self.n_firms, self.n_inputs)
        return np.asarray((self.coefficients * pi).sum(axis=1), dtype=np.float64)

    def supply_bounds(self, p_out: ArrayLike, p_in: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """The supply correspondence as [low, high], two float64[n_firms].

        [0, 0] below unit cost, [inf, inf] above it, [0, inf] at it.
        """
        po, _ = _prices(p_out, p_in, self.n_firms, self.n_inputs)
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


# --------------------------------------------------------------------------- user callables


def numerical_gradient(
    f: Callable[[FloatArray], FloatArray], x: FloatArray, rel_step: float | None = None
) -> FloatArray:
    """Gradient of a vectorised f by finite differences, float64[n_firms, n_inputs].

    Args:
        f: maps float64[n_firms, n_inputs] to float64[n_firms].
        x: float64[n_firms, n_inputs], the point (>= 0).
        rel_step: step relative to x_j; default eps**(1/3) ~ 6e-6, which balances truncation
            and rounding error for central differences.

    A positive x_j gets a central difference with step rel_step * x_j, so the relative error
    does not depend on the scale of x_j. At x_j = 0, where f may not be defined to the left, a
    one-sided second-order difference with the absolute step rel_step is used.
    """
    rel = np.finfo(np.float64).eps ** (1 / 3) if rel_step is None else rel_step
    x = np.asarray(x, dtype=np.float64)
    grad = np.empty_like(x)
    f0: FloatArray | None = None
    for j in range(x.shape[1]):
        central = x[:, j] > 0
        h = np.where(central, rel * x[:, j], rel)
        step = np.zeros_like(x)
        step[:, j] = h
        up = np.asarray(f(x + step), dtype=np.float64)
        # f is vectorised over firms: evaluate the stencils some firm needs, then pick per firm
        down = np.asarray(f(np.where(central[:, None], x - step, x)), dtype=np.float64)
        grad[:, j] = (up - down) / (2 * h)
        if not central.all():
            f0 = np.asarray(f(x), dtype=np.float64) if f0 is None else f0
            up2 = np.asarray(f(x + 2 * step), dtype=np.float64)
            grad[:, j] = np.where(central, grad[:, j], (-3 * f0 + 4 * up - up2) / (2 * h))
    return grad


@frozen(eq=False)
class CallableTechnology:
    """A technology given by a user function ``y = f(x)``, vectorised over firms.

    ``f`` maps float64[n_firms, n_inputs] to float64[n_firms] (per-firm parameters live in its
    closure). ``df`` returns the gradient float64[n_firms, n_inputs]; without it central
    differences are used. ``demand``, if given, is a closed form ``(p_out float64[n_firms],
    p_in float64[n_firms, n_inputs]) -> x float64[n_firms, n_inputs]``; otherwise
    profit maximisation is solved with L-BFGS-B over x >= 0 and the result is checked against
    the Karush-Kuhn-Tucker conditions (``p_out f'_j = p_in_j`` where x_j > 0, ``<=`` where
    x_j = 0) to relative tolerance ``kkt_rtol``.

    Concavity of a user function cannot be verified. The solver's answer is also compared with
    bundles along rays from it (which refuses increasing returns, unbounded profit, and a zero
    bundle where every marginal product vanishes), but a non-concave ``f`` may still yield a
    local, not the global, profit maximum: pass only concave technologies. The solver is
    vectorised over firms but iterative; prefer a closed-form ``demand`` for many firms.

    Attributes:
        f: the production function.
        n_inputs: inputs per firm.
        n_firms: number of firms (rows ``f`` expects).
        df: optional analytic gradient.
        demand: optional closed-form input demand.
        x0: optional start for the solver, float64[n_firms, n_inputs]; default ones.
        kkt_rtol: relative tolerance of the optimality check.
    """

    f: Callable[[FloatArray], FloatArray]
    n_inputs: int
    n_firms: int = 1
    df: Callable[[FloatArray], FloatArray] | None = None
    demand: Callable[[FloatArray, FloatArray], FloatArray] | None = None
    x0: Any = None
    kkt_rtol: float = 1e-5

    def __attrs_post_init__(self) -> None:
        if not callable(self.f):
            raise InvalidParameter(f"f(={self.f!r}) must be callable")
        for name in ("n_inputs", "n_firms"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise InvalidParameter(f"{name}(={value!r}) must be an integer >= 1")
        if not (np.isfinite(self.kkt_rtol) and self.kkt_rtol > 0):
            raise InvalidParameter(f"kkt_rtol(={self.kkt_rtol!r}) must be > 0 and finite")
        if self.x0 is not None:
            x0 = _inputs(self.x0, self.n_firms, self.n_inputs)
            _freeze(x0)
            object.__setattr__(self, "x0", x0)

    def _shaped(self, name: str, value: Any, shape: tuple[int, ...]) -> FloatArray:
        arr = np.asarray(value, dtype=np.float64)
        if arr.shape != shape:
            raise InvalidParameter(f"{name} must return shape {shape}; got {arr.shape}")
        return arr

    def output(self, x: ArrayLike) -> FloatArray:
        """f(x), float64[n_firms]."""
        xx = _inputs(x, self.n_firms, self.n_inputs)
        return self._shaped("f", self.f(xx), (self.n_firms,))

    def marginal_products(self, x: ArrayLike) -> FloatArray:
        """df(x) or its central-difference estimate, float64[n_firms, n_inputs]."""
        xx = _inputs(x, self.n_firms, self.n_inputs)
        shape = (self.n_firms, self.n_inputs)
        if self.df is not None:
            return self._shaped("df", self.df(xx), shape)
        return numerical_gradient(lambda z: self._shaped("f", self.f(z), shape[:1]), xx)

    def input_demand(self, p_out: ArrayLike, p_in: ArrayLike) -> FloatArray:
        """Profit-maximising inputs float64[n_firms, n_inputs].

        Raises:
            InvalidParameter: the solution fails the optimality check (no finite maximum, or the
                solver did not converge).
        """
        po, pi = _prices(p_out, p_in, self.n_firms, self.n_inputs)
        shape = (self.n_firms, self.n_inputs)
        if self.demand is not None:
            x = self._shaped("demand", self.demand(po, pi), shape)
            _check("demand", x, ~np.isfinite(x) | (x < 0), "finite and >= 0")
            return x
        return self._solve(po, pi)

    def supply(self, p_out: ArrayLike, p_in: ArrayLike) -> FloatArray:
        """f(input_demand(p_out, p_in)), float64[n_firms]."""
        return self.output(self.input_demand(p_out, p_in))

    def _solve(self, po: FloatArray, pi: FloatArray) -> FloatArray:
        x = np.ones((self.n_firms, self.n_inputs)) if self.x0 is None else np.array(self.x0)
        message = "not run"
        # Firms are independent, so one joint problem (the sum of their profits) solves them
        # all at once. Its stopping rule is dominated by the largest profits, so each pass
        # rescales the variables by the current estimate, and firms still unsolved after the
        # joint passes are solved one at a time from their best probe point.
        for _ in range(_JOINT_PASSES):
            todo = self._unsolved(x, po, pi)
            if not todo.any():
                break
            x, message = self._lbfgsb(x, po, pi, np.flatnonzero(todo))
        for _ in range(_SINGLE_PASSES):
            todo = self._unsolved(x, po, pi)
            if not todo.any():
                break
            for row in np.flatnonzero(todo):
                x, message = self._lbfgsb(x, po, pi, np.array([row]))
        self._check_kkt(x, po, pi, message)
        beaten, better = self._probe(x, po, pi)
        if beaten.any():
            i = int(np.argmax(beaten))
            raise InvalidParameter(
                f"profit maximisation for firm {i} ended at x={x[i].tolist()}, which "
                f"x={better[i].tolist()} beats: the technology is non-concave or profit "
                "unbounded at these prices"
            )
        return x

    def _unsolved(self, x: FloatArray, po: FloatArray, pi: FloatArray) -> NDArray[np.bool_]:
        """Firms whose bundle is non-finite, fails the KKT check, or loses to a probe point.

        Rows that lose to a probe point are moved to it (in place), so the next pass starts
        there.
        """
        finite: NDArray[np.bool_] = np.asarray(np.isfinite(x).all(axis=1), dtype=bool)
        bad = ~finite
        if finite.any():
            safe = np.where(finite[:, None], x, 1.0)
            bad = bad | self._kkt_violations(safe, po, pi)[0].any(axis=1)
            beaten, better = self._probe(safe, po, pi)
            moved = np.logical_and(beaten, finite)
            x[moved] = better[moved]
            bad = bad | moved
        return np.asarray(bad, dtype=bool)

    def _probe(
        self, x: FloatArray, po: FloatArray, pi: FloatArray
    ) -> tuple[NDArray[np.bool_], FloatArray]:
        """Firms for which some probe bundle earns more than x, and each firm's best bundle.

        Probes x + t e_j and x + t (1, ..., 1) for t = 1e-6, ..., 1e6, and 0, x/2, 2x, 10x.
        For a concave technology none beats an optimum; they catch increasing returns,
        unbounded profit, and degenerate KKT points (all inputs 0 where the gradient is 0).
        """

        def profit(z: FloatArray) -> FloatArray:
            with np.errstate(all="ignore"):
                y = np.asarray(self.f(z), dtype=np.float64)
                value = np.asarray(po * y - (pi * z).sum(axis=1), dtype=np.float64)
            return np.where(np.isfinite(value), value, -np.inf)

        base = profit(x)
        with np.errstate(all="ignore"):
            size = np.abs(po * np.asarray(self.f(x), dtype=np.float64)) + (pi * x).sum(axis=1)
        threshold = base + 1e-8 * np.where(np.isfinite(size), size, 0.0)
        best, best_x = base.copy(), x.copy()
        m = self.n_inputs
        directions = [*np.eye(m), np.ones(m)]
        steps = 10.0 ** np.arange(-6, 7)
        candidates = [x + t * d for d in directions for t in steps]
        candidates += [0.0 * x, 0.5 * x, 2.0 * x, 10.0 * x]
        for z in candidates:
            value = profit(z)
            take = (value > threshold) & (value > best)
            best = np.where(take, value, best)
            best_x[take] = z[take]
        return np.asarray(best > threshold, dtype=bool), best_x

    def _lbfgsb(
        self, x: FloatArray, po: FloatArray, pi: FloatArray, rows: NDArray[np.intp]
    ) -> tuple[FloatArray, str]:
        """Maximise the summed profit of ``rows`` (other firms held fixed) with L-BFGS-B."""
        x = np.where(np.isfinite(x), x, 1.0)
        scale = np.maximum(x[rows], 1e-6)
        # A small positive lower bound keeps the search off x = 0, where technologies such as
        # ln(b) are -inf and L-BFGS-B's line search stalls; inputs that end on it are corners
        # and are set to 0 before the optimality check.
        lower = _LOWER * scale
        full = x.copy()
        # Weighting each firm's profit by 1/(its revenue + cost) keeps the argmax (the firms are
        # separable) but makes the stopping rule relative for every firm, large or small.
        with np.errstate(all="ignore"):
            size = np.abs(po * np.asarray(self.f(x), dtype=np.float64)) + (pi * x).sum(axis=1)
        weight = 1.0 / np.where(np.isfinite(size) & (size > 0), size, 1.0)[rows]

        def neg_profit(flat: FloatArray) -> tuple[float, FloatArray]:
            u = flat.reshape(scale.shape)
            if not np.all(np.isfinite(u)):
                return np.inf, np.zeros_like(flat)
            full[rows] = u * scale
            y = self._shaped("f", self.f(full), (self.n_firms,))[rows]
            value = -(weight * (po[rows] * y - (pi[rows] * full[rows]).sum(axis=1))).sum()
            if not np.isfinite(value):
                return np.inf, np.zeros_like(flat)
            mp = self.marginal_products(full)[rows]
            grad = -(po[rows, None] * mp - pi[rows]) * scale * weight[:, None]
            return float(value), np.nan_to_num(grad).ravel()

        import scipy.optimize  # here: only a numerical supply needs scipy

        with np.errstate(all="ignore"):  # the search may overflow f far from the optimum
            res = scipy.optimize.minimize(
                neg_profit,
                np.maximum(x[rows] / scale, _LOWER).ravel(),
                jac=True,
                method="L-BFGS-B",
                bounds=[(_LOWER, None)] * scale.size,
                options={"maxiter": _PASS_ITERATIONS, "ftol": 1e-15, "gtol": 1e-12},
            )
        new = np.asarray(res.x, dtype=np.float64).reshape(scale.shape) * scale
        out = x.copy()
        out[rows] = np.where(new <= 2 * lower, 0.0, new)
        return out, str(res.message)

    def _kkt_violations(
        self, x: FloatArray, po: FloatArray, pi: FloatArray
    ) -> tuple[NDArray[np.bool_], FloatArray]:
        """Entries failing the KKT conditions, and p_out * f'(x), both [n_firms, n_inputs]."""
        mp = self.marginal_products(x)
        value = po[:, None] * mp
        scale = np.maximum(np.abs(value), pi) + np.finfo(np.float64).tiny
        with np.errstate(invalid="ignore"):
            resid = (value - pi) / scale
        interior = x > 0
        # an interior input must meet p f' = p_in; an unused one must not be worth buying
        bad = ~np.isfinite(resid) | np.where(
            interior, np.abs(resid) > self.kkt_rtol, resid > self.kkt_rtol
        )
        return bad, value

    def _check_kkt(self, x: FloatArray, po: FloatArray, pi: FloatArray, message: str) -> None:
        if not np.all(np.isfinite(x)):
            i = int(np.argmax(~np.isfinite(x).all(axis=1)))
            raise InvalidParameter(
                f"profit maximisation for firm {i} diverged to x={x[i].tolist()} (solver: "
                f"{message}); the technology may be non-concave or profit unbounded at these prices"
            )
        bad, value = self._kkt_violations(x, po, pi)
        if bad.any():
            i, j = (int(k) for k in np.argwhere(bad)[0])
            raise InvalidParameter(
                f"profit maximisation for firm {i} failed the optimality check on input {j}: "
                f"x={x[i, j]!r}, p_out*f'={value[i, j]!r}, p_in={pi[i, j]!r} (solver: {message}); "
                "the technology may be non-concave or profit unbounded at these prices"
            )


# --------------------------------------------------------------------------- tupperware chain


def _validate_firms(n_firms: int) -> None:
    if not isinstance(n_firms, int | np.integer) or n_firms < 1:
        raise InvalidParameter(f"n_firms(={n_firms!r}) must be an integer >= 1")


def sqrt_technology(n_firms: int = 1) -> CobbDouglas:
    """``a = sqrt(x)``: Cobb-Douglas with one input and exponent 1/2.

    Price taker's demand x = (p_a / (2 p_x))**2.
    """
    _validate_firms(n_firms)
    return CobbDouglas(exponents=np.full((n_firms, 1), 0.5))


def saturating_technology(n_firms: int = 1) -> CallableTechnology:
    """``b = 1 - 1/(a + 1)`` (concave for a > -1, output in [0, 1)).

    Price taker's demand a = max(sqrt(p_b / p_a) - 1, 0).
    """
    _validate_firms(n_firms)

    def f(x: FloatArray) -> FloatArray:
        return np.asarray(1.0 - 1.0 / (x[:, 0] + 1.0))

    def df(x: FloatArray) -> FloatArray:
        return np.asarray(1.0 / (x + 1.0) ** 2)

    def demand(p_out: FloatArray, p_in: FloatArray) -> FloatArray:
        _need_positive_prices(p_in, np.ones_like(p_in, dtype=bool))
        return np.asarray(np.maximum(np.sqrt(p_out[:, None] / p_in) - 1.0, 0.0))

    return CallableTechnology(f=f, n_inputs=1, n_firms=n_firms, df=df, demand=demand)


def log_technology(offset: float = 0.0, n_firms: int = 1) -> CallableTechnology:
    """``c = ln(b) + offset`` (concave; -inf at b = 0, negative for b < exp(-offset)).

    The offset changes no derivative and so no price; use one if holdings of the output must
    stay non-negative. Price taker's demand b = p_c / p_b.
    """
    _validate_firms(n_firms)
    if not np.isfinite(offset):
        raise InvalidParameter(f"offset(={offset!r}) must be finite")

    def f(x: FloatArray) -> FloatArray:
        with np.errstate(divide="ignore"):
            return np.asarray(np.log(x[:, 0]) + offset)

    def df(x: FloatArray) -> FloatArray:
        with np.errstate(divide="ignore"):
            return np.asarray(1.0 / x)

    def demand(p_out: FloatArray, p_in: FloatArray) -> FloatArray:
        _need_positive_prices(p_in, np.ones_like(p_in, dtype=bool))
        return np.asarray(p_out[:, None] / p_in)

    return CallableTechnology(f=f, n_inputs=1, n_firms=n_firms, df=df, demand=demand)


def tupperware_chain(
    offset: float = 0.0,
) -> tuple[CobbDouglas, CallableTechnology, CallableTechnology]:
    """The three technologies of the tupperware chain, natgas x -> a -> b -> c.

    Returns:
        (a = sqrt(x), b = 1 - 1/(a+1), c = ln(b) + offset).
    """
    return sqrt_technology(), saturating_technology(), log_technology(offset)
