"""The hub's app factory. Connections live in ``cleanup_ctx`` in dependency order
(NATS → Redis → the deny-list → the realtime service), so they open before the first
request and close after the last."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from weakref import WeakKeyDictionary

from aiohttp import web

from hub import health, session_cookie
from hub.api_docs import add_docs_routes
from hub.asyncapi import add_asyncapi_route
from hub.client_ip import ClientIp
from hub.deadlines import DeadlineBus, request_deadline
from hub.middleware import cors, request_context
from hub.publish import add_publish_route
from hub.rest import API_PREFIX, add_operation_routes
from hub.rest_hooks import RestHooks
from hub.revocations import Revocations, ask_workers
from hub.state import (
    ACCESS_TOKENS,
    BUS,
    CATALOG,
    CLIENT_IP,
    NATS_CONN,
    ON_NATS_RECONNECTED,
    REALTIME,
    REDIS,
    REDIS_KEYS,
    REFUSED_UPGRADES,
    REST_HOOKS,
    REVOCATIONS,
    SETTINGS,
    SUBJECTS,
    WORKER_WATCH,
)
from hub.static import add_static_routes
from hub.worker_watch import WorkerWatch
from hub.ws.authz import ChannelAuthorizer
from hub.ws.endpoint import websocket
from hub.ws.presence import Presence
from hub.ws.service import Realtime
from hubbub.callers import CallerSigner
from hubbub.config import ConfigError, Settings
from hubbub.contracts.api import default_catalog
from hubbub.contracts.operations import Catalog
from hubbub.contracts.subjects import Subjects
from hubbub.dependencies import REDIS as REDIS_NAME
from hubbub.dependencies import Health, nats_outage, redis_outage
from hubbub.keys import RedisKeys
from hubbub.natsauth import HUB_INBOX_PREFIX, nats_auth
from hubbub.natsconn import connect_nats
from hubbub.redisconn import redis_from_settings
from hubbub.tokens import AccessTokens

log = logging.getLogger(__name__)


async def nats_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert settings.nats_url
    hooks = app[ON_NATS_RECONNECTED]

    async def on_reconnected() -> None:
        for hook in list(hooks):  # each one runs even if one before it failed
            try:
                await hook()
            except Exception as exc:
                if redis_outage(exc) is None and nats_outage(exc) is None:
                    log.exception("re-syncing after a NATS reconnect failed")
                else:  # the hook tries again on its own; one line, no traceback
                    log.warning(
                        "re-syncing after a NATS reconnect failed: %s: %s", type(exc).__name__, exc
                    )

    nc = await connect_nats(
        settings.nats_url,
        f"hubbub-hub-{os.getpid()}",
        on_reconnected=on_reconnected,
        auth=nats_auth(settings),
        inbox_prefix=HUB_INBOX_PREFIX,  # replies only the hub user may receive
    )
    app[NATS_CONN] = nc

    async def ping_redis() -> None:
        await app[REDIS].ping()

    # The hub's outage tracker: once Redis is recorded gone (a request ran into it), its
    # probe (each try bounded by ``probe_within``) watches for it to come back, as a
    # worker's does (workers/outages.py), whether or not /ready or a scrape pings it.
    health = Health({REDIS_NAME: ping_redis})
    # Its requests keep to the deadline of the REST request that makes them.
    app[BUS] = DeadlineBus(nc, app[SUBJECTS], health, signer=CallerSigner.from_settings(settings))
    yield
    try:
        await nc.drain()
    except Exception:  # NATS unreachable (reconnecting): nothing to drain through
        await nc.close()


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert settings.redis_url
    redis = redis_from_settings(settings)
    app[REDIS] = redis
    yield
    await app[BUS].health.close()  # its Redis probe, if one is running
    await redis.aclose()


async def revocations_ctx(app: web.Application) -> AsyncIterator[None]:
    revocations = Revocations(
        nc=app[NATS_CONN],
        redis=app[REDIS],
        keys=app[REDIS_KEYS],
        subjects=app[SUBJECTS],
        pending=ask_workers(app[BUS]),
    )
    await revocations.start()
    app[REVOCATIONS] = revocations
    app[ON_NATS_RECONNECTED].append(revocations.after_reconnect)
    yield
    app[ON_NATS_RECONNECTED].remove(revocations.after_reconnect)
    await revocations.stop()


async def worker_watch_ctx(app: web.Application) -> AsyncIterator[None]:
    """Workers' heartbeats: a worker that dies with reads in flight has them sent again."""
    watch = WorkerWatch(app[NATS_CONN], app[SUBJECTS], app[BUS].replies.resend)
    await watch.start()
    app[WORKER_WATCH] = watch
    yield
    await watch.stop()


