"""Technologies, supply graphs and reference prices against independent computations.

Oracles used here: hand-computed values, closed forms written out in the tests, deliberately naive
loops and finite differences, scipy optimisers run directly on the profit or planner problem,
and the Neumann series for Leontief prices.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st

from mktsim.errors import InvalidParameter, ScenarioError
from mktsim.production import (
    CES,
    CallableTechnology,
    CobbDouglas,
    FinalGood,
    FirmNode,
    Leontief,
    RawResource,
    SupplyGraph,
    Technology,
    backprop_prices,
    leontief_lp_shadow_prices,
    leontief_prices,
    numerical_gradient,
    planner,
    shared_intermediate_graph,
    spectral_radius,
    tupperware_chain,
    tupperware_graph,
)

FAST = settings(max_examples=15, deadline=None)

positive = st.floats(0.2, 5.0)
exponent = st.floats(0.05, 0.45)


# --------------------------------------------------------------------------- naive references


def naive_cd(a: list[float], scale: float, x: list[float]) -> float:
    out = scale
    for aj, xj in zip(a, x, strict=True):
        out *= xj**aj
    return out


def naive_ces(d: list[float], rho: float, nu: float, scale: float, x: list[float]) -> float:
    s = sum(dj * xj**rho for dj, xj in zip(d, x, strict=True))
    return scale * s ** (nu / rho)


def central_diff(f, x: list[float], rel: float = 1e-5) -> list[float]:
    grad = []
    for j in range(len(x)):
        h = rel * x[j]
        up, down = list(x), list(x)
        up[j] += h
        down[j] -= h
        grad.append((f(up) - f(down)) / (2 * h))
    return grad


def check_optimal(f, x_found, p: float, w: list[float]) -> None:
    """x_found is a price taker's optimum: naive FOCs hold and scipy finds nothing better."""
    x = [float(v) for v in x_found]
    grad = central_diff(f, x)
    for j in range(len(x)):
        assert p * grad[j] == pytest.approx(w[j], rel=1e-6)
    x_ref = scipy_profit_max(f, p, w)
    best = p * f(list(x_ref)) - float(np.dot(w, x_ref))
    mine = p * f(x) - float(np.dot(w, x))
    assert mine >= best - 1e-9 * (abs(best) + 1.0)


def scipy_profit_max(f, p: float, w: list[float]) -> np.ndarray:
    """argmax p f(x) - w.x over x > 0, searched in log x so no bounds are needed."""

    def neg(u: np.ndarray) -> float:
        x = np.exp(u)
        return -(p * f(list(x)) - float(np.dot(w, x)))

    res = scipy.optimize.minimize(neg, np.zeros(len(w)), method="BFGS", options={"gtol": 1e-11})
    return np.exp(res.x)


# --------------------------------------------------------------------------- Cobb-Douglas


@FAST
@given(
    a=st.lists(exponent, min_size=2, max_size=2),
    scale=positive,
    x=st.lists(st.floats(0.1, 10.0), min_size=2, max_size=2),
)
def test_cobb_douglas_output_and_gradient_match_naive(a, scale, x):
    tech = CobbDouglas([a], scale=scale)
    assert tech.output(x)[0] == pytest.approx(naive_cd(a, scale, x), rel=1e-12)
    fd = central_diff(lambda z: naive_cd(a, scale, z), x)
    np.testing.assert_allclose(tech.marginal_products(x)[0], fd, rtol=1e-6)


@FAST
@given(
    a=st.lists(exponent, min_size=2, max_size=2),
    scale=positive,
    p=positive,
    w=st.lists(positive, min_size=2, max_size=2),
)
def test_cobb_douglas_supply_matches_direct_profit_maximisation(a, scale, p, w):
    tech = CobbDouglas([a], scale=scale)
    x = tech.input_demand(p, w)[0]
    check_optimal(lambda z: naive_cd(a, scale, z), x, p, w)
    assert tech.supply(p, w)[0] == pytest.approx(naive_cd(a, scale, list(x)), rel=1e-12)


def test_cobb_douglas_one_input_closed_form_and_vectorisation():
    # y = A x^a, p A a x^(a-1) = w  =>  x = (a p A / w)^(1/(1-a)), per firm
    a = np.array([0.5, 0.25, 0.8])
    scale = np.array([1.0, 2.0, 0.5])
    p = np.array([2.0, 1.0, 3.0])
    w = np.array([[0.5], [1.5], [0.7]])
    tech = CobbDouglas(a[:, None], scale=scale)
    x_hand = (a * p * scale / w[:, 0]) ** (1 / (1 - a))
    np.testing.assert_allclose(tech.input_demand(p, w)[:, 0], x_hand, rtol=1e-12)
    np.testing.assert_allclose(tech.supply(p, w), scale * x_hand**a, rtol=1e-12)


