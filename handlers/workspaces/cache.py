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

import hashlib
import logging
import uuid
from typing import Any, TypeVar

from pydantic import BaseModel
from redis.asyncio import Redis

from handlers import invalidations
from handlers.context import Context
from hubbub.keys import RedisKeys

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
GENERATION_TTL_S = 86_400  # longer than any entry lives, refreshed by every bump
BUMP = "workspace_cache"  # the invalidation kind


def _gen_key(keys: RedisKeys, workspace_id: str) -> str:
    return keys.key("ws", workspace_id, "gen")


async def _bump(redis: Redis, keys: RedisKeys, workspace_id: str) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(_gen_key(keys, workspace_id))
        pipe.expire(_gen_key(keys, workspace_id), GENERATION_TTL_S)
        await pipe.execute()


@invalidations.kind(BUMP)
async def _redo_bump(target: invalidations.RedoTarget, payload: dict[str, Any]) -> None:
    await _bump(target.redis, target.keys, str(payload["workspace_id"]))


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
        if self.ctx.resource(invalidations.REDO_SIGNAL).redis_down:
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
        invalidations.after_commit(
            ctx,
            BUMP,
            {"workspace_id": workspace_id},
            lambda: _bump(ctx.redis, ctx.keys, workspace_id),
            durable=False,
        )


def params_digest(params: BaseModel, *, exclude: set[str] | None = None) -> str:
    """A short stable name for a listing's params (its cache key part)."""
    body = params.model_dump_json(exclude=exclude)
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def cache_for(ctx: Context, workspace_id: uuid.UUID) -> WorkspaceCache:
    return WorkspaceCache(ctx, workspace_id)


__all__ = ["WorkspaceCache", "cache_for", "params_digest"]
