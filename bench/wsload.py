"""Cheap WebSocket load client: many sockets, few cores.

One raw ``asyncio.Protocol`` per socket on uvloop. The HTTP/1.1 upgrade is
done by hand; server frames (unmasked; text, binary, fragmented, ping, close)
are parsed in place from the bytes each read returns, so a read that carries
many frames costs one callback and no per-frame allocation.  Client frames are
masked (RFC 6455 section 5.3).

Per socket a :class:`Script` is sent after the upgrade (e.g. a ``connect``
command with a token, then ``subscribe``); the socket counts as *ready* once
it has received ``ready_after`` text frames.  After that it counts text
frames, answers the application ping ``{"push":"ping"}`` with
``{"op":"pong"}`` (and WebSocket pings with pongs), and for a random sample of
frames (1 in ``sample_every`` on average) reads the integer after ``"t":`` in
the payload, a ``time.time_ns()`` stamp the publisher put there, to record
publish-to-receive latency.

Sockets can be spread over K worker processes (:class:`ClientPool`); results
(counters, latency samples, connect times, CPU, RSS) are aggregated in the
parent.  ``python -m bench.wsload --help`` runs it from the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import math
import multiprocessing as mp
import os
import random
import resource
import socket
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, cast
from urllib.parse import urlsplit

import psutil
import uvloop

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PONG = b'{"op":"pong"}'

# Protocol states.
_HANDSHAKE = 0
_OPEN = 1
_CLOSED = 2


# --------------------------------------------------------------------------
# Small helpers


def raise_nofile(want: int) -> int:
    """Raise RLIMIT_NOFILE to at least ``want`` if possible; return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    if hard != resource.RLIM_INFINITY and hard < want:
        with contextlib.suppress(ValueError, OSError):  # root may raise the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        want = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of an already sorted sequence."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100.0 * len(sorted_values)) - 1))
    return float(sorted_values[k])


def latency_summary(samples_ns: Sequence[int]) -> dict[str, float | None]:
    """Count and p50/p90/p99/p99.9/max of latency samples in ms (None: no sample)."""
    s = sorted(samples_ns)
    out: dict[str, float | None] = {"n": len(s)}
    for name, q in (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9)):
        out[name + "_ms"] = round(percentile(s, q) / 1e6, 3) if s else None
    out["max_ms"] = round(s[-1] / 1e6, 3) if s else None
    return out


def _mask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return b""
    m = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(m, "little")).to_bytes(n, "little")


def encode_client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One final, masked client frame."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    mask = os.urandom(4)
    return head + mask + _mask(payload, mask)


# --------------------------------------------------------------------------
# Data model (picklable: crosses process boundaries)