@FAST
@given(
    a=st.lists(exponent, min_size=2, max_size=2),
    p=positive,
    w=st.lists(positive, min_size=2, max_size=2),
    t=st.floats(0.01, 100.0),
)
def test_cobb_douglas_demand_is_homogeneous_of_degree_zero(a, p, w, t):
    tech = CobbDouglas([a])
    np.testing.assert_allclose(
        tech.input_demand(t * p, t * np.array(w)), tech.input_demand(p, w), rtol=1e-10
    )


def profit(tech: Technology, p: float, w: np.ndarray) -> float:
    return float(p * tech.supply(p, w)[0] - np.dot(w, tech.input_demand(p, w)[0]))


@pytest.mark.parametrize(
    "tech",
    [
        CobbDouglas([0.3, 0.4], scale=1.5),
        CES([1.0, 2.0], rho=-1.5, returns_to_scale=0.6),
        CES([0.5, 1.0], rho=0.5, returns_to_scale=0.8, scale=2.0),
    ],
    ids=["cobb-douglas", "ces-complements", "ces-substitutes"],
)
def test_hotelling_lemma(tech):
    # envelope theorem on the profit function: d pi/dp = y, d pi/dw_j = -x_j
    p, w = 2.0, np.array([0.7, 1.3])
    h = 1e-6
    assert (profit(tech, p + h, w) - profit(tech, p - h, w)) / (2 * h) == pytest.approx(
        tech.supply(p, w)[0], rel=1e-6
    )
    for j in range(2):
        dw = np.zeros(2)
        dw[j] = h
        slope = (profit(tech, p, w + dw) - profit(tech, p, w - dw)) / (2 * h)
        assert slope == pytest.approx(-tech.input_demand(p, w)[0, j], rel=1e-6)


def test_cobb_douglas_unused_input_and_overflow():
    # an exponent of 0 means the input is never bought; the rest is the one-input closed form
    tech = CobbDouglas([0.5, 0.0])
    np.testing.assert_allclose(tech.input_demand(2.0, [0.5, 3.0]), [[(0.5 * 2 / 0.5) ** 2, 0.0]])
    with pytest.raises(InvalidParameter, match="overflows"):
        CobbDouglas([0.5, 0.4999999]).supply(100.0, [0.01, 0.01])


def test_cobb_douglas_boundary_marginal_products():
    tech = CobbDouglas([[0.5, 0.3]] * 3)  # three identical firms at three points
    mp = tech.marginal_products([[0.0, 2.0], [0.0, 0.0], [4.0, 1.0]])
    assert mp[0, 0] == np.inf  # Inada: the first unit of a missing input is worth everything
    assert mp[0, 1] == 0.0  # output stays 0 while x_0 = 0
    np.testing.assert_array_equal(mp[1], [0.0, 0.0])
    assert mp[2, 0] == pytest.approx(0.5 * 4.0**-0.5)


def test_cobb_douglas_unit_cost_matches_cost_minimisation():
    tech = CobbDouglas([0.3, 0.7], scale=2.0)
    w = np.array([1.5, 0.8])
    res = scipy.optimize.minimize(
        lambda x: float(np.dot(w, x)),
        [1.0, 1.0],
        method="SLSQP",
        bounds=[(1e-9, None)] * 2,
        constraints=[{"type": "ineq", "fun": lambda x: naive_cd([0.3, 0.7], 2.0, list(x)) - 1}],
        options={"ftol": 1e-14},
    )
    assert tech.unit_cost(w)[0] == pytest.approx(res.fun, rel=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"exponents": [[0.7, 0.6]]}, "returns to scale"),
        ({"exponents": [[-0.1, 0.5]]}, "exponents[0, 0](=-0.1) must be >= 0"),
        ({"exponents": [[0.2, float("nan")]]}, "must be finite"),
        ({"exponents": [[0.2, 0.3]], "scale": 0.0}, "scale[0](=0.0) must be > 0"),
        ({"exponents": [[0.2, 0.3]], "scale": [1.0, 2.0]}, "shape (1,)"),
    ],
)
def test_cobb_douglas_rejects_bad_parameters(kwargs, fragment):
    with pytest.raises(InvalidParameter) as err:
        CobbDouglas(**kwargs)
    assert fragment in str(err.value)


def test_cobb_douglas_constant_returns_has_no_supply():
    tech = CobbDouglas([0.4, 0.6])
    assert tech.output([2.0, 3.0])[0] == pytest.approx(2.0**0.4 * 3.0**0.6)
    with pytest.raises(InvalidParameter, match="constant returns"):
        tech.supply(1.0, [1.0, 1.0])


