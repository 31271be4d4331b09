"""The report page: blocks (headings, verdicts, tables, figures) rendered to HTML and Markdown.

The page is a list of blocks built from the tables and figures of the runs; two jinja2 templates
(``templates/report.html.j2`` and ``report.md.j2``) render the same blocks, so the HTML page and
its Markdown twin never disagree. The HTML template escapes every name it prints (autoescape):
scenario, population and good names come from users' scripts.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from attrs import field, frozen

from mktsim.errors import InvalidParameter
from mktsim.report.data import (
    CounterfactualData,
    RunData,
    RunLike,
    cell,
    counterfactual_of,
    many,
    present,
    run_labels,
)
from mktsim.report.figures import (
    moving_goods,
    plot_baseline_treated,
    plot_deviation,
    plot_excess_demand,
    plot_excess_demand_norm,
    plot_log_error,
    plot_phase,
    plot_prices,
    plot_volume,
    plot_welfare,
)
from mktsim.report.references import SHOCK_COLUMNS, shocks_table
from mktsim.report.tables import (
    CONVERGENCE_COLUMNS,
    COUNTERFACTUAL_COLUMNS,
    OPTIONAL,
    chain_table,
    convergence_table,
    counterfactual_table,
    excess_demand_by_population_table,
    excess_demand_table,
    market_table,
    peak_deviation,
    recovery_table,
    trade_count,
    welfare_change_table,
)
from mktsim.report.verdict import counterfactual_verdict, verdict

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["ReportPaths", "counterfactual_blocks", "run_html", "write_report"]


@frozen
class ReportPaths:
    """Files written by :func:`write_report`."""

    html: Path
    markdown: Path | None
    figures: tuple[Path, ...]


@frozen
class _Block:
    """One piece of the page; ``kind`` picks its template macro.

    kinds: ``heading`` (level, text), ``verdict`` (text, label), ``text`` (text), ``terms``
    (items), ``table`` (header, rows, caption, role), ``image`` (name, png, caption).
    """

    kind: str
    text: str = ""
    level: int = 2
    label: str = ""
    items: tuple[tuple[str, str], ...] = ()
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    caption: str = ""
    role: str = ""
    name: str = ""
    png: bytes = field(default=b"", repr=False)

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def _heading(level: int, text: str) -> _Block:
    return _Block("heading", text=text, level=level)


def _table(frame: pd.DataFrame, caption: str = "", role: str = "") -> _Block:
    header = tuple(str(c) for c in frame.columns)
    rows = tuple(tuple(cell(v) for v in row) for row in frame.itertuples(index=False, name=None))
    return _Block("table", header=header, rows=rows, caption=caption, role=role)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    # no Software tag: the page must not mention any address, even inside image metadata
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


def _figure(draw: Callable[[Axes], Any], size: tuple[float, float] = (7.5, 4.0)) -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    draw(fig.subplots())
    return _png(fig)


def _drop_empty(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.loc[:, [c for c in frame.columns if frame[c].map(present).any()]]


def _shown(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The convergence table as displayed, and the settings every run shares.

    Settings (scenario, mechanism, ...) that are equal in every run move out of the table; the
    others are already in the run labels or stay as columns. Optional metrics without any value
    are dropped.
    """
    settings = (
        "scenario",
        "mechanism",
        "mode",
        "method",
        "seed",
        "n_agents",
        "n_goods",
        "price_tolerance",
        "equilibrium_status",
    )
    in_label = ("scenario", "mechanism", "mode", "method", "seed")
    common = {
        c: table[c].iloc[0]
        for c in settings
        if present(table[c].iloc[0]) and table[c].map(cell).nunique() == 1
    }
    drop = {"source", "wall_seconds", "rounds_to_tolerance", *common, *in_label}
    keep = [
        c
        for c in table.columns
        if c not in drop and (c not in OPTIONAL or table[c].map(present).any())
    ]
    return table.loc[:, keep], common


