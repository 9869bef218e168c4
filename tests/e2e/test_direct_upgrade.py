"""Upgrades the hub serves itself (``hub/serving.py``): a connection whose first request
is a plain upgrade of ``/ws`` becomes a socket with no aiohttp request, handler or task
around it; every other connection is aiohttp's, as before."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from nats.aio.client import Client as NATS

from hub.app import create_app
from hub.serving import HubServer
from hub.state import REFUSED_UPGRADES
from hub.ws.service import Realtime
from hubbub.config import Settings
from hubbub.contracts.errors import Forbidden
from tests.e2e.test_connect_in_upgrade import a_request_first, upgrade_connect
from tests.e2e.test_realtime import publish, receive_json
from tests.support import ops
from tests.support.hub_server import HubTestServer
from tests.support.slow_ws import SlowSocket
from tests.support.tokens import TestTokens
from tests.support.waiting import wait_for


def hub_of(server: TestServer) -> HubServer:
    assert server.runner is not None
    hub = server.runner.server
    assert isinstance(hub, HubServer)
    return hub


async def silent_connection(
    server: TestServer,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, asyncio.Transport]:
    """A connection to the hub that has sent nothing yet, and the hub's end of it."""
    hub = hub_of(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    await wait_for(lambda: hub.idle, what="the connection accepted")
    [waiting] = hub.idle
    assert waiting.transport is not None
    return reader, writer, waiting.transport


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, str, bytes]:
    """An HTTP response's status line, head and body (by its ``Content-Length``)."""
    status = await reader.readline()
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    length = int(head.lower().split("content-length: ")[1].split("\r\n")[0])
    return status, head, await reader.readexactly(length)


def raw_upgrade(query: str, *headers: str) -> bytes:
    """An upgrade request's head as a client writes it, with ``headers`` added."""
    target = f"/ws?{query}" if query else "/ws"
    lines = [
        f"GET {target} HTTP/1.1",
        "Host: h",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Protocol: hubbub.v1.json",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


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
        writer.write(raw_upgrade("", "Authorization: Bearer nope"))
        status, head, body = await read_response(reader)
        assert status.startswith(b"HTTP/1.1 401 "), status
        problem = orjson.loads(body)
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
        raw_upgrade("subscribe=public%3Agone", f"Authorization: Bearer {tokens.issue('u4')}")
    )
    writer.transport.abort()
    await wait_for(lambda: not hub_of(hub_server).sockets, what="the socket's task ended")
    await wait_for(lambda: not realtime.connections, what="nothing registered")


async def test_a_refused_upgrade_is_checked_once(
    hub_server: TestServer, tokens: TestTokens, realtime: Realtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The route answers the refusal it is handed; it does not ask the workers again."""
    asked: list[str] = []

    async def refuse(caller: Any, channel: Any, action: Any) -> None:
        asked.append(str(channel))
        raise Forbidden("you are not allowed on this channel")

    monkeypatch.setattr(realtime.authorizer, "check", refuse)
    reader, writer = await asyncio.open_connection("127.0.0.1", hub_server.port)
    try:
        writer.write(
            raw_upgrade("subscribe=workspace%3Aw1", f"Authorization: Bearer {tokens.issue('u5')}")
        )
        status = await reader.readline()
    finally:
        writer.close()
    assert status.startswith(b"HTTP/1.1 403 "), status
    assert asked == ["workspace:w1"]


class TestAConnectionThatSendsNothing:
    async def test_has_tcp_keepalive_while_it_waits(self, hub_server: TestServer) -> None:
        _, writer, transport = await silent_connection(hub_server)
        try:
            sock = transport.get_extra_info("socket")
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        finally:
            writer.close()

    async def test_each_is_closed_at_its_own_time(self, hub_server: TestServer) -> None:
        """One timer for all: the connections past the timeout go, the others stay and
        the timer is set for the next of them."""
        hub = hub_of(hub_server)
        first_reader, first = await asyncio.open_connection("127.0.0.1", hub_server.port)
        await wait_for(lambda: len(hub.idle) == 1, what="the first accepted")
        _, second = await asyncio.open_connection("127.0.0.1", hub_server.port)
        try:
            await wait_for(lambda: len(hub.idle) == 2, what="the second accepted")
            older, newer = hub.idle
            hub.idle[older] -= hub.keepalive_timeout  # silent for the whole timeout
            hub._close_idle()
            async with asyncio.timeout(5):
                assert await first_reader.read(1) == b""  # closed by the hub
            assert list(hub.idle) == [newer]
            assert hub._idle_check is not None
        finally:
            first.close()
            second.close()

    async def test_is_closed_after_the_keepalive_timeout(
        self, settings: Settings, worker: Any, nc: NATS
    ) -> None:
        """As aiohttp closes one: nothing else would ever end it."""
        server = HubTestServer(create_app(settings, ops.catalog_with_tests()))
        await server.start_server(keepalive_timeout=0.2)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            async with asyncio.timeout(5):
                assert await reader.read(1) == b""  # closed by the hub
            writer.close()
            assert not hub_of(server).idle
        finally:
            await server.close()

    async def test_is_closed_when_the_hub_shuts_down(
        self, settings: Settings, worker: Any, nc: NATS
    ) -> None:
        server = HubTestServer(create_app(settings, ops.catalog_with_tests()))
        await server.start_server()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            await wait_for(lambda: hub_of(server).idle, what="the connection accepted")
            async with asyncio.timeout(10):
                await server.close()
                assert await reader.read(1) == b""
        finally:
            writer.close()


async def test_a_refusal_handed_on_answers_only_the_upgrade_it_refused(
    hub_server: TestServer, tokens: TestTokens
) -> None:
    """A refusal left behind on a connection (its upgrade never reached the route) does
    not answer a later upgrade there: that one has a key of its own."""
    reader, writer, transport = await silent_connection(hub_server)
    try:
        left = hub_server.app[REFUSED_UPGRADES]
        left[transport] = ("b3RoZXIga2V5IGhlcmUhIQ==", Forbidden("an earlier refusal"))
        writer.write(b"GET /api/v1/health HTTP/1.1\r\nHost: h\r\n\r\n")  # aiohttp's now
        status, _, _ = await read_response(reader)
        assert status.startswith(b"HTTP/1.1 200 "), status
        token = tokens.issue("u6")
        writer.write(raw_upgrade("subscribe=public%3Aa", f"Authorization: Bearer {token}"))
        status = await reader.readline()
        assert status.startswith(b"HTTP/1.1 101 "), status
    finally:
        writer.close()
