"""``GET /ws``: the upgrade, the ``connect`` handshake, and the read loop.

A connection's first request, when it is a plain upgrade, is read and upgraded by the
hub itself (``hub/serving.py``, ``direct_socket``); any other upgrade, and the answer to
every refused one, is aiohttp's route (``websocket``). Either way one task per socket
reads frames; everything it sends goes through the connection's transport. Limits, and
what breaking them does:

* frame over ``HUBBUB_WS_MAX_FRAME_BYTES`` → close 1009 (RFC 6455 "message too big");
* no ``connect`` within ``HUBBUB_WS_CONNECT_TIMEOUT_S``, or a bad token → close 4001;
* a ``connect`` over ``HUBBUB_MAX_SOCKETS_PER_USER`` → ``rate_limited``, close 4008;
* over the command rate → ``rate_limited`` error per command; keeping on at twice the
  burst (without slowing down to bank half a burst) → close 4008;
* ``HUBBUB_WS_MAX_PROTOCOL_ERRORS`` malformed frames → close 4008.

A client that can set headers may connect in the upgrade request instead
(``Authorization: Bearer <token>``, and ``?subscribe=<channel>`` for each channel to be
on from the start): one round trip where ``connect`` and ``subscribe`` frames need two.
The token, the socket cap and each channel's access are checked before the upgrade is
answered, so a refusal is an HTTP problem (401, 403, 429, 400, 413, 503), not a socket
opened only to be closed; the ``101`` is followed by a ``connected`` push and a
``subscribed`` push per channel, written together.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import unquote_plus

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from aiohttp._websocket.writer import WebSocketWriter
from aiohttp.base_protocol import BaseProtocol
from aiohttp.helpers import DEFAULT_CHUNK_SIZE
from multidict import CIMultiDict, CIMultiDictProxy

from hub import calls, metrics, origins
from hub.auth import bearer_token_of
from hub.calls import check_not_revoked
from hub.middleware import (
    REQUEST_ID_HEADER,
    answers_own_failures,
    socket_failure,
    socket_refusal,
)
from hub.problems import problem_response
from hub.state import CLIENT_IP, REALTIME, REFUSED_UPGRADES, SETTINGS
from hub.ws import commands as cmd
from hub.ws import frames
from hub.ws.connection import Connection, counters
from hub.ws.limits import Admission, CommandLimiter
from hub.ws.service import SHUTTING_DOWN, Realtime, new_client_id
from hub.ws.sessions import socket_caller
from hub.ws.subscriptions import parse_channel
from hub.ws.upgrade_head import UpgradeHead, switching_protocols
from hubbub.config import Settings
from hubbub.contracts.api.channels import ChannelAction
from hubbub.contracts.errors import (
    BadRequest,
    Forbidden,
    HubbubError,
    RateLimited,
    TooLarge,
    Unauthorized,
    Unavailable,
)
from hubbub.contracts.protocol import SUBPROTOCOL, CloseCode, Push
from hubbub.logs import request_id_var
from hubbub.tokens import AccessClaims

if TYPE_CHECKING:
    from hub.serving import DirectProtocol

log = logging.getLogger("hubbub.ws")


def socket_origin_allowed(settings: Settings, host: str, origin: str | None) -> bool:
    """Browsers send ``Origin``: it must be one this hub allows (hub/origins.py), for an
    upgrade whose ``Host`` is ``host``."""
    if origin is None:
        return True  # not a browser (a backend, a test client): tokens still apply
    return origins.origin_allowed_at(settings, host, origin)


@answers_own_failures
async def websocket(request: web.Request) -> web.StreamResponse:
    """aiohttp's ``GET /ws``: an upgrade that is not the first request of its connection
    or not a plain one (``hub/serving.py`` serves the others itself), and the answer to
    every upgrade refused. The upgrade, then the socket's whole life. An answer that is
    not the upgrade (a refusal, or a failure before it) is answered here with problem
    details and the usual headers (the middlewares keep no frame for the socket)."""
    transport = request.transport
    refused = request.app[REFUSED_UPGRADES].pop(transport, None) if transport else None
    # Refused on the hub's own path: answered, not checked again. Only that request: its
    # key is the one refused (a later upgrade on the connection has a key of its own).
    if refused is not None and refused[0] == request.headers.get("Sec-WebSocket-Key"):
        return socket_refusal(request, _refusal(refused[1], request))
    ip = request.app[CLIENT_IP].of(request)  # as REST sees it: trusted proxies included
    try:
        ws, asked = await _upgrade(request, ip)
    except HubbubError as exc:
        return socket_refusal(request, _refusal(exc, request))
    except Exception as exc:
        return socket_failure(request, exc)
    app = request.app
    metrics.metrics_of(app).upgraded()
    conn = _connection(app[SETTINGS], ws, request.transport, ip)
    # ``asked`` (its claims) is not kept in this frame, which lasts as long as the socket.
    life = serve_socket(app[REALTIME], conn, asked, corked=asked is not None)
    del asked
    await life
    return ws


async def direct_socket(app: web.Application, protocol: DirectProtocol, head: UpgradeHead) -> None:
    """A connection's first request, an upgrade of ``/ws`` read straight off it by
    ``hub/serving.py``: checked as ``websocket`` checks it, then answered with the ``101``
    and served as a socket, with no aiohttp request, response or handler task around it.
    An upgrade refused here is handed to aiohttp as it was read, with its refusal, which
    ``websocket`` answers (the refusals' answers have one author); one whose checks
    failed is checked again there, and answered."""
    transport = protocol.transport
    assert transport is not None
    request_id_var.set(calls.request_id(head.headers.get(REQUEST_ID_HEADER)))
    measured = metrics.metrics_of(app)
    metrics.current.set(measured)
    peer = transport.get_extra_info("peername")
    ip = app[CLIENT_IP].of_peer(peer[0] if isinstance(peer, tuple) else None, head.headers)
    try:
        asked = await checked_upgrade(app, head.headers, head.query_string, head.host, ip)
    except HubbubError as exc:  # aiohttp's route answers it as it reads it again
        exc.__traceback__ = None  # kept until then: not this frame, nor the head in it
        app[REFUSED_UPGRADES][transport] = (head.key, exc)
        protocol.hand_over()
        return
    except Exception:  # a failure (an outage, a bug): the route checks again, and answers
        protocol.hand_over()
        return
    if transport.is_closing():  # the client went away while it was checked
        return
    settings = app[SETTINGS]
    try:
        ws = new_socket(settings)
        protocol.upgraded(ws.adopt(protocol, transport), head.length)
        conn = _connection(settings, ws, transport, ip)
        # The 101 waits with the replies of this turn, so that it leaves with the
        # ``connected`` push and the ``subscribed`` ones, in one write; a subscribe that
        # has to wait (a feed not listening yet, an access check asked of a worker) lets
        # what was held go at the end of the turn, and its push follows.
        conn.hold_head(switching_protocols(head.key, SUBPROTOCOL))
        if asked is None:  # nothing to go with it: the connect comes as a frame
            conn.flush()
    except Exception:  # a bug: no answer can be written in the middle of a socket's set-up
        log.exception("setting a socket up failed")
        transport.abort()
        return
    measured.upgraded()
    del head  # its headers (the token among them): this frame lasts as long as the socket
    life = serve_socket(app[REALTIME], conn, asked)
    del asked
    await life


def _connection(
    settings: Settings, ws: HubSocket, transport: asyncio.BaseTransport | None, ip: str | None
) -> Connection:
    conn = Connection(
        new_client_id(),
        ws,
        CommandLimiter(settings.ws_commands_per_s, settings.ws_commands_burst),
        ip,
        settings.ws_send_buffer_bytes,
    )
    conn.transport = transport  # type: ignore[assignment]  # a TCP transport: writable
    ws.conn = conn
    return conn


async def serve_socket(
    realtime: Realtime, conn: Connection, asked: UpgradeConnect | None, *, corked: bool = False
) -> None:
    """An upgraded socket's whole life: its connect (carried by the upgrade, or its first
    frame), its frames, and its end."""
    ws = conn.ws
    try:
        if asked is not None:
            try:
                connected = await connect_in_upgrade(realtime, conn, asked)
            finally:
                if corked:
                    cork(conn.transport, False)
                del asked  # its claims: this frame lasts as long as the socket
        else:
            connected = await handshake(realtime, conn, realtime.settings.ws_connect_timeout_s)
        if connected:
            # The read loop, here rather than in a coroutine of its own, and on
            # ``receive`` rather than ``async for``: an idle socket waits in two
            # coroutine frames fewer. Each frame is handled in ``_frame`` and let go
            # before the next wait, so an idle socket keeps nothing of its last command
            # (its text, the parsed command, the batch's list).
            while True:
                msg = await ws.receive()
                if msg.type in _ENDED or await _frame(realtime, conn, msg):
                    break
                del msg
    except Exception:
        # The socket is open: a problem response is impossible now. Close it instead.
        log.exception("socket failed", extra={"conn": conn.id})
        conn.close(CloseCode.INTERNAL, "internal error")
    finally:
        try:
            await realtime.unregister(conn)
            if conn.closing is not None:
                await asyncio.shield(conn.closing)  # with the code close() chose
            elif not ws.closed:
                await ws.close()
        except Exception:  # no middleware is left around the socket to log it
            log.exception("socket cleanup failed", extra={"conn": conn.id})


# What ``receive`` answers once the socket is closing or closed (``async for`` stops on
# these too).
_ENDED = frozenset((WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED))


class HubSocket(web.WebSocketResponse):
    """aiohttp's socket, telling the client why when aiohttp closes it by itself: a
    frame over ``max_msg_size`` is found while it is read, and closed (1009) before the
    read loop sees it. The ``disconnect`` push goes first, as for every other close."""

    conn: Connection | None = None
    frame_limit = 0  # its max_msg_size

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        conn = self.conn
        if code == CloseCode.MESSAGE_TOO_BIG and conn is not None:
            reason = f"a frame over the size limit ({self.frame_limit} bytes); send smaller ones"
            conn.closed_by_aiohttp(code, reason)
        return await super().close(code=code, message=message, drain=drain)

    _direct: asyncio.Transport | None = None  # the transport of a socket ``adopt`` set up

    def adopt(self, protocol: BaseProtocol, transport: asyncio.Transport) -> WebSocketReader:
        """Set this socket up on ``transport`` as ``prepare`` sets it up on a request's,
        for an upgrade whose ``101`` the caller writes (``direct_socket``): the frame
        writer, the message queue, and the frame parser, which it returns for
        ``protocol`` to feed what it reads. aiohttp's private names, as ``prepare``'s
        ``_pre_start`` and ``_post_start`` set them (if aiohttp renames them,
        tests/e2e/test_direct_upgrade.py fails)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._compress = 0
        self._ws_protocol = SUBPROTOCOL
        self._writer = WebSocketWriter(protocol, transport, limit=self._writer_limit)
        self._reader = WebSocketDataQueue(protocol, DEFAULT_CHUNK_SIZE, loop=loop)
        self._parser = parser = WebSocketReader(
            self._reader, self._max_msg_size, compress=False, decode_text=True
        )
        # close() drains through it; set, it also makes the socket ``prepared``.
        self._payload_writer = _Drain(protocol)  # type: ignore[assignment]
        self._direct = transport
        return parser

    def __repr__(self) -> str:  # aiohttp's reads the request, which an adopted one has not
        return f"<HubSocket {'closed' if self.closed else 'open'}>"

    def _close_transport(self) -> None:
        if self._direct is not None:
            self._direct.close()
        else:
            super()._close_transport()


