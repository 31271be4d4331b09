"""Reference prices for production, computed without any market: prices are derivatives.

Three independent routes to the competitive prices of a supply chain:

- :func:`backprop_prices`: on a tree, the reverse-mode chain rule at given quantities; the price
  of a good is d(value of final goods)/d(good).
- :func:`planner`: on any acyclic graph, the social planner's problem ``max sum_k P_k y_k``
  subject to resource and intermediate-balance constraints; prices are its Lagrange multipliers.
- :func:`leontief_prices` and :func:`leontief_lp_shadow_prices`: fixed-coefficient
  input-output pricing ``p = p A + v``, and the same prices as LP dual values.

These are what simulated markets are checked against, so they use only numpy and scipy.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Literal

import numpy as np
from attrs import frozen
from numpy.typing import ArrayLike, NDArray

from mktsim.errors import InvalidParameter, NoEquilibrium, ScenarioError
from mktsim.production.graph import FirmNode, SupplyGraph
from mktsim.production.technology import Leontief

__all__ = [
    "BackpropResult",
    "LeontiefLPResult",
    "PlannerResult",
    "backprop_prices",
    "leontief_lp_shadow_prices",
    "leontief_prices",
    "planner",
    "spectral_radius",
]

FloatArray = NDArray[np.float64]


def _priced_finals(graph: SupplyGraph, what: str) -> dict[str, float]:
    prices: dict[str, float] = {}
    for fg in graph.finals:
        if fg.price is None:
            raise ScenarioError(
                f"{what} needs a fixed price for every final good; {fg.good!r} is bought by "
                "consumers, whose demand is not part of the supply graph"
            )
        prices[fg.good] = fg.price
    return prices


def _amounts(graph: SupplyGraph, given: Mapping[str, float] | None, name: str) -> dict[str, float]:
    """Validated {good: amount} for the keys of ``given``."""
    out: dict[str, float] = {}
    for good, value in (given or {}).items():
        graph.kind(good)  # raises ScenarioError with a hint for unknown goods
        v = float(value)
        if not np.isfinite(v):
            raise InvalidParameter(f"{name}[{good!r}](={value!r}) must be finite")
        out[good] = v
    return out


# --------------------------------------------------------------------------- backprop


@frozen
class BackpropResult:
    """Quantities and back-propagated prices of every good.

    Attributes:
        quantities: units of each good at the evaluation point (raw: the amount used).
        prices: d(value of final goods)/d(good), numeraire per unit; final goods at their price.
        firm_inputs: each firm's inputs, float64[n_inputs].
        firm_outputs: each firm's output.
    """

    quantities: Mapping[str, float]
    prices: Mapping[str, float]
    firm_inputs: Mapping[str, FloatArray]
    firm_outputs: Mapping[str, float]


def backprop_prices(
    graph: SupplyGraph, quantities: Mapping[str, float] | None = None
) -> BackpropResult:
    """Prices as the gradient of final value, by reverse-mode differentiation on a tree.

    The forward pass starts from the raw resources (``quantities`` or their endowments) and
    sends each good wholly to its single user; the backward pass sets each final good's price to
    its fixed price and each input's price to ``p_out * dy/dx_j`` summed over users (one user in
    a tree). For the tupperware chain at x = 4 this gives p_b = 3/2, p_a = 1/6, p_x = 1/24.

    Args:
        graph: a tree-shaped supply graph (every good has at most one user) whose final goods
            have fixed prices.
        quantities: units of some raw resources to use instead of their endowments, >= 0.

    Raises:
        ScenarioError: the graph is not a tree (use :func:`planner`), a final good has no fixed
            price, or a key of ``quantities`` is not a raw resource.
        InvalidParameter: a negative quantity, or a marginal product that is undefined (a
            Leontief kink) or non-finite at the evaluation point.
    """
    if not graph.is_tree():
        shared = [g for g in graph.goods if len(graph.users(g)) > 1]
        raise ScenarioError(
            f"backprop_prices needs a tree; good {shared[0]!r} has users "
            f"{[f.name for f in graph.users(shared[0])]}: how it is split is a choice, so use "
            "planner() for its shadow prices"
        )
    final_prices = _priced_finals(graph, "backprop_prices")
    given = _amounts(graph, quantities, "quantities")
    for good, v in given.items():
        if graph.kind(good) != "raw":
            raise ScenarioError(
                f"quantities may only set raw resources; {good!r} is {graph.kind(good)}"
            )
        if v < 0:
            raise InvalidParameter(f"quantities[{good!r}](={v!r}) must be >= 0")

    qty = {g: 0.0 for g in graph.goods}
    for r in graph.resources:
        qty[r.good] = given.get(r.good, r.endowment)
    inputs: dict[str, FloatArray] = {}
    outputs: dict[str, float] = {}
    for firm in graph.firm_order():
        x = np.array([qty[g] for g in firm.inputs], dtype=np.float64)
        y = float(firm.technology.output(x[None, :])[0])
        inputs[firm.name], outputs[firm.name] = x, y
        qty[firm.output] += y

    price = {g: 0.0 for g in graph.goods}
    price.update(final_prices)
    for firm in reversed(graph.firm_order()):
        mp = firm.technology.marginal_products(inputs[firm.name][None, :])[0]
        if not np.all(np.isfinite(mp)):
            j = int(np.argmax(~np.isfinite(mp)))
            raise InvalidParameter(
                f"marginal product of firm {firm.name!r} in {firm.inputs[j]!r} is {mp[j]!r} at "
                f"x={inputs[firm.name].tolist()}: the price is not a derivative there (a kink or "
                "a zero input); use planner() or leontief_prices()"
            )
        for g, dy in zip(firm.inputs, mp, strict=True):
            price[g] += price[firm.output] * float(dy)
    return BackpropResult(quantities=qty, prices=price, firm_inputs=inputs, firm_outputs=outputs)


# --------------------------------------------------------------------------- planner


class _Activity:
    """A firm's decision variables for the planner.

    Smooth technologies choose their inputs (z = x). Leontief firms choose their output level
    (z = [y], inputs c * y): using more than c * y never helps, and the min() kink would stall a
    gradient solver.
    """

    def __init__(self, firm: FirmNode) -> None:
        self.firm = firm
        tech = firm.technology
        self.coef: FloatArray | None = (
            np.asarray(tech.coefficients[0], dtype=np.float64)
            if isinstance(tech, Leontief)
            else None
        )
        self.m = len(firm.inputs)
        self.n_vars = 1 if self.coef is not None else self.m

    def start(self, alloc: FloatArray) -> FloatArray:
        if self.coef is not None:
            need = self.coef > 0
            return np.array([np.min(alloc[need] / self.coef[need])])
        return alloc.copy()

    def output(self, z: FloatArray) -> float:
        if self.coef is not None:
            return float(z[0])
        return float(self.firm.technology.output(z[None, :])[0])

    def d_output(self, z: FloatArray) -> FloatArray:
        if self.coef is not None:
            return np.ones(1)
        return np.asarray(self.firm.technology.marginal_products(z[None, :])[0], dtype=np.float64)

    def use(self, z: FloatArray) -> FloatArray:
        return self.coef * z[0] if self.coef is not None else z

    def d_use(self) -> FloatArray:
        return self.coef[:, None] if self.coef is not None else np.eye(self.m)


@frozen
class PlannerResult:
    """The planner's optimum and the shadow prices of every good.

    Attributes:
        value: sum_k P_k y_k at the optimum (numeraire).
        prices: the multiplier of each raw and intermediate good's balance constraint
            (d value / d extra unit of the good), and the fixed price of each final good.
        firm_inputs: each firm's inputs, float64[n_inputs].
        firm_outputs: each firm's output.
        slack: unused units of each raw and intermediate good (free disposal).
        kkt_residual: largest relative violation of stationarity ``grad V + J' lambda = 0``
            over the variables that are not at their bound, and of ``lambda >= 0``.
        iterations: solver iterations, summed over all attempts.
    """

    value: float
    prices: Mapping[str, float]
    firm_inputs: Mapping[str, FloatArray]
    firm_outputs: Mapping[str, float]
    slack: Mapping[str, float]
    kkt_residual: float
    iterations: int


def planner(
    graph: SupplyGraph,
    *,
    extra_supply: Mapping[str, float] | None = None,
    method: Literal["SLSQP", "trust-constr"] = "SLSQP",
    tol: float = 1e-14,
    max_iter: int = 2000,
    kkt_tol: float = 1e-5,
) -> PlannerResult:
    """Solve ``max sum_k P_k y_k`` subject to every good's balance; prices are the multipliers.

    Variables are each firm's inputs (a Leontief firm's output level). For each raw or
    intermediate good g the constraint is ``endowment_g + extra_g + made_g - used_g >= 0``; its
    Lagrange multiplier is the good's shadow price, which by the envelope theorem is the gain in
    value from one more unit of g, and equals ``p_out * dy/dx_g`` for every firm that uses g.

    Args:
        graph: supply graph whose final goods have fixed prices.
        extra_supply: units added to a good's balance (may be negative), e.g. to measure the
            envelope derivative of any good, raw or intermediate.
        method: ``"SLSQP"`` (default; multipliers from the active-set QP. It is restarted
            from other interior points if an attempt fails the KKT check, and finally run from
            the answer of trust-constr) or ``"trust-constr"`` alone (interior point; slower,
            less precise).
        tol: solver tolerance.
        max_iter: solver iteration limit.
        kkt_tol: largest accepted relative KKT residual.

    Raises:
        ScenarioError: a final good without fixed price, or an unknown good in ``extra_supply``.
        NoEquilibrium: the solver failed, the answer is infeasible, or it fails the KKT check.
    """
    import scipy.optimize  # here: only a reference solve needs scipy

    final_prices = _priced_finals(graph, "planner")
    extra = _amounts(graph, extra_supply, "extra_supply")
    if method not in ("SLSQP", "trust-constr"):
        raise InvalidParameter(f"method(={method!r}) must be 'SLSQP' or 'trust-constr'")
    for good in extra:
        if graph.kind(good) == "final":
            raise ScenarioError(f"extra_supply of final good {good!r} has no balance constraint")

    acts = [_Activity(f) for f in graph.firms]
    offsets = np.cumsum([0] + [a.n_vars for a in acts])
    n_z = int(offsets[-1])
    balance = [g for g in graph.goods if graph.kind(g) != "final"]
    row = {g: i for i, g in enumerate(balance)}
    base = np.array([graph.endowment(g) + extra.get(g, 0.0) for g in balance])

    def blocks(z: FloatArray) -> list[FloatArray]:
        return [z[offsets[i] : offsets[i + 1]] for i in range(len(acts))]

    def value(z: FloatArray) -> float:
        total = 0.0
        for act, zi in zip(acts, blocks(z), strict=True):
            p = final_prices.get(act.firm.output)
            if p is not None:
                total += p * act.output(zi)
        return total

    def d_value(z: FloatArray) -> FloatArray:
        grad = np.zeros(n_z)
        for i, (act, zi) in enumerate(zip(acts, blocks(z), strict=True)):
            p = final_prices.get(act.firm.output)
            if p is not None:
                grad[offsets[i] : offsets[i + 1]] = p * act.d_output(zi)
        return grad

    def cons(z: FloatArray) -> FloatArray:
        c = base.copy()
        for act, zi in zip(acts, blocks(z), strict=True):
            if act.firm.output in row:
                c[row[act.firm.output]] += act.output(zi)
            for g, u in zip(act.firm.inputs, act.use(zi), strict=True):
                c[row[g]] -= u
        return c

    def d_cons(z: FloatArray) -> FloatArray:
        jac = np.zeros((len(balance), n_z))
        for i, (act, zi) in enumerate(zip(acts, blocks(z), strict=True)):
            cols = slice(offsets[i], offsets[i + 1])
            if act.firm.output in row:
                jac[row[act.firm.output], cols] += act.d_output(zi)
            du = act.d_use()
            for k, g in enumerate(act.firm.inputs):
                jac[row[g], cols] -= du[k]
        return jac

    def run_slsqp(z0: FloatArray) -> tuple[FloatArray, FloatArray, int, str]:
        res = scipy.optimize.minimize(
            lambda z: -value(z),
            z0,
            jac=lambda z: _capped(-d_value(z)),
            method="SLSQP",
            bounds=[(0.0, None)] * n_z,
            constraints=[{"type": "ineq", "fun": cons, "jac": lambda z: _capped(d_cons(z))}],
            options={"ftol": tol, "maxiter": max_iter},
        )
        return res.x, np.asarray(res.multipliers), int(res.nit), f"SLSQP: {res.message}"

    def run_trust_constr(z0: FloatArray) -> tuple[FloatArray, FloatArray, int, str]:
        with warnings.catch_warnings():
            # BFGS skips an update when a step leaves the gradient unchanged; harmless here
            warnings.filterwarnings("ignore", message="delta_grad == 0.0")
            res = scipy.optimize.minimize(
                lambda z: -value(z),
                z0,
                jac=lambda z: _capped(-d_value(z)),
                hess=scipy.optimize.BFGS(),
                method="trust-constr",
                bounds=scipy.optimize.Bounds(0.0, np.inf),
                constraints=[
                    scipy.optimize.NonlinearConstraint(
                        cons, 0.0, np.inf, jac=lambda z: _capped(d_cons(z))
                    )
                ],
                options={"gtol": tol, "xtol": tol, "maxiter": max_iter},
            )
        # trust-constr reports multipliers with the opposite sign for lower-bounded constraints
        return res.x, -np.asarray(res.v[0]), int(res.niter), f"trust-constr: {res.message}"

    scale = np.maximum(1.0, np.abs(base))

    def residual(z: FloatArray, lam: FloatArray) -> float:
        if not (np.all(np.isfinite(z)) and np.all(np.isfinite(lam))):
            return np.inf
        if np.any(cons(z) < -1e-7 * scale):
            return np.inf
        return _kkt_residual(z, d_value(z), d_cons(z), lam)

    # SLSQP's first step uses an identity Hessian; with Inada-type technologies (infinite
    # marginal product at 0) it can jump onto a bound and stall. Restart from other interior
    # points, then from the interior-point solver's answer, before giving up.
    if method == "SLSQP":
        plan = [
            (run_slsqp, _feasible_start(graph, acts, offsets, base, row, share))
            for share in (0.5, 0.9, 0.2)
        ]
        plan.append((run_trust_constr, plan[0][1]))
    else:
        plan = [(run_trust_constr, _feasible_start(graph, acts, offsets, base, row, 0.5))]
    best: tuple[float, FloatArray, FloatArray, int] | None = None
    messages: list[str] = []
    iterations = 0
    for solve, z0 in plan:
        z, lam, nit, msg = solve(z0)
        iterations += nit
        if method == "SLSQP" and solve is run_trust_constr and np.all(np.isfinite(z)):
            z, lam, nit, msg = run_slsqp(np.maximum(z, 0.0))  # polish the multipliers
            iterations += nit
        resid = residual(np.asarray(z, dtype=np.float64), np.asarray(lam, dtype=np.float64))
        messages.append(f"{msg} (KKT residual {resid:.3g})")
        if best is None or resid < best[0]:
            best = (resid, np.asarray(z, dtype=np.float64), np.asarray(lam, dtype=np.float64), nit)
        if resid <= kkt_tol:
            break
    assert best is not None
    resid, z, lam, _ = best
    if not resid <= kkt_tol:
        raise NoEquilibrium(
            f"planner: no attempt met kkt_tol(={kkt_tol!r}) with a feasible allocation: "
            + "; ".join(messages)
        )
    slack = cons(z)

    prices = {g: float(lam[row[g]]) for g in balance}
    prices.update(final_prices)
    inputs: dict[str, FloatArray] = {}
    outputs: dict[str, float] = {}
    for act, zi in zip(acts, blocks(z), strict=True):
        inputs[act.firm.name] = np.asarray(act.use(zi), dtype=np.float64).copy()
        outputs[act.firm.name] = act.output(zi)
    return PlannerResult(
        value=value(z),
        prices={g: prices[g] for g in graph.goods},
        firm_inputs=inputs,
        firm_outputs=outputs,
        slack={g: float(max(slack[row[g]], 0.0)) for g in balance},
        kkt_residual=float(resid),
        iterations=iterations,
    )


# Inputs at zero can have infinite marginal products (sqrt at 0); a solver needs finite numbers,
# and any cap this large still points firmly away from the boundary.
_GRAD_CAP = 1e12


def _capped(a: FloatArray) -> FloatArray:
    return np.nan_to_num(a, nan=0.0, posinf=_GRAD_CAP, neginf=-_GRAD_CAP)


def _feasible_start(
    graph: SupplyGraph,
    acts: list[_Activity],
    offsets: NDArray[np.int_],
    base: FloatArray,
    row: dict[str, int],
    share: float,
) -> FloatArray:
    """An interior feasible point: each good's availability split evenly, ``share`` of it used."""
    by_name = {a.firm.name: (i, a) for i, a in enumerate(acts)}
    avail = {g: max(base[i], 0.0) for g, i in row.items()}
    z0 = np.zeros(int(offsets[-1]))
    for firm in graph.firm_order():
        i, act = by_name[firm.name]
        alloc = np.array([share * avail[g] / len(graph.users(g)) for g in firm.inputs])
        zi = act.start(alloc)
        z0[offsets[i] : offsets[i + 1]] = zi
        if firm.output in avail:
            avail[firm.output] += act.output(zi)
    return z0


