"""The realtime service of one hub: its sockets, and what each command does.

``Realtime`` owns the connections of this hub process. The endpoint (``endpoint.py``)
reads frames and hands each command here; replies and pushes go out through
``Connection`` (straight into the socket's transport).

Access can end while a socket is open. Control messages (``on_control``) act on it at
once; ``Rechecker`` (``recheck.py``) catches what a hub missed while its NATS link was
down; and every command checks the deny-list first, as every REST request does — a
socket whose session was revoked (or whose user was deactivated) since ``connect`` is
answered ``unauthorized`` and closed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from hub.revocations import Revocations
from hub.ws import commands as cmd
from hub.ws import frames
from hub.ws.authz import ChannelAuthorizer
from hub.ws.connection import Connection
from hub.ws.fanout import Fanout, Feed
from hub.ws.history import History
from hub.ws.presence import Presence
from hub.ws.recheck import Rechecker
from hubbub.bus import Bus
from hubbub.config import Settings
from hubbub.contracts.api.channels import ChannelAction
from hubbub.contracts.channels import Channel, ChannelKind, ChannelPolicy
from hubbub.contracts.control import (
    ControlMessage,
    Deactivated,
    MembershipRevoked,
    SessionsRevoked,
)
from hubbub.contracts.envelope import Caller, CallerKind
from hubbub.contracts.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    HubbubError,
    Internal,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthorized,
    validation_failed_from,
)
from hubbub.contracts.operations import Access, Catalog
from hubbub.contracts.protocol import CloseCode, Push
from hubbub.contracts.subjects import Subjects
from hubbub.logs import request_id_var
from hubbub.tokens import AccessClaims, AccessTokens

log = logging.getLogger("hubbub.ws")

MAX_RECOVERY = 10_000  # publications replayed by one subscribe; more → recovered: false
MAX_RECOVERY_BYTES = 4 * 1024 * 1024  # and their data's size; more → recovered: false
MAX_HISTORY_BYTES = 1024 * 1024  # one history reply; page on with since


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
        self.bus = bus
        self.catalog = catalog
        self.subjects = Subjects(settings.namespace)
        self.history = History(nc, self.subjects)
        self.fanout = Fanout(nc, self.subjects, self.history, policies)  # type: ignore[arg-type]
        self.authorizer = authorizer
        self.presence = presence
        self.tokens = tokens
        self.revocations = revocations
        self.policies = policies
        self.connections: set[Connection] = set()
        self.by_user: dict[str, set[Connection]] = {}
        self.accepting = True
        self._emptied = asyncio.Event()
        self._presence_subs: dict[str, Subscription] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self.stats = {"connects": 0}
        self.recheck = Rechecker(self, settings.recheck_interval_s)

    # --- lifetime -------------------------------------------------------------------------

    async def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick(), name="ws-ping")
        self.presence.start()
        self.recheck.start()

    async def shutdown(self, timeout: float) -> None:
        """Stop accepting; tell every client to reconnect elsewhere (1001); wait for them."""
        self.accepting = False
        for conn in list(self.connections):
            conn.close(CloseCode.GOING_AWAY, "hub shutting down; reconnect", reconnect=True)
        if self.connections:
            self._emptied.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._emptied.wait()
            except TimeoutError:
                log.warning("%d sockets still open at the shutdown deadline", len(self.connections))

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        await self.recheck.stop()
        await self.presence.stop()
        for task in list(self._tasks):
            task.cancel()

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- liveness -------------------------------------------------------------------------

    async def _tick(self) -> None:
        interval = self.settings.ws_ping_interval_s
        while True:
            await asyncio.sleep(interval)
            self.ping_all(time.monotonic(), interval)

    def ping_all(self, now: float, interval: float) -> None:
        for conn in list(self.connections):
            if now - conn.last_seen > 2 * interval:
                log.info("no frame for two ping intervals: dropping", extra={"conn": conn.id})
                conn.closed = True
                if conn.transport is not None:
                    conn.transport.abort()
            else:
                conn.write_frame(frames.PING)

    # --- connect, refresh, token expiry ------------------------------------------------

    def authenticate(self, token: str) -> AccessClaims:
        """The token's claims, if it verifies and its session is not revoked (no I/O)."""
        claims = self.tokens.verify(token)
        if self.revocations.is_revoked(claims.sid, claims.sub):
            raise Unauthorized("this session has ended; sign in again", reason="revoked")
        return claims

    def register(self, conn: Connection, claims: AccessClaims) -> dict[str, Any]:
        conn.user_id = claims.sub
        conn.session_id = claims.sid
        conn.caller = Caller(
            kind=CallerKind.USER,
            user_id=claims.sub,
            role=claims.role,
            session_id=claims.sid,
            ip=conn.ip,
        )
        self.connections.add(conn)
        self.by_user.setdefault(claims.sub, set()).add(conn)
        self.stats["connects"] += 1
        expires_in = self._arm_expiry(conn, claims.exp)
        return {
            "client": conn.id,
            "user": {"id": claims.sub, "role": claims.role},
            "ping_interval": self.settings.ws_ping_interval_s,
            "expires_in": expires_in,
        }

    def _arm_expiry(self, conn: Connection, exp: int) -> int:
        conn.cancel_timers()
        conn.token_exp = exp
        loop = asyncio.get_running_loop()
        now = time.time()
        remaining = exp - now
        # `lead` seconds before the end — but for a token shorter than that, at half its
        # life: warning at once would have the client refresh in a tight loop. Never
        # synchronously: the connect/refresh reply goes out first.
        warn_in = max(remaining - self.settings.ws_expiring_lead_s, remaining / 2, 0.0)
        conn.timers.append(loop.call_later(warn_in, self._warn_expiring, conn))
        grace = self.settings.ws_expiry_grace_s
        conn.timers.append(loop.call_later(max(0.0, remaining + grace), self._expire, conn))
        return max(0, int(remaining))

    def _warn_expiring(self, conn: Connection) -> None:
        conn.send(frames.push(Push.EXPIRING, **{"in": max(0, int(conn.token_exp - time.time()))}))

    def _expire(self, conn: Connection) -> None:
        conn.close(CloseCode.UNAUTHORIZED, "the access token expired; refresh it and reconnect")

    async def refresh(self, conn: Connection, command: cmd.Refresh) -> dict[str, Any]:
        claims = self.authenticate(command.token)
        if claims.sub != conn.user_id:
            raise Forbidden("a refresh token must be for the same user")
        conn.session_id = claims.sid
        conn.caller = Caller(
            kind=CallerKind.USER,
            user_id=claims.sub,
            role=claims.role,
            session_id=claims.sid,
            ip=conn.ip,
        )
        return {"expires_in": self._arm_expiry(conn, claims.exp)}

    # --- leaving ----------------------------------------------------------------------------

    async def unregister(self, conn: Connection) -> None:
        conn.closed = True
        conn.cancel_timers()
        self.connections.discard(conn)
        if not self.connections:
            self._emptied.set()
        peers = self.by_user.get(conn.user_id)
        if peers is not None:
            peers.discard(conn)
            if not peers:
                del self.by_user[conn.user_id]
        for name in list(conn.subs):
            await self._drop_subscription(conn, Channel.parse(name))

    # --- dispatch ---------------------------------------------------------------------------

    async def handle(self, conn: Connection, command: Any) -> None:
        """Run one command; replies (result or error) go out through ``conn``."""
        if isinstance(command, cmd.Pong):
            return
        if self.close_if_revoked(conn, command.id):
            return
        if isinstance(command, cmd.Rpc):
            if command.id in conn.rpc_ids:
                raise cmd.CommandError(
                    command.id, BadRequest("this id is already in use by an unanswered rpc")
                )
            if len(conn.rpc_ids) >= self.settings.ws_max_rpc_in_flight:
                raise cmd.CommandError(
                    command.id,
                    RateLimited("too many unanswered rpcs on this connection", retry_after=1),
                )
            conn.rpc_ids.add(command.id)
            self.spawn(self._rpc(conn, command))
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

    # --- subscribe / unsubscribe --------------------------------------------------------------

    async def subscribe(self, conn: Connection, command: cmd.Subscribe) -> None:
        channel = Channel.parse(command.channel)
        name = str(channel)
        if name in conn.subs:
            raise Conflict("already subscribed to this channel", channel=name)
        if len(conn.subs) >= self.settings.ws_max_subscriptions:
            raise TooLarge(
                f"at most {self.settings.ws_max_subscriptions} subscriptions per connection",
                limit=self.settings.ws_max_subscriptions,
            )
        assert conn.caller is not None
        await self.authorizer.check(conn.caller, channel, ChannelAction.SUBSCRIBE)
        conn.subs[name] = 0  # reserved: a second subscribe meanwhile is a conflict
        try:
            feed = await self.fanout.feed(channel)
        except BaseException:
            conn.subs.pop(name, None)
            raise
        feed.waiting[conn] = []
        try:
            epoch = await self.history.epoch(channel.kind)
            latest = await feed.latest()
            recovered, publications, position = await self._recover(
                channel, command.since, epoch, latest
            )
        except BaseException:
            feed.waiting.pop(conn, None)
            conn.subs.pop(name, None)
            await self.fanout.release(feed)
            raise
        if conn.closed or name not in conn.subs:  # gone while we read the history
            feed.waiting.pop(conn, None)
            await self.fanout.release(feed)
            return
        reply = _subscribe_reply(command.id, name, position, epoch, recovered, publications)
        conn.send(reply)
        # Live from here: what arrived meanwhile, then everything new; each offset once.
        conn.subs[name] = position
        buffered = feed.waiting.pop(conn, [])
        feed.live[conn] = None
        pending = [item for item in buffered if item.offset > position]
        if pending:
            conn.deliver(feed, pending, b"".join(i.frame for i in pending))
        if feed.policy.presence:
            await self._presence_join(conn, channel, feed)
        return

    async def _recover(
        self, channel: Channel, since: cmd.Since | None, epoch: str, latest: int
    ) -> tuple[bool, list[tuple[int, bytes]], int]:
        """What a resubscribing client missed: (recovered, publications, new position).

        Recovered means every publication after ``since.offset`` is in the reply — the
        epoch matches and the history still holds the last one the client saw (retention
        drops the oldest first, so then it holds all the later ones too)."""
        if since is None or since.epoch != epoch or since.offset > latest:
            return False, [], latest
        if since.offset == latest:
            return True, [], latest
        if since.offset == 0:
            kept_all = await self.history.nothing_dropped(channel.kind)
            if not kept_all:
                return False, [], latest
        elif not await self.history.holds(channel, since.offset):
            return False, [], latest
        found = await self.history.after(channel, since.offset, MAX_RECOVERY, MAX_RECOVERY_BYTES)
        if not found or found[-1].offset < latest:
            return False, [], latest  # more than we replay: reload instead
        return True, [(p.offset, p.data) for p in found], found[-1].offset

    async def unsubscribe(self, conn: Connection, command: cmd.Unsubscribe) -> dict[str, Any]:
        channel = Channel.parse(command.channel)
        if str(channel) not in conn.subs:
            raise NotFound("not subscribed to this channel", channel=str(channel))
        await self._drop_subscription(conn, channel)
        return {}

    async def _drop_subscription(self, conn: Connection, channel: Channel) -> None:
        name = str(channel)
        conn.subs.pop(name, None)
        feed = self.fanout.feeds.get(name)
        if feed is None:
            return
        feed.live.pop(conn, None)
        feed.waiting.pop(conn, None)
        if feed.policy.presence:
            try:
                await self.presence.leave(channel, conn.user_id, conn.id)
            except Exception:
                log.warning("presence leave failed", exc_info=True)
        if feed.empty:
            sub = self._presence_subs.pop(name, None)
            if sub is not None:
                await sub.unsubscribe()
            await self.fanout.release(feed)

    async def _presence_join(self, conn: Connection, channel: Channel, feed: Feed) -> None:
        name = str(channel)
        if name not in self._presence_subs:

            async def forward(msg: Msg) -> None:
                frame = frames.text_frame(msg.data)
                for subscriber in list(feed.live):
                    if isinstance(subscriber, Connection):
                        subscriber.write_frame(frame)

            self._presence_subs[name] = await self.nc.subscribe(
                self.subjects.presence(channel), cb=forward
            )
        try:
            await self.presence.join(channel, conn.user_id, conn.id)
        except Exception:
            log.warning("presence join failed", exc_info=True)

    # --- rpc --------------------------------------------------------------------------------

    async def _rpc(self, conn: Connection, command: cmd.Rpc) -> None:
        request_id = uuid.uuid4().hex
        token = request_id_var.set(request_id)
        try:
            op = self.catalog.get(command.method)
            if op is None or op.access in (Access.INTERNAL, Access.SERVICE):
                raise NotFound(f"unknown method {command.method!r}")
            assert conn.caller is not None
            if op.access is Access.ADMIN and conn.caller.role != "admin":
                raise Forbidden("only admins may call this")
            try:
                params = op.params.model_validate(command.params)
            except ValidationError as exc:
                raise validation_failed_from(
                    exc.errors(include_url=False, include_input=False)  # type: ignore[arg-type]
                ) from None
            reply = await self.bus.request(
                op,
                params.model_dump_json(exclude_unset=True).encode(),
                caller=conn.caller,
                request_id=request_id,
                idempotency_key=command.idempotency_key if op.mutating else None,
            )
            conn.send(frames.result(command.id, reply.raw))
        except HubbubError as exc:
            conn.send(frames.error(command.id, exc))
        except Exception:
            log.exception("rpc failed", extra={"conn": conn.id, "method": command.method})
            conn.send(frames.error(command.id, Internal(request_id=request_id)))
        finally:
            conn.rpc_ids.discard(command.id)
            request_id_var.reset(token)

    # --- publish, presence, history ------------------------------------------------------------

    async def publish(self, conn: Connection, command: cmd.Publish) -> dict[str, Any]:
        channel = Channel.parse(command.channel)
        assert conn.caller is not None
        await self.authorizer.check(conn.caller, channel, ChannelAction.PUBLISH)
        payload = orjson.dumps(
            {
                "type": "message",
                "from": conn.user_id,
                "at": round(time.time(), 3),
                "data": command.data,
            }
        )
        ack = await self.nc.jetstream().publish(
            self.subjects.event(channel),
            payload,
            headers={"Nats-Msg-Id": f"{conn.id}:{command.id}"},
        )
        return {"offset": ack.seq}

    async def presence_of(self, conn: Connection, command: cmd.Presence) -> dict[str, Any]:
        channel = Channel.parse(command.channel)
        if not self.policies[channel.kind].presence:
            raise BadRequest(f"{channel.kind.value} channels have no presence")
        assert conn.caller is not None
        await self.authorizer.check(conn.caller, channel, ChannelAction.SUBSCRIBE)
        return {"members": await self.presence.members(channel)}

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

    # --- control from workers: revocations, membership ----------------------------------------

    async def on_control(self, message: ControlMessage) -> None:
        """A listener of the hub's deny-list (``hub/revocations.py``): act on sockets."""
        conns = list(self.by_user.get(message.user_id, ()))
        if isinstance(message, Deactivated):
            for conn in conns:
                conn.close(CloseCode.FORBIDDEN, "this account was deactivated", reconnect=False)
        elif isinstance(message, SessionsRevoked):
            sids = set(message.sids)
            for conn in conns:
                if conn.session_id in sids:
                    conn.close(CloseCode.UNAUTHORIZED, "this session has ended; sign in again")
        elif isinstance(message, MembershipRevoked):
            for name in message.channels:
                try:
                    channel = Channel.parse(name)
                except BadRequest:
                    continue
                await self.membership_removed(message.user_id, channel)

    async def membership_removed(self, user_id: str, channel: Channel) -> int:
        """Drop ``user_id``'s subscriptions to ``channel`` on this hub, each with an
        ``unsubscribed`` push (4003); how many were dropped."""
        name = str(channel)
        dropped = 0
        for conn in list(self.by_user.get(user_id, ())):
            if name in conn.subs and not conn.closed:
                await self._drop_subscription(conn, channel)
                conn.send(
                    frames.push(
                        Push.UNSUBSCRIBED,
                        channel=name,
                        code=CloseCode.FORBIDDEN,
                        reason="your membership was removed",
                    )
                )
                dropped += 1
        return dropped

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

    _handlers: dict[type, Callable[[Realtime, Connection, Any], Awaitable[Any]]] = {}


Realtime._handlers = {
    cmd.Subscribe: Realtime.subscribe,
    cmd.Unsubscribe: Realtime.unsubscribe,
    cmd.Refresh: Realtime.refresh,
    cmd.Publish: Realtime.publish,
    cmd.Presence: Realtime.presence_of,
    cmd.History: Realtime.history_of,
}


def _subscribe_reply(
    command_id: int,
    channel: str,
    offset: int,
    epoch: str,
    recovered: bool,
    publications: list[tuple[int, bytes]],
) -> bytes:
    pubs = b",".join(b'{"offset":%d,"data":%s}' % (o, d) for o, d in publications)
    body = b'{"channel":"%s","offset":%d,"epoch":"%s","recovered":%s,"publications":[%s]}' % (
        channel.encode(),
        offset,
        epoch.encode(),
        b"true" if recovered else b"false",
        pubs,
    )
    return frames.result(command_id, body)


def new_client_id() -> str:
    return secrets.token_hex(8)
