"""Utility families with closed-form demand, vectorised over the agents of a population.

Every parameter array has one row per agent and one column per good (``float64[n, g]``); demand at
prices ``p: float64[g]`` and wealth ``w: float64[n]`` is computed for all agents at once. The
formulas are the textbook ones (see SCIENCE.md); each class also gives utility levels and marginal
utilities, which welfare reports and order-book behaviours need.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from attrs import field, frozen
from numpy.typing import NDArray

from mktsim.errors import InvalidParameter

__all__ = ["CES", "CobbDouglas", "Leontief", "Linear", "Utility", "as_matrix"]

Array = NDArray[np.float64]


def as_matrix(values: object, what: str) -> Array:
    """A finite, non-negative ``float64[n, g]`` array (a 1-D input is one agent)."""
    arr = np.array(values, dtype=float, copy=True)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidParameter(f"{what} must be a 2-D array [agents, goods]; got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise InvalidParameter(f"{what}[{i}, {j}](={arr[i, j]}) must be finite")
    if (arr < 0).any():
        i, j = np.argwhere(arr < 0)[0]
        raise InvalidParameter(f"{what}[{i}, {j}](={arr[i, j]}) must be >= 0")
    arr.setflags(write=False)
    return arr


def _positive_rows(arr: Array, what: str) -> None:
    empty = np.flatnonzero(arr.sum(axis=1) <= 0)
    if empty.size:
        raise InvalidParameter(f"{what}[{empty[0]}] must have a positive entry; got all zeros")


@runtime_checkable
class Utility(Protocol):
    """What the simulator needs from a utility family."""

    @property
    def n_agents(self) -> int: ...

    @property
    def n_goods(self) -> int: ...

    def demand(self, prices: Array, wealth: Array) -> Array:
        """Utility-maximising bundles ``float64[n, g]`` at ``prices[g]`` and ``wealth[n]``."""
        ...

    def utility(self, x: Array) -> Array:
        """Utility level ``float64[n]`` of bundles ``x[n, g]``."""
        ...

    def marginal_utility(self, x: Array) -> Array:
        """Gradient of utility ``float64[n, g]`` at bundles ``x[n, g]``."""
        ...

    def take(self, rows: NDArray[np.intp]) -> Utility:
        """The same family restricted to some agents (for shocks and sub-populations)."""
        ...


@frozen
class CobbDouglas:
    """u(x) = prod_j x_j^shares_j with each row of ``shares`` summing to 1.

    Demand: x_j = shares_j * w / p_j.
    """

    shares: Array = field(converter=lambda v: as_matrix(v, "shares"))

    def __attrs_post_init__(self) -> None:
        sums = self.shares.sum(axis=1)
        off = np.flatnonzero(np.abs(sums - 1.0) > 1e-9)
        if off.size:
            i = off[0]
            raise InvalidParameter(f"shares[{i}] must sum to 1; sums to {sums[i]!r}")

    @property
    def n_agents(self) -> int:
        return int(self.shares.shape[0])

    @property
    def n_goods(self) -> int:
        return int(self.shares.shape[1])

    def demand(self, prices: Array, wealth: Array) -> Array:
        return self.shares * (wealth[:, None] / prices[None, :])

    def aggregate_demand(self, prices: Array, wealth: Array) -> Array:
        """Total demand ``float64[g]`` without forming the per-agent matrix: (shares^T w) / p."""
        return (wealth @ self.shares) / prices

    def utility(self, x: Array) -> Array:
        with np.errstate(divide="ignore"):
            logs = np.where(self.shares > 0, np.log(np.maximum(x, 0.0)), 0.0)
        return np.exp((self.shares * logs).sum(axis=1))

    def marginal_utility(self, x: Array) -> Array:
        with np.errstate(divide="ignore", invalid="ignore"):
            mu = np.where(self.shares > 0, self.shares * self.utility(x)[:, None] / x, 0.0)
        # u = x_j for a share of 1: the marginal utility is 1 at any x_j, including 0 (0/0 above)
        return np.where(self.shares == 1.0, 1.0, mu)

    def take(self, rows: NDArray[np.intp]) -> CobbDouglas:
        return CobbDouglas(self.shares[rows])


def _elasticity(value: object) -> Array:
    arr = np.atleast_1d(np.asarray(value, dtype=float)).copy()
    if arr.ndim != 1:
        raise InvalidParameter(
            f"elasticity must be a scalar or one value per agent; shape {arr.shape}"
        )
    for v in arr:
        if not np.isfinite(v) or v <= 0:
            raise InvalidParameter(f"elasticity(={v}) must be > 0 and finite")
        if v == 1.0:
            raise InvalidParameter("elasticity(=1.0) is Cobb-Douglas: use CobbDouglas(shares=...)")
    arr.setflags(write=False)
    return arr


@frozen
class CES:
    """u(x) = (sum_j weights_j x_j^rho)^(1/rho), rho = (sigma - 1) / sigma, sigma = elasticity.

    Demand: x_j = w a_j^s p_j^(-s) / sum_k a_k^s p_k^(1-s). Gross substitutes when sigma > 1.
    ``elasticity`` is a scalar or one value per agent.
    """

    weights: Array = field(converter=lambda v: as_matrix(v, "weights"))
    elasticity: Array = field(converter=_elasticity)

    def __attrs_post_init__(self) -> None:
        _positive_rows(self.weights, "weights")
        if self.elasticity.size not in (1, self.n_agents):
            raise InvalidParameter(
                f"elasticity has {self.elasticity.size} values for {self.n_agents} agents"
            )

    @property
    def n_agents(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_goods(self) -> int:
        return int(self.weights.shape[1])

    @property
    def _sigma(self) -> Array:
        return self.elasticity[:, None] if self.elasticity.size > 1 else self.elasticity[:1, None]

    def demand(self, prices: Array, wealth: Array) -> Array:
        s = self._sigma
        # a^s p^(-s), with weights of zero giving zero demand
        with np.errstate(divide="ignore"):
            term = np.where(
                self.weights > 0, np.exp(s * (np.log(self.weights) - np.log(prices))), 0.0
            )
        return (wealth[:, None] * term) / (term * prices).sum(axis=1, keepdims=True)

    def utility(self, x: Array) -> Array:
        s = self._sigma
        rho = (s - 1.0) / s
        with np.errstate(divide="ignore"):
            inner = (np.where(self.weights > 0, self.weights * np.maximum(x, 0.0) ** rho, 0.0)).sum(
                axis=1, keepdims=True
            )
            return (inner ** (1.0 / rho))[:, 0]

    def marginal_utility(self, x: Array) -> Array:
        s = self._sigma
        rho = (s - 1.0) / s
        u = self.utility(x)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            # du/dx_j = a_j x_j^(rho-1) u^(1-rho)
            return np.where(
                self.weights > 0, self.weights * x ** (rho - 1.0) * u ** (1.0 - rho), 0.0
            )

    def take(self, rows: NDArray[np.intp]) -> CES:
        sig = self.elasticity[rows] if self.elasticity.size > 1 else self.elasticity
        return CES(self.weights[rows], sig)


@frozen
class Leontief:
    """u(x) = min over goods with c_j > 0 of x_j / c_j (perfect complements).

    Demand: x = c * w / (p . c).
    """

    coefficients: Array = field(converter=lambda v: as_matrix(v, "coefficients"))

    def __attrs_post_init__(self) -> None:
        _positive_rows(self.coefficients, "coefficients")

    @property
    def n_agents(self) -> int:
        return int(self.coefficients.shape[0])

    @property
    def n_goods(self) -> int:
        return int(self.coefficients.shape[1])

    def demand(self, prices: Array, wealth: Array) -> Array:
        c = self.coefficients
        return c * (wealth / (c @ prices))[:, None]

    def utility(self, x: Array) -> Array:
        c = self.coefficients
        with np.errstate(divide="ignore"):
            ratio = np.where(c > 0, x / np.where(c > 0, c, 1.0), np.inf)
        return ratio.min(axis=1)

    def marginal_utility(self, x: Array) -> Array:
        # A subgradient: the binding goods share the increase in proportion to their coefficients.
        c = self.coefficients
        u = self.utility(x)[:, None]
        binding = (c > 0) & np.isclose(x, c * u, rtol=1e-12, atol=0.0)
        return np.where(binding, 1.0 / np.where(c > 0, c, 1.0), 0.0) / np.maximum(
            binding.sum(axis=1, keepdims=True), 1
        )

    def take(self, rows: NDArray[np.intp]) -> Leontief:
        return Leontief(self.coefficients[rows])


@frozen
class Linear:
    """u(x) = sum_j values_j x_j (perfect substitutes).

    Demand is a correspondence: wealth goes to the goods maximising values_j / p_j. Ties (within
    a relative 1e-12) split wealth equally among the best goods, a documented rule.
    """

    values: Array = field(converter=lambda v: as_matrix(v, "values"))

    def __attrs_post_init__(self) -> None:
        _positive_rows(self.values, "values")

    @property
    def n_agents(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_goods(self) -> int:
        return int(self.values.shape[1])

    def demand(self, prices: Array, wealth: Array) -> Array:
        bang = self.values / prices
        best = bang >= bang.max(axis=1, keepdims=True) * (1 - 1e-12)
        best &= self.values > 0
        spend = wealth[:, None] * best / best.sum(axis=1, keepdims=True)
        return spend / prices

    def utility(self, x: Array) -> Array:
        return (self.values * x).sum(axis=1)

    def marginal_utility(self, x: Array) -> Array:
        return np.broadcast_to(self.values, x.shape).copy()

    def take(self, rows: NDArray[np.intp]) -> Linear:
        return Linear(self.values[rows])
