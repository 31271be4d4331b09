"""mktsim: a discrete-event market simulator with pluggable clearing mechanisms.

Script an economy (goods, populations with per-agent parameter arrays), run it under any
registered mechanism with :func:`simulate`, and compare the result with :func:`equilibrium`.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version

from mktsim.equilibrium import Equilibrium, equilibrium, equilibrium_prices
from mktsim.errors import (
    ConservationError,
    InvalidParameter,
    MktsimError,
    ScenarioError,
    UnknownName,
)
from mktsim.goods import Good, Goods
from mktsim.population import Consumers
from mktsim.run import Run, load, rerun, simulate
from mktsim.scenario import Scenario, build_scenario, list_scenarios
from mktsim.utility import CES, CobbDouglas, Leontief, Linear

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
    "equilibrium_prices",
    "list_scenarios",
    "load",
    "rerun",
    "simulate",
]

try:  # the installed distribution's version: pyproject.toml is the one place it is written
    __version__ = _distribution_version("mktsim")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
