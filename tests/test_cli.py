"""The command line: runs write their outputs; every user error is one line with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from mktsim.cli import main


def test_run_writes_summary_frames_and_figure(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "cobb_douglas", "--set", "n_agents=30", "--seed", "3", "--out", str(out)])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["converged"] and summary["seed"] == 3
    assert summary["params"]["n_agents"] == 30
    prices = pd.read_parquet(out / "prices.parquet")
    assert list(prices.columns) == ["time", "round", "good", "price", "estimate"]
    assert (out / "prices.png").stat().st_size > 1000
    assert "converged=True" in capsys.readouterr().out


def test_options_and_method_reach_the_mechanism(tmp_path):
    out = tmp_path / "nt"
    assert (
        main(
            [
                "run",
                "cobb_douglas",
                "--set",
                "n_agents=20",
                "--method",
                "adam",
                "--option",
                "mode=non_tatonnement",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "adam" and summary["mode"] == "non_tatonnement"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "cobb_douglas", "--set", "n_agents=-3"], "n_agents(=-3) must be >= 1"),
        (["run", "ces", "--set", "elasticity=0"], "elasticity(=0.0) must be > 0"),
        (["run", "ces", "--set", "elasticity=nan"], "elasticity(=nan) must be > 0"),
        (["run", "cobb_douglas", "--mechanism", "walras"], "unknown mechanism 'walras'"),
        (["run", "cobb_douglas", "--method", "adm"], "did you mean 'adam'"),
        (["run", "cobb_douglas", "--set", "n_agents"], "--set 'n_agents' is malformed"),
        (["run", "cobb_douglas", "--set", "agents=3"], "unknown parameter of scenario"),
        (["run", "nope/missing.py"], "scenario file 'nope/missing.py' does not exist"),
        (["run", "no_such_scenario"], "unknown scenario 'no_such_scenario'"),
        (["run", "cobb_douglas", "--option", "tol=-1"], "tol(=-1) is invalid"),
        (["run", "cobb_douglas", "--option", "colour=red"], "unknown option of walrasian"),
        (["run", "tupperware", "--set", "flow=maybe"], "flow(='maybe') of scenario tupperware"),
        (["run", "gode_sunder", "--set", "clear_on_trade=2"], "must be true or false"),
        (["run", "tupperware", "--set", "natgas=abc"], "natgas(='abc') of scenario tupperware"),
        (["run", "ces", "--set", "elasticity=abc"], "must be a number"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_endowments_and_shares_from_a_script(tmp_path, capsys):
    script = tmp_path / "bad.py"
    script.write_text(
        "import numpy as np\n"
        "from mktsim import Scenario, Consumers, CobbDouglas\n"
        "def build(kind='nan'):\n"
        "    e = [[1.0, float(kind)]] if kind in ('nan', '-1') else [[1.0, 1.0]]\n"
        "    shares = [[0.5, 0.6]] if kind == 'shares' else [[0.5, 0.5]]\n"
        "    g = ['money', 'ghost'] if kind != 'good' else ['money', 'money']\n"
        "    return Scenario('bad', g, [Consumers('c', CobbDouglas(shares), e)])\n"
    )
    for kind, message in [
        ("nan", "endowment[0, 1](=nan) must be finite"),
        ("-1", "endowment[0, 1](=-1.0) must be >= 0"),
        ("shares", "shares[0] must sum to 1"),
        ("good", "distinct names"),
    ]:
        assert main(["run", str(script), "--set", f"kind='{kind}'"]) == 2
        assert message in capsys.readouterr().err


def test_unknown_good_in_options_is_named(capsys):
    assert (
        main(
            [
                "run",
                "cobb_douglas",
                "--set",
                "n_agents=5",
                "--option",
                "initial_prices={'gold': 2.0}",
            ]
        )
        == 2
    )
    assert "unknown good 'gold'" in capsys.readouterr().err


def test_console_script_prints_no_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "mktsim.cli", "run", "cobb_douglas", "--set", "n_goods=1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "mktsim: error: n_goods(=1) must be >= 2"


def test_list_shows_mechanisms_options_and_scenarios(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("walrasian", "method (default 'multiplicative')", "scarf", "cobb_douglas", "ces"):
        assert word in out


def test_a_behaviour_of_another_mechanism_names_that_mechanism(capsys):
    # gode_sunder's traders are zi_c (an order-book behaviour); pools offer none of that name
    assert main(["run", "gode_sunder", "--mechanism", "cpmm"]) == 2
    err = capsys.readouterr().err
    # (zi_c is a shared strategy: refused before the run, naming where its orders are taken)
    assert "strategy 'zi_c' sends" in err and "it runs under" in err and "order_book" in err
    assert err.count("\n") == 1


def test_a_pool_run_that_goes_quiet_far_from_equilibrium_says_so(tmp_path, capsys):
    """Scarf's economy under pools stops trading far from its equilibrium: the line and the
    report's verdict say that trading stopped, not that the market converged."""
    out = tmp_path / "scarf"
    assert main(["run", "scarf", "--mechanism", "cpmm", "--quiet", "--out", str(out)]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert "went quiet" in line and "converged" not in line
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped"] == "quiet" and summary["price_error"] > 1
    assert "when trading stopped" in (out / "report.md").read_text()


def test_the_same_run_can_be_written_again_over_its_report(tmp_path, monkeypatch, capsys):
    """The quickstart's ``./dev demo`` twice: the second run replaces the first one's folder,
    report and its figures included, rather than taking them for someone else's files."""
    monkeypatch.chdir(tmp_path)
    args = ["run", "cobb_douglas", "--set", "n_agents=10", "--quiet"]
    assert main(args) == 0
    folder = next((tmp_path / "reports" / "runs").iterdir())
    assert (folder / "report_figures").is_dir() and (folder / "report.md").is_file()
    assert main(args) == 0, capsys.readouterr().err
    assert (folder / "report.html").is_file()
