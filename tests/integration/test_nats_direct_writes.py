"""``publish_now`` writes what one loop turn published in one write, at the turn's end,
without waking nats-py's flusher task — and leaves the socket's backpressure to the
flusher once the socket's buffer is full. Over a real NATS connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from hubbub import nats_direct
from hubbub.config import Settings
from hubbub.nats_barrier import server_has_read
from hubbub.nats_direct import publish_now, publishes_directly
from hubbub.natsconn import connect_nats


@pytest.fixture
async def sender(settings: Settings) -> AsyncIterator[NATS]:
    conn = await connect_nats(settings.nats_url or "", "test-sender")
    yield conn
    await conn.close()


async def _receiving(nc: NATS, subject: str, count: int) -> asyncio.Future[list[bytes]]:
    got: list[bytes] = []
    done: asyncio.Future[list[bytes]] = asyncio.get_running_loop().create_future()

    async def take(msg: Msg) -> None:
        got.append(msg.data)
        if len(got) == count and not done.done():
            done.set_result(got)

    await nc.subscribe(subject, cb=take)
    await server_has_read(nc)
    return done


def _count_writes(nc: NATS) -> list[int]:
    """How many commands each write to the socket carried."""
    writer: Any = nc._transport._io_writer  # type: ignore[union-attr]
    calls: list[int] = []
    own = writer.writelines

    def writelines(data: list[bytes]) -> None:
        calls.append(len(data))
        own(data)

    writer.writelines = writelines
    return calls


async def test_a_turns_publishes_go_out_in_one_write_without_the_flusher(
    nc: NATS, sender: NATS
) -> None:
    assert publishes_directly(sender)
    arrived = await _receiving(nc, "direct.writes", 20)
    writes = _count_writes(sender)
    loop = asyncio.get_running_loop()
    client: Any = sender
    for i in range(20):
        assert publish_now(sender, loop, b"direct.writes", b"", b"m%d" % i)
    assert client._flush_queue.empty()  # the flusher was not woken
    assert writes == []  # nothing written before the turn ends
    got = await asyncio.wait_for(arrived, 5)
    assert got == [b"m%d" % i for i in range(20)]  # in order
    assert writes == [20]
    assert client._pending == []
    assert client._pending_data_size == 0


async def test_a_full_socket_buffer_leaves_the_write_to_the_flusher(
    nc: NATS, sender: NATS, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nats_direct, "WRITE_BUFFER_LIMIT", -1)  # every buffer is "full"
    arrived = await _receiving(nc, "direct.full", 3)
    loop = asyncio.get_running_loop()
    for i in range(3):
        assert publish_now(sender, loop, b"direct.full", b"", b"f%d" % i)
    # The flusher drains the socket, then writes: every message still arrives, in order.
    assert await asyncio.wait_for(arrived, 5) == [b"f0", b"f1", b"f2"]


async def test_commands_published_directly_and_by_nats_py_keep_their_order(
    nc: NATS, sender: NATS
) -> None:
    arrived = await _receiving(nc, "direct.mixed", 4)
    loop = asyncio.get_running_loop()
    assert publish_now(sender, loop, b"direct.mixed", b"", b"1")
    await sender.publish("direct.mixed", b"2")
    assert publish_now(sender, loop, b"direct.mixed", b"", b"3")
    await sender.publish("direct.mixed", b"4")
    assert await asyncio.wait_for(arrived, 5) == [b"1", b"2", b"3", b"4"]
