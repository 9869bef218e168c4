"""Run the benchmarks: ``python -m bench [NAME ...]`` (default: all of them), or
``python -m bench NAME OPTION ...``: one, with options of its own (``NAME --help`` lists
them).

Each prints its figures beside a baseline measured in the same run, and a JSON line.
A benchmark that ends with ``sys.exit`` ends only itself: the rest still run, and the
command exits 1 naming any that failed.
"""

from __future__ import annotations

import runpy
import sys

BENCHMARKS = ["bus", "bus_cpu", "rpc", "workspace", "fanout", "sockets", "loss"]

USAGE = f"""\
usage: bin/hubbub bench [NAME ...]         the benchmarks named (none: all of them)
       bin/hubbub bench NAME OPTION ...    one, with options of its own
       bin/hubbub bench NAME --help        its options

benchmarks: {", ".join(BENCHMARKS)} (bench/README.md)
"""


def plan(args: list[str]) -> tuple[list[str], list[str]]:
    """The benchmarks ``args`` name, and the options given them: everything from the
    first argument that starts with ``-``, after a single name. Exits on anything else."""
    if not args:
        return BENCHMARKS, []
    first_option = next((i for i, arg in enumerate(args) if arg.startswith("-")), len(args))
    names, options = args[:first_option], args[first_option:]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark(s) {unknown}; choose from {BENCHMARKS}")
    if options and len(names) != 1:
        sys.exit(
            f"options ({' '.join(options)}) go after the name of one benchmark, "
            f"not {len(names)}: bin/hubbub bench NAME OPTION ... (bin/hubbub bench --help)"
        )
    return names, options


def main() -> None:
    args = sys.argv[1:]
    if args in (["-h"], ["--help"]):
        print(USAGE, end="")
        return
    names, options = plan(args)
    failed = []
    for name in names:
        print(f"=== bench {name}", flush=True)
        sys.argv = [f"bench.{name}", *options]
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