def _kkt_residual(z: FloatArray, grad_v: FloatArray, jac: FloatArray, lam: FloatArray) -> float:
    """Relative violation of grad V + J' lambda = 0 (<= 0 at z_i = 0) and of lambda >= 0."""
    with np.errstate(invalid="ignore"):
        terms = np.abs(grad_v) + np.abs(jac.T) @ np.abs(lam)
        r = (grad_v + jac.T @ lam) / np.maximum(terms, 1e-300)
    at_bound = z <= 1e-10 * max(1.0, float(np.max(np.abs(z), initial=0.0)))
    viol = np.where(at_bound, np.maximum(r, 0.0), np.abs(r))
    lam_scale = max(1.0, float(np.max(np.abs(lam), initial=0.0)))
    neg = float(np.max(np.maximum(-lam, 0.0), initial=0.0)) / lam_scale
    return max(float(np.max(np.nan_to_num(viol, nan=np.inf), initial=0.0)), neg)


# --------------------------------------------------------------------------- Leontief input-output


def spectral_radius(a: ArrayLike) -> float:
    """Largest |eigenvalue| of a square matrix."""
    return float(np.max(np.abs(np.linalg.eigvals(np.asarray(a, dtype=np.float64)))))


def _io_inputs(a: ArrayLike, v: ArrayLike) -> tuple[FloatArray, FloatArray]:
    aa = np.array(a, dtype=np.float64)
    vv = np.array(v, dtype=np.float64)
    if aa.ndim != 2 or aa.shape[0] != aa.shape[1] or aa.shape[0] == 0:
        raise InvalidParameter(f"A must be a non-empty square matrix; got shape {aa.shape}")
    n = aa.shape[0]
    if vv.shape != (n,):
        raise InvalidParameter(f"v must have shape ({n},); got {vv.shape}")
    for name, arr in (("A", aa), ("v", vv)):
        bad = ~np.isfinite(arr) | (arr < 0)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InvalidParameter(f"{name}{list(idx)}(={arr[idx]!r}) must be >= 0 and finite")
    rho = spectral_radius(aa)
    if not rho < 1:
        raise InvalidParameter(
            f"spectral radius of A(={rho!r}) must be < 1: otherwise the economy is not "
            "productive, (I - A) has no non-negative inverse and p = pA + v has no positive "
            "solution"
        )
    return aa, vv


