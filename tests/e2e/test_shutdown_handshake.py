"""A hub shutting down (aiohttp's own shutdown sequence, as on SIGTERM) tells every socket
to reconnect elsewhere with 1001 — those still to send ``connect`` too, which aiohttp no
longer reads once its shutdown began (they would otherwise be closed 4001, "send connect
within 5s", as if the client were at fault)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from nats.aio.client import Client as NATS

from hub.app import create_app
from hub.state import REALTIME
from hub.ws import endpoint
from hubbub.config import Settings
from hubbub.contracts.protocol import SUBPROTOCOL, CloseCode
from tests.support import ops
from tests.support.hub_server import HubTestServer
from tests.support.tokens import TestTokens
from tests.support.waiting import wait_for


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"ws_connect_timeout_s": 30.0, "shutdown_timeout_s": 10.0})


@pytest.fixture
async def hub_server(
    settings: Settings, worker: Any, tokens: TestTokens, nc: NATS
) -> AsyncIterator[TestServer]:
    """As ``hubbub serve`` runs it: its runner, whose shutdown waits for sockets this long."""
    app = create_app(settings, ops.catalog_with_tests())
    server = HubTestServer(app)
    await server.start_server(shutdown_timeout=settings.shutdown_timeout_s)
    yield server
    await server.close()


async def closing_frames(ws: aiohttp.ClientWebSocketResponse) -> list[Any]:
    """Every text frame until the close, then the close code."""
    got: list[Any] = []
    while True:
        msg = await ws.receive(timeout=5)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            return [*got, ws.close_code]
        got.append(orjson.loads(msg.data))


GOING_AWAY = {
    "push": "disconnect",
    "code": 1001,
    "reason": "hub shutting down; reconnect",
    "reconnect": True,
}


async def test_a_socket_still_to_send_connect_is_told_to_reconnect_elsewhere(
    hub_server: TestServer, ws_url: str, tokens: TestTokens
) -> None:
    realtime = hub_server.app[REALTIME]
    async with aiohttp.ClientSession() as session:
        connected = await session.ws_connect(ws_url, protocols=(SUBPROTOCOL,))
        await connected.send_str(
            orjson.dumps({"id": 0, "op": "connect", "token": tokens.issue("u1")}).decode()
        )
        assert "result" in orjson.loads((await connected.receive(timeout=5)).data)
        waiting = await session.ws_connect(ws_url, protocols=(SUBPROTOCOL,))
        await wait_for(lambda: len(realtime.handshaking) == 1)

        shutting = asyncio.create_task(hub_server.close())

        assert await closing_frames(waiting) == [GOING_AWAY, 1001]
        assert await closing_frames(connected) == [GOING_AWAY, 1001]
        await asyncio.wait_for(shutting, 5)  # nothing left for aiohttp to wait for


class Closed:
    def __init__(self) -> None:
        self.codes: list[int] = []

    def close(self, code: int, reason: str, **_: Any) -> None:
        self.codes.append(code)


class Service:
    def __init__(self, accepting: bool) -> None:
        self.accepting = accepting


def test_a_connect_overdue_while_the_hub_shuts_down_is_not_the_clients_fault() -> None:
    """aiohttp reads nothing once its shutdown began: the connect may have been sent."""
    running, stopping = Closed(), Closed()

    endpoint._connect_overdue(Service(True), running, 5.0)  # type: ignore[arg-type]
    endpoint._connect_overdue(Service(False), stopping, 5.0)  # type: ignore[arg-type]

    assert running.codes == [CloseCode.UNAUTHORIZED]
    assert stopping.codes == [CloseCode.GOING_AWAY]