@dataclass(frozen=True)
class WSTarget:
    """Where and how to open a WebSocket."""

    host: str
    port: int
    path: str = "/ws"
    subprotocols: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_url(
        cls,
        url: str,
        subprotocols: Sequence[str] = (),
        headers: Sequence[tuple[str, str]] = (),
    ) -> WSTarget:
        u = urlsplit(url)
        if u.scheme != "ws":
            raise ValueError(f"only ws:// URLs are supported, not {url!r}")
        path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        return cls(
            u.hostname or "127.0.0.1",
            u.port or 80,
            path,
            tuple(subprotocols),
            tuple(headers),
        )

    def resolved(self) -> WSTarget:
        """The same target with ``host`` replaced by a numeric address (resolved once)."""
        info = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        ip = str(info[0][4][0])
        return WSTarget(
            ip,
            self.port,
            self.path,
            self.subprotocols,
            self.headers + (("Host", f"{self.host}:{self.port}"),),
        )

    def request_head(self, key: bytes) -> bytes:
        lines = [f"GET {self.path} HTTP/1.1"]
        names = {k.lower() for k, _ in self.headers}
        if "host" not in names:
            lines.append(f"Host: {self.host}:{self.port}")
        lines += [
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key.decode()}",
            "Sec-WebSocket-Version: 13",
        ]
        if self.subprotocols:
            lines.append("Sec-WebSocket-Protocol: " + ", ".join(self.subprotocols))
        lines += [f"{k}: {v}" for k, v in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass(frozen=True)
class Script:
    """Frames a socket sends right after the upgrade, and how many replies make it ready."""

    frames: tuple[bytes, ...] = ()
    ready_after: int = 0


@dataclass
class ConnectReport:
    requested: int = 0
    ok: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    times_s: list[float] = field(default_factory=list)  # per socket: TCP connect start -> ready
    errors: dict[str, int] = field(default_factory=dict)

    def merge(self, other: ConnectReport) -> None:
        self.requested += other.requested
        self.ok += other.ok
        self.failed += other.failed
        self.elapsed_s = max(self.elapsed_s, other.elapsed_s)
        self.times_s.extend(other.times_s)
        for k, v in other.errors.items():
            self.errors[k] = self.errors.get(k, 0) + v

    def summary(self) -> dict[str, Any]:
        s = sorted(self.times_s)
        return {
            "requested": self.requested,
            "ok": self.ok,
            "failed": self.failed,
            "elapsed_s": round(self.elapsed_s, 3),
            "connects_per_s": round(self.ok / self.elapsed_s, 1) if self.elapsed_s > 0 else None,
            "connect_p50_ms": round(percentile(s, 50) * 1e3, 2) if s else None,
            "connect_p99_ms": round(percentile(s, 99) * 1e3, 2) if s else None,
            "connect_max_ms": round(s[-1] * 1e3, 2) if s else None,
            "errors": dict(self.errors),
        }


@dataclass
class Snapshot:
    """Counters of one client process (or the sum over several)."""

    frames: int = 0  # text data frames received by ready sockets (app pings excluded)
    binary: int = 0
    rx_bytes: int = 0
    open: int = 0
    closed: int = 0  # sockets that were open and got closed
    app_pings: int = 0
    ws_pings: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    close_codes: dict[int, int] = field(default_factory=dict)
    samples_ns: list[int] = field(default_factory=list)
    cpu_s: float = 0.0  # process CPU time (user + system), summed over processes
    cpu_sys_s: float = 0.0  # the system (kernel) part of cpu_s
    rss: int = 0  # bytes, summed over processes
    procs: int = 0

    def merge(self, o: Snapshot) -> None:
        self.frames += o.frames
        self.binary += o.binary
        self.rx_bytes += o.rx_bytes
        self.open += o.open
        self.closed += o.closed
        self.app_pings += o.app_pings
        self.ws_pings += o.ws_pings
        for k, v in o.errors.items():
            self.errors[k] = self.errors.get(k, 0) + v
        for c, v in o.close_codes.items():
            self.close_codes[c] = self.close_codes.get(c, 0) + v
        self.samples_ns.extend(o.samples_ns)
        self.cpu_s += o.cpu_s
        self.cpu_sys_s += o.cpu_sys_s
        self.rss += o.rss
        self.procs += o.procs


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
        key = base64.b64encode(os.urandom(16))
        self._accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        self._request = target.request_head(key)
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
            if msg.find(b'"error"') >= 0:
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


# --------------------------------------------------------------------------
# One process worth of sockets


class LoadClient:
    """Sockets of one process, all sharing one :class:`Stats`."""

    def __init__(self, sample_every: int = 50, seed: int | None = None) -> None:
        self.stats = Stats(sample_every, seed)
        self.protos: list[WSClientProtocol] = []
        self._proc = psutil.Process()
        self._batch_s = 0.0
        self._batcher: asyncio.Handle | None = None

    def set_read_batch(self, seconds: float) -> None:
        """Coalesce reads: block the loop ``seconds`` between I/O polls (0: off).

        The process then never sleeps in epoll_wait, so a frame the server
        sends wakes nobody, and each poll finds frames accumulated over
        ``seconds`` on many sockets (several per socket at high rates): fewer
        wake-ups and read syscalls per frame, at up to ``seconds`` of added
        latency.
        """
        self._batch_s = max(0.0, seconds)
        if self._batch_s > 0 and self._batcher is None:
            self._batcher = asyncio.get_running_loop().call_soon(self._batch_tick)

    def _batch_tick(self) -> None:
        if self._batch_s <= 0:
            self._batcher = None
            return
        time.sleep(self._batch_s)  # deliberately blocking: see set_read_batch
        # Runs again after the loop's next I/O poll.
        self._batcher = asyncio.get_running_loop().call_soon(self._batch_tick)

    async def connect(
        self,
        target: WSTarget,
        n: int,
        scripts: Script | Sequence[Script] = Script(),
        concurrency: int = 200,
        timeout: float = 30.0,
    ) -> ConnectReport:
        """Open ``n`` sockets, at most ``concurrency`` handshakes in flight; wait until each is ready."""
        if not isinstance(scripts, Script) and len(scripts) != n:
            raise ValueError("need one script per socket")
        raise_nofile(n + len(self.protos) + 256)
        loop = asyncio.get_running_loop()
        rep = ConnectReport(requested=n)
        errors: Counter[str] = Counter()
        indices = iter(range(n))
        st = self.stats

        async def one(i: int) -> None:
            script = scripts if isinstance(scripts, Script) else scripts[i]
            fut: asyncio.Future[None] = loop.create_future()
            proto = WSClientProtocol(st, target, script, fut)
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(timeout):
                    await loop.create_connection(lambda: proto, target.host, target.port)
                    await fut
            except Exception as e:
                errors[f"{type(e).__name__}: {e}"[:160]] += 1
                if proto.transport is not None:
                    proto.transport.abort()
                return
            rep.times_s.append(time.perf_counter() - t0)
            self.protos.append(proto)

        async def worker() -> None:
            for i in indices:
                await one(i)

        t_start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, n)))))
        rep.elapsed_s = time.perf_counter() - t_start
        rep.ok = len(rep.times_s)
        rep.failed = n - rep.ok
        rep.errors = dict(errors)
        return rep

    def snapshot(self, take_samples: bool = True) -> Snapshot:
        st = self.stats
        samples = st.samples
        tms = os.times()
        if take_samples:
            st.samples = []
        return Snapshot(
            frames=st.frames,
            binary=st.binary,
            rx_bytes=st.rx_bytes,
            open=st.open,
            closed=st.closed,
            app_pings=st.app_pings,
            ws_pings=st.ws_pings,
            errors=dict(st.errors),
            close_codes=dict(st.close_codes),
            samples_ns=list(samples),
            cpu_s=tms.user + tms.system,
            cpu_sys_s=tms.system,
            rss=self._proc.memory_info().rss,
            procs=1,
        )

    async def close(self, linger: float = 0.5) -> None:
        for p in self.protos:
            p.close()
        self.protos.clear()
        await asyncio.sleep(linger)


