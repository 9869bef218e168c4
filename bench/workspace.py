"""A busy workspace: resource creates into ONE workspace at a fixed rate (issue 14, goal 2).

    python -m bench.workspace [--rate 300] [--seconds 30] [--workers 2] [--sockets 4]
                              [--spread 20 | --no-baseline]

One hub and ``--workers`` worker processes (``hubbub serve``, ``hubbub worker``) on
embedded PostgreSQL/NATS/Redis (or the three URLs). A user made with the operator
command signs in; ``resources.create`` goes out as WebSocket RPCs (each with its own
idempotency key, as the app's outbox sends them) over ``--sockets`` sockets.

The load is open-loop: request ``i`` is sent at ``start + i / rate`` whatever the
earlier ones are doing, and its latency counts from that moment — a server that falls
behind shows it in the latency instead of slowing the client down. Every loop is
bounded: ``rate * seconds`` requests, each with a 10 s timeout.

1. Baseline, same run: the same rate spread over ``--spread`` workspaces (no two
   consecutive creates in one workspace) for the same time; then the bench waits until
   the workers have finished what it left them (no new row for a second).
2. The figure: every create into one workspace. A second socket, subscribed to the
   workspace's channel, counts the ``resource.created`` events that arrive, and the
   database is asked how many rows the workspace has.

Printed: creates/s, p50/p99, 503s and other errors of each phase, beside the targets
(≥ 300/s for 30 s, p99 ≤ 100 ms, 0 x 503), the p99 ratio to the baseline, the events
and rows seen, and the load average before and after (the host is shared); CPU per
create of each process, and per row written of the one-workspace phase what the servers
counted (PostgreSQL transactions and rows inserted and updated, Redis commands), which
unlike CPU time does not depend on the host's load. The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import psutil
import uvloop
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.probes import process_cpu
from bench.rpc import arrange, wait_ready
from bench.services import services
from bench.stack import stack_env, start_stack
from bench.stats import percentile
from handlers.db import create_engine
from hubbub.client import HubbubClient
from hubbub.client.client import RemoteError
from tests.support.ports import quiet_port

TARGET_RATE = 300.0
TARGET_SECONDS = 30.0
TARGET_P99_MS = 100.0
RPC_TIMEOUT_S = 10.0


@dataclass
class Phase:
    name: str
    sent: int = 0
    ok: int = 0
    unavailable: int = 0  # 503: the answer this goal allows none of
    errors: dict[str, int] = field(default_factory=dict)  # other error codes, timeouts
    latencies: list[float] = field(default_factory=list)  # of the successful ones, s
    ids: set[str] = field(default_factory=set)  # of the resources made
    elapsed: float = 0.0  # first send to last answer

    def figures(self) -> dict[str, Any]:
        lat = sorted(self.latencies or [0.0])
        return {
            "sent": self.sent,
            "ok": self.ok,
            "unavailable": self.unavailable,
            "errors": self.errors,
            "rate": round(self.ok / self.elapsed, 1) if self.elapsed else 0.0,
            "p50_ms": round(percentile(lat, 50) * 1000, 1),
            "p99_ms": round(percentile(lat, 99) * 1000, 1),
            "max_ms": round(lat[-1] * 1000, 1),
            "seconds": round(self.elapsed, 2),
        }


async def drive(
    name: str, clients: list[HubbubClient], workspaces: list[str], rate: float, seconds: float
) -> Phase:
    """``rate * seconds`` creates, open-loop, round robin over sockets and workspaces."""
    phase = Phase(name)
    total = int(rate * seconds)
    loop = asyncio.get_running_loop()
    start = loop.time()
    last_answer = start

    async def one(i: int, scheduled: float) -> None:
        nonlocal last_answer
        params = {
            "workspace_id": workspaces[i % len(workspaces)],
            "kind": "task",
            "title": f"card {i}",
            "status": ("todo", "doing", "done")[i % 3],
        }
        client = clients[i % len(clients)]
        try:
            made = await client.rpc(
                "resources.create",
                params,
                idempotency_key=uuid.uuid4().hex,
                timeout=RPC_TIMEOUT_S,
            )
        except RemoteError as exc:
            if exc.code == "unavailable":
                phase.unavailable += 1
            else:
                phase.errors[exc.code] = phase.errors.get(exc.code, 0) + 1
        except TimeoutError:
            phase.errors["client_timeout"] = phase.errors.get("client_timeout", 0) + 1
        else:
            phase.ok += 1
            phase.latencies.append(loop.time() - scheduled)
            phase.ids.add(str(made["id"]))
        last_answer = max(last_answer, loop.time())

    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
        phase.sent += 1
    await asyncio.gather(*tasks)
    phase.elapsed = last_answer - start
    return phase


class CpuMeter:
    """CPU seconds (user + system) of the processes that serve the load: the hub, the
    workers, and the PostgreSQL, NATS and Redis servers (each found by its listening
    port, with its children: PostgreSQL's backends). Load-independent where rates are
    not: on a shared host, CPU per create says what one create costs."""

    def __init__(self, named: dict[str, list[int]], ports: dict[str, int]) -> None:
        self.roots: dict[str, list[psutil.Process]] = {
            name: [psutil.Process(pid) for pid in pids] for name, pids in named.items()
        }
        listening = {
            c.laddr[1]: c.pid
            for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.pid and c.laddr
        }
        self.servers = set(ports)
        for name, port in ports.items():
            if port in listening:
                self.roots[name] = [psutil.Process(listening[port])]

    def read(self) -> dict[str, dict[int, float]]:
        """CPU seconds of every process of each kind, by pid."""
        totals: dict[str, dict[int, float]] = {}
        for name, roots in self.roots.items():
            seen: dict[int, float] = {}
            for root in roots:
                try:
                    # A server's children are its own (PostgreSQL's backends); the bench's
                    # are the hub and workers, counted apart.
                    own = root.children(recursive=True) if name in self.servers else []
                except psutil.NoSuchProcess:
                    continue
                for proc in [root, *own]:
                    if proc.is_running():  # one gone since is not counted as zero
                        seen[proc.pid] = process_cpu([proc.pid])[0]
            totals[name] = seen
        return totals

    @staticmethod
    def per(
        before: dict[str, dict[int, float]], after: dict[str, dict[int, float]], count: int
    ) -> dict[str, float]:
        """µs of CPU per ``count`` of work, by process kind, and their total. A process
        that started meanwhile counts whole; one that ended meanwhile (a PostgreSQL
        backend) is missing: its CPU since ``before`` cannot be read any more."""
        figures = {}
        for name, pids in after.items():
            used = sum(cpu - before[name].get(pid, 0.0) for pid, cpu in pids.items())
            figures[f"{name}_us"] = round(used / max(count, 1) * 1e6, 1)
        figures["total_us"] = round(sum(figures.values()), 1)
        return figures


async def server_counts(engine: AsyncEngine, redis: Redis) -> dict[str, int]:
    """What the servers counted so far: PostgreSQL's transactions (an autocommit
    statement is one) and rows inserted and updated, and the commands Redis processed.
    Counts, unlike CPU time, do not depend on how loaded the host is."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT sum(xact_commit + xact_rollback), sum(tup_inserted),"
                    " sum(tup_updated) FROM pg_stat_database"
                )
            )
        ).one()
    info = await redis.info("stats")
    return {
        "pg_transactions": int(row[0] or 0),
        "pg_rows_inserted": int(row[1] or 0),
        "pg_rows_updated": int(row[2] or 0),
        "redis_commands": int(info["total_commands_processed"]),
    }


