"""Two builds of the worker side by side on one NATS server: CPU time per request of each.

    python -m bench.bus_ab TREE_A TREE_B [--rounds 10] [--requests 10000] [--signed]

Each tree (a checkout, e.g. ``git worktree add /tmp/a main``) runs one worker answering
``bench.echo`` (``bench.bus``'s operation) in its own namespace; this process calls both
through ``Bus`` at concurrency 64, alternating rounds, and reports the CPU seconds each
worker process spent per request (``psutil``). The caller is ``null``; with ``--signed``
each concurrent loop calls as one signed-in user, signed by the ``Bus`` and checked by
the worker, as in ``bench.bus``. Both builds see the same machine load at
nearly the same time, which makes a few-µs change on a shared machine visible where
latency rounds, or runs minutes apart, are not.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import uuid
from typing import Any

import orjson
import uvloop

from bench.bus import USERS, echo
from bench.latency import Call, measure
from bench.probes import process_cpu
from cli.embedded.process import die_with_parent
from hubbub.bus import Bus
from hubbub.callers import CallerSigner
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.subjects import Subjects
from hubbub.gc_tuning import tune_gc
from hubbub.natsconn import connect_nats

SERVE = """
import asyncio, os, sys
import uvloop
async def main():
    from bench.bus import bench_registry
    from handlers import default_registry
    from cli.runtime import load_settings
    from hubbub.gc_tuning import tune_gc
    from workers.app import worker_running
    settings = load_settings(namespace=os.environ["HUBBUB_NAMESPACE"])
    async with worker_running(settings, default_registry().extend(bench_registry)):
        tune_gc()
        await asyncio.Event().wait()
asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
asyncio.run(main())
"""


async def run(args: argparse.Namespace, urls: dict[str, str]) -> dict[str, Any]:
    trees = {"A": os.path.abspath(args.tree_a), "B": os.path.abspath(args.tree_b)}
    caller_key = secrets.token_urlsafe(48)  # what the Bus and both workers share
    signer = CallerSigner(caller_key.encode()) if args.signed else None
    users: list[Caller | None] = (
        [
            Caller(
                kind=CallerKind.USER,
                user_id=str(uuid.uuid4()),
                role="member",
                session_id=str(uuid.uuid4()),
                ip="127.0.0.1",
            )
            for _ in range(USERS)
        ]
        if args.signed
        else [None]
    )
    procs = {
        side: subprocess.Popen(
            [sys.executable, "-c", SERVE],
            env={
                **os.environ,
                **urls,
                "HUBBUB_NAMESPACE": f"benchab{side.lower()}",
                "HUBBUB_LOG_LEVEL": "WARNING",
                "HUBBUB_STATE_DIR": tempfile.mkdtemp(prefix="hubbub-bench-"),
                "HUBBUB_CALLER_KEY": caller_key,
                "PYTHONPATH": tree,
            },
            cwd=tree,
            preexec_fn=die_with_parent(),
        )
        for side, tree in trees.items()
    }
    nc = await connect_nats(urls["NATS_URL"], "bench-requester")
    tune_gc()

    def caller(bus: Bus) -> Call:
        async def call(worker: int, n: int) -> None:
            user = users[worker % len(users)]
            await bus.request(echo, {"key": f"k{worker}", "n": n}, caller=user, timeout=5)

        return call

    calls = {
        side: caller(Bus(nc, Subjects(f"benchab{side.lower()}"), signer=signer)) for side in trees
    }
    try:
        for call in calls.values():
            for _ in range(300):
                try:
                    await call(0, 0)
                    break
                except Exception:
                    await asyncio.sleep(0.1)
            else:
                raise RuntimeError("a worker did not come up")
        figures: dict[str, list[float]] = {side: [] for side in trees}
        for _ in range(args.rounds):
            for side, call in calls.items():
                await measure(call, 1000, 64)
                worker = [procs[side].pid]
                before, _ = process_cpu(worker)
                await measure(call, args.requests, 64)
                after, _ = process_cpu(worker)
                spent = after - before
                figures[side].append(spent / args.requests * 1e6)
        return {
            side: {
                "tree": trees[side],
                "worker_cpu_us_median": round(statistics.median(values), 2),
                "worker_cpu_us_min": round(min(values), 2),
                "rounds": [round(v, 1) for v in values],
            }
            for side, values in figures.items()
        }
    finally:
        await nc.close()
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("tree_a")
    parser.add_argument("tree_b")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument(
        "--signed", action="store_true", help="signed user callers (as bench.bus), not null"
    )
    args = parser.parse_args()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    from bench.services import services

    with services() as urls:
        results = asyncio.run(run(args, urls))
    for side, r in results.items():
        print(
            f"{side} {r['tree']}: worker CPU µs/request median {r['worker_cpu_us_median']}"
            f" (min {r['worker_cpu_us_min']}) rounds {r['rounds']}"
        )
    print(orjson.dumps({"bench": "bus_ab", "results": results}).decode())


if __name__ == "__main__":
    main()
