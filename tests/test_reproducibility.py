"""Randomness derives from (run seed, stream, agent): reproducible and stable under growth."""

from __future__ import annotations

import numpy as np
import pytest

import mktsim
from mktsim.errors import InvalidParameter
from mktsim.random import Streams


def test_adding_agents_leaves_the_others_unchanged():
    small = mktsim.build_scenario("cobb_douglas", n_agents=10, n_goods=4, seed=5)
    large = mktsim.build_scenario("cobb_douglas", n_agents=500, n_goods=4, seed=5)
    a, b = small.populations[0], large.populations[0]
    np.testing.assert_array_equal(a.utility.shares, b.utility.shares[:10])
    np.testing.assert_array_equal(a.endowment, b.endowment[:10])


def test_seeds_differ_and_repeat():
    s = Streams(3)
    ids = np.arange(1000)
    u = s.uniform("x", ids)
    np.testing.assert_array_equal(u, Streams(3).uniform("x", ids))
    assert not np.array_equal(u, Streams(4).uniform("x", ids))
    assert not np.array_equal(u, s.uniform("y", ids))
    assert not np.array_equal(u, s.uniform("x", ids, draw=1))
    assert 0 <= u.min() and u.max() < 1
    # roughly uniform: a coarse chi-square over 10 bins (independent sanity check)
    counts = np.histogram(s.uniform("z", np.arange(100_000)), bins=10, range=(0, 1))[0]
    chi2 = ((counts - 10_000) ** 2 / 10_000).sum()
    assert chi2 < 40  # 9 degrees of freedom: p < 1e-5 beyond this


def test_named_generators_are_independent_of_creation_order():
    a = Streams(1).generator("p1").random(3)
    s = Streams(1)
    s.generator("p0").random(10)
    np.testing.assert_array_equal(a, s.generator("p1").random(3))


@pytest.mark.parametrize("seed", [-1, 1.5, "1", True])
def test_bad_seeds(seed):
    with pytest.raises(InvalidParameter, match="seed"):
        Streams(seed)