def _comparison_blocks(data: list[RunData], labels: list[str]) -> list[_Block]:
    from matplotlib.figure import Figure

    blocks = [_heading(2, "Comparison")]
    table = convergence_table(data)
    shown, common = _shown(table)
    if common:
        text = "All runs: " + ", ".join(f"{k} {cell(v)}" for k, v in common.items()) + "."
        blocks.append(_Block("text", text=text))
    blocks.append(_table(shown, "Convergence, one row per run", "convergence"))
    scenarios: dict[str, list[int]] = {}
    for i, d in enumerate(data):
        scenarios.setdefault(str(d.summary.get("scenario")), []).append(i)
    for k, (scenario, idx) in enumerate(scenarios.items()):
        runs, names = [data[i] for i in idx], [labels[i] for i in idx]
        fig = Figure(figsize=(12.0, 4.0 + 0.22 * len(runs)), layout="constrained")
        left, right = fig.subplots(1, 2)
        plot_log_error(runs, left, names)
        plot_excess_demand_norm(runs, right, names)
        fig.suptitle(f"scenario {scenario}")
        caption = f"{scenario}: price error and excess-demand norm of each run"
        blocks.append(_Block("image", name=f"compare_{k}", png=_png(fig), caption=caption))
    return blocks


def counterfactual_blocks(cf: CounterfactualData) -> list[_Block]:
    """The section that opens a counterfactual's report: verdict, its figures, the deviation
    path and both runs' prices."""
    summary = counterfactual_table(cf)
    shocked = str(summary.set_index("metric").loc["shocks", "value"])
    recovery, welfare = recovery_table(cf), welfare_change_table(cf)
    text = counterfactual_verdict(cf, peak_deviation(cf), recovery, welfare, shocked)
    blocks = [
        _heading(2, "Counterfactual"),
        _Block("verdict", text=text),
        _table(summary, "The counterfactual: treated run against baseline", "counterfactual"),
    ]
    if not recovery.empty:
        blocks.append(
            _table(
                _drop_empty(recovery),
                "Recovery per shock: to the equilibrium in force and back to the baseline",
                "recovery",
            )
        )
    if not welfare.empty:
        blocks.append(
            _table(welfare, "Welfare change against the baseline by population", "welfare_change")
        )
    blocks.append(
        _Block(
            "image",
            name="counterfactual_deviation",
            png=_figure(lambda ax: plot_deviation(cf, ax)),
            caption="Price deviation from the baseline (treated / baseline - 1); peak starred",
        )
    )
    blocks.append(
        _Block(
            "image",
            name="counterfactual_prices",
            png=_figure(lambda ax: plot_baseline_treated(cf, ax)),
            caption="Prices of the baseline (thick, dashed, behind) and the treated run (thin, "
            "solid, in front)",
        )
    )
    return blocks


#: Prediction-market values of the summary shown with a run's facts.
_PREDICTION_FACTS = ("outcome", "maker_loss", "maker_loss_bound", "maker_worst_loss")


def _facts(d: RunData, row: pd.Series) -> pd.DataFrame:
    facts = {k: row[k] for k in CONVERGENCE_COLUMNS if k != "run" and present(row[k])}
    for key in _PREDICTION_FACTS:
        if present(d.summary.get(key)):
            facts[key] = d.summary[key]
    strategies = d.summary.get("strategies")
    if isinstance(strategies, dict) and strategies:
        facts["strategies"] = ", ".join(f"{k}: {v}" for k, v in strategies.items())
    params = d.summary.get("params")
    if params:
        facts["params"] = ", ".join(f"{k}={v}" for k, v in params.items())
    return pd.DataFrame({"metric": list(facts), "value": [cell(v) for v in facts.values()]})


def _event_table(d: RunData) -> pd.DataFrame:
    """Per outcome of a prediction market: final price, truth, wealth-weighted belief, winner."""
    s = d.summary
    outcomes = s.get("outcomes") or list(s.get("true_probabilities") or {})
    if not outcomes:
        return pd.DataFrame()
    price = s.get("final_price") or s.get("final_prices") or {}
    truth = s.get("true_probabilities") or {}
    belief = s.get("wealth_weighted_belief") or {}
    return pd.DataFrame(
        {
            "outcome": outcomes,
            "final_price": [price.get(o) for o in outcomes],
            "true_probability": [truth.get(o) for o in outcomes],
            "wealth_weighted_belief": [belief.get(o) for o in outcomes],
            "resolved": [(o == s.get("outcome")) if s.get("resolved") else None for o in outcomes],
        }
    )


