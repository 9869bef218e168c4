"""The hub's app factory. Connections live in ``cleanup_ctx`` in dependency order
(NATS → Redis), so they open before the first request and close after the last."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from aiohttp import web
from redis.asyncio import Redis

from hub import health
from hub.middleware import cors, request_context
from hub.rest import API_PREFIX, add_operation_routes
from hub.state import BUS, CATALOG, NATS_CONN, REDIS, REDIS_KEYS, SETTINGS, SUBJECTS
from hubbub.bus import Bus
from hubbub.config import ConfigError, Settings
from hubbub.contracts.api import default_catalog
from hubbub.contracts.operations import Catalog
from hubbub.contracts.subjects import Subjects
from hubbub.keys import RedisKeys
from hubbub.natsconn import connect_nats


async def nats_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert settings.nats_url
    nc = await connect_nats(settings.nats_url, f"hubbub-hub-{os.getpid()}")
    app[NATS_CONN] = nc
    app[BUS] = Bus(nc, app[SUBJECTS])
    yield
    await nc.drain()


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert settings.redis_url
    redis = Redis.from_url(settings.redis_url)
    app[REDIS] = redis
    yield
    await redis.aclose()


def create_app(settings: Settings, catalog: Catalog | None = None) -> web.Application:
    if not (settings.nats_url and settings.redis_url):
        raise ConfigError("the hub needs NATS_URL and REDIS_URL")
    app = web.Application(
        middlewares=[request_context, cors],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[CATALOG] = catalog if catalog is not None else default_catalog()
    app[SUBJECTS] = Subjects(settings.namespace)
    app[REDIS_KEYS] = RedisKeys(settings.namespace)
    app.cleanup_ctx.extend([nats_ctx, redis_ctx])

    app.router.add_get(API_PREFIX + "/health", health.health)
    app.router.add_get(API_PREFIX + "/ready", health.ready)
    add_operation_routes(app)
    return app
