"""A feed's tail vouches for every publication after its start, and for nothing it cannot
prove it holds: its range moves up as it drops the oldest (count, bytes, age, the hub's
budget) and starts over after a gap the feed could not fill."""

from __future__ import annotations

from typing import Any, cast

import pytest
from nats.aio.client import Client as NATS

from hub.ws import fanout as fanout_module
from hub.ws.fanout import Fanout, Feed
from hub.ws.history import History, Publication
from hub.ws.tail import TAIL_MAX_BYTES, TAIL_MAX_ITEMS, Tail, TailBudget
from hubbub.contracts.channels import DEFAULT_POLICIES, Channel
from hubbub.contracts.errors import Unavailable
from hubbub.contracts.subjects import Subjects


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def tail(
    *,
    max_items: int = 100,
    max_age_s: float = 0,
    budget: TailBudget | None = None,
    clock: Clock | None = None,
) -> Tail:
    return Tail(
        budget if budget is not None else TailBudget(1 << 30),
        max_items=max_items,
        max_age_s=max_age_s,
        clock=clock if clock is not None else Clock(),
    )


def data(n: int) -> bytes:
    return b'{"n":%d}' % n


def offsets(found: list[tuple[int, bytes]] | None) -> list[int] | None:
    return None if found is None else [offset for offset, _ in found]


def test_a_tail_holds_every_publication_after_its_start_and_nothing_before() -> None:
    t = tail()
    t.begin(10)  # the channel's last offset when the feed began to listen
    for offset in (12, 15, 20):  # offsets of other channels lie between them
        t.add(offset, data(offset))

    assert t.after(10) == [(12, data(12)), (15, data(15)), (20, data(20))]
    assert offsets(t.after(13)) == [15, 20]
    assert t.after(20) == []
    assert t.after(9) is None  # what lies before its start it cannot vouch for


def test_without_a_beginning_the_first_publication_starts_the_range() -> None:
    t = tail()
    t.add(5, data(5))
    t.add(7, data(7))

    assert t.after(4) is None  # was there one between 4 and 5? unknown
    assert offsets(t.after(5)) == [7]


def test_a_later_beginning_does_not_move_the_range() -> None:
    t = tail()
    t.begin(3)
    t.add(4, data(4))
    t.begin(4)

    assert offsets(t.after(3)) == [4]


def test_dropping_the_oldest_moves_the_start_up_to_it() -> None:
    t = tail(max_items=3)
    t.begin(0)
    for offset in range(1, 6):
        t.add(offset, data(offset))

    assert len(t) == 3
    assert t.after(1) is None
    assert offsets(t.after(2)) == [3, 4, 5]


def test_it_keeps_no_more_than_its_channels_history_nor_the_hubs_limit() -> None:
    assert tail(max_items=10).max_items == 10
    assert tail(max_items=1_000_000).max_items == TAIL_MAX_ITEMS
    assert tail(max_items=-1).max_items == TAIL_MAX_ITEMS  # -1: the stream keeps all


def test_publications_older_than_the_channels_history_age_are_dropped() -> None:
    clock = Clock()
    t = tail(max_age_s=10, clock=clock)
    t.begin(0)
    t.add(1, data(1))
    clock.now += 5
    t.add(2, data(2))
    clock.now += 7  # 1 is 12 s old now: it goes when 3 comes
    t.add(3, data(3))

    assert t.after(0) is None
    assert offsets(t.after(1)) == [2, 3]

    clock.now += 4  # and 2 when someone asks, 11 s after it came
    assert t.after(1) is None
    assert offsets(t.after(2)) == [3]


def test_no_age_limit_keeps_them_however_old() -> None:
    clock = Clock()
    t = tail(max_age_s=0, clock=clock)
    t.begin(0)
    t.add(1, data(1))
    clock.now += 1e9

    assert offsets(t.after(0)) == [1]


