"""A subscribe's recovery on its way to a slow client does not count against the send
limits: the publications after it are measured from where it left the buffer, so a
recovery bigger than the send limit does not have the next publication close the socket
(4009, then reconnect, recover, closed again). What the recoveries still have on their
way is bounded instead: a subscribe recovers no more than ``MAX_RECOVERY_BYTES`` less it.

The hub's ``Subscriptions`` over fakes (``tests/support/subscriptions.py``), with a
transport whose buffer holds what is written until the test drains it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from hub.ws import subscriptions as subscriptions_module
from hub.ws.connection import Connection
from hub.ws.history import Publication
from hubbub.contracts.frames import Since
from hubbub.contracts.protocol import CloseCode
from tests.support.subscriptions import CHANNEL, EPOCH, FakeHistory, FakeMsg, Hub, Transport

SEND_LIMIT = 200


class Buffering(Transport):
    """Keeps every byte written in its buffer until ``drain`` sends it on."""

    def __init__(self) -> None:
        super().__init__()
        self.size = 0

    def get_write_buffer_size(self) -> int:
        return self.size

    def write(self, data: bytes) -> None:
        super().write(data)
        self.size += len(data)

    def drain(self, count: int | None = None) -> None:
        self.size = 0 if count is None else max(0, self.size - count)


class SizedHistory(FakeHistory):
    """Honours the read's byte limit, as JetStream's batched read does."""

    async def after(
        self, channel: Any, offset: int, limit: int, max_bytes: int = 0, **_: Any
    ) -> Any:
        found: list[Publication] = []
        size = 0
        for o in range(offset + 1, self.last + 1):
            data = b'{"n":%d,"pad":"%s"}' % (o, b"x" * 20)
            if len(found) >= limit or (found and size + len(data) > max_bytes):
                break
            found.append(Publication(o, data))
            size += len(data)
        return found


def slow_socket(hub: Hub) -> tuple[Connection, Buffering]:
    conn, _ = hub.socket("b", "user-b")
    transport = Buffering()
    conn.transport = transport  # type: ignore[assignment]
    conn.send_limit = SEND_LIMIT
    return conn, transport


async def resubscribe(hub: Hub, conn: Connection, channel: str = CHANNEL) -> dict[str, Any]:
    await hub.subscriptions.subscribe(
        conn,
        subscriptions_module.cmd.Subscribe(
            op="subscribe", id=7, channel=channel, since=Since(offset=1, epoch=EPOCH)
        ),
    )
    conn.flush()  # the end of the turn: the reply is in the transport's buffer
    reply: dict[str, Any] = orjson.loads(hub_frames(conn)[-1])
    return reply["result"]


def hub_frames(conn: Connection) -> list[bytes]:
    transport = conn.transport
    assert isinstance(transport, Buffering)
    return [_payload(chunk) for chunk in transport.written]


def _payload(frame: bytes) -> bytes:
    length = frame[1] & 0x7F
    start = 2 if length < 126 else 4 if length == 126 else 10
    return frame[start:]


async def publish(hub: Hub, offset: int) -> None:
    """A live publication of the channel, as the feed takes it and passes it on."""
    feed = hub.fanout.feeds[CHANNEL]
    message = FakeMsg(b'{"live":%d}' % offset, {"Nats-Sequence": str(offset)})
    message.headers["Nats-Last-Sequence"] = str(offset - 1)  # type: ignore[index]
    await feed.on_message(message)  # type: ignore[arg-type]
    feed.flush()


@pytest.fixture
def hub() -> Hub:
    hub = Hub()
    hub.history = SizedHistory()
    hub.subscriptions.history = hub.history  # type: ignore[assignment]
    hub.fanout.history = hub.history  # type: ignore[assignment]
    return hub


async def test_a_recovery_bigger_than_the_send_limit_lets_the_next_publications_through(
    hub: Hub,
) -> None:
    conn, transport = slow_socket(hub)
    result = await resubscribe(hub, conn)
    assert result["recovered"] is True
    assert transport.size > SEND_LIMIT  # the client has not taken the reply yet

    await publish(hub, 11)
    await publish(hub, 12)

    assert not conn.closed
    assert [orjson.loads(f)["data"] for f in hub_frames(conn)[-2:]] == [{"live": 11}, {"live": 12}]


async def test_publications_past_the_send_limit_after_the_recovery_still_close_it(
    hub: Hub,
) -> None:
    conn, transport = slow_socket(hub)
    await resubscribe(hub, conn)

    offset = 10
    while not conn.closed:  # the client reads nothing
        offset += 1
        await publish(hub, offset)
        assert offset < 100

    reply, *live, disconnect = transport.written
    assert b'"recovered":true' in reply
    # Closed at the first publication that found the limit passed by the ones before.
    assert sum(map(len, live[:-1])) <= SEND_LIMIT < sum(map(len, live))
    assert b'"code":%d' % CloseCode.SLOW_CONSUMER in disconnect


async def test_once_the_recovery_left_the_buffer_the_limit_counts_everything_again(
    hub: Hub,
) -> None:
    conn, transport = slow_socket(hub)
    await resubscribe(hub, conn)
    recovery = transport.size
    await publish(hub, 11)
    live = transport.size - recovery

    transport.drain(recovery - 10)  # all of the reply but its last bytes
    assert conn.backlog() == live
    assert conn.recovery_pending() == 10
    transport.drain()
    assert (conn.backlog(), conn.recovery_pending()) == (0, 0)


async def test_a_recovery_is_bounded_by_what_earlier_ones_still_have_on_their_way(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recoveries not counted against the send limits are bounded together: one that
    does not fit beside those still on their way is not made (``recovered: false``)."""
    conn, transport = slow_socket(hub)
    first = await resubscribe(hub, conn)
    monkeypatch.setattr(subscriptions_module, "MAX_RECOVERY_BYTES", conn.recovery_pending() + 50)
    other = CHANNEL[:-1] + "2"

    second = await resubscribe(hub, conn, other)

    assert first["recovered"] is True
    assert (second["recovered"], second["publications"]) == (False, [])
    transport.drain()
    again = CHANNEL[:-1] + "3"
    assert (await resubscribe(hub, conn, again))["recovered"] is True
