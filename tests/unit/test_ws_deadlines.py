"""The sockets' token deadlines on one timer (``hub.ws.sessions.Deadlines``)."""

from __future__ import annotations

import asyncio
from typing import cast

from hub.ws.connection import Connection
from hub.ws.sessions import Deadlines


class Conn:
    def __init__(self, name: str) -> None:
        self.name = name
        self.warn_at = 0.0
        self.expire_at = 0.0


async def test_due_deadlines_fire_and_a_discarded_one_does_not() -> None:
    fired: list[str] = []
    done = asyncio.Event()

    def fire(conn: Connection, now: float) -> None:
        fired.append(cast(Conn, conn).name)
        if len(fired) == 2:
            done.set()

    deadlines = Deadlines(fire)
    now = asyncio.get_running_loop().time()
    a, b, gone = Conn("a"), Conn("b"), Conn("gone")
    for conn in (a, gone, b):  # all in one (past) slot: they fire in the next turns
        conn.expire_at = now - 1.0
        deadlines.add(cast(Connection, conn), conn.expire_at)
    deadlines.discard(cast(Connection, gone))
    assert gone.expire_at == 0.0
    await asyncio.wait_for(done.wait(), 5)
    assert fired == ["a", "b"]  # the slot's entries in the order they came; "gone" not
    assert not deadlines.buckets  # a fired slot keeps nothing
    deadlines.stop()


async def test_a_discarded_connection_is_not_kept_by_its_buckets() -> None:
    deadlines = Deadlines(lambda conn, now: None)
    conn = Conn("c")
    now = asyncio.get_running_loop().time()
    conn.warn_at, conn.expire_at = now + 600, now + 900
    deadlines.add(cast(Connection, conn), conn.warn_at)
    deadlines.add(cast(Connection, conn), conn.expire_at)
    deadlines.discard(cast(Connection, conn))
    assert all(cast(Connection, conn) not in bucket for bucket in deadlines.buckets.values())
    deadlines.stop()
