"""A feed fills a gap from history even when the replica that answers lags behind."""

from __future__ import annotations

from typing import Any, cast

from nats.aio.client import Client as NATS

from hub.ws.fanout import Fanout, Feed
from hub.ws.history import History, Publication
from hubbub.contracts.channels import DEFAULT_POLICIES, Channel
from hubbub.contracts.subjects import Subjects

PUBLICATIONS = [Publication(offset, b'{"n": %d}' % offset) for offset in (3, 5, 8)]


class LaggingHistory:
    """Answers as a follower would: the first reads see only the first publications."""

    def __init__(self, visible: list[int]) -> None:
        self.visible = visible  # how many publications each read sees
        self.reads = 0

    async def after(self, channel: Channel, offset: int, limit: int, **_: Any) -> list[Publication]:
        seen = self.visible[min(self.reads, len(self.visible) - 1)]
        self.reads += 1
        return [p for p in PUBLICATIONS[:seen] if p.offset > offset][:limit]


class RecordingFeed(Feed):
    """Keeps the offsets it accepted (its batches are flushed while it waits to retry)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.accepted: list[int] = []

    def accept(self, offset: int, data: bytes) -> None:
        self.accepted.append(offset)
        super().accept(offset, data)


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


async def test_history_that_never_catches_up_is_given_up_after_a_few_tries() -> None:
    history = LaggingHistory(visible=[1])
    feed = feed_on(history)
    feed.last_offset = 1

    await feed.repair(1, 8)

    assert feed.accepted == [3]
    assert history.reads == 4
