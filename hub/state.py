"""Typed keys for what the hub app holds (``web.AppKey``)."""

from __future__ import annotations

from aiohttp import web
from nats.aio.client import Client as NATS
from redis.asyncio import Redis

from hub.ws.service import Realtime, TokenVerifier
from hubbub.bus import Bus
from hubbub.config import Settings
from hubbub.contracts.operations import Catalog
from hubbub.contracts.subjects import Subjects
from hubbub.keys import RedisKeys

SETTINGS = web.AppKey("settings", Settings)
CATALOG = web.AppKey("catalog", Catalog)
SUBJECTS = web.AppKey("subjects", Subjects)
REDIS_KEYS = web.AppKey("redis_keys", RedisKeys)
NATS_CONN = web.AppKey("nats", NATS)
BUS = web.AppKey("bus", Bus)
REDIS = web.AppKey("redis", Redis)
REALTIME = web.AppKey("realtime", Realtime)
TOKEN_VERIFIER = web.AppKey("token_verifier", TokenVerifier)
