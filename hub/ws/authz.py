"""May this caller subscribe to (or publish on) this channel?

``user:<id>`` is its own user's; ``public:`` and ``ticker:`` are any signed-in user's.
``workspace:`` and ``chat:`` need membership, which only the database knows: the hub
asks a worker (``channels.authorize``) and the worker caches the answer in Redis, where
the hub reads it first; a membership change deletes the cached answers. ``fresh=True``
skips that cache and asks a worker: the hub's re-check after a NATS outage
(``hub/ws/recheck.py``) trusts nothing cached from before.

A membership removed (the control message a worker sends, or this hub's re-check
finding it) or changed (a new role: ``membership_changed``) makes the hub distrust the
cached answers for that user and channel for ``distrust_s`` (the answers' own lifetime):
it asks a worker instead. The worker deletes
them after its commit, but a delete that failed (Redis unreachable from the worker) is
redone only when Redis answers the worker again, and a Redis restarted from its old data
holds them until then — a removed member would otherwise be let in again meanwhile. A
hub that missed the control message (it started, or its NATS link dropped, while Redis
refused the deletion) learns of the change from the workers instead: ``unsettled`` (the
deny-list's, ``hub/revocations.py``) names the pairs whose deletion is still pending, and
the hub asks a worker about those too.

Redis is only a shortcut here: when it cannot be read (down, restarting, its pool
exhausted) the hub asks the worker, whose answer comes from the database — or, if no
worker can answer, the request fails with ``unavailable`` like any other; never an
internal error. One warning when the cache becomes unreadable, one line when it is
readable again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from hubbub.bus import Bus
from hubbub.contracts.api import channels as channels_api
from hubbub.contracts.api.channels import ChannelAction
from hubbub.contracts.channels import Channel, ChannelKind, ChannelPolicy, SubscribeRule
from hubbub.contracts.envelope import Caller
from hubbub.contracts.errors import Forbidden, Unauthorized
from hubbub.keys import RedisKeys

log = logging.getLogger(__name__)


DISTRUSTED_MAX = 100_000  # removals remembered at once; past it, the expired are dropped


class ChannelAuthorizer:
    def __init__(
        self,
        bus: Bus,
        redis: Redis,
        keys: RedisKeys,
        policies: dict[ChannelKind, ChannelPolicy],
        *,
        distrust_s: float = 300.0,
        unsettled: Callable[[str, str], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bus = bus
        self.redis = redis
        self.keys = keys
        self.policies = policies
        self.distrust_s = distrust_s
        self.unsettled = unsettled  # (user id, channel) → its cached answers may be stale
        self.clock = clock
        self._cache_unreadable = False
        # (user id, channel) → until when cached answers for it are not believed.
        self._distrusted: dict[tuple[str, str], float] = {}

    def membership_removed(self, user_id: str, channel: Channel) -> None:
        """Ask a worker, not Redis, about ``user_id`` on ``channel`` for ``distrust_s``."""
        self.membership_changed(user_id, channel)

    def membership_changed(self, user_id: str, channel: Channel) -> None:
        """The same: ``user_id``'s role changed, and the cached answers may say what
        the old role could do."""
        now = self.clock()
        if len(self._distrusted) >= DISTRUSTED_MAX:
            self._distrusted = {k: t for k, t in self._distrusted.items() if t > now}
        self._distrusted[user_id, str(channel)] = now + self.distrust_s

    def _distrusts(self, user_id: str, channel: str) -> bool:
        until = self._distrusted.get((user_id, channel))
        if until is None:
            return False
        if until > self.clock():
            return True
        del self._distrusted[user_id, channel]
        return False

    async def check(
        self, caller: Caller, channel: Channel, action: ChannelAction, *, fresh: bool = False
    ) -> None:
        """Return if allowed; raise ``Forbidden`` (or ``Unauthorized``) if not. ``fresh``:
        ask a worker even when Redis holds an answer."""
        if not self.allowed_by_policy(caller, channel, action):
            assert caller.user_id is not None  # a user: allowed_by_policy checked
            await self._member(caller.user_id, channel, action, fresh)

    def allowed_by_policy(self, caller: Caller, channel: Channel, action: ChannelAction) -> bool:
        """``check`` without I/O: True when the channel's policy alone allows ``caller``,
        False when membership decides (which only ``check`` asks); raises ``Forbidden``
        (or ``Unauthorized``) when the policy refuses."""
        user_id = caller.user_id
        if not caller.is_user or user_id is None:
            raise Unauthorized("sign in first")
        policy = self.policies[channel.kind]
        if action is ChannelAction.PUBLISH and not policy.client_publish:
            raise Forbidden(
                f"clients cannot publish on {channel.kind.value} channels", channel=str(channel)
            )
        rule = policy.subscribe
        if rule is SubscribeRule.ANY_USER:
            return True
        if rule is SubscribeRule.SELF:
            if channel.name != user_id:
                raise Forbidden("that is another user's channel", channel=str(channel))
            return True
        return False

    async def _member(
        self, user_id: str, channel: Channel, action: ChannelAction, fresh: bool
    ) -> None:
        name = str(channel)
        cache_key = self.keys.channel_acl(user_id, name, action.value)
        trust = not (
            fresh
            or (self._distrusted and self._distrusts(user_id, name))
            or (self.unsettled is not None and self.unsettled(user_id, name))
        )
        cached = await self._cached(cache_key) if trust else None
        if cached is None:
            reply = await self.bus.request(
                channels_api.authorize,
                {"user_id": user_id, "channel": str(channel), "action": action.value},
                caller=None,
            )
            allowed = bool(reply.value.allowed)
        else:
            allowed = cached == b"1"
        if not allowed:
            raise Forbidden("you are not allowed on this channel", channel=str(channel))

    async def _cached(self, key: str) -> bytes | None:
        """The cached answer, or None when there is none or Redis cannot say."""
        try:
            value = await self.redis.get(key)
        except (RedisError, OSError) as exc:
            if not self._cache_unreadable:
                self._cache_unreadable = True
                log.warning("channel answers are asked of the workers: Redis: %r", exc)
            return None
        if self._cache_unreadable:
            self._cache_unreadable = False
            log.info("channel answers are read from Redis again")
        return value if isinstance(value, bytes) else None
