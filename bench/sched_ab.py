"""The embedded servers under ``SCHED_BATCH`` (as ``hubbub up`` runs them) against the
default policy: the hub's and the worker's CPU per ``users.me`` RPC, req/s at
concurrency 50 and p50 at concurrency 1.

    python -m bench.sched_ab [--windows 8] [--seconds 4]

One hub and one worker (``hubbub serve``, ``hubbub worker``) on embedded PostgreSQL,
NATS and Redis, which start under ``SCHED_BATCH`` (``cli.embedded.process``). Windows
of ``--seconds`` alternate the servers' policy in the order B N N B B N N B ... (B:
batch, N: the default ``SCHED_OTHER``), set on every thread of every server process
(PostgreSQL's backends included) between windows, so both policies see the same
processes, caches and data. Per window: req/s, the hub's and the worker's CPU time,
write system calls and involuntary context switches per RPC at concurrency 50
(``bench.rpc.cpu_per_rpc``), then p50 at concurrency 1.
The last lines give each policy's medians. Embedded servers only: the env URLs are
refused (their processes are not this run's to change).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from typing import Any

import orjson
import psutil
import uvloop

from bench.latency import measure
from bench.rpc import arrange, cpu_per_rpc, wait_ready
from bench.services import services
from bench.stack import stack_env, start_stack
from hubbub.client import HubbubClient
from tests.support.ports import quiet_port

BATCH = "batch"
NORMAL = "normal"
_POLICY = {BATCH: os.SCHED_BATCH, NORMAL: os.SCHED_OTHER}


def set_policy(servers: list[psutil.Process], policy: str) -> None:
    """Every thread of every process in ``servers`` (and their children) to ``policy``."""
    for server in servers:
        for proc in [server, *server.children(recursive=True)]:
            for thread in proc.threads():
                try:
                    os.sched_setscheduler(thread.id, _POLICY[policy], os.sched_param(0))
                except ProcessLookupError:  # a thread (or backend) that just ended
                    continue


async def run(args: argparse.Namespace, urls: dict[str, str]) -> dict[str, Any]:
    port = quiet_port(1)
    env = stack_env(urls)
    procs = start_stack(env, port)
    ours = {proc.pid for proc in procs}
    servers = [p for p in psutil.Process().children() if p.pid not in ours]
    windows: dict[str, list[dict[str, float]]] = {BATCH: [], NORMAL: []}
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_ready(base, procs)
        token = (await arrange(base, env))[0]

        async def get_token() -> str:
            return token

        ws = HubbubClient(f"ws://127.0.0.1:{port}/ws", get_token, rpc_timeout=30)
        await ws.connect()

        async def me(_worker: int, _n: int) -> None:
            await ws.rpc("users.me")

        hub, worker = psutil.Process(procs[1].pid), psutil.Process(procs[0].pid)
        await measure(me, 0, 50, seconds=2)
        for i in range(args.windows):
            policy = BATCH if i % 4 in (0, 3) else NORMAL
            set_policy(servers, policy)
            cpu = await cpu_per_rpc(
                me, 50, args.seconds, {"hub": hub, "worker": worker}, warm_up_s=0
            )
            c1 = sorted(await measure(me, 0, 1, seconds=args.seconds / 2))
            window = {
                "rps": round(cpu.pop("rpcs") / args.seconds),
                **cpu,
                "c1_p50_us": round(c1[len(c1) // 2] * 1e6, 1),
            }
            windows[policy].append(window)
            print(f"{policy:>6}: " + ", ".join(f"{k} {v}" for k, v in window.items()), flush=True)
        set_policy(servers, BATCH)
        await ws.close()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(15)
    return {
        policy: {key: statistics.median(w[key] for w in figures) for key in figures[0]}
        for policy, figures in windows.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--windows", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    if sys.platform != "linux":
        sys.exit("SCHED_BATCH is Linux's")
    given = [var for var in ("DATABASE_URL", "NATS_URL", "REDIS_URL") if os.environ.get(var)]
    if given:
        sys.exit(f"embedded servers only: unset {', '.join(given)}")
    with services() as urls:
        results = uvloop.run(run(args, urls))
    for policy, medians in results.items():
        print(f"{policy:>6} medians: " + ", ".join(f"{k} {v}" for k, v in medians.items()))
    batch, normal = results[BATCH], results[NORMAL]
    print(
        f"batch / normal: req/s {batch['rps'] / normal['rps']:.2f}, "
        f"hub CPU {batch['hub_us'] / normal['hub_us']:.2f}, "
        f"worker CPU {batch['worker_us'] / normal['worker_us']:.2f}, "
        f"c=1 p50 {batch['c1_p50_us'] / normal['c1_p50_us']:.2f}"
    )
    print(orjson.dumps({"bench": "sched_ab", "results": results}).decode())


if __name__ == "__main__":
    main()
