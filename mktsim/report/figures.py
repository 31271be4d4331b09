"""Figures of runs, drawn on a matplotlib ``Axes`` (a new one when ``ax`` is None) and returned.

The same conventions hold in every figure: a good has one colour wherever it appears (its place
among the run's goods, so runs of one scenario agree); a price axis turns logarithmic when the
prices drawn span more than :data:`LOG_SPAN` (a supply chain's 0.04 and 1.5 on one linear axis
would flatten the smaller); every plot against time marks each shock with a dash-dotted vertical
line, and errors are drawn against the reference in force (:mod:`mktsim.report.references`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mktsim.errors import InvalidParameter
from mktsim.report.data import CounterfactualData, RunData, RunLike, load, many, run_labels
from mktsim.report.references import regimes, shocks, wide_frame
from mktsim.report.tables import (
    deviation_goods,
    excess_demand_path,
    payout_ids,
    peak_deviation,
    price_error_path,
    transactions,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "LOG_SPAN",
    "good_colours",
    "moving_goods",
    "plot_baseline_treated",
    "plot_deviation",
    "plot_excess_demand",
    "plot_excess_demand_norm",
    "plot_log_error",
    "plot_phase",
    "plot_prices",
    "plot_volume",
    "plot_welfare",
    "power_label",
]

#: Ratio of the largest to the smallest positive price above which a price axis is logarithmic
#: (about one and a half orders of magnitude).
LOG_SPAN = 10**1.5

_SHOCK_STYLE: dict[str, Any] = {"color": "0.35", "ls": "-.", "lw": 0.9}


def good_colours(goods: Sequence[str]) -> dict[str, str]:
    """One matplotlib colour per good, by its place among the run's goods."""
    return {str(g): f"C{i % 10}" for i, g in enumerate(goods)}


def _axes(ax: Axes | None, figsize: tuple[float, float] = (7.5, 4.0)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=figsize)
    return new


def _constant(x: pd.Series) -> bool:
    v = x.to_numpy(float)
    return v.size == 0 or bool(np.nanmax(v) - np.nanmin(v) <= 1e-12 * max(np.nanmax(np.abs(v)), 1))


def _mark_shocks(ax: Axes, runs: Sequence[RunData]) -> None:
    """A dash-dotted vertical line at each shock, its kind written at the top."""
    from matplotlib.transforms import blended_transform_factory

    seen: set[tuple[float, str]] = set()
    top = blended_transform_factory(ax.transData, ax.transAxes)
    for data in runs:
        for row in shocks(data):
            key = (float(row["time"]), str(row.get("kind")))
            if key in seen:
                continue
            seen.add(key)
            ax.axvline(key[0], **_SHOCK_STYLE)
            ax.text(
                key[0],
                0.99,
                f" {key[1]}",
                transform=top,
                va="top",
                ha="left",
                fontsize="small",
                color="0.3",
                rotation=90,
            )


def _maybe_log_prices(ax: Axes, values: np.ndarray) -> None:
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size and positive.max() / positive.min() > LOG_SPAN:
        ax.set_yscale("log")


def plot_prices(run: RunLike, ax: Axes | None = None, column: str = "estimate") -> Axes:
    """Each good's price path (``column``) against time, the reference in force dashed (a step
    at each shock that changed the economy), shocks marked; log axis for a wide span."""
    data = load(run)
    ax = _axes(ax)
    prices, regs = data.frame("prices"), regimes(data)
    if prices.empty:
        return _empty(ax, "no prices recorded")
    wide = wide_frame(prices, column, data.goods).reset_index()
    colours = good_colours(data.goods)
    t0, t1 = (
        float(wide["time"].min()),
        float(max(wide["time"].max(), data.summary.get("sim_time") or 0)),
    )
    drawn = [wide[g].to_numpy(float) for g in wide.columns if g not in ("time", "round")]
    has_ref = False
    for good in (c for c in wide.columns if c not in ("time", "round")):
        colour = colours.get(str(good), "C0")
        ax.plot(wide["time"], wide[good], color=colour, lw=1.2, label=str(good))
        xs, ys = [], []
        for k, regime in enumerate(regs):
            start = t0 if k == 0 else max(regime.start, t0)
            end = regs[k + 1].start if k + 1 < len(regs) else t1
            value = (regime.prices or {}).get(str(good), np.nan)
            xs += [start, end]
            ys += [value, value]
        if np.isfinite(ys).any():
            ax.plot(xs, ys, color=colour, ls="--", lw=0.8)
            drawn.append(np.asarray(ys, dtype=float))
            has_ref = True
    _maybe_log_prices(ax, np.concatenate(drawn) if drawn else np.array([]))
    _mark_shocks(ax, [data])
    ax.set_xlabel("simulation time")
    ax.set_ylabel("price (numeraire = 1)")
    ax.set_title("prices" + ("  (dashed: equilibrium in force)" if has_ref else ""))
    if len(data.goods) <= 12:
        ax.legend(loc="best", fontsize="small")
    return ax


