"""One client socket: who it is, what it is subscribed to, and how frames reach it.

Frames go straight into the socket's transport — no task and no await per socket — so
a broadcast never waits on one client. The transport buffer is the per-socket queue,
bounded by ``HUBBUB_WS_SEND_BUFFER_BYTES``. When a slow client lets it fill up, the
channel's slow-consumer policy decides:

* ``disconnect`` — close with 4009; the client reconnects and recovers from history. A
  client that does not take the close frame (it stopped reading) has its TCP connection
  reset ``CLOSE_GRACE_S`` later, so its unread buffer is not held;
* ``drop-oldest`` / ``conflate-by-key`` — hold publications in a small queue of the
  connection's own (dropping the oldest, or keeping only the newest per data key), send
  it as the transport drains, and tell the client how many it lost with a ``gap`` push.

A subscribe's recovery (up to ``MAX_RECOVERY_BYTES``, more than the send limit) and a
``presence`` reply (``channels.py``) are not counted against these limits while on their
way (``send_recovery``): what the limits measure is the ``backlog``, the buffer less the
recoveries' bytes still in it. Otherwise a recovery bigger than the send limit would
have the next publication close a slow client (4009), which would reconnect, recover,
and be closed again. The bytes of the recoveries still on their way are bounded instead
(``recovery_pending``): a subscribe recovers no more than ``MAX_RECOVERY_BYTES`` less
those, and a ``presence`` is refused while they are at that bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import sys
import time
from collections import Counter, deque

from aiohttp import web

from hub.ws import frames
from hub.ws.fanout import Feed, Item, Subscriber
from hub.ws.limits import CommandLimiter
from hubbub.contracts.channels import SlowConsumerPolicy
from hubbub.contracts.envelope import Caller
from hubbub.contracts.protocol import RECONNECT, CloseCode, Push

log = logging.getLogger("hubbub.ws")

# Process-wide counters for /metrics (hub/admin.py): dropped, slow_closed, and the
# frames and bytes written (frames_out, bytes_out; publications counted one frame each).
counters: Counter[str] = Counter()

HELD_MAX = 256  # publications held for a slow client under a dropping policy
CLOSE_GRACE_S = 3.0  # a client that does not take its close frame is cut off after this


class Connection(Subscriber):
    # An idle socket holds only these slots and what they point to: containers a
    # socket may never need (RPC ids, drop counts, held publications, pending replies)
    # are made on first use, and token deadlines live in the hub's one timer
    # (``sessions.Deadlines``), not in timer handles of their own.
    __slots__ = (
        "_recovery_end",
        "_recovery_start",
        "_rpc_ids",
        "caller",
        "closed",
        "closing",
        "draining",
        "dropped",
        "expire_at",
        "held",
        "id",
        "ip",
        "last_seen",
        "limiter",
        "out",
        "protocol_errors",
        "queued",
        "send_limit",
        "session_id",
        "subs",
        "token_exp",
        "transport",
        "user_id",
        "warn_at",
        "ws",
    )

    def __init__(
        self,
        conn_id: str,
        ws: web.WebSocketResponse,
        limiter: CommandLimiter,
        ip: str | None,
        send_limit: int,
    ) -> None:
        self.id = conn_id
        self.ws = ws
        self.transport: asyncio.Transport | None = None
        self.caller: Caller | None = None
        self.user_id = ""
        self.session_id: str | None = None
        self.token_exp = 0.0
        self.subs: dict[str, int] = {}  # channel → last offset delivered
        self.limiter = limiter
        self.protocol_errors = 0
        self.last_seen = time.monotonic()
        self.warn_at = 0.0  # token deadlines, loop time (0: none)
        self.expire_at = 0.0
        self._rpc_ids: set[int] | None = None
        self.held: deque[tuple[str, Item]] | None = None
        self.dropped: dict[str, int] | None = None  # per channel, while some are untold
        self.out: list[bytes] | None = None  # replies written at the end of this turn
        self.draining: asyncio.Task[None] | None = None
        self.closed = False
        self.ip = ip if ip is None else sys.intern(ip)  # one string per address
        self.send_limit = send_limit
        self.closing: asyncio.Future[None] | None = None  # the close handshake, once begun
        # Bytes this socket was given to send, all told (held replies included): the
        # positions of the recoveries on their way, [start, end), are counted in them
        # (end 0: none). aiohttp's own few (pongs, the close frame) are not counted.
        self.queued = 0
        self._recovery_start = 0
        self._recovery_end = 0

    def __repr__(self) -> str:
        return f"<Connection {self.id} user={self.user_id or '-'}>"

    def gone(self) -> bool:
        return self.closed

    def lost(self) -> bool:
        """Closed by the hub, or its TCP connection gone (the client dropped it). The
        second is known before the socket's read loop sees it, which may be busy with a
        command that waits (a subscribe's recovery)."""
        t = self.transport
        return self.closed or t is None or t.is_closing()

    @property
    def rpc_ids(self) -> set[int]:
        """Ids of this socket's RPCs in flight."""
        ids = self._rpc_ids
        if ids is None:
            ids = self._rpc_ids = set()
        return ids

    # --- writing ------------------------------------------------------------------------

    def buffered(self) -> int:
        t = self.transport
        return t.get_write_buffer_size() if t is not None else 0

    def backlog(self) -> int:
        """What the send limits measure: the transport's buffer less the bytes of the
        recoveries still in it (``send_recovery``)."""
        t = self.transport
        if t is None:
            return 0
        size = t.get_write_buffer_size()
        end = self._recovery_end
        if not end:
            return size
        written = self.queued - self._held_bytes()  # where the transport's bytes end
        drained = written - size  # what left the buffer (about: aiohttp's are not counted)
        if drained >= end:
            self._recovery_start = self._recovery_end = 0
            return size
        return size - max(0, min(end, written) - max(self._recovery_start, drained))

    def recovery_pending(self) -> int:
        """Bytes of this socket's recoveries not yet sent (held, or in the buffer)."""
        end = self._recovery_end
        if not end:
            return 0
        drained = self.queued - self._held_bytes() - self.buffered()
        if drained >= end:
            self._recovery_start = self._recovery_end = 0
            return 0
        return end - max(self._recovery_start, drained)

    def _held_bytes(self) -> int:
        out = self.out
        return 0 if out is None else sum(map(len, out))

    def send_recovery(self, payload: bytes) -> None:
        """``send`` for a subscribe's reply carrying a recovery, or a ``presence``
        reply: its bytes do not count against the send limits while it is on its way
        (only the ones written after it do). While an earlier recovery is still on its
        way, the range grows to take this one in too (and what was written between
        them)."""
        before = self.queued
        pending = self.recovery_pending()
        self.send(payload)
        if self.queued == before:
            return  # not sent: closed
        if not pending:
            self._recovery_start = before
        self._recovery_end = self.queued

    def send(self, payload: bytes) -> None:
        """A reply or a push to this socket alone. Replies are bounded by the command
        rate, but a client that asks and never reads would grow its buffer without end:
        past four times the send limit it is cut off as a slow consumer."""
        self.send_frame(frames.text_frame(payload))

    def send_frame(self, frame: bytes) -> None:
        """``send`` for a reply already framed (``frames.result_frame``)."""
        t = self.transport
        if t is not None and not self.closed and self.backlog() > 4 * self.send_limit:
            counters["slow_closed"] += 1
            self.close(CloseCode.SLOW_CONSUMER, "replies are piling up unread; reconnect")
            return
        if t is None or self.closed or t.is_closing():
            return
        counters["frames_out"] += 1
        counters["bytes_out"] += len(frame)
        self._hold(frame)

    def hold_head(self, head: bytes) -> None:
        """Write ``head`` (the ``101`` of an upgrade this hub answers itself) before
        anything else this socket is sent: it waits with this turn's replies (``send``),
        and they leave together, in one write."""
        assert self.out is None, "the head goes first"
        assert not self.queued, "the head goes first"
        self._hold(head)

    def _hold(self, data: bytes) -> None:
        self.queued += len(data)
        # Replies wait for the end of this event-loop turn: the replies to the frames of
        # one read (``connect`` and ``subscribe`` sent together) leave in one write.
        out = self.out
        if out is None:
            self.out = [data]
            global _flush_loop
            loop = asyncio.get_running_loop()
            if _flush_loop is not loop:  # no flush scheduled on this loop yet
                loop.call_soon(_flush_corked)
                _flush_loop = loop
            _corked.append(self)
        else:
            out.append(data)

    def flush(self) -> None:
        """Write the replies held for the end of this turn, now. A socket that closed
        meanwhile (its close frame may be out already) drops them."""
        out = self.out
        if out is None:
            return
        self.out = None
        t = self.transport
        if t is not None and not self.closed and not t.is_closing():
            t.write(out[0] if len(out) == 1 else b"".join(out))

    def write_frame(self, frame: bytes) -> None:
        t = self.transport
        if t is None or self.closed or t.is_closing():
            return
        counters["frames_out"] += 1
        counters["bytes_out"] += len(frame)
        self.queued += len(frame)
        if self.out is not None:
            self.out.append(frame)  # after the replies held: order kept
        else:
            t.write(frame)

    def push_frame(self, frame: bytes) -> None:
        """A push about a channel that is not a publication (a presence diff), bounded
        like one: past the send limit the socket is closed as a slow consumer, so a
        client that stops reading (and still answers pings) cannot grow it without end.
        While it holds publications under a dropping policy it is allowed the replies'
        limit, four times as much: its channel's policy is not to close it."""
        t = self.transport
        limit = self.send_limit if self.held is None else 4 * self.send_limit
        if t is not None and not self.closed and self.backlog() > limit:
            self._close_slow()
            return
        self.write_frame(frame)

    def deliver(self, feed: Feed, items: list[Item], joined: bytes) -> None:
        """Publications of ``feed``, in offset order; those already delivered are skipped.
        Runs once per subscriber and publication batch: the fan-out's hot path."""
        subs = self.subs
        name = feed.name
        seen = subs.get(name)
        if seen is None or self.closed:
            return  # unsubscribed or closed meanwhile
        last = items[-1].offset
        if last <= seen:
            return
        if items[0].offset <= seen:
            items = [i for i in items if i.offset > seen]
            joined = b"".join(i.frame for i in items)
        subs[name] = last
        t = self.transport
        if t is None:
            return
        size = t.get_write_buffer_size()
        if self.held is not None or (
            size > self.send_limit and (not self._recovery_end or self.backlog() > self.send_limit)
        ):
            self._slow(feed, items)
            return
        if t.is_closing():
            return
        counters["frames_out"] += len(items)
        counters["bytes_out"] += len(joined)
        self.queued += len(joined)
        if self.out is not None:
            self.out.append(joined)  # after the replies held: order kept
        else:
            t.write(joined)

    def missed(self, feed: Feed) -> None:
        """The hub lost publications of ``feed`` for good: the client reconnects and its
        resubscribe with ``since`` recovers them from history (or says it cannot)."""
        self.close(CloseCode.GOING_AWAY, f"this hub missed publications of {feed.name}; reconnect")

    def _close_slow(self) -> None:
        """Close a socket whose send buffer is past its limit (4009): it reconnects and
        recovers what it missed from history."""
        log.info("slow consumer closed", extra={"conn": self.id, "buffered": self.buffered()})
        counters["slow_closed"] += 1
        self.close(CloseCode.SLOW_CONSUMER, "send buffer overflowed; reconnect and recover")

    def _slow(self, feed: Feed, items: list[Item]) -> None:
        policy = feed.policy.slow_consumer
        if policy is SlowConsumerPolicy.DISCONNECT:
            self._close_slow()
            return
        held = self.held if self.held is not None else deque()
        self.held = held
        for item in items:
            if policy is SlowConsumerPolicy.CONFLATE and item.key is not None:
                for i, (channel, old) in enumerate(held):
                    if channel == feed.name and old.key == item.key:
                        del held[i]
                        self._count_drop(channel)
                        break
            held.append((feed.name, item))
            if len(held) > HELD_MAX:
                channel, _ = held.popleft()
                self._count_drop(channel)
        if self.draining is None:
            self.draining = asyncio.ensure_future(self._drain_held())

    def _count_drop(self, channel: str) -> None:
        counters["dropped"] += 1
        if self.dropped is None:
            self.dropped = {}
        self.dropped[channel] = self.dropped.get(channel, 0) + 1

    def _send_gaps(self) -> None:
        dropped, self.dropped = self.dropped, None
        for channel, count in (dropped or {}).items():
            self.send(frames.push(Push.GAP, channel=channel, dropped=count))

    async def _drain_held(self) -> None:
        try:
            while self.held and not self.closed:
                # The transport has no public "drained" signal: look every 10 ms.
                while self.backlog() > self.send_limit // 2 and not self.closed:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                self._send_gaps()
                while self.held and self.backlog() <= self.send_limit:
                    _, item = self.held.popleft()
                    self.write_frame(item.frame)
        finally:
            self.draining = None
            if not self.held:
                self.held = None
                self._send_gaps()

    # --- closing ------------------------------------------------------------------------

    def close(self, code: int, reason: str, *, reconnect: bool | None = None) -> None:
        """Say why (a ``disconnect`` push), then close; never blocks on the client."""
        if self.closed:
            return
        self._say_closing(code, reason, reconnect)
        self.closing = task = asyncio.ensure_future(self._close(code, reason))
        _closing.add(task)
        task.add_done_callback(_closing.discard)

    def closed_by_aiohttp(self, code: int, reason: str) -> None:
        """aiohttp closes the socket itself (a frame over the size limit, found as it
        was read): say why first, as ``close`` does; aiohttp writes the close frame."""
        if not self.closed:
            self._say_closing(code, reason, None)

    def _say_closing(self, code: int, reason: str, reconnect: bool | None) -> None:
        again = RECONNECT.get(CloseCode(code), True) if reconnect is None else reconnect
        self.write_frame(
            frames.text_frame(
                frames.push(Push.DISCONNECT, code=code, reason=reason, reconnect=again)
            )
        )
        self.flush()  # what was said before the close frame aiohttp writes
        self.closed = True  # its token deadlines find nothing to do now
        t = self.transport
        if t is not None:
            asyncio.get_running_loop().call_later(CLOSE_GRACE_S, _abort_if_open, t)

    async def _close(self, code: int, reason: str) -> None:
        try:
            await self.ws.close(code=code, message=reason.encode()[:120], drain=False)
        except Exception:
            log.debug("closing %s failed", self.id, exc_info=True)


_closing: set[asyncio.Future[None]] = set()  # close handshakes under way (kept referenced)

_corked: list[Connection] = []  # connections holding replies until the end of this turn
# The loop whose flush is scheduled: a loop that ended before its callback ran (a test's)
# does not keep a later loop from scheduling its own.
_flush_loop: asyncio.AbstractEventLoop | None = None


def _flush_corked() -> None:
    """One callback per loop turn writes every connection's held replies; one socket
    failing to write does not keep the others' replies back."""
    global _flush_loop
    _flush_loop = None
    conns = _corked.copy()
    _corked.clear()
    for conn in conns:
        try:
            conn.flush()
        except Exception:
            log.exception("writing held replies failed", extra={"conn": conn.id})


def _abort_if_open(transport: asyncio.Transport) -> None:
    """Cut the TCP connection if the close handshake has not ended it.

    ``is_closing()`` is no guide: aiohttp gives up on the handshake with
    ``transport.close()``, which waits for the write buffer to flush — forever, for a
    peer that does not read. ``abort()`` drops the buffer, and ``SO_LINGER`` 0 makes the
    kernel reset the connection instead of going on sending its own queued bytes.
    A connection that is closed, or closing with nothing left to send, is left alone."""
    if transport.is_closing() and not transport.get_write_buffer_size():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()


_LINGER_RESET = struct.pack("ii", 1, 0)  # l_onoff=1, l_linger=0: close() sends a reset
