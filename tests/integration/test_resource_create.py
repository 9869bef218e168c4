"""``resources.create`` run as the worker runs it: what one create writes, and the
workspace deleted while the create is under way."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.context import Context
from handlers.db import create_engine, session_factory
from handlers.resources.service import create
from handlers.worker_resources import Resources
from hubbub.config import Settings
from hubbub.contracts.api import resources as api
from hubbub.contracts.api.resources import ResourceCreate
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.errors import NotFound
from hubbub.contracts.subjects import Subjects
from hubbub.keys import RedisKeys
from tests.support.waiting import wait_for
from tests.support.workspaces import Domain, Person
from workers.execution import run_handler


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The worker's sessions: an engine of their own, beside ``db``'s two connections."""
    assert settings.database_url
    engine = create_engine(settings.database_url, pool_size=2, max_overflow=0)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
def domain(hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]) -> Domain:
    return Domain(hub_client, db)


def context(
    settings: Settings,
    redis: Redis,
    db: async_sessionmaker[AsyncSession],
    person: Person,
    key: str | None,
) -> Context:
    return Context(
        caller=Caller(kind=CallerKind.USER, user_id=person.id, role="member"),
        request_id="rid",
        settings=settings,
        redis=redis,
        keys=RedisKeys(settings.namespace),
        subjects=Subjects(settings.namespace),
        sessions=db,
        idempotency_key=key,
        resources=Resources(),
    )


async def rows(db: async_sessionmaker[AsyncSession], sql: str, **params: Any) -> list[Any]:
    async with db() as session:
        return list((await session.execute(text(sql), params)).all())


class TestCreate:
    async def test_one_create_writes_its_row_activity_event_and_stored_response_together(
        self,
        domain: Domain,
        settings: Settings,
        redis: Redis,
        db: async_sessionmaker[AsyncSession],
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        params = ResourceCreate(workspace_id=ws["id"], kind="task", title="one", tags=["a"])
        ctx = context(settings, redis, sessions, ann, key="k-one")

        body = await run_handler(api.create, create, ctx, params)

        made = orjson.loads(body)
        assert (made["title"], made["version"], made["tags"]) == ("one", 1, ["a"])
        [resource] = await rows(
            db, "SELECT created_at, position FROM resources WHERE id = :id", id=made["id"]
        )
        assert resource.position == made["position"]
        assert resource.created_at.isoformat() == made["created_at"].replace("Z", "+00:00")
        [activity] = await rows(
            db,
            "SELECT action, actor_id::text, after_version, summary FROM activity"
            " WHERE subject_id = :id",
            id=made["id"],
        )
        assert activity == (
            "resource.created",
            ann.id,
            1,
            {"title": "one", "kind": "task", "status": made["status"]},
        )
        [event] = await rows(
            db, "SELECT payload FROM outbox WHERE payload -> 'data' ->> 'id' = :id", id=made["id"]
        )
        assert event.payload["type"] == "resource.created"
        assert event.payload["channel"] == f"workspace:{ws['id']}"
        assert event.payload["data"] == made
        [stored] = await rows(db, "SELECT response FROM idempotency_keys WHERE key = 'k-one'")
        assert bytes(stored.response) == body

        # The same key again: the stored response, nothing written twice.
        again = context(settings, redis, sessions, ann, key="k-one")
        assert await run_handler(api.create, create, again, params) == body
        assert len(await rows(db, "SELECT 1 FROM resources WHERE title = 'one'")) == 1

    async def test_a_create_without_an_idempotency_key_is_written_with_its_journal(
        self,
        domain: Domain,
        settings: Settings,
        redis: Redis,
        db: async_sessionmaker[AsyncSession],
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        params = ResourceCreate(workspace_id=ws["id"], kind="task", title="keyless")
        ctx = context(settings, redis, sessions, ann, key=None)

        made = orjson.loads(await run_handler(api.create, create, ctx, params))

        assert ctx.emitted  # the relay is woken for its event
        activity = await rows(db, "SELECT 1 FROM activity WHERE subject_id = :id", id=made["id"])
        event = await rows(
            db, "SELECT 1 FROM outbox WHERE payload -> 'data' ->> 'id' = :id", id=made["id"]
        )
        assert (len(activity), len(event)) == (1, 1)

    async def test_a_workspace_deleted_while_a_create_waits_for_it_is_not_found(
        self,
        domain: Domain,
        settings: Settings,
        redis: Redis,
        db: async_sessionmaker[AsyncSession],
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        params = ResourceCreate(workspace_id=ws["id"], kind="task", title="orphan")
        async with db() as deleting:
            # Deleted, not yet committed: the create still sees ann as a member, and its
            # insert waits for this transaction on the workspace row.
            await deleting.execute(text("DELETE FROM workspaces WHERE id = :id"), {"id": ws["id"]})
            key = f"k-{uuid.uuid4().hex}"
            creating = asyncio.create_task(
                run_handler(
                    api.create, create, context(settings, redis, sessions, ann, key), params
                )
            )

            async def blocked() -> bool:
                waiting = await rows(
                    db,
                    "SELECT 1 FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO resources%'",
                )
                return bool(waiting)

            await wait_for(blocked, what="the create waiting for the workspace row")
            await deleting.commit()
        with pytest.raises(NotFound):
            await creating
        assert await rows(db, "SELECT 1 FROM resources WHERE title = 'orphan'") == []
        assert await rows(db, "SELECT 1 FROM idempotency_keys WHERE key = :k", k=key) == []
