"""Loss under forced reconnects: what the application sees when sockets keep dropping.

    python -m bench.loss [--subscribers 200] [--publications 10000] [--rate 250] [--drop-every 2]

``--subscribers`` clients subscribe to one channel, spread over ``--procs`` processes.
While ``--publications`` publications flow at ``--rate`` per second, every client's
socket is cut (TCP abort, no close handshake) at random — on average every
``--drop-every`` seconds. When the publisher is done the cutting stops, the clients
catch up, and each reports what its application received.

* **hubbub** — a real hub (``bench/hubbub_target.py``) and ``hubbub.client.HubbubClient``:
  it reconnects with backoff and resubscribes with ``since``; the hub replays what it
  missed from JetStream.
* **bare** (the baseline, same run) — the bare aiohttp broadcast server and a client that
  reconnects the same way but has nothing to recover from.

Reported per target: publications lost (sent but never delivered to a client's
application, summed over clients) and duplicates (delivered twice), reconnects, how
often recovery was impossible, the server's CPU time while publishing (the hub and its
NATS; the bare server) and, with an embedded NATS, how many times NATS cut the hub as
a slow consumer. Target for Hubbub: lost = 0 and duplicates = 0.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import random
import time
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
import orjson
import uvloop

from bench.probes import process_cpu
from bench.targets import BareTarget
from hubbub.client import HubbubClient

CHANNEL = "loss"


# --- client processes ------------------------------------------------------------------------


async def _hubbub_clients(cfg: dict[str, Any], pipe: Connection) -> dict[str, Any]:
    clients = [
        HubbubClient(cfg["url"], cfg["token"], backoff_min=0.02, backoff_max=0.5, rpc_timeout=30)
        for _ in range(cfg["n"])
    ]
    seen: list[list[int]] = [[] for _ in clients]
    subs = []
    for c in clients:
        await c.connect()
        subs.append(await c.subscribe(cfg["channel"]))

    async def consume(i: int) -> None:
        while True:
            publication = await subs[i].queue.get()
            seen[i].append(publication.data["n"])

    consumers = [asyncio.create_task(consume(i)) for i in range(len(clients))]
    stop_chaos = asyncio.Event()

    async def chaos(c: HubbubClient) -> None:
        while not stop_chaos.is_set():
            await asyncio.sleep(random.expovariate(1 / cfg["drop_every"]))
            if not stop_chaos.is_set():
                await c.drop()

    chaos_tasks = [asyncio.create_task(chaos(c)) for c in clients]
    pipe.send("ready")
    last_n = await asyncio.to_thread(pipe.recv)  # the publisher is done
    stop_chaos.set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and any(not s or s[-1] != last_n for s in seen):
        await asyncio.sleep(0.1)
    for t in [*chaos_tasks, *consumers]:
        t.cancel()
    result = {
        "seen": seen,
        "reconnects": sum(c.reconnects for c in clients),
        "resets": sum(s.resets for s in subs),
    }
    for c in clients:
        await c.close()
    return result


async def _bare_clients(cfg: dict[str, Any], pipe: Connection) -> dict[str, Any]:
    seen: list[list[int]] = [[] for _ in range(cfg["n"])]
    reconnects = [0] * cfg["n"]
    sockets: list[aiohttp.ClientWebSocketResponse | None] = [None] * cfg["n"]
    ready = asyncio.Event()
    connected = 0
    stop = asyncio.Event()
    session = aiohttp.ClientSession()

    async def run(i: int) -> None:
        nonlocal connected
        attempt = 0
        first = True
        while not stop.is_set():
            try:
                ws = await session.ws_connect(cfg["url"])
            except aiohttp.ClientError:
                attempt += 1
                await asyncio.sleep(random.uniform(0, min(0.5, 0.02 * 2**attempt)))
                continue
            sockets[i] = ws
            attempt = 0
            if first:
                first = False
                connected += 1
                if connected == cfg["n"]:
                    ready.set()
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    seen[i].append(orjson.loads(msg.data)["n"])
            reconnects[i] += 1

    runners = [asyncio.create_task(run(i)) for i in range(cfg["n"])]
    await ready.wait()
    stop_chaos = asyncio.Event()

    async def chaos(i: int) -> None:
        while not stop_chaos.is_set():
            await asyncio.sleep(random.expovariate(1 / cfg["drop_every"]))
            ws = sockets[i]
            if ws is not None and not stop_chaos.is_set():
                ws._writer.transport.abort()

    chaos_tasks = [asyncio.create_task(chaos(i)) for i in range(cfg["n"])]
    pipe.send("ready")
    last_n = await asyncio.to_thread(pipe.recv)
    stop_chaos.set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(not s or s[-1] != last_n for s in seen):
        await asyncio.sleep(0.1)
    stop.set()
    for t in [*chaos_tasks, *runners]:
        t.cancel()
    await session.close()
    return {"seen": seen, "reconnects": sum(reconnects), "resets": 0}


def _client_process(kind: str, cfg: dict[str, Any], pipe: Connection) -> None:
    run = _hubbub_clients if kind == "hubbub" else _bare_clients
    result = uvloop.run(run(cfg, pipe))
    pipe.send(result)


# --- the run -------------------------------------------------------------------------------


async def run_target(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    if kind == "hubbub":
        from bench.hubbub_target import HubbubTarget

        # History long enough to cover the run: every gap is recoverable, so any loss
        # would be the hub's (or the client's) fault, not retention's.
        target: Any = HubbubTarget(history=str(args.publications * 2))
    else:
        target = BareTarget()
    await target.start()
    procs: list[tuple[Any, Connection]] = []
    try:
        ws = target.ws_target()
        url = f"ws://{ws.host}:{ws.port}{ws.path}"
        per_proc = [
            args.subscribers // args.procs + (i < args.subscribers % args.procs)
            for i in range(args.procs)
        ]
        ctx = mp.get_context("spawn")
        for n in per_proc:
            parent, child = ctx.Pipe()
            cfg = {
                "url": url,
                "n": n,
                "channel": f"public:{CHANNEL}",
                "drop_every": args.drop_every,
                "token": target.token(f"loss-{len(procs)}") if kind == "hubbub" else "",
            }
            proc = ctx.Process(target=_client_process, args=(kind, cfg, child), daemon=True)
            proc.start()
            procs.append((proc, parent))
        for _, pipe in procs:
            if not await asyncio.to_thread(pipe.poll, 120):
                raise RuntimeError("clients did not get ready")
            assert pipe.recv() == "ready"
        cpu_before = process_cpu(target.server_pids())[0]
        start = time.monotonic()
        interval = 1 / args.rate
        for n in range(args.publications):
            payload = orjson.dumps({"n": n, "t": time.time_ns()})
            await target.publish(CHANNEL, payload)
            delay = start + (n + 1) * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        elapsed = time.monotonic() - start
        server_cpu_s = process_cpu(target.server_pids())[0] - cpu_before
        for _, pipe in procs:
            pipe.send(args.publications - 1)
        results = []
        for proc, pipe in procs:
            if not await asyncio.to_thread(pipe.poll, 240):
                raise RuntimeError("clients did not report")
            results.append(pipe.recv())
            proc.join(10)
        cuts = target.slow_consumer_cuts() if kind == "hubbub" else None
    finally:
        for proc, _ in procs:
            if proc.is_alive():
                proc.kill()
        await target.stop()
    expected = set(range(args.publications))
    lost = duplicates = 0
    reconnects = sum(r["reconnects"] for r in results)
    for result in results:
        for seen in result["seen"]:
            lost += len(expected - set(seen))
            duplicates += len(seen) - len(set(seen))
    return {
        "target": kind,
        "subscribers": args.subscribers,
        "publications": args.publications,
        "publish_rate": round(args.publications / elapsed, 1),
        "deliveries_expected": args.publications * args.subscribers,
        "lost": lost,
        "duplicates": duplicates,
        "reconnects": reconnects,
        "not_recovered": sum(r["resets"] for r in results),
        "server_cpu_s": round(server_cpu_s, 2),
        "server_cpu_ms_per_reconnect": round(server_cpu_s * 1e3 / max(reconnects, 1), 2),
        "nats_slow_consumer_cuts": cuts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--publications", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=250.0, help="publications per second")
    parser.add_argument(
        "--drop-every", type=float, default=2.0, help="mean seconds between drops per socket"
    )
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--target", action="append", choices=["bare", "hubbub"])
    args = parser.parse_args()
    runs = [uvloop.run(run_target(kind, args)) for kind in (args.target or ["bare", "hubbub"])]
    for r in runs:
        print(
            f"loss target={r['target']} subscribers={r['subscribers']} publications={r['publications']} "
            f"rate={r['publish_rate']}/s reconnects={r['reconnects']} not_recovered={r['not_recovered']} "
            f"lost={r['lost']} duplicates={r['duplicates']} of {r['deliveries_expected']} deliveries"
        )
        print(
            f"  server CPU while publishing: {r['server_cpu_s']} s, "
            f"{r['server_cpu_ms_per_reconnect']} ms per reconnect"
            + (
                ""
                if r["nats_slow_consumer_cuts"] is None
                else f"; NATS cut the hub as a slow consumer {r['nats_slow_consumer_cuts']} times"
            )
        )
    hubbub = next((r for r in runs if r["target"] == "hubbub"), None)
    if hubbub is not None:
        ok = hubbub["lost"] == 0 and hubbub["duplicates"] == 0
        print(f"target: hubbub loses nothing and duplicates nothing → {'met' if ok else 'NOT met'}")
    print("RESULT " + orjson.dumps({"bench": "loss", "runs": runs}).decode())


if __name__ == "__main__":
    main()
