"""A subscribe races what happens while it awaits its access check and its history read:
a membership removed meanwhile ends it with ``forbidden`` (and nothing is delivered), and
a subscribe that fails after another socket left does not leave the channel's presence
behind on a released feed.

The hub's ``Subscriptions`` and fan-out over fakes (``tests/support/subscriptions.py``):
the interleavings are held at gates, not timed."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from hubbub.contracts.channels import Channel
from hubbub.contracts.errors import Forbidden, Unavailable
from tests.support.subscriptions import CHANNEL, FakeMsg, Gate, Hub, written


@pytest.mark.parametrize("held_at", ["the access check", "the epoch read", "the history read"])
async def test_a_membership_removed_while_a_subscribe_waits_refuses_it(held_at: str) -> None:
    hub = Hub()
    conn, transport = hub.socket("b", "user-b")
    gate = Gate()
    since = None
    if held_at == "the access check":  # the worker's answer, made before the removal
        hub.authorizer.gate = gate
    elif held_at == "the epoch read":  # a new feed's first subscribe reads it
        hub.history.epoch_gate = gate
    else:
        hub.history.gate = gate
        since = 5
    subscribing = asyncio.create_task(hub.subscribe(conn, since=since))
    await gate.reached.wait()

    assert await hub.subscriptions.membership_removed("user-b", Channel.parse(CHANNEL)) == 1
    gate.open()

    with pytest.raises(Forbidden) as refused:
        await subscribing
    assert refused.value.message == "your membership was removed"
    assert written(conn, transport) == []  # no reply, no push, no publication
    assert CHANNEL not in conn.subs
    assert CHANNEL not in hub.fanout.feeds  # nobody else wanted it: released
    assert hub.nats.active("live") == []


async def test_a_live_subscription_whose_membership_is_removed_is_told_unsubscribed() -> None:
    hub = Hub()
    conn, transport = hub.socket("b", "user-b")
    await hub.subscribe(conn)
    before = len(written(conn, transport))

    assert await hub.subscriptions.membership_removed("user-b", Channel.parse(CHANNEL)) == 1

    [push] = written(conn, transport)[before:]
    assert b'"push":"unsubscribed"' in push
    assert b"your membership was removed" in push


async def test_a_failed_subscribe_that_releases_the_feed_takes_its_presence_along() -> None:
    hub = Hub()
    first, _ = hub.socket("a", "user-a")
    await hub.subscribe(first)  # live: the channel's presence is subscribed
    [presence] = hub.nats.active("presence")
    late, _ = hub.socket("c", "user-c")
    hub.history.gate = gate = Gate()
    subscribing = asyncio.create_task(hub.subscribe(late, since=5))
    await gate.reached.wait()
    await hub.subscriptions.drop(first, Channel.parse(CHANNEL))  # the feed is still wanted
    assert presence.active

    gate.open(failure=Unavailable("channel history is unavailable: TimeoutError"))
    with pytest.raises(Unavailable):
        await subscribing

    assert CHANNEL not in hub.fanout.feeds
    assert hub.nats.active("presence") == []  # gone with the feed, as ``drop`` does

    hub.history.gate = None
    newcomer, transport = hub.socket("d", "user-d")
    await hub.subscribe(newcomer)
    [presence] = hub.nats.active("presence")
    newcomer.flush()
    diff = orjson.dumps(
        {
            "push": "presence",
            "channel": CHANNEL,
            "joined": [{"user": "x", "client": "c"}],
            "left": [],
        }
    )
    await presence.cb(FakeMsg(diff))

    assert transport.written[-1].endswith(diff)


async def test_a_socket_dropped_while_the_channels_presence_is_subscribed_does_not_join() -> None:
    """The channel's first subscribe waits for its presence subscription; meanwhile the
    socket goes (it closed, or unsubscribed). It must not be joined after its leave, to
    be renewed for ever, nor the presence subscription outlive the released feed."""
    hub = Hub()
    conn, _ = hub.socket("a", "user-a")
    hub.nats.gates["presence"] = gate = Gate()
    subscribing = asyncio.create_task(hub.subscribe(conn))
    await gate.reached.wait()  # answered and live; its presence on the way
    await hub.subscriptions.drop(conn, Channel.parse(CHANNEL))
    gate.open()
    await subscribing

    assert hub.presence.members == set()
    assert CHANNEL not in hub.fanout.feeds
    assert hub.nats.active("presence") == []
    assert hub.presence.watched == set()


async def test_a_socket_dropped_while_presence_is_subscribed_leaves_the_others_watched() -> None:
    """Another socket subscribed meanwhile: the channel's presence stays, for it."""
    hub = Hub()
    conn, _ = hub.socket("a", "user-a")
    other, _ = hub.socket("b", "user-b")
    hub.nats.gates["presence"] = gate = Gate()
    subscribing = asyncio.create_task(hub.subscribe(conn))
    await gate.reached.wait()
    await hub.subscriptions.drop(conn, Channel.parse(CHANNEL))
    joining = asyncio.create_task(hub.subscribe(other))
    gate.open()
    await subscribing
    await joining

    assert hub.presence.members == {(CHANNEL, "b")}
    assert len(hub.nats.active("presence")) >= 1
    assert hub.presence.watched == {CHANNEL}