# --------------------------------------------------------------------------
# Worker processes


def _worker_main(conn: Connection, sample_every: int, seed: int | None) -> None:
    raise_nofile(65536)
    uvloop.run(_worker_serve(conn, sample_every, seed))


async def _worker_serve(conn: Connection, sample_every: int, seed: int | None) -> None:
    client = LoadClient(sample_every, seed)
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[int, str, tuple[Any, ...]] | None] = asyncio.Queue()

    def readable() -> None:
        try:
            while conn.poll():
                inbox.put_nowait(conn.recv())
        except (EOFError, OSError):
            loop.remove_reader(conn.fileno())
            inbox.put_nowait(None)

    loop.add_reader(conn.fileno(), readable)
    # libuv made the fd non-blocking; Connection.recv() needs it blocking to
    # read a message that arrives in several chunks.
    os.set_blocking(conn.fileno(), True)
    tasks: set[asyncio.Task[None]] = set()

    async def handle(rid: int, method: str, args: tuple[Any, ...]) -> None:
        try:
            if method == "connect":
                res: Any = await client.connect(*args)
            elif method == "snapshot":
                res = client.snapshot(*args)
            elif method == "close":
                await client.close(*args)
                res = None
            elif method == "read_batch":
                client.set_read_batch(*args)
                res = None
            else:
                raise ValueError(method)
            conn.send((rid, True, res))
        except Exception as e:
            conn.send((rid, False, f"{type(e).__name__}: {e}"))

    while True:
        msg = await inbox.get()
        if msg is None or msg[1] == "exit":
            break
        t = asyncio.create_task(handle(*msg))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    await client.close(linger=0.1)


