"""Step rules against textbook answers: closed-form iterates on linear fields, known convergence
on bilinear (rotational) fields, Cobb-Douglas closed-form equilibria, and the price floor."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import cobb_douglas_prices

import mktsim
from mktsim import errors
from mktsim.steps import (
    PRICE_FLOOR,
    AdaGrad,
    Additive,
    Multiplicative,
    Nesterov,
    Newton,
    Optimistic,
    RMSProp,
    Scheduled,
    make_rule,
    rule_names,
)

CENTRE = np.array([1.0, 2.0])


def _iterate(rule, field, p0, rounds):
    """Post ``rounds`` points, feeding the rule the field at each; returns the posted points and
    the rule's state."""
    state: dict = {}
    p, path = np.array(p0, dtype=float), []
    for _ in range(rounds):
        path.append(p)
        p = rule(p, field(p), state)
    return np.array(path), state


def test_additive_on_a_linear_field_is_geometric():
    # z = -k (p - c): p_t - c = (1 - h k)^t (p_0 - c)
    k, h = 0.7, 0.3
    path, _ = _iterate(Additive(h), lambda p: -k * (p - CENTRE), [3.0, 5.0], 20)
    expected = CENTRE + (1 - h * k) ** np.arange(20)[:, None] * (np.array([3.0, 5.0]) - CENTRE)
    np.testing.assert_allclose(path, expected, rtol=1e-12)


def test_optimistic_matches_its_recurrence_and_converges_on_a_bilinear_field():
    # z = A (p - c) with A a rotation: the field of a bilinear min-max game. Plain steps spiral
    # outward (|p - c| grows by sqrt(1 + h^2) a step); OGDA x_{t+1} = x_t + h(2 A x_t - A x_{t-1})
    # contracts for small h (Daskalakis et al. 2018).
    a = np.array([[0.0, 1.0], [-1.0, 0.0]])
    h = 0.2

    def field(p):
        return a @ (p - CENTRE)

    path, _ = _iterate(Optimistic(h), field, [1.5, 2.5], 1500)
    x_prev = x = np.array([0.5, 0.5])
    ref = [x]
    for _ in range(1499):
        x, x_prev = x + h * (2 * a @ x - a @ x_prev), x
        ref.append(x)
    np.testing.assert_allclose(path - CENTRE, np.array(ref), atol=1e-12)
    assert np.linalg.norm(path[-1] - CENTRE) < 1e-6
    far = np.array([50.0, 50.0])  # (so the outward spiral never meets the price floor)
    plain, _ = _iterate(Additive(h), lambda p: a @ (p - far), far + 0.5, 100)
    growth = np.linalg.norm(plain[-1] - far) / np.linalg.norm(plain[0] - far)
    assert growth == pytest.approx((1 + h * h) ** (99 / 2), rel=1e-9)  # spirals out


def test_nesterov_posts_the_look_ahead_point():
    # textbook form: x_{t+1} = y_t + h z(y_t); y_{t+1} = x_{t+1} + beta (x_{t+1} - x_t); y_0 = x_0
    k, h, beta = 0.5, 0.4, 0.6

    def field(p):
        return -k * (p - CENTRE)

    path, state = _iterate(Nesterov(h, beta), field, [3.0, 0.5], 60)
    x_prev, y = np.array([3.0, 0.5]), np.array([3.0, 0.5])
    for t in range(60):
        np.testing.assert_allclose(path[t], y, rtol=1e-12)
        x = y + h * field(y)
        y, x_prev = x + beta * (x - x_prev), x
    np.testing.assert_allclose(state["estimate"], x_prev, rtol=1e-12)
    np.testing.assert_allclose(path[-1], CENTRE, atol=1e-8)


def test_adagrad_under_a_constant_field_steps_h_over_sqrt_t():
    # z = c constant: sum of squares after t steps is t c^2, so step t moves h sign(c) / sqrt(t)
    c = np.array([0.5, -2.0])
    path, _ = _iterate(AdaGrad(0.1, eps=1e-300), lambda p: c, [10.0, 10.0], 50)
    t = np.arange(1, 50)
    moves = 0.1 * np.cumsum(1 / np.sqrt(t))
    np.testing.assert_allclose(path[1:, 0], 10.0 + moves, rtol=1e-12)
    np.testing.assert_allclose(path[1:, 1], 10.0 - moves, rtol=1e-12)


