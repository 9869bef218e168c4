"""A hub's subscriptions and fan-out over fakes of what they await (history, presence, the
channel check, NATS) and a socket that records what it is sent: for the interleavings
of subscribes, removals and resets, held at gates rather than timed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

from nats.aio.client import Client as NATS

from hub.ws import commands as cmd
from hub.ws.authz import ChannelAuthorizer
from hub.ws.connection import Connection
from hub.ws.fanout import Fanout
from hub.ws.history import History, Publication
from hub.ws.presence import Presence
from hub.ws.subscriptions import Subscriptions
from hubbub.config import Settings
from hubbub.contracts.channels import DEFAULT_POLICIES, Channel
from hubbub.contracts.errors import Unavailable
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
    """Every publication up to ``last`` is held, under ``epoch``; ``gate`` (when set)
    holds the read."""

    def __init__(self) -> None:
        self.gate: Gate | None = None
        self.epoch_now = EPOCH
        self.epoch_gate: Gate | None = None  # holds the next epoch read
        self.epoch_failures = 0  # epoch reads still to fail
        self.last = LAST
        self.epoch_reads: list[bool] = []  # each read: fresh or not

    async def epoch(self, kind: object, *, fresh: bool = False) -> str:
        self.epoch_reads.append(fresh)
        gate, self.epoch_gate = self.epoch_gate, None
        if gate is not None:
            await gate.passing()
        if self.epoch_failures:
            self.epoch_failures -= 1
            raise Unavailable("channel history is unavailable: TimeoutError")
        return self.epoch_now

    async def last_offset(self, channel: Channel) -> int:
        return self.last

    async def holds(self, channel: Channel, offset: int) -> bool:
        if self.gate is not None:
            await self.gate.passing()
        return True

    async def after(self, channel: Channel, offset: int, limit: int, *_: Any, **__: Any) -> Any:
        return [Publication(o, b'{"n":%d}' % o) for o in range(offset + 1, self.last + 1)][:limit]

    async def empty_channel(self, channel: Channel, epoch: str) -> tuple[int, int] | None:
        """(Only asked when ``last`` is 0.) Nothing was ever dropped: from 1, up to 0."""
        return (1, 0) if epoch == self.epoch_now else None

    async def kept_after(self, kind: object, epoch: str, offset: int) -> int | None:
        return -1 if epoch == self.epoch_now else None  # nothing dropped, no limit

    async def reaches(self, kind: object, epoch: str, offset: int) -> bool:
        return epoch == self.epoch_now and offset <= self.last

    async def is_current(self, kind: object, epoch: str) -> bool:
        return epoch == self.epoch_now


class FakeAuthorizer:
    """Members of every channel; ``gate`` (when set) holds the worker's check."""

    def __init__(self) -> None:
        self.gate: Gate | None = None
        self.removed: list[tuple[str, str]] = []

    def allowed_by_policy(self, *_: object) -> bool:
        return self.gate is None

    async def check(self, *_: object) -> None:
        assert self.gate is not None
        await self.gate.passing()

    def membership_removed(self, user_id: str, channel: Channel) -> None:
        self.removed.append((user_id, str(channel)))


class FakePresence:
    """Records the channels watched and the members (channel, client) joined and not
    left; ``resyncs`` are the answers of the next resyncs in turn (an exception is
    raised), None once they run out; ``resync_gate`` (when set) holds every resync."""

    def __init__(self) -> None:
        self.watched: set[str] = set()
        self.members: set[tuple[str, str]] = set()
        self.resyncs: list[bytes | Exception | None] = []
        self.resync_gate: Gate | None = None
        self.resync_calls = 0
        self.resync_cancelled = False

    async def resync(self, channel: Channel) -> bytes | None:
        self.resync_calls += 1
        try:
            if self.resync_gate is not None:
                await self.resync_gate.passing()
        except asyncio.CancelledError:
            self.resync_cancelled = True
            raise
        answer = self.resyncs.pop(0) if self.resyncs else None
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def join(self, channel: Channel, user_id: str, client: str) -> None:
        self.members.add((str(channel), client))

    async def leave(self, channel: Channel, user_id: str, client: str) -> None:
        self.members.discard((str(channel), client))

    def watch(self, name: str) -> None:
        self.watched.add(name)

    def unwatch(self, name: str) -> None:
        self.watched.discard(name)

    def forwarded(self, name: str, joined: object, left: object) -> None:
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
        self.is_connected = True
        self.refused: set[str] = set()  # kinds of subject whose subscribe raises
        self.gates: dict[str, Gate] = {}  # kind of subject → the gate its subscribe waits at

    async def subscribe(self, subject: str, cb: Any, **_: Any) -> FakeSubscription:
        if any(f".{kind}." in f".{subject}" for kind in self.refused):
            raise ConnectionError("nats: connection closed")
        for kind, gate in self.gates.items():
            if f".{kind}." in f".{subject}":
                await gate.passing()
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

    def abort(self) -> None:
        pass

    def get_extra_info(self, name: str) -> None:
        return None


class Hub:
    def __init__(self) -> None:
        self.nats = FakeNats()
        self.history = FakeHistory()
        self.authorizer = FakeAuthorizer()
        self.presence = FakePresence()
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
            presence=cast(Presence, self.presence),
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

    async def subscribe(
        self, conn: Connection, since: int | None = None, epoch: str = EPOCH
    ) -> None:
        await self.subscriptions.subscribe(
            conn,
            cmd.Subscribe(
                op="subscribe",
                id=7,
                channel=CHANNEL,
                since=None if since is None else Since(offset=since, epoch=epoch),
            ),
        )


def written(conn: Connection, transport: Transport) -> list[bytes]:
    """What the socket was sent: written, and held for the end of this turn."""
    return [*transport.written, *(conn.out or [])]


class FakeMsg:
    def __init__(self, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.data = data
        self.headers = headers
        self.subject = ""
