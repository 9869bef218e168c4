"""Reads outside SQLAlchemy: ``Query``, the worker's ``ReadPool`` and ``Context.read_one``
(handlers/db.py, handlers/context.py), on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.accounts.models import User
from handlers.accounts.users import PUBLIC_BY_ID, current_user_public, public_of
from handlers.context import Context
from handlers.db import PoolTimeout, Query, ReadPool, postgres_outage, transaction_conflict
from hubbub.config import Settings
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.errors import Unauthorized
from hubbub.contracts.subjects import Subjects
from hubbub.keys import RedisKeys
from tests.support.accounts import make_user
from tests.support.waiting import wait_for

EMAIL_OF = Query(select(User.email).where(User.id == bindparam("user_id")))
# Waits while another session holds advisory lock ``key``: a barrier, not a sleep.
WAIT_FOR_LOCK = Query(select(func.pg_advisory_xact_lock(bindparam("key"))))
BACKEND_PID = Query(select(func.pg_backend_pid().label("pid")))


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[ReadPool]:
    assert settings.database_url
    read_pool = ReadPool(settings.database_url, 2, acquire_timeout=10)
    yield read_pool
    await read_pool.close()


def context(settings: Settings, sessions: async_sessionmaker[AsyncSession], user_id: str,
            reads: ReadPool | None) -> Context:  # fmt: skip
    caller = Caller(kind=CallerKind.USER, user_id=user_id)
    return Context(
        caller=caller,
        request_id="rid",
        settings=settings,
        redis=None,  # type: ignore[arg-type]  # not used by these reads
        keys=RedisKeys(settings.namespace),
        subjects=Subjects(settings.namespace),
        sessions=sessions,
        reads=reads,
    )


def test_a_query_is_compiled_once_with_its_parameters_in_order() -> None:
    query = Query(select(User.id).where(User.email == bindparam("b"), User.role == bindparam("a")))
    assert "$1" in query.sql
    assert "$2" in query.sql
    assert query.names == ("b", "a")
    assert query.bind(("x", "y")) == {"b": "x", "a": "y"}
    with pytest.raises(TypeError):
        query.bind(("x",))


async def test_reads_a_row_and_rows(pool: ReadPool, db: async_sessionmaker[AsyncSession]) -> None:
    user_id = await make_user(db, "reader@example.com", display_name="Reader")
    row = await pool.fetchrow(PUBLIC_BY_ID, uuid.UUID(user_id))
    assert row is not None
    public = public_of(row)
    assert (str(public.id), public.email, public.display_name) == (
        user_id,
        "reader@example.com",
        "Reader",
    )
    assert await pool.fetchrow(PUBLIC_BY_ID, uuid.uuid4()) is None
    assert [r["email"] for r in await pool.fetch(EMAIL_OF, uuid.UUID(user_id))] == [
        "reader@example.com"
    ]


async def test_at_most_size_connections_and_a_waiter_gets_the_next_free_one(
    settings: Settings, db: async_sessionmaker[AsyncSession]
) -> None:
    assert settings.database_url
    pool = ReadPool(settings.database_url, 1, acquire_timeout=10)
    try:
        async with db() as holder:
            await holder.execute(text("SELECT pg_advisory_lock(42)"))
            blocked = asyncio.ensure_future(pool.fetchrow(WAIT_FOR_LOCK, 42))
            await wait_for(lambda: pool.opened == 1 and not pool._idle, what="the read blocked")
            waiting = asyncio.ensure_future(pool.fetchrow(BACKEND_PID))
            await wait_for(lambda: len(pool._waiters) == 1, what="the second read waiting")
            assert not waiting.done()
            await holder.execute(text("SELECT pg_advisory_unlock(42)"))
            await blocked
            row = await waiting
            assert row is not None
        assert pool.opened == 1  # the waiter was handed the same connection
    finally:
        await pool.close()


async def test_no_connection_free_in_time_is_a_saturated_database(
    settings: Settings, db: async_sessionmaker[AsyncSession]
) -> None:
    assert settings.database_url
    pool = ReadPool(settings.database_url, 1, acquire_timeout=0.2)
    try:
        async with db() as holder:
            await holder.execute(text("SELECT pg_advisory_lock(43)"))
            blocked = asyncio.ensure_future(pool.fetchrow(WAIT_FOR_LOCK, 43))
            await wait_for(lambda: pool.opened == 1 and not pool._idle, what="the read blocked")
            with pytest.raises(PoolTimeout) as raised:
                await pool.fetchrow(BACKEND_PID)
            outage = postgres_outage(raised.value)
            assert outage is not None
            assert not outage.down
            assert not pool._waiters
            await holder.execute(text("SELECT pg_advisory_unlock(43)"))
            await blocked
    finally:
        await pool.close()


async def test_a_read_after_the_pool_closed_is_a_saturated_database(pool: ReadPool) -> None:
    """A job still running when its worker's drain gave up reads on a closed pool: that
    is a 503 (unavailable), not a bug reported as a 500."""
    assert (await pool.fetchrow(BACKEND_PID)) is not None
    await pool.close()
    with pytest.raises(PoolTimeout) as raised:
        await pool.fetchrow(BACKEND_PID)
    outage = postgres_outage(raised.value)
    assert outage is not None
    assert not outage.down


async def test_a_connection_the_server_closed_is_replaced(
    pool: ReadPool, db: async_sessionmaker[AsyncSession]
) -> None:
    row = await pool.fetchrow(BACKEND_PID)
    assert row is not None
    first = row["pid"]
    async with db() as admin:
        await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    await wait_for(lambda: pool._idle[0].is_closed(), what="the client to see the close")
    row = await pool.fetchrow(BACKEND_PID)
    assert row is not None
    assert row["pid"] != first
    assert pool.opened == 1


async def test_a_connection_whose_read_was_cancelled_is_not_reused(
    pool: ReadPool, db: async_sessionmaker[AsyncSession]
) -> None:
    async with db() as holder:
        await holder.execute(text("SELECT pg_advisory_lock(44)"))
        blocked = asyncio.ensure_future(pool.fetchrow(WAIT_FOR_LOCK, 44))
        await wait_for(lambda: pool.opened == 1 and not pool._idle, what="the read blocked")
        blocked.cancel()
        with pytest.raises(asyncio.CancelledError):
            await blocked
        assert pool.opened == 0
        assert not pool._idle
        await holder.execute(text("SELECT pg_advisory_unlock(44)"))
    assert await pool.fetchrow(BACKEND_PID) is not None


async def test_a_query_error_keeps_the_connection(pool: ReadPool) -> None:
    bad = Query(select(func.pg_sleep(bindparam("s"))))
    with pytest.raises(asyncpg.PostgresError):
        await pool.fetchrow(bad, "not a number")
    assert pool.opened == 1
    assert len(pool._idle) == 1


async def test_a_read_only_context_reads_on_the_pool_without_a_session(
    settings: Settings, pool: ReadPool, db: async_sessionmaker[AsyncSession]
) -> None:
    user_id = await make_user(db, "pooled@example.com")
    ctx = context(settings, db, user_id, pool)
    public = await current_user_public(ctx)
    assert public.email == "pooled@example.com"
    assert not ctx.has_session
    assert pool.opened == 1


async def test_without_the_pool_the_read_is_in_the_transaction_and_sees_its_writes(
    settings: Settings, db: async_sessionmaker[AsyncSession]
) -> None:
    user_id = await make_user(db, "inside@example.com", display_name="Before")
    ctx = context(settings, db, user_id, None)
    user = await ctx.session.get(User, uuid.UUID(user_id))
    assert user is not None
    user.display_name = "After"  # not committed: only this transaction sees it
    public = await current_user_public(ctx)
    assert public.display_name == "After"
    assert ctx.has_session
    await ctx.session.rollback()
    await ctx.session.close()


async def test_a_deactivated_or_missing_user_is_unauthorized(
    settings: Settings, pool: ReadPool, db: async_sessionmaker[AsyncSession]
) -> None:
    user_id = await make_user(db, "gone@example.com")
    async with db() as session:
        user = await session.get(User, uuid.UUID(user_id))
        assert user is not None
        user.is_active = False
        await session.commit()
    with pytest.raises(Unauthorized, match="deactivated"):
        await current_user_public(context(settings, db, user_id, pool))
    with pytest.raises(Unauthorized, match="no longer exists"):
        await current_user_public(context(settings, db, str(uuid.uuid4()), pool))


async def test_a_deadlock_is_a_transaction_conflict_not_an_outage(
    db: async_sessionmaker[AsyncSession],
) -> None:
    """PostgreSQL ends one of two transactions that wait for each other: nothing of it is
    applied and the same request again will likely pass (the worker answers retry), and
    PostgreSQL is not away."""
    async with db() as first, db() as second:
        await first.execute(text("SELECT pg_advisory_xact_lock(51)"))
        await second.execute(text("SELECT pg_advisory_xact_lock(52)"))
        crossing = asyncio.ensure_future(first.execute(text("SELECT pg_advisory_xact_lock(52)")))
        raised: list[BaseException] = []
        try:
            await second.execute(text("SELECT pg_advisory_xact_lock(51)"))
        except Exception as exc:  # the one PostgreSQL chose to end
            raised.append(exc)
            await second.rollback()
        try:
            await crossing
        except Exception as exc:
            raised.append(exc)
            await first.rollback()
        (deadlocked,) = raised
    assert transaction_conflict(deadlocked)
    assert postgres_outage(deadlocked) is None
