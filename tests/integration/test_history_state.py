"""What a hub reads of a kind's history state from a real JetStream: whether it keeps
any of a channel's publications, and whether it dropped anything after an offset
(retention drops the oldest first, a channel's own limit that channel's oldest)."""

from __future__ import annotations

import orjson
from nats.aio.client import Client as NATS

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
