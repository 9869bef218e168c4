"""A socket's frames handed to the hub as aiohttp parses them, when nothing waits before
them: no task wake per frame.

aiohttp's WebSocket parser puts each frame into the socket's ``WebSocketDataQueue``,
and the handler task's ``receive`` takes it from there: a future resolved, the task
woken, and ``receive``'s and the queue's ``read`` coroutines run, for every read that
brings frames. ``FrameQueue`` is that queue with a shortcut: while the read loop waits
in ``receive`` (``idle``) with nothing queued, a text frame is offered to ``take`` (the
endpoint's) as the parser reads it. ``take`` runs it there and then — when it can be run
without awaiting, a frame of ``rpc`` commands — and says so; any other frame (and every
frame that is not text: close, ping, the errors aiohttp feeds) is queued as aiohttp
queues it, for the loop's ``receive``. Frames keep their order: one queued frame makes
the following ones queue behind it until the loop has taken them all and waits again.
Flow control is aiohttp's: only queued frames count towards its limit.

``take_frames`` swaps a prepared socket's queue and parser for a ``FrameQueue`` and a
parser of its own (aiohttp makes both in ``WebSocketResponse._post_start``), only when
the stock parser can have read nothing yet; ``Untouched`` watches for that across the
upgrade. Both reach into aiohttp's internals, checked by ``takes_frames`` before use
(tests/unit/test_ws_reader.py checks them against the installed aiohttp): when they are
not as expected, the socket keeps aiohttp's own queue, and every frame goes through
``receive``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader

_TEXT = WSMsgType.TEXT


class FrameQueue(WebSocketDataQueue):
    """aiohttp's queue of one socket's frames that offers each text frame to ``take`` as
    it comes, while the read loop is ``idle`` and nothing is queued (module docstring).

    ``take`` gets the frame's text and returns whether it ran it; it must not raise (it
    runs inside aiohttp's parser, which would fail the socket). It is None until the
    socket is connected: the ``connect`` handshake reads through ``receive``."""

    __slots__ = ("idle", "take")  # a queue per socket: no instance dict

    def __init__(self, protocol: Any, limit: int, *, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(protocol, limit, loop=loop)
        self.take: Callable[[str], bool] | None = None
        self.idle = False  # the read loop waits in ``receive`` for the next frame

    def feed_data(self, data: Any, size: int) -> None:
        # What aiohttp's parser calls with each frame (a ``WSMessage``).
        if self.idle and data[0] is _TEXT and not self._buffer and not self.is_eof():
            take = self.take
            if take is not None and take(data[1]):
                return
        super().feed_data(data, size)


# The aiohttp internals ``take_frames`` uses: the response's queue, parser and settings
# (``WebSocketResponse._post_start``), and the protocol's parser slot and unparsed tail.
_RESPONSE_FIELDS = ("_reader", "_parser", "_max_msg_size", "_compress", "_decode_text")
_PROTOCOL_FIELDS = ("_payload_parser", "_message_tail")


def takes_frames(ws: web.WebSocketResponse, protocol: Any) -> bool:
    """Whether ``ws`` (prepared) reads through aiohttp's C or Python queue and parser,
    as aiohttp's ``WebSocketResponse`` does today, with ``protocol`` feeding that parser."""
    return (
        all(hasattr(ws, name) for name in _RESPONSE_FIELDS)
        and all(hasattr(protocol, name) for name in _PROTOCOL_FIELDS)
        and type(ws._reader) is WebSocketDataQueue
        and type(ws._parser) is WebSocketReader
        and protocol._payload_parser is ws._parser
        and not ws._compress
    )


class Untouched:
    """Whether a socket's stock parser has read nothing across its upgrade: no bytes
    were waiting when the upgrade began (a client may send frames only once it has the
    server's handshake, RFC 6455 §4.1, but one that does not wait is still served), and
    the upgrade never gave the event loop a turn in which more could arrive. aiohttp
    feeds the parser what arrived before it was made, when it makes it."""

    __slots__ = ("_handle", "_turned", "_waiting")

    def __init__(self, request: web.Request) -> None:
        protocol: Any = request.protocol
        self._waiting = bool(getattr(protocol, "_message_tail", b"x"))
        self._turned = False
        # A callback runs before the task resumes from any suspension: it marks one.
        self._handle = asyncio.get_running_loop().call_soon(self._turn)

    def _turn(self) -> None:
        self._turned = True

    def take_frames(self, request: web.Request, ws: web.WebSocketResponse) -> FrameQueue | None:
        """Swap ``ws``'s queue and parser for a ``FrameQueue`` and a parser feeding it;
        None (``ws`` unchanged) when its stock parser may have read something or aiohttp
        is not as ``takes_frames`` expects. Call right after the upgrade, before any
        await."""
        self._handle.cancel()
        protocol: Any = request.protocol
        if self._waiting or self._turned or not takes_frames(ws, protocol):
            return None
        stock: Any = ws._reader
        if stock._buffer or stock._size:
            return None
        queue = FrameQueue(protocol, stock._limit // 2, loop=asyncio.get_running_loop())
        parser = WebSocketReader(
            queue, ws._max_msg_size, compress=False, decode_text=ws._decode_text
        )
        protocol._payload_parser = parser
        ws._reader = queue
        ws._parser = parser
        return queue
