"""The subscription barrier, on the wire: what a NATS server reads from nats-py, in order.

A fake server records each command the client sends and answers every ``PING``; the
order it read them in is the order a real server would handle them in.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client as NATS

from hubbub.nats_barrier import server_has_read

INFO = b'INFO {"server_id":"fake","version":"2.10.0","max_payload":1048576,"proto":1}\r\n'


class FakeServer:
    def __init__(self) -> None:
        self.commands: list[bytes] = []  # each command's verb, in the order read
        self.server: asyncio.Server | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(INFO)
        while line := await reader.readline():
            verb = line.split(b" ", 1)[0].strip()
            self.commands.append(verb)
            if verb == b"PING":
                writer.write(b"PONG\r\n")
                await writer.drain()
        writer.close()

    def verbs_after_connect(self) -> list[bytes]:
        # CONNECT and the connect's own PING come first
        return self.commands[2:]


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeServer, NATS]]:
    fake = FakeServer()
    server = await asyncio.start_server(fake.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    nc = await nats.connect(f"nats://127.0.0.1:{port}", allow_reconnect=False)
    try:
        yield fake, nc
    finally:
        await nc.close()
        server.close()
        await server.wait_closed()


async def test_a_flush_can_overtake_the_subscription_it_follows(
    fake: tuple[FakeServer, NATS],
) -> None:
    """Why a single flush is no barrier: its PING reaches the server before the SUB."""
    server, nc = fake
    await nc.subscribe("svc.echo", queue="workers")
    await nc.flush()
    await server_has_read(nc)  # only so that the server has read everything before looking
    assert server.verbs_after_connect()[:2] == [b"PING", b"SUB"]  # the flush's PING first


async def test_after_the_barrier_the_server_has_read_the_subscription(
    fake: tuple[FakeServer, NATS],
) -> None:
    server, nc = fake
    await nc.subscribe("svc.echo", queue="workers")
    await server_has_read(nc)
    # The barrier's last PONG answered a PING the server read after the SUB.
    assert server.verbs_after_connect() == [b"PING", b"SUB", b"PING"]
