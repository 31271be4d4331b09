"""Parameter sweeps: one scenario over a grid of parameters, seeds and mechanisms.

A sweep expands into runs (:func:`plan`). Each run is a :class:`RunSpec` whose id is a hash of
everything that determines its result, so a run has the same id in every sweep, process and
machine, and its seed is a value of the seed list, never a function of worker order: results do not
depend on how many workers ran them. Runs execute in this process (``workers=1``), on a local
process pool, or on a Dask distributed cluster (``scheduler=``). Workers only compute and
serialise; the process that started the sweep writes each run as it arrives, so a cluster needs
no shared file system:

* ``out/runs/<run_id>/``: ``task.json`` (the spec), ``summary.json`` and one Parquet file per
  table as :meth:`mktsim.run.Run.save` lays them out (``prices.png`` only with
  ``figures=True``), or ``error.txt`` (the traceback) for a failed run; a run that streamed
  (``memory_budget``, ``stream``) holds a folder of Parquet parts per table instead;
* ``out/summaries/<run_id>.parquet``: the run's summary row, written last and atomically. The
  folder is a Parquet dataset, ``pd.read_parquet(out / "summaries")``; at the end of every sweep
  all its files are brought to one schema so that plain read sees every column.

A failed run is a row with ``status="error"`` and the error text; the sweep goes on. Calling the
same sweep again skips the runs whose row says ``ok`` and retries the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from attrs import frozen

from mktsim.errors import InvalidParameter, MktsimError, UnknownName
from mktsim.footprint import DEFAULT_MEMORY_BUDGET, parse_bytes
from mktsim.sweep_pool import dask_client, run_on_dask, run_on_pool
from mktsim.sweep_progress import Progress

__all__ = ["RECORD_MODES", "RunSpec", "load_summaries", "plan", "sweep"]

#: ``all`` tables, ``summary`` (prices, excess demand, events) or ``none`` (summary rows only).
RECORD_MODES = ("all", "summary", "none")

#: Columns every summary row has, first and in this order.
_ID_COLUMNS = ("run_id", "status", "error", "scenario", "mechanism", "seed")
#: Types of the columns every row has (so a column that happens to be empty keeps its type).
_FIXED_TYPES = {
    "run_id": pa.string(),
    "status": pa.string(),
    "error": pa.string(),
    "scenario": pa.string(),
    "mechanism": pa.string(),
    "seed": pa.int64(),
    "until": pa.float64(),
    "price_tolerance": pa.float64(),
    "wall_seconds": pa.float64(),
}
#: Summary entries holding a dict become one column per key, named with these prefixes.
_NESTED_PREFIX = {"final_prices": "final_price_", "equilibrium_prices": "equilibrium_price_"}
#: Summary entries the row already holds under its own name (or that vary between identical runs).
_SUMMARY_SKIP = frozenset({"params", "seed", "mechanism", "wall_seconds", "price_tolerance"})

#: A run's summary row, its files (path in the run's folder -> bytes) and the line saying that
#: its tables streamed (None when they did not).
Outcome = tuple[dict[str, Any], dict[str, bytes], str | None]
#: Modules a pool's fork server imports once for all its workers.
_PRELOAD = ["mktsim.sweep", "mktsim.mechanisms.walrasian"]


@frozen(eq=True, hash=False)
class RunSpec:
    """One run of a sweep: everything that determines its result.

    Attributes:
        run_id: 16 hex digits, a hash of all the other fields.
        scenario: a shipped scenario name, or the absolute path of a scenario script.
        params: keyword arguments of the scenario's ``build`` (including ``seed`` = the run seed
            when ``build`` takes a seed and the sweep does not set it).
        mechanism: a registered mechanism name or ``module:Class``.
        options: mechanism options.
        seed: the run seed.
        until: simulation horizon (None: the scenario's).
        price_tolerance: relative price error for ``time_to_tolerance``.
    """

    run_id: str
    scenario: str
    params: Mapping[str, Any]
    mechanism: str
    options: Mapping[str, Any]
    seed: int
    until: float | None
    price_tolerance: float

    def identity(self) -> dict[str, Any]:
        """The fields the run id is a hash of."""
        return {
            "scenario": self.scenario,
            "params": dict(self.params),
            "mechanism": self.mechanism,
            "options": dict(self.options),
            "seed": self.seed,
            "until": self.until,
            "price_tolerance": self.price_tolerance,
        }


# --- planning ---------------------------------------------------------------------------------


def plan(
    scenario: str | Path,
    grid: Mapping[str, Any] | None = None,
    seeds: int | Sequence[int] = 1,
    *,
    mechanisms: str | Sequence[str],
    params: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    until: float | None = None,
    price_tolerance: float = 1e-3,
) -> list[RunSpec]:
    """The runs of a sweep, in order: mechanisms, then scenario parameters, then mechanism
    options (each grid in key order, the last key varying fastest), then seeds.

    Args:
        scenario: a shipped scenario name or a script path.
        grid: key -> list of values (a list or tuple is a set of values; anything else is one
            value). A key names a parameter of the scenario's ``build`` or an option of the
            mechanisms; prefix it to say which when the name is both: ``scenario.seed``,
            ``option.method`` (every mechanism that has the option), or ``walrasian.method``
            (that mechanism only). An option applies to the mechanisms that declare it.
        seeds: a count ``n`` (seeds ``0 .. n-1``: every cell of the grid sees the same
            economies, so comparisons across the grid are paired) or a list of seeds >= 0. When
            ``build`` takes a ``seed`` the sweep does not set, it gets the run seed (as in
            ``mktsim run``).
        mechanisms: one name or several.
        params: fixed scenario parameters (one value each).
        options: fixed mechanism options (one value each), for the mechanisms that declare them.
        until: simulation horizon (default: the scenario's).
        price_tolerance: relative price error for ``time_to_tolerance``.

    Raises:
        UnknownName: a grid key that is neither a build parameter nor a mechanism option, an
            unknown mechanism or scenario, an option value not among its choices.
        InvalidParameter: an ambiguous key, an empty list of values, bad seeds or an option value
            its mechanism rejects.
    """
    from mktsim.options import parse_options
    from mktsim.registry import resolve
    from mktsim.scenario import load_module

    module = load_module(scenario)
    ref = _scenario_ref(str(scenario), module.__name__)
    signature = inspect.signature(module.build)
    mechs = _mechanism_list(mechanisms)
    specs = {m: resolve(m).options for m in mechs}
    seed_list = _seed_list(seeds)
    if until is not None:
        until = float(until)
        if not np.isfinite(until) or until <= 0:
            raise InvalidParameter(f"until(={until}) must be > 0 and finite")
    tol = float(price_tolerance)
    if not np.isfinite(tol) or tol <= 0:
        raise InvalidParameter(f"price_tolerance(={price_tolerance}) must be > 0 and finite")

    scen_grid, opt_grid = _route(grid or {}, params or {}, options or {}, signature, specs)
    for m, keys in opt_grid.items():
        for key, values in keys.items():
            for value in values:
                parse_options(f"mechanism {m}", specs[m], {key: value})
    inject_seed = "seed" in signature.parameters and "seed" not in scen_grid

    runs: dict[str, RunSpec] = {}
    for m in mechs:
        for point in _product(scen_grid):
            for opts in _product(opt_grid[m]):
                for seed in seed_list:
                    build = {**point, "seed": seed} if inject_seed else dict(point)
                    spec = _make_spec(ref, build, m, opts, seed, until, tol)
                    runs.setdefault(spec.run_id, spec)  # a value listed twice is one run
    return list(runs.values())


def _scenario_ref(text: str, module_name: str) -> str:
    """How a sweep names a scenario: a shipped name as is, a script by its absolute path."""
    return text if module_name == f"mktsim.scenarios.{text}" else str(Path(text).resolve())


def _mechanism_list(mechanisms: str | Sequence[str]) -> list[str]:
    names = [mechanisms] if isinstance(mechanisms, str) else list(mechanisms)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise InvalidParameter(f"mechanisms(={mechanisms!r}) must be one or more names")
    return list(dict.fromkeys(names))


def _seed_list(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, bool):
        raise InvalidParameter(f"seeds(={seeds!r}) must be a count >= 1 or a list of seeds")
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise InvalidParameter(f"seeds(={seeds}) must be a count >= 1 or a list of seeds")
        return list(range(int(seeds)))
    values = list(seeds)
    bad = [
        s for s in values if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0
    ]
    if not values or bad:
        raise InvalidParameter(f"seeds(={seeds!r}) must be a count >= 1 or integers >= 0")
    return list(dict.fromkeys(int(s) for s in values))


def _values(key: str, value: Any) -> list[Any]:
    items = list(value) if isinstance(value, (list, tuple, range, np.ndarray)) else [value]
    if not items:
        raise InvalidParameter(f"grid {key!r} has no values")
    return [v.item() if isinstance(v, np.generic) else v for v in items]


def _route(
    grid: Mapping[str, Any],
    params: Mapping[str, Any],
    options: Mapping[str, Any],
    signature: inspect.Signature,
    specs: Mapping[str, Mapping[str, Any]],
) -> tuple[dict[str, list[Any]], dict[str, dict[str, list[Any]]]]:
    """Send each key to the scenario or to the mechanisms declaring it (see :func:`plan`)."""
    kinds = {p.kind for p in signature.parameters.values()}
    takes = [
        n
        for n, p in signature.parameters.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    open_build = inspect.Parameter.VAR_KEYWORD in kinds
    scen: dict[str, list[Any]] = {}
    opts: dict[str, dict[str, list[Any]]] = {m: {} for m in specs}
    every_option = sorted({k for s in specs.values() for k in s})

    def to_scenario(label: str, key: str, values: list[Any]) -> None:
        if key not in takes and not open_build:
            raise UnknownName("parameter of the scenario's build()", key, takes)
        if key in scen:
            raise InvalidParameter(f"scenario parameter {key!r} is given twice ({label})")
        scen[key] = values

    def to_mechanisms(label: str, key: str, values: list[Any], only: str | None) -> None:
        targets = [m for m in specs if key in specs[m] and only in (None, m)]
        if not targets:
            valid = list(specs[only]) if only else every_option
            raise UnknownName(f"option of {only or ' or '.join(specs)}", key, valid)
        for m in targets:
            if key in opts[m]:
                raise InvalidParameter(f"option {key!r} of {m} is given twice ({label})")
            opts[m][key] = values

    for key, value in params.items():
        to_scenario(f"params[{key!r}]", key, [value])
    for key, value in options.items():
        to_mechanisms(f"options[{key!r}]", key, [value], None)
    for label, value in grid.items():
        prefix, _, key = label.rpartition(".")
        values = _values(label, value)
        if prefix == "scenario":
            to_scenario(label, key, values)
        elif prefix == "option":
            to_mechanisms(label, key, values, None)
        elif prefix in specs:
            to_mechanisms(label, key, values, prefix)
        elif prefix:
            raise UnknownName("grid key prefix", prefix, ["scenario", "option", *specs])
        else:
            in_build = key in takes
            in_options = key in every_option
            if in_build and in_options:
                raise InvalidParameter(
                    f"grid key {key!r} is both a scenario parameter and a mechanism option: "
                    f"write scenario.{key} or option.{key}"
                )
            if in_options:
                to_mechanisms(label, key, values, None)
            elif in_build or open_build:
                to_scenario(label, key, values)
            else:
                raise UnknownName(
                    "grid key (scenario parameter or mechanism option)",
                    key,
                    [*takes, *every_option],
                )
    return scen, opts


def _product(grid: Mapping[str, list[Any]]) -> Iterator[dict[str, Any]]:
    keys = list(grid)
    for combo in itertools.product(*(grid[k] for k in keys)):
        yield dict(zip(keys, combo, strict=True))


def _make_spec(
    ref: str,
    params: dict[str, Any],
    mechanism: str,
    options: dict[str, Any],
    seed: int,
    until: float | None,
    tol: float,
) -> RunSpec:
    spec = RunSpec("", ref, params, mechanism, options, seed, until, tol)
    try:
        text = json.dumps(
            spec.identity(), sort_keys=True, separators=(",", ":"), default=_identity_default
        )
    except (TypeError, ValueError) as exc:
        raise InvalidParameter(
            f"a sweep value cannot be named reproducibly ({exc}): use numbers, text, booleans, "
            "None, lists, dicts with text keys, or importable functions"
        ) from None
    run_id = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return RunSpec(run_id, ref, params, mechanism, options, seed, until, tol)


def _identity_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if callable(value) and hasattr(value, "__qualname__"):
        if "<" in value.__qualname__:  # lambdas and closures have no stable name
            raise TypeError(f"{value!r} has no importable name")
        return f"{value.__module__}:{value.__qualname__}"
    raise TypeError(f"{type(value).__name__} value {value!r}")


# --- one run (executed by a worker) -----------------------------------------------------------


@frozen
class _Budget:
    """What a worker needs to decide whether a run streams (:func:`mktsim._streaming.decide`):
    the memory budget in bytes, ``--stream``, and the runs executing at
    once, each holding its own tables."""

    limit: int
    force: bool
    concurrent: int


def _execute(spec: RunSpec, record: str, figures: bool, budget: _Budget | None = None) -> Outcome:
    """Build and simulate one run; return its summary row, its files as bytes and the line
    saying that it streamed.

    Top-level (so process pools and Dask workers can import it) and it never raises for a
    failing run: the failure is the outcome. A run streams when its estimated tables times the
    runs executing at once exceed the budget: into a spool in the worker's temporary folder,
    whose Parquet parts then travel as they are (compressed bytes, never whole frames).
    """
    from mktsim._streaming import Decision, Spool, decide, footprint
    from mktsim.run import simulate
    from mktsim.scenario import build_scenario

    started = time.perf_counter()
    files: dict[str, bytes] = {}
    note = None
    try:
        scenario = build_scenario(spec.scenario, **spec.params)
        arguments: dict[str, Any] = {
            "seed": spec.seed,
            "until": spec.until,
            "price_tolerance": spec.price_tolerance,
            "record": "all" if record == "all" else "summary",
            **spec.options,
        }
        decision = Decision(table_bytes=0, limit=1)  # without a budget nothing streams
        if budget is not None:
            size = footprint(scenario, spec.mechanism, **arguments)
            decision = decide([size], budget.limit, budget.force, budget.concurrent)
        with Spool(decision, Path(tempfile.gettempdir()), say=False) as spool:
            run = simulate(scenario, spec.mechanism, stream_to=spool.folder, **arguments)
            if record != "none":
                saved = (
                    run.files(figures)
                    if spool.folder is None
                    else _saved(run, spool.folder, figures)
                )
                files = {"task.json": _task_json(spec), **saved}
        note = decision.line(f"run {spec.run_id}: ") if decision.on else None
        row = _row(spec, "ok", None, run.summary)
    except Exception as exc:  # any failure of a user's scenario or option is data for the sweep
        files = {"task.json": _task_json(spec), "error.txt": traceback.format_exc().encode()}
        row = _row(spec, "error", f"{type(exc).__name__}: {exc}", None)
    row["wall_seconds"] = time.perf_counter() - started
    return row, files, note


def _saved(run: Any, spool: Path, figures: bool) -> dict[str, bytes]:
    """A streamed run's folder as :meth:`mktsim.run.Run.save` writes it (a folder of parts per
    streamed table, linked from the spool), as relative path -> bytes."""
    folder = run.save(spool / "saved", figures=figures)
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _task_json(spec: RunSpec) -> bytes:
    body = {"run_id": spec.run_id, **spec.identity()}
    return json.dumps(body, indent=2, default=_json_default).encode("utf-8")


def _json_default(value: Any) -> Any:
    try:
        return _identity_default(value)
    except TypeError:
        return str(value)


def _scalar(value: Any) -> Any:
    """A value fit for one Parquet cell: scalars as they are, anything else as JSON text."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, sort_keys=True, default=_json_default)


def _row(
    spec: RunSpec, status: str, error: str | None, summary: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The summary row of a run: identity, ``param_*``, ``option_*``, then the run summary with
    nested dicts flattened (``final_price_<good>``, ``equilibrium_price_<good>``)."""
    row: dict[str, Any] = {
        "run_id": spec.run_id,
        "status": status,
        "error": error,
        "scenario": spec.scenario,
        "mechanism": spec.mechanism,
        "seed": spec.seed,
    }
    for key, value in spec.params.items():
        row[f"param_{key}"] = _scalar(value)
    for key, value in (summary or {}).get("params", {}).items():
        row.setdefault(f"param_{key}", _scalar(value))
    for key, value in spec.options.items():
        row[f"option_{key}"] = _scalar(value)
    row["until"] = spec.until
    row["price_tolerance"] = spec.price_tolerance
    for key, value in (summary or {}).items():
        if key in _SUMMARY_SKIP:
            continue
        if key == "scenario":
            row["scenario_name"] = _scalar(value)
        elif isinstance(value, Mapping):
            prefix = _NESTED_PREFIX.get(key, f"{key}_")
            for sub, v in value.items():
                row[f"{prefix}{sub}"] = _scalar(v)
        else:
            row[key if key not in row else f"summary_{key}"] = _scalar(value)
    return row


def _failure(spec: RunSpec, exc: BaseException) -> Outcome:
    """The outcome of a run whose worker failed outside the run (died, could not unpickle)."""
    row = _row(spec, "error", f"{type(exc).__name__}: {exc}", None)
    row["wall_seconds"] = None
    return row, {"task.json": _task_json(spec), "error.txt": repr(exc).encode()}, None


# --- the sweep --------------------------------------------------------------------------------


def sweep(
    scenario: str | Path,
    grid: Mapping[str, Any] | None = None,
    seeds: int | Sequence[int] = 1,
    *,
    mechanisms: str | Sequence[str],
    out: str | Path,
    params: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    until: float | None = None,
    price_tolerance: float = 1e-3,
    workers: int | None = None,
    scheduler: Any = None,
    record: str = "all",
    figures: bool = False,
    resume: bool = True,
    max_runs: int | None = None,
    progress: bool = True,
    memory_budget: int | str | None = None,
    stream: bool = False,
) -> pd.DataFrame:
    """Run a scenario over a grid of parameters, seeds and mechanisms (see the module doc).

    Args:
        scenario, grid, seeds, mechanisms, params, options, until, price_tolerance: the runs,
            as in :func:`plan`.
        out: folder of the sweep (``runs/`` and ``summaries/`` inside); one sweep at a time.
        workers: local processes (default: the usable CPUs); 1 runs in this process. Pool
            workers are forked from a fork server that imports mktsim once (spawned where
            there is none); either way a script calling ``sweep`` needs the usual
            ``if __name__ == "__main__":`` guard.
        scheduler: a Dask scheduler address (``tcp://host:8786``) or a ``distributed.Client``;
            runs then go to that cluster (needs ``mktsim[dist]``; script scenarios must be at the
            same path on the workers).
        record: ``all`` tables, ``summary`` (prices, excess demand, events) or ``none`` (the
            summary row only).
        figures: also write each run's ``prices.png``.
        resume: skip runs already finished with status ``ok`` in ``out``; False re-runs all.
        max_runs: run at most this many runs now (the rest stay for a later call).
        progress: show a progress line on stderr.
        memory_budget: bytes (or a size such as ``4GiB``) the recorded tables of the runs
            executing at once may take: a run whose estimated tables times the runs executing
            at once (the local workers, or the threads of a Dask worker) exceed it streams
            them to Parquet parts while it goes, and its folder then holds a folder of parts
            per table (one line on stderr says so). None (the default in Python; ``mktsim
            sweep`` uses 1 GiB): no run streams unless ``stream``.
        stream: stream every run's tables whatever their size.

    Returns:
        The summary rows of the sweep's runs finished so far (earlier calls included), in plan
        order, one row per run; ``attrs`` holds ``planned``, ``skipped`` and ``ran`` counts.
    """
    specs = plan(
        scenario,
        grid,
        seeds,
        mechanisms=mechanisms,
        params=params,
        options=options,
        until=until,
        price_tolerance=price_tolerance,
    )
    if record not in RECORD_MODES:
        raise UnknownName("record mode", str(record), list(RECORD_MODES))
    if max_runs is not None and (isinstance(max_runs, bool) or max_runs < 0):
        raise InvalidParameter(f"max_runs(={max_runs!r}) must be an integer >= 0")
    if scheduler is not None and workers is not None:
        raise InvalidParameter("workers applies to the local pool: a Dask cluster has its own")
    n_workers = _usable_cpus() if workers is None else workers
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise InvalidParameter(f"workers(={workers!r}) must be an integer >= 1")
    limit = None if memory_budget is None else parse_bytes(memory_budget)

    root = Path(out)
    summaries, runs = root / "summaries", root / "runs"
    summaries.mkdir(parents=True, exist_ok=True)
    runs.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_exclusive(root))
        _clean_partials(root)
        done = _finished(summaries) if resume else set()
        todo = [s for s in specs if s.run_id not in done]
        skipped = len(specs) - len(todo)
        todo = todo if max_runs is None else todo[:max_runs]
        client = (
            stack.enter_context(dask_client(scheduler)) if scheduler is not None and todo else None
        )
        bar = Progress(len(specs), skipped, sys.stderr if progress else None)
        budget = None
        if limit is not None or stream:  # each run's tables times the runs at once must fit
            at_once = _threads_per_worker(client) if client is not None else n_workers
            budget = _Budget(
                DEFAULT_MEMORY_BUDGET if limit is None else limit,
                stream,
                max(1, min(at_once, len(todo))),
            )
        args = (record, figures, budget)

        def write(spec: RunSpec, outcome: Outcome) -> None:
            row, files, note = outcome
            if note is not None:
                bar.note(note)
            if files:
                _write_run(runs, spec.run_id, files)
            _write_row(summaries, row)  # last: a row means the run's files are complete
            bar.update(row["status"])

        try:
            if client is not None:
                run_on_dask(todo, client, _execute, args, write, _failure)
            elif n_workers == 1 or len(todo) <= 1:
                for spec in todo:
                    write(spec, _execute(spec, *args))
            else:
                run_on_pool(todo, n_workers, _execute, args, write, _failure, _PRELOAD)
        finally:
            bar.close()
            _normalize(summaries)
        wanted = [summaries / f"{s.run_id}.parquet" for s in specs]
        frame = _load([p for p in wanted if p.exists()])
    frame.attrs.update(planned=len(specs), skipped=skipped, ran=len(todo))
    return frame


def _threads_per_worker(client: Any) -> int:
    """Runs a Dask worker executes at once (its threads, which share its memory): the most of
    any worker of the cluster, 1 when the cluster does not say."""
    try:
        return max([int(n) for n in client.nthreads().values()] or [1])
    except Exception:  # an older or partial client: count each worker as running one run
        return 1


def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


# --- files ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _exclusive(root: Path) -> Iterator[None]:
    """Hold ``root/.lock`` for the sweep (released by the OS if the process dies)."""
    with open(root / ".lock", "a") as handle:
        try:
            import fcntl
        except ImportError:  # no advisory locks on this platform: one sweep at a time, please
            yield
            return
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MktsimError(f"another sweep is writing to {root}") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _clean_partials(root: Path) -> None:
    """Remove what an interrupted sweep left half-written (safe: we hold the lock)."""
    for path in (root / "runs").glob(".partial-*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in (root / "summaries").glob(".*.tmp"):
        path.unlink(missing_ok=True)


def _write_run(runs: Path, run_id: str, files: Mapping[str, bytes]) -> None:
    partial = runs / f".partial-{run_id}-{uuid.uuid4().hex[:8]}"
    partial.mkdir()
    for name, data in files.items():
        path = partial / name  # a streamed table is a folder of parts: table.parquet/part-...
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    final = runs / run_id
    if final.exists():  # a failed or interrupted earlier attempt
        shutil.rmtree(final)
    partial.rename(final)


def _write_row(summaries: Path, row: Mapping[str, Any]) -> None:
    path = summaries / f"{row['run_id']}.parquet"
    partial = summaries / f".{path.name}.tmp"
    pq.write_table(pa.Table.from_pylist([dict(row)]), partial)
    os.replace(partial, path)


def _finished(summaries: Path) -> set[str]:
    """Run ids whose row says ``ok`` (an unreadable row counts as not finished)."""
    done = set()
    for path in summaries.glob("*.parquet"):
        try:
            table = pq.read_table(path, columns=["run_id", "status"])
        except (OSError, pa.ArrowException, KeyError):
            continue
        for run_id, status in zip(
            table["run_id"].to_pylist(), table["status"].to_pylist(), strict=True
        ):
            if status == "ok" and path.stem == run_id:
                done.add(run_id)
    return done


def _column_rank(name: str) -> int:
    if name in _ID_COLUMNS:
        return _ID_COLUMNS.index(name)
    for rank, prefix in enumerate(("param_", "option_"), start=len(_ID_COLUMNS)):
        if name.startswith(prefix):
            return rank
    order = {"final_price_": 11, "equilibrium_price_": 12, "wall_seconds": 13}
    return next((r for p, r in order.items() if name.startswith(p)), 10)


def _unify(schemas: Sequence[pa.Schema]) -> pa.Schema:
    """One schema for rows written separately: every column any row has; a column's type is
    the common one (integers with floats become float64), or text when they disagree."""
    seen: dict[str, list[pa.DataType]] = {}
    for schema in schemas:
        for f in schema:
            seen.setdefault(f.name, []).append(f.type)
    fields = []
    for name, types in seen.items():
        kinds = {t for t in types if not pa.types.is_null(t)}
        if name in _FIXED_TYPES:
            kind: pa.DataType = _FIXED_TYPES[name]
        elif not kinds:
            kind = pa.null()
        elif len(kinds) == 1:
            kind = kinds.pop()
        elif all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in kinds):
            kind = pa.float64() if any(pa.types.is_floating(t) for t in kinds) else pa.int64()
        else:
            kind = pa.large_string()
        fields.append(pa.field(name, kind))
    order = {name: i for i, name in enumerate(seen)}
    fields.sort(key=lambda f: (_column_rank(f.name), order[f.name]))
    return pa.schema(fields)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    columns = []
    for f in schema:
        if f.name in table.column_names:
            columns.append(table[f.name].cast(f.type))
        else:
            columns.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _normalize(summaries: Path) -> None:
    """Bring every row file to the union schema, so ``pd.read_parquet`` of the folder (which
    takes its schema from one file) sees every column of every row."""
    paths = sorted(summaries.glob("*.parquet"))
    schemas = {p: pq.read_schema(p) for p in paths}
    unified = _unify(list(schemas.values()))
    for path, schema in schemas.items():
        if not schema.equals(unified, check_metadata=False):
            partial = summaries / f".{path.name}.tmp"
            pq.write_table(_conform(pq.read_table(path), unified), partial)
            os.replace(partial, path)


def _load(paths: Sequence[Path]) -> pd.DataFrame:
    if not paths:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in _ID_COLUMNS})
    tables = [pq.read_table(p) for p in paths]
    unified = _unify([t.schema for t in tables])
    frame = pa.concat_tables([_conform(t, unified) for t in tables]).to_pandas()
    return frame


def load_summaries(out: str | Path) -> pd.DataFrame:
    """Every summary row in a sweep folder (also one a sweep was interrupted writing), sorted by
    run id."""
    summaries = Path(out) / "summaries"
    if not summaries.is_dir():
        raise MktsimError(f"{out} holds no sweep (no summaries/ folder)")
    return _load(sorted(summaries.glob("*.parquet")))