async def realtime_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    policies = settings.policies()
    keys = app[REDIS_KEYS]
    realtime = Realtime(
        settings=settings,
        nc=app[NATS_CONN],
        bus=app[BUS],
        catalog=app[CATALOG],
        authorizer=ChannelAuthorizer(
            app[BUS],
            app[REDIS],
            keys,
            policies,
            distrust_s=settings.cache_ttl_s,
            unsettled=app[REVOCATIONS].unsettled,
        ),
        presence=Presence(app[REDIS], keys, app[NATS_CONN], app[SUBJECTS], settings.presence_ttl_s),
        tokens=app[ACCESS_TOKENS],
        revocations=app[REVOCATIONS],
        policies=policies,
    )
    app[REALTIME] = realtime
    await realtime.start()
    app[REVOCATIONS].listeners.append(realtime.on_control)
    app[ON_NATS_RECONNECTED].append(realtime.fanout.after_reconnect)
    # After the deny-list's reload: closes what it now denies, re-checks memberships.
    app[ON_NATS_RECONNECTED].append(realtime.recheck.after_reconnect)
    app[ON_NATS_RECONNECTED].append(realtime.subscriptions.after_reconnect)  # presence
    yield
    app[ON_NATS_RECONNECTED].remove(realtime.subscriptions.after_reconnect)
    app[ON_NATS_RECONNECTED].remove(realtime.recheck.after_reconnect)
    app[ON_NATS_RECONNECTED].remove(realtime.fanout.after_reconnect)
    app[REVOCATIONS].listeners.remove(realtime.on_control)
    await realtime.stop()


async def drain_sockets(app: web.Application) -> None:
    """On shutdown (SIGTERM): every socket is told to reconnect elsewhere, then closed."""
    if REALTIME in app:
        await app[REALTIME].shutdown(app[SETTINGS].shutdown_timeout_s)


MAX_REQUEST_LINE = 64 * 1024
MAX_HEADER = 16 * 1024
MAX_HEADERS = 64


def create_app(settings: Settings, catalog: Catalog | None = None) -> web.Application:
    """The public app. ``/metrics`` and readiness details are not on it: they are on the
    admin listener (hub/admin.py), which ``hubbub serve`` runs beside it."""
    if not (settings.nats_url and settings.redis_url):
        raise ConfigError("the hub needs NATS_URL and REDIS_URL")
    app = web.Application(
        middlewares=[request_context, cors, request_deadline],
        client_max_size=settings.max_body_bytes,
        # aiohttp answers a request line or a header over its default 8 KiB with a
        # plain-text 400 before any middleware runs; long query strings and headers up
        # to 16 KiB (a big cookie) get to the API's own answers. At most 64 headers (half
        # aiohttp's default), so the headers a connection holds while they arrive, with
        # no deadline yet, stay about what aiohttp's defaults allow.
        handler_args={
            "max_line_size": MAX_REQUEST_LINE,
            "max_field_size": MAX_HEADER,
            "max_headers": MAX_HEADERS,
        },
    )
    app[SETTINGS] = settings
    app[CATALOG] = catalog if catalog is not None else default_catalog()
    app[SUBJECTS] = Subjects(settings.namespace)
    app[REDIS_KEYS] = RedisKeys(settings.namespace)
    app[ACCESS_TOKENS] = AccessTokens.from_settings(settings, signing=False)
    app[CLIENT_IP] = ClientIp.trusting(settings.trusted_proxies)
    app[REFUSED_UPGRADES] = WeakKeyDictionary()
    app[ON_NATS_RECONNECTED] = []
    hooks = RestHooks()
    session_cookie.install(hooks)
    app[REST_HOOKS] = hooks
    app.cleanup_ctx.extend([nats_ctx, redis_ctx, revocations_ctx, worker_watch_ctx, realtime_ctx])
    app.on_shutdown.append(drain_sockets)

    app.router.add_get(API_PREFIX + "/health", health.health)
    app.router.add_get(API_PREFIX + "/ready", health.ready)
    add_operation_routes(app)
    add_docs_routes(app)
    add_asyncapi_route(app)
    add_publish_route(app, API_PREFIX)
    app.router.add_get("/ws", websocket)
    if settings.frontend_dir is not None:
        add_static_routes(app, settings.frontend_dir)  # last: it catches every other path
    return app
