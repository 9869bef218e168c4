"""A feed fills a gap from history even when the replica that answers lags behind or a
read fails; a gap it cannot fill is handed to its sockets, never skipped silently."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from nats.aio.client import Client as NATS

from hub.ws import fanout as fanout_module
from hub.ws.fanout import Fanout, Feed, Item, Subscriber
from hub.ws.history import History, Publication
from hubbub.contracts.channels import DEFAULT_POLICIES, Channel
from hubbub.contracts.errors import Unavailable
from hubbub.contracts.subjects import Subjects
from tests.support.waiting import eventually

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


# --- catching up after a NATS reconnect ----------------------------------------------------


class Bus:
    """What ``Fanout.catch_up`` asks of the NATS connection."""

    def __init__(self, connected: bool = True) -> None:
        self.is_connected = connected


class ChannelHistory(LaggingHistory):
    """History whose channel ends at ``latest``; the checks numbered in ``failing_checks``
    fail as an unreachable history does."""

    def __init__(self, latest: int, failing_checks: frozenset[int] = frozenset()) -> None:
        super().__init__(visible=[len(PUBLICATIONS)])
        self.latest = latest
        self.failing_checks = failing_checks
        self.checks = 0

    async def last_offset(self, channel: Channel) -> int:
        self.checks += 1
        if self.checks in self.failing_checks:
            raise Unavailable("channel history is unavailable: TimeoutError")
        return self.latest


def listening_feed(history: ChannelHistory, *, connected: bool = True) -> RecordingFeed:
    feed = feed_on(history)
    feed.fanout.nc = cast(NATS, Bus(connected))
    feed.fanout.feeds[feed.name] = feed
    return feed


async def test_after_a_reconnect_a_feed_fetches_what_was_published_while_it_was_away() -> None:
    feed = listening_feed(ChannelHistory(latest=8))
    feed.last_offset = 3
    socket = feed.live_socket()

    await feed.fanout.repair_all()

    assert feed.accepted == [5, 8]  # without waiting for a next publication to show the gap
    feed.flush()
    assert socket.delivered == [5, 8]


async def test_a_feed_placed_from_history_catches_up_from_where_its_sockets_were_placed() -> None:
    feed = listening_feed(ChannelHistory(latest=8))
    feed.history_offset = 3  # its sockets subscribed at 3; nothing came live since
    socket = feed.live_socket()

    await feed.fanout.repair_all()

    feed.flush()
    assert socket.delivered == [5, 8]


async def test_a_failed_check_after_a_reconnect_is_tried_again() -> None:
    history = ChannelHistory(latest=8, failing_checks=frozenset({1, 2}))
    feed = listening_feed(history)
    feed.last_offset = 3
    socket = feed.live_socket()

    await feed.fanout.repair_all()

    assert (feed.accepted, history.checks, socket.missed_feeds) == ([5, 8], 3, [])


ALWAYS = frozenset(range(1, fanout_module.CATCH_UP_TRIES + 1))  # every check of a catch-up


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The catch-up's pauses between checks, shortened: what is tested is how many."""
    monkeypatch.setattr(fanout_module, "REPAIR_BACKOFF_S", 0.001)
    monkeypatch.setattr(fanout_module, "CATCH_UP_BACKOFF_MAX_S", 0.001)


@pytest.mark.usefixtures("quick_backoff")
async def test_a_check_that_keeps_failing_sends_the_sockets_to_recover_themselves() -> None:
    history = ChannelHistory(latest=8, failing_checks=ALWAYS)
    feed = listening_feed(history)
    feed.last_offset = 3
    live, subscribing = feed.live_socket(), Socket()
    feed.waiting[subscribing] = []

    await feed.fanout.repair_all()

    assert feed.accepted == []
    assert (live.missed_feeds, subscribing.missed_feeds) == (["public:lobby"], ["public:lobby"])


