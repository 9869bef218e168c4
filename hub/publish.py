"""``POST /api/v1/channels/{channel}/publish``: backend services publish to browsers.

Authenticated by a service API key (``Authorization: Bearer hbk_…`` or ``X-Api-Key``),
which a worker checks by its digest (``apikeys.authenticate``); the hub remembers the
answer for ``API_KEY_CACHE_S`` seconds. Revoking a key tells every hub at once
(``hubbub.contracts.key_control``): the hub forgets it, and holds it unknown for as long
as a check in flight could have remembered it; a hub that missed that message stops
taking the key when its entry runs out. An unknown key is remembered as unknown for as
long (keys are 256 random bits: no new key can be one that was tried), and each client
IP may present at most ``UNKNOWN_KEYS_PER_MINUTE`` unknown keys a minute; past that,
429 without asking a worker. A key being asked about counts as unknown until the worker
knows it, and requests presenting the same key meanwhile wait for that one answer: a
burst of guesses is refused before it reaches the workers. Guessing keys costs the
guesser, not the database.
Each key has a budget on each hub (``HUBBUB_PUBLISH_API_PER_KEY`` publications and
``HUBBUB_PUBLISH_API_BYTES_PER_KEY`` bytes of stored JSON, token buckets): over it, 429
with ``Retry-After`` — one key cannot flood a channel kind's history out by itself.
The body is ``{"data": {...}, "id": "optional"}``: ``data`` (a JSON object) is what
subscribers receive; ``id`` — or the ``Idempotency-Key`` header — makes a retried
publish land once (it becomes the JetStream ``Nats-Msg-Id``). The hub writes straight to
the channel's stream; the reply is the publication's offset.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import TypeVar

import orjson
from aiohttp import web
from nats.aio.msg import Msg
from pydantic import ValidationError

from hub import publications
from hub.openapi import DocumentedRoute, document_route
from hub.rest import expect_within_limit, idempotency_key, read_json_object
from hub.state import BUS, CLIENT_IP, NATS_CONN, SETTINGS, SUBJECTS
from hub.ws.limits import ByteBudgets
from hubbub.bus import Reply
from hubbub.config import Rate
from hubbub.contracts.api import apikeys
from hubbub.contracts.api.apikeys import KEY_PREFIX, ServiceIdentity
from hubbub.contracts.channels import CHANNEL_PATTERN, Channel
from hubbub.contracts.errors import (
    Forbidden,
    RateLimited,
    TooLarge,
    Unauthorized,
    ValidationFailed,
)
from hubbub.contracts.key_control import API_KEY_CACHE_S, ApiKeyRevoked, api_key_revocations
from hubbub.nats_barrier import server_has_read

log = logging.getLogger(__name__)

UNKNOWN_KEYS_PER_MINUTE = 20
_CACHE_LIMIT = 10_000
V = TypeVar("V")


class KeyCache:
    """What the workers said of recently presented keys, and who presented unknown ones."""

    def __init__(self) -> None:
        self.known: dict[str, tuple[ServiceIdentity, float]] = {}  # digest → (who, until)
        self.unknown: dict[str, float] = {}  # digest → until
        self.misses: dict[str, tuple[int, float]] = {}  # client IP → (count, window end)
        self.asking: dict[str, asyncio.Future[Reply]] = {}  # digest → a worker's answer to come

    def check_budget(self, ip: str, now: float) -> None:
        count, until = self.misses.get(ip, (0, 0.0))
        if until > now and count >= UNKNOWN_KEYS_PER_MINUTE:
            raise RateLimited(
                "too many unknown API keys from this address", retry_after=int(until - now) + 1
            )

    def revoked(self, key_hash: str, now: float) -> None:
        """Forget ``key_hash``, and hold it unknown: a worker's answer asked for before
        the revocation committed must not be remembered after it."""
        self.known.pop(key_hash, None)
        _bounded(self.unknown)[key_hash] = now + API_KEY_CACHE_S

    def miss(self, ip: str, key_hash: str, now: float) -> None:
        _bounded(self.unknown)[key_hash] = now + API_KEY_CACHE_S
        self.count_miss(ip, now)

    def count_miss(self, ip: str, now: float) -> None:
        count, until = self.misses.get(ip, (0, 0.0))
        if until <= now:
            count, until = 0, now + 60.0
        _bounded(self.misses)[ip] = (count + 1, until)

    def refund_miss(self, ip: str) -> None:
        """Take back a miss ``count_miss`` counted ahead: the key was known after all (or
        no answer came)."""
        count, until = self.misses.get(ip, (0, 0.0))
        if count > 0:
            self.misses[ip] = (count - 1, until)

    def answered(
        self, key_hash: str, ip: str, asked_at: float, answer: asyncio.Future[Reply]
    ) -> None:
        """A worker's answer about ``key_hash`` (asked for by ``ip``, whose miss was
        counted ahead), remembered — whoever was waiting for it, and if none still is."""
        if self.asking.get(key_hash) is answer:
            del self.asking[key_hash]
        error = None if answer.cancelled() else answer.exception()
        if isinstance(error, Unauthorized):
            _bounded(self.unknown)[key_hash] = time.monotonic() + API_KEY_CACHE_S
            return
        self.refund_miss(ip)
        if answer.cancelled() or error is not None:
            return
        if self.unknown.get(key_hash, 0.0) > time.monotonic():
            return  # revoked while it was asked about
        identity: ServiceIdentity = answer.result().value
        _bounded(self.known)[key_hash] = (identity, asked_at + API_KEY_CACHE_S)


def _bounded(cache: dict[str, V]) -> dict[str, V]:
    if len(cache) > _CACHE_LIMIT:
        cache.clear()  # a flood of distinct keys: start over rather than grow without end
    return cache


_keys = web.AppKey("api_keys", KeyCache)


def api_key(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    key = value.strip() if scheme.lower() == "bearer" else request.headers.get("X-Api-Key", "")
    if not (key.startswith(KEY_PREFIX) and key.isascii()):
        raise Unauthorized("send a service API key: 'Authorization: Bearer hbk_…' or 'X-Api-Key'")
    return key


async def identify(request: web.Request, key_hash: str) -> ServiceIdentity:
    cache = request.app[_keys]
    now = time.monotonic()
    known = cache.known.get(key_hash)
    if known is not None and known[1] > now:
        return known[0]
    ip = request.app[CLIENT_IP].of(request) or "-"
    cache.check_budget(ip, now)
    if cache.unknown.get(key_hash, 0.0) > now:
        cache.miss(ip, key_hash, now)
        raise Unauthorized("unknown or revoked API key")
    answer = cache.asking.get(key_hash)
    asked = answer is None
    if answer is None:
        # Counted as unknown until the worker knows it: a burst of guesses from one
        # address reaches the budget before it reaches the workers.
        cache.count_miss(ip, now)
        answer = asyncio.ensure_future(
            request.app[BUS].request(apikeys.authenticate, {"key_hash": key_hash}, caller=None)
        )
        cache.asking[key_hash] = answer
        answer.add_done_callback(functools.partial(cache.answered, key_hash, ip, now))
    try:
        reply = await asyncio.shield(answer)  # others may be waiting for it too
    except Unauthorized:
        if not asked:
            cache.count_miss(ip, time.monotonic())
        raise
    if cache.unknown.get(key_hash, 0.0) > time.monotonic():
        raise Unauthorized("unknown or revoked API key")  # revoked while it was asked about
    identity: ServiceIdentity = reply.value
    return identity


class KeyBudgets:
    """Each key's budget on this hub: publications (``HUBBUB_PUBLISH_API_PER_KEY``) and
    bytes of stored JSON (``HUBBUB_PUBLISH_API_BYTES_PER_KEY``), token buckets like a
    socket user's byte budget (``hub/ws/limits.py``)."""

    def __init__(self, publications: Rate, size: Rate) -> None:
        self.publications = ByteBudgets(publications.count, publications.per_s)
        self.bytes = ByteBudgets(size.count, size.per_s)

    def spend(self, key_hash: str, size: int) -> None:
        """One publication of ``size`` bytes; ``too_large`` when it is more than the
        whole byte budget, ``rate_limited`` (nothing spent) when over either."""
        if size > self.bytes.burst:
            raise TooLarge(
                f"a publication of {size} bytes is over the key's budget of "
                f"{int(self.bytes.burst)} bytes",
                limit=int(self.bytes.burst),
            )
        now = time.monotonic()
        if len(self.bytes.buckets) > _CACHE_LIMIT:
            self.publications.prune(now)
            self.bytes.prune(now)
        wait = self.publications.take(key_hash, 1, now)
        if wait is None:
            wait = self.bytes.take(key_hash, size, now)
            if wait is None:
                return
            self.publications.give_back(key_hash, 1)
        raise RateLimited(
            "over this key's publish budget on this hub; slow down",
            retry_after=max(1, math.ceil(wait)),
        )

    def give_back(self, key_hash: str, size: int) -> None:
        """What ``spend`` took for a publication that was not stored."""
        self.publications.give_back(key_hash, 1)
        self.bytes.give_back(key_hash, size)


