"""One outbox relay leads at a time: it publishes the rows every worker commits, and the
lead passes on when it stops or fails."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError, ConnectionReconnectingError
from nats.js import JetStreamContext
from nats.js.errors import APIError, NoStreamResponseError, ServiceUnavailableError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cli.embedded import EmbeddedNats
from handlers.outbox import OutboxEvent
from hubbub.config import Settings
from hubbub.contracts.channels import Channel, ChannelKind
from hubbub.contracts.subjects import Subjects
from hubbub.dependencies import NATS as NATS_DEPENDENCY
from hubbub.dependencies import Outage
from hubbub.natsconn import connect_nats
from hubbub.streams import ensure_streams
from tests.integration.test_outbox import the_set_aside_rows_error
from tests.support.waiting import wait_for
from workers.relay import AckedPublisher, ConnectionLost, LeadLost, OutboxRelay, Pending


async def add_rows(db: async_sessionmaker[AsyncSession], channel: str, *names: str) -> None:
    async with db() as session, session.begin():
        for name in names:
            payload = {"id": f"evt-{name}", "type": "note.added", "data": {"note": name}}
            session.add(OutboxEvent(channel=channel, event_type="note.added", payload=payload))


async def unpublished(db: async_sessionmaker[AsyncSession]) -> int:
    async with db() as session:
        count = await session.scalar(select(func.count()).where(OutboxEvent.published_at.is_(None)))
    return int(count or 0)


async def notes(nc: NATS, settings: Settings, channel: str) -> list[str]:
    """The notes of the events stored for ``channel``, in stream order."""
    subjects = Subjects(settings.namespace)
    js = nc.jetstream()
    stream = subjects.stream(ChannelKind.WORKSPACE)
    subject = subjects.event(Channel.parse(channel))
    info = await js.stream_info(stream)
    found = []
    for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        if msg.subject == subject:
            found.append(orjson.loads(msg.data or b"{}")["data"]["note"])
    return found


def relay(db: async_sessionmaker[AsyncSession], nc: NATS, settings: Settings) -> OutboxRelay:
    return OutboxRelay(db, nc.jetstream(), Subjects(settings.namespace), poll_interval=60, nats=nc)


async def test_the_leader_publishes_what_another_worker_committed(
    settings: Settings, nc: NATS, db: async_sessionmaker[AsyncSession]
) -> None:
    """The first relay to pass leads; the other one's pass only tells it, and the
    leader — woken by that alone (both poll once a minute here) — publishes the rows,
    once, in id order."""
    leader, other = relay(db, nc, settings), relay(db, nc, settings)
    assert await leader.flush() is False
    leader.start()
    try:
        await add_rows(db, "workspace:lead1", "a", "b", "c")
        assert await other.flush() is True  # another relay leads: nothing published here
        assert (leader.leading, other.leading) == (True, False)
        await wait_for(lambda: leader.published == 3)
        assert await unpublished(db) == 0
        assert await notes(nc, settings, "workspace:lead1") == ["a", "b", "c"]
        assert other.published == 0
    finally:
        await leader.stop()
        await other.stop()


async def test_a_stopped_leader_hands_the_lead_on(
    settings: Settings, nc: NATS, db: async_sessionmaker[AsyncSession]
) -> None:
    first, second = relay(db, nc, settings), relay(db, nc, settings)
    try:
        assert await first.flush() is False
        assert await second.flush() is True
        await first.stop()  # its last pass, then its connection (and the lock) goes
        await add_rows(db, "workspace:lead2", "after")
        assert await second.flush() is False
        assert second.leading
        assert await notes(nc, settings, "workspace:lead2") == ["after"]
    finally:
        await first.stop()
        await second.stop()


async def test_a_leader_whose_pass_fails_gives_up_the_lead(
    settings: Settings, nc: NATS, db: async_sessionmaker[AsyncSession]
) -> None:
    """A leader that cannot publish (its NATS connection is gone) closes its connection:
    a relay that can publish takes over, and nothing was lost."""
    closed = await connect_nats(settings.nats_url or "", "closed")
    await closed.close()
    broken = OutboxRelay(db, closed.jetstream(), Subjects(settings.namespace), nats=closed)
    healthy = relay(db, nc, settings)
    try:
        assert await broken.flush() is False  # it leads, with nothing to publish yet
        await add_rows(db, "workspace:lead3", "kept")
        with pytest.raises(ConnectionClosedError):
            await broken.flush()
        assert not broken.leading
        assert await healthy.flush() is False
        assert await notes(nc, settings, "workspace:lead3") == ["kept"]
    finally:
        await broken.stop()
        await healthy.stop()


async def test_a_relay_cancelled_mid_pass_publishes_the_rest_when_stopped(
    settings: Settings, nc: NATS, db: async_sessionmaker[AsyncSession]
) -> None:
    """Stopping cancels the loop wherever it is (its connection may be mid-statement):
    the last pass runs on a new connection."""
    running = relay(db, nc, settings)
    running.start()
    await add_rows(db, "workspace:lead4", *(f"n{i}" for i in range(50)))
    running.kick()
    await asyncio.sleep(0)
    await running.stop()
    assert await unpublished(db) == 0
    assert await notes(nc, settings, "workspace:lead4") == [f"n{i}" for i in range(50)]


async def test_a_leader_that_goes_silent_loses_the_lead(
    settings: Settings,
    nc: NATS,
    db: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lock is held between passes, so it is a lease: a leader that sends nothing
    for its idle time (a frozen process, a blocked loop) has its session ended by the
    server, and another relay takes the lead and publishes."""
    monkeypatch.setattr("workers.relay.LEASE_MIN_S", 0.5)
    frozen = OutboxRelay(
        db, nc.jetstream(), Subjects(settings.namespace), poll_interval=0.1, nats=nc
    )
    other = relay(db, nc, settings)
    assert await frozen.flush() is False  # leads; never passes again
    await add_rows(db, "workspace:silent", "a", "b")
    assert await other.flush() is True  # the frozen one still holds the lead
    try:

        async def took_over() -> bool:
            return await other.flush() is False

        await wait_for(took_over, timeout=20)
        assert other.leading
        assert await unpublished(db) == 0
        assert await notes(nc, settings, "workspace:silent") == ["a", "b"]
    finally:
        await other.stop(1)
        await frozen.stop(1)


