"""Cliff's zero-intelligence-plus traders (HP Labs HPL-97-91, 1997).

Each trader shouts ``limit (1 + margin)``: sellers' margins are >= 0, buyers' in [-1, 0]. After
every shout in a good, every trader of the population moves its margin by :func:`zip_rules` (up,
down or not at all) and :func:`zip_step` (a Widrow-Hoff step with momentum toward a target
around the shout's price). What a trader sees of other traders is the market's public feed of
shouts (:meth:`mktsim.market.Market.observe`): an order that crosses accepts the standing quote
(as an accepting shout does in Cliff's double auction) and ``q`` is then the trade price; one
that rests is an unaccepted shout at its own price.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from mktsim.errors import InvalidParameter
from mktsim.market import Shout
from mktsim.mechanism import Option, PopulationSlot, nonnegative_float
from mktsim.strategies._arrivals import COMMON, EPS, PoissonStrategy

__all__ = ["ZeroIntelligencePlus", "zip_rules", "zip_shout_ticks", "zip_step"]

Array = NDArray[np.float64]


def zip_rules(
    prices: Array, active: NDArray[np.bool_], seller: bool, is_bid: bool, q: float, accepted: bool
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Which traders move their shout price up and which down after one shout (Cliff 1997).

    Sellers: after a trade at ``q``, every seller whose price is at most ``q`` raises its margin
    (price up); otherwise, if the shout was a bid, active sellers priced at or above ``q`` lower
    it. After an unaccepted offer at ``q``, active sellers priced at or above ``q`` lower it.
    Buyers mirror this: after a trade, buyers priced at or above ``q`` raise their margin (price
    down); otherwise, if the shout was an offer, active buyers priced at or below ``q`` lower it
    (price up). After an unaccepted bid, active buyers priced at or below ``q`` lower it.
    Traders without a current limit (nothing left to trade) are never updated.

    Returns:
        ``(up, down)``: boolean masks of traders whose price moves up / down.
    """
    none = np.zeros(prices.shape, dtype=bool)
    if seller:
        if accepted:
            up = active & (prices <= q)
            down = active & ~up & (prices >= q) if is_bid else none
        else:
            up = none
            down = active & (prices >= q) if not is_bid else none
        return up, down
    if accepted:
        down = active & (prices >= q)
        up = active & ~down & (prices <= q) if not is_bid else none
    else:
        down = none
        up = active & (prices <= q) if is_bid else none
    return up, down


def zip_step(
    limit: Array,
    margin: Array,
    momentum: Array,
    beta: Array,
    gamma: Array,
    q: float,
    up: NDArray[np.bool_],
    r_rel: Array,
    r_abs: Array,
    c_r: float,
    c_a: float,
) -> tuple[Array, Array]:
    """One Widrow-Hoff step with momentum of ZIP margins toward a target around ``q``.

    Target ``tau = R q + A``: for a move up ``R = 1 + c_r r_rel``, ``A = c_a r_abs``; down
    ``R = 1 - c_r r_rel``, ``A = -c_a r_abs`` (``r_*`` uniform on [0, 1)). With the current price
    ``p = limit (1 + margin)``: ``delta = beta (tau - p)``, ``momentum' = gamma momentum +
    (1 - gamma) delta``, ``margin' = (p + momentum') / limit - 1`` (not yet clamped).

    All arrays have the same shape; returns ``(margin', momentum')``.
    """
    p = limit * (1.0 + margin)
    target = np.where(
        up, q * (1.0 + c_r * r_rel) + c_a * r_abs, q * (1.0 - c_r * r_rel) - c_a * r_abs
    )
    delta = beta * (target - p)
    new_momentum = gamma * momentum + (1.0 - gamma) * delta
    return (p + new_momentum) / limit - 1.0, new_momentum


def zip_shout_ticks(limit: Any, margin: Any, buy: bool, tick: float) -> Any:
    """The price, in ticks, a ZIP trader shouts: ``limit (1 + margin)`` rounded to the tick away
    from the trade (down for a bid, up for an ask) and never beyond its own limit. Works on
    scalars and arrays alike (NaN where the limit is NaN)."""
    price = limit * (1.0 + margin)
    with np.errstate(invalid="ignore"):
        if buy:
            return np.minimum(np.floor(price / tick + EPS), np.floor(limit / tick + EPS))
        return np.maximum(np.ceil(price / tick - EPS), np.ceil(limit / tick - EPS))


def _pair(v: Any) -> tuple[float, float]:
    lo, hi = (float(x) for x in v)
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 <= lo <= hi):
        raise ValueError("must be a pair (low, high) with 0 <= low <= high")
    return lo, hi