def _paths_per_run(
    runs: RunLike | Sequence[RunLike],
    ax: Axes | None,
    labels: Sequence[str] | None,
    path: Callable[[RunData], pd.DataFrame],
    column: str,
) -> tuple[Axes, list[RunData], int]:
    """One line per run of ``path(run)[column]`` against time; returns how many were drawn."""
    data = many(runs)
    labels = list(labels) if labels is not None else run_labels(data)
    ax = _axes(ax)
    drawn = 0
    for i, (label, d) in enumerate(zip(labels, data, strict=True)):
        frame = path(d)
        if frame.empty:
            continue
        ax.plot(
            frame["time"], frame[column].clip(lower=1e-16), color=f"C{i % 10}", lw=1.2, label=label
        )
        drawn += 1
    return ax, data, drawn


def plot_log_error(
    runs: RunLike | Sequence[RunLike], ax: Axes | None = None, labels: Sequence[str] | None = None
) -> Axes:
    """Price error against the equilibrium in force (log scale) over time, one line per run."""
    ax, data, drawn = _paths_per_run(runs, ax, labels, price_error_path, "price_error")
    if not drawn:
        return _empty(ax, "no reference equilibrium")
    tols = {d.summary.get("price_tolerance") for d in data} - {None}
    for tol in tols:
        ax.axhline(float(tol), color="grey", ls=":", lw=0.8)  # type: ignore[arg-type]
    _log_y(ax)
    _mark_shocks(ax, data)
    ax.set_xlabel("simulation time")
    ax.set_ylabel("max relative price error")
    ax.set_title("price error against the equilibrium" + ("  (dotted: tolerance)" if tols else ""))
    _legend_below(ax)
    return ax


def plot_excess_demand(run: RunLike, ax: Axes | None = None, linthresh: float = 1e-6) -> Axes:
    """Relative excess demand of each good over time (the market's gradient), symlog scale
    (linear within ±``linthresh``)."""
    data = load(run)
    ax = _axes(ax)
    ed = data.frame("excess_demand")
    if ed.empty:
        return _empty(ax, "no excess demand recorded")
    wide = wide_frame(ed, "relative", data.goods).reset_index()
    colours = good_colours(data.goods)
    for good in (c for c in wide.columns if c not in ("time", "round")):
        ax.plot(
            wide["time"], wide[good], color=colours.get(str(good), "C0"), lw=1.2, label=str(good)
        )
    ax.axhline(0.0, color="black", lw=0.6)
    _log_y(ax, "symlog", linthresh=linthresh)
    _mark_shocks(ax, [data])
    ax.set_xlabel("simulation time")
    ax.set_ylabel("excess demand / supply")
    ax.set_title(f"excess demand per good (symlog, linear within ±{power_label(linthresh)})")
    if len(data.goods) <= 12:
        ax.legend(loc="best", fontsize="small")
    return ax


def plot_excess_demand_norm(
    runs: RunLike | Sequence[RunLike], ax: Axes | None = None, labels: Sequence[str] | None = None
) -> Axes:
    """Max relative excess demand over goods (log scale) over time, one line per run."""
    ax, data, drawn = _paths_per_run(runs, ax, labels, excess_demand_path, "excess_demand_norm")
    if not drawn:
        return _empty(ax, "no excess demand recorded")
    _log_y(ax)
    _mark_shocks(ax, data)
    ax.set_xlabel("simulation time")
    ax.set_ylabel("max |excess demand| / supply")
    ax.set_title("excess-demand norm")
    _legend_below(ax)
    return ax


