"""The ``presence`` command's snapshot against real Redis and NATS: the sockets that ask
for a channel's members within a tick (a reconnect storm: every socket subscribes, then
asks) share one read of Redis and one encoding, and still see what the protocol
promises — their own socket once their subscribe was answered, and nothing older than
a diff they were already sent. The reply does not count against the socket's send
limit while it is on its way, as a subscribe's recovery does not."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import orjson
import pytest
from nats.aio.client import Client as NATS
from redis.asyncio import Redis

from cli.embedded.process import free_port
from hub.ws import channels as channels_module
from hub.ws import commands as cmd
from hub.ws import frames
from hub.ws.authz import ChannelAuthorizer
from hub.ws.channels import ChannelCommands
from hub.ws.connection import Connection
from hub.ws.history import History
from hub.ws.presence import Presence
from hubbub.config import Settings
from hubbub.contracts.channels import DEFAULT_POLICIES, Channel
from hubbub.contracts.errors import HubbubError, Unavailable
from hubbub.contracts.protocol import Push
from hubbub.contracts.subjects import Subjects
from hubbub.keys import RedisKeys
from hubbub.redisconn import redis_from_settings
from tests.support.clock import Clock

CHANNEL = Channel.parse("workspace:7f1c2d3e-0000-4000-8000-000000000002")
TICK = 0.2


class Allowed:
    async def check(self, *_: Any) -> None:
        return None


class Buffering:
    """A socket's transport whose buffer keeps what is written (a slow client)."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.size = 0

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return self.size

    def write(self, data: bytes) -> None:
        self.written.append(data)
        self.size += len(data)

    def abort(self) -> None:
        pass

    def get_extra_info(self, name: str) -> None:
        return None


class Reads:
    """Counts the reads of a channel's members from Redis."""

    def __init__(self, redis: Redis) -> None:
        self.count = 0
        read = redis.zrangebyscore

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await read(*args, **kwargs)

        redis.zrangebyscore = counted  # type: ignore[method-assign]


def presence_on(
    redis: Redis, nc: NATS, settings: Settings, clock: Clock, wall: Clock | None = None
) -> Presence:
    """A hub whose snapshots age by ``clock`` (its monotonic clock), and whose entries'
    expiries are counted from ``wall`` (``clock`` unless given)."""
    keys = RedisKeys(settings.namespace)
    subjects = Subjects(settings.namespace)
    wall = clock if wall is None else wall
    return Presence(redis, keys, nc, subjects, ttl=30, tick=TICK, clock=wall, monotonic=clock)


def commands_of(presence: Presence, nc: NATS, settings: Settings) -> ChannelCommands:
    return ChannelCommands(
        settings=settings,
        nc=nc,
        subjects=Subjects(settings.namespace),
        history=cast(History, None),
        authorizer=cast(ChannelAuthorizer, Allowed()),
        presence=presence,
        policies=dict(DEFAULT_POLICIES),
    )


def socket(conn_id: str, send_limit: int = 1 << 20) -> tuple[Connection, Buffering]:
    conn = Connection(conn_id, None, None, None, send_limit)  # type: ignore[arg-type]
    transport = Buffering()
    conn.transport = transport  # type: ignore[assignment]
    conn.caller = object()  # type: ignore[assignment]
    conn.user_id = f"user-{conn_id}"
    return conn, transport


async def ask(channels: ChannelCommands, conn: Connection, command_id: int = 1) -> Any:
    """A ``presence`` command answered as the hub's dispatcher answers it (``Realtime.
    handle``); the reply's result, or its error."""
    command = cmd.Presence(op="presence", id=command_id, channel=str(CHANNEL))
    try:
        result = await channels.presence_of(conn, command)
    except HubbubError as exc:
        conn.send(frames.error(command.id, exc))
    else:
        if isinstance(result, bytes):
            conn.send(result)
        elif result is not None:
            conn.send(frames.result_obj(command.id, result))
    conn.flush()
    assert conn.transport is not None
    frame = conn.transport.written[-1]  # type: ignore[attr-defined]
    reply = orjson.loads(frame[frame.index(b"{") :])
    assert reply["id"] == command_id
    return reply.get("result", reply.get("error"))


