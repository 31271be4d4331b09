"""Convergence report: tables checked against independent recomputations from the saved files,
cycle detection against synthetic paths and a naive Scarf iteration, welfare against closed-form
Cobb-Douglas money metrics, and the HTML/Markdown page against its self-containment contract."""

from __future__ import annotations

import argparse
import base64
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mktsim
from mktsim import report, report_cli
from mktsim.errors import InvalidParameter, MktsimError
from mktsim.welfare import WELFARE_COLUMNS, welfare_table

PNG = b"\x89PNG\r\n\x1a\n"


# ---- runs ------------------------------------------------------------------------------------

_RUNS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "cd_tat": ("cobb_douglas", {"n_agents": 50}, {}),
    "cd_non": ("cobb_douglas", {"n_agents": 50}, {"mode": "non_tatonnement"}),
    "cd_adam": ("cobb_douglas", {"n_agents": 50}, {"method": "adam"}),
    "scarf_add": (
        "scarf",
        {},
        {
            "method": "additive",
            "step": 0.1,
            "normalize": "numeraire",
            "until": 400.0,
            "initial_prices": {"good0": 1.0, "good1": 1.3, "good2": 0.7},
        },
    ),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[mktsim.Run, Path]]:
    base = tmp_path_factory.mktemp("runs")
    out = {}
    for key, (name, params, options) in _RUNS.items():
        run = mktsim.simulate(mktsim.build_scenario(name, **params), **options)
        folder = run.save(base / key)
        if not (folder / "welfare.parquet").exists():  # until Run.save writes it itself
            welfare_table(run).to_parquet(folder / "welfare.parquet", index=False)
        out[key] = (run, folder)
    return out


@pytest.fixture(scope="module")
def folders(runs: dict[str, tuple[mktsim.Run, Path]]) -> dict[str, Path]:
    return {k: v[1] for k, v in runs.items()}


@pytest.fixture(scope="module")
def table(folders: dict[str, Path]) -> pd.DataFrame:
    return report.convergence_table(list(folders.values())).set_index(pd.Index(list(folders)))


def _summary(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "summary.json").read_text())


