"""Firm production runs and the supplier check, as the pools' supply chains use them.

They live in :mod:`mktsim.production.plant`, outside every mechanism; these names stay
importable from here.
"""

from __future__ import annotations

from mktsim.production.plant import Sells, check_supplied, production_runs

__all__ = ["Sells", "check_supplied", "production_runs"]
