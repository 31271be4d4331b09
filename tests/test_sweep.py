"""Parameter sweeps: planning, the local pool, a real Dask cluster, resuming and failures.

References: the grid is expanded here with ``itertools.product``; each row is checked against a
plain loop of ``build_scenario`` + ``simulate`` calls and against the closed-form Cobb-Douglas
equilibrium (``conftest.cobb_douglas_prices``).
"""

from __future__ import annotations

import argparse
import fcntl
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import cobb_douglas_prices

from mktsim import CobbDouglas, Consumers, build_scenario, simulate
from mktsim.errors import InvalidParameter, MktsimError, UnknownName
from mktsim.sweep import load_summaries, plan, sweep
from mktsim.sweep_cli import parse_grid, register

REPO = Path(__file__).resolve().parents[1]
GRID = {"n_agents": 20, "n_goods": [2, 3], "method": ["additive", "multiplicative"]}
SEEDS = 2
TIMING = ["wall_seconds"]


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by run id, without the timing columns."""
    return frame.drop(columns=TIMING).sort_values("run_id").reset_index(drop=True)


def write_script(path: Path, body: str) -> Path:
    path.write_text("from mktsim.scenarios import cobb_douglas\n\n" + body)
    return path


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mktsim")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture(scope="module")
def pool_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    out = tmp_path_factory.mktemp("pool")
    frame = sweep(
        "cobb_douglas", GRID, SEEDS, mechanisms="walrasian", out=out, workers=2, progress=False
    )
    return frame, out


# --- planning ---------------------------------------------------------------------------------


def test_plan_is_the_grid_product_with_stable_ids() -> None:
    runs = plan("cobb_douglas", GRID, SEEDS, mechanisms=["walrasian"])
    got = {(r.params["n_goods"], r.options["method"], r.seed) for r in runs}
    expected = set(itertools.product([2, 3], ["additive", "multiplicative"], range(SEEDS)))
    assert got == expected and len(runs) == len(expected)
    for r in runs:  # build's seed follows the run seed; fixed values reach every run
        assert r.params == {"n_agents": 20, "n_goods": r.params["n_goods"], "seed": r.seed}
    ids = [r.run_id for r in runs]
    assert len(set(ids)) == len(ids) and all(len(i) == 16 for i in ids)
    # the id names the run, not its place: another key order, seed list or repeat changes nothing
    reordered = plan(
        "cobb_douglas", dict(reversed(list(GRID.items()))), [1, 0, 1], mechanisms="walrasian"
    )
    assert {r.run_id for r in reordered} == set(ids)


def test_plan_routes_keys_by_build_signature_and_options(tmp_path: Path) -> None:
    script = write_script(
        tmp_path / "tolerant.py",
        (
            "def build(n_agents=20, tol=0.5, seed=0):\n"
            "    return cobb_douglas.build(n_agents=n_agents, n_goods=2, seed=seed)\n"
        ),
    )
    with pytest.raises(InvalidParameter, match=r"scenario\.tol or option\.tol"):
        plan(script, {"tol": [0.1]}, mechanisms="walrasian")
    [run] = plan(script, {"scenario.tol": [0.1], "option.tol": [1e-6]}, mechanisms="walrasian")
    assert run.params["tol"] == 0.1 and run.options == {"tol": 1e-6}
    [run] = plan(
        script, {"walrasian.method": "adam", "scenario.seed": 7}, [3], mechanisms="walrasian"
    )
    assert run.options == {"method": "adam"} and run.params["seed"] == 7 and run.seed == 3
    with pytest.raises(UnknownName, match="did you mean 'n_agents'"):
        plan(script, {"n_agent": [1, 2]}, mechanisms="walrasian")
    with pytest.raises(UnknownName, match="method"):  # checked before anything runs
        plan(script, {"method": ["additive", "adma"]}, mechanisms="walrasian")
    with pytest.raises(UnknownName, match="prefix"):
        plan(script, {"auctioneer.method": ["adam"]}, mechanisms="walrasian")
    with pytest.raises(InvalidParameter, match="no values"):
        plan(script, {"n_agents": []}, mechanisms="walrasian")
    with pytest.raises(InvalidParameter, match="seeds"):
        plan(script, seeds=0, mechanisms="walrasian")
    with pytest.raises(InvalidParameter, match="seeds"):
        plan(script, seeds=[1, -2], mechanisms="walrasian")


def test_parse_grid_values() -> None:
    assert parse_grid(
        [
            "n_goods=2,3",
            "method=adam,additive",
            "option.step=0.1",
            "initial_prices={'good1': 2.0},none",
            "flag=True,False",
        ]
    ) == {
        "n_goods": [2, 3],
        "method": ["adam", "additive"],
        "option.step": [0.1],
        "initial_prices": [{"good1": 2.0}, "none"],
        "flag": [True, False],
    }
    with pytest.raises(MktsimError, match="malformed"):
        parse_grid(["n_goods"])
    with pytest.raises(InvalidParameter, match="no values"):
        parse_grid(["n_goods="])
    with pytest.raises(InvalidParameter, match="twice"):
        parse_grid(["n_goods=2", "n_goods=3"])


# --- the local pool against plain runs ---------------------------------------------------------


def test_pool_rows_equal_plain_runs(pool_sweep: tuple[pd.DataFrame, Path]) -> None:
    frame, out = pool_sweep
    assert len(frame) == 2 * 2 * SEEDS and set(frame["status"]) == {"ok"}
    for n_goods, method, seed in itertools.product(
        [2, 3], ["additive", "multiplicative"], range(SEEDS)
    ):
        [row] = frame[
            (frame["param_n_goods"] == n_goods)
            & (frame["option_method"] == method)
            & (frame["seed"] == seed)
        ].to_dict("records")
        scenario = build_scenario("cobb_douglas", n_agents=20, n_goods=n_goods, seed=seed)
        run = simulate(scenario, "walrasian", seed=seed, method=method)
        assert row["rounds"] == run.summary["rounds"] and row["method"] == method
        pop = scenario.populations[0]
        assert isinstance(pop, Consumers) and isinstance(pop.utility, CobbDouglas)
        closed_form = cobb_douglas_prices(pop.utility.shares, pop.endowment)
        for j, good in enumerate(scenario.goods.names):
            assert row[f"final_price_{good}"] == run.summary["final_prices"][good]
            assert row[f"final_price_{good}"] == pytest.approx(closed_form[j], rel=1e-6)
        if n_goods == 2:
            assert np.isnan(row["final_price_good2"])
        tables = out / "runs" / row["run_id"]
        pd.testing.assert_frame_equal(pd.read_parquet(tables / "prices.parquet"), run.prices)
        pd.testing.assert_frame_equal(pd.read_parquet(tables / "trades.parquet"), run.trades)


def test_summaries_folder_is_one_dataset(pool_sweep: tuple[pd.DataFrame, Path]) -> None:
    frame, out = pool_sweep
    files = sorted((out / "summaries").glob("*.parquet"))
    assert [f.stem for f in files] == sorted(frame["run_id"])
    first = pq.read_schema(files[0])
    assert all(pq.read_schema(f).equals(first) for f in files)  # read_parquet sees every column
    plain = pd.read_parquet(out / "summaries")
    pd.testing.assert_frame_equal(comparable(plain), comparable(frame))
    pd.testing.assert_frame_equal(comparable(load_summaries(out)), comparable(frame))


@pytest.mark.dask
def test_dask_cluster_gives_the_pool_rows(
    pool_sweep: tuple[pd.DataFrame, Path], tmp_path: Path
) -> None:
    """A real LocalCluster on loopback, reached by address as `--scheduler` would."""
    distributed = pytest.importorskip("distributed")
    local, _ = pool_sweep
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        remote = sweep(
            "cobb_douglas",
            GRID,
            SEEDS,
            mechanisms="walrasian",
            out=tmp_path,
            scheduler=cluster.scheduler_address,
            progress=False,
        )
        assert "mktsim-run" in cluster.scheduler.task_prefixes  # the cluster did the runs
    pd.testing.assert_frame_equal(comparable(remote), comparable(local))


# --- resuming ----------------------------------------------------------------------------------


def test_killed_sweep_resumes_with_every_run_once(tmp_path: Path) -> None:
    """A sweep is killed while it waits inside a run; the same sweep again finishes the rest."""
    gate = tmp_path / "gate"
    script = write_script(
        tmp_path / "gated.py",
        (
            "import os, time\n\n"
            "def build(n_agents=20, n_goods=2, seed=0, hold=False):\n"
            f"    while hold and not os.path.exists({str(gate)!r}):\n"
            "        time.sleep(0.01)\n"
            "    return cobb_douglas.build(n_agents=n_agents, n_goods=n_goods, seed=seed)\n"
        ),
    )
    grid = {"hold": [False, True], "n_goods": [2, 3]}
    out = tmp_path / "out"
    code = (
        f"from mktsim.sweep import sweep; sweep({str(script)!r}, {grid!r}, 2, "
        f"mechanisms='walrasian', out={str(out)!r}, workers=1, progress=False)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    before_gate = 4  # runs in plan order: hold=False first (2 goods x 2 seeds)
    deadline = time.monotonic() + 120
    while len(list((out / "summaries").glob("*.parquet"))) < before_gate:
        assert proc.poll() is None, proc.communicate()[0].decode()
        assert time.monotonic() < deadline, "the sweep made no progress"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = load_summaries(out)
    assert len(finished) == before_gate and not finished["param_hold"].any()
    stamps = {r: (out / "runs" / r / "summary.json").stat().st_mtime_ns for r in finished["run_id"]}

    gate.touch()
    frame = sweep(script, grid, 2, mechanisms="walrasian", out=out, workers=1, progress=False)
    expected = {r.run_id for r in plan(script, grid, 2, mechanisms="walrasian")}
    assert len(expected) == 8 and frame.attrs["skipped"] == before_gate
    assert sorted(frame["run_id"]) == sorted(expected) and set(frame["status"]) == {"ok"}
    assert sorted(f.stem for f in (out / "summaries").glob("*.parquet")) == sorted(expected)
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(expected)
    old = frame.set_index("run_id").loc[finished["run_id"], "wall_seconds"]
    np.testing.assert_array_equal(old.to_numpy(), finished["wall_seconds"].to_numpy())
    assert stamps == {r: (out / "runs" / r / "summary.json").stat().st_mtime_ns for r in stamps}


def test_max_runs_then_resume_and_summary_only(tmp_path: Path) -> None:
    kw: dict[str, Any] = dict(
        mechanisms="walrasian", out=tmp_path, workers=1, record="none", progress=False
    )
    part = sweep("cobb_douglas", GRID, SEEDS, max_runs=3, **kw)
    assert len(part) == 3 and part.attrs["planned"] == 8
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    whole = sweep("cobb_douglas", GRID, SEEDS, **kw)
    assert whole.attrs["skipped"] == 3 and whole.attrs["ran"] == 5
    assert whole["run_id"].is_unique and len(whole) == 8
    kept = whole[whole["run_id"].isin(part["run_id"])][list(part.columns)]
    pd.testing.assert_frame_equal(comparable(kept), comparable(part))


def test_a_second_sweep_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    with open(tmp_path / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        with pytest.raises(MktsimError, match="another sweep"):
            sweep(
                "cobb_douglas",
                {"n_agents": 5},
                mechanisms="walrasian",
                out=tmp_path,
                workers=1,
                progress=False,
            )


# --- failures ----------------------------------------------------------------------------------


def test_failing_run_is_recorded_and_the_others_finish(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = write_script(
        tmp_path / "picky.py",
        (
            "def build(n_agents=20, n_goods=2, seed=0):\n"
            "    if n_goods == 3:\n"
            "        raise RuntimeError('three goods are refused on purpose')\n"
            "    return cobb_douglas.build(n_agents=n_agents, n_goods=n_goods, seed=seed)\n"
        ),
    )
    out = tmp_path / "out"
    argv = [
        "sweep",
        str(script),
        "--grid",
        "n_goods=2,3",
        "--seeds",
        "2",
        "--mechanisms",
        "walrasian",
        "--workers",
        "1",
        "--out",
        str(out),
        "--quiet",
    ]
    assert cli(argv) == 1
    printed = capsys.readouterr().out
    assert "2 ok, 2 failed" in printed and "three goods are refused on purpose" in printed

    rows = load_summaries(out)
    bad, good = rows[rows["param_n_goods"] == 3], rows[rows["param_n_goods"] == 2]
    assert set(bad["status"]) == {"error"} and set(good["status"]) == {"ok"} and len(good) == 2
    assert all(e.endswith("RuntimeError: three goods are refused on purpose") for e in bad["error"])
    assert good["error"].isna().all() and good["converged"].all()
    for run_id in bad["run_id"]:
        assert "raise RuntimeError" in (out / "runs" / run_id / "error.txt").read_text()

    again = sweep(
        script, {"n_goods": [2, 3]}, 2, mechanisms="walrasian", out=out, workers=1, progress=False
    )  # finished runs are kept, failed ones are tried again
    assert again.attrs["skipped"] == 2 and again.attrs["ran"] == 2 and len(again) == 4
