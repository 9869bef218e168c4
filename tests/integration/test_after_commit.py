"""The unit of work's edges: after-commit actions, an early commit, and resources."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from nats.errors import ConnectionReconnectingError
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.context import Context
from handlers.worker_resources import ResourceKey, Resources
from hubbub.config import Settings
from hubbub.contracts.envelope import ANONYMOUS
from hubbub.contracts.errors import Conflict
from hubbub.contracts.operations import Access, Empty, NoParams, Operation
from hubbub.contracts.subjects import Subjects
from hubbub.keys import RedisKeys
from workers.execution import run_handler

OP = Operation("test.unit", NoParams, Empty, Access.PUBLIC)


@pytest.fixture
def ctx(settings: Settings, redis: Redis, db: async_sessionmaker[AsyncSession]) -> Context:
    return Context(
        caller=ANONYMOUS,
        request_id="rid",
        settings=settings,
        redis=redis,
        keys=RedisKeys(settings.namespace),
        subjects=Subjects(settings.namespace),
        sessions=db,
    )


async def outbox_rows(db: async_sessionmaker[AsyncSession]) -> int:
    async with db() as session:
        return int(await session.scalar(text("SELECT count(*) FROM outbox")) or 0)


async def write_a_row(ctx: Context) -> None:
    await ctx.session.execute(
        text("INSERT INTO outbox (channel, event_type, payload) VALUES ('c', 't', '{}')")
    )


class TestAfterCommit:
    async def test_an_action_runs_once_the_transaction_has_committed(
        self, ctx: Context, db: async_sessionmaker[AsyncSession]
    ) -> None:
        seen: list[int] = []

        async def handler(ctx: Context, params: NoParams) -> Empty:
            await write_a_row(ctx)

            async def action() -> None:
                seen.append(await outbox_rows(db))  # another connection sees the row

            ctx.after_commit(action)
            return Empty()

        await run_handler(OP, handler, ctx, NoParams())
        assert seen == [1]

    async def test_a_job_cancelled_in_its_actions_answers_what_it_committed(
        self, ctx: Context, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """At a drain's deadline: not "shutting down; retry" for a change in the database
        (a retry without an idempotency key would apply it twice)."""
        acting = asyncio.Event()

        async def handler(ctx: Context, params: NoParams) -> Empty:
            await write_a_row(ctx)

            async def action() -> None:
                acting.set()
                await asyncio.Event().wait()  # a slow Redis

            ctx.after_commit(action)
            return Empty()

        job = asyncio.ensure_future(run_handler(OP, handler, ctx, NoParams()))
        await acting.wait()
        job.cancel()

        assert await job == b"{}"
        assert await outbox_rows(db) == 1

    async def test_a_job_cancelled_before_its_commit_is_cancelled_and_rolled_back(
        self, ctx: Context, db: async_sessionmaker[AsyncSession]
    ) -> None:
        working = asyncio.Event()

        async def handler(ctx: Context, params: NoParams) -> Empty:
            await write_a_row(ctx)
            working.set()
            await asyncio.Event().wait()
            return Empty()

        job = asyncio.ensure_future(run_handler(OP, handler, ctx, NoParams()))
        await working.wait()
        job.cancel()

        with pytest.raises(asyncio.CancelledError):
            await job
        assert await outbox_rows(db) == 0

    async def test_an_action_never_runs_when_the_handler_fails(self, ctx: Context) -> None:
        seen: list[str] = []

        async def handler(ctx: Context, params: NoParams) -> Empty:
            async def action() -> None:
                seen.append("ran")

            ctx.after_commit(action)
            raise Conflict("no")

        with pytest.raises(Conflict):
            await run_handler(OP, handler, ctx, NoParams())
        assert seen == []

    async def test_a_failing_action_is_logged_and_the_result_stands(
        self, ctx: Context, caplog: pytest.LogCaptureFixture
    ) -> None:
        async def handler(ctx: Context, params: NoParams) -> Empty:
            async def action() -> None:
                raise RuntimeError("redis is down")

            ctx.after_commit(action)
            return Empty()

        with caplog.at_level(logging.ERROR):
            assert await run_handler(OP, handler, ctx, NoParams()) == b"{}"
        assert "an after-commit action failed" in caplog.text

    async def test_an_action_that_meets_an_outage_logs_no_traceback(
        self, ctx: Context, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A dependency that is away is logged once by the worker's health tracker, not
        once per request by every after-commit action that meets it."""

        async def handler(ctx: Context, params: NoParams) -> Empty:
            async def action() -> None:
                raise ConnectionReconnectingError

            ctx.after_commit(action)
            return Empty()

        with caplog.at_level(logging.INFO):
            assert await run_handler(OP, handler, ctx, NoParams()) == b"{}"
        assert [r for r in caplog.records if r.exc_info] == []

    async def test_an_early_commit_sticks_although_the_handler_then_fails(
        self, ctx: Context, db: async_sessionmaker[AsyncSession]
    ) -> None:
        """How a reused refresh token's revocation survives the 401 that follows it."""
        seen: list[str] = []

        async def handler(ctx: Context, params: NoParams) -> Empty:
            await write_a_row(ctx)

            async def action() -> None:
                seen.append("ran")

            ctx.after_commit(action)
            await ctx.commit()
            raise Conflict("refused, but the change stays")

        with pytest.raises(Conflict):
            await run_handler(OP, handler, ctx, NoParams())
        assert (await outbox_rows(db), seen) == (1, ["ran"])


class Closable:
    def __init__(self, settings: Settings) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


KEY: ResourceKey[Closable] = ResourceKey("closable", Closable)


class TestResources:
    async def test_a_resource_is_built_once_from_the_settings(self, settings: Settings) -> None:
        resources = Resources()
        assert resources.get(KEY, settings) is resources.get(KEY, settings)

    async def test_what_was_built_is_closed(self, settings: Settings) -> None:
        resources = Resources()
        built = resources.get(KEY, settings)
        await resources.aclose()
        assert built.closed is True

    async def test_what_was_provided_belongs_to_the_provider(self, settings: Settings) -> None:
        provided = Closable(settings)
        resources = Resources({KEY: provided})
        got: Any = resources.get(KEY, settings)
        await resources.aclose()
        assert (got is provided, provided.closed) == (True, False)
