"""A quiet channel — one whose history keeps none of its publications — is recovered
across reconnects, as long as the history dropped nothing after the position the client
was given; and a client away while a publication of it aged out is not.

Retention is played as JetStream applies it: the kind's oldest publications go first,
whatever their channel (the stream purged up to an offset)."""

from __future__ import annotations

from nats.aio.client import Client as NATS

from hub.ws.service import Realtime
from hubbub.client import HubbubClient, Subscription
from hubbub.config import Settings
from hubbub.contracts.channels import ChannelKind
from hubbub.contracts.subjects import Subjects
from tests.e2e.conftest import ClientFactory
from tests.e2e.test_recovery_after_retention import left_after, next_pub, publish
from tests.support.waiting import wait_for


async def retention_drops_through(nc: NATS, settings: Settings, offset: int) -> None:
    """The public history's publications up to ``offset`` age out (every channel's)."""
    stream = Subjects(settings.namespace).stream(ChannelKind.PUBLIC)
    await nc.jetstream().purge_stream(stream, seq=offset + 1)


async def back(
    client: ClientFactory, realtime: Realtime, channel: str, since: tuple[int, str]
) -> tuple[HubbubClient, Subscription]:
    """Client "a" comes back to ``channel`` with ``since``, on a feed of its own (the
    hub let go of the channel while it was away)."""
    await wait_for(lambda: channel not in realtime.fanout.feeds)
    a = await client("a")
    return a, await a.subscribe(channel, since=since)


async def test_a_quiet_channel_is_recovered_on_every_reconnect(
    client: ClientFactory, nc: NATS, settings: Settings, realtime: Realtime
) -> None:
    """Retention dropped another channel's publications, before and after the client
    was placed — all of them older than its position: nothing of the quiet one is lost."""
    older = [await publish(nc, settings, "public:busy", n) for n in range(3)]
    await retention_drops_through(nc, settings, older[0])
    quiet = "public:never-published"
    since = await left_after(client, quiet)
    assert since[0] == older[-1]  # the history's end: nothing of the channel up to it
    await retention_drops_through(nc, settings, older[1])

    for n in range(3):  # three reconnects, the kind's history going on meanwhile
        await publish(nc, settings, "public:busy", 10 + n)
        a, sub = await back(client, realtime, quiet, since)
        assert (sub.resets, sub.queue.qsize()) == (0, 0)
        assert sub.offset > since[0]  # placed at the history's end again
        since = (sub.offset, sub.epoch or "")
        await a.close()


async def test_a_quiet_channel_that_published_while_the_client_was_away_is_recovered(
    client: ClientFactory, nc: NATS, settings: Settings, realtime: Realtime
) -> None:
    first = await publish(nc, settings, "public:busy", 0)
    await retention_drops_through(nc, settings, first)  # something dropped already
    channel = "public:woke-up"
    since = await left_after(client, channel)
    missed = [await publish(nc, settings, channel, n) for n in range(2)]

    _, sub = await back(client, realtime, channel, since)

    assert sub.resets == 0
    assert [(await next_pub(sub)).offset for _ in missed] == missed


async def test_a_client_away_while_a_publication_of_its_quiet_channel_aged_out_is_not_recovered(
    client: ClientFactory, nc: NATS, settings: Settings, realtime: Realtime
) -> None:
    """Asleep over a weekend: the channel published once, and retention dropped it with
    the others of its age. The channel is empty again, as it was."""
    channel = "public:weekend-quiet"
    placed = await publish(nc, settings, "public:busy", 0)
    since = await left_after(client, channel)
    assert since[0] == placed
    lost = await publish(nc, settings, channel, 1)  # missed
    kept = await publish(nc, settings, "public:busy", 2)
    await retention_drops_through(nc, settings, lost)

    _, sub = await back(client, realtime, channel, since)

    assert sub.resets == 1  # recovered: false
    assert sub.offset == kept  # placed at the history's end


async def test_a_client_away_while_a_publication_aged_out_is_not_recovered_from_a_new_feed(
    client: ClientFactory, nc: NATS, settings: Settings, realtime: Realtime
) -> None:
    """Someone else opened the channel since, and its feed passed a publication on: the
    feed vouches for what came after the history's first offset, not for the lost one."""
    channel = "public:weekend-reopened"
    placed = await publish(nc, settings, "public:busy", 0)
    since = await left_after(client, channel)
    assert since[0] == placed
    lost = await publish(nc, settings, channel, 1)  # missed
    await publish(nc, settings, "public:busy", 2)
    await retention_drops_through(nc, settings, lost)
    keeper = await (await client("k")).subscribe(channel)
    third = await publish(nc, settings, channel, 3)
    assert (await next_pub(keeper)).offset == third

    a = await client("a")
    sub = await a.subscribe(channel, since=since)

    assert sub.resets == 1
    assert sub.offset == third


async def test_a_position_from_a_hub_further_on_is_recovered_and_one_past_the_end_is_not(
    client: ClientFactory, nc: NATS, settings: Settings, realtime: Realtime
) -> None:
    """This hub's feed placed its sockets before the history went on; a client placed
    later (by another hub) comes with a position ahead of the feed's."""
    channel = "public:quiet-elsewhere"
    keeper = await (await client("k")).subscribe(channel)
    end = await publish(nc, settings, "public:busy", 0)
    assert keeper.offset < end
    epoch = keeper.epoch or ""

    a = await client("a")
    sub = await a.subscribe(channel, since=(end, epoch))
    beyond = await (await client("b")).subscribe(channel, since=(end + 100, epoch))

    assert (sub.resets, sub.offset) == (0, end)
    assert beyond.resets == 1
    published = await publish(nc, settings, channel, 1)
    assert (await next_pub(sub)).offset == published


async def test_a_since_at_offset_0_is_not_recovered_once_the_history_dropped_its_first(
    client: ClientFactory, nc: NATS, settings: Settings, realtime: Realtime
) -> None:
    """Offset 0 (a client a hub placed on an empty channel before hubs placed such
    clients at the history's end) names no time: whatever was dropped may have been
    the channel's."""
    first = await publish(nc, settings, "public:busy", 0)
    channel = "public:from-zero"
    epoch = (await left_after(client, channel))[1]
    published = [await publish(nc, settings, channel, n) for n in range(2)]
    a, kept_all = await back(client, realtime, channel, (0, epoch))
    assert kept_all.resets == 0
    assert [(await next_pub(kept_all)).offset for _ in published] == published
    await a.close()

    await retention_drops_through(nc, settings, first)
    _, after_a_drop = await back(client, realtime, channel, (0, epoch))

    assert after_a_drop.resets == 1
