"""A gap in a hub's feed that history cannot fill is never skipped silently: the feed's
sockets are closed with 1001, and the client's resubscribe with ``since`` recovers what
the hub missed, each publication once, in order."""

from __future__ import annotations

from typing import Any

import pytest
from nats.aio.client import Client as NATS

from hub.ws.service import Realtime
from hubbub.config import Settings
from hubbub.contracts.channels import Channel
from hubbub.contracts.errors import Unavailable
from hubbub.contracts.protocol import CloseCode
from tests.e2e.conftest import ClientFactory
from tests.e2e.test_realtime import next_pub, publish

CHANNEL = "public:gaps"


async def test_a_gap_history_cannot_fill_closes_the_socket_and_the_client_recovers_it(
    client: ClientFactory,
    realtime: Realtime,
    nc: NATS,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader = await client("reader")
    sub = await reader.subscribe(CHANNEL)
    first = await publish(nc, settings, CHANNEL, {"n": 1})
    assert (await next_pub(sub)).offset == first

    # The hub stops hearing the channel (as across a NATS reconnect) while two more
    # publications are stored, then hears it again.
    feed = realtime.fanout.feeds[CHANNEL]
    assert feed.sub is not None
    await feed.sub.unsubscribe()
    missed = [await publish(nc, settings, CHANNEL, {"n": n}) for n in (2, 3)]
    feed.sub = await realtime.nc.subscribe(
        realtime.subjects.live(Channel.parse(CHANNEL)), cb=feed.on_message
    )
    await realtime.nc.flush()

    # History is unreachable for every read of the feed's repair, then answers again.
    history = realtime.history
    read = history.after
    failures = 4  # the repair's tries

    async def after(*args: Any, **kwargs: Any) -> Any:
        nonlocal failures
        if failures:
            failures -= 1
            raise Unavailable("channel history is unavailable: TimeoutError")
        return await read(*args, **kwargs)

    monkeypatch.setattr(history, "after", after)
    last = await publish(nc, settings, CHANNEL, {"n": 4})

    got = [(await next_pub(sub, 10)).offset for _ in range(3)]
    assert got == [*missed, last]
    assert (failures, sub.resets) == (0, 0)
    assert CloseCode.GOING_AWAY in [code for code, _ in reader.closes]
