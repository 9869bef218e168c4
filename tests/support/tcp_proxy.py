"""A TCP proxy on 127.0.0.1 that a test (or a chaos scenario) can cut and restore: one
process's link to a server (say, a hub's to NATS) goes down while everyone else's stays up.

``cut()`` closes every proxied connection and stops listening, so reconnects are
refused; ``restore()`` listens again on the same port. Bytes are copied as they come,
except that ``hold()`` keeps what the server sends in the proxy (the connections stay
open) until ``release()``: a client that has not read what is on its way to it; and
``hold_upstream_from(marker)`` passes what a client sends up to ``marker`` and keeps
the rest until ``release_upstream()``: a command still on its way to the server
(``upstream_held`` is set once it is kept); ``hold_from(marker)`` does the same with
what the server sends (``downstream_held``): a reply the server sent, cut off on its
way. ``drop()`` closes the open connections but keeps listening: a client's reconnect
gets through.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0  # chosen at the first start
        self.accepted = 0  # connections taken, over the proxy's life
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._downstream = _Gate()  # the server's bytes to the clients
        self._upstream = _Gate()  # the clients' bytes to the server
        self.upstream_held = self._upstream.held
        self.downstream_held = self._downstream.held

    @classmethod
    def to_url(cls, url: str) -> TcpProxy:
        """A proxy to the host and port of ``url`` (e.g. ``nats://127.0.0.1:4222``)."""
        parts = urlsplit(url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"no host and port in {url!r}")
        return cls(parts.hostname, parts.port)

    def url(self, scheme: str) -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def in_place_of(self, url: str) -> str:
        """``url`` (the server's) through this proxy: its credentials, path and query kept."""
        parts = urlsplit(url)
        who, at, _ = parts.netloc.rpartition("@")
        return urlunsplit(parts._replace(netloc=f"{who}{at}127.0.0.1:{self.port}"))

    @property
    def is_up(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        await self.drop()
        if server is not None:
            await server.wait_closed()

    async def drop(self) -> None:
        """Drop the open connections (what the proxy held for them is lost with them)."""
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    def hold(self) -> None:
        """Keep what the server sends from here on in the proxy, until ``release()``."""
        self._downstream.close()

    def release(self) -> None:
        self._downstream.open()

    def hold_from(self, marker: bytes) -> None:
        """Pass what the server sends up to the next ``marker``, and keep the rest (the
        marker on) until ``release()``."""
        self._downstream.close_at(marker)

    def hold_upstream_from(self, marker: bytes) -> None:
        """Keep what a client sends from the next ``marker`` on, until
        ``release_upstream()``; what comes before it passes."""
        self._upstream.close_at(marker)

    def release_upstream(self) -> None:
        self._upstream.open()

    async def restore(self) -> None:
        await self.start()

    async def stop(self) -> None:
        await self.cut()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        pumps = [
            asyncio.ensure_future(_pump(reader, up_writer, self._upstream)),
            asyncio.ensure_future(_pump(up_reader, writer, self._downstream)),
        ]
        for pump in pumps:
            self._tasks.add(pump)
            pump.add_done_callback(self._tasks.discard)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()


class _Gate:
    """What passes one direction of the proxy: everything while open; nothing while
    closed (it waits in the proxy, in order); with a marker set, what comes before the
    marker's next occurrence, and then it closes (``held`` is set)."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self._marker: bytes | None = None
        self.held = asyncio.Event()

    def close(self) -> None:
        self._open.clear()

    def close_at(self, marker: bytes) -> None:
        self._marker = marker
        self.held.clear()

    def open(self) -> None:
        self._marker = None
        self._open.set()

    def split(self, data: bytes) -> tuple[bytes, bytes]:
        """(what passes now, what waits until the gate is open)."""
        marker = self._marker
        at = data.find(marker) if marker is not None and self._open.is_set() else -1
        if at < 0:
            return b"", data
        self._open.clear()
        self.held.set()
        return data[:at], data[at:]

    async def wait_open(self) -> None:
        await self._open.wait()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gate: _Gate) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65_536):
            now, rest = gate.split(data)
            if now:
                writer.write(now)
            await gate.wait_open()
            writer.write(rest)
            await writer.drain()
