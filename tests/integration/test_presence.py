"""Presence against real Redis and NATS: joins and leaves go out as one diff per channel
per tick, and an unreachable Redis never fails a join."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from redis.asyncio import Redis

from cli.embedded.process import free_port
from hub.ws.presence import Presence
from hubbub.config import Settings
from hubbub.contracts.channels import Channel
from hubbub.contracts.errors import Unavailable
from hubbub.contracts.subjects import Subjects
from hubbub.keys import RedisKeys
from hubbub.redisconn import redis_from_settings
from tests.support.waiting import wait_for

CHANNEL = Channel.parse("workspace:7f1c2d3e-0000-4000-8000-000000000001")


class Diffs:
    """The presence pushes published for ``CHANNEL``, as received over NATS."""

    def __init__(self, nc: NATS, subject: str) -> None:
        self.nc = nc
        self.subject = subject
        self.got: list[dict[str, Any]] = []
        self.barriers = 0

    async def on_msg(self, msg: Msg) -> None:
        frame = orjson.loads(msg.data)
        if frame == {"barrier": True}:
            self.barriers += 1
        else:
            self.got.append(frame)

    async def settled(self) -> list[dict[str, Any]]:
        """Everything published so far: a barrier message sent after it is seen last."""
        expected = self.barriers + 1
        await self.nc.publish(self.subject, b'{"barrier":true}')
        await wait_for(lambda: asyncio.sleep(0, self.barriers >= expected), what="barrier")
        return self.got


@pytest.fixture
async def diffs(nc: NATS, settings: Settings) -> AsyncIterator[Diffs]:
    subject = Subjects(settings.namespace).presence(CHANNEL)
    d = Diffs(nc, subject)
    sub = await nc.subscribe(subject, cb=d.on_msg)
    yield d
    await sub.unsubscribe()


def presence_on(redis: Redis, nc: NATS, settings: Settings) -> Presence:
    keys = RedisKeys(settings.namespace)
    return Presence(redis, keys, nc, Subjects(settings.namespace), ttl=30)


class TestDiffs:
    async def test_a_storm_of_joins_is_one_diff_and_every_member_is_recorded(
        self, redis: Redis, nc: NATS, settings: Settings, diffs: Diffs
    ) -> None:
        """300 joins within a tick: one push naming all 300 (not 300 pushes)."""
        presence = presence_on(redis, nc, settings)
        for i in range(300):
            await presence.join(CHANNEL, f"user-{i}", f"client-{i}")
        await presence.flush()
        [diff] = await diffs.settled()
        assert diff["push"] == "presence"
        assert diff["channel"] == str(CHANNEL)
        assert diff["left"] == []
        assert {(d["user"], d["client"]) for d in diff["joined"]} == {
            (f"user-{i}", f"client-{i}") for i in range(300)
        }
        members = await presence.members(CHANNEL)
        assert {m["client"] for m in members} == {f"client-{i}" for i in range(300)}

    async def test_within_a_tick_the_last_change_of_a_client_wins(
        self, redis: Redis, nc: NATS, settings: Settings, diffs: Diffs
    ) -> None:
        """Joined, then left before the tick: the diff says left, Redis holds nothing."""
        presence = presence_on(redis, nc, settings)
        await presence.join(CHANNEL, "ann", "c-ann")
        await presence.flush()
        await presence.join(CHANNEL, "bob", "c-bob")
        await presence.leave(CHANNEL, "bob", "c-bob")
        await presence.leave(CHANNEL, "ann", "c-ann")
        await presence.flush()
        first, second = await diffs.settled()
        assert first["joined"] == [{"user": "ann", "client": "c-ann"}]
        assert second["joined"] == []
        assert sorted(second["left"], key=lambda d: d["user"]) == [
            {"user": "ann", "client": "c-ann"},
            {"user": "bob", "client": "c-bob"},
        ]
        assert await presence.members(CHANNEL) == []

    async def test_members_include_this_hubs_changes_not_yet_sent(
        self, redis: Redis, nc: NATS, settings: Settings
    ) -> None:
        """A client asks for the member list right after subscribing: it is on it."""
        presence = presence_on(redis, nc, settings)
        await presence.join(CHANNEL, "ann", "c-ann")
        assert [m["client"] for m in await presence.members(CHANNEL)] == ["c-ann"]


class TestRedisDown:
    async def test_joins_and_leaves_fail_open_and_the_outage_is_logged_once(
        self, nc: NATS, settings: Settings, diffs: Diffs, caplog: pytest.LogCaptureFixture
    ) -> None:
        """No Redis: the diffs still go out, nothing raises, one warning for the outage."""
        down = redis_from_settings(
            settings.model_copy(
                update={
                    "redis_url": f"redis://127.0.0.1:{free_port()}/0",
                    "redis_timeout_s": 0.5,
                }
            )
        )
        presence = presence_on(down, nc, settings)
        with caplog.at_level(logging.WARNING, logger="hubbub.ws.presence"):
            await presence.join(CHANNEL, "ann", "c-ann")
            await presence.flush()
            await presence.leave(CHANNEL, "ann", "c-ann")
            await presence.join(CHANNEL, "bob", "c-bob")
            await presence.flush()
            await presence.renew_and_sweep()
        await down.aclose()
        got = await diffs.settled()
        assert [d["joined"] for d in got] == [
            [{"user": "ann", "client": "c-ann"}],
            [{"user": "bob", "client": "c-bob"}],
        ]
        assert [d["left"] for d in got] == [[], [{"user": "ann", "client": "c-ann"}]]
        assert not presence.redis_ok
        assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1

    async def test_the_member_list_is_unavailable_without_redis(
        self, nc: NATS, settings: Settings
    ) -> None:
        """Only Redis holds the list: asking for it answers 503, never an internal error."""
        down = redis_from_settings(
            settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
        )
        presence = presence_on(down, nc, settings)
        await presence.join(CHANNEL, "ann", "c-ann")
        with pytest.raises(Unavailable):
            await presence.members(CHANNEL)
        await down.aclose()

    async def test_entries_are_recorded_again_once_redis_is_back(
        self, redis: Redis, nc: NATS, settings: Settings, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The renewal after an outage writes this hub's members back, and says so once."""
        presence = presence_on(redis, nc, settings)
        presence.redis_ok = False  # as after a failed write
        await presence.join(CHANNEL, "ann", "c-ann")
        presence.changes.clear()  # that write was lost with Redis
        with caplog.at_level(logging.INFO, logger="hubbub.ws.presence"):
            await presence.renew_and_sweep()
        assert [m["client"] for m in await presence.members(CHANNEL)] == ["c-ann"]
        assert presence.redis_ok
        assert [r.getMessage() for r in caplog.records] == ["presence: Redis is back"]
