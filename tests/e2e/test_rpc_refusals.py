"""Well-formed rpcs the hub will not take now (too many unanswered, an id still in use)
are refused one by one: the refusal is an answer, not a malformed frame, so the socket
stays open and the rpcs it took get their replies."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from hubbub.config import Settings
from hubbub.contracts.protocol import SUBPROTOCOL
from tests.support.tokens import TestTokens


@pytest.fixture
async def ws(ws_url: str, tokens: TestTokens) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with aiohttp.ClientSession() as session:
        socket = await session.ws_connect(ws_url, protocols=(SUBPROTOCOL,), max_msg_size=0)
        await socket.send_str(
            orjson.dumps({"id": 0, "op": "connect", "token": tokens.issue("u1")}).decode()
        )
        assert "result" in orjson.loads((await socket.receive(timeout=5)).data)
        yield socket


def rpc(command_id: int, seq: int = 0) -> dict[str, Any]:
    return {"id": command_id, "op": "rpc", "method": "test.echo", "params": {"seq": seq}}


async def replies(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[dict[str, Any]]:
    """The next ``count`` replies (pushes skipped); fails on a close."""
    got: list[dict[str, Any]] = []
    while len(got) < count:
        msg = await ws.receive(timeout=10)
        assert msg.type is aiohttp.WSMsgType.TEXT, (msg, got[-3:])
        frame = orjson.loads(msg.data)
        if "push" not in frame:
            got.append(frame)
    return got


def outcome(frame: dict[str, Any]) -> str:
    return "ok" if "result" in frame else str(frame["error"]["code"])


async def test_a_batch_over_the_unanswered_rpc_cap_is_refused_in_part_and_answered_in_full(
    ws: aiohttp.ClientWebSocketResponse, settings: Settings
) -> None:
    cap = settings.ws_max_rpc_in_flight
    assert cap + settings.ws_max_protocol_errors < 100  # enough refusals to close before
    await ws.send_str(orjson.dumps([rpc(i, seq=i) for i in range(1, 101)]).decode())

    got = await replies(ws, 100)

    assert Counter(map(outcome, got)) == {"ok": cap, "rate_limited": 100 - cap}
    assert sorted(f["id"] for f in got if "result" in f) == list(range(1, cap + 1))
    await ws.send_str(orjson.dumps(rpc(101, seq=7)).decode())  # still open, still served
    assert await replies(ws, 1) == [{"id": 101, "result": {"key": "k", "seq": 7, "payload": {}}}]


async def test_an_id_still_in_use_is_refused_without_ending_the_socket(
    ws: aiohttp.ClientWebSocketResponse, settings: Settings
) -> None:
    repeats = settings.ws_max_protocol_errors + 5
    await ws.send_str(orjson.dumps([rpc(5)] * (repeats + 1)).decode())

    got = await replies(ws, repeats + 1)

    assert Counter(map(outcome, got)) == {"ok": 1, "bad_request": repeats}
    assert {f["id"] for f in got} == {5}
    await ws.send_str(orjson.dumps(rpc(6, seq=1)).decode())
    assert (await replies(ws, 1))[0]["id"] == 6
