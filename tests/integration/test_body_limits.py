"""A request body over the size limit: ``413 too_large``.

A body far over the limit (past ``drain_limit``: four times it), one of no declared
length, and one whose client waits for ``100 Continue``: the answer says
``Connection: close`` and the connection is closed after it, so the rest of the body is
never read (RFC 9110 §15.5.14). The close is staged (RFC 9112 §9.6): the answer, then
the hub's end of the connection (the client reads the end at once), then at most a
little more of what the client had in flight is thrown away before the connection goes,
so the client gets to read the answer before a reset.

A declared body up to ``drain_limit`` (what a proxy in front takes and sends on whole):
the answer at once, then the rest of the body read and thrown away within the request's
deadline, and the connection kept; closed if the body is not all in by the deadline, or
if it is compressed and decodes past ``DECODED_FACTOR`` times that.
A body read to its end already keeps the connection too.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import zlib
from typing import Any

import orjson
import pytest
from aiohttp import StreamReader
from aiohttp.test_utils import TestClient

from hub import metrics, middleware
from hubbub.config import Settings
from tests.support.waiting import wait_for

# Far less than the time aiohttp would go on reading a body it no longer needs (10 s).
PROMPTLY_S = 5.0


def head_and_body(raw: bytes) -> tuple[bytes, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return head.lower(), body


async def read_answer(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One answer off a connection that stays open: its head (lower case) and body."""
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), PROMPTLY_S)).lower()
    length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
    return head, await asyncio.wait_for(reader.readexactly(length), PROMPTLY_S)


def observed_413s(hub_client: TestClient[Any, Any]) -> tuple[float, float]:
    """How many 413s the hub's HTTP latency metric has observed, and their summed
    seconds."""
    histogram = metrics.metrics_of(hub_client.app).http_duration
    found = {
        sample.name.rsplit("_", 1)[1]: sample.value
        for family in histogram.collect()
        for sample in family.samples
        if sample.labels.get("status") == "413" and sample.name.endswith(("_count", "_sum"))
    }
    return found.get("count", 0.0), found.get("sum", 0.0)


def post_head(length: int, path: str = "/api/v1/test/echo", extra: bytes = b"") -> bytes:
    return (
        b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" % path.encode()
        + extra
        + b"Content-Length: %d\r\n\r\n" % length
    )


async def send_and_read_to_the_end(hub_client: TestClient[Any, Any], request: bytes) -> bytes:
    """Sends ``request`` on a new connection and reads all that comes back until the hub
    ends the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", hub_client.server.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), PROMPTLY_S)
    finally:
        writer.close()


def refused_and_closed(raw: bytes) -> bytes:
    """Asserts that ``raw`` is a 413 saying ``Connection: close``; its body."""
    head, body = head_and_body(raw)
    assert head.startswith(b"http/1.1 413"), raw[:200]
    assert b"\r\nconnection: close" in head
    return body


async def test_a_declared_body_over_the_limit_is_refused_without_reading_the_rest(
    hub_client: TestClient[Any, Any], settings: Settings
) -> None:
    """A ``Content-Length`` of 64 times the limit, and only a little of the body sent:
    the client reads the 413 and then the end of the connection, without sending more."""
    declared = settings.max_body_bytes * 64
    raw = await send_and_read_to_the_end(
        hub_client, post_head(declared) + b'{"payload": "' + b"a" * 16_384
    )
    problem = orjson.loads(refused_and_closed(raw))
    assert (problem["code"], problem["details"]["limit"]) == ("too_large", settings.max_body_bytes)


async def test_a_chunked_body_that_grows_over_the_limit_is_refused_the_same_way(
    hub_client: TestClient[Any, Any], settings: Settings
) -> None:
    """No ``Content-Length`` to refuse up front: the refusal comes once the limit is
    passed, and the connection closes with the body's end never sent."""
    chunk = b"a" * 65_536
    over = settings.max_body_bytes // len(chunk) + 2
    raw = await send_and_read_to_the_end(
        hub_client,
        b"POST /api/v1/test/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n" % (len(chunk), chunk) * over,
    )
    refused_and_closed(raw)


async def test_a_client_that_keeps_sending_is_cut_off(
    hub_client: TestClient[Any, Any], settings: Settings
) -> None:
    """A client that does not stop at the 413 can send only what the kernels' buffers and
    the hub's short linger take, never the gigabyte it announced: the hub stops reading
    and the client's writes fail."""
    declared = 1 << 30
    reader, writer = await asyncio.open_connection("127.0.0.1", hub_client.server.port)
    answer = asyncio.ensure_future(reader.read())
    sent, chunk = 0, b"a" * 65_536
    writer.write(
        b"POST /api/v1/test/echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % declared
    )
    try:
        async with asyncio.timeout(PROMPTLY_S * 2):
            while sent < declared:
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
    except ConnectionError:
        pass
    finally:
        writer.close()
    # The kernel's send and receive buffers hold a few MiB; the hub itself reads at most
    # the limit's worth and its linger's after the answer.
    assert sent < 64 * 1024 * 1024, f"the hub read {sent} bytes of a body it refused"
    raw = await asyncio.wait_for(answer, PROMPTLY_S)
    assert head_and_body(raw)[0].startswith(b"http/1.1 413"), raw[:200]


