"""Running a scenario under a mechanism, and the run's results.

``simulate`` wires scenario, ledger, recorder and mechanism into one SimPy environment, runs it
until the mechanism is done or the horizon is reached, checks conservation, and summarises.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd
import simpy

from mktsim import metrics, wrappers
from mktsim.controls import control_effects
from mktsim.equilibrium import Equilibrium, equilibrium, equilibrium_prices
from mktsim.errors import InvalidParameter, MktsimError
from mktsim.ledger import Ledger, sim_clock
from mktsim.ledger_range import check_representable, run_goods
from mktsim.mechanism import MarketContext, PopulationSlot
from mktsim.pairing import assign_strategies, start_strategies
from mktsim.random import Streams
from mktsim.recorder import Recorder, write_frame
from mktsim.registry import resolve
from mktsim.run_folder import FolderTables, read_summary, run_config, write_folder
from mktsim.scenario import Scenario
from mktsim.shocks import PRICE_CONTROLS, check_supported, check_timing, schedule
from mktsim.welfare import Window, efficiency, welfare_table

__all__ = ["FRAMES", "Run", "load", "rerun", "rerun_arguments", "simulate"]

#: Frames every run offers (see the README for their columns).
FRAMES = ("prices", "excess_demand", "excess_demand_by_population", "trades", "holdings", "events")


class Run:
    """The result of :func:`simulate` (or a saved run reopened by :func:`mktsim.load`): a
    summary dict, frames, and ``save``. ``recorder`` is where the frames come from: the live
    run's recorder, or a saved folder's tables (``scenario`` is then None)."""

    def __init__(
        self,
        scenario: Scenario | None,
        summary: dict[str, Any],
        recorder: Recorder | FolderTables,
        reference: Equilibrium | None,
        mechanism: Any = None,
    ) -> None:
        self.scenario = scenario
        self.mechanism = mechanism
        self.summary = summary
        self.reference = reference
        self._recorder = recorder
        self._frames: dict[str, pd.DataFrame] = {}
        #: Population name -> the strategy object that drove it (live runs only).
        self.strategies: dict[str, Any] = {}
        #: One :class:`mktsim.welfare.Window` per economy the run went through (live runs only;
        #: more than one after shocks that changed endowments or preferences).
        self.windows: list[Window] = []

    def frame(self, name: str) -> pd.DataFrame:
        """One recorded table as a DataFrame (built once, then cached)."""
        if name not in self._frames:
            self._frames[name] = self._recorder.frame(name)
        return self._frames[name]

    @property
    def tables(self) -> list[str]:
        return self._recorder.tables

    @property
    def frames(self) -> Mapping[str, pd.DataFrame]:
        """Every table by name, each read (from memory or the spool) only when first asked for."""
        return _LazyFrames(self)

    def parts(self, name: str) -> list[Path]:
        """A streamed table's Parquet parts, to read one at a time when it exceeds memory."""
        return self._recorder.parts(name)

    prices = property(lambda self: self.frame("prices"), doc="time, round, good, price, estimate")
    excess_demand = property(
        lambda self: self.frame("excess_demand"), doc="time, round, good, excess_demand, relative"
    )
    excess_demand_by_population = property(
        lambda self: self.frame("excess_demand_by_population"),
        doc="time, round, population, good, excess_demand",
    )
    trades = property(
        lambda self: self.frame("trades"),
        doc="trade_id, time, round, agent, good, quantity, price, cash",
    )
    holdings = property(
        lambda self: self.frame("holdings"), doc="time, agent, population, good, quantity"
    )
    events = property(lambda self: self.frame("events"), doc="time, kind, detail")

    def price_error(self) -> pd.DataFrame:
        """Max relative price error against the reference over time (empty without one)."""
        reference = (
            self.summary.get("equilibrium_prices")
            if self.reference is None
            else self.reference.prices
        )
        if reference is None:
            return pd.DataFrame({"time": [], "round": [], "price_error": []})
        return metrics.price_error_path(self.prices, reference)

    def welfare(self) -> pd.DataFrame:
        """Welfare per population (:func:`mktsim.welfare.welfare_table`; a reopened run reads
        the saved table)."""
        from mktsim.welfare import welfare_table

        if self.scenario is None:
            return self._recorder.frame("welfare")
        return welfare_table(self)

    def _repr_html_(self) -> str:
        """A notebook's view: the verdict and summary table of the run's report."""
        from mktsim.report.page import run_html

        return run_html(self)

    def summary_json(self) -> bytes:
        return json.dumps(self.summary, indent=2, default=_jsonable).encode("utf-8")

    def figure_png(self) -> bytes:
        """The price paths against the equilibrium (:func:`mktsim.report.plot_prices`), as PNG
        bytes; drawn without pyplot, so a notebook's backend is left alone."""
        import io

        from matplotlib.figure import Figure

        from mktsim.report import RunData, plot_prices

        fig = Figure(figsize=(8, 4.5))
        data = RunData.from_frames(self.summary, {"prices": self.prices}, source="run")
        ax = plot_prices(data, ax=fig.subplots())
        ax.set_title(
            f"{self.summary['scenario']} under {self.summary['mechanism']}: " + ax.get_title()
        )
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
        return buffer.getvalue()

    def files(self, figures: bool = True) -> dict[str, bytes]:
        """What :meth:`save` writes, as file name -> bytes (to ship a run between processes)."""
        import io

        out = {"summary.json": self.summary_json()}
        for name, frame in [
            *((t, self.frame(t)) for t in self.tables),
            ("welfare", self.welfare()),
        ]:
            buffer = io.BytesIO()
            write_frame(frame, buffer)  # as save writes it: an empty table keeps its categories
            out[f"{name}.parquet"] = buffer.getvalue()
        if figures:
            out["prices.png"] = self.figure_png()
        return out

    def save(self, directory: str | Path, figures: bool = True, overwrite: bool = False) -> Path:
        """Write ``summary.json``, every table as Parquet (a folder of parts for a streamed
        run) and, unless ``figures`` is False, ``prices.png``, all at once
        (:func:`mktsim.run_folder.write_folder`: a folder holding another run is refused unless
        ``overwrite``; one holding anything else always)."""

        def write(out: Path) -> None:
            (out / "summary.json").write_bytes(self.summary_json())
            for name in self.tables:
                self._recorder.write(name, out / f"{name}.parquet")
            self.welfare().to_parquet(out / "welfare.parquet", index=False)
            if figures:
                (out / "prices.png").write_bytes(self.figure_png())

        return write_folder(directory, write, self.summary.get("config"), overwrite)