def test_prices_and_inputs_are_validated():
    tech = CobbDouglas([0.4, 0.3])
    with pytest.raises(InvalidParameter, match=r"x\[0, 1\]\(=-1.0\) must be >= 0"):
        tech.output([1.0, -1.0])
    with pytest.raises(InvalidParameter, match="must be finite"):
        tech.output([1.0, np.inf])
    with pytest.raises(InvalidParameter, match="p_out"):
        tech.supply(-1.0, [1.0, 1.0])
    with pytest.raises(InvalidParameter, match="unbounded"):
        tech.supply(1.0, [0.0, 1.0])
    with pytest.raises(InvalidParameter, match="shape"):
        tech.output([1.0, 2.0, 3.0])


# --------------------------------------------------------------------------- CES


@FAST
@given(
    d=st.lists(st.floats(0.2, 1.5), min_size=2, max_size=2),
    rho=st.sampled_from([-3.0, -0.5, 0.3, 0.7]),
    nu=st.floats(0.3, 0.7),
    p=positive,
    w=st.lists(positive, min_size=2, max_size=2),
)
def test_ces_matches_naive_output_gradient_and_profit_max(d, rho, nu, p, w):
    tech = CES([d], rho=rho, returns_to_scale=nu)
    x = [1.3, 0.6]
    f = lambda z: naive_ces(d, rho, nu, 1.0, z)  # noqa: E731
    assert tech.output(x)[0] == pytest.approx(f(x), rel=1e-12)
    np.testing.assert_allclose(tech.marginal_products(x)[0], central_diff(f, x), rtol=1e-6)
    check_optimal(f, tech.input_demand(p, w)[0], p, w)


def test_ces_tends_to_cobb_douglas_as_rho_goes_to_zero():
    # with weights summing to 1, (sum d x^rho)^(nu/rho) -> prod x^(nu d)
    d, nu = np.array([0.3, 0.7]), 0.8
    ces = CES(d, rho=1e-7, returns_to_scale=nu)
    cd = CobbDouglas(nu * d)
    x = [2.0, 0.5]
    assert ces.output(x)[0] == pytest.approx(cd.output(x)[0], rel=1e-5)
    np.testing.assert_allclose(
        ces.input_demand(1.5, [1.0, 2.0]), cd.input_demand(1.5, [1.0, 2.0]), rtol=1e-5
    )


def test_ces_boundary_marginal_products_are_directional_limits():
    h = 1e-9
    # complements, constant returns: along the single zero input y ~ d^(1/rho) x
    crs = CES([1.0, 2.0], rho=-2.0, returns_to_scale=1.0)
    mp = crs.marginal_products([0.0, 1.0])[0]
    assert mp[0] == pytest.approx(crs.output([h, 1.0])[0] / h, rel=1e-4)
    assert mp[1] == 0.0
    # complements, decreasing returns: infinite slope; two zeros: flat in each direction
    drs = CES([1.0, 2.0], rho=-2.0, returns_to_scale=0.5)
    assert drs.marginal_products([0.0, 1.0])[0, 0] == np.inf
    np.testing.assert_array_equal(drs.marginal_products([0.0, 0.0])[0], [0.0, 0.0])
    # substitutes: a missing input has infinite marginal product
    sub = CES([1.0, 2.0], rho=0.5, returns_to_scale=0.9)
    assert sub.marginal_products([0.0, 1.0])[0, 0] == np.inf
    assert sub.marginal_products([0.0, 1.0])[0, 1] == pytest.approx(
        (sub.output([0.0, 1.0 + 1e-6])[0] - sub.output([0.0, 1.0 - 1e-6])[0]) / 2e-6, rel=1e-6
    )


def test_ces_unit_cost_matches_cost_minimisation():
    d, rho = [1.0, 2.0], -1.0
    tech = CES(d, rho=rho, returns_to_scale=1.0, scale=1.5)
    w = np.array([1.0, 3.0])
    res = scipy.optimize.minimize(
        lambda x: float(np.dot(w, x)),
        [1.0, 1.0],
        method="SLSQP",
        bounds=[(1e-9, None)] * 2,
        constraints=[{"type": "ineq", "fun": lambda x: naive_ces(d, rho, 1.0, 1.5, list(x)) - 1}],
        options={"ftol": 1e-14},
    )
    assert tech.unit_cost(w)[0] == pytest.approx(res.fun, rel=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"rho": 0.0}, "CobbDouglas"),
        ({"rho": 1.5}, "not concave"),
        ({"rho": 1.0}, "perfect substitutes"),
        ({"rho": -1.0, "returns_to_scale": 1.2}, "increasing returns"),
        ({"rho": -1.0, "returns_to_scale": 0.0}, "> 0"),
    ],
)
def test_ces_rejects_bad_parameters(kwargs, fragment):
    with pytest.raises(InvalidParameter, match=fragment):
        CES([1.0, 1.0], **kwargs)
    with pytest.raises(InvalidParameter, match="at least one entry > 0"):
        CES([0.0, 0.0], rho=-1.0)


