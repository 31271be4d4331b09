"""Populations: groups of agents of one family, with parameters as arrays (one row per agent).

Economic agents are mechanism-free. A consumer population is a utility and an endowment; what it
does in a market is chosen by a *behaviour* name that each mechanism interprets (truthful demand
reports for the auctioneer, limit orders for the order book, swaps for market makers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from attrs import field, frozen
from numpy.typing import NDArray

from mktsim.errors import InvalidParameter
from mktsim.utility import CES, CobbDouglas, Leontief, Linear, Utility, as_matrix

__all__ = ["Consumers", "Population"]

_FAMILIES: dict[str, Any] = {
    "cobb_douglas": (CobbDouglas, "shares"),
    "ces": (CES, "weights"),
    "leontief": (Leontief, "coefficients"),
    "linear": (Linear, "values"),
}


@runtime_checkable
class Population(Protocol):
    """What every population kind offers the core (consumers, induced-value traders, firms...).

    ``endowment`` is ``float64[size, g]`` in units; ``kind`` names the family for reports and for
    mechanisms choosing default behaviours. ``demand(prices, holdings)`` is the population's
    price-taking answer ``float64[size, g]`` (the bundle each agent wants to hold) and is what the
    Walrasian auctioneer asks for; kinds without one make the auctioneer refuse them by name.
    """

    @property
    def name(self) -> str: ...

    @property
    def endowment(self) -> NDArray[np.float64]: ...

    @property
    def behaviour(self) -> str | type | None: ...

    @property
    def behaviour_options(self) -> Mapping[str, Any]: ...

    @property
    def delay(self) -> float: ...

    @property
    def size(self) -> int: ...

    @property
    def kind(self) -> str: ...


def check_values_money(pop: Any, numeraire: int, behaviour: str) -> None:
    """Refuse a behaviour that prices orders by marginal rates of substitution for consumers
    who value money at zero (a Fisher market's buyers): their rate is infinite everywhere, so
    they could never price an order, and the run would quietly trade nothing."""
    x = np.asarray(pop.endowment, dtype=np.float64) + 1.0  # an interior point
    with np.errstate(all="ignore"):
        mu = np.asarray(pop.utility.marginal_utility(x), dtype=np.float64)
    if not np.any(mu[:, numeraire] > 0):
        raise InvalidParameter(
            f"population {pop.name!r} values money at zero, so behaviour {behaviour!r} (which "
            f"prices orders by marginal rates of substitution for money) cannot price an order; "
            f"such buyers spend their whole budget: run it under the walrasian auctioneer"
        )


def check_name(_: object, __: object, value: str) -> None:
    if not isinstance(value, str) or not value or ":" in value:
        raise InvalidParameter(
            f"population name(={value!r}) must be a non-empty string without ':'"
        )


def _options(value: Mapping[str, Any]) -> dict[str, Any]:
    return dict(value)


def check_delay(_: object, __: object, value: float) -> None:
    if not np.isfinite(value) or value < 0:
        raise InvalidParameter(f"delay(={value}) must be >= 0 and finite")


@frozen
class Consumers:
    """A population of consumers.

    Attributes:
        name: unique within the scenario.
        utility: a utility family (:class:`~mktsim.utility.CobbDouglas`, ``CES``, ``Leontief``,
            ``Linear``) with one row per agent.
        endowment: ``float64[n, g]`` initial holdings in units, finite and >= 0.
        behaviour: how the population acts: a registered strategy's name, a ``module:Class``
            path or a strategy class (None: the default for consumers under the mechanism).
            ``behaviour_options`` tunes it.
        delay: response delay in simulation time (e.g. between a price posting and a report).
    """

    name: str = field(validator=check_name)
    utility: Utility = field()
    endowment: NDArray[np.float64] = field(converter=lambda v: as_matrix(v, "endowment"))
    behaviour: str | type | None = None
    behaviour_options: Mapping[str, Any] = field(factory=dict, converter=_options)
    delay: float = field(default=0.0, converter=float, validator=check_delay)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.utility, Utility):
            raise InvalidParameter(f"utility(={self.utility!r}) is not a utility family")
        if self.endowment.shape != (self.utility.n_agents, self.utility.n_goods):
            raise InvalidParameter(
                f"population {self.name!r}: endowment has shape {self.endowment.shape} but the "
                f"utility has {self.utility.n_agents} agents x {self.utility.n_goods} goods"
            )

    @property
    def size(self) -> int:
        return self.utility.n_agents

    @property
    def kind(self) -> str:
        return "consumers"

    def demand(
        self, prices: NDArray[np.float64], holdings: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Utility-maximising bundles ``float64[n, g]`` given current holdings as wealth."""
        return self.utility.demand(prices, holdings @ prices)

    def aggregate_demand(
        self, prices: NDArray[np.float64], holdings: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Total demand ``float64[g]``; Cobb-Douglas skips forming the n x g matrix."""
        wealth = holdings @ prices
        if isinstance(self.utility, CobbDouglas):
            return self.utility.aggregate_demand(prices, wealth)
        return self.utility.demand(prices, wealth).sum(axis=0)

    @classmethod
    def from_frame(
        cls, name: str, frame: pd.DataFrame, family: str, goods: list[str], **kwargs: Any
    ) -> Consumers:
        """Build from a table with columns ``<param>_<good>`` and ``endowment_<good>``.

        ``family`` is ``cobb_douglas`` (param ``shares``), ``ces`` (``weights``, plus an
        ``elasticity`` column), ``leontief`` (``coefficients``) or ``linear`` (``values``).
        """
        if family not in _FAMILIES:
            from mktsim.errors import UnknownName

            raise UnknownName("utility family", family, list(_FAMILIES))
        klass, param = _FAMILIES[family]
        cols = [f"{param}_{g}" for g in goods]
        ends = [f"endowment_{g}" for g in goods]
        missing = [c for c in [*cols, *ends] if c not in frame.columns]
        if missing:
            raise InvalidParameter(f"population {name!r}: missing columns {missing}")
        args: list[np.ndarray] = [frame[cols].to_numpy(float)]
        if family == "ces":
            if "elasticity" not in frame.columns:
                raise InvalidParameter(f"population {name!r}: CES needs an 'elasticity' column")
            args.append(frame["elasticity"].to_numpy(float))
        return cls(name, klass(*args), frame[ends].to_numpy(float), **kwargs)