class _LazyFrames(Mapping[str, pd.DataFrame]):
    def __init__(self, run: Run) -> None:
        self._run = run

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self._run.frame(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._run.tables)

    def __len__(self) -> int:
        return len(self._run.tables)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def build_mechanism(
    scenario: Scenario, mechanism: Any, options: Mapping[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """The mechanism a run uses (``mechanism``, default the scenario's own) built with the
    scenario's options for it under ``options``; and those merged options."""
    cls = resolve(scenario.mechanism if mechanism is None else mechanism)
    merged = {**dict(scenario.mechanism_options.get(cls.name, {})), **options}
    return cls(**merged), merged


def _record_holdings(
    ledger: Ledger, recorder: Recorder, slots: tuple[PopulationSlot, ...], now: float
) -> None:
    if "holdings" not in recorder.enabled:
        return
    units = ledger.units()
    g = units.shape[1]
    for slot in slots:
        rows = slot.row_ids
        recorder.append(
            "holdings",
            time=now,
            agent=np.repeat(rows, g),
            population=slot.index,
            good=np.tile(np.arange(g), rows.size),
            quantity=units[rows].ravel(),
        )


def simulate(
    scenario: Scenario,
    mechanism: Any = None,
    seed: int = 0,
    until: float | None = None,
    *,
    price_tolerance: float = 1e-3,
    record: str = "all",
    stream_to: str | Path | None = None,
    chunk_rows: int = 1_000_000,
    shocks: Sequence[Any] | None = None,
    progress: Callable[[float, float], None] | None = None,
    on_start: Callable[[], None] | None = None,
    base_units: float | None = None,
    **options: Any,
) -> Run:
    """Run a scenario under a mechanism.

    Args:
        scenario: the economy.
        mechanism: a registered name (``"walrasian"``), ``"module:Class"``, or a class; default
            the scenario's own.
        seed: run seed; every random stream derives from it.
        until: simulation horizon (default the scenario's).
        price_tolerance: relative price error used for ``time_to_tolerance``.
        record: ``all`` tables, or ``summary`` (prices, excess demand and events, plus the
            tables the scenario's metrics read, e.g. an induced-value market's trades).
        stream_to: a folder to stream tables to as Parquet parts of ``chunk_rows`` rows while
            the run goes, so memory stays flat; frames are read back only when asked for.
            Buffered rows are handed over at least every horizon / 200 of simulation time, so
            parts appear on disk as the run goes.
        shocks: shocks to apply instead of the scenario's own (``()`` runs without any: the
            baseline of a counterfactual).
        progress: called as ``progress(now, horizon)`` about every horizon / 200 of simulation
            time (e.g. to draw a progress bar); it changes nothing in the run.
        on_start: called once the run has passed every check made before it starts (options,
            shocks, strategies, the ledger's range), just before simulation time begins (e.g.
            to say that its tables stream only for a run that goes ahead).
        **options: mechanism options (e.g. ``mode="non_tatonnement"``, ``method="adam"``),
            over the scenario's defaults for that mechanism.
    """
    if not isinstance(scenario, Scenario):
        raise InvalidParameter(f"scenario must be a Scenario, got {type(scenario).__name__}")
    horizon = scenario.until if until is None else float(until)
    if not np.isfinite(horizon) or horizon <= 0:
        raise InvalidParameter(f"until(={until}) must be > 0 and finite")
    if not (np.isfinite(price_tolerance) and price_tolerance > 0):
        raise InvalidParameter(f"price_tolerance(={price_tolerance}) must be > 0 and finite")
    if record not in ("all", "summary"):
        raise InvalidParameter(f"record(={record!r}) must be 'all' or 'summary'")
    planned = tuple(scenario.shocks if shocks is None else shocks)
    check_timing(planned, horizon)
    mech, merged = build_mechanism(scenario, mechanism, options)
    goods = (
        run_goods(scenario, planned, getattr(mech, "creations", None))
        if base_units is None
        else attrs.evolve(scenario.goods, base_units=base_units)
    )
    try:
        initial = check_representable(scenario, planned, goods)
    except InvalidParameter as exc:
        if base_units is not None or goods == run_goods(scenario, planned):
            raise
        raise InvalidParameter(
            f"{mech.name} options {merged}: what they create when the market opens needs a base "
            f"unit of 1/{goods.base_units:g}, at which {exc}"
        ) from None
    streams = Streams(seed)

    started = time.perf_counter()
    reference = equilibrium(scenario)
    env = simpy.Environment()
    recorder = Recorder(
        {"goods": scenario.goods.names, "populations": [p.name for p in scenario.populations]},
        enabled=None
        if record == "all"
        else ["prices", "excess_demand", "events", *scenario.metrics_tables],
        spool=stream_to,
        chunk_rows=chunk_rows,
    )
    ledger = Ledger(goods, initial, recorder, sim_clock(env))
    slots = PopulationSlot.all_of(scenario)
    n_agents = scenario.n_agents
    done = env.event()
    assigned = assign_strategies(type(mech), slots)
    ctx = MarketContext(
        env,
        scenario,
        goods,
        ledger,
        recorder,
        streams,
        slots,
        done,
        reference,
        strategies=assigned,
        horizon=horizon,
    )
    # Wrappers apply market shocks only to orders sent through the protocol: every population
    # must be driven by a registered strategy.
    wrappable = wrappers.provided(mech) if len(assigned) == len(slots) else frozenset()
    check_supported(planned, mech, scenario.goods, [s.name for s in slots], wrappable)
    market = wrappers.wrap(mech, env, planned, recorder)
    shocked: list[tuple[float, str, Equilibrium]] = []
    windows = [Window(env.now, tuple(scenario.populations), reference, ledger.units()[:n_agents])]

    def before_shock() -> None:
        """Close the books of the economy in force (welfare is measured window by window)."""
        windows[-1] = attrs.evolve(windows[-1], final=ledger.units()[:n_agents])

    def after_shock() -> None:
        """Snapshot holdings and recompute the reference for the shocked economy."""
        _record_holdings(ledger, recorder, slots, env.now)
        populations = tuple(ctx.current[s.name] for s in slots)
        holdings = ledger.units()[:n_agents]
        eq = None
        if scenario.reference is None:
            now_scenario = attrs.evolve(scenario, populations=list(populations))
            eq = equilibrium(now_scenario.with_endowments(holdings))
            shocked.append((env.now, "economy", eq))
        windows.append(Window(env.now, populations, eq, holdings))

    if planned:  # started first, so a shock due at time t acts before the market does at t
        env.process(schedule(ctx, market, planned, after_shock, before_shock))
    mech.attach(ctx)
    driven = start_strategies(market, ctx, assigned)
    _record_holdings(ledger, recorder, slots, env.now)
    if progress is not None:
        env.process(_ticks(env, horizon, progress))
    if stream_to is not None:
        env.process(_ticks(env, horizon, lambda now, end: recorder.flush()))
    if on_start is not None:
        on_start()
    env.run(until=env.any_of([done, env.timeout(horizon)]))
    _record_holdings(ledger, recorder, slots, env.now)
    conserved = ledger.conserved()
    wall = time.perf_counter() - started
    run = Run(scenario, {}, recorder, reference, mech)
    run.windows = windows
    run.summary.update(_summary(run, mech, ctx, seed, env.now, wall, conserved, price_tolerance))
    refused = wrappers.refusals(market)
    if refused:  # the shock wrappers' refusals count with the mechanism's own, by reason
        own = Counter(run.summary.get("rejections") or {})
        own.update(refused)
        run.summary["rejections"] = dict(sorted(own.items()))
    _count_strategy_actions(run.summary, driven)
    names = [slot.name for slot in ctx.slots if slot.name in assigned]
    run.strategies = dict(zip(names, driven, strict=True))
    # the economy in force: a preference shock changed whose equilibrium the holdings have
    in_force = attrs.evolve(scenario, populations=[ctx.current[s.name] for s in slots])
    run.summary.update(_path_dependence(in_force, ledger, run.summary["final_prices"]))
    if planned:
        run.summary["shocks"] = _shock_effects(run, planned, shocked, price_tolerance)
        _recovery_to_holdings(run, scenario, ledger.units()[:n_agents], price_tolerance)
        _window_efficiency(run, planned)
        run.summary.update(_error_in_force(run, shocked, price_tolerance))
    if scenario.metrics is not None:
        run.summary.update(scenario.metrics(run))
    run.summary["strategies"] = {
        slot.name: assigned[slot.name][0].name if slot.name in assigned else _behaviour_name(slot)
        for slot in slots
    }
    run.summary["mechanism_options"] = dict(getattr(mech, "opts", merged))
    if any(s.kind in PRICE_CONTROLS for s in planned):
        holdings = ledger.units()[: scenario.n_agents]
        run.summary["price_controls"] = control_effects(run, planned, holdings)
    run.summary["tables"] = run.tables
    run.summary["config"] = run_config(
        scenario, mech.name, options, seed, horizon, shocks, record, price_tolerance
    )
    return run


def _behaviour_name(slot: PopulationSlot) -> str | None:
    """The name of a behaviour a mechanism runs itself (given as a name or a class)."""
    given = slot.population.behaviour
    return given if isinstance(given, str) or given is None else getattr(given, "name", None)


def _ticks(
    env: simpy.Environment, horizon: float, progress: Callable[[float, float], None]
) -> Generator[simpy.Event, Any, None]:
    """Report simulation time to ``progress``: the process reads nothing and changes nothing,
    so the events of the run keep their order."""
    step = horizon / 200
    while True:
        yield env.timeout(step)
        progress(env.now, horizon)


def load(directory: str | Path) -> Run:
    """Reopen a saved run as a :class:`Run`: the same summary and frames as the run that wrote
    it (the scenario and the reference are not stored: ``scenario`` is None, and ``welfare()``
    reads the saved table)."""
    path, summary = read_summary(directory)
    order = summary.get("tables")
    return Run(None, summary, FolderTables(path, order if isinstance(order, list) else None), None)


def rerun(directory: str | Path, stream_to: str | Path | None = None) -> Run:
    """Run the configuration recorded in a run folder's summary again (streaming its tables to
    ``stream_to`` as :func:`simulate` does, when given).

    Raises:
        MktsimError: the folder records no configuration, or one that cannot be rerun.
    """
    scenario, arguments = rerun_arguments(directory)
    return simulate(scenario, stream_to=stream_to, **arguments)


def rerun_arguments(directory: str | Path) -> tuple[Scenario, dict[str, Any]]:
    """The scenario and the other arguments of :func:`simulate` recorded in a run folder, to
    size a rerun before starting it (:func:`rerun` runs them).

    Raises:
        MktsimError: the folder records no configuration, or one that cannot be rerun.
    """
    from mktsim.scenario import build_scenario
    from mktsim.shocks import SHOCKS

    _, summary = read_summary(directory)
    config = summary.get("config")
    if not isinstance(config, dict):
        raise MktsimError(f"{str(directory)!r} records no configuration to rerun")
    if not config.get("rerunnable"):
        raise MktsimError(f"{str(directory)!r} cannot be rerun: {config.get('why')}")
    shocks = config["shocks"]
    if shocks is not None:
        shocks = [SHOCKS[s["kind"]](**{k: v for k, v in s.items() if k != "kind"}) for s in shocks]
    return build_scenario(config["scenario"], **config["params"]), {
        "mechanism": config["mechanism"],
        "seed": config["seed"],
        "until": config["until"],
        "shocks": shocks,
        "record": config["record"],
        "price_tolerance": config["price_tolerance"],
        **config["options"],
    }


def _shock_effects(
    run: Run,
    planned: tuple[Any, ...],
    shocked: list[tuple[float, str, Equilibrium]],
    tolerance: float,
) -> list[dict[str, Any]]:
    """Per shock: when and what; for economy shocks, the equilibrium of the shocked economy,
    the largest price error against it afterwards and the time to recover within tolerance."""
    out: list[dict[str, Any]] = [
        {"kind": s.kind, "time": s.time, "shock": repr(s)}
        for s in sorted(planned, key=lambda s: s.time)
    ]
    economy = [
        row
        for row, s in zip(out, sorted(planned, key=lambda s: s.time), strict=True)
        if not s.market
    ]
    for row, (when, _, eq) in zip(economy, shocked, strict=False):
        row["equilibrium_prices"] = eq.prices
        row["peak_price_error"] = row["recovery_time"] = None
        if eq.prices is None:
            continue
        after = run.prices[run.prices["time"] >= when]
        path = metrics.price_error_path(after, eq.prices)
        if not path.empty:
            row["peak_price_error"] = float(path["price_error"].max())
            done = metrics.time_to_tolerance(path, tolerance)
            row["recovery_time"] = None if done is None else done - when
    return out


def _recovery_to_holdings(run: Run, scenario: Scenario, last: np.ndarray, tolerance: float) -> None:
    """Each economy shock's row also gets the recovery to the equilibrium of the holdings its
    window closed with (the next shock's eve, or the run's end). A market that trades out of
    equilibrium moves the holdings, and so the equilibrium it can reach, away from the one in
    force at the shock: recovery to that one may never come although the market settles."""
    rows = [r for r in run.summary["shocks"] if "recovery_time" in r]
    for row, window, after in zip(rows, run.windows[1:], [*run.windows[2:], None], strict=False):
        close = window.final if window.final is not None else last
        row["recovery_time_vs_holdings_equilibrium"] = None
        if scenario.reference is not None or np.array_equal(close, window.initial):
            continue
        economy = attrs.evolve(scenario, populations=list(window.populations))
        try:
            eq = equilibrium(economy.with_endowments(close))
        except InvalidParameter:
            continue
        if eq.prices is None or eq.status not in ("unique", "found"):
            continue
        prices = run.prices[run.prices["time"] >= window.start]
        if after is not None:
            prices = prices[prices["time"] < after.start]
        path = metrics.price_error_path(prices, eq.prices)
        done = None if path.empty else metrics.time_to_tolerance(path, tolerance)
        row["holdings_equilibrium_prices"] = eq.prices
        row["recovery_time_vs_holdings_equilibrium"] = None if done is None else done - window.start


def _window_efficiency(run: Run, planned: tuple[Any, ...]) -> None:
    """Each economy shock's row gets the allocative efficiency of its window (up to the next
    shock that changed the economy), against the equilibrium in force there."""
    if len(run.windows) < 2 or "holdings" not in run.tables:
        return
    rows = [r for r in run.summary["shocks"] if not _is_market(r["kind"], planned)]
    for k, row in enumerate(rows[: len(run.windows) - 1], start=1):
        row["allocative_efficiency"] = _finite(efficiency(welfare_table(run, window=k)))


def _is_market(kind: str, planned: tuple[Any, ...]) -> bool:
    return any(s.kind == kind and s.market for s in planned)


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _error_in_force(
    run: Run, shocked: list[tuple[float, str, Equilibrium]], tolerance: float
) -> dict[str, Any]:
    """After shocks that changed the economy, ``price_error`` and ``time_to_tolerance`` are
    measured against the equilibrium in force at the end (the last shocked economy's), from
    that shock on, as the report measures them; the values against the equilibrium of the
    endowments are kept beside them."""
    summary = run.summary
    when, _, eq = shocked[-1] if shocked else (0.0, "", None)
    in_force = eq.prices if eq is not None else None
    final = summary.get("final_prices") or {}
    if in_force is None or not final:
        return {}
    error = max(abs(final[g] - in_force[g]) / in_force[g] for g in in_force)
    path = metrics.price_error_path(run.prices[run.prices["time"] >= when], in_force)
    return {
        "price_error": float(error),
        "time_to_tolerance": metrics.time_to_tolerance(path, tolerance),
        "equilibrium_prices_in_force": dict(in_force),
        "price_error_vs_initial_equilibrium": summary.get("price_error"),
        "time_to_tolerance_vs_initial_equilibrium": summary.get("time_to_tolerance"),
    }


def _path_dependence(
    scenario: Scenario, ledger: Ledger, final: Mapping[str, float]
) -> dict[str, Any]:
    """Where trade moved the economy: the equilibrium of the holdings reached (which differs
    from that of the endowments once agents have traded at disequilibrium prices)."""
    holdings = ledger.units()[: scenario.n_agents]
    if (
        scenario.reference is not None
        or not final
        or np.array_equal(holdings, scenario.endowments())
    ):
        return {"holdings_equilibrium_prices": None, "price_error_vs_holdings_equilibrium": None}
    try:
        prices = equilibrium_prices(scenario.with_endowments(holdings))
    except InvalidParameter:  # e.g. every unit of a good sold to a pool: no economy left
        prices = None
    if prices is None:
        return {"holdings_equilibrium_prices": None, "price_error_vs_holdings_equilibrium": None}
    err = max(abs(final[g] - prices[g]) / prices[g] for g in scenario.goods.names)
    return {"holdings_equilibrium_prices": prices, "price_error_vs_holdings_equilibrium": err}


def _count_strategy_actions(summary: dict[str, Any], started: list[Any]) -> None:
    """Add the actions of the strategies the run started to a mechanism's tally of agent
    actions (``actions``, and ``rounds`` where it counts them)."""
    extra = sum(int(getattr(s, "actions", 0)) for s in started)
    if not extra or summary.get("actions") is None:
        return
    before = summary["actions"]
    summary["actions"] = before + extra
    if summary.get("rounds") == before:
        summary["rounds"] = before + extra


def _excess_demand_norm(run: Run, recorder: Recorder) -> float | None:
    """The largest relative excess demand (in absolute value) at the last recorded round and,
    within it, the last time (round -1 throughout: the end); None without any."""
    ed = recorder.columns("excess_demand")
    if ed is None:
        frame = run.excess_demand
        ed = {c: frame[c].to_numpy() for c in ("round", "time", "relative")}
    if not len(ed["round"]):
        return None
    last = ed["round"] == ed["round"].max()
    times, relative = ed["time"][last], ed["relative"][last]
    values = np.abs(relative[times == times.max()])
    values = values[~np.isnan(values)]  # as pandas' max, which skips missing values
    return float(values.max()) if values.size else float("nan")


def _summary(
    run: Run,
    mech: Any,
    ctx: MarketContext,
    seed: int,
    now: float,
    wall: float,
    conserved: bool,
    price_tolerance: float,
) -> dict[str, Any]:
    goods = ctx.goods
    ref = run.reference
    ref_prices = ref.prices if ref is not None and ref.status in ("unique", "found") else None
    own = mech.summary()
    for service in ctx.services.values():  # the run's own (a prediction market's event)
        own.update(service.summary() if hasattr(service, "summary") else {})
    # The recorder's columns as they are (frames are built when first asked for): a short run's
    # summary would otherwise cost more in frame reads than in metrics.
    recorded = ctx.recorder.columns("prices")
    prices = metrics.PriceRows.of(run.prices if recorded is None else metrics.PriceRows(**recorded))
    final: Mapping[str, float] = {}
    if len(prices):
        last = prices.round == prices.round.max()
        column = prices.price if own.get("converged") else prices.estimate
        final = {str(g): float(v) for g, v in zip(prices.good[last], column[last], strict=True)}
    error = None
    ttt = None
    if ref_prices is not None and final:
        error = max(abs(final[g] - ref_prices[g]) / ref_prices[g] for g in goods.names)
        ttt = metrics.time_to_tolerance_of(prices, ref_prices, price_tolerance)
    cycle = metrics.detect_cycle(
        prices, ref_prices, converged=bool(own.get("converged", False)), tolerance=price_tolerance
    )
    return {
        "scenario": ctx.scenario.name,
        "params": dict(ctx.scenario.params),
        "mechanism": mech.name,
        **own,
        "method": own.get("method"),
        "seed": seed,
        "rounds": own.get("rounds"),
        "sim_time": float(now),
        "wall_seconds": wall,
        "converged": bool(own.get("converged", False)),
        "final_prices": final,
        "equilibrium_prices": ref_prices,
        "equilibrium_status": ref.status if ref is not None else None,
        "price_error": error,
        "excess_demand_norm": _excess_demand_norm(run, ctx.recorder),
        "price_tolerance": price_tolerance,
        "time_to_tolerance": ttt,
        "conservation_ok": conserved,
        "cycle_detected": cycle.detected,
        "cycle_period": cycle.period if cycle.detected else None,
        "n_agents": ctx.scenario.n_agents,
        "n_goods": len(goods),
        "base_units": goods.base_units,
    }