def counts_per(before: dict[str, int], after: dict[str, int], count: int) -> dict[str, float]:
    return {name: round((after[name] - before[name]) / max(count, 1), 2) for name in after}


def _port(url: str) -> int:
    return urlsplit(url.replace("+asyncpg", "")).port or 0


async def count_rows(engine: AsyncEngine, workspace: str) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM resources WHERE workspace_id = :w"), {"w": workspace}
        )
    return int(count or 0)


async def settle(engine: AsyncEngine, limit_s: float = 60.0) -> None:
    """Wait until the workers have finished what the last phase left them (requests the
    client gave up on still run): no new resource row for a second, at most ``limit_s``."""
    loop = asyncio.get_running_loop()
    until = loop.time() + limit_s
    last = -1
    while loop.time() < until:
        async with engine.connect() as conn:
            count = int(await conn.scalar(text("SELECT count(*) FROM resources")) or 0)
        if count == last:
            return
        last = count
        await asyncio.sleep(1.0)


async def count_created(sub_queue: asyncio.Queue[Any], seen: set[str], until: float) -> None:
    """Take ``resource.created`` publications off the subscription until ``until``."""
    loop = asyncio.get_running_loop()
    while (left := until - loop.time()) > 0:
        try:
            publication = await asyncio.wait_for(sub_queue.get(), left)
        except TimeoutError:
            return
        data = publication.data
        if isinstance(data, dict) and data.get("type") == "resource.created":
            seen.add(str(data["data"]["id"]))


