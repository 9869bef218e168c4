"""A Redis cache of a workspace's reads, emptied by any change in the workspace.

Keys carry the workspace's *generation*: ``ws:<id>:gen`` is a counter, and a cached
read lives under ``ws:<id>:<generation>:<what>``. A change bumps the counter after its
transaction commits, so every earlier entry is unreachable at once (they expire by
their TTL). A reader takes the generation *before* it reads the database, so a read
that raced a change is stored under the old generation, where no one looks again — the
cache never serves a state older than the last committed change it could see.

The cache is an optimisation, never the truth: Redis failures fall back to the database
(reported once per outage, by the worker's ``RedoSignal``), and the membership check
always reads the database.

A bump that fails (Redis unreachable) is kept in PostgreSQL and redone by the workers'
redo loop as soon as Redis answers again (``handlers/invalidations.py``). A Redis that
comes back with its old data thus has its generation bumped within moments; until the
loop has done that, a worker that saw Redis fail does not read the cache at all.
Writes are the common path, so the row is written only when the bump fails; a worker
that dies between a commit and its bump leaves the old entries until their TTL
(``HUBBUB_CACHE_TTL_S``). That is a read cache's bound after a crash; every write still
checks versions against the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from handlers import invalidations
from handlers.context import Context
from handlers.worker_resources import ResourceKey
from hubbub.keys import RedisKeys

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
GENERATION_TTL_S = 86_400  # longer than any entry lives, refreshed by every bump
BUMP = "workspace_cache"  # the invalidation kind


def _gen_key(keys: RedisKeys, workspace_id: str) -> str:
    return keys.key("ws", workspace_id, "gen")


# The bump: the counter raised and its TTL refreshed, atomically, in one command with one
# reply (a MULTI/INCR/EXPIRE/EXEC pipeline costs the worker four replies to parse).
_BUMP_LUA = "redis.call('INCR', KEYS[1]) redis.call('EXPIRE', KEYS[1], ARGV[1]) return 1"
_BUMP_SHA = hashlib.sha1(_BUMP_LUA.encode(), usedforsecurity=False).hexdigest()


async def _bump(redis: Redis, keys: RedisKeys, workspace_id: str) -> None:
    key = _gen_key(keys, workspace_id)
    try:
        await redis.evalsha(_BUMP_SHA, 1, key, GENERATION_TTL_S)
    except NoScriptError:  # a Redis that has not seen the script yet (or lost it: restart)
        await redis.eval(_BUMP_LUA, 1, key, GENERATION_TTL_S)


@invalidations.kind(BUMP)
async def _redo_bump(target: invalidations.RedoTarget, payload: dict[str, Any]) -> None:
    await _bump(target.redis, target.keys, str(payload["workspace_id"]))


BUMP_MANY = "workspace_caches"  # the invalidation kind of ``invalidate_all_after_commit``


async def _bump_all(redis: Redis, keys: RedisKeys, workspace_ids: list[str]) -> None:
    """Bump the generations of ``workspace_ids`` in one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for workspace_id in workspace_ids:
            key = _gen_key(keys, workspace_id)
            pipe.incr(key)
            pipe.expire(key, GENERATION_TTL_S)
        await pipe.execute()


@invalidations.kind(BUMP_MANY)
async def _redo_bump_all(target: invalidations.RedoTarget, payload: dict[str, Any]) -> None:
    await _bump_all(target.redis, target.keys, [str(w) for w in payload["workspace_ids"]])


def invalidate_all_after_commit(ctx: Context, workspace_ids: list[uuid.UUID]) -> None:
    """``WorkspaceCache.invalidate_after_commit`` for many workspaces at once (a change
    shown in all of them: a member's display name), in one Redis round trip however many
    they are, and kept as one invalidation to redo if Redis cannot be told now."""
    if not workspace_ids:
        return
    names = [str(w) for w in workspace_ids]
    invalidations.after_commit(
        ctx,
        BUMP_MANY,
        {"workspace_ids": names},
        lambda: _bump_all(ctx.redis, ctx.keys, names),
        durable=False,
    )


