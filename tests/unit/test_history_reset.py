"""A kind's history recreated (a NATS reset, then ``hubbub migrate``) counts offsets from 1
again. A hub's feeds notice — from a publication at or below what they passed on, after
a NATS reconnect, or at a subscribe that reads the new epoch — start over, and hand their
sockets over (1001: they resubscribe under the new epoch); what is published afterwards
reaches the sockets that subscribe again. Without that, a feed took every publication of
the new history for one it had passed on already, and dropped it.

The hub's ``Subscriptions`` and fan-out over fakes (``tests/support/subscriptions.py``)."""

from __future__ import annotations

import asyncio

import pytest

from hub.ws import fanout as fanout_module
from hub.ws.connection import Connection
from hubbub.contracts.protocol import CloseCode
from tests.support.subscriptions import CHANNEL, EPOCH, FakeMsg, Gate, Hub, Transport, written
from tests.support.waiting import wait_for

RESET = "2"  # the recreated history's epoch


def live(offset: int, previous: int = 0) -> FakeMsg:
    """A publication as JetStream republishes it to the hubs."""
    headers = {"Nats-Sequence": str(offset), "Nats-Last-Sequence": str(previous)}
    return FakeMsg(b'{"n":%d}' % offset, headers)


async def subscribed(hub: Hub) -> tuple[Connection, Transport]:
    """A socket live on the channel, at the old history's last offset (10)."""
    conn, transport = hub.socket("a", "user-a")
    await hub.subscribe(conn)
    return conn, transport


def handed_over(conn: Connection, transport: Transport) -> bool:
    said = b"".join(written(conn, transport))
    return conn.closed and b'"code":%d' % CloseCode.GOING_AWAY in said


async def test_a_publication_below_what_a_feed_passed_on_has_the_epoch_checked() -> None:
    hub = Hub()
    first, first_sent = await subscribed(hub)  # live at the old history's offset 10
    feed = hub.fanout.feeds[CHANNEL]
    hub.history.epoch_now, hub.history.last = RESET, 1  # recreated: one publication so far

    await feed.on_message(live(1))

    await wait_for(lambda: handed_over(first, first_sent), what="the socket handed over")
    assert (feed.epoch, feed.last_offset) == (RESET, None)
    again, sent = hub.socket("b", "user-b")
    await hub.subscribe(again)
    assert b'"offset":1,"epoch":"2"' in b"".join(written(again, sent))
    await feed.on_message(live(2, previous=1))
    await wait_for(lambda: b'"offset":2' in b"".join(sent.written), what="offset 2 delivered")


async def test_a_duplicate_in_the_same_history_changes_nothing() -> None:
    hub = Hub()
    conn, transport = await subscribed(hub)
    feed = hub.fanout.feeds[CHANNEL]

    await feed.on_message(live(9, previous=8))  # one a repair fetched already
    await wait_for(lambda: True in hub.history.epoch_reads, what="a fresh epoch read")
    await feed.on_message(live(11, previous=10))  # barrier: the next one is delivered

    await wait_for(lambda: b'"offset":11' in b"".join(transport.written), what="offset 11")
    assert not conn.closed
    assert (feed.epoch, feed.last_offset) == (EPOCH, 11)


async def test_a_reconnect_after_a_reset_starts_the_feeds_over() -> None:
    hub = Hub()
    conn, transport = await subscribed(hub)
    feed = hub.fanout.feeds[CHANNEL]
    hub.history.epoch_now, hub.history.last = RESET, 3  # more than one publication since

    await hub.fanout.repair_all()

    assert handed_over(conn, transport)
    assert (feed.epoch, feed.last_offset) == (RESET, None)


async def test_a_subscribe_that_reads_the_new_epoch_starts_the_feed_over() -> None:
    hub = Hub()
    first, first_sent = await subscribed(hub)
    hub.history.epoch_now, hub.history.last = RESET, 4  # no live publication told this hub

    again, sent = hub.socket("b", "user-b")
    await hub.subscribe(again, since=10)

    assert handed_over(first, first_sent)
    # Not recovered (another epoch), and placed at the new history's last offset.
    reply = b"".join(written(again, sent))
    assert b'"offset":4,"epoch":"2","recovered":false' in reply
    assert not again.closed


async def test_a_low_publication_soon_after_a_check_is_checked_once_the_interval_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fanout_module, "EPOCH_CHECK_INTERVAL_S", 0.2)
    hub = Hub()
    conn, transport = await subscribed(hub)
    feed = hub.fanout.feeds[CHANNEL]
    await feed.on_message(live(9, previous=8))  # a duplicate: checked, no reset
    await wait_for(lambda: True in hub.history.epoch_reads, what="the first check")
    hub.history.epoch_now, hub.history.last = RESET, 1

    await feed.on_message(live(1))  # within the interval: put off, not dropped

    await wait_for(lambda: handed_over(conn, transport), what="the socket handed over")
    assert feed.epoch == RESET


async def test_a_reconnect_whose_epoch_read_fails_at_first_tries_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fanout_module, "REPAIR_BACKOFF_S", 0.001)
    hub = Hub()
    conn, transport = await subscribed(hub)
    hub.history.epoch_now, hub.history.epoch_failures = RESET, 2  # JetStream starting

    await hub.fanout.repair_all()

    assert handed_over(conn, transport)
    assert hub.fanout.feeds[CHANNEL].epoch == RESET


async def test_a_reconnect_that_cannot_read_the_epoch_hands_the_sockets_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fanout_module, "REPAIR_BACKOFF_S", 0.001)
    monkeypatch.setattr(fanout_module, "CATCH_UP_BACKOFF_MAX_S", 0.001)
    hub = Hub()
    conn, transport = await subscribed(hub)
    hub.history.epoch_failures = fanout_module.CATCH_UP_TRIES  # every try

    await hub.fanout.repair_all()

    assert handed_over(conn, transport)


async def test_what_a_subscribe_buffered_from_the_old_history_is_not_delivered() -> None:
    hub = Hub()
    await subscribed(hub)  # the feed at offset 10 of the old history
    feed = hub.fanout.feeds[CHANNEL]
    hub.history.epoch_now, hub.history.last = RESET, 2
    late, sent = hub.socket("b", "user-b")
    hub.history.epoch_gate = gate = Gate()
    subscribing = asyncio.create_task(hub.subscribe(late))
    await gate.reached.wait()
    await feed.on_message(live(11, previous=10))  # the old history's last word
    await wait_for(lambda: feed.waiting.get(late), what="offset 11 buffered")

    gate.open()
    await subscribing

    assert b'"offset":2,"epoch":"2"' in b"".join(written(late, sent))
    assert late.subs[CHANNEL] == 2
    await feed.on_message(live(3, previous=2))
    await wait_for(lambda: b'"offset":3' in b"".join(sent.written), what="offset 3 delivered")
    assert b'"offset":11' not in b"".join(sent.written)
