"""What crosses process boundaries (picklable): where to connect, what each socket
sends, and the counters and connect times a client process reports."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bench.stats import percentile


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

    def request_head(self, key: bytes, script: Script | None = None) -> bytes:
        """The upgrade request, with what ``script`` adds to it (its query and headers)."""
        path, headers = self.path, self.headers
        if script is not None and script.query:
            path += ("&" if "?" in path else "?") + script.query
        if script is not None:
            headers += script.headers
        lines = [f"GET {path} HTTP/1.1"]
        names = {k.lower() for k, _ in headers}
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
        lines += [f"{k}: {v}" for k, v in headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass(frozen=True)
class Script:
    """Frames a socket sends right after the upgrade, and how many replies make it ready
    (frames the server sends unasked count too). ``query`` and ``headers`` are added to
    its upgrade request (e.g. a connect carried by the upgrade)."""

    frames: tuple[bytes, ...] = ()
    ready_after: int = 0
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()


NO_SCRIPT = Script()  # nothing to send: ready once upgraded


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
