"""The outbox relay while its passes fail: each failure is followed by its whole backoff,
and a JetStream outage is one "paused" line and one "resumed" line, however many relays
and commits there are."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from nats.aio.client import Client as NATS
from nats.js.api import PubAck
from nats.js.errors import NoStreamResponseError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.db import asyncpg_connect_args
from hubbub.config import Settings
from hubbub.contracts.channels import ChannelKind
from hubbub.contracts.subjects import Subjects
from hubbub.natsconn import connect_nats
from hubbub.streams import ensure_streams
from tests.integration.test_relay_leader import add_rows, notes, unpublished
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_for
from workers.relay import NOTIFY_CHANNEL, RELAY_LOCK_ID, AckedPublisher, OutboxRelay


class Backoff:
    """A relay's backoff sleep that lasts until the test ends it: ``delays`` are the
    waits the relay asked for, one per failed pass."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self._current: asyncio.Future[None] | None = None

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self._current = asyncio.get_running_loop().create_future()
        await self._current

    def end(self) -> None:
        assert self._current is not None
        self._current.set_result(None)


class CountingRelay(OutboxRelay):
    """Counts the PostgreSQL connections it opens: one per pass after a failed one."""

    connects = 0

    async def _connect(self) -> asyncpg.Connection:
        self.connects += 1
        return await super()._connect()


class FailingJetStream:
    """A JetStream client with a bug: every publish raises."""

    async def publish_async(self, *_: Any, **__: Any) -> Any:
        raise RuntimeError("a bug in publishing")


def lines(caplog: pytest.LogCaptureFixture, start: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(start)]


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info]


async def kicks_then_next_pass(relay: OutboxRelay, backoff: Backoff) -> None:
    """What a worker's commits do meanwhile: kick, many times — then the backoff ends."""
    for _ in range(50):
        relay.kick()
        await asyncio.sleep(0)
    backoff.end()


