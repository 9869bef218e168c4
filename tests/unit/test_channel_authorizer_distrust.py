"""After a membership is removed or changed, the hub believes Redis about that user on
that channel, for as long as a cached answer could live, only where a worker asked since
the change said the same: a delete of the cached "allowed" that failed (or a Redis
restarted from old data) lets nobody back in, and a fresh answer costs one worker ask."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest
from redis.asyncio import Redis

from hub.ws import authz as authz_module
from hub.ws.authz import ChannelAuthorizer
from hubbub.bus import Bus
from hubbub.contracts.api.channels import ChannelAction
from hubbub.contracts.channels import DEFAULT_POLICIES, Channel
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.errors import Forbidden
from hubbub.keys import RedisKeys
from tests.support.waiting import wait_for

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


class Cache:
    """Redis as the workers leave it: what they cached, unless it refuses their writes."""

    def __init__(self, **values: bytes) -> None:
        self.values: dict[str, bytes] = dict(values)
        self.takes_writes = True

    async def get(self, key: str) -> bytes | None:
        return self.values.get(key)


class Database:
    """Workers answering from the database, caching each answer as ``channels.authorize``
    does (when Redis takes the write)."""

    def __init__(self, cache: Cache, allowed: bool) -> None:
        self.cache = cache
        self.allowed = allowed
        self.asked = 0
        self.hold: asyncio.Event | None = None  # set: answers wait for it

    async def request(self, _op: Any, params: dict[str, str], **_: Any) -> Any:
        self.asked += 1
        allowed = self.allowed  # read now, answered when let go
        if self.hold is not None:
            await self.hold.wait()
        if self.cache.takes_writes:
            key = KEYS.channel_acl(params["user_id"], params["channel"], params["action"])
            self.cache.values[key] = b"1" if allowed else b"0"
        return SimpleNamespace(value=SimpleNamespace(allowed=allowed))


KEYS = RedisKeys("t")
CHAT = Channel.parse(f"chat:{CHANNEL.name}")
PUBLISH_KEY = KEYS.channel_acl(USER, str(CHAT), "publish")


def on(cache: Cache, database: Database, clock: Clock) -> ChannelAuthorizer:
    return ChannelAuthorizer(
        cast(Bus, database),
        cast(Redis, cache),
        KEYS,
        dict(DEFAULT_POLICIES),
        distrust_s=300,
        clock=clock,
    )


async def publish(authz: ChannelAuthorizer, times: int = 1) -> None:
    for _ in range(times):
        await authz.check(CALLER, CHAT, ChannelAction.PUBLISH)


async def test_a_promoted_viewer_s_publishes_ask_a_worker_once_then_redis_again() -> None:
    """The viewer's cached "may not publish" could not be deleted (Redis refused the
    write then); the hub asks a worker once, whose answer Redis now holds, and believes
    Redis from then on."""
    cache = Cache(**{PUBLISH_KEY: b"0"})
    database, clock = Database(cache, allowed=True), Clock()
    authz = on(cache, database, clock)

    authz.membership_changed(USER, CHAT)
    await publish(authz, times=5)

    assert database.asked == 1


async def test_a_demoted_member_s_stale_answer_sends_every_check_to_a_worker() -> None:
    """Redis still says "may publish" and refuses the worker's new answer: it never
    agrees with what the worker said since the change, so it is never believed."""
    cache = Cache(**{PUBLISH_KEY: b"1"})
    cache.takes_writes = False
    database, clock = Database(cache, allowed=False), Clock()
    authz = on(cache, database, clock)

    authz.membership_changed(USER, CHAT)
    for _ in range(3):
        with pytest.raises(Forbidden):
            await publish(authz)
    assert database.asked == 3


async def test_an_answer_asked_before_a_newer_change_is_not_believed() -> None:
    """Promoted, then demoted while the worker's "may publish" was on its way (Redis
    refusing the demotion's deletion): that answer must not make Redis's stale "1"
    believed."""
    cache = Cache()
    database, clock = Database(cache, allowed=True), Clock()
    authz = on(cache, database, clock)
    authz.membership_changed(USER, CHAT)  # promoted
    database.hold = asyncio.Event()
    asking = asyncio.create_task(publish(authz))
    await wait_for(lambda: database.asked == 1, what="the worker asked")

    authz.membership_changed(USER, CHAT)  # demoted: the database says no from now on
    database.allowed = False
    database.hold.set()
    await asking  # answered (and cached) as of before the demotion
    assert cache.values[PUBLISH_KEY] == b"1"
    cache.takes_writes = False  # the demotion's deletion, and what follows, refused

    with pytest.raises(Forbidden):
        await publish(authz)
    assert database.asked == 2


async def test_past_the_bound_doubt_widens_and_nothing_doubted_is_believed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A storm of changes keeps the hub's memory bounded without believing a doubted
    answer early: the oldest pairs' doubt widens to their channel, then to all."""
    monkeypatch.setattr(authz_module, "DISTRUSTED_MAX", 3)
    monkeypatch.setattr(authz_module, "DISTRUSTED_CHANNELS_MAX", 1)
    cache = Cache()
    database, clock = Database(cache, allowed=True), Clock()
    authz = on(cache, database, clock)
    users = [f"00000000-0000-0000-0000-00000000000{i}" for i in range(6)]
    for user in users:
        authz.membership_changed(user, CHAT)
        cache.values[KEYS.channel_acl(user, str(CHAT), "publish")] = b"0"  # stale
        clock.now += 1
    assert len(authz._distrusted) <= 3

    for user in users:  # every one of them asks a worker: none is kept out
        caller = Caller(kind=CallerKind.USER, user_id=user)
        await authz.check(caller, CHAT, ChannelAction.PUBLISH)
    assert database.asked == 6

    other = Channel.parse("chat:00000000-0000-0000-0000-0000000000ff")
    for user in users:  # a second channel past the bound: every channel is doubted
        authz.membership_changed(user, other)
    assert len(authz._distrusted) <= 3
    assert len(authz._distrusted_channels) <= 1
    cache.values[KEYS.channel_acl(USER, "chat:elsewhere", "publish")] = b"0"
    await authz.check(CALLER, Channel.parse("chat:elsewhere"), ChannelAction.PUBLISH)
    assert database.asked == 7

    clock.now += 300  # every doubt has ended: Redis is believed again, and forgotten
    cache.values[KEYS.channel_acl(USER, "chat:elsewhere", "publish")] = b"1"
    await authz.check(CALLER, Channel.parse("chat:elsewhere"), ChannelAction.PUBLISH)
    assert database.asked == 7
    authz.membership_changed(USER, CHANNEL)
    assert len(authz._distrusted) == 1
    assert not authz._distrusted_channels
