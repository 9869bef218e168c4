"""Pruning on real PostgreSQL: rows past their use go, everything else stays."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers import idempotency
from handlers.accounts.models import (
    AuthSession,
    EmailVerificationToken,
    PasswordResetToken,
    RefreshToken,
    User,
)
from handlers.db import create_engine, session_factory
from handlers.idempotency import IdempotencyRecord
from handlers.mail import DevMail, QueuedMail
from handlers.outbox import OutboxEvent
from handlers.retention import BATCH, prune, rules
from hubbub.config import Settings
from tests.support.waiting import wait_for
from workers.janitor import Janitor

DAY = timedelta(days=1)


async def ago(session: AsyncSession, delta: timedelta) -> object:
    """The database's now() minus ``delta`` (the rules compare with the database clock)."""
    return await session.scalar(select(func.now() - delta))


async def arrange(db: async_sessionmaker[AsyncSession], settings: Settings) -> dict[str, object]:
    """One row that must go and one that must stay, for each rule."""
    keep = timedelta(seconds=settings.retention_s)
    lifetime = timedelta(seconds=settings.refresh_token_ttl_s)
    ids: dict[str, object] = {}
    async with db() as session, session.begin():
        user = User(email="u@example.com", display_name="U", password_hash="x")
        session.add(user)
        await session.flush()
        old, recent = await ago(session, keep + DAY), await ago(session, keep - DAY)

        forgotten = await ago(session, timedelta(seconds=settings.idempotency_ttl_s) + DAY)
        for key, created_at in (("old", forgotten), ("new", None)):
            session.add(
                IdempotencyRecord(
                    caller="user:1",
                    key=key,
                    operation="op",
                    request_hash="h",
                    **({"created_at": created_at} if created_at else {}),
                )
            )
        revoked_long_ago = AuthSession(user_id=user.id, revoked_at=old)
        revoked_lately = AuthSession(user_id=user.id, revoked_at=recent)
        dead = AuthSession(user_id=user.id, created_at=await ago(session, lifetime + keep + DAY))
        live = AuthSession(user_id=user.id, last_refreshed_at=await ago(session, DAY))
        session.add_all([revoked_long_ago, revoked_lately, dead, live])
        await session.flush()
        ids.update(
            revoked_long_ago=revoked_long_ago.id,
            revoked_lately=revoked_lately.id,
            dead=dead.id,
            live=live.id,
        )
        session.add_all(
            [
                RefreshToken(token_hash=b"o" * 32, session_id=live.id, expires_at=old),
                RefreshToken(token_hash=b"r" * 32, session_id=live.id, expires_at=recent),
                RefreshToken(token_hash=b"d" * 32, session_id=dead.id, expires_at=recent),
                PasswordResetToken(token_hash=b"o" * 32, user_id=user.id, expires_at=old),
                PasswordResetToken(token_hash=b"r" * 32, user_id=user.id, expires_at=recent),
                EmailVerificationToken(token_hash=b"o" * 32, user_id=user.id, expires_at=old),
                EmailVerificationToken(token_hash=b"r" * 32, user_id=user.id, expires_at=recent),
                OutboxEvent(channel="c", event_type="old", payload={}, published_at=old),
                OutboxEvent(channel="c", event_type="recent", payload={}, published_at=recent),
                OutboxEvent(channel="c", event_type="unpublished", payload={}, created_at=old),
                OutboxEvent(channel="c", event_type="set aside", payload={}, failed_at=old),
                OutboxEvent(
                    channel="c", event_type="set aside lately", payload={}, failed_at=recent
                ),
                DevMail(to_addr="a@b.c", subject="old", body="", created_at=old),
                DevMail(to_addr="a@b.c", subject="recent", body=""),
                QueuedMail(to_addr="a@b.c", subject="failed long ago", body="", failed_at=old),
                QueuedMail(to_addr="a@b.c", subject="failed lately", body="", failed_at=recent),
                QueuedMail(to_addr="a@b.c", subject="waiting", body="", created_at=old),
            ]
        )
    return ids


