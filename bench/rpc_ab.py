"""Two builds of the hub side by side: its CPU per ``users.me`` RPC at concurrency 50.

    python -m bench.rpc_ab TREE_A TREE_B [--rounds 2] [--windows 4] [--seconds 5]

Each tree (a checkout, e.g. ``git worktree add /tmp/a main``) runs one hub and one
worker (``hubbub serve``, ``hubbub worker``) on the same PostgreSQL, NATS and Redis. The
trees take turns, ``--rounds`` times each, in the order A B, B A, A B, ...: neither
always runs second, on what the other left behind. A round signs the benchmark user in,
loads the hub for 2 s, then measures ``--windows`` windows of ``--seconds``: per RPC,
the hub's CPU time, write system calls and involuntary context switches
(``bench.rpc.cpu_per_rpc``). The last lines give each tree's median over all
its windows. Taking turns spreads the host's drift over both trees, which a run of
``bench rpc`` per tree, minutes apart, does not.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

import orjson
import psutil
import uvloop

from bench.latency import measure
from bench.rpc import arrange, cpu_per_rpc, sign_in, wait_ready
from bench.services import services
from bench.stack import stack_env, start_stack
from hubbub.client import HubbubClient
from tests.support.ports import quiet_port


async def one_round(
    tree: Path, args: argparse.Namespace, urls: dict[str, str], *, first: bool
) -> list[float]:
    """The hub's µs of CPU per RPC in each window of one round of ``tree``; the ``first``
    round makes the benchmark user, the others sign it in."""
    port = quiet_port(1)
    env = stack_env(urls, tree)
    procs = start_stack(env, port, tree=tree)
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_ready(base, procs)
        token = (await arrange(base, env))[0] if first else await sign_in(base)

        async def get_token() -> str:
            return token

        ws = HubbubClient(f"ws://127.0.0.1:{port}/ws", get_token, rpc_timeout=30)
        await ws.connect()

        async def me(_worker: int, _n: int) -> None:
            await ws.rpc("users.me")

        hub = psutil.Process(procs[1].pid)
        await measure(me, 0, 50, seconds=2)
        figures = []
        for _ in range(args.windows):
            cpu = await cpu_per_rpc(me, 50, args.seconds, {"hub": hub}, warm_up_s=0)
            figures.append(cpu["hub_us"])
            print(
                f"{tree}: {cpu['rpcs']:.0f} RPCs, hub {cpu['hub_us']:.1f} µs per RPC, "
                f"{cpu['hub_writes']:.2f} writes, {cpu['hub_preempted']:.2f} preempted",
                flush=True,
            )
        await ws.close()
        return figures
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(15)


async def run(args: argparse.Namespace, urls: dict[str, str]) -> dict[str, Any]:
    trees = [Path(args.tree_a).resolve(), Path(args.tree_b).resolve()]
    windows: dict[Path, list[float]] = {tree: [] for tree in trees}
    for round_ in range(args.rounds):
        order = trees if round_ % 2 == 0 else trees[::-1]
        for tree in order:
            first = round_ == 0 and tree is order[0]
            windows[tree] += await one_round(tree, args, urls, first=first)
    return {
        str(tree): {"hub_us": figures, "median_us": round(statistics.median(figures), 1)}
        for tree, figures in windows.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("tree_a")
    parser.add_argument("tree_b")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with services() as urls:
        results = uvloop.run(run(args, urls))
    for tree, figures in results.items():
        print(f"{tree}: hub median {figures['median_us']} µs per RPC")
    print(orjson.dumps({"bench": "rpc_ab", "results": results}).decode())


if __name__ == "__main__":
    main()
