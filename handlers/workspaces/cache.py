"""A Redis cache of a workspace's reads, emptied by any change in the workspace.

Keys carry the workspace's *generation*: ``ws:<id>:gen`` is a counter, and a cached
read lives under ``ws:<id>:<generation>:<what>``. A change bumps the counter after its
transaction commits, so every earlier entry is unreachable at once (they expire by
their TTL). A reader takes the generation *before* it reads the database, so a read
that raced a change is stored under the old generation, where no one looks again — the
cache never serves a state older than the last committed change it could see.

The cache is an optimisation, never the truth: Redis failures fall back to the database
(logged), and the membership check always reads the database.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import TypeVar

from pydantic import BaseModel

from handlers.context import Context

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
GENERATION_TTL_S = 86_400  # longer than any entry lives, refreshed by every bump


class WorkspaceCache:
    def __init__(self, ctx: Context, workspace_id: uuid.UUID) -> None:
        self.ctx = ctx
        self.workspace_id = str(workspace_id)
        self._generation: str | None = None

    @property
    def _gen_key(self) -> str:
        return self.ctx.keys.key("ws", self.workspace_id, "gen")

    async def _key(self, *parts: str) -> str:
        if self._generation is None:
            raw = await self.ctx.redis.get(self._gen_key)
            self._generation = raw.decode() if isinstance(raw, bytes) else str(raw or 0)
        return self.ctx.keys.key("ws", self.workspace_id, self._generation, *parts)

    async def get(self, model: type[M], *parts: str) -> M | None:
        try:
            raw = await self.ctx.redis.get(await self._key(*parts))
        except Exception:
            log.warning("cache read failed", exc_info=True)
            return None
        if raw is None:
            return None
        try:
            return model.model_validate_json(raw)
        except ValueError:  # an entry of an older shape
            return None

    async def put(self, value: BaseModel, *parts: str) -> None:
        try:
            await self.ctx.redis.set(
                await self._key(*parts), value.model_dump_json(), ex=self.ctx.settings.cache_ttl_s
            )
        except Exception:
            log.warning("cache write failed", exc_info=True)

    def invalidate_after_commit(self) -> None:
        """Once this request commits, nothing cached for the workspace is served again."""
        key = self._gen_key

        async def bump() -> None:
            async with self.ctx.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, GENERATION_TTL_S)
                await pipe.execute()

        self.ctx.after_commit(bump)


def params_digest(params: BaseModel, *, exclude: set[str] | None = None) -> str:
    """A short stable name for a listing's params (its cache key part)."""
    body = params.model_dump_json(exclude=exclude)
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def cache_for(ctx: Context, workspace_id: uuid.UUID) -> WorkspaceCache:
    return WorkspaceCache(ctx, workspace_id)


__all__ = ["WorkspaceCache", "cache_for", "params_digest"]
