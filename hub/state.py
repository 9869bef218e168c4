"""Typed keys for what the hub app holds (``web.AppKey``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from weakref import WeakKeyDictionary

from aiohttp import web
from nats.aio.client import Client as NATS
from redis.asyncio import Redis

from hub.client_ip import ClientIp
from hub.rest_hooks import RestHooks
from hub.revocations import Revocations
from hub.worker_watch import WorkerWatch
from hub.ws.service import Realtime
from hubbub.bus import Bus
from hubbub.config import Settings
from hubbub.contracts.errors import HubbubError
from hubbub.contracts.operations import Catalog
from hubbub.contracts.subjects import Subjects
from hubbub.keys import RedisKeys
from hubbub.tokens import AccessTokens

SETTINGS = web.AppKey("settings", Settings)
CATALOG = web.AppKey("catalog", Catalog)
SUBJECTS = web.AppKey("subjects", Subjects)
REDIS_KEYS = web.AppKey("redis_keys", RedisKeys)
NATS_CONN = web.AppKey("nats", NATS)
BUS = web.AppKey("bus", Bus)
REDIS = web.AppKey("redis", Redis)
REALTIME = web.AppKey("realtime", Realtime)
ACCESS_TOKENS = web.AppKey("access_tokens", AccessTokens)
REVOCATIONS = web.AppKey("revocations", Revocations)
WORKER_WATCH = web.AppKey("worker_watch", WorkerWatch)
REST_HOOKS = web.AppKey("rest_hooks", RestHooks)
CLIENT_IP = web.AppKey("client_ip", ClientIp)
# Upgrades the hub refused on its own path (``hub/serving.py``), by connection: the
# upgrade's ``Sec-WebSocket-Key`` and the refusal, for aiohttp's ``/ws`` route to answer
# without checking it again.
REFUSED_UPGRADES = web.AppKey(
    "refused_upgrades", WeakKeyDictionary[asyncio.BaseTransport, tuple[str, HubbubError]]
)
# The admin listener's app (hub/admin.py) holds the hub app it reports on.
HUB_APP = web.AppKey("hub_app", web.Application)
# Run after each NATS reconnect, to re-sync what lost messages would have changed.
ON_NATS_RECONNECTED = web.AppKey("on_nats_reconnected", list[Callable[[], Awaitable[None]]])
