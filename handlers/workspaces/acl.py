"""Channel permissions of a workspace's members, as the hubs see them.

``channels.authorize`` caches its answers in Redis (``RedisKeys.channel_acl``), where the
hubs look first. A membership change must therefore, after it commits:

1. delete the affected users' cached answers for ``workspace:<id>`` and ``chat:<id>``
   (both actions), so the next check asks the database again; and
2. publish on ``ctl.user.<id>``: when someone lost access (removed, left, workspace
   deleted) ``membership_revoked``, so every hub drops that user's subscriptions to those
   channels at once with an ``unsubscribed`` push; otherwise (a new role, a join)
   ``membership_changed``, so every hub believes Redis about that user on those
   channels, for as long as a cached answer lives, only where a worker asked since the
   change said the same (``hub/ws/authz.py``) — a demoted member's cached "may publish"
   must not hold on any hub while the deletion waits for Redis, nor a new member's
   cached "may not" keep them out.

A cached "allowed" must never outlive the change that took it away, so the deletion is
kept in PostgreSQL *in the change's transaction* (``handlers/invalidations.py``,
``durable=True``): if Redis is unreachable, or the worker dies right after the commit,
the workers' redo loop deletes the answers as soon as Redis answers again. Deleting is
idempotent and can only make the next check ask the database, so redoing it late or
twice is safe. The control message does not wait for Redis: after-commit actions run in
order and it is queued before the deletion, so it is sent at once even when Redis hangs
or fails (the durable row covers the deletion). A lost control message (the worker died,
or a hub's NATS link was down) is what the hubs' periodic re-check of open subscriptions
covers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import orjson

from handlers import invalidations
from handlers.context import Context
from hubbub.contracts.api.channels import ChannelAction
from hubbub.contracts.channels import Channel, ChannelKind
from hubbub.contracts.control import MembershipChanged, MembershipRevoked
from hubbub.keys import RedisKeys

FORGET = "channel_acl"  # the invalidation kind


def channels_of(workspace_id: uuid.UUID | str) -> tuple[str, ...]:
    name = str(workspace_id)
    return (str(Channel(ChannelKind.WORKSPACE, name)), str(Channel(ChannelKind.CHAT, name)))


def acl_keys(keys: RedisKeys, workspace_id: uuid.UUID | str, users: Iterable[str]) -> list[str]:
    """Every cached answer of ``users`` on the workspace's channels."""
    channels = channels_of(workspace_id)
    return [
        keys.channel_acl(user, channel, action.value)
        for user in users
        for channel in channels
        for action in ChannelAction
    ]


@invalidations.kind(FORGET)
async def _redo_forget(target: invalidations.RedoTarget, payload: dict[str, Any]) -> None:
    keys = acl_keys(target.keys, str(payload["workspace_id"]), map(str, payload["user_ids"]))
    if keys:
        await target.redis.delete(*keys)


def membership_changed(
    ctx: Context,
    workspace_id: uuid.UUID,
    user_ids: Iterable[uuid.UUID | str],
    *,
    revoked: bool,
) -> None:
    """After commit: tell the hubs — to unsubscribe the users if ``revoked``, else to stop
    trusting their cached answers — and forget those answers (for sure: see above)."""
    users = [str(u) for u in user_ids]
    if not users:
        return
    if ctx.publish is not None:  # first: see the module's docstring
        publish = ctx.publish
        channels = channels_of(workspace_id)
        kind = MembershipRevoked if revoked else MembershipChanged

        async def tell() -> None:
            for user in users:
                message = kind(user_id=user, channels=channels)
                await publish(
                    ctx.subjects.control_user(user), orjson.dumps(message.model_dump(mode="json"))
                )

        ctx.after_commit(tell)
    keys = acl_keys(ctx.keys, workspace_id, users)

    async def forget() -> None:
        await ctx.redis.delete(*keys)

    invalidations.after_commit(
        ctx,
        FORGET,
        {"workspace_id": str(workspace_id), "user_ids": users},
        forget,
        durable=True,
    )
