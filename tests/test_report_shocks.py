"""Reports of shocked runs, prediction markets and the page's conventions, against naive
recomputations from the files and closed forms (never against the report's own numbers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mktsim
from mktsim import report
from mktsim.cli import main
from mktsim.report import RunData
from mktsim.shocks import EndowmentShock

SHOCKS = (60.0, 120.0)
TOL = 1e-3


@pytest.fixture(scope="module")
def shocked(tmp_path_factory: pytest.TempPathFactory) -> tuple[mktsim.Run, Path]:
    run = mktsim.simulate(
        mktsim.build_scenario("cobb_douglas", n_agents=30),
        until=240.0,
        shocks=[
            EndowmentShock(time=SHOCKS[0], good="good1", factor=0.5),
            EndowmentShock(time=SHOCKS[1], good="good2", factor=2.0),
        ],
    )
    return run, run.save(tmp_path_factory.mktemp("shocked") / "run")


def _closed_form(run: mktsim.Run, holdings: pd.DataFrame, when: float) -> dict[str, float]:
    """The Cobb-Douglas equilibrium of the holdings recorded at ``when`` (numeraire first):
    clearing goods 1..g-1 with p_0 = 1, (diag(E) - shares^T e) p = 0."""
    pop: Any = run.scenario.populations[0]
    goods = run.scenario.goods.names
    at = holdings[holdings["time"] == when]
    e = np.zeros((run.scenario.n_agents, len(goods)))
    for agent, good, qty in zip(at["agent"], at["good"].astype(str), at["quantity"], strict=True):
        e[int(agent), goods.index(good)] = qty
    shares = np.asarray(pop.utility.shares)
    a = np.diag(e.sum(axis=0)) - shares.T @ e
    p = np.concatenate([[1.0], np.linalg.solve(a[1:, 1:], -a[1:, 0])])
    return dict(zip(goods, p, strict=True))


def _naive_piecewise(folder: Path, refs: list[tuple[float, dict[str, float]]]) -> pd.DataFrame:
    """Per round: time and max relative error of the estimates against the reference whose
    start is the latest at or before that time (plain loops)."""
    prices = pd.read_parquet(folder / "prices.parquet")
    rows: dict[int, list[float]] = {}
    for t, r, g, est in zip(
        prices["time"], prices["round"], prices["good"].astype(str), prices["estimate"], strict=True
    ):
        ref = [p for start, p in refs if start <= t][-1]
        err = abs(est - ref[g]) / ref[g]
        old = rows.get(int(r), [t, 0.0])
        rows[int(r)] = [t, max(old[1], err)]
    return pd.DataFrame([rows[r] for r in sorted(rows)], columns=["time", "price_error"])


def test_errors_and_recoveries_against_the_equilibrium_in_force(shocked) -> None:
    run, folder = shocked
    holdings = pd.read_parquet(folder / "holdings.parquet")
    refs = [(-np.inf, run.summary["equilibrium_prices"])]
    refs += [(t, _closed_form(run, holdings, t)) for t in SHOCKS]
    naive = _naive_piecewise(folder, refs)
    path = report.price_error_path(folder)
    np.testing.assert_allclose(path["time"], naive["time"])
    np.testing.assert_allclose(path["price_error"], naive["price_error"], rtol=1e-6, atol=1e-9)

    row = report.convergence_table(folder).iloc[0]
    assert row["price_error"] == pytest.approx(naive["price_error"].iloc[-1], rel=1e-6, abs=1e-9)
    assert row["price_error"] < 1e-5  # tatonnement settles on the equilibrium of the last shock

    table = report.shocks_table(folder)
    assert list(table.columns) == list(report.SHOCK_COLUMNS)
    assert list(table["time"]) == list(SHOCKS)
    assert list(table["reference"]) == ["new equilibrium", "new equilibrium"]
    ends = [SHOCKS[1], run.summary["sim_time"]]
    for k, (start, end) in enumerate(zip(SHOCKS, ends, strict=True)):
        inside = naive[(naive["time"] >= start) & (naive["time"] < end if k == 0 else True)]
        errors = inside["price_error"].tolist()
        times = inside["time"].tolist()
        settled = [t for i, t in enumerate(times) if all(e < TOL for e in errors[i:])]
        assert table["peak_price_error"].iloc[k] == pytest.approx(max(errors), rel=1e-6)
        assert settled, "tatonnement recovers from each shock before the next"
        assert table["recovery_time"].iloc[k] == pytest.approx(settled[0] - start)


def test_shock_report_says_so(shocked) -> None:
    _, folder = shocked
    paths = report.write_report(folder, markdown=True)
    text = paths.html.read_text(encoding="utf-8")
    assert '<table class="shocks">' in text
    assert "Shock columns" in text
    md = paths.markdown.read_text(encoding="utf-8") if paths.markdown else ""
    verdict = md.split("\n\n")[1]
    assert verdict.startswith("cobb_douglas (30 agents, 3 goods) ran under walrasian")
    for when in SHOCKS:
        assert f"after the endowment shock at t = {when:g} prices were back within" in (
            verdict.lower()
        )


def test_price_figure_steps_to_each_new_equilibrium_and_marks_the_shocks(shocked) -> None:
    import matplotlib.pyplot as plt

    run, folder = shocked
    holdings = pd.read_parquet(folder / "holdings.parquet")
    try:
        ax = report.plot_prices(folder)
        marks = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-."]
        assert sorted(float(np.asarray(ln.get_xdata())[0]) for ln in marks) == list(SHOCKS)
        dashed = {ln.get_color(): ln for ln in ax.get_lines() if ln.get_linestyle() == "--"}
        solid = {
            ln.get_label(): ln.get_color() for ln in ax.get_lines() if ln.get_linestyle() == "-"
        }
        good1 = dashed[solid["good1"]]
        xs, ys = np.asarray(good1.get_xdata()), np.asarray(good1.get_ydata())
        expected = [run.summary["equilibrium_prices"]["good1"]]
        expected += [_closed_form(run, holdings, t)["good1"] for t in SHOCKS]
        np.testing.assert_allclose(ys[::2], expected, rtol=1e-6)
        np.testing.assert_allclose(xs[2::2], SHOCKS)
    finally:
        plt.close("all")


def test_the_cli_line_measures_against_the_equilibrium_in_force(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    argv = ["run", "cobb_douglas", "--set", "n_agents=20", "--until", "150", "--no-report"]
    argv += ["--shock", "endowment:time=50,good=good1,factor=0.5", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr()
    line = next(ln for ln in printed.out.splitlines() if "price error vs" in ln)
    assert "the equilibrium in force" in line
    summary = json.loads((out / "summary.json").read_text())
    final, ref = summary["final_prices"], summary["shocks"][0]["equilibrium_prices"]
    naive = max(abs(final[g] - ref[g]) / ref[g] for g in ref)
    assert float(line.rsplit(":", 1)[1]) == pytest.approx(naive, rel=1e-2)
    assert "endowment shock at 50: back within tolerance of the new equilibrium" in printed.out
    assert printed.err == ""  # stderr is no terminal here: no progress bar


# ---- prediction markets ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prediction(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = mktsim.simulate(mktsim.build_scenario("prediction_market", n_traders=15, until=15.0))
    return run.save(tmp_path_factory.mktemp("pm") / "run")


def test_resolution_payouts_are_not_trades(prediction: Path) -> None:
    summary = json.loads((prediction / "summary.json").read_text())
    trades = pd.read_parquet(prediction / "trades.parquet")
    events = pd.read_parquet(prediction / "events.parquet")
    resolved = float(events.loc[events["kind"].astype(str) == "resolution", "time"].iloc[0])
    maker = pd.read_parquet(prediction / "market_maker.parquet")
    assert maker["time"].max() < resolved  # every trade came before the resolution
    real = trades[trades["time"] < resolved]
    assert trades["trade_id"].nunique() > real["trade_id"].nunique()  # payouts are in the file
    row = report.convergence_table(prediction).iloc[0]
    assert row["trades"] == real["trade_id"].nunique() == summary["trades"]
    market = report.market_table(prediction).set_index("good")
    eq = summary["equilibrium_prices"]
    for good in ("yes", "no"):
        bought = real[(real["good"].astype(str) == good) & (real["quantity"] > 0)]
        prices = bought.groupby("trade_id")["price"].first().to_numpy()
        alpha = 100 * np.sqrt(np.mean((prices - eq[good]) ** 2)) / eq[good]
        assert market.loc[good, "smith_alpha"] == pytest.approx(alpha, rel=1e-9)
        assert market.loc[good, "trades"] == len(prices)


def test_prediction_verdict_names_outcome_truth_and_the_makers_bound(prediction: Path) -> None:
    summary = json.loads((prediction / "summary.json").read_text())
    data = report.load(prediction)
    text = report.verdict(data, report.convergence_table(data).iloc[0], report.shocks_table(data))
    outcome = summary["outcome"]
    assert f"The event resolved {outcome} (true probability " in text
    bound = np.log(2) * summary["b"]  # b·ln n with n = 2 outcomes
    assert f"against its bound b·ln n = {bound:.3g}" in text
    assert f"the maker lost {summary['maker_loss']:.3g}" in text
    assert text.count(". ") <= 2


# ---- verdicts of other runs, figures, page ---------------------------------------------------


def _synthetic(summary: dict[str, Any], prices: dict[str, list[float]]) -> RunData:
    times = np.arange(len(next(iter(prices.values()))), dtype=float)
    rows = [
        {"time": t, "round": int(t), "good": g, "price": p, "estimate": p}
        for g, path in prices.items()
        for t, p in zip(times, path, strict=True)
    ]
    base = {"scenario": "synthetic", "mechanism": "walrasian", "price_tolerance": TOL}
    return RunData.from_frames({**base, **summary}, {"prices": pd.DataFrame(rows)})


def test_verdict_without_a_reference_says_why() -> None:
    data = _synthetic({"equilibrium_prices": None, "equilibrium_status": "multiple"}, {"g": [1, 2]})
    text = report.verdict(data, report.convergence_table(data).iloc[0], report.shocks_table(data))
    assert "there is no reference equilibrium to measure it against (its status is multiple)" in (
        text
    )


def test_verdict_of_a_cycle() -> None:
    t = np.arange(400)
    wave = list(1 + 0.2 * np.sin(2 * np.pi * t / 25))
    eq = {"money": 1.0, "g": 1.0}
    data = _synthetic(
        {"equilibrium_prices": eq, "equilibrium_status": "unique"},
        {"money": [1.0] * 400, "g": wave},
    )
    row = report.convergence_table(data).iloc[0]
    text = report.verdict(data, row, report.shocks_table(data))
    assert "Prices cycle around the equilibrium and never settle (period about 25" in text


@pytest.mark.parametrize(("low", "log"), [(0.04, True), (0.5, False)])
def test_price_axis_turns_logarithmic_for_a_wide_span(low: float, log: bool) -> None:
    import matplotlib.pyplot as plt

    data = _synthetic({}, {"a": [low] * 5, "b": [1.5] * 5})
    try:
        assert report.plot_prices(data).get_yscale() == ("log" if log else "linear")
    finally:
        plt.close("all")


def test_one_colour_per_good_in_every_figure(prediction: Path) -> None:
    import matplotlib.pyplot as plt

    try:
        seen: dict[str, set[str]] = {}
        for fn in (report.plot_prices, report.plot_volume, report.plot_excess_demand):
            for line in fn(prediction).get_lines():
                label = str(line.get_label())
                if label in ("yes", "no"):
                    seen.setdefault(label, set()).add(str(line.get_color()))
        assert set(seen) == {"yes", "no"}
        assert all(len(colours) == 1 for colours in seen.values())
        assert seen["yes"] != seen["no"]
    finally:
        plt.close("all")


def test_every_name_is_escaped(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    data = _synthetic(
        {"scenario": evil, "params": {"x": "<b>&"}, "equilibrium_prices": {"money": 1.0}},
        {"money": [1.0, 1.0], evil: [1.0, 2.0]},
    )
    text = report.write_report(data, tmp_path, markdown=False).html.read_text(encoding="utf-8")
    assert "<script" not in text and "<b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "&lt;b&gt;&amp;" in text


def test_notebook_views(shocked) -> None:
    run, _ = shocked
    page = run._repr_html_()
    assert page.startswith('<div class="mktsim-run">') and 'class="verdict"' in page
    assert "after the endowment shock at t = 60" in page.lower()
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=7)
    view = scenario._repr_html_()
    assert "<td>money, good1, good2</td>" in view and "<td>7</td>" in view


def test_a_progress_callback_changes_nothing() -> None:
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=20)
    calls: list[tuple[float, float]] = []
    shocks = [EndowmentShock(time=30.0, good="good1", factor=0.5)]
    plain = mktsim.simulate(scenario, mechanism="order_book", until=60.0, shocks=shocks)
    watched = mktsim.simulate(
        scenario,
        mechanism="order_book",
        until=60.0,
        shocks=shocks,
        progress=lambda now, horizon: calls.append((now, horizon)),
    )
    for name in plain.tables:
        pd.testing.assert_frame_equal(plain.frame(name), watched.frame(name))
    assert len(calls) >= 190 and all(h == 60.0 for _, h in calls)
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)


def test_list_shows_scenario_parameters_with_defaults(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert (
        "      parameters (--set): n_agents=100, n_goods=3, seed=0" in out.split("cobb_douglas:")[1]
    )
