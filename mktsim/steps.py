"""Price step rules: tatonnement as gradient ascent on excess demand.

A step rule maps the posted prices and the excess demand observed there to the next prices to
post: ``rule(p, z, state) -> p_next``, where ``z`` is the excess demand (scaled by total supply
and with the numeraire's entry zeroed when the numeraire is held fixed) and ``state`` is a dict
the rule may keep between rounds. Rules that need demand at points other than their iterate
(extragradient's look-ahead, the Polyak average) post those points as rounds of their own, so
every demand evaluation is a round of the market. A rule may set ``state["estimate"]`` to its
current estimate of the equilibrium when that is not the posted price.

Built-ins (``method=`` names): additive, multiplicative, momentum, adam, averaged, extragradient.
Any callable with the signature above works too.
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
    "Adam",
    "Additive",
    "Averaged",
    "Extragradient",
    "Momentum",
    "Multiplicative",
    "StepRule",
    "make_rule",
    "rule_names",
]

Array = NDArray[np.float64]
StepRule = Callable[[Array, Array, dict[str, Any]], Array]

#: Prices never fall below this (additive steps could otherwise make them negative).
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
        return p * np.exp(np.clip(self.step * z, -30, 30))


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


_RULES: dict[str, type] = {
    "additive": Additive,
    "multiplicative": Multiplicative,
    "momentum": Momentum,
    "adam": Adam,
    "averaged": Averaged,
    "extragradient": Extragradient,
}


def rule_names() -> list[str]:
    return list(_RULES)


def make_rule(method: str | StepRule, step: float | None = None, **params: Any) -> StepRule:
    """A step rule from a name (with its step size and parameters) or a callable."""
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
    return rule