async def run(args: argparse.Namespace, urls: dict[str, str]) -> dict[str, Any]:
    port = quiet_port(1)
    env = stack_env(urls)
    procs = start_stack(env, port, workers=args.workers)
    base = f"http://127.0.0.1:{port}"
    results: dict[str, Any] = {"load_before": os.getloadavg()}
    clients: list[HubbubClient] = []
    engine = create_engine(urls["DATABASE_URL"], pool_size=1, max_overflow=0)
    redis = Redis.from_url(urls["REDIS_URL"])
    try:
        await wait_ready(base, procs)
        token, workspace, _resource = await arrange(base, env)
        spread: list[str] = []
        if args.spread:
            async with aiohttp.ClientSession(base_url=base) as http:
                auth = {"Authorization": f"Bearer {token}"}
                for n in range(args.spread):
                    async with http.post(
                        "/api/v1/workspaces", json={"name": f"spread {n}"}, headers=auth
                    ) as r:
                        spread.append((await r.json())["id"])
        ws_url = f"ws://127.0.0.1:{port}/ws"
        clients = [
            HubbubClient(ws_url, token, rpc_timeout=RPC_TIMEOUT_S) for _ in range(args.sockets + 1)
        ]
        for client in clients:
            await client.connect()
        listener, senders = clients[0], clients[1:]
        sub = await listener.subscribe(f"workspace:{workspace}")
        loop = asyncio.get_running_loop()
        seen: set[str] = set()  # ids of the resource.created events that arrived
        counting = asyncio.create_task(
            count_created(sub.queue, seen, loop.time() + 2 * args.seconds + 90)
        )
        meter = CpuMeter(
            {
                "hub": [procs[-1].pid],
                "workers": [p.pid for p in procs[:-1]],
                "bench_client": [os.getpid()],
            },
            {
                "postgres": _port(urls["DATABASE_URL"]),
                "nats": _port(urls["NATS_URL"]),
                "redis": _port(urls["REDIS_URL"]),
            },
        )
        # Warm-up: every worker's pools and connections, a second of load, not counted.
        await drive("warm-up", senders, spread or [workspace], min(args.rate, 100), 1)
        if spread:
            before = meter.read()
            phase = await drive("spread", senders, spread, args.rate, args.seconds)
            results["spread"] = phase.figures()
            results["spread"]["cpu"] = meter.per(before, meter.read(), phase.ok)
            await settle(engine)
        rows_before = await count_rows(engine, workspace)
        counted = await server_counts(engine, redis)
        before = meter.read()
        one = await drive("one workspace", senders, [workspace], args.rate, args.seconds)
        after = meter.read()
        results["one_workspace"] = one.figures()
        results["one_workspace"]["cpu"] = meter.per(before, after, one.ok)
        # Per row written by then: past capacity, rows are also written for requests the
        # client gave up on, and CPU per answered create overstates what a create costs.
        written = await count_rows(engine, workspace) - rows_before
        results["one_workspace"]["cpu_per_row"] = meter.per(before, after, written)
        # The events of every successful create, within 15 s of the last answer.
        deadline = loop.time() + 15
        while not one.ids <= seen and loop.time() < deadline and not counting.done():
            await asyncio.sleep(0.1)
        counting.cancel()
        rows = await count_rows(engine, workspace) - rows_before
        # PostgreSQL's backends report their counts when idle, at most once a second.
        await asyncio.sleep(1.5)
        results["one_workspace"]["per_row"] = counts_per(
            counted, await server_counts(engine, redis), rows
        )
        results["events"] = {
            "created_ok": one.ok,
            "events_seen": len(one.ids & seen),
            "rows": rows,
        }
        results["load_after"] = os.getloadavg()
        return results
    finally:
        for client in clients:
            await client.close()
        await engine.dispose()
        await redis.aclose()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(15)


