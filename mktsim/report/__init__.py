"""Convergence reports: tables and figures of saved runs, and a self-contained HTML/Markdown page.

Everything here reads run folders (``summary.json`` plus one ``<table>.parquet`` per frame, as
written by ``Run.save``) or an object offering the same (``summary`` and ``frame(name)``, e.g. a
:class:`~mktsim.run.Run` in a notebook); nothing reads the simulator's state. Tables are pandas
DataFrames; figure functions draw on a matplotlib ``Axes`` (a new one when ``ax`` is None) and
return it.

Core tables (``prices``, ``excess_demand``) give price error, excess demand and cycles. Optional
ones are used when present and skipped otherwise:

* ``trades``: volume, turnover, Smith's alpha and volatility of transaction prices;
* ``quotes`` (columns ``time, good, bid, ask``; or ``bid``/``ask`` columns in ``prices``): spreads;
* ``welfare`` (see :mod:`mktsim.welfare`): welfare per population and allocative efficiency;
* ``excess_demand_by_population``: each population's part of the excess demand.

Definitions (the same in every table, figure and page):

* price error at a time: max over goods of ``|p_j - p*_j| / p*_j`` against the reference
  equilibrium ``p*`` (numeraire = 1), using the mechanism's ``estimate`` column, each good's last
  recorded value carried forward (so goods recorded at different times are compared together);
* excess-demand norm: max over goods of ``|z_j| / supply_j`` (the ``relative`` column); the vector
  ``z`` is the market's gradient, the direction in which a Walrasian auctioneer moves prices;
* time to tolerance: first recorded time after which the price error stays below the run's
  ``price_tolerance``;
* cycle: see :func:`detect_cycle`;
* reference in force: the equilibrium of the economy the run started in, then, from each shock
  that changed the economy, the equilibrium of the economy it left (see
  :mod:`mktsim.report.references`); errors, Smith's alpha and recovery use it, and so do
  welfare and allocative efficiency (:mod:`mktsim.welfare`, window by window).

The package has one module per job: :mod:`~mktsim.report.data` (loading runs),
:mod:`~mktsim.report.references` (the piecewise reference and the shocks table),
:mod:`~mktsim.report.tables` (paths and tables), :mod:`~mktsim.report.figures`,
:mod:`~mktsim.report.verdict` (the sentences that open a report) and
:mod:`~mktsim.report.page` (the HTML and Markdown page, rendered by jinja2 templates).
"""

from __future__ import annotations

from mktsim.metrics import Cycle, detect_cycle
from mktsim.report.data import RunData, load, run_labels
from mktsim.report.figures import (
    plot_excess_demand,
    plot_excess_demand_norm,
    plot_log_error,
    plot_phase,
    plot_prices,
    plot_volume,
    plot_welfare,
)
from mktsim.report.page import ReportPaths, write_report
from mktsim.report.references import SHOCK_COLUMNS, shocks_table
from mktsim.report.tables import (
    CONVERGENCE_COLUMNS,
    convergence_table,
    excess_demand_by_population_table,
    excess_demand_path,
    excess_demand_table,
    market_table,
    price_error_path,
    welfare,
)
from mktsim.report.verdict import verdict

__all__ = [
    "CONVERGENCE_COLUMNS",
    "SHOCK_COLUMNS",
    "Cycle",
    "ReportPaths",
    "RunData",
    "convergence_table",
    "detect_cycle",
    "excess_demand_by_population_table",
    "excess_demand_path",
    "excess_demand_table",
    "load",
    "market_table",
    "plot_excess_demand",
    "plot_excess_demand_norm",
    "plot_log_error",
    "plot_phase",
    "plot_prices",
    "plot_volume",
    "plot_welfare",
    "price_error_path",
    "run_labels",
    "shocks_table",
    "verdict",
    "welfare",
    "write_report",
]