class _Worker:
    def __init__(self, ctx: Any, sample_every: int, seed: int | None) -> None:
        self.conn, child = mp.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, sample_every, seed), daemon=True)
        self.proc.start()
        child.close()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next = 0
        loop = asyncio.get_running_loop()
        loop.add_reader(self.conn.fileno(), self._readable)
        os.set_blocking(self.conn.fileno(), True)  # see _worker_serve
        self._loop = loop

    def _readable(self) -> None:
        try:
            while self.conn.poll():
                rid, ok, res = self.conn.recv()
                fut = self._pending.pop(rid, None)
                if fut is None or fut.done():
                    continue
                if ok:
                    fut.set_result(res)
                else:
                    fut.set_exception(RuntimeError(f"worker {self.proc.pid}: {res}"))
        except (EOFError, OSError) as e:
            self._loop.remove_reader(self.conn.fileno())
            self.proc.join(0.5)
            why = f"worker {self.proc.pid} died (exit code {self.proc.exitcode}; {type(e).__name__}: {e})"
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(RuntimeError(why))
            self._pending.clear()

    async def call(self, method: str, *args: Any) -> Any:
        self._next += 1
        fut: asyncio.Future[Any] = self._loop.create_future()
        self._pending[self._next] = fut
        self.conn.send((self._next, method, args))
        return await fut

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self.conn.fileno())
        with contextlib.suppress(Exception):
            self.conn.send((0, "exit", ()))
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(1)
        self.conn.close()


