"""Helpers shared by the shipped scenarios: reproducible random economies."""

from __future__ import annotations

import math
import os

import numpy as np

from mktsim.errors import InvalidParameter
from mktsim.random import Streams


def check_count(name: str, value: int, low: int, high: int | None = None) -> int:
    """An integer parameter within bounds, or a clear error."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidParameter(f"{name}(={value!r}) must be an integer")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise InvalidParameter(f"{name}(={value}) must be {bound}")
    return int(value)


#: Bytes a run holds per agent and good (holdings, endowments, parameters, demands and the
#: recorded tables' working copies): a measured upper bound, used to refuse economies that
#: cannot fit in memory before anything is allocated.
BYTES_PER_ENTRY = 96


def check_size(n_agents: int, n_goods: int) -> None:
    """Refuse an economy whose per-agent arrays would not fit in this machine's memory, with
    the estimate (before anything is allocated: such a run would otherwise hang or crash)."""
    need = n_agents * n_goods * BYTES_PER_ENTRY
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        have = 2**36
    if need > have:
        raise InvalidParameter(
            f"n_agents(={n_agents}) x n_goods(={n_goods}) needs about {need / 2**30:.3g} GiB "
            f"of memory; this machine has {have / 2**30:.3g} GiB"
        )


def check_number(name: str, value: float, low: float = 0.0, strict: bool = True) -> float:
    """A finite number above ``low`` (or at least ``low`` when not ``strict``), or a clear
    error."""
    v = float(value)
    if not math.isfinite(v) or v < low or (strict and v == low):
        bound = f"> {low:g}" if strict else f">= {low:g}"
        raise InvalidParameter(f"{name}(={value!r}) must be {bound} and finite")
    return v


def goods_names(n_goods: int) -> list[str]:
    """``money`` (the numeraire) followed by ``good1 .. good{n-1}``."""
    return ["money", *[f"good{j}" for j in range(1, n_goods)]]


def dirichlet_rows(streams: Streams, stream: str, n: int, k: int) -> np.ndarray:
    """Uniform points on the simplex, one per agent, each a function of (seed, stream, agent)."""
    u = streams.uniforms(stream, np.arange(n), k)
    e = -np.log1p(-u)  # exponentials: normalised, they are Dirichlet(1, ..., 1)
    return e / e.sum(axis=1, keepdims=True)


def uniform_rows(
    streams: Streams, stream: str, n: int, k: int, low: float, high: float
) -> np.ndarray:
    """Uniform draws on [low, high), one row per agent, per-agent reproducible."""
    return low + (high - low) * streams.uniforms(stream, np.arange(n), k)
