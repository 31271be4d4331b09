"""The import contracts of pyproject.toml ([tool.importlinter]) hold, and they catch a breach.

import-linter analyses the package it finds first on the path, as installed: ``mechanisms/`` and
``scenarios/`` inside ``mktsim``. Each test builds that layout as a tree of links in a temporary
folder (real folders, linked files), so a module can be added or replaced there without touching
the sources, and runs ``lint-imports`` in it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pyproject.toml"
LAYOUT = {"mktsim": "mktsim", "mechanisms": "mktsim/mechanisms", "scenarios": "mktsim/scenarios"}

LAYERS = "Layers: values < ledger"
CORE = "The core never imports mechanisms"
MECHANISMS = "Mechanisms only clear"
STRATEGIES = "A strategy never imports a mechanism"
REPORTS = "Reports read frames only"
ACYCLIC = "No import cycles"


def _tree(base: Path) -> Path:
    """The installed layout of the package under ``base``: folders, and a link for each file."""
    for source, target in LAYOUT.items():
        for path in sorted((ROOT / source).rglob("*.py")):
            link = base / target / path.relative_to(ROOT / source)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path)
    return base


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    # The current folder comes first on the path, before the editable install's finder.
    code = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"
    return subprocess.run(
        [sys.executable, "-c", code, "--no-cache", str(CONFIG)],
        cwd=tree,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250"},  # one line per contract
        timeout=300,
        check=False,
    )


def _verdicts(output: str) -> dict[str, str]:
    """Contract name prefix -> KEPT or BROKEN, from the summary lines."""
    out = {}
    for line in output.splitlines():
        for name in (LAYERS, CORE, MECHANISMS, STRATEGIES, REPORTS, ACYCLIC):
            if line.startswith(name) and (" KEPT" in line or " BROKEN" in line):
                out[name] = "BROKEN" if " BROKEN" in line else "KEPT"
    return out


def _edit(tree: Path, module: str, line: str) -> None:
    """Add ``line`` to a module of the tree (a new one, or a copy of a linked one)."""
    path = tree / module
    text = path.read_text() if path.exists() else '"""A module added by the test."""\n'
    if path.is_symlink():
        path.unlink()
    path.write_text(text + line + "\n")


def test_every_contract_holds_on_the_installed_layout(tmp_path):
    result = _lint(_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    verdicts = _verdicts(result.stdout)
    assert verdicts == dict.fromkeys(
        (LAYERS, CORE, MECHANISMS, STRATEGIES, REPORTS, ACYCLIC), "KEPT"
    ), result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken", "shown"),
    [
        # a mechanism that runs simulations
        (
            "mktsim/mechanisms/_breach.py",
            "import mktsim.run",
            {LAYERS, MECHANISMS},
            "mktsim.mechanisms._breach -> mktsim.run",
        ),
        # a strategy that knows a mechanism
        (
            "mktsim/strategies/_breach.py",
            "from mktsim.mechanisms import order_book",
            {LAYERS, CORE, STRATEGIES},
            "mktsim.strategies._breach -> mktsim.mechanisms.order_book",
        ),
        # the ledger (layer 2) reaching up to the market protocol (layer 3)
        (
            "mktsim/ledger.py",
            "from mktsim import orders",
            {LAYERS},
            "mktsim.ledger -> mktsim.orders",
        ),
        # a value module reaching the reports, inside a function (and, through it, every
        # mechanism that uses goods)
        (
            "mktsim/goods.py",
            "def _late():\n    from mktsim.report import write_report",
            {LAYERS, CORE, MECHANISMS},
            "mktsim.goods -> mktsim.report",
        ),
        # a report reading the ledger instead of frames (a lower layer, yet not frames)
        (
            "mktsim/report/tables.py",
            "import mktsim.ledger",
            {REPORTS},
            "mktsim.report.tables -> mktsim.ledger",
        ),
        # a cycle inside one layer (settlement imports firms)
        ("mktsim/firms.py", "import mktsim.settlement", {ACYCLIC}, "firms"),
        # a scenario reaching the run through the package's public names
        (
            "mktsim/scenarios/_breach.py",
            "from mktsim import simulate",
            {LAYERS},
            "mktsim.scenarios._breach -> mktsim",
        ),
        # a module placed in no layer
        ("mktsim/_stray.py", "import mktsim.errors", {LAYERS}, "mktsim._stray"),
    ],
)
def test_a_breach_is_caught(tmp_path, module, line, broken, shown):
    tree = _tree(tmp_path)
    _edit(tree, module, line)
    result = _lint(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    verdicts = _verdicts(result.stdout)
    assert {name for name, verdict in verdicts.items() if verdict == "BROKEN"} == broken, (
        result.stdout
    )
    assert shown in result.stdout, result.stdout
