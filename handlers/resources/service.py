"""``resources.create``, ``.get``, ``.list``, ``.update``, ``.delete``, ``.restore``.

Writes lock the row (``SELECT … FOR UPDATE``), compare ``expected_version`` if given,
change the row and raise its version by one — so of concurrent changes made against the
same version exactly one succeeds, whichever worker process runs them; the others get
``stale_version`` (409 over RPC, 412 over REST). Each change is journalled (activity,
event on ``workspace:<id>`` with the full ``ResourcePublic``, cache invalidation) in its
transaction. Reads are cached per workspace generation (``handlers/workspaces/cache.py``).

Every write that puts a card into a column at a key it names — an update of ``position``
or ``status``, a restore, a create with a ``position`` — holds the column's advisory lock
shared (``column_lock``) until it commits. An update that leaves its card a long key (past
``positions.RESPACE_AFTER``) then re-keys the run of long keys around it (``_respace``),
so that a gap dropped into again and again never runs out of keys the API takes — but
only if it gets that lock exclusively (``pg_try_advisory_xact_lock``: only when no other
such write holds it — one takes it once it has locked its own card; it never waits) and
every card of the run is free
to lock. Under that lock the re-key's read sees every card put into the column before it,
and none can be put in until it commits: it never crosses one nor ties with one.

Creates take no lock but the foreign key's ``KEY SHARE`` on the workspace row (and, with a
``position``, the column's lock shared, which only a running re-key holds against them),
so creates into one workspace run side by side (their operation has no actor key). A
create without a ``position`` reads the column's last key without a lock and goes after
it: two creates at once may get the same key, which the listing orders by id; a re-key
that reaches the column's end keeps below the key such a create takes after the old last
key.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from sqlalchemy import BindParameter, Uuid, any_, bindparam, delete, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY

from handlers import idempotency
from handlers.context import Context
from handlers.db import autocommit_connection, driver_connection
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
    """Two statements: the caller's role and the column's last key, then the row with its
    journal and idempotency record. Run by the runtime (``ctx.claim`` set), the create is
    the whole unit of work: each statement commits by itself, with no ``BEGIN`` and no
    ``COMMIT``. Called from another handler, it runs in that handler's transaction."""
    me = uuid.UUID(ctx.user_id)
    claim = ctx.claim
    conn = await (autocommit_connection if claim else driver_connection)(ctx.session)
    found = await conn.fetchrow(_ROLE_LAST_NOW, params.workspace_id, me, params.status)
    assert found is not None  # a SELECT of scalar subqueries has one row
    role, last, now = found
    if params.position is not None:
        last = None  # not needed: the create names its place
    if claim is not None and not _has_role(role, access.WRITE):
        await idempotency.stored(conn, claim)  # a retry of a create made before is replayed
    _check_role(role, access.WRITE)
    # The answer is made from the values written: no ORM object for a row that is
    # inserted by a statement of its own.
    public = ResourcePublic(
        id=uuid.uuid4(),
        workspace_id=params.workspace_id,
        kind=params.kind,
        title=params.title,
        body=params.body,
        status=params.status,
        position=params.position if params.position is not None else positions.after(last),
        tags=list(params.tags),
        data=params.data,
        version=1,
        created_by=me,
        updated_by=me,
        # The time of the first statement: what the columns' defaults would have stamped
        # in a transaction.
        created_at=now,
        updated_at=now,
        deleted_at=None,
    )
    journalled = journal.entries(
        ctx,
        public.workspace_id,
        events.RESOURCE_CREATED,
        data=public.model_dump(mode="json"),
        summary=summary(public),
    )
    body = claim.serialize(public) if claim else None
    # The row, its activity row, its outbox event and its idempotency record with the
    # response, in one statement.
    try:
        created = await conn.fetchval(
            _INSERT_CREATED,
            public.id,
            public.workspace_id,
            public.kind,
            public.title,
            public.body,
            public.status,
            public.position,
            public.tags,
            _json(public.data),
            me,
            now,
            journalled.action,
            _json(journalled.summary),
            journalled.event.channel,
            _json(journalled.payload),
            *((claim.caller, claim.key, claim.operation, claim.fingerprint) if claim else _NO_KEY),
            body,
            claim.ttl_s if claim else 0.0,
            None if params.position is None else column_lock(public.workspace_id, public.status),
        )
    except asyncpg.ForeignKeyViolationError:  # the workspace was deleted since the check
        raise access.not_found() from None
    if not created:  # an earlier request holds the key
        assert claim is not None
        await idempotency.replay(conn, claim)
    if claim is not None:
        claim.response = body
    return public


