"""Peak memory of a large run from the command line, against a budget.

Run from the repository root::

    python -m benchmarks.bench_memory                       # 10^6 agents, horizon 200, 2 GiB
    python -m benchmarks.bench_memory --agents 100000 --rounds 20
    python -m benchmarks.bench_memory --quick               # 10^5 agents, 10 rounds

It runs, as a child process,
``mktsim run cobb_douglas --set n_agents=N --option mode=non_tatonnement [--until R]`` (the
auctioneer posts once per unit of time until it converges: at most 200 rounds at the
scenario's horizon) into a temporary folder, report included,
and prints the child's peak resident memory (``ru_maxrss`` from ``wait4``) against the budget.
The command line estimates the recorded tables before the run and, above its memory budget,
streams them to the run folder while the run goes (one line on stderr says so): 10^6 agents
trading every round record 2 x 10^6 trade rows a round, about 22 GiB over 200 rounds held in
memory, so the run must stream to stay under the budget.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

_GIB = 2**30


def peak_of(command: list[str]) -> tuple[int, float, int, str]:
    """Run ``command``; return its exit code, wall seconds, peak RSS in bytes and output."""
    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True)
        # wait4 gives this child's own resource usage (RUSAGE_CHILDREN would mix in others).
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        log.seek(0)
        text = log.read()
    # ru_maxrss is in KiB on Linux
    return os.waitstatus_to_exitcode(status), wall, usage.ru_maxrss * 1024, text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=1_000_000)
    parser.add_argument(
        "--rounds", type=int, default=None, help="horizon (default the scenario's, 200 rounds)"
    )
    parser.add_argument("--budget", type=float, default=2.0, help="GiB (default 2)")
    parser.add_argument("--quick", action="store_true", help="10^5 agents, 10 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.agents, args.rounds = 100_000, 10
    mktsim = shutil.which("mktsim") or os.path.join(os.path.dirname(sys.executable), "mktsim")
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            mktsim,
            "run",
            "cobb_douglas",
            "--set",
            f"n_agents={args.agents}",
            "--option",
            "mode=non_tatonnement",
            *([] if args.rounds is None else ["--until", str(args.rounds)]),
            "--out",
            os.path.join(tmp, "run"),
        ]
        code, wall, peak, text = peak_of(command)
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tmp) for f in fs)
    print(" ".join(["mktsim", *command[1:-2]]))
    for line in text.strip().splitlines():
        print("  | " + line)
    verdict = "under" if peak < args.budget * _GIB else "OVER"
    print(
        f"exit {code}; peak RSS {peak / _GIB:.3f} GiB {verdict} the budget of {args.budget:g} GiB; "
        f"wall {wall:.0f} s; run folder {size / _GIB:.2f} GiB on disk"
    )


if __name__ == "__main__":
    main()
