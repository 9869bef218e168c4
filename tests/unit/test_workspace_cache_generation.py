"""The workspace cache stores a read only under the generation taken before the read:
a read made while Redis was down is not stored once Redis answers again, when a change
committed meanwhile may already have moved the generation on."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import cast

from pydantic import BaseModel

from handlers import invalidations
from handlers.context import Context
from handlers.workspaces.cache import WorkspaceCache
from hubbub.keys import RedisKeys

WORKSPACE = uuid.UUID(int=1)


class Page(BaseModel):
    title: str


class FakeRedis:
    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    async def get(self, key: str) -> bytes | None:
        return self.values.get(key)

    async def set(self, key: str, value: str, ex: int) -> None:
        self.values[key] = value.encode()


def context(redis: FakeRedis, signal: invalidations.RedoSignal) -> Context:
    resources = {invalidations.REDO_SIGNAL: signal}
    fake = SimpleNamespace(
        redis=redis,
        keys=RedisKeys("t"),
        settings=SimpleNamespace(cache_ttl_s=300),
        resource=lambda key: resources[key],
    )
    return cast(Context, fake)


def bump(redis: FakeRedis) -> None:
    """A change committed: its generation bump."""
    key = RedisKeys("t").key("ws", str(WORKSPACE), "gen")
    redis.values[key] = str(int(redis.values.get(key, b"0")) + 1).encode()


async def test_a_read_made_while_redis_was_down_is_not_stored_when_it_is_back() -> None:
    redis, signal = FakeRedis(), invalidations.RedoSignal()
    signal.redis_down = True
    reader = WorkspaceCache(context(redis, signal), WORKSPACE)
    assert await reader.get(Page, "page") is None  # Redis skipped: no generation taken
    stale = Page(title="before the change")  # read from the database now
    signal.redis_down = False  # Redis answers again, and a change commits and bumps
    bump(redis)

    await reader.put(stale, "page")

    fresh = WorkspaceCache(context(redis, signal), WORKSPACE)
    assert await fresh.get(Page, "page") is None


async def test_a_read_is_stored_under_the_generation_taken_before_it() -> None:
    redis, signal = FakeRedis(), invalidations.RedoSignal()
    reader = WorkspaceCache(context(redis, signal), WORKSPACE)
    assert await reader.get(Page, "page") is None
    await reader.put(Page(title="current"), "page")

    assert await WorkspaceCache(context(redis, signal), WORKSPACE).get(Page, "page") == Page(
        title="current"
    )
    bump(redis)  # a later change: the entry is out of reach
    assert await WorkspaceCache(context(redis, signal), WORKSPACE).get(Page, "page") is None
