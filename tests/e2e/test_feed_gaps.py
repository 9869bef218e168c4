"""Publications a hub's feed did not hear (as across a NATS reconnect) still reach its
sockets, each once and in order: the feed fetches them from history, or — when history
cannot give them — closes its sockets with 1001, and the client's resubscribe with
``since`` recovers them."""

from __future__ import annotations

from typing import Any

import pytest
from nats.aio.client import Client as NATS

from hub.ws.fanout import REPAIR_TRIES
from hub.ws.history import History
from hub.ws.service import Realtime
from hubbub.client import HubbubClient, Subscription
from hubbub.config import Settings
from hubbub.contracts.channels import Channel, ChannelKind
from hubbub.contracts.errors import Unavailable
from hubbub.contracts.protocol import CloseCode
from hubbub.contracts.subjects import Subjects
from hubbub.streams import ensure_streams
from tests.e2e.conftest import ClientFactory
from tests.e2e.test_realtime import next_pub, publish
from tests.support.waiting import wait_for

CHANNEL = "public:gaps"


async def unheard(
    realtime: Realtime, nc: NATS, settings: Settings, channel: str, data: list[dict[str, Any]]
) -> list[int]:
    """Publish ``data`` while the hub's feed of ``channel`` does not hear it (as across a
    NATS reconnect), then let the feed hear the channel again; their offsets."""
    feed = realtime.fanout.feeds[channel]
    assert feed.sub is not None
    await feed.sub.unsubscribe()
    offsets = [await publish(nc, settings, channel, d) for d in data]
    feed.sub = await realtime.nc.subscribe(
        realtime.subjects.live(Channel.parse(channel)), cb=feed.on_message
    )
    await realtime.nc.flush()
    return offsets


async def listening(
    client: ClientFactory, nc: NATS, settings: Settings, channel: str
) -> tuple[HubbubClient, Subscription]:
    """A reader subscribed to ``channel`` that has had its first publication live."""
    reader = await client("reader")
    sub = await reader.subscribe(channel)
    first = await publish(nc, settings, channel, {"n": 1})
    assert (await next_pub(sub)).offset == first
    return reader, sub


class FailingFirst:
    """``history.<method>`` fails as an unreachable history does, ``left`` more times,
    then answers as before."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, history: History, method: str, times: int
    ) -> None:
        self.left = times
        answer = getattr(history, method)

        async def failing(*args: Any, **kwargs: Any) -> Any:
            if self.left:
                self.left -= 1
                raise Unavailable("channel history is unavailable: TimeoutError")
            return await answer(*args, **kwargs)

        monkeypatch.setattr(history, method, failing)


async def test_a_gap_history_cannot_fill_closes_the_socket_and_the_client_recovers_it(
    client: ClientFactory,
    realtime: Realtime,
    nc: NATS,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader, sub = await listening(client, nc, settings, CHANNEL)
    missed = await unheard(realtime, nc, settings, CHANNEL, [{"n": 2}, {"n": 3}])

    # History is unreachable for every read of the feed's repair, then answers again.
    reads = FailingFirst(monkeypatch, realtime.history, "after", REPAIR_TRIES)
    last = await publish(nc, settings, CHANNEL, {"n": 4})

    got = [(await next_pub(sub, 10)).offset for _ in range(3)]
    assert got == [*missed, last]
    assert (reads.left, sub.resets) == (0, 0)
    assert CloseCode.GOING_AWAY in [code for code, _ in reader.closes]


async def test_a_quiet_channel_s_sockets_get_what_the_hub_missed_before_its_next_publication(
    client: ClientFactory, realtime: Realtime, nc: NATS, settings: Settings
) -> None:
    channel = "public:gaps-quiet"
    await publish(nc, settings, channel, {"n": 1})
    reader = await client("reader")
    sub = await reader.subscribe(channel)  # placed after 1; the hub heard nothing live yet

    missed = await unheard(realtime, nc, settings, channel, [{"n": 2}])
    last = await publish(nc, settings, channel, {"n": 3})

    got = [(await next_pub(sub)).offset for _ in range(2)]
    assert got == [*missed, last]


async def test_after_a_reconnect_the_hub_delivers_what_it_missed_without_a_next_publication(
    client: ClientFactory,
    realtime: Realtime,
    nc: NATS,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    channel = "public:gaps-tail"
    _, sub = await listening(client, nc, settings, channel)
    missed = await unheard(realtime, nc, settings, channel, [{"n": 2}, {"n": 3}])

    # The reconnect's check of the channel's last offset fails twice, then answers.
    checks = FailingFirst(monkeypatch, realtime.history, "last_offset", 2)
    await realtime.fanout.repair_all()  # what the hub runs after each NATS reconnect

    got = [(await next_pub(sub)).offset for _ in range(2)]
    assert got == missed
    assert (checks.left, sub.resets) == (0, 0)


async def test_a_client_ahead_of_this_hubs_feed_resubscribes_without_a_reset(
    client: ClientFactory, realtime: Realtime, nc: NATS, settings: Settings
) -> None:
    channel = "public:gaps-ahead"
    _, sub = await listening(client, nc, settings, channel)

    # This hub's feed falls behind the channel (as one working through a backlog does)...
    [newest] = await unheard(realtime, nc, settings, channel, [{"n": 2}])
    # ...when a client that has seen the newest publication (on another hub) comes here.
    mover = await client("mover")
    resets: list[str] = []
    moved = await mover.subscribe(
        channel, since=(newest, sub.epoch or ""), on_reset=lambda s: resets.append(s.channel)
    )
    assert (resets, moved.resets, moved.queue.qsize()) == ([], 0, 0)

    # The next publication reaches both; the one the feed missed, only the reader.
    last = await publish(nc, settings, channel, {"n": 3})
    assert (await next_pub(moved)).offset == last
    assert [(await next_pub(sub)).offset for _ in range(2)] == [newest, last]


async def test_after_a_history_reset_the_sockets_start_over_under_the_new_epoch(
    client: ClientFactory, realtime: Realtime, nc: NATS, settings: Settings
) -> None:
    channel = "public:gaps-reset"
    reader, sub = await listening(client, nc, settings, channel)  # offset 1 passed on
    for n in range(2, 5):  # the old history goes on past what the new one will reach
        offset = await publish(nc, settings, channel, {"n": n})
        assert (await next_pub(sub)).offset == offset
    assert sub.offset == 4
    before = sub.epoch

    # The kind's stream recreated, as a NATS reset and then ``hubbub migrate`` do: its
    # offsets start again at 1, at or below what the feed passed on.
    subjects = Subjects(settings.namespace)
    await nc.jetstream().delete_stream(subjects.stream(ChannelKind.PUBLIC))
    await ensure_streams(nc.jetstream(), subjects, settings.policies())
    assert await publish(nc, settings, channel, {"n": 1, "history": "new"}) == 1

    # The hub hands the socket over; its resubscribe is not recovered (another epoch).
    await wait_for(lambda: sub.resets == 1, what="the resubscribe under the new epoch")
    assert CloseCode.GOING_AWAY in [code for code, _ in reader.closes]
    assert sub.epoch != before
    later = await publish(nc, settings, channel, {"n": 2})
    assert later < 4  # below the old epoch's offsets: delivered all the same
    assert (await next_pub(sub)).offset == later
