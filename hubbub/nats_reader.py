"""A cheaper reader for nats-py's ``Client``: the same protocol handling as nats-py's
``Parser`` for every message, with less work per message.

nats-py's ``Parser.parse`` matches each control line against one regular expression
after another, deletes every message from the front of its ``bytearray`` buffer (a move
of all the bytes behind it) and awaits ``Client._process_msg``, a coroutine, per message.
``Reader.parse`` walks each read with an offset instead and drops what it consumed once
per read; a chunk that starts with an empty buffer is parsed in place. A message without
headers to a plain subscription — one whose messages go to its pending queue (a callback's
or iterator's ``asyncio.Queue``, or a ``nats_direct.Dispatch``), not JetStream's, not an
old-style request's future — is handled by ``_take``, which does what ``_process_msg``
does in that case without a coroutine: the stats, ``_received``, the max-msgs
auto-unsubscribe, the message and the put into the queue (for a ``Dispatch``, what its
``put_nowait`` does: the message straight to its function; for a ``RawDispatch``, the
message's bytes, with no ``Msg`` built).

Everything else goes to nats-py's own code: a message with headers (status ones like the
503 of no responders too), to a JetStream subscription or a future, or one that would
be a slow consumer's, is awaited through ``Client._process_msg``; PING and PONG through
``_process_ping``/``_process_pong``; and any control line other than a well-formed MSG,
HMSG, PING, PONG or +OK (INFO, -ERR, a malformed or split line) hands the rest of the read
to ``Parser.parse``, which raises, waits for more bytes or goes on exactly as it would.
The lines taken here are a subset of those nats-py's expressions match, read into the
same fields.

Between reads the parser's state is nats-py's (``buf``, ``state``, ``needed``,
``header_needed``, ``msg_arg``), so the class of a connected client's parser can be
swapped (``read_directly``) and ``Parser.reset`` (on reconnect) still works. A reset while
a read is suspended in an await replaces ``buf``; the read then stops, as nats-py's does.

``_take`` copies ``Client._process_msg`` of the nats-py releases in ``VERSIONS``;
``reads_directly`` refuses any other (tests/unit/test_nats_reader.py and
tests/integration/test_nats_reader.py fail then, for a review of the new release's).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.client import __version__ as nats_version
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.protocol.parser import AWAITING_CONTROL_LINE, AWAITING_MSG_PAYLOAD, Parser

from hubbub.nats_direct import Dispatch, dispatches_directly

# nats-py releases whose Client._process_msg _take follows.
VERSIONS = frozenset({"2.16.0"})

# Well-formed MSG and HMSG lines as the server writes them (single spaces); each line
# these match, nats-py's MSG_RE/HMSG_RE match too, with the same groups.
_MSG = re.compile(rb"MSG ([^\s]+) (\d+) (?:([^\s]+) )?(\d+)\r\n")
_HMSG = re.compile(rb"HMSG ([^\s]+) (\d+) (?:([^\s]+) )?(\d+) (\d+)\r\n")
_PING = b"PING\r\n"
_PONG = b"PONG\r\n"
_OK = b"+OK\r\n"
_M = ord("M")
_H = ord("H")
_CRLF_SIZE = 2


class Reader(Parser):
    """nats-py's ``Parser`` with a cheaper ``parse`` (the module's docstring)."""

    nc: Any

    async def parse(self, data: bytes = b"") -> None:
        buf = self.buf
        state = self.state
        if state == AWAITING_MSG_PAYLOAD and len(buf) + len(data) < self.needed + _CRLF_SIZE:
            buf.extend(data)  # a large message still arriving
            return
        view: bytes
        if buf:
            buf.extend(data)
            view = bytes(buf)
            in_place = False
        else:
            view = data if type(data) is bytes else bytes(data)
            in_place = True
        end = len(view)
        pos = 0
        nc = self.nc
        try:
            if state == AWAITING_MSG_PAYLOAD:  # the payload of the previous read's line
                arg = self.msg_arg
                sid, subject, reply = arg["sid"], arg["subject"], arg["reply"]
                needed = self.needed
                hsize = self.header_needed
                pos = needed + _CRLF_SIZE
                state = self.state = AWAITING_CONTROL_LINE
                self.header_needed = 0
                if hsize > 0:
                    await nc._process_msg(sid, subject, reply, view[hsize:needed], view[:hsize])
                elif not self._take(sid, subject, reply, view[:needed]):
                    await nc._process_msg(sid, subject, reply, view[:needed], None)
                if self.buf is not buf:  # reset meanwhile: the rest of this read is void
                    return
            while pos < end:
                first = view[pos]
                if first == _M:
                    msg = _MSG.match(view, pos)
                    if msg is None:
                        break
                    subject, sid_, reply_, size = msg.groups()
                    hsize = 0
                elif first == _H:
                    msg = _HMSG.match(view, pos)
                    if msg is None:
                        break
                    subject, sid_, reply_, header_size, size = msg.groups()
                    hsize = int(header_size)
                elif view.startswith(_PING, pos):
                    pos += len(_PING)
                    await nc._process_ping()
                    if self.buf is not buf:
                        return
                    continue
                elif view.startswith(_PONG, pos):
                    pos += len(_PONG)
                    await nc._process_pong()
                    if self.buf is not buf:
                        return
                    continue
                elif view.startswith(_OK, pos):
                    pos += len(_OK)
                    continue
                else:
                    break
                sid = int(sid_)
                reply = reply_ or b""
                needed = int(size)
                start = msg.end()
                if end - start < needed + _CRLF_SIZE:  # the payload comes in a later read
                    arg = self.msg_arg
                    arg["subject"] = subject
                    arg["sid"] = sid
                    arg["reply"] = reply
                    self.needed = needed
                    self.header_needed = hsize
                    state = AWAITING_MSG_PAYLOAD
                    pos = start
                    break
                pos = start + needed + _CRLF_SIZE
                if hsize > 0:
                    body = view[start + hsize : start + needed]
                    await nc._process_msg(sid, subject, reply, body, view[start : start + hsize])
                elif not self._take(sid, subject, reply, view[start : start + needed]):
                    await nc._process_msg(sid, subject, reply, view[start : start + needed], None)
                if self.buf is not buf:
                    return
        except BaseException:
            if self.buf is buf:
                self._keep(view, pos, in_place, state)
            raise
        self._keep(view, pos, in_place, state)
        if state == AWAITING_CONTROL_LINE and pos < end:
            # Not a line taken here (INFO, -ERR, a malformed or split one): nats-py's
            # parser takes the rest of this read from its buffer.
            await Parser.parse(self)

    def _keep(self, view: bytes, pos: int, in_place: bool, state: int) -> None:
        """Leave in ``buf`` what is not consumed of ``view`` and the parser in ``state``."""
        if in_place:
            if pos < len(view):
                self.buf.extend(view[pos:])
        elif pos:
            del self.buf[:pos]
        self.state = state

    def _take(self, sid: int, subject: bytes, reply: bytes, data: bytes) -> bool:
        """Do what ``Client._process_msg`` does with a message without headers when its
        subscription is a plain one (or unknown) and would not drop it as a slow
        consumer's; False, with nothing done, in any other case."""
        nc = self.nc
        subs = nc._subs
        sub = subs.get(sid)
        size = len(data)
        direct = False
        kind: Any = None
        if sub:
            queue = sub._pending_queue
            if sub._jsi is not None or sub._future is not None:
                return False
            kind = type(queue)
            direct = kind is Dispatch or kind is RawDispatch  # never full: holds nothing
            if not direct and (kind is not asyncio.Queue or queue.full()):
                return False
            limit = sub._pending_bytes_limit
            if limit > 0 and sub._pending_size + size >= limit:
                return False
        stats = nc.stats
        stats["in_msgs"] += 1
        stats["in_bytes"] += size
        if not sub:
            return True
        sub._received += 1
        if sub._max_msgs > 0 and sub._received >= sub._max_msgs:
            subs.pop(sid, None)
        if nc.msg_class is Msg:  # Client._build_message's Msg, its fields in order
            if kind is RawDispatch:  # no Msg wanted: what it would hold, as read
                sub._pending_size = 0
                queue.raw(subject, reply, data)
                return True
            msg = Msg(nc, subject.decode(), reply.decode(), data, None, None, False, sid)
        else:
            msg = nc._build_message(sid, subject, reply, data, None)
        if not msg:
            return True
        if direct:
            # What ``Dispatch.put_nowait`` does, without its frame: nothing stays pending.
            sub._pending_size = 0
            queue._deliver(msg)
            return True
        sub._pending_size += size
        queue.put_nowait(msg)
        return True


