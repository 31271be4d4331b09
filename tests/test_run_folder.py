"""Run folders: reopened as the same Run, rerun bit for bit, written atomically and safely."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import mktsim
from mktsim.cli import main
from mktsim.errors import InvalidParameter, MktsimError

#: Every shipped scenario, small, under its own default mechanism.
SMALL: dict[str, dict[str, object]] = {
    "ces": {"n_agents": 20},
    "cliff_symmetric": {},
    "cobb_douglas": {"n_agents": 20},
    "default": {"n_agents": 30},
    "fisher": {"n_buyers": 10},
    "glosten_milgrom": {},
    "gode_sunder": {},
    "hayek_chain": {},
    "hayek_grid": {},
    "leontief_io": {},
    "manipulated": {"n_agents": 20},
    "prediction_market": {},
    "scarf": {},
    "shared_intermediate": {},
    "tupperware": {},
    "two_inputs": {},
}


def _same_frames(a: mktsim.Run, b: mktsim.Run) -> None:
    assert a.tables == b.tables
    for name in a.tables:
        pd.testing.assert_frame_equal(a.frame(name), b.frame(name), obj=name)


def test_every_shipped_scenario_is_listed():
    assert set(SMALL) == set(mktsim.list_scenarios())


@pytest.mark.parametrize("name", sorted(SMALL))
def test_saved_run_reopens_as_the_run_and_reruns_identically(name, tmp_path):
    scenario = mktsim.build_scenario(name, **SMALL[name])
    run = mktsim.simulate(scenario, seed=3, until=min(scenario.until, 60.0))
    folder = run.save(tmp_path / "run", figures=False)
    saved = mktsim.load(folder)
    assert saved.summary == json.loads(run.summary_json())
    _same_frames(saved, run)
    pd.testing.assert_frame_equal(saved.welfare(), run.welfare())
    again = mktsim.rerun(folder)
    _same_frames(mktsim.load(again.save(tmp_path / "again", figures=False)), saved)


def test_summary_records_the_mechanism_options_and_the_configuration():
    scenario = mktsim.build_scenario("scarf")
    run = mktsim.simulate(scenario, until=20, method="extragradient", step=1.0)
    assert run.summary["mechanism_options"]["step"] == 1.0
    assert run.summary["mechanism_options"]["tol"] == 1e-9  # a default, recorded too
    config = run.summary["config"]
    assert config["options"] == {"method": "extragradient", "step": 1.0}
    assert (config["scenario"], config["seed"], config["until"]) == ("scarf", 0, 20.0)
    assert config["version"] == mktsim.__version__ and config["rerunnable"]


def test_a_scenario_built_in_python_says_why_it_cannot_be_rerun(tmp_path):
    scenario = mktsim.build_scenario("cobb_douglas", n_agents=10)
    handmade = mktsim.Scenario("mine", scenario.goods, scenario.populations)
    folder = mktsim.simulate(handmade).save(tmp_path / "mine", figures=False)
    with pytest.raises(MktsimError, match="built in Python"):
        mktsim.rerun(folder)


def _cli(*argv: str) -> int:
    return main(list(argv))


def test_default_folders_differ_by_configuration(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    base = ("run", "cobb_douglas", "--set", "n_agents=10", "--no-report")
    assert _cli(*base) == 0
    assert _cli(*base, "--option", "method=adam") == 0
    assert _cli(*base[:3], "n_agents=11", "--no-report") == 0
    assert _cli(*base) == 0  # the same configuration again replaces its own folder
    folders = sorted(p.name for p in (tmp_path / "reports" / "runs").iterdir())
    assert len(folders) == 3 and all(f.startswith("cobb_douglas_walrasian_seed0_") for f in folders)
    assert _cli("run", "cobb_douglas", "--no-report") == 0  # nothing customised: the plain name
    assert (tmp_path / "reports" / "runs" / "cobb_douglas_walrasian_seed0").is_dir()


def test_another_run_is_refused_then_replaced_without_stale_files(tmp_path, capsys):
    out = tmp_path / "out"
    book = ("run", "gode_sunder", "--mechanism", "order_book", "--no-report", "--out", str(out))
    assert _cli(*book) == 0
    assert (out / "orders.parquet").exists()
    walras = ("run", "cobb_douglas", "--set", "n_agents=10", "--no-report", "--out", str(out))
    capsys.readouterr()
    assert _cli(*walras) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds another run" in err
    assert (out / "orders.parquet").exists()  # refused: nothing changed
    assert _cli(*walras, "--overwrite") == 0
    assert not (out / "orders.parquet").exists()
    assert json.loads((out / "summary.json").read_text())["mechanism"] == "walrasian"


@pytest.mark.parametrize("target", ["foreign", "file", "symlink", "empty"])
def test_unsafe_output_folders_are_refused_and_left_alone(target, tmp_path, capsys):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "summary.json").write_text("my own notes")
    (foreign / "notes.txt").write_text("mine")
    (tmp_path / "file").write_text("a file")
    (tmp_path / "symlink").symlink_to(foreign)
    out = "" if target == "empty" else str(tmp_path / target)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    code = _cli("run", "cobb_douglas", "--set", "n_agents=10", "--no-report", "--out", out)
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("mktsim: error:") and err.count("\n") == 1
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(os.listdir(tmp_path)) == ["file", "foreign", "symlink"]


def test_a_scenario_name_with_separators_stays_inside_reports_runs(tmp_path, monkeypatch):
    script = tmp_path / "escape.py"
    script.write_text(
        "import mktsim\n"
        "def build():\n"
        "    s = mktsim.build_scenario('cobb_douglas', n_agents=5)\n"
        "    return mktsim.Scenario('../../../x', s.goods, s.populations)\n"
    )
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert _cli("run", str(script), "--no-report") == 0
    (written,) = (work / "reports" / "runs").iterdir()
    assert "/" not in written.name and not written.name.startswith(".")
    assert sorted(os.listdir(tmp_path)) == ["escape.py", "work"]


def test_rerun_command_reports_identical_frames(tmp_path):
    out = tmp_path / "run"
    assert _cli("run", "scarf", "--no-report", "--until", "30", "--out", str(out)) == 0
    done = subprocess.run(
        [sys.executable, "-m", "mktsim.cli", "rerun", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "frames identical" in done.stdout
    assert Path(f"{out}-rerun", "summary.json").exists()


def test_bad_arguments_are_one_line(capsys):
    assert _cli("run") == 2
    err = capsys.readouterr().err
    assert err.startswith("mktsim: error:") and err.count("\n") == 1


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        _cli("--version")
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"mktsim {mktsim.__version__}"


def test_save_refuses_a_file_target_at_the_api(tmp_path):
    (tmp_path / "f").write_text("x")
    run = mktsim.simulate(mktsim.build_scenario("cobb_douglas", n_agents=5))
    with pytest.raises(InvalidParameter, match="is a file"):
        run.save(tmp_path / "f")
