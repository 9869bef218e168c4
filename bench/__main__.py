"""Run the benchmarks: ``python -m bench [NAME ...]`` (default: all of them).

Each prints its figures beside a baseline measured in the same run, and a JSON line.
A benchmark that ends with ``sys.exit`` ends only itself: the rest still run, and the
command exits 1 naming any that failed.
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
    failed = []
    for name in names:
        print(f"=== bench {name}", flush=True)
        sys.argv = [f"bench.{name}"]
        try:
            # ``alter_sys``: the benchmark is ``sys.modules["__main__"]`` while it runs, so
            # the client processes it spawns find the functions it hands them (``loss``'s).
            runpy.run_module(f"bench.{name}", run_name="__main__", alter_sys=True)
        except SystemExit as exc:  # ``sys.exit(main())``: the benchmark's own end
            if exc.code not in (None, 0):
                failed.append(name)
    if failed:
        sys.exit(f"benchmark(s) failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
