"""Request bodies sent with a ``Content-Encoding``: one that decodes is read as JSON; one
that does not is the client's mistake, answered ``400`` naming the encoding (not a
``500``), with the connection closed and no traceback logged."""

from __future__ import annotations

import asyncio
import gzip
import logging
import zlib
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.support.raw_http import RawResponse, raw_request

PROBLEM = "application/problem+json"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What was logged at WARNING or above, or with a traceback."""
    return [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.exc_info or r.levelno >= logging.WARNING
    ]


async def post_encoded(port: int, path: bytes, encoding: bytes, body: bytes) -> RawResponse:
    return await raw_request(
        port,
        "POST",
        path,
        {"Content-Type": b"application/json", "Content-Encoding": encoding},
        body,
    )


async def closes_after_answer(port: int, request: bytes) -> bytes:
    """The whole answer to a keep-alive ``request``: returns once the server has closed
    the connection (a connection kept open fails the test at the timeout)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


class TestBodiesThatDoNotDecode:
    @pytest.mark.parametrize("encoding", [b"gzip", b"deflate"])
    async def test_a_login_whose_body_does_not_decode_is_a_bad_request(
        self,
        hub_client: TestClient[Any, Any],
        logs: pytest.LogCaptureFixture,
        encoding: bytes,
    ) -> None:
        response = await post_encoded(
            hub_client.server.port, b"/api/v1/auth/login", encoding, b"this is not compressed"
        )
        assert response.status == 400
        assert response.headers["Content-Type"].startswith(PROBLEM)
        body = response.json()
        assert isinstance(body, dict)
        assert body["code"] == "bad_request"
        assert f"Content-Encoding: {encoding.decode()}" in body["detail"]
        assert tracebacks(logs) == []

    async def test_the_connection_is_closed_after_the_answer(
        self, hub_client: TestClient[Any, Any], logs: pytest.LogCaptureFixture
    ) -> None:
        """What is left of a body that cannot be decoded is never read: the client is
        told, and the connection it asked to keep open is closed."""
        body = b"this is not gzip at all"
        raw = await closes_after_answer(
            hub_client.server.port,
            b"POST /api/v1/test/echo HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body,
        )
        head = raw.partition(b"\r\n\r\n")[0].lower()
        assert head.startswith(b"http/1.1 400")
        assert b"\r\nconnection: close" in head
        assert tracebacks(logs) == []

    async def test_a_body_never_read_because_the_request_was_refused_logs_no_traceback(
        self, hub_client: TestClient[Any, Any], logs: pytest.LogCaptureFixture
    ) -> None:
        """Refused before its body is read (no such user's token): the answer is the
        refusal, and the undecodable body left behind is no server error."""
        response = await raw_request(
            hub_client.server.port,
            "PATCH",
            b"/api/v1/users/me",
            {"Content-Type": b"application/json", "Content-Encoding": b"gzip"},
            b"this is not gzip at all",
        )
        assert response.status == 401
        assert tracebacks(logs) == []


class TestBodiesThatDecode:
    @pytest.mark.parametrize(
        ("encoding", "compress"), [(b"gzip", gzip.compress), (b"deflate", zlib.compress)]
    )
    async def test_a_compressed_json_body_is_read(
        self, hub_client: TestClient[Any, Any], encoding: bytes, compress: Any
    ) -> None:
        response = await post_encoded(
            hub_client.server.port, b"/api/v1/test/echo", encoding, compress(b'{"seq": 4}')
        )
        assert (response.status, response.json()) == (200, {"key": "k", "seq": 4, "payload": {}})