# --------------------------------------------------------------------------- Leontief


def test_leontief_output_marginal_products_and_supply_correspondence():
    tech = Leontief([[1.0, 2.0], [0.0, 0.5]])
    x = np.array([[3.0, 4.0], [7.0, 1.0]])
    # firm 0: min(3/1, 4/2) = 2; firm 1 ignores input 0: 1/0.5 = 2
    np.testing.assert_allclose(tech.output(x), [2.0, 2.0])
    mp = tech.marginal_products(x)
    np.testing.assert_allclose(mp, [[0.0, 0.5], [0.0, 2.0]])
    assert np.isnan(tech.marginal_products([2.0, 4.0])[0]).all()  # kink: both inputs bind
    w = np.array([1.0, 2.0])
    np.testing.assert_allclose(tech.unit_cost(w), [5.0, 1.0])
    supply = tech.supply([4.0, 3.0], w)
    assert supply[0] == 0.0 and supply[1] == np.inf
    assert np.isnan(tech.supply([5.0, 1.0], w)).all()  # zero profit: any amount
    low, high = tech.supply_bounds([5.0, 3.0], w)
    np.testing.assert_array_equal(low, [0.0, np.inf])
    np.testing.assert_array_equal(high, [np.inf, np.inf])
    demand = tech.input_demand([4.0, 3.0], w)
    np.testing.assert_array_equal(demand, [[0.0, 0.0], [0.0, np.inf]])


def test_leontief_rejects_bad_coefficients():
    with pytest.raises(InvalidParameter, match="at least one entry > 0"):
        Leontief([0.0, 0.0])
    with pytest.raises(InvalidParameter, match=">= 0"):
        Leontief([1.0, -2.0])


# --------------------------------------------------------------------------- user callables


def test_numerical_gradient_matches_analytic_inside_and_at_the_boundary():
    def f(x):
        return np.log1p(x[:, 0]) * (1.0 + x[:, 1]) ** 0.5

    x = np.array([[0.0, 2.0], [3.0, 0.0], [1e-9, 1.0]])
    exact = np.column_stack(
        [
            (1.0 + x[:, 1]) ** 0.5 / (1.0 + x[:, 0]),
            0.5 * np.log1p(x[:, 0]) * (1.0 + x[:, 1]) ** -0.5,
        ]
    )
    np.testing.assert_allclose(numerical_gradient(f, x), exact, rtol=1e-7, atol=1e-10)


def test_callable_technology_solves_profit_max_numerically():
    # the third firm's optimum (~1e-4 per input) is far below the default start at 1 and its
    # profit is tiny next to the others', the case where a joint solve stops too early
    a = np.array([[0.3, 0.4], [0.2, 0.5], [0.2, 0.2]])
    scale = np.array([1.0, 2.0, 1.0])

    def f(x):
        return scale * np.prod(x**a, axis=1)

    tech = CallableTechnology(f, n_inputs=2, n_firms=3)
    p, w = np.array([2.0, 1.0, 0.02]), np.array([[1.0, 0.5], [0.8, 1.2], [1.0, 1.0]])
    # FOC of Cobb-Douglas written out: w_j x_j = a_j p y, y^(1-s) = A prod (a_j p / w_j)^a_j
    s = a.sum(axis=1)
    y = (scale * np.prod((a * p[:, None] / w) ** a, axis=1)) ** (1 / (1 - s))
    np.testing.assert_allclose(tech.input_demand(p, w), a * (p * y)[:, None] / w, rtol=1e-5)
    np.testing.assert_allclose(tech.supply(p, w), y, rtol=1e-5)


def test_callable_solver_escapes_the_degenerate_zero_bundle():
    # at x = 0 every marginal product of y = (x1 x2)^(1/4) is 0, so x = 0 passes the KKT test;
    # the optimum is x_j = (1/4)^2 = 1/16 from w_j x_j = a_j p y with y = sqrt(x1 x2)^(1/2)
    tech = CallableTechnology(lambda x: np.prod(x**0.25, axis=1), n_inputs=2, x0=[0.0, 0.0])
    np.testing.assert_allclose(tech.input_demand(1.0, [1.0, 1.0]), [[1 / 16, 1 / 16]], rtol=1e-5)


def test_callable_with_increasing_returns_is_refused():
    tech = CallableTechnology(lambda x: x[:, 0] ** 2, n_inputs=1)
    with pytest.raises(InvalidParameter, match="non-concave or profit unbounded"):
        tech.supply(1.0, [1.0])


