"""An overloaded worker answers at once: a writing request runs only with a connection
for it (a transaction slot), waits for one a bounded time, and is never run late. A
handler outside its transaction (``Context.outside_transaction``) holds no slot, and
takes one again as a new request does."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from redis.asyncio import Redis
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.context import Context
from handlers.worker_resources import Resources
from hubbub.config import Settings
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.errors import Conflict, Timeout, Unavailable
from hubbub.contracts.operations import Access, Empty, NoParams, Operation
from hubbub.contracts.subjects import Subjects
from hubbub.keys import RedisKeys
from tests.support.waiting import wait_for
from workers.execution import TRANSACTION_SLOTS, WAITING_PER_SLOT, Slots, run_handler

OP = Operation("test.write", NoParams, Empty, Access.PUBLIC, mutating=True)
# May write, takes no idempotency key: its session opens only when its handler uses it.
PLAIN = Operation("test.write_plain", NoParams, Empty, Access.PUBLIC)


class Worker:
    """Contexts as one worker process makes them: one set of resources, so one set of
    slots; ``db_pool_size`` 3 leaves one slot for requests."""

    def __init__(
        self, settings: Settings, redis: Redis, db: async_sessionmaker[AsyncSession], wait: float
    ) -> None:
        self.settings = settings.model_copy(update={"db_pool_size": 3, "db_wait_s": wait})
        self.redis = redis
        self.db = db
        self.resources = Resources()
        self.caller = Caller(kind=CallerKind.USER, user_id=str(uuid.uuid4()))

    def ctx(self, key: str, deadline: float | None = None) -> Context:
        return Context(
            caller=self.caller,
            request_id=key,
            settings=self.settings,
            redis=self.redis,
            keys=RedisKeys(self.settings.namespace),
            subjects=Subjects(self.settings.namespace),
            sessions=self.db,
            idempotency_key=key,
            deadline=deadline,
            resources=self.resources,
        )

    @property
    def slots(self) -> Slots:
        return self.resources.get(TRANSACTION_SLOTS, self.settings)

    def waiting(self) -> int:
        return self.slots.waiting


async def claimed(db: async_sessionmaker[AsyncSession], key: str) -> bool:
    async with db() as session:
        found = await session.scalar(
            text("SELECT count(*) FROM idempotency_keys WHERE key = :k"), {"k": key}
        )
    return bool(found)


@pytest.fixture
def ran() -> list[str]:
    return []


def holding(ran: list[str], release: asyncio.Event | None = None):  # type: ignore[no-untyped-def]
    """A handler that writes (it claims its key) and, given ``release``, keeps its
    transaction open until it is set."""

    async def handler(ctx: Context, params: NoParams) -> Empty:
        ran.append(ctx.request_id)
        if release is not None:
            await release.wait()
        return Empty()

    return handler


class TestTransactionSlots:
    async def test_a_request_with_no_connection_in_time_is_refused_busy_and_never_started(
        self,
        settings: Settings,
        redis: Redis,
        db: async_sessionmaker[AsyncSession],
        ran: list[str],
    ) -> None:
        worker = Worker(settings, redis, db, wait=0.05)
        release = asyncio.Event()
        first = asyncio.create_task(
            run_handler(OP, holding(ran, release), worker.ctx("first"), NoParams())
        )
        await wait_for(lambda: ran == ["first"], what="the first request running")

        with pytest.raises(Unavailable) as refused:
            await run_handler(OP, holding(ran), worker.ctx("second"), NoParams())
        assert refused.value.details["reason"] == "busy"  # the hub sends it elsewhere
        assert ran == ["first"]
        assert not await claimed(db, "second")  # nothing of it was applied

        release.set()
        await first
        # The slot is free again: the same request, retried, runs.
        await run_handler(OP, holding(ran), worker.ctx("second"), NoParams())
        assert ran == ["first", "second"]
        assert await claimed(db, "second")

    async def test_a_waiting_request_runs_once_a_connection_comes_free(
        self,
        settings: Settings,
        redis: Redis,
        db: async_sessionmaker[AsyncSession],
        ran: list[str],
    ) -> None:
        worker = Worker(settings, redis, db, wait=30.0)
        release = asyncio.Event()
        first = asyncio.create_task(
            run_handler(OP, holding(ran, release), worker.ctx("first"), NoParams())
        )
        await wait_for(lambda: ran == ["first"], what="the first request running")
        second = asyncio.create_task(
            run_handler(OP, holding(ran), worker.ctx("second"), NoParams())
        )
        await wait_for(lambda: worker.waiting() == 1, what="the second request waiting")
        assert ran == ["first"]

        release.set()
        assert await second == b"{}"
        await first
        assert ran == ["first", "second"]

    async def test_a_request_whose_caller_gave_up_waiting_is_not_run(
        self,
        settings: Settings,
        redis: Redis,
        db: async_sessionmaker[AsyncSession],
        ran: list[str],
    ) -> None:
        worker = Worker(settings, redis, db, wait=30.0)
        release = asyncio.Event()
        first = asyncio.create_task(
            run_handler(OP, holding(ran, release), worker.ctx("first"), NoParams())
        )
        await wait_for(lambda: ran == ["first"], what="the first request running")

        # Its deadline comes long before the wait for a connection would end.
        late = worker.ctx("late", deadline=time.time() + 0.1)
        with pytest.raises(Timeout):
            await run_handler(OP, holding(ran), late, NoParams())
        expired = worker.ctx("expired", deadline=time.time() - 1)
        with pytest.raises(Timeout):
            await run_handler(OP, holding(ran), expired, NoParams())

        release.set()
        await first
        assert ran == ["first"]
        assert not await claimed(db, "late")
        assert not await claimed(db, "expired")
        assert worker.waiting() == 0

    async def test_a_request_finding_too_many_waiting_is_refused_busy_at_once(
        self,
        settings: Settings,
        redis: Redis,
        db: async_sessionmaker[AsyncSession],
        ran: list[str],
    ) -> None:
        worker = Worker(settings, redis, db, wait=30.0)
        release = asyncio.Event()
        first = asyncio.create_task(
            run_handler(OP, holding(ran, release), worker.ctx("first"), NoParams())
        )
        await wait_for(lambda: ran == ["first"], what="the first request running")
        queued = [
            asyncio.create_task(run_handler(OP, holding(ran), worker.ctx(f"q{n}"), NoParams()))
            for n in range(WAITING_PER_SLOT)
        ]
        await wait_for(lambda: worker.waiting() == WAITING_PER_SLOT, what="the queue full")

        with pytest.raises(Unavailable) as refused:  # not after 30 s: now
            await run_handler(OP, holding(ran), worker.ctx("one too many"), NoParams())
        assert refused.value.details["reason"] == "busy"

        release.set()
        await asyncio.gather(first, *queued)
        assert sorted(ran) == sorted(["first", *(f"q{n}" for n in range(WAITING_PER_SLOT))])
        assert not await claimed(db, "one too many")


def outside(ran: list[str], release: asyncio.Event, *, fail: bool = False):  # type: ignore[no-untyped-def]
    """A handler that waits for ``release`` outside its transaction (failing there, given
    ``fail``), then reads in its transaction."""

    async def handler(ctx: Context, params: NoParams) -> Empty:
        async with ctx.outside_transaction():
            ran.append(f"{ctx.request_id} outside")
            await release.wait()
            if fail:
                raise Conflict("failed outside the transaction")
        await ctx.session.execute(text("SELECT 1"))
        ran.append(f"{ctx.request_id} inside")
        return Empty()

    return handler


async def outside_then_held(
    worker: Worker, ran: list[str]
) -> tuple[asyncio.Task[bytes], asyncio.Task[bytes], asyncio.Event, asyncio.Event]:
    """ "first" outside its transaction, and "second" holding the slot it gave back: the
    two requests, and the events that let each go on."""
    release_first, release_second = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(
        run_handler(PLAIN, outside(ran, release_first), worker.ctx("first"), NoParams())
    )
    await wait_for(lambda: ran == ["first outside"], what="the first outside")
    second = asyncio.create_task(
        run_handler(OP, holding(ran, release_second), worker.ctx("second"), NoParams())
    )
    await wait_for(lambda: "second" in ran, what="the second holding the slot")
    return first, second, release_first, release_second


class TestOutsideTheTransaction:
    async def test_another_write_takes_the_slot_while_a_handler_is_outside_its_transaction(
        self,
        settings: Settings,
        redis: Redis,
        db: async_sessionmaker[AsyncSession],
        ran: list[str],
    ) -> None:
        worker = Worker(settings, redis, db, wait=30.0)
        release = asyncio.Event()
        first = asyncio.create_task(
            run_handler(PLAIN, outside(ran, release), worker.ctx("first"), NoParams())
        )
        await wait_for(lambda: ran == ["first outside"], what="the first outside")

        assert await run_handler(OP, holding(ran), worker.ctx("second"), NoParams()) == b"{}"
        assert await claimed(db, "second")

        release.set()
        assert await first == b"{}"
        assert ran == ["first outside", "second", "first inside"]
        assert (worker.slots.free, worker.waiting()) == (1, 0)

    async def test_coming_back_it_waits_for_a_slot_like_a_new_request(
        self,
        settings: Settings,
        redis: Redis,
        db: async_sessionmaker[AsyncSession],
        ran: list[str],
    ) -> None:
        worker = Worker(settings, redis, db, wait=30.0)
        first, second, release_first, release_second = await outside_then_held(worker, ran)

        release_first.set()
        await wait_for(lambda: worker.waiting() == 1, what="the first waiting for the slot")
        assert ran == ["first outside", "second"]

        release_second.set()
        assert await asyncio.gather(first, second) == [b"{}", b"{}"]
        assert ran == ["first outside", "second", "first inside"]
        assert (worker.slots.free, worker.waiting()) == (1, 0)

    async def test_coming_back_it_waits_past_db_wait_s_until_its_deadline(
        self,
        settings: Settings,
        redis: Redis,
        db: async_sessionmaker[AsyncSession],
        ran: list[str],
    ) -> None:
        """It was admitted already and only lent its slot: not refused "busy" after
        ``db_wait_s`` (the hub would send it again, its work outside done twice), it waits
        as long as its caller does, and past that answers ``timeout``."""
        worker = Worker(settings, redis, db, wait=0.05)
        release_first, release_second = asyncio.Event(), asyncio.Event()
        # Its deadline comes long after db_wait_s.
        late = worker.ctx("first", deadline=time.time() + 0.5)
        first = asyncio.create_task(
            run_handler(PLAIN, outside(ran, release_first), late, NoParams())
        )
        await wait_for(lambda: ran == ["first outside"], what="the first outside")
        second = asyncio.create_task(
            run_handler(OP, holding(ran, release_second), worker.ctx("second"), NoParams())
        )
        await wait_for(lambda: "second" in ran, what="the second holding the slot")

        release_first.set()
        with pytest.raises(Timeout, match="waiting for a database connection after"):
            await first

        release_second.set()
        await second
        assert ran == ["first outside", "second"]
        assert (worker.slots.free, worker.waiting()) == (1, 0)

    async def test_its_deadline_passing_outside_answers_timeout_though_a_slot_is_free(
        self,
        settings: Settings,
        redis: Redis,
        db: async_sessionmaker[AsyncSession],
        ran: list[str],
    ) -> None:
        """Its caller has been told ``timeout`` already: what it would write now would
        surprise it."""
        worker = Worker(settings, redis, db, wait=30.0)
        release = asyncio.Event()
        ctx = worker.ctx("first", deadline=time.time() + 30)
        first = asyncio.create_task(run_handler(PLAIN, outside(ran, release), ctx, NoParams()))
        await wait_for(lambda: ran == ["first outside"], what="the first outside")
        ctx.deadline = time.time() - 1  # it passes while the handler works outside

        release.set()
        with pytest.raises(Timeout, match="passed while it worked outside"):
            await first
        assert ran == ["first outside"]  # nothing of it ran in a transaction
        assert (worker.slots.free, worker.waiting()) == (1, 0)

    async def test_coming_back_into_a_full_queue_it_waits_and_goes_first(
        self,
        settings: Settings,
        redis: Redis,
        db: async_sessionmaker[AsyncSession],
        ran: list[str],
    ) -> None:
        """The cap on waiters is for requests not yet admitted; one coming back had its
        slot and takes the next that comes free, before the requests queued meanwhile."""
        worker = Worker(settings, redis, db, wait=30.0)
        release_first, release_holder = asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(
            run_handler(PLAIN, outside(ran, release_first), worker.ctx("first"), NoParams())
        )
        await wait_for(lambda: ran == ["first outside"], what="the first outside")
        holder = asyncio.create_task(
            run_handler(OP, holding(ran, release_holder), worker.ctx("holder"), NoParams())
        )
        await wait_for(lambda: "holder" in ran, what="another write holding the slot")
        queued = [
            asyncio.create_task(run_handler(OP, holding(ran), worker.ctx(f"q{n}"), NoParams()))
            for n in range(WAITING_PER_SLOT)
        ]
        await wait_for(lambda: worker.waiting() == WAITING_PER_SLOT, what="the queue full")

        release_first.set()
        await wait_for(
            lambda: worker.waiting() == WAITING_PER_SLOT + 1 or first.done(),
            what="the first waiting to take its slot again",
        )
        assert not first.done()

        release_holder.set()
        assert await first == b"{}"
        await asyncio.gather(holder, *queued)
        assert ran[:3] == ["first outside", "holder", "first inside"]
        assert sorted(ran[3:]) == sorted(f"q{n}" for n in range(WAITING_PER_SLOT))
        assert (worker.slots.free, worker.waiting()) == (1, 0)

    async def test_a_handler_failing_outside_its_transaction_ends_holding_no_slot(
        self,
        settings: Settings,
        redis: Redis,
        db: async_sessionmaker[AsyncSession],
        ran: list[str],
    ) -> None:
        """Its slot went back once, on the way out: not again when the request ends."""
        worker = Worker(settings, redis, db, wait=30.0)
        release = asyncio.Event()
        release.set()
        with pytest.raises(Conflict):
            await run_handler(PLAIN, outside(ran, release, fail=True), worker.ctx("a"), NoParams())
        assert ran == ["a outside"]
        assert (worker.slots.free, worker.waiting()) == (1, 0)

    async def test_a_handler_cancelled_while_coming_back_leaves_the_slots_whole(
        self,
        settings: Settings,
        redis: Redis,
        db: async_sessionmaker[AsyncSession],
        ran: list[str],
    ) -> None:
        worker = Worker(settings, redis, db, wait=30.0)
        first, second, release_first, release_second = await outside_then_held(worker, ran)
        release_first.set()
        await wait_for(lambda: worker.waiting() == 1, what="the first waiting for the slot")

        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        release_second.set()
        await second
        assert (worker.slots.free, worker.waiting()) == (1, 0)
        # The slot is whole: the next write takes it at once.
        await run_handler(OP, holding(ran), worker.ctx("third"), NoParams())
        assert ran == ["first outside", "second", "third"]

    async def test_it_refuses_once_the_session_is_open_and_the_session_inside_it(
        self,
        settings: Settings,
        redis: Redis,
        db: async_sessionmaker[AsyncSession],
    ) -> None:
        """A connection or transaction must not be held through the work outside, nor
        one opened during it (it would hold no slot)."""
        worker = Worker(settings, redis, db, wait=30.0)

        async def after_a_read(ctx: Context, params: NoParams) -> Empty:
            await ctx.session.execute(text("SELECT 1"))
            async with ctx.outside_transaction():
                pass
            return Empty()

        async def reading_inside(ctx: Context, params: NoParams) -> Empty:
            async with ctx.outside_transaction():
                await ctx.session.execute(text("SELECT 1"))
            return Empty()

        for handler in (after_a_read, reading_inside):
            with pytest.raises(RuntimeError, match="outside_transaction"):
                await run_handler(PLAIN, handler, worker.ctx(handler.__name__), NoParams())
        assert (worker.slots.free, worker.waiting()) == (1, 0)


async def test_no_checkout_of_the_workers_pool_waits_past_db_wait_s(settings: Settings) -> None:
    """Reads and background jobs share the pool with the slots: when it is exhausted, a
    checkout fails within HUBBUB_DB_WAIT_S with an error that answers 503 (saturated),
    instead of SQLAlchemy's 30 s wait."""
    from handlers.db import postgres_outage
    from workers.app import worker_engine

    engine = worker_engine(
        settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0, "db_wait_s": 0.2})
    )
    try:
        async with engine.connect() as held:
            await held.execute(text("SELECT 1"))
            start = time.monotonic()
            with pytest.raises(sa_exc.TimeoutError) as raised:
                async with engine.connect():
                    pass
            assert time.monotonic() - start < 10  # the pool's wait is db_wait_s, not 30 s
        outage = postgres_outage(raised.value)
        assert outage is not None
        assert not outage.down  # saturated: a 503, and no outage logged
    finally:
        await engine.dispose()
