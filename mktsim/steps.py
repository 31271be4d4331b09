"""Price step rules: tatonnement as gradient ascent on excess demand.

A step rule maps the posted prices and the excess demand observed there to the next prices to
post: ``rule(p, z, state) -> p_next``, where ``z`` is the excess demand (scaled by total supply
and with the numeraire's entry zeroed when the numeraire is held fixed) and ``state`` is a dict
the rule may keep between rounds. Rules that need demand at points other than their iterate
(extragradient's look-ahead, the Polyak average) post those points as rounds of their own, so
every demand evaluation is a round of the market. A rule may set ``state["estimate"]`` to its
current estimate of the equilibrium when that is not the posted price.

Built-ins (``method=`` names): additive, multiplicative, momentum, adam, averaged, extragradient,
optimistic, nesterov, adagrad, rmsprop, newton, proportional_response. Any callable with the
signature above works too; :class:`Scheduled` wraps a rule with a decaying step-size schedule.

Price floor: no built-in rule ever posts a price below :data:`PRICE_FLOOR` (in units of the
numeraire's price when the numeraire is held at 1). Additive steps could otherwise make a price
negative, and multiplicative steps drive an unwanted good's price towards zero geometrically,
down to the smallest double (5e-324), where wealth and demand stop being representable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
from attrs import field, frozen
from numpy.typing import NDArray

from mktsim.errors import InvalidParameter, UnknownName

__all__ = [
    "PRICE_FLOOR",
    "SCHEDULES",
    "AdaGrad",
    "Adam",
    "Additive",
    "Averaged",
    "Extragradient",
    "Momentum",
    "Multiplicative",
    "Nesterov",
    "Newton",
    "Optimistic",
    "ProportionalResponse",
    "RMSProp",
    "Scheduled",
    "StepRule",
    "make_rule",
    "rule_names",
]

Array = NDArray[np.float64]
StepRule = Callable[[Array, Array, dict[str, Any]], Array]

#: No built-in rule posts a price below this (see the module docstring).
PRICE_FLOOR = 1e-12


def _positive(_: object, attribute: Any, value: float) -> None:
    if not np.isfinite(value) or value <= 0:
        raise InvalidParameter(f"{attribute.name}(={value}) must be > 0 and finite")


def _unit(_: object, attribute: Any, value: float) -> None:
    if not np.isfinite(value) or not 0 <= value < 1:
        raise InvalidParameter(f"{attribute.name}(={value}) must be in [0, 1)")


def _floor(p: Array) -> Array:
    return np.maximum(p, PRICE_FLOOR)


@frozen
class Additive:
    """p <- p + h z: the classical discrete tatonnement."""

    step: float = field(default=0.5, validator=_positive)

    def __call__(self, p: Array, z: Array, state: dict[str, Any]) -> Array:
        return _floor(p + self.step * z)


@frozen
class Multiplicative:
    """p <- p exp(h z): gradient steps in log prices; scale-free and always positive."""

    step: float = field(default=0.5, validator=_positive)

    def __call__(self, p: Array, z: Array, state: dict[str, Any]) -> Array:
        # the log step is bounded to [-30, 30]; minimum(maximum(...)) is np.clip without its
        # Python-level dispatch (the same values, NaN included), on every round
        return _floor(p * np.exp(np.minimum(np.maximum(self.step * z, -30.0), 30.0)))


@frozen
class Momentum:
    """Heavy ball: v <- beta v + z; p <- p + h v."""

    step: float = field(default=0.2, validator=_positive)
    beta: float = field(default=0.8, validator=_unit)

    def __call__(self, p: Array, z: Array, state: dict[str, Any]) -> Array:
        v = self.beta * state.get("velocity", np.zeros_like(z)) + z
        state["velocity"] = v
        return _floor(p + self.step * v)


@frozen
class Adam:
    """Adam (Kingma & Ba 2015) on the price vector, ascending excess demand."""

    step: float = field(default=0.05, validator=_positive)
    beta1: float = field(default=0.9, validator=_unit)
    beta2: float = field(default=0.999, validator=_unit)
    eps: float = field(default=1e-12, validator=_positive)

    def __call__(self, p: Array, z: Array, state: dict[str, Any]) -> Array:
        t = state.get("t", 0) + 1
        m = self.beta1 * state.get("m", np.zeros_like(z)) + (1 - self.beta1) * z
        v = self.beta2 * state.get("v", np.zeros_like(z)) + (1 - self.beta2) * z * z
        state.update(t=t, m=m, v=v)
        m_hat = m / (1 - self.beta1**t)
        v_hat = v / (1 - self.beta2**t)
        return _floor(p + self.step * m_hat / (np.sqrt(v_hat) + self.eps))


@frozen
class Averaged:
    """Additive steps with Polyak-Ruppert averaging of the iterates.

    Rounds alternate: the iterate is posted (its excess demand drives the next step), then the
    running average is posted (its excess demand says whether the average clears the market).
    The average is the estimate.
    """

    step: float = field(default=0.5, validator=_positive)

    def __call__(self, p: Array, z: Array, state: dict[str, Any]) -> Array:
        if state.get("phase", "iterate") == "iterate":
            x = _floor(p + self.step * z)
            k = state.get("k", 0) + 1
            avg = state.get("average", p) + (x - state.get("average", p)) / (k + 1)
            state.update(k=k, iterate=x, average=avg, phase="average", estimate=avg)
            return avg
        state["phase"] = "iterate"
        return np.asarray(state["iterate"])


@frozen
class Extragradient:
    """Extragradient (Korpelevich 1976): look ahead, then step with the look-ahead's gradient.

    Rounds alternate between the look-ahead point x + h z(x) and the new base point
    x + h z(look-ahead). The base point is the estimate.
    """

    step: float = field(default=0.5, validator=_positive)

    def __call__(self, p: Array, z: Array, state: dict[str, Any]) -> Array:
        if state.get("phase", "base") == "base":
            state.update(base=p, phase="lookahead", estimate=p)
            return _floor(p + self.step * z)
        x = _floor(np.asarray(state["base"]) + self.step * z)
        state.update(phase="base", estimate=x)
        return x


@frozen
class Optimistic:
    """Optimistic gradient (OGDA; Popov 1980, Daskalakis et al. 2018): p <- p + h (2 z_t - z_{t-1}).

    The previous round's excess demand stands in for extragradient's look-ahead, so every round
    moves the price (one demand evaluation per step). On bilinear and rotational fields, where
    plain steps spiral outward, it converges for small h. The first step is a plain one.
    """

    step: float = field(default=0.2, validator=_positive)

    def __call__(self, p: Array, z: Array, state: dict[str, Any]) -> Array:
        previous = state.get("previous", z)
        state["previous"] = z
        return _floor(p + self.step * (2.0 * z - previous))


@frozen
class Nesterov:
    """Nesterov's accelerated gradient (1983): the posted point is the look-ahead
    y_t = x_t + beta (x_t - x_{t-1}); the iterate x_{t+1} = y_t + h z(y_t) is the estimate."""

    step: float = field(default=0.2, validator=_positive)
    beta: float = field(default=0.8, validator=_unit)

    def __call__(self, p: Array, z: Array, state: dict[str, Any]) -> Array:
        x = _floor(p + self.step * z)
        previous = np.asarray(state.get("iterate", p))
        state.update(iterate=x, estimate=x)
        return _floor(x + self.beta * (x - previous))


@frozen
class AdaGrad:
    """AdaGrad (Duchi, Hazan & Singer 2011): per-good steps h / sqrt(sum of past z^2).

    A good whose excess demand has been large moves in smaller steps; the effective step only
    shrinks, which damps cycles but slows the end game.
    """

    step: float = field(default=0.1, validator=_positive)
    eps: float = field(default=1e-12, validator=_positive)

    def __call__(self, p: Array, z: Array, state: dict[str, Any]) -> Array:
        g2 = state.get("sum_sq", np.zeros_like(z)) + z * z
        state["sum_sq"] = g2
        return _floor(p + self.step * z / (np.sqrt(g2) + self.eps))


@frozen
class RMSProp:
    """RMSProp (Tieleman & Hinton 2012): steps h z / (sqrt(v) + eps), v an exponential average
    of z^2 with decay ``beta``, bias-corrected.

    ``eps`` is a regulariser, not only a guard against division by zero: where |z| is far above
    it the rule steps about h sign(z) per good, and near equilibrium (|z| << eps) it is additive
    tatonnement with step h / eps, which is what lets it converge. With eps -> 0 it is a sign
    rule that hovers within O(h) of the equilibrium.
    """

    step: float = field(default=0.01, validator=_positive)
    beta: float = field(default=0.9, validator=_unit)
    eps: float = field(default=0.01, validator=_positive)

    def __call__(self, p: Array, z: Array, state: dict[str, Any]) -> Array:
        t = state.get("t", 0) + 1
        v = self.beta * state.get("v", np.zeros_like(z)) + (1 - self.beta) * z * z
        state.update(t=t, v=v)
        v_hat = v / (1 - self.beta**t)
        return _floor(p + self.step * z / (np.sqrt(v_hat) + self.eps))


@frozen
class Newton:
    """Smale's global Newton method (Smale 1976) with a Jacobian measured by the market.

    The flow J dp/dt = -lambda z with sign(lambda) = sign det(-J) is Newton's method where the
    equilibrium's index is +1 and reverses it where the index is -1, so it is attracted by
    equilibria of index +1 (every stable one) whatever their tatonnement stability. Discretised:
    p <- p - h sign(det(-J)) J^-1 z, with each price's relative change capped at ``max_change``.

    J is estimated by forward differences: after each base round the rule posts the base prices
    with one good's price raised by the factor (1 + ``delta``), one round per good whose excess
    demand is not held at zero (the numeraire and clamped goods are left out), so a step of
    an economy with k free goods costs k + 1 rounds of the market. The base point is the estimate.
    """

    step: float = field(default=1.0, validator=_positive)
    delta: float = field(default=1e-5, validator=_positive)
    max_change: float = field(default=0.5, validator=_positive)

    def __call__(self, p: Array, z: Array, state: dict[str, Any]) -> Array:
        probes: list[int] = state.get("probes", [])
        if not probes:  # a base round: measure J around it
            free = [int(k) for k in np.flatnonzero(z != 0.0)]
            if not free:
                return p
            state.update(base=p, base_z=z, free=free, probes=list(free), columns={}, estimate=p)
            return self._probe(p, free[0])
        k = probes.pop(0)
        base, base_z = np.asarray(state["base"]), np.asarray(state["base_z"])
        state["columns"][k] = (z - base_z) / (base[k] * self.delta)
        if probes:
            return self._probe(base, probes[0])
        free = state["free"]
        jac = np.column_stack([state["columns"][j][free] for j in free])
        x = _floor(base.copy())
        try:
            direction = -np.linalg.solve(jac, base_z[free])
            sign = np.sign(np.linalg.det(-jac)) or 1.0
        except np.linalg.LinAlgError:
            direction, sign = base_z[free], 1.0  # singular: fall back to a tatonnement step
        move = self.step * sign * direction
        ratio = float(np.max(np.abs(move) / base[free]))
        if ratio > self.max_change:
            move *= self.max_change / ratio
        x[free] = _floor(base[free] + move)
        state["estimate"] = x
        return x

    def _probe(self, base: Array, k: int) -> Array:
        q = np.array(base, dtype=float)
        q[k] *= 1.0 + self.delta
        return q


@frozen
class ProportionalResponse:
    """The auctioneer's half of proportional response (Zhang 2011): each good is priced at the
    money bid on it per unit of supply, p_j <- p_j (1 + h z_j) with z_j the excess demand
    relative to supply, so at h = 1 exactly p_j <- p_j D_j / S_j = (money spent on j) / S_j.

    In a Fisher market whose buyers bid by proportional response (strategy
    ``proportional_response``: each splits its budget across goods in proportion to the utility
    each gave it at the last prices, and reports the bundle its bids buy) the pair is Zhang's
    dynamics, which converge to the Eisenberg-Gale equilibrium for linear and CES buyers
    (Birnbaum, Devanur & Xiao 2011). With buyers who report their demand at the posted prices,
    it is the trading-post price update, which reaches Cobb-Douglas buyers' equilibrium in one
    step (they spend fixed shares). It needs excess demand relative to supply (the
    auctioneer's ``scale="supply"``, the default). h < 1 damps it.
    """

    step: float = field(default=1.0, validator=_positive)

    def __call__(self, p: Array, z: Array, state: dict[str, Any]) -> Array:
        return _floor(p * np.maximum(1.0 + self.step * z, 0.0))


#: Step-size schedules of :class:`Scheduled`: the factor applied to ``step`` at call t (from 0).
SCHEDULES: dict[str, Callable[[int, float], float]] = {
    "constant": lambda t, tau: 1.0,
    "inverse_sqrt": lambda t, tau: 1.0 / np.sqrt(1.0 + t / tau),
    "inverse": lambda t, tau: 1.0 / (1.0 + t / tau),
    "exponential": lambda t, tau: float(np.exp(-t / tau)),
}


@frozen
class Scheduled:
    """A rule whose ``step`` follows a schedule: h_t = h * factor(t, tau), t counting calls.

    Robbins-Monro schedules (``inverse``: sum h_t infinite, sum h_t^2 finite) make additive
    tatonnement converge on noisy demand; ``inverse_sqrt`` is the usual choice for online
    gradient methods. The wrapped rule's own state is kept, so momentum and optimism survive.

    Args:
        rule: a built-in rule instance (a frozen attrs class with a ``step`` field).
        schedule: a name in :data:`SCHEDULES`.
        tau: the schedule's time scale in calls (> 0).
    """

    rule: Any
    schedule: str = "inverse_sqrt"
    tau: float = field(default=100.0, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise UnknownName("schedule", str(self.schedule), list(SCHEDULES))
        if not attrs.has(type(self.rule)) or "step" not in attrs.fields_dict(type(self.rule)):
            raise InvalidParameter(f"rule(={self.rule!r}) must be a built-in rule with a step")

    def __call__(self, p: Array, z: Array, state: dict[str, Any]) -> Array:
        t = state.get("schedule_t", 0)
        state["schedule_t"] = t + 1
        h = self.rule.step * SCHEDULES[self.schedule](t, self.tau)
        return np.asarray(attrs.evolve(self.rule, step=h)(p, z, state))

    @property
    def __name__(self) -> str:
        return f"{type(self.rule).__name__.lower()}+{self.schedule}"


_RULES: dict[str, type] = {
    "additive": Additive,
    "multiplicative": Multiplicative,
    "momentum": Momentum,
    "adam": Adam,
    "averaged": Averaged,
    "extragradient": Extragradient,
    "optimistic": Optimistic,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "rmsprop": RMSProp,
    "newton": Newton,
    "proportional_response": ProportionalResponse,
}


def rule_names() -> list[str]:
    return list(_RULES)


def make_rule(
    method: str | StepRule,
    step: float | None = None,
    schedule: str | None = None,
    tau: float = 100.0,
    **params: Any,
) -> StepRule:
    """A step rule from a name (with its step size and parameters) or a callable.

    Args:
        method: a name in :func:`rule_names`, or a callable ``rule(p, z, state) -> p_next``
            (returned as it is).
        step: the step size h (None: the rule's default).
        schedule: a name in :data:`SCHEDULES` to decay the step (None: constant).
        tau: the schedule's time scale in rounds.
        params: the rule's other parameters (e.g. ``beta``); ones it does not take are ignored,
            and None means the default.
    """
    if callable(method):
        return method
    if method not in _RULES:
        raise UnknownName("method", str(method), list(_RULES))
    cls = _RULES[method]
    accepted = {a.name for a in attrs.fields(cls)}
    kwargs = {k: v for k, v in params.items() if k in accepted and v is not None}
    if step is not None:
        kwargs["step"] = step
    rule: StepRule = cls(**kwargs)
    if schedule is not None:
        rule = Scheduled(rule, schedule, tau)
    return rule
