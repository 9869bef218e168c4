"""Idempotency records on real PostgreSQL: a key replays within ``idempotency_ttl_s`` and
applies again after it, whether or not the janitor has pruned its record yet."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers import idempotency
from handlers.db import autocommit_connection
from handlers.idempotency import IdempotencyRecord
from hubbub.bus import Bus
from hubbub.config import Settings
from hubbub.contracts.errors import Unavailable, Unprocessable
from tests.support import ops
from workers.app import RunningWorker

CALLER = "user:1"


async def stored_at(db: async_sessionmaker[AsyncSession], age: timedelta) -> None:
    """A completed record written ``age`` ago by the database's clock."""
    async with db() as session, session.begin():
        session.add(
            IdempotencyRecord(
                caller=CALLER,
                key="k",
                operation="op",
                request_hash="first",
                response=b'{"first": true}',
                completed_at=func.now() - age,
                created_at=func.now() - age,
            )
        )


async def claim(
    session: AsyncSession, settings: Settings, fingerprint: str = "first"
) -> bytes | None:
    return await idempotency.claim(
        session,
        caller=CALLER,
        key="k",
        operation="op",
        fingerprint=fingerprint,
        ttl_s=settings.idempotency_ttl_s,
    )


class TestClaim:
    async def test_a_key_within_its_time_replays_the_first_answer(
        self, db: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        ttl = timedelta(seconds=settings.idempotency_ttl_s)
        await stored_at(db, ttl - timedelta(minutes=1))
        async with db() as session, session.begin():
            assert await claim(session, settings) == b'{"first": true}'
            with pytest.raises(Unprocessable):
                await claim(session, settings, fingerprint="another")

    @pytest.mark.parametrize("fingerprint", ["first", "another"])
    async def test_a_key_past_its_time_applies_again_before_the_janitor_prunes_it(
        self, db: async_sessionmaker[AsyncSession], settings: Settings, fingerprint: str
    ) -> None:
        """The same request or another one: the key is free again (docs/architecture.md,
        "Retention"), and the claim makes it this request's record."""
        await stored_at(db, timedelta(seconds=settings.idempotency_ttl_s + 60))
        async with db() as session, session.begin():
            assert await claim(session, settings, fingerprint) is None
            await idempotency.complete(session, caller=CALLER, key="k", response=b"again")
        async with db() as session:
            record = (await session.scalars(select(IdempotencyRecord))).one()
            age = await session.scalar(select(func.now() - IdempotencyRecord.created_at))
        assert (record.request_hash, record.response) == (fingerprint, b"again")
        assert age is not None
        assert age < timedelta(minutes=1)  # the claim's own time

    async def test_the_record_a_claim_found_is_held_until_its_transaction_ends(
        self, db: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        """So the janitor cannot delete it between the claim's two statements (the
        claim's INSERT met it, its SELECT reads it)."""
        await stored_at(db, timedelta(minutes=1))
        async with db() as session, session.begin():
            assert await claim(session, settings) == b'{"first": true}'
            async with db() as janitor:
                conn = await autocommit_connection(janitor)
                with pytest.raises(asyncpg.LockNotAvailableError):
                    await conn.execute("SELECT FROM idempotency_keys FOR UPDATE NOWAIT")


class TestReplay:
    async def test_a_record_pruned_since_the_claim_met_it_answers_retry(
        self, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """A handler that claims its key itself (``claims_itself``) runs autocommit
        statements: the janitor may delete the record between the one that met it and
        ``replay``. Nothing was applied: the caller is told to retry, which claims it."""
        claim = idempotency.Claim(CALLER, "k", "op", "first", lambda _: b"", ttl_s=60.0)
        async with db() as session:
            conn = await autocommit_connection(session)
            with pytest.raises(Unavailable) as caught:
                await idempotency.replay(conn, claim)
        assert caught.value.details["retry_after"] >= 1


class TestStored:
    """``stored``: what a ``claims_itself`` handler that writes nothing (the caller may
    not) replays, as a claim would."""

    @staticmethod
    def claim(settings: Settings) -> idempotency.Claim:
        return idempotency.Claim(
            CALLER, "k", "op", "first", lambda _: b"", ttl_s=settings.idempotency_ttl_s
        )

    async def test_a_record_within_its_time_is_replayed(
        self, db: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        await stored_at(db, timedelta(seconds=settings.idempotency_ttl_s - 60))
        async with db() as session:
            conn = await autocommit_connection(session)
            with pytest.raises(idempotency.Replay) as caught:
                await idempotency.stored(conn, self.claim(settings))
        assert caught.value.response == b'{"first": true}'

    async def test_a_record_past_its_time_not_yet_pruned_is_not(
        self, db: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        await stored_at(db, timedelta(seconds=settings.idempotency_ttl_s + 60))
        async with db() as session:
            conn = await autocommit_connection(session)
            await idempotency.stored(conn, self.claim(settings))  # nothing to replay


class TestThroughTheRuntime:
    async def test_a_retry_after_the_time_applies_again(
        self,
        worker: RunningWorker,
        bus: Bus,
        db: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        params = {"workspace": "w7", "note": "twice"}
        await bus.request(ops.emit, params, caller=None, idempotency_key="key-ttl")
        async with db() as session, session.begin():
            await session.execute(
                update(IdempotencyRecord).values(
                    created_at=func.now()
                    - text(f"interval '{settings.idempotency_ttl_s + 60} seconds'")
                )
            )
        await bus.request(ops.emit, params, caller=None, idempotency_key="key-ttl")
        assert ops.emit_calls == ["twice", "twice"]
