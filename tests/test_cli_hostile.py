"""A corpus of malformed command lines: each is one line on stderr, exit 2, nothing written.

Every invocation runs in a fresh temporary folder (the only place a run could write) holding a
few prepared targets: a file, damaged run folders, broken scenario scripts. After each, the
folder must be exactly as it was, stderr one line starting ``mktsim: error:``, and no traceback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mktsim.cli import main

GOOD = ("run", "cobb_douglas", "--set", "n_agents=5", "--no-report", "--until", "5")
BAD_NUMBERS = ("abc", "nan", "inf", "-inf", "-1", "1e400", "", "[1]", "None")


def _prepare(root: Path) -> None:
    (root / "a_file").write_text("not a folder")
    (root / "empty_dir").mkdir()
    bad = root / "bad_summary"
    bad.mkdir()
    (bad / "summary.json").write_text("{not json")
    listy = root / "list_summary"
    listy.mkdir()
    (listy / "summary.json").write_text("[1, 2]")
    blank = root / "blank_summary"
    blank.mkdir()
    (blank / "summary.json").write_text("{}")
    broken = root / "broken_parquet"
    broken.mkdir()
    (broken / "summary.json").write_text(json.dumps({"scenario": "x", "mechanism": "walrasian"}))
    (broken / "prices.parquet").write_bytes(b"PAR1 truncated")
    (broken / "trades.parquet").write_bytes(b"")
    (root / "raises.py").write_text("def build():\n    raise RuntimeError('boom')\n")
    (root / "syntax.py").write_text("def build(:\n")
    (root / "nobuild.py").write_text("x = 1\n")
    (root / "notscenario.py").write_text("def build():\n    return 42\n")
    (root / "exits.py").write_text("import sys\ndef build():\n    sys.exit(3)\n")


def _corpus() -> list[tuple[str, ...]]:
    c: list[tuple[str, ...]] = [
        (),
        ("nosuch",),
        ("run",),
        ("run", "cobb_douglas", "--nosuch"),
        ("list", "extra"),
        ("run", "nosuch"),
        ("run", ""),
        ("run", " "),
        ("run", "../x"),
        ("run", "missing.py"),
        ("run", "empty_dir"),
        ("run", "a_file"),
        ("run", "raises.py"),
        ("run", "syntax.py"),
        ("run", "nobuild.py"),
        ("run", "notscenario.py"),
        ("run", "exits.py"),
        ("run", "scarf", "--set", "n_agents=3"),
    ]
    for mechanism in ("", "nosuch", "os:system", "mktsim.run:simulate", "builtins:int", ":"):
        c.append((*GOOD, "--mechanism", mechanism))
    for value in (*BAD_NUMBERS, "1.5", "99999999999999999999999999", "-99999999999999999999"):
        c.append((*GOOD, "--seed", value))
    for value in (*BAD_NUMBERS, "0"):
        c.append((*GOOD[:-1], value))
    for item in (
        "n_agents=-1",
        "n_agents=0",
        "n_agents=abc",
        "n_agents=1e30",
        "n_agents=nan",
        "n_agents=inf",
        "n_agents=1.5",
        "n_agents=[1]",
        "n_agents=10**12",
        "n_agents=1000000000000",
        "n_goods=100000000",
        "n_goods=1",
        "n_goods=-2",
        "seed=-1",
        "seed=abc",
        "nosuch=1",
        "=1",
        "novalue",
        "n agents=3",
    ):
        c.append(("run", "cobb_douglas", "--no-report", "--set", item))
    for item in (
        "nosuch=1",
        "step=-1",
        "step=nan",
        "step=inf",
        "step=abc",
        "step=0",
        "method=nosuch",
        "method=",
        "mode=nosuch",
        "tol=0",
        "tol=-1",
        "interval=-1",
        "interval=nan",
        "=",
        "x",
        "initial_prices=abc",
        "initial_prices={'good1': -1}",
        "initial_prices={'nosuch': 1}",
        "initial_prices={'good1': float('nan')}",
        "beta=2",
        "scale=nosuch",
        "normalize=nosuch",
    ):
        c.append((*GOOD, "--option", item))
    for item in (
        "depth=2.5",
        "depth=0",
        "tick=0",
        "tick=-1",
        "lot=-1",
        "lot=1e-12",
        "rate=0",
        "rate=nan",
        "periods=-1",
        "record_orders=nosuch",
        "estimate_weight=2",
        "clamp_band=1",
    ):
        c.append((*GOOD, "--mechanism", "order_book", "--option", item))
    for item in ("fee=1", "fee=-0.1", "depth=0", "depth=nan", "rate=-1"):
        c.append((*GOOD, "--mechanism", "cpmm", "--option", item))
    for value in ("nosuch", ""):
        c.append((*GOOD, "--method", value))
    for shock in (
        "nosuch:time=1",
        "endowment:time=abc,good=good1,factor=0.5",
        "endowment:time=-1,good=good1,factor=0.5",
        "endowment:time=1,good=nosuch,factor=2",
        "endowment:time=1,good=good1,factor=nan",
        "endowment:time=1,good=good1,factor=-1",
        "endowment:time=1,good=good1,factor=0.5,population=nosuch",
        "endowment:time=1,good=good1",
        "endowment:time=1,good=good1,factor=0.5,extra=1",
        "outage:time=1",
        "outage:time=1,duration=0",
        "outage:time=1,duration=-5",
        "outage:time=nan,duration=1",
        "clamp:time=1,good=good1,price=-1",
        "clamp:time=1,good=nosuch,price=1",
        "clamp:time=1,good=money,price=2",
        "liquidity:time=1,fraction=2",
        "liquidity:time=1,fraction=0",
        "latency:time=1,duration=1,delay=nan",
        "latency:time=1,duration=1,delay=-1",
        ":",
        "",
        "endowment",
        "endowment:time",
        "preference:time=1",
    ):
        c.append((*GOOD, "--shock", shock))
    c += [
        (*GOOD, "--adversary", "nosuch"),
        (*GOOD, "--adversary", "nosuch", "--counterfactual"),
        (*GOOD, "--counterfactual"),  # no shock and no adversary: nothing to compare
        (*GOOD, "--out", "a_file"),
        (*GOOD, "--out", "a_file/under"),
        (*GOOD, "--out", "/proc/mktsim_out"),
        (*GOOD, "--out", "/sys/mktsim_out"),
        (*GOOD, "--out", ""),
        (*GOOD, "--out", "bad_summary"),
        (*GOOD, "--out", "empty_dir/../a_file"),
    ]
    for target in (
        "missing",
        "a_file",
        "empty_dir",
        "bad_summary",
        "list_summary",
        "blank_summary",
        "broken_parquet",
    ):
        c.append(("report", target))
        c.append(("rerun", target))
    c += [
        ("report",),
        ("report", "broken_parquet", "--out", "a_file"),
        ("rerun",),
    ]
    sweep = ("sweep", "cobb_douglas", "--set", "n_agents=5", "--until", "5")
    c += [
        ("sweep", "cobb_douglas"),
        (*sweep, "--mechanisms", ""),
        (*sweep, "--mechanisms", "nosuch"),
        (*sweep, "--mechanisms", ","),
        (*sweep, "--mechanisms", "walrasian", "--grid", "x"),
        (*sweep, "--mechanisms", "walrasian", "--grid", "=1"),
        (*sweep, "--mechanisms", "walrasian", "--grid", "n_agents="),
        (*sweep, "--mechanisms", "walrasian", "--grid", "nosuch=1,2"),
        (*sweep, "--mechanisms", "walrasian", "--seeds", "-1"),
        (*sweep, "--mechanisms", "walrasian", "--seeds", "0"),
        (*sweep, "--mechanisms", "walrasian", "--seeds", "abc"),
        (*sweep, "--mechanisms", "walrasian", "--seed-list", "a,b"),
        (*sweep, "--mechanisms", "walrasian", "--workers", "0"),
        (*sweep, "--mechanisms", "walrasian", "--workers", "-1"),
        (*sweep, "--mechanisms", "walrasian", "--max-runs", "-1"),
        (*sweep, "--mechanisms", "walrasian", "--price-tolerance", "nan"),
        (*sweep, "--mechanisms", "walrasian", "--record", "nosuch"),
        (*sweep, "--mechanisms", "walrasian", "--out", "a_file"),
        (*sweep, "--mechanisms", "walrasian", "--option", "step=-1"),
        ("sweep", "nosuch", "--mechanisms", "walrasian"),
        ("sweep", "raises.py", "--mechanisms", "walrasian"),
    ]
    return c


CORPUS = _corpus()


def _snapshot(root: Path) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            out[os.path.join(dirpath, name)] = None
        for name in filenames:
            path = os.path.join(dirpath, name)
            out[path] = Path(path).read_bytes()
    return out


def test_the_corpus_is_large():
    assert len(CORPUS) >= 150
    assert len(set(CORPUS)) == len(CORPUS)


@pytest.mark.parametrize("argv", CORPUS, ids=lambda a: " ".join(a) or "<nothing>")
def test_one_line_exit_2_nothing_written(argv, tmp_path, monkeypatch, capsys):
    _prepare(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    try:
        code = main(list(argv))
    except SystemExit as stop:  # argparse's own exits (never expected here)
        code = stop.code
    captured = capsys.readouterr()
    assert code == 2, captured
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mktsim: error: "), captured.err
    assert "Traceback" not in captured.err
    assert _snapshot(tmp_path) == before
