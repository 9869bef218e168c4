"""May this caller subscribe to (or publish on) this channel?

``user:<id>`` is its own user's; ``public:`` and ``ticker:`` are any signed-in user's.
``workspace:`` and ``chat:`` need membership, which only the database knows: the hub
asks a worker (``channels.authorize``) and the worker caches the answer in Redis, where
the hub reads it first; a membership change deletes the cached answers. ``fresh=True``
skips that cache and asks a worker: the hub's re-check after a NATS outage
(``hub/ws/recheck.py``) trusts nothing cached from before.

A membership removed (the control message a worker sends, or this hub's re-check
finding it) or changed (a new role, a join: ``membership_changed``) makes the hub doubt
the cached answers for that user and channel for ``distrust_s`` (the answers' own
lifetime). The worker deletes them after its commit, but a delete that failed (Redis
unreachable from the worker, or refusing writes) is redone only when Redis takes it
again, and a Redis restarted from its old data holds them until then — a removed or
demoted member would otherwise be let in again meanwhile, and a new or promoted member
kept out. So while the pair is doubted the hub believes a cached answer only once a
worker, asked since the change, has given the same answer for that action: the first
check after the change asks a worker (whose answer it also caches), the following ones
read Redis again as long as it agrees. A stale answer never agrees — it says what the
worker no longer says — so it sends every check to a worker until it is gone; a fresh one
costs a single worker ask per action. An answer counts only if the pair was not changed
again while it was on its way (a newer change starts the doubt over). A hub that missed
the control message (it started, or its NATS link dropped, while Redis refused the
deletion) learns of the change from the workers instead: ``unsettled`` (the deny-list's,
``hub/revocations.py``) names the pairs whose deletion is still pending, and the hub asks
a worker about those every time.

Doubted pairs are kept in the order their doubt ends (each lasts ``distrust_s``), so the
ended ones are dropped from the front as new ones come. Past ``DISTRUSTED_MAX`` pairs
(a storm of changes: a large workspace deleted) the oldest pair's doubt widens to its
whole channel — every user's cached answers on it are not believed, until that pair's
doubt would have ended — and past ``DISTRUSTED_CHANNELS_MAX`` such channels to every
members-only channel: memory stays bounded, and nothing doubted is ever believed early.

Redis is only a shortcut here: when it cannot be read (down, restarting, its pool
exhausted) the hub asks the worker, whose answer comes from the database — or, if no
worker can answer, the request fails with ``unavailable`` like any other; never an
internal error. One warning when the cache becomes unreadable, one line when it is
readable again.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
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


DISTRUSTED_MAX = 100_000  # (user, channel) pairs doubted at once; past it, whole channels
DISTRUSTED_CHANNELS_MAX = 10_000  # whole channels doubted at once; past it, all of them


class _Doubt:
    """A doubted (user, channel) pair: until when, and what workers answered since the
    change (action → allowed). Replaced, not updated, by a newer change: an answer asked
    under an older one lands in the old object."""

    __slots__ = ("answers", "until")

    def __init__(self, until: float) -> None:
        self.until = until
        self.answers: dict[ChannelAction, bool] = {}


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
        # Each in the order its doubt ends (all last ``distrust_s``): (user id, channel) →
        # its doubt; a channel → until when no cached answer on it is believed.
        self._distrusted: OrderedDict[tuple[str, str], _Doubt] = OrderedDict()
        self._distrusted_channels: OrderedDict[str, float] = OrderedDict()
        self._distrust_all_until = float("-inf")  # no cached answer believed until then

    def membership_removed(self, user_id: str, channel: Channel) -> None:
        """Doubt the cached answers about ``user_id`` on ``channel`` for ``distrust_s``."""
        self.membership_changed(user_id, channel)

    def membership_changed(self, user_id: str, channel: Channel) -> None:
        """The same: ``user_id``'s role changed (or they joined), and the cached answers
        may say what the old role could (or could not) do."""
        now = self.clock()
        self._expire(now)
        key = (user_id, str(channel))
        self._distrusted.pop(key, None)
        self._distrusted[key] = _Doubt(now + self.distrust_s)
        if len(self._distrusted) > DISTRUSTED_MAX:
            (_, name), oldest = self._distrusted.popitem(last=False)
            self._distrust_channel(name, oldest.until)

    def _distrust_channel(self, name: str, until: float) -> None:
        until = max(until, self._distrusted_channels.pop(name, until))
        self._distrusted_channels[name] = until
        if len(self._distrusted_channels) > DISTRUSTED_CHANNELS_MAX:
            _, oldest = self._distrusted_channels.popitem(last=False)
            self._distrust_all_until = max(self._distrust_all_until, oldest)

    def _expire(self, now: float) -> None:
        """Drop the doubts that have ended: they are at the front."""
        pairs, channels = self._distrusted, self._distrusted_channels
        while pairs and next(iter(pairs.values())).until <= now:
            pairs.popitem(last=False)
        while channels and next(iter(channels.values())) <= now:
            channels.popitem(last=False)

    def _doubt(self, user_id: str, channel: str, now: float) -> _Doubt | None:
        doubt = self._distrusted.get((user_id, channel))
        return doubt if doubt is not None and doubt.until > now else None

    def _doubts_channel(self, channel: str, now: float) -> bool:
        if self._distrust_all_until > now:
            return True
        return bool(self._distrusted_channels) and (
            self._distrusted_channels.get(channel, now) > now
        )

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
        now = self.clock()
        doubt = self._doubt(user_id, name, now) if self._distrusted else None
        trust = not (
            fresh
            or self._doubts_channel(name, now)
            or (self.unsettled is not None and self.unsettled(user_id, name))
        )
        cached: bytes | None = None
        if doubt is None:
            cached = await self._cached(cache_key) if trust else None
        else:
            # Believed only where a worker, asked since the change, said the same.
            known = doubt.answers.get(action)
            if trust and known is not None:
                cached = await self._cached(cache_key)
                if cached is not None and (cached == b"1") != known:
                    cached = None
        if cached is None:
            reply = await self.bus.request(
                channels_api.authorize,
                {"user_id": user_id, "channel": str(channel), "action": action.value},
                caller=None,
            )
            allowed = bool(reply.value.allowed)
            if doubt is not None:
                doubt.answers[action] = allowed
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
