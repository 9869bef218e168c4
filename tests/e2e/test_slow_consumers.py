"""Slow consumers: a socket that stops reading never holds up the others, and its
channel's policy decides what happens to it."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
import psutil
from nats.aio.client import Client as NATS

from hub.ws.connection import CLOSE_GRACE_S
from hub.ws.service import Realtime
from hubbub.config import Settings
from tests.e2e.conftest import ClientFactory
from tests.e2e.test_realtime import next_pub, publish, raw_socket, receive_json
from tests.support.tokens import TestTokens
from tests.support.waiting import wait_for

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
            await wait_for(
                lambda: {c.user_id for c in realtime.connections} == {"reader"},
                timeout=15,
                what="the slow socket closed",
            )
            got = [(await next_pub(reader, 20)).offset for _ in range(1500)]
            assert got == offsets


def hub_side_of(port: int) -> list[str]:
    """The states of this process's TCP sockets whose peer is local port ``port``: the
    hub's end of that client's connection (the test and the hub share the process)."""
    return [
        c.status
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port
    ]


class TestSlowConsumerAbort:
    async def test_after_4009_the_tcp_connection_is_cut_though_the_client_never_reads(
        self, ws_url: str, tokens: TestTokens, realtime: Realtime, nc: NATS, settings: Settings
    ) -> None:
        """The close handshake cannot finish through a full receive window: the hub resets
        the connection a few seconds after 4009 instead of holding it (and its buffer)."""
        async with aiohttp.ClientSession() as session:
            ws = await slow_socket(session, ws_url, tokens, "public:torrent")
            port = ws.get_extra_info("sockname")[1]
            assert hub_side_of(port) == [psutil.CONN_ESTABLISHED]
            for n in range(1500):  # ~6 MB, several times the 1 MiB send buffer
                await publish(nc, settings, "public:torrent", {"n": n, "pad": BIG})
                if n % 100 == 0:
                    await asyncio.sleep(0)
            await wait_for(lambda: not realtime.connections, timeout=15, what="4009")
            await wait_for(
                lambda: not hub_side_of(port),
                timeout=CLOSE_GRACE_S + 5,
                what="the hub's end of the connection gone",
            )


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
            # Every key's last publication reached it, frame by frame (a close would have
            # been a CLOSE frame): the flood is behind it and it was never closed.
            assert {c.user_id for c in realtime.connections} == {"slowpoke"}
            assert dropped > 0


class TestUnreadReplies:
    async def test_a_client_that_asks_and_never_reads_is_cut_off(
        self, ws_url: str, tokens: TestTokens, realtime: Realtime, nc: NATS, settings: Settings
    ) -> None:
        """History replies (each capped near 1 MiB) piling up unread past four times the
        send buffer: the socket is closed, the hub's memory is not held hostage."""
        for n in range(60):
            await publish(nc, settings, "public:archive", {"n": n, "pad": "y" * 20_000})
        async with aiohttp.ClientSession() as session:
            ws = await raw_socket(ws_url, session)
            await ws.send_str(
                orjson.dumps({"id": 1, "op": "connect", "token": tokens.issue("hoarder")}).decode()
            )
            await receive_json(ws)
            for i in range(40):
                await ws.send_str(
                    orjson.dumps(
                        {"id": 10 + i, "op": "history", "channel": "public:archive", "limit": 1000}
                    ).decode()
                )
            await wait_for(lambda: not realtime.connections, timeout=15, what="the hoarder cut off")

    async def test_a_history_reply_is_capped_and_pages_with_since(
        self, client: ClientFactory, nc: NATS, settings: Settings
    ) -> None:
        offsets = [
            await publish(nc, settings, "public:pages", {"n": n, "pad": "z" * 30_000})
            for n in range(60)
        ]
        c = await client("reader")
        first = await c.history("public:pages", limit=1000)
        got = [p["offset"] for p in first["publications"]]
        assert 0 < len(got) < 60  # ~1 MiB of 30 kB publications
        rest = await c.history("public:pages", since=(got[-1], first["epoch"]), limit=1000)
        got += [p["offset"] for p in rest["publications"]]
        assert got == offsets
