"""What a price-taking firm's inputs are worth to it, planned on its input mix.

A price taker values one more unit of input ``k`` at its marginal value product
``p_out * df/dx_k(z)``. The question is *at which bundle z*. A firm buys its inputs a lot at a
time during a cycle and turns them into output at the cycle's end, so its current holding is
the wrong point twice over:

* concave technologies have near-infinite marginal products at 0, so early in a cycle a firm
  would value its first lots far above their worth (and drain the chain's working capital);
* with several inputs, a firm holding none of input ``j`` has a marginal product of ``k`` of 0
  (Cobb-Douglas: ``df/dx_k = a_k y / x_k`` with ``y = 0``) and would never bid for either
  input: it would never produce.

**The rule** (:func:`valuation_point`). Firm i values input k at the bundle z with

* ``z_k = max(held_k + extra, batch_k)``: the lot it is buying (``extra``, e.g. half a lot:
  the lot's midpoint) on top of what it holds, never below the batch it expects to use;
* for every other input j, ``z_j = max(held_j, batch_j)`` once the firm has an expected batch
  of it (it has produced with it), else ``z_j = max(held_j, plan_j)``, where ``plan`` is the
  profit-maximising input bundle at the firm's current price estimates
  (``technology.input_demand(p_out, p_in)``), and ``fallback`` where no plan can be made yet
  (an input without a price, a technology that refuses the prices).

So a two-input Cobb-Douglas firm that holds nothing values each input at the marginal product
of the plan's mix: at the plan itself ``p_out df/dx_k = p_k`` (the first-order condition), and
below the plan's quantity of k its value is higher, so it bids. In a stationary flow economy the
expected batch settles at the planner's quantities and the values become the planner's shadow
prices (the back-propagated derivatives on trees).

**Below the batch.** The floor at the batch is there because a lot will be part of a whole
batch. A firm whose batch is worth less than its price (``p_out df/dx_k < p_k`` there: it
bought cheap last cycle, or the price rose) does not plan a whole batch: a price taker buys up
to the holding at which the input is worth its price, and that holding
(:func:`worth_price`, below the batch) is the point it values the input at. Floored at the
batch, its demand would be all or nothing: it would bid below the price for every lot and buy
nothing, not a little less.

``batch`` is the expected batch of :class:`mktsim.production.plant.Plant`. Everything here is a
function of arrays: no market, no ledger.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mktsim.errors import MktsimError

__all__ = ["marginal_value", "planned_inputs", "valuation_point", "worth_price"]

Array = NDArray[np.float64]


def planned_inputs(technology: Any, p_out: float, p_in: ArrayLike) -> Array | None:
    """The profit-maximising inputs ``float64[n, k]`` at output price ``p_out`` and input
    prices ``p_in`` (``float64[k]``, numeraire per unit), or None when no finite positive plan
    exists at those prices (a missing or non-positive price, a technology that refuses them).

    The first-order conditions' bundle is kept even where it would lose money: it is the mix a
    firm plans its purchases on, not a decision to produce.
    """
    prices = np.asarray(p_in, dtype=np.float64)
    if not (math.isfinite(p_out) and p_out > 0) or not (
        np.isfinite(prices).all() and (prices > 0).all()
    ):
        return None
    try:
        with np.errstate(all="ignore"):
            x = np.asarray(technology.input_demand(p_out, prices), dtype=np.float64)
    except MktsimError:
        return None
    if not np.isfinite(x).all() or (x < 0).any():
        return None
    return x


def valuation_point(
    held: ArrayLike,
    batch: ArrayLike,
    k: int,
    *,
    extra: float = 0.0,
    plan: ArrayLike | None = None,
    fallback: float = 0.0,
) -> Array:
    """The bundle at which firms value input ``k`` (the rule of the module docstring).

    Args:
        held: inputs held, units ``float64[n, inputs]``.
        batch: expected batch, units ``float64[n, inputs]`` (0 where a firm has not produced
            with an input yet).
        k: the input being valued (column).
        extra: units on top of the holding of ``k`` (the lot being bought, or its midpoint).
        plan: planned inputs ``float64[n, inputs]`` (:func:`planned_inputs`), or None.
        fallback: units of an input j != k taken where there is neither a batch nor a plan.

    Returns:
        ``z``, units ``float64[n, inputs]``.
    """
    h = np.asarray(held, dtype=np.float64)
    b = np.asarray(batch, dtype=np.float64)
    fill = np.full_like(h, float(fallback)) if plan is None else np.asarray(plan, dtype=np.float64)
    z = np.where(b > 0, np.maximum(h, b), np.maximum(h, fill))
    z[:, k] = np.maximum(h[:, k] + extra, b[:, k])
    return z


def marginal_value(technology: Any, p_out: float, z: ArrayLike, i: int, k: int) -> float:
    """``p_out * df/dx_k`` of firm ``i`` at the bundle ``z`` (``float64[n, inputs]``); 0 when
    that is not a positive finite number."""
    with np.errstate(all="ignore"):
        mp = float(np.asarray(technology.marginal_products(z), dtype=np.float64)[i, k])
    v = p_out * mp
    return v if math.isfinite(v) and v > 0 else 0.0


def worth_price(
    technology: Any,
    p_out: float,
    z: ArrayLike,
    i: int,
    k: int,
    price: float,
    low: float,
    high: float,
) -> float | None:
    """The holding ``q`` of input ``k`` in ``[low, high]`` at which firm ``i`` values it at
    ``price``: ``p_out df/dx_k = price`` with the other inputs as in ``z``
    (``float64[n, inputs]``). None when the input is worth less than ``price`` already at
    ``low`` (or ``low`` is not positive); ``high`` when it is worth more there.

    A concave technology's marginal product falls in ``x_k``; a power law (Cobb-Douglas) is a
    line in logarithms, so the root is found by regula falsi (Illinois) on ``log q`` against
    ``log`` value: one step for Cobb-Douglas, a few for other technologies, to 1e-6 in
    ``log q``.
    """
    if not (0 < low <= high and price > 0):
        return None
    x = np.array(z, dtype=np.float64)

    def gap(log_q: float) -> float:
        x[i, k] = math.exp(log_q)
        v = marginal_value(technology, p_out, x, i, k)
        return math.log(v / price) if v > 0 else -math.inf

    a, b = math.log(low), math.log(high)
    fa, fb = gap(a), gap(b)
    if fa < 0:
        return None
    if fb >= 0:
        return high
    if not math.isfinite(fa):  # an infinite marginal product at low: bisect until finite
        while not math.isfinite(fa) and b - a > 1e-6:
            m = 0.5 * (a + b)
            fm = gap(m)
            if fm >= 0:
                a, fa = m, fm
            else:
                b, fb = m, fm
    side = 0
    for _ in range(60):
        if b - a < 1e-6 or not (math.isfinite(fa) and math.isfinite(fb)):
            break
        m = b - fb * (b - a) / (fb - fa)
        if not a < m < b:
            m = 0.5 * (a + b)
        fm = gap(m)
        if abs(fm) < 1e-9:
            return math.exp(m)
        if fm > 0:
            a, fa = m, fm
            if side == 1:
                fb *= 0.5
            side = 1
        else:
            b, fb = m, fm
            if side == -1:
                fa *= 0.5
            side = -1
    return math.exp(a)
