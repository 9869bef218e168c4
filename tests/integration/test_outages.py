"""Dependency outages are 503 with Retry-After, logged once each way, never 500.

Each test runs a worker and a hub against a server of its own — PostgreSQL, Redis or
NATS — that it stops and starts again on the same port; the session-wide servers the
other tests use are never stopped.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cli.embedded import EmbeddedNats, EmbeddedPostgres, EmbeddedRedis
from handlers.outbox import OutboxEvent
from hub.app import create_app
from hub.health import READY_REUSE_S
from hub.state import NATS_CONN, REVOCATIONS
from hubbub.config import Settings
from tests.support import ops
from tests.support.services import Databases
from tests.support.waiting import eventually, wait_for
from workers.app import RunningWorker, worker_running
from workers.relay import OutboxRelay

CALLS = 8  # requests made while a dependency is down


class Client:
    """Plain HTTP to a hub, answering (status, headers, body)."""

    def __init__(self, server: TestServer) -> None:
        self.base = f"http://127.0.0.1:{server.port}/api/v1"
        self.app = server.app
        self.worker: RunningWorker | None = None

    async def __call__(
        self, method: str, path: str, json: Any = None
    ) -> tuple[int, dict[str, str], Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method, self.base + path, json=json, timeout=aiohttp.ClientTimeout(total=20)
            ) as response,
        ):
            body = await response.json(content_type=None)
            return response.status, dict(response.headers), body

    async def emit(self) -> tuple[int, dict[str, str], Any]:
        """A request whose handler writes to PostgreSQL (an outbox row)."""
        return await self("POST", "/test/emit", {"workspace": "w1", "note": "n"})


def records(caplog: pytest.LogCaptureFixture, level: int, start: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == level and r.getMessage().startswith(start)
    ]


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info]


async def assert_unavailable(response: tuple[int, dict[str, str], Any]) -> None:
    status, headers, body = response
    assert status == 503, (status, body)
    assert body["code"] == "unavailable"
    assert body["details"]["retry_after"] >= 1
    assert int(headers["Retry-After"]) >= 1


@pytest.fixture
async def stack(settings: Settings, aiohttp_server: Any) -> AsyncIterator[Any]:
    """``await stack(settings)``: a worker and a hub on ``settings``, stopped at the end."""
    stops: list[Any] = []

    async def start(own: Settings) -> Client:
        running = worker_running(own, ops.registry_with_tests())
        worker = await running.__aenter__()
        stops.append(running)
        server: TestServer = await aiohttp_server(create_app(own, ops.catalog_with_tests()))
        client = Client(server)
        client.worker = worker
        return client

    yield start
    for running in reversed(stops):
        await running.__aexit__(None, None, None)


class TestPostgresOutage:
    @pytest.fixture
    async def own_postgres(self, tmp_path: Path) -> AsyncIterator[tuple[EmbeddedPostgres, str]]:
        server = EmbeddedPostgres(tmp_path / "own-pg", database="postgres", durable=False)
        url = await asyncio.to_thread(server.start)
        databases = Databases(url)
        await databases.create_template()
        database_url = await databases.create()
        yield server, database_url
        await asyncio.to_thread(server.stop)

    async def test_calls_answer_503_while_it_is_down_and_succeed_once_it_is_back(
        self,
        settings: Settings,
        own_postgres: tuple[EmbeddedPostgres, str],
        stack: Any,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Stopped: every call is 503 `unavailable` with Retry-After, the worker logs one
        warning and no traceback. Started again: calls succeed, one line says it is back,
        and no request fails on a connection pooled before the restart."""
        server, database_url = own_postgres
        call = await stack(settings.model_copy(update={"database_url": database_url}))
        assert (await call.emit())[0] == 200
        assert (await call("GET", "/ready"))[0] == 200

        caplog.set_level(logging.INFO)
        await asyncio.to_thread(server.stop)
        for _ in range(CALLS):
            await assert_unavailable(await call.emit())
        register = await call(
            "POST",
            "/auth/register",
            {"email": "a@example.com", "password": "a long passphrase", "display_name": "A"},
        )
        await assert_unavailable(register)

        async def unready() -> tuple[int, dict[str, str], Any]:
            ready = await call("GET", "/ready")
            assert ready[0] == 503, ready
            return ready

        # Within READY_REUSE_S: the check made before the outage may still stand.
        ready = await eventually(unready, timeout=READY_REUSE_S + 5)
        assert ready[1]["Retry-After"] == "1"
        assert "postgres" in ready[2]["failing"]
        assert records(caplog, logging.WARNING, "postgresql went away") != []
        assert len(records(caplog, logging.WARNING, "postgresql went away")) == 1
        assert records(caplog, logging.ERROR, "") == []
        assert tracebacks(caplog) == []

        await asyncio.to_thread(server.start)

        async def back() -> None:
            assert (await call.emit())[0] == 200

        await eventually(back, timeout=15)
        for _ in range(CALLS):  # none meets a connection the restart closed
            assert (await call.emit())[0] == 200

        async def logged_back() -> None:
            assert len(records(caplog, logging.INFO, "postgresql came back")) == 1

        await eventually(logged_back, timeout=5)
        assert len(records(caplog, logging.WARNING, "postgresql went away")) == 1
        assert tracebacks(caplog) == []