async def test_a_stopping_relay_sees_its_rows_out_when_the_leader_stops_without_them(
    settings: Settings, nc: NATS, db: async_sessionmaker[AsyncSession]
) -> None:
    """A relay that does not lead tells the leader at its stop — and, should the leader
    be stopping too (its loop gone, its last pass done), waits for the lead and
    publishes the rows itself."""
    leader, stopping = relay(db, nc, settings), relay(db, nc, settings)
    assert await leader.flush() is False  # leads, and never passes again
    await add_rows(db, "workspace:stopping", "a", "b")
    stop = asyncio.create_task(stopping.stop(10))
    try:
        await wait_for(lambda: stopping._conn is not None)  # it tried, and told the leader
        assert not stop.done()  # the rows are not out: it waits
        await leader._close()  # the leader ends without another pass
        await stop
        assert await unpublished(db) == 0
        assert await notes(nc, settings, "workspace:stopping") == ["a", "b"]
    finally:
        await leader.stop(1)


class RecordingJetStream:
    """JetStream as it is, noting the ``Nats-Msg-Id`` of each message published."""

    def __init__(self, js: JetStreamContext | AckedPublisher) -> None:
        self.js = js
        self.sent: list[str] = []

    async def publish_async(self, subject: str, payload: bytes, **kwargs: Any) -> Any:
        self.sent.append(kwargs["headers"]["Nats-Msg-Id"])
        return await self.js.publish_async(subject, payload, **kwargs)


