"""Reference competitive equilibria, computed independently of any market dynamics.

Cobb-Douglas economies have a closed form: with B[j, k] = sum_i shares[i, j] e[i, k] and E the
total endowments, equilibrium prices solve (B - diag(E)) p = 0 (the null vector of M - I with
M = diag(E)^-1 B). Other economies are solved with scipy root-finding on excess demand in log
prices from several starting points; the result says honestly whether it found one equilibrium,
several, or none, and whether uniqueness is guaranteed (gross substitutes).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from attrs import field, frozen
from numpy.typing import NDArray
from scipy import linalg, optimize

from mktsim.errors import InvalidParameter
from mktsim.scenario import Scenario
from mktsim.utility import CES, CobbDouglas

__all__ = ["Equilibrium", "aggregate_excess_demand", "equilibrium"]

Status = Literal["unique", "found", "multiple", "none"]


@frozen
class Equilibrium:
    """A reference equilibrium.

    Attributes:
        status: ``unique`` (found, and theory guarantees it is the only one), ``found`` (one found,
            uniqueness not guaranteed), ``multiple`` (several found: ``prices`` is the first,
            ``alternatives`` the others), ``none`` (no equilibrium found; ``prices`` is None).
        prices: good -> price with the numeraire = 1.
        price_vector: the same as ``float64[g]`` in scenario order.
        allocation: ``float64[n_agents, g]`` demanded bundles at the prices, in ledger row order.
        method: ``closed_form`` or ``root``.
        residual: max over goods of |excess demand| / total endowment at the prices.
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


def _result(
    scenario: Scenario,
    p: NDArray[np.float64],
    status: Status,
    method: str,
    message: str,
    alternatives: tuple[dict[str, float], ...] = (),
) -> Equilibrium:
    supply = scenario.endowments().sum(axis=0)
    residual = float(np.max(np.abs(aggregate_excess_demand(scenario, p)) / supply))
    return Equilibrium(
        status,
        scenario.goods.as_dict(p),
        p,
        _allocation(scenario, p),
        method,
        residual,
        message,
        alternatives,
    )


def _closed_form_cobb_douglas(scenario: Scenario) -> Equilibrium:
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
        return Equilibrium(
            "none",
            None,
            None,
            None,
            "closed_form",
            np.nan,
            "the null vector has non-positive prices: a good nobody wants has price 0",
        )
    return _result(scenario, p, "unique", "closed_form", "Cobb-Douglas closed form")


def _gross_substitutes(scenario: Scenario) -> bool:
    utilities = [getattr(p, "utility", None) for p in scenario.populations]
    return all(
        isinstance(u, CobbDouglas) or (isinstance(u, CES) and bool((u.elasticity > 1).all()))
        for u in utilities
    )


def _solve_root(scenario: Scenario, starts: int, seed: int) -> Equilibrium:
    goods = scenario.goods
    g, num = len(goods), goods.numeraire_index
    others = [j for j in range(g) if j != num]
    supply = scenario.endowments().sum(axis=0)
    # excess demand relative to supply; a good nobody is endowed with (a firm's output) in units
    scale = np.where(supply > 0, supply, 1.0)

    def prices(logp: NDArray[np.float64]) -> NDArray[np.float64]:
        p = np.ones(g)
        p[others] = np.exp(np.clip(logp, -50, 50))
        return p

    def f(logp: NDArray[np.float64]) -> NDArray[np.float64]:
        return aggregate_excess_demand(scenario, prices(logp))[others] / scale[others]

    rng = np.random.default_rng(seed)
    x0s = [np.zeros(g - 1)] + [rng.normal(0, 1.5, g - 1) for _ in range(starts - 1)]
    found: list[NDArray[np.float64]] = []
    for x0 in x0s:
        for method in ("hybr", "lm"):
            try:
                sol = optimize.root(f, x0, method=method, tol=1e-14)
            except (ValueError, FloatingPointError, np.linalg.LinAlgError):
                continue
            if np.all(np.isfinite(sol.x)) and np.max(np.abs(f(sol.x))) < 1e-10:
                p = prices(sol.x)
                if not any(np.allclose(p, q, rtol=1e-6) for q in found):
                    found.append(p)
                break
    if not found:
        return Equilibrium(
            "none",
            None,
            None,
            None,
            "root",
            np.nan,
            f"scipy root-finding from {starts} starts found no equilibrium (excess demand may be "
            "discontinuous, e.g. linear utilities, or no equilibrium exists)",
        )
    if len(found) > 1:
        alts = tuple(goods.as_dict(q) for q in found[1:])
        return _result(
            scenario,
            found[0],
            "multiple",
            "root",
            f"{len(found)} distinct equilibria found from {starts} starts",
            alts,
        )
    if _gross_substitutes(scenario):
        return _result(scenario, found[0], "unique", "root", "gross substitutes: unique")
    return _result(
        scenario,
        found[0],
        "found",
        "root",
        f"one equilibrium found from {starts} starts; uniqueness is not guaranteed",
    )


def equilibrium(scenario: Scenario, starts: int = 8, seed: int = 0) -> Equilibrium:
    """The reference competitive equilibrium of a scenario's exchange economy.

    Args:
        scenario: the economy (its endowments define wealth).
        starts: starting points for root-finding when there is no closed form.
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
        return Equilibrium(
            "none",
            None,
            None,
            None,
            "none",
            np.nan,
            f"no reference solver for population kind(s) {kinds}: give the scenario a reference",
        )
    if all(isinstance(getattr(p, "utility", None), CobbDouglas) for p in scenario.populations):
        return _closed_form_cobb_douglas(scenario)
    return _solve_root(scenario, starts, seed)