class _Drain:
    """What a socket ``adopt`` set up drains its writes through (aiohttp's response
    writer's ``drain``, without the response)."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: BaseProtocol) -> None:
        self._protocol = protocol

    async def drain(self) -> None:
        await self._protocol._drain_helper()


def new_socket(settings: Settings) -> HubSocket:
    ws = HubSocket(
        protocols=(SUBPROTOCOL,),
        max_msg_size=settings.ws_max_frame_bytes,
        compress=False,  # frames are written pre-encoded, once for all sockets
        autoping=True,
        timeout=2.0,  # waiting for the client's close frame
    )
    ws.frame_limit = settings.ws_max_frame_bytes
    return ws


async def checked_upgrade(
    app: web.Application,
    headers: CIMultiDict[str] | CIMultiDictProxy[str],
    query_string: str,
    host: str,
    ip: str | None,
) -> UpgradeConnect | None:
    """The connect an upgrade request carried (None: it carried none), once everything
    that can be checked before the ``101`` has been: the hub accepting, the origin, the
    subprotocol, the token, the socket cap and the channels' access. A refusal raises its
    ``HubbubError``."""
    realtime = app[REALTIME]
    _still_accepting(realtime)
    if not socket_origin_allowed(app[SETTINGS], host, headers.get("Origin")):
        raise Forbidden("this origin may not open sockets here")
    if not offers_subprotocol(headers.get("Sec-WebSocket-Protocol", "")):
        raise BadRequest(f"use the WebSocket subprotocol {SUBPROTOCOL!r}")
    asked = await _connect_of_upgrade(realtime, headers, query_string, ip)
    if asked is not None and asked.channels:  # the access checks may have waited
        _still_admitted(realtime, asked.claims)
    return asked


async def _upgrade(request: web.Request, ip: str | None) -> tuple[HubSocket, UpgradeConnect | None]:
    """The prepared socket and the connect its request carried, or the problem details
    refusing it. A refused connect raises its ``HubbubError``."""
    asked = await checked_upgrade(
        request.app, request.headers, request.rel_url.raw_query_string, request.host, ip
    )
    ws = new_socket(request.app[SETTINGS])
    # A connect in the upgrade is answered right after the 101: held back until then, so
    # that both leave in one TCP segment (``connect_in_upgrade`` lets go).
    corked = asked is not None and cork(request.transport, True)
    # ``prepare`` checks the upgrade headers before it writes anything and raises an
    # HTTP error when they are not an upgrade's (``can_prepare`` would run the same
    # check, key hashing included, once more).
    try:
        await ws.prepare(request)
    except BaseException as exc:
        if corked:
            cork(request.transport, False)
        if isinstance(exc, web.HTTPException):
            raise BadRequest("this is a WebSocket endpoint: send an upgrade request") from None
        raise
    let_go_of_upgrade(request, ws)
    return ws, asked


def let_go_of_upgrade(request: web.Request, ws: web.WebSocketResponse) -> None:
    """Let go of what an upgraded socket would otherwise keep of its upgrade for its whole
    life but never reads again (about 2.3 KiB a socket, issue 14):

    * the connection's HTTP parser (aiohttp's ``RequestHandler._parser``, private; its
      ``connection_lost`` drops it too): once ``prepare`` has set the WebSocket reader,
      every byte goes to that reader, and the HTTP parser would parse only a next request,
      which an upgraded connection never has. Besides its own state it keeps the last
      request's header lists (a tuple per header) and last header value;
    * the response's headers (public: written with the ``101``, not read again);
    * the request's cache of parsed properties (``BaseRequest._cache``, private: a
      property read after this is parsed again). The request's message (its headers,
      the token among them) stays: aiohttp's ``RequestHandler.start`` holds it.

    Where aiohttp names these otherwise, nothing is let go and
    ``test_an_upgraded_socket_keeps_no_http_parser`` fails."""
    protocol = request.protocol
    if getattr(protocol, "_parser", None) is not None:
        protocol._parser = None
    ws.headers.clear()
    cache = getattr(request, "_cache", None)
    if isinstance(cache, dict):
        cache.clear()


def _still_accepting(realtime: Realtime) -> None:
    if not realtime.accepting:
        raise Unavailable("this hub is shutting down; connect to another")


def _still_admitted(realtime: Realtime, claims: AccessClaims) -> None:
    """What the checks' waits may have changed, checked again with nothing awaited from
    here to the socket's registration but the 101's write: the hub still accepting, the
    session and user not revoked, the user's socket cap."""
    _still_accepting(realtime)
    check_not_revoked(realtime.revocations, claims)
    realtime.sessions.admit(claims)


