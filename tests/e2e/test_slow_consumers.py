"""Slow consumers: a socket that stops reading never holds up the others, and its
channel's policy decides what happens to it."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
from nats.aio.client import Client as NATS

from hub.ws.service import Realtime
from hubbub.config import Settings
from tests.e2e.conftest import ClientFactory
from tests.e2e.test_realtime import next_pub, publish, raw_socket, receive_json
from tests.support.tokens import TestTokens

BIG = "x" * 4000


async def slow_socket(
    session: aiohttp.ClientSession, ws_url: str, tokens: TestTokens, channel: str
) -> Any:
    ws = await raw_socket(ws_url, session)
    await ws.send_str(
        orjson.dumps({"id": 1, "op": "connect", "token": tokens.issue("slowpoke")}).decode()
    )
    await receive_json(ws)
    await ws.send_str(orjson.dumps({"id": 2, "op": "subscribe", "channel": channel}).decode())
    assert "result" in await receive_json(ws)
    return ws  # from here on, nobody reads it


async def wait_until(predicate: Any, timeout: float = 15) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met")


class TestDisconnectPolicy:
    async def test_a_socket_that_stops_reading_is_closed_and_the_others_get_everything(
        self,
        ws_url: str,
        tokens: TestTokens,
        client: ClientFactory,
        realtime: Realtime,
        nc: NATS,
        settings: Settings,
    ) -> None:
        reader = await (await client("reader")).subscribe("public:flood")
        async with aiohttp.ClientSession() as session:
            await slow_socket(session, ws_url, tokens, "public:flood")
            assert {c.user_id for c in realtime.connections} == {"reader", "slowpoke"}
            offsets = []
            for n in range(1500):  # ~6 MB, several times the 1 MiB send buffer
                offsets.append(await publish(nc, settings, "public:flood", {"n": n, "pad": BIG}))
                if n % 100 == 0:
                    await asyncio.sleep(0)
            await wait_until(lambda: {c.user_id for c in realtime.connections} == {"reader"})
            got = [(await next_pub(reader, 20)).offset for _ in range(1500)]
            assert got == offsets


class TestConflatePolicy:
    async def test_a_slow_ticker_subscriber_keeps_the_newest_per_key_and_hears_of_the_gap(
        self, ws_url: str, tokens: TestTokens, realtime: Realtime, nc: NATS, settings: Settings
    ) -> None:
        async with aiohttp.ClientSession() as session:
            ws = await slow_socket(session, ws_url, tokens, "ticker:prices")
            last: dict[str, int] = {}
            for n in range(2000):
                key = f"k{n % 5}"
                last[key] = n
                await publish(nc, settings, "ticker:prices", {"key": key, "n": n, "pad": BIG})
                if n % 100 == 0:
                    await asyncio.sleep(0)
            await asyncio.sleep(0.5)
            assert {c.user_id for c in realtime.connections} == {"slowpoke"}  # not closed
            dropped = 0
            newest: dict[str, int] = {}
            while True:
                frame = await receive_json(ws, timeout=10)
                if frame.get("push") == "gap":
                    dropped += frame["dropped"]
                elif frame.get("push") == "pub":
                    newest[frame["data"]["key"]] = frame["data"]["n"]
                if newest == last:
                    break
            assert dropped > 0
