"""Run the chaos scenarios: ``python -m chaos [SCENARIO ...] [--ci]`` (default: all).

Starts a whole system of its own (see ``chaos/system.py``), runs each scenario in turn,
prints the table, and exits 1 when a scenario breaks a must-show.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from chaos.report import table
from chaos.scenarios import CI_SIZES, SCENARIOS, Run, Sizes
from chaos.system import System


async def run(names: list[str], sizes: Sizes) -> int:
    system = System()
    print(f"chaos: starting a system in {system.base}", flush=True)
    results = []
    failed = True
    try:
        await system.start()
        for name in names:
            print(f"=== chaos {name}", flush=True)
            result = await SCENARIOS[name](Run(system, sizes))
            print(table([result]), flush=True)
            results.append(result)
        failed = any(r.violations() for r in results)
    finally:  # a run that broke off keeps its logs too
        await system.stop(keep=failed)
    print("\n" + table(results), flush=True)
    if failed:
        print(f"logs kept in {system.base} (up.log: hubbub up and its children)", flush=True)
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="hubbub chaos", description=__doc__)
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=", ".join(SCENARIOS))
    parser.add_argument("--ci", action="store_true", help="the test suite's smaller sizes")
    args = parser.parse_args()
    names = args.scenarios or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        sys.exit(f"unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(run(names, CI_SIZES if args.ci else Sizes())))


if __name__ == "__main__":
    main()
