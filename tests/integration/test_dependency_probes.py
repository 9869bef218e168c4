"""The scrape-time and readiness probes tell a busy dependency from a gone one.

A pool whose every connection is held (a worker under load) refuses the probe after its
own wait, which is shorter than the probe's: that is saturation, and must not read as an
outage — no ``hubbub_dependency_up`` 0, no "went away" line, no
HubbubWorkerDependencyDown. A server that takes the connection and never answers is
down. Real PostgreSQL and Redis, their pools held by the test.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy.ext.asyncio import AsyncEngine

import hub.health
import workers.metrics
from handlers.db import create_engine, session_factory
from hub.health import ping_redis
from hub.state import BUS, REDIS
from hubbub.bus import Bus
from hubbub.config import Settings
from hubbub.dependencies import Health
from workers.actors import ActorSystem
from workers.metrics import WorkerMetrics
from workers.outages import worker_health

POOL_WAIT_S = 0.1  # the pools' wait for a free connection here
PROBE_S = 1.0  # the probes' timeout here: longer than the pools', as in production


@pytest.fixture
async def one_connection_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    assert settings.database_url
    engine = create_engine(
        settings.database_url, pool_size=1, max_overflow=0, pool_timeout=POOL_WAIT_S
    )
    yield engine
    await engine.dispose()


@pytest.fixture
async def one_connection_redis(settings: Settings) -> AsyncIterator[Redis]:
    """A client whose pool has one connection, waited for shorter than a probe."""
    assert settings.redis_url
    pool = BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=1, timeout=POOL_WAIT_S
    )
    client = Redis.from_pool(pool)
    yield client
    await client.aclose()


def _up(metrics: WorkerMetrics) -> dict[str, float]:
    text = generate_latest(metrics.registry).decode()
    return {
        s.labels["dependency"]: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "hubbub_dependency_up"
    }


def _lines(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if words in r.getMessage()]


async def test_a_worker_whose_pools_are_all_busy_exports_its_dependencies_up(
    one_connection_engine: AsyncEngine,
    one_connection_redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(workers.metrics, "DEPENDENCY_TIMEOUT_S", PROBE_S)
    health = worker_health(one_connection_engine, one_connection_redis)
    try:
        await _busy_pools_keep_up(health, one_connection_engine, one_connection_redis, caplog)
    finally:
        await health.close()


async def _busy_pools_keep_up(
    health: Health, engine: AsyncEngine, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = WorkerMetrics(ActorSystem(), session_factory(engine), health=health)
    await metrics.refresh_dependencies()
    assert _up(metrics) == {"postgresql": 1.0, "redis": 1.0}

    held = await redis.connection_pool.get_connection()
    try:
        async with engine.connect():
            with caplog.at_level(logging.INFO):
                await metrics.refresh_dependencies()
                assert _up(metrics) == {"postgresql": 1.0, "redis": 1.0}
    finally:
        await redis.connection_pool.release(held)
    assert _lines(caplog, "went away") == []
    assert len(_lines(caplog, "is saturated")) == 2


async def test_a_hub_whose_redis_pool_is_all_busy_keeps_redis_up(
    bus: Bus,
    one_connection_redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(hub.health, "REDIS_PING_S", PROBE_S)
    app = web.Application()
    app[BUS] = bus
    app[REDIS] = one_connection_redis
    assert (await ping_redis(app))["ok"]

    held = await one_connection_redis.connection_pool.get_connection()
    try:
        with caplog.at_level(logging.INFO):
            answer = await ping_redis(app)
    finally:
        await one_connection_redis.connection_pool.release(held)
        await bus.health.close()
    assert not answer["ok"]  # /ready shows it degraded, with why
    assert not bus.health.is_down("redis")
    assert _lines(caplog, "went away") == []
    assert _lines(caplog, "is saturated")


def test_the_probes_wait_longer_than_the_redis_pool_does() -> None:
    """So that a busy pool is reported in its own words ("No connection available")."""
    pool_wait = Settings.model_fields["redis_pool_timeout_s"].default
    assert pool_wait + 1 <= workers.metrics.DEPENDENCY_TIMEOUT_S
    assert pool_wait + 1 <= hub.health.REDIS_PING_S


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A port that takes connections and never answers (a paused or cut-off server)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_a_redis_that_takes_the_connection_and_never_answers_is_down(
    bus: Bus,
    silent_server: int,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(hub.health, "REDIS_PING_S", PROBE_S)
    app = web.Application()
    app[BUS] = bus
    app[REDIS] = Redis.from_url(f"redis://127.0.0.1:{silent_server}/0")
    try:
        with caplog.at_level(logging.INFO):
            answer = await ping_redis(app)
        assert not answer["ok"]
        assert bus.health.is_down("redis")
        assert _lines(caplog, "went away")
    finally:
        await app[REDIS].aclose()
        await bus.health.close()
