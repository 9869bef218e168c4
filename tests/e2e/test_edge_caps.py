"""The socket edge: the client IP behind trusted proxies, the cap on a user's sockets,
the budget of a user's published bytes — on a real hub."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from nats.aio.client import Client as NATS

from hub.app import create_app
from hub.state import REALTIME
from hubbub.config import Rate, Settings
from hubbub.contracts.channels import ChannelKind
from hubbub.contracts.subjects import Subjects
from tests.e2e.test_bad_input import closed_with, next_reply
from tests.e2e.test_realtime import receive_json
from tests.support import ops
from tests.support.tokens import TestTokens
from tests.support.waiting import wait_for

HubFactory = Callable[..., Awaitable[TestServer]]


@pytest.fixture
async def hub_with(settings: Settings, aiohttp_server: Any, worker: Any) -> HubFactory:
    """``await hub_with(setting=value, …)``: a hub of its own with those settings."""

    async def make(**changes: Any) -> TestServer:
        app = create_app(settings.model_copy(update=changes), ops.catalog_with_tests())
        server: TestServer = await aiohttp_server(app)
        return server

    return make


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def open_socket(
    session: aiohttp.ClientSession,
    server: TestServer,
    token: str,
    headers: dict[str, str] | None = None,
) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    """A socket to ``server`` and the reply to its ``connect``."""
    ws = await session.ws_connect(
        f"ws://127.0.0.1:{server.port}/ws",
        protocols=("hubbub.v1.json",),
        headers=headers or {},
    )
    await ws.send_str(orjson.dumps({"id": 1, "op": "connect", "token": token}).decode())
    return ws, await receive_json(ws)


def ip_of(server: TestServer, client_id: str) -> str | None:
    """The client IP the hub gave the socket's caller (what rate limits and sessions see)."""
    [conn] = [c for c in server.app[REALTIME].connections if c.id == client_id]
    assert conn.caller is not None
    return conn.caller.ip


class TestClientIp:
    async def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(
        self, hub_with: HubFactory, session: aiohttp.ClientSession, tokens: TestTokens
    ) -> None:
        server = await hub_with(trusted_proxies=["127.0.0.0/8"])
        ws, reply = await open_socket(
            session,
            server,
            tokens.issue("proxied"),
            {"X-Forwarded-For": "198.51.100.9, 203.0.113.7"},
        )
        assert ip_of(server, reply["result"]["client"]) == "203.0.113.7"
        await ws.close()

    async def test_from_an_untrusted_peer_the_header_is_ignored(
        self, hub_with: HubFactory, session: aiohttp.ClientSession, tokens: TestTokens
    ) -> None:
        server = await hub_with(trusted_proxies=["10.0.0.0/8"])
        ws, reply = await open_socket(
            session, server, tokens.issue("direct"), {"X-Forwarded-For": "203.0.113.7"}
        )
        assert ip_of(server, reply["result"]["client"]) == "127.0.0.1"
        await ws.close()


class TestSocketsPerUser:
    async def test_one_socket_over_the_cap_is_refused_and_closed_4008(
        self, hub_with: HubFactory, session: aiohttp.ClientSession, tokens: TestTokens
    ) -> None:
        server = await hub_with(max_sockets_per_user=2)
        first, a = await open_socket(session, server, tokens.issue("greedy"))
        second, b = await open_socket(session, server, tokens.issue("greedy"))
        assert ("result" in a, "result" in b) == (True, True)
        third, refused = await open_socket(session, server, tokens.issue("greedy"))
        assert refused["error"]["code"] == "rate_limited"
        assert refused["error"]["details"]["limit"] == 2
        assert await closed_with(third) == 4008
        # Another user is not affected; one socket less makes room again.
        other, c = await open_socket(session, server, tokens.issue("modest"))
        assert "result" in c
        await first.close()
        realtime = server.app[REALTIME]
        await wait_for(lambda: len(realtime.by_user.get("greedy", ())) == 1)
        fourth, d = await open_socket(session, server, tokens.issue("greedy"))
        assert "result" in d
        for ws in (second, other, fourth):
            await ws.close()


