"""Reports as a reader sees them: each page opened in headless Chromium, checked from the DOM.

For a shock run, a counterfactual, a prediction market, a supply chain on the order book and a
comparison of three mechanisms: no console error or page error; the verdict, the shocks table
(where there are shocks) and every cell of the summary table are rendered with a size, inside the
viewport's width and inside every ancestor that would clip them, and no text overflows its cell.
A counterfactual's own verdict and tables are checked the same way. The viewport is narrow
(800 px) so that a long value (a prediction market's parameters) must wrap.

Needs Debian's ``chromium`` at /usr/bin/chromium (``./dev test`` installs it when it can) and the
``playwright`` driver from the ``test`` extra; no browser is downloaded.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

import mktsim
from mktsim.counterfactual import counterfactual
from mktsim.report import write_report
from mktsim.report.data import cell
from mktsim.shocks import EndowmentShock

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright driver is not installed (the 'test' extra)"
)
pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason=f"{CHROMIUM} is missing: `./dev test` installs Debian's chromium when run as root",
)

# For each selector: elements with no size, outside the viewport's width, clipped by an
# ancestor that hides overflow, or whose text overflows them.
_CHECK = """
(selector) => {
  const width = document.documentElement.clientWidth;
  const bad = [];
  for (const el of document.querySelectorAll(selector)) {
    const r = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    const what = selector + ": " + el.textContent.trim().slice(0, 60);
    const hidden = style.visibility === "hidden" || style.display === "none";
    if (r.width <= 0 || r.height <= 0 || hidden) {
      bad.push("not rendered " + what); continue;
    }
    if (r.left < 0 || r.right > width + 0.5) bad.push("outside the viewport " + what);
    if (el.scrollWidth > el.clientWidth + 1) bad.push("text overflows " + what);
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      const s = getComputedStyle(a);
      const clips = s.overflowX !== "visible" || s.overflowY !== "visible";
      if (!clips) continue;
      const ar = a.getBoundingClientRect();
      if (r.left < ar.left - 0.5 || r.right > ar.right + 0.5) bad.push("clipped " + what);
      if (a.scrollWidth > a.clientWidth + 1) bad.push("scrolls sideways " + what);
    }
  }
  return bad;
}
"""


def _runs(base: Path) -> dict[str, Path]:
    """The five reports (small runs: a few seconds each)."""
    out: dict[str, Path] = {}
    shock = mktsim.simulate(
        mktsim.build_scenario("cobb_douglas", n_agents=30),
        until=120.0,
        shocks=[EndowmentShock(time=60.0, good="good1", factor=0.5)],
    )
    out["shock"] = shock.save(base / "shock")
    pair = counterfactual(
        mktsim.build_scenario("cobb_douglas", n_agents=20),
        shocks=[EndowmentShock(time=30.0, good="good1", factor=0.5)],
        until=60.0,
    )
    out["counterfactual"] = pair.save(base / "counterfactual", figures=False)
    pm = mktsim.simulate(mktsim.build_scenario("prediction_market", n_traders=12, until=10.0))
    out["prediction"] = pm.save(base / "prediction")
    chain = mktsim.simulate(
        mktsim.build_scenario("tupperware", flow=True, firms=3),
        mechanism="order_book",
        until=20.0,
    )
    out["chain"] = chain.save(base / "chain")
    cd = mktsim.build_scenario("cobb_douglas", n_agents=20)
    members = [
        mktsim.simulate(cd, mechanism=m, until=40.0).save(base / f"cmp_{m}")
        for m in ("walrasian", "order_book", "call_market")
    ]
    for name, folder in out.items():
        write_report(folder, markdown=False)
        out[name] = folder / "report.html"
    out["comparison"] = write_report(members, base / "comparison", markdown=False).html
    return out


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _runs(tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def browser() -> Any:
    profile = tempfile.mkdtemp(prefix="mktsim-chromium-")
    with playwright_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            args=FLAGS,
            headless=True,
            viewport={"width": 800, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


def _open(browser: Any, page_file: Path) -> tuple[Any, list[str]]:
    page = browser.new_page()
    errors: list[str] = []
    page.on(
        "console", lambda m: errors.append(f"{m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.goto(page_file.as_uri(), wait_until="load")
    return page, errors


@pytest.mark.parametrize("name", ["shock", "counterfactual", "prediction", "chain", "comparison"])
def test_report_renders_its_verdict_and_values_unclipped(
    pages: dict[str, Path], browser: Any, name: str
) -> None:
    page, errors = _open(browser, pages[name])
    try:
        verdicts = page.locator("p.verdict")
        # a counterfactual: its own verdict, then the baseline's and the treated run's
        assert verdicts.count() == (3 if name in ("comparison", "counterfactual") else 1)
        first_run = 1 if name == "counterfactual" else 0
        for k in range(verdicts.count()):
            assert verdicts.nth(k).is_visible()
            if k >= first_run:
                assert " ran under " in verdicts.nth(k).inner_text()
        cells = page.locator("table.summary td")
        assert cells.count() >= 2 * 10  # metric and value, at least ten rows
        for selector in ("p.verdict", "table.summary td", "table.summary th", "table.shocks td"):
            assert page.evaluate(_CHECK, selector) == [], selector
        for k in range(cells.count()):
            assert cells.nth(k).is_visible()
        assert errors == []
    finally:
        page.close()


def test_shock_report_shows_its_shock(pages: dict[str, Path], browser: Any) -> None:
    page, errors = _open(browser, pages["shock"])
    try:
        shocks = page.locator("table.shocks")
        assert shocks.is_visible()
        row = [c.strip() for c in shocks.locator("tbody tr").first.locator("td").all_inner_texts()]
        assert row[:3] == ["60", "endowment", "good=good1, factor=0.5"]
        assert row[3] == "new equilibrium"
        text = page.locator("p.verdict").inner_text()
        assert "after the endowment shock at t = 60" in text.lower()
        assert errors == []
    finally:
        page.close()


def test_counterfactual_report_opens_with_its_verdict_and_figures(
    pages: dict[str, Path], browser: Any
) -> None:
    saved = json.loads((pages["counterfactual"].parent / "counterfactual.json").read_text())
    page, errors = _open(browser, pages["counterfactual"])
    try:
        first = page.locator("p.verdict").first
        assert first.is_visible()
        text = first.inner_text()
        assert text.startswith("Counterfactual of cobb_douglas under walrasian")
        assert "endowment shock at t = 30" in text
        assert f"at most {saved['peak_price_deviation']:.3g}" in text
        table = page.locator("table.counterfactual")
        assert table.is_visible()
        shown = {}
        rows = table.locator("tbody tr")
        for k in range(rows.count()):
            metric, value = rows.nth(k).locator("td").all_inner_texts()
            shown[metric.strip()] = value.strip()
        assert shown["peak_price_deviation"] == cell(saved["peak_price_deviation"])
        for good, value in saved["peak_price_deviation_by_good"].items():
            assert shown[f"peak_price_deviation ({good})"] == cell(value)
        welfare = page.locator("table.welfare_change")
        change = saved["welfare_change"]["consumers"]["money_metric_change"]
        assert cell(change) in welfare.inner_text()
        for selector in (
            "table.counterfactual td",
            "table.counterfactual th",
            "table.recovery td",
            "table.recovery th",
            "table.welfare_change td",
        ):
            assert page.locator(selector).count() > 0, selector
            assert page.evaluate(_CHECK, selector) == [], selector
        assert errors == []
    finally:
        page.close()


def test_prediction_report_shows_the_summary_values_and_the_event(
    pages: dict[str, Path], browser: Any
) -> None:
    summary = json.loads((pages["prediction"].parent / "summary.json").read_text())
    page, errors = _open(browser, pages["prediction"])
    try:
        rows = page.locator("table.summary tbody tr")
        shown = {}
        for k in range(rows.count()):
            metric, value = rows.nth(k).locator("td").all_inner_texts()
            shown[metric.strip()] = value.strip()
        params = ", ".join(f"{k}={v}" for k, v in summary["params"].items())
        assert len(params) > 150  # long enough that an unwrapped cell would leave the page
        assert shown["params"] == params
        assert shown["outcome"] == summary["outcome"]
        assert float(shown["maker_loss_bound"]) == pytest.approx(summary["maker_loss_bound"], 1e-3)
        assert page.evaluate(_CHECK, "table.summary td") == []
        event = page.locator("table.event")
        assert event.is_visible()
        assert summary["outcome"] in event.inner_text()
        assert "b·ln n" in page.locator("p.verdict").inner_text()
        assert errors == []
    finally:
        page.close()