def test_callable_output_shape_is_checked():
    tech = CallableTechnology(lambda x: x.sum(), n_inputs=2, n_firms=3)
    with pytest.raises(InvalidParameter, match=r"f must return shape \(3,\)"):
        tech.output(np.ones((3, 2)))


@FAST
@given(p_out=positive, p_in=st.floats(0.01, 0.9))
def test_tupperware_technologies_choose_as_the_first_order_conditions_say(p_out, p_in):
    ethylene, poly, tupperware = tupperware_chain()
    # x = (p_a/(2 p_x))^2; a = sqrt(p_b/p_a) - 1 (or 0); b = p_c/p_b
    assert ethylene.input_demand(p_out, [p_in])[0, 0] == pytest.approx((p_out / (2 * p_in)) ** 2)
    assert poly.input_demand(p_out, [p_in])[0, 0] == pytest.approx(
        max(math.sqrt(p_out / p_in) - 1, 0.0)
    )
    assert tupperware.input_demand(p_out, [p_in])[0, 0] == pytest.approx(p_out / p_in)


@pytest.mark.parametrize("with_gradient", [True, False])
def test_generic_solver_matches_tupperware_closed_forms(with_gradient):
    # many firms at once, prices spanning corners (a = 0) and inputs from 1e-2 to 1e3
    n = 12
    p_out = np.geomspace(0.05, 20.0, n)
    p_in = np.geomspace(5.0, 0.01, n)[:, None]
    _, poly, tupperware = tupperware_chain()
    for single in (poly, tupperware):
        many = CallableTechnology(
            single.f, n_inputs=1, n_firms=n, df=single.df if with_gradient else None
        )
        closed = CallableTechnology(single.f, n_inputs=1, n_firms=n, demand=single.demand)
        np.testing.assert_allclose(
            many.input_demand(p_out, p_in),
            closed.input_demand(p_out, p_in),
            rtol=1e-4,
            atol=1e-8,
        )


def test_every_technology_satisfies_the_protocol():
    for tech in (*tupperware_chain(), CES([1.0], rho=-1.0), Leontief([1.0])):
        assert isinstance(tech, Technology)


# --------------------------------------------------------------------------- graphs


def chain(**overrides):
    sqrt_tech = CobbDouglas([0.5])
    parts = {
        "goods": ("x", "a", "c"),
        "resources": [RawResource("x", 4.0)],
        "firms": [FirmNode("f1", sqrt_tech, ["x"], "a"), FirmNode("f2", sqrt_tech, ["a"], "c")],
        "finals": [FinalGood("c", price=1.0)],
    }
    parts.update(overrides)
    return SupplyGraph(**parts)


def test_graph_order_kinds_and_tree():
    g = tupperware_graph()
    order = g.topological_order()
    for firm in g.firms:
        assert all(order.index(i) < order.index(firm.output) for i in firm.inputs)
    assert [f.name for f in g.firm_order()] == ["cracker", "polymeriser", "moulder"]
    assert g.is_tree()
    assert [g.kind(x) for x in order] == ["raw", "intermediate", "intermediate", "final"]
    assert not shared_intermediate_graph().is_tree()


def test_diamond_graph_topological_order():
    cd = CobbDouglas([0.3, 0.3])
    sq = CobbDouglas([0.5])
    g = SupplyGraph(
        goods=("out", "left", "right", "raw"),  # deliberately not in production order
        resources=[RawResource("raw", 1.0)],
        firms=[
            FirmNode("join", cd, ["left", "right"], "out"),
            FirmNode("r", sq, ["raw"], "right"),
            FirmNode("l", sq, ["raw"], "left"),
        ],
        finals=[FinalGood("out", price=2.0)],
    )
    order = g.topological_order()
    assert order[0] == "raw" and order[-1] == "out"
    assert [f.name for f in g.firm_order()][-1] == "join"
    assert not g.is_tree()


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"goods": ("x", "a", "c", "z")}, "'z' is neither produced nor used"),
        ({"resources": [RawResource("xx", 4.0)]}, "did you mean 'x'"),
        ({"finals": [FinalGood("a", price=1.0)]}, "also an input"),
        ({"resources": [RawResource("x", 4.0), RawResource("a", 1.0)]}, "comes only from"),
        ({"goods": ("x", "x", "a", "c")}, "declared more than once"),
        ({"finals": []}, "'c' is produced by firm(s) ['f2'] but used by no firm"),
    ],
)
def test_graph_rejects_malformed_structure(overrides, fragment):
    with pytest.raises(ScenarioError) as err:
        chain(**overrides)
    assert fragment in str(err.value)


