"""Account changes reach open sockets: the real admin and logout operations, over REST,
close the affected user's WebSocket with the documented code."""

from __future__ import annotations

import io
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from cli.admin.accounts import create_user
from hubbub.client import HubbubClient
from hubbub.config import Settings
from tests.e2e.test_realtime import raw_socket, receive_json
from tests.support.clients import first_close


async def sign_in(base: str, email: str, password: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/api/v1/auth/login", json={"email": email, "password": password}) as r,
    ):
        assert r.status == 200, await r.text()
        body: dict[str, Any] = await r.json()
        return body


class TestAccountChangesCloseSockets:
    async def test_deactivation_closes_the_users_sockets_with_4003(
        self, settings: Settings, hub_server: TestServer
    ) -> None:
        base = f"http://127.0.0.1:{hub_server.port}"
        await create_user(
            settings,
            "boss@example.com",
            admin=True,
            password="an admin password 1",
            out=io.StringIO(),
        )
        await create_user(
            settings, "emp@example.com", password="an employee password 1", out=io.StringIO()
        )
        boss = await sign_in(base, "boss@example.com", "an admin password 1")
        emp = await sign_in(base, "emp@example.com", "an employee password 1")
        socket = HubbubClient(f"ws://127.0.0.1:{hub_server.port}/ws", emp["access_token"])
        try:
            await socket.connect()
            async with (
                aiohttp.ClientSession() as session,
                session.patch(
                    f"{base}/api/v1/users/{emp['user']['id']}",
                    json={"is_active": False},
                    headers={"Authorization": f"Bearer {boss['access_token']}"},
                ) as r,
            ):
                assert r.status == 200
            assert await first_close(socket) == 4003
            # The access token is still unexpired: a new socket with it is told the same.
            async with aiohttp.ClientSession() as session:
                ws = await raw_socket(f"ws://127.0.0.1:{hub_server.port}/ws", session)
                await ws.send_json({"id": 1, "op": "connect", "token": emp["access_token"]})
                refused = await receive_json(ws)
                assert (refused["error"]["code"], refused["error"]["details"]["reason"]) == (
                    "unauthorized",
                    "deactivated",
                )
                disconnect = await receive_json(ws)
                assert (disconnect["code"], disconnect["reconnect"]) == (4003, False)
                closing = await ws.receive(timeout=5)
                assert (closing.type, ws.close_code) == (aiohttp.WSMsgType.CLOSE, 4003)
                async with session.get(
                    f"{base}/api/v1/users/me",
                    headers={"Authorization": f"Bearer {emp['access_token']}"},
                ) as me:
                    assert me.status == 401
                    assert (await me.json())["details"]["reason"] == "deactivated"
        finally:
            await socket.close()

    async def test_logout_everywhere_closes_the_users_sockets_with_4001(
        self, settings: Settings, hub_server: TestServer
    ) -> None:
        base = f"http://127.0.0.1:{hub_server.port}"
        await create_user(
            settings, "u@example.com", password="a user password 123", out=io.StringIO()
        )
        first = await sign_in(base, "u@example.com", "a user password 123")
        second = await sign_in(base, "u@example.com", "a user password 123")
        socket = HubbubClient(f"ws://127.0.0.1:{hub_server.port}/ws", first["access_token"])
        try:
            await socket.connect()
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    f"{base}/api/v1/auth/logout-all",
                    headers={"Authorization": f"Bearer {second['access_token']}"},
                ) as r,
            ):
                assert r.status == 204
            assert await first_close(socket) == 4001
        finally:
            await socket.close()