def test_rmsprop_under_a_constant_field_steps_h_times_c_over_c_plus_eps():
    # bias-corrected v_t = c^2 exactly, so each step is h c / (|c| + eps)
    c, h, eps = np.array([0.5, -2.0]), 0.03, 0.01
    path, _ = _iterate(RMSProp(h, beta=0.9, eps=eps), lambda p: c, [10.0, 10.0], 30)
    step = h * c / (np.abs(c) + eps)
    np.testing.assert_allclose(np.diff(path, axis=0), np.tile(step, (29, 1)), rtol=1e-9)


def test_newton_solves_a_linear_field_in_one_step_after_probing_each_free_good():
    # z = A (p - c) with the numeraire (good 0) held: its entry is zero. Forward differences are
    # exact on a linear field, so after one probe round per free good Newton lands on c.
    a = np.array([[0.0, 0.0, 0.0], [0.3, -1.0, 0.4], [0.2, 0.5, -2.0]])
    centre = np.array([1.0, 2.0, 0.5])

    def field(p):
        return a @ (p - centre)

    rule = Newton(step=1.0, max_change=10.0)
    path, _ = _iterate(rule, field, [1.0, 1.5, 0.8], 4)
    assert path[1][2] == path[0][2] and path[1][1] == pytest.approx(1.5 * (1 + rule.delta))
    assert path[2][1] == path[0][1] and path[2][2] == pytest.approx(0.8 * (1 + rule.delta))
    np.testing.assert_allclose(path[3], centre, rtol=1e-8)


def test_newton_caps_the_relative_price_change():
    rule = Newton(step=1.0, max_change=0.1)
    path, _ = _iterate(rule, lambda p: np.array([0.0, -(p[1] - 100.0)]), [1.0, 1.0], 3)
    assert path[2][1] == pytest.approx(1.1)


@pytest.mark.parametrize("method", rule_names())
def test_every_rule_reaches_the_cobb_douglas_closed_form(method):
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=30, n_goods=4, seed=3)
    pop = scenario.populations[0]
    expected = cobb_douglas_prices(pop.utility.shares, pop.endowment)
    run = mktsim.simulate(scenario, method=method, until=3000)
    assert run.summary["converged"], method
    final = np.array([run.summary["final_prices"][g] for g in scenario.goods.names])
    np.testing.assert_allclose(final, expected, rtol=1e-6)


@pytest.mark.parametrize("method", rule_names())
def test_every_rule_respects_the_price_floor(method):
    # a good nobody wants at any price: its excess demand is -1 however low the price goes
    rule = make_rule(method, step=5.0)
    path, _ = _iterate(rule, lambda p: np.array([0.0, -1.0]), [1.0, 1.0], 300)
    assert path.min() >= PRICE_FLOOR


def test_multiplicative_no_longer_underflows():
    path, _ = _iterate(Multiplicative(30.0), lambda p: np.array([0.0, -1.0]), [1.0, 1.0], 50)
    assert path[-1][1] == PRICE_FLOOR


@pytest.mark.parametrize(
    ("schedule", "factor"),
    [
        ("constant", lambda t: 1.0),
        ("inverse_sqrt", lambda t: 1 / math.sqrt(1 + t / 10)),
        ("inverse", lambda t: 1 / (1 + t / 10)),
        ("exponential", lambda t: math.exp(-t / 10)),
    ],
)
def test_schedules_scale_the_step_as_documented(schedule, factor):
    rule = make_rule("additive", step=0.5, schedule=schedule, tau=10)
    path, _ = _iterate(rule, lambda p: np.array([0.0, 1.0]), [1.0, 1.0], 40)
    expected = [0.5 * factor(t) for t in range(39)]
    np.testing.assert_allclose(np.diff(path[:, 1]), expected, rtol=1e-12)


def test_a_schedule_keeps_the_wrapped_rules_state():
    rule = Scheduled(Optimistic(0.5), "inverse", tau=1.0)
    state: dict = {}
    rule(np.ones(2), np.array([0.0, 1.0]), state)
    p = rule(np.ones(2), np.array([0.0, 3.0]), state)
    # second call: h = 0.5 / 2, optimistic direction 2 * 3 - 1
    assert p[1] == pytest.approx(1 + 0.25 * 5)


def test_bad_rule_parameters_are_refused_by_name():
    with pytest.raises(errors.UnknownName, match="schedule"):
        make_rule("additive", schedule="cosine")
    with pytest.raises(errors.InvalidParameter, match="delta"):
        Newton(delta=0.0)
    with pytest.raises(errors.InvalidParameter, match="beta"):
        RMSProp(beta=1.0)