def test_graph_rejects_cycles_naming_them():
    sq = CobbDouglas([0.5])
    two = CobbDouglas([0.3, 0.3])
    with pytest.raises(ScenarioError, match="cycle") as err:
        SupplyGraph(
            goods=("x", "a", "b", "c"),
            resources=[RawResource("x", 1.0)],
            firms=[
                FirmNode("fa", two, ["x", "b"], "a"),
                FirmNode("fb", sq, ["a"], "b"),
                FirmNode("fc", sq, ["b"], "c"),
            ],
            finals=[FinalGood("c", price=1.0)],
        )
    assert "a -> fb -> b -> fa -> a" in str(err.value)


def test_graph_rejects_unproduced_inputs_unused_resources_and_bad_firms():
    sq = CobbDouglas([0.5])
    with pytest.raises(ScenarioError, match="produced by no firm and is not a raw"):
        chain(resources=[], goods=("x", "a", "c"))
    with pytest.raises(ScenarioError, match="raw resource 'y' is used by no firm"):
        chain(goods=("x", "a", "c", "y"), resources=[RawResource("x", 1.0), RawResource("y", 1.0)])
    with pytest.raises(ScenarioError, match="both a raw resource and a final good"):
        chain(finals=[FinalGood("c", price=1.0), FinalGood("x", price=1.0)])
    with pytest.raises(ScenarioError, match="final good 'z' is produced by no firm"):
        chain(goods=("x", "a", "c", "z"), finals=[FinalGood("c", price=1.0), FinalGood("z", 1.0)])
    with pytest.raises(InvalidParameter, match="n_inputs=1"):
        FirmNode("f", sq, ["x", "y"], "a")
    with pytest.raises(InvalidParameter, match="one firm"):
        FirmNode("f", CobbDouglas([[0.5], [0.5]]), ["x"], "a")
    with pytest.raises(ScenarioError, match="has no price"):
        FinalGood("c")
    with pytest.raises(InvalidParameter, match="endowment"):
        RawResource("x", -1.0)


# --------------------------------------------------------------------------- backprop


def test_backprop_tupperware_at_x_equals_4():
    # a = 2, b = 2/3; p_b = 1/b, p_a = p_b/(a+1)^2, p_x = p_a/(2 sqrt x)
    prices = backprop_prices(tupperware_graph(natgas=4.0)).prices
    assert prices["tupperware"] == 1.0
    assert prices["polyethylene"] == pytest.approx(3 / 2, rel=1e-12)
    assert prices["ethylene"] == pytest.approx(1 / 6, rel=1e-12)
    assert prices["natgas"] == pytest.approx(1 / 24, rel=1e-12)


def composite(x: float) -> float:
    return math.log(1 - 1 / (math.sqrt(x) + 1))


@FAST
@given(x=st.floats(0.05, 50.0), offset=st.floats(0.0, 5.0))
def test_backprop_is_the_derivative_of_the_composite_and_firms_agree(x, offset):
    res = backprop_prices(tupperware_graph(natgas=1.0, offset=offset), {"natgas": x})
    p = res.prices
    h = 1e-6 * x
    assert p["natgas"] == pytest.approx((composite(x + h) - composite(x - h)) / (2 * h), rel=1e-6)
    a, b = math.sqrt(x), 1 - 1 / (math.sqrt(x) + 1)
    assert p["polyethylene"] == pytest.approx(1 / b)
    assert p["ethylene"] == pytest.approx(p["polyethylene"] / (a + 1) ** 2)
    # decentralisation: at these prices each firm chooses exactly these quantities
    assert p["tupperware"] / p["polyethylene"] == pytest.approx(b)
    assert math.sqrt(p["polyethylene"] / p["ethylene"]) - 1 == pytest.approx(a)
    assert (p["ethylene"] / (2 * p["natgas"])) ** 2 == pytest.approx(x)


def test_backprop_refusals():
    with pytest.raises(ScenarioError, match="needs a tree"):
        backprop_prices(shared_intermediate_graph())
    with pytest.raises(ScenarioError, match="only set raw resources"):
        backprop_prices(tupperware_graph(), {"ethylene": 1.0})
    consumed = chain(finals=[FinalGood("c", consumed=True)])
    with pytest.raises(ScenarioError, match="bought by consumers"):
        backprop_prices(consumed)
    with pytest.raises(InvalidParameter, match="not a derivative"):
        backprop_prices(tupperware_graph(natgas=0.0))


# --------------------------------------------------------------------------- planner


def test_planner_on_a_tree_equals_backprop():
    g = tupperware_graph(natgas=4.0)
    shadow = planner(g).prices
    assert shadow["natgas"] == pytest.approx(1 / 24, rel=1e-7)
    assert shadow["ethylene"] == pytest.approx(1 / 6, rel=1e-7)
    assert shadow["polyethylene"] == pytest.approx(3 / 2, rel=1e-7)


