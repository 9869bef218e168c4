"""``resources.create``, ``.get``, ``.list``, ``.update``, ``.delete``, ``.restore``.

Writes lock the row (``SELECT … FOR UPDATE``), compare ``expected_version`` if given,
change the row and raise its version by one — so of concurrent changes made against the
same version exactly one succeeds, whichever worker process runs them; the others get
``stale_version`` (409 over RPC, 412 over REST). Each change is journalled (activity,
event on ``workspace:<id>`` with the full ``ResourcePublic``, cache invalidation) in its
transaction. Reads are cached per workspace generation (``handlers/workspaces/cache.py``).

Creates take no lock but the foreign key's ``KEY SHARE`` on the workspace row, so
creates into one workspace run side by side (their operation has no actor key). A create
without a ``position`` reads the column's last key without a lock and goes after it: two
creates at once may get the same key, which the listing orders by id.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from sqlalchemy import delete, func, select

from handlers import idempotency
from handlers.context import Context
from handlers.db import driver_connection
from handlers.registry import Registry
from handlers.resources import listing, positions
from handlers.resources.models import Resource
from handlers.resources.views import resource_public, summary
from handlers.workspaces import access, journal
from handlers.workspaces.cache import cache_for, params_digest
from hubbub.contracts import event_types as events
from hubbub.contracts.api import resources as api
from hubbub.contracts.api.resources import (
    ResourceCreate,
    ResourceDelete,
    ResourceGet,
    ResourceListParams,
    ResourcePage,
    ResourcePublic,
    ResourceRestore,
    ResourceUpdate,
)
from hubbub.contracts.api.workspaces import WorkspaceRole
from hubbub.contracts.errors import Conflict, Forbidden, NotFound, stale_version
from hubbub.contracts.events import EventType
from hubbub.contracts.operations import Empty

registry = Registry()


def _not_found() -> NotFound:
    return NotFound("no such resource")


@registry.handler(api.list_resources)
async def list_resources(ctx: Context, params: ResourceListParams) -> ResourcePage:
    await access.require(ctx, params.workspace_id, access.READ)
    cache = cache_for(ctx, params.workspace_id)
    first_page = params.cursor is None
    name = ("resources", params_digest(params))
    if first_page and (cached := await cache.get(ResourcePage, *name)) is not None:
        return cached
    rows = list((await ctx.session.scalars(listing.page_query(params))).all())
    page = listing.to_page(params, rows)
    if first_page:
        await cache.put(page, *name)
    return page


@registry.handler(api.get)
async def get(ctx: Context, params: ResourceGet) -> ResourcePublic:
    await access.require(ctx, params.workspace_id, access.READ)
    cache = cache_for(ctx, params.workspace_id)
    public = await cache.get(ResourcePublic, "resource", str(params.resource_id))
    if public is None:
        row = await ctx.session.scalar(
            select(Resource).where(
                Resource.id == params.resource_id, Resource.workspace_id == params.workspace_id
            )
        )
        if row is None:
            raise _not_found()
        public = resource_public(row)
        await cache.put(public, "resource", str(params.resource_id))
    if public.deleted_at is not None and not params.include_deleted:
        raise _not_found()
    return public


@registry.handler(api.create)
@idempotency.claims_itself
async def create(ctx: Context, params: ResourceCreate) -> ResourcePublic:
    me = uuid.UUID(ctx.user_id)
    claim = ctx.claim
    conn = await driver_connection(ctx.session)
    found = await conn.fetchrow(
        _CLAIM_ROLE_LAST_NOW,
        params.workspace_id,
        me,
        params.status,
        *((claim.caller, claim.key, claim.operation, claim.fingerprint) if claim else _NO_CLAIM),
    )
    assert found is not None  # a SELECT of scalar subqueries has one row
    claimed, role, last, now = found
    if not claimed:
        assert claim is not None
        await idempotency.replay(conn, claim)
    if params.position is not None:
        last = None  # not needed: the create names its place
    _check_role(role, access.WRITE)
    row = Resource(
        id=uuid.uuid4(),
        workspace_id=params.workspace_id,
        kind=params.kind,
        title=params.title,
        body=params.body,
        status=params.status,
        position=params.position if params.position is not None else positions.after(last),
        tags=params.tags,
        data=params.data,
        version=1,
        created_by=me,
        updated_by=me,
        deleted_at=None,
        # The transaction's now(): what the columns' defaults would have stamped.
        created_at=now,
        updated_at=now,
    )
    public = resource_public(row)
    journalled = journal.entries(
        ctx,
        row.workspace_id,
        events.RESOURCE_CREATED,
        data=public.model_dump(mode="json"),
        summary=summary(row),
    )
    body = None
    if claim is not None:
        body = claim.response = claim.serialize(public)
    # The row, its activity row, its outbox event and the idempotency record's response in
    # one statement, one round trip.
    try:
        await conn.execute(
            _INSERT_CREATED,
            row.id,
            row.workspace_id,
            row.kind,
            row.title,
            row.body,
            row.status,
            row.position,
            row.tags,
            _json(row.data),
            me,
            now,
            journalled.action,
            _json(journalled.summary),
            journalled.event.channel,
            _json(journalled.payload),
            body,
            claim.caller if claim else None,
            claim.key if claim else None,
        )
    except asyncpg.ForeignKeyViolationError:  # the workspace was deleted since the check
        raise access.not_found() from None
    return public


@registry.handler(api.update)
async def update(ctx: Context, params: ResourceUpdate) -> ResourcePublic:
    await access.require(ctx, params.workspace_id, access.WRITE)
    row, now = await _locked(ctx, params.workspace_id, params.resource_id, deleted=False)
    _check_version(row, params.expected_version)
    before = row.version
    for name, value in params.changes(*params.patchable).items():
        setattr(row, name, value)
    _touch(ctx, row, now)
    await ctx.session.flush()
    return _journal(ctx, row, events.RESOURCE_UPDATED, before=before)


@registry.handler(api.delete)
async def delete_resource(ctx: Context, params: ResourceDelete) -> Empty:
    await access.require(ctx, params.workspace_id, access.MANAGE if params.hard else access.WRITE)
    row, now = await _locked(
        ctx, params.workspace_id, params.resource_id, deleted=None if params.hard else False
    )
    _check_version(row, params.expected_version)
    before = row.version
    if params.hard:
        public = resource_public(row)
        if public.deleted_at is None:
            public.deleted_at = now
        await ctx.session.execute(delete(Resource).where(Resource.id == row.id))
        _journal(ctx, row, events.RESOURCE_DELETED, before=before, public=public, hard=True)
        return Empty()
    row.deleted_at = now
    _touch(ctx, row, now)
    await ctx.session.flush()
    _journal(ctx, row, events.RESOURCE_DELETED, before=before, hard=False)
    return Empty()


@registry.handler(api.restore)
async def restore(ctx: Context, params: ResourceRestore) -> ResourcePublic:
    await access.require(ctx, params.workspace_id, access.WRITE)
    row, now = await _locked(ctx, params.workspace_id, params.resource_id, deleted=None)
    if row.deleted_at is None:
        raise Conflict("this resource is not deleted")
    _check_version(row, params.expected_version)
    before = row.version
    row.deleted_at = None
    _touch(ctx, row, now)
    await ctx.session.flush()
    return _journal(ctx, row, events.RESOURCE_RESTORED, before=before)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


# The idempotency key claimed (if the request has one: $4-$7, else NULLs; "claimed" is
# false when an earlier request holds it), the caller's role, the greatest order key of
# the column's live cards (read without a lock) and the transaction's now(): one round
# trip, on the transaction's asyncpg connection.
_CLAIM_ROLE_LAST_NOW = """
WITH claim AS (
    INSERT INTO idempotency_keys (caller, key, operation, request_hash)
    SELECT $4::varchar, $5::varchar, $6::varchar, $7::varchar WHERE $5::varchar IS NOT NULL
    ON CONFLICT DO NOTHING RETURNING 1
)
SELECT $5::varchar IS NULL OR EXISTS (SELECT FROM claim),
       (SELECT role FROM workspace_members WHERE workspace_id = $1 AND user_id = $2),
       (SELECT position FROM resources
         WHERE workspace_id = $1 AND status = $3 AND deleted_at IS NULL
         ORDER BY position DESC LIMIT 1),
       now()
