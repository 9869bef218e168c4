"""Sockets that resubscribe at once to a channel whose history keeps none of its
publications (a reconnect storm on quiet channels) cost one read of the stream's state
between them — the feed's, which places them all — not one each."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from hub.ws.connection import Connection
from hubbub.contracts.channels import Channel
from tests.support.subscriptions import CHANNEL, FakeHistory, Gate, Hub, Transport, written
from tests.support.waiting import wait_for

FIRST, END = 5, 40  # the kind's history: what it still holds, and its last offset
SOCKETS = 5


class QuietHistory(FakeHistory):
    """Holds none of the channel's publications; counts each read of the stream's state
    (stream info from its leader), whatever asks for it. ``state_gate`` holds them."""

    def __init__(self) -> None:
        super().__init__()
        self.last = 0
        self.state_reads = 0
        self.state_gate: Gate | None = None

    async def _state_read(self) -> None:
        self.state_reads += 1
        if self.state_gate is not None:
            await self.state_gate.passing()

    async def empty_channel(self, channel: Channel, epoch: str) -> tuple[int, int] | None:
        await self._state_read()
        return FIRST, END

    async def kept_after(self, kind: object, epoch: str, offset: int) -> int | None:
        await self._state_read()
        return -1 if offset + 1 >= FIRST else None

    async def reaches(self, kind: object, epoch: str, offset: int) -> bool:
        await self._state_read()
        return offset <= END

    async def nothing_dropped(self, kind: object, epoch: str) -> bool:  # before: per socket
        await self._state_read()
        return True


def quiet_hub() -> Hub:
    hub = Hub()
    hub.history = QuietHistory()
    hub.subscriptions.history = hub.history  # type: ignore[assignment]
    hub.fanout.history = hub.history  # type: ignore[assignment]
    return hub


def reply(conn: Connection, transport: Transport) -> dict[str, Any]:
    conn.flush()
    frame = written(conn, transport)[-1]
    length = frame[1] & 0x7F
    result: dict[str, Any] = orjson.loads(frame[2 if length < 126 else 4 :])["result"]
    return result


async def test_sockets_resubscribing_at_once_to_a_quiet_channel_read_its_state_once() -> None:
    hub = quiet_hub()
    history = hub.history
    assert isinstance(history, QuietHistory)
    first, first_transport = hub.socket("c0", "u0")
    await hub.subscribe(first)
    position = reply(first, first_transport)["offset"]
    await hub.subscriptions.drop_all(first)  # the hub lets go of the channel
    assert CHANNEL not in hub.fanout.feeds
    history.state_reads = 0
    history.state_gate = gate = Gate()
    sockets = [hub.socket(f"c{n}", f"u{n}") for n in range(1, SOCKETS + 1)]

    storm = asyncio.gather(*(hub.subscribe(conn, since=position) for conn, _ in sockets))
    await wait_for(lambda: gate.reached.is_set() or storm.done(), what="a read of the state")
    feed = hub.fanout.feeds.get(CHANNEL)
    await wait_for(lambda: storm.done() or (feed is not None and len(feed.waiting) == SOCKETS))
    gate.open()
    await storm

    assert history.state_reads == 1
    assert [reply(conn, t)["recovered"] for conn, t in sockets] == [True] * SOCKETS
