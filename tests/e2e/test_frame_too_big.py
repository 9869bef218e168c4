"""A frame over the size limit closes the socket 1009 — after a ``disconnect`` push with
the same code, as every close the hub makes (aiohttp finds the frame too big while it
reads it, and closes the socket before the hub's read loop sees it)."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from hubbub.config import Settings
from hubbub.contracts.protocol import SUBPROTOCOL
from tests.support.tokens import TestTokens


async def until_closed(ws: aiohttp.ClientWebSocketResponse) -> list[Any]:
    """Every text frame until the close, then the close code."""
    got: list[Any] = []
    while True:
        msg = await ws.receive(timeout=5)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            return [*got, ws.close_code]
        got.append(orjson.loads(msg.data))


def too_big(settings: Settings) -> str:
    pad = "x" * settings.ws_max_frame_bytes
    return orjson.dumps(
        {"id": 1, "op": "rpc", "method": "test.echo", "params": {"p": pad}}
    ).decode()


def disconnect(settings: Settings) -> dict[str, Any]:
    limit = settings.ws_max_frame_bytes
    return {
        "push": "disconnect",
        "code": 1009,
        "reason": f"a frame over the size limit ({limit} bytes); send smaller ones",
        "reconnect": True,
    }


async def test_a_frame_over_the_limit_is_told_with_a_disconnect_push_then_closed_1009(
    ws_url: str, tokens: TestTokens, settings: Settings
) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(ws_url, protocols=(SUBPROTOCOL,))
        await ws.send_str(
            orjson.dumps({"id": 0, "op": "connect", "token": tokens.issue("u1")}).decode()
        )
        assert "result" in orjson.loads((await ws.receive(timeout=5)).data)

        await ws.send_str(too_big(settings))

        assert await until_closed(ws) == [disconnect(settings), 1009]


async def test_a_first_frame_over_the_limit_is_told_too(ws_url: str, settings: Settings) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(ws_url, protocols=(SUBPROTOCOL,))

        await ws.send_str(too_big(settings))

        assert await until_closed(ws) == [disconnect(settings), 1009]
