"""``GET /ws`` that is not a WebSocket upgrade, offers our subprotocol in a list, or never
sends its ``connect``."""

from __future__ import annotations

import aiohttp
import pytest


async def test_a_plain_get_with_our_subprotocol_is_refused_with_a_problem(ws_url: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            ws_url.replace("ws://", "http://"), headers={"Sec-WebSocket-Protocol": "hubbub.v1.json"}
        ) as response,
    ):
        assert response.status == 400
        assert response.headers["Content-Type"] == "application/problem+json"
        assert "send an upgrade request" in (await response.json())["detail"]


async def test_our_subprotocol_is_found_in_a_list_of_offers(ws_url: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(ws_url, protocols=("other.v2", "hubbub.v1.json")) as ws,
    ):
        assert ws.protocol == "hubbub.v1.json"


async def test_a_socket_that_sends_no_connect_in_time_is_closed_with_4001(ws_url: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(ws_url, protocols=("hubbub.v1.json",)) as ws,
    ):
        said = await ws.receive_json(timeout=10)  # the e2e hub waits 1 s for connect
        assert said["push"] == "disconnect"
        assert said["code"] == 4001
        assert said["reason"] == "send connect within 1s"
        closing = await ws.receive(timeout=10)
        assert closing.type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 4001


@pytest.mark.parametrize("origin", ["http://[::1", "http://[not-an-address]", "null"])
async def test_an_origin_that_is_not_a_url_is_refused_with_a_problem(
    ws_url: str, origin: str, caplog: pytest.LogCaptureFixture
) -> None:
    """What ``urlsplit`` cannot parse is no origin of this hub's: 403, not a 500."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            ws_url.replace("ws://", "http://"),
            headers={
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Protocol": "hubbub.v1.json",
                "Origin": origin,
            },
        ) as response,
    ):
        assert response.status == 403
        assert (await response.json(content_type=None))["code"] == "forbidden"
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