def _parquet(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(folder / f"{name}.parquet")


def _final_error(folder: Path) -> float:
    """Final max relative price error, from the files with plain Python loops."""
    s = _summary(folder)
    prices = _parquet(folder, "prices")
    last = prices[prices["round"] == prices["round"].max()]
    column = "price" if s["converged"] else "estimate"
    eq = s["equilibrium_prices"]
    worst = 0.0
    for good, value in zip(last["good"].astype(str), last[column], strict=True):
        worst = max(worst, abs(value - eq[good]) / eq[good])
    return worst


def _naive_error_path(folder: Path) -> tuple[list[float], list[float]]:
    eq = _summary(folder)["equilibrium_prices"]
    prices = _parquet(folder, "prices")
    by_round: dict[int, tuple[float, float]] = {}
    for t, r, g, est in zip(
        prices["time"], prices["round"], prices["good"].astype(str), prices["estimate"], strict=True
    ):
        err = abs(est - eq[g]) / eq[g]
        old = by_round.get(int(r), (t, 0.0))
        by_round[int(r)] = (t, max(old[1], err))
    rounds = sorted(by_round)
    return [by_round[r][0] for r in rounds], [by_round[r][1] for r in rounds]


def _cd_arrays(run: mktsim.Run) -> tuple[np.ndarray, np.ndarray]:
    pop: Any = run.scenario.populations[0]
    return np.asarray(pop.utility.shares), np.asarray(pop.endowment)


def _scarf_z(p: np.ndarray) -> np.ndarray:
    """Scarf's excess demand: consumer i (wealth p_i) buys p_i / (p_i + p_{i+1}) of goods i and
    i+1; one unit of each good exists."""
    share = p / (p + np.roll(p, -1))
    return share + np.roll(share, 1) - 1.0


# ---- the convergence table -----------------------------------------------------------------


def test_convergence_table_has_documented_columns_one_row_per_run(
    table: pd.DataFrame, folders: dict[str, Path]
) -> None:
    assert list(table.columns) == list(report.CONVERGENCE_COLUMNS)
    assert len(table) == len(folders)
    assert table["run"].is_unique
    assert list(table["source"]) == [str(f) for f in folders.values()]
    for key, folder in folders.items():
        s = _summary(folder)
        for col in ("scenario", "mechanism", "mode", "method", "seed", "rounds", "converged"):
            assert table.loc[key, col] == s[col], (key, col)


def test_price_error_equals_recomputation_from_files(
    table: pd.DataFrame, folders: dict[str, Path]
) -> None:
    for key, folder in folders.items():
        expected = _final_error(folder)
        assert table.loc[key, "price_error"] == pytest.approx(expected, rel=1e-12, abs=1e-15)
        assert table.loc[key, "price_error"] == pytest.approx(
            _summary(folder)["price_error"], rel=1e-12, abs=1e-15
        )


def test_cobb_douglas_reference_is_the_closed_form(runs: dict[str, Any]) -> None:
    run, folder = runs["cd_tat"]
    shares, endowment = _cd_arrays(run)
    # market clearing for goods 1..g-1 with p_0 = 1: (diag(E) - shares^T e) p = 0
    a = np.diag(endowment.sum(axis=0)) - shares.T @ endowment
    p = np.concatenate([[1.0], np.linalg.solve(a[1:, 1:], -a[1:, 0])])
    eq = _summary(folder)["equilibrium_prices"]
    np.testing.assert_allclose([eq[g] for g in run.scenario.goods.names], p, rtol=1e-10)


def test_price_error_path_matches_a_naive_loop(folders: dict[str, Path]) -> None:
    for key in ("cd_tat", "scarf_add"):
        times, errors = _naive_error_path(folders[key])
        path = report.price_error_path(folders[key])
        assert list(path.columns) == ["time", "round", "price_error"]
        np.testing.assert_allclose(path["time"], times)
        np.testing.assert_allclose(path["price_error"], errors, rtol=1e-12, atol=1e-15)


def test_time_to_tolerance(table: pd.DataFrame, folders: dict[str, Path]) -> None:
    for key, folder in folders.items():
        times, errors = _naive_error_path(folder)
        tol = _summary(folder)["price_tolerance"]
        settled = [t for k, t in enumerate(times) if all(e < tol for e in errors[k:])]
        got = table.loc[key, "time_to_tolerance"]
        if settled:
            assert got == settled[0], key
        else:
            assert np.isnan(got), key
    # the auctioneer converges on Cobb-Douglas; non-tatonnement trade moves the equilibrium away
    # from the one of the endowments; Scarf never settles
    assert 0 < table.loc["cd_tat", "time_to_tolerance"] < table.loc["cd_tat", "sim_time"]
    assert np.isfinite(table.loc["cd_adam", "time_to_tolerance"])
    assert np.isnan(table.loc["cd_non", "time_to_tolerance"])
    assert np.isnan(table.loc["scarf_add", "time_to_tolerance"])


def test_excess_demand_norm_and_path(table: pd.DataFrame, folders: dict[str, Path]) -> None:
    for key, folder in folders.items():
        ed = _parquet(folder, "excess_demand")
        last = ed[ed["round"] == ed["round"].max()]
        assert table.loc[key, "excess_demand_norm"] == pytest.approx(
            float(last["relative"].abs().max()), rel=1e-12
        )
    path = report.excess_demand_path(folders["scarf_add"])
    ed = _parquet(folders["scarf_add"], "excess_demand")
    rel = ed.pivot_table(index="round", columns="good", values="relative", observed=True)
    np.testing.assert_allclose(path["excess_demand_l2"], np.sqrt((rel**2).sum(axis=1)))
    np.testing.assert_allclose(path["excess_demand_norm"], rel.abs().max(axis=1))


def test_excess_demand_table_is_the_market_gradient(runs: dict[str, Any]) -> None:
    # two runs that never traded, so holdings are the endowments and z is far from zero
    run, folder = runs["cd_adam"]
    t = report.excess_demand_table(folder)
    assert list(t.columns) == [
        "good",
        "final_price",
        "equilibrium_price",
        "price_error",
        "excess_demand",
        "relative_excess_demand",
    ]
    assert list(t["good"]) == run.scenario.goods.names
    shares, _ = _cd_arrays(run)
    # the ledger holds fixed-point units: use the holdings it recorded, not the float endowments
    holdings = _parquet(folder, "holdings")
    start = holdings[holdings["time"] == holdings["time"].min()]
    endowment = start.pivot(index="agent", columns="good", values="quantity")[t["good"]].to_numpy()
    p = t["final_price"].to_numpy()
    z = (shares * (endowment @ p)[:, None] / p[None, :]).sum(axis=0) - endowment.sum(axis=0)
    assert np.abs(z).max() > 1e-5
    np.testing.assert_allclose(t["excess_demand"], z, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(t["relative_excess_demand"], z / endowment.sum(axis=0), rtol=1e-7)
    assert abs(float(p @ t["excess_demand"].to_numpy())) < 1e-9  # Walras' law
    eq = _summary(folder)["equilibrium_prices"]
    np.testing.assert_allclose(t["equilibrium_price"], [eq[g] for g in t["good"]])
    np.testing.assert_allclose(
        t["price_error"], (t["final_price"] - t["equilibrium_price"]) / t["equilibrium_price"]
    )
    scarf = report.excess_demand_table(runs["scarf_add"][1])
    np.testing.assert_allclose(
        scarf["excess_demand"], _scarf_z(scarf["final_price"].to_numpy()), rtol=1e-9, atol=1e-12
    )


def test_excess_demand_by_population_table(folders: dict[str, Path]) -> None:
    t = report.excess_demand_by_population_table(folders["scarf_add"])
    raw = _parquet(folders["scarf_add"], "excess_demand_by_population")
    last = raw[raw["round"] == raw["round"].max()]
    assert list(t.columns) == ["population", "good0", "good1", "good2"]
    for good in ("good0", "good1", "good2"):
        assert t.loc[0, good] == float(last.loc[last["good"] == good, "excess_demand"].iloc[0])


# ---- cycles ----------------------------------------------------------------------------------


def test_scarf_additive_cycles_with_the_period_of_a_naive_iteration(
    table: pd.DataFrame,
) -> None:
    p = np.array([1.0, 1.3, 0.7])
    path = []
    for _ in range(400):  # additive steps of 0.1, good0 held at 1, one round per time unit
        path.append(p[1])
        p = p + 0.1 * _scarf_z(p) * np.array([0.0, 1.0, 1.0])
    side = np.sign(np.array(path) - 1.0)
    crossings = [k for k in range(1, len(side)) if side[k] != side[k - 1]]
    period = 2.0 * float(np.mean(np.diff(crossings)))
    assert table.loc["scarf_add", "cycle_detected"]
    assert table.loc["scarf_add", "cycle_period"] == pytest.approx(period, rel=0.03)
    assert table.loc["scarf_add", "cycle_amplitude"] > 0.3


def test_no_cycle_where_prices_converge(table: pd.DataFrame) -> None:
    assert not table.loc["cd_tat", "cycle_detected"]
    assert not table.loc["cd_non", "cycle_detected"]
    # Adam overshoots and oscillates on its way in: a damped oscillation is not a cycle
    assert not table.loc["cd_adam", "cycle_detected"]


def _frame(x: np.ndarray, good: str = "g1", t: np.ndarray | None = None) -> pd.DataFrame:
    t = np.arange(x.size, dtype=float) if t is None else t
    one = pd.DataFrame(
        {"time": t, "round": np.arange(x.size), "good": "money", "price": 1.0, "estimate": 1.0}
    )
    other = pd.DataFrame(
        {"time": t, "round": np.arange(x.size), "good": good, "price": x, "estimate": x}
    )
    return pd.concat([one, other], ignore_index=True)


@settings(max_examples=20)
@given(amplitude=st.floats(0.01, 0.5), period=st.floats(4.0, 40.0), phase=st.floats(0, 6.28))
def test_sustained_oscillation_is_a_cycle_with_its_period(
    amplitude: float, period: float, phase: float
) -> None:
    t = np.arange(int(3.5 * period) + 2, dtype=float)
    x = 1.0 + amplitude * np.sin(2 * np.pi * t / period + phase)
    cycle = report.detect_cycle(_frame(x), {"money": 1.0, "g1": 1.0})
    assert cycle.detected and cycle.good == "g1"
    assert abs(cycle.period - period) <= 1.5
    assert cycle.amplitude == pytest.approx(amplitude, rel=0.25)
    assert not report.detect_cycle(_frame(x), {"g1": 1.0}, converged=True).detected


@settings(max_examples=20)
@given(amplitude=st.floats(0.01, 0.5), period=st.floats(4.0, 40.0), factor=st.floats(0.05, 0.4))
def test_damped_oscillation_is_not_a_cycle(amplitude: float, period: float, factor: float) -> None:
    t = np.arange(int(6 * period) + 2, dtype=float)
    # amplitude shrinks by `factor` every half period
    x = 1.0 + amplitude * factor ** (2 * t / period) * np.sin(2 * np.pi * t / period)
    assert not report.detect_cycle(_frame(x), {"g1": 1.0}).detected


def test_growing_spiral_and_two_cycle_are_cycles_and_drift_or_noise_are_not(
    rng: np.random.Generator,
) -> None:
    t = np.arange(200, dtype=float)
    growing = 1.0 + 0.05 * 1.01**t * np.sin(2 * np.pi * t / 25)
    assert report.detect_cycle(_frame(growing), None).detected
    flip = 1.0 + 0.1 * (-1.0) ** t
    two = report.detect_cycle(_frame(flip), {"g1": 1.0})
    assert two.detected and two.period == pytest.approx(2.0)
    assert not report.detect_cycle(_frame(1.0 + 0.5 * np.exp(-t / 10)), {"g1": 1.0}).detected
    noise = 1.0 + 0.05 * rng.standard_normal(400)
    assert not report.detect_cycle(_frame(noise), {"g1": 1.0}).detected
    # random signs of constant size: the amplitude persists, but the timing is irregular
    # (run lengths are geometric, coefficient of variation about 0.7)
    telegraph = 1.0 + 0.05 * rng.choice([-1.0, 1.0], size=400)
    assert not report.detect_cycle(_frame(telegraph), {"g1": 1.0}).detected
    assert report.detect_cycle(_frame(telegraph), {"g1": 1.0}, regularity=2.0).detected
    with pytest.raises(InvalidParameter, match="tolerance"):
        report.detect_cycle(_frame(flip), None, tolerance=0.0)


# ---- trades, welfare --------------------------------------------------------------------------


def test_market_table_against_the_trades_file(runs: dict[str, Any], table: pd.DataFrame) -> None:
    folder = runs["cd_non"][1]
    m = report.market_table(folder).set_index("good")
    trades = _parquet(folder, "trades")
    eq = _summary(folder)["equilibrium_prices"]
    for good in ("good1", "good2"):
        rows = trades[trades["good"] == good]
        bought = rows[rows["quantity"] > 0]
        per_trade = bought.groupby("trade_id")["price"].first().sort_index()
        prices = per_trade.to_numpy()
        assert m.loc[good, "trades"] == per_trade.size
        assert m.loc[good, "volume"] == pytest.approx(bought["quantity"].sum(), rel=1e-12)
        assert m.loc[good, "turnover"] == pytest.approx(bought["cash"].sum(), rel=1e-12)
        alpha = 100 * np.sqrt(np.mean((prices - eq[good]) ** 2)) / eq[good]
        assert m.loc[good, "smith_alpha"] == pytest.approx(alpha, rel=1e-12)
        returns = np.log(prices[1:] / prices[:-1])
        assert m.loc[good, "volatility"] == pytest.approx(np.std(returns, ddof=1), rel=1e-9)
        assert m.loc[good, "last_price"] == prices[-1]
    assert table.loc["cd_non", "trades"] == trades["trade_id"].nunique()
    assert table.loc["cd_non", "smith_alpha"] == pytest.approx(m["smith_alpha"].max())
    assert report.market_table(runs["scarf_add"][1]).empty  # tatonnement that never settled


def test_spreads_from_a_quotes_table() -> None:
    prices = _frame(np.full(5, 2.0))
    quotes = pd.DataFrame(
        {
            "time": [0.0, 1.0, 2.0],
            "good": ["g1"] * 3,
            "bid": [1.9, 1.8, np.nan],
            "ask": [2.1, 2.2, 2.0],
        }
    )
    data = report.RunData.from_frames(
        {"scenario": "synthetic", "mechanism": "book", "equilibrium_prices": None},
        {"prices": prices, "quotes": quotes},
    )
    m = report.market_table(data)
    # relative spreads 0.2 / 2.0 and 0.4 / 2.0; the one-sided quote is ignored
    assert m.loc[0, "spread_mean"] == pytest.approx(0.15)
    assert m.loc[0, "spread_median"] == pytest.approx(0.15)
    row = report.convergence_table(data).iloc[0]
    assert row["spread"] == pytest.approx(0.15)
    assert np.isnan(row["price_error"]) and np.isnan(row["allocative_efficiency"])


def test_welfare_against_cobb_douglas_money_metric(runs: dict[str, Any]) -> None:
    for key in ("cd_tat", "cd_non"):
        run, folder = runs[key]
        w = report.welfare(folder)
        assert list(w.columns) == list(WELFARE_COLUMNS)
        shares, endowment = _cd_arrays(run)
        holdings = _parquet(folder, "holdings")
        start = holdings[holdings["time"] == holdings["time"].min()]
        end = holdings[holdings["time"] == holdings["time"].max()]
        goods = run.scenario.goods.names
        x0 = start.pivot(index="agent", columns="good", values="quantity")[goods].to_numpy()
        x1 = end.pivot(index="agent", columns="good", values="quantity")[goods].to_numpy()
        np.testing.assert_allclose(x0, endowment, atol=1e-9)
        eq = _summary(folder)["equilibrium_prices"]
        p = np.array([eq[g] for g in goods])

        def u(x: np.ndarray, a: np.ndarray = shares) -> np.ndarray:
            return np.prod(x**a, axis=1)

        # cheapest bundle reaching u = 1 at p costs prod_j (p_j / a_j)^a_j
        unit_cost = np.prod((p / shares) ** shares, axis=1)
        m0, m1 = (u(x0) * unit_cost).sum(), (u(x1) * unit_cost).sum()
        total = float(endowment.sum(axis=0) @ p)  # first welfare theorem: sum of m at p*
        row = w.iloc[0]
        assert row["agents"] == 50
        assert row["utility_initial"] == pytest.approx(u(x0).mean(), rel=1e-9)
        assert row["utility_final"] == pytest.approx(u(x1).mean(), rel=1e-9)
        assert row["money_initial"] == pytest.approx(m0, rel=1e-9)
        assert row["money_final"] == pytest.approx(m1, rel=1e-9)
        assert row["money_equilibrium"] == pytest.approx(total, rel=1e-9)
        assert row["efficiency"] == pytest.approx((m1 - m0) / (total - m0), rel=1e-9)
        assert row["share_worse_off"] == 0.0  # voluntary exchange
        assert m1 <= total * (1 + 1e-9)
    tat = report.welfare(runs["cd_tat"][1]).iloc[0]
    assert tat["efficiency"] == pytest.approx(1.0, abs=1e-6)  # trade at the equilibrium
    assert tat["share_better_off"] == 1.0
    assert 0.5 < report.welfare(runs["cd_non"][1]).iloc[0]["efficiency"] < 1.0


def test_welfare_of_scarf_without_trade(runs: dict[str, Any], table: pd.DataFrame) -> None:
    w = report.welfare(runs["scarf_add"][1]).iloc[0]
    # Leontief: nobody can use a lone good, so u(endowment) = 0; at p* = (1, 1, 1) each consumer
    # gets half a unit of both of its goods, worth its wealth 1
    assert w["utility_initial"] == 0.0 and w["gain_mean"] == 0.0
    assert w["utility_equilibrium"] == pytest.approx(0.5)
    assert w["money_equilibrium"] == pytest.approx(3.0)
    assert w["efficiency"] == 0.0
    assert table.loc["scarf_add", "allocative_efficiency"] == 0.0
    assert table.loc["cd_tat", "allocative_efficiency"] == pytest.approx(1.0, abs=1e-6)


# ---- in-memory runs and figures ---------------------------------------------------------------


def test_in_memory_run_gives_the_same_tables(runs: dict[str, Any], table: pd.DataFrame) -> None:
    run = runs["cd_non"][0]
    row = report.convergence_table(run).iloc[0]
    for col in (
        "price_error",
        "time_to_tolerance",
        "excess_demand_norm",
        "allocative_efficiency",
        "smith_alpha",
    ):
        assert row[col] == pytest.approx(table.loc["cd_non", col], nan_ok=True), col
    pd.testing.assert_frame_equal(report.welfare(run), report.welfare(runs["cd_non"][1]))


def test_figures_draw_the_data(runs: dict[str, Any], folders: dict[str, Path]) -> None:
    import matplotlib.pyplot as plt

    try:
        ax = report.plot_prices(folders["scarf_add"])
        lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
        dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        assert len(lines) == 3 and len(dashed) == 3
        prices = _parquet(folders["scarf_add"], "prices")
        good1 = prices[prices["good"] == "good1"]["estimate"].to_numpy()
        np.testing.assert_allclose(np.asarray(lines[1].get_ydata()), good1)
        assert sorted(float(np.asarray(ln.get_ydata())[0]) for ln in dashed) == [1.0, 1.0, 1.0]

        ax = report.plot_log_error([folders["cd_tat"], folders["cd_adam"]])
        drawn = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
        assert [ln.get_label() for ln in drawn] == ["multiplicative", "adam"]
        _, errors = _naive_error_path(folders["cd_adam"])
        np.testing.assert_allclose(np.asarray(drawn[1].get_ydata()), np.clip(errors, 1e-16, None))
        assert ax.get_yscale() == "log"

        ax = report.plot_excess_demand(runs["cd_tat"][0])
        assert len([ln for ln in ax.get_lines() if ln.get_label() in ("good1", "good2")]) == 2
        for fn in (report.plot_welfare, report.plot_phase, report.plot_volume):
            assert fn(folders["cd_non"]) is not None
    finally:
        plt.close("all")


# ---- the page ---------------------------------------------------------------------------------


class _Page(HTMLParser):
    VOID: ClassVar[set[str]] = {"meta", "img", "br", "hr", "link", "input", "col", "wbr", "source"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.images: list[str] = []
        self.tags: set[str] = set()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")
        if tag == "table":
            self.tables.append([])
        if tag == "tr":
            self.tables[-1].append([])
        if tag in ("td", "th"):
            self._cell = []
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unbalanced </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def page(folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> report.ReportPaths:
    out = tmp_path_factory.mktemp("page")
    return report.write_report([folders["cd_non"], folders["scarf_add"]], out)


def test_html_is_self_contained_and_well_formed(page: report.ReportPaths) -> None:
    text = page.html.read_text(encoding="utf-8")
    lowered = text.lower()
    for forbidden in (
        "http://",
        "https://",
        'src="//',
        "href=",
        "<script",
        "<link",
        "@import",
        "url(",
    ):
        assert forbidden not in lowered, forbidden
    parser = _Page()
    parser.feed(text)
    parser.close()
    assert not parser.errors and parser.stack == []
    assert {"html", "head", "body", "style", "table", "figure", "img"} <= parser.tags
    # 2 scenario comparisons; per run: prices, excess demand, phase, welfare (+ volume if traded)
    assert len(parser.images) == 2 + 5 + 4
    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)


def test_html_tables_show_the_values(page: report.ReportPaths, folders: dict[str, Path]) -> None:
    parser = _Page()
    parser.feed(page.html.read_text(encoding="utf-8"))
    header, *rows = parser.tables[0]  # the comparison's convergence table
    assert header[0] == "run" and "price_error" in header and "cycle_detected" in header
    col = header.index("price_error")
    cyc = header.index("cycle_detected")
    keys = ["cd_non", "scarf_add"]
    assert len(rows) == 2
    for key, row in zip(keys, rows, strict=True):
        assert float(row[col]) == pytest.approx(_final_error(folders[key]), rel=1e-3)
    assert [row[cyc] for row in rows] == ["no", "yes"]
    assert "Welfare per population (money at p*)" in page.html.read_text(encoding="utf-8")


def test_markdown_twin_references_existing_pngs(page: report.ReportPaths) -> None:
    assert page.markdown is not None
    text = page.markdown.read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == len(page.figures) == 11
    for link in links:
        path = page.markdown.parent / link
        assert path.is_file() and path.read_bytes().startswith(PNG)
    assert "| run |" in text and "price_error" in text
    assert "http" not in text


def test_missing_optional_tables_are_skipped(folders: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "bare"
    shutil.copytree(folders["cd_non"], folder)
    for name in ("trades", "welfare", "excess_demand_by_population", "holdings"):
        (folder / f"{name}.parquet").unlink()
    summary = _summary(folder)
    summary["equilibrium_prices"] = None
    (folder / "summary.json").write_text(json.dumps(summary))
    row = report.convergence_table(folder).iloc[0]
    for col in (
        "price_error",
        "time_to_tolerance",
        "trades",
        "smith_alpha",
        "allocative_efficiency",
    ):
        assert pd.isna(row[col]), col
    assert row["excess_demand_norm"] == pytest.approx(
        report.convergence_table(folders["cd_non"]).iloc[0]["excess_demand_norm"]
    )
    paths = report.write_report(folder, markdown=False)
    text = paths.html.read_text(encoding="utf-8")
    assert paths.markdown is None and paths.html.parent == folder
    assert "Welfare per population" not in text and "Trading per good" not in text
    assert text.count("data:image/png;base64,") == 3  # prices, excess demand, phase


# ---- errors and the command line ---------------------------------------------------------------


def test_bad_inputs(tmp_path: Path, folders: dict[str, Path]) -> None:
    with pytest.raises(MktsimError, match="does not exist"):
        report.load(tmp_path / "nope")
    with pytest.raises(MktsimError, match=r"no summary\.json"):
        report.load(tmp_path)
    with pytest.raises(InvalidParameter, match="out_dir"):
        report.write_report([folders["cd_tat"], folders["cd_non"]])
    with pytest.raises(InvalidParameter, match="run"):
        report.load(42)


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mktsim")
    report_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_writes_a_single_run_report(
    folders: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "scarf"
    shutil.copytree(folders["scarf_add"], folder)
    args = _cli(["report", str(folder), "--no-markdown"])
    assert args.func(args) == 0
    assert (folder / "report.html").is_file() and not (folder / "report.md").exists()
    assert str(folder / "report.html") in capsys.readouterr().out
    args = _cli(["report", str(tmp_path / "missing")])
    with pytest.raises(MktsimError, match="does not exist"):
        args.func(args)


def test_cli_comparison_goes_to_out_or_the_default(
    folders: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, ...]] = []

    def fake(runs: Any, out: Any, **kw: Any) -> report.ReportPaths:
        calls.append((list(runs), out, kw))
        return report.ReportPaths(Path("r.html"), None, ())

    monkeypatch.setattr(report, "write_report", fake)
    two = [str(folders["cd_tat"]), str(folders["cd_non"])]
    args = _cli(["report", *two])
    assert args.func(args) == 0
    assert calls[-1][1] == report_cli.DEFAULT_COMPARISON_DIR
    args = _cli(["report", *two, "--out", str(tmp_path / "x"), "--title", "T"])
    args.func(args)
    assert calls[-1][1] == tmp_path / "x" and calls[-1][2] == {"title": "T", "markdown": True}
    assert [str(p) for p in calls[-1][0]] == two


def test_supply_chain_report_has_the_price_derivative_table(tmp_path: Path) -> None:
    # tupperware at x = 4: the chain rule gives 3/2, 1/6, 1/24 (a = 2, b = 2/3, c = ln b)
    run = mktsim.simulate(mktsim.build_scenario("tupperware", natgas=4.0), "walrasian", seed=0)
    out = run.save(tmp_path / "run", figures=False)
    paths = report.write_report(out)
    assert paths.markdown is not None
    markdown = paths.markdown.read_text()
    assert "Price = derivative" in markdown
    closed = {"polyethylene": 1.5, "ethylene": 1 / 6, "natgas": 1 / 24}
    for good, value in closed.items():
        role = "raw" if good == "natgas" else "intermediate"
        row = next(r for r in markdown.splitlines() if r.startswith(f"| {good} | {role} |"))
        simulated, derivative, shadow = (float(c) for c in row.strip("|").split("|")[2:5])
        for shown in (simulated, derivative, shadow):
            assert shown == pytest.approx(value, rel=1e-3)  # rounded to 4 significant digits
    plain = mktsim.simulate(mktsim.build_scenario("cobb_douglas", n_agents=10), seed=0)
    plain_dir = plain.save(tmp_path / "plain", figures=False)
    plain_paths = report.write_report(plain_dir)
    assert plain_paths.markdown is not None
    assert "Price = derivative" not in plain_paths.markdown.read_text()
