"""Technologies given by user functions, and the tupperware chain's three technologies.

:class:`CallableTechnology` wraps ``y = f(x)`` (vectorised over firms) with its gradient given or
estimated by :func:`numerical_gradient`, and finds a price taker's inputs numerically when no
closed form is given (see the class). Shapes are those of :mod:`mktsim.production.technology`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from attrs import frozen
from numpy.typing import ArrayLike, NDArray

from mktsim.errors import InvalidParameter
from mktsim.production.checks import (
    check,
    freeze,
    inputs,
    need_positive_prices,
    prices,
)
from mktsim.production.technology import CobbDouglas

__all__ = [
    "CallableTechnology",
    "log_technology",
    "numerical_gradient",
    "saturating_technology",
    "sqrt_technology",
    "tupperware_chain",
]

FloatArray = NDArray[np.float64]

# Numerical profit maximisation: short joint L-BFGS-B passes over all unsolved firms (each
# rescaling by the last estimate, which beats long passes on badly scaled firms), then passes
# firm by firm, then the optimality check. The lower bound on inputs is relative to each
# input's scale at the start of a pass.
_JOINT_PASSES = 8
_PASS_ITERATIONS = 20
_SINGLE_PASSES = 2
_LOWER = 1e-12


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
            x0 = inputs(self.x0, self.n_firms, self.n_inputs)
            freeze(x0)
            object.__setattr__(self, "x0", x0)

    def _shaped(self, name: str, value: Any, shape: tuple[int, ...]) -> FloatArray:
        arr = np.asarray(value, dtype=np.float64)
        if arr.shape != shape:
            raise InvalidParameter(f"{name} must return shape {shape}; got {arr.shape}")
        return arr

    def output(self, x: ArrayLike) -> FloatArray:
        """f(x), float64[n_firms]."""
        xx = inputs(x, self.n_firms, self.n_inputs)
        return self._shaped("f", self.f(xx), (self.n_firms,))

    def marginal_products(self, x: ArrayLike) -> FloatArray:
        """df(x) or its central-difference estimate, float64[n_firms, n_inputs]."""
        xx = inputs(x, self.n_firms, self.n_inputs)
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
        po, pi = prices(p_out, p_in, self.n_firms, self.n_inputs)
        shape = (self.n_firms, self.n_inputs)
        if self.demand is not None:
            x = self._shaped("demand", self.demand(po, pi), shape)
            check("demand", x, ~np.isfinite(x) | (x < 0), "finite and >= 0")
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
        need_positive_prices(p_in, np.ones_like(p_in, dtype=bool))
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
        need_positive_prices(p_in, np.ones_like(p_in, dtype=bool))
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
