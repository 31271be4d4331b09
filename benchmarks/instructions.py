"""The ABIDES-sized order-book runs in machine instructions, counted by Valgrind's callgrind.

Run from the repository root (needs ``valgrind``: ``apt-get install valgrind``)::

    python -m benchmarks.instructions            # about 10 minutes
    python -m benchmarks.instructions --runs 2   # fewer measured runs per figure

:mod:`benchmarks.abides_sized` times runs in CPU seconds against bare SimPy timeouts measured
around them; on a shared machine both move with the neighbours' load, and the run (which
touches far more memory than the bare loop) moves more. An instruction count does not move:
this benchmark counts the instructions of a bare SimPy timeout and of an ABIDES-sized run
(1,000 agents, ~3,000 orders, the same runs as :mod:`benchmarks.abides_sized`) and prints
their ratio, *instructions per order in bare timeouts*. It is a floor for the time ratio (an
instruction of the run costs at least as much time as one of the tight bare loop).

Each figure is the difference between two processes that differ only in how many measured
runs (or timeouts) they do after the same imports and warm-up, so start-up cancels out.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = ["count"]

_TOTAL = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def _child(kind: str, repeat: int) -> None:
    """The measured work, run under callgrind: a warm-up, then ``repeat`` runs (or ``repeat``
    times 100,000 bare timeouts); prints the orders of the measured runs."""
    from benchmarks import abides_sized

    if kind == "bare":
        abides_sized.bare_timeout(1_000)
        for _ in range(repeat):
            abides_sized.bare_timeout(100_000)
        print(json.dumps({"units": 100_000 * repeat}))
        return
    abides_sized.timed_run(kind, 1000, 3.0)  # warm-up: first-use imports and caches
    orders = sum(abides_sized.timed_run(kind, 1000, 3.0)[1] for _ in range(repeat))
    print(json.dumps({"units": orders}))


def _counted(kind: str, repeat: int, folder: Path) -> tuple[int, int]:
    """(instructions, orders or timeouts) of one process doing ``repeat`` measured units."""
    out = folder / f"{kind}-{repeat}.out"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable]
    cmd += ["-m", "benchmarks.instructions", "--child", kind, str(repeat)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    units = json.loads(done.stdout.strip().splitlines()[-1])["units"]
    match = _TOTAL.search(out.read_text())
    if match is None:
        raise RuntimeError(f"no instruction total in {out}")
    return int(match.group(1)), int(units)


def count(kind: str, runs: int, folder: Path) -> float:
    """Instructions per order (or per bare timeout) of ``kind``: the difference between a
    process with ``runs + 1`` measured units and one with 1."""
    with ThreadPoolExecutor(2) as pool:
        low, high = pool.map(lambda r: _counted(kind, r, folder), (1, runs + 1))
    return (high[0] - low[0]) / (high[1] - low[1])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=4, help="measured runs per figure")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "REPEAT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], int(args.child[1]))
        return
    if shutil.which("valgrind") is None:
        parser.exit(2, "benchmarks.instructions: error: valgrind is not installed\n")
    if args.runs < 1:
        parser.exit(2, f"benchmarks.instructions: error: --runs {args.runs} must be >= 1\n")
    with tempfile.TemporaryDirectory() as tmp:
        bare = count("bare", args.runs, Path(tmp))
        print(f"bare SimPy timeout: {bare:,.0f} instructions")
        for kind in ("zi_c", "utility"):
            per_order = count(kind, args.runs, Path(tmp))
            print(
                f"  1,000 {kind} agents, ~3,000 orders: {per_order:,.0f} instructions per "
                f"order = {per_order / bare:.1f} bare timeouts"
            )


if __name__ == "__main__":
    main()
