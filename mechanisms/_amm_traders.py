"""Bayesian posteriors for informed traders, kept importable here for the order book's belief
traders; the function lives in :mod:`mktsim.beliefs`."""

from mktsim.beliefs import posterior

__all__ = ["posterior"]