async def test_a_body_read_to_its_end_keeps_the_connection(
    hub_client: TestClient[Any, Any], settings: Settings
) -> None:
    """A body within the limit, read to its end, whose request is then too large for the
    bus: the 413 leaves nothing unread, so the connection stays open for the next
    request."""
    prefix, suffix = b'{"payload": {"x": "', b'"}}'
    body = prefix + b"a" * (settings.max_body_bytes - len(prefix) - len(suffix)) + suffix
    reader, writer = await asyncio.open_connection("127.0.0.1", hub_client.server.port)
    try:
        writer.write(
            b"POST /api/v1/test/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body
        )
        await writer.drain()
        head, body = await read_answer(reader)
        problem = orjson.loads(body)
        writer.write(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        again = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), PROMPTLY_S)
    finally:
        writer.close()
    assert head.startswith(b"http/1.1 413"), head
    assert "on the bus" in problem["detail"]
    assert b"\r\nconnection: close" not in head
    assert again.lower().startswith(b"http/1.1 200"), again


async def test_a_declared_body_over_the_limit_is_refused_before_anything_else(
    hub_client: TestClient[Any, Any], settings: Settings
) -> None:
    """Whatever the route, and before the caller is asked for (a request without a token
    would otherwise be answered 401, and its body read on all the same): 413, closed."""
    raw = await send_and_read_to_the_end(
        hub_client, post_head(settings.max_body_bytes * 64, "/api/v1/workspaces") + b"{"
    )
    assert orjson.loads(refused_and_closed(raw))["code"] == "too_large"


@pytest.mark.parametrize(
    "path", ["/api/v1/test/echo", "/api/v1/channels/news/publish"], ids=["operation", "publish"]
)
async def test_a_client_that_waits_for_100_continue_gets_the_413_instead(
    hub_client: TestClient[Any, Any], settings: Settings, path: str
) -> None:
    """``Expect: 100-continue`` with a length over the limit (within ``drain_limit``): no
    ``100 Continue`` asks for a body that would be refused; the 413 is the answer, and the
    connection is closed at once: the client may never send the body."""
    raw = await send_and_read_to_the_end(
        hub_client, post_head(settings.max_body_bytes + 1, path, extra=b"Expect: 100-continue\r\n")
    )
    assert orjson.loads(refused_and_closed(raw))["code"] == "too_large"


async def test_a_body_within_the_limit_still_gets_100_continue(
    hub_client: TestClient[Any, Any],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", hub_client.server.port)
    body = b'{"seq": 5}'
    try:
        writer.write(
            b"POST /api/v1/test/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        await writer.drain()
        go_on = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), PROMPTLY_S)
        writer.write(body)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), PROMPTLY_S)
    finally:
        writer.close()
    assert go_on == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert head.startswith(b"HTTP/1.1 200"), head


async def test_a_declared_body_a_proxy_would_take_is_answered_at_once_and_read_to_its_end(
    hub_client: TestClient[Any, Any], settings: Settings
) -> None:
    """Twice the limit: what compose's nginx takes (up to 2 MiB) and sends on whole after
    the headers. The 413 comes before the body is all sent, without ``Connection:
    close``, and its latency is observed then; the hub reads the rest and throws it away
    (a proxy whose send it cut off would take it for failed, and answer 502), and the
    connection takes the next request."""
    declared = settings.max_body_bytes * 2
    start = b'{"payload": "'
    reader, writer = await asyncio.open_connection("127.0.0.1", hub_client.server.port)
    try:
        writer.write(post_head(declared) + start)
        await writer.drain()
        head, body = await read_answer(reader)
        assert head.startswith(b"http/1.1 413"), head
        assert b"\r\nconnection: close" not in head
        assert orjson.loads(body)["code"] == "too_large"
        await wait_for(lambda: observed_413s(hub_client)[0] == 1, what="the 413 observed")
        assert observed_413s(hub_client)[1] < PROMPTLY_S
        writer.write(b"a" * (declared - len(start)))
        writer.write(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        again, _ = await read_answer(reader)
    finally:
        writer.close()
    assert again.startswith(b"http/1.1 200"), again


async def test_a_declared_body_past_the_drain_limit_is_not_read_on(
    hub_client: TestClient[Any, Any], settings: Settings
) -> None:
    """One byte over ``drain_limit``: the answer says ``Connection: close`` and the
    connection is closed with the body unsent."""
    declared = middleware.drain_limit(settings.max_body_bytes) + 1
    refused_and_closed(await send_and_read_to_the_end(hub_client, post_head(declared) + b"{"))


class TestADeclaredBodyThatStopsComing:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"request_timeout_s": 1.0})

    async def test_is_cut_off_at_the_request_deadline(
        self, hub_client: TestClient[Any, Any], settings: Settings
    ) -> None:
        """Twice the limit, and then nothing more: the 413 at once, and the connection
        closed at the request's deadline (1 s here), not held for the rest."""
        reader, writer = await asyncio.open_connection("127.0.0.1", hub_client.server.port)
        try:
            writer.write(post_head(settings.max_body_bytes * 2) + b"{")
            await writer.drain()
            head, _ = await read_answer(reader)
            assert head.startswith(b"http/1.1 413"), head
            assert await asyncio.wait_for(reader.read(), PROMPTLY_S) == b""  # closed
        finally:
            writer.close()