USERS = ((2.0, 0.5), (3.0, 0.3))
PRICES = (1.0, 1.5)
UPSTREAM = (1.0, 0.5)
ORE = 4.0


def shared_reference() -> tuple[float, float, list[float]]:
    """Shadow prices of metal and ore and the metal split, from a 1-d root in the test.

    All metal M = B E^beta is used; user k takes m_k with P_k A_k alpha_k m_k^(alpha_k - 1) = lam.
    """
    b, beta = UPSTREAM
    metal = b * ORE**beta

    def split(lam: float) -> list[float]:
        return [
            (lam / (p * a * al)) ** (1 / (al - 1)) for (a, al), p in zip(USERS, PRICES, strict=True)
        ]

    lam = scipy.optimize.brentq(lambda lam: sum(split(lam)) - metal, 1e-6, 1e6, xtol=1e-15)
    return lam, lam * b * beta * ORE ** (beta - 1), split(lam)


def test_planner_shared_intermediate_three_ways():
    graph = shared_intermediate_graph(endowment=ORE, upstream=UPSTREAM, users=USERS, prices=PRICES)
    res = planner(graph)
    lam_metal, lam_ore, split = shared_reference()

    # 1. KKT multipliers from the solver against the independent root
    assert res.prices["metal"] == pytest.approx(lam_metal, rel=1e-6)
    assert res.prices["ore"] == pytest.approx(lam_ore, rel=1e-6)
    for k, m in enumerate(split):
        assert res.firm_inputs[f"maker{k}"][0] == pytest.approx(m, rel=1e-6)

    # 2. envelope theorem: d value / d (one more unit of the good)
    h = 1e-4
    for good in ("ore", "metal"):
        up = planner(graph, extra_supply={good: h}).value
        down = planner(graph, extra_supply={good: -h}).value
        assert (up - down) / (2 * h) == pytest.approx(res.prices[good], rel=1e-5)

    # 3. firms' first-order conditions at the planner's allocation, derivatives written out
    for k, ((a, alpha), p) in enumerate(zip(USERS, PRICES, strict=True)):
        m = res.firm_inputs[f"maker{k}"][0]
        assert p * a * alpha * m ** (alpha - 1) == pytest.approx(res.prices["metal"], rel=1e-6)
    b, beta = UPSTREAM
    r = res.firm_inputs["smelter"][0]
    assert res.prices["metal"] * b * beta * r ** (beta - 1) == pytest.approx(
        res.prices["ore"], rel=1e-6
    )

    # and decentralisation: each price taker asks for exactly the planner's inputs
    for firm in graph.firms:
        p_out = res.prices[firm.output]
        p_in = [res.prices[g] for g in firm.inputs]
        np.testing.assert_allclose(
            firm.technology.input_demand(p_out, p_in)[0], res.firm_inputs[firm.name], rtol=1e-5
        )


@FAST
@given(
    p=st.lists(st.floats(0.5, 3.0), min_size=2, max_size=3),
    a=st.lists(st.floats(0.5, 3.0), min_size=3, max_size=3),
    endowment=st.floats(0.5, 20.0),
    alpha=st.sampled_from([0.3, 0.5, 0.7]),
)
def test_planner_equal_exponents_closed_form(p, a, endowment, alpha):
    # y_k = A_k m_k^alpha, metal M = E (linear smelter):
    # lambda = alpha (sum_k (P_k A_k)^(1/(1-alpha)))^(1-alpha) M^(alpha-1)
    users = [(a[k], alpha) for k in range(len(p))]
    graph = shared_intermediate_graph(endowment, upstream=(1.0, 1.0), users=users, prices=p)
    res = planner(graph)
    s = sum((pk * ak) ** (1 / (1 - alpha)) for pk, (ak, _) in zip(p, users, strict=True))
    lam = alpha * s ** (1 - alpha) * endowment ** (alpha - 1)
    assert res.prices["metal"] == pytest.approx(lam, rel=1e-6)
    assert res.prices["ore"] == pytest.approx(lam, rel=1e-6)


def test_planner_methods_agree():
    graph = shared_intermediate_graph(endowment=ORE, upstream=UPSTREAM, users=USERS, prices=PRICES)
    slsqp = planner(graph, method="SLSQP").prices
    interior = planner(graph, method="trust-constr").prices
    for good in graph.goods:
        assert interior[good] == pytest.approx(slsqp[good], rel=1e-5)


