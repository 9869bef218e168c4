"""Replies held for the end of a loop turn (``Connection.send``) always leave: after a
loop that ended before its flush ran (a test's), and when another socket's write fails."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hub.ws import connection
from hub.ws.connection import Connection


class Transport:
    def __init__(self, broken: bool = False) -> None:
        self.written: list[bytes] = []
        self.broken = broken

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        if self.broken:
            raise OSError("the socket is gone")
        self.written.append(data)


def socket(transport: Transport, conn_id: str = "c1") -> Connection:
    conn = Connection(conn_id, None, None, None, 1 << 20)  # type: ignore[arg-type]
    conn.transport = transport  # type: ignore[assignment]
    return conn


async def one_turn() -> None:
    await asyncio.sleep(0)  # yields once: the turn's call_soon callbacks run


async def test_a_loop_that_ended_with_held_replies_does_not_hold_back_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stale = socket(Transport(), "stale")
    stale.out = [b"never flushed"]
    dead_loop: Any = asyncio.new_event_loop()
    dead_loop.close()
    monkeypatch.setattr(connection, "_flush_loop", dead_loop)
    monkeypatch.setattr(connection, "_corked", [stale])

    live = Transport()
    socket(live).send(b'{"id":1}')
    await one_turn()
    assert len(live.written) == 1


async def test_one_socket_failing_to_write_does_not_keep_the_others_replies(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken, fine = Transport(broken=True), Transport()
    socket(broken, "broken").send(b'{"id":1}')
    socket(fine, "fine").send(b'{"id":2}')
    await one_turn()
    assert len(fine.written) == 1
    assert "writing held replies failed" in caplog.text
