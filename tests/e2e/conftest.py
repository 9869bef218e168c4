"""A hub on a real port with a real worker behind it, and clients for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from nats.aio.client import Client as NATS

from hub.app import create_app
from hub.state import REALTIME
from hub.ws.service import Realtime
from hubbub.client import HubbubClient
from hubbub.config import Settings
from tests.support import ops
from tests.support.tokens import TestTokens


@pytest.fixture
def tokens(settings: Settings) -> TestTokens:
    return TestTokens(settings)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Faster clocks for the realtime tests."""
    return settings.model_copy(
        update={"ws_expiry_grace_s": 0.5, "presence_ttl_s": 3.0, "ws_connect_timeout_s": 1.0}
    )


@pytest.fixture
async def hub_server(
    settings: Settings, aiohttp_server: Any, worker: Any, tokens: TestTokens, nc: NATS
) -> TestServer:
    app = create_app(settings, ops.catalog_with_tests())
    server: TestServer = await aiohttp_server(app)
    return server


@pytest.fixture
def ws_url(hub_server: TestServer) -> str:
    return f"ws://127.0.0.1:{hub_server.port}/ws"


@pytest.fixture
def realtime(hub_server: TestServer) -> Realtime:
    app: web.Application = hub_server.app
    return app[REALTIME]


ClientFactory = Callable[..., Awaitable[HubbubClient]]


@pytest.fixture
async def client(ws_url: str, tokens: TestTokens) -> AsyncIterator[ClientFactory]:
    """``await client("alice")``: a connected client for that user (closed afterwards)."""
    made: list[HubbubClient] = []

    async def make(
        user_id: str, *, role: str = "member", ttl: float = 900, connect: bool = True, **kwargs: Any
    ) -> HubbubClient:
        async def token() -> str:
            return tokens.issue(user_id, role=role, ttl=ttl)

        c = HubbubClient(ws_url, token, **kwargs)
        made.append(c)
        if connect:
            await c.connect()
        return c

    yield make
    for c in made:
        await c.close()
