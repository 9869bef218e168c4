"""The realtime service of one hub: its sockets, and which part runs each command.

``Realtime`` owns the connections of this hub process and hands each command the
endpoint (``endpoint.py``) read to the part whose concept it is:

* ``sessions.py`` — ``connect``, ``refresh``, token expiry, the sockets per user, and
  closing the sockets whose access ended;
* ``subscriptions.py`` — ``subscribe``, ``unsubscribe``, recovery, presence membership,
  and subscriptions dropped when a membership is removed;
* ``channels.py`` — ``publish`` (with the user's byte budget), ``presence``, ``history``;
* ``rpc.py`` — ``rpc``, through ``hub/calls.py`` like every REST route.

Replies and pushes go out through ``Connection`` (straight into the socket's transport).

Access can end while a socket is open. Control messages (``on_control``) act on it at
once; ``Rechecker`` (``recheck.py``) catches what a hub missed while its NATS link was
down; and every command checks the deny-list first, as every REST request does — a
socket whose session was revoked (or whose user was deactivated) since ``connect`` is
answered ``unauthorized`` and closed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client as NATS

from hub.revocations import Revocations
from hub.ws import commands as cmd
from hub.ws import frames
from hub.ws.authz import ChannelAuthorizer
from hub.ws.channels import ChannelCommands
from hub.ws.connection import Connection
from hub.ws.fanout import Fanout
from hub.ws.history import History
from hub.ws.presence import Presence
from hub.ws.recheck import Rechecker
from hub.ws.rpc import Rpcs
from hub.ws.sessions import Sessions
from hub.ws.subscriptions import Subscriptions
from hub.ws.tail import TailBudget
from hubbub.bus import Bus
from hubbub.config import Settings
from hubbub.contracts.channels import Channel, ChannelKind, ChannelPolicy
from hubbub.contracts.control import ControlMessage, MembershipChanged, MembershipRevoked
from hubbub.contracts.errors import BadRequest, HubbubError
from hubbub.contracts.operations import Catalog
from hubbub.contracts.protocol import CloseCode
from hubbub.contracts.subjects import Subjects
from hubbub.tokens import AccessClaims, AccessTokens

log = logging.getLogger("hubbub.ws")

SHUTTING_DOWN = "hub shutting down; reconnect"


class Realtime:
    def __init__(
        self,
        *,
        settings: Settings,
        nc: NATS,
        bus: Bus,
        catalog: Catalog,
        authorizer: ChannelAuthorizer,
        presence: Presence,
        tokens: AccessTokens,
        revocations: Revocations,
        policies: dict[ChannelKind, ChannelPolicy],
    ) -> None:
        self.settings = settings
        self.nc = nc
        self.subjects = Subjects(settings.namespace)
        self.history = History(nc, self.subjects)
        self.fanout = Fanout(
            nc,
            self.subjects,
            self.history,
            policies,  # type: ignore[arg-type]
            tail_budget=TailBudget(settings.ws_recovery_tail_bytes),
        )
        self.authorizer = authorizer
        self.presence = presence
        self.revocations = revocations
        self.policies = policies
        self.sessions = Sessions(settings, tokens, revocations)
        self.connections = self.sessions.connections
        self.by_user = self.sessions.by_user
        self.stats = self.sessions.stats
        self.subscriptions = Subscriptions(
            settings=settings,
            nc=nc,
            subjects=self.subjects,
            history=self.history,
            fanout=self.fanout,
            authorizer=authorizer,
            presence=presence,
            by_user=self.by_user,
        )
        self.channels = ChannelCommands(
            settings=settings,
            nc=nc,
            subjects=self.subjects,
            history=self.history,
            authorizer=authorizer,
            presence=presence,
            policies=policies,
        )
        self.rpcs = Rpcs(settings, bus, catalog)
        self.accepting = True
        # Sockets upgraded and waiting for their ``connect`` (``endpoint.handshake``).
        self.handshaking: set[Connection] = set()
        self._ticker: asyncio.Task[None] | None = None
        self.recheck = Rechecker(self, settings.recheck_interval_s)

    # --- lifetime -------------------------------------------------------------------------

    async def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick(), name="ws-ping")
        self.presence.start()
        self.recheck.start()

    async def shutdown(self, timeout: float) -> None:
        """Stop accepting; tell every client to reconnect elsewhere (1001), those still
        to send ``connect`` too; wait for the connected ones."""
        self.accepting = False
        for conn in [*self.handshaking, *self.connections]:
            conn.close(CloseCode.GOING_AWAY, SHUTTING_DOWN, reconnect=True)
        if self.connections:
            self.sessions.emptied.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self.sessions.emptied.wait()
            except TimeoutError:
                log.warning("%d sockets still open at the shutdown deadline", len(self.connections))

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        await self.recheck.stop()
        await self.subscriptions.stop()
        await self.fanout.stop()
        await self.presence.stop()
        self.sessions.stop()

    # --- liveness -------------------------------------------------------------------------

    async def _tick(self) -> None:
        interval = self.settings.ws_ping_interval_s
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            self.ping_all(now, interval)
            self.channels.budgets.prune(now)

    def ping_all(self, now: float, interval: float) -> None:
        for conn in list(self.connections):
            if now - conn.last_seen > 2 * interval:
                log.info("no frame for two ping intervals: dropping", extra={"conn": conn.id})
                conn.closed = True
                if conn.transport is not None:
                    conn.transport.abort()
            else:
                conn.write_frame(frames.PING)

    # --- sockets coming and going -----------------------------------------------------------

    def authenticate(self, token: str) -> AccessClaims:
        return self.sessions.authenticate(token)

    def register(self, conn: Connection, claims: AccessClaims) -> dict[str, Any]:
        return self.sessions.register(conn, claims)

    async def unregister(self, conn: Connection) -> None:
        self.sessions.remove(conn)
        await self.subscriptions.drop_all(conn)

    # --- dispatch ---------------------------------------------------------------------------

    async def handle(self, conn: Connection, command: Any) -> None:
        """Run one command; replies (result or error) go out through ``conn``."""
        if type(command) is cmd.RpcCall:
            if not self.close_if_revoked(conn, command.id):
                self.rpcs.start(conn, command)
            return
        if isinstance(command, cmd.Pong):
            return
        if self.close_if_revoked(conn, command.id):
            return
        if isinstance(command, cmd.Rpc):
            self.rpcs.start(conn, cmd.RpcCall.of(command))
            return
        handler = self._handlers.get(type(command))
        if handler is None:
            raise cmd.CommandError(command.id, BadRequest("connect only once, as the first frame"))
        try:
            result = await handler(self, conn, command)
        except HubbubError as exc:
            conn.send(frames.error(command.id, exc))
            return
        if isinstance(result, bytes):
            conn.send(result)
        elif result is not None:
            conn.send(frames.result_obj(command.id, result))

    # --- control from workers: revocations, membership ----------------------------------------

    async def on_control(self, message: ControlMessage) -> None:
        """A listener of the hub's deny-list (``hub/revocations.py``): act on sockets."""
        if isinstance(message, MembershipRevoked | MembershipChanged):
            for name in message.channels:
                try:
                    channel = Channel.parse(name)
                except BadRequest:
                    continue
                if isinstance(message, MembershipRevoked):
                    await self.membership_removed(message.user_id, channel)
                else:  # still a member: only the cached answers go (hub/ws/authz.py)
                    self.authorizer.membership_changed(message.user_id, channel)
        else:
            self.sessions.on_control(message)

    async def membership_removed(self, user_id: str, channel: Channel) -> int:
        return await self.subscriptions.membership_removed(user_id, channel)

    def close_if_revoked(self, conn: Connection, command_id: int | None = None) -> bool:
        return self.sessions.close_if_revoked(conn, command_id)

    _handlers: dict[type, Callable[[Realtime, Connection, Any], Awaitable[Any]]] = {}


