"""Run the benchmarks: ``python -m bench [NAME ...]`` (default: all of them).

Each prints its figures beside a baseline measured in the same run, and a JSON line.
"""

from __future__ import annotations

import runpy
import sys

BENCHMARKS = ["bus", "bus_cpu", "rpc", "workspace", "fanout", "sockets", "loss"]


def main() -> None:
    names = sys.argv[1:] or BENCHMARKS
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark(s) {unknown}; choose from {BENCHMARKS}")
    for name in names:
        print(f"=== bench {name}", flush=True)
        sys.argv = [f"bench.{name}"]
        runpy.run_module(f"bench.{name}", run_name="__main__")


if __name__ == "__main__":
    main()
