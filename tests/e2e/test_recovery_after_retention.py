"""``recovered: true`` only when nothing was lost: resubscribes to a channel whose
publications retention dropped (a client asleep over a weekend), and with ``since`` at
offset 0 (a client that saw none of the channel's publications).

Retention is played as JetStream applies it: the kind's oldest publications go first,
whatever their channel (the stream purged up to an offset)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from nats.aio.client import Client as NATS

from hub.ws.service import Realtime
from hubbub.config import Settings
from hubbub.contracts.channels import Channel, ChannelKind
from hubbub.contracts.errors import Unavailable
from hubbub.contracts.subjects import Subjects
from hubbub.streams import ensure_streams
from tests.e2e.conftest import ClientFactory
from tests.support.waiting import wait_for


async def publish(nc: NATS, settings: Settings, channel: str, n: int) -> int:
    """What a backend service does: publish straight onto the channel's subject."""
    subject = Subjects(settings.namespace).event(Channel.parse(channel))
    ack = await nc.jetstream().publish(subject, orjson.dumps({"n": n}))
    return int(ack.seq)


async def retention_drops_through(nc: NATS, settings: Settings, channel: str, offset: int) -> None:
    """What retention does over a weekend: the kind's publications up to ``offset`` age
    out, oldest first, whatever their channel (the stream's sequence goes on where it
    was); a later one of another channel is still kept, so the history is not empty."""
    subjects = Subjects(settings.namespace)
    kind = Channel.parse(channel).kind
    await publish(nc, settings, f"{kind.value}:elsewhere", 0)
    await nc.jetstream().purge_stream(subjects.stream(kind), seq=offset + 1)


async def next_pub(sub: Any) -> Any:
    return await asyncio.wait_for(sub.queue.get(), 5.0)


async def left_after(client: ClientFactory, channel: str, seen: int | None = None) -> Any:
    """Client "a" subscribes, sees up to ``seen`` (None: nothing, the channel is
    empty) and goes away; its ``since``."""
    a = await client("a")
    sub = await a.subscribe(channel)
    if seen is not None:
        assert (await next_pub(sub)).offset == seen
    since = (sub.offset, sub.epoch or "")
    await a.close()
    return since


async def test_a_client_asleep_while_retention_dropped_a_publication_it_missed_is_not_recovered(
    client: ClientFactory, nc: NATS, settings: Settings, realtime: Realtime
) -> None:
    channel = "public:weekend"
    a = await client("a")
    sub = await a.subscribe(channel)
    first = await publish(nc, settings, channel, 1)
    assert (await next_pub(sub)).offset == first
    since = (sub.offset, sub.epoch or "")
    await a.close()
    await wait_for(lambda: channel not in realtime.fanout.feeds)
    missed = await publish(nc, settings, channel, 2)
    await retention_drops_through(nc, settings, channel, missed)
    # Someone else opens the channel first; the hub's new feed passes on a publication.
    keeper = await (await client("k")).subscribe(channel)
    third = await publish(nc, settings, channel, 3)
    assert (await next_pub(keeper)).offset == third

    back = await client("a")
    resub = await back.subscribe(channel, since=since)

    assert resub.resets == 1  # recovered: false — the second one is gone
    assert resub.offset == third


async def test_a_since_at_offset_0_after_retention_is_not_recovered_from_the_tail(
    client: ClientFactory, nc: NATS, settings: Settings, realtime: Realtime
) -> None:
    channel = "public:zero"
    since = await left_after(client, channel)
    assert since[0] == 0
    await wait_for(lambda: channel not in realtime.fanout.feeds)
    missed = await publish(nc, settings, channel, 1)
    await retention_drops_through(nc, settings, channel, missed)
    keeper = await (await client("k")).subscribe(channel)
    second = await publish(nc, settings, channel, 2)
    assert (await next_pub(keeper)).offset == second

    back = await client("a")
    resub = await back.subscribe(channel, since=since)

    assert resub.resets == 1


async def test_a_since_at_offset_0_on_a_channel_emptied_by_retention_is_not_recovered(
    client: ClientFactory, nc: NATS, settings: Settings, realtime: Realtime
) -> None:
    channel = "public:emptied"
    since = await left_after(client, channel)
    await wait_for(lambda: channel not in realtime.fanout.feeds)
    missed = await publish(nc, settings, channel, 1)
    await retention_drops_through(nc, settings, channel, missed)

    back = await client("a")
    resub = await back.subscribe(channel, since=since)

    assert resub.resets == 1