def clients(result: Any) -> set[str]:
    return {m["client"] for m in result["members"]}


async def members_elsewhere(redis: Redis, nc: NATS, settings: Settings, n: int) -> Presence:
    """``n`` members joined on another hub, written to Redis."""
    there = presence_on(redis, nc, settings, Clock())
    for i in range(n):
        await there.join(CHANNEL, f"u{i}", f"c{i}")
    await there.flush()
    return there


class TestShared:
    async def test_sockets_asking_within_a_tick_share_one_read(
        self, redis: Redis, nc: NATS, settings: Settings
    ) -> None:
        """Fifty sockets ask at once, then ten more in turn within the tick: one read
        of Redis, every reply the whole list."""
        await members_elsewhere(redis, nc, settings, 100)
        here = presence_on(redis, nc, settings, Clock())
        reads = Reads(redis)
        channels = commands_of(here, nc, settings)
        sockets = [socket(f"s{i}")[0] for i in range(60)]

        together = await asyncio.gather(*(ask(channels, conn) for conn in sockets[:50]))
        in_turn = [await ask(channels, conn) for conn in sockets[50:]]

        assert reads.count == 1
        assert all(clients(r) == {f"c{i}" for i in range(100)} for r in together + in_turn)

    async def test_a_socket_asking_after_the_tick_is_answered_from_a_new_read(
        self, redis: Redis, nc: NATS, settings: Settings
    ) -> None:
        await members_elsewhere(redis, nc, settings, 3)
        clock = Clock()
        here = presence_on(redis, nc, settings, clock)
        reads = Reads(redis)
        channels = commands_of(here, nc, settings)
        await ask(channels, socket("a")[0])
        clock.advance(TICK)
        await ask(channels, socket("b")[0])
        assert reads.count == 2

    async def test_a_snapshot_ages_by_the_hubs_own_clock_not_the_wall_clock(
        self, redis: Redis, nc: NATS, settings: Settings
    ) -> None:
        """The wall clock is stepped back an hour (an NTP correction) just after a
        snapshot: a tick later it is still read again, not kept for the hour."""
        await members_elsewhere(redis, nc, settings, 3)
        clock, wall = Clock(), Clock()
        here = presence_on(redis, nc, settings, clock, wall=wall)
        reads = Reads(redis)
        channels = commands_of(here, nc, settings)
        await ask(channels, socket("a")[0])
        wall.advance(-3600)
        clock.advance(TICK)
        await ask(channels, socket("b")[0])
        assert reads.count == 2

    async def test_a_socket_is_on_the_snapshot_it_asks_for_after_its_subscribe(
        self, redis: Redis, nc: NATS, settings: Settings
    ) -> None:
        """A snapshot was just taken; a socket subscribes (its join not yet sent) and
        asks: it is on the list, from the same read."""
        await members_elsewhere(redis, nc, settings, 3)
        here = presence_on(redis, nc, settings, Clock())
        reads = Reads(redis)
        channels = commands_of(here, nc, settings)
        await ask(channels, socket("a")[0])
        newcomer, _ = socket("new")
        await here.join(CHANNEL, newcomer.user_id, newcomer.id)  # its subscribe, answered
        assert "new" in clients(await ask(channels, newcomer))
        await here.leave(CHANNEL, newcomer.user_id, newcomer.id)  # and its unsubscribe
        assert "new" not in clients(await ask(channels, socket("b")[0]))
        assert reads.count == 1

    async def test_a_snapshot_is_never_older_than_a_diff_its_socket_was_sent(
        self, redis: Redis, nc: NATS, settings: Settings
    ) -> None:
        """A member leaves on another hub after a snapshot was taken here; its diff
        reaches this hub's sockets. A socket asking after it is not told the member is
        there (no later diff would take it off its list)."""
        there = await members_elsewhere(redis, nc, settings, 3)
        here = presence_on(redis, nc, settings, Clock())
        here.watch(str(CHANNEL))
        channels = commands_of(here, nc, settings)
        assert clients(await ask(channels, socket("a")[0])) == {"c0", "c1", "c2"}
        await there.leave(CHANNEL, "u1", "c1")
        await there.flush()
        here.forwarded(str(CHANNEL), [], [{"user": "u1", "client": "c1"}])  # the diff
        assert clients(await ask(channels, socket("b")[0])) == {"c0", "c2"}

    async def test_this_hubs_own_leaves_written_meanwhile_are_not_listed(
        self, redis: Redis, nc: NATS, settings: Settings
    ) -> None:
        here = presence_on(redis, nc, settings, Clock())
        channels = commands_of(here, nc, settings)
        await here.join(CHANNEL, "ann", "c-ann")
        await here.join(CHANNEL, "bob", "c-bob")
        await here.flush()
        assert clients(await ask(channels, socket("a")[0])) == {"c-ann", "c-bob"}
        await here.leave(CHANNEL, "bob", "c-bob")
        await here.flush()
        assert clients(await ask(channels, socket("b")[0])) == {"c-ann"}

    async def test_a_read_that_failed_is_not_kept(
        self, redis: Redis, nc: NATS, settings: Settings
    ) -> None:
        """Redis unreachable: ``unavailable``; asked again once it is back, the members."""
        await members_elsewhere(redis, nc, settings, 2)
        here = presence_on(redis, nc, settings, Clock())
        down = redis_from_settings(
            settings.model_copy(
                update={"redis_url": f"redis://127.0.0.1:{free_port()}/0", "redis_timeout_s": 0.5}
            )
        )
        here.redis = down
        channels = commands_of(here, nc, settings)
        error = await ask(channels, socket("a")[0])
        assert error["code"] == Unavailable.code.value
        here.redis = redis
        await down.aclose()
        assert clients(await ask(channels, socket("b")[0])) == {"c0", "c1"}


