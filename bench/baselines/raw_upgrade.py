"""The floor of a WebSocket upgrade in Python: ``bench sockets --target raw``.

A bare asyncio protocol answers ``GET /ws`` upgrades by hand — the head split, the
``Sec-WebSocket-Accept`` computed, the ``101`` written at once — and sets up aiohttp's
C frame reader and its writer on the transport, as a socket needs; no request handler,
HTTP parser, request, routing or response. What the bare aiohttp server
(``bare_broadcast``) spends beyond this per connect and per socket is aiohttp's request
machinery, which an upgraded socket never uses again (issue 14's lever, bench/README.md).

- ``GET /ws``: upgraded; what the socket sends is parsed and dropped.
- ``GET /stats``: ``{"sockets": n, "pid": pid}``.
- Anything else: ``400`` and the connection closed. No broadcast: sockets only.

Runs on uvloop; prints ``PORT <n>`` (then ``PID``) on stdout once it listens.
``python -m bench.baselines.raw_upgrade --port 0``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import resource
import signal
import socket

import uvloop
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from aiohttp._websocket.writer import WebSocketWriter
from aiohttp.base_protocol import BaseProtocol

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_MSG = 4 * 1024 * 1024
SOCKETS: set[RawSocket] = set()


class RawSocket(BaseProtocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.head = b""
        self.reader: WebSocketReader | None = None
        self.writer: WebSocketWriter | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # TCP_NODELAY, as aiohttp sets it
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)

    def data_received(self, data: bytes) -> None:
        if self.reader is not None:
            self.reader.feed_data(data)
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = self.head[:end].decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.head = b""
        self._answer(lines[0].split(" "), headers)

    def _answer(self, request_line: list[str], headers: dict[str, str]) -> None:
        transport = self.transport
        assert transport is not None
        target = request_line[1] if len(request_line) == 3 else ""
        if target == "/stats":
            body = json.dumps({"sockets": len(SOCKETS), "pid": os.getpid()}).encode()
            transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            return
        key = headers.get("sec-websocket-key", "")
        if target != "/ws" or headers.get("upgrade", "").lower() != "websocket" or not key:
            transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            transport.close()
            return
        digest = hashlib.sha1(key.encode() + WS_GUID, usedforsecurity=False).digest()
        transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
            b"Sec-WebSocket-Accept: " + base64.b64encode(digest) + b"\r\n\r\n"
        )
        self._upgraded = True
        queue = WebSocketDataQueue(self, 2**16, loop=self._loop)
        self.reader = WebSocketReader(queue, MAX_MSG, compress=False, decode_text=True)
        self.writer = WebSocketWriter(self, transport)
        SOCKETS.add(self)

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        SOCKETS.discard(self)


async def serve(host: str, port: int, backlog: int) -> None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = await loop.create_server(lambda: RawSocket(loop), sock=sock, backlog=backlog)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    print(f"PID {os.getpid()}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main() -> None:
    ap = argparse.ArgumentParser(description="the floor of a WebSocket upgrade (benchmark)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: a free port (printed)")
    ap.add_argument("--backlog", type=int, default=4096)
    args = ap.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(hard, 65536), max(hard, 65536)))
    uvloop.run(serve(args.host, args.port, args.backlog))


if __name__ == "__main__":
    main()
