"""Large runs: the memory estimate made before a run, and ``mktsim run`` streaming to its folder
when the recorded tables would exceed the memory budget."""

from __future__ import annotations

import pandas as pd
import pytest

import mktsim
from mktsim.cli import main
from mktsim.errors import InvalidParameter
from mktsim.footprint import estimate, format_bytes, parse_bytes
from mktsim.registry import resolve


def test_estimate_counts_the_auctioneers_rows():
    n, g, until = 30, 3, 12
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=n, n_goods=g, seed=1)
    options = {"mode": "non_tatonnement"}
    fp = estimate(scenario, resolve("walrasian"), options, until)
    run = mktsim.simulate(scenario, until=until, **options)
    rounds = run.summary["rounds"]
    assert rounds == until  # one posting per unit of time, the last one at t = 11
    # written out by hand: every agent trades each good but money each round (rationing
    # scales trades down, it leaves none at zero here); holdings at the start and the end
    assert len(run.trades) == rounds * n * (g - 1)
    assert len(run.holdings) == fp.rows["holdings"] == 2 * n * g
    for table in ("trades", "prices", "excess_demand", "excess_demand_by_population"):
        actual = len(run.frame(table))
        assert actual <= fp.rows[table] <= actual * (rounds + 1) / rounds
    # 8 bytes per number, 4 per category code: trades rows are 7 x 8 + 4 bytes
    assert fp.table_bytes >= fp.rows["trades"] * 60 + fp.rows["holdings"] * (3 * 8 + 2 * 4)
    assert fp.state_bytes == n * g * 96


def test_tatonnement_settles_once_and_summary_records_no_trades():
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=10, seed=1)
    fp = estimate(scenario, resolve("walrasian"), {}, 500)
    assert fp.rows["trades"] == 10 * 2
    summary = estimate(scenario, resolve("walrasian"), {}, 500, record="summary")
    assert "trades" not in summary.rows and "holdings" not in summary.rows


def test_mechanisms_without_an_estimate_act_at_their_rate():
    scenario = mktsim.build_scenario("gode_sunder")
    fp = estimate(scenario, resolve("order_book"), {}, 100)
    actions = scenario.n_agents * 100  # one action per agent per unit of time
    assert fp.rows["trades"] == 2 * actions and fp.rows["orders"] == actions


@pytest.mark.parametrize(
    ("text", "size"),
    [("1024", 1024), ("2GiB", 2 * 2**30), ("512MB", 512 * 2**20), ("1.5g", 3 * 2**29), (7, 7)],
)
def test_sizes(text, size):
    assert parse_bytes(text) == size


@pytest.mark.parametrize("text", ["", "abc", "-1GB", "0", "nan", "inf", "1e400", "2XB", True])
def test_bad_sizes_are_refused(text):
    with pytest.raises(InvalidParameter, match="memory_budget"):
        parse_bytes(text)


def test_format_bytes():
    assert format_bytes(3 * 2**29) == "1.5 GiB"
    assert format_bytes(100) == "100 B"


def _run_cli(tmp_path, capsys, *extra):
    out = tmp_path / "run"
    args = ["run", "cobb_douglas", "--set", "n_agents=25", "--option", "mode=non_tatonnement"]
    code = main([*args, "--until", "15", "--seed", "2", "--out", str(out), *extra])
    return code, out, capsys.readouterr()


def test_the_cli_streams_above_the_budget(tmp_path, capsys):
    code, out, captured = _run_cli(tmp_path, capsys, "--memory-budget", "10KiB")
    assert code == 0
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "streaming them to the run folder" in lines[0]
    assert "over the memory budget of 10 KiB" in lines[0]
    assert "price error vs equilibrium" in captured.out and "written to" in captured.out
    assert (out / "trades.parquet").is_dir() and (out / "report.html").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # spool removed
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=25, seed=2)  # as the CLI builds it
    memory = mktsim.simulate(scenario, seed=2, until=15, mode="non_tatonnement")
    saved = mktsim.load(out)
    assert saved.tables == memory.tables
    for table in memory.tables:
        pd.testing.assert_frame_equal(saved.frame(table), memory.frame(table), check_exact=True)
    # the report's market table, read part by part, counts every settlement and unit bought
    report = (out / "report.md").read_text()
    volume = memory.trades.query("quantity > 0").groupby("good", observed=True)["quantity"].sum()
    assert f"{volume['good1']:.4g}" in report or f"{volume['good1']:.6g}" in report


def test_the_cli_keeps_small_runs_in_memory(tmp_path, capsys):
    code, out, captured = _run_cli(tmp_path, capsys, "--no-report")
    assert code == 0 and captured.err == ""
    assert (out / "trades.parquet").is_file()
    code, forced, captured = _run_cli(tmp_path / "b", capsys, "--no-report", "--stream")
    assert code == 0 and (forced / "trades.parquet").is_dir()
    assert "streaming" in captured.err and "budget" not in captured.err


@pytest.mark.parametrize("budget", ["abc", "0", "-5MB", "nan"])
def test_a_bad_budget_is_one_line(tmp_path, capsys, budget):
    code, out, captured = _run_cli(tmp_path, capsys, "--memory-budget", budget)
    assert code == 2 and not out.exists()
    assert captured.err.startswith("mktsim: error: ") and captured.err.count("\n") == 1
    assert "--memory-budget" in captured.err


def test_a_state_that_cannot_fit_is_refused_with_the_estimate(tmp_path, capsys, monkeypatch):
    import mktsim._streaming

    monkeypatch.setattr(mktsim._streaming, "physical_memory", lambda: 4096)
    code, out, captured = _run_cli(tmp_path, capsys)
    assert code == 2 and not out.exists()
    need = 25 * 3 * 96
    assert f"needs about {format_bytes(need)} of memory" in captured.err
    assert "this machine has 4 KiB" in captured.err


def test_huge_economies_are_refused_at_the_command_line_with_their_memory(capsys):
    code = main(["run", "cobb_douglas", "--no-report", "--set", "n_agents=10**12"])
    err = capsys.readouterr().err
    assert code == 2 and "n_agents(=1000000000000)" in err and "GiB of memory" in err