def test_one_tail_keeps_at_most_its_bytes() -> None:
    big = b"x" * (TAIL_MAX_BYTES // 2)
    t = tail()
    t.begin(0)
    for offset in (1, 2, 3):
        t.add(offset, big)

    assert len(t) == 2
    assert offsets(t.after(1)) == [2, 3]


def test_the_tails_of_a_hub_share_one_budget() -> None:
    budget = TailBudget(100)
    first, second = tail(budget=budget), tail(budget=budget)
    first.begin(0)
    first.add(1, b"a" * 60)
    second.begin(0)
    second.add(2, b"b" * 60)  # over the budget: the tail that grows gives way

    assert offsets(first.after(0)) == [1]
    assert second.after(0) is None
    assert second.after(2) == []
    assert budget.used == 60

    first.clear()  # its feed let go of the channel
    assert budget.used == 0
    second.add(3, b"c" * 60)
    assert offsets(second.after(2)) == [3]


def test_after_a_reset_it_vouches_for_nothing_until_the_next_publication() -> None:
    budget = TailBudget(1000)
    t = tail(budget=budget)
    t.begin(0)
    t.add(1, data(1))
    t.reset()  # the feed skipped a gap it could not fill

    assert t.after(0) is None
    assert t.after(1) is None
    assert budget.used == 0
    t.add(9, data(9))
    t.add(11, data(11))
    assert t.after(1) is None  # the gap lay between 1 and 9
    assert offsets(t.after(9)) == [11]


# --- the tail of a feed ------------------------------------------------------------------

CHANNEL = Channel.parse("public:lobby")


class StoredHistory:
    """History as a feed reads it: the channel's last offset and what came after."""

    def __init__(self, publications: list[int], *, failing: bool = False) -> None:
        self.publications = [Publication(o, data(o)) for o in publications]
        self.failing = failing

    async def last_offset(self, channel: Channel) -> int:
        return self.publications[-1].offset if self.publications else 0

    async def after(self, channel: Channel, offset: int, limit: int, **_: Any) -> list[Publication]:
        if self.failing:
            raise Unavailable("channel history is unavailable: TimeoutError")
        return [p for p in self.publications if p.offset > offset][:limit]


class Message:
    """A live message as JetStream republishes it."""

    def __init__(self, offset: int, previous: int) -> None:
        self.subject = "live"
        self.data = data(offset)
        self.headers = {"Nats-Sequence": str(offset), "Nats-Last-Sequence": str(previous)}


def feed_on(history: StoredHistory) -> Feed:
    fanout = Fanout(
        cast(NATS, None),
        Subjects("t"),
        cast(History, history),
        dict(DEFAULT_POLICIES),
        tail_budget=TailBudget(1 << 20),
    )
    return Feed(fanout, CHANNEL, fanout.policies[CHANNEL.kind])


async def test_a_feed_keeps_what_it_passed_on_from_where_it_began_to_listen() -> None:
    history = StoredHistory([2, 4])
    feed = feed_on(history)
    assert await feed.latest() == 4

    await feed.on_message(Message(6, previous=4))  # type: ignore[arg-type]
    await feed.on_message(Message(9, previous=6))  # type: ignore[arg-type]

    assert offsets(feed.tail.after(4)) == [6, 9]
    assert feed.tail.after(2) is None  # before the feed listened


async def test_a_gap_the_feed_filled_from_history_is_in_its_tail() -> None:
    history = StoredHistory([2, 4])
    feed = feed_on(history)
    await feed.latest()
    history.publications += [Publication(5, data(5)), Publication(7, data(7))]

    await feed.on_message(Message(8, previous=7))  # type: ignore[arg-type]  # 5, 7 lost

    assert offsets(feed.tail.after(4)) == [5, 7, 8]


async def test_a_gap_the_feed_could_not_fill_is_never_vouched_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fanout_module, "REPAIR_BACKOFF_S", 0.0)
    history = StoredHistory([2, 4])
    feed = feed_on(history)
    await feed.latest()
    await feed.on_message(Message(5, previous=4))  # type: ignore[arg-type]
    history.failing = True

    await feed.on_message(Message(8, previous=7))  # type: ignore[arg-type]  # 7 is lost

    assert feed.tail.after(4) is None
    assert feed.tail.after(5) is None
    assert feed.tail.after(7) is None
    assert feed.tail.after(8) == []


async def test_a_released_feed_gives_its_bytes_back() -> None:
    history = StoredHistory([2])
    feed = feed_on(history)
    await feed.latest()
    await feed.on_message(Message(3, previous=2))  # type: ignore[arg-type]
    feed.ready.set_result(None)
    feed.fanout.feeds[feed.name] = feed
    assert feed.fanout.tail_budget.used == len(data(3))

    await feed.fanout.release(feed)

    assert feed.fanout.tail_budget.used == 0


async def test_a_feed_on_an_empty_history_vouches_only_from_its_first_publication() -> None:
    """An empty history names no publication: the channel may have had some that
    retention removed (offsets are shared by the channels of a kind)."""
    feed = feed_on(StoredHistory([]))
    assert await feed.latest() == 0

    assert feed.tail.after(0) is None
    await feed.on_message(Message(7, previous=0))  # type: ignore[arg-type]
    await feed.on_message(Message(9, previous=7))  # type: ignore[arg-type]

    assert feed.tail.after(0) is None
    assert feed.tail.after(3) is None
    assert offsets(feed.tail.after(7)) == [9]
