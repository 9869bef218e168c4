"""Presence against real Redis and NATS: joins and leaves go out as one diff per channel
per tick, and an unreachable Redis never fails a join."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from cli.embedded.process import free_port
from hub.ws.presence import RENEW_BATCH, Presence
from hubbub.config import Settings
from hubbub.contracts.channels import Channel
from hubbub.contracts.errors import Unavailable
from hubbub.contracts.subjects import Subjects
from hubbub.keys import RedisKeys
from hubbub.natsconn import connect_nats
from hubbub.redisconn import redis_from_settings
from tests.support.clock import Clock
from tests.support.tcp_proxy import TcpProxy
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


class LinkedNats:
    """A NATS connection through a proxy the test cuts and restores: one hub's link."""

    def __init__(self, proxy: TcpProxy, nc: NATS) -> None:
        self.proxy = proxy
        self.nc = nc

    async def cut(self) -> None:
        await self.proxy.cut()
        await wait_for(lambda: not self.nc.is_connected, what="the link down")

    async def restore(self) -> None:
        reconnects = self.nc.stats["reconnects"]
        await self.proxy.restore()
        await wait_for(
            lambda: self.nc.is_connected and self.nc.stats["reconnects"] > reconnects,
            what="the link back",
        )


@pytest.fixture
async def linked(settings: Settings) -> AsyncIterator[LinkedNats]:
    proxy = TcpProxy.to_url(settings.nats_url or "")
    await proxy.start()
    conn = await connect_nats(proxy.url("nats"), "hubbub-test-linked")
    yield LinkedNats(proxy, conn)
    await conn.close()
    await proxy.stop()


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

    async def test_a_diff_over_the_bus_payload_limit_goes_out_in_several_pushes(
        self, redis: Redis, nc: NATS, settings: Settings, diffs: Diffs
    ) -> None:
        """More changes in a tick than one NATS message holds (a hub whose sockets on a
        channel all close at once): every join, then every leave, still reaches the
        other hubs, each push within the limit, each client named once per change."""
        presence = presence_on(redis, nc, settings)
        many = nc.max_payload // 50  # entries of 75 bytes (a user's UUID, a client id)
        clients = {f"{i:016x}": f"{i:08d}-0000-4000-8000-000000000000" for i in range(many)}
        for client, user in clients.items():
            await presence.join(CHANNEL, user, client)
        await presence.flush()
        joins = list(await diffs.settled())
        for client, user in clients.items():
            await presence.leave(CHANNEL, user, client)
        await presence.flush()
        got = await diffs.settled()
        leaves = got[len(joins) :]

        assert len(joins) > 1
        assert len(leaves) > 1
        assert all(len(orjson.dumps(d)) <= nc.max_payload for d in got)
        joined = [e["client"] for d in joins for e in d["joined"]]
        left = [e["client"] for d in leaves for e in d["left"]]
        assert sorted(joined) == sorted(left) == sorted(clients)
        assert believed(joins) == set(clients)
        assert believed(got) == set()
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


def believed(got: list[dict[str, Any]], start: set[str] | None = None) -> set[str]:
    """The member list of a client that applies ``got`` (left, then joined) to ``start``."""
    clients = set(start or ())
    for diff in got:
        clients -= {entry["client"] for entry in diff["left"]}
        clients |= {entry["client"] for entry in diff["joined"]}
    return clients


def presence_with_clock(redis: Redis, nc: NATS, settings: Settings, clock: Clock) -> Presence:
    """A hub whose wall clock (the entries' expiries) and monotonic clock (its own
    timings) are both ``clock``."""
    keys = RedisKeys(settings.namespace)
    subjects = Subjects(settings.namespace)
    return Presence(redis, keys, nc, subjects, ttl=30, clock=clock, monotonic=clock)