def _run_blocks(i: int, d: RunData, label: str, compared: bool) -> list[_Block]:
    row = convergence_table([d]).iloc[0]
    blocks = [_heading(2, f"Run: {label}")]
    blocks.append(_table(_facts(d, row), "Summary", "summary"))
    shocks = shocks_table(d)
    if not shocks.empty:
        blocks.append(
            _table(
                shocks,
                "Shocks: each measured from its time to the next shock (or the end) against "
                "the reference in force",
                "shocks",
            )
        )
    event = _event_table(d)
    if not event.empty:
        blocks.append(_table(_drop_empty(event), "The event: outcomes, truth and beliefs", "event"))
    blocks.append(
        _table(
            excess_demand_table(d),
            "Each good at the end of the run (excess demand: the market's gradient)",
        )
    )
    chain = chain_table(d)
    if not chain.empty:
        blocks.append(
            _table(
                _drop_empty(chain),
                "Price = derivative: the run's prices against the back-propagated derivative of "
                "final value (tree graphs) and the planner's shadow prices",
            )
        )
    by_pop = excess_demand_by_population_table(d)
    if len(by_pop) > 1:
        blocks.append(_table(by_pop, "Excess demand per population at the end (units)"))
    market = market_table(d)
    if not market.empty:
        blocks.append(_table(_drop_empty(market), "Trading per good"))
    w = d.frame("welfare")
    if not w.empty:
        blocks.append(_table(_drop_empty(w), "Welfare per population (money at p*)", "welfare"))
    figures: list[tuple[str, Callable[[Axes], Any], str, tuple[float, float]]] = []
    if d.has("prices"):
        figures.append(
            (
                "prices",
                lambda ax: plot_prices(d, ax),
                "Price paths against the equilibrium in force (dashed); shocks dash-dotted",
                (7.5, 4.0),
            )
        )
        if d.equilibrium and not compared:  # a comparison already overlays every run's error
            figures.append(
                (
                    "log_error",
                    lambda ax: plot_log_error([d], ax, [label]),
                    "Price error against the equilibrium in force (log scale)",
                    (7.5, 4.0),
                )
            )
    if d.has("excess_demand"):
        figures.append(
            (
                "excess_demand",
                lambda ax: plot_excess_demand(d, ax),
                "Excess demand per good against time",
                (7.5, 4.0),
            )
        )
    if len(moving_goods(d)) >= 2:
        figures.append(
            ("phase", lambda ax: plot_phase(d, ax=ax), "Price phase portrait", (6.2, 4.5))
        )
    if not w.empty:
        figures.append(
            (
                "welfare",
                lambda ax: plot_welfare(d, ax),
                "Gains from trade per population",
                (6.0, 4.0),
            )
        )
    if d.has("trades") and trade_count(d) > 1:
        figures.append(
            ("volume", lambda ax: plot_volume(d, ax), "Cumulative traded volume", (7.5, 4.0))
        )
    for kind, draw, caption, size in figures:
        blocks.append(
            _Block("image", name=f"run{i}_{kind}", png=_figure(draw, size), caption=caption)
        )
    return blocks


def _glossary(welfare_shown: bool, shocks_shown: bool, counterfactual: bool) -> list[_Block]:
    blocks = [
        _heading(2, "Definitions"),
        _Block(
            "terms", items=tuple((k, v) for k, v in CONVERGENCE_COLUMNS.items() if k != "source")
        ),
    ]
    if counterfactual:
        blocks += [
            _heading(3, "Counterfactual figures"),
            _Block("terms", items=tuple(COUNTERFACTUAL_COLUMNS.items())),
        ]
    if shocks_shown:
        blocks += [
            _heading(3, "Shock columns"),
            _Block("terms", items=tuple(SHOCK_COLUMNS.items())),
        ]
    if welfare_shown:
        from mktsim.welfare import WELFARE_COLUMNS

        blocks += [
            _heading(3, "Welfare columns"),
            _Block("terms", items=tuple(WELFARE_COLUMNS.items())),
        ]
    return blocks


def _verdicts(data: list[RunData], labels: list[str]) -> list[_Block]:
    out = []
    for d, label in zip(data, labels, strict=True):
        text = verdict(d, convergence_table([d]).iloc[0], shocks_table(d))
        out.append(_Block("verdict", text=text, label=label if len(data) > 1 else ""))
    return out


def _environment(markdown: bool) -> Any:
    import jinja2
    import markupsafe

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mktsim.report", "templates"),
        autoescape=not markdown,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["md"] = lambda text: str(text).replace("|", "\\|").replace("\n", " ")
    # column names break only after an underscore (never mid-word, never off the page)
    env.filters["breakable"] = lambda text: markupsafe.escape(text).replace(
        "_", markupsafe.Markup("_<wbr>")
    )
    return env


