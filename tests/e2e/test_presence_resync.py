"""Presence after a hub's NATS link was down: the diffs published meanwhile are lost for
it (presence is core NATS), so when the link is back it sends each of its sockets on a
channel with presence a diff that brings its member list up to date.

One hub talks to NATS through a proxy the test cuts (``tests/support/tcp_proxy``); the
other hub, where the member who leaves is connected, talks to NATS directly. The link
comes back only after the leave's diff went out, so the diff can reach the socket only
through the resync."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestServer
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from hub.app import create_app
from hubbub.client import HubbubClient
from hubbub.config import Settings
from hubbub.contracts.channels import Channel
from hubbub.contracts.subjects import Subjects
from tests.e2e.conftest import ClientFactory, People
from tests.e2e.test_missed_revocations import link_state
from tests.support import ops
from tests.support.tcp_proxy import TcpProxy
from tests.support.tokens import TestTokens
from tests.support.waiting import eventually, wait_for


@pytest.fixture
async def nats_proxy(settings: Settings) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy.to_url(settings.nats_url or "")
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def proxied_hub(
    settings: Settings, nats_proxy: TcpProxy, worker: Any
) -> AsyncIterator[TestServer]:
    proxied = settings.model_copy(update={"nats_url": nats_proxy.url("nats")})
    server = TestServer(create_app(proxied, ops.catalog_with_tests()), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


class LeavesPublished:
    """The clients announced ``left`` on a channel's presence subject, as NATS has them."""

    def __init__(self) -> None:
        self.clients: set[str] = set()

    async def on_msg(self, msg: Msg) -> None:
        self.clients |= {entry["client"] for entry in orjson.loads(msg.data)["left"]}

    async def include(self, client_id: str) -> None:
        async def published() -> bool:
            return client_id in self.clients

        await wait_for(published, what=f"the leave of {client_id} published")


class Watcher:
    """A member list kept the documented way: a snapshot, then the diffs on top."""

    def __init__(self, client: HubbubClient, channel: str) -> None:
        self.client = client
        self.channel = channel
        self.members: set[str] = set()

    async def snapshot(self) -> None:
        self.members = {m["client"] for m in await self.client.presence(self.channel)}

    def apply_pushes(self) -> None:
        while not self.client.pushes.empty():
            push = self.client.pushes.get_nowait()
            if push.get("push") == "presence" and push["channel"] == self.channel:
                self.members -= {entry["client"] for entry in push["left"]}
                self.members |= {entry["client"] for entry in push["joined"]}

    async def believes(self, clients: set[str]) -> None:
        async def there() -> None:
            self.apply_pushes()
            assert self.members == clients

        await eventually(there, timeout=15)


async def test_a_leave_missed_while_the_link_was_down_reaches_the_socket(
    client: ClientFactory,
    people: People,
    tokens: TestTokens,
    proxied_hub: TestServer,
    nats_proxy: TcpProxy,
    nc: NATS,
    settings: Settings,
) -> None:
    ua, ub = await people.user("a"), await people.user("b")
    workspace = await people.workspace(ua, (ub, "member"))
    channel = f"workspace:{workspace}"
    leaves = LeavesPublished()
    subject = Subjects(settings.namespace).presence(Channel.parse(channel))
    await nc.subscribe(subject, cb=leaves.on_msg)
    a = HubbubClient(f"ws://127.0.0.1:{proxied_hub.port}/ws", tokens.issue(ua))
    await a.connect()
    b = await client(ub)  # on the other hub
    await a.subscribe(channel)
    watcher = Watcher(a, channel)
    await watcher.snapshot()
    await b.subscribe(channel)
    await watcher.believes({a.client_id, b.client_id})

    await nats_proxy.cut()
    await link_state(proxied_hub, connected=False)
    await b.close()
    await leaves.include(b.client_id)  # published while a's hub cannot hear it
    await nats_proxy.restore()
    await link_state(proxied_hub, connected=True)

    await watcher.believes({a.client_id})
    assert a.reconnects == 0  # the hub's diff, not a resubscribe
    await a.close()
