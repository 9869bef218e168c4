"""While a socket's commands wait (subscribes whose history reads take their timeout,
JetStream being down), its read loop reads nothing, not even the client's pongs. A batch
of slow commands is not two ping intervals of silence: the socket counts as heard from
as each command ends, and the ping check (``Realtime.ping_all``) leaves it alone.

The read loop's frame handling over a fake service, with an injected clock."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, cast

import orjson
import pytest
from aiohttp import WSMessage, WSMsgType

from hub.ws import endpoint
from hub.ws.connection import Connection
from hub.ws.limits import CommandLimiter
from hub.ws.service import Realtime
from tests.support.clock import Clock
from tests.support.subscriptions import Transport

PING_INTERVAL = 25.0


class SlowService:
    """Every command waits ``seconds`` (on the injected clock) before it is answered."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        self.clock = clock
        self.seconds = seconds
        self.settings = SimpleNamespace(ws_max_protocol_errors=20)
        self.connections: list[Connection] = []

    async def handle(self, conn: Connection, command: Any) -> None:
        self.clock.advance(self.seconds)


class Aborted(Transport):
    def __init__(self) -> None:
        super().__init__()
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


async def test_a_batch_of_slow_subscribes_is_not_taken_for_two_intervals_of_silence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Where the command limiter's bucket starts, in whole seconds: steps of 5 s then add
    # up exactly (from a fraction, twelve of them may not come to 60.0).
    clock = Clock(float(int(time.monotonic())))
    start = clock.now
    monkeypatch.setattr(endpoint, "time", SimpleNamespace(monotonic=clock))
    service = SlowService(clock, seconds=5.0)
    conn = Connection("c1", None, CommandLimiter(100, 200), None, 1 << 20)  # type: ignore[arg-type]
    transport = Aborted()
    conn.transport = transport  # type: ignore[assignment]
    service.connections.append(conn)
    batch = [{"id": i, "op": "subscribe", "channel": f"public:c{i}"} for i in range(12)]

    done = await endpoint._frame(
        cast(Realtime, service), conn, WSMessage(WSMsgType.TEXT, orjson.dumps(batch).decode(), None)
    )

    assert not done
    assert clock.now - start == 60.0  # more than two intervals spent on the batch
    Realtime.ping_all(cast(Realtime, service), clock.now, PING_INTERVAL)
    assert not transport.aborted
    assert not conn.closed


def test_a_socket_silent_for_two_intervals_is_still_dropped() -> None:
    service = SlowService(Clock(), seconds=0.0)
    conn = Connection("c1", None, CommandLimiter(100, 200), None, 1 << 20)  # type: ignore[arg-type]
    transport = Aborted()
    conn.transport = transport  # type: ignore[assignment]
    service.connections.append(conn)

    Realtime.ping_all(
        cast(Realtime, service), conn.last_seen + 2 * PING_INTERVAL + 1, PING_INTERVAL
    )

    assert transport.aborted
