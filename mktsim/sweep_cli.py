"""The ``mktsim sweep`` subcommand: a parameter sweep from the command line.

``mktsim sweep SCENARIO --grid key=v1,v2 ... --seeds N --mechanisms a,b [--workers K]
[--scheduler ADDRESS] [--out DIR] [--memory-budget SIZE] [--stream]`` runs
:func:`mktsim.sweep.sweep` with the command line's memory budget (1 GiB unless given: runs whose
tables, times the runs executing at once, would exceed it stream); running the same command
again resumes it. The exit code is 0 when every run finished ok, 1 when some failed or are left.
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mktsim.errors import InvalidParameter, MktsimError

__all__ = ["parse_grid", "register"]


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _split(text: str, flag: str, item: str) -> list[Any]:
    """``2,3`` -> [2, 3]; ``adam,additive`` -> ['adam', 'additive']; ``[1,2],[3,4]`` -> two
    lists. Values are Python literals where they parse, text otherwise."""
    if not text.strip():
        raise InvalidParameter(f"{flag} {item!r} has no values")
    try:
        values = ast.literal_eval(f"[{text}]")
    except (ValueError, SyntaxError):
        values = [_literal(part.strip()) for part in text.split(",")]
    if not isinstance(values, list) or not values:
        raise InvalidParameter(f"{flag} {item!r} has no values")
    return values


def parse_grid(items: Sequence[str], flag: str = "--grid") -> dict[str, list[Any]]:
    """``key=v1,v2`` items -> key -> values. A key may carry a prefix (``scenario.seed``,
    ``option.method``, ``walrasian.method``)."""
    out: dict[str, list[Any]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.rpartition(".")[2].isidentifier():
            raise MktsimError(f"{flag} {item!r} is malformed: expected key=v1,v2,...")
        if key in out:
            raise InvalidParameter(f"{flag} {key!r} is given twice")
        out[key] = _split(text, flag, item)
    return out


def register(subparsers: Any) -> None:
    """Add the ``sweep`` subcommand to the ``mktsim`` parser."""
    p = subparsers.add_parser(
        "sweep",
        help="run a scenario over a grid of parameters, seeds and mechanisms",
        description="Run every combination of --grid values, seeds and mechanisms; write each "
        "run's tables to OUT/runs/<run_id>/ and one summary row per run to OUT/summaries/ "
        "(a Parquet dataset). Running the same command again skips finished runs and retries "
        "failed ones.",
    )
    p.add_argument("scenario", help="shipped scenario name (see `mktsim list`) or a .py path")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="values to sweep, repeatable; KEY is a build() parameter or a mechanism "
        "option (prefix scenario./option./<mechanism>. when both)",
    )
    p.add_argument(
        "--mechanisms",
        required=True,
        metavar="NAME[,NAME...]",
        help="mechanisms to run, comma-separated",
    )
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="run seeds 0..N-1 in every cell (default 1)",
    )
    seeds.add_argument("--seed-list", metavar="S1,S2,...", help="explicit run seeds")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fixed scenario parameter, repeatable",
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fixed mechanism option, repeatable",
    )
    p.add_argument("--until", type=float, help="simulation horizon (default: the scenario's)")
    p.add_argument(
        "--price-tolerance",
        type=float,
        default=1e-3,
        help="relative price error for time_to_tolerance (default 1e-3)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        metavar="K",
        help="local worker processes (default: the CPUs; 1: in this process)",
    )
    where.add_argument(
        "--scheduler", metavar="ADDRESS", help="Dask scheduler address (needs mktsim[dist])"
    )
    p.add_argument("--out", type=Path, help="sweep folder (default reports/sweeps/<scenario>)")
    p.add_argument(
        "--record",
        choices=("all", "summary", "none"),
        default="all",
        help="tables to write per run: all, summary (prices, excess demand, events) "
        "or none (the summary row only)",
    )
    p.add_argument("--figures", action="store_true", help="also write each run's prices.png")
    p.add_argument("--no-resume", action="store_true", help="re-run runs already finished")
    p.add_argument("--max-runs", type=int, metavar="N", help="run at most N runs now")
    p.add_argument("--dry-run", action="store_true", help="list the runs and stop")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    from mktsim._streaming import add_arguments

    # a sweep's budget is shared by the runs executing at once (see mktsim.sweep.sweep)
    add_arguments(p, "each run's folder (budget shared by the runs executing at once)")
    p.set_defaults(func=_sweep)


def _check_builds(scenario: str, runs: Sequence[Any]) -> None:
    """Build the first run's scenario before sweeping: a script that cannot build at all is a
    one-line error, not a sweep of failed runs."""
    from mktsim.scenario import build_scenario

    if runs:
        build_scenario(scenario, **runs[0].params)


def _sweep(args: argparse.Namespace) -> int:
    from mktsim._cli import parse_assignments
    from mktsim._streaming import budget
    from mktsim.sweep import plan, sweep

    limit = budget(args.memory_budget)  # a bad budget is refused before anything runs
    grid = parse_grid(args.grid)
    mechanisms = [m.strip() for m in args.mechanisms.split(",") if m.strip()]
    seeds: int | list[int] = args.seeds
    if args.seed_list is not None:
        seeds = _split(args.seed_list, "--seed-list", args.seed_list)
    common: dict[str, Any] = dict(
        mechanisms=mechanisms,
        params=parse_assignments(args.set, "--set"),
        options=parse_assignments(args.option, "--option"),
        until=args.until,
        price_tolerance=args.price_tolerance,
    )
    if args.dry_run:
        runs = plan(args.scenario, grid, seeds, **common)
        for spec in runs:
            params = " ".join(f"{k}={v!r}" for k, v in spec.params.items())
            options = " ".join(f"{k}={v!r}" for k, v in spec.options.items())
            print(
                f"{spec.run_id}  {spec.mechanism}  seed={spec.seed}  {params}  {options}".rstrip()
            )
        print(f"{len(runs)} runs")
        return 0
    out = args.out or Path("reports") / "sweeps" / Path(args.scenario).stem
    if out.exists() and not out.is_dir():
        raise InvalidParameter(f"--out {str(out)!r} is a file, not a folder")
    _check_builds(args.scenario, plan(args.scenario, grid, seeds, **common))
    frame = sweep(
        args.scenario,
        grid,
        seeds,
        out=out,
        workers=args.workers,
        scheduler=args.scheduler,
        record=args.record,
        figures=args.figures,
        resume=not args.no_resume,
        max_runs=args.max_runs,
        progress=not args.quiet,
        memory_budget=limit,
        stream=args.stream,
        **common,
    )
    planned = int(frame.attrs.get("planned", len(frame)))
    failed = frame[frame["status"] != "ok"]
    left = planned - len(frame)
    print(
        f"{planned} runs: {len(frame) - len(failed)} ok, {len(failed)} failed"
        + (f", {left} not yet run (run the same command again)" if left else "")
        + f"; summaries in {out / 'summaries'}"
    )
    for run_id, error in zip(failed["run_id"].head(10), failed["error"].head(10), strict=True):
        print(f"  failed {run_id}: {error}")
    if len(failed) > 10:
        print(f"  ... and {len(failed) - 10} more (status == 'error' in the summaries)")
    return 0 if failed.empty and not left else 1
