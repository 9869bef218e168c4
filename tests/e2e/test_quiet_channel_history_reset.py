"""A position a hub gave on a quiet channel belongs to its history's epoch: once the
history is reset (the kind's stream recreated, offsets from 1 again), a client that
comes back with it is told ``recovered: false`` — even while the hub still remembers
the old epoch — and gets every publication of the new history after where it is placed."""

from __future__ import annotations

from nats.aio.client import Client as NATS

from hub.ws.service import Realtime
from hubbub.config import Settings
from hubbub.contracts.channels import ChannelKind
from hubbub.contracts.subjects import Subjects
from hubbub.streams import ensure_streams
from tests.e2e.conftest import ClientFactory
from tests.e2e.test_recovery_after_retention import left_after, next_pub, publish
from tests.support.waiting import wait_for


async def test_a_position_on_a_quiet_channel_from_a_reset_history_is_not_recovered(
    client: ClientFactory, nc: NATS, settings: Settings, realtime: Realtime
) -> None:
    for n in range(5):
        await publish(nc, settings, "public:busy", n)
    channel = "public:quiet-then-reset"
    since = await left_after(client, channel)
    assert since[0] == 5  # placed at the history's end: nothing of the channel up to it
    await wait_for(lambda: channel not in realtime.fanout.feeds)
    subjects = Subjects(settings.namespace)
    js = nc.jetstream()
    await js.delete_stream(subjects.stream(ChannelKind.PUBLIC))  # a reset, then migrate
    await ensure_streams(js, subjects, settings.policies())
    first = await publish(nc, settings, channel, 100)  # offset 1 of the new history
    assert first < since[0]

    back = await client("a")
    sub = await back.subscribe(channel, since=since)  # within the hub's epoch cache

    assert sub.resets == 1  # recovered: false — its position names the old history
    assert (sub.offset, sub.epoch) == (first, await realtime.history.epoch(ChannelKind.PUBLIC))
    assert sub.epoch != since[1]
    published = [await publish(nc, settings, channel, 200 + n) for n in range(6)]
    got = [(await next_pub(sub)).offset for _ in published]
    assert got == published  # none at or below the old position skipped


async def test_an_offset_of_a_reset_history_that_the_new_one_holds_is_not_recovered(
    client: ClientFactory, nc: NATS, settings: Settings, realtime: Realtime
) -> None:
    channel = "public:busy-then-reset"
    a = await client("a")
    sub = await a.subscribe(channel)
    seen = [await publish(nc, settings, channel, n) for n in range(3)]
    assert [(await next_pub(sub)).offset for _ in seen] == seen
    since = (sub.offset, sub.epoch or "")
    await a.close()
    await wait_for(lambda: channel not in realtime.fanout.feeds)
    subjects = Subjects(settings.namespace)
    js = nc.jetstream()
    await js.delete_stream(subjects.stream(ChannelKind.PUBLIC))  # a reset, then migrate
    await ensure_streams(js, subjects, settings.policies())
    # The new history publishes on the same channel past the old position: the offset
    # the client saw last is one of the channel's again, in another history.
    new = [await publish(nc, settings, channel, 100 + n) for n in range(5)]
    assert new[since[0] - 1] == since[0]

    back = await client("a")
    resub = await back.subscribe(channel, since=since)  # within the hub's epoch cache

    assert resub.resets == 1  # recovered: false — its position names the old history
    assert resub.epoch != since[1]
    now = await realtime.history.epoch(ChannelKind.PUBLIC)
    assert (resub.offset, resub.epoch) == (new[-1], now)
