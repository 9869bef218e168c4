"""The REST edge: every 503 carries Retry-After, and an outage that escapes a hub handler
is a 503, not a 500 with a traceback."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import redis.exceptions
from aiohttp import web
from nats.aio.client import Client as NATS

from hub.middleware import request_context
from hub.state import BUS, SETTINGS
from hubbub.bus import Bus
from hubbub.config import Environment, Settings
from hubbub.contracts.errors import Forbidden, Unavailable
from hubbub.contracts.subjects import Subjects
from hubbub.dependencies import Health


def _app(handler: Any, tmp_path: Any) -> web.Application:
    app = web.Application(middlewares=[request_context])
    app[SETTINGS] = Settings(
        env=Environment.TEST,
        state_dir=tmp_path,
        secret_key="s" * 40,
        _env_file=None,
    )
    app.router.add_get("/api/v1/x", handler)
    return app


class TestTheRestEdge:
    async def test_an_unavailable_answer_carries_retry_after(
        self, aiohttp_client: Any, tmp_path: Any
    ) -> None:
        """details.retry_after becomes the Retry-After header."""

        async def handler(request: web.Request) -> web.Response:
            raise Unavailable("busy", retry_after=3)

        client = await aiohttp_client(_app(handler, tmp_path))
        response = await client.get("/api/v1/x")
        body = await response.json(content_type=None)
        assert (response.status, response.headers["Retry-After"]) == (503, "3")
        assert (body["code"], body["details"]) == ("unavailable", {"retry_after": 3})

    async def test_a_redis_outage_in_a_hub_handler_is_a_503_without_a_traceback(
        self, aiohttp_client: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """One warning line, no traceback, and the caller hears 503 with Retry-After."""

        async def handler(request: web.Request) -> web.Response:
            raise redis.exceptions.ConnectionError("Connection refused")

        client = await aiohttp_client(_app(handler, tmp_path))
        with caplog.at_level(logging.WARNING):
            response = await client.get("/api/v1/x")
        assert (response.status, response.headers["Retry-After"]) == (503, "1")
        assert (await response.json(content_type=None))["code"] == "unavailable"
        assert [r.getMessage() for r in caplog.records if r.name == "hubbub.hub"] == [
            "redis unreachable: ConnectionError: Connection refused"
        ]
        assert not any(r.exc_info for r in caplog.records)

    async def test_a_hubs_redis_outage_is_one_line_however_many_requests_meet_it(
        self, aiohttp_client: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """In a hub (its bus's outage tracker at hand): "went away" once, not a line per
        request."""

        async def handler(request: web.Request) -> web.Response:
            raise redis.exceptions.ConnectionError("Connection refused")

        app = _app(handler, tmp_path)
        app[BUS] = Bus(NATS(), Subjects("t"), Health())
        client = await aiohttp_client(app)
        with caplog.at_level(logging.WARNING):
            for _ in range(5):
                assert (await client.get("/api/v1/x")).status == 503
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
            "redis went away: ConnectionError: Connection refused"
        ]

    async def test_a_failure_whose_problem_cannot_be_written_is_a_plain_internal_problem(
        self, aiohttp_client: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Details JSON cannot carry (a lone surrogate, from a header byte that was not
        UTF-8) still end in problem details with the request id, not aiohttp's bare 500."""

        async def handler(request: web.Request) -> web.Response:
            raise Forbidden("no", origin="http://a\udcff")

        client = await aiohttp_client(_app(handler, tmp_path))
        with caplog.at_level(logging.ERROR):
            response = await client.get("/api/v1/x", headers={"X-Request-Id": "req-12345678"})
        body = await response.json(content_type=None)
        assert (response.status, response.content_type) == (500, "application/problem+json")
        assert (body["code"], body["request_id"]) == ("internal", "req-12345678")
        assert response.headers["X-Request-Id"] == "req-12345678"
        assert [r.getMessage() for r in caplog.records if r.exc_info] == [
            "could not write the problem details of a failure"
        ]
