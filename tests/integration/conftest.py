from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.db import create_engine, session_factory
from handlers.resources import Resources
from hub.app import create_app
from hubbub.bus import Bus
from hubbub.config import Settings
from hubbub.contracts.subjects import Subjects
from tests.support import ops
from workers.app import RunningWorker, worker_running


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
    return Bus(nc, Subjects(settings.namespace))


@pytest.fixture
async def hub_client(
    settings: Settings, aiohttp_client: Any, worker: RunningWorker
) -> TestClient[Any, Any]:
    """A hub (with the test operations) in this process, talking to a real worker."""
    app = create_app(settings, ops.catalog_with_tests())
    client: TestClient[Any, Any] = await aiohttp_client(app)
    return client


@pytest.fixture
async def hub_without_workers(settings: Settings, aiohttp_client: Any, nc: NATS) -> Any:
    """A hub whose NATS has no worker listening."""
    return await aiohttp_client(create_app(settings, ops.catalog_with_tests()))
