"""Scarf's economy and discrete tatonnement against the analysis of the model.

With z_j(p) = p_j/(p_j + p_{j+1}) + p_{j-1}/(p_{j-1} + p_j) - 1, the Jacobian at p = c(1,1,1) is
(1/4c) times the skew circulant [[0,-1,1],[1,0,-1],[-1,1,0]]: eigenvalues 0 and ±i√3/(4c), so
small orbits of dp/dt = z(p) around (1,1,1) (c = 1) have period 8π/√3 ≈ 14.51, and a third of
that around (1,1,1)/3 (z is homogeneous of degree 0, so J(λp) = J(p)/λ). An additive step keeps
the exact identity |p'|² = |p|² + h²|z|² (Walras' law p·z = 0). All computed here, not read
from the simulator.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import mktsim
from mktsim.equilibrium import aggregate_excess_demand
from mktsim.steps import Additive

EQUILIBRIUM = np.ones(3)
SKEW = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])


def scarf() -> mktsim.Scenario:
    return mktsim.build_scenario("scarf")


@pytest.mark.parametrize("c", [1.0, 1 / 3])
def test_jacobian_at_the_equilibrium_is_the_skew_circulant_over_4c(c: float) -> None:
    s = scarf()
    p = c * EQUILIBRIUM
    assert np.allclose(aggregate_excess_demand(s, p), 0.0, atol=1e-12)
    h = 1e-7 * c
    jac = np.column_stack(
        [
            (aggregate_excess_demand(s, p + h * e) - aggregate_excess_demand(s, p - h * e))
            / (2 * h)
            for e in np.eye(3)
        ]
    )
    np.testing.assert_allclose(jac, SKEW / (4 * c), atol=1e-6 / c)
    eig = np.linalg.eigvals(jac)
    expected = [0.0, math.sqrt(3) / (4 * c), math.sqrt(3) / (4 * c)]
    assert sorted(abs(e.imag) for e in eig) == pytest.approx(expected, abs=1e-5 / c)
    assert np.all(np.abs(eig.real) < 1e-6 / c)


class Recording:
    """A step rule that records every (posted price, excess demand) the auctioneer gives it."""

    def __init__(self, step: float) -> None:
        self.rule = Additive(step)
        self.seen: list[tuple[np.ndarray, np.ndarray]] = []

    def __call__(self, p: np.ndarray, z: np.ndarray, state: dict[str, Any]) -> np.ndarray:
        self.seen.append((p.copy(), z.copy()))
        return self.rule(p, z, state)


def orbit(step: float, rounds: int, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    recording = Recording(step)
    names = scarf().goods.names
    mktsim.simulate(
        scarf(),
        "walrasian",
        method=recording,
        normalize="none",
        scale="none",
        initial_prices=dict(zip(names, start.tolist(), strict=True)),
        until=rounds,
    )
    p = np.array([s[0] for s in recording.seen])
    z = np.array([s[1] for s in recording.seen])
    return p, z


def test_an_additive_step_grows_the_price_norm_by_exactly_h2_z2() -> None:
    h = 0.01
    p, z = orbit(h, 400, np.array([1.2, 1.0, 0.9]))
    assert len(p) > 300
    growth = (p[1:] ** 2).sum(axis=1) - (p[:-1] ** 2).sum(axis=1)
    np.testing.assert_allclose(growth, h**2 * (z[:-1] ** 2).sum(axis=1), rtol=1e-6, atol=1e-15)
    assert np.all(growth > 0)  # it can never shrink |p|: discrete additive steps spiral out


def test_small_orbits_have_period_8pi_over_sqrt3() -> None:
    h = 5e-3
    start = EQUILIBRIUM + np.array([3e-3, 0.0, -3e-3])
    p, _ = orbit(h, 12_000, start)
    x = p[:, 0] - EQUILIBRIUM[0]
    ups = np.flatnonzero((x[:-1] < 0) & (x[1:] >= 0))
    periods = np.diff(ups) * h  # time of dp/dt = z(p) is rounds x step
    assert len(periods) >= 3
    assert np.mean(periods) == pytest.approx(8 * math.pi / math.sqrt(3), rel=0.01)
    # the flow conserves sum p^2 and prod p: the orbit neither spirals in nor out to O(h^2)
    for invariant in ((p**2).sum(axis=1), p.prod(axis=1)):
        assert np.ptp(invariant) / invariant[0] < 1e-5
