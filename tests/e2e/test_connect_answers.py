"""``GET /ws`` on a real hub: the upgrade and a refused upgrade are both counted in the
HTTP requests by status class; the refusal carries the request id and security headers
(the endpoint gives them itself: no middleware frame and no response signal is kept for
the socket route)."""

from __future__ import annotations

import aiohttp
from aiohttp.test_utils import TestServer

from hub import metrics
from hub.middleware import REQUEST_ID_HEADER, SECURITY_HEADERS
from tests.e2e.conftest import ClientFactory


def _counted(hub_server: TestServer, status: str) -> float:
    registry = metrics.metrics_of(hub_server.app).registry
    return registry.get_sample_value("hubbub_http_requests_total", {"status": status}) or 0.0


async def test_a_socket_upgrade_is_counted_as_1xx(
    hub_server: TestServer, client: ClientFactory
) -> None:
    before = _counted(hub_server, "1xx")
    a = await client("a")
    b = await client("b")
    assert a is not b
    assert _counted(hub_server, "1xx") == before + 2


async def test_a_refused_upgrade_is_counted_with_its_headers(
    hub_server: TestServer, ws_url: str
) -> None:
    before = _counted(hub_server, "4xx")
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            ws_url.replace("ws://", "http://"),
            headers={"Sec-WebSocket-Protocol": "hubbub.v1.json", REQUEST_ID_HEADER: "refused-01"},
        ) as response,
    ):
        assert response.status == 400
        assert response.headers[REQUEST_ID_HEADER] == "refused-01"
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value
    assert _counted(hub_server, "4xx") == before + 1
