"""Upgrades the hub serves itself (``hub/serving.py``): a connection whose first request
is a plain upgrade of ``/ws`` becomes a socket with no aiohttp request, handler or task
around it; every other connection is aiohttp's, as before."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
from aiohttp.test_utils import TestServer
from nats.aio.client import Client as NATS

from hub.serving import HubServer
from hub.ws.service import Realtime
from hubbub.config import Settings
from tests.e2e.test_connect_in_upgrade import a_request_first, upgrade_connect
from tests.e2e.test_realtime import publish, receive_json
from tests.support.slow_ws import SlowSocket
from tests.support.tokens import TestTokens
from tests.support.waiting import wait_for


def hub_of(server: TestServer) -> HubServer:
    assert server.runner is not None
    hub = server.runner.server
    assert isinstance(hub, HubServer)
    return hub


async def test_the_101_and_the_pushes_of_its_connect_leave_in_that_order(
    hub_server: TestServer, tokens: TestTokens, realtime: Realtime, nc: NATS, settings: Settings
) -> None:
    ws = await SlowSocket.open(
        hub_server.port,
        query="subscribe=public%3Adirect",
        headers=(f"Authorization: Bearer {tokens.issue('u1')}",),
    )
    try:
        assert b"\r\nSec-WebSocket-Protocol: hubbub.v1.json" in ws.head
        kind, connected = await ws.receive()
        assert (kind, connected["push"]) == ("text", "connected")
        kind, subscribed = await ws.receive()
        assert (kind, subscribed["push"], subscribed["channel"]) == (
            "text",
            "subscribed",
            "public:direct",
        )
        # Served here: one socket task of the hub's, no request handler of aiohttp's.
        assert len(hub_of(hub_server).sockets) == 1
        assert hub_of(hub_server).connections == []
        await publish(nc, settings, "public:direct", {"n": 1})
        kind, pushed = await ws.receive()
        assert (kind, pushed["push"], pushed["data"]) == ("text", "pub", {"n": 1})
    finally:
        ws.close()
    await wait_for(lambda: not realtime.connections and not hub_of(hub_server).sockets)


async def test_a_connect_frame_sent_behind_the_head_is_read(
    hub_server: TestServer, tokens: TestTokens
) -> None:
    """Bytes that came with the head (a client that did not wait for the 101) are the
    socket's first frames."""
    connect = {"id": 1, "op": "connect", "token": tokens.issue("u2")}
    ws = await SlowSocket.open(hub_server.port, first=(connect,))
    try:
        kind, answer = await ws.receive()
        assert (kind, answer["id"], "result" in answer) == ("text", 1, True), answer
    finally:
        ws.close()


async def test_an_upgrade_after_a_request_on_its_connection_is_aiohttps(
    hub_server: TestServer, ws_url: str, tokens: TestTokens
) -> None:
    async with aiohttp.ClientSession() as session:
        await a_request_first(session, ws_url)
        ws = await upgrade_connect(session, ws_url, tokens.issue("u3"), "public:a")
        assert (await receive_json(ws))["push"] == "connected"
        assert (await receive_json(ws))["push"] == "subscribed"
        assert not hub_of(hub_server).sockets
        assert len(hub_of(hub_server).connections) == 1
        await ws.close()


async def test_a_refused_upgrade_is_answered_by_aiohttp_with_its_problem(
    hub_server: TestServer,
) -> None:
    """Refused here, an upgrade is handed to aiohttp as it was read; the hub's handler
    checks it again and answers: the same problem details as any refusal."""
    reader, writer = await asyncio.open_connection("127.0.0.1", hub_server.port)
    try:
        writer.write(
            b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Protocol: hubbub.v1.json\r\nAuthorization: Bearer nope\r\n\r\n"
        )
        status = await reader.readline()
        assert status.startswith(b"HTTP/1.1 401 "), status
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        length = int(head.lower().split("content-length: ")[1].split("\r\n")[0])
        problem = orjson.loads(await reader.readexactly(length))
        assert problem["status"] == 401
        assert 'error="invalid_token"' in head
    finally:
        writer.close()
    assert not hub_of(hub_server).sockets


async def test_a_client_gone_before_its_upgrade_is_answered_leaves_nothing_behind(
    hub_server: TestServer, tokens: TestTokens, realtime: Realtime
) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", hub_server.port)
    writer.write(
        b"GET /ws?subscribe=public%3Agone HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: hubbub.v1.json\r\n"
        + f"Authorization: Bearer {tokens.issue('u4')}\r\n\r\n".encode()
    )
    writer.transport.abort()
    await wait_for(lambda: not hub_of(hub_server).sockets, what="the socket's task ended")
    await wait_for(lambda: not realtime.connections, what="nothing registered")