def moving_goods(data: RunData, column: str = "estimate") -> list[str]:
    """Goods whose price moves during the run (in scenario order)."""
    prices = data.frame("prices")
    if prices.empty:
        return []
    wide = wide_frame(prices, column, data.goods)
    return [g for g in wide.columns if not _constant(wide[g])]


def plot_phase(run: RunLike, goods: Sequence[str] | None = None, ax: Axes | None = None) -> Axes:
    """Two goods' prices against each other (a phase portrait), start and equilibrium marked.

    Args:
        goods: the two goods (default: the first two whose price moves).
    """
    data = load(run)
    ax = _axes(ax, (5.0, 4.5))
    pair = list(goods) if goods is not None else moving_goods(data)[:2]
    if len(pair) != 2:
        return _empty(ax, "fewer than two goods with moving prices")
    wide = wide_frame(data.frame("prices"), "estimate", data.goods)
    missing = [g for g in pair if g not in wide.columns]
    if missing:
        raise InvalidParameter(f"goods {missing} have no prices; goods: {list(wide.columns)}")
    x, y = wide[pair[0]].to_numpy(float), wide[pair[1]].to_numpy(float)
    ax.plot(x, y, color="C0", lw=1.0)
    ax.plot(x[:1], y[:1], "o", color="C2", label="start")
    ax.plot(x[-1:], y[-1:], "s", color="C3", label="end")
    ref = data.equilibrium or {}
    if pair[0] in ref and pair[1] in ref:
        ax.plot([ref[pair[0]]], [ref[pair[1]]], "*", color="black", ms=12, label="equilibrium")
    ax.set_xlabel(f"price of {pair[0]}")
    ax.set_ylabel(f"price of {pair[1]}")
    ax.set_title("price phase portrait")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return ax


def plot_welfare(run: RunLike, ax: Axes | None = None) -> Axes:
    """Gains from trade per population: money-metric surplus realised against the surplus at
    the equilibrium allocation (numeraire units); mean utility gain when money is unavailable."""
    data = load(run)
    ax = _axes(ax, (6.0, 4.0))
    w = data.frame("welfare")
    if w.empty:
        return _empty(ax, "no welfare table")
    names = w["population"].astype(str).tolist()
    pos = np.arange(len(names))
    if "surplus" in w and w["surplus"].notna().any():
        ax.bar(pos - 0.17, w["surplus"], width=0.34, color="C0", label="realised")
        ax.bar(pos + 0.17, w["surplus_equilibrium"], width=0.34, color="C1", label="at equilibrium")
        ax.set_ylabel("money-metric surplus (numeraire)")
        ax.legend(loc="best", fontsize="small")
    else:
        ax.bar(pos, w["gain_mean"], width=0.6, color="C0")
        ax.set_ylabel("mean utility gain")
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_xticks(pos, names)
    ax.set_xlim(-0.9, len(names) - 0.1)
    ax.set_title("gains from trade per population")
    return ax


def plot_volume(run: RunLike, ax: Axes | None = None) -> Axes:
    """Cumulative volume (units bought) of each good over time."""
    data = load(run)
    ax = _axes(ax)
    if not data.has("trades"):
        return _empty(ax, "no trades")
    tx = transactions(data.frame("trades"), payout_ids(data))
    colours = good_colours(data.goods)
    for good, g in tx.groupby("good", sort=False):
        ax.step(
            g["time"],
            g["volume"].cumsum(),
            where="post",
            color=colours.get(str(good), "C0"),
            label=str(good),
        )
    _mark_shocks(ax, [data])
    ax.set_xlabel("simulation time")
    ax.set_ylabel("cumulative units bought")
    ax.set_title("traded volume")
    ax.legend(loc="best", fontsize="small")
    return ax


