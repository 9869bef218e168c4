"""A connect carried by the upgrade request (``Authorization: Bearer``, ``?subscribe=``):
one round trip to a live, subscribed socket; every refusal an HTTP problem before any
socket exists."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import aiohttp
import orjson
import pytest
from nats.aio.client import Client as NATS

from hub.ws import endpoint
from hub.ws.service import Realtime
from hubbub.config import Settings
from hubbub.contracts.control import ControlMessage, Deactivated, SessionsRevoked
from tests.e2e.conftest import People
from tests.e2e.test_realtime import publish, receive_json
from tests.support.tokens import TestTokens

UPGRADE_HEADERS = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Protocol": "hubbub.v1.json",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def upgrade_connect(
    session: aiohttp.ClientSession, ws_url: str, token: str, *channels: str
) -> aiohttp.ClientWebSocketResponse:
    return await session.ws_connect(
        ws_url,
        params=[("subscribe", c) for c in channels],
        protocols=("hubbub.v1.json",),
        headers=bearer(token),
    )


async def a_request_first(session: aiohttp.ClientSession, ws_url: str) -> None:
    """A request on ``session``'s connection to the hub, which it keeps alive: an upgrade
    after it is not its connection's first request, so aiohttp serves it."""
    health = ws_url.replace("ws://", "http://").replace("/ws", "/api/v1/health")
    async with session.get(health) as r:
        assert r.status == 200
        await r.read()


