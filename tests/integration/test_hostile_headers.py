"""Headers no browser sends — bytes that are not UTF-8, origins that are not URLs, a
client's trace context — get the API's own answers, never a 500, and go no further
than they should."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from hub.app import create_app
from hub.session_cookie import COOKIE
from hubbub.config import Settings
from hubbub.contracts.subjects import Subjects
from tests.support import ops
from tests.support.raw_http import RawResponse, raw_request

PROBLEM = "application/problem+json"
SPA_COOKIE = {"X-Requested-With": b"hubbub", "Cookie": f"{COOKIE}=some-token".encode()}


def problem(response: RawResponse) -> dict[str, Any]:
    assert response.headers["Content-Type"].startswith(PROBLEM), response.body
    body = response.json()
    assert isinstance(body, dict)
    assert body["request_id"] == response.headers["X-Request-Id"]
    return body


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING)
    return caplog


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


class TestBytesThatAreNotUtf8:
    async def test_a_bearer_token_that_is_not_ascii_is_malformed(
        self, hub_client: TestClient[Any, Any], no_tracebacks: pytest.LogCaptureFixture
    ) -> None:
        response = await raw_request(
            hub_client.server.port,
            "GET",
            b"/api/v1/users/me",
            {"Authorization": b"Bearer \xff\xfe.a.b"},
        )
        body = problem(response)
        assert (response.status, body["details"]["reason"]) == (401, "malformed")
        assert_no_traceback(no_tracebacks)

    async def test_a_public_operation_treats_it_as_no_token(
        self, hub_client: TestClient[Any, Any], no_tracebacks: pytest.LogCaptureFixture
    ) -> None:
        response = await raw_request(
            hub_client.server.port,
            "POST",
            b"/api/v1/test/echo",
            {"Authorization": b"Bearer \xff\xfe.a.b", "Content-Type": b"application/json"},
            b'{"seq": 1}',
        )
        assert (response.status, response.json()) == (200, {"key": "k", "seq": 1, "payload": {}})
        assert_no_traceback(no_tracebacks)

    async def test_a_login_with_such_a_token_is_answered(
        self, hub_client: TestClient[Any, Any], no_tracebacks: pytest.LogCaptureFixture
    ) -> None:
        response = await raw_request(
            hub_client.server.port,
            "POST",
            b"/api/v1/auth/login",
            {"Authorization": b"Bearer \xff\xfe.a.b", "Content-Type": b"application/json"},
            b'{"email": "nobody@example.com", "password": "not the password"}',
        )
        assert (response.status, problem(response)["code"]) == (401, "unauthorized")
        assert_no_traceback(no_tracebacks)

    @pytest.mark.parametrize(
        "header", [{"Authorization": b"Bearer hbk_\xff\xfe"}, {"X-Api-Key": b"hbk_\xff"}]
    )
    async def test_an_api_key_that_is_not_ascii_is_unauthorized(
        self,
        hub_client: TestClient[Any, Any],
        no_tracebacks: pytest.LogCaptureFixture,
        header: dict[str, bytes],
    ) -> None:
        response = await raw_request(
            hub_client.server.port,
            "POST",
            b"/api/v1/channels/public:x/publish",
            {**header, "Content-Type": b"application/json"},
            b'{"data": {}}',
        )
        assert (response.status, problem(response)["code"]) == (401, "unauthorized")
        assert_no_traceback(no_tracebacks)

    async def test_a_traceparent_that_is_not_ascii_is_ignored(
        self, hub_client: TestClient[Any, Any], no_tracebacks: pytest.LogCaptureFixture
    ) -> None:
        response = await raw_request(
            hub_client.server.port,
            "POST",
            b"/api/v1/test/echo",
            {"traceparent": b"\xff", "Content-Type": b"application/json"},
            b'{"seq": 2}',
        )
        assert (response.status, response.json()) == (200, {"key": "k", "seq": 2, "payload": {}})
        assert_no_traceback(no_tracebacks)


class TestTraceContextFromClients:
    async def test_without_tracing_the_clients_traceparent_stays_at_the_edge(
        self, hub_client: TestClient[Any, Any], nc: NATS, settings: Settings
    ) -> None:
        """Only a span of the hub's own is named to workers: a client must not decide
        their sampling, nor make every bus message carry its 8 KiB header."""
        seen: asyncio.Queue[Msg] = asyncio.Queue()
        sub = await nc.subscribe(Subjects(settings.namespace).service("test.echo"), cb=seen.put)
        await nc.flush()
        traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        response = await hub_client.post(
            "/api/v1/test/echo", json={"seq": 3}, headers={"traceparent": traceparent}
        )
        assert response.status == 200
        msg = await asyncio.wait_for(seen.get(), 10)
        await sub.unsubscribe()
        assert "traceparent" not in (msg.headers or {})


class TestOriginsThatAreNotUrls:
    async def test_an_origin_that_cannot_be_echoed_is_refused_with_a_problem(
        self, hub_client: TestClient[Any, Any], no_tracebacks: pytest.LogCaptureFixture
    ) -> None:
        response = await raw_request(
            hub_client.server.port,
            "POST",
            b"/api/v1/auth/refresh",
            {**SPA_COOKIE, "Origin": b"http://a\xff"},
        )
        assert (response.status, problem(response)["code"]) == (403, "forbidden")
        assert_no_traceback(no_tracebacks)

    @pytest.fixture
    async def public_hub(
        self, settings: Settings, aiohttp_client: Any, nc: NATS
    ) -> TestClient[Any, Any]:
        """A hub that knows the URL browsers reach it at."""
        configured = settings.model_copy(update={"public_url": "https://hub.example"})
        client: TestClient[Any, Any] = await aiohttp_client(
            create_app(configured, ops.catalog_with_tests())
        )
        return client

    @pytest.mark.parametrize("path", [b"/api/v1/auth/refresh", b"/api/v1/auth/logout"])
    @pytest.mark.parametrize("origin", [b"null", b"hub.example", b"http://[::1"])
    async def test_an_origin_that_is_not_an_absolute_url_is_refused(
        self,
        public_hub: TestClient[Any, Any],
        no_tracebacks: pytest.LogCaptureFixture,
        path: bytes,
        origin: bytes,
    ) -> None:
        response = await raw_request(
            public_hub.server.port, "POST", path, {**SPA_COOKIE, "Origin": origin}
        )
        assert (response.status, problem(response)["code"]) == (403, "forbidden")
        assert_no_traceback(no_tracebacks)