@pytest.mark.usefixtures("quick_backoff")
async def test_a_check_that_fails_because_the_bus_is_cut_again_waits_for_the_next_reconnect() -> (
    None
):
    history = ChannelHistory(latest=8, failing_checks=ALWAYS)
    feed = listening_feed(history, connected=False)
    feed.last_offset = 3
    socket = feed.live_socket()

    await feed.fanout.repair_all()

    assert (history.checks, socket.missed_feeds) == (len(ALWAYS), [])


@pytest.mark.usefixtures("quick_backoff")
async def test_a_check_that_answers_within_a_few_seconds_sends_no_socket_away() -> None:
    # As after a reconnect to a NATS server whose JetStream is still starting.
    history = ChannelHistory(latest=8, failing_checks=ALWAYS - {len(ALWAYS)})
    feed = listening_feed(history)
    feed.last_offset = 3
    socket = feed.live_socket()

    await feed.fanout.repair_all()

    assert (feed.accepted, socket.missed_feeds) == ([5, 8], [])


class Live:
    """A live publication as the feed's NATS subscription hands it over."""

    def __init__(self, offset: int, previous: int) -> None:
        self.subject = "live"
        self.data = b'{"n": %d}' % offset
        self.headers = {"Nats-Sequence": str(offset), "Nats-Last-Sequence": str(previous)}


async def test_a_feed_placed_from_history_fills_a_gap_before_its_first_live_publication() -> None:
    history = ChannelHistory(latest=8)
    feed = listening_feed(history)
    feed.history_offset = 3  # where its sockets were placed
    socket = feed.live_socket()

    await feed.on_message(cast(Any, Live(8, previous=5)))

    feed.flush()
    assert socket.delivered == [5, 8]


async def test_a_live_publication_history_already_gave_the_sockets_is_not_passed_on() -> None:
    feed = listening_feed(ChannelHistory(latest=5))
    feed.history_offset = 5
    socket = feed.live_socket()

    await feed.on_message(cast(Any, Live(5, previous=3)))

    feed.flush()
    assert (feed.accepted, socket.delivered) == ([], [])


class HeldHistory(ChannelHistory):
    """History whose checks wait until the test lets them answer."""

    def __init__(self, latest: int) -> None:
        super().__init__(latest)
        self.answer = asyncio.Event()

    async def last_offset(self, channel: Channel) -> int:
        await self.answer.wait()
        return await super().last_offset(channel)


async def test_the_reconnect_hook_returns_at_once_and_the_feeds_catch_up_behind_it() -> None:
    # The NATS client awaits its reconnect hooks, and the hooks after this one (the
    # sockets' re-check) must not wait for a slow history.
    history = HeldHistory(latest=8)
    feed = listening_feed(history)
    feed.last_offset = 3

    await feed.fanout.after_reconnect()
    assert feed.accepted == []
    history.answer.set()

    def caught_up() -> None:
        assert feed.accepted == [5, 8]

    await eventually(caught_up)


async def test_stopping_the_fanout_ends_a_catch_up_under_way() -> None:
    history = HeldHistory(latest=8)
    feed = listening_feed(history)
    feed.last_offset = 3
    await feed.fanout.after_reconnect()
    pass_under_way = feed.fanout._catching_up
    assert pass_under_way is not None

    await feed.fanout.stop()

    assert pass_under_way.cancelled()
    assert feed.accepted == []


@pytest.mark.usefixtures("quick_backoff")
async def test_feeds_an_outage_keeps_from_checking_are_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    history = ChannelHistory(latest=8, failing_checks=frozenset(range(1, 100)))
    first = listening_feed(history)
    fanout = first.fanout
    second = RecordingFeed(fanout, Channel.parse("public:hall"), first.policy)
    fanout.feeds[second.name] = second
    sockets = []
    for feed in (first, second):
        feed.last_offset = 3
        sockets.append(feed.live_socket())

    await fanout.repair_all()

    assert [s.missed_feeds for s in sockets] == [["public:lobby"], ["public:hall"]]
    lines = [r for r in caplog.records if r.name == "hubbub.ws.fanout" and r.levelno >= 30]
    assert [r.getMessage() for r in lines] == [
        "cannot check 2 feed(s) for publications missed while reconnecting: "
        "their sockets reconnect to recover"
    ]