def leontief_prices(a: ArrayLike, v: ArrayLike) -> FloatArray:
    """Zero-profit prices of a Leontief input-output economy, ``p = v (I - A)^-1``.

    Args:
        a: float64[n, n], A[i, j] = units of good i used per unit of good j (>= 0, spectral
            radius < 1).
        v: float64[n], value added (primary-factor cost, numeraire) per unit of good j, >= 0.

    Returns:
        p: float64[n] with p_j = sum_i p_i A[i, j] + v_j, i.e. each price equals unit cost
        ``Leontief(coefficients=A.T).unit_cost(p) + v``.

    Raises:
        InvalidParameter: bad shapes, negative or non-finite entries, spectral radius >= 1.
    """
    aa, vv = _io_inputs(a, v)
    n = aa.shape[0]
    # p (I - A) = v  <=>  (I - A)' p' = v'
    return np.asarray(np.linalg.solve((np.eye(n) - aa).T, vv), dtype=np.float64)


@frozen
class LeontiefLPResult:
    """The cost-minimising plan for a final demand and its dual prices.

    Attributes:
        prices: float64[n], the duals of the net-output constraints (numeraire per unit).
        gross_output: float64[n], gross output x of each good.
        cost: total value added v . x.
    """

    prices: FloatArray
    gross_output: FloatArray
    cost: float


