"""Fixtures: real PostgreSQL, NATS and Redis for the whole session; isolated data per test."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvloop
from nats.aio.client import Client as NATS
from redis.asyncio import Redis

from hubbub.config import Environment, Settings
from hubbub.contracts.subjects import Subjects
from hubbub.keys import RedisKeys
from hubbub.logs import install_request_id_factory
from hubbub.natsconn import connect_nats
from hubbub.streams import delete_streams, ensure_streams
from tests.support.services import Databases, ServiceUrls, running_services

TEST_SECRET = "test-secret-" + "x" * 40

install_request_id_factory()


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, object]:
    """Tests run on uvloop, like the hub and the workers do."""
    return {"uvloop": uvloop.new_event_loop}


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
    await ensure_streams(conn.jetstream(), subjects)
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
