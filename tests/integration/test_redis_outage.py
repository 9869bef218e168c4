"""No stale state after a Redis outage: invalidations that failed while Redis was down are
kept in PostgreSQL and redone as soon as it answers again — by one worker, once.

The outage test runs a worker and a hub against a Redis of its own (AOF-persistent, so it
comes back with its old data, stale entries included), stopped and started on the same
port; the session-wide servers are never stopped.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from nats.aio.client import Client as NATS
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cli.embedded import EmbeddedRedis
from cli.embedded.process import free_port
from handlers.accounts import revocation
from handlers.accounts.models import AuthSession
from handlers.context import Context
from handlers.invalidations import (
    BATCH,
    FAILED_KEEP_S,
    FAILED_RETRY_S,
    REDO_SIGNAL,
    SETTLE_S,
    UNKNOWN_KIND_KEEP_S,
    UNKNOWN_KIND_RETRY_S,
    PendingInvalidation,
    RedoSignal,
)
from handlers.workspaces import acl, cache
from hub.admin import create_admin_app
from hub.app import create_app
from hub.state import BUS, NATS_CONN, REALTIME, REDIS, REVOCATIONS
from hubbub.client import HubbubClient, RemoteError
from hubbub.config import Settings
from hubbub.contracts.api.users import Role
from hubbub.contracts.control import DEACTIVATED_USERS, REVOKED_SESSIONS
from hubbub.contracts.envelope import ANONYMOUS
from hubbub.contracts.subjects import Subjects
from hubbub.dependencies import redis_outage
from hubbub.keys import RedisKeys
from hubbub.redisconn import redis_from_settings
from tests.support import ops
from tests.support.accounts import PASSWORD, mailed_token, make_user
from tests.support.clients import first_close
from tests.support.control import heard_so_far
from tests.support.tcp_proxy import TcpProxy
from tests.support.tokens import TestTokens
from tests.support.waiting import eventually, wait_for
from workers.app import RunningWorker, worker_running
from workers.invalidations import InvalidationRedoer

RECOVERY_S = 5.0  # what the issue allows after Redis is back


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "own-redis")
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.stop)


@pytest.fixture
def outage_settings(settings: Settings, own_redis: EmbeddedRedis) -> Settings:
    return settings.model_copy(update={"redis_url": own_redis.url, "redis_timeout_s": 1.0})


@pytest.fixture
async def outage_worker(outage_settings: Settings, nc: NATS) -> AsyncIterator[RunningWorker]:
    async with worker_running(outage_settings, ops.registry_with_tests()) as running:
        yield running


@pytest.fixture
async def outage_hub(
    outage_settings: Settings, aiohttp_server: Any, outage_worker: RunningWorker
) -> TestServer:
    server: TestServer = await aiohttp_server(create_app(outage_settings, ops.catalog_with_tests()))
    return server


@pytest.fixture
async def own_redis_client(outage_settings: Settings) -> AsyncIterator[Redis]:
    client = redis_from_settings(outage_settings)  # reconnects after the restart
    yield client
    await client.aclose()


class Rest:
    """REST calls to the hub as a given user (tokens signed like a worker signs them)."""

    def __init__(self, server: TestServer, tokens: TestTokens) -> None:
        self.base = f"http://127.0.0.1:{server.port}/api/v1"
        self.tokens = tokens

    async def __call__(self, user_id: str, method: str, path: str, json: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens.issue(user_id)}"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.base + path, json=json, headers=headers) as response,
        ):
            text = await response.text()
            assert response.status < 300, f"{method} {path}: {response.status} {text}"
            return await response.json() if text else None


async def pending(db: async_sessionmaker[AsyncSession]) -> int:
    async with db() as session:
        return int(await session.scalar(select(func.count()).select_from(PendingInvalidation)) or 0)


async def may_subscribe(client: HubbubClient, channel: str) -> bool:
    """Subscribe and unsubscribe; False if refused (as forbidden: never `internal`, never
    a closed socket)."""
    try:
        await client.subscribe(channel)
    except RemoteError as exc:
        refusal = exc
    else:
        await client.unsubscribe(channel)
        return True
    assert refusal.code == "forbidden", refusal
    return False


class TestRedisOutage:
    async def test_changes_made_while_redis_was_down_hold_within_seconds_of_its_return(
        self,
        outage_hub: TestServer,
        own_redis: EmbeddedRedis,
        own_redis_client: Redis,
        outage_settings: Settings,
        db: async_sessionmaker[AsyncSession],
    ) -> None:
        """A member removed and a resource updated during the outage: once Redis is back
        with its stale entries, the member is refused and GET returns the new version."""
        tokens = TestTokens(outage_settings)
        rest = Rest(outage_hub, tokens)
        keys = RedisKeys(outage_settings.namespace)
        owner, member = [
            await make_user(db, f"{n}-{uuid.uuid4().hex[:6]}@example.com") for n in "om"
        ]
        ws = (await rest(owner, "POST", "/workspaces", {"name": "W"}))["id"]
        email = (await rest(member, "GET", "/users/me"))["email"]
        await rest(owner, "POST", f"/workspaces/{ws}/members", {"email": email, "role": "member"})
        token = await mailed_token(db, email, "/invitations")  # the member accepts
        await rest(member, "POST", "/invitations/accept", {"token": token})
        path = f"/workspaces/{ws}/resources"
        made = await rest(owner, "POST", path, {"kind": "task", "title": "old"})
        path = f"{path}/{made['id']}"
        channel = f"workspace:{ws}"
        url = f"ws://127.0.0.1:{outage_hub.port}/ws"

        as_member = HubbubClient(url, tokens.issue(member))
        as_owner = HubbubClient(url, tokens.issue(owner))
        await as_member.connect()
        await as_owner.connect()
        try:
            # Warm both caches: the GET is cached, the member's "allowed" too.
            assert (await rest(owner, "GET", path))["title"] == "old"
            assert await may_subscribe(as_member, channel)
            acl_key = keys.channel_acl(member, channel, "subscribe")
            assert await own_redis_client.get(acl_key) == b"1"
            gen_key = keys.key("ws", ws, "gen")
            gen_before = int(await own_redis_client.get(gen_key) or 0)
            await own_redis_client.set(keys.key("survives"), b"yes")

            await asyncio.to_thread(own_redis.stop)
            # PostgreSQL is up: the changes commit; their Redis work fails and is kept.
            await rest(owner, "DELETE", f"/workspaces/{ws}/members/{member}")
            updated = await rest(owner, "PATCH", path, {"title": "new"})
            assert updated["version"] == 2
            assert await pending(db) >= 2
            # The hub cannot read its cache: it asks the worker, which reads the database.
            assert await may_subscribe(as_owner, channel)
            assert not await may_subscribe(as_member, channel)

            await asyncio.to_thread(own_redis.restart)
            assert await own_redis_client.get(keys.key("survives")) == b"yes"  # old data back

            async def holds() -> None:
                assert not await may_subscribe(as_member, channel)
                assert (await rest(owner, "GET", path))["title"] == "new"
                assert await own_redis_client.get(acl_key) != b"1"
                assert int(await own_redis_client.get(gen_key) or 0) > gen_before

            await eventually(holds, timeout=RECOVERY_S)
            await wait_for(lambda: _none_pending(db), timeout=RECOVERY_S, what="all redone")
            assert await may_subscribe(as_owner, channel)
        finally:
            await as_member.close()
            await as_owner.close()

    async def test_a_deactivation_during_the_outage_reaches_the_deny_list(
        self,
        outage_hub: TestServer,
        own_redis: EmbeddedRedis,
        own_redis_client: Redis,
        outage_settings: Settings,
        db: async_sessionmaker[AsyncSession],
    ) -> None:
        """The deactivation commits while Redis is down; the user is on the deny-list
        (which hubs reload from Redis) within seconds of Redis's return."""
        tokens = TestTokens(outage_settings)
        admin = await make_user(db, f"a-{uuid.uuid4().hex[:6]}@example.com", role=Role.ADMIN)
        user = await make_user(db, f"u-{uuid.uuid4().hex[:6]}@example.com")
        denied = RedisKeys(outage_settings.namespace).key(*DEACTIVATED_USERS)
        base = f"http://127.0.0.1:{outage_hub.port}/api/v1"
        headers = {"Authorization": f"Bearer {tokens.issue(admin, role='admin')}"}

        await asyncio.to_thread(own_redis.stop)
        async with (
            aiohttp.ClientSession() as session,
            session.patch(
                f"{base}/users/{user}", json={"is_active": False}, headers=headers
            ) as response,
        ):
            assert response.status == 200, await response.text()
        await asyncio.to_thread(own_redis.restart)

        async def on_the_list() -> bool:
            return await own_redis_client.zscore(denied, user) is not None

        await wait_for(on_the_list, timeout=RECOVERY_S, what="the user deny-listed")
        await wait_for(lambda: _none_pending(db), timeout=RECOVERY_S, what="all redone")


async def _none_pending(db: async_sessionmaker[AsyncSession]) -> bool:
    return await pending(db) == 0


@pytest.fixture
async def writes_refused(own_redis_client: Redis) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Call it to have the test's Redis refuse every write while it answers reads (too
    few replicas: NOREPLICAS, as a read-only replica after a failover, MISCONF or an
    out-of-memory Redis refuse them); it takes writes again at teardown."""

    async def refuse() -> None:
        await own_redis_client.config_set("min-replicas-to-write", "1")

    yield refuse
    await own_redis_client.config_set("min-replicas-to-write", "0")


async def call(
    base: str, method: str, path: str, token: str | None = None, json: Any = None
) -> tuple[int, Any]:
    """One REST call: its status and its JSON body (None when empty)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, base + path, json=json, headers=headers) as response,
    ):
        text = await response.text()
        return response.status, await response.json() if text else None


def api(server: TestServer) -> str:
    return f"http://127.0.0.1:{server.port}/api/v1"


def ws_url(server: TestServer) -> str:
    return f"ws://127.0.0.1:{server.port}/ws"


async def signed_in(server: TestServer, db: async_sessionmaker[AsyncSession]) -> tuple[str, str]:
    """A new account signed in through ``server``: its id and access token."""
    email = f"s-{uuid.uuid4().hex[:6]}@example.com"
    user_id = await make_user(db, email)
    status, body = await call(
        api(server), "POST", "/auth/login", json={"email": email, "password": PASSWORD}
    )
    assert status == 200, body
    return user_id, body["access_token"]


async def member_of_a_workspace(
    rest: Rest, db: async_sessionmaker[AsyncSession]
) -> tuple[str, str, str]:
    """An owner, a member (role ``member``, invited and accepted) and their workspace."""
    owner, member = [await make_user(db, f"{n}-{uuid.uuid4().hex[:6]}@example.com") for n in "om"]
    ws = (await rest(owner, "POST", "/workspaces", {"name": "W"}))["id"]
    email = (await rest(member, "GET", "/users/me"))["email"]
    await rest(owner, "POST", f"/workspaces/{ws}/members", {"email": email, "role": "member"})
    token = await mailed_token(db, email, "/invitations")
    await rest(member, "POST", "/invitations/accept", {"token": token})
    return owner, member, ws


class TestWhileRedisRefusesWrites:
    """Redis answers reads but refuses writes: what was revoked meanwhile is only in
    PostgreSQL (``pending_invalidations``) until the workers can redo it. A hub that starts
    then, or whose NATS link drops then, must deny it all the same, and a demotion must
    hold on every hub."""

    async def test_a_hub_started_meanwhile_refuses_a_session_ended_meanwhile(
        self,
        outage_hub: TestServer,
        outage_settings: Settings,
        aiohttp_server: Any,
        db: async_sessionmaker[AsyncSession],
        writes_refused: Callable[[], Awaitable[None]],
    ) -> None:
        _, token = await signed_in(outage_hub, db)
        await writes_refused()
        assert (await call(api(outage_hub), "POST", "/auth/logout-all", token))[0] == 204
        assert await pending(db) >= 1  # the deny-list entry waits in PostgreSQL

        restarted = await aiohttp_server(create_app(outage_settings, ops.catalog_with_tests()))
        assert (await call(api(restarted), "GET", "/users/me", token))[0] == 401
        c = HubbubClient(ws_url(restarted), token)
        with pytest.raises(RemoteError) as refused:
            await c.connect(timeout=10)
        assert refused.value.code == "unauthorized"
        status, ready = await call(api(restarted), "GET", "/ready")
        assert (status, ready["components"]["deny_list"]) == (200, "ok")

    async def test_a_hub_started_meanwhile_keeps_a_member_removed_meanwhile_out(
        self,
        outage_hub: TestServer,
        outage_settings: Settings,
        own_redis_client: Redis,
        aiohttp_server: Any,
        db: async_sessionmaker[AsyncSession],
        writes_refused: Callable[[], Awaitable[None]],
    ) -> None:
        """The member's cached "allowed" is still in Redis: the new hub must not trust it."""
        tokens = TestTokens(outage_settings)
        rest = Rest(outage_hub, tokens)
        owner, member, ws = await member_of_a_workspace(rest, db)
        channel = f"workspace:{ws}"
        m = HubbubClient(ws_url(outage_hub), tokens.issue(member))
        await m.connect()
        try:
            assert await may_subscribe(m, channel)  # caches "allowed"
        finally:
            await m.close()
        keys = RedisKeys(outage_settings.namespace)
        assert await own_redis_client.get(keys.channel_acl(member, channel, "subscribe")) == b"1"
        await writes_refused()
        await rest(owner, "DELETE", f"/workspaces/{ws}/members/{member}")
        assert await own_redis_client.get(keys.channel_acl(member, channel, "subscribe")) == b"1"

        restarted = await aiohttp_server(create_app(outage_settings, ops.catalog_with_tests()))
        m = HubbubClient(ws_url(restarted), tokens.issue(member))
        await m.connect()
        try:
            assert not await may_subscribe(m, channel)
            with pytest.raises(RemoteError) as refused:
                await m.history(channel)
            assert refused.value.code == "forbidden"
        finally:
            await m.close()

    async def test_a_hub_whose_nats_link_dropped_meanwhile_catches_up_on_a_session_ended_then(
        self,
        outage_hub: TestServer,
        outage_settings: Settings,
        db: async_sessionmaker[AsyncSession],
        writes_refused: Callable[[], Awaitable[None]],
    ) -> None:
        """The control message is lost for the hub and Redis has no entry: after the
        reconnect's re-check the token is refused and its socket closed (4001)."""
        proxy = TcpProxy.to_url(outage_settings.nats_url or "")
        await proxy.start()
        proxied = outage_settings.model_copy(update={"nats_url": proxy.url("nats")})
        hub = TestServer(create_app(proxied, ops.catalog_with_tests()), host="127.0.0.1")
        await hub.start_server()
        try:
            _, token = await signed_in(hub, db)
            c = HubbubClient(ws_url(hub), token)
            await c.connect()
            recheck = hub.app[REALTIME].recheck
            await writes_refused()
            await proxy.cut()
            await wait_for(lambda: not hub.app[NATS_CONN].is_connected, what="the link down")
            passes = recheck.passes
            # Ended through the other hub, while this one hears nothing.
            assert (await call(api(outage_hub), "POST", "/auth/logout-all", token))[0] == 204
            assert await pending(db) >= 1

            await proxy.restore()
            await wait_for(lambda: recheck.passes > passes, timeout=15, what="the re-check")
            assert (await call(api(hub), "GET", "/users/me", token))[0] == 401
            assert await first_close(c) == 4001
            status, ready = await call(api(hub), "GET", "/ready")
            assert (status, ready["components"]["deny_list"]) == (200, "ok")
            await c.close()
        finally:
            await hub.close()
            await proxy.stop()

    async def test_a_member_demoted_to_viewer_may_no_longer_publish_on_chat(
        self,
        outage_hub: TestServer,
        outage_settings: Settings,
        aiohttp_server: Any,
        own_redis_client: Redis,
        db: async_sessionmaker[AsyncSession],
        nc: NATS,
        writes_refused: Callable[[], Awaitable[None]],
    ) -> None:
        """The cached "may publish" stays in Redis: every hub must ask again, every time
        (the workers' "may not" cannot replace it)."""
        tokens = TestTokens(outage_settings)
        rest = Rest(outage_hub, tokens)
        owner, member, ws = await member_of_a_workspace(rest, db)
        chat = f"chat:{ws}"
        keys = RedisKeys(outage_settings.namespace)
        other_hub = await aiohttp_server(create_app(outage_settings, ops.catalog_with_tests()))
        hubs = (outage_hub, other_hub)
        sockets = [HubbubClient(ws_url(hub), tokens.issue(member)) for hub in hubs]
        try:
            for m in sockets:
                await m.connect()
                await m.subscribe(chat)
                await m.publish(chat, {"text": "as a member"})
            assert await own_redis_client.get(keys.channel_acl(member, chat, "publish")) == b"1"
            await writes_refused()
            updated = await rest(
                owner, "PATCH", f"/workspaces/{ws}/members/{member}", {"role": "viewer"}
            )
            assert updated["role"] == "viewer"
            for hub in hubs:
                await heard_so_far(hub, nc, outage_settings)
            assert await own_redis_client.get(keys.channel_acl(member, chat, "publish")) == b"1"
            for m in sockets:
                for _ in range(2):
                    with pytest.raises(RemoteError) as refused:
                        await m.publish(chat, {"text": "as a viewer"})
                    assert refused.value.code == "forbidden"
                # A viewer still reads the chat: the subscription stays (no push came
                # before the refusals, on the same socket).
                pushes = [m.pushes.get_nowait() for _ in range(m.pushes.qsize())]
                assert [p for p in pushes if p.get("push") == "unsubscribed"] == []
        finally:
            for m in sockets:
                await m.close()


class TestRedoLoop:
    async def test_two_workers_redo_each_pending_invalidation_once(
        self,
        settings: Settings,
        redis: Redis,
        db: async_sessionmaker[AsyncSession],
    ) -> None:
        """Two loops share the rows (SKIP LOCKED): every bump is done exactly once."""
        workspaces = [str(uuid.uuid4()) for _ in range(250)]
        async with db() as session, session.begin():
            session.add_all(
                PendingInvalidation(kind=cache.BUMP, payload={"workspace_id": w})
                for w in workspaces
            )
        loops = [InvalidationRedoer(db, redis, settings, RedoSignal()) for _ in range(2)]
        done = await asyncio.gather(*(loop.run_once() for loop in loops))
        assert sum(done) == len(workspaces)
        assert await pending(db) == 0
        keys = RedisKeys(settings.namespace)
        gens = await redis.mget([keys.key("ws", w, "gen") for w in workspaces])
        assert set(gens) == {b"1"}

    async def test_a_kept_bump_of_many_workspaces_bumps_each_of_them(
        self, settings: Settings, redis: Redis, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """A display name changed while Redis was down: the one row that stands for all
        of the user's workspaces bumps every one of their generations."""
        workspaces = [str(uuid.uuid4()) for _ in range(3)]
        async with db() as session, session.begin():
            session.add(
                PendingInvalidation(kind=cache.BUMP_MANY, payload={"workspace_ids": workspaces})
            )
        loop = InvalidationRedoer(db, redis, settings, RedoSignal())
        assert await loop.run_once() == 1
        assert await pending(db) == 0
        keys = RedisKeys(settings.namespace)
        assert await redis.mget([keys.key("ws", w, "gen") for w in workspaces]) == [b"1"] * 3

    async def test_a_redo_is_idempotent(
        self, settings: Settings, redis: Redis, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """The same forgotten answer deleted twice (two rows) leaves no answer and no row."""
        keys = RedisKeys(settings.namespace)
        ws, user = str(uuid.uuid4()), str(uuid.uuid4())
        answer = keys.channel_acl(user, f"workspace:{ws}", "subscribe")
        await redis.set(answer, b"1")
        async with db() as session, session.begin():
            for _ in range(2):
                session.add(
                    PendingInvalidation(
                        kind="channel_acl", payload={"workspace_id": ws, "user_ids": [user]}
                    )
                )
        loop = InvalidationRedoer(db, redis, settings, RedoSignal())
        assert await loop.run_once() == 2
        assert await redis.get(answer) is None
        assert await pending(db) == 0

    async def test_a_late_redo_follows_the_user_s_current_state(
        self, settings: Settings, redis: Redis, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """A deactivation's row redone after the user was reactivated: not deny-listed."""
        user = await make_user(db, f"r-{uuid.uuid4().hex[:6]}@example.com")  # active
        denied = RedisKeys(settings.namespace).key(*DEACTIVATED_USERS)
        await redis.zadd(denied, {user: 9e9})  # the deactivation's entry, still there
        async with db() as session, session.begin():
            session.add(PendingInvalidation(kind=revocation.USER, payload={"user_id": user}))
        loop = InvalidationRedoer(db, redis, settings, RedoSignal())
        assert await loop.run_once() == 1
        assert await redis.zscore(denied, user) is None

    async def test_a_removal_whose_worker_died_after_the_commit_is_still_redone(
        self, settings: Settings, redis: Redis, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """The change commits, its after-commit work never runs (the worker died): another
        worker's loop deletes the cached "allowed" once the row has settled."""
        keys = RedisKeys(settings.namespace)
        ws, user = uuid.uuid4(), str(uuid.uuid4())
        answer = keys.channel_acl(user, f"workspace:{ws}", "subscribe")
        await redis.set(answer, b"1")
        ctx = Context(
            caller=ANONYMOUS,
            request_id="rid",
            settings=settings,
            redis=redis,
            keys=keys,
            subjects=Subjects(settings.namespace),
            sessions=db,
        )
        acl.membership_changed(ctx, ws, [user], revoked=True)
        await ctx.session.commit()  # the commit, and then nothing: the worker is gone
        await ctx.session.close()
        assert await redis.get(answer) == b"1"
        loop = InvalidationRedoer(db, redis, settings, RedoSignal())

        async def forgotten() -> bool:
            await loop.run_once()
            return await redis.get(answer) is None

        await wait_for(forgotten, timeout=SETTLE_S + 3, what="the answer deleted")
        assert await pending(db) == 0

    async def test_while_redis_fails_the_rows_stay(
        self, settings: Settings, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """A Redis that refuses connections: nothing is redone, nothing is lost."""
        async with db() as session, session.begin():
            session.add(PendingInvalidation(kind=cache.BUMP, payload={"workspace_id": "w"}))
        nowhere = Redis.from_url("redis://127.0.0.1:1/0")  # nothing listens on port 1
        signal = RedoSignal()
        try:
            loop = InvalidationRedoer(db, nowhere, settings, signal)
            assert await loop.run_once() == 0
            assert signal.redis_down
            assert await pending(db) == 1
        finally:
            await nowhere.aclose()


class TestAfterCommitFailures:
    """What an after-commit invalidation that Redis fails does: kept for the redo loop
    whatever the failure; logged once as Redis failing when it is an outage, and with its
    traceback when it is a bug."""

    @staticmethod
    def context(settings: Settings, redis: Redis, db: async_sessionmaker[AsyncSession]) -> Context:
        return Context(
            caller=ANONYMOUS,
            request_id="rid",
            settings=settings,
            redis=redis,
            keys=RedisKeys(settings.namespace),
            subjects=Subjects(settings.namespace),
            sessions=db,
        )

    async def test_a_bump_redis_takes_no_write_for_is_kept_as_an_outage(
        self,
        outage_settings: Settings,
        own_redis_client: Redis,
        db: async_sessionmaker[AsyncSession],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        await own_redis_client.config_set("maxmemory", "1")  # out of memory: no writes
        ctx = self.context(outage_settings, own_redis_client, db)
        cache.WorkspaceCache(ctx, uuid.uuid4()).invalidate_after_commit()
        await ctx.commit()
        await ctx.session.close()
        assert await pending(db) == 1
        assert ctx.resource(REDO_SIGNAL).redis_down
        assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []

    @pytest.mark.parametrize("pipeline", ["MULTI", "plain"])
    async def test_a_pipeline_redis_takes_no_write_for_is_kept_as_an_outage(
        self,
        outage_settings: Settings,
        own_redis_client: Redis,
        db: async_sessionmaker[AsyncSession],
        caplog: pytest.LogCaptureFixture,
        pipeline: str,
    ) -> None:
        """Too few replicas (NOREPLICAS) met in a pipeline — the deny-list's MULTI, the
        bump of many workspaces — is Redis refusing writes, as out of a pipeline: no
        error, no traceback."""
        await own_redis_client.config_set("min-replicas-to-write", "1")
        ctx = self.context(outage_settings, own_redis_client, db)
        if pipeline == "MULTI":
            revocation.sessions_revoked(ctx, str(uuid.uuid4()), [str(uuid.uuid4())])
        else:
            cache.invalidate_all_after_commit(ctx, [uuid.uuid4(), uuid.uuid4()])
        await ctx.commit()
        await ctx.session.close()
        assert await pending(db) == 1
        assert ctx.resource(REDO_SIGNAL).redis_down
        assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []

    async def test_a_bump_that_fails_on_a_bug_is_kept_and_logged_with_its_traceback(
        self,
        settings: Settings,
        redis: Redis,
        db: async_sessionmaker[AsyncSession],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        ctx = self.context(settings, redis, db)
        workspace = uuid.uuid4()
        # The generation is a counter: a hash in its place makes the bump's INCR fail
        # (WRONGTYPE), as a bug would.
        await redis.hset(ctx.keys.key("ws", str(workspace), "gen"), "x", "1")
        cache.WorkspaceCache(ctx, workspace).invalidate_after_commit()
        await ctx.commit()
        await ctx.session.close()
        assert await pending(db) == 1
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert [r.getMessage().split(";")[0] for r in errors] == [
            "an invalidation failed in Redis, not for an outage"
        ]
        assert errors[0].exc_info is not None
        # Redis answers: the worker goes on reading its cache.
        assert not ctx.resource(REDO_SIGNAL).redis_down


async def _dependency_up(url: str, dependency: str) -> float:
    """``hubbub_dependency_up{dependency=...}`` on a scrape of ``url``."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        text = await response.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "hubbub_dependency_up" and sample.labels == {
                "dependency": dependency
            }:
                return sample.value
    raise AssertionError(f"{url} exports no hubbub_dependency_up for {dependency}")


class TestRedisOutageOnMetrics:
    async def test_the_hub_and_a_quiet_worker_export_redis_down_while_it_is(
        self,
        outage_settings: Settings,
        own_redis: EmbeddedRedis,
        aiohttp_server: Any,
        nc: NATS,
    ) -> None:
        """What HubbubDependencyDown and HubbubWorkerDependencyDown read: no request
        needs to run into the outage for the scrapes to show it."""
        settings = outage_settings.model_copy(update={"worker_metrics_port": free_port()})
        async with worker_running(settings, ops.registry_with_tests()):
            hub = await aiohttp_server(create_app(settings, ops.catalog_with_tests()))
            admin = await aiohttp_server(create_admin_app(hub.app))
            on_hub = f"http://127.0.0.1:{admin.port}/metrics"
            on_worker = f"http://{settings.admin_host}:{settings.worker_metrics_port}/metrics"
            assert await _dependency_up(on_hub, "redis") == 1
            assert await _dependency_up(on_worker, "redis") == 1
            assert await _dependency_up(on_worker, "postgresql") == 1

            await asyncio.to_thread(own_redis.stop)
            assert await _dependency_up(on_hub, "redis") == 0
            assert await _dependency_up(on_worker, "redis") == 0
            assert await _dependency_up(on_worker, "postgresql") == 1

            await asyncio.to_thread(own_redis.restart)

            async def back() -> None:
                assert await _dependency_up(on_hub, "redis") == 1
                assert await _dependency_up(on_worker, "redis") == 1

            await eventually(back, timeout=RECOVERY_S)


class TestHubSeesRedisBack:
    async def test_redis_recorded_gone_is_seen_back_without_a_ping_from_outside(
        self,
        outage_settings: Settings,
        own_redis: EmbeddedRedis,
        aiohttp_server: Any,
        nc: NATS,
    ) -> None:
        """A request that ran into the outage records Redis gone (hub/middleware.py);
        the hub's own probe sees it back, with neither /ready nor a scrape polled."""
        hub = await aiohttp_server(create_app(outage_settings, ops.catalog_with_tests()))
        health = hub.app[BUS].health
        await asyncio.to_thread(own_redis.stop)
        with pytest.raises(RedisError) as gone:
            await hub.app[REDIS].ping()
        outage = redis_outage(gone.value)
        assert outage is not None
        assert outage.down
        health.failed(outage, gone.value)  # as the middleware records it
        assert health.is_down("redis")

        await asyncio.to_thread(own_redis.restart)
        await wait_for(
            lambda: not health.is_down("redis"), timeout=RECOVERY_S, what="Redis seen back"
        )


class TestUnknownKinds:
    """A row of a kind this version does not know was written by a newer worker during
    a rolling deploy: it is left for one that knows it, for a while, not dropped."""

    async def test_a_new_rows_unknown_kind_stays_for_a_worker_that_knows_it(
        self, settings: Settings, redis: Redis, db: async_sessionmaker[AsyncSession]
    ) -> None:
        w = str(uuid.uuid4())
        async with db() as session, session.begin():
            session.add(PendingInvalidation(kind="from_a_newer_version", payload={"x": 1}))
            session.add(PendingInvalidation(kind=cache.BUMP, payload={"workspace_id": w}))
        loop = InvalidationRedoer(db, redis, settings, RedoSignal())
        assert await loop.run_once() == 1  # the bump; the other row stays
        async with db() as session:
            rows = (await session.scalars(select(PendingInvalidation))).all()
        assert [r.kind for r in rows] == ["from_a_newer_version"]
        assert (rows[0].due_at - rows[0].created_at).total_seconds() >= UNKNOWN_KIND_RETRY_S
        assert await loop.run_once() == 0  # not due again yet

    async def test_an_unknown_kind_no_worker_took_in_an_hour_is_dropped(
        self, settings: Settings, redis: Redis, db: async_sessionmaker[AsyncSession]
    ) -> None:
        async with db() as session, session.begin():
            session.add(
                PendingInvalidation(
                    kind="from_a_newer_version",
                    payload={"x": 1},
                    created_at=func.now() - timedelta(seconds=UNKNOWN_KIND_KEEP_S + 1),
                )
            )
        loop = InvalidationRedoer(db, redis, settings, RedoSignal())
        assert await loop.run_once() == 1
        assert await pending(db) == 0


class TestRowsRedisFailsForABug:
    """A row whose redo Redis refuses for a reason that is no outage (here a key of the
    wrong type, as a bug would leave) is set aside: the rows behind it are redone, the
    worker reads its cache again, and the bug is logged once with its traceback."""

    async def test_it_is_set_aside_and_the_rows_behind_it_are_redone(
        self,
        settings: Settings,
        redis: Redis,
        db: async_sessionmaker[AsyncSession],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        keys = RedisKeys(settings.namespace)
        bad, good = str(uuid.uuid4()), str(uuid.uuid4())
        await redis.hset(keys.key("ws", bad, "gen"), "x", "1")  # the bump's INCR: WRONGTYPE
        async with db() as session, session.begin():
            session.add(PendingInvalidation(kind=cache.BUMP, payload={"workspace_id": bad}))
            session.add(PendingInvalidation(kind=cache.BUMP, payload={"workspace_id": good}))
            session.add(PendingInvalidation(kind=revocation.SESSIONS, payload={"sids": ["s1"]}))
        signal = RedoSignal()
        signal.down(RuntimeError("Redis went away"))  # as the failed bumps left it
        loop = InvalidationRedoer(db, redis, settings, signal)

        assert await loop.run_once() == 2
        assert await redis.get(keys.key("ws", good, "gen")) == b"1"
        assert await redis.zscore(keys.key(*REVOKED_SESSIONS), "s1") is not None
        assert not signal.redis_down  # the cache is read again
        async with db() as session:
            rows = (await session.scalars(select(PendingInvalidation))).all()
        assert [r.payload for r in rows] == [{"workspace_id": bad}]
        assert (rows[0].due_at - rows[0].created_at).total_seconds() >= FAILED_RETRY_S
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert [r.getMessage().split(";")[0] for r in errors] == [
            "an invalidation failed in Redis, not for an outage"
        ]
        assert errors[0].exc_info is not None

        async with db() as session, session.begin():  # its next try: as if time passed
            await session.execute(
                update(PendingInvalidation).values(
                    created_at=PendingInvalidation.created_at - DUE_AGAIN,
                    due_at=PendingInvalidation.due_at - DUE_AGAIN,
                )
            )
        assert await loop.run_once() == 0
        assert await pending(db) == 1
        assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1  # once

    async def test_one_still_failing_after_an_hour_is_dropped(
        self,
        settings: Settings,
        redis: Redis,
        db: async_sessionmaker[AsyncSession],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        keys = RedisKeys(settings.namespace)
        bad = str(uuid.uuid4())
        await redis.hset(keys.key("ws", bad, "gen"), "x", "1")
        async with db() as session, session.begin():
            session.add(
                PendingInvalidation(
                    kind=cache.BUMP,
                    payload={"workspace_id": bad},
                    created_at=func.now() - timedelta(seconds=FAILED_KEEP_S + 1),
                )
            )
        loop = InvalidationRedoer(db, redis, settings, RedoSignal())
        assert await loop.run_once() == 1
        assert await pending(db) == 0
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1
        assert errors[0].startswith("dropping an invalidation")
        assert "ResponseError" in errors[0]


DUE_AGAIN = timedelta(seconds=FAILED_RETRY_S + 1)


class TestBackInUse:
    """A worker that saw Redis fail reads its cache again only once no kept invalidation
    is left due."""

    async def test_a_kept_row_in_a_full_batch_does_not_end_the_redo_early(
        self, settings: Settings, redis: Redis, db: async_sessionmaker[AsyncSession]
    ) -> None:
        async with db() as session, session.begin():
            session.add(PendingInvalidation(kind="from_a_newer_version", payload={"x": 1}))
            session.add_all(
                PendingInvalidation(kind=cache.BUMP, payload={"workspace_id": str(uuid.uuid4())})
                for _ in range(BATCH + 50)
            )
        signal = RedoSignal()
        signal.down(RuntimeError("Redis went away"))
        loop = InvalidationRedoer(db, redis, settings, signal)
        assert await loop.run_once() == BATCH + 50
        assert await pending(db) == 1  # the unknown kind's, not due
        assert not signal.redis_down

    async def test_a_row_another_worker_holds_keeps_the_cache_bypassed(
        self, settings: Settings, redis: Redis, db: async_sessionmaker[AsyncSession]
    ) -> None:
        async with db() as session, session.begin():
            session.add(PendingInvalidation(kind=cache.BUMP, payload={"workspace_id": "w"}))
        signal = RedoSignal()
        signal.down(RuntimeError("Redis went away"))
        loop = InvalidationRedoer(db, redis, settings, signal)
        async with db() as other, other.begin():  # another worker, in the middle of it
            await other.execute(select(PendingInvalidation).with_for_update())
            assert await loop.run_once() == 0
            assert signal.redis_down
        assert await loop.run_once() == 1
        assert not signal.redis_down


class TestAStuckRedis:
    """Redis takes writes but never answers them (paused, a hung failover): the control
    message that ends access does not wait for the Redis work of the same change (the
    durable row covers Redis); the change's own reply does, until Redis answers."""

    @pytest.fixture
    def outage_settings(self, settings: Settings, own_redis: EmbeddedRedis) -> Settings:
        # Longer than any wait below: a write waits for Redis rather than failing.
        return settings.model_copy(update={"redis_url": own_redis.url, "redis_timeout_s": 60.0})

    @staticmethod
    def deactivation(
        hub: TestServer, tokens: TestTokens, admin: str, user: str
    ) -> asyncio.Task[tuple[int, Any]]:
        """``admin`` deactivating ``user`` over REST, under way."""
        return asyncio.create_task(
            call(
                api(hub),
                "PATCH",
                f"/users/{user}",
                tokens.issue(admin, role="admin"),
                {"is_active": False},
            )
        )

    @pytest.fixture
    async def writes_stuck(
        self, own_redis_client: Redis
    ) -> AsyncIterator[Callable[[], Awaitable[None]]]:
        async def pause() -> None:
            await own_redis_client.execute_command("CLIENT", "PAUSE", "120000", "WRITE")

        yield pause
        await own_redis_client.execute_command("CLIENT", "UNPAUSE")

    async def test_a_deactivation_closes_the_users_access_before_redis_answers(
        self,
        outage_hub: TestServer,
        outage_settings: Settings,
        own_redis_client: Redis,
        db: async_sessionmaker[AsyncSession],
        writes_stuck: Callable[[], Awaitable[None]],
    ) -> None:
        tokens = TestTokens(outage_settings)
        admin = await make_user(db, f"a-{uuid.uuid4().hex[:6]}@example.com", role=Role.ADMIN)
        user = await make_user(db, f"u-{uuid.uuid4().hex[:6]}@example.com")
        token = tokens.issue(user)
        c = HubbubClient(ws_url(outage_hub), token)
        await c.connect()
        revocations = outage_hub.app[REVOCATIONS]
        await writes_stuck()
        deactivating = self.deactivation(outage_hub, tokens, admin, user)
        try:
            await wait_for(lambda: revocations.is_deactivated(user), what="the user denied")
            assert not deactivating.done()  # its Redis work still waits
            assert (await call(api(outage_hub), "GET", "/users/me", token))[0] == 401
            assert await first_close(c) == 4003
        finally:
            await own_redis_client.execute_command("CLIENT", "UNPAUSE")
            status, _ = await deactivating
            await c.close()
        assert status == 200

    async def test_a_removal_unsubscribes_the_member_before_redis_answers(
        self,
        outage_hub: TestServer,
        outage_settings: Settings,
        own_redis_client: Redis,
        db: async_sessionmaker[AsyncSession],
        writes_stuck: Callable[[], Awaitable[None]],
    ) -> None:
        tokens = TestTokens(outage_settings)
        rest = Rest(outage_hub, tokens)
        owner, member, ws = await member_of_a_workspace(rest, db)
        channel = f"workspace:{ws}"
        m = HubbubClient(ws_url(outage_hub), tokens.issue(member))
        await m.connect()
        await m.subscribe(channel)
        await writes_stuck()
        removing = asyncio.create_task(
            call(
                api(outage_hub), "DELETE", f"/workspaces/{ws}/members/{member}", tokens.issue(owner)
            )
        )
        try:

            async def unsubscribed() -> bool:
                while not m.pushes.empty():
                    if m.pushes.get_nowait().get("push") == "unsubscribed":
                        return True
                return False

            await wait_for(unsubscribed, what="the member unsubscribed")
            assert not removing.done()  # its Redis work still waits
        finally:
            await own_redis_client.execute_command("CLIENT", "UNPAUSE")
            status, _ = await removing
            await m.close()
        assert status == 204

    async def test_a_deactivation_sends_both_its_messages_before_its_redis_work(
        self,
        outage_settings: Settings,
        own_redis_client: Redis,
        db: async_sessionmaker[AsyncSession],
        writes_stuck: Callable[[], Awaitable[None]],
    ) -> None:
        """``revocation.user_deactivated`` with the sessions the deactivation ended: the
        sessions' message does not wait behind the user's deny-list write."""
        told: list[str] = []

        async def publish(_subject: str, body: bytes) -> None:
            told.append(orjson.loads(body)["type"])

        ctx = TestAfterCommitFailures.context(outage_settings, own_redis_client, db)
        ctx.publish = publish
        revocation.user_deactivated(ctx, str(uuid.uuid4()), [str(uuid.uuid4())])
        await writes_stuck()
        committing = asyncio.create_task(ctx.commit())
        try:
            await wait_for(lambda: len(told) == 2, what="both messages sent")
            assert told == ["deactivated", "sessions_revoked"]
            assert not committing.done()  # the deny-list writes still wait
        finally:
            await own_redis_client.execute_command("CLIENT", "UNPAUSE")
            await committing
            await ctx.session.close()
        assert await pending(db) == 2  # the durable rows, for the redo loop

    async def test_a_deactivation_tells_the_hubs_its_sessions_ended_before_redis_answers(
        self,
        outage_hub: TestServer,
        outage_settings: Settings,
        own_redis_client: Redis,
        db: async_sessionmaker[AsyncSession],
        writes_stuck: Callable[[], Awaitable[None]],
    ) -> None:
        """Both messages go before the deny-list writes: the sessions' revocation does not
        wait behind the user's (a reactivation meanwhile would let them in again)."""
        tokens = TestTokens(outage_settings)
        admin = await make_user(db, f"a-{uuid.uuid4().hex[:6]}@example.com", role=Role.ADMIN)
        user, _ = await signed_in(outage_hub, db)
        async with db() as session:
            sids = {
                str(sid)
                for sid in await session.scalars(
                    select(AuthSession.id).where(AuthSession.user_id == uuid.UUID(user))
                )
            }
        assert sids
        revocations = outage_hub.app[REVOCATIONS]
        await writes_stuck()
        deactivating = self.deactivation(outage_hub, tokens, admin, user)
        try:
            await wait_for(lambda: sids <= revocations.sessions.keys(), what="sessions revoked")
            assert revocations.is_deactivated(user)
            assert not deactivating.done()  # its Redis work still waits
        finally:
            await own_redis_client.execute_command("CLIENT", "UNPAUSE")
            status, _ = await deactivating
        assert status == 200