def render_html(title: str, blocks: Sequence[_Block]) -> str:
    """The self-contained page: inline CSS, figures as data URIs, no script, no link."""
    return str(
        _environment(False).get_template("report.html.j2").render(title=title, blocks=blocks)
    )


def render_markdown(title: str, blocks: Sequence[_Block], figure_dir: str) -> str:
    """The Markdown twin, its figures as PNG files in ``figure_dir``."""
    template = _environment(True).get_template("report.md.j2")
    return str(template.render(title=title, blocks=blocks, figure_dir=figure_dir))


def run_html(run: RunLike) -> str:
    """A run's verdict and summary table as an HTML fragment (a notebook's view of a Run)."""
    data = many(run)[0]
    row = convergence_table([data]).iloc[0]
    blocks = [
        _Block("verdict", text=verdict(data, row, shocks_table(data))),
        _table(_facts(data, row), "Summary", "summary"),
    ]
    return str(_environment(False).get_template("run.html.j2").render(blocks=blocks))


def write_report(
    runs: RunLike | Sequence[RunLike],
    out_dir: str | Path | None = None,
    *,
    title: str | None = None,
    markdown: bool = True,
) -> ReportPaths:
    """Write ``report.html`` (self-contained: figures as data URIs, inline CSS, no scripts and no
    external resource) and, with ``markdown``, ``report.md`` with its PNG figures in
    ``report_figures/``.

    The page opens with the verdict of each run; with several runs a comparison follows
    (convergence table, price error and excess-demand norm of every run overlaid, per
    scenario), then one section per run.

    A counterfactual (its folder, as written by ``mktsim run --counterfactual`` or
    :meth:`~mktsim.counterfactual.Counterfactual.save`, or the object itself) opens with a
    Counterfactual section (verdict, peak deviation, recovery per shock, welfare change by
    population, the deviation path and both runs' prices); the baseline and the treated run
    follow as a comparison of two runs.

    Args:
        runs: run folders, Runs or RunData (one or several), or one counterfactual.
        out_dir: output folder; default the run's own folder for a single saved run (or
            counterfactual).
        title: page title (default from the runs).
        markdown: also write the Markdown twin and its PNG files.

    Raises:
        InvalidParameter: no runs, or no ``out_dir`` where there is no single run folder.
    """
    single = runs[0] if isinstance(runs, list | tuple) and len(runs) == 1 else runs
    cf = counterfactual_of(single)
    data = [cf.baseline, cf.treated] if cf is not None else many(runs)
    if not data:
        raise InvalidParameter("runs must name at least one run")
    if out_dir is None:
        if cf is not None and Path(cf.source).is_dir():
            out_dir = cf.source
        elif len(data) != 1 or not Path(data[0].source).is_dir():
            raise InvalidParameter("out_dir(=None) is only allowed for a single saved run folder")
        else:
            out_dir = data[0].source
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidParameter(f"out_dir(={str(out)!r}) is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidParameter(f"out_dir(={str(out)!r}) cannot be created: {exc}") from None
    labels = ["baseline", "treated"] if cf is not None else run_labels(data)
    if title is None:
        if cf is not None:
            s = cf.summary
            title = (
                f"mktsim report: counterfactual of {s.get('scenario')} under {s.get('mechanism')}"
            )
        elif len(data) == 1:
            title = f"mktsim report: {labels[0]}"
        else:
            title = f"mktsim report: {len(data)} runs compared"
    blocks = counterfactual_blocks(cf) if cf is not None else []
    blocks += _verdicts(data, labels)
    if len(data) > 1:
        blocks += _comparison_blocks(data, labels)
    for i, (d, label) in enumerate(zip(data, labels, strict=True)):
        blocks += _run_blocks(i, d, label, len(data) > 1)
    blocks += _glossary(
        any(b.role == "welfare" for b in blocks),
        any(b.role == "shocks" for b in blocks),
        cf is not None,
    )

    html_path = out / "report.html"
    html_path.write_text(render_html(title, blocks), encoding="utf-8")
    md_path: Path | None = None
    figures: list[Path] = []
    if markdown:
        fig_dir = out / "report_figures"
        fig_dir.mkdir(exist_ok=True)
        for b in blocks:
            if b.kind == "image":
                path = fig_dir / f"{b.name}.png"
                path.write_bytes(b.png)
                figures.append(path)
        md_path = out / "report.md"
        md_path.write_text(render_markdown(title, blocks, fig_dir.name), encoding="utf-8")
    return ReportPaths(html_path, md_path, tuple(figures))
