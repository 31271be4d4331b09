"""The ``mktsim`` command line: run scenarios and list what is available.

Every error a user can cause is reported as one line, ``mktsim: error: ...``, with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from mktsim._cli import parse_assignments
from mktsim.errors import MktsimError, UnknownName

__all__ = ["main", "parse_assignments"]

#: Modules adding subcommands: each has ``register(subparsers)`` adding a parser whose
#: ``func(args) -> int`` runs it.
_SUBCOMMANDS: tuple[str, ...] = ("mktsim.report_cli", "mktsim.sweep_cli")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (``mktsim: error: ...``, exit 2),
    like every other error, instead of a usage block."""

    def error(self, message: str) -> NoReturn:
        raise MktsimError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mktsim",
        description="Discrete-event market simulator with pluggable clearing mechanisms.",
    )
    from mktsim import __version__

    parser.add_argument("--version", action="version", version=f"mktsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="run a scenario and write its summary, frames and figures",
        description="Run a scenario (a shipped name or a script path) under a mechanism; write "
        "summary.json, every frame as Parquet and prices.png into --out.",
    )
    run.add_argument("scenario", help="shipped scenario name (see `mktsim list`) or a .py path")
    run.add_argument("--mechanism", help="mechanism name (default: the scenario's)")
    run.add_argument(
        "--method", help="step rule of the auctioneer (shorthand for --option method=)"
    )
    run.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="mechanism option, repeatable (e.g. mode=non_tatonnement)",
    )
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="scenario parameter passed to build(), repeatable (e.g. n_agents=500)",
    )
    run.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    run.add_argument("--until", type=float, help="simulation horizon (default: the scenario's)")
    run.add_argument(
        "--out",
        help="output folder (default reports/runs/<scenario>_<mechanism>_seed<seed>, with a "
        "hash of the configuration when --set, --option, --method, --shock or --until is given)",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an output folder that holds another run (never one holding other files)",
    )
    run.add_argument(
        "--shock",
        action="append",
        default=[],
        metavar="KIND:KEY=VALUE,...",
        help="a shock, repeatable, e.g. endowment:time=50,good=good1,factor=0.5 "
        "(kinds: endowment, latency, outage, clamp, ceiling, floor, liquidity, breaker)",
    )
    run.add_argument(
        "--counterfactual",
        action="store_true",
        help="also run without the shocks (and with --adversary populations truthful), "
        "same seed, and report the deviation",
    )
    run.add_argument(
        "--adversary",
        action="append",
        default=[],
        metavar="POPULATION",
        help="a population whose behaviour is adversarial: truthful in the baseline",
    )
    run.add_argument(
        "--no-report",
        action="store_true",
        help="skip the HTML/Markdown convergence report (report.html, report.md) and the "
        "prices figure (prices.png)",
    )
    run.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar (there is none anyway when stderr is not a terminal)",
    )
    from mktsim._streaming import add_arguments

    add_arguments(run)
    run.set_defaults(func=_run)

    again = sub.add_parser(
        "rerun",
        help="run a saved run's configuration again and compare the frames",
        description="Rebuild the run recorded in RUN_DIR/summary.json (scenario, parameters, "
        "mechanism and options, seed, horizon, shocks), save it to --out and check that every "
        "frame is identical to the saved one (exit 1 if any differs).",
    )
    again.add_argument("run_dir", help="a run folder written by `mktsim run`")
    again.add_argument("--out", help="where to write the rerun (default RUN_DIR-rerun)")
    again.add_argument("--overwrite", action="store_true", help="replace --out if it holds a run")
    add_arguments(again)
    again.set_defaults(func=_rerun)

    listing = sub.add_parser(
        "list",
        help="list mechanisms (with options) and scenarios",
        description="List the registered mechanisms with their options, and the shipped scenarios.",
    )
    listing.set_defaults(func=lambda args: _list())
    for module in _SUBCOMMANDS:
        importlib.import_module(module).register(sub)
    return parser


