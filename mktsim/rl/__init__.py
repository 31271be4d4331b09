"""Step interfaces for learning agents: a Gymnasium environment for one agent
(:class:`MarketEnv`) and a PettingZoo parallel environment for several
(:class:`ParallelMarketEnv`), on any scenario under any mechanism that takes limit orders or
swaps. Both need the optional dependencies (``pip install "mktsim[rl]"``);
:class:`~mktsim.rl.core.StepCore`, the engine they share, needs none.
"""

from __future__ import annotations

from typing import Any

from mktsim.rl.core import DEFAULT_SCENARIOS, StepCore

__all__ = ["DEFAULT_SCENARIOS", "MarketEnv", "ParallelMarketEnv", "StepCore"]

_LAZY = {"MarketEnv": "mktsim.rl.env", "ParallelMarketEnv": "mktsim.rl.parallel"}


def __getattr__(name: str) -> Any:
    """The environments, imported when first asked for (so the engine imports without the
    optional dependencies, and a missing one is named)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'mktsim.rl' has no attribute {name!r}")
    import importlib

    try:
        return getattr(importlib.import_module(_LAZY[name]), name)
    except ModuleNotFoundError as exc:
        if exc.name in ("gymnasium", "pettingzoo"):
            raise ImportError(
                f'mktsim.rl.{name} needs {exc.name}: pip install "mktsim[rl]"'
            ) from exc
        raise
