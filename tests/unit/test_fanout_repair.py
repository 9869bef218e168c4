"""A feed fills a gap from history even when the replica that answers lags behind or a
read fails; a gap it cannot fill is handed to its sockets, never skipped silently."""

from __future__ import annotations

from typing import Any, cast

import pytest
from nats.aio.client import Client as NATS

from hub.ws import fanout as fanout_module
from hub.ws.fanout import Fanout, Feed, Item, Subscriber
from hub.ws.history import History, Publication
from hubbub.contracts.channels import DEFAULT_POLICIES, Channel
from hubbub.contracts.errors import Unavailable
from hubbub.contracts.subjects import Subjects

PUBLICATIONS = [Publication(offset, b'{"n": %d}' % offset) for offset in (3, 5, 8)]


class LaggingHistory:
    """Answers as a follower would: the first reads see only the first publications.
    A read whose number is in ``failing`` fails as an unreachable history does."""

    def __init__(self, visible: list[int], failing: frozenset[int] = frozenset()) -> None:
        self.visible = visible  # how many publications each read sees
        self.failing = failing
        self.reads = 0

    async def after(self, channel: Channel, offset: int, limit: int, **_: Any) -> list[Publication]:
        seen = self.visible[min(self.reads, len(self.visible) - 1)]
        self.reads += 1
        if self.reads in self.failing:
            raise Unavailable("channel history is unavailable: TimeoutError")
        return [p for p in PUBLICATIONS[:seen] if p.offset > offset][:limit]


class Socket(Subscriber):
    """A subscriber that notes what it is told."""

    def __init__(self) -> None:
        self.delivered: list[int] = []
        self.missed_feeds: list[str] = []

    def deliver(self, feed: Feed, items: list[Item], joined: bytes) -> None:
        self.delivered.extend(i.offset for i in items)

    def missed(self, feed: Feed) -> None:
        self.missed_feeds.append(feed.name)


class RecordingFeed(Feed):
    """Keeps the offsets it accepted (its batches are flushed while it waits to retry)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.accepted: list[int] = []

    def accept(self, offset: int, data: bytes) -> None:
        self.accepted.append(offset)
        super().accept(offset, data)

    def live_socket(self) -> Socket:
        socket = Socket()
        self.live[socket] = None
        return socket


def feed_on(history: LaggingHistory) -> RecordingFeed:
    fanout = Fanout(cast(NATS, None), Subjects("t"), cast(History, history), dict(DEFAULT_POLICIES))
    channel = Channel.parse("public:lobby")
    return RecordingFeed(fanout, channel, fanout.policies[channel.kind])


async def test_a_short_read_is_tried_again_from_where_it_stopped() -> None:
    history = LaggingHistory(visible=[1, 2, 3])
    feed = feed_on(history)
    feed.last_offset = 1

    await feed.repair(1, 8)

    assert feed.accepted == [3, 5, 8]  # each once, in order
    assert feed.last_offset == 8
    assert history.reads == 3


async def test_a_whole_read_is_not_repeated() -> None:
    history = LaggingHistory(visible=[3])
    feed = feed_on(history)
    feed.last_offset = 1

    await feed.repair(1, 5)

    assert feed.accepted == [3, 5]
    assert history.reads == 1


async def test_a_failed_read_is_tried_again() -> None:
    history = LaggingHistory(visible=[3], failing=frozenset({1, 2}))
    feed = feed_on(history)
    feed.last_offset = 1
    socket = feed.live_socket()

    await feed.repair(1, 8)

    assert feed.accepted == [3, 5, 8]
    assert history.reads == 3
    assert socket.missed_feeds == []


async def test_history_that_never_catches_up_is_given_up_and_its_sockets_told() -> None:
    history = LaggingHistory(visible=[1])
    feed = feed_on(history)
    feed.last_offset = 1
    live, subscribing = feed.live_socket(), Socket()
    feed.waiting[subscribing] = []

    await feed.repair(1, 8)

    assert feed.accepted == [3]
    assert history.reads == 4
    # Neither may go on as if 5 and 8 had never been: both recover from history.
    assert (live.missed_feeds, subscribing.missed_feeds) == (["public:lobby"], ["public:lobby"])


async def test_history_that_stays_unreachable_is_given_up_and_its_sockets_told() -> None:
    history = LaggingHistory(visible=[3], failing=frozenset({1, 2, 3, 4}))
    feed = feed_on(history)
    feed.last_offset = 1
    socket = feed.live_socket()

    await feed.repair(1, 8)

    assert feed.accepted == []
    assert history.reads == 4
    assert socket.missed_feeds == ["public:lobby"]


async def test_a_gap_longer_than_a_repair_reads_is_handed_to_the_sockets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fanout_module, "REPAIR_LIMIT", 2)
    history = LaggingHistory(visible=[3])
    feed = feed_on(history)
    feed.last_offset = 1
    socket = feed.live_socket()

    await feed.repair(1, 8)

    assert feed.accepted == [3, 5]
    assert history.reads == 1
    assert socket.missed_feeds == ["public:lobby"]
