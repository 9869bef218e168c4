"""A TCP proxy on 127.0.0.1 that a test can cut and restore: one process's link to a
server (say, a hub's to NATS) goes down while everyone else's stays up.

``cut()`` closes every proxied connection and stops listening, so reconnects are
refused; ``restore()`` listens again on the same port. Bytes are copied as they come,
except that ``hold()`` keeps what the server sends in the proxy (the connections stay
open) until ``release()``: a client that has not read what is on its way to it; and
``hold_upstream_from(marker)`` passes what a client sends up to ``marker`` and keeps
the rest until ``release_upstream()``: a command still on its way to the server
(``upstream_held`` is set once it is kept).
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0  # chosen at the first start
        self.accepted = 0  # connections taken, over the proxy's life
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._downstream = asyncio.Event()  # set: the server's bytes pass through
        self._downstream.set()
        self._upstream = asyncio.Event()  # set: the clients' bytes pass through
        self._upstream.set()
        self._upstream_marker: bytes | None = None  # kept from here, once seen
        self.upstream_held = asyncio.Event()

    @classmethod
    def to_url(cls, url: str) -> TcpProxy:
        """A proxy to the host and port of ``url`` (e.g. ``nats://127.0.0.1:4222``)."""
        parts = urlsplit(url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"no host and port in {url!r}")
        return cls(parts.hostname, parts.port)

    def url(self, scheme: str) -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

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
        for writer in list(self._writers):
            transport = writer.transport
            transport.abort()
        for task in list(self._tasks):
            task.cancel()
        if server is not None:
            await server.wait_closed()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    def hold(self) -> None:
        """Keep what the server sends from here on in the proxy, until ``release()``."""
        self._downstream.clear()

    def release(self) -> None:
        self._downstream.set()

    def hold_upstream_from(self, marker: bytes) -> None:
        """Keep what a client sends from the next ``marker`` on, until
        ``release_upstream()``; what comes before it passes."""
        self._upstream_marker = marker
        self.upstream_held.clear()

    def release_upstream(self) -> None:
        self._upstream_marker = None
        self._upstream.set()

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
            asyncio.ensure_future(self._pump_up(reader, up_writer)),
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

    async def _pump_up(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A client's bytes to the server; from ``_upstream_marker`` on, kept while held."""
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65_536):
                marker = self._upstream_marker
                at = data.find(marker) if marker is not None and self._upstream.is_set() else -1
                if at >= 0:
                    writer.write(data[:at])
                    data = data[at:]
                    self._upstream.clear()
                    self.upstream_held.set()
                await self._upstream.wait()
                writer.write(data)
                await writer.drain()


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gate: asyncio.Event | None = None
) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65_536):
            if gate is not None:
                await gate.wait()
            writer.write(data)
            await writer.drain()
