"""``HubbubClient`` when the socket closes while it restores its subscriptions: it
reconnects at once instead of waiting out ``rpc_timeout`` on a reply that cannot come."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from nats.aio.client import Client as NATS

from hub.ws import commands as cmd
from hub.ws.connection import Connection
from hub.ws.service import Realtime
from hubbub.client import HubbubClient
from hubbub.client.client import ConnectionState
from hubbub.config import Settings
from hubbub.contracts.protocol import CloseCode
from tests.e2e.conftest import ClientFactory
from tests.e2e.test_realtime import next_pub, publish
from tests.support.waiting import wait_for

RPC_TIMEOUT = 60.0  # far longer than the test may take


def closing_the_nth_subscribe(monkeypatch: pytest.MonkeyPatch, n: int) -> list[int]:
    """Make the hub close the socket (4009, no reply) on its ``n``-th subscribe; the
    returned list counts the subscribes it saw."""
    seen: list[int] = []
    # A subscribe is parsed as a ``SubscribeCall`` (no ``since``) or a ``Subscribe``.
    for kind in (cmd.Subscribe, cmd.SubscribeCall):
        monkeypatch.setitem(
            Realtime._handlers, kind, _closing_on(seen, n, Realtime._handlers[kind])
        )
    return seen


def _closing_on(
    seen: list[int], n: int, original: Callable[[Realtime, Connection, Any], Awaitable[Any]]
) -> Callable[[Realtime, Connection, Any], Awaitable[Any]]:
    async def subscribe(realtime: Realtime, conn: Connection, command: Any) -> Any:
        seen.append(command.id)
        if len(seen) == n:
            conn.close(CloseCode.SLOW_CONSUMER, "closed while restoring (test)")
            return None
        return await original(realtime, conn, command)

    return subscribe


class TestRestore:
    async def test_a_close_during_resubscribe_reconnects_at_once_and_resubscribes(
        self,
        client: ClientFactory,
        realtime: Realtime,
        nc: NATS,
        settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Dropped, reconnected, closed again mid-restore: live and subscribed again in
        well under the reply deadline, with nothing lost."""
        seen = closing_the_nth_subscribe(monkeypatch, 2)
        c: HubbubClient = await client("restorer", rpc_timeout=RPC_TIMEOUT)
        sub = await c.subscribe("public:restore")
        first = await publish(nc, settings, "public:restore", {"n": 1})
        assert (await next_pub(sub)).offset == first

        started = time.monotonic()
        await c.drop()
        await wait_for(lambda: asyncio.sleep(0, len(seen) >= 3), timeout=10, what="3 subscribes")
        await c.wait_live(timeout=10)
        assert time.monotonic() - started < RPC_TIMEOUT / 6
        assert c.state is ConnectionState.LIVE
        assert (CloseCode.SLOW_CONSUMER, "") in c.closes
        assert realtime.stats["connects"] == 3

        second = await publish(nc, settings, "public:restore", {"n": 2})
        assert (await next_pub(sub)).offset == second

    async def test_a_subscribe_on_a_socket_that_closes_fails_at_once(
        self, client: ClientFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A caller's subscribe whose socket closes before the reply gets ConnectionError
        then, not a TimeoutError after ``rpc_timeout``."""
        closing_the_nth_subscribe(monkeypatch, 1)
        c: HubbubClient = await client("caller", rpc_timeout=RPC_TIMEOUT)
        started = time.monotonic()
        with pytest.raises(ConnectionError):
            await c.subscribe("public:never")
        assert time.monotonic() - started < RPC_TIMEOUT / 6
        assert "public:never" not in c.subscriptions