def _run(args: argparse.Namespace) -> int:
    import inspect

    from mktsim._streaming import budget
    from mktsim.run import simulate
    from mktsim.scenario import build_scenario, load_module
    from mktsim.shocks import parse_shock

    limit = budget(args.memory_budget)  # a bad budget is refused before anything is built

    params = parse_assignments(args.set, "--set")
    options = parse_assignments(args.option, "--option")
    if args.method is not None:
        options["method"] = args.method
    module = load_module(args.scenario)
    if "seed" in inspect.signature(module.build).parameters and "seed" not in params:
        params["seed"] = args.seed
    scenario = build_scenario(args.scenario, **params)
    shocks = [parse_shock(text) for text in args.shock] or None
    populations = [p.name for p in scenario.populations]
    for name in args.adversary:
        if name not in populations:
            raise UnknownName("population of --adversary", name, populations)
    if args.adversary and not args.counterfactual:
        raise MktsimError(
            "--adversary names the baseline's honest populations: add --counterfactual"
        )
    if args.counterfactual and not (shocks or args.adversary or scenario.shocks):
        raise MktsimError("--counterfactual needs a --shock or an --adversary: nothing to compare")
    if args.counterfactual:
        return _counterfactual(args, scenario, shocks, options, limit)
    from mktsim._streaming import Spool, decide, footprint

    given = _out(args.out)
    size = footprint(scenario, args.mechanism, until=args.until, shocks=shocks, **options)
    decision = decide([size], limit, args.stream)
    with Spool(decision, _parent(given)) as spool:  # streamed tables live there until saved
        with _ProgressBar(args.quiet) as progress:
            run = simulate(
                scenario,
                mechanism=args.mechanism,
                seed=args.seed,
                until=args.until,
                shocks=shocks,
                progress=progress,
                on_start=spool.announce,
                stream_to=spool.folder,
                **options,
            )
        return _written(args, scenario, run, given)


def _parent(out: Path | None) -> Path:
    """The folder a command's output goes into (``reports/runs`` by default): its spool goes
    beside the output, on the same file system."""
    return (out.parent if out is not None else Path("reports") / "runs") or Path(".")


def _report(out: Path) -> None:
    """Write the report of a saved run or counterfactual, reading streamed tables part by
    part."""
    from mktsim._streamed import report_input
    from mktsim.report import write_report

    write_report(report_input(out), out)


def _written(args: argparse.Namespace, scenario: Any, run: Any, given: Path | None) -> int:
    """Save a finished run, write its report and print what it came to."""
    from mktsim.run_folder import default_folder

    s = run.summary
    customised = bool(args.set or args.option or args.method or args.shock or args.until)
    out = given or default_folder(s["config"], scenario.name, customised)
    # Without a report nothing is drawn (no prices.png either), so no plotting library loads.
    run.save(out, figures=not args.no_report, overwrite=args.overwrite)
    if not args.no_report:
        _report(out)
    print(
        f"{scenario.name} under {s['mechanism']}"
        + (f" ({s['method']})" if s.get("method") else "")
        + (
            ": went quiet (no agent found a trade worth making)"
            if s.get("stopped") == "quiet"
            else f": converged={s['converged']}"
        )
        + f" rounds={s['rounds']} sim_time={s['sim_time']:g}"
    )
    for line in _outcome_lines(run, s):
        print("  " + line)
    if s.get("no_trade"):
        print(f"  nothing traded: {s['no_trade']}")
    if s.get("no_prices"):
        print(f"  {s['no_prices']}")
    controls = s.get("price_controls") or {}
    for good, c in controls.get("goods", {}).items():
        side = "shortage" if (c["excess_demand"] or 0) >= 0 else "surplus"
        amount = c[side]
        print(
            f"  {c['kind']} on {good} at {c['price']:g}: {side} "
            + (f"{amount:.6g}" if amount is not None else "unknown")
            + "; deadweight loss "
            + (f"{loss:.6g}" if (loss := controls.get("deadweight_loss")) is not None else "n/a")
        )
    print(f"  written to {out}" + ("" if args.no_report else f" (report: {out / 'report.html'})"))
    return 0


