"""The transactional outbox and idempotency, against real PostgreSQL and JetStream."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from nats.aio.client import Client as NATS
from nats.errors import ConnectionClosedError
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.db import create_engine, session_factory
from handlers.outbox import OutboxEvent
from hubbub.bus import Bus
from hubbub.config import Settings
from hubbub.contracts.channels import Channel, ChannelKind
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.errors import Conflict, Unprocessable
from hubbub.contracts.subjects import Subjects
from hubbub.natsconn import connect_nats
from tests.support import ops
from tests.support.waiting import wait_for
from workers.app import RunningWorker

if TYPE_CHECKING:
    from workers.relay import OutboxRelay


async def stream_events(nc: NATS, settings: Settings, channel: Channel) -> list[dict[str, object]]:
    subjects = Subjects(settings.namespace)
    js = nc.jetstream()
    info = await js.stream_info(subjects.stream(ChannelKind.WORKSPACE))
    events = []
    for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
        msg = await js.get_msg(subjects.stream(ChannelKind.WORKSPACE), seq)
        if msg.subject == subjects.event(channel):
            events.append(orjson.loads(msg.data or b"{}"))
    return events


class TestOutbox:
    async def test_a_committed_change_publishes_its_event(
        self, worker: RunningWorker, bus: Bus, nc: NATS, settings: Settings
    ) -> None:
        """The event lands in the channel's history, with the request's id."""
        reply = await bus.request(
            ops.emit, {"workspace": "w1", "note": "hello"}, caller=None, request_id="rid-emit"
        )

        async def published() -> bool:
            return len(await stream_events(nc, settings, Channel.workspace("w1"))) == 1

        await wait_for(published)
        [event] = await stream_events(nc, settings, Channel.workspace("w1"))
        assert (event["id"], event["type"], event["data"], event["request_id"]) == (
            reply.value.event_id,
            "note.added",
            {"note": "hello"},
            "rid-emit",
        )

    async def test_a_rolled_back_change_publishes_nothing(
        self, worker: RunningWorker, bus: Bus, nc: NATS, settings: Settings
    ) -> None:
        """The handler emitted, then failed: no outbox row, no event. The change after it
        is the barrier: the relay publishes rows in id order, so once the later event is
        in the stream, an earlier one would be there too."""
        with pytest.raises(Conflict):
            await bus.request(
                ops.emit, {"workspace": "w2", "note": "x", "fail_after_emit": True}, caller=None
            )
        await bus.request(ops.emit, {"workspace": "w2", "note": "after"}, caller=None)

        async def after_published() -> bool:
            events = await stream_events(nc, settings, Channel.workspace("w2"))
            return {"note": "after"} in [e["data"] for e in events]

        await wait_for(after_published, what="the change after it published")
        events = await stream_events(nc, settings, Channel.workspace("w2"))
        assert [e["data"] for e in events] == [{"note": "after"}]

    async def test_rows_left_by_a_dead_worker_are_published_once_by_the_next_relay(
        self, settings: Settings, nc: NATS, worker: RunningWorker
    ) -> None:
        """An unpublished row (its worker died after commit) is picked up by polling;
        re-sending an already-published row is de-duplicated by JetStream."""
        engine = create_engine(settings.database_url or "")
        try:
            async with session_factory(engine)() as session, session.begin():
                payload = {
                    "id": "evt-orphan-1",
                    "type": "note.added",
                    "channel": "workspace:w3",
                    "data": {},
                }
                session.add(
                    OutboxEvent(channel="workspace:w3", event_type="note.added", payload=payload)
                )

            async def published() -> bool:
                return len(await stream_events(nc, settings, Channel.workspace("w3"))) == 1

            await wait_for(published)
            # Pretend the relay died before marking it: it is sent again…
            async with session_factory(engine)() as session, session.begin():
                row = (await session.scalars(select(OutboxEvent))).one()
                row.published_at = None
            worker.relay.kick()

            async def marked() -> bool:
                async with session_factory(engine)() as session:
                    return bool(
                        await session.scalar(
                            select(func.count()).where(OutboxEvent.published_at.is_not(None))
                        )
                    )

            await wait_for(marked)
            # …and stored once.
            assert len(await stream_events(nc, settings, Channel.workspace("w3"))) == 1
        finally:
            await engine.dispose()

    async def test_a_row_that_can_never_be_published_is_set_aside_and_the_rest_go_out(
        self, settings: Settings, nc: NATS, worker: RunningWorker
    ) -> None:
        """A bad channel and a payload over max_payload between good rows: the good ones
        are published in order, the bad ones marked with why, and nothing blocks."""
        big = "x" * (nc.max_payload + 1)
        rows = [
            ("workspace:w6", {"note": "first"}),
            ("no channel at all", {"note": "bad channel"}),
            ("workspace:w6", {"note": big}),
            ("workspace:w6", {"note": "last"}),
        ]
        engine = create_engine(settings.database_url or "")
        try:
            async with session_factory(engine)() as session, session.begin():
                for i, (channel, data) in enumerate(rows):
                    payload = {"id": f"evt-aside-{i}", "type": "note.added", "data": data}
                    session.add(
                        OutboxEvent(channel=channel, event_type="note.added", payload=payload)
                    )
            worker.relay.kick()

            async def done() -> bool:
                async with session_factory(engine)() as session:
                    left = await session.scalar(
                        select(func.count()).where(
                            OutboxEvent.published_at.is_(None), OutboxEvent.failed_at.is_(None)
                        )
                    )
                return left == 0

            await wait_for(done)
            events = await stream_events(nc, settings, Channel.workspace("w6"))
            assert [e["data"] for e in events] == [{"note": "first"}, {"note": "last"}]
            async with session_factory(engine)() as session:
                aside = (
                    await session.execute(
                        select(OutboxEvent.channel, OutboxEvent.last_error)
                        .where(OutboxEvent.failed_at.is_not(None))
                        .order_by(OutboxEvent.id)
                    )
                ).all()
            assert [channel for channel, _ in aside] == ["no channel at all", "workspace:w6"]
            assert aside[0][1].startswith("not a channel: 'no channel at all'")
            assert f"over the NATS max_payload of {nc.max_payload}" in aside[1][1]
            assert worker.relay.set_aside == 2
        finally:
            await engine.dispose()

    async def test_a_row_that_fits_only_without_its_header_is_set_aside(
        self, settings: Settings, nc: NATS, worker: RunningWorker
    ) -> None:
        """NATS counts a message's headers against max_payload: a payload that fits alone
        but not with its Nats-Msg-Id would make the server close the worker's connection
        (for good). It is set aside, and the worker's connection stays up."""
        payload: dict[str, object] = {"id": "evt-edge", "type": "note.added", "data": {}}
        bare = len(orjson.dumps(payload | {"data": {"note": ""}}))
        payload["data"] = {"note": "x" * (nc.max_payload - bare - 8)}
        assert nc.max_payload - 16 < len(orjson.dumps(payload)) <= nc.max_payload
        engine = create_engine(settings.database_url or "")
        try:
            async with session_factory(engine)() as session, session.begin():
                for data in (payload, {"id": "evt-after", "type": "note.added", "data": {}}):
                    session.add(
                        OutboxEvent(channel="workspace:w8", event_type="note.added", payload=data)
                    )
            worker.relay.kick()
            await wait_for(lambda: worker.relay.set_aside == 1 and worker.relay.published >= 1)
            assert worker.service.nc.is_connected
            events = await stream_events(nc, settings, Channel.workspace("w8"))
            assert [e["id"] for e in events] == ["evt-after"]
        finally:
            await engine.dispose()

    async def test_a_failure_that_may_pass_sets_nothing_aside(
        self, settings: Settings, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """NATS gone: the batch fails as a whole and every row stays owed."""
        from workers.relay import OutboxRelay

        closed = await connect_nats(settings.nats_url or "", "closed")
        await closed.close()
        async with db() as session, session.begin():
            session.add(
                OutboxEvent(channel="workspace:w7", event_type="note.added", payload={"id": "e7"})
            )
        relay = OutboxRelay(db, closed.jetstream(), Subjects(settings.namespace), nats=closed)
        with pytest.raises(ConnectionClosedError):
            await relay.flush()
        async with db() as session:
            row = (await session.scalars(select(OutboxEvent))).one()
        assert (row.published_at, row.failed_at, row.last_error) == (None, None, None)

    async def test_a_row_over_the_limit_of_the_server_connected_now_is_set_aside(
        self, settings: Settings, nc: NATS, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """The relay was made with the max_payload of the server its client met first;
        the one it is connected to now (after a reconnect) allows less. A row between the
        two limits is measured against the current one and set aside: nats-py refused it
        before each pass, and every event behind it waited for good."""
        from workers.relay import OutboxRelay

        first_limit = nc.max_payload * 2
        async with db() as session, session.begin():
            for i, note in enumerate(["x" * (nc.max_payload + 1), "after"]):
                session.add(
                    OutboxEvent(
                        channel="workspace:w9",
                        event_type="note.added",
                        payload={"id": f"evt-limit-{i}", "type": "note.added", "data": {"n": note}},
                    )
                )
        relay = OutboxRelay(
            db, nc.jetstream(), Subjects(settings.namespace), max_payload=first_limit, nats=nc
        )
        await one_set_aside_one_published(relay)
        events = await stream_events(nc, settings, Channel.workspace("w9"))
        assert [e["id"] for e in events] == ["evt-limit-1"]
        error = await the_set_aside_rows_error(db)
        assert f"over the NATS max_payload of {nc.max_payload}" in error

    async def test_a_row_whose_payload_is_no_json_of_ours_is_set_aside(
        self, settings: Settings, nc: NATS, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """jsonb holds numbers no JSON reader here takes (1e400 is no float): a row written
        with one, by SQL of its own, is set aside and the row behind it goes out. It failed
        every pass before, and every event behind it waited for good."""
        from workers.relay import OutboxRelay

        async with db() as session, session.begin():
            for event_id, data in (("evt-huge", '{"n": 1e400}'), ("evt-fine", '{"n": 1}')):
                await session.execute(
                    text(
                        "INSERT INTO outbox (channel, event_type, payload, created_at)"
                        " VALUES ('workspace:w10', 'note.added', jsonb_build_object("
                        "'id', CAST(:id AS text), 'type', 'note.added', 'data',"
                        " CAST(:data AS jsonb)), now())"
                    ),
                    {"id": event_id, "data": data},
                )
        relay = OutboxRelay(db, nc.jetstream(), Subjects(settings.namespace), nats=nc)
        await one_set_aside_one_published(relay)
        events = await stream_events(nc, settings, Channel.workspace("w10"))
        assert [e["id"] for e in events] == ["evt-fine"]
        error = await the_set_aside_rows_error(db)
        assert error.startswith("payload not sendable as JSON:")


async def one_set_aside_one_published(relay: OutboxRelay) -> None:
    """One pass of ``relay`` over two rows: the first set aside, the one behind it sent."""
    try:
        assert await relay.flush() is False
    finally:
        await relay.stop(1)
    assert (relay.set_aside, relay.published) == (1, 1)


async def the_set_aside_rows_error(db: async_sessionmaker[AsyncSession]) -> str:
    """The ``last_error`` of the one outbox row set aside."""
    async with db() as session:
        [error] = (
            await session.scalars(
                select(OutboxEvent.last_error).where(OutboxEvent.failed_at.is_not(None))
            )
        ).all()
    assert error is not None
    return error


class TestIdempotency:
    async def test_a_retry_with_the_same_key_applies_once_and_gets_the_first_answer(
        self, worker: RunningWorker, bus: Bus
    ) -> None:
        params = {"workspace": "w4", "note": "once"}
        first = await bus.request(ops.emit, params, caller=None, idempotency_key="key-1")
        again = await bus.request(ops.emit, params, caller=None, idempotency_key="key-1")
        assert again.raw == first.raw
        assert ops.emit_calls == ["once"]

    async def test_concurrent_retries_with_one_key_apply_once(
        self,
        worker: RunningWorker,
        second_worker: RunningWorker,
        bus: Bus,
        db: async_sessionmaker[AsyncSession],
    ) -> None:
        """The first call is held in the middle (its key claimed, its transaction open)
        while retries with its key arrive, each at either worker: one worker queues
        them behind the first in the key's actor, the other has nothing to keep them
        apart but PostgreSQL, where its retry waits on the claim. Once the first call
        commits, every retry gets its answer; the handler ran once."""
        caller = Caller(kind=CallerKind.USER, user_id="u", role="member")
        params = {"workspace": "w5", "note": "burst"}
        workers = (worker, second_worker)

        def retry() -> asyncio.Future[Any]:
            return asyncio.ensure_future(
                bus.request(ops.held_emit, params, caller=caller, idempotency_key="key-2")
            )

        def taken() -> int:
            return sum(w.service.actors.in_flight for w in workers)

        calls = [retry()]
        await wait_for(lambda: ops.hold.arrived == ["burst"], what="the first call held")
        while not all(w.service.actors.in_flight for w in workers):
            assert len(calls) < 30, "no retry reached the other worker"
            calls.append(retry())
            await wait_for(lambda: taken() == len(calls), what="the retry taken")
        await wait_for(lambda: _waiting_on_a_lock(db), what="a retry waiting on the claim")
        ops.hold.open()
        replies = await asyncio.gather(*calls)
        assert len({r.raw for r in replies}) == 1
        assert ops.emit_calls == ["burst"]
        assert ops.hold.arrived == ["burst"]

    async def test_the_same_key_with_another_request_is_unprocessable(
        self, worker: RunningWorker, bus: Bus
    ) -> None:
        await bus.request(
            ops.emit, {"workspace": "w6", "note": "a"}, caller=None, idempotency_key="key-3"
        )
        with pytest.raises(Unprocessable) as caught:
            await bus.request(
                ops.emit, {"workspace": "w6", "note": "b"}, caller=None, idempotency_key="key-3"
            )
        assert caught.value.status == 422


async def _waiting_on_a_lock(db: async_sessionmaker[AsyncSession]) -> bool:
    """Is a session of this test's database waiting for a lock (a row another
    transaction inserted and has not committed yet)?"""
    async with db() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


class TestRelayStop:
    async def test_stop_returns_even_if_the_loop_lost_its_cancellation(
        self, settings: Settings, nc: NATS
    ) -> None:
        """Python 3.11's wait_for may swallow a cancel that races a result: stop must
        not then wait forever."""
        from handlers.db import create_engine, session_factory
        from workers.relay import OutboxRelay

        in_flush = asyncio.Event()

        class SwallowingRelay(OutboxRelay):
            swallowed = 0

            async def flush(self) -> bool:
                if self.swallowed:
                    return False
                in_flush.set()
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    self.swallowed += 1  # as a lost cancellation looks from here
                return False

        engine = create_engine(settings.database_url or "", pool_size=1, max_overflow=0)
        relay = SwallowingRelay(
            session_factory(engine), nc.jetstream(), Subjects(settings.namespace)
        )
        try:
            relay.start()
            relay.kick()
            async with asyncio.timeout(5):
                await in_flush.wait()  # the loop is inside flush now
            async with asyncio.timeout(5):
                await relay.stop()
            assert relay.swallowed == 1
        finally:
            await engine.dispose()
