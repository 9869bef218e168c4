"""One client WebSocket as a raw ``asyncio.Protocol``, and the counters its process's
sockets share.

The HTTP/1.1 upgrade is written and checked by hand; server frames (unmasked; text,
binary, fragmented, ping, close) are parsed in place from the bytes each read returns,
so a read that carries many frames costs one callback and no per-frame allocation.
Once ready a socket counts text frames, answers the application ping
``{"push":"ping"}`` with ``{"op":"pong"}`` (and WebSocket pings with pongs), and for a
random sample of frames reads the ``time.time_ns()`` stamp after ``"t":`` to record
publish-to-receive latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from typing import cast

from bench.wsclient.codec import PONG, accept_for, encode_client_frame, new_key
from bench.wsclient.model import Script, WSTarget

# Protocol states.
_HANDSHAKE = 0
_OPEN = 1
_CLOSED = 2


class Stats:
    """Per-process counters shared by all sockets of a :class:`LoadClient`."""

    __slots__ = (
        "app_pings",
        "binary",
        "close_codes",
        "closed",
        "errors",
        "every",
        "frames",
        "next_sample",
        "open",
        "rng",
        "rx_bytes",
        "samples",
        "ws_pings",
    )

    def __init__(self, sample_every: int, seed: int | None = None) -> None:
        self.every = max(1, sample_every)
        self.rng = random.Random(seed)
        self.frames = 0
        self.binary = 0
        self.rx_bytes = 0
        self.open = 0
        self.closed = 0
        self.app_pings = 0
        self.ws_pings = 0
        self.errors: Counter[str] = Counter()
        self.close_codes: Counter[int] = Counter()
        self.samples: list[int] = []
        self.next_sample = self.rng.randint(1, 2 * self.every - 1)


# --------------------------------------------------------------------------
# The protocol


class WSClientProtocol(asyncio.Protocol):
    """One client WebSocket. Hot path: :meth:`data_received` -> :meth:`_frames`."""

    __slots__ = (
        "_accept",
        "_buf",
        "_frag",
        "_frag_op",
        "_ready",
        "_ready_fut",
        "_replies",
        "_request",
        "_script",
        "_st",
        "_state",
        "transport",
    )

    def __init__(
        self,
        st: Stats,
        target: WSTarget,
        script: Script,
        ready_fut: asyncio.Future[None],
    ) -> None:
        key = new_key()
        self._accept = accept_for(key)
        self._request = target.request_head(key, script)
        self._st = st
        self._script = script
        self._ready_fut = ready_fut
        self._buf = bytearray()
        self._state = _HANDSHAKE
        self._ready = False
        self._replies = 0
        self._frag: bytearray | None = None
        self._frag_op = 0
        self.transport: asyncio.Transport | None = None

    # -- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: cast.
        self.transport = t = cast(asyncio.Transport, transport)
        t.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._state == _OPEN and self._ready:
            self._st.open -= 1
            self._st.closed += 1
        self._state = _CLOSED
        if not self._ready_fut.done():
            self._ready_fut.set_exception(ConnectionError(f"closed before ready: {exc or 'EOF'}"))

    def data_received(self, data: bytes) -> None:
        self._st.rx_bytes += len(data)
        buf = self._buf
        if not buf and self._state == _OPEN:
            pos = self._frames(data)
            if pos < len(data) and self._state == _OPEN:
                buf += data[pos:]
            return
        buf += data
        if self._state == _HANDSHAKE and not self._handshake():
            return
        if self._state == _OPEN:
            pos = self._frames(buf)
            del buf[:pos]

    # -- handshake

    def _handshake(self) -> bool:
        buf = self._buf
        i = buf.find(b"\r\n\r\n")
        if i < 0:
            if len(buf) > 65536:
                self._fail("handshake: response head too large")
            return False
        head = bytes(buf[:i])
        del buf[: i + 4]
        lines = head.split(b"\r\n")
        status = lines[0].split(b" ", 2)
        if len(status) < 2 or status[1] != b"101":
            self._fail("handshake: " + lines[0].decode("latin-1")[:80])
            return False
        accept = b""
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"sec-websocket-accept":
                accept = v.strip()
        if accept != self._accept:
            self._fail("handshake: bad Sec-WebSocket-Accept")
            return False
        self._state = _OPEN
        t = self.transport
        assert t is not None
        for f in self._script.frames:
            t.write(encode_client_frame(f))
        if self._script.ready_after <= 0:
            self._set_ready()
        return True

    def _set_ready(self) -> None:
        self._ready = True
        self._st.open += 1
        if not self._ready_fut.done():
            self._ready_fut.set_result(None)

    def _fail(self, why: str) -> None:
        self._st.errors[why] += 1
        if not self._ready_fut.done():
            self._ready_fut.set_exception(ConnectionError(why))
        if self.transport is not None:
            self.transport.abort()

    # -- frames

    def _frames(self, data: bytes | bytearray) -> int:
        """Handle every complete frame in ``data``; return the bytes consumed."""
        end = len(data)
        pos = 0
        st = self._st
        while end - pos >= 2:
            b1 = data[pos + 1]
            ln = b1 & 0x7F
            if ln < 126:
                p = pos + 2
            elif ln == 126:
                if end - pos < 4:
                    break
                ln = (data[pos + 2] << 8) | data[pos + 3]
                p = pos + 4
            else:
                if end - pos < 10:
                    break
                ln = int.from_bytes(data[pos + 2 : pos + 10], "big")
                p = pos + 10
            fe = p + ln
            if fe > end:
                break
            if data[pos] == 0x81 and self._ready and not b1 & 0x80:
                # Fast path: a final, unmasked text frame on a ready socket.
                if ln <= 32 and data.find(b"ping", p, fe) >= 0 and self._app_ping(data, p, fe):
                    pass
                else:
                    n = st.frames + 1
                    st.frames = n
                    if n >= st.next_sample:
                        self._sample(data, p, fe)
            else:
                self._slow_frame(data[pos], b1, data, p, fe)
                if self._state != _OPEN:
                    return end
            pos = fe
        return pos

    def _sample(self, data: bytes | bytearray, p: int, fe: int) -> None:
        st = self._st
        st.next_sample = st.frames + st.rng.randint(1, 2 * st.every - 1)
        i = data.find(b'"t":', p, fe)
        if i < 0:
            return
        i += 4
        while i < fe and data[i] == 32:
            i += 1
        j = i
        while j < fe and 48 <= data[j] <= 57:
            j += 1
        if j > i:
            st.samples.append(time.time_ns() - int(data[i:j]))

    def _app_ping(self, data: bytes | bytearray, p: int, fe: int) -> bool:
        if data.find(b'"ping"', p, fe) < 0 or data.find(b'"push"', p, fe) < 0:
            return False
        self._st.app_pings += 1
        t = self.transport
        if t is not None:
            t.write(encode_client_frame(PONG))
        return True

    def _slow_frame(self, b0: int, b1: int, data: bytes | bytearray, p: int, fe: int) -> None:
        st = self._st
        if b1 & 0x80:
            self._fail("protocol: masked server frame")
            return
        if b0 & 0x70:
            self._fail("protocol: RSV bits set (no extension was negotiated)")
            return
        fin = b0 & 0x80
        op = b0 & 0x0F
        if op == 0x8:  # close
            code = int.from_bytes(data[p : p + 2], "big") if fe - p >= 2 else 1005
            st.close_codes[code] += 1
            t = self.transport
            if t is not None:
                with contextlib.suppress(Exception):
                    t.write(
                        encode_client_frame(code.to_bytes(2, "big") if code != 1005 else b"", 0x8)
                    )
                t.close()
            if self._ready:
                st.open -= 1
                st.closed += 1
            self._state = _CLOSED
            if not self._ready_fut.done():
                self._ready_fut.set_exception(
                    ConnectionError(f"server closed with {code} before ready")
                )
            return
        if op == 0x9:  # ping
            st.ws_pings += 1
            if self.transport is not None:
                self.transport.write(encode_client_frame(bytes(data[p:fe]), 0xA))
            return
        if op == 0xA:  # pong
            return
        if op == 0x0:  # continuation
            if self._frag is None:
                self._fail("protocol: continuation without start")
                return
            self._frag += data[p:fe]
            if fin:
                msg = bytes(self._frag)
                self._frag = None
                self._message(self._frag_op, msg)
            return
        if op in (0x1, 0x2):
            if self._frag is not None:
                self._fail("protocol: new message inside a fragmented one")
                return
            if not fin:
                self._frag = bytearray(data[p:fe])
                self._frag_op = op
                return
            self._message(op, bytes(data[p:fe]))
            return
        self._fail(f"protocol: unknown opcode {op}")

    def _message(self, op: int, msg: bytes) -> None:
        """A whole message that did not take the fast path (fragmented, binary, not yet ready)."""
        st = self._st
        if op == 0x2:
            st.binary += 1
            return
        n = len(msg)
        if n <= 32 and self._app_ping(msg, 0, n):
            return
        if not self._ready:
            self._replies += 1
            if (
                msg.find(b'"error"') >= 0
                or msg.find(b'"push":"unsubscribed"') >= 0
                or (msg.find(b'"push":"disconnect"') >= 0)
            ):
                self._fail("script reply was an error: " + msg[:120].decode("utf-8", "replace"))
                return
            if self._replies >= self._script.ready_after:
                self._set_ready()
            return
        st.frames += 1
        if st.frames >= st.next_sample:
            self._sample(msg, 0, n)

    # -- API

    def close(self) -> None:
        t = self.transport
        if t is None or self._state != _OPEN:
            return
        with contextlib.suppress(Exception):
            t.write(encode_client_frame((1000).to_bytes(2, "big"), 0x8))
        t.close()
