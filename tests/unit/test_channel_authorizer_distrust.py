"""After a membership is removed, the hub asks a worker — not Redis — whether that user
may be on that channel, for as long as a cached answer could live: a delete of the
cached "allowed" that failed (or a Redis restarted from old data) lets nobody back in."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from redis.asyncio import Redis

from hub.ws.authz import ChannelAuthorizer
from hubbub.bus import Bus
from hubbub.contracts.api.channels import ChannelAction
from hubbub.contracts.channels import DEFAULT_POLICIES, Channel
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.errors import Forbidden
from hubbub.keys import RedisKeys

CHANNEL = Channel.parse("workspace:00000000-0000-0000-0000-000000000001")
USER = "00000000-0000-0000-0000-0000000000aa"


class StaleRedis:
    """Still holds the "allowed" the worker could not delete."""

    async def get(self, key: str) -> bytes:
        return b"1"


class Workers:
    """The database's answer: no longer a member."""

    def __init__(self) -> None:
        self.asked = 0

    async def request(self, *_: Any, **__: Any) -> Any:
        self.asked += 1
        return SimpleNamespace(value=SimpleNamespace(allowed=False))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def authorizer(workers: Workers, clock: Clock) -> ChannelAuthorizer:
    return ChannelAuthorizer(
        cast(Bus, workers),
        cast(Redis, StaleRedis()),
        RedisKeys("t"),
        dict(DEFAULT_POLICIES),
        distrust_s=300,
        clock=clock,
    )


CALLER = Caller(kind=CallerKind.USER, user_id=USER, role="member")


async def test_after_a_removal_the_workers_are_asked_until_cached_answers_are_gone() -> None:
    workers, clock = Workers(), Clock()
    authz = authorizer(workers, clock)
    await authz.check(CALLER, CHANNEL, ChannelAction.SUBSCRIBE)  # the stale "1" believed
    assert workers.asked == 0

    authz.membership_removed(USER, CHANNEL)

    with pytest.raises(Forbidden):
        await authz.check(CALLER, CHANNEL, ChannelAction.SUBSCRIBE)
    assert workers.asked == 1
    clock.now += 300  # every cached answer from before the removal has expired
    await authz.check(CALLER, CHANNEL, ChannelAction.SUBSCRIBE)
    assert workers.asked == 1


async def test_a_removal_is_for_its_user_and_channel_only() -> None:
    workers, clock = Workers(), Clock()
    authz = authorizer(workers, clock)
    authz.membership_removed(USER, CHANNEL)
    other = Caller(kind=CallerKind.USER, user_id="00000000-0000-0000-0000-0000000000bb")

    await authz.check(other, CHANNEL, ChannelAction.SUBSCRIBE)
    await authz.check(CALLER, Channel.parse(f"chat:{CHANNEL.name}"), ChannelAction.SUBSCRIBE)
    assert workers.asked == 0
