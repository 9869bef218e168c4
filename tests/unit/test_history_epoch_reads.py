"""The history epoch as a reconnect storm reads it: every subscribe needs it first, so
callers that find it to be read share one read of the stream's state, and it does not
wait behind the other state reads (at most ``STATE_READS_AT_ONCE`` at once)."""

from __future__ import annotations

import asyncio
import datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from nats.aio.client import Client as NATS

from hub.ws.history import STATE_READS_AT_ONCE, History
from hubbub.contracts.channels import Channel, ChannelKind
from hubbub.contracts.errors import Unavailable
from hubbub.contracts.subjects import Subjects

CREATED = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


class SlowStream:
    """JetStream's stream info, answered once ``gate`` opens: the reads it was asked for
    (``asked``) and how many wait (``waiting``). Reads of the epoch alone (no subject
    filter) wait only when ``hold_epoch``."""

    def __init__(self, *, hold_epoch: bool = True) -> None:
        self.hold_epoch = hold_epoch
        self.gate = asyncio.Event()
        self.asked: list[str | None] = []
        self.waiting = 0
        self.changed = asyncio.Event()
        self.error: Exception | None = None

    def jetstream(self) -> SlowStream:
        return self

    async def stream_info(self, name: str, subjects_filter: str | None = None) -> Any:
        self.asked.append(subjects_filter)
        if subjects_filter is not None or self.hold_epoch:
            self.waiting += 1
            self.changed.set()
            await self.gate.wait()
            self.waiting -= 1
        if self.error is not None:
            raise self.error
        state = SimpleNamespace(first_seq=1, last_seq=10, subjects={})
        config = SimpleNamespace(max_msgs_per_subject=-1)
        return SimpleNamespace(created=CREATED, state=state, config=config)

    async def until_waiting(self, count: int) -> None:
        while self.waiting < count:
            self.changed.clear()
            await self.changed.wait()


def history_on(stream: SlowStream) -> History:
    return History(cast(NATS, stream), Subjects("t"))


async def test_a_storm_of_subscribes_shares_one_read_of_the_epoch() -> None:
    stream = SlowStream()
    history = history_on(stream)
    storm = [asyncio.create_task(history.epoch(ChannelKind.PUBLIC)) for _ in range(320)]
    await stream.until_waiting(1)  # every subscribe asked by now (they ran in order)

    stream.gate.set()
    epochs = await asyncio.gather(*storm)

    assert len(stream.asked) == 1
    assert set(epochs) == {await history.epoch(ChannelKind.PUBLIC)}
    assert len(stream.asked) == 1  # remembered from that read


async def test_the_epoch_is_read_while_other_state_reads_take_every_slot() -> None:
    stream = SlowStream(hold_epoch=False)
    history = history_on(stream)
    busy = [
        asyncio.create_task(history.empty_channel(Channel.parse(f"public:c{n}"), "0"))
        for n in range(STATE_READS_AT_ONCE)
    ]
    await stream.until_waiting(STATE_READS_AT_ONCE)

    # Bounded only so that a read queued behind the others fails rather than hangs.
    epoch = await asyncio.wait_for(history.epoch(ChannelKind.PUBLIC), 10)

    assert epoch == str(int(CREATED.timestamp() * 1_000_000))
    stream.gate.set()
    await asyncio.gather(*busy)


async def test_a_failed_shared_read_fails_every_caller_and_the_next_reads_again() -> None:
    stream = SlowStream()
    stream.error = TimeoutError()
    history = history_on(stream)
    callers = [asyncio.create_task(history.epoch(ChannelKind.PUBLIC)) for _ in range(3)]
    await stream.until_waiting(1)

    stream.gate.set()
    results = await asyncio.gather(*callers, return_exceptions=True)

    assert [type(r) for r in results] == [Unavailable] * 3
    assert len(stream.asked) == 1
    stream.error = None
    await history.epoch(ChannelKind.PUBLIC)
    assert len(stream.asked) == 2


async def test_a_caller_that_gives_up_leaves_the_shared_read_to_the_others() -> None:
    stream = SlowStream()
    history = history_on(stream)
    leaving = asyncio.create_task(history.epoch(ChannelKind.PUBLIC))
    staying = asyncio.create_task(history.epoch(ChannelKind.PUBLIC))
    await stream.until_waiting(1)

    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    stream.gate.set()

    assert await staying == await history.epoch(ChannelKind.PUBLIC)
    assert len(stream.asked) == 1
