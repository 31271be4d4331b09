"""Reference competitive equilibria, computed independently of any market dynamics.

Cobb-Douglas economies have a closed form: with B[j, k] = sum_i shares[i, j] e[i, k] and E the
total endowments, equilibrium prices solve (B - diag(E)) p = 0 (the null vector of M - I with
M = diag(E)^-1 B). Other economies are solved on the reduced system (the numeraire's price held at
1, its market left out):

* two goods: the reduced excess demand is a function of one relative price, so it is scanned on a
  fine grid of log prices over ``[-SCAN_RANGE, SCAN_RANGE]`` and every sign change is bisected
  (``brentq``); near-touching minima of |z| are tried too. The scan finds every equilibrium whose
  neighbours are more than a grid step apart, so a single root is reported as ``unique``;
* more goods: least squares in log prices on every good's relative excess demand from several
  starting points (scipy root-finding on the reduced system as a fallback). Finding one point
  does not prove it is the only one, so the result is ``found`` unless theory (gross substitutes)
  guarantees uniqueness.

Every reported point is verified on *every* good, the numeraire included: max_j |z_j| / supply_j
must be below :data:`VERIFY_TOL`. (Checking only the reduced system accepts points where the
reduced excess demand is tiny only because the prices are astronomically large.) Each point comes
with its index, sign det(-J) of the reduced Jacobian J = dz_j / dp_k (j, k not the numeraire),
and its stability under continuous tatonnement dp/dt = z(p) from J's eigenvalues. For a regular
economy the indices of all equilibria sum to +1 (the index theorem; Dierker 1972), which the
result reports as a consistency check of the search.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from attrs import field, frozen
from numpy.typing import NDArray

from mktsim.errors import InvalidParameter
from mktsim.scenario import Scenario
from mktsim.utility import CES, CobbDouglas, Leontief

__all__ = [
    "Equilibrium",
    "EquilibriumPoint",
    "aggregate_excess_demand",
    "analyse_point",
    "equilibrium",
    "equilibrium_prices",
]

Status = Literal["unique", "found", "multiple", "none"]
Stability = Literal["stable", "unstable", "marginal"]
Array = NDArray[np.float64]

#: A reported point clears every market to this (max_j |z_j| / supply_j).
VERIFY_TOL = 1e-8
#: Two-good scan: log relative prices in [-SCAN_RANGE, SCAN_RANGE] ...
SCAN_RANGE = 25.0
#: ... on this many grid points.
SCAN_POINTS = 2001


@frozen
class EquilibriumPoint:
    """One verified equilibrium.

    Attributes:
        prices: good -> price with the numeraire = 1.
        price_vector: the same as ``float64[g]`` in scenario order.
        residual: max over all goods (numeraire included) of |excess demand| / total supply.
        index: sign det(-J) of the reduced Jacobian (+1, -1, or 0 when J is singular).
        stability: under dp/dt = z(p) with the numeraire fixed: ``stable`` (every eigenvalue of
            J has a negative real part), ``unstable`` (one has a positive real part) or
            ``marginal`` (the largest real part is zero to numerical precision, e.g. Scarf's
            economy, whose prices orbit).
        eigenvalues: ``complex128[g - 1]``, eigenvalues of the reduced Jacobian.
    """

    prices: dict[str, float]
    price_vector: Array
    residual: float
    index: int
    stability: Stability
    eigenvalues: NDArray[np.complex128]


@frozen
class Equilibrium:
    """A reference equilibrium.

    Attributes:
        status: ``unique`` (found, and theory or an exhaustive one-dimensional scan says it is the
            only one), ``found`` (one found, uniqueness not guaranteed), ``multiple`` (several
            found: ``prices`` is the first, ``alternatives`` the others), ``none`` (no
            equilibrium found; ``prices`` is None).
        prices: good -> price with the numeraire = 1.
        price_vector: the same as ``float64[g]`` in scenario order.
        allocation: ``float64[n_agents, g]`` demanded bundles at the prices, in ledger row order.
        method: ``closed_form``, ``scan`` (two goods), ``root`` or ``none``.
        residual: max over goods of |excess demand| / total endowment at the prices.
        alternatives: the other equilibria's prices when ``status`` is ``multiple``.
        equilibria: every equilibrium found, verified and classified, ``prices`` first
            (empty for scenario-specific reference solvers).
        extra: kind-specific results of scenario reference solvers (e.g. a price band, the
            maximum surplus, shadow prices).
    """

    status: Status
    prices: dict[str, float] | None
    price_vector: NDArray[np.float64] | None
    allocation: NDArray[np.float64] | None
    method: str
    residual: float
    message: str
    alternatives: tuple[dict[str, float], ...] = ()
    extra: dict[str, Any] = field(factory=dict)
    equilibria: tuple[EquilibriumPoint, ...] = ()

    @property
    def index_sum(self) -> int:
        """Sum of the indices of the equilibria found (+1 when the search found them all in a
        regular economy)."""
        return sum(e.index for e in self.equilibria)


def aggregate_excess_demand(scenario: Scenario, prices: NDArray[np.float64]) -> NDArray[np.float64]:
    """Total demand minus total endowment ``float64[g]`` at ``prices`` (endowment wealth)."""
    z = np.zeros(len(scenario.goods))
    for pop in scenario.populations:
        taker: Any = pop  # the caller has checked that every population has a demand
        z += taker.aggregate_demand(prices, pop.endowment) - pop.endowment.sum(axis=0)
    return z


def _allocation(scenario: Scenario, prices: NDArray[np.float64]) -> NDArray[np.float64]:
    pops: list[Any] = list(scenario.populations)
    return np.vstack([p.demand(prices, p.endowment) for p in pops])


def _scale(scenario: Scenario) -> Array:
    # excess demand relative to supply; a good nobody is endowed with (a firm's output) in units
    supply = scenario.endowments().sum(axis=0)
    return np.where(supply > 0, supply, 1.0)


def _relative_residual(scenario: Scenario, p: Array) -> float:
    with np.errstate(all="ignore"):
        z = aggregate_excess_demand(scenario, p) / _scale(scenario)
    return float(np.max(np.abs(z))) if np.all(np.isfinite(z)) else np.inf


def analyse_point(
    excess: Callable[[Array], Array], p: Array, numeraire: int = 0
) -> tuple[int, Stability, NDArray[np.complex128]]:
    """Index and tatonnement stability of a zero of ``excess`` at prices ``p``.

    Args:
        excess: aggregate excess demand ``float64[g]`` at prices ``float64[g]``.
        p: the equilibrium prices.
        numeraire: the good whose price is held fixed (its row and column are removed).

    Returns:
        (sign det(-J), stability, eigenvalues of J) with J the reduced Jacobian dz_j/dp_k,
        estimated by central differences with relative step 1e-6.
    """
    g = len(p)
    others = [j for j in range(g) if j != numeraire]
    jac = np.empty((g - 1, g - 1))
    for col, k in enumerate(others):
        h = 1e-6 * p[k]
        up, down = p.copy(), p.copy()
        up[k] += h
        down[k] -= h
        jac[:, col] = (excess(up)[others] - excess(down)[others]) / (2 * h)
    eig = np.linalg.eigvals(jac).astype(np.complex128)
    size = max(float(np.max(np.abs(eig), initial=0.0)), 1e-300)
    det = float(np.linalg.det(-jac))
    # a determinant below round-off relative to the eigenvalues' scale is a singular point
    index = 0 if abs(det) <= (1e-7 * size) ** (g - 1) else int(np.sign(det))
    top = float(np.max(eig.real, initial=-np.inf))
    stability: Stability = (
        "stable" if top < -1e-6 * size else "unstable" if top > 1e-6 * size else "marginal"
    )
    return index, stability, eig


def _point(scenario: Scenario, p: Array) -> EquilibriumPoint:
    num = scenario.goods.numeraire_index
    index, stability, eig = analyse_point(lambda q: aggregate_excess_demand(scenario, q), p, num)
    return EquilibriumPoint(
        scenario.goods.as_dict(p), p, _relative_residual(scenario, p), index, stability, eig
    )


def _result(
    scenario: Scenario,
    points: list[EquilibriumPoint],
    status: Status,
    method: str,
    message: str,
) -> Equilibrium:
    first = points[0]
    alts = tuple(q.prices for q in points[1:]) if status == "multiple" else ()
    return Equilibrium(
        status,
        first.prices,
        first.price_vector,
        _allocation(scenario, first.price_vector),
        method,
        first.residual,
        message,
        alts,
        equilibria=tuple(points),
    )


def _none(method: str, message: str) -> Equilibrium:
    return Equilibrium("none", None, None, None, method, np.nan, message)


def _cobb_douglas_prices(scenario: Scenario) -> Array | Equilibrium:
    """The closed-form equilibrium prices of a Cobb-Douglas economy (numeraire = 1), or the
    :class:`Equilibrium` saying why there is no unique one."""
    from scipy import linalg  # imported when a solve needs it: a run need not load scipy

    g = len(scenario.goods)
    num = scenario.goods.numeraire_index
    b = np.zeros((g, g))
    for pop in scenario.populations:
        b += pop.utility.shares.T @ pop.endowment  # type: ignore[attr-defined]
    e = scenario.endowments().sum(axis=0)
    m = b - np.diag(e)
    null = linalg.null_space(m, rcond=1e-12)
    if null.shape[1] != 1:
        return Equilibrium(
            "multiple" if null.shape[1] > 1 else "none",
            None,
            None,
            None,
            "closed_form",
            np.nan,
            f"the price system has a {null.shape[1]}-dimensional solution space "
            "(a decomposable economy)",
        )
    p = null[:, 0]
    p = p / p[num]
    if (p <= 0).any():
        return _none(
            "closed_form",
            "the null vector has non-positive prices: a good nobody wants has price 0",
        )
    return p


def _closed_form_cobb_douglas(scenario: Scenario) -> Equilibrium:
    found = _cobb_douglas_prices(scenario)
    if isinstance(found, Equilibrium):
        return found
    return _result(scenario, [_point(scenario, found)], "unique", "closed_form", "Cobb-Douglas")


def _gross_substitutes(scenario: Scenario) -> bool:
    utilities = [getattr(p, "utility", None) for p in scenario.populations]
    return all(
        isinstance(u, CobbDouglas) or (isinstance(u, CES) and bool((u.elasticity > 1).all()))
        for u in utilities
    )


def _continuous(scenario: Scenario) -> bool:
    """Whether excess demand is a continuous function (a scan's sign changes then find every
    crossing); linear utilities make demand a correspondence that jumps."""
    utilities = [getattr(p, "utility", None) for p in scenario.populations]
    return all(isinstance(u, CobbDouglas | CES | Leontief) for u in utilities)


def _reduced(scenario: Scenario) -> tuple[Callable[[Array], Array], Callable[[Array], Array]]:
    """(log prices of the non-numeraire goods -> prices, -> their relative excess demand)."""
    g, num = len(scenario.goods), scenario.goods.numeraire_index
    others = [j for j in range(g) if j != num]
    scale = _scale(scenario)

    def prices(logp: Array) -> Array:
        p = np.ones(g)
        p[others] = np.exp(np.clip(logp, -300, 300))
        return p

    def f(logp: Array) -> Array:
        with np.errstate(all="ignore"):
            return aggregate_excess_demand(scenario, prices(logp))[others] / scale[others]

    return prices, f


def _keep(scenario: Scenario, found: list[Array], p: Array) -> None:
    """Add ``p`` to ``found`` if it clears every market and is new."""
    if not np.all(np.isfinite(p)) or _relative_residual(scenario, p) >= VERIFY_TOL:
        return
    if not any(np.allclose(np.log(p), np.log(q), atol=1e-6) for q in found):
        found.append(p)


def _scan_two_goods(scenario: Scenario) -> tuple[list[Array], bool]:
    """Every equilibrium of a two-good economy; and whether the scan covers all of them (the
    excess demand points inward at both ends of the scanned range)."""
    from scipy import optimize

    prices, f = _reduced(scenario)
    grid = np.linspace(-SCAN_RANGE, SCAN_RANGE, SCAN_POINTS)
    values = np.array([f(np.array([x]))[0] for x in grid])
    found: list[Array] = []
    finite = np.isfinite(values)
    for i in range(len(grid) - 1):
        a, b = values[i], values[i + 1]
        if not (finite[i] and finite[i + 1]):
            continue
        if a == 0.0:
            _keep(scenario, found, prices(grid[i : i + 1]))
        elif a * b < 0:
            x = optimize.brentq(lambda t: f(np.array([t]))[0], grid[i], grid[i + 1], xtol=1e-14)
            _keep(scenario, found, prices(np.array([x])))
    # a double root touches zero without a sign change: try each local minimum of |z|
    mag = np.abs(values)
    for i in range(1, len(grid) - 1):
        if finite[i] and mag[i] <= mag[i - 1] and mag[i] <= mag[i + 1] and mag[i] < 1e-3:
            sol = optimize.minimize_scalar(
                lambda t: abs(f(np.array([t]))[0]),
                bracket=(grid[i - 1], grid[i], grid[i + 1]),
                tol=1e-14,
            )
            _keep(scenario, found, prices(np.array([sol.x])))
    found.sort(key=lambda q: float(q[1 - scenario.goods.numeraire_index]))
    inward = finite[0] and finite[-1] and values[0] > 0 > values[-1]
    complete = bool(inward and finite.all() and _continuous(scenario))
    return found, complete


def _search(scenario: Scenario, starts: int, seed: int) -> list[Array]:
    """Equilibria from several starts: least squares on *every* good's relative excess demand
    (the numeraire's too, so the solver is not drawn to prices so large that the numeraire no
    longer counts, where the reduced system vanishes without any market clearing), then scipy's
    hybrid root-finder on the reduced system where that fails."""
    from scipy import optimize

    g = len(scenario.goods)
    prices, f = _reduced(scenario)
    scale = _scale(scenario)

    def every_good(logp: Array) -> Array:
        with np.errstate(all="ignore"):
            r = aggregate_excess_demand(scenario, prices(logp)) / scale
        return np.where(np.isfinite(r), r, 1e6)

    rng = np.random.default_rng(seed)
    x0s = [np.zeros(g - 1)] + [rng.normal(0, 1.5, g - 1) for _ in range(starts - 1)]
    found: list[Array] = []
    for x0 in x0s:
        before = len(found)
        try:
            sol = optimize.least_squares(
                every_good, x0, method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15
            )
            _keep(scenario, found, prices(sol.x))
            if len(found) > before or _relative_residual(scenario, prices(sol.x)) < VERIFY_TOL:
                continue
            sol = optimize.root(f, x0, method="hybr", tol=1e-14)
            _keep(scenario, found, prices(sol.x))
        except (ValueError, FloatingPointError, np.linalg.LinAlgError):
            continue
    return found


def _solve(scenario: Scenario, starts: int, seed: int) -> Equilibrium:
    two = len(scenario.goods) == 2
    if two:
        found, complete = _scan_two_goods(scenario)
        method, how = "scan", f"a scan of log prices on [-{SCAN_RANGE:g}, {SCAN_RANGE:g}]"
    else:
        found, complete = _search(scenario, starts, seed), False
        method, how = "root", f"least squares from {starts} starts"
    if not found:
        return _none(
            method,
            f"{how} found no point clearing every market (excess demand may be discontinuous, "
            "e.g. linear utilities, or no equilibrium exists)",
        )
    points = [_point(scenario, p) for p in found]
    indices = f"; indices sum to {sum(q.index for q in points):+d}"
    if len(points) > 1:
        return _result(
            scenario, points, "multiple", method, f"{len(points)} equilibria from {how}{indices}"
        )
    if _gross_substitutes(scenario):
        return _result(scenario, points, "unique", method, "gross substitutes: unique")
    if two and complete:
        return _result(scenario, points, "unique", method, f"the only equilibrium in {how}")
    return _result(
        scenario,
        points,
        "found",
        method,
        f"one equilibrium found by {how}; uniqueness is not guaranteed",
    )


def equilibrium(scenario: Scenario, starts: int = 8, seed: int = 0) -> Equilibrium:
    """The reference competitive equilibria of a scenario's exchange economy.

    Args:
        scenario: the economy (its endowments define wealth).
        starts: starting points for root-finding with three goods or more.
        seed: seed of the random starting points (the answer does not depend on the run seed).
    """
    if scenario.reference is not None:
        result = scenario.reference(scenario)
        if not isinstance(result, Equilibrium):
            raise InvalidParameter(
                f"the reference solver of scenario {scenario.name!r} returned "
                f"{type(result).__name__}, not an Equilibrium"
            )
        return result
    unsupported = [p for p in scenario.populations if not hasattr(p, "aggregate_demand")]
    if unsupported:
        kinds = ", ".join(sorted({p.kind for p in unsupported}))
        return _none(
            "none",
            f"no reference solver for population kind(s) {kinds}: give the scenario a reference",
        )
    if _all_cobb_douglas(scenario):
        return _closed_form_cobb_douglas(scenario)
    return _solve(scenario, starts, seed)


def _all_cobb_douglas(scenario: Scenario) -> bool:
    return all(isinstance(getattr(p, "utility", None), CobbDouglas) for p in scenario.populations)


def equilibrium_prices(scenario: Scenario) -> dict[str, float] | None:
    """The prices of :func:`equilibrium` when it is unique or one was found, else None.

    Where the prices have a closed form (Cobb-Douglas economies) they come without the index,
    stability and allocation :func:`equilibrium` works out: a run asks this of the holdings it
    ended with, and needs the prices alone."""
    if (
        scenario.reference is None
        and all(hasattr(p, "aggregate_demand") for p in scenario.populations)
        and _all_cobb_douglas(scenario)
    ):
        found = _cobb_douglas_prices(scenario)
        return None if isinstance(found, Equilibrium) else scenario.goods.as_dict(found)
    eq = equilibrium(scenario)
    return eq.prices if eq.prices is not None and eq.status in ("unique", "found") else None
