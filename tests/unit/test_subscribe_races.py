"""A subscribe races what happens while it awaits its access check and its history read:
a membership removed meanwhile ends it with ``forbidden`` (and nothing is delivered), and
a subscribe that fails after another socket left does not leave the channel's presence
behind on a released feed.

The hub's ``Subscriptions`` with the fan-out, and fakes for what they await (history,
presence, the channel check, NATS): the interleavings are held at gates, not timed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
from nats.aio.client import Client as NATS

from hub.ws import commands as cmd
from hub.ws.authz import ChannelAuthorizer
from hub.ws.connection import Connection
from hub.ws.fanout import Fanout
from hub.ws.history import History
from hub.ws.presence import Presence
from hub.ws.subscriptions import Subscriptions
from hubbub.config import Settings
from hubbub.contracts.channels import DEFAULT_POLICIES, Channel
from hubbub.contracts.errors import Forbidden, Unavailable
from hubbub.contracts.frames import Since
from hubbub.contracts.subjects import Subjects

CHANNEL = "workspace:00000000-0000-0000-0000-000000000001"
EPOCH = "1"
LAST = 10  # the channel's last offset


class Gate:
    """Holds whoever passes it until opened; ``reached`` says someone is held."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.opened = asyncio.Event()
        self.failure: Exception | None = None

    async def passing(self) -> None:
        self.reached.set()
        await self.opened.wait()
        if self.failure is not None:
            raise self.failure

    def open(self, failure: Exception | None = None) -> None:
        self.failure = failure
        self.opened.set()


class FakeHistory:
    """Every publication up to ``LAST`` is held; ``gate`` (when set) holds the read."""

    def __init__(self) -> None:
        self.gate: Gate | None = None

    async def epoch(self, kind: object) -> str:
        return EPOCH

    async def last_offset(self, channel: Channel) -> int:
        return LAST

    async def holds(self, channel: Channel, offset: int) -> bool:
        if self.gate is not None:
            await self.gate.passing()
        return True

    async def after(self, channel: Channel, offset: int, limit: int, *_: Any, **__: Any) -> Any:
        from hub.ws.history import Publication

        return [Publication(o, b'{"n":%d}' % o) for o in range(offset + 1, LAST + 1)][:limit]


class FakeAuthorizer:
    """Members of every channel; ``gate`` (when set) holds the worker's check."""

    def __init__(self) -> None:
        self.gate: Gate | None = None

    def allowed_by_policy(self, *_: object) -> bool:
        return self.gate is None

    async def check(self, *_: object) -> None:
        assert self.gate is not None
        await self.gate.passing()


class FakePresence:
    async def join(self, channel: Channel, user_id: str, client: str) -> None:
        pass

    async def leave(self, channel: Channel, user_id: str, client: str) -> None:
        pass


class FakeSubscription:
    def __init__(self, subject: str, cb: Callable[[Any], Awaitable[None]]) -> None:
        self.subject = subject
        self.cb = cb
        self.active = True

    async def unsubscribe(self) -> None:
        self.active = False


class FakeNats:
    def __init__(self) -> None:
        self.subscriptions: list[FakeSubscription] = []

    async def subscribe(self, subject: str, cb: Any, **_: Any) -> FakeSubscription:
        sub = FakeSubscription(subject, cb)
        self.subscriptions.append(sub)
        return sub

    async def flush(self) -> None:
        pass

    def active(self, kind: str) -> list[FakeSubscription]:
        return [s for s in self.subscriptions if s.active and f".{kind}." in f".{s.subject}"]


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        self.written.append(data)


class Hub:
    def __init__(self) -> None:
        self.nats = FakeNats()
        self.history = FakeHistory()
        self.authorizer = FakeAuthorizer()
        self.by_user: dict[str, set[Connection]] = {}
        subjects = Subjects("t")
        self.fanout = Fanout(
            cast(NATS, self.nats), subjects, cast(History, self.history), dict(DEFAULT_POLICIES)
        )
        self.subscriptions = Subscriptions(
            settings=Settings(_env_file=None),  # type: ignore[call-arg]
            nc=cast(NATS, self.nats),
            subjects=subjects,
            history=cast(History, self.history),
            fanout=self.fanout,
            authorizer=cast(ChannelAuthorizer, self.authorizer),
            presence=cast(Presence, FakePresence()),
            by_user=self.by_user,
        )

    def socket(self, conn_id: str, user_id: str) -> tuple[Connection, Transport]:
        conn = Connection(conn_id, None, None, None, 1 << 20)  # type: ignore[arg-type]
        transport = Transport()
        conn.transport = transport  # type: ignore[assignment]
        conn.caller = object()  # type: ignore[assignment]
        conn.user_id = user_id
        self.by_user.setdefault(user_id, set()).add(conn)
        return conn, transport

    async def subscribe(self, conn: Connection, since: int | None = None) -> None:
        await self.subscriptions.subscribe(
            conn,
            cmd.Subscribe(
                op="subscribe",
                id=7,
                channel=CHANNEL,
                since=None if since is None else Since(offset=since, epoch=EPOCH),
            ),
        )


def written(conn: Connection, transport: Transport) -> list[bytes]:
    """What the socket was sent: written, and held for the end of this turn."""
    return [*transport.written, *(conn.out or [])]


async def test_membership_removed_during_the_history_read_refuses_the_subscribe() -> None:
    hub = Hub()
    conn, transport = hub.socket("b", "user-b")
    hub.history.gate = gate = Gate()
    subscribing = asyncio.create_task(hub.subscribe(conn, since=5))
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


async def test_membership_removed_during_the_access_check_refuses_the_subscribe() -> None:
    hub = Hub()
    conn, transport = hub.socket("b", "user-b")
    hub.authorizer.gate = gate = Gate()
    subscribing = asyncio.create_task(hub.subscribe(conn))
    await gate.reached.wait()

    # The worker's answer was made before the removal: it still says "allowed".
    assert await hub.subscriptions.membership_removed("user-b", Channel.parse(CHANNEL)) == 1
    gate.open()

    with pytest.raises(Forbidden):
        await subscribing
    assert written(conn, transport) == []
    assert CHANNEL not in conn.subs
    assert CHANNEL not in hub.fanout.feeds


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
    await presence.cb(_Msg(b'{"push":"presence","joined":[{"user":"x"}]}'))

    assert transport.written[-1].endswith(b'{"push":"presence","joined":[{"user":"x"}]}')


class _Msg:
    def __init__(self, data: bytes) -> None:
        self.data = data