class _ProgressBar:
    """A tqdm bar of simulation time on a terminal's stderr; ``None`` as the callback (and
    nothing drawn) when quiet or when stderr is not a terminal."""

    def __init__(self, quiet: bool) -> None:
        self.bar: Any = None
        self.quiet = quiet

    def __enter__(self) -> Any:
        if self.quiet or not sys.stderr.isatty():
            return None
        from tqdm import tqdm

        def update(now: float, horizon: float) -> None:
            if self.bar is None:
                self.bar = tqdm(
                    total=horizon,
                    desc="simulating",
                    leave=False,
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| t = {n:.4g} of {total:.4g} "
                    "[{elapsed}<{remaining}]",
                )
            self.bar.update(min(now, horizon) - self.bar.n)

        return update

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _outcome_lines(run: Any, s: dict[str, Any]) -> list[str]:
    """What the run came to, measured as its report measures it: against the reference in
    force (after the last shock that changed the economy), each shock up to the next."""
    from mktsim.report import RunData, convergence_table, shocks_table

    tables = {name: run.frame(name) for name in ("prices", "excess_demand", "events")}
    data = RunData.from_frames(s, tables, source="run")
    row = convergence_table(data).iloc[0]
    err, ttt = row["price_error"], row["time_to_tolerance"]
    shocked = bool(s.get("shocks"))
    against = "the equilibrium in force" if shocked else "equilibrium"
    lines = [
        f"price error vs {against}: {err:.3g}"
        if s.get("equilibrium_prices") is not None and err == err
        else "no reference equilibrium"
    ]
    lines.append(
        f"time to tolerance {s['price_tolerance']:g}: {None if ttt != ttt else float(ttt)}; "
        f"cycle detected: {bool(row['cycle_detected'])}; "
        f"conservation ok: {s['conservation_ok']}"
    )
    for shock in shocks_table(data).itertuples(index=False):
        if shock.peak_price_error != shock.peak_price_error:
            lines.append(f"{shock.kind} shock at {shock.time:g}: no reference to recover to")
        elif shock.recovery_time == shock.recovery_time:
            lines.append(
                f"{shock.kind} shock at {shock.time:g}: back within tolerance of the "
                f"{'new equilibrium' if shock.reference == 'new equilibrium' else 'equilibrium'} "
                f"after {shock.recovery_time:g}"
            )
        else:
            lines.append(
                f"{shock.kind} shock at {shock.time:g}: not back within tolerance by "
                f"t = {shock.until:g} (price error {shock.end_price_error:.3g})"
            )
    return lines


def _out(text: str | None) -> Path | None:
    """The --out folder as given (None when not given; empty text is refused)."""
    if text is None:
        return None
    if not text.strip():
        raise MktsimError("--out must name a folder")
    return Path(text)


def _rerun(args: argparse.Namespace) -> int:
    from mktsim._streamed import same_table
    from mktsim._streaming import Spool, budget, decide, footprint
    from mktsim.run import load, rerun_arguments, simulate

    limit = budget(args.memory_budget)
    saved = load(args.run_dir)
    out = _out(args.out) or Path(f"{str(args.run_dir).rstrip('/')}-rerun")
    scenario, arguments = rerun_arguments(args.run_dir)
    decision = decide([footprint(scenario, **arguments)], limit, args.stream)
    with Spool(decision, _parent(out)) as spool:
        run = simulate(scenario, stream_to=spool.folder, on_start=spool.announce, **arguments)
        run.save(out, overwrite=args.overwrite)
    again = load(out)  # what was written, compared with what was saved, part by part
    different = []
    for name in saved.tables:
        try:
            same = name in again.tables and same_table(saved.parts(name), again.parts(name))
        except MktsimError:  # a part that cannot be read
            same = False
        if not same:
            different.append(name)
    if different:
        print(
            f"mktsim: rerun differs in {', '.join(different)} (written to {out})", file=sys.stderr
        )
        return 1
    print(f"rerun of {args.run_dir}: all {len(saved.tables)} frames identical (written to {out})")
    return 0


