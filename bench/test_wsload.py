"""Correctness of the load client's handshake and frame parser (not timed).

A raw asyncio server sends crafted frames (every length encoding, a
fragmented message with a ping in the middle, an application ping, binary,
close), once in one write and once a byte at a time.
``python -m pytest bench/test_wsload.py``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time

import pytest

from bench.wsclient import WS_GUID, LoadClient, Script, WSTarget


def frame(payload: bytes, opcode: int = 0x1, fin: bool = True) -> bytes:
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        head = bytes((b0, n))
    elif n < 65536:
        head = bytes((b0, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, 127)) + n.to_bytes(8, "big")
    return head + payload


async def read_client_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await reader.readexactly(2)
    assert b1 & 0x80, "client frames must be masked"
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    mask = await reader.readexactly(4)
    data = await reader.readexactly(n)
    return b0 & 0x0F, bytes(c ^ mask[i % 4] for i, c in enumerate(data))


class RawServer:
    def __init__(self, trickle: bool, status: bytes = b"101 Switching Protocols") -> None:
        self.trickle = trickle
        self.status = status
        self.received: list[tuple[int, bytes]] = []
        self.done = asyncio.Event()
        self.t_stamp = time.time_ns()

    def script(self) -> bytes:
        out = frame(b'{"id":1,"result":{}}')  # the reply that makes the socket ready
        out += frame(b'{"t":%d,"x":1}' % self.t_stamp)
        out += frame(b'{"t": %d,"pad":"' % self.t_stamp + b"a" * 300 + b'"}')  # 16-bit length
        out += frame(b'{"big":"' + b"b" * 70_000 + b'"}')  # 64-bit length
        out += frame(b'{"frag":', 0x1, fin=False)
        out += frame(b"ping-payload", 0x9)  # control frame inside a fragmented message
        out += frame(b'"mid",', 0x0, fin=False)
        out += frame(b'"end":1}', 0x0, fin=True)
        out += frame(b'{"push":"ping"}')
        out += frame(b"\x00\x01", 0x2)
        out += frame((1000).to_bytes(2, "big") + b"bye", 0x8)
        return out

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        key = b""
        for line in head.split(b"\r\n"):
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"sec-websocket-key":
                key = v.strip()
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        writer.write(
            b"HTTP/1.1 " + self.status + b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        if not self.status.startswith(b"101"):
            writer.close()
            self.done.set()
            return
        self.received.append(await read_client_frame(reader))  # the script's frame
        data = self.script()
        if self.trickle:
            for i in range(len(data)):
                writer.write(data[i : i + 1])
                await writer.drain()
        else:
            writer.write(data)
        try:
            while True:
                op, payload = await read_client_frame(reader)
                self.received.append((op, payload))
                if op == 0x8:
                    break
        except asyncio.IncompleteReadError:
            pass
        writer.close()
        self.done.set()


@pytest.mark.parametrize("trickle", [False, True])
def test_frames(trickle: bool) -> None:
    async def run() -> None:
        srv = RawServer(trickle)
        server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = LoadClient(sample_every=1, seed=3)
        rep = await client.connect(
            WSTarget("127.0.0.1", port, "/ws"),
            1,
            Script((b'{"op":"connect","id":1}',), 1),
        )
        assert rep.ok == 1, rep.errors
        await asyncio.wait_for(srv.done.wait(), 10)
        snap = client.snapshot()
        # t-frame, 16-bit, 64-bit, fragmented; the reply and the app ping are not counted
        assert snap.frames == 4
        assert snap.binary == 1
        assert snap.app_pings == 1
        assert snap.ws_pings == 1
        assert snap.close_codes == {1000: 1}
        assert snap.closed == 1 and snap.open == 0
        assert snap.errors == {}
        assert len(snap.samples_ns) == 2  # the two frames that carry "t"
        assert all(0 < s < 60 * 10**9 for s in snap.samples_ns)
        assert srv.received[0] == (0x1, b'{"op":"connect","id":1}')
        assert (0xA, b"ping-payload") in srv.received
        assert (0x1, b'{"op":"pong"}') in srv.received
        assert srv.received[-1][0] == 0x8
        server.close()
        await server.wait_closed()

    asyncio.run(run())


def test_refused_upgrade() -> None:
    async def run() -> None:
        srv = RawServer(False, status=b"403 Forbidden")
        server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = LoadClient()
        rep = await client.connect(WSTarget("127.0.0.1", port, "/ws"), 3, timeout=5)
        assert rep.ok == 0 and rep.failed == 3
        assert any("403" in e for e in rep.errors), rep.errors
        server.close()
        await server.wait_closed()

    asyncio.run(run())


def test_a_scripts_query_and_headers_go_into_its_upgrade_request() -> None:
    """What a connect in the upgrade request needs: the script's query is added to the
    target's path and its headers to the target's."""
    target = WSTarget("127.0.0.1", 1, "/ws?a=1", ("hubbub.v1.json",), (("X-Target", "t"),))
    script = Script(
        ready_after=2, query="subscribe=public%3Ax", headers=(("Authorization", "Bearer k"),)
    )
    head = target.request_head(b"a2V5", script).decode()
    lines = head.split("\r\n")
    assert lines[0] == "GET /ws?a=1&subscribe=public%3Ax HTTP/1.1"
    assert "X-Target: t" in lines and "Authorization: Bearer k" in lines
    assert (
        WSTarget("h", 1, "/ws")
        .request_head(b"a2V5", script)
        .startswith(b"GET /ws?subscribe=public%3Ax HTTP/1.1\r\n")
    )
    assert target.request_head(b"a2V5") == target.request_head(b"a2V5", Script())
