"""The hub's HTTP server: aiohttp's, but a connection whose first request is a plain
WebSocket upgrade of ``/ws`` is upgraded without aiohttp's request machinery.

An upgrade through aiohttp builds a request handler and its task, an HTTP parser, a
request, a URL, the middleware chain's calls and a response before the socket exists,
and the socket keeps most of them for its life. Upgraded here, the connection's
protocol reads the head itself (``hub/ws/upgrade_head.py``), the hub's checks run on it
(``endpoint.direct_socket``), and the socket is aiohttp's WebSocket reader and writer on
the transport. Every other connection — a REST request, an upgrade after a request on
a kept-alive connection, an upgrade this parser leaves alone, and every refused one — is
handed to aiohttp as it was read, and aiohttp serves it as it would have.

``HubRunner`` is ``web.AppRunner`` with this server; ``hubbub serve`` runs the hub with
it (``hub/main.py``), and so do the tests' hubs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import OrderedDict
from typing import cast

from aiohttp import web
from aiohttp._websocket.reader import WebSocketReader
from aiohttp.base_protocol import BaseProtocol
from aiohttp.web_protocol import RequestHandler

from hub.ws.endpoint import direct_socket
from hub.ws.upgrade_head import UpgradeHead, parse_upgrade_head

log = logging.getLogger("hubbub.hub")

# Bytes a client may send while its upgrade is checked (it should send none before the
# 101): past this, the connection stops being read until the upgrade is decided.
PENDING_LIMIT = 64 * 1024
# aiohttp's default keep-alive timeout (``RequestHandler``'s ``keepalive_timeout``).
KEEPALIVE_S = 3630.0


class DirectProtocol(BaseProtocol):
    """A connection's protocol until its first read says who serves it, then its
    WebSocket's if it is upgraded here; handed to aiohttp's ``RequestHandler`` otherwise.
    It is aiohttp's ``BaseProtocol``: the WebSocket reader's queue and writer use its
    flow control, as they use a request handler's."""

    __slots__ = ("_parse_failed", "_read", "_server", "_ws_parser")

    def __init__(self, server: HubServer) -> None:
        super().__init__(server.loop)
        self._server = server
        self._read: bytearray | None = None  # what was read while the upgrade is checked
        self._ws_parser: WebSocketReader | None = None
        self._parse_failed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # As aiohttp's handler does for a new connection: TCP_NODELAY, TCP keep-alive (the
        # kernel finds a peer that vanished), and a connection that sends no request is
        # closed after the keep-alive timeout. (aiohttp's handler sets the options again
        # on a connection handed over.)
        tcp = self.transport = cast(asyncio.Transport, transport)
        sock = tcp.get_extra_info("socket")
        if sock is not None:  # both on one socket object: what aiohttp's helpers set
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._server.accepted(self)

    def close_idle(self) -> None:
        """No request came within the keep-alive timeout, or the hub is shutting down."""
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        parser = self._ws_parser
        if parser is not None:
            if not self._parse_failed:
                # A frame the reader could not parse: it has told the socket (an ERROR
                # message, then its close handshake); nothing more is read, as aiohttp's
                # handler reads nothing more.
                self._parse_failed, _ = parser.feed_data(data)
            return
        read = self._read
        if read is not None:  # the upgrade is still being checked
            read += data
            if len(read) > PENDING_LIMIT:
                self._pause_transport_reading()
            return
        self._server.idle.pop(self, None)
        head = parse_upgrade_head(data)
        if head is None:
            self._hand_over(data)
            return
        self._read = bytearray(data)
        self._server.serve_socket(self, head)

    def hand_over(self) -> None:
        """Let aiohttp serve this connection (``direct_socket``: a refused upgrade),
        from what was read so far."""
        read, self._read = self._read, None
        self._resume_transport_reading()
        self._hand_over(bytes(read or b""))

    def _hand_over(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self.transport = None
        handler = self._server.http()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if data:
            handler.data_received(data)

    def upgraded(self, parser: WebSocketReader, head_length: int) -> None:
        """From now on what is read goes to ``parser``, the socket's, starting with what
        followed the upgrade's head."""
        transport = self.transport
        assert transport is not None
        self._upgraded = True  # BaseProtocol: flow control pauses the transport alone
        self._ws_parser = parser
        read, self._read = self._read, None
        self._resume_transport_reading()
        if read is not None and len(read) > head_length:
            self.data_received(bytes(read[head_length:]))

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        self._server.idle.pop(self, None)
        self._read = None
        parser, self._ws_parser = self._ws_parser, None
        if parser is not None:
            parser.feed_eof()


class HubServer(web.Server):
    """aiohttp's server (``http``) behind ``DirectProtocol``: the protocol factory the
    listening socket calls, and the shutdown that also waits for the sockets upgraded
    here."""

    def __init__(self, http: web.Server, app: web.Application) -> None:
        super().__init__(
            http.request_handler,
            request_factory=http.request_factory,
            handler_cancellation=http.handler_cancellation,
        )
        self.http = http
        self.app = app
        self.loop = asyncio.get_running_loop()
        self.sockets: set[asyncio.Task[None]] = set()
        # Connections that have sent nothing yet, in the order they came, with when. An
        # OrderedDict: taking its oldest entry off is O(1) however many went before (a
        # dict's iteration walks the slots its deletions left, until it is resized).
        self.idle: OrderedDict[DirectProtocol, float] = OrderedDict()
        self._idle_check: asyncio.TimerHandle | None = None
        # aiohttp's keep-alive timeout, as the runner configured its handlers (private:
        # the server keeps its handlers' arguments), else its default.
        handler_args = getattr(http, "_kwargs", {})
        self.keepalive_timeout = float(handler_args.get("keepalive_timeout", KEEPALIVE_S))

    def __call__(self) -> DirectProtocol:  # type: ignore[override]  # the loop's factory
        return DirectProtocol(self)

    def serve_socket(self, protocol: DirectProtocol, head: UpgradeHead) -> None:
        task = self.loop.create_task(direct_socket(self.app, protocol, head))
        self.sockets.add(task)
        task.add_done_callback(self._socket_ended)

    def _socket_ended(self, task: asyncio.Task[None]) -> None:
        self.sockets.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("socket task failed", exc_info=task.exception())

    @property
    def connections(self) -> list[RequestHandler]:
        return self.http.connections

    def accepted(self, protocol: DirectProtocol) -> None:
        """A new connection: closed if it sends nothing within the keep-alive timeout. One
        timer for all of them (a timer per connection would cost each connect a handle
        made and cancelled microseconds later)."""
        now = self.loop.time()
        self.idle[protocol] = now
        if self._idle_check is None and self.keepalive_timeout > 0:  # 0: never, as aiohttp
            self._idle_check = self.loop.call_at(now + self.keepalive_timeout, self._close_idle)

    def _close_idle(self) -> None:
        """Close the connections silent for the keep-alive timeout (the oldest come first),
        then look again when the next one will have been."""
        self._idle_check = None
        cutoff = self.loop.time() - self.keepalive_timeout
        idle = self.idle
        while idle:
            protocol, since = next(iter(idle.items()))
            if since > cutoff:
                self._idle_check = self.loop.call_at(
                    since + self.keepalive_timeout, self._close_idle
                )
                return
            del idle[protocol]
            protocol.close_idle()

    def pre_shutdown(self) -> None:
        """As aiohttp closes its idle connections: those that have sent nothing yet."""
        self.http.pre_shutdown()
        if self._idle_check is not None:
            self._idle_check.cancel()
            self._idle_check = None
        idle, self.idle = self.idle, OrderedDict()
        for protocol in idle:
            protocol.close_idle()

    async def shutdown(self, timeout: float | None = None) -> None:
        """aiohttp's connections as aiohttp shuts them down, and the sockets upgraded here
        (told to go by the app's ``on_shutdown``, which ran first), both within
        ``timeout``; the sockets' tasks still running then are cancelled."""
        await asyncio.gather(self.http.shutdown(timeout), self._sockets_ended(timeout))

    async def _sockets_ended(self, timeout: float | None) -> None:
        if not self.sockets:
            return
        _done, pending = await asyncio.wait(self.sockets, timeout=timeout)
        for task in pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*pending, return_exceptions=True)


class HubRunner(web.AppRunner):
    """``web.AppRunner`` serving the app through ``HubServer``."""

    async def _make_server(self) -> web.Server:
        return HubServer(await super()._make_server(), self.app)