Realtime._handlers = {
    cmd.Subscribe: lambda rt, conn, c: rt.subscriptions.subscribe(conn, c),
    cmd.SubscribeCall: lambda rt, conn, c: rt.subscriptions.subscribe(conn, c),
    cmd.Unsubscribe: lambda rt, conn, c: rt.subscriptions.unsubscribe(conn, c),
    cmd.Refresh: lambda rt, conn, c: rt.sessions.refresh(conn, c),
    cmd.Publish: lambda rt, conn, c: rt.channels.publish(conn, c),
    cmd.Presence: lambda rt, conn, c: rt.channels.presence_of(conn, c),
    cmd.History: lambda rt, conn, c: rt.channels.history_of(conn, c),
}


def new_client_id() -> str:
    """16 hex characters, random (``os.urandom``, as ``secrets.token_hex(8)``): drawn from
    a batch of random bytes read ``CLIENT_ID_BATCH`` ids at a time, not one system call
    per socket. A forked child starts a batch of its own (never its parent's)."""
    global _id_bytes, _id_at
    at = _id_at
    if at >= len(_id_bytes):
        _id_bytes, at = os.urandom(CLIENT_ID_BYTES * CLIENT_ID_BATCH), 0
    _id_at = at + CLIENT_ID_BYTES
    return _id_bytes[at : at + CLIENT_ID_BYTES].hex()


CLIENT_ID_BYTES = 8
CLIENT_ID_BATCH = 256
_id_bytes = b""  # random bytes not handed out yet start at _id_at
_id_at = 0


def _forget_ids() -> None:
    global _id_bytes, _id_at
    _id_bytes, _id_at = b"", 0


os.register_at_fork(after_in_child=_forget_ids)