class WorkspaceCache:
    def __init__(self, ctx: Context, workspace_id: uuid.UUID) -> None:
        self.ctx = ctx
        self.workspace_id = str(workspace_id)
        self._generation: str | None = None

    async def _key(self, *parts: str) -> str:
        if self._generation is None:
            raw = await self.ctx.redis.get(_gen_key(self.ctx.keys, self.workspace_id))
            self._generation = raw.decode() if isinstance(raw, bytes) else str(raw or 0)
        return self.ctx.keys.key("ws", self.workspace_id, self._generation, *parts)

    async def get(self, model: type[M], *parts: str) -> M | None:
        if self.ctx.resource(invalidations.REDO_SIGNAL).redis_down:
            return None  # entries may be older than changes not yet redone
        try:
            raw = await self.ctx.redis.get(await self._key(*parts))
        except invalidations.REDIS_ERRORS as exc:
            self.ctx.resource(invalidations.REDO_SIGNAL).failed(exc)
            return None
        if raw is None:
            return None
        try:
            return model.model_validate_json(raw)
        except ValueError:  # an entry of an older shape
            return None

    async def put(self, value: BaseModel, *parts: str) -> None:
        """Store what was read from the database after ``get`` missed — only under the
        generation ``get`` took before that read. A generation read now could already
        count a change the read did not see (as when ``get`` skipped Redis because it was
        down, and it answered again meanwhile)."""
        if self._generation is None or self.ctx.resource(invalidations.REDO_SIGNAL).redis_down:
            return
        try:
            await self.ctx.redis.set(
                await self._key(*parts), value.model_dump_json(), ex=self.ctx.settings.cache_ttl_s
            )
        except invalidations.REDIS_ERRORS as exc:
            self.ctx.resource(invalidations.REDO_SIGNAL).failed(exc)

    def invalidate_after_commit(self) -> None:
        """Once this request commits, nothing cached for the workspace is served again
        (redone by the workers if Redis cannot be told now)."""
        ctx, workspace_id = self.ctx, self.workspace_id
        bumps = ctx.resource(BUMPS)
        invalidations.after_commit(
            ctx,
            BUMP,
            {"workspace_id": workspace_id},
            lambda: bumps.bump(workspace_id, lambda: _bump(ctx.redis, ctx.keys, workspace_id)),
            durable=False,
        )


class Bumps:
    """The worker's bumps of workspace generations, shared between requests.

    A request needs a bump that *starts* after its commit. While one is in flight for a
    workspace, every request committed meanwhile waits for one next bump, which starts
    when the one in flight ends: a busy workspace costs Redis one round trip per bump's
    duration, not one per change. A failed bump fails every request waiting on it (each
    keeps its invalidation for the redo loop).
    """

    def __init__(self, settings: Any = None) -> None:
        self._running: dict[str, asyncio.Future[None]] = {}  # ends when the bump has
        self._next: dict[str, asyncio.Future[None]] = {}  # the one that starts after it

    async def bump(self, workspace_id: str, apply: Callable[[], Awaitable[None]]) -> None:
        following = self._next.get(workspace_id)
        if following is not None:
            await asyncio.shield(following)
            return
        running = self._running.get(workspace_id)
        if running is None:
            await self._run(workspace_id, apply)
            return
        following = self._next[workspace_id] = asyncio.ensure_future(
            self._after(running, workspace_id, apply)
        )
        await asyncio.shield(following)

    async def _after(
        self, running: asyncio.Future[None], workspace_id: str, apply: Callable[[], Awaitable[None]]
    ) -> None:
        await running
        del self._next[workspace_id]  # it starts now: later commits need another
        await self._run(workspace_id, apply)

    async def _run(self, workspace_id: str, apply: Callable[[], Awaitable[None]]) -> None:
        done = self._running[workspace_id] = asyncio.get_running_loop().create_future()
        try:
            await apply()
        finally:
            del self._running[workspace_id]
            done.set_result(None)


BUMPS: ResourceKey[Bumps] = ResourceKey("workspace cache bumps", Bumps)


def params_digest(params: BaseModel, *, exclude: set[str] | None = None) -> str:
    """A short stable name for a listing's params (its cache key part)."""
    body = params.model_dump_json(exclude=exclude)
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def cache_for(ctx: Context, workspace_id: uuid.UUID) -> WorkspaceCache:
    return WorkspaceCache(ctx, workspace_id)


__all__ = ["WorkspaceCache", "cache_for", "params_digest"]
