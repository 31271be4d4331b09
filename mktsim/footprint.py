"""How much memory a run will need, estimated before it starts.

A run holds two kinds of data: its *state* (holdings, endowments, preferences, demands: per-agent
arrays that must stay in memory) and its *recorded tables* (``trades``, ``holdings``, ...), which
grow with the horizon and can be streamed to Parquet parts instead (``simulate(...,
stream_to=...)``). :func:`estimate` sizes both from the scenario, the mechanism and its options and
the horizon, without running anything, so the command line can stream a large run to its folder
and refuse one whose state cannot fit in this machine's memory (:mod:`mktsim._streaming`).

Rows per table:

* ``holdings``: every agent and good at the start, at the end and after each economy shock.
* a mechanism that offers ``recorded_rows(scenario, horizon, options)`` (a classmethod returning
  table -> rows; the auctioneer does) is asked for the rest;
* otherwise agents are taken to act at the market's ``rate`` (one action per agent per unit of
  time by default, as the Poisson strategies do), each action recording one order row and two
  trade rows at most.

Bytes per row are those of the columns as the recorder holds them (8 per number, 4 per category
code, 8 per object pointer): what the in-memory tables cost, before building a DataFrame.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import frozen

from mktsim.errors import InvalidParameter
from mktsim.options import parse_options
from mktsim.recorder import SCHEMAS, Column

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "STATE_BYTES_PER_ENTRY",
    "Footprint",
    "estimate",
    "format_bytes",
    "parse_bytes",
    "physical_memory",
]

#: Recorded tables larger than this are streamed to the run folder by every command that runs a
#: simulation (``mktsim run``, ``run --counterfactual``, ``rerun``, ``sweep``; 1 GiB).
DEFAULT_MEMORY_BUDGET = 2**30

#: Bytes of state per agent and good (holdings, endowments, parameters, demands and the
#: settlement's working copies): the figure the shipped scenarios refuse economies with.
STATE_BYTES_PER_ENTRY = 96

#: Where a mechanism without its own estimate is taken to log each action (its order log).
_ACTION_TABLE = "orders"

_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


@frozen
class Footprint:
    """A run's estimated memory.

    Attributes:
        rows: table -> rows it will record.
        table_bytes: bytes of the recorded tables held in memory.
        state_bytes: bytes of the per-agent state (never streamed).
    """

    rows: Mapping[str, int]
    table_bytes: int
    state_bytes: int


def row_bytes(columns: Mapping[str, Column]) -> int:
    """Bytes one row of a table takes in the recorder's column chunks."""
    return sum(4 if c.dtype == "category" else 8 for c in columns.values())


def estimate(
    scenario: Any,
    mechanism: Any,
    options: Mapping[str, Any],
    horizon: float,
    record: str = "all",
    shocks: Sequence[Any] = (),
) -> Footprint:
    """Estimate a run's memory before it starts.

    Args:
        scenario: the :class:`~mktsim.scenario.Scenario`.
        mechanism: the mechanism class (resolved).
        options: mechanism options as given (the scenario's defaults for it merged in).
        horizon: simulation horizon.
        record: ``all`` or ``summary`` (which records no trades or holdings).
        shocks: the shocks planned (each economy shock adds a holdings snapshot).
    """
    if not (math.isfinite(horizon) and horizon > 0):
        raise InvalidParameter(f"until(={horizon}) must be > 0 and finite")
    n, g = int(scenario.n_agents), len(scenario.goods)
    opts = parse_options(mechanism.name, getattr(mechanism, "options", {}), options)
    economy_shocks = sum(1 for s in shocks if not getattr(s, "market", False))
    rows: dict[str, int] = {"holdings": (2 + economy_shocks) * n * g}
    own = getattr(mechanism, "recorded_rows", None)
    if callable(own):
        rows.update(own(scenario, horizon, opts))
    else:
        rate = opts.get("rate")
        rate = float(rate) if isinstance(rate, int | float) and rate > 0 else 1.0
        actions = math.ceil(rate * n * horizon)
        rows.update({"trades": 2 * actions, _ACTION_TABLE: actions})
    if record != "all":
        rows = {t: r for t, r in rows.items() if t not in ("trades", "holdings")}
    size = 0
    for table, count in rows.items():
        # a mechanism's own table is not known here: sized as a trades row
        size += count * row_bytes(SCHEMAS.get(table, SCHEMAS["trades"]))
    return Footprint(rows, size, n * g * STATE_BYTES_PER_ENTRY)


def physical_memory() -> int:
    """This machine's physical memory in bytes (64 GiB when the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 2**36


def parse_bytes(text: str | float, name: str = "memory_budget") -> int:
    """A size in bytes from ``1073741824``, ``512MB``, ``1.5GiB``, ``2g`` (powers of 1024).

    Raises:
        InvalidParameter: not a positive, finite size.
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        found = re.fullmatch(r"\s*([0-9.eE+]+)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", str(text))
        if found is None:
            raise InvalidParameter(
                f"{name}(={text!r}) must be a size such as 2GiB, 512MB or a number of bytes"
            )
        try:
            value = float(found.group(1))
        except ValueError:
            raise InvalidParameter(f"{name}(={text!r}) is not a number of bytes") from None
        unit = found.group(2).lower()
    size = value * _UNITS[unit]
    if not (math.isfinite(size) and size >= 1):
        raise InvalidParameter(f"{name}(={text!r}) must be at least one byte and finite")
    return int(size)


def format_bytes(size: float) -> str:
    """``1.5 GiB``, ``320 MiB``: a size for a message."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size:.0f} B"
