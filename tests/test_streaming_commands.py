"""Every command that runs a simulation streams for the same reason and to the same effect.

``mktsim run --counterfactual``, ``mktsim rerun`` and ``mktsim sweep`` each stream their recorded
tables when the estimate exceeds the memory budget (a tiny ``--memory-budget`` forces it here),
say so in one line on stderr, and save frames identical to those of the same seed held in
memory; reports read the streamed parts to the same page. References: the same command run in
memory, ``simulate`` called directly, and the frames compared with ``pandas.testing``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

import mktsim
from mktsim._streamed import report_input, same_table
from mktsim.cli import main
from mktsim.footprint import estimate
from mktsim.registry import resolve
from mktsim.sweep import sweep

SCENARIO = ["cobb_douglas", "--set", "n_agents=20", "--option", "mode=non_tatonnement"]
SHOCK = ["--shock", "endowment:time=5,good=good1,factor=0.5"]
TINY = ["--memory-budget", "1KiB"]
STREAMING = re.compile(r"^mktsim: .*recorded tables estimated at .*: streaming them to the run")


def _frames_equal(a: Path, b: Path) -> None:
    """Every frame of two saved runs is identical (one may hold folders of parts)."""
    left, right = mktsim.load(a), mktsim.load(b)
    assert left.tables == right.tables
    for name in left.tables:
        pd.testing.assert_frame_equal(left.frame(name), right.frame(name), check_exact=True)


def _masked(report: Path) -> str:
    """A report's Markdown without what differs between two runs of the same seed by nature:
    the wall-clock time and the folder it was read from."""
    text = report.read_text()
    return re.sub(r"\| (wall_seconds|source) \|[^\n]*", r"| \1 |", text)


def _streamed(folder: Path) -> bool:
    return (folder / "trades.parquet").is_dir()


def test_a_counterfactual_streams_both_runs_to_the_same_frames_and_report(tmp_path, capsys):
    args = ["run", *SCENARIO, "--until", "10", "--seed", "3", *SHOCK, "--counterfactual"]
    assert main([*args, "--out", str(tmp_path / "memory")]) == 0
    assert capsys.readouterr().err == ""
    assert main([*args, "--out", str(tmp_path / "streamed"), *TINY]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and STREAMING.match(err[0]) and "over the memory budget of 1 KiB" in err[0]
    streamed, memory = tmp_path / "streamed", tmp_path / "memory"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # spool removed
    for side in ("baseline", "treated"):
        assert _streamed(streamed / side) and not _streamed(memory / side)
        _frames_equal(streamed / side, memory / side)
    pd.testing.assert_frame_equal(
        pd.read_parquet(streamed / "deviation.parquet"),
        pd.read_parquet(memory / "deviation.parquet"),
    )
    summary = [json.loads((f / "counterfactual.json").read_text()) for f in (streamed, memory)]
    assert summary[0] == summary[1]
    # the Counterfactual section and both runs' sections read the streamed parts to the same page
    assert _masked(streamed / "report.md") == _masked(memory / "report.md")
    assert "## Counterfactual" in (streamed / "report.md").read_text()


def test_both_runs_of_a_counterfactual_count_against_the_budget(tmp_path, capsys):
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=20, seed=3)
    options = {"mode": "non_tatonnement"}
    one = estimate(scenario, resolve("walrasian"), options, 10).table_bytes
    args = ["run", *SCENARIO, "--until", "10", "--seed", "3", *SHOCK, "--counterfactual"]
    # each run alone fits; the two held together do not (the shock adds one holdings snapshot)
    code = main([*args, "--out", str(tmp_path / "cf"), "--memory-budget", str(int(1.5 * one))])
    assert code == 0 and _streamed(tmp_path / "cf" / "baseline")
    assert "streaming them" in capsys.readouterr().err
    alone = ["run", *SCENARIO, "--until", "10", "--seed", "3", *SHOCK, "--no-report"]
    code = main([*alone, "--out", str(tmp_path / "one"), "--memory-budget", str(int(1.5 * one))])
    assert code == 0 and not _streamed(tmp_path / "one") and capsys.readouterr().err == ""


def test_a_rerun_streams_and_compares_part_by_part(tmp_path, capsys):
    saved = tmp_path / "run"
    assert main(["run", *SCENARIO, "--until", "12", "--out", str(saved), "--no-report"]) == 0
    capsys.readouterr()
    again = tmp_path / "again"
    assert main(["rerun", str(saved), "--out", str(again), *TINY]) == 0
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert len(err) == 1 and STREAMING.match(err[0])
    assert "frames identical" in captured.out
    assert _streamed(again) and not _streamed(saved)
    _frames_equal(again, saved)
    # and back: the streamed folder rerun in memory (--stream not given, default budget)
    assert main(["rerun", str(again), "--out", str(tmp_path / "third")]) == 0
    assert capsys.readouterr().err == "" and not _streamed(tmp_path / "third")
    # --stream streams whatever the size, and says so without naming a budget
    assert main(["rerun", str(saved), "--out", str(tmp_path / "forced"), "--stream"]) == 0
    err = capsys.readouterr().err
    assert "streaming them" in err and "budget" not in err and _streamed(tmp_path / "forced")


def test_same_table_lines_up_parts_of_any_size_and_sees_one_changed_value(tmp_path):
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=15, seed=1)
    options = {"mode": "non_tatonnement", "until": 8}
    spool = tmp_path / "spool"
    small = mktsim.simulate(scenario, stream_to=spool, chunk_rows=37, **options)
    whole = mktsim.simulate(scenario, **options)
    a, b = small.save(tmp_path / "a"), whole.save(tmp_path / "b")
    parts_a, parts_b = mktsim.load(a).parts("trades"), mktsim.load(b).parts("trades")
    assert len(parts_a) > 3 and len(parts_b) == 1
    assert same_table(parts_a, parts_b) and same_table(parts_b, parts_a)
    # one price changed in the middle of one part, then one row fewer: both are seen
    frame = pd.read_parquet(parts_a[2])
    changed = frame.assign(price=frame["price"].where(frame.index != 5, frame["price"] + 1e-12))
    changed.to_parquet(parts_a[2])
    assert not same_table(parts_a, parts_b)
    frame.iloc[:-1].to_parquet(parts_a[2])
    assert not same_table(parts_a, parts_b)


def _sweep_cli(out: Path, *extra: str) -> int:
    return main(
        [
            "sweep",
            "cobb_douglas",
            "--mechanisms",
            "walrasian",
            "--grid",
            "n_agents=10,20",
            "--option",
            "mode=non_tatonnement",
            "--until",
            "10",
            "--workers",
            "1",
            "--quiet",
            "--out",
            str(out),
            *extra,
        ]
    )


def test_each_sweep_run_streams_to_the_same_frames_and_rows(tmp_path, capsys):
    assert _sweep_cli(tmp_path / "memory") == 0
    assert "streaming" not in capsys.readouterr().err
    assert _sweep_cli(tmp_path / "streamed", *TINY) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(STREAMING.match(line) and " run " in line for line in err)
    ids = sorted(p.name for p in (tmp_path / "memory" / "runs").iterdir())
    assert ids == sorted(p.name for p in (tmp_path / "streamed" / "runs").iterdir())
    assert len(ids) == 2
    for run_id in ids:
        streamed, memory = (tmp_path / k / "runs" / run_id for k in ("streamed", "memory"))
        assert _streamed(streamed) and not _streamed(memory)
        _frames_equal(streamed, memory)
        # each run is the run simulate makes of the same seed
        task = json.loads((memory / "task.json").read_text())
        direct = mktsim.simulate(
            mktsim.build_scenario("cobb_douglas", **task["params"]),
            seed=task["seed"],
            until=10,
            mode="non_tatonnement",
        )
        pd.testing.assert_frame_equal(mktsim.load(streamed).trades, direct.trades)
    rows = [
        pd.read_parquet(tmp_path / k / "summaries")
        .drop(columns="wall_seconds")
        .sort_values("run_id")
        for k in ("streamed", "memory")
    ]
    pd.testing.assert_frame_equal(rows[0].reset_index(drop=True), rows[1].reset_index(drop=True))
    # a streamed sweep run's report reads its parts as the in-memory one's frames
    for kind in ("streamed", "memory"):
        assert main(["report", str(tmp_path / kind / "runs" / ids[0])]) == 0
    capsys.readouterr()
    assert _masked(tmp_path / "streamed" / "runs" / ids[0] / "report.md") == _masked(
        tmp_path / "memory" / "runs" / ids[0] / "report.md"
    )


def test_a_sweeps_budget_is_shared_by_the_runs_executing_at_once(tmp_path):
    """Two runs of the same size: with a budget of 1.5 runs' tables, one worker keeps each in
    memory, two workers running both at once stream both."""
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=10, seed=0)
    one = estimate(scenario, resolve("walrasian"), {"mode": "non_tatonnement"}, 6).table_bytes
    common = {
        "mechanisms": "walrasian",
        "params": {"n_agents": 10},
        "options": {"mode": "non_tatonnement"},
        "until": 6,
        "progress": False,
        "memory_budget": int(1.5 * one),
    }
    for workers, streams in ((1, False), (2, True)):
        out = tmp_path / f"w{workers}"
        frame = sweep("cobb_douglas", None, 2, out=out, workers=workers, **common)
        assert (frame["status"] == "ok").all() and len(frame) == 2
        assert [_streamed(p) for p in sorted((out / "runs").iterdir())] == [streams] * 2


def test_reading_a_streamed_folder_for_the_report_keeps_one_row_per_settlement(tmp_path):
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=12, seed=2)
    options = {"mode": "non_tatonnement", "until": 6}
    run = mktsim.simulate(scenario, stream_to=tmp_path / "spool", chunk_rows=25, **options)
    folder = run.save(tmp_path / "run")
    trades = report_input(folder).frame("trades")
    memory = mktsim.simulate(scenario, **options).trades
    bought = memory[memory["quantity"] > 0]
    assert (trades["agent"] == -1).all()
    assert len(trades) == len(bought.groupby(["trade_id", "good"], observed=True))
    by_good = bought.groupby("good", observed=True)["quantity"].sum()
    reduced = trades.groupby("good", observed=True)["quantity"].sum()
    pd.testing.assert_series_equal(reduced, by_good, check_exact=False, rtol=1e-12)


@pytest.mark.parametrize("budget", ["-1", "nan", "abc", "1e400"])
@pytest.mark.parametrize(
    "command",
    [
        ["run", "cobb_douglas"],
        ["run", "cobb_douglas", *SHOCK, "--counterfactual"],
        ["rerun", "no-such-folder"],
        ["sweep", "cobb_douglas", "--mechanisms", "walrasian"],
    ],
    ids=["run", "counterfactual", "rerun", "sweep"],
)
def test_a_bad_budget_is_one_line_for_every_command(tmp_path, capsys, command, budget):
    code = main([*command, "--out", str(tmp_path / "out"), "--memory-budget", budget])
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "out").exists()
    assert err.startswith("mktsim: error: ") and err.count("\n") == 1
    assert f"--memory-budget(='{budget}')" in err
