"""Bare aiohttp broadcast server: the baseline Hubbub's fan-out is compared with.

No auth, no NATS, no channels, no JSON handling.

- ``GET /ws``: accept a WebSocket into one set of sockets; ignore what it sends.
- ``POST /publish``: the request body (UTF-8 text) is sent as one text frame
  to every socket with the idiomatic loop
  ``for ws in sockets: await ws.send_str(msg)`` (aiohttp only suspends there
  when a socket's transport is over its high-water mark); replies
  ``{"sent": n, "loop_ms": ms}`` once the loop is done (``loop_ms``: wall time
  of the loop, a diagnostic).
- ``GET /stats``: ``{"sockets": n, "pid": pid}``.

Runs on uvloop with the access log off; prints ``PORT <n>`` (then ``PID``)
on stdout once it listens.  ``python -m bench.baselines.bare_broadcast --port 0``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import signal
import socket
import time

import uvloop
from aiohttp import web

SOCKETS = web.AppKey("sockets", set[web.WebSocketResponse])


async def ws_handler(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    sockets = request.app[SOCKETS]
    sockets.add(ws)
    try:
        async for _ in ws:
            pass
    finally:
        sockets.discard(ws)
    return ws


async def publish_handler(request: web.Request) -> web.Response:
    msg = await request.text()
    sockets = request.app[SOCKETS]
    sent = 0
    t0 = time.perf_counter()
    # Copy: the set may change while a send waits for a full buffer to drain.
    for ws in list(sockets):
        try:
            await ws.send_str(msg)
        except ConnectionError:
            continue
        sent += 1
    loop_ms = round((time.perf_counter() - t0) * 1e3, 3)
    return web.Response(
        text=json.dumps({"sent": sent, "loop_ms": loop_ms}),
        content_type="application/json",
    )


async def stats_handler(request: web.Request) -> web.Response:
    body = {"sockets": len(request.app[SOCKETS]), "pid": os.getpid()}
    return web.Response(text=json.dumps(body), content_type="application/json")


def make_app() -> web.Application:
    app = web.Application()
    app[SOCKETS] = set()
    app.router.add_get("/ws", ws_handler)
    app.router.add_post("/publish", publish_handler)
    app.router.add_get("/stats", stats_handler)
    return app


async def serve(host: str, port: int, backlog: int) -> None:
    runner = web.AppRunner(make_app(), access_log=None, handle_signals=False)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    site = web.SockSite(runner, sock, backlog=backlog)
    await site.start()
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    print(f"PID {os.getpid()}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    ap = argparse.ArgumentParser(description="bare aiohttp broadcast server (benchmark baseline)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: a free port (printed)")
    ap.add_argument(
        "--gc",
        choices=("on", "off"),
        default="on",
        help="off: gc.disable() (a diagnostic: how much the cyclic GC costs)",
    )
    ap.add_argument(
        "--backlog",
        type=int,
        default=4096,
        help="listen backlog (aiohttp's default is 128)",
    )
    args = ap.parse_args()
    if args.gc == "off":
        gc.disable()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(hard, 65536), max(hard, 65536)))
    uvloop.run(serve(args.host, args.port, args.backlog))


if __name__ == "__main__":
    main()
