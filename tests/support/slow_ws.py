"""A WebSocket client that reads only when asked: a client on a slow link.

aiohttp's client reads its socket in the background; this one leaves what the hub sends
in the kernel's buffers (kept small) until the test reads it, so the hub's own send
buffer fills as it would for a phone on a bad network.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from typing import Any

import orjson

from hubbub.contracts.protocol import SUBPROTOCOL


class SlowSocket:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.head = b""

    @classmethod
    async def open(
        cls,
        port: int,
        *,
        receive_buffer: int = 4096,
        query: str = "",
        headers: tuple[str, ...] = (),
        first: tuple[Any, ...] = (),
    ) -> SlowSocket:
        """Connected and upgraded (``connect`` not sent yet, unless it is among the
        commands of ``first``, sent in the same write as the upgrade's head). ``query`` and
        ``headers`` (``"Name: value"`` lines) go with the upgrade; the ``101``'s head is
        kept in ``head``."""
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        ws = cls(sock)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, ("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        extra = "".join(f"{line}\r\n" for line in headers)
        target = f"/ws?{query}" if query else "/ws"
        await loop.sock_sendall(
            sock,
            (
                f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}\r\n"
                f"{extra}\r\n"
            ).encode()
            + b"".join(map(client_frame, first)),
        )
        while b"\r\n\r\n" not in ws.buffer:
            ws.buffer += await ws._more()
        ws.head, ws.buffer = ws.buffer.split(b"\r\n\r\n", 1)
        assert b" 101 " in ws.head.split(b"\r\n", 1)[0], ws.head
        return ws

    async def send(self, command: Any) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, client_frame(command))

    async def receive(self, timeout: float = 10.0) -> tuple[str, Any]:
        """``("text", value)`` or ``("close", code)``."""
        async with asyncio.timeout(timeout):
            first, second = await self._exactly(2)
            size = second & 0x7F
            if size == 126:
                size = struct.unpack("!H", await self._exactly(2))[0]
            elif size == 127:
                size = struct.unpack("!Q", await self._exactly(8))[0]
            data = await self._exactly(size)
        if first & 0x0F == 0x8:
            return "close", struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
        return "text", orjson.loads(data)

    def close(self) -> None:
        self.sock.close()

    async def _more(self) -> bytes:
        data = await asyncio.get_running_loop().sock_recv(self.sock, 65536)
        if not data:
            raise EOFError("the hub closed the connection")
        return data

    async def _exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            self.buffer += await self._more()
        out, self.buffer = self.buffer[:count], self.buffer[count:]
        return out


def client_frame(command: Any) -> bytes:
    """``command`` as a client's text frame (masked, as RFC 6455 says)."""
    payload = orjson.dumps(command)
    mask = os.urandom(4)
    size = len(payload)
    header = bytes([0x81, 0x80 | size]) if size < 126 else struct.pack("!BBH", 0x81, 0xFE, size)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
