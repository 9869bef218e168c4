"""The channel commands that are not a subscription: ``publish``, ``presence`` and
``history``. Each is checked by the channel authorizer (``authz.py``) first.

``publish`` spends the user's budget of published bytes on this hub
(``HUBBUB_WS_PUBLISH_BYTES_PER_USER``, a token bucket; the size counted is the stored
publication's JSON): over it, ``rate_limited`` with ``details.retry_after`` (seconds,
fractional) and nothing is published; a publication larger than the whole budget is
``too_large``; one the channel history refused, or that never reached it, costs nothing
(nor does one too large to store: over NATS's ``max_payload``, headers and all).
Like the socket cap, the budget is per hub.
"""

from __future__ import annotations

import math
import time
from typing import Any

from nats.aio.client import Client as NATS

from hub import publications
from hub.ws import commands as cmd
from hub.ws import frames
from hub.ws.authz import ChannelAuthorizer
from hub.ws.connection import Connection
from hub.ws.history import History
from hub.ws.limits import ByteBudgets
from hub.ws.presence import Presence
from hub.ws.subscriptions import MAX_RECOVERY_BYTES
from hubbub.config import Settings
from hubbub.contracts.api.channels import ChannelAction
from hubbub.contracts.channels import Channel, ChannelKind, ChannelPolicy
from hubbub.contracts.errors import BadRequest, Conflict, RateLimited, TooLarge
from hubbub.contracts.subjects import Subjects

MAX_HISTORY_BYTES = 1024 * 1024  # one history reply; page on with since
# Presence replies and recoveries not counted against a socket's send limits, on their
# way at once: the recoveries' own bound.
MAX_UNCOUNTED_BYTES = MAX_RECOVERY_BYTES
PRESENCE_RETRY_AFTER_S = 1.0  # a presence refused for that: ask again after this


class ChannelCommands:
    def __init__(
        self,
        *,
        settings: Settings,
        nc: NATS,
        subjects: Subjects,
        history: History,
        authorizer: ChannelAuthorizer,
        presence: Presence,
        policies: dict[ChannelKind, ChannelPolicy],
    ) -> None:
        self.nc = nc
        self.subjects = subjects
        self.history = history
        self.authorizer = authorizer
        self.presence = presence
        self.policies = policies
        budget = settings.ws_publish_bytes_per_user
        self.budgets = ByteBudgets(budget.count, budget.per_s)

    async def publish(self, conn: Connection, command: cmd.Publish) -> dict[str, Any]:
        channel = Channel.parse(command.channel)
        assert conn.caller is not None
        await self.authorizer.check(conn.caller, channel, ChannelAction.PUBLISH)
        payload = publications.publication_json(
            {
                "type": "message",
                "from": conn.user_id,
                "at": round(time.time(), 3),
                "data": command.data,
            },
            ["data"],
        )
        budget = self.budgets
        if len(payload) > budget.burst:
            raise TooLarge(
                f"a publication of {len(payload)} bytes is over the budget of "
                f"{int(budget.burst)} bytes",
                limit=int(budget.burst),
            )
        wait = budget.take(conn.user_id, len(payload))
        if wait is not None:
            raise RateLimited(
                "over your budget of published bytes; slow down",
                retry_after=math.ceil(wait * 1000) / 1000,
            )
        # No de-duplication id: each publish command is a publication of its own (a
        # command id used again on this socket is not a retry, and a retry after a
        # reconnect comes on another socket).
        try:
            ack = await publications.store(self.nc, self.subjects.event(channel), payload)
        except (publications.NotStored, TooLarge):
            # Not stored (refused, never sent, or over NATS's max_payload as stored): the
            # retries it invites must not end in rate_limited. (One that may have been
            # stored, its acknowledgement late, keeps its cost: while JetStream is slow,
            # publishes in flight are stored all the same.)
            budget.give_back(conn.user_id, len(payload))
            raise
        return {"offset": ack.seq}

    async def presence_of(self, conn: Connection, command: cmd.Presence) -> None:
        """The channel's members (``Presence.snapshot``: shared by the sockets that ask
        within a tick). The reply is sent here, not counted against the socket's send
        limits while on its way, as a subscribe's recovery is not: a list of thousands
        of members in a slow client's buffer would otherwise have the next push close it
        (4009), to reconnect and ask for it again. What is not counted is bounded: while
        more than ``MAX_UNCOUNTED_BYTES`` would be on its way uncounted, ``rate_limited``
        (but a socket with nothing uncounted on its way is always answered)."""
        channel = Channel.parse(command.channel)
        if not self.policies[channel.kind].presence:
            raise BadRequest(f"{channel.kind.value} channels have no presence")
        assert conn.caller is not None
        await self.authorizer.check(conn.caller, channel, ChannelAction.SUBSCRIBE)
        reply = frames.result(command.id, await self.presence.snapshot(channel))
        pending = conn.recovery_pending()
        if pending and pending + len(reply) > MAX_UNCOUNTED_BYTES:
            raise RateLimited(
                "your earlier replies are still on their way; ask again",
                retry_after=PRESENCE_RETRY_AFTER_S,
            )
        conn.send_recovery(reply)

    async def history_of(self, conn: Connection, command: cmd.History) -> bytes:
        channel = Channel.parse(command.channel)
        assert conn.caller is not None
        await self.authorizer.check(conn.caller, channel, ChannelAction.SUBSCRIBE)
        epoch = await self.history.epoch(channel.kind)
        latest = await self.history.last_offset(channel)
        after = 0
        if command.since is not None:
            if command.since.epoch != epoch:
                raise Conflict("the channel's history was reset (epoch changed)", epoch=epoch)
            after = command.since.offset
        found = await self.history.after(channel, after, command.limit, MAX_HISTORY_BYTES)
        body = b'{"publications":[%s],"offset":%d,"epoch":"%s"}' % (
            b",".join(b'{"offset":%d,"data":%s}' % (p.offset, p.data) for p in found),
            latest,
            epoch.encode(),
        )
        return frames.result(command.id, body)
