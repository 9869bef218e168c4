"""The hub's in-memory deny-list: revoked sessions and deactivated users.

Access tokens are checked without any I/O, so revocation reaches the hub as data: the
workers write every revoked session id (and deactivated user id) into Redis and publish
a control message on ``ctl.user.<user_id>``. Message shapes (``hubbub.contracts.control``)::

    {"type": "sessions_revoked", "user_id": "...", "sids": ["...", ...], "until": <unix s>}
    {"type": "deactivated", "user_id": "...", "until": <unix s>}
    {"type": "reactivated", "user_id": "..."}

``start`` subscribes to ``ctl.user.*`` *first* and then loads, so nothing revoked in
between is missed; messages that arrive while a load is under way are applied at once
and again over the loaded snapshot. After a NATS reconnect (messages may have been lost
while disconnected) the hub loads again in the background, and the realtime service's
periodic re-check (``hub/ws/recheck.py``) loads too, then closes the sockets the list
now denies; ``synced`` is false while the last load failed, and ``behind`` is true from a
reconnect (or a start that could not load) until a load succeeds — the hub is not ready
meanwhile (hub/health.py): it may let pass a token revoked while its link was down. A
load that ends ``behind`` calls ``on_caught_up`` (the re-check closes the sockets it
denies). An entry is dropped once its ``until`` has passed: by then every token that
could carry it has expired.

A load is two reads. Redis holds the deny-list the workers wrote. But a worker's write
can fail — Redis down, or refusing writes (a read-only replica after a failover,
MISCONF, out of memory) — and is then kept in PostgreSQL until Redis takes it
(``handlers/invalidations.py``): a hub that missed the control message meanwhile would
take Redis's word for it. So a load first asks the workers what is still pending
(``access.pending``, ``hubbub/contracts/api/access.py``): revoked sessions, deactivated
users, and the (user, channel) pairs whose cached channel answers a membership change is
still to delete, which the ``ChannelAuthorizer`` asks a worker about rather than believe
Redis (``unsettled``). The workers first, Redis second: a row that they redo (and
delete) in between is in Redis by then. A load that could not ask the workers (none
answers) or read Redis has failed — what it did get is merged all the same.

A load adds to what the hub holds; it takes away only a deactivation that a load from
Redis has shown and the next no longer shows (a reactivation whose message this hub
missed). A revoked session is never un-revoked, and a deactivation this hub heard of (or
was told is pending) but no load has shown yet stays until Redis shows it or its
``until`` passes: a load must not give access back that a message took. The price,
failing closed: a user reactivated before any load showed the deactivation, while this
hub missed the reactivation's message, stays denied here until that ``until`` (at most
the access tokens' lifetime after the deactivation).

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
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError
from redis.asyncio import Redis

from hubbub.bus import Bus
from hubbub.contracts.api import access as access_api
from hubbub.contracts.control import (
    DEACTIVATED_USERS,
    REVOKED_SESSIONS,
    ControlMessage,
    Deactivated,
    Reactivated,
    SessionsRevoked,
    control_message,
)
from hubbub.contracts.errors import HubbubError, NotFound, Unavailable
from hubbub.contracts.subjects import Subjects
from hubbub.dependencies import redis_outage
from hubbub.keys import RedisKeys
from hubbub.nats_barrier import server_has_read
from hubbub.tasks import cancel_and_wait

log = logging.getLogger(__name__)

Listener = Callable[[ControlMessage], Awaitable[None] | None]


CATCH_UP_FIRST_S = 0.5  # behind: the first pause between two loads, doubling…
CATCH_UP_MAX_S = 5.0  # …up to this
# A hub starting waits this long at most for a worker to say what is pending (one that
# starts before its workers then starts behind, and asks again in the background).
START_ASK_S = 1.0
MAX_PAGES = 200  # of ``access.pending``: past it, the workers' answer is not taken


@dataclass(frozen=True, slots=True)
class Pending:
    """What the workers said is taken away but not in Redis yet (``access.pending``)."""

    sessions: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()
    channels: frozenset[tuple[str, str]] = frozenset()  # (user id, channel)
    until: float = 0.0  # unix time until which the sessions and users are denied


# Asks the workers (every page), within the timeout given (None: the operation's own).
PendingSource = Callable[[float | None], Awaitable[Pending]]


def ask_workers(bus: Bus) -> PendingSource:
    """``access.pending`` through ``bus``, every page of it."""
    old_workers_said = False

    async def ask(timeout: float | None) -> Pending:
        nonlocal old_workers_said
        sessions: set[str] = set()
        users: set[str] = set()
        channels: set[tuple[str, str]] = set()
        until, after = 0.0, 0
        for _ in range(MAX_PAGES):
            try:
                reply = await bus.request(
                    access_api.pending, {"after": after}, caller=None, timeout=timeout
                )
            except NotFound:
                # Workers of a version without the operation (a rolling deploy): what Redis
                # shows is all this hub can know, as before the operation existed.
                if not old_workers_said:
                    old_workers_said = True
                    log.warning("the workers do not know access.pending yet: Redis alone is read")
                return Pending()
            page: access_api.PendingAccess = reply.value
            sessions.update(page.sessions)
            users.update(page.users)
            channels.update((user, name) for user, names in page.channels.items() for name in names)
            until = max(until, page.until)
            if page.after is None:
                return Pending(frozenset(sessions), frozenset(users), frozenset(channels), until)
            after = page.after
        raise Unavailable(f"more than {MAX_PAGES} pages of access changes wait for Redis")

    return ask


class Revocations:
    def __init__(
        self,
        *,
        nc: NATS,
        redis: Redis,
        keys: RedisKeys,
        subjects: Subjects,
        pending: PendingSource,
        prune_interval: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.nc = nc
        self.redis = redis
        self.keys = keys
        self.subjects = subjects
        self.pending = pending
        self.prune_interval = prune_interval
        self.clock = clock
        self.sessions: dict[str, float] = {}  # sid → until
        self.users: dict[str, float] = {}  # user id → until
        # Deactivations heard by message (or from the workers) that no load from Redis
        # has shown yet.
        self._unconfirmed: dict[str, float] = {}
        # (user id, channel) pairs whose cached channel answers are still to be deleted,
        # as the workers said at the last load that could ask them.
        self._unsettled: frozenset[tuple[str, str]] = frozenset()
        self.listeners: list[Listener] = []
        self.on_caught_up: list[Callable[[], None]] = []  # called when no longer behind
        self._during_load: list[ControlMessage] | None = None
        self._load_lock = asyncio.Lock()
        self._sub: Subscription | None = None
        self._pruner: asyncio.Task[None] | None = None
        self.synced = False  # the last load (the workers, then Redis) succeeded
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

    def unsettled(self, user_id: str, channel: str) -> bool:
        """Whether a change of ``user_id``'s membership behind ``channel`` still waits to
        delete the cached answers in Redis: they may say what no longer holds."""
        return bool(self._unsettled) and (user_id, channel) in self._unsettled

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe, then load. With Redis unreachable, or no worker to say what is
        pending (within ``START_ASK_S``), the hub starts all the same — behind (not ready:
        it would let pass what was revoked before it started), loading again until it
        succeeds, as after a reconnect; one warning says so."""
        self._sub = await self.nc.subscribe(self.subjects.control_users, cb=self._on_message)
        await server_has_read(self.nc)  # a flush alone can return before the server has the SUB
        try:
            await self.reload(timeout=START_ASK_S)
        except Exception as exc:
            why = _why_not_loaded(exc)
            if why is None:
                raise
            log.warning(
                "deny-list not loaded, %s: %s: %s; not ready until it loads",
                why,
                type(exc).__name__,
                exc,
            )
            self.behind = True
            self._catching_up = asyncio.create_task(
                self._catch_up(CATCH_UP_FIRST_S, said=True), name="revocations-catch-up"
            )
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
        behind until a load that began after this reconnect has succeeded. The loads run
        in the background — at once, then again with backoff while they fail (no worker
        answers yet, Redis is down) — since the NATS client awaits its hooks."""
        self._reconnects += 1
        self.behind = True
        if self._catching_up is not None:
            self._catching_up.cancel()  # a newer outage: start over, at once
        self._catching_up = asyncio.create_task(
            self._catch_up(0.0, said=False), name="revocations-catch-up"
        )

    async def _catch_up(self, pause: float, *, said: bool) -> None:
        """Load after ``pause``, and again, backing off up to ``CATCH_UP_MAX_S``, until
        no longer behind. The first failure is one warning, unless ``said`` already."""
        try:
            while self.behind:
                await asyncio.sleep(pause)
                pause = min(max(pause * 2, CATCH_UP_FIRST_S), CATCH_UP_MAX_S)
                try:
                    await self.reload()
                except Exception as exc:
                    if said:
                        continue
                    said = True
                    why = _why_not_loaded(exc)
                    if why is None:
                        log.exception("reloading the deny-list failed; trying again")
                    else:
                        log.warning(
                            "deny-list not reloaded after a NATS reconnect, %s: %s: %s;"
                            " not ready until it loads",
                            why,
                            type(exc).__name__,
                            exc,
                        )
        finally:
            if self._catching_up is asyncio.current_task():
                self._catching_up = None

    async def reload(self, *, timeout: float | None = None) -> None:
        """Merge what the workers say is pending, then Redis's deny-list, into this
        hub's (the module's docstring), keeping what arrives meanwhile. ``timeout``
        bounds the workers' answer (None: the operation's own). Raises what failed
        (Redis's failure over the workers') after merging what did not."""
        async with self._load_lock:
            was_synced = self.synced
            reconnects = self._reconnects  # a load begun before a reconnect misses its loss
            self._during_load = []
            pending: Pending | None = None
            shown: tuple[dict[str, float], dict[str, float]] | None = None
            failure: Exception | None = None
            try:
                try:
                    pending = await self.pending(timeout)  # first: see the module's docstring
                except Exception as exc:
                    failure = exc
                now = self.clock()
                try:
                    shown = (
                        await self._read(REVOKED_SESSIONS, now),
                        await self._read(DEACTIVATED_USERS, now),
                    )
                except Exception as exc:
                    failure = exc
            except BaseException:
                self.synced = False
                raise
            finally:
                arrived, self._during_load = self._during_load, None
            shown_users: set[str] = set()
            if shown is not None:
                sessions, users = shown
                shown_users = set(users)
                for sid, until in self.sessions.items():
                    if until > sessions.get(sid, 0.0):
                        sessions[sid] = until
                self.sessions, self.users = sessions, users
            if pending is not None:
                self._take_pending(pending)
            for message in arrived:
                self.apply(message)
            for user_id, until in list(self._unconfirmed.items()):
                if user_id in shown_users or until <= now:
                    del self._unconfirmed[user_id]  # shown by Redis, or over
                else:
                    self.users[user_id] = until
            if failure is not None:
                self.synced = False
                raise failure
            self.synced = True
            caught_up = self.behind and reconnects == self._reconnects
            if caught_up:
                self.behind = False
        # Said once at start and once after a failed load; the periodic reloads are quiet.
        log.log(
            logging.DEBUG if was_synced else logging.INFO,
            "deny-list loaded",
            extra={
                "sessions": len(self.sessions),
                "users": len(self.users),
                "unsettled_channels": len(self._unsettled),
            },
        )
        if caught_up:
            for hook in list(self.on_caught_up):
                try:
                    hook()
                except Exception:
                    log.exception("a deny-list catch-up hook failed")

    def _take_pending(self, pending: Pending) -> None:
        for sid in pending.sessions:
            self.sessions[sid] = max(pending.until, self.sessions.get(sid, 0.0))
        for user_id in pending.users:  # as if heard: kept until Redis shows it
            until = max(pending.until, self._unconfirmed.get(user_id, 0.0))
            self._unconfirmed[user_id] = self.users[user_id] = until
        self._unsettled = pending.channels

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


def _why_not_loaded(exc: BaseException) -> str | None:
    """What kept a load from succeeding, if it was an outage; None for a bug."""
    if redis_outage(exc) is not None:
        return "Redis unreachable"
    if isinstance(exc, HubbubError):  # the bus's: no worker answered, or not in time
        return "no worker answered"
    return None