def leontief_graph(with_gadgets: bool) -> SupplyGraph:
    firms = [FirmNode("widgets", Leontief([2.0, 1.0]), ["labour", "capital"], "widget")]
    finals = [FinalGood("widget", price=3.0)]
    goods = ["labour", "capital", "widget"]
    if with_gadgets:
        firms.append(FirmNode("gadgets", CobbDouglas([0.5], scale=2.0), ["labour"], "gadget"))
        finals.append(FinalGood("gadget", price=1.0))
        goods.append("gadget")
    return SupplyGraph(
        goods=goods,
        resources=[RawResource("labour", 10.0), RawResource("capital", 2.0)],
        firms=firms,
        finals=finals,
    )


def test_planner_with_leontief_firms():
    # capital binds widgets at 2 (using 4 labour); gadgets get 6 labour: y = 2 sqrt(6).
    # lambda_L = 1 * 2 * 0.5 / sqrt(6); widget zero profit: 3 = 2 lambda_L + lambda_K
    res = planner(leontief_graph(with_gadgets=True))
    lam_l = 1 / math.sqrt(6)
    assert res.prices["labour"] == pytest.approx(lam_l, rel=1e-6)
    assert res.prices["capital"] == pytest.approx(3 - 2 * lam_l, rel=1e-6)
    np.testing.assert_allclose(res.firm_inputs["widgets"], [4.0, 2.0], rtol=1e-7)
    # alone, widgets leave 6 labour idle: free disposal makes labour free
    alone = planner(leontief_graph(with_gadgets=False))
    assert alone.prices["labour"] == pytest.approx(0.0, abs=1e-8)
    assert alone.prices["capital"] == pytest.approx(3.0, rel=1e-8)
    assert alone.slack["labour"] == pytest.approx(6.0, rel=1e-7)


def test_planner_refusals():
    with pytest.raises(ScenarioError, match="bought by consumers"):
        planner(chain(finals=[FinalGood("c", consumed=True)]))
    with pytest.raises(ScenarioError, match="no balance constraint"):
        planner(chain(), extra_supply={"c": 1.0})
    with pytest.raises(ScenarioError, match="did you mean 'a'"):
        planner(chain(), extra_supply={"aa": 1.0})


# --------------------------------------------------------------------------- Leontief input-output


def test_leontief_prices_two_by_two_by_hand():
    # I - A = [[0.8, -0.3], [-0.4, 0.9]], det 0.6; p = v (I - A)^-1 = (17/6, 19/6)
    a = [[0.2, 0.3], [0.4, 0.1]]
    v = [1.0, 2.0]
    np.testing.assert_allclose(leontief_prices(a, v), [17 / 6, 19 / 6], rtol=1e-12)
    lp = leontief_lp_shadow_prices(a, v, [1.0, 1.0])
    np.testing.assert_allclose(lp.prices, [17 / 6, 19 / 6], rtol=1e-9)
    # gross output (I - A)^-1 d = (2, 2); cost v.x = 6 = p.d (strong duality)
    np.testing.assert_allclose(lp.gross_output, [2.0, 2.0], rtol=1e-9)
    assert lp.cost == pytest.approx(6.0)


@FAST
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 5),
    radius=st.floats(0.1, 0.8),
)
def test_leontief_prices_neumann_series_lp_and_zero_profit_agree(seed, n, radius):
    rng = np.random.default_rng(seed)
    raw = rng.uniform(0.0, 1.0, (n, n))
    a = raw * radius / spectral_radius(raw)
    v = rng.uniform(0.1, 2.0, n)
    p = leontief_prices(a, v)
    # Neumann series v (I + A + A^2 + ...), truncated where radius^k is negligible
    series, term = np.zeros(n), v.copy()
    for _ in range(400):
        series += term
        term = term @ a
    np.testing.assert_allclose(p, series, rtol=1e-9)
    lp = leontief_lp_shadow_prices(a, v, rng.uniform(0.5, 2.0, n))
    np.testing.assert_allclose(lp.prices, p, rtol=1e-7)
    # each price is the Leontief unit cost of its inputs plus value added
    np.testing.assert_allclose(Leontief(a.T).unit_cost(p) + v, p, rtol=1e-10)


def test_leontief_io_rejections():
    with pytest.raises(InvalidParameter, match="spectral radius"):
        leontief_prices([[0.5, 0.6], [0.6, 0.5]], [1.0, 1.0])
    with pytest.raises(InvalidParameter, match=">= 0"):
        leontief_prices([[0.1, -0.1], [0.1, 0.1]], [1.0, 1.0])
    with pytest.raises(InvalidParameter, match="shape"):
        leontief_prices([[0.1, 0.1], [0.1, 0.1]], [1.0])
    with pytest.raises(InvalidParameter, match="final_demand"):
        leontief_lp_shadow_prices([[0.1]], [1.0], [-1.0])
