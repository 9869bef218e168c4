"""Frames of rpcs run as the hub reads them (``hub/ws/reader.py``): the same answers,
limits and order as frames the read loop takes, and no read loop turn for them."""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from hub.ws import endpoint
from hub.ws.connection import Connection
from hub.ws.reader import FrameQueue
from hub.ws.service import Realtime
from hubbub.config import Settings
from tests.e2e.test_bad_input import closed_with, next_reply
from tests.e2e.test_realtime import raw_socket, receive_json
from tests.support.tokens import TestTokens


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"ws_commands_burst": 20, "ws_commands_per_s": 1.0})


@pytest.fixture
def looped(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The frames the read loop handles (``_frame``), in order."""
    seen: list[Any] = []
    handle = endpoint._frame

    async def spy(realtime: Realtime, conn: Connection, msg: Any) -> bool:
        seen.append(msg.data)
        return await handle(realtime, conn, msg)

    monkeypatch.setattr(endpoint, "_frame", spy)
    return seen


@pytest.fixture
async def raw(ws_url: str, tokens: TestTokens) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with aiohttp.ClientSession() as session:
        ws = await raw_socket(ws_url, session)
        await ws.send_str(
            orjson.dumps({"id": 1, "op": "connect", "token": tokens.issue("rita")}).decode()
        )
        assert "result" in await receive_json(ws)
        yield ws


def rpc(command_id: int, seq: int = 1, **fields: Any) -> dict[str, Any]:
    return {"id": command_id, "op": "rpc", "method": "test.echo", "params": {"seq": seq}, **fields}


async def send(ws: aiohttp.ClientWebSocketResponse, frame: Any) -> None:
    await ws.send_str(orjson.dumps(frame).decode())


async def test_an_rpc_frame_is_answered_without_the_read_loop(
    raw: aiohttp.ClientWebSocketResponse, realtime: Realtime, looped: list[Any]
) -> None:
    [conn] = realtime.connections
    assert type(conn.ws._reader) is FrameQueue
    await send(raw, rpc(2, seq=5))
    assert await next_reply(raw) == {"id": 2, "result": {"key": "k", "seq": 5, "payload": {}}}
    await send(raw, [rpc(3, seq=6), rpc(4, seq=7)])
    replies = [await next_reply(raw), await next_reply(raw)]
    assert sorted(r["result"]["seq"] for r in replies) == [6, 7]
    assert looped == []
    await send(raw, {"id": 5, "op": "subscribe", "channel": "public:r"})
    assert (await next_reply(raw))["id"] == 5
    assert len(looped) == 1


async def test_rpc_refusals_are_the_same_either_way(raw: aiohttp.ClientWebSocketResponse) -> None:
    await send(raw, {"id": 2, "op": "rpc", "method": "test.echo", "params": {"seq": "x"}})
    assert (await next_reply(raw))["error"]["code"] == "validation_failed"
    await send(raw, {"id": 3, "op": "rpc", "method": "no.such", "params": {}})
    assert (await next_reply(raw))["error"]["code"] == "not_found"
    await send(raw, {"id": 4, "op": "rpc", "method": 7})
    assert (await next_reply(raw))["error"]["code"] == "validation_failed"
    await send(raw, [rpc(5, seq=1), rpc(5, seq=2)])  # the second while the first is out
    refused = await next_reply(raw)
    assert (refused["id"], refused["error"]["code"]) == (5, "bad_request")
    assert await next_reply(raw) == {"id": 5, "result": {"key": "k", "seq": 1, "payload": {}}}


async def test_a_frame_read_while_another_runs_waits_its_turn(
    raw: aiohttp.ClientWebSocketResponse, looped: list[Any]
) -> None:
    # The subscribe awaits (its channel's stream); the rpcs read meanwhile are queued
    # behind it and run once it is answered.
    await send(raw, {"id": 2, "op": "subscribe", "channel": "public:turns", "since": 0})
    for i in range(3, 6):
        await send(raw, rpc(i, seq=i))
    replies = [await next_reply(raw) for _ in range(4)]
    assert replies[0]["id"] == 2
    assert sorted(r["id"] for r in replies[1:]) == [3, 4, 5]


async def test_a_flood_of_rpcs_is_refused_then_closed_4008(
    raw: aiohttp.ClientWebSocketResponse, settings: Settings
) -> None:
    for i in range(2, 2 + 4 * settings.ws_commands_burst):
        await send(raw, rpc(i, seq=i))
    codes = []
    while True:
        msg = await raw.receive(timeout=10)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            break
        frame = orjson.loads(msg.data)
        if "error" in frame:
            codes.append(frame["error"]["code"])
    assert "rate_limited" in codes
    assert raw.close_code == 4008


async def test_malformed_rpcs_count_as_protocol_errors(
    raw: aiohttp.ClientWebSocketResponse, settings: Settings
) -> None:
    for i in range(settings.ws_max_protocol_errors):
        await send(raw, {"id": 100 + i, "op": "rpc"})
    assert await closed_with(raw) == 4008


async def test_frames_sent_with_the_upgrade_request_are_served(
    hub_server: Any, tokens: TestTokens, realtime: Realtime
) -> None:
    """A client that does not wait for the server's handshake before its first frames
    (RFC 6455 says it must) still has them answered, in order: its socket keeps
    aiohttp's own queue, which the parser had fed before the hub could swap it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", hub_server.port)
    key = base64.b64encode(os.urandom(16)).decode()
    upgrade = (
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: hubbub.v1.json\r\n\r\n"
    ).encode()
    connect = {"id": 1, "op": "connect", "token": tokens.issue("eager")}
    payloads = [orjson.dumps(connect), orjson.dumps(rpc(2, seq=9))]
    frames = b"".join(_masked(p) for p in payloads)
    # The upgrade and the first bytes of the connect frame in one write; the rest after.
    writer.write(upgrade + frames[:10])
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    writer.write(frames[10:])
    replies = [orjson.loads(await _read_frame(reader)) for _ in range(2)]
    assert replies[0]["id"] == 1
    assert "result" in replies[0]
    assert replies[1] == {"id": 2, "result": {"key": "k", "seq": 9, "payload": {}}}
    [conn] = realtime.connections
    assert type(conn.ws._reader) is not FrameQueue
    writer.close()


def _masked(payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    head = bytes((0x81, 0x80 | n)) if n < 126 else struct.pack("!BBH", 0x81, 0xFE, n)
    return head + mask + body


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    while True:
        first, second = await asyncio.wait_for(reader.readexactly(2), 5)
        n = second & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await reader.readexactly(8))
        payload = await reader.readexactly(n)
        if first & 0x0F == 1 and b'"push"' not in payload:
            return payload
