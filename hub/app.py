"""The hub's app factory. Connections live in ``cleanup_ctx`` in dependency order
(NATS → Redis → the deny-list, which needs both), so they open before the first request
and close after the last."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from aiohttp import web
from redis.asyncio import Redis

from hub import health, session_cookie
from hub.client_ip import ClientIp
from hub.middleware import cors, request_context
from hub.rest import API_PREFIX, add_operation_routes
from hub.rest_hooks import RestHooks
from hub.revocations import Revocations
from hub.state import (
    ACCESS_TOKENS,
    BUS,
    CATALOG,
    CLIENT_IP,
    NATS_CONN,
    ON_NATS_RECONNECTED,
    REDIS,
    REDIS_KEYS,
    REST_HOOKS,
    REVOCATIONS,
    SETTINGS,
    SUBJECTS,
)
from hubbub.bus import Bus
from hubbub.config import ConfigError, Settings
from hubbub.contracts.api import default_catalog
from hubbub.contracts.operations import Catalog
from hubbub.contracts.subjects import Subjects
from hubbub.keys import RedisKeys
from hubbub.natsconn import connect_nats
from hubbub.tokens import AccessTokens


async def nats_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert settings.nats_url
    hooks = app[ON_NATS_RECONNECTED]

    async def on_reconnected() -> None:
        for hook in list(hooks):
            await hook()

    nc = await connect_nats(
        settings.nats_url, f"hubbub-hub-{os.getpid()}", on_reconnected=on_reconnected
    )
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


async def revocations_ctx(app: web.Application) -> AsyncIterator[None]:
    revocations = Revocations(
        nc=app[NATS_CONN], redis=app[REDIS], keys=app[REDIS_KEYS], subjects=app[SUBJECTS]
    )
    await revocations.start()
    app[REVOCATIONS] = revocations
    app[ON_NATS_RECONNECTED].append(revocations.reload)
    yield
    app[ON_NATS_RECONNECTED].remove(revocations.reload)
    await revocations.stop()


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
    app[ACCESS_TOKENS] = AccessTokens.from_settings(settings, signing=False)
    app[CLIENT_IP] = ClientIp.trusting(settings.trusted_proxies)
    app[ON_NATS_RECONNECTED] = []
    hooks = RestHooks()
    session_cookie.install(hooks)
    app[REST_HOOKS] = hooks
    app.cleanup_ctx.extend([nats_ctx, redis_ctx, revocations_ctx])

    app.router.add_get(API_PREFIX + "/health", health.health)
    app.router.add_get(API_PREFIX + "/ready", health.ready)
    add_operation_routes(app)
    return app