@registry.handler(api.update)
async def update(ctx: Context, params: ResourceUpdate) -> ResourcePublic:
    await access.require(ctx, params.workspace_id, access.WRITE)
    row, now = await _locked(ctx, params.workspace_id, params.resource_id, deleted=False)
    _check_version(row, params.expected_version)
    before = row.version
    changes = params.changes(*params.patchable)
    for name, value in changes.items():
        setattr(row, name, value)
    placed = bool(changes.keys() & {"position", "status"})
    if placed:
        await _hold_column(ctx, row.workspace_id, row.status)
    _touch(ctx, row, now)
    await ctx.session.flush()
    if placed and len(row.position) > positions.RESPACE_AFTER:
        await _respace(ctx, row, now)
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
    await _hold_column(ctx, row.workspace_id, row.status)  # the card is put back at its key
    before = row.version
    row.deleted_at = None
    _touch(ctx, row, now)
    await ctx.session.flush()
    return _journal(ctx, row, events.RESOURCE_RESTORED, before=before)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


# The caller's role, the greatest order key of the column's live cards (read without a
# lock) and the time: one round trip.
_ROLE_LAST_NOW = """
SELECT (SELECT role FROM workspace_members WHERE workspace_id = $1 AND user_id = $2),
       (SELECT position FROM resources
         WHERE workspace_id = $1 AND status = $3 AND deleted_at IS NULL
         ORDER BY position DESC LIMIT 1),
       now()
"""

# A created resource with its activity row and its outbox event (the journal of
# handlers/workspaces/journal.py), written together, and only if the idempotency key
# ($17, with the response $20; NULL: the request has none) is claimed by this statement
# (a record older than $21 seconds is taken over, as idempotency.claim does; one it meets
# is locked). Returns whether it was; a foreign key violation (the workspace is gone) fails it all.
# A create with a position holds its column's lock ($22; NULL: none) shared, taken before
# the row is inserted (``created`` reads ``go``, which reads ``placed``), until it commits.
_INSERT_CREATED = """
WITH placed AS (
    SELECT pg_advisory_xact_lock_shared($22::bigint) WHERE $22::bigint IS NOT NULL
), claim AS (
    INSERT INTO idempotency_keys AS held
           (caller, key, operation, request_hash, response, completed_at)
    SELECT $16::varchar, $17::varchar, $18::varchar, $19::varchar, $20::bytea, now()
     WHERE $17::varchar IS NOT NULL
    ON CONFLICT (caller, key) DO UPDATE
       SET operation = excluded.operation, request_hash = excluded.request_hash,
           response = excluded.response, completed_at = excluded.completed_at,
           created_at = now()
     WHERE held.created_at < now() - make_interval(secs => $21::float8)
    RETURNING 1
), go AS (
    SELECT $17::varchar IS NULL OR EXISTS (SELECT FROM claim) AS ok
      FROM (SELECT count(*) FROM placed) AS column_locked
), created AS (
    INSERT INTO resources (id, workspace_id, kind, title, body, status, position, tags, data,
                           version, created_by, updated_by, created_at, updated_at)
    SELECT $1::uuid, $2::uuid, $3::varchar, $4::text, $5::text, $6::varchar, $7::text,
           $8::varchar[], $9::jsonb, 1, $10::uuid, $10::uuid, $11::timestamptz,
           $11::timestamptz
      FROM go WHERE go.ok
    RETURNING id, workspace_id
), journalled AS (
    INSERT INTO activity (workspace_id, actor_id, action, subject_type, subject_id,
                          before_version, after_version, summary)
    SELECT workspace_id, $10::uuid, $12::varchar, 'resource', id::text, NULL, 1, $13::jsonb
      FROM created
), published AS (
    INSERT INTO outbox (channel, event_type, payload)
    SELECT $14::varchar, $12::varchar, $15::jsonb FROM created
)
SELECT ok FROM go
"""
_NO_KEY = (None, None, None, None)


