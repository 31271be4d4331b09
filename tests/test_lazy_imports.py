"""Importing mktsim, and a run that draws nothing, load no plotting or solver library.

Checked in a fresh interpreter (what a process has imported is global state): the assertion is
on ``sys.modules``, not on time.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("matplotlib", "scipy")

_PROBE = """
import json, sys
{body}
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}})))
"""


def _loaded(body: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(body=body)],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_loads_no_plotting_or_solver_library():
    loaded = _loaded("import mktsim")
    assert "mktsim" in loaded and "numpy" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_a_run_without_report_loads_no_plotting_or_solver_library(tmp_path):
    out = tmp_path / "run"
    args = ["run", "gode_sunder", "--no-report", "--until", "40", "--out", str(out)]
    body = f"from mktsim.cli import main\nassert main({args!r}) == 0"
    loaded = _loaded(body)
    assert (out / "summary.json").exists() and not (out / "prices.png").exists()
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_a_reference_solve_loads_scipy_when_it_needs_it():
    loaded = _loaded("import mktsim\nmktsim.equilibrium(mktsim.build_scenario('cobb_douglas'))")
    assert "scipy" in loaded
