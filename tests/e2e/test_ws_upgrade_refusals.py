"""``GET /ws`` that is not a WebSocket upgrade, or that offers our subprotocol in a list."""

from __future__ import annotations

import aiohttp


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
