"""mktsim: a discrete-event market simulator with pluggable clearing mechanisms.

Script an economy (goods, populations with per-agent parameter arrays), run it under any
registered mechanism with :func:`simulate`, and compare the result with :func:`equilibrium`.
Names are imported on first use, so ``import mktsim.errors`` (or a worker process that needs one
module) does not pay for pandas, scipy and matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mktsim.equilibrium import Equilibrium, equilibrium
    from mktsim.errors import (
        ConservationError,
        InvalidParameter,
        MktsimError,
        ScenarioError,
        UnknownName,
    )
    from mktsim.goods import Good, Goods
    from mktsim.population import Consumers
    from mktsim.run import Run, simulate
    from mktsim.scenario import Scenario, build_scenario, list_scenarios
    from mktsim.utility import CES, CobbDouglas, Leontief, Linear

_WHERE = {
    "Equilibrium": "equilibrium",
    "equilibrium": "equilibrium",
    "ConservationError": "errors",
    "InvalidParameter": "errors",
    "MktsimError": "errors",
    "ScenarioError": "errors",
    "UnknownName": "errors",
    "Good": "goods",
    "Goods": "goods",
    "Consumers": "population",
    "Run": "run",
    "simulate": "run",
    "Scenario": "scenario",
    "build_scenario": "scenario",
    "list_scenarios": "scenario",
    "CES": "utility",
    "CobbDouglas": "utility",
    "Leontief": "utility",
    "Linear": "utility",
}

__all__ = [
    "CES",
    "CobbDouglas",
    "ConservationError",
    "Consumers",
    "Equilibrium",
    "Good",
    "Goods",
    "InvalidParameter",
    "Leontief",
    "Linear",
    "MktsimError",
    "Run",
    "Scenario",
    "ScenarioError",
    "UnknownName",
    "build_scenario",
    "equilibrium",
    "list_scenarios",
    "simulate",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f"mktsim.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mktsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
