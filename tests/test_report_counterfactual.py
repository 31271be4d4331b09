"""A counterfactual's report: its section's figures against counterfactual.json and against the
peak deviation recomputed here from the two runs' saved price frames."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import numpy as np
import pandas as pd
import pytest

import mktsim
from mktsim.cli import main
from mktsim.counterfactual import counterfactual
from mktsim.report import write_report
from mktsim.report.data import cell, counterfactual_of
from mktsim.report.tables import (
    counterfactual_table,
    peak_deviation,
    recovery_table,
    welfare_change_table,
)
from mktsim.shocks import EndowmentShock

SHOCK_TIME = 30.0


@pytest.fixture(scope="module")
def pair() -> object:
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=20)
    shock = EndowmentShock(time=SHOCK_TIME, good="good1", factor=0.5)
    return counterfactual(scenario, shocks=[shock], until=90.0)


@pytest.fixture(scope="module")
def folder(pair: object, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = pair.save(tmp_path_factory.mktemp("cf") / "cf", figures=False)  # type: ignore[attr-defined]
    write_report(out)
    return out


def _naive_peak(folder: Path) -> tuple[float, str, float]:
    """Largest |treated / baseline - 1| over non-numeraire goods and the union of both runs'
    record times, each run's last estimate at or before the time; its good and first time."""
    frames = {k: pd.read_parquet(folder / k / "prices.parquet") for k in ("baseline", "treated")}
    numeraire = "money"
    goods = sorted({str(g) for g in frames["treated"]["good"]} - {numeraire})
    times = sorted(set(frames["baseline"]["time"]) | set(frames["treated"]["time"]))
    best = (-1.0, "", 0.0)
    for t in times:
        for g in goods:
            values = []
            for k in ("baseline", "treated"):
                f = frames[k]
                rows = f[(f["good"].astype(str) == g) & (f["time"] <= t)]
                values.append(float(rows["estimate"].iloc[-1]))
            size = abs(values[1] / values[0] - 1.0)
            if size > best[0]:
                best = (size, g, float(t))
    return best


def test_the_section_figures_equal_counterfactual_json_and_the_recomputed_peak(folder: Path):
    saved = json.loads((folder / "counterfactual.json").read_text())
    cf = counterfactual_of(folder)
    assert cf is not None
    table = counterfactual_table(cf).set_index("metric")["value"]
    assert table["peak_price_deviation"] == saved["peak_price_deviation"]
    for good, value in saved["peak_price_deviation_by_good"].items():
        assert table[f"peak_price_deviation ({good})"] == value
    assert table["harm_to_others"] == saved["harm_to_others"]
    assert table["shocks"] == "endowment shock at t = 30 (good=good1, factor=0.5)"

    size, good, when = _naive_peak(folder)
    peak = peak_deviation(cf)
    assert peak["peak_price_deviation"] == pytest.approx(size, rel=1e-12)
    assert saved["peak_price_deviation"] == pytest.approx(size, rel=1e-12)
    assert (peak["peak_good"], peak["peak_time"]) == (good, when)
    assert size > 0.5  # half the supply of good1: its price about doubles

    recovery = recovery_table(cf)
    assert len(recovery) == 1
    treated = json.loads((folder / "treated" / "summary.json").read_text())
    assert recovery["recovery_time"].iloc[0] == treated["shocks"][0]["recovery_time"]
    assert recovery["time"].iloc[0] == SHOCK_TIME

    welfare = welfare_change_table(cf).set_index("population")
    for pop, change in saved["welfare_change"].items():
        assert welfare.loc[pop, "money_metric_change"] == change["money_metric_change"]
        assert welfare.loc[pop, "utility_change_mean"] == change["utility_change_mean"]
        assert welfare.loc[pop, "value_change"] == saved["value_change"][pop]


def test_the_report_opens_with_the_counterfactual(folder: Path):
    saved = json.loads((folder / "counterfactual.json").read_text())
    html = (folder / "report.html").read_text()
    start, end = html.index("<h2>Counterfactual</h2>"), html.index("<h2>Comparison</h2>")
    assert start < end < html.index("<h2>Run: baseline</h2>")
    section = html[start:end]
    assert html.index("<h2>Counterfactual</h2>") < html.index('<p class="verdict">')
    verdict = section[section.index('<p class="verdict">') :].split("</p>")[0]
    assert "endowment shock at t = 30" in verdict
    assert f"at most {saved['peak_price_deviation']:.3g}" in verdict
    assert f"after {saved['recovery'][0]['recovery_time']:g} time units" in verdict
    change = saved["welfare_change"]["consumers"]["money_metric_change"]
    assert f"consumers {change:+.4g}" in verdict
    assert f"<td>{cell(saved['peak_price_deviation'])}</td>" in section
    assert f"<td>{cell(change)}</td>" in section
    assert section.count("<img") == 2  # the deviation path and both runs' prices
    md = (folder / "report.md").read_text()
    assert md.index("## Counterfactual") < md.index("## Run: baseline")
    assert (folder / "report_figures" / "counterfactual_deviation.png").is_file()


def test_names_are_escaped_in_both_pages(folder: Path, tmp_path: Path):
    cf = counterfactual_of(folder)
    assert cf is not None
    odd = "a<b>|c"
    summary = {
        **cf.summary,
        "welfare_change": {odd: cf.summary["welfare_change"]["consumers"]},
        "value_change": {odd: 1.0},
    }
    paths = write_report(attrs.evolve(cf, summary=summary), tmp_path)
    assert "a&lt;b&gt;|c" in paths.html.read_text() and odd not in paths.html.read_text()
    assert paths.markdown is not None
    assert "| a<b>\\|c |" in paths.markdown.read_text()


def test_an_in_memory_counterfactual_reports_the_same_figures(
    pair: object, folder: Path, tmp_path: Path
):
    paths = write_report(pair, tmp_path, markdown=False)
    assert "<h2>Counterfactual</h2>" in paths.html.read_text()
    live = counterfactual_of(pair)
    saved = counterfactual_of(folder)
    assert live is not None and saved is not None
    pd.testing.assert_frame_equal(counterfactual_table(live), counterfactual_table(saved))
    assert np.isclose(
        peak_deviation(live)["peak_price_deviation"], peak_deviation(saved)["peak_price_deviation"]
    )


def test_cli_counterfactual_report_has_the_section(tmp_path: Path):
    out = tmp_path / "cfx"
    code = main(
        [
            "run",
            "cobb_douglas",
            "--set",
            "n_agents=20",
            "--until",
            "60",
            "--shock",
            "endowment:time=30,good=good1,factor=0.5",
            "--counterfactual",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    html = (out / "report.html").read_text()
    assert "<h2>Counterfactual</h2>" in html
    assert "mktsim report: counterfactual of cobb_douglas under walrasian" in html
