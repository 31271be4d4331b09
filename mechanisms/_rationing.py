"""Rationing trades at disequilibrium prices so that every good clears.

Each agent trades a uniform fraction t_i in [0, 1] of its desired net trade z_i. Because z_i is
affordable at the posted prices (p . z_i = 0) and the agent's demand is optimal in its budget set,
moving a uniform fraction toward the demand never lowers utility (quasi-concavity) and never makes a
holding negative: trade is voluntary. The fractions come from repeated proportional rationing of
the long side of each good: every good's long side is scaled down to its short side in turn, and an
agent's fraction falls with every good it is rationed on. The fractions only fall, so the sweeps
settle where every good clears.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["uniform_fractions"]


def uniform_fractions(
    z: NDArray[np.float64],
    tol: float = 1e-10,
    atol: float = 1e-9,
    max_sweeps: int = 10_000,
) -> tuple[NDArray[np.float64], int, bool]:
    """Fractions ``float64[n]`` of each agent's desired trade ``z[n, g]`` that clear every good.

    Goods are rationed one after another (Gauss-Seidel sweeps): good j's long side is scaled to its
    short side given the fractions so far. Fractions only fall, and a sweep leaves the last good
    exactly clear, so sweeps repeat until every good clears to a relative ``tol`` of its volume or
    an absolute ``atol`` units (one base unit of the ledger);
    the ledger's integer settlement removes the rest by shrinking the long side in proportion.
    Returns the fractions, the number of sweeps and whether every good cleared: after
    ``max_sweeps`` sweeps that did not clear, the fractions leave goods unbalanced and must not be
    settled.
    """
    n, g = z.shape
    t = np.ones(n)
    buyers = [np.flatnonzero(z[:, j] > 0) for j in range(g)]
    sellers = [np.flatnonzero(z[:, j] < 0) for j in range(g)]
    for sweep in range(1, max_sweeps + 1):
        worst = 0.0
        for j in range(g):
            demand = float(z[buyers[j], j] @ t[buyers[j]])
            supply = -float(z[sellers[j], j] @ t[sellers[j]])
            volume = max(demand, supply)
            if volume <= 0:
                continue
            if abs(demand - supply) > atol:
                worst = max(worst, abs(demand - supply) / volume)
            if demand > supply:
                t[buyers[j]] *= supply / demand
            elif supply > demand:
                t[sellers[j]] *= demand / supply
        if worst <= tol:
            return t, sweep, True
    return t, max_sweeps, False
