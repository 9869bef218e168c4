"""Channel permissions of a workspace's members, as the hubs see them.

``channels.authorize`` caches its answers in Redis (``RedisKeys.channel_acl``), where the
hubs look first. A membership change must therefore, after it commits:

1. delete the affected users' cached answers for ``workspace:<id>`` and ``chat:<id>``
   (both actions), so the next check asks the database again; and
2. when someone lost access (removed, left, workspace deleted), publish
   ``membership_revoked`` on ``ctl.user.<id>``, so every hub drops that user's
   subscriptions to those channels at once with an ``unsubscribed`` push.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import orjson

from handlers.context import Context
from hubbub.contracts.api.channels import ChannelAction
from hubbub.contracts.channels import Channel, ChannelKind
from hubbub.contracts.control import MembershipRevoked


def channels_of(workspace_id: uuid.UUID | str) -> tuple[str, ...]:
    name = str(workspace_id)
    return (str(Channel(ChannelKind.WORKSPACE, name)), str(Channel(ChannelKind.CHAT, name)))


def membership_changed(
    ctx: Context,
    workspace_id: uuid.UUID,
    user_ids: Iterable[uuid.UUID | str],
    *,
    revoked: bool,
) -> None:
    """After commit: forget the users' cached channel answers; if ``revoked``, tell the
    hubs to unsubscribe them."""
    users = [str(u) for u in user_ids]
    channels = channels_of(workspace_id)
    keys = [
        ctx.keys.channel_acl(user, channel, action.value)
        for user in users
        for channel in channels
        for action in ChannelAction
    ]

    async def tell() -> None:
        if keys:
            await ctx.redis.delete(*keys)
        if revoked and ctx.publish is not None:
            for user in users:
                message = MembershipRevoked(user_id=user, channels=channels)
                await ctx.publish(
                    ctx.subjects.control_user(user), orjson.dumps(message.model_dump(mode="json"))
                )

    ctx.after_commit(tell)