class ClientPool:
    """Sockets spread over ``procs`` worker processes (0: in this process).

    Must be used inside a running event loop.  Sockets are dealt to the
    workers in contiguous slices; snapshots are summed.
    """

    def __init__(self, procs: int = 1, sample_every: int = 50, seed: int | None = None) -> None:
        self.procs = procs
        self.sample_every = sample_every
        self.seed = seed
        self._local: LoadClient | None = None
        self._workers: list[_Worker] = []

    async def start(self) -> None:
        if self.procs <= 0:
            self._local = LoadClient(self.sample_every, self.seed)
            return
        ctx = mp.get_context("spawn")
        self._workers = [
            _Worker(ctx, self.sample_every, None if self.seed is None else self.seed + i)
            for i in range(self.procs)
        ]
        # Wait until every worker answers (spawn takes a moment).
        await asyncio.gather(*(w.call("snapshot", False) for w in self._workers))

    @property
    def pids(self) -> list[int]:
        if self._local is not None:
            return [os.getpid()]
        return [w.proc.pid for w in self._workers if w.proc.pid is not None]

    async def connect(
        self,
        target: WSTarget,
        n: int,
        scripts: Script | Sequence[Script] = Script(),
        concurrency: int = 200,
        timeout: float = 30.0,
    ) -> ConnectReport:
        if self._local is not None:
            return await self._local.connect(target, n, scripts, concurrency, timeout)
        k = len(self._workers)
        calls = []
        start = 0
        for i, w in enumerate(self._workers):
            cnt = n // k + (1 if i < n % k else 0)
            part: Script | Sequence[Script] = (
                scripts if isinstance(scripts, Script) else list(scripts[start : start + cnt])
            )
            start += cnt
            if cnt:
                calls.append(
                    w.call("connect", target, cnt, part, max(1, concurrency // k), timeout)
                )
        rep = ConnectReport()
        for r in await asyncio.gather(*calls):
            rep.merge(r)
        return rep

    async def snapshot(self, take_samples: bool = True) -> Snapshot:
        if self._local is not None:
            return self._local.snapshot(take_samples)
        out = Snapshot()
        for s in await asyncio.gather(*(w.call("snapshot", take_samples) for w in self._workers)):
            out.merge(s)
        return out

    async def close(self) -> None:
        if self._local is not None:
            await self._local.close()
            return
        await asyncio.gather(*(w.call("close") for w in self._workers))

    async def set_read_batch(self, seconds: float) -> None:
        """See :meth:`LoadClient.set_read_batch`."""
        if self._local is not None:
            self._local.set_read_batch(seconds)
            return
        await asyncio.gather(*(w.call("read_batch", seconds) for w in self._workers))

    async def stop(self) -> None:
        if self._local is not None:
            await self._local.close(linger=0.0)
            self._local = None
        for w in self._workers:
            w.stop()
        self._workers = []


# --------------------------------------------------------------------------
# Command line


def _emit(kind: str, **fields: Any) -> None:
    parts = [kind] + [f"{k}={v}" for k, v in fields.items()]
    print(" ".join(parts), flush=True)


async def _cli(args: argparse.Namespace) -> dict[str, Any]:
    target = WSTarget.from_url(
        args.url, args.subprotocol, [tuple(h.split(":", 1)) for h in args.header]
    ).resolved()
    frames = [f.encode() for f in args.send]
    scripts: Script | list[Script]
    if any("{i}" in f for f in args.send):
        scripts = [
            Script(
                tuple(f.replace(b"{i}", str(i).encode()) for f in frames),
                args.ready_after,
            )
            for i in range(args.n)
        ]
    else:
        scripts = Script(tuple(frames), args.ready_after)
    pool = ClientPool(args.procs, args.sample_every)
    await pool.start()
    try:
        rep = await pool.connect(target, args.n, scripts, args.concurrency, args.timeout)
        csum = rep.summary()
        _emit("connect", **{k: v for k, v in csum.items() if k != "errors"})
        for err, cnt in rep.errors.items():
            _emit("connect_error", count=cnt, error=json.dumps(err))
        if args.read_batch_ms > 0:
            await pool.set_read_batch(args.read_batch_ms / 1000.0)
        s_prev = await pool.snapshot()
        t_prev = time.perf_counter()
        t_end = t_prev + args.duration
        all_samples: list[int] = []
        while time.perf_counter() < t_end:
            await asyncio.sleep(min(args.interval, max(0.0, t_end - time.perf_counter())))
            s = await pool.snapshot()
            t = time.perf_counter()
            dt = t - t_prev
            lat = latency_summary(s.samples_ns)
            all_samples.extend(s.samples_ns)
            _emit(
                "tick",
                frames_per_s=round((s.frames - s_prev.frames) / dt, 1),
                open=s.open,
                closed=s.closed,
                p50_ms=lat["p50_ms"],
                p99_ms=lat["p99_ms"],
                client_cpu=round((s.cpu_s - s_prev.cpu_s) / dt, 3),
            )
            s_prev, t_prev = s, t
        final = await pool.snapshot()
        result = {
            "connect": csum,
            "frames": final.frames,
            "open": final.open,
            "closed": final.closed,
            "app_pings": final.app_pings,
            "close_codes": final.close_codes,
            "errors": final.errors,
            "latency": latency_summary(all_samples + final.samples_ns),
            "client_rss_mib": round(final.rss / 2**20, 1),
        }
        await pool.close()
        return result
    finally:
        await pool.stop()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("url", help="ws://host:port/path")
    ap.add_argument("-n", type=int, default=100, help="sockets")
    ap.add_argument(
        "-P",
        "--procs",
        type=int,
        default=1,
        help="worker processes (0: in this process)",
    )
    ap.add_argument(
        "--send",
        action="append",
        default=[],
        help="text frame to send after the upgrade ({i}: socket index); repeatable",
    )
    ap.add_argument(
        "--ready-after",
        type=int,
        default=0,
        help="replies to wait for before a socket is ready",
    )
    ap.add_argument("--subprotocol", action="append", default=[])
    ap.add_argument("--header", action="append", default=[], help="Name:value; repeatable")
    ap.add_argument("--concurrency", type=int, default=200, help="handshakes in flight")
    ap.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="per-socket connect+ready timeout (s)",
    )
    ap.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="seconds to hold the sockets and count frames",
    )
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument(
        "--read-batch-ms",
        type=float,
        default=0.0,
        help="once connected, block this long between I/O polls (coalesced reads)",
    )
    ap.add_argument("--sample-every", type=int, default=50, help="latency sample 1 frame in N")
    args = ap.parse_args(argv)
    raise_nofile(args.n + 1024)
    result = uvloop.run(_cli(args))
    print("RESULT " + json.dumps(result, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
