"""Batched history reads (Direct Get) against a real NATS: a read returns every
publication of the channel after the offset, or fails as ``Unavailable`` — never a list
with a hole in it, as when a NATS reconnect loses some of a batch's replies while the
server goes on sending the rest to the same inbox."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

import orjson
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from hub.ws.history import BATCHES_AT_ONCE, History
from hubbub.config import Settings
from hubbub.contracts.channels import Channel
from hubbub.contracts.errors import Unavailable
from hubbub.contracts.subjects import Subjects

CHANNEL = Channel.parse("public:reads")
OTHER = Channel.parse("public:elsewhere")  # shares the stream: offsets are not contiguous


class LosingReplies:
    """The test's NATS connection, except that the replies to a batched read at the
    given positions (counted from 0, the end-of-batch marker included) never arrive."""

    def __init__(self, nc: NATS, lost: set[int]) -> None:
        self.nc = nc
        self.lost = lost

    def __getattr__(self, name: str) -> Any:
        return getattr(self.nc, name)

    async def subscribe(self, subject: str, cb: Callable[[Msg], Awaitable[None]]) -> Any:
        seen = 0

        async def losing(msg: Msg) -> None:
            nonlocal seen
            position, seen = seen, seen + 1
            if position not in self.lost:
                await cb(msg)

        return await self.nc.subscribe(subject, cb=losing)


@pytest.fixture
async def offsets(nc: NATS, settings: Settings) -> list[int]:
    """Ten publications on CHANNEL, each after one on OTHER; their offsets."""
    subjects = Subjects(settings.namespace)
    js = nc.jetstream()
    stored = []
    for n in range(10):
        await js.publish(subjects.event(OTHER), orjson.dumps({"other": n}))
        ack = await js.publish(subjects.event(CHANNEL), orjson.dumps({"n": n}))
        stored.append(ack.seq)
    return stored


async def test_a_read_returns_every_publication_after_the_offset(
    nc: NATS, settings: Settings, offsets: list[int]
) -> None:
    history = History(nc, Subjects(settings.namespace))
    assert history.batching  # the server answers batched reads (NATS >= 2.11)

    found = await history.after(CHANNEL, offsets[2], limit=100)

    assert [p.offset for p in found] == offsets[3:]
    assert [orjson.loads(p.data)["n"] for p in found] == list(range(3, 10))


@pytest.mark.parametrize(
    "lost",
    [{0}, {3}, {8}, {9}],
    ids=["the first reply", "one in the middle", "the last publication", "the end marker"],
)
async def test_a_read_that_lost_replies_fails_instead_of_returning_a_hole(
    nc: NATS, settings: Settings, offsets: list[int], lost: set[int]
) -> None:
    history = History(cast(NATS, LosingReplies(nc, lost)), Subjects(settings.namespace), timeout=2)
    assert history.batching

    with pytest.raises(Unavailable):
        await history.after(CHANNEL, offsets[0], limit=100)


class CountingReads:
    """The test's NATS connection, counting the batched reads under way (a read holds
    its inbox subscription from its request to its last reply)."""

    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self.made = 0
        self.under_way = 0
        self.most = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.nc, name)

    async def subscribe(self, subject: str, cb: Callable[[Msg], Awaitable[None]]) -> Any:
        sub = await self.nc.subscribe(subject, cb=cb)
        self.made += 1
        self.under_way += 1
        self.most = max(self.most, self.under_way)
        reads = self

        class Counted:
            async def unsubscribe(self) -> None:
                reads.under_way -= 1
                await sub.unsubscribe()

        return Counted()


async def test_no_more_than_a_few_batches_are_read_at_once(
    nc: NATS, settings: Settings, offsets: list[int]
) -> None:
    """A reconnect storm's recoveries wait their turn rather than have NATS send the hub
    more than it can read before the server cuts it as a slow consumer."""
    reads = CountingReads(nc)
    history = History(cast(NATS, reads), Subjects(settings.namespace))

    found = await asyncio.gather(
        *(history.after(CHANNEL, offsets[0], limit=100) for _ in range(3 * BATCHES_AT_ONCE))
    )

    assert all([p.offset for p in f] == offsets[1:] for f in found)
    assert reads.most == BATCHES_AT_ONCE
    assert reads.under_way == 0


async def test_a_read_nobody_wants_by_its_turn_is_not_made(
    nc: NATS, settings: Settings, offsets: list[int]
) -> None:
    """The recovery of a socket that closed while it waited reads nothing: a storm's
    queue holds many of them, and reading each would keep the live ones waiting."""
    reads = CountingReads(nc)
    history = History(cast(NATS, reads), Subjects(settings.namespace))
    gone: set[int] = set()

    async def recovery(n: int) -> list[int]:
        found = await history.after(
            CHANNEL, offsets[0], limit=100, still_wanted=lambda: n not in gone
        )
        return [p.offset for p in found]

    waiting = [asyncio.ensure_future(recovery(n)) for n in range(2 * BATCHES_AT_ONCE)]
    gone.update(range(BATCHES_AT_ONCE, 2 * BATCHES_AT_ONCE))  # they close while they wait
    found = await asyncio.gather(*waiting)

    assert found[:BATCHES_AT_ONCE] == [offsets[1:]] * BATCHES_AT_ONCE
    assert found[BATCHES_AT_ONCE:] == [[]] * BATCHES_AT_ONCE
    assert reads.made == BATCHES_AT_ONCE