async def refused(
    ws_url: str, headers: dict[str, str], params: list[tuple[str, str]] | None = None
) -> tuple[int, dict[str, Any], Any]:
    """The status, headers and problem body of an upgrade the hub refuses."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            ws_url.replace("ws://", "http://"),
            headers={**UPGRADE_HEADERS, **headers},
            params=params or [],
        ) as response,
    ):
        assert response.headers.get("Content-Type") == "application/problem+json", response.status
        return response.status, dict(response.headers), await response.json(content_type=None)


async def control(realtime: Realtime, message: ControlMessage) -> None:
    """What the hub does with a control message from NATS."""
    msg = SimpleNamespace(data=orjson.dumps(message.model_dump()), subject="test")
    await realtime.revocations._on_message(msg)  # type: ignore[arg-type]


def ending(kind: str, user: str) -> ControlMessage:
    if kind == "revoked":
        return SessionsRevoked(user_id=user, sids=("sid-1",), until=2.0**40)
    return Deactivated(user_id=user, until=2.0**40)


class TestConnectInTheUpgrade:
    async def test_the_socket_is_connected_and_subscribed_before_it_sends_a_frame(
        self, ws_url: str, tokens: TestTokens, nc: NATS, settings: Settings
    ) -> None:
        async with aiohttp.ClientSession() as session:
            ws = await upgrade_connect(
                session, ws_url, tokens.issue("u1"), "public:news", "user:u1"
            )
            connected = await receive_json(ws)
            assert connected["push"] == "connected"
            assert connected["user"] == {"id": "u1", "role": "member"}
            assert connected["client"]
            assert connected["expires_in"] > 0
            first, second = await receive_json(ws), await receive_json(ws)
            assert [(p["push"], p["channel"]) for p in (first, second)] == [
                ("subscribed", "public:news"),
                ("subscribed", "user:u1"),
            ]
            assert (first["recovered"], first["publications"]) == (False, [])
            offset = await publish(nc, settings, "public:news", {"n": 1})
            pub = await receive_json(ws)
            assert (pub["push"], pub["channel"], pub["offset"], pub["data"]) == (
                "pub",
                "public:news",
                offset,
                {"n": 1},
            )
            # The socket takes commands as any other; a second connect is refused.
            await ws.send_str('{"id": 1, "op": "connect", "token": "x"}')
            again = await receive_json(ws)
            assert (again["id"], again["error"]["code"]) == (1, "bad_request")
            await ws.send_str('{"id": 2, "op": "subscribe", "channel": "public:news"}')
            assert (await receive_json(ws))["error"]["code"] == "conflict"

    async def test_a_workspace_channel_needs_its_membership(
        self, ws_url: str, tokens: TestTokens, people: People
    ) -> None:
        owner, stranger = await people.user("owner"), await people.user("stranger")
        workspace = await people.workspace(owner)
        channel = f"workspace:{workspace}"
        async with aiohttp.ClientSession() as session:
            ws = await upgrade_connect(session, ws_url, tokens.issue(owner), channel)
            assert (await receive_json(ws))["push"] == "connected"
            subscribed = await receive_json(ws)
            assert (subscribed["push"], subscribed["channel"]) == ("subscribed", channel)
        status, _, problem = await refused(
            ws_url, bearer(tokens.issue(stranger)), [("subscribe", channel)]
        )
        assert (status, problem["code"]) == (403, "forbidden")

    async def test_a_bad_token_is_refused_with_401_and_no_socket(
        self, ws_url: str, realtime: Realtime
    ) -> None:
        status, headers, problem = await refused(ws_url, bearer("not-a-jwt"))
        assert (status, problem["code"]) == (401, "unauthorized")
        assert headers["WWW-Authenticate"].startswith('Bearer realm="hubbub"')
        status, _, problem = await refused(ws_url, {"Authorization": "Bearer "})
        assert (status, problem["code"]) == (401, "unauthorized")
        assert "Authorization: Bearer" in problem["detail"]
        assert not realtime.connections

    async def test_another_scheme_is_no_connect_and_the_frame_follows(
        self, ws_url: str, tokens: TestTokens
    ) -> None:
        """E.g. a proxy's own ``Authorization: Basic``: the upgrade is a plain one."""
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(
                ws_url, protocols=("hubbub.v1.json",), headers={"Authorization": "Basic dTpw"}
            )
            await ws.send_json({"id": 1, "op": "connect", "token": tokens.issue("u1")})
            assert (await receive_json(ws))["result"]["user"]["id"] == "u1"

    @pytest.mark.parametrize("kind", ["revoked", "deactivated"])
    async def test_a_session_ended_while_its_channels_were_checked_is_refused(
        self,
        ws_url: str,
        tokens: TestTokens,
        people: People,
        realtime: Realtime,
        monkeypatch: pytest.MonkeyPatch,
        kind: str,
    ) -> None:
        owner = await people.user("owner")
        workspace = await people.workspace(owner)
        check = realtime.authorizer.check

        async def ended_meanwhile(*args: Any) -> None:
            await control(realtime, ending(kind, owner))
            await check(*args)

        monkeypatch.setattr(realtime.authorizer, "check", ended_meanwhile)
        status, headers, problem = await refused(
            ws_url,
            bearer(tokens.issue(owner, sid="sid-1")),
            [("subscribe", f"workspace:{workspace}")],
        )
        assert (status, problem["code"], problem["details"]["reason"]) == (
            401,
            "unauthorized",
            kind,
        )
        assert f'error_description="{kind}"' in headers["WWW-Authenticate"]
        assert not realtime.connections

    @pytest.mark.parametrize(("kind", "code"), [("revoked", 4001), ("deactivated", 4003)])
    async def test_a_session_ended_while_the_101_was_written_is_closed_as_a_socket_of_it(
        self,
        ws_url: str,
        tokens: TestTokens,
        realtime: Realtime,
        monkeypatch: pytest.MonkeyPatch,
        kind: str,
        code: int,
    ) -> None:
        """No socket existed for the control message to close: the one registered right
        after is closed at once, with what a control message would have sent. (aiohttp
        writes the 101 of an upgrade it serves, here one after a request on a kept-alive
        connection; the hub's own upgrades hold theirs, with nothing awaited.)"""
        prepare = endpoint.HubSocket.prepare

        async def ended_meanwhile(self: endpoint.HubSocket, request: Any) -> Any:
            await control(realtime, ending(kind, "u9"))
            return await prepare(self, request)

        monkeypatch.setattr(endpoint.HubSocket, "prepare", ended_meanwhile)
        async with aiohttp.ClientSession() as session:
            await a_request_first(session, ws_url)
            ws = await upgrade_connect(session, ws_url, tokens.issue("u9", sid="sid-1"), "public:a")
            said = await receive_json(ws)
            assert (said["push"], said["code"]) == ("disconnect", code)
            closing = await ws.receive(timeout=5)
            assert (closing.type, ws.close_code) == (aiohttp.WSMsgType.CLOSE, code)
        assert not realtime.connections

    async def test_a_revoked_session_is_refused_with_its_reason(
        self, ws_url: str, tokens: TestTokens, realtime: Realtime
    ) -> None:
        realtime.revocations.sessions["revoked-sid"] = 2.0**40  # as a control message does
        status, headers, problem = await refused(
            ws_url, bearer(tokens.issue("u1", sid="revoked-sid"))
        )
        assert (status, problem["code"]) == (401, "unauthorized")
        assert 'error="invalid_token"' in headers["WWW-Authenticate"]
        assert problem["details"]["reason"] in headers["WWW-Authenticate"]

    async def test_one_socket_over_the_users_cap_is_refused_with_429(
        self, ws_url: str, tokens: TestTokens, settings: Settings
    ) -> None:
        cap = settings.max_sockets_per_user
        async with aiohttp.ClientSession() as session:
            held = [
                await upgrade_connect(session, ws_url, tokens.issue("busy")) for _ in range(cap)
            ]
            for ws in held:
                assert (await receive_json(ws))["push"] == "connected"
            status, headers, problem = await refused(ws_url, bearer(tokens.issue("busy")))
        assert (status, problem["code"], problem["details"]["limit"]) == (429, "rate_limited", cap)
        assert headers["Retry-After"] == "1"

    @pytest.mark.parametrize(
        ("params", "status", "code"),
        [
            ([("subscribe", "nope")], 400, "bad_request"),
            ([("subscribe", "")], 400, "bad_request"),
            ([("subscribe", "public:a"), ("subscribe", "public:a")], 400, "bad_request"),
            ([("subscribe", "user:someone-else")], 403, "forbidden"),
        ],
    )
    async def test_a_channel_it_cannot_have_refuses_the_upgrade(
        self,
        ws_url: str,
        tokens: TestTokens,
        params: list[tuple[str, str]],
        status: int,
        code: str,
    ) -> None:
        got, _, problem = await refused(ws_url, bearer(tokens.issue("u1")), params)
        assert (got, problem["code"]) == (status, code)

    async def test_more_channels_than_a_socket_may_have_is_413(
        self, ws_url: str, tokens: TestTokens, settings: Settings
    ) -> None:
        params = [("subscribe", f"public:c{i}") for i in range(settings.ws_max_subscriptions + 1)]
        status, _, problem = await refused(ws_url, bearer(tokens.issue("u1")), params)
        assert (status, problem["code"]) == (413, "too_large")
        assert problem["details"]["limit"] == settings.ws_max_subscriptions

    async def test_channels_without_a_token_are_refused_with_400(self, ws_url: str) -> None:
        status, _, problem = await refused(ws_url, {}, [("subscribe", "public:a")])
        assert (status, problem["code"]) == (400, "bad_request")
        assert "Authorization: Bearer" in problem["detail"]

    async def test_a_refused_origin_is_refused_before_the_token_is_read(self, ws_url: str) -> None:
        status, _, problem = await refused(
            ws_url, {**bearer("not-a-jwt"), "Origin": "https://elsewhere.example"}
        )
        assert (status, problem["code"]) == (403, "forbidden")


class TestChannelsPastTheCommandBurst:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"ws_commands_burst": 2})

    async def test_each_channel_counts_as_a_subscribe_command(
        self, ws_url: str, tokens: TestTokens
    ) -> None:
        async with aiohttp.ClientSession() as session:
            ws = await upgrade_connect(
                session, ws_url, tokens.issue("u1"), "public:a", "public:b", "public:c"
            )
            pushes = [await receive_json(ws) for _ in range(4)]
        assert [(p["push"], p.get("channel")) for p in pushes] == [
            ("connected", None),
            ("subscribed", "public:a"),
            ("subscribed", "public:b"),
            ("unsubscribed", "public:c"),
        ]
        assert pushes[3]["code"] == 1013