class TestRedisOutage:
    @pytest.fixture
    async def own_redis(self, tmp_path: Path) -> AsyncIterator[EmbeddedRedis]:
        server = EmbeddedRedis(tmp_path / "own-redis")
        await asyncio.to_thread(server.start)
        yield server
        await asyncio.to_thread(server.stop)

    async def test_a_hub_that_may_have_missed_revocations_is_unready_until_it_caught_up(
        self, settings: Settings, own_redis: EmbeddedRedis, stack: Any
    ) -> None:
        """Reconnected to NATS while Redis is down, a hub cannot load the revocations it
        may have missed: a token revoked meanwhile could pass here, so it is not ready
        (only it: the others' links held). Redis back, the load it keeps trying catches
        up, and it is ready again by itself."""
        own = settings.model_copy(update={"redis_url": own_redis.url, "redis_timeout_s": 1.0})
        call = await stack(own)
        revocations = call.app[REVOCATIONS]
        await asyncio.to_thread(own_redis.stop)
        await revocations.after_reconnect()  # what a NATS reconnect runs: loads in the background
        status, headers, body = await call("GET", "/ready")
        assert (status, body["failing"]) == (503, ["deny_list"])
        assert body["components"]["redis"] == "degraded"
        assert "Retry-After" in headers
        await asyncio.to_thread(own_redis.start)

        async def ready_again() -> None:
            status, _, body = await call("GET", "/ready")
            assert (status, body["components"]["deny_list"]) == (200, "ok")

        await eventually(ready_again, timeout=15)

    async def test_register_and_login_work_without_redis_and_rate_limits_still_count(
        self,
        settings: Settings,
        own_redis: EmbeddedRedis,
        stack: Any,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Rate limits fall back to the worker's own memory (docs/architecture.md, "When a
        dependency is down"): register and login succeed, one warning says so, a client
        past the login limit still gets 429, and one line says when Redis answers again.
        Never a 500."""
        own = settings.model_copy(update={"redis_url": own_redis.url, "redis_timeout_s": 1.0})
        call = await stack(own)
        password = "a long passphrase"
        caplog.set_level(logging.INFO)
        await asyncio.to_thread(own_redis.stop)

        email = f"r{secrets.token_hex(3)}@example.com"
        status, _, body = await call(
            "POST", "/auth/register", {"email": email, "password": password, "display_name": "R"}
        )
        assert status == 202, body
        status, _, body = await call("POST", "/auth/login", {"email": email, "password": password})
        assert status == 200, body
        assert "access_token" in body
        assert len(records(caplog, logging.WARNING, "rate limits count per worker")) == 1

        # The login limits still hold, counted in the worker's memory.
        limit = own.rate_login_account_ip.count
        statuses = []
        for _ in range(limit + 1):
            status, _headers, _ = await call(
                "POST", "/auth/login", {"email": email, "password": "wrong password"}
            )
            statuses.append(status)
        assert 500 not in statuses
        assert statuses[-1] == 429

        # Every feature falls back without Redis: the hub stays ready (a load balancer
        # must not pull every hub at once), and says Redis is degraded.
        ready = await call("GET", "/ready")
        assert ready[0] == 200, ready
        assert ready[2]["status"] == "ok"
        assert ready[2]["components"]["redis"] == "degraded"
        assert "failing" not in ready[2]
        assert tracebacks(caplog) == []

        await asyncio.to_thread(own_redis.start)

        async def shared_again() -> None:
            other = f"s{secrets.token_hex(3)}@example.com"
            status, _, _ = await call(
                "POST",
                "/auth/register",
                {"email": other, "password": password, "display_name": "S"},
            )
            assert status == 202
            assert records(caplog, logging.INFO, "rate limits are shared again") != []

        await eventually(shared_again, timeout=15)
        assert len(records(caplog, logging.WARNING, "rate limits count per worker")) == 1
        assert tracebacks(caplog) == []

    @pytest.mark.parametrize(
        "refusal",
        [
            pytest.param(("maxmemory", "1"), id="out-of-memory"),
            pytest.param(("min-replicas-to-write", "1"), id="too-few-replicas"),
        ],
    )
    async def test_sign_in_works_while_redis_takes_no_writes(
        self,
        settings: Settings,
        own_redis: EmbeddedRedis,
        stack: Any,
        caplog: pytest.LogCaptureFixture,
        refusal: tuple[str, str],
    ) -> None:
        """A Redis that answers but refuses every write — out of memory under
        ``noeviction`` (OOM), too few replicas (NOREPLICAS; a failed save, MISCONF, is
        the same kind of reply) — is Redis away for the rate limits: they count in the
        worker's memory, with one warning and one line when Redis takes writes again.
        Register and login succeed; never a 500, no traceback."""
        own = settings.model_copy(update={"redis_url": own_redis.url, "redis_timeout_s": 1.0})
        call = await stack(own)
        password = "a long passphrase"
        caplog.set_level(logging.INFO)
        admin = Redis.from_url(own_redis.url)
        try:
            await admin.config_set(*refusal)
            with pytest.raises(RedisError):
                await admin.set("probe", b"1")  # it takes no writes now

            email = f"w{secrets.token_hex(3)}@example.com"
            status, _, body = await call(
                "POST",
                "/auth/register",
                {"email": email, "password": password, "display_name": "W"},
            )
            assert status == 202, body
            status, _, body = await call(
                "POST", "/auth/login", {"email": email, "password": password}
            )
            assert status == 200, body
            status, _, body = await call(
                "POST", "/auth/login", {"email": email, "password": "wrong password"}
            )
            assert status == 401, body
            assert len(records(caplog, logging.WARNING, "rate limits count per worker")) == 1
            assert tracebacks(caplog) == []

            await admin.config_set(refusal[0], "0")
            status, _, body = await call(
                "POST", "/auth/login", {"email": email, "password": password}
            )
            assert status == 200, body
            assert len(records(caplog, logging.INFO, "rate limits are shared again")) == 1
        finally:
            await admin.aclose()
        assert len(records(caplog, logging.WARNING, "rate limits count per worker")) == 1
        assert tracebacks(caplog) == []


class TestNatsOutageSeenFromTheHub:
    @pytest.fixture
    async def own_nats(self, tmp_path: Path) -> AsyncIterator[EmbeddedNats]:
        server = EmbeddedNats(tmp_path / "own-nats")
        await asyncio.to_thread(server.start)
        yield server
        await asyncio.to_thread(server.stop)

    async def test_calls_answer_503_at_once_and_succeed_after_it_is_back(
        self,
        settings: Settings,
        own_nats: EmbeddedNats,
        stack: Any,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """The hub's NATS connection is reconnecting: 503 with Retry-After within a
        fraction of the 10 s deadline, not a 504 at its end; then calls succeed again."""
        call = await stack(settings.model_copy(update={"nats_url": own_nats.url}))
        assert (await call.emit())[0] == 200
        caplog.set_level(logging.INFO)

        await asyncio.to_thread(own_nats.stop)
        nc = call.app[NATS_CONN]
        await wait_for(lambda: _false(nc.is_connected), timeout=5, what="the hub sees NATS gone")
        loop = asyncio.get_running_loop()
        for _ in range(CALLS):
            start = loop.time()
            await assert_unavailable(await call.emit())
            assert loop.time() - start < 5.0  # half the deadline: not a wait for it

        await asyncio.to_thread(own_nats.start)

        async def back() -> None:
            assert (await call.emit())[0] == 200

        await eventually(back, timeout=20)
        assert tracebacks(caplog) == []


async def _false(value: bool) -> bool:
    return not value


async def _paused_relay(
    settings: Settings,
    own_nats: EmbeddedNats,
    stack: Any,
    db: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> OutboxRelay:
    """A stack on ``own_nats``, stopped with an event committed meanwhile: the worker's
    relay, once it has logged that it paused (``caplog`` records from INFO on)."""
    call = await stack(settings.model_copy(update={"nats_url": own_nats.url}))
    assert call.worker is not None
    relay: OutboxRelay = call.worker.relay
    caplog.set_level(logging.INFO)
    await asyncio.to_thread(own_nats.stop)
    async with db() as session, session.begin():
        session.add(OutboxEvent(channel="public:news", event_type="t.x", payload={"id": "e-1"}))
    relay.kick()

    async def paused() -> None:
        assert records(caplog, logging.WARNING, "outbox relay paused") != []

    await eventually(paused, timeout=15)
    return relay


class TestNatsOutageSeenFromTheRelay:
    @pytest.fixture
    async def own_nats(self, tmp_path: Path) -> AsyncIterator[EmbeddedNats]:
        server = EmbeddedNats(tmp_path / "own-nats")
        await asyncio.to_thread(server.start)
        yield server
        await asyncio.to_thread(server.stop)

    async def test_the_relay_pauses_once_and_publishes_what_waited_when_it_is_back(
        self,
        settings: Settings,
        own_nats: EmbeddedNats,
        stack: Any,
        db: async_sessionmaker[AsyncSession],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Events committed while JetStream is away: one "paused" line (not a traceback
        per poll), and once it is back they go out and one "resumed" line says so."""
        relay = await _paused_relay(settings, own_nats, stack, db, caplog)
        published = relay.published
        await asyncio.to_thread(own_nats.start)

        async def resumed() -> None:
            assert relay.published > published
            assert records(caplog, logging.INFO, "outbox relay resumed") != []

        await eventually(resumed, timeout=30)
        assert len(records(caplog, logging.WARNING, "outbox relay paused")) == 1
        assert tracebacks(caplog) == []

    async def test_a_relay_left_nothing_to_publish_still_says_when_it_is_back(
        self,
        settings: Settings,
        own_nats: EmbeddedNats,
        stack: Any,
        db: async_sessionmaker[AsyncSession],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """The pass that failed gave up the lead: by the time JetStream is back, another
        relay may have published the rows, and this one has nothing to publish. It
        still says "resumed", once JetStream answers, rather than staying paused in the
        log for good."""
        relay = await _paused_relay(settings, own_nats, stack, db, caplog)
        async with db() as session, session.begin():  # what another relay would have done
            await session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.published_at.is_(None))
                .values(published_at=func.now())
            )
        published = relay.published
        await asyncio.to_thread(own_nats.start)

        async def resumed() -> None:
            assert records(caplog, logging.INFO, "outbox relay resumed") != []

        await eventually(resumed, timeout=30)
        assert relay.published == published  # it said so without publishing anything
        assert len(records(caplog, logging.WARNING, "outbox relay paused")) == 1
        assert tracebacks(caplog) == []