class ZeroIntelligencePlus(PoissonStrategy):
    """Cliff's ZIP: adaptive profit margins (see the module docstring).

    Margins live per agent, good and side; learning rate ``beta`` and momentum ``gamma`` per
    agent, drawn once uniform on ``beta_range`` and ``gamma_range``; initial margins of size
    uniform on ``margin_range`` (``c_r``, ``c_a``: relative and absolute target perturbations).
    Shouts are rounded to the tick away from the trade and never cross the trader's own limit
    (:func:`zip_shout_ticks`); the rules compare those shouted prices with ``q``.
    """

    name = "zip"
    doc = "Cliff's zero-intelligence-plus: adaptive profit margins (Widrow-Hoff, momentum)"
    options: ClassVar[Mapping[str, Option]] = {
        **COMMON,
        "beta_range": Option((0.1, 0.5), "learning rate range", _pair),
        "gamma_range": Option((0.0, 0.1), "momentum range", _pair),
        "margin_range": Option((0.05, 0.35), "initial |margin| range", _pair),
        "c_r": Option(0.05, "relative target perturbation", nonnegative_float),
        "c_a": Option(0.05, "absolute target perturbation (numeraire)", nonnegative_float),
    }

    def __init__(
        self, market: Any, ctx: Any, slot: PopulationSlot, options: Mapping[str, Any]
    ) -> None:
        super().__init__(market, ctx, slot, options)
        observe = getattr(market, "observe", None)
        if observe is None:
            raise InvalidParameter(
                f"strategy 'zip' of population {slot.name!r} learns from the market's shouts; "
                f"{getattr(market, 'name', market)!r} shows none (no observe())"
            )
        streams = ctx.streams
        ids = np.arange(self.n)

        def draw(what: str, bounds: tuple[float, float], k: int = 0) -> Array:
            u = streams.uniform(self.stream(f"zip:{what}"), ids, k)
            return bounds[0] + (bounds[1] - bounds[0]) * u

        self.beta = draw("beta", self.opts["beta_range"])
        self.gamma = draw("gamma", self.opts["gamma_range"])
        g = len(self.names)
        # margin[side, good, agent]: side 0 buying, 1 selling.
        self.margin = np.zeros((2, g, self.n))
        self.momentum = np.zeros((2, g, self.n))
        for j in self.limits.goods:
            self.margin[0, j] = -draw("margin", self.opts["margin_range"], 2 * j)
            self.margin[1, j] = draw("margin", self.opts["margin_range"], 2 * j + 1)
        self.rng = streams.generator(self.stream("zip:updates"))
        self.c_r, self.c_a = self.opts["c_r"], self.opts["c_a"]
        self.index = {name: j for j, name in enumerate(self.names)}
        observe(self.observe)

    def decide(self, agent: int, u1: float, u2: float) -> tuple[Any, ...] | None:
        local = agent - self.start_row
        pick = self.limits.pick(local, u1)
        if pick is None:
            return None
        g, buy, limit, unit = pick
        margin = float(self.margin[0 if buy else 1, g, local])
        ticks = int(zip_shout_ticks(limit, margin, buy, self.tick))
        if ticks < 1:
            return None
        return agent, g, buy, ticks, unit

    def observe(self, shout: Shout) -> None:
        """Update every trader's margin after a shout (see :func:`zip_rules`)."""
        good = self.index[shout.good]
        if good not in self.limits.goods:
            return
        traded = shout.traded
        q = traded if traded is not None else shout.price
        if q is None:
            return
        accepted = traded is not None
        is_bid = shout.side == "buy"
        q_ticks = round(q / self.tick)
        buy_limits, sell_limits = self.limits.all_limits(good)
        for side, limits in ((0, buy_limits), (1, sell_limits)):
            active = np.isfinite(limits)
            if not active.any():
                continue
            margin = self.margin[side, good]
            # Cliff's rules compare the price each trader would shout with q: with prices on
            # ticks a trader's own unaccepted shout must count as "at q", or rounding away from
            # the trade (bids down, asks up) stops it from ever moving toward the other side
            # (compared in whole ticks: q is on the tick grid)
            shouts = zip_shout_ticks(limits, margin, side == 0, self.tick)
            up, down = zip_rules(shouts, active, side == 1, is_bid, q_ticks, accepted)
            move = up | down
            if not move.any():
                continue
            r = self.rng.random((2, self.n))
            new_margin, new_momentum = zip_step(
                limits[move],
                margin[move],
                self.momentum[side, good][move],
                self.beta[move],
                self.gamma[move],
                q,
                up[move],
                r[0][move],
                r[1][move],
                self.c_r,
                self.c_a,
            )
            if side == 1:
                new_margin = np.maximum(new_margin, 0.0)
            else:
                new_margin = np.clip(new_margin, -1.0, 0.0)
            margin[move] = new_margin
            self.momentum[side, good][move] = new_momentum
