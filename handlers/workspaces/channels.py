"""What the hubs ask the workers about access: ``channels.authorize`` and
``access.pending`` (at the end of this module).

``channels.authorize``: may this user subscribe to (or publish on) a workspace's
channels? Asked by the hubs for ``workspace:<id>`` and ``chat:<id>``.

* ``workspace:<id>`` — members of every role may subscribe; nobody publishes from a
  client (the hub refuses that by policy before asking).
* ``chat:<id>`` — members of every role may subscribe; members, admins and owners (not
  viewers) may publish.

The answer is cached in Redis for ``cache_ttl_s`` (``b"1"``/``b"0"`` under
``RedisKeys.channel_acl``), where hubs read it first. The cache must never outlive a
membership change, and a concurrent change could otherwise slip between our database
read and our Redis write. So the read locks the workspace row ``FOR SHARE`` and the
answer is written to Redis while the lock is held: a membership change (which takes
the row ``FOR NO KEY UPDATE`` first, see access.py) either committed before our read —
we see it — or waits until our write is done and then deletes it after its commit.

With Redis unreachable the answer is still given — it comes from the database — and
simply not cached. A membership change that commits meanwhile keeps its deletion in
PostgreSQL (``acl.py``), so an answer cached before the outage is deleted as soon as
Redis is back, even if Redis kept it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, literal, or_, select

from handlers import invalidations
from handlers.accounts import revocation
from handlers.accounts.models import User
from handlers.context import Context
from handlers.invalidations import PendingInvalidation
from handlers.registry import Registry
from handlers.workspaces import acl
from handlers.workspaces.access import role_of
from handlers.workspaces.models import Workspace
from hubbub.config import Settings
from hubbub.contracts.api import access as access_api
from hubbub.contracts.api import channels as api
from hubbub.contracts.api.access import PendingAccess, PendingAccessParams
from hubbub.contracts.api.channels import Authorization, AuthorizeParams, ChannelAction
from hubbub.contracts.api.workspaces import WorkspaceRole
from hubbub.contracts.channels import Channel, ChannelKind
from hubbub.contracts.errors import BadRequest

registry = Registry()
WORKSPACE_KINDS = (ChannelKind.WORKSPACE, ChannelKind.CHAT)


@registry.handler(api.authorize)
async def authorize(ctx: Context, params: AuthorizeParams) -> Authorization:
    try:
        channel = Channel.parse(params.channel)
        workspace_id = uuid.UUID(channel.name)
        user_id = uuid.UUID(params.user_id)
    except (BadRequest, ValueError):
        return Authorization(allowed=False, reason="not a workspace channel")
    if channel.kind not in WORKSPACE_KINDS:
        return Authorization(allowed=False, reason="not a workspace channel")
    exists = await ctx.session.scalar(
        select(Workspace.id).where(Workspace.id == workspace_id).with_for_update(read=True)
    )
    role = await role_of(ctx, workspace_id, user_id) if exists else None
    allowed, reason = _decide(channel.kind, params.action, role)
    try:
        await ctx.redis.set(
            ctx.keys.channel_acl(params.user_id, params.channel, params.action.value),
            b"1" if allowed else b"0",
            ex=ctx.settings.cache_ttl_s,
        )
    except invalidations.REDIS_ERRORS as exc:
        ctx.resource(invalidations.REDO_SIGNAL).failed(exc)
    return Authorization(allowed=allowed, role=role.value if role else None, reason=reason)


def _decide(
    kind: ChannelKind, action: ChannelAction, role: WorkspaceRole | None
) -> tuple[bool, str | None]:
    if role is None:
        return False, "not a member of this workspace"
    if action is ChannelAction.SUBSCRIBE:
        return True, None
    if kind is ChannelKind.CHAT and role.at_least(WorkspaceRole.MEMBER):
        return True, None
    return False, f"{role.value}s may not publish here"


# ``access.pending``: the access changes whose Redis work is still pending in PostgreSQL
# (``hubbub/contracts/api/access.py`` says why the hubs ask). A page holds at most this
# many rows, and stops after the row that brings it to this many entries.
PAGE_ROWS = 1000
PAGE_ENTRIES = 5000
# A revoking transaction commits within this of its start (requests have deadlines, and
# statements a 30 s timeout), so a row older than the lifetime of what it guards — the
# access tokens that could carry a revoked session, the channel answers cached before a
# membership change — plus this matters to no hub any more.
COMMIT_SLACK_S = 120.0
# The invalidation kinds ``pending`` reads: those that take access away. Their rows have
# an index of their own (``handlers/models.py``, migration 0012).
ACCESS_KINDS = (revocation.SESSIONS, revocation.USER, acl.FORGET)


@registry.handler(access_api.pending)
async def pending(ctx: Context, params: PendingAccessParams) -> PendingAccess:
    """Revoked sessions, deactivated users (those still deactivated: a late row of a user
    reactivated since denies nobody, as its redo would not) and the (user, channel) pairs
    whose cached answers a membership change is still to delete — from the rows after
    ``params.after``, in the order they were written."""
    settings = ctx.settings
    rows = (await ctx.session.execute(pending_rows(settings, params.after))).all()
    sessions: set[str] = set()
    users: set[uuid.UUID] = set()
    channels: dict[str, set[str]] = {}
    entries, after, more = 0, params.after, len(rows) == PAGE_ROWS
    for row_id, kind, payload in rows:
        if entries >= PAGE_ENTRIES:
            more = True
            break
        after = row_id
        try:
            entries += _take(kind, payload, sessions, users, channels)
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # malformed: the redo loop drops it too
    deactivated: list[uuid.UUID] = []
    if users:
        still = select(User.id).where(User.id.in_(users), User.is_active.is_(False))
        deactivated = list(await ctx.session.scalars(still))
    return PendingAccess(
        sessions=sorted(sessions),
        users=sorted(str(u) for u in deactivated),
        channels={user: sorted(names) for user, names in channels.items()},
        until=revocation.deny_until(settings),
        after=after if more else None,
    )


def pending_rows(settings: Settings, after: int) -> Select[tuple[int, str, dict[str, Any]]]:
    """A page of the rows ``pending`` reads, in id order: by the partial index of the
    access kinds, not the primary key, which during a long Redis outage would read past
    the rows of other kinds (cache bumps). The kinds are written into the statement, not
    bound, so that the planner proves the index's predicate in a generic plan too."""
    tokens_live = settings.access_token_ttl_s + settings.jwt_leeway_s + revocation.MARGIN_S
    row = PendingInvalidation
    return (
        select(row.id, row.kind, row.payload)
        .where(
            row.id > after,
            row.kind.in_(
                bindparam("access_kinds", ACCESS_KINDS, expanding=True, literal_execute=True)
            ),
            or_(
                and_(
                    row.kind.in_((revocation.SESSIONS, revocation.USER)),
                    row.created_at > _ago(tokens_live + COMMIT_SLACK_S),
                ),
                and_(
                    row.kind == acl.FORGET,
                    row.created_at > _ago(settings.cache_ttl_s + COMMIT_SLACK_S),
                ),
            ),
        )
        .order_by(row.id)
        .limit(PAGE_ROWS)
    )


def _ago(seconds: float) -> Any:
    return func.now() - literal(timedelta(seconds=seconds))


def _take(
    kind: str,
    payload: dict[str, Any],
    sessions: set[str],
    users: set[uuid.UUID],
    channels: dict[str, set[str]],
) -> int:
    """Add what one row takes away; how many entries it named."""
    if kind == revocation.SESSIONS:
        sids = [str(sid) for sid in payload["sids"]]
        sessions.update(sids)
        return len(sids)
    if kind == revocation.USER:
        users.add(uuid.UUID(str(payload["user_id"])))
        return 1
    names = acl.channels_of(str(payload["workspace_id"]))
    user_ids = [str(user) for user in payload["user_ids"]]
    for user in user_ids:
        channels.setdefault(user, set()).update(names)
    return len(user_ids)