_budgets = web.AppKey("api_key_budgets", KeyBudgets)


MAX_ID_LENGTH = 200  # of a publication's `id`, as of an Idempotency-Key


async def publish(request: web.Request) -> web.Response:
    key_hash = hashlib.sha256(api_key(request).encode()).hexdigest()
    identity = await identify(request, key_hash)
    channel = Channel.parse(request.match_info["channel"])
    if not identity.may_publish(str(channel)):
        raise Forbidden(
            f"the key {identity.name!r} may not publish on {channel}", channel=str(channel)
        )
    body = await read_json_object(request, request.app[SETTINGS].max_body_bytes)
    data = body.get("data")
    if not isinstance(data, dict):
        raise ValidationFailed(
            "data: a JSON object is required",
            errors=[{"loc": ["body", "data"], "msg": "must be a JSON object", "type": "dict_type"}],
        )
    header_key = idempotency_key(request)  # malformed: 400, whether or not `id` is given
    message_id = body.get("id")
    if message_id is None:
        message_id = header_key
    elif not isinstance(message_id, str) or not 1 <= len(message_id) <= MAX_ID_LENGTH:
        raise ValidationFailed(
            f"id: a string of 1-{MAX_ID_LENGTH} characters",
            errors=[
                {
                    "loc": ["body", "id"],
                    "msg": f"must be a string of 1-{MAX_ID_LENGTH} characters",
                    "type": "string_type",
                }
            ],
        )
    # Per service and channel: the same id on another channel is another publication.
    headers = {"Nats-Msg-Id": f"{identity.name}:{channel}:{message_id}"} if message_id else None
    payload = publications.publication_json(data, ["body", "data"])
    budgets = request.app[_budgets]
    budgets.spend(key_hash, len(payload))
    try:
        ack = await publications.store(
            request.app[NATS_CONN], request.app[SUBJECTS].event(channel), payload, headers
        )
    except (publications.NotStored, TooLarge):
        # Not stored: the retry it invites must not find the budget spent. (One that
        # may have been stored, its acknowledgement late, keeps its cost.)
        budgets.give_back(key_hash, len(payload))
        raise
    return web.json_response(
        {"channel": str(channel), "offset": ack.seq, "duplicate": bool(ack.duplicate)},
        dumps=lambda o: orjson.dumps(o).decode(),
    )