def _counterfactual(
    args: argparse.Namespace, scenario: Any, shocks: Any, options: dict[str, Any], limit: int
) -> int:
    from mktsim._streaming import Spool, decide, footprint
    from mktsim.counterfactual import counterfactual

    given = _out(args.out)
    # both runs are held until they are compared and saved: their tables count together
    sizes = [
        footprint(scenario, args.mechanism, until=args.until, shocks=(), **options),
        footprint(scenario, args.mechanism, until=args.until, shocks=shocks, **options),
    ]
    with Spool(decide(sizes, limit, args.stream), _parent(given)) as spool:
        pair = counterfactual(
            scenario,
            shocks=shocks,
            honest=args.adversary,
            mechanism=args.mechanism,
            seed=args.seed,
            until=args.until,
            stream_to=spool.folder,
            on_start=spool.announce,
            **options,
        )
        from mktsim.run_folder import slug

        s = pair.summary
        out = given or Path("reports") / "runs" / (
            f"{slug(scenario.name)}_{slug(s['mechanism'])}_counterfactual"
        )
        pair.save(out, overwrite=args.overwrite)
    if not args.no_report:
        _report(out)
    print(
        f"{scenario.name} under {s['mechanism']}: counterfactual of {len(s['shocks'])} shock(s), "
        f"{len(s['adversaries'])} adversary population(s)"
    )
    print(f"  peak price deviation from the baseline: {s['peak_price_deviation']}")
    for row in s["recovery"]:
        if "recovery_time" in row:
            print(f"  {row['kind']} at {row['time']:g}: recovery time {row['recovery_time']}")
    for pop, change in s["welfare_change"].items():
        print(f"  {pop}: welfare change (money metric) {change['money_metric_change']:+.6g}")
    for pop, gain in s["adversary_gain"].items():
        print(f"  adversary {pop}: gain {gain:+.6g}; harm to others {s['harm_to_others']:+.6g}")
    print(f"  written to {out}")
    return 0


def _strategies_for(mechanism: Any) -> list[str]:
    """Registered strategies whose orders a mechanism accepts."""
    from mktsim import strategies

    accepts = set(getattr(mechanism, "accepts", ()))
    return [n for n in strategies.available() if set(strategies.resolve(n).emits) & accepts]


def _list() -> int:
    from mktsim.orders import order_name
    from mktsim.registry import available, resolve
    from mktsim.scenario import list_scenarios

    print("mechanisms:")
    for name in sorted(available()):
        cls = resolve(name)
        print(f"  {name}: {cls.description}")
        for opt, spec in cls.options.items():
            print(f"      {opt} (default {spec.default!r}): {spec.doc}")
        behaviours = ", ".join(getattr(cls, "behaviours", None) or _strategies_for(cls))
        print(f"      behaviours: {behaviours}")
        if getattr(cls, "accepts", None):
            takes = ", ".join(sorted(order_name(k) for k in cls.accepts))
            print(f"      accepts: {takes} orders")
    print("scenarios:")
    for name, doc in sorted(list_scenarios().items()):
        print(f"  {name}: {doc}")
        params = _scenario_params(name)
        if params:
            print(f"      parameters (--set): {params}")
    return 0


def _scenario_params(name: str) -> str:
    """The parameters of a shipped scenario's ``build`` with their defaults."""
    import inspect

    from mktsim.scenario import load_module

    shown = []
    for param in inspect.signature(load_module(name).build).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = "" if param.default is param.empty else f"={param.default!r}"
        shown.append(param.name + default)
    return ", ".join(shown)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mktsim`` console script."""
    try:
        args = _parser().parse_args(argv)
        return int(args.func(args))
    except MktsimError as exc:
        print(f"mktsim: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