async def test_kicks_do_not_cut_a_jetstream_outages_backoff_short(
    settings: Settings,
    nc: NATS,
    db: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The stream is gone (a NATS reset) and requests keep committing: each failed pass
    is followed by its whole, growing backoff, on one new connection, and the outage is
    one "paused" line."""
    subjects = Subjects(settings.namespace)
    await nc.jetstream().delete_stream(subjects.stream(ChannelKind.WORKSPACE))
    await add_rows(db, "workspace:backoff", "a")
    backoff = Backoff()
    relay = CountingRelay(db, nc.jetstream(), subjects, min_interval=0, sleep=backoff)
    caplog.set_level(logging.INFO, "workers.relay")
    relay.start()
    try:
        relay.kick()
        for passes in range(1, 4):
            await wait_for(lambda n=passes: len(backoff.delays) == n)
            assert relay.connects == passes
            await kicks_then_next_pass(relay, backoff)
        await wait_for(lambda: len(backoff.delays) == 4)
        assert relay.connects == 4
        assert backoff.delays == [2.0, 4.0, 5.0, 5.0]  # up to the outage cap
        assert len(lines(caplog, "outbox relay paused")) == 1
        assert tracebacks(caplog) == []
    finally:
        await relay.stop(1)


async def test_kicks_do_not_cut_a_failures_backoff_short(
    settings: Settings,
    db: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failure that is not an outage (a bug) is one traceback per backoff step, not one
    per commit."""
    await add_rows(db, "workspace:bug", "a")
    backoff = Backoff()
    js: Any = FailingJetStream()
    relay = CountingRelay(db, js, Subjects(settings.namespace), min_interval=0, sleep=backoff)
    caplog.set_level(logging.INFO, "workers.relay")
    relay.start()
    try:
        relay.kick()
        for passes in range(1, 4):
            await wait_for(lambda n=passes: len(backoff.delays) == n)
            await kicks_then_next_pass(relay, backoff)
        await wait_for(lambda: len(backoff.delays) == 4)
        assert relay.connects == 4
        assert backoff.delays == [2.0, 4.0, 8.0, 16.0]
        assert len(tracebacks(caplog)) == 4
    finally:
        await relay.stop(1)


async def test_a_paused_relay_says_resumed_only_once_events_go_out(
    settings: Settings,
    nc: NATS,
    db: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two relays, the workspace stream gone. The relay whose pass failed (its batch's
    first row, a user's event, was stored; the next one found no stream) stays paused
    through the passes in which another relay leads — JetStream answers, only the stream
    is missing, and no event goes out — and says "resumed" once the leader has published
    the rows it could not: the row it is waiting for is the one JetStream did not take,
    not the first of its batch."""
    subjects = Subjects(settings.namespace)
    await nc.jetstream().delete_stream(subjects.stream(ChannelKind.WORKSPACE))
    await add_rows(db, "user:resumed", "stored")
    await add_rows(db, "workspace:resumed", "a")
    backoff = Backoff()
    paused = OutboxRelay(db, nc.jetstream(), subjects, poll_interval=60, sleep=backoff, nats=nc)
    caplog.set_level(logging.INFO, "workers.relay")
    paused.start()
    other = OutboxRelay(db, nc.jetstream(), subjects, poll_interval=60, nats=nc)
    # Another relay's pass, holding the lead: it hears the paused relay's NOTIFYs.
    holder = await asyncpg.connect(**asyncpg_connect_args(settings.database_url or ""))
    told: asyncio.Queue[None] = asyncio.Queue()
    try:
        paused.kick()
        await wait_for(lambda: backoff.delays)  # it led, failed, and waits out its backoff
        await holder.fetchval("SELECT pg_advisory_lock($1)", RELAY_LOCK_ID)
        await holder.add_listener(NOTIFY_CHANNEL, lambda *_: told.put_nowait(None))
        backoff.end()
        await asyncio.wait_for(told.get(), 10)  # a pass that did not lead…
        paused.kick()
        await asyncio.wait_for(told.get(), 10)  # …and another: the first one is over
        assert lines(caplog, "outbox relay resumed") == []
        assert paused.paused is not None

        await holder.close()
        await ensure_streams(nc.jetstream(), subjects, settings.policies())
        assert await other.flush() is False  # leads, and publishes the row
        assert await unpublished(db) == 0
        paused.kick()
        await wait_for(lambda: lines(caplog, "outbox relay resumed"))
        assert paused.published == 1  # the user's event, marked by its failed pass
        assert not paused.leading
        assert len(lines(caplog, "outbox relay paused")) == 1
        assert len(lines(caplog, "outbox relay resumed")) == 1
        assert await notes(nc, settings, "workspace:resumed") == ["a"]
    finally:
        await holder.close()
        await paused.stop(1)
        await other.stop(1)


async def test_a_batch_given_up_for_the_lease_is_backed_off_like_a_failure(
    settings: Settings,
    nc: NATS,
    db: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A batch that always takes longer than the fence allows (here: any time at all) is
    given up each pass — and each time the relay waits out a growing backoff, not read
    again at once on a new connection, and reads a batch half as big next."""
    # Below zero, not zero: uvloop's clock moves in whole milliseconds, so a read and a
    # fence check within one are "no time at all" apart, and a zero share lets it out.
    monkeypatch.setattr("workers.relay.FENCE_SHARE", -1.0)
    await add_rows(db, "workspace:fenced", "a")
    backoff = Backoff()
    relay = CountingRelay(
        db, nc.jetstream(), Subjects(settings.namespace), min_interval=0, sleep=backoff, nats=nc
    )
    caplog.set_level(logging.INFO, "workers.relay")
    relay.start()
    try:
        relay.kick()
        await wait_for(lambda: len(backoff.delays) == 1)
        await kicks_then_next_pass(relay, backoff)
        await wait_for(lambda: len(backoff.delays) == 2)
        assert backoff.delays == [2.0, 4.0]
        assert relay.connects == 2
        assert relay.batch_now == relay.batch_size // 4
        assert len(lines(caplog, "outbox relay gave up a batch")) == 2
        assert await unpublished(db) == 1
        monkeypatch.undo()  # the next batch goes out in time: whole batches again
        backoff.end()
        await wait_for(lambda: relay.batch_now == relay.batch_size)
        await wait_for(lambda: _none_unpublished(db))
    finally:
        monkeypatch.undo()
        await relay.stop(1)


async def _none_unpublished(db: async_sessionmaker[AsyncSession]) -> bool:
    return await unpublished(db) == 0


JUNK = "relay.test.junk"


async def stall(client: NATS, proxy: TcpProxy) -> None:
    """Stall ``client``'s connection: the proxy stops reading what it sends, and nats-py's
    flusher hands its transport 16 MB of junk (on a subject nobody reads) in one write —
    more than the sockets' buffers take in — and waits in its drain for good. What is
    published from now on stays in nats-py's buffer, where the relay can take it back."""
    proxy.hold_upstream_from(f"PUB {JUNK} ".encode())
    for _ in range(16):  # none of these awaits lets the flusher run: one write for all
        await client.publish(JUNK, b"x" * 1_000_000)
    transport: Any = client._transport  # type: ignore[attr-defined]
    writer: asyncio.StreamWriter = transport._io_writer
    # Past the transport's high-water mark: the flusher waits in its drain (whatever the
    # kernel's socket buffers took of the 16 MB).
    high = writer.transport.get_write_buffer_limits()[1]
    await wait_for(lambda: writer.transport.get_write_buffer_size() > high)


def ours_pending(client: NATS, relay: OutboxRelay) -> list[bytes]:
    """The first lines of the relay's commands still in nats-py's buffer."""
    assert isinstance(relay.js, AckedPublisher)
    prefix = relay.js._prefix
    assert prefix is not None
    lines = [cmd.split(b"\r\n")[0] for cmd in client._pending]  # type: ignore[attr-defined]
    return [line for line in lines if prefix.encode() in line]


@pytest.fixture
async def stalling(settings: Settings) -> AsyncIterator[tuple[NATS, TcpProxy]]:
    """A NATS client whose connection a test can stall (the test's server, through a
    proxy); no pings, so nats-py does not take the stall for a lost link."""
    proxy = TcpProxy.to_url(settings.nats_url or "")
    await proxy.start()
    client = await connect_nats(
        proxy.in_place_of(settings.nats_url or ""), "stalled", ping_interval_s=600
    )
    try:
        yield client, proxy
    finally:
        await proxy.stop()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await client.close()


async def test_a_stalled_connection_keeps_the_relays_subscription_and_logs_once(
    settings: Settings,
    nc: NATS,
    db: async_sessionmaker[AsyncSession],
    stalling: tuple[NATS, TcpProxy],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The relay's NATS connection stalls (nats-py's flusher waits on a full socket): each
    pass times out, and the messages it handed to nats-py are taken back — but not the
    subscription to JetStream's answers that its publisher queued at its first publish,
    which nats-py would not send again short of a reconnect (every later pass would time
    out, and its batch be sent again at each). The outage is one "paused" line and one
    line about messages taken back; once the connection moves, the same relay publishes
    the rows, once each."""
    client, proxy = stalling
    subjects = Subjects(settings.namespace)
    await add_rows(db, "workspace:stalled", "a", "b")
    backoff = Backoff()
    relay = OutboxRelay(
        db,
        client.jetstream(),
        subjects,
        publish_timeout=0.5,
        min_interval=0,
        sleep=backoff,
        nats=client,
    )
    caplog.set_level(logging.INFO, "workers.relay")
    await stall(client, proxy)
    relay.start()
    try:
        relay.kick()
        for passes in range(1, 4):
            await wait_for(lambda n=passes: len(backoff.delays) == n)
            # The pass's messages were taken back; the subscription is still to go.
            assert [line.split()[0] for line in ours_pending(client, relay)] == [b"SUB"]
            if passes < 3:
                backoff.end()
        assert len(lines(caplog, "outbox relay paused")) == 1
        assert len(lines(caplog, "outbox relay took back")) == 1
        assert await unpublished(db) == 2

        proxy.release_upstream()
        backoff.end()
        await wait_for(lambda: lines(caplog, "outbox relay resumed"))
        assert await unpublished(db) == 0
        assert relay.published == 2
        assert await notes(nc, settings, "workspace:stalled") == ["a", "b"]
        assert tracebacks(caplog) == []
    finally:
        await relay.stop(1)


class SplitPublisher(AckedPublisher):
    """The relay's publisher on a stalled connection, except that a user's event goes
    through ``elsewhere`` (a connection that JetStream answers on)."""

    def __init__(self, nc: NATS, elsewhere: AckedPublisher) -> None:
        super().__init__(nc)
        self.elsewhere = elsewhere

    async def publish_async(
        self, subject: str, payload: bytes, *, headers: dict[str, str]
    ) -> asyncio.Future[PubAck]:
        if ".user." in subject:
            return await self.elsewhere.publish_async(subject, payload, headers=headers)
        return await super().publish_async(subject, payload, headers=headers)


async def test_a_pass_failed_by_one_answer_takes_back_the_unsent_rest(
    settings: Settings,
    nc: NATS,
    db: async_sessionmaker[AsyncSession],
    stalling: tuple[NATS, TcpProxy],
) -> None:
    """A batch's first row finds no stream (JetStream answers at once) and the next waits
    on a stalled connection until the pass gives it up: the pass fails with the first
    row's error — and takes the second's message back out of nats-py's buffer, as a pass
    that failed on the timeout does, rather than leave it there to go out whenever the
    connection moves."""
    client, proxy = stalling
    subjects = Subjects(settings.namespace)
    await nc.jetstream().delete_stream(subjects.stream(ChannelKind.USER))
    await add_rows(db, "user:split", "nostream")
    await add_rows(db, "workspace:split", "stalled")
    relay = OutboxRelay(db, client.jetstream(), subjects, publish_timeout=0.5, nats=client)
    relay.js = SplitPublisher(client, AckedPublisher(nc))
    await stall(client, proxy)
    try:
        with pytest.raises(NoStreamResponseError):
            await relay.flush()
        assert [line.split()[0] for line in ours_pending(client, relay)] == [b"SUB"]
        assert await unpublished(db) == 2
    finally:
        await relay.stop(0.1)