async def test_a_since_at_offset_0_is_not_recovered_once_the_channels_own_limit_dropped_one(
    client: ClientFactory, nc: NATS, settings: Settings, realtime: Realtime
) -> None:
    """A channel's limit drops its oldest from the middle of the kind's history, where
    another channel's older publication is still kept."""
    small = settings.model_copy(update={"channel_policies": {"public": {"history_max_msgs": 3}}})
    await ensure_streams(nc.jetstream(), Subjects(settings.namespace), small.policies())
    await publish(nc, settings, "public:other", 0)  # the history's first, kept
    channel = "public:limited"
    since = await left_after(client, channel)
    await wait_for(lambda: channel not in realtime.fanout.feeds)
    for n in range(4):  # the first of them is dropped
        await publish(nc, settings, channel, n)

    back = await client("a")
    resub = await back.subscribe(channel, since=since)

    assert resub.resets == 1
    assert resub.queue.qsize() == 0


async def test_a_skipped_publication_counts_against_the_channels_own_limit(
    client: ClientFactory, nc: NATS, settings: Settings, realtime: Realtime
) -> None:
    """One of those the channel keeps is no JSON object (not replayed): the channel
    still keeps as many as its limit, so its oldest may have been dropped — and was."""
    small = settings.model_copy(update={"channel_policies": {"public": {"history_max_msgs": 3}}})
    await ensure_streams(nc.jetstream(), Subjects(settings.namespace), small.policies())
    await publish(nc, settings, "public:other", 0)  # the history's first, kept
    channel = "public:limited-skipping"
    since = await left_after(client, channel)
    await wait_for(lambda: channel not in realtime.fanout.feeds)
    await publish(nc, settings, channel, 0)  # dropped by the channel's limit
    await publish(nc, settings, channel, 1)
    subject = Subjects(settings.namespace).event(Channel.parse(channel))
    await nc.jetstream().publish(subject, b"[2]")  # kept, never sent to a client
    await publish(nc, settings, channel, 3)

    back = await client("a")
    resub = await back.subscribe(channel, since=since)

    assert resub.resets == 1
    assert resub.queue.qsize() == 0


async def test_a_since_at_offset_0_is_recovered_while_nothing_was_dropped(
    client: ClientFactory, nc: NATS, settings: Settings, realtime: Realtime
) -> None:
    quiet, busy = "public:still-empty", "public:filled"
    since_quiet = await left_after(client, quiet)
    since_busy = await left_after(client, busy)
    await wait_for(lambda: busy not in realtime.fanout.feeds)
    offsets = [await publish(nc, settings, busy, n) for n in range(3)]

    back = await client("a")
    resub_quiet = await back.subscribe(quiet, since=since_quiet)
    resub_busy = await back.subscribe(busy, since=since_busy)

    assert (resub_quiet.resets, resub_quiet.queue.qsize()) == (0, 0)
    assert resub_busy.resets == 0
    got = [resub_busy.queue.get_nowait() for _ in range(resub_busy.queue.qsize())]
    assert [p.offset for p in got] == offsets


async def test_a_recovery_the_streams_leader_cannot_vouch_for_is_not_recovered_but_live(
    client: ClientFactory,
    nc: NATS,
    settings: Settings,
    realtime: Realtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    channel = "public:election"
    a = await client("a")
    sub = await a.subscribe(channel)
    seen = await publish(nc, settings, channel, 0)
    assert (await next_pub(sub)).offset == seen
    since = (sub.offset, sub.epoch or "")
    await a.close()
    await wait_for(lambda: channel not in realtime.fanout.feeds)
    await publish(nc, settings, channel, 1)  # kept: the history alone could recover it

    async def no_leader(kind: ChannelKind, epoch: str) -> bool:
        raise Unavailable("channel history is unavailable: TimeoutError")

    monkeypatch.setattr(realtime.history, "is_current", no_leader)
    back = await client("a")
    resub = await back.subscribe(channel, since=since)

    assert resub.resets == 1  # not vouched for: the client reloads
    later = await publish(nc, settings, channel, 2)
    assert (await next_pub(resub)).offset == later  # and is subscribed all the same
