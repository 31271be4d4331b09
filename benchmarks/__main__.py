"""Run every benchmark: ``python -m benchmarks [--quick]``."""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS = (
    "bench_tatonnement",
    "bench_book",
    "bench_market",
    "abides_sized",
    "bench_scale",
    "bench_sweep",
    "hayek",
    "call_market",
    "prediction_limit",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args()
    for name in BENCHMARKS:
        print(f"\n== {name} ==")
        module = importlib.import_module(f"benchmarks.{name}")
        if name == "bench_book":
            module.main(["--ops", "100000"] if args.quick else [])
        elif name == "bench_market":
            module.main(["--until", "50", "--repeat", "1"] if args.quick else [])
        elif name == "bench_sweep":
            module.main(["--runs", "16"] if args.quick else [])
        else:
            module.main(["--quick"] if args.quick else [])


if __name__ == "__main__":
    main()