async def test_the_linger_before_a_close_is_not_counted_as_the_answers_latency(
    hub_client: TestClient[Any, Any],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A body far over the limit: the hub answers, shuts its side and lingers (here up to
    a minute) for what the client still has in flight. The answer's latency, in the
    metrics and the access log, is taken before the linger: the 413 is observed while
    the client still holds the connection."""
    monkeypatch.setattr(middleware, "CLOSE_LINGER_S", 60.0)
    caplog.set_level(logging.INFO, logger="hubbub.access")
    reader, writer = await asyncio.open_connection("127.0.0.1", hub_client.server.port)
    try:
        writer.write(post_head(settings.max_body_bytes * 64) + b"{")
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), PROMPTLY_S)  # the answer, the hub's end
        assert head_and_body(raw)[0].startswith(b"http/1.1 413"), raw[:200]
        await wait_for(lambda: observed_413s(hub_client)[0] == 1, what="the 413 observed")
        assert observed_413s(hub_client)[1] < PROMPTLY_S
    finally:
        writer.close()  # the linger ends: the access log's line follows

    def logged() -> list[Any]:
        return [
            record.__dict__["duration_ms"]
            for record in caplog.records
            if record.name == "hubbub.access" and record.__dict__.get("status") == 413
        ]

    await wait_for(logged, what="the access log's line")
    assert logged()[0] < PROMPTLY_S * 1000


async def test_a_compressed_body_is_thrown_away_only_up_to_its_budget_as_decoded(
    hub_client: TestClient[Any, Any], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused gzip body whose declared (wire) length is within the drain's limit but
    which inflates without end: it is decoded only up to the budget (decoding is the
    hub's CPU), then the connection is closed (the client reads the 413, then the end:
    the hub shuts its side before the close)."""
    thrown: list[int] = []
    readany = StreamReader.readany

    async def counted(self: StreamReader) -> bytes:
        chunk = await readany(self)
        thrown.append(len(chunk))
        return chunk

    monkeypatch.setattr(StreamReader, "readany", counted)
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip
    zeros = b"\0" * (16 << 20)
    body = b"".join(squeeze.compress(zeros) for _ in range(72)) + squeeze.flush()  # 1.1 GiB
    assert settings.max_body_bytes < len(body) < middleware.drain_limit(settings.max_body_bytes)
    reader, writer = await asyncio.open_connection("127.0.0.1", hub_client.server.port)
    writer.write(
        b"POST /api/v1/test/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    head, _ = await read_answer(reader)
    assert head.startswith(b"http/1.1 413")
    assert await asyncio.wait_for(reader.read(), PROMPTLY_S) == b""  # closed
    writer.close()
    limit = middleware.DECODED_FACTOR * middleware.drain_limit(settings.max_body_bytes)
    assert sum(thrown) <= limit + middleware.CLOSE_LINGER_BYTES + (1 << 20)


@pytest.mark.parametrize("refusal", ["drained", "closed"])
async def test_a_client_gone_right_after_its_headers_is_no_error(
    hub_client: TestClient[Any, Any],
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    refusal: str,
) -> None:
    """Its 413 cannot be written: that is the client's leaving, not a failure of ours —
    whether its body would have been drained or the connection closed unread."""
    if refusal == "closed":  # no body is drained
        monkeypatch.setattr(middleware, "DRAIN_FLOOR", 0)
        monkeypatch.setattr(middleware, "DRAIN_FACTOR", 1)
    before, _ = observed_413s(hub_client)
    for _ in range(5):
        sock = socket.create_connection(("127.0.0.1", hub_client.server.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.sendall(
            b"POST /api/v1/test/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n{" % (settings.max_body_bytes * 2)
        )
        sock.close()  # a reset
    # Each 413 is observed, then written, in one step of its handler: once all five are
    # observed, their writes have failed or not.
    await wait_for(lambda: observed_413s(hub_client)[0] >= before + 5)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
