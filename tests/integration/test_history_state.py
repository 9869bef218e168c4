"""What a hub reads of a kind's history state from a real JetStream: whether it keeps
any of a channel's publications, and whether it dropped anything after an offset
(retention drops the oldest first, a channel's own limit that channel's oldest)."""

from __future__ import annotations

import asyncio

import orjson
from nats.aio.client import Client as NATS
from nats.js.api import StreamInfo

from hub.ws.history import History
from hubbub.config import Settings
from hubbub.contracts.channels import Channel, ChannelKind
from hubbub.contracts.subjects import Subjects
from hubbub.streams import ensure_streams

QUIET = Channel.parse("public:quiet")
BUSY = Channel.parse("public:busy")


async def publish(nc: NATS, subjects: Subjects, channel: Channel) -> int:
    ack = await nc.jetstream().publish(subjects.event(channel), orjson.dumps({}))
    return int(ack.seq)


async def test_a_channel_none_of_whose_publications_is_kept_is_told_with_the_historys_ends(
    nc: NATS, settings: Settings
) -> None:
    subjects = Subjects(settings.namespace)
    history = History(nc, subjects)
    epoch = await history.epoch(ChannelKind.PUBLIC)
    first = await publish(nc, subjects, BUSY)
    quiet = await publish(nc, subjects, QUIET)
    last = await publish(nc, subjects, BUSY)

    assert await history.empty_channel(QUIET, epoch) is None  # it keeps one
    await nc.jetstream().purge_stream(subjects.stream(ChannelKind.PUBLIC), seq=quiet + 1)

    assert await history.empty_channel(QUIET, epoch) == (last, last)
    assert await history.empty_channel(QUIET, "another epoch") is None
    assert first < quiet < last


async def test_kept_after_says_whether_anything_after_an_offset_was_dropped(
    nc: NATS, settings: Settings
) -> None:
    subjects = Subjects(settings.namespace)
    small = settings.model_copy(update={"channel_policies": {"public": {"history_max_msgs": 3}}})
    await ensure_streams(nc.jetstream(), subjects, small.policies())
    history = History(nc, subjects)
    epoch = await history.epoch(ChannelKind.PUBLIC)
    offsets = [await publish(nc, subjects, BUSY) for _ in range(3)]

    assert await history.kept_after(ChannelKind.PUBLIC, epoch, 0) == 3  # its limit per channel
    await nc.jetstream().purge_stream(subjects.stream(ChannelKind.PUBLIC), seq=offsets[1])

    assert await history.kept_after(ChannelKind.PUBLIC, epoch, 0) is None
    assert await history.kept_after(ChannelKind.PUBLIC, epoch, offsets[0]) == 3
    assert await history.kept_after(ChannelKind.PUBLIC, "another epoch", offsets[2]) is None
    assert await history.reaches(ChannelKind.PUBLIC, epoch, offsets[2])
    assert not await history.reaches(ChannelKind.PUBLIC, epoch, offsets[2] + 1)


class CountedHistory(History):
    """Counts its stream-state reads; while ``held`` is clear, each read's answer waits
    for it (the read itself has been made)."""

    def __init__(self, nc: NATS, subjects: Subjects) -> None:
        super().__init__(nc, subjects)
        self.reads = 0
        self.held = asyncio.Event()
        self.held.set()
        self.read_made = asyncio.Event()

    async def _read_stream_info(self, kind: ChannelKind, subject: str | None = None) -> StreamInfo:
        self.reads += 1
        info = await super()._read_stream_info(kind, subject)
        self.read_made.set()
        await self.held.wait()
        return info


async def test_a_reconnect_storms_questions_of_a_kind_share_their_state_reads(
    nc: NATS, settings: Settings
) -> None:
    subjects = Subjects(settings.namespace)
    history = CountedHistory(nc, subjects)
    epoch = await history.epoch(ChannelKind.PUBLIC)
    last = await publish(nc, subjects, BUSY)
    history.reads = 0

    answers = await asyncio.gather(
        *(history.reaches(ChannelKind.PUBLIC, epoch, last) for _ in range(160)),
        *(history.kept_after(ChannelKind.PUBLIC, epoch, 0) for _ in range(160)),
    )

    assert answers[:160] == [True] * 160
    assert answers[160:] == [settings.policies()[ChannelKind.PUBLIC].history_max_msgs] * 160
    assert history.reads <= 2  # one under way, the next shared by all who asked meanwhile


async def test_a_question_asked_while_a_state_read_is_under_way_waits_for_a_later_read(
    nc: NATS, settings: Settings
) -> None:
    subjects = Subjects(settings.namespace)
    history = CountedHistory(nc, subjects)
    epoch = await history.epoch(ChannelKind.PUBLIC)
    first = await publish(nc, subjects, BUSY)
    history.reads = 0
    history.held.clear()
    early = asyncio.ensure_future(history.reaches(ChannelKind.PUBLIC, epoch, first))
    await history.read_made.wait()  # its read is made: it knows nothing after ``first``

    later = await publish(nc, subjects, BUSY)
    late = asyncio.ensure_future(history.reaches(ChannelKind.PUBLIC, epoch, later))
    history.held.set()

    assert await early
    assert await late  # not answered by the read made before it was published
    assert history.reads == 2
