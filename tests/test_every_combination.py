"""Every shipped scenario under every registered mechanism either runs and gets a report, or is
refused before it starts with a one-line reason (e.g. a prediction market has no Walrasian
demand): never a traceback."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import mktsim
from mktsim.errors import MktsimError
from mktsim.registry import available
from mktsim.report import convergence_table, write_report
from mktsim.scenario import list_scenarios

SMALL = {
    "cobb_douglas": {"n_agents": 20},
    "ces": {"n_agents": 20},
    "default": {"n_agents": 50},
    "manipulated": {"n_agents": 30},
}

#: Task worlds run only under the auction for the right to act, and it runs nothing else: their
#: agents send bid orders, which no other mechanism accepts.
TASK_SCENARIOS = {"hayek_chain", "hayek_grid"}


@pytest.mark.parametrize("mechanism", sorted(available()))
@pytest.mark.parametrize("name", sorted(list_scenarios()))
def test_runs_and_reports_or_refuses_clearly(name, mechanism, tmp_path):
    scenario = mktsim.build_scenario(name, **SMALL.get(name, {}))
    task, auction = name in TASK_SCENARIOS, mechanism == "right_to_act"
    try:
        run = mktsim.simulate(scenario, mechanism, seed=1, until=min(scenario.until, 30.0))
    except MktsimError as exc:
        assert str(exc) and "\n" not in str(exc)
        assert not (task and auction), f"{name} must run under right_to_act: {exc}"
        return
    assert task == auction, f"{name} under {mechanism} must be refused before the run"
    if task:
        assert run.summary["auctions"] > 0 and run.summary["value_error"] is not None
    assert run.summary["conservation_ok"]
    out = run.save(tmp_path / "run", figures=False)
    paths = write_report(out, markdown=False)
    html = paths.html.read_text()
    assert "data:image/png;base64," in html and "http://" not in html and "https://" not in html
    row = convergence_table(out).iloc[0]
    summary = json.loads((out / "summary.json").read_text())
    assert row["mechanism"] == mechanism == summary["mechanism"]
    assert row["scenario"] == scenario.name
    if summary["price_error"] is not None:
        assert row["price_error"] == pytest.approx(summary["price_error"], rel=1e-9)
    prices = pd.read_parquet(out / "prices.parquet")
    assert list(prices.columns) == ["time", "round", "good", "price", "estimate"]
