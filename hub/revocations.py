"""The hub's in-memory deny-list: revoked sessions and deactivated users.

Access tokens are checked without any I/O, so revocation reaches the hub as data: the
workers write every revoked session id (and deactivated user id) into Redis and publish
a control message on ``ctl.user.<user_id>``. Message shapes (``hubbub.contracts.control``)::

    {"type": "sessions_revoked", "user_id": "...", "sids": ["...", ...], "until": <unix s>}
    {"type": "deactivated", "user_id": "...", "until": <unix s>}
    {"type": "reactivated", "user_id": "..."}

``start`` subscribes to ``ctl.user.*`` *first* and then loads the sorted sets from Redis, so
nothing revoked in between is missed; messages that arrive while a load is under way
are applied at once and again over the loaded snapshot. After a NATS reconnect the hub
calls ``reload`` (messages may have been lost while disconnected), and the realtime
service's periodic re-check (``hub/ws/recheck.py``) calls it too, then closes the
sockets the list now denies; ``synced`` is false while the last load failed, and
``behind`` is true from a reconnect (or a start with Redis unreachable) until a load
succeeds — the hub is not ready
meanwhile (hub/health.py): it may let pass a token revoked while its link was down. An entry is
dropped once its ``until`` has passed: by then every token that could carry it has
expired.

A load adds to what the hub holds; it takes away only a deactivation that a load from
Redis has shown and the next no longer shows (a reactivation whose message this hub
missed). A revoked session is never un-revoked, and a deactivation this hub heard of but
no load has shown yet (the worker's write failed and waits to be redone) stays until
Redis shows it or its ``until`` passes: a load must not give access back that a message
took. The price, failing closed: a user reactivated before any load showed the
deactivation, while this hub missed the reactivation's message, stays denied here until
that ``until`` (at most the access tokens' lifetime after the deactivation).

``listeners`` is the hook for the rest of the hub: each is called with every control
message after it is applied — the WebSocket layer uses it to close a deactivated
user's sockets, or the sockets of a revoked session. A listener may be sync or async;
one that raises is logged and the others still run.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError
from redis.asyncio import Redis

from hubbub.contracts.control import (
    DEACTIVATED_USERS,
    REVOKED_SESSIONS,
    ControlMessage,
    Deactivated,
    Reactivated,
    SessionsRevoked,
    control_message,
)
from hubbub.contracts.subjects import Subjects
from hubbub.dependencies import redis_outage
from hubbub.keys import RedisKeys
from hubbub.nats_barrier import server_has_read
from hubbub.tasks import cancel_and_wait

log = logging.getLogger(__name__)

Listener = Callable[[ControlMessage], Awaitable[None] | None]


CATCH_UP_MAX_S = 5.0  # behind after a reconnect: the longest pause between two loads


class Revocations:
    def __init__(
        self,
        *,
        nc: NATS,
        redis: Redis,
        keys: RedisKeys,
        subjects: Subjects,
        prune_interval: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.nc = nc
        self.redis = redis
        self.keys = keys
        self.subjects = subjects
        self.prune_interval = prune_interval
        self.clock = clock
        self.sessions: dict[str, float] = {}  # sid → until
        self.users: dict[str, float] = {}  # user id → until
        # Deactivations heard by message that no load from Redis has shown yet.
        self._unconfirmed: dict[str, float] = {}
        self.listeners: list[Listener] = []
        self._during_load: list[ControlMessage] | None = None
        self._load_lock = asyncio.Lock()
        self._sub: Subscription | None = None
        self._pruner: asyncio.Task[None] | None = None
        self.synced = False  # the last load from Redis succeeded
        # Control messages may have been lost (the NATS link dropped) and no load since
        # has caught up: revoked tokens could pass here. Readiness fails meanwhile.
        self.behind = False
        self._reconnects = 0  # how many reconnects there were: a load counts for those before it
        self._catching_up: asyncio.Task[None] | None = None  # loads retried while behind

    # --- the check, on every authenticated request ---------------------------------------

    def is_revoked(self, session_id: str, user_id: str) -> bool:
        now = self.clock()
        until = self.sessions.get(session_id)
        if until is not None and until > now:
            return True
        return self.is_deactivated(user_id)

    def is_deactivated(self, user_id: str) -> bool:
        until = self.users.get(user_id)
        return until is not None and until > self.clock()

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe, then load. With Redis unreachable the hub starts all the same —
        behind (not ready: it would let pass what was revoked before it started), loading
        again until it succeeds, as after a reconnect; one warning says so."""
        self._sub = await self.nc.subscribe(self.subjects.control_users, cb=self._on_message)
        await server_has_read(self.nc)  # a flush alone can return before the server has the SUB
        try:
            await self.reload()
        except Exception as exc:
            if redis_outage(exc) is None:
                raise
            log.warning(
                "deny-list not loaded, Redis unreachable: %s: %s; not ready until it loads",
                type(exc).__name__,
                exc,
            )
            self.behind = True
            self._catching_up = asyncio.create_task(self._catch_up(), name="revocations-catch-up")
        self._pruner = asyncio.create_task(self._prune_forever(), name="revocations-prune")

    async def stop(self) -> None:
        pruner, self._pruner = self._pruner, None
        await cancel_and_wait(pruner)
        catching_up, self._catching_up = self._catching_up, None
        await cancel_and_wait(catching_up)
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def after_reconnect(self) -> None:
        """The NATS reconnect hook: messages may have been lost while the link was down;
        behind until a load that began after this reconnect has succeeded — this one, or
        one of those tried again while it fails (Redis down), soon after Redis is back."""
        self._reconnects += 1
        self.behind = True
        try:
            await self.reload()
        finally:
            if self.behind and self._catching_up is None:
                self._catching_up = asyncio.create_task(
                    self._catch_up(), name="revocations-catch-up"
                )

    async def _catch_up(self) -> None:
        """Load again, backing off up to ``CATCH_UP_MAX_S``, until no longer behind."""
        pause = 0.5
        try:
            while self.behind:
                await asyncio.sleep(pause)
                pause = min(pause * 2, CATCH_UP_MAX_S)
                with contextlib.suppress(Exception):  # Redis still away: said once already
                    await self.reload()
        finally:
            self._catching_up = None

    async def reload(self) -> None:
        """Merge Redis's deny-list into this hub's (the module's docstring), keeping what
        arrives meanwhile."""
        async with self._load_lock:
            was_synced = self.synced
            reconnects = self._reconnects  # a load begun before a reconnect misses its loss
            self._during_load = []
            try:
                now = self.clock()
                sessions = await self._read(REVOKED_SESSIONS, now)
                users = await self._read(DEACTIVATED_USERS, now)
            except BaseException:
                self.synced = False
                raise
            finally:
                arrived, self._during_load = self._during_load, None
            for sid, until in self.sessions.items():
                if until > sessions.get(sid, 0.0):
                    sessions[sid] = until
            shown = set(users)
            self.sessions, self.users = sessions, users
            self.synced = True
            if reconnects == self._reconnects:
                self.behind = False
            for message in arrived:
                self.apply(message)
            for user_id, until in list(self._unconfirmed.items()):
                if user_id in shown or until <= now:
                    del self._unconfirmed[user_id]  # shown by Redis, or over
                else:
                    users[user_id] = until
        # Said once at start and once after a failed load; the periodic reloads are quiet.
        log.log(
            logging.DEBUG if was_synced else logging.INFO,
            "deny-list loaded",
            extra={"sessions": len(self.sessions), "users": len(self.users)},
        )

    # --- messages ------------------------------------------------------------------------

    def apply(self, message: ControlMessage) -> None:
        if isinstance(message, SessionsRevoked):
            for sid in message.sids:
                self.sessions[sid] = max(message.until, self.sessions.get(sid, 0.0))
        elif isinstance(message, Deactivated):
            self.users[message.user_id] = self._unconfirmed[message.user_id] = message.until
        elif isinstance(message, Reactivated):
            self.users.pop(message.user_id, None)
            self._unconfirmed.pop(message.user_id, None)

    async def _on_message(self, msg: Msg) -> None:
        try:
            message = control_message.validate_json(msg.data)
        except ValidationError:
            log.warning("ignored a malformed control message", extra={"subject": msg.subject})
            return
        self.apply(message)
        if self._during_load is not None:
            self._during_load.append(message)
        for listener in list(self.listeners):
            try:
                result = listener(message)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("a revocation listener failed")

    # --- housekeeping --------------------------------------------------------------------

    def prune(self) -> int:
        now = self.clock()
        gone = 0
        for table in (self.sessions, self.users):
            expired = [key for key, until in table.items() if until <= now]
            for key in expired:
                del table[key]
            gone += len(expired)
        return gone

    async def _prune_forever(self) -> None:
        while True:
            await asyncio.sleep(self.prune_interval)
            self.prune()

    async def _read(self, parts: tuple[str, str], now: float) -> dict[str, float]:
        rows = await self.redis.zrangebyscore(
            self.keys.key(*parts), f"({now}", "+inf", withscores=True
        )
        return {_text(row[0]): float(row[1]) for row in rows}


def _text(member: object) -> str:
    return member.decode() if isinstance(member, bytes) else str(member)