def leontief_lp_shadow_prices(
    a: ArrayLike, v: ArrayLike, final_demand: ArrayLike
) -> LeontiefLPResult:
    """Prices of a Leontief economy as LP dual values (HiGHS).

    Primal: ``min v.x  s.t. (I - A) x >= d, x >= 0``. Its dual is ``max p.d s.t. p (I - A) <= v,
    p >= 0``; when every good is produced (x > 0, e.g. d > 0) complementary slackness makes
    ``p (I - A) = v``, the same prices as :func:`leontief_prices`. Where some good is neither
    demanded nor needed the dual need not be unique and HiGHS returns one vertex.

    Args:
        a: float64[n, n] input coefficients, as in :func:`leontief_prices`.
        v: float64[n] value added per unit.
        final_demand: float64[n], d >= 0.

    Raises:
        InvalidParameter: bad inputs (as :func:`leontief_prices`, plus d).
        NoEquilibrium: the LP solver failed.
    """
    import scipy.optimize  # here: only a reference solve needs scipy

    aa, vv = _io_inputs(a, v)
    n = aa.shape[0]
    d = np.array(final_demand, dtype=np.float64)
    if d.shape != (n,):
        raise InvalidParameter(f"final_demand must have shape ({n},); got {d.shape}")
    bad = ~np.isfinite(d) | (d < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidParameter(f"final_demand[{i}](={d[i]!r}) must be >= 0 and finite")
    res = scipy.optimize.linprog(
        c=vv,
        A_ub=-(np.eye(n) - aa),
        b_ub=-d,
        bounds=[(0, None)] * n,
        method="highs",
    )
    if res.status != 0:
        raise NoEquilibrium(f"Leontief LP failed: {res.message}")
    # marginals are d(cost)/d(b_ub); b_ub = -d, so the price of demand is their negative
    prices = -np.asarray(res.ineqlin.marginals, dtype=np.float64)
    return LeontiefLPResult(
        prices=prices, gross_output=np.asarray(res.x, dtype=np.float64), cost=float(res.fun)
    )