"""
_NO_CLAIM = (None, None, None, None)

# A created resource with its activity row and its outbox event (the journal of
# handlers/workspaces/journal.py) and, with an idempotency key, the response stored on
# its record ($16-$18, else NULLs), written together: the rest only if the row is (a
# foreign key violation fails the whole statement).
_INSERT_CREATED = """
WITH created AS (
    INSERT INTO resources (id, workspace_id, kind, title, body, status, position, tags, data,
                           version, created_by, updated_by, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10, $11, $11)
    RETURNING id, workspace_id
), journalled AS (
    INSERT INTO activity (workspace_id, actor_id, action, subject_type, subject_id,
                          before_version, after_version, summary)
    SELECT workspace_id, $10, $12, 'resource', id::text, NULL, 1, $13 FROM created
), completed AS (
    UPDATE idempotency_keys SET response = $16, completed_at = now()
     WHERE caller = $17::varchar AND key = $18::varchar AND EXISTS (SELECT FROM created)
)
INSERT INTO outbox (channel, event_type, payload) SELECT $14, $12, $15 FROM created
"""


def _check_role(role: str | None, at_least: WorkspaceRole) -> None:
    """``access.require``'s rule on a role read with something else: not a member is
    ``not_found``, too low a role ``forbidden``."""
    if role is None:
        raise access.not_found()
    if not WorkspaceRole(role).at_least(at_least):
        raise Forbidden(f"this needs the {at_least.value} role or higher", role=role)


async def _locked(
    ctx: Context, workspace_id: uuid.UUID, resource_id: uuid.UUID, *, deleted: bool | None
) -> tuple[Resource, datetime]:
    """The row, locked, and the transaction's ``now()`` (the time its change is stamped
    with: known here, the row needs no reading back after its UPDATE); ``deleted``
    False: only a live one, None: either."""
    statement = select(Resource, func.now()).where(
        Resource.id == resource_id, Resource.workspace_id == workspace_id
    )
    if deleted is False:
        statement = statement.where(Resource.deleted_at.is_(None))
    found = (
        await ctx.session.execute(
            statement.with_for_update().execution_options(populate_existing=True)
        )
    ).one_or_none()
    if found is None:
        raise _not_found()
    return found[0], found[1]


def _check_version(row: Resource, expected: int | None) -> None:
    if expected is not None and expected != row.version:
        raise stale_version("resource", current=row.version, expected=expected)


def _touch(ctx: Context, row: Resource, now: datetime) -> None:
    row.version += 1
    row.updated_by = uuid.UUID(ctx.user_id)
    row.updated_at = now


def _journal(
    ctx: Context,
    row: Resource,
    action: EventType,
    *,
    before: int | None,
    public: ResourcePublic | None = None,
    **extra: Any,
) -> ResourcePublic:
    public = public or resource_public(row)
    journal.record(
        ctx,
        row.workspace_id,
        action,
        subject_type="resource",
        subject_id=row.id,
        data={**public.model_dump(mode="json"), **extra},
        summary=summary(row),
        before_version=before,
        after_version=None if extra.get("hard") else row.version,
    )
    return public