def cork(transport: asyncio.BaseTransport | None, on: bool) -> bool:
    """Hold what is written to the socket until let go (Linux's ``TCP_CORK``), so that
    writes made in between leave together: fewer segments, and the client reads them at
    once. False where the option or the socket is not there."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or not hasattr(socket, "TCP_CORK"):
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1 if on else 0)
    except OSError:  # the connection is gone already
        return False
    return True


def _refusal(error: HubbubError, request: web.Request) -> web.Response:
    """The problem details refusing an upgrade. A refused token says why in
    ``WWW-Authenticate`` too (RFC 6750's ``error`` and ``error_description``): a client
    library may see only the status and headers of a refused upgrade, not its body."""
    response = problem_response(error, request)
    reason = error.details.get("reason")
    if isinstance(error, Unauthorized) and isinstance(reason, str):
        response.headers["WWW-Authenticate"] = (
            f'Bearer realm="hubbub", error="invalid_token", error_description="{reason}"'
        )
    return response


def subscribe_names(query_string: str) -> list[str]:
    """The ``subscribe`` values of a raw query string, decoded, in order: what
    ``parse_qsl(query_string, keep_blank_values=True)`` gives for that name, without the
    pairs of other names."""
    names = []
    for part in query_string.split("&") if query_string else ():
        key, _, value = part.partition("=")
        if key == "subscribe" or (key and unquote_plus(key) == "subscribe"):
            names.append(unquote_plus(value))
    return names


class UpgradeConnect(NamedTuple):
    """The connect an upgrade request carried: its token's claims, and the channels to
    subscribe to (parsed and checked, in the request's order)."""

    claims: AccessClaims
    channels: tuple[str, ...]


async def _connect_of_upgrade(
    realtime: Realtime,
    headers: CIMultiDict[str] | CIMultiDictProxy[str],
    query_string: str,
    ip: str | None,
) -> UpgradeConnect | None:
    """The connect of an upgrade request with ``Authorization``, checked as far as it can
    be before the socket exists: the token, this user's socket cap here, and each
    ``subscribe`` channel's name, count and access. None: a plain upgrade (``connect``
    comes as the first frame). ``query_string`` is the request's raw query."""
    names = subscribe_names(query_string)
    header = headers.get("Authorization", "")
    scheme = header.strip().partition(" ")[0]
    if scheme.lower() != "bearer":  # no connect here (another scheme is not ours): frames
        if names:
            raise BadRequest(
                "subscribing in the upgrade request needs its connect: "
                "send 'Authorization: Bearer <token>' with it"
            )
        return None
    token = bearer_token_of(header)
    assert token is not None
    claims = realtime.authenticate(token)
    realtime.sessions.admit(claims)
    limit = realtime.settings.ws_max_subscriptions
    if len(names) > limit:
        raise TooLarge(f"at most {limit} subscriptions per connection", limit=limit)
    caller = socket_caller(claims, ip)
    authorizer = realtime.authorizer
    channels: list[str] = []
    for raw in names:
        channel, name = parse_channel(raw)
        if name in channels:
            raise BadRequest(f"the channel {name} is named twice", channel=name)
        if not authorizer.allowed_by_policy(caller, channel, ChannelAction.SUBSCRIBE):
            await authorizer.check(caller, channel, ChannelAction.SUBSCRIBE)
        channels.append(name)
    return UpgradeConnect(claims, tuple(channels))


async def connect_in_upgrade(realtime: Realtime, conn: Connection, asked: UpgradeConnect) -> bool:
    """Register the socket of an upgrade that carried its connect, then subscribe it to
    the channels the upgrade named. Pushes ``connected``, then ``subscribed`` per channel
    — or ``unsubscribed`` for one that could not be placed after all (its access ended
    meanwhile: 4003; its history unreachable, or past the command burst, which each
    channel counts against as a ``subscribe`` would: 1013, subscribe again later); the
    socket stays. Their frames leave with the ``101`` (the corked socket's, or the one
    held with them), but for those of subscribes that had to wait."""
    if not realtime.accepting:  # the shutdown began while the upgrade was written
        conn.close(CloseCode.GOING_AWAY, SHUTTING_DOWN)
        return False
    try:
        connected = realtime.register(conn, asked.claims)
    except RateLimited as exc:  # another socket of the user's came first
        conn.close(CloseCode.POLICY, exc.message)
        return False
    # Revoked while the 101 was written (no socket was there for the control message to
    # close): closed as an open socket of that session is, 4001 or 4003.
    if realtime.close_if_revoked(conn):
        return False
    now = conn.last_seen = time.monotonic()
    conn.send(frames.push(Push.CONNECTED, **connected))
    for name in asked.channels:
        if conn.lost():  # closed, or the client went away meanwhile
            return False
        if conn.limiter.admit(now) is not Admission.ADMIT:  # each counts as a command
            _not_subscribed(conn, name, TRY_AGAIN_LATER, "too many commands; subscribe again")
            continue
        try:
            await realtime.subscriptions.subscribe(conn, cmd.SubscribeCall(None, name))
        except HubbubError as exc:
            code = CloseCode.FORBIDDEN if isinstance(exc, Forbidden) else TRY_AGAIN_LATER
            _not_subscribed(conn, name, code, exc.message)
    conn.flush()  # into the corked socket, after the 101: they leave together
    return not conn.gone()


def _not_subscribed(conn: Connection, channel: str, code: int, reason: str) -> None:
    conn.send(frames.push(Push.UNSUBSCRIBED, channel=channel, code=code, reason=reason))


# ``unsubscribed``'s code for a subscription of the upgrade that could not be placed for
# now (RFC 6455's "try again later").
TRY_AGAIN_LATER = 1013


def offers_subprotocol(header: str) -> bool:
    """Whether ``Sec-WebSocket-Protocol`` (a comma-separated list) names ours."""
    if header == SUBPROTOCOL:  # what every Hubbub client sends: no list to split
        return True
    return SUBPROTOCOL in (p.strip() for p in header.split(","))


async def handshake(realtime: Realtime, conn: Connection, timeout: float) -> bool:
    # A plain timer closes a socket that sends nothing (its close ends the wait with a
    # CLOSING message): lighter than a timeout scope around the read. At once when the
    # hub's shutdown began while the upgrade was written.
    wait = timeout if realtime.accepting else 0.0
    overdue = asyncio.get_running_loop().call_later(wait, _connect_overdue, realtime, conn, timeout)
    # Known to the service while it waits, so that a shutdown closes it with 1001 too:
    # aiohttp reads nothing more once its shutdown begins, so the connect could not come.
    realtime.handshaking.add(conn)
    try:
        msg = await conn.ws.receive()
    finally:
        overdue.cancel()
        realtime.handshaking.discard(conn)
    if conn.closed:  # overdue, or the hub shutting down: closed as the frame came in
        return False
    if msg.type is not WSMsgType.TEXT:
        if msg.type in _ENDED or msg.type is WSMsgType.ERROR:
            return False
        conn.close(CloseCode.UNAUTHORIZED, "the first frame must be a connect command")
        return False
    if not realtime.accepting:  # a frame read as the shutdown began: not registered
        conn.close(CloseCode.GOING_AWAY, SHUTTING_DOWN)
        return False
    try:
        [raw] = cmd.split_frame(msg.data) or [None]
        command = cmd.parse_command(raw)
    except (cmd.CommandError, ValueError) as exc:
        if isinstance(exc, cmd.CommandError):
            conn.send(frames.error(exc.id, exc.error))
        conn.close(CloseCode.UNAUTHORIZED, "the first frame must be a connect command")
        return False
    if not isinstance(command, cmd.ConnectCall | cmd.Connect):
        conn.close(CloseCode.UNAUTHORIZED, "the first frame must be a connect command")
        return False
    try:
        claims = realtime.authenticate(command.token)
        connected = realtime.register(conn, claims)
    except HubbubError as exc:
        conn.send(frames.error(command.id, exc))
        if isinstance(exc, RateLimited):  # this user's sockets: one is to close
            conn.close(CloseCode.POLICY, exc.message)
        elif exc.details.get("reason") == "deactivated":  # as an open socket is closed
            conn.close(CloseCode.FORBIDDEN, exc.message, reconnect=False)
        else:
            conn.close(CloseCode.UNAUTHORIZED, exc.message)
        return False
    conn.last_seen = time.monotonic()
    conn.send(frames.result_obj(command.id, connected))
    return True


def _connect_overdue(realtime: Realtime, conn: Connection, timeout: float) -> None:
    if realtime.accepting:
        conn.close(CloseCode.UNAUTHORIZED, f"send connect within {timeout:g}s")
    else:  # the connect may have been sent: aiohttp no longer reads it
        conn.close(CloseCode.GOING_AWAY, SHUTTING_DOWN)


async def _frame(realtime: Realtime, conn: Connection, msg: WSMessage) -> bool:
    """Handle one frame: each command it carries, in order. True when the socket is done
    (closed by the client, or by what this frame did)."""
    now = conn.last_seen = time.monotonic()
    if conn.closed:
        return True
    counters["frames_in"] += 1
    settings = realtime.settings
    if msg.type is not WSMsgType.TEXT:
        if msg.type is WSMsgType.BINARY:
            _protocol_error(
                conn,
                settings.ws_max_protocol_errors,
                None,
                BadRequest("send text frames: JSON"),
            )
        return False
    try:
        items = cmd.split_frame(msg.data)
    except cmd.CommandError as exc:
        _protocol_error(conn, settings.ws_max_protocol_errors, exc.id, exc.error)
        return False
    for raw in items:
        if conn.gone():  # a command of this batch closed it
            return True
        admission = conn.limiter.admit(now)  # a batch's commands arrived together
        if admission is not Admission.ADMIT:
            if admission is Admission.CLOSE:
                conn.close(CloseCode.POLICY, "too many commands; slow down")
                return True
            raw_id = raw.get("id") if isinstance(raw, dict) else None
            retry = round(conn.limiter.retry_after(), 3)
            error = RateLimited("too many commands on this connection", retry_after=retry)
            conn.send(frames.error(raw_id if isinstance(raw_id, int) else None, error))
            continue
        try:
            command = cmd.parse_command(raw)
            await realtime.handle(conn, command)
        except cmd.CommandError as exc:
            _protocol_error(conn, settings.ws_max_protocol_errors, exc.id, exc.error)
        except HubbubError as exc:  # raised before a command had an id to answer
            conn.send(frames.error(None, exc))
        except Exception:
            log.exception("command failed", extra={"conn": conn.id})
            conn.close(CloseCode.INTERNAL, "internal error")
            return True
        # Heard from as of now: while a command waits (a subscribe's history read, up to
        # its timeout), nothing is read, not even the client's pong; a batch of slow
        # ones must not look like two ping intervals of silence (``Realtime.ping_all``).
        conn.last_seen = time.monotonic()
    return False


def _protocol_error(
    conn: Connection, limit: int, command_id: int | None, error: HubbubError
) -> None:
    conn.send(frames.error(command_id, error))
    conn.protocol_errors += 1
    if conn.protocol_errors >= limit:
        conn.close(CloseCode.POLICY, "too many malformed frames")
