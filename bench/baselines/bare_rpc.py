"""Bare aiohttp rpc echo: the baseline of ``bench rpc``'s hub CPU per RPC.

The same frames as Hubbub's ``/ws`` for what ``HubbubClient`` needs, with none of
its work: no token check, no NATS, no worker, no validation.

- ``GET /ws`` (subprotocol ``hubbub.v1.json``): each text frame is read with
  ``orjson``; ``connect`` is answered ``{"id", "result": {"client", "ping_interval"}}``,
  ``rpc`` with ``{"id", "result": <the --result JSON>}``, each with the idiomatic
  ``await ws.send_str(...)``; any other frame is ignored.

Runs on uvloop; prints ``PORT <n>`` on stdout once it listens.
``python -m bench.baselines.bare_rpc --result '{"id": "..."}'``.
"""

from __future__ import annotations

import argparse
import socket
import uuid

import orjson
import uvloop
from aiohttp import WSMsgType, web

from hubbub.contracts.protocol import SUBPROTOCOL

PING_INTERVAL_S = 3600  # no pings: the connect result says so to the client
RESULT = web.AppKey("result", bytes)


async def ws_handler(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,))
    await ws.prepare(request)
    result = request.app[RESULT]
    async for msg in ws:
        if msg.type is not WSMsgType.TEXT:
            continue
        frame = orjson.loads(msg.data)
        op = frame.get("op")
        command_id = orjson.dumps(frame.get("id"))
        if op == "rpc":
            await ws.send_str((b'{"id":%b,"result":%b}' % (command_id, result)).decode())
        elif op == "connect":
            connected = {"client": uuid.uuid4().hex, "ping_interval": PING_INTERVAL_S}
            body = b'{"id":%b,"result":%b}' % (command_id, orjson.dumps(connected))
            await ws.send_str(body.decode())
    return ws


def create_app(result: bytes) -> web.Application:
    app = web.Application()
    app[RESULT] = result
    app.router.add_get("/ws", ws_handler)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--result", required=True, help="the JSON every rpc is answered with")
    args = parser.parse_args()
    result = orjson.dumps(orjson.loads(args.result))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)  # connections made right after the PORT line wait in the backlog
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    web.run_app(
        create_app(result), sock=sock, access_log=None, print=None, loop=uvloop.new_event_loop()
    )


if __name__ == "__main__":
    main()
