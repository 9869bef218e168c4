"""Fixtures: real PostgreSQL, NATS and Redis for the whole session; isolated data per test."""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop
from aiohttp.test_utils import TestClient
from nats.aio.client import Client as NATS
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.db import create_engine, session_factory
from handlers.worker_resources import Resources
from hub.app import create_app
from hubbub.bus import Bus
from hubbub.callers import CallerSigner
from hubbub.config import Environment, Settings
from hubbub.contracts.subjects import Subjects
from hubbub.keys import RedisKeys
from hubbub.logs import install_request_id_factory
from hubbub.natsconn import connect_nats
from hubbub.streams import delete_streams, ensure_streams
from tests.support import ops
from tests.support.hub_server import HubTestServer
from tests.support.services import Databases, ServiceUrls, running_services
from workers.app import RunningWorker, worker_running

TEST_SECRET = "test-secret-" + "x" * 40


def pytest_configure(config: pytest.Config) -> None:
    """Each run gets a temp folder of its own: pytest's shared numbered folders are pruned
    by *other* runs, which would pull the embedded servers' data from under this one."""
    if config.option.basetemp is None:
        config.option.basetemp = tempfile.mkdtemp(prefix="hubbub-tests-")
        config.add_cleanup(lambda: shutil.rmtree(config.option.basetemp, ignore_errors=True))


install_request_id_factory()


# Tests run on uvloop, like the hub and the workers do. (A policy rather than pytest-
# asyncio's loop-factory hook: the hook parametrizes async tests only, and the switch
# between parametrized and plain tests tears session fixtures down early.)
asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


@pytest.fixture(autouse=True)
def root_log_handlers_restored() -> Iterator[None]:
    """A test that runs a command in process (``cli.main.main``) sets the root logger's
    handlers to one on the stderr pytest captured for that test; later tests would write to
    that closed file ("Logging error"). Each test leaves the root logger as it found it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceUrls]:
    with running_services(tmp_path_factory.mktemp("services")) as urls:
        yield urls


@pytest.fixture(scope="session")
async def databases(services: ServiceUrls) -> AsyncIterator[Databases]:
    dbs = Databases(services.database_url)
    await dbs.create_template()
    yield dbs
    await dbs.drop_all()


@pytest.fixture
async def database_url(databases: Databases) -> AsyncIterator[str]:
    """A fresh, migrated database of this test's own."""
    url = await databases.create()
    yield url
    await databases.drop(url)


@pytest.fixture
def namespace() -> str:
    """This test's NATS subjects, streams and Redis keys live under this namespace."""
    return "t" + secrets.token_hex(4)


@pytest.fixture
def settings(services: ServiceUrls, database_url: str, namespace: str, tmp_path: Path) -> Settings:
    return Settings(
        env=Environment.TEST,
        state_dir=tmp_path / "state",
        namespace=namespace,
        database_url=database_url,
        nats_url=services.nats_url,
        redis_url=services.redis_url,
        secret_key=TEST_SECRET,
        log_format="text",
        outbox_poll_s=0.2,
        drain_timeout_s=5.0,
        # Cheap argon2 for speed; tests of the production parameters set their own.
        argon2_memory_kib=1024,
        argon2_time_cost=1,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
async def nc(settings: Settings) -> AsyncIterator[NATS]:
    """A NATS connection for the test itself, with this test's streams in place."""
    conn = await connect_nats(settings.nats_url or "", "hubbub-test")
    subjects = Subjects(settings.namespace)
    await ensure_streams(conn.jetstream(), subjects, settings.policies())
    yield conn
    await delete_streams(conn.jetstream(), subjects)
    await conn.drain()


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url or "")
    yield client
    keys = RedisKeys(settings.namespace)
    async for key in client.scan_iter(match=keys.prefix + "*", count=500):
        await client.delete(key)
    await client.aclose()


@pytest.fixture
def worker_resources() -> Resources:
    """What the worker is given instead of building it (override to inject fakes)."""
    return Resources()


@pytest.fixture
async def worker(
    settings: Settings, nc: NATS, worker_resources: Resources
) -> AsyncIterator[RunningWorker]:
    """A worker running in this process with the production and the test handlers."""
    ops.executed.clear()
    ops.emit_calls.clear()
    ops.hold = ops.Hold()
    async with worker_running(
        settings, ops.registry_with_tests(), resources=worker_resources
    ) as running:
        yield running


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on this test's database, for arranging and checking rows directly."""
    assert settings.database_url
    engine = create_engine(settings.database_url, pool_size=2, max_overflow=0)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
def bus(nc: NATS, settings: Settings) -> Bus:
    return Bus(nc, Subjects(settings.namespace), signer=CallerSigner.from_settings(settings))


@pytest.fixture
async def hub_client(
    settings: Settings, aiohttp_client: Any, worker: RunningWorker
) -> TestClient[Any, Any]:
    """A hub (with the test operations) in this process, talking to a real worker."""
    app = create_app(settings, ops.catalog_with_tests())
    client: TestClient[Any, Any] = await aiohttp_client(HubTestServer(app))
    return client


@pytest.fixture
async def hub_without_workers(settings: Settings, aiohttp_client: Any, nc: NATS) -> Any:
    """A hub whose NATS has no worker listening."""
    return await aiohttp_client(HubTestServer(create_app(settings, ops.catalog_with_tests())))