def slow_round_trips(redis: Redis, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every round trip to ``redis`` (a command, or a pipeline's) moves ``clock`` on a
    second."""
    execute_command = redis.execute_command

    async def command(*args: Any, **kwargs: Any) -> Any:
        clock.advance(1)
        return await execute_command(*args, **kwargs)

    pipeline = redis.pipeline

    def slow_pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = pipeline(*args, **kwargs)
        execute = pipe.execute

        async def execute_slowly(*a: Any, **kw: Any) -> Any:
            clock.advance(1)
            return await execute(*a, **kw)

        pipe.execute = execute_slowly  # type: ignore[method-assign]
        return pipe

    monkeypatch.setattr(redis, "execute_command", command)
    monkeypatch.setattr(redis, "pipeline", slow_pipeline)


def unreachable_redis(settings: Settings) -> Redis:
    return redis_from_settings(
        settings.model_copy(
            update={"redis_url": f"redis://127.0.0.1:{free_port()}/0", "redis_timeout_s": 0.5}
        )
    )


class TestLateRenewals:
    async def test_a_live_member_swept_by_another_hub_is_announced_joined_again(
        self, redis: Redis, nc: NATS, settings: Settings, diffs: Diffs
    ) -> None:
        """Neither hub renewed for a TTL (Redis was unreachable). Hub A's heartbeat comes
        first: it sweeps B's live client and announces it left. B's renewal puts it back
        and announces it joined, so the diffs add up to the member list."""
        clock = Clock()
        a = presence_with_clock(redis, nc, settings, clock)
        b = presence_with_clock(redis, nc, settings, clock)
        await a.join(CHANNEL, "ann", "c-ann")
        await b.join(CHANNEL, "bob", "c-bob")
        await a.flush()
        await b.flush()
        clock.advance(31)  # every entry expired: no renewal got through
        await a.renew_and_sweep()
        await a.flush()
        await b.renew_and_sweep()
        await b.flush()
        got = await diffs.settled()
        members = {m["client"] for m in await a.members(CHANNEL)}
        assert members == {"c-ann", "c-bob"}
        assert believed(got) == members
        assert got[-1]["joined"] == [{"user": "bob", "client": "c-bob"}]

    async def test_a_pass_over_many_channels_on_a_slow_link_keeps_every_entry_alive(
        self, redis: Redis, nc: NATS, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each round trip to Redis takes a second (a far-away Redis, compressed): the
        pass over 100 channels renews them in a few round trips, each counted from its
        own time, so none of its entries has expired when it ends."""
        clock = Clock()
        presence = presence_with_clock(redis, nc, settings, clock)
        channels = [
            Channel.parse(f"workspace:7f1c2d3e-0000-4000-8000-{i:012d}") for i in range(100)
        ]
        for channel in channels:
            await presence.join(channel, "ann", f"c-{channel.name}")
        await presence.flush()
        clock.advance(20)  # the next pass is due (every third of the TTL) and more
        slow_round_trips(redis, clock, monkeypatch)

        await presence.renew_and_sweep()

        monkeypatch.undo()  # looked at as the pass ends
        another_hub = presence_with_clock(redis, nc, settings, clock)
        for channel in channels:
            assert [m["client"] for m in await another_hub.members(channel)] == [
                f"c-{channel.name}"
            ]

    async def test_a_renewal_in_time_announces_nothing(
        self, redis: Redis, nc: NATS, settings: Settings, diffs: Diffs
    ) -> None:
        """Renewing entries that are still there is no news."""
        clock = Clock()
        presence = presence_with_clock(redis, nc, settings, clock)
        await presence.join(CHANNEL, "ann", "c-ann")
        await presence.flush()
        clock.advance(10)
        await presence.renew_and_sweep()
        await presence.flush()
        [joined] = await diffs.settled()
        assert joined["joined"] == [{"user": "ann", "client": "c-ann"}]


class TestSnapshots:
    async def test_snapshots_after_a_storm_of_subscribes_do_not_send_a_diff_each(
        self, redis: Redis, nc: NATS, settings: Settings, diffs: Diffs
    ) -> None:
        """The documented client pattern — subscribe, then ask for the members — in a
        storm of 50: the joins still go out as one diff, with the ticker."""
        presence = presence_on(redis, nc, settings)
        for i in range(50):
            await presence.join(CHANNEL, f"u{i}", f"c{i}")  # the subscribe, answered
            assert f"c{i}" in {m["client"] for m in await presence.members(CHANNEL)}
        assert await diffs.settled() == []  # nothing published before the tick
        await presence.flush()
        [diff] = await diffs.settled()
        assert len(diff["joined"]) == 50

    async def test_a_leave_not_yet_sent_is_not_in_the_snapshot(
        self, redis: Redis, nc: NATS, settings: Settings
    ) -> None:
        presence = presence_on(redis, nc, settings)
        await presence.join(CHANNEL, "ann", "c-ann")
        await presence.join(CHANNEL, "bob", "c-bob")
        await presence.flush()
        await presence.leave(CHANNEL, "bob", "c-bob")
        assert [m["client"] for m in await presence.members(CHANNEL)] == ["c-ann"]
        assert {m["user"] for m in await presence.members(CHANNEL)} == {"ann"}


class TestRedisBlips:
    async def test_a_leave_lost_with_redis_is_written_once_redis_is_back(
        self, redis: Redis, nc: NATS, settings: Settings
    ) -> None:
        """The leave's write fails; the renewal after Redis is back removes the entry,
        though this hub has no member left on the channel."""
        presence = presence_on(redis, nc, settings)
        await presence.join(CHANNEL, "ann", "c-ann")
        await presence.flush()
        down = unreachable_redis(settings)
        presence.redis = down
        await presence.leave(CHANNEL, "ann", "c-ann")
        await presence.flush()  # the leave's write is lost with Redis
        presence.redis = redis
        await down.aclose()
        await presence.renew_and_sweep()
        assert await presence_on(redis, nc, settings).members(CHANNEL) == []  # another hub's

    async def test_a_leave_written_once_redis_is_back_is_announced_again(
        self, redis: Redis, nc: NATS, settings: Settings, diffs: Diffs
    ) -> None:
        """Its first announcement went out while Redis still listed the client: a
        snapshot taken on another hub before the renewal wrote the leave lists it. The
        leave is announced again once written, so that list ends up right too."""
        here = presence_on(redis, nc, settings)
        there = presence_on(redis, nc, settings)
        await here.join(CHANNEL, "xavier", "c-x")
        await there.join(CHANNEL, "bob", "c-bob")
        await here.flush()
        await there.flush()
        down = unreachable_redis(settings)
        here.redis = down
        await here.leave(CHANNEL, "xavier", "c-x")
        await here.flush()  # announced; its write lost with Redis
        here.redis = redis
        await down.aclose()
        before = len(await diffs.settled())
        snapshot = {m["client"] for m in await there.members(CHANNEL)}  # a socket's, there
        assert snapshot == {"c-x", "c-bob"}

        await here.renew_and_sweep()
        await there.renew_and_sweep()
        await here.flush()
        await there.flush()

        after = (await diffs.settled())[before:]
        assert {"user": "xavier", "client": "c-x"} in [e for d in after for e in d["left"]]
        now = {m["client"] for m in await presence_on(redis, nc, settings).members(CHANNEL)}
        assert believed(after, snapshot) == now == {"c-bob"}

    async def test_only_the_leaves_of_members_written_to_redis_wait_for_it(
        self, redis: Redis, nc: NATS, settings: Settings, diffs: Diffs
    ) -> None:
        """A long outage with sockets coming and going: their joins never reached Redis,
        so their leaves have nothing to remove there and are not kept for it (what is
        kept stays bounded by the members Redis had). Every leave is still announced."""
        presence = presence_on(redis, nc, settings)
        await presence.join(CHANNEL, "ann", "c-ann")
        await presence.flush()  # written
        down = unreachable_redis(settings)
        presence.redis = down
        for i in range(50):
            await presence.join(CHANNEL, f"u{i}", f"c{i}")
            await presence.flush()
            await presence.leave(CHANNEL, f"u{i}", f"c{i}")
            await presence.flush()
        await presence.leave(CHANNEL, "ann", "c-ann")
        await presence.flush()

        assert presence.unwritten == {str(CHANNEL): {"c-ann": "ann"}}
        got = await diffs.settled()
        assert {e["client"] for d in got for e in d["left"]} == {"c-ann"} | {
            f"c{i}" for i in range(50)
        }
        presence.redis = redis
        await down.aclose()
        await presence.renew_and_sweep()
        assert await presence_on(redis, nc, settings).members(CHANNEL) == []
        assert presence.unwritten == {}

    async def test_a_client_back_before_its_leave_was_written_stays(
        self, redis: Redis, nc: NATS, settings: Settings
    ) -> None:
        presence = presence_on(redis, nc, settings)
        down = unreachable_redis(settings)
        presence.redis = down
        await presence.join(CHANNEL, "ann", "c-ann")
        await presence.flush()
        await presence.leave(CHANNEL, "ann", "c-ann")
        await presence.flush()
        await presence.join(CHANNEL, "ann", "c-ann")  # resubscribed meanwhile
        presence.redis = redis
        await down.aclose()
        await presence.renew_and_sweep()
        assert [m["client"] for m in await presence.members(CHANNEL)] == ["c-ann"]

    async def test_a_leave_lost_while_an_earlier_one_is_written_is_written_later(
        self, redis: Redis, nc: NATS, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The renewal writes ann's lost leave; meanwhile ann comes back (her leave is
        no longer owed) and bob's leave is lost with Redis in turn. Bob's is written by
        the next renewal, not forgotten with ann's."""
        presence = presence_on(redis, nc, settings)
        await presence.join(CHANNEL, "ann", "c-ann")
        await presence.join(CHANNEL, "bob", "c-bob")
        await presence.flush()
        down = unreachable_redis(settings)
        presence.redis = down
        await presence.leave(CHANNEL, "ann", "c-ann")
        await presence.flush()  # ann's leave is lost with Redis
        presence.redis = redis

        async def meanwhile() -> None:
            await presence.join(CHANNEL, "ann", "c-ann")  # resubscribed
            presence.redis = down
            await presence.leave(CHANNEL, "bob", "c-bob")
            await presence.flush()  # bob's leave is lost with Redis
            presence.redis = redis

        pipeline = redis.pipeline
        held = [meanwhile]

        def pipeline_with_a_pause(*args: Any, **kwargs: Any) -> Any:
            pipe = pipeline(*args, **kwargs)
            execute = pipe.execute

            async def execute_then_wait(*a: Any, **kw: Any) -> Any:
                result = await execute(*a, **kw)
                if held:
                    await held.pop()()
                return result

            pipe.execute = execute_then_wait
            return pipe

        monkeypatch.setattr(redis, "pipeline", pipeline_with_a_pause)
        await presence.renew_and_sweep()  # writes ann's leave, with the pause
        await presence.renew_and_sweep()
        await down.aclose()
        another_hub = presence_on(redis, nc, settings)
        assert [m["client"] for m in await another_hub.members(CHANNEL)] == ["c-ann"]

    async def test_presence_keys_expire_unless_renewed(
        self, redis: Redis, nc: NATS, settings: Settings
    ) -> None:
        """Every write sets the channel's keys to expire after twice the TTL: a channel
        whose hubs all died does not stay in Redis for ever."""
        presence = presence_on(redis, nc, settings)
        keys = RedisKeys(settings.namespace)
        await presence.join(CHANNEL, "ann", "c-ann")
        await presence.flush()
        for key in (keys.presence(str(CHANNEL)), keys.presence_info(str(CHANNEL))):
            assert 0 < await redis.ttl(key) <= 60
        await redis.persist(keys.presence(str(CHANNEL)))
        await redis.persist(keys.presence_info(str(CHANNEL)))
        await presence.renew_and_sweep()
        for key in (keys.presence(str(CHANNEL)), keys.presence_info(str(CHANNEL))):
            assert 0 < await redis.ttl(key) <= 60


class TestRenewalRefusals:
    """A command of a renewal pass that Redis refuses (a key of the wrong type, a script
    refused for lack of memory) fails its own channel, not the pass: the other channels'
    renewals and sweeps are still announced, and Redis is not taken for unreachable."""

    async def expired_elsewhere(self, redis: Redis, settings: Settings, client: str) -> None:
        """A dead hub's member of ``CHANNEL``, expired long ago."""
        keys = RedisKeys(settings.namespace)
        await redis.zadd(keys.presence(str(CHANNEL)), {client: 1.0})
        info = orjson.dumps({"user": "u-dead", "client": client})
        await redis.hset(keys.presence_info(str(CHANNEL)), client, info)

    async def break_channel(self, redis: Redis, settings: Settings, channel: Channel) -> None:
        """Every renewal and sweep of ``channel`` is refused: its key is no sorted set."""
        keys = RedisKeys(settings.namespace)
        await redis.delete(keys.presence(str(channel)))
        await redis.set(keys.presence(str(channel)), "not a sorted set")

    async def test_a_channel_refused_in_a_pass_does_not_lose_another_channels_sweep(
        self,
        redis: Redis,
        nc: NATS,
        settings: Settings,
        diffs: Diffs,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        broken = Channel.parse("workspace:7f1c2d3e-0000-4000-8000-0000000000ff")
        presence = presence_on(redis, nc, settings)
        await presence.join(broken, "ann", "c-ann-1")
        await presence.join(CHANNEL, "ann", "c-ann-2")
        await presence.flush()
        await self.expired_elsewhere(redis, settings, "c-dead")
        await self.break_channel(redis, settings, broken)
        before = len(await diffs.settled())

        with caplog.at_level(logging.WARNING, logger="hubbub.ws.presence"):
            await presence.renew_and_sweep()
            await presence.renew_and_sweep()  # refused again: not logged again yet
        await presence.flush()

        after = (await diffs.settled())[before:]
        assert [d["left"] for d in after] == [[{"user": "u-dead", "client": "c-dead"}]]
        assert [m["client"] for m in await presence_on(redis, nc, settings).members(CHANNEL)] == [
            "c-ann-2"
        ]
        assert presence.redis_ok
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 1
        assert str(broken) in lines[0]
        assert "unreachable" not in lines[0]

    async def test_the_batches_after_a_refused_channel_are_still_renewed_and_swept(
        self, redis: Redis, nc: NATS, settings: Settings, diffs: Diffs
    ) -> None:
        broken = Channel.parse("workspace:7f1c2d3e-0000-4000-8000-0000000000ff")
        presence = presence_on(redis, nc, settings)
        await presence.join(broken, "ann", "c-ann-1")  # in the first batch
        for i in range(RENEW_BATCH):
            channel = Channel.parse(f"workspace:7f1c2d3e-0000-4000-8000-1{i:011d}")
            await presence.join(channel, "ann", f"c-{i}")
        await presence.join(CHANNEL, "ann", "c-ann-2")  # in the second
        await presence.flush()
        await self.expired_elsewhere(redis, settings, "c-dead")
        await self.break_channel(redis, settings, broken)
        before = len(await diffs.settled())

        await presence.renew_and_sweep()
        await presence.flush()

        after = (await diffs.settled())[before:]
        assert [d["left"] for d in after] == [[{"user": "u-dead", "client": "c-dead"}]]
        assert presence.redis_ok


class TestStop:
    async def test_changes_taken_by_a_flush_cut_short_go_out_with_the_last_one(
        self, redis: Redis, nc: NATS, settings: Settings, diffs: Diffs
    ) -> None:
        """``stop`` cancels the ticker while its flush waits on Redis: the leaves it had
        taken are sent by the final flush, not lost."""
        presence = presence_on(redis, nc, settings)
        held = asyncio.Event()
        release = asyncio.Event()
        record = presence._record

        async def slow_record(changes: Any) -> None:
            held.set()
            await release.wait()
            await record(changes)

        presence._record = slow_record  # type: ignore[method-assign]
        presence.start()
        await presence.join(CHANNEL, "ann", "c-ann")
        await held.wait()  # the ticker's flush has taken the join and waits
        presence._record = record  # type: ignore[method-assign]
        await presence.stop()
        [diff] = await diffs.settled()
        assert diff["joined"] == [{"user": "ann", "client": "c-ann"}]
        assert [m["client"] for m in await presence.members(CHANNEL)] == ["c-ann"]


class TestResync:
    async def test_a_resync_brings_a_list_kept_from_diffs_up_to_date(
        self, redis: Redis, nc: NATS, settings: Settings, diffs: Diffs
    ) -> None:
        """This hub forwarded the diffs up to bob's join; its link was down for bob's
        leave and carl's join. Its resync diff, applied on top, gives the members."""
        here = presence_on(redis, nc, settings)
        there = presence_on(redis, nc, settings)
        here.watch(str(CHANNEL))
        await here.join(CHANNEL, "ann", "c-ann")
        await here.flush()
        snapshot = {m["client"] for m in await here.members(CHANNEL)}  # a socket's
        await there.join(CHANNEL, "bob", "c-bob")
        await there.flush()
        [_, bob_joined] = await diffs.settled()
        here.forwarded(str(CHANNEL), bob_joined["joined"], bob_joined["left"])
        await there.leave(CHANNEL, "bob", "c-bob")  # missed by this hub
        await there.join(CHANNEL, "carl", "c-carl")
        await there.flush()

        payload = await here.resync(CHANNEL)

        assert payload is not None
        resync = orjson.loads(payload)
        assert resync["push"] == "presence"
        assert resync["left"] == [{"user": "bob", "client": "c-bob"}]
        members = {m["client"] for m in await here.members(CHANNEL)}
        assert members == {"c-ann", "c-carl"}
        assert believed([bob_joined, resync], snapshot) == members

    async def test_a_resync_names_only_the_joins_the_sockets_could_have_missed(
        self, redis: Redis, nc: NATS, settings: Settings, diffs: Diffs
    ) -> None:
        """Every socket is sent the resync diff: it carries the members joined while the
        link was down, not the whole list again (O(members) per socket, per channel)."""
        here = presence_on(redis, nc, settings)
        there = presence_on(redis, nc, settings)
        here.watch(str(CHANNEL))
        for i in range(20):
            await here.join(CHANNEL, f"u{i}", f"c{i}")
        await here.flush()
        await here.members(CHANNEL)  # the sockets' snapshot
        await there.join(CHANNEL, "carl", "c-carl")  # missed by this hub
        await there.flush()

        payload = await here.resync(CHANNEL)

        assert payload is not None
        resync = orjson.loads(payload)
        assert (resync["joined"], resync["left"]) == ([{"user": "carl", "client": "c-carl"}], [])

    async def test_a_resync_after_nothing_was_missed_sends_nothing(
        self, redis: Redis, nc: NATS, settings: Settings
    ) -> None:
        here = presence_on(redis, nc, settings)
        here.watch(str(CHANNEL))
        await here.join(CHANNEL, "ann", "c-ann")
        await here.flush()
        await here.members(CHANNEL)
        assert await here.resync(CHANNEL) is None

    async def test_a_snapshot_taken_during_a_resync_does_not_hide_a_missed_join(
        self, redis: Redis, nc: NATS, settings: Settings
    ) -> None:
        """Another socket asks for the members while the resync reads them: it learns of
        carl from its snapshot, the sockets that were there before still need the join."""
        here = presence_on(redis, nc, settings)
        there = presence_on(redis, nc, settings)
        here.watch(str(CHANNEL))
        await here.join(CHANNEL, "ann", "c-ann")
        await here.flush()
        await here.members(CHANNEL)
        await there.join(CHANNEL, "carl", "c-carl")  # missed by this hub
        await there.flush()
        read = here.redis.zrangebyscore

        async def read_with_a_snapshot_meanwhile(*args: Any, **kwargs: Any) -> Any:
            here.redis.zrangebyscore = read  # type: ignore[method-assign]
            await here.members(CHANNEL)  # the newcomer's snapshot
            return await read(*args, **kwargs)

        here.redis.zrangebyscore = read_with_a_snapshot_meanwhile  # type: ignore[method-assign]
        payload = await here.resync(CHANNEL)

        assert payload is not None
        assert orjson.loads(payload)["joined"] == [{"user": "carl", "client": "c-carl"}]

    async def test_a_snapshot_taken_while_the_link_was_down_does_not_hide_a_missed_join(
        self, redis: Redis, nc: NATS, settings: Settings, linked: LinkedNats
    ) -> None:
        """This hub's link to NATS is down when carl joins on another hub: the join's
        diff never reaches it. A socket that asks for the members meanwhile learns of
        carl; the sockets that were there before did not, so the resync names him."""
        clock = Clock(time.time())
        here = presence_with_clock(redis, linked.nc, settings, clock)
        there = presence_on(redis, nc, settings)
        here.watch(str(CHANNEL))
        await here.join(CHANNEL, "ann", "c-ann")
        await here.flush()
        assert {m["client"] for m in await here.members(CHANNEL)} == {"c-ann"}  # socket 1's
        await linked.cut()
        await there.join(CHANNEL, "carl", "c-carl")  # missed by this hub
        await there.flush()
        clock.advance(1)  # a while later
        assert {m["client"] for m in await here.members(CHANNEL)} == {"c-ann", "c-carl"}
        await linked.restore()

        payload = await here.resync(CHANNEL)

        assert payload is not None
        assert orjson.loads(payload)["joined"] == [{"user": "carl", "client": "c-carl"}]

    async def test_a_channel_not_watched_has_no_resync(
        self, redis: Redis, nc: NATS, settings: Settings
    ) -> None:
        presence = presence_on(redis, nc, settings)
        assert await presence.resync(CHANNEL) is None


@pytest.fixture
async def proxied_redis(settings: Settings) -> AsyncIterator[tuple[TcpProxy, Redis]]:
    """A hub's Redis client (``redis_from_settings``: a command failing on a connection
    error is sent once more) through a proxy the test holds and drops."""
    proxy = TcpProxy.to_url(settings.redis_url or "")
    await proxy.start()
    client = redis_from_settings(
        settings.model_copy(update={"redis_url": proxy.in_place_of(settings.redis_url or "")})
    )
    yield proxy, client
    proxy.release()
    await client.aclose()
    await proxy.stop()


class TestLostReplies:
    """Redis ran a renewal pass's pipeline, but its replies never reached the hub (the
    connection went while they were on their way): the entries its sweep removed are
    still announced left."""

    async def expired_elsewhere(self, redis: Redis, settings: Settings) -> None:
        """A dead hub's member of ``CHANNEL``, expired long ago."""
        keys = RedisKeys(settings.namespace)
        await redis.zadd(keys.presence(str(CHANNEL)), {"c-dead": 1.0})
        info = orjson.dumps({"user": "u-dead", "client": "c-dead"})
        await redis.hset(keys.presence_info(str(CHANNEL)), "c-dead", info)

    async def ann_with_a_dead_member(
        self, hub_redis: Redis, redis: Redis, nc: NATS, settings: Settings
    ) -> Presence:
        """A hub on ``hub_redis`` with ann's c-ann joined and announced, and a dead hub's
        c-dead expired beside it."""
        presence = presence_on(hub_redis, nc, settings)
        await presence.join(CHANNEL, "ann", "c-ann")
        await presence.flush()
        await self.expired_elsewhere(redis, settings)
        return presence

    async def pass_with_its_reply_held(
        self, proxy: TcpProxy, presence: Presence, naming: bytes = b"c-dead"
    ) -> asyncio.Task[None]:
        """A pass Redis has run, its reply (naming ``naming``) held in the proxy."""
        proxy.hold_from(naming)
        renewal = asyncio.create_task(presence.renew_and_sweep())
        await asyncio.wait_for(proxy.downstream_held.wait(), 10)
        return renewal

    async def reply_lost_and_retry_refused(
        self, proxy: TcpProxy, renewal: asyncio.Task[None]
    ) -> None:
        """The link goes with the held reply and stays down through redis-py's retry, so
        the pass fails; then the link is back."""
        await proxy.cut()
        await renewal
        proxy.release()
        await proxy.restore()

    async def reply_lost_and_retried(self, proxy: TcpProxy, renewal: asyncio.Task[None]) -> None:
        """The connection drops with the held reply; redis-py sends the pipeline again on
        a new one, and the pass ends."""
        await proxy.drop()
        proxy.release()
        await renewal

    async def hubs_with_a_member_each(
        self, a_redis: Redis, b_redis: Redis, nc: NATS, settings: Settings, clock: Clock
    ) -> tuple[Presence, Presence]:
        """Hubs A and B on ``clock``: ann's c-ann joined on A, bob's c-bob on B, both
        announced."""
        a = presence_with_clock(a_redis, nc, settings, clock)
        b = presence_with_clock(b_redis, nc, settings, clock)
        await a.join(CHANNEL, "ann", "c-ann")
        await b.join(CHANNEL, "bob", "c-bob")
        await a.flush()
        await b.flush()
        return a, b

    async def test_a_sweep_whose_reply_was_lost_is_announced_by_the_next_pass(
        self,
        redis: Redis,
        nc: NATS,
        settings: Settings,
        diffs: Diffs,
        proxied_redis: tuple[TcpProxy, Redis],
    ) -> None:
        """The link goes with the reply and stays down through redis-py's retry: that
        pass fails; the next one announces c-dead's leave."""
        proxy, hub_redis = proxied_redis
        presence = await self.ann_with_a_dead_member(hub_redis, redis, nc, settings)
        before = len(await diffs.settled())

        renewal = await self.pass_with_its_reply_held(proxy, presence)
        await self.reply_lost_and_retry_refused(proxy, renewal)
        assert not presence.redis_ok
        assert (
            await redis.zscore(RedisKeys(settings.namespace).presence(str(CHANNEL)), "c-dead")
            is None
        )

        await presence.renew_and_sweep()
        await presence.flush()
        after = (await diffs.settled())[before:]
        assert [d["left"] for d in after] == [[{"user": "u-dead", "client": "c-dead"}]]
        assert [m["client"] for m in await presence.members(CHANNEL)] == ["c-ann"]

    async def test_a_sweep_whose_reply_was_lost_is_announced_after_the_retry(
        self,
        redis: Redis,
        nc: NATS,
        settings: Settings,
        diffs: Diffs,
        proxied_redis: tuple[TcpProxy, Redis],
    ) -> None:
        """The connection drops with the reply and redis-py sends the pipeline again on
        a new one: the sweep finds nothing left to remove, yet c-dead's leave is
        announced by that same pass, once."""
        proxy, hub_redis = proxied_redis
        presence = await self.ann_with_a_dead_member(hub_redis, redis, nc, settings)
        before = len(await diffs.settled())

        renewal = await self.pass_with_its_reply_held(proxy, presence)
        await self.reply_lost_and_retried(proxy, renewal)
        assert presence.redis_ok
        await presence.flush()
        await presence.renew_and_sweep()  # the next pass: nothing more
        await presence.flush()
        after = (await diffs.settled())[before:]
        assert [d["left"] for d in after] == [[{"user": "u-dead", "client": "c-dead"}]]

    async def test_a_swept_leave_is_announced_by_one_hub_and_by_another_if_it_dies_first(
        self, redis: Redis, nc: NATS, settings: Settings, diffs: Diffs
    ) -> None:
        """Hub A's sweep hands it c-dead's leave, and A dies before publishing it: hub
        B's passes leave it to A while A's claim holds (one hub announces each leave),
        then announce it; once published, the next pass lets go of it in Redis."""
        clock = Clock()
        a, b = await self.hubs_with_a_member_each(redis, redis, nc, settings, clock)
        await self.expired_elsewhere(redis, settings)
        before = len(await diffs.settled())

        await a.renew_and_sweep()  # handed c-dead; A dies without publishing it
        await b.renew_and_sweep()
        await b.flush()
        assert (await diffs.settled())[before:] == []

        clock.advance(30)  # A's claim lapses (its entry too: B sweeps that as well)
        await b.renew_and_sweep()
        await b.flush()
        after = (await diffs.settled())[before:]
        assert [sorted(e["client"] for e in d["left"]) for d in after] == [["c-ann", "c-dead"]]

        await b.renew_and_sweep()  # lets go of them: nothing owed remains
        await b.flush()
        assert (await diffs.settled())[before:] == after
        keys = RedisKeys(settings.namespace)
        for owed in (keys.presence_swept(str(CHANNEL)), keys.presence_claims(str(CHANNEL))):
            assert not await redis.exists(owed)

    async def test_a_member_renewed_before_its_lost_sweep_is_made_up_is_not_announced_left(
        self,
        redis: Redis,
        nc: NATS,
        settings: Settings,
        diffs: Diffs,
        proxied_redis: tuple[TcpProxy, Redis],
    ) -> None:
        """Hub B sweeps hub A's member (A's renewals were late) and the reply is lost;
        A's renewal puts it back and announces it joined before B's next pass, which
        then owes no leave for it: the diffs end with the member listed."""
        proxy, b_redis = proxied_redis
        clock = Clock()
        a, b = await self.hubs_with_a_member_each(redis, b_redis, nc, settings, clock)
        before = len(await diffs.settled())
        clock.advance(31)  # neither renewed in time

        # B renews c-bob, sweeps c-ann
        renewal = await self.pass_with_its_reply_held(proxy, b, naming=b"c-ann")
        await self.reply_lost_and_retry_refused(proxy, renewal)
        await a.renew_and_sweep()  # c-ann back: announced joined
        await a.flush()
        await b.renew_and_sweep()
        await b.flush()

        got = await diffs.settled()
        assert believed(got) == {"c-ann", "c-bob"}
        assert [(d["joined"], d["left"]) for d in got[before:]] == [
            ([{"user": "ann", "client": "c-ann"}], []),
            ([{"user": "bob", "client": "c-bob"}], []),  # back, its news lost with B's reply
        ]
        assert {m["client"] for m in await a.members(CHANNEL)} == {"c-ann", "c-bob"}

    @pytest.mark.parametrize("retried", [False, True], ids=["pass-fails", "retry-succeeds"])
    async def test_a_return_whose_renewal_reply_was_lost_is_still_announced_joined(
        self,
        redis: Redis,
        nc: NATS,
        settings: Settings,
        diffs: Diffs,
        proxied_redis: tuple[TcpProxy, Redis],
        retried: bool,
    ) -> None:
        """Hub B swept hub A's late member and announced it left; A's renewal puts it
        back, but its reply (naming it) is lost: the pass fails (the retry refused) and
        the next one announces it joined — or redis-py's retry, finding it present,
        still hands it over. The diffs end with the member listed."""
        proxy, a_redis = proxied_redis
        clock = Clock()
        a, b = await self.hubs_with_a_member_each(a_redis, redis, nc, settings, clock)
        clock.advance(31)  # neither renewed in time
        await b.renew_and_sweep()  # c-ann swept and announced left; c-bob back
        await b.flush()
        assert believed(await diffs.settled()) == {"c-bob"}

        renewal = await self.pass_with_its_reply_held(proxy, a, naming=b"c-ann")
        if retried:
            await self.reply_lost_and_retried(proxy, renewal)
        else:
            await self.reply_lost_and_retry_refused(proxy, renewal)
            await a.renew_and_sweep()
        await a.flush()
        await a.renew_and_sweep()  # lets go of it: not announced again
        await a.flush()

        got = await diffs.settled()
        assert believed(got) == {"c-ann", "c-bob"}
        assert sum(e["client"] == "c-ann" for d in got for e in d["joined"]) == 2
        returns = RedisKeys(settings.namespace).key("presence", str(CHANNEL), "returned", a.token)
        assert not await redis.exists(returns)

    @staticmethod
    def lose_next_reply(presence: Presence, monkeypatch: pytest.MonkeyPatch) -> None:
        """The hub's next pipeline runs in Redis, but its reply is lost: it raises a
        connection error (redis-py's retry, too, failed). The pipelines after it are
        answered."""
        real = presence.redis.pipeline

        def pipeline(*args: Any, **kwargs: Any) -> Any:
            pipe = real(*args, **kwargs)
            run = pipe.execute

            async def execute(*a: Any, **kw: Any) -> Any:
                await run(*a, **kw)
                monkeypatch.setattr(presence.redis, "pipeline", real)
                raise RedisConnectionError("the reply was lost")

            pipe.execute = execute  # type: ignore[method-assign]
            return pipe

        monkeypatch.setattr(presence.redis, "pipeline", pipeline)

    async def test_an_ack_sent_again_does_not_let_go_of_a_newer_owed_leave(
        self,
        redis: Redis,
        nc: NATS,
        settings: Settings,
        diffs: Diffs,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Hub A swept c-x and announced it left. c-x's hub put it back (dropping that
        owed leave) and c-x expired again. A's next pass lets go of the first leave,
        sweeps c-x again and claims it — and its reply is lost; so the pass after sends
        the same ack again. It must not let go of the new leave, which A has not
        announced: c-x is announced left twice."""
        clock = Clock()
        a = presence_with_clock(redis, nc, settings, clock)
        keys = RedisKeys(settings.namespace)
        ch = str(CHANNEL)
        info = orjson.dumps({"user": "u-x", "client": "c-x"})
        await a.join(CHANNEL, "ann", "c-ann")
        await a.flush()
        await redis.zadd(keys.presence(ch), {"c-x": 1.0})
        await redis.hset(keys.presence_info(ch), "c-x", info)
        before = len(await diffs.settled())

        await a.renew_and_sweep()  # handed c-x's leave
        await a.flush()  # announced: let go of by the next pass
        assert [e["client"] for d in (await diffs.settled())[before:] for e in d["left"]] == ["c-x"]
        # c-x's hub renews it late: its owed leave is dropped, and it is back (announced
        # joined by that hub), with an expiry already past.
        await redis.hdel(keys.presence_swept(ch), "c-x")
        await redis.hdel(keys.presence_claims(ch), "c-x")
        await redis.zadd(keys.presence(ch), {"c-x": clock() - 1})
        await redis.hset(keys.presence_info(ch), "c-x", info)

        self.lose_next_reply(a, monkeypatch)
        await a.renew_and_sweep()  # lets go of the first leave, owes a new one: reply lost
        assert not a.redis_ok
        assert await redis.hexists(keys.presence_swept(ch), "c-x")
        await a.renew_and_sweep()  # sends the first leave's ack again
        await a.flush()
        await a.renew_and_sweep()  # lets go of the second
        await a.flush()

        after = (await diffs.settled())[before:]
        assert [e["client"] for d in after for e in d["left"]] == ["c-x", "c-x"]
        for owed in (keys.presence_swept(ch), keys.presence_claims(ch)):
            assert not await redis.exists(owed)

    async def test_an_ack_sent_again_does_not_let_go_of_a_newer_return(
        self,
        redis: Redis,
        nc: NATS,
        settings: Settings,
        diffs: Diffs,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Another hub swept hub A's c-ann (announced left); A's renewal put it back and
        announced it joined. Swept again, c-ann is put back by A's next pass, which also
        lets go of the first return — and its reply is lost; so the pass after lets go of
        the first return again. It must not take the new one with it: c-ann is announced
        joined a second time (that hub's second `left` is not the last word on it)."""
        clock = Clock()
        a = presence_with_clock(redis, nc, settings, clock)
        keys = RedisKeys(settings.namespace)
        ch = str(CHANNEL)
        await a.join(CHANNEL, "ann", "c-ann")
        await a.flush()
        before = len(await diffs.settled())
        await redis.zrem(keys.presence(ch), "c-ann")  # swept by another hub
        await a.renew_and_sweep()  # c-ann returned
        await a.flush()  # announced joined: let go of by the next pass
        assert [e["client"] for d in (await diffs.settled())[before:] for e in d["joined"]] == [
            "c-ann"
        ]
        await redis.zrem(keys.presence(ch), "c-ann")  # swept again

        self.lose_next_reply(a, monkeypatch)
        await a.renew_and_sweep()  # lets go of the first return, finds a new one: reply lost
        assert not a.redis_ok
        await a.renew_and_sweep()  # lets go of the first return again
        await a.flush()
        await a.renew_and_sweep()  # lets go of the second
        await a.flush()

        after = (await diffs.settled())[before:]
        assert [e["client"] for d in after for e in d["joined"]] == ["c-ann", "c-ann"]
        assert not await redis.exists(keys.presence_returned(ch, a.token))
