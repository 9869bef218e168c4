"""The Python client's reconnect backoff starts over only after a session that stayed
live for ``stable_after``: a hub that accepts the connect and closes the socket at once
(4009, 1011, 4008; or 1001 from a hub that keeps sending it on) is not tried again at
once, forever. The backoff is recorded, not slept: no wall-clock waits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from hubbub.client import HubbubClient
from hubbub.client.client import RemoteError
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


async def pushed_then_closed(
    request: web.Request, push: dict[str, Any], code: int, reason: bytes
) -> web.WebSocketResponse:
    """Upgrade ``request``, send ``push``, and close the socket with ``code``."""
    sock = web.WebSocketResponse(protocols=(SUBPROTOCOL,))
    await sock.prepare(request)
    await sock.send_str(orjson.dumps(push).decode())
    await sock.close(code=code, message=reason)
    return sock


def hub_of(ws: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.Application:
    app = web.Application()
    app.router.add_get("/ws", ws)
    return app


def closing_hub(code: int) -> web.Application:
    """A hub that accepts the connect of the upgrade request and then closes the socket
    with ``code``."""

    async def ws(request: web.Request) -> web.WebSocketResponse:
        assert request.headers["Authorization"] == "Bearer tok"
        connected = {"push": "connected", "client": "c", "ping_interval": 25}
        return await pushed_then_closed(request, connected, code, b"closed at once")

    return hub_of(ws)


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


def hub_answering(status: int | None, code: int = 1001) -> web.Application:
    """A hub that refuses the upgrade with ``status`` (and ``Retry-After``), or (None)
    upgrades and closes at once with ``code``, saying why first: a hub whose shutdown
    began, or whose socket cap was reached, while it answered the upgrade."""

    async def ws(request: web.Request) -> web.StreamResponse:
        if status is not None:
            return web.Response(status=status, headers={"Retry-After": "1"})
        push = {"push": "disconnect", "code": code, "reason": "going", "reconnect": True}
        return await pushed_then_closed(request, push, code, b"going")

    return hub_of(ws)


def keep_connecting(client: HubbubClient) -> None:
    """What ``connect()`` starts, without its wait for a live session (there is none)."""
    client._session = aiohttp.ClientSession()
    client._runner = asyncio.create_task(client._run())


@pytest.mark.parametrize("status", [503, 429])
async def test_a_hub_that_refuses_for_now_is_tried_again_without_end(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]], status: int
) -> None:
    """More than ``MAX_REFUSALS`` times: a draining hub is not a refusal of the client."""
    server = await aiohttp_server(hub_answering(status))
    client = RecordingClient(f"ws://127.0.0.1:{server.port}/ws", "tok")
    keep_connecting(client)
    try:
        await asyncio.wait_for(client.enough.wait(), 10)
        assert client._runner is not None
        assert not client._runner.done()
        assert isinstance(client.last_error, RemoteError)
        assert client.last_error.details == {"retry_after": 1}
    finally:
        await client.close()


@pytest.mark.parametrize(("code", "first_step"), [(1001, 0), (4008, 1)])
async def test_a_close_right_after_the_101_is_a_close_with_its_code(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
    code: int,
    first_step: int,
) -> None:
    """Its ``disconnect`` push is the first frame: recorded as the close it announces
    (1001 goes on to the next hub at once), not taken for a broken ``connected``."""
    server = await aiohttp_server(hub_answering(None, code))
    client = RecordingClient(f"ws://127.0.0.1:{server.port}/ws", "tok")
    keep_connecting(client)
    try:
        await asyncio.wait_for(client.enough.wait(), 10)
        assert client.steps[0] == first_step
        assert client.closes[0] == (code, "going")
        # What connect() names when it times out (an older hub: "send connect within").
        assert str(client.last_error) == f"closed before it was live: {code} going"
    finally:
        await client.close()
