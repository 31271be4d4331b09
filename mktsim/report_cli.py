"""The ``mktsim report`` subcommand: write a convergence report of one or several run folders."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register"]

#: Where a comparison of several runs goes when ``--out`` is not given.
DEFAULT_COMPARISON_DIR = Path("reports") / "compare"


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand to an ``argparse`` subparsers object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "report",
        help="write an HTML + Markdown convergence report of run folders",
        description="Write report.html (self-contained: figures embedded, no network resources) "
        "and report.md with PNG figures for one run folder, or a side-by-side comparison of "
        "several. A single run's report goes into its own folder unless --out is given; a "
        f"comparison goes into --out (default {DEFAULT_COMPARISON_DIR}).",
    )
    parser.add_argument(
        "runs",
        nargs="+",
        type=Path,
        metavar="RUN_DIR",
        help="run folder written by `mktsim run` (repeat to compare)",
    )
    parser.add_argument("--out", type=Path, help="output folder")
    parser.add_argument("--title", help="page title")
    parser.add_argument(
        "--no-markdown",
        action="store_true",
        help="write only report.html (no report.md and PNG files)",
    )
    parser.set_defaults(func=_report)
    return parser


def _report(args: argparse.Namespace) -> int:
    from mktsim._streamed import report_input
    from mktsim.report import write_report

    out = args.out
    if out is None and len(args.runs) > 1:
        out = DEFAULT_COMPARISON_DIR
    # streamed tables (folders of parts) are read part by part, as `mktsim run` reads them
    runs = [report_input(path, counterfactual=len(args.runs) == 1) for path in args.runs]
    paths = write_report(runs, out, title=args.title, markdown=not args.no_markdown)
    print(f"report written to {paths.html}")
    if paths.markdown is not None:
        print(f"markdown twin: {paths.markdown} ({len(paths.figures)} figures)")
    return 0
