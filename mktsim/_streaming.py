"""Runs too large for memory: one decision, made before any run the command line starts.

Every command that runs a simulation (``mktsim run``, ``mktsim run --counterfactual``, ``mktsim
rerun``, ``mktsim sweep``) estimates the memory of what it will hold at once
(:func:`mktsim.footprint.estimate`) and asks :func:`decide` whether to stream, so that they all
stream for the same reasons and say so in the same words. A run whose per-agent state cannot fit
in this machine's memory is refused with the estimate. Recorded tables estimated above the
memory budget (``--memory-budget``, default :data:`~mktsim.footprint.DEFAULT_MEMORY_BUDGET`), or
any size with ``--stream``, are streamed as Parquet parts into a spool (:class:`Spool`: a hidden
folder beside the output, removed at the end); saving links the parts into the run folder (a
folder of parts per table, which ``pandas.read_parquet`` and :func:`mktsim.load` read as one
table). Streaming changes where rows live, never what they are.

What is read back afterwards is read part by part, never whole (:mod:`mktsim._streamed`).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attrs import frozen

from mktsim.errors import MktsimError
from mktsim.footprint import (
    DEFAULT_MEMORY_BUDGET,
    Footprint,
    estimate,
    format_bytes,
    parse_bytes,
    physical_memory,
)
from mktsim.registry import resolve

__all__ = [
    "Decision",
    "Spool",
    "add_arguments",
    "budget",
    "decide",
    "footprint",
]


def add_arguments(parser: Any, where: str = "the run folder") -> None:
    """The ``--memory-budget`` and ``--stream`` flags, alike for every command that runs."""
    parser.add_argument(
        "--memory-budget",
        default=None,
        metavar="SIZE",
        help=f"recorded tables estimated above this are streamed to {where} as Parquet "
        "parts while the run goes (e.g. 512MiB, 4GiB; default "
        f"{format_bytes(DEFAULT_MEMORY_BUDGET)})",
    )
    parser.add_argument(
        "--stream",
        action="store_true",
        help=f"stream the recorded tables to {where} whatever their estimated size",
    )


def budget(text: str | float | None) -> int:
    """The memory budget in bytes from ``--memory-budget`` (None: the default).

    Raises:
        InvalidParameter: not a positive, finite size (``-1``, ``nan``, ``abc``, ``1e400``).
    """
    return DEFAULT_MEMORY_BUDGET if text is None else parse_bytes(text, "--memory-budget")


def footprint(
    scenario: Any,
    mechanism: Any = None,
    seed: int = 0,
    until: float | None = None,
    *,
    shocks: Sequence[Any] | None = None,
    record: str = "all",
    price_tolerance: float | None = None,
    **options: Any,
) -> Footprint:
    """One run's estimated memory, given the arguments of :func:`mktsim.simulate` that will
    run it (the seed and the price tolerance change no size: taken so that the same arguments
    serve both).

    Raises:
        MktsimError: the run's per-agent state alone cannot fit in this machine's memory (no
            streaming helps: it is refused before anything is allocated).
    """
    cls = resolve(scenario.mechanism if mechanism is None else mechanism)
    merged = {**dict(scenario.mechanism_options.get(cls.name, {})), **options}
    horizon = scenario.until if until is None else float(until)
    planned = tuple(scenario.shocks if shocks is None else shocks)
    found = estimate(scenario, cls, merged, horizon, record, planned)
    have = physical_memory()
    if found.state_bytes > have:
        raise MktsimError(
            f"{scenario.name} with {scenario.n_agents} agents and {len(scenario.goods)} goods "
            f"needs about {format_bytes(found.state_bytes)} of memory for its state "
            f"alone; this machine has {format_bytes(have)}"
        )
    return found


@frozen
class Decision:
    """Whether the tables of what a command runs are streamed, and why.

    Attributes:
        table_bytes: recorded tables held in memory at once: the runs held together (a run and
            its counterfactual twin) summed, times the runs executing at once (a sweep's
            workers).
        limit: the memory budget in bytes.
        forced: ``--stream`` was given.
        concurrent: runs executing at once that the estimate counts.
    """

    table_bytes: int
    limit: int
    forced: bool = False
    concurrent: int = 1

    @property
    def on(self) -> bool:
        return self.forced or self.table_bytes > self.limit

    def line(self, what: str = "") -> str:
        """The one line on stderr saying that (and why) the tables stream; ``what`` names the
        run among several (a sweep's)."""
        per = f" ({self.concurrent} runs at once)" if self.concurrent > 1 else ""
        over = self.table_bytes > self.limit
        return (
            f"mktsim: {what}recorded tables estimated at {format_bytes(self.table_bytes)}{per}"
            + (f" (over the memory budget of {format_bytes(self.limit)})" if over else "")
            + ": streaming them to the run folder as Parquet parts"
        )


def decide(
    footprints: Sequence[Footprint], limit: int, force: bool = False, concurrent: int = 1
) -> Decision:
    """Stream when the tables held at once exceed the budget: those of ``footprints`` (runs kept
    in memory together) summed, times ``concurrent`` (runs executing at once, each holding its
    own); or always with ``force``."""
    held = sum(f.table_bytes for f in footprints) * max(1, concurrent)
    return Decision(held, limit, force, max(1, concurrent))


class Spool:
    """Where a streaming command's tables live until they are saved: a hidden folder beside the
    output (on the same file system, so saving links parts instead of copying them), removed at
    the end. :meth:`announce` prints the decision's line when the tables stream: a command
    calls it once its run has passed every check before it starts (``simulate``'s
    ``on_start``), so a refused run says only why.

    Args:
        decision: from :func:`decide`.
        parent: the folder the output goes into.
        what: names the run in the line (see :meth:`Decision.line`).
        say: print the line on stderr when streaming (a sweep's worker leaves that to the sweep).
    """

    def __init__(self, decision: Decision, parent: Path, what: str = "", say: bool = True) -> None:
        self.decision = decision
        self.parent = parent if str(parent) else Path(".")
        self.what, self.say = what, say
        self.folder: Path | None = None

    def __enter__(self) -> Spool:
        if self.decision.on:
            try:
                self.parent.mkdir(parents=True, exist_ok=True)
                self.folder = Path(tempfile.mkdtemp(prefix=".stream.", dir=self.parent))
            except OSError as exc:
                raise MktsimError(f"cannot stream into {str(self.parent)!r}: {exc}") from None
        return self

    def announce(self) -> None:
        """Print the decision's line on stderr, once, if the tables stream (and ``say``)."""
        if self.folder is not None and self.say:
            print(self.decision.line(self.what), file=sys.stderr)
            self.say = False

    def __exit__(self, *exc: object) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
