"""A slow client's recovery bigger than its send buffer: the publications that follow
reach it after the recovery, and it is not closed as a slow consumer for the recovery's
own bytes (which would have it reconnect, recover and be closed again, for ever)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp.test_utils import TestServer
from nats.aio.client import Client as NATS

from hub.ws.service import Realtime
from hubbub.config import Settings
from hubbub.contracts.channels import Channel
from hubbub.contracts.subjects import Subjects
from tests.support.slow_ws import SlowSocket
from tests.support.tokens import TestTokens
from tests.support.waiting import wait_for

CHANNEL = "public:busy"
SEND_LIMIT = 128 * 1024


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"ws_send_buffer_bytes": SEND_LIMIT})


async def publish(nc: NATS, settings: Settings, data: dict[str, object]) -> int:
    subject = Subjects(settings.namespace).event(Channel.parse(CHANNEL))
    return int((await nc.jetstream().publish(subject, orjson.dumps(data))).seq)


@pytest.fixture
async def slow(hub_server: TestServer, tokens: TestTokens) -> AsyncIterator[SlowSocket]:
    ws = await SlowSocket.open(hub_server.port)
    await ws.send({"id": 0, "op": "connect", "token": tokens.issue("slowpoke")})
    assert "result" in (await ws.receive())[1]
    yield ws
    ws.close()


async def test_a_recovery_bigger_than_the_send_buffer_is_followed_by_live_publications(
    slow: SlowSocket, realtime: Realtime, nc: NATS, settings: Settings
) -> None:
    seen = await publish(nc, settings, {"n": -1})
    missed = [await publish(nc, settings, {"n": n, "pad": "x" * 2000}) for n in range(150)]
    epoch = await realtime.history.epoch(Channel.parse(CHANNEL).kind)
    [conn] = realtime.connections
    # A slow link: the kernel takes little of what the hub writes.
    conn.transport.get_extra_info("socket").setsockopt(  # type: ignore[union-attr]
        socket.SOL_SOCKET, socket.SO_SNDBUF, 4096
    )

    await slow.send(
        {"id": 1, "op": "subscribe", "channel": CHANNEL, "since": {"offset": seen, "epoch": epoch}}
    )
    await wait_for(lambda: conn.subs.get(CHANNEL) == missed[-1])  # answered
    await wait_for(lambda: conn.buffered() > SEND_LIMIT)  # most of the reply still here
    live = await publish(nc, settings, {"n": "live"})
    await wait_for(lambda: conn.subs.get(CHANNEL) == live)  # passed on (or closed)

    assert not conn.closed
    kind, reply = await slow.receive()
    assert kind == "text"
    assert reply["result"]["recovered"] is True
    assert [p["offset"] for p in reply["result"]["publications"]] == missed
    assert await slow.receive() == (
        "text",
        {"push": "pub", "channel": CHANNEL, "offset": live, "data": {"n": "live"}},
    )
