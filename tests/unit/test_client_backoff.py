"""The Python client's reconnect backoff starts over only after a session that stayed
live for ``stable_after``: a hub that accepts the connect and closes the socket at once
(4009, 1011, 4008; or 1001 from a hub that keeps sending it on) is not tried again at
once, forever. The backoff is recorded, not slept: no wall-clock waits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from hubbub.client import HubbubClient
from hubbub.contracts.protocol import SUBPROTOCOL

SESSIONS = 6


class RecordingClient(HubbubClient):
    """Records the step of each backoff instead of waiting it out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.steps: list[int] = []
        self.enough = asyncio.Event()

    def _backoff(self, attempt: int) -> float:
        self.steps.append(attempt)
        if len(self.steps) >= SESSIONS:
            self.enough.set()
        return 0.0


def closing_hub(code: int) -> web.Application:
    """A hub that accepts the connect of the upgrade request and then closes the socket
    with ``code``."""

    async def ws(request: web.Request) -> web.WebSocketResponse:
        assert request.headers["Authorization"] == "Bearer tok"
        sock = web.WebSocketResponse(protocols=(SUBPROTOCOL,))
        await sock.prepare(request)
        connected = {"push": "connected", "client": "c", "ping_interval": 25}
        await sock.send_str(orjson.dumps(connected).decode())
        await sock.close(code=code, message=b"closed at once")
        return sock

    app = web.Application()
    app.router.add_get("/ws", ws)
    return app


async def steps_against(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
    code: int,
    **options: Any,
) -> list[int]:
    server = await aiohttp_server(closing_hub(code))
    client = RecordingClient(f"ws://127.0.0.1:{server.port}/ws", "tok", **options)
    try:
        await client.connect(timeout=10)
        await asyncio.wait_for(client.enough.wait(), 10)
    finally:
        await client.close()
    return client.steps[:SESSIONS]


@pytest.mark.parametrize("code", [4009, 1011, 4008])
async def test_sessions_closed_at_once_back_off_further_each_time(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]], code: int
) -> None:
    assert await steps_against(aiohttp_server, code) == [1, 2, 3, 4, 5, 6]


async def test_going_away_at_once_is_tried_again_at_once_only_the_first_time(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> None:
    assert await steps_against(aiohttp_server, 1001) == [0, 2, 3, 4, 5, 6]


async def test_a_session_that_stayed_live_long_enough_starts_the_backoff_over(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> None:
    # Every session counts as stable: each close is the first failure again.
    assert await steps_against(aiohttp_server, 4009, stable_after=0.0) == [1] * SESSIONS
    assert await steps_against(aiohttp_server, 1001, stable_after=0.0) == [0] * SESSIONS
