"""How a hub forwards the presence diffs published on a channel's presence subject to
its sockets there: bounded like publications, and only what is a presence diff; and
the resync diff it sends them after a NATS reconnect."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest

from hub.ws.connection import Connection
from hubbub.contracts.channels import Channel
from hubbub.contracts.errors import Unavailable
from hubbub.contracts.protocol import CloseCode
from tests.support.subscriptions import CHANNEL, FakeMsg, FakeSubscription, Gate, Hub, Transport
from tests.support.waiting import wait_for


class FullTransport(Transport):
    """A socket whose client stopped reading: ``buffered`` bytes wait in its buffer."""

    def __init__(self, buffered: int) -> None:
        super().__init__()
        self.buffered = buffered

    def get_write_buffer_size(self) -> int:
        return self.buffered


def diff(channel: str = CHANNEL, **fields: object) -> bytes:
    frame: dict[str, object] = {
        "push": "presence",
        "channel": channel,
        "joined": [{"user": "ann", "client": "c-ann"}],
        "left": [],
    }
    return orjson.dumps({**frame, **fields})


async def subscribed(hub: Hub, transport: Transport) -> tuple[Connection, FakeSubscription]:
    conn, _ = hub.socket("c-1", "u-1")
    conn.transport = transport  # type: ignore[assignment]
    await hub.subscribe(conn)
    conn.flush()  # the subscribe's reply, held for the end of the turn
    transport.written.clear()
    [presence] = hub.nats.active("presence")
    return conn, presence


def pushes(transport: Transport) -> list[dict[str, object]]:
    """The JSON of every text frame written (one frame per write here)."""
    return [orjson.loads(frame[frame.index(b"{") :]) for frame in transport.written]


class TestSlowSockets:
    async def test_a_socket_that_stops_reading_is_closed_by_a_presence_diff(self) -> None:
        """Its buffer is past the send limit: the diff is not piled on, the socket is
        closed as a slow consumer, as a publication would close it."""
        hub = Hub()
        transport = FullTransport(0)
        conn, presence = await subscribed(hub, transport)
        transport.buffered = conn.send_limit + 1
        await presence.cb(FakeMsg(diff()))
        assert conn.closed
        [said] = pushes(transport)
        assert (said["push"], said["code"]) == ("disconnect", CloseCode.SLOW_CONSUMER)

    async def test_a_socket_within_its_limit_gets_the_diff(self) -> None:
        hub = Hub()
        transport = FullTransport(0)
        conn, presence = await subscribed(hub, transport)
        transport.buffered = conn.send_limit
        await presence.cb(FakeMsg(diff()))
        assert not conn.closed
        assert pushes(transport) == [orjson.loads(diff())]


class TestWhatIsForwarded:
    @pytest.mark.parametrize(
        "data",
        [
            b'{"stream":"EVENTS","seq":12}',  # a JetStream ack
            b"not json",
            b"[]",
            diff(channel="workspace:00000000-0000-0000-0000-000000000002"),
            diff(push="pub"),
            diff(joined=[{"user": "ann"}]),
            diff(left=[{"user": "ann", "client": 7}]),
            diff(left=None),
        ],
    )
    async def test_what_is_not_a_presence_diff_of_the_channel_is_dropped(self, data: bytes) -> None:
        hub = Hub()
        transport = FullTransport(0)
        _, presence = await subscribed(hub, transport)
        await presence.cb(FakeMsg(data))
        assert transport.written == []
        assert hub.subscriptions.presence_dropped == 1

    async def test_a_diff_is_forwarded_with_only_its_known_fields(self) -> None:
        hub = Hub()
        transport = FullTransport(0)
        _, presence = await subscribed(hub, transport)
        extra = diff(joined=[{"user": "ann", "client": "c-ann", "html": "<script>"}], extra=True)
        await presence.cb(FakeMsg(extra))
        assert pushes(transport) == [orjson.loads(diff())]

    async def test_dropped_messages_are_logged_once_per_interval(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        hub = Hub()
        _, presence = await subscribed(hub, FullTransport(0))
        with caplog.at_level(logging.WARNING, logger="hubbub.ws"):
            for _ in range(3):
                await presence.cb(FakeMsg(b'{"stream":"EVENTS","seq":12}'))
        assert hub.subscriptions.presence_dropped == 3
        assert len([r for r in caplog.records if "not a presence diff" in r.getMessage()]) == 1


REDIS_DOWN = Unavailable("presence is unavailable: ConnectionError")


class TestResyncAfterReconnect:
    async def test_a_resync_that_finds_redis_unreachable_is_tried_again(self) -> None:
        """NATS and Redis went away together: the resync is tried again until Redis
        answers, and the socket gets its diff then."""
        hub = Hub()
        hub.subscriptions.resync_retry_delays = (0.0,)
        transport = FullTransport(0)
        await subscribed(hub, transport)
        hub.presence.resyncs = [REDIS_DOWN, REDIS_DOWN, diff()]
        await hub.subscriptions.resync_presence()
        assert hub.presence.resync_calls == 3
        assert pushes(transport) == [orjson.loads(diff())]

    async def test_stop_ends_a_resync_that_waits_on_redis(self) -> None:
        hub = Hub()
        await subscribed(hub, FullTransport(0))
        hub.presence.resync_gate = Gate()
        await hub.subscriptions.after_reconnect()
        await hub.presence.resync_gate.reached.wait()
        await hub.subscriptions.stop()
        assert hub.presence.resync_cancelled

    async def test_stop_ends_a_resync_that_waits_to_try_again(self) -> None:
        hub = Hub()
        await subscribed(hub, FullTransport(0))
        hub.presence.resyncs = [REDIS_DOWN] * 100
        await hub.subscriptions.after_reconnect()

        async def tried() -> bool:
            return hub.presence.resync_calls >= 1

        await wait_for(tried, what="the first resync")
        await asyncio.wait_for(hub.subscriptions.stop(), timeout=5)  # not the 1 s backoff
        assert hub.presence.resync_calls == 1

    async def test_no_resync_starts_after_stop(self) -> None:
        hub = Hub()
        await subscribed(hub, FullTransport(0))
        await hub.subscriptions.stop()
        await hub.subscriptions.after_reconnect()
        await asyncio.sleep(0)  # a task started would have run its first step
        assert hub.presence.resync_calls == 0


class TestPresenceSubscription:
    async def test_a_presence_subscribe_that_fails_leaves_the_channel_unwatched(self) -> None:
        """The channel's presence subscription could not be made: nothing is forwarded
        on it, so nothing is remembered as told either, and the socket's drop leaves no
        trace."""
        hub = Hub()
        hub.nats.refused.add("presence")
        conn, _ = hub.socket("c-1", "u-1")
        with pytest.raises(ConnectionError):
            await hub.subscribe(conn)
        assert hub.presence.watched == set()
        await hub.subscriptions.drop(conn, Channel.parse(CHANNEL))
        assert hub.presence.watched == set()