async def test_prune_deletes_what_outlived_its_use_and_nothing_else(
    db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    ids = await arrange(db, settings)

    deleted = await prune(db, settings, batch=2)  # small batches: the loop goes round

    assert deleted == {
        "idempotency_keys": 1,
        "refresh_tokens": 1,
        "password_reset_tokens": 1,
        "email_verification_tokens": 1,
        "auth_sessions": 2,
        "outbox": 2,
        "dev_mail": 1,
        "mail_queue": 1,
    }
    async with db() as session:
        assert (await session.scalars(select(IdempotencyRecord.key))).all() == ["new"]
        sessions = set(await session.scalars(select(AuthSession.id)))
        assert sessions == {ids["revoked_lately"], ids["live"]}
        # The dead session's token went with it (cascade); the live one's expired one too.
        assert (await session.scalars(select(RefreshToken.token_hash))).all() == [b"r" * 32]
        assert (await session.scalars(select(PasswordResetToken.token_hash))).all() == [b"r" * 32]
        verification = select(EmailVerificationToken.token_hash)
        assert (await session.scalars(verification)).all() == [b"r" * 32]
        assert set(await session.scalars(select(OutboxEvent.event_type))) == {
            "recent",
            "unpublished",  # never published: the relay still owes it, however old
            "set aside lately",
        }
        assert (await session.scalars(select(DevMail.subject))).all() == ["recent"]
        assert set(await session.scalars(select(QueuedMail.subject))) == {
            "failed lately",
            "waiting",  # still to be sent (or tried again), however old
        }
        assert await session.scalar(select(func.count()).select_from(User)) == 1

    assert set((await prune(db, settings)).values()) == {0}  # nothing left to do


async def test_a_table_that_cannot_be_pruned_now_leaves_the_others_pruned(
    db: async_sessionmaker[AsyncSession],
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A table whose batch PostgreSQL cancels (here a lock waited for past lock_timeout;
    at scale, a statement_timeout) is left for the next pass with one error line; the
    tables after it are pruned all the same."""
    await arrange(db, settings)
    async with db() as session, session.begin():
        await session.execute(
            text(
                "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET lock_timeout = %L',"
                " current_database(), '200ms'); END $$"
            )
        )
    engine = create_engine(settings.database_url or "", pool_size=1, max_overflow=0)
    try:
        async with db() as holder, holder.begin():
            await holder.execute(text("LOCK TABLE idempotency_keys IN ACCESS EXCLUSIVE MODE"))
            deleted = await prune(session_factory(engine), settings)
    finally:
        await engine.dispose()

    assert deleted == {
        "idempotency_keys": 0,
        "refresh_tokens": 1,
        "password_reset_tokens": 1,
        "email_verification_tokens": 1,
        "auth_sessions": 2,
        "outbox": 2,
        "dev_mail": 1,
        "mail_queue": 1,
    }
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage().split(" (")[0] for r in errors] == [
        "pruning idempotency_keys failed after 0 rows"
    ]
    assert "LockNotAvailableError" in errors[0].getMessage()
    assert errors[0].exc_info is None  # a timeout, not a bug: no traceback
    assert (await prune(db, settings))["idempotency_keys"] == 1  # the next pass does it


async def test_every_rule_finds_its_rows_by_an_index(
    db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """A batch that reads the whole table each time is what times out once a table is
    large: with sequential scans priced out, no rule's batch plans one."""
    async with db() as session, session.begin():
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        for name, model, condition in rules(settings):
            keys = list(model.__table__.primary_key.columns)
            batch = select(*keys).where(condition()).limit(BATCH)
            sql = batch.compile(
                dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
            )
            plan = "\n".join((await session.execute(text(f"EXPLAIN {sql}"))).scalars())
            assert "Seq Scan" not in plan, f"{name}:\n{plan}"


async def test_many_rows_are_pruned_in_batches(
    db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with db() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO idempotency_keys (caller, key, operation, request_hash, created_at)"
                " SELECT 'user:1', 'k' || n, 'op', 'h', now() - interval '3 days'"
                " FROM generate_series(1, 2500) AS n"
            )
        )
    deleted = await prune(db, settings, batch=1000)
    assert deleted["idempotency_keys"] == 2500
    async with db() as session:
        assert await session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0


async def test_a_worker_s_janitor_prunes_on_its_own(
    db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with db() as session, session.begin():
        session.add(
            IdempotencyRecord(
                caller="user:1",
                key="old",
                operation="op",
                request_hash="h",
                created_at=await ago(session, timedelta(days=3)),
            )
        )
    janitor = Janitor(db, settings.model_copy(update={"janitor_interval_s": 0.05}))
    janitor.start()
    try:
        async with asyncio.timeout(5):
            while True:
                async with db() as session:
                    if not await session.scalar(
                        select(func.count()).select_from(IdempotencyRecord)
                    ):
                        break
                await asyncio.sleep(0.05)
    finally:
        await janitor.stop()


async def test_a_key_taken_over_while_its_batch_is_deleted_is_kept(
    db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """The batch picks an expired record that a retry is taking over; its DELETE waits
    for the takeover's row lock, and once the takeover commits it must find the record
    no longer expired and leave it: deleting it would let the next retry apply again."""
    ttl = timedelta(seconds=settings.idempotency_ttl_s)
    async with db() as session, session.begin():
        session.add(
            IdempotencyRecord(
                caller="user:1",
                key="k",
                operation="op",
                request_hash="h",
                response=b"first",
                created_at=await ago(session, ttl + DAY),
            )
        )

    async def janitor_waits() -> bool:
        async with db() as session:
            waiting = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND query LIKE 'DELETE FROM idempotency_keys%'"
                )
            )
        return bool(waiting)

    engine = create_engine(settings.database_url or "", pool_size=1, max_overflow=0)
    try:
        async with db() as retry, retry.begin():
            taken = await idempotency.claim(
                retry,
                caller="user:1",
                key="k",
                operation="op",
                fingerprint="h",
                ttl_s=settings.idempotency_ttl_s,
            )
            assert taken is None  # expired: the retry takes it over (and applies)
            pruning = asyncio.ensure_future(prune(session_factory(engine), settings))
            await wait_for(janitor_waits, what="the janitor's DELETE waiting on the takeover")
            await idempotency.complete(retry, caller="user:1", key="k", response=b"second")
        deleted = await pruning
    finally:
        await engine.dispose()

    assert deleted["idempotency_keys"] == 0
    async with db() as session:
        assert (await session.scalars(select(IdempotencyRecord.response))).all() == [b"second"]