class TestSendLimit:
    async def test_a_snapshot_bigger_than_the_send_limit_does_not_close_a_slow_socket(
        self, redis: Redis, nc: NATS, settings: Settings
    ) -> None:
        """The reply (a few KiB) is still in the socket's buffer, over its limit of
        1 KiB, when the next diff comes: the diff is measured without it, so the socket
        is not closed as a slow consumer (to reconnect and ask for the same list again)."""
        await members_elsewhere(redis, nc, settings, 100)
        here = presence_on(redis, nc, settings, Clock())
        channels = commands_of(here, nc, settings)
        conn, transport = socket("slow", send_limit=1024)
        assert len(clients(await ask(channels, conn))) == 100
        assert transport.size > conn.send_limit
        conn.push_frame(
            frames.text_frame(frames.push(Push.PRESENCE, channel=str(CHANNEL), joined=[], left=[]))
        )
        assert not conn.closed

    async def test_snapshots_piling_up_unread_are_refused_until_they_drain(
        self, redis: Redis, nc: NATS, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """What is not counted is bounded: while the uncounted replies still on their way
        are at the bound, another snapshot is ``rate_limited``; once they are sent, it
        is answered."""
        await members_elsewhere(redis, nc, settings, 100)
        here = presence_on(redis, nc, settings, Clock())
        channels = commands_of(here, nc, settings)
        conn, transport = socket("slow", send_limit=1024)
        await ask(channels, conn, 1)
        monkeypatch.setattr(channels_module, "MAX_UNCOUNTED_BYTES", transport.size + 10)
        refused = await ask(channels, conn, 2)
        assert refused["code"] == "rate_limited"
        assert refused["details"]["retry_after"] > 0
        transport.size = 0  # the client read them
        assert len(clients(await ask(channels, conn, 3))) == 100
        assert not conn.closed
