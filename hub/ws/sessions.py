"""Who is on this hub's sockets: ``connect``, ``refresh``, token expiry, leaving, and
closing the sockets whose access ended.

The token of ``connect`` and ``refresh`` is checked by ``hub.calls.verify`` — the same
check a REST request's bearer token gets — and becomes the socket's caller, the one
``hub.calls.caller_of`` makes (``socket_caller``), with the client IP the endpoint read
(trusted proxies included, ``hub/client_ip.py``).

One user may have at most ``HUBBUB_MAX_SOCKETS_PER_USER`` sockets on one hub: the
``connect`` of one more is answered ``rate_limited`` (``details.limit``) and the socket
closed with 4008. The count is per hub (no round trip to Redis per connect, nothing to
clean up after a hub that died); behind N hubs a user may hold up to N times the cap.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections.abc import Callable
from typing import Any

from hub import calls
from hub.revocations import Revocations
from hub.ws import commands as cmd
from hub.ws import frames
from hub.ws.connection import Connection
from hubbub.config import Settings
from hubbub.contracts.control import ControlMessage, Deactivated, SessionsRevoked
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.errors import Forbidden, RateLimited, Unauthorized
from hubbub.contracts.protocol import CloseCode, Push
from hubbub.tokens import AccessClaims, AccessTokens

# The fields a user caller sets, one set for all sockets' callers: pydantic keeps a
# model's set fields in a set of its own (728 bytes for these five), and a socket keeps
# its caller as long as it lives. Never mutated: a frozen model is never assigned to,
# and ``model_copy`` copies the set before it updates it.
_USER_CALLER_FIELDS = {"kind", "user_id", "role", "session_id", "ip"}


def socket_caller(claims: AccessClaims, ip: str | None) -> Caller:
    """The socket's caller: equal to ``hub.calls.caller_of(claims, ip)`` (the same JSON,
    the same signature), built without validating again what the token's verification
    already validated, and without a set of its own.

    One caller for all the sockets of the same user, role, session and address (a
    user's tabs, a reconnect storm): a caller is frozen, and these five fields are all
    it holds, so sockets can share it; their access is still checked per socket (its
    session against the deny-list on every command). The cache starts over when it is
    full: a caller is kept alive by its sockets, not by the cache."""
    key = (claims.sub, claims.role, claims.sid, ip)
    caller = _callers.get(key)
    if caller is None:
        caller = Caller.model_construct(
            _USER_CALLER_FIELDS,
            kind=CallerKind.USER,
            user_id=claims.sub,
            role=claims.role,
            session_id=claims.sid,
            ip=ip,
        )
        if len(_callers) >= CALLER_CACHE_SIZE:
            _callers.clear()
        _callers[key] = caller
    return caller


CALLER_CACHE_SIZE = 4096  # socket callers remembered for the next socket of the same session
_callers: dict[tuple[str, str, str, str | None], Caller] = {}


DEADLINE_RESOLUTION_S = 0.5  # a token deadline fires up to this late, never early


class Deadlines:
    """The sockets' token deadlines (the ``expiring`` warning, the close at expiry) on one
    loop timer for the whole hub, instead of two timer handles per socket.

    A deadline goes into the bucket of its ``DEADLINE_RESOLUTION_S`` slot (rounded up);
    the timer is set for the earliest slot. A connection keeps its own deadlines
    (``warn_at``, ``expire_at``, in loop time; 0: none), from which its buckets follow:
    re-arming (``refresh``) and leaving take it out of them, so a bucket never keeps a
    closed connection (and its socket's objects) alive until its token would expire.
    ``Sessions`` puts a connection in one bucket at a time: its warning's, and once that
    fired, its expiry's."""

    __slots__ = ("buckets", "fire", "slots", "timer")

    def __init__(self, fire: Callable[[Connection, float], None]) -> None:
        self.fire = fire  # called with each connection of a slot that fell due
        self.buckets: dict[int, dict[Connection, None]] = {}
        self.slots: list[int] = []  # heap of the buckets' slots
        self.timer: asyncio.TimerHandle | None = None

    def add(self, conn: Connection, when: float) -> None:
        slot = math.ceil(when / DEADLINE_RESOLUTION_S)
        bucket = self.buckets.get(slot)
        if bucket is not None:
            bucket[conn] = None
            return
        self.buckets[slot] = {conn: None}
        heapq.heappush(self.slots, slot)
        if self.slots[0] == slot:
            self._arm()

    def discard(self, conn: Connection) -> None:
        """Take ``conn``'s deadlines out of their buckets and forget them."""
        for when in (conn.warn_at, conn.expire_at):
            if when:
                bucket = self.buckets.get(math.ceil(when / DEADLINE_RESOLUTION_S))
                if bucket is not None:
                    bucket.pop(conn, None)
        conn.warn_at = conn.expire_at = 0.0

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = None
        if self.slots:
            at = self.slots[0] * DEADLINE_RESOLUTION_S
            self.timer = asyncio.get_running_loop().call_at(at, self._due)

    def _due(self) -> None:
        self.timer = None
        now = asyncio.get_running_loop().time()
        while self.slots and self.slots[0] * DEADLINE_RESOLUTION_S <= now:
            for conn in self.buckets.pop(heapq.heappop(self.slots), ()):
                self.fire(conn, now)
        self._arm()

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.buckets.clear()
        self.slots.clear()


class Sessions:
    def __init__(self, settings: Settings, tokens: AccessTokens, revocations: Revocations) -> None:
        self.settings = settings
        self.tokens = tokens
        self.revocations = revocations
        self.connections: set[Connection] = set()
        self.by_user: dict[str, set[Connection]] = {}
        self.emptied = asyncio.Event()
        self.stats = {"connects": 0}
        self.deadlines = Deadlines(self._due)

    def authenticate(self, token: str) -> AccessClaims:
        """The token's claims, if it verifies and its session is not revoked (no I/O)."""
        return calls.verify(self.tokens, self.revocations, token)

    def admit(self, claims: AccessClaims) -> None:
        """``RateLimited`` when the claims' user already has the most sockets allowed
        here."""
        cap = self.settings.max_sockets_per_user
        if len(self.by_user.get(claims.sub, ())) >= cap:
            raise RateLimited(
                f"at most {cap} open sockets per user on this hub; close one first",
                limit=cap,
                retry_after=1,
            )

    def register(self, conn: Connection, claims: AccessClaims) -> dict[str, Any]:
        """Make ``conn`` the socket of the claims' user; the ``connect`` result.
        ``RateLimited`` when the user already has the most sockets allowed here."""
        self.admit(claims)
        conn.user_id = claims.sub
        conn.session_id = claims.sid
        conn.caller = socket_caller(claims, conn.ip)
        self.connections.add(conn)
        peers = self.by_user.get(claims.sub)
        if peers is None:
            self.by_user[claims.sub] = {conn}
        else:
            peers.add(conn)
        self.stats["connects"] += 1
        expires_in = self._arm_expiry(conn, claims.exp)
        return {
            "client": conn.id,
            "user": {"id": claims.sub, "role": claims.role},
            "ping_interval": self.settings.ws_ping_interval_s,
            "expires_in": expires_in,
        }

    async def refresh(self, conn: Connection, command: cmd.Refresh) -> dict[str, Any]:
        claims = self.authenticate(command.token)
        if claims.sub != conn.user_id:
            raise Forbidden("a refresh token must be for the same user")
        conn.session_id = claims.sid
        conn.caller = socket_caller(claims, conn.ip)
        return {"expires_in": self._arm_expiry(conn, claims.exp)}

    def remove(self, conn: Connection) -> None:
        """Forget ``conn`` (it is closing)."""
        conn.closed = True
        self.deadlines.discard(conn)
        self.connections.discard(conn)
        if not self.connections:
            self.emptied.set()
        peers = self.by_user.get(conn.user_id)
        if peers is not None:
            peers.discard(conn)
            if not peers:
                del self.by_user[conn.user_id]

    # --- token expiry ---------------------------------------------------------------------

    def _arm_expiry(self, conn: Connection, exp: int) -> int:
        self.deadlines.discard(conn)  # a refresh: the previous token's deadlines go
        conn.token_exp = exp
        now = asyncio.get_running_loop().time()
        remaining = exp - time.time()
        # `lead` seconds before the end — but for a token shorter than that, at half its
        # life: warning at once would have the client refresh in a tight loop. Never
        # synchronously: the connect/refresh reply goes out first (deadlines fire from
        # the loop's timer, in a later turn).
        warn_in = max(remaining - self.settings.ws_expiring_lead_s, remaining / 2, 0.0)
        conn.warn_at = now + warn_in
        conn.expire_at = now + max(0.0, remaining + self.settings.ws_expiry_grace_s)
        # The warning comes first (warn_at <= expire_at): the expiry goes into its bucket
        # when the warning fires (``_due``), so a socket is in one bucket at a time.
        self.deadlines.add(conn, conn.warn_at)
        return max(0, int(remaining))

    def _due(self, conn: Connection, now: float) -> None:
        """A deadline slot of ``conn`` fell due: warn, or close, if that is what is due."""
        if conn.closed:
            return
        if conn.warn_at and conn.warn_at <= now:
            conn.warn_at = 0.0
            left = max(0, int(conn.token_exp - time.time()))
            conn.send(frames.push(Push.EXPIRING, **{"in": left}))
            if conn.expire_at > now:
                self.deadlines.add(conn, conn.expire_at)  # a later slot than this one
        if conn.expire_at and conn.expire_at <= now:
            conn.expire_at = 0.0
            conn.close(CloseCode.UNAUTHORIZED, "the access token expired; refresh it and reconnect")

    def stop(self) -> None:
        self.deadlines.stop()

    # --- access that ended ------------------------------------------------------------------

    def on_control(self, message: ControlMessage) -> None:
        """Close the sockets a deactivation (4003) or revoked sessions (4001) end."""
        conns = list(self.by_user.get(message.user_id, ()))
        if isinstance(message, Deactivated):
            for conn in conns:
                conn.close(CloseCode.FORBIDDEN, "this account was deactivated", reconnect=False)
        elif isinstance(message, SessionsRevoked):
            sids = set(message.sids)
            for conn in conns:
                if conn.session_id in sids:
                    conn.close(CloseCode.UNAUTHORIZED, "this session has ended; sign in again")

    def close_if_revoked(self, conn: Connection, command_id: int | None = None) -> bool:
        """Close ``conn`` if the deny-list now names its session (4001) or its user
        (4003), as a control message would have; ``command_id``'s command is answered
        ``unauthorized`` first. No I/O."""
        if conn.session_id is None or not self.revocations.is_revoked(
            conn.session_id, conn.user_id
        ):
            return False
        if command_id is not None:
            conn.send(
                frames.error(
                    command_id,
                    Unauthorized("this session has ended; sign in again", reason="revoked"),
                )
            )
        if self.revocations.is_deactivated(conn.user_id):
            conn.close(CloseCode.FORBIDDEN, "this account was deactivated", reconnect=False)
        else:
            conn.close(CloseCode.UNAUTHORIZED, "this session has ended; sign in again")
        return True