def _has_role(role: str | None, at_least: WorkspaceRole) -> bool:
    return role is not None and WorkspaceRole(role).at_least(at_least)


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


def column_lock(workspace_id: uuid.UUID, status: str) -> int:
    """The advisory lock key of a column (a workspace's cards of one ``status``): the
    first 8 bytes of a hash of both, as a signed 64-bit integer."""
    digest = hashlib.blake2b(f"resources:{workspace_id}:{status}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


async def _hold_column(ctx: Context, workspace_id: uuid.UUID, status: str) -> None:
    """Hold the column's lock shared until the transaction ends: no re-key runs in the
    column meanwhile (one running is waited for)."""
    await ctx.session.execute(
        select(func.pg_advisory_xact_lock_shared(column_lock(workspace_id, status)))
    )


# The live cards before and after the card at (:position, :id) in its column, nearest
# first, at most :n: a walk of ix_resources_workspace_status_position from that card.
_BELOW = text("""
SELECT id, position FROM resources
 WHERE workspace_id = :workspace_id AND status = :status AND deleted_at IS NULL
   AND (position, id) < (:position, :id)
 ORDER BY position DESC, id DESC LIMIT :n
""")
_ABOVE = text("""
SELECT id, position FROM resources
 WHERE workspace_id = :workspace_id AND status = :status AND deleted_at IS NULL
   AND (position, id) > (:position, :id)
 ORDER BY position, id LIMIT :n
""")


async def _respace(ctx: Context, moved: Resource, now: datetime) -> None:
    """Give ``moved`` (a card just put, with a long key, in its column) and the run of
    cards with long keys around it fresh, short keys (``positions.respace``), in the same
    order. Each other card re-keyed is changed as an update changes it: its version,
    ``updated_*``, its activity row and ``resource.updated`` event.

    Nothing is re-keyed — the move keeps the valid key it was given, and the next long
    one tries again — unless this transaction gets the column's lock exclusively (no
    other write that places a card in the column holds it, and none can commit until
    this one does) and locks every card of the run without waiting (``SKIP LOCKED``: a
    card another change holds, or one that left the run since the read, stops it; a wait
    could deadlock with a re-key in another column). The run is read after the lock is
    taken: every card put into the column before is in it."""
    session = ctx.session
    lock = column_lock(moved.workspace_id, moved.status)
    if not await session.scalar(select(func.pg_try_advisory_xact_lock(lock))):
        return
    where = {
        "workspace_id": moved.workspace_id,
        "status": moved.status,
        "position": moved.position,
        "id": moved.id,
        "n": positions.RESPACE_SPAN + 1,
    }
    below = (await session.execute(_BELOW, where)).all()
    above = (await session.execute(_ABOVE, where)).all()
    plan = positions.respace([key for _, key in below], moved.position, [key for _, key in above])
    if plan is None:
        return
    n_below, n_above, keys = plan
    run = [*reversed(below[:n_below]), (moved.id, moved.position), *above[:n_above]]
    new = {id_: key for (id_, _), key in zip(run, keys, strict=True)}
    read = {id_: key for id_, key in run if id_ != moved.id}
    rows: list[Resource] = []
    if read:
        rows = list(
            (
                await session.scalars(
                    select(Resource)
                    .where(
                        Resource.id == any_(_ids(list(read))),
                        Resource.status == moved.status,
                        Resource.deleted_at.is_(None),
                    )
                    .with_for_update(skip_locked=True)
                    .execution_options(populate_existing=True)
                )
            ).all()
        )
        if len(rows) < len(read) or any(row.position != read[row.id] for row in rows):
            return
    for row in rows:
        row.position = new[row.id]
        _touch(ctx, row, now)
    moved.position = new[moved.id]
    await session.flush()
    for row in sorted(rows, key=lambda r: (r.position.encode(), r.id)):
        _journal(ctx, row, events.RESOURCE_UPDATED, before=row.version - 1)


def _ids(ids: list[uuid.UUID]) -> BindParameter[Any]:
    """``ids`` as one array parameter."""
    value: Any = ids
    return bindparam("ids", value, type_=ARRAY(Uuid))


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
