"""A non-editable install works from any folder: scenarios and mechanisms travel with it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_install_runs_list_and_a_scenario_from_elsewhere(tmp_path):
    wheels, target, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    work.mkdir()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(wheels.glob("mktsim-*.whl"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = "import sys, mktsim.cli; sys.exit(mktsim.cli.main(sys.argv[1:]))"
    listing = subprocess.run(
        [sys.executable, "-c", code, "list"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "walrasian" in listing.stdout and "cobb_douglas" in listing.stdout
    run = subprocess.run(
        [sys.executable, "-c", code, "run", "cobb_douglas", "--set", "n_agents=20"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "converged=True" in run.stdout
    (folder,) = (work / "reports" / "runs").glob("cobb_douglas_walrasian_seed0_*")
    assert (folder / "summary.json").exists()
    # the installed copy was used, not the source tree
    where = subprocess.run(
        [sys.executable, "-c", "import mktsim.scenarios as s; print(s.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(target) in where.stdout
    # only mktsim lands in site-packages
    installed = {p.name for p in target.iterdir() if not p.name.endswith(".dist-info")}
    assert installed - {"bin"} == {"mktsim"}
    for top in ("scenarios", "mechanisms"):
        gone = subprocess.run(
            [sys.executable, "-c", f"import {top}"], cwd=work, env=env, capture_output=True
        )
        assert gone.returncode != 0, f"the wheel installed a top-level {top!r} package"
    # a user's own scenarios/ and mechanisms/ packages in the working folder shadow nothing
    for top in ("scenarios", "mechanisms"):
        (work / top).mkdir()
        (work / top / "__init__.py").write_text("raise RuntimeError('the user package')\n")
    mine = (
        "import mktsim; s = mktsim.build_scenario('default'); "
        "r = mktsim.simulate(mktsim.build_scenario('cobb_douglas', n_agents=10)); "
        "print(s.name, r.summary['converged'])"
    )
    user = subprocess.run(
        [sys.executable, "-c", mine], cwd=work, env=env, capture_output=True, text=True
    )
    assert user.returncode == 0, user.stderr
    assert user.stdout.split() == ["default", "True"]