class TestPublishBudget:
    async def test_publishing_over_the_byte_budget_is_rate_limited_with_retry_after(
        self, hub_with: HubFactory, session: aiohttp.ClientSession, tokens: TestTokens
    ) -> None:
        """A bucket of 3,000 bytes refilled over an hour: three publications of about
        900 bytes pass, the fourth is refused — on another socket of the same user too —
        and another user keeps their own budget."""
        server = await hub_with(
            ws_publish_bytes_per_user=Rate(3000, 3600),
            channel_policies={"public": {"client_publish": True}},
        )
        ws, _ = await open_socket(session, server, tokens.issue("chatty"))
        data = {"text": "x" * 800}
        for n in range(2, 5):
            await ws.send_str(
                orjson.dumps(
                    {"id": n, "op": "publish", "channel": "public:budget", "data": data}
                ).decode()
            )
            reply = await next_reply(ws)
            assert "offset" in reply["result"], reply
        await ws.send_str(
            orjson.dumps(
                {"id": 5, "op": "publish", "channel": "public:budget", "data": data}
            ).decode()
        )
        refused = await next_reply(ws)
        assert (refused["id"], refused["error"]["code"]) == (5, "rate_limited")
        assert refused["error"]["details"]["retry_after"] > 60  # a refill takes an hour
        again, _ = await open_socket(session, server, tokens.issue("chatty"))
        await again.send_str(
            orjson.dumps(
                {"id": 6, "op": "publish", "channel": "public:budget", "data": data}
            ).decode()
        )
        assert (await next_reply(again))["error"]["code"] == "rate_limited"
        other, _ = await open_socket(session, server, tokens.issue("quiet"))
        await other.send_str(
            orjson.dumps(
                {"id": 7, "op": "publish", "channel": "public:budget", "data": data}
            ).decode()
        )
        assert "offset" in (await next_reply(other))["result"]
        for s in (ws, again, other):
            await s.close()


def nested(depth: int) -> str:
    """A JSON object nested ``depth`` levels deep (deeper than orjson writes: 254)."""
    return '{"x":' * depth + "{}" + "}" * depth


class TestPublishEdges:
    async def test_data_nested_too_deeply_is_refused_and_the_socket_keeps_serving(
        self, hub_with: HubFactory, session: aiohttp.ClientSession, tokens: TestTokens
    ) -> None:
        server = await hub_with(channel_policies={"public": {"client_publish": True}})
        ws, _ = await open_socket(session, server, tokens.issue("deep"))
        frame = '{"id": 2, "op": "publish", "channel": "public:deep", "data": %s}'
        await ws.send_str(frame % nested(300))
        refused = await next_reply(ws)
        assert (refused["id"], refused["error"]["code"]) == (2, "validation_failed")
        await ws.send_str('{"id": 3, "op": "publish", "channel": "public:deep", "data": {"n": 1}}')
        assert "offset" in (await next_reply(ws))["result"]
        await ws.close()

    async def test_data_nested_deeper_than_the_parser_reads_is_a_frame_that_is_not_json(
        self, hub_with: HubFactory, session: aiohttp.ClientSession, tokens: TestTokens
    ) -> None:
        """Past 1,024 levels (the frame's own included) the frame is not JSON to the hub's
        parser: ``bad_request`` with no id to answer, and the socket keeps serving."""
        server = await hub_with(channel_policies={"public": {"client_publish": True}})
        ws, _ = await open_socket(session, server, tokens.issue("deeper"))
        frame = '{"id": 2, "op": "publish", "channel": "public:deeper", "data": %s}'
        await ws.send_str(frame % nested(1100))
        refused = await next_reply(ws)
        assert (refused["id"], refused["error"]["code"]) == (None, "bad_request")
        assert "not valid JSON" in refused["error"]["message"]
        await ws.send_str('{"id": 3, "op": "publish", "channel": "public:deeper", "data": {}}')
        assert "offset" in (await next_reply(ws))["result"]
        await ws.close()

    async def test_a_command_id_used_again_is_another_publication(
        self, hub_with: HubFactory, session: aiohttp.ClientSession, tokens: TestTokens
    ) -> None:
        """Each publish command publishes: the same id on another channel, or again on
        the same one, is no retry to drop."""
        server = await hub_with(channel_policies={"public": {"client_publish": True}})
        ws, _ = await open_socket(session, server, tokens.issue("reuser"))
        offsets = []
        for channel in ("public:one", "public:two", "public:two"):
            await ws.send_str(
                orjson.dumps(
                    {"id": 9, "op": "publish", "channel": channel, "data": {"on": channel}}
                ).decode()
            )
            offsets.append((await next_reply(ws))["result"]["offset"])
        assert len(set(offsets)) == 3
        await ws.close()

    async def test_a_history_that_does_not_accept_it_is_unavailable_not_a_closed_socket(
        self,
        hub_with: HubFactory,
        session: aiohttp.ClientSession,
        tokens: TestTokens,
        nc: NATS,
        settings: Settings,
    ) -> None:
        """Answered each time, the socket stays open, and a publish that was not stored
        spends none of the user's byte budget (3,000 bytes here: three of these)."""
        server = await hub_with(
            ws_publish_bytes_per_user=Rate(3000, 3600),
            channel_policies={"public": {"client_publish": True}},
        )
        ws, _ = await open_socket(session, server, tokens.issue("unheard"))
        subjects = Subjects(settings.namespace)
        await nc.jetstream().delete_stream(subjects.stream(ChannelKind.PUBLIC))
        data = {"text": "x" * 800}
        for n in range(2, 8):
            await ws.send_str(
                orjson.dumps(
                    {"id": n, "op": "publish", "channel": "public:gone", "data": data}
                ).decode()
            )
            refused = await next_reply(ws)
            assert (refused["id"], refused["error"]["code"]) == (n, "unavailable")
        assert not ws.closed
        await ws.close()