def report(args: argparse.Namespace, results: dict[str, Any]) -> bool:
    """Print the figures beside their targets; True when every target is met."""
    before = " ".join(f"{x:.2f}" for x in results["load_before"])
    after = " ".join(f"{x:.2f}" for x in results["load_after"])
    print(
        f"bench workspace: {args.workers} workers, 1 hub, {args.sockets} sockets, open-loop"
        f" {args.rate:g} creates/s for {args.seconds:g} s; load average {before} -> {after}"
    )

    def line(label: str, f: dict[str, Any]) -> None:
        others = sum(f["errors"].values())
        print(
            f"  {label:<22} {f['ok']:>6} ok of {f['sent']:>6} in {f['seconds']:>6} s ="
            f" {f['rate']:>6}/s   p50 {f['p50_ms']:>6} ms  p99 {f['p99_ms']:>7} ms"
            f"  max {f['max_ms']:>7} ms   503: {f['unavailable']}  other errors: {others}"
            + (f" {f['errors']}" if others else "")
        )

    def cpu(label: str, f: dict[str, Any]) -> None:
        if not f["ok"]:
            print(f"  {'':<22} CPU per create: - (no create succeeded)")
            return
        parts = ", ".join(f"{k[:-3]} {v}" for k, v in f["cpu"].items() if k != "total_us")
        print(f"  {'':<22} CPU per create: {f['cpu']['total_us']} µs ({parts})")

    if "spread" in results:
        line(f"spread ({args.spread} workspaces)", results["spread"])
        cpu("spread", results["spread"])
    one = results["one_workspace"]
    line("one workspace", one)
    cpu("one workspace", one)
    if "cpu_per_row" in one:
        per_row = one["cpu_per_row"]
        parts = ", ".join(f"{k[:-3]} {v}" for k, v in per_row.items() if k != "total_us")
        print(f"  {'':<22} CPU per row written: {per_row['total_us']} µs ({parts})")
    if "per_row" in one:
        counts = ", ".join(f"{k} {v}" for k, v in one["per_row"].items())
        print(f"  {'':<22} per row written: {counts}")
    events = results["events"]
    print(
        f"  events: {events['events_seen']} resource.created of {events['created_ok']}"
        f" successful creates arrived on the workspace channel; rows written:"
        f" {events['rows']}"
    )
    rate_ok = one["rate"] >= TARGET_RATE * 0.99 and args.seconds >= TARGET_SECONDS
    checks = {
        f"rate >= {TARGET_RATE:g}/s for {TARGET_SECONDS:g} s": rate_ok,
        f"p99 <= {TARGET_P99_MS:g} ms": bool(one["ok"]) and one["p99_ms"] <= TARGET_P99_MS,
        "0 x 503": one["unavailable"] == 0,
        "no other errors": not one["errors"],
        "every event arrived, every row written once": (
            events["events_seen"] == events["created_ok"] == events["rows"]
        ),
    }
    if "spread" in results and results["spread"]["p99_ms"]:
        ratio = one["p99_ms"] / results["spread"]["p99_ms"]
        rate_ratio = one["rate"] / results["spread"]["rate"] if results["spread"]["rate"] else 0
        print(
            f"  one workspace / spread: p99 {ratio:.2f}x, rate {rate_ratio:.2f}x"
            " (1.0: a busy workspace costs nothing more than many quiet ones)"
        )
        results["ratio_p99"] = round(ratio, 3)
    for name, met in checks.items():
        print(f"  target {name}: {'met' if met else 'NOT met'}")
    met = all(checks.values())
    results["targets_met"] = met
    return met


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="creates per second")
    parser.add_argument("--seconds", type=float, default=TARGET_SECONDS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sockets", type=int, default=4)
    parser.add_argument("--spread", type=int, default=20, help="baseline's workspaces")
    parser.add_argument("--no-baseline", dest="spread", action="store_const", const=0)
    args = parser.parse_args()
    with services() as urls:
        results = uvloop.run(run(args, urls))
    report(args, results)
    print(orjson.dumps({"bench": "workspace", "results": results}).decode())


if __name__ == "__main__":
    main()
