"""``channels.authorize``: may this user subscribe to (or publish on) a workspace's
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

from sqlalchemy import select

from handlers import invalidations
from handlers.context import Context
from handlers.registry import Registry
from handlers.workspaces.access import role_of
from handlers.workspaces.models import Workspace
from hubbub.contracts.api import channels as api
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
