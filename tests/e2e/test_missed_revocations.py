"""Revocations survive missed control messages: a hub whose NATS link was down while a
member was removed, or a user deactivated or signed out everywhere, catches up once the
link is back (and every re-check interval), and a revoked socket's RPCs are refused.

The hub here talks to NATS through a proxy the test cuts (``tests/support/tcp_proxy``);
the worker and the test itself are connected directly, so the worker's control messages
are published — and lost for the hub — while its link is down.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.app import create_app
from hub.state import NATS_CONN, REALTIME, REVOCATIONS
from hub.ws.service import Realtime
from hubbub.bus import Bus
from hubbub.client import HubbubClient, RemoteError
from hubbub.config import Settings
from hubbub.contracts.api import auth as auth_api
from hubbub.contracts.api import invitations as invitations_api
from hubbub.contracts.api import members as members_api
from hubbub.contracts.api import users as users_api
from hubbub.contracts.api import workspaces as workspaces_api
from hubbub.contracts.api.channels import ChannelAction
from hubbub.contracts.api.users import Role
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.subjects import Subjects
from hubbub.keys import RedisKeys
from hubbub.tokens import AccessTokens
from tests.support import ops
from tests.support.accounts import PASSWORD, mailed_token, make_user
from tests.support.clients import first_close
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually, wait_for


@dataclass
class Account:
    id: str
    email: str
    access_token: str
    session_id: str

    @property
    def caller(self) -> Caller:
        return Caller(kind=CallerKind.USER, user_id=self.id, session_id=self.session_id)


@dataclass
class World:
    """Accounts and their actions, through the worker directly (never through the hub)."""

    bus: Bus
    db: async_sessionmaker[AsyncSession]
    tokens: AccessTokens

    async def account(self, name: str, role: Role = Role.MEMBER) -> Account:
        email = f"{name}-{uuid.uuid4().hex[:6]}@example.com"
        user_id = await make_user(self.db, email, role=role)
        anonymous = Caller(kind=CallerKind.ANONYMOUS, ip="127.0.0.1")
        signed_in = await self.bus.request(
            auth_api.login, {"email": email, "password": PASSWORD}, caller=anonymous
        )
        token = signed_in.value.access_token
        return Account(user_id, email, token, self.tokens.verify(token).sid)

    async def workspace(self, owner: Account, *members: Account) -> str:
        made = await self.bus.request(workspaces_api.create, {"name": "W"}, caller=owner.caller)
        workspace_id = str(made.value.id)
        for member in members:  # adding invites; the member joins by accepting
            await self.bus.request(
                members_api.add,
                {"workspace_id": workspace_id, "email": member.email, "role": "member"},
                caller=owner.caller,
            )
            token = await mailed_token(self.db, member.email, "/invitations")
            await self.bus.request(invitations_api.accept, {"token": token}, caller=member.caller)
        return workspace_id

    async def remove(self, owner: Account, workspace_id: str, member: Account) -> None:
        await self.bus.request(
            members_api.remove,
            {"workspace_id": workspace_id, "user_id": member.id},
            caller=owner.caller,
        )

    async def deactivate(self, admin: Account, user: Account) -> None:
        await self.bus.request(
            users_api.update_user, {"user_id": user.id, "is_active": False}, caller=admin.caller
        )

    async def logout_all(self, user: Account) -> None:
        await self.bus.request(auth_api.logout_all, {}, caller=user.caller)


@pytest.fixture
def world(bus: Bus, db: async_sessionmaker[AsyncSession], settings: Settings) -> World:
    return World(bus, db, AccessTokens.from_settings(settings, signing=False))


@pytest.fixture
async def nats_proxy(settings: Settings) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy.to_url(settings.nats_url or "")
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def proxied_hub(
    settings: Settings, nats_proxy: TcpProxy, worker: Any, nc: NATS
) -> AsyncIterator[TestServer]:
    """A hub whose NATS connection goes through ``nats_proxy``. Its own server, closed
    here: before the proxy stops, whatever order other fixtures were set up in."""
    proxied = settings.model_copy(update={"nats_url": nats_proxy.url("nats")})
    server = TestServer(create_app(proxied, ops.catalog_with_tests()), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def sockets(proxied_hub: TestServer) -> AsyncIterator[Callable[[Account], Any]]:
    """``await sockets(account)``: a connected client of the proxied hub, as that account."""
    made: list[HubbubClient] = []

    async def open_as(account: Account) -> HubbubClient:
        client = HubbubClient(f"ws://127.0.0.1:{proxied_hub.port}/ws", account.access_token)
        made.append(client)
        await client.connect()
        return client

    yield open_as
    for client in made:
        await client.close()


@dataclass
class ControlTap:
    """Every control message, seen directly on NATS: proof that the worker published."""

    messages: list[dict[str, Any]]

    async def seen(self, kind: str, user_id: str) -> None:
        async def there() -> bool:
            return any(m["type"] == kind and m["user_id"] == user_id for m in self.messages)

        await wait_for(there, what=f"a {kind} control message")


@pytest.fixture
async def control_tap(nc: NATS, settings: Settings) -> AsyncIterator[ControlTap]:
    tap = ControlTap([])

    async def keep(msg: Msg) -> None:
        tap.messages.append(orjson.loads(msg.data))

    sub = await nc.subscribe(Subjects(settings.namespace).control_wildcard, cb=keep)
    await nc.flush()
    yield tap
    await sub.unsubscribe()


async def link_state(hub: TestServer, *, connected: bool) -> None:
    nc = hub.app[NATS_CONN]

    async def reached() -> bool:
        return bool(nc.is_connected) is connected

    await wait_for(reached, what=f"the hub's NATS link {'up' if connected else 'down'}")


async def push_of(client: HubbubClient, kind: str, timeout: float = 10.0) -> dict[str, Any]:
    """The first push of ``kind`` the client got (waiting for it, bounded)."""
    seen: list[dict[str, Any]] = []

    async def arrived() -> dict[str, Any]:
        while not client.pushes.empty():
            seen.append(client.pushes.get_nowait())
        matching = [p for p in seen if p.get("push") == kind]
        assert matching, f"no {kind} push yet; got {seen}"
        return matching[0]

    found: dict[str, Any] = await eventually(arrived, timeout=timeout)
    return found


def realtime_of(hub: TestServer) -> Realtime:
    app: web.Application = hub.app
    return app[REALTIME]


class TestAfterTheHubsNatsLinkReturns:
    async def test_a_member_removed_meanwhile_is_unsubscribed(
        self,
        world: World,
        sockets: Any,
        proxied_hub: TestServer,
        nats_proxy: TcpProxy,
        control_tap: ControlTap,
    ) -> None:
        """The removal's control message is lost for the hub; the re-check after the
        reconnect asks a worker and pushes `unsubscribed` (4003)."""
        ann, bob = await world.account("ann"), await world.account("bob")
        workspace = await world.workspace(ann, bob)
        channel = f"workspace:{workspace}"
        b = await sockets(bob)
        await b.subscribe(channel)

        await nats_proxy.cut()
        await link_state(proxied_hub, connected=False)
        await world.remove(ann, workspace, bob)
        await control_tap.seen("membership_revoked", bob.id)
        [conn] = realtime_of(proxied_hub).by_user[bob.id]
        assert channel in conn.subs  # missed: nothing acted on it

        await nats_proxy.restore()
        await link_state(proxied_hub, connected=True)
        push = await push_of(b, "unsubscribed")
        assert (push["channel"], push["code"], push["reason"]) == (
            channel,
            4003,
            "your membership was removed",
        )
        assert channel not in conn.subs
        assert b.reconnects == 0  # the hub's push, not the client's own resubscribe

    async def test_a_user_deactivated_meanwhile_is_closed_for_good(
        self,
        world: World,
        sockets: Any,
        proxied_hub: TestServer,
        nats_proxy: TcpProxy,
        control_tap: ControlTap,
    ) -> None:
        """Deactivation closes with 4003 (the documented code: do not reconnect)."""
        boss = await world.account("boss", Role.ADMIN)
        emp = await world.account("emp")
        e = await sockets(emp)

        await nats_proxy.cut()
        await link_state(proxied_hub, connected=False)
        await world.deactivate(boss, emp)
        await control_tap.seen("deactivated", emp.id)
        assert emp.id in realtime_of(proxied_hub).by_user  # missed: still open

        await nats_proxy.restore()
        assert await first_close(e) == 4003

    async def test_a_user_signed_out_everywhere_meanwhile_is_closed_with_4001(
        self,
        world: World,
        sockets: Any,
        proxied_hub: TestServer,
        nats_proxy: TcpProxy,
        control_tap: ControlTap,
    ) -> None:
        amy = await world.account("amy")
        a = await sockets(amy)

        await nats_proxy.cut()
        await link_state(proxied_hub, connected=False)
        await world.logout_all(amy)
        await control_tap.seen("sessions_revoked", amy.id)

        await nats_proxy.restore()
        assert await first_close(a) == 4001

    async def test_a_member_still_allowed_keeps_the_subscription(
        self, world: World, sockets: Any, proxied_hub: TestServer, nats_proxy: TcpProxy
    ) -> None:
        """The pass after the reconnect checks the subscription and leaves it alone."""
        ann, bob = await world.account("ann"), await world.account("bob")
        workspace = await world.workspace(ann, bob)
        channel = f"workspace:{workspace}"
        b = await sockets(bob)
        await b.subscribe(channel)
        recheck = realtime_of(proxied_hub).recheck
        before = recheck.passes

        await nats_proxy.cut()
        await link_state(proxied_hub, connected=False)
        await nats_proxy.restore()

        async def a_pass_ran() -> bool:
            return recheck.passes > before

        await wait_for(a_pass_ran, what="a re-check pass after the reconnect")
        [conn] = realtime_of(proxied_hub).by_user[bob.id]
        assert channel in conn.subs
        assert all(p.get("push") != "unsubscribed" for p in drain(b))


class TestStoppingWhileTheLinkIsDown:
    async def test_the_hub_stops_cleanly(
        self, proxied_hub: TestServer, nats_proxy: TcpProxy
    ) -> None:
        """Nothing to drain through: the NATS client is closed instead of raising."""
        await nats_proxy.cut()
        await link_state(proxied_hub, connected=False)
        nc = proxied_hub.app[NATS_CONN]
        await proxied_hub.close()
        assert nc.is_closed


def drain(client: HubbubClient) -> list[dict[str, Any]]:
    pushes = []
    while not client.pushes.empty():
        pushes.append(client.pushes.get_nowait())
    return pushes


@pytest.fixture
def quick_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"recheck_interval_s": 0.3})


@pytest.fixture
async def quick_hub(
    quick_settings: Settings, aiohttp_server: Any, worker: Any, nc: NATS
) -> AsyncIterator[TestServer]:
    """A hub (connected directly) re-checking every ~0.3 s, and acting on no control
    message: as if every one of them had been missed."""
    server: TestServer = await aiohttp_server(create_app(quick_settings, ops.catalog_with_tests()))
    app: web.Application = server.app
    app[REVOCATIONS].listeners.remove(app[REALTIME].on_control)
    yield server
    app[REVOCATIONS].listeners.append(app[REALTIME].on_control)  # as the app removes it


@pytest.fixture
async def quick_sockets(quick_hub: TestServer) -> AsyncIterator[Callable[[Account], Any]]:
    made: list[HubbubClient] = []

    async def open_as(account: Account) -> HubbubClient:
        client = HubbubClient(f"ws://127.0.0.1:{quick_hub.port}/ws", account.access_token)
        made.append(client)
        await client.connect()
        return client

    yield open_as
    for client in made:
        await client.close()


class TestThePeriodicRecheck:
    async def test_drops_a_removed_members_subscription(
        self, world: World, quick_sockets: Any
    ) -> None:
        ann, bob = await world.account("ann"), await world.account("bob")
        workspace = await world.workspace(ann, bob)
        b = await quick_sockets(bob)
        await b.subscribe(f"chat:{workspace}")
        await world.remove(ann, workspace, bob)
        push = await push_of(b, "unsubscribed")
        assert (push["channel"], push["code"]) == (f"chat:{workspace}", 4003)

    async def test_closes_a_deactivated_users_socket(
        self, world: World, quick_sockets: Any
    ) -> None:
        boss = await world.account("boss", Role.ADMIN)
        emp = await world.account("emp")
        e = await quick_sockets(emp)
        await world.deactivate(boss, emp)
        assert await first_close(e) == 4003


class TestRevokedSocketsCommands:
    async def test_an_rpc_after_sign_out_everywhere_is_refused_and_the_socket_closed(
        self, world: World, quick_hub: TestServer, quick_sockets: Any
    ) -> None:
        """The deny-list names the session before anything closed the socket: the RPC
        is answered `unauthorized` and the socket closed with 4001, as REST refuses."""
        amy = await world.account("amy")
        a = await quick_sockets(amy)
        realtime = realtime_of(quick_hub)
        realtime.recheck.interval = 3600.0  # only the RPC's own check acts here
        await realtime.recheck.stop()
        await world.logout_all(amy)

        async def denied() -> bool:
            return realtime.revocations.is_revoked(amy.session_id, amy.id)

        await wait_for(denied, what="the deny-list to name the session")
        with pytest.raises(RemoteError) as refused:
            await a.rpc("users.me")
        assert (refused.value.code, refused.value.details.get("reason")) == (
            "unauthorized",
            "revoked",
        )
        assert await first_close(a) == 4001


class TestAnUndecidedCheckKeepsTheSubscription:
    async def test_with_no_worker_nothing_is_dropped_and_a_definite_no_drops(
        self,
        settings: Settings,
        aiohttp_server: Any,
        nc: NATS,
        redis: Redis,
    ) -> None:
        """No worker answers (and the cache is skipped): the subscription is kept; a
        cached "no" on the next pass drops it."""
        server: TestServer = await aiohttp_server(create_app(settings, ops.catalog_with_tests()))
        tokens = AccessTokens.from_settings(settings, signing=True)
        user, channel = str(uuid.uuid4()), f"workspace:{uuid.uuid4()}"
        acl = RedisKeys(settings.namespace).channel_acl(
            user, channel, ChannelAction.SUBSCRIBE.value
        )
        await redis.set(acl, b"1")  # the worker's cached "yes", from before
        issued = tokens.issue(user_id=user, role="member", session_id=uuid.uuid4().hex)
        client = HubbubClient(f"ws://127.0.0.1:{server.port}/ws", issued.token)
        try:
            await client.connect()
            await client.subscribe(channel)
            realtime = realtime_of(server)
            [conn] = realtime.by_user[user]

            undecided = await realtime.recheck.run(fresh=True)
            assert (undecided, channel in conn.subs) == ({(user, channel)}, True)

            await redis.set(acl, b"0")
            assert await realtime.recheck.run(fresh=False) == set()
            push = await push_of(client, "unsubscribed")
            assert (push["channel"], channel in conn.subs) == (channel, False)
        finally:
            await client.close()
