"""Shared fixtures and independent reference computations for the tests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True)
settings.load_profile("ci")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def cobb_douglas_prices(shares: np.ndarray, endowment: np.ndarray) -> np.ndarray:
    """Equilibrium prices of a Cobb-Douglas exchange economy, numeraire (good 0) = 1, computed
    here from market clearing for goods 1..g-1 as a plain linear solve (independent of mktsim):
    p_j E_j = sum_i shares_ij (p . e_i)  <=>  (diag(E) - B) p = 0 with B = shares^T e."""
    e_total = endowment.sum(axis=0)
    b = shares.T @ endowment
    a = np.diag(e_total) - b
    # fix p_0 = 1 and solve the equations of goods 1..g-1
    rhs = -a[1:, 0]
    p_rest = np.linalg.solve(a[1:, 1:], rhs)
    return np.concatenate([[1.0], p_rest])


def ces_excess_demand(weights: np.ndarray, sigma: float, endowment: np.ndarray, p: np.ndarray):
    """Aggregate CES excess demand written out directly from the textbook formula."""
    w = endowment @ p
    num = weights**sigma * p ** (-sigma)
    denom = (weights**sigma * p ** (1 - sigma)).sum(axis=1)
    demand = w[:, None] * num / denom[:, None]
    return demand.sum(axis=0) - endowment.sum(axis=0)
