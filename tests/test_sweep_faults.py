"""Sweeps that survive their workers' deaths and do not outlive their own.

A worker is killed by SIGKILL in the middle of a run (by the run itself, or by the test while the
run waits on a gate); the sweep is killed by SIGKILL while its workers are busy. References: the
plan of the sweep (every run id once) and the process table (/proc) for orphans.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mktsim.sweep import load_summaries, plan, sweep

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def write_script(path: Path, body: str) -> Path:
    path.write_text("import os, signal, time\nfrom mktsim.scenarios import cobb_douglas\n\n" + body)
    return path


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def wait_for(condition, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_run_that_kills_its_worker_fails_alone(tmp_path: Path) -> None:
    """One run SIGKILLs its own worker every time: it is recorded as failed after one retry, and
    every other run of the 20 (some executing, some queued when the pool broke) ends ok."""
    script = write_script(
        tmp_path / "deadly.py",
        (
            "def build(n_agents=20, n_goods=2, seed=0, deadly=False):\n"
            "    if deadly and seed == 3:\n"
            "        os.kill(os.getpid(), signal.SIGKILL)\n"
            "    return cobb_douglas.build(n_agents=n_agents, n_goods=n_goods, seed=seed)\n"
        ),
    )
    grid = {"deadly": [True, False]}
    frame = sweep(
        script, grid, 10, mechanisms="walrasian", out=tmp_path / "out", workers=2, progress=False
    )
    expected = {s.run_id: s for s in plan(script, grid, 10, mechanisms="walrasian")}
    assert sorted(frame["run_id"]) == sorted(expected)
    failed = frame[frame["status"] != "ok"]
    assert len(failed) == 1
    killer = expected[failed["run_id"].iloc[0]]
    assert killer.params["deadly"] is True and killer.seed == 3
    assert "BrokenProcessPool" in failed["error"].iloc[0]
    assert (frame["status"] == "ok").sum() == 19


def test_a_killed_worker_costs_its_run_one_retry(tmp_path: Path) -> None:
    """The test kills a worker while its run waits; the run is retried and all 20 end ok."""
    gate, pids = tmp_path / "gate", tmp_path / "pids"
    pids.mkdir()
    script = write_script(
        tmp_path / "gated.py",
        (
            "def build(n_agents=20, n_goods=2, seed=0, held=False):\n"
            "    if held and seed == 0:\n"
            f"        open(os.path.join({str(pids)!r}, str(os.getpid())), 'w').close()\n"
            f"        while not os.path.exists({str(gate)!r}):\n"
            "            time.sleep(0.01)\n"
            "    return cobb_douglas.build(n_agents=n_agents, n_goods=n_goods, seed=seed)\n"
        ),
    )
    grid = {"held": [True, False]}
    out = tmp_path / "out"
    code = (
        f"from mktsim.sweep import sweep; sweep({str(script)!r}, {grid!r}, 10, "
        f"mechanisms='walrasian', out={str(out)!r}, workers=2, progress=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, start_new_session=True)
    try:
        wait_for(lambda: any(pids.iterdir()), 120, "the held run never started")
        victim = int(next(pids.iterdir()).name)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(list(pids.iterdir())) == 2, 120, "the held run was not retried")
        gate.touch()
        assert proc.wait(timeout=180) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    frame = load_summaries(out)
    assert len(frame) == 20 and set(frame["status"]) == {"ok"}


def test_a_killed_sweep_leaves_no_process(tmp_path: Path) -> None:
    """SIGKILL of the sweep alone (not its process group): its fork server and workers, busy
    in runs that wait forever, are all gone within 5 s."""
    pids = tmp_path / "pids"
    pids.mkdir()
    script = write_script(
        tmp_path / "forever.py",
        (
            "def build(n_agents=20, n_goods=2, seed=0):\n"
            f"    open(os.path.join({str(pids)!r}, str(os.getpid())), 'w').close()\n"
            "    while True:\n"
            "        time.sleep(0.05)\n"
        ),
    )
    code = (
        f"from mktsim.sweep import sweep; sweep({str(script)!r}, None, 4, "
        f"mechanisms='walrasian', out={str(tmp_path / 'out')!r}, workers=2, progress=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, start_new_session=True)
    try:
        wait_for(lambda: len(list(pids.iterdir())) == 2, 120, "the workers never started")
        family = descendants(proc.pid)
        workers = {int(p.name) for p in pids.iterdir()}
        assert workers <= family and len(family) >= 3  # fork server and two workers
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 5
        while any(alive(p) for p in family) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [p for p in family if alive(p)]
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.dask
def test_an_unreachable_scheduler_is_one_error_after_the_connect_timeout() -> None:
    pytest.importorskip("distributed")
    from mktsim.errors import MktsimError
    from mktsim.sweep_pool import DASK_CONNECT_SECONDS, dask_client

    for address in ("not a url", "tcp://127.0.0.1:1"):
        with pytest.raises(MktsimError, match="cannot reach the Dask scheduler"):
            with dask_client(address):
                pass
    assert DASK_CONNECT_SECONDS <= 10


@pytest.mark.dask
def test_a_malformed_scheduler_address_is_one_line_at_the_cli(tmp_path: Path) -> None:
    """Refused before a Dask client exists: a half-made client would hang at exit and print a
    traceback from its finaliser."""
    pytest.importorskip("distributed")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mktsim.cli",
            "sweep",
            "cobb_douglas",
            "--mechanism",
            "walrasian",
            "--scheduler",
            "notaurl",
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "mktsim: error: cannot reach the Dask scheduler at 'notaurl': missing port number in "
        "address 'notaurl'"
    ]