async def test_a_leader_frozen_after_reading_its_batch_gives_it_up(
    settings: Settings,
    nc: NATS,
    db: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A leader frozen (a stopped process, a blocked loop) between reading its batch and
    publishing it loses its lease meanwhile, and another relay publishes the rows. Thawed,
    it sends none of its stale batch — past JetStream's duplicate window it would be
    stored again, after newer events — and its pass ends as a lead lost."""
    monkeypatch.setattr("workers.relay.LEASE_MIN_S", 0.5)
    read, thaw = asyncio.Event(), asyncio.Event()

    class FrozenAfterReading(OutboxRelay):
        async def _take(self, conn: asyncpg.Connection) -> list[Pending]:
            rows = await super()._take(conn)
            if rows:
                read.set()
                await thaw.wait()
            return rows

    js: Any = RecordingJetStream(nc.jetstream())
    frozen = FrozenAfterReading(db, js, Subjects(settings.namespace), poll_interval=0.1)
    other = relay(db, nc, settings)
    assert await frozen.flush() is False  # leads
    await add_rows(db, "workspace:thawed", "a", "b")
    stale = asyncio.create_task(frozen.flush())
    try:
        async with asyncio.timeout(10):
            await read.wait()

        async def took_over() -> bool:
            return await other.flush() is False

        await wait_for(took_over, timeout=20)
        assert await notes(nc, settings, "workspace:thawed") == ["a", "b"]
        thaw.set()
        with pytest.raises(LeadLost):
            await stale
        assert js.sent == []  # not even a row: it had read them before the lease ran out
        assert not frozen.leading
    finally:
        thaw.set()
        await other.stop(1)
        await frozen.stop(1)


@pytest.fixture
async def own_nats(tmp_path: Path) -> AsyncIterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path / "own-nats")
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.stop)


async def test_a_leader_whose_nats_connection_is_reconnecting_publishes_nothing(
    settings: Settings, own_nats: EmbeddedNats, db: async_sessionmaker[AsyncSession]
) -> None:
    """What nats-py is given while it reconnects it keeps, and sends whenever it is back
    — maybe long after another relay published the rows. A leader whose client is
    reconnecting gives its batch up as a NATS outage, and gives nothing to the client."""
    subjects = Subjects(settings.namespace)
    client = await connect_nats(own_nats.url, "reconnecting")
    try:
        await ensure_streams(client.jetstream(), subjects, settings.policies())
        reconnecting = OutboxRelay(db, client.jetstream(), subjects, publish_timeout=1, nats=client)
        assert await reconnecting.flush() is False  # leads, with nothing to publish yet
        await asyncio.to_thread(own_nats.stop)
        await wait_for(lambda: client.is_reconnecting)
        await add_rows(db, "workspace:reconnecting", "a")
        with pytest.raises(ConnectionReconnectingError):
            await reconnecting.flush()
        assert client.pending_data_size == 0
        assert not reconnecting.leading
        assert await unpublished(db) == 1
    finally:
        await client.close()


async def test_rows_jetstream_stored_are_marked_though_a_later_row_of_their_batch_failed(
    settings: Settings, own_nats: EmbeddedNats, db: async_sessionmaker[AsyncSession]
) -> None:
    """A batch whose second row finds no stream: the first was acknowledged (stored), so
    it is marked, and only the second is sent again — a row re-sent only once JetStream
    is back, maybe past its duplicate window, would be stored twice."""
    subjects = Subjects(settings.namespace)
    client = await connect_nats(own_nats.url, "partial")
    try:
        js = client.jetstream()
        await ensure_streams(js, subjects, settings.policies())
        await js.delete_stream(subjects.stream(ChannelKind.USER))
        recording: Any = RecordingJetStream(AckedPublisher(client))
        partial = OutboxRelay(db, recording, subjects, publish_timeout=5, nats=client)
        await add_rows(db, "workspace:partial", "stored")
        await add_rows(db, "user:partial", "nostream")
        with pytest.raises(NoStreamResponseError):
            await partial.flush()
        assert await unpublished(db) == 1
        await ensure_streams(js, subjects, settings.policies())
        assert await partial.flush() is False
        assert await unpublished(db) == 0
        assert recording.sent == ["evt-stored", "evt-nostream", "evt-nostream"]
        assert partial.published == 2
    finally:
        await client.close()


async def test_rows_stored_whose_mark_failed_are_marked_not_sent_again(
    settings: Settings, nc: NATS, db: async_sessionmaker[AsyncSession]
) -> None:
    """The relay's connection ends between JetStream's acknowledgement and the mark (say,
    PostgreSQL restarts): the next pass marks the rows it knows were stored instead of
    sending them again, which past the duplicate window would store them twice."""
    subjects = Subjects(settings.namespace)
    recording: Any = RecordingJetStream(AckedPublisher(nc))
    cut = OutboxRelay(db, recording, subjects, nats=nc)
    assert await cut.flush() is False  # leads
    assert cut._conn is not None
    pid = cut._conn.get_server_pid()

    class CutAfterAck(RecordingJetStream):
        async def publish_async(self, subject: str, payload: bytes, **kwargs: Any) -> Any:
            ack = await super().publish_async(subject, payload, **kwargs)
            if kwargs["headers"]["Nats-Msg-Id"] == "evt-b":
                await ack  # both stored; now the relay's session ends before the mark
                async with db() as session:
                    await session.execute(select(func.pg_terminate_backend(pid)))
            return ack

    cut.js = CutAfterAck(AckedPublisher(nc))
    cut.js.sent = recording.sent
    await add_rows(db, "workspace:cut", "a", "b")
    # However asyncpg reports the session's end: during the mark, or before it.
    ended = (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError, ConnectionLost)
    with pytest.raises((*ended, asyncpg.InternalClientError)):
        await cut.flush()
    cut.js = recording
    assert await cut.flush() is False
    assert await unpublished(db) == 0
    assert recording.sent == ["evt-a", "evt-b"]
    assert await notes(nc, settings, "workspace:cut") == ["a", "b"]
    await cut.stop(1)


@pytest.mark.parametrize("from_error", ["raises", "returns"])
async def test_a_row_jetstream_refuses_is_set_aside_and_the_rest_go_out(
    settings: Settings,
    own_nats: EmbeddedNats,
    db: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    from_error: str,
) -> None:
    """JetStream answers a message over the stream's max_msg_size with a 400: the row is
    set aside with that answer and the rows around it go out. (nats-py's publish_async
    loses an error JetStream answers with, nats-io/nats.py#985: the relay waited out its
    acknowledgement, said JetStream was unreachable and tried the batch again for good.)
    The same whether nats-py's ``APIError.from_error`` raises the error, as in 2.16, or
    returns it, as it would with that bug fixed."""
    if from_error == "returns":
        raising = APIError.from_error

        def returning(cls: type[APIError], err: dict[str, Any]) -> APIError:
            try:
                raising(err)
            except APIError as exc:
                return exc
            raise AssertionError("from_error neither raised nor returned an error")

        monkeypatch.setattr(APIError, "from_error", classmethod(returning))
    subjects = Subjects(settings.namespace)
    client = await connect_nats(own_nats.url, "refused")
    try:
        js = client.jetstream()
        await ensure_streams(js, subjects, settings.policies())
        info = await js.stream_info(subjects.stream(ChannelKind.WORKSPACE))
        info.config.max_msg_size = 2000
        await js.update_stream(info.config)
        await add_rows(db, "workspace:refused", "before", "x" * 3000, "after")
        refusing = OutboxRelay(db, js, subjects, publish_timeout=2, nats=client)
        assert await refusing.flush() is False
        assert (refusing.published, refusing.set_aside) == (2, 1)
        assert await notes(client, settings, "workspace:refused") == ["before", "after"]
        error = await the_set_aside_rows_error(db)
        assert error.startswith("refused by JetStream:")
        assert "message size exceeds maximum allowed" in error
    finally:
        await client.close()


async def test_jetstream_out_of_storage_pauses_the_relay(
    settings: Settings, tmp_path: Path, db: async_sessionmaker[AsyncSession]
) -> None:
    """JetStream answers 503 (insufficient resources: its storage is used up): the batch
    fails at once as an outage of NATS, its row stays owed — not a wait for an
    acknowledgement that never comes."""
    config = tmp_path / "small.conf"
    config.write_text("jetstream { max_file_store: 1MB }\n")
    server = EmbeddedNats(tmp_path / "small-nats", config=config)
    await asyncio.to_thread(server.start)
    subjects = Subjects(settings.namespace)
    client = await connect_nats(server.url, "full")
    try:
        js = client.jetstream()
        stream = subjects.stream(ChannelKind.WORKSPACE)
        await js.add_stream(name=stream, subjects=[subjects.event_wildcard(ChannelKind.WORKSPACE)])
        async with db() as session, session.begin():
            for i in range(8):
                payload = {
                    "id": f"evt-full-{i}",
                    "type": "note.added",
                    "data": {"n": "x" * 200_000},
                }
                session.add(
                    OutboxEvent(channel="workspace:full", event_type="note.added", payload=payload)
                )
        full = OutboxRelay(db, js, subjects, publish_timeout=30, nats=client)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ServiceUnavailableError):
            await full.flush()
        assert loop.time() - started < 10
        assert OutboxRelay._outage(ServiceUnavailableError()) == Outage(NATS_DEPENDENCY)
        assert 0 < await unpublished(db) < 8
        assert full.set_aside == 0
    finally:
        await client.close()
        await asyncio.to_thread(server.stop)


async def test_a_leader_frozen_mid_publish_sends_none_of_what_it_had_handed_over(
    settings: Settings,
    nc: NATS,
    db: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The event loop blocks (a freeze) right after the first row of a batch was handed
    to nats-py, before its flusher wrote it. Thawed past the fence, the relay gives the
    batch up — and takes back the message still in nats-py's buffer: sent now, it could
    reach JetStream after the relay that leads meanwhile published the row (past the
    duplicate window: stored twice, after newer events). What reaches NATS is what the
    next pass publishes, once each, through the same publisher."""
    monkeypatch.setattr("workers.relay.LEASE_MIN_S", 0.5)
    subjects = Subjects(settings.namespace)
    seen: list[str] = []

    async def arrived(msg: Msg) -> None:
        seen.append((msg.headers or {}).get("Nats-Msg-Id", ""))

    watcher = await connect_nats(settings.nats_url or "", "watcher")
    await watcher.subscribe(subjects.event(Channel.parse("workspace:frozen")), cb=arrived)
    await watcher.flush()

    class FrozenAfterHanding(AckedPublisher):
        frozen = False

        async def publish_async(self, subject: str, payload: bytes, **kwargs: Any) -> Any:
            ack = await super().publish_async(subject, payload, **kwargs)
            if not self.frozen:
                self.frozen = True
                time.sleep(0.4)  # the loop blocked: nothing else runs, the flusher neither
            return ack

    relay = OutboxRelay(db, nc.jetstream(), subjects, poll_interval=60, publish_timeout=2, nats=nc)
    relay.js = FrozenAfterHanding(nc)  # the relay's publisher, for both passes
    await add_rows(db, "workspace:frozen", "a", "b", "c")
    try:
        with pytest.raises(LeadLost):
            await relay.flush()
        # The publisher's subscription to JetStream's answers, queued at its first
        # publish, was not taken back with the messages: the next pass is acknowledged.
        assert await relay.flush() is False
        await wait_for(lambda: len(seen) >= 3)
        assert seen == ["evt-a", "evt-b", "evt-c"]
        assert await notes(nc, settings, "workspace:frozen") == ["a", "b", "c"]
    finally:
        await relay.stop(1)
        await watcher.close()
