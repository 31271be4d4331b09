"""Figures from frames (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure

__all__ = ["price_paths"]


def price_paths(
    prices: pd.DataFrame, equilibrium: Mapping[str, float] | None, title: str = ""
) -> Figure:
    """Each good's price estimate over time, with its equilibrium price as a dashed line."""
    fig = Figure(figsize=(8, 4.5))  # no pyplot: leaves a notebook's backend alone
    ax = fig.subplots()
    for i, (good, frame) in enumerate(prices.groupby("good", observed=True)):
        color = f"C{i % 10}"
        ax.plot(frame["time"], frame["estimate"], color=color, lw=1.2, label=str(good))
        if equilibrium and str(good) in equilibrium:
            ax.axhline(equilibrium[str(good)], color=color, ls="--", lw=0.8)
    ax.set_xlabel("simulation time")
    ax.set_ylabel("price (numeraire = 1)")
    ax.set_title(title + ("  (dashed: equilibrium)" if equilibrium else ""))
    if prices["good"].nunique() <= 12:
        ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig
