"""The hub's deny-list: loaded from the workers (what is still pending) and Redis, kept
current by control messages on NATS."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
import pytest
from nats.aio.client import Client as NATS
from redis.asyncio import Redis
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.accounts import revocation
from handlers.accounts.models import User
from handlers.invalidations import PendingInvalidation
from hub.revocations import Pending, Revocations, ask_workers
from hubbub.bus import Bus
from hubbub.config import Settings
from hubbub.contracts.control import (
    DEACTIVATED_USERS,
    REVOKED_SESSIONS,
    ControlMessage,
    Deactivated,
    Reactivated,
    SessionsRevoked,
)
from hubbub.contracts.errors import NotFound, Unavailable
from hubbub.contracts.subjects import Subjects
from hubbub.keys import RedisKeys
from tests.support.accounts import make_user
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_for
from workers.app import RunningWorker

NOT_DUE = datetime.now(UTC) + timedelta(hours=1)  # a kept row the redo loop leaves alone


@pytest.fixture
def keys(settings: Settings) -> RedisKeys:
    return RedisKeys(settings.namespace)


@pytest.fixture
def subjects(settings: Settings) -> Subjects:
    return Subjects(settings.namespace)


class Workers:
    """What the workers say is pending (``access.pending``): ``said``, or ``None`` for no
    worker answering. Asked in order with Redis's reads (``log``)."""

    def __init__(self, log: list[str] | None = None) -> None:
        self.said: Pending | None = Pending()
        self.log = log if log is not None else []

    async def __call__(self, timeout: float | None) -> Pending:
        self.log.append("workers")
        if self.said is None:
            raise Unavailable("no worker answered")
        return self.said


@pytest.fixture
def workers() -> Workers:
    return Workers()


@pytest.fixture
async def revocations(
    nc: NATS, redis: Redis, keys: RedisKeys, subjects: Subjects, workers: Workers
) -> AsyncIterator[Revocations]:
    revs = Revocations(nc=nc, redis=redis, keys=keys, subjects=subjects, pending=workers)
    await revs.start()
    yield revs
    await revs.stop()


async def publish(nc: NATS, subjects: Subjects, message: Any) -> None:
    await nc.publish(subjects.control_user(message.user_id), orjson.dumps(message.model_dump()))
    await nc.flush()


def later(seconds: float = 900) -> float:
    return time.time() + seconds


class TestLoading:
    async def test_entries_in_redis_are_denied_from_the_start(
        self, nc: NATS, redis: Redis, keys: RedisKeys, subjects: Subjects
    ) -> None:
        await redis.zadd(keys.key(*REVOKED_SESSIONS), {"s1": later()})
        await redis.zadd(keys.key(*DEACTIVATED_USERS), {"u2": later()})
        revs = Revocations(nc=nc, redis=redis, keys=keys, subjects=subjects, pending=Workers())
        await revs.start()
        try:
            assert (
                revs.is_revoked("s1", "u1"),
                revs.is_revoked("s9", "u2"),
                revs.is_revoked("s9", "u9"),
            ) == (True, True, False)
        finally:
            await revs.stop()

    async def test_expired_entries_in_redis_are_not_loaded(
        self, revocations: Revocations, redis: Redis, keys: RedisKeys
    ) -> None:
        await redis.zadd(keys.key(*REVOKED_SESSIONS), {"old": time.time() - 1})
        await revocations.reload()
        assert revocations.sessions == {}

    async def test_a_reload_takes_what_was_missed_and_drops_what_was_undone(
        self, revocations: Revocations, redis: Redis, keys: RedisKeys
    ) -> None:
        """After a NATS outage: a revocation published meanwhile, a reactivation too (a
        deactivation Redis showed, and shows no more)."""
        await redis.zadd(keys.key(*DEACTIVATED_USERS), {"u1": later()})
        await revocations.reload()
        assert revocations.is_revoked("s", "u1")
        await redis.zrem(keys.key(*DEACTIVATED_USERS), "u1")  # reactivated, unheard
        await redis.zadd(keys.key(*REVOKED_SESSIONS), {"missed": later()})
        await revocations.reload()
        assert (revocations.is_revoked("missed", "x"), revocations.is_revoked("s", "u1")) == (
            True,
            False,
        )

    async def test_a_reload_gives_back_no_access_a_message_took(
        self, revocations: Revocations, redis: Redis, keys: RedisKeys
    ) -> None:
        """The worker's write to Redis failed (or Redis lost it), the message came: the
        session stays revoked, and the user deactivated until Redis shows it."""
        revocations.apply(SessionsRevoked(user_id="u1", sids=("s1",), until=later()))
        revocations.apply(Deactivated(user_id="u2", until=later()))
        await revocations.reload()
        assert (revocations.is_revoked("s1", "u1"), revocations.is_revoked("s9", "u2")) == (
            True,
            True,
        )
        await redis.zadd(keys.key(*DEACTIVATED_USERS), {"u2": later()})  # the redo
        await revocations.reload()
        await redis.zrem(keys.key(*DEACTIVATED_USERS), "u2")  # then reactivated, unheard
        await revocations.reload()
        assert not revocations.is_revoked("s9", "u2")

    async def test_a_deactivation_arriving_during_a_load_that_shows_it_is_confirmed(
        self, revocations: Revocations, redis: Redis, keys: RedisKeys, nc: NATS, subjects: Subjects
    ) -> None:
        """Shown by that load: a later load without it is a reactivation (missed)."""
        await redis.zadd(keys.key(*DEACTIVATED_USERS), {"u3": later()})
        original_read = revocations._read

        async def read_then_hear(parts: tuple[str, str], now: float) -> dict[str, float]:
            snapshot = await original_read(parts, now)
            if parts == DEACTIVATED_USERS:
                await publish(nc, subjects, Deactivated(user_id="u3", until=later()))
                await wait_for(lambda: revocations.is_revoked("s", "u3"), what="the message")
            return snapshot

        revocations._read = read_then_hear  # type: ignore[method-assign]
        await revocations.reload()
        revocations._read = original_read  # type: ignore[method-assign]
        await redis.zrem(keys.key(*DEACTIVATED_USERS), "u3")  # reactivated, unheard
        await revocations.reload()
        assert not revocations.is_revoked("s", "u3")

    async def test_a_reactivation_message_ends_a_deactivation_redis_never_showed(
        self, revocations: Revocations
    ) -> None:
        revocations.apply(Deactivated(user_id="u2", until=later()))
        revocations.apply(Reactivated(user_id="u2"))
        await revocations.reload()
        assert not revocations.is_revoked("s9", "u2")

    async def test_a_message_arriving_during_a_load_survives_it(
        self, revocations: Revocations, nc: NATS, subjects: Subjects
    ) -> None:
        """The snapshot replaces the tables; what arrived meanwhile is applied again."""
        original_read = revocations._read

        async def slow_read(parts: tuple[str, str], now: float) -> dict[str, float]:
            snapshot = await original_read(parts, now)
            await publish(
                nc, subjects, SessionsRevoked(user_id="u", sids=("s-new",), until=later())
            )
            await wait_for(lambda: revocations.is_revoked("s-new", "u"), what="the message")
            return snapshot  # taken before the message: without it

        revocations._read = slow_read  # type: ignore[method-assign]
        await revocations.reload()
        assert revocations.is_revoked("s-new", "u")


class TestWhatIsPending:
    """What the workers say is taken away but not in Redis yet (its write refused, or
    not done yet): denied as if Redis showed it."""

    async def test_pending_sessions_and_users_are_denied_though_redis_shows_neither(
        self, revocations: Revocations, workers: Workers
    ) -> None:
        workers.said = Pending(frozenset({"s1"}), frozenset({"u2"}), until=later())
        await revocations.reload()
        assert (
            revocations.is_revoked("s1", "u1"),
            revocations.is_revoked("s9", "u2"),
            revocations.is_revoked("s9", "u9"),
        ) == (True, True, False)

    async def test_a_pending_deactivation_holds_until_redis_shows_it_then_follows_redis(
        self, revocations: Revocations, workers: Workers, redis: Redis, keys: RedisKeys
    ) -> None:
        workers.said = Pending(users=frozenset({"u2"}), until=later())
        await revocations.reload()
        workers.said = Pending()  # an answer that did not come through: still denied
        await revocations.reload()
        assert revocations.is_revoked("s", "u2")
        await redis.zadd(keys.key(*DEACTIVATED_USERS), {"u2": later()})  # redone
        await revocations.reload()
        await redis.zrem(keys.key(*DEACTIVATED_USERS), "u2")  # reactivated, unheard
        await revocations.reload()
        assert not revocations.is_revoked("s", "u2")

    async def test_channels_pending_are_unsettled_while_the_workers_name_them(
        self, revocations: Revocations, workers: Workers
    ) -> None:
        workers.said = Pending(channels=frozenset({("u1", "workspace:w")}))
        await revocations.reload()
        assert (
            revocations.unsettled("u1", "workspace:w"),
            revocations.unsettled("u1", "chat:w"),
            revocations.unsettled("u2", "workspace:w"),
        ) == (True, False, False)
        workers.said = Pending()  # deleted from Redis since
        await revocations.reload()
        assert not revocations.unsettled("u1", "workspace:w")

    async def test_the_workers_are_asked_before_redis_is_read(
        self, revocations: Revocations, workers: Workers
    ) -> None:
        """A row redone (and deleted) in between is in Redis by the time it is read."""
        original_read = revocations._read

        async def read(parts: tuple[str, str], now: float) -> dict[str, float]:
            workers.log.append("redis")
            return await original_read(parts, now)

        revocations._read = read  # type: ignore[method-assign]
        workers.log.clear()
        await revocations.reload()
        assert workers.log == ["workers", "redis", "redis"]

    async def test_a_load_without_the_workers_fails_and_keeps_what_it_read(
        self, revocations: Revocations, workers: Workers, redis: Redis, keys: RedisKeys
    ) -> None:
        """Not synced, and what was pending before stays unsettled; Redis is merged."""
        workers.said = Pending(channels=frozenset({("u1", "chat:w")}))
        await revocations.reload()
        workers.said = None
        await redis.zadd(keys.key(*REVOKED_SESSIONS), {"s1": later()})
        with pytest.raises(Unavailable):
            await revocations.reload()
        assert (revocations.synced, revocations.is_revoked("s1", "u")) == (False, True)
        assert revocations.unsettled("u1", "chat:w")

    async def test_a_hub_that_cannot_ask_at_start_is_behind_until_it_can(
        self, nc: NATS, redis: Redis, keys: RedisKeys, subjects: Subjects
    ) -> None:
        workers = Workers()
        workers.said = None
        revs = Revocations(nc=nc, redis=redis, keys=keys, subjects=subjects, pending=workers)
        caught_up: list[bool] = []
        revs.on_caught_up.append(lambda: caught_up.append(True))
        await revs.start()
        try:
            assert (revs.synced, revs.behind) == (False, True)
            workers.said = Pending(frozenset({"s1"}), until=later())
            await wait_for(lambda: not revs.behind, what="caught up")
            assert (revs.synced, revs.is_revoked("s1", "u"), caught_up) == (True, True, [True])
        finally:
            await revs.stop()

    async def test_after_a_reconnect_it_is_behind_until_the_workers_answer(
        self, revocations: Revocations, workers: Workers
    ) -> None:
        workers.said = None
        await revocations.after_reconnect()  # in the background: returns at once
        assert revocations.behind
        workers.said = Pending(frozenset({"missed"}), until=later())
        await wait_for(lambda: not revocations.behind, what="caught up")
        assert revocations.is_revoked("missed", "u")


class TestAskingOlderWorkers:
    async def test_workers_without_the_question_leave_it_to_redis_with_one_warning(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A rolling deploy, hubs first: what Redis shows is all there is, as before."""

        class OlderWorkers:
            async def request(self, *_: Any, **__: Any) -> Any:
                raise NotFound("unknown operation 'access.pending'")

        ask = ask_workers(cast(Bus, OlderWorkers()))
        assert (await ask(None), await ask(None)) == (Pending(), Pending())
        said = [r for r in caplog.records if r.name == "hub.revocations"]
        assert [r.levelno for r in said] == [logging.WARNING]


class TestControlMessages:
    async def test_revoked_sessions_are_denied(
        self, revocations: Revocations, nc: NATS, subjects: Subjects
    ) -> None:
        await publish(nc, subjects, SessionsRevoked(user_id="u1", sids=("s1", "s2"), until=later()))
        await wait_for(lambda: revocations.is_revoked("s2", "u1"))
        assert revocations.is_revoked("s3", "u1") is False

    async def test_a_deactivated_user_is_denied_in_every_session(
        self, revocations: Revocations, nc: NATS, subjects: Subjects
    ) -> None:
        await publish(nc, subjects, Deactivated(user_id="u1", until=later()))
        await wait_for(lambda: revocations.is_revoked("any-session", "u1"))

    async def test_a_reactivated_user_is_no_longer_denied(
        self, revocations: Revocations, nc: NATS, subjects: Subjects
    ) -> None:
        await publish(nc, subjects, Deactivated(user_id="u1", until=later()))
        await publish(nc, subjects, Reactivated(user_id="u1"))
        await wait_for(lambda: not revocations.is_revoked("s", "u1") and not revocations.users)

    async def test_an_entry_past_its_time_no_longer_denies(self, revocations: Revocations) -> None:
        revocations.apply(SessionsRevoked(user_id="u", sids=("s",), until=time.time() - 1))
        assert revocations.is_revoked("s", "u") is False

    async def test_prune_drops_entries_past_their_time(self, revocations: Revocations) -> None:
        revocations.apply(SessionsRevoked(user_id="u", sids=("old",), until=time.time() - 1))
        revocations.apply(SessionsRevoked(user_id="u", sids=("new",), until=later()))
        assert (revocations.prune(), list(revocations.sessions)) == (1, ["new"])

    async def test_a_malformed_message_is_ignored(
        self, revocations: Revocations, nc: NATS, subjects: Subjects
    ) -> None:
        await nc.publish(subjects.control_user("u1"), b'{"type": "explode"}')
        await publish(nc, subjects, Deactivated(user_id="u1", until=later()))
        await wait_for(lambda: revocations.is_revoked("s", "u1"))

    async def test_another_namespaces_messages_are_not_heard(
        self, revocations: Revocations, nc: NATS, subjects: Subjects
    ) -> None:
        """A sentinel in our namespace, sent after on the same connection, is the barrier:
        NATS delivers one connection's messages in order."""
        other = Subjects("elsewhere")
        await publish(nc, other, Deactivated(user_id="u1", until=later()))
        await publish(nc, subjects, Deactivated(user_id="sentinel", until=later()))
        await wait_for(lambda: revocations.is_revoked("s", "sentinel"), what="the sentinel")
        assert revocations.is_revoked("s", "u1") is False


class TestListeners:
    async def test_listeners_hear_every_message_sync_or_async(
        self, revocations: Revocations, nc: NATS, subjects: Subjects
    ) -> None:
        heard: list[str] = []

        def sync_listener(message: ControlMessage) -> None:
            heard.append(f"sync:{message.type}")

        async def async_listener(message: ControlMessage) -> None:
            heard.append(f"async:{message.type}")

        revocations.listeners.extend([sync_listener, async_listener])
        await publish(nc, subjects, Deactivated(user_id="u1", until=later()))
        await wait_for(lambda: len(heard) == 2)
        assert heard == ["sync:deactivated", "async:deactivated"]

    async def test_a_failing_listener_does_not_stop_the_others(
        self, revocations: Revocations, nc: NATS, subjects: Subjects
    ) -> None:
        heard: list[ControlMessage] = []

        def broken(message: ControlMessage) -> None:
            raise RuntimeError("boom")

        revocations.listeners.extend([broken, heard.append])
        await publish(nc, subjects, Reactivated(user_id="u1"))
        await wait_for(lambda: len(heard) == 1)


class TestHubWiring:
    async def test_the_hub_reloads_its_deny_list_after_a_nats_reconnect(
        self,
        settings: Settings,
        aiohttp_client: Any,
        redis: Redis,
        keys: RedisKeys,
        worker: RunningWorker,
    ) -> None:
        from hub.app import create_app
        from hub.state import ON_NATS_RECONNECTED, REVOCATIONS

        client = await aiohttp_client(create_app(settings))
        app = client.server.app
        await redis.zadd(keys.key(*REVOKED_SESSIONS), {"while-away": later()})
        for hook in app[ON_NATS_RECONNECTED]:
            await hook()
        revocations = app[REVOCATIONS]
        assert revocations.behind  # until the load in the background has succeeded
        await wait_for(lambda: not revocations.behind, what="reloaded")
        assert revocations.is_revoked("while-away", "u")

    async def test_the_hub_denies_what_the_workers_say_is_pending(
        self,
        settings: Settings,
        aiohttp_client: Any,
        db: async_sessionmaker[AsyncSession],
        worker: RunningWorker,
    ) -> None:
        """Revoked while Redis refused the write: only PostgreSQL has it (kept there, not
        due for a while, so that the worker's redo loop leaves it alone)."""
        from hub.app import create_app
        from hub.state import REVOCATIONS

        user = await make_user(db, f"d-{uuid.uuid4().hex[:6]}@example.com")
        async with db() as session, session.begin():
            await session.execute(
                sql_update(User).where(User.id == uuid.UUID(user)).values(is_active=False)
            )
            for kind, payload in [
                (revocation.SESSIONS, {"sids": ["s-pending"]}),
                (revocation.USER, {"user_id": user}),
            ]:
                session.add(PendingInvalidation(kind=kind, payload=payload, due_at=NOT_DUE))
        client = await aiohttp_client(create_app(settings))
        revocations = client.server.app[REVOCATIONS]
        assert (revocations.is_revoked("s-pending", "u"), revocations.is_deactivated(user)) == (
            True,
            True,
        )


def own_url(settings: Settings) -> str:
    assert settings.redis_url is not None
    return settings.redis_url


class TestStartingWithoutRedis:
    """A hub starts while Redis is down (docs/architecture.md: hubs keep working without
    it), not ready until its deny-list has loaded — as after a NATS reconnect."""

    @pytest.fixture
    async def redis_link(self, settings: Settings) -> AsyncIterator[TcpProxy]:
        proxy = TcpProxy.to_url(settings.redis_url or "")
        await proxy.start()
        yield proxy
        await proxy.stop()

    @pytest.fixture
    async def nats_link(self, settings: Settings) -> AsyncIterator[TcpProxy]:
        proxy = TcpProxy.to_url(settings.nats_url or "")
        await proxy.start()
        yield proxy
        await proxy.stop()

    async def test_the_hub_starts_behind_and_catches_up_once_redis_answers(
        self,
        settings: Settings,
        aiohttp_client: Any,
        redis: Redis,
        keys: RedisKeys,
        redis_link: TcpProxy,
        caplog: pytest.LogCaptureFixture,
        worker: RunningWorker,
    ) -> None:
        from hub.app import create_app
        from hub.state import REVOCATIONS

        own = settings.model_copy(update={"redis_url": redis_link.in_place_of(own_url(settings))})
        await redis_link.cut()
        caplog.set_level(logging.INFO)
        client = await aiohttp_client(create_app(own))
        revocations = client.server.app[REVOCATIONS]
        ready = await client.get("/api/v1/ready")
        assert (ready.status, (await ready.json())["components"]["deny_list"]) == (
            503,
            "unavailable",
        )
        assert (revocations.synced, revocations.behind) == (False, True)
        said = [r for r in caplog.records if r.name == "hub.revocations"]
        assert [(r.levelno, r.getMessage().split(",")[0]) for r in said] == [
            (logging.WARNING, "deny-list not loaded")
        ]
        assert [r for r in caplog.records if r.exc_info] == []

        await redis.zadd(keys.key(*REVOKED_SESSIONS), {"before-start": later()})
        await redis_link.restore()
        await wait_for(lambda: not revocations.behind, timeout=15, what="caught up")
        assert revocations.is_revoked("before-start", "u")

    async def test_a_reconnect_while_redis_is_down_is_one_line_without_a_traceback(
        self,
        settings: Settings,
        aiohttp_client: Any,
        redis_link: TcpProxy,
        nats_link: TcpProxy,
        caplog: pytest.LogCaptureFixture,
        worker: RunningWorker,
    ) -> None:
        from hub.app import create_app

        own = settings.model_copy(
            update={
                "redis_url": redis_link.in_place_of(own_url(settings)),
                "nats_url": nats_link.in_place_of(settings.nats_url or ""),
            }
        )
        await aiohttp_client(create_app(own))
        caplog.set_level(logging.INFO)
        await redis_link.cut()
        await nats_link.cut()
        await nats_link.restore()

        def resync_failures() -> list[logging.LogRecord]:
            return [
                r
                for r in caplog.records
                if "after a NATS reconnect" in r.getMessage() and r.levelno >= logging.WARNING
            ]

        await wait_for(resync_failures, timeout=15, what="the reconnect's re-sync fails")
        assert [r.levelno for r in resync_failures()] == [logging.WARNING]
        assert [r for r in caplog.records if r.exc_info] == []