def _deviation_by_good(cf: CounterfactualData) -> list[tuple[str, pd.DataFrame, str]]:
    """``(good, its rows of the deviation table, its colour)`` for each good a counterfactual's
    figures draw, in drawing order; empty when no deviation was recorded. Found in one place so
    that both figures show the same goods in the same colours."""
    dev = cf.deviation
    goods = deviation_goods(cf)
    if dev.empty or not goods:
        return []
    colours = good_colours(cf.treated.goods or goods)
    names = dev["good"].astype(str)
    return [(good, dev[names == good], colours.get(good, "C0")) for good in goods]


def plot_deviation(cf: CounterfactualData, ax: Axes | None = None) -> Axes:
    """Each good's price deviation from the baseline (``treated / baseline - 1``) against time,
    the peak starred, the tolerance band dotted, shocks marked."""
    ax = _axes(ax)
    per_good = _deviation_by_good(cf)
    if not per_good:
        return _empty(ax, "no price deviation recorded")
    for good, g, colour in per_good:
        ax.plot(g["time"], g["deviation"], color=colour, lw=1.2, label=good)
    ax.axhline(0.0, color="black", lw=0.6)
    tol = cf.treated.summary.get("price_tolerance")
    if tol:
        for sign in (-1.0, 1.0):
            ax.axhline(sign * float(tol), color="grey", ls=":", lw=0.8)
    peak = peak_deviation(cf)
    if peak["peak_time"] is not None:
        dev = cf.deviation
        at = dev[
            (dev["good"].astype(str) == peak["peak_good"]) & (dev["time"] == peak["peak_time"])
        ]
        ax.plot(
            [peak["peak_time"]],
            [float(at["deviation"].iloc[0])],
            "*",
            color="black",
            ms=11,
            label=f"peak {peak['peak_price_deviation']:.3g}",
        )
    _mark_shocks(ax, [cf.treated])
    ax.set_xlabel("simulation time")
    ax.set_ylabel("treated / baseline - 1")
    ax.set_title("price deviation from the baseline" + ("  (dotted: ±tolerance)" if tol else ""))
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_baseline_treated(cf: CounterfactualData, ax: Axes | None = None) -> Axes:
    """Both runs' prices of each good: the baseline thick, dashed and behind, the treated run
    thin, solid and semi-transparent in front, so that where they coincide both stay visible."""
    ax = _axes(ax)
    per_good = _deviation_by_good(cf)
    if not per_good:
        return _empty(ax, "no prices recorded")
    for good, g, colour in per_good:
        ax.plot(
            g["time"],
            g["baseline"],
            color=colour,
            ls="--",
            lw=2.4,
            zorder=2,
            label=f"{good} baseline",
        )
        ax.plot(
            g["time"],
            g["treated"],
            color=colour,
            ls="-",
            lw=1.2,
            alpha=0.7,
            zorder=3,
            label=f"{good} treated",
        )
    _maybe_log_prices(
        ax,
        np.concatenate(
            [g[["baseline", "treated"]].to_numpy(float).ravel() for _, g, _ in per_good]
        ),
    )
    _mark_shocks(ax, [cf.treated])
    ax.set_xlabel("simulation time")
    ax.set_ylabel("price (numeraire = 1)")
    ax.set_title("prices: baseline (dashed, behind) and treated (solid, in front)")
    if len(per_good) <= 6:
        ax.legend(loc="best", fontsize="small", ncols=2)
    return ax


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_label(value: float, _pos: Any = None) -> str:
    """Tick label 10ⁿ in plain text (mathtext labels cost most of a log plot's drawing time)."""
    if value == 0:
        return "0"
    sign = "−" if value < 0 else ""
    exponent = math.log10(abs(value))
    if abs(exponent - round(exponent)) < 1e-9:
        e = round(exponent)
        return sign + ("1" if e == 0 else "10" + str(e).translate(_SUPERSCRIPT))
    return f"{value:.2g}"


def _log_y(ax: Axes, scale: str = "log", **kwargs: Any) -> None:
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_yscale(scale, **kwargs)
    ax.yaxis.set_major_formatter(FuncFormatter(power_label))
    if scale == "symlog":
        ax.yaxis.set_minor_formatter(NullFormatter())


def _legend_below(ax: Axes) -> None:
    # run labels are long: below the axes they never hide a line
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize="small", frameon=False)


def _empty(ax: Axes, text: str) -> Axes:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return ax