class RawDispatch(Dispatch):
    """A ``Dispatch`` that takes the messages a ``Reader`` handles itself (no headers, a
    plain subscription) as their bytes: ``raw(subject, reply, data)`` (``reply`` b""
    when there is none), with no ``Msg`` built, and no subject and reply decoded, for a
    receiver that needs neither. Every other message (with headers, or read by nats-py's
    parser) still comes to ``deliver`` as a ``Msg``. Like ``deliver``, ``raw`` must not
    block and must not raise."""

    def __init__(
        self,
        sub: Subscription,
        deliver: Callable[[Msg], None],
        raw: Callable[[bytes, bytes, bytes], None],
    ) -> None:
        super().__init__(sub, deliver)
        self.raw = raw


def dispatch_raw(
    sub: Subscription, deliver: Callable[[Msg], None], raw: Callable[[bytes, bytes, bytes], None]
) -> bool:
    """``nats_direct.dispatch_directly`` with a ``RawDispatch``: False (and the
    subscription's callback keeps its messages) when nats-py is not as expected."""
    if not dispatches_directly(sub):
        return False
    sub._pending_queue = RawDispatch(sub, deliver, raw)
    return True


# What reads_directly requires of a client's class: nats-py's own message handling.
_CLIENT_METHODS = ("_process_msg", "_process_headers", "_build_message", "_read_loop")
# The fields of nats-py's Msg, in the order _take passes them.
_MSG_FIELDS = ("_client", "subject", "reply", "data", "headers", "_metadata", "_ackd", "_sid")


def _msg_fields() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(Msg)) if dataclasses.is_dataclass(Msg) else ()


def reads_directly(nc: NATS) -> bool:
    """Whether ``nc`` is a nats-py client of a release ``Reader`` follows, reading with
    nats-py's own parser and message handling."""
    client: Any = nc
    return (
        nats_version in VERSIONS
        and _msg_fields() == _MSG_FIELDS
        and type(getattr(client, "_ps", None)) is Parser
        and client._ps.nc is nc
        and isinstance(getattr(client, "_subs", None), dict)
        and isinstance(getattr(client, "stats", None), dict)
        and all(getattr(type(nc), name, None) is getattr(NATS, name) for name in _CLIENT_METHODS)
    )


def read_directly(nc: NATS) -> bool:
    """Have ``nc`` read with a ``Reader``; False (nats-py's parser stays) when
    ``reads_directly`` refuses it. The parser's state carries over: its class changes."""
    if not reads_directly(nc):
        return False
    client: Any = nc
    client._ps.__class__ = Reader
    return True