async def _key_revocations(app: web.Application) -> AsyncIterator[None]:
    """While the app runs: drop each key revoked (``ApiKeyRevoked``) from its cache."""
    cache = app[_keys]

    async def on_revoked(msg: Msg) -> None:
        try:
            revoked = ApiKeyRevoked.model_validate_json(msg.data)
        except ValidationError:
            log.warning("ignored a malformed control message", extra={"subject": msg.subject})
            return
        cache.revoked(revoked.key_hash, time.monotonic())

    nc = app[NATS_CONN]
    sub = await nc.subscribe(api_key_revocations(app[SUBJECTS]), cb=on_revoked)
    await server_has_read(nc)  # subscribed before the first request is taken
    yield
    with contextlib.suppress(Exception):  # NATS away: the connection's close ends it
        await sub.unsubscribe()


def add_publish_route(app: web.Application, prefix: str) -> None:
    """The route, and the cache of key checks it keeps (with the subscription that
    drops revoked keys from it: after NATS is connected, as the app's last context)."""
    app[_keys] = KeyCache()
    settings = app[SETTINGS]
    app[_budgets] = KeyBudgets(settings.publish_api_per_key, settings.publish_api_bytes_per_key)
    app.cleanup_ctx.append(_key_revocations)
    path = prefix + "/channels/{channel}/publish"
    app.router.add_post(path, publish, expect_handler=expect_within_limit)
    document_route(app, _documented(path))


def _documented(path: str) -> DocumentedRoute:
    problem = {"$ref": "#/components/schemas/Problem"}
    errors = {
        "400": "bad_request: a malformed channel name or body",
        "401": "unauthorized: no, unknown or revoked API key",
        "403": "forbidden: the key's channel patterns do not cover this channel",
        "413": "too_large: the body is over the size limit, or the publication (its "
        "stored JSON with its id) over what one NATS message may hold",
        "422": "validation_failed: data is not a JSON object",
        "429": "rate_limited: too many unknown keys from this address, or over the key's "
        "publish budget on this hub (Retry-After)",
        "503": "unavailable: the channel history did not accept it; retry",
    }
    return DocumentedRoute(
        "POST",
        path,
        {
            "operationId": "channels.publish",
            "summary": "A backend service publishes to a channel's subscribers",
            "description": "See docs/publishing.md. `id` (or `Idempotency-Key`) makes a "
            "retried publish land once.",
            "tags": ["channels"],
            "security": [{"service_key": []}],
            "parameters": [
                {
                    "name": "channel",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": CHANNEL_PATTERN},
                },
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,200}$"},
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["data"],
                            "properties": {
                                "data": {"type": "object"},
                                "id": {
                                    "type": "string",
                                    "minLength": 1,
                                    "maxLength": MAX_ID_LENGTH,
                                },
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "Stored in the channel's history and fanned out",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["channel", "offset", "duplicate"],
                                "properties": {
                                    "channel": {"type": "string"},
                                    "offset": {"type": "integer", "minimum": 1},
                                    "duplicate": {"type": "boolean"},
                                },
                            }
                        }
                    },
                },
                **{
                    status: {
                        "description": text,
                        "content": {"application/problem+json": {"schema": problem}},
                    }
                    for status, text in errors.items()
                },
            },
        },
    )
