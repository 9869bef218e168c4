"""A hub on a real port with a real worker behind it, and clients for it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from nats.aio.client import Client as NATS
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.outbox import OutboxEvent
from hub.app import create_app
from hub.state import REALTIME
from hub.ws.service import Realtime
from hubbub.client import HubbubClient
from hubbub.config import Settings
from tests.support import ops
from tests.support.accounts import mailed_token, make_user
from tests.support.hub_server import HubTestServer
from tests.support.tokens import TestTokens
from tests.support.waiting import wait_for


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
    settings: Settings, aiohttp_client: Any, worker: Any, tokens: TestTokens, nc: NATS
) -> TestServer:
    """A hub in this process, served as ``hubbub serve`` serves it (``HubTestServer``)."""
    app = create_app(settings, ops.catalog_with_tests())
    client = await aiohttp_client(HubTestServer(app))
    server: TestServer = client.server
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


@dataclass
class People:
    """Real accounts (rows in the database) and REST calls as them, against the hub."""

    server: TestServer
    db: async_sessionmaker[AsyncSession]
    tokens: TestTokens

    async def user(self, name: str) -> str:
        return await make_user(self.db, f"{name}-{uuid.uuid4().hex[:6]}@example.com")

    async def call(self, user_id: str, method: str, path: str, json: Any = None) -> Any:
        url = f"http://127.0.0.1:{self.server.port}/api/v1{path}"
        headers = {"Authorization": f"Bearer {self.tokens.issue(user_id)}"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, url, json=json, headers=headers) as response,
        ):
            assert response.status < 300, await response.text()
            return await response.json() if response.status != 204 else None

    async def workspace(self, owner: str, *members: tuple[str, str]) -> str:
        """A workspace of ``owner`` with ``(user_id, role)`` members; its id."""
        ws = await self.call(owner, "POST", "/workspaces", {"name": "W"})
        for user_id, role in members:
            email = (await self.call(user_id, "GET", "/users/me"))["email"]
            await self.call(
                owner, "POST", f"/workspaces/{ws['id']}/members", {"email": email, "role": role}
            )
            await self.accept(user_id, email)
        await self.relayed(f"workspace:{ws['id']}")
        return str(ws["id"])

    async def relayed(self, channel: str) -> None:
        """Barrier: every event committed for ``channel`` so far is in its history. The
        outbox relay publishes on its own time, so without this a socket that subscribes
        next could still get the setup's events (``member.added``) as live ones."""

        async def all_published() -> bool:
            async with self.db() as session:
                waiting = await session.scalar(
                    select(func.count())
                    .select_from(OutboxEvent)
                    .where(
                        OutboxEvent.channel == channel,
                        OutboxEvent.published_at.is_(None),
                        OutboxEvent.failed_at.is_(None),
                    )
                )
            return waiting == 0

        await wait_for(all_published)

    async def accept(self, user_id: str, email: str) -> Any:
        """``user_id`` accepts the newest invitation mailed to ``email`` (adding a member
        invites them; they join by accepting)."""
        token = await mailed_token(self.db, email, "/invitations")
        return await self.call(user_id, "POST", "/invitations/accept", {"token": token})


@pytest.fixture
def people(
    hub_server: TestServer, db: async_sessionmaker[AsyncSession], tokens: TestTokens
) -> People:
    return People(hub_server, db, tokens)
