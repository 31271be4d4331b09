"""Production: firm technologies, supply graphs and market-free reference prices.

Prices in a competitive supply chain are derivatives: a price-taking firm sets
``p_in = p_out * f'(in)``, so prices back-propagate from final goods to raw resources
(:func:`backprop_prices`) and, on graphs that are not trees, equal the planner's Lagrange
multipliers (:func:`planner`). Fixed-coefficient economies are priced by
:func:`leontief_prices` and, equivalently, by the dual of an LP.
"""

from mktsim.production.callable import (
    CallableTechnology,
    log_technology,
    numerical_gradient,
    saturating_technology,
    sqrt_technology,
    tupperware_chain,
)
from mktsim.production.graph import (
    FinalGood,
    FirmNode,
    RawResource,
    SupplyGraph,
    shared_intermediate_graph,
    tupperware_graph,
)
from mktsim.production.reference import (
    BackpropResult,
    LeontiefLPResult,
    PlannerResult,
    backprop_prices,
    leontief_lp_shadow_prices,
    leontief_prices,
    planner,
    spectral_radius,
)
from mktsim.production.technology import CES, CobbDouglas, Leontief, Technology

__all__ = [
    "CES",
    "BackpropResult",
    "CallableTechnology",
    "CobbDouglas",
    "FinalGood",
    "FirmNode",
    "Leontief",
    "LeontiefLPResult",
    "PlannerResult",
    "RawResource",
    "SupplyGraph",
    "Technology",
    "backprop_prices",
    "leontief_lp_shadow_prices",
    "leontief_prices",
    "log_technology",
    "numerical_gradient",
    "planner",
    "saturating_technology",
    "shared_intermediate_graph",
    "spectral_radius",
    "sqrt_technology",
    "tupperware_chain",
    "tupperware_graph",
]
