"""The admin listener (metrics, readiness details) beside the public one, and the
whole-request deadline (HUBBUB_REQUEST_TIMEOUT_S): a hub on a real port, a real worker,
raw sockets for clients that stall their bodies."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from prometheus_client.parser import text_string_to_metric_families

from hub.admin import admin_listener, create_admin_app
from hub.app import create_app
from hubbub.config import Settings
from hubbub.contracts.subjects import Subjects
from tests.e2e.conftest import ClientFactory
from tests.support import ops
from tests.support.ports import quiet_port
from tests.support.waiting import eventually, wait_for
from workers.app import worker_running

# Short, so a stalled body is cut off soon; long enough for every quick request.
REQUEST_TIMEOUT_S = 1.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"request_timeout_s": REQUEST_TIMEOUT_S})


@pytest.fixture
async def admin_server(hub_server: TestServer, aiohttp_server: Any) -> TestServer:
    server: TestServer = await aiohttp_server(create_admin_app(hub_server.app))
    return server


async def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, dict(response.headers), await response.read()


def _url(server: TestServer, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


class TestMetricsAreOnTheAdminListenerOnly:
    async def test_the_public_listener_has_no_metrics(self, hub_server: TestServer) -> None:
        status, _, body = await _get(_url(hub_server, "/metrics"))
        assert status == 404
        assert orjson.loads(body)["code"] == "not_found"

    async def test_the_admin_listener_counts_sockets_and_subscriptions(
        self, admin_server: TestServer, client: ClientFactory
    ) -> None:
        a = await client("a")
        await a.subscribe("public:m1")
        await a.subscribe("user:a")
        status, headers, body = await _get(_url(admin_server, "/metrics"))
        assert status == 200
        assert headers["Content-Type"].startswith("text/plain")
        lines = dict(
            line.rsplit(" ", 1) for line in body.decode().splitlines() if not line.startswith("#")
        )
        assert float(lines["hubbub_ws_connections"]) == 1
        assert float(lines["hubbub_ws_subscriptions"]) == 2
        assert float(lines["hubbub_ws_feeds"]) == 2

    async def test_the_admin_listener_counts_the_workers_whose_heartbeats_it_hears(
        self, admin_server: TestServer
    ) -> None:
        series: dict[str, str] = {}

        async def heard() -> bool:
            _, _, body = await _get(_url(admin_server, "/metrics"))
            series.update(
                line.rsplit(" ", 1) for line in body.decode().splitlines() if line[:1] != "#"
            )
            return float(series["hubbub_workers_alive"]) >= 1

        await wait_for(heard, what="a worker's heartbeat")  # one a second
        assert float(series["hubbub_worker_resent_requests_total"]) == 0


async def _dependency_up(admin: TestServer, dependency: str) -> float:
    _, _, body = await _get(_url(admin, "/metrics"))
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == "hubbub_dependency_up" and sample.labels == {
                "dependency": dependency
            }:
                return sample.value
    raise AssertionError(f"no hubbub_dependency_up for {dependency}")


class TestDependenciesUp:
    async def test_workers_back_read_up_on_the_next_scrape_without_a_call(
        self, settings: Settings, aiohttp_server: Any, nc: NATS
    ) -> None:
        """On a quiet hub no call may come for a long time after the workers return:
        the gauge (and HubbubNoWorkersAnswering) must not wait for one."""
        hub = await aiohttp_server(create_app(settings, ops.catalog_with_tests()))
        admin = await aiohttp_server(create_admin_app(hub.app))
        async with worker_running(settings, ops.registry_with_tests()):
            await _echo_works(hub)
        async with (
            aiohttp.ClientSession() as session,
            session.post(_url(hub, "/api/v1/test/echo"), json={"key": "k", "seq": 1}) as gone,
        ):
            assert gone.status == 503  # no worker answers: the workers went away
        assert await _dependency_up(admin, "workers") == 0

        async with worker_running(settings, ops.registry_with_tests()):
            # Scrapes only: nothing else asks this hub for an operation.
            assert await eventually(_workers_up(admin)) == 1


def _workers_up(admin: TestServer) -> Callable[[], Awaitable[float]]:
    async def check() -> float:
        value = await _dependency_up(admin, "workers")
        assert value == 1
        return value

    return check


class TestReadiness:
    async def test_the_public_ready_tells_only_each_components_state(
        self, hub_server: TestServer
    ) -> None:
        status, _, raw = await _get(_url(hub_server, "/api/v1/ready"))
        assert status == 200
        assert orjson.loads(raw) == {
            "status": "ok",
            "components": {
                "nats": "ok",
                "deny_list": "ok",
                "redis": "ok",
                "workers": "ok",
                "postgres": "ok",
            },
        }
        assert str(os.getpid()) not in raw.decode()  # the worker answering is this process

    async def test_the_admin_ready_tells_which_worker_answered_and_how_fast(
        self, admin_server: TestServer
    ) -> None:
        status, _, raw = await _get(_url(admin_server, "/ready"))
        assert status == 200
        body = orjson.loads(raw)
        assert body["status"] == "ok"
        workers = body["components"]["workers"]
        assert workers["answered_by"] == f"{socket.gethostname()}:{os.getpid()}"
        assert workers["latency_ms"] >= 0
        assert body["components"]["postgres"]["ok"] is True

    async def test_without_workers_both_are_503_but_only_the_admin_ready_says_why(
        self, settings: Settings, aiohttp_server: Any, nc: NATS
    ) -> None:
        hub = await aiohttp_server(create_app(settings, ops.catalog_with_tests()))
        admin = await aiohttp_server(create_admin_app(hub.app))

        status, headers, raw = await _get(_url(hub, "/api/v1/ready"))
        assert (status, headers["Retry-After"]) == (503, "1")
        assert orjson.loads(raw) == {
            "status": "unavailable",
            "components": {
                "nats": "ok",
                # No worker could say what is revoked but not in Redis yet.
                "deny_list": "unavailable",
                "redis": "ok",
                "workers": "unavailable",
                "postgres": "unavailable",
            },
            "failing": ["deny_list", "postgres", "workers"],
        }

        status, headers, raw = await _get(_url(admin, "/ready"))
        assert (status, headers["Retry-After"]) == (503, "1")
        body = orjson.loads(raw)
        assert body["failing"] == ["deny_list", "postgres", "workers"]
        assert body["components"]["workers"]["error"].startswith("no worker is serving")
        assert body["components"]["postgres"]["error"] == "unknown: no worker answered"
        assert "workers" in body["outages"]


class TestTheHubRunsItsAdminListener:
    async def test_the_listener_opens_with_the_hub_and_closes_with_it(
        self, settings: Settings, worker: Any, nc: NATS
    ) -> None:
        """What `hubbub serve` does (hub/main.py): the admin listener as the hub app's
        last cleanup context, on its own port."""
        port = quiet_port(1)
        app = create_app(settings, ops.catalog_with_tests())
        app.cleanup_ctx.append(admin_listener("127.0.0.1", port))
        server = TestServer(app)
        await server.start_server()
        try:
            status, _, raw = await _get(f"http://127.0.0.1:{port}/ready")
            assert status == 200, raw
            assert orjson.loads(raw)["components"]["workers"]["ok"] is True
            assert (await _get(f"http://127.0.0.1:{port}/metrics"))[0] == 200
        finally:
            await server.close()
        with pytest.raises(aiohttp.ClientConnectionError):
            await _get(f"http://127.0.0.1:{port}/health")


async def _raw_request(port: int, head: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    await writer.drain()
    return reader, writer


def _post_head(path: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], dict[str, Any]]:
    """One HTTP response with a Content-Length (what the hub sends), within 30 s."""
    async with asyncio.timeout(30):
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode().strip().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
        body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, orjson.loads(body)


async def _echo_works(hub: TestServer) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(_url(hub, "/api/v1/test/echo"), json={"key": "after", "seq": 7}) as response,
    ):
        assert response.status == 200, await response.text()
        assert (await response.json())["seq"] == 7


BODY_PATH = "/api/v1/test/body"


async def _whole_body(request: web.Request) -> web.Response:
    """A handler that reads its body to the end, as every body reader must."""
    return web.json_response({"length": len(await request.read())})


@pytest.fixture
async def body_hub(settings: Settings, aiohttp_server: Any, worker: Any, nc: NATS) -> TestServer:
    """A hub with one more route, which waits for its whole body."""
    app = create_app(settings, ops.catalog_with_tests())
    app.router.add_post(BODY_PATH, _whole_body)
    server: TestServer = await aiohttp_server(app)
    return server


class TestTheRequestDeadline:
    async def test_a_whole_body_sent_in_pieces_is_read(self, body_hub: TestServer) -> None:
        reader, writer = await _raw_request(body_hub.port, _post_head(BODY_PATH, 6) + b"abc")
        try:
            await asyncio.sleep(0)  # the two pieces arrive apart, not as one
            writer.write(b"def")
            status, _, body = await _response(reader)
        finally:
            writer.close()
        assert (status, body) == (200, {"length": 6})

    async def test_a_stalled_body_gets_408_and_the_hub_keeps_serving(
        self, body_hub: TestServer
    ) -> None:
        reader, writer = await _raw_request(body_hub.port, _post_head(BODY_PATH, 100) + b"abc")
        try:
            # The body never completes: the answer comes at the hub's deadline.
            status, headers, body = await _response(reader)
        finally:
            writer.close()
        assert status == 408
        assert headers["connection"] == "close"
        assert headers["content-type"] == "application/problem+json"
        assert body["code"] == "request_timeout"
        assert body["instance"] == BODY_PATH
        await _echo_works(body_hub)

    async def test_a_trickled_body_gets_408_too(self, body_hub: TestServer) -> None:
        """One byte at a time keeps the connection busy but not the handler: it is cut
        off at the deadline, long before the announced body could have arrived."""
        reader, writer = await _raw_request(body_hub.port, _post_head(BODY_PATH, 100_000))

        async def trickle() -> None:
            for _ in range(600):  # at most 600 of the 100,000 bytes announced
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.05)

        trickling = asyncio.create_task(trickle())
        try:
            status, _, body = await _response(reader)
        finally:
            trickling.cancel()
            writer.close()
        assert (status, body["code"]) == (408, "request_timeout")
        await _echo_works(body_hub)

    async def test_an_operation_s_body_sent_in_pieces_is_read_whole(
        self, hub_server: TestServer
    ) -> None:
        body = b'{"key": "pieces", "seq": 5}'
        reader, writer = await _raw_request(
            hub_server.port, _post_head("/api/v1/test/echo", len(body)) + body[:10]
        )
        try:
            await asyncio.sleep(0)  # the two pieces arrive apart, not as one
            writer.write(body[10:])
            status, _, answer = await _response(reader)
        finally:
            writer.close()
        assert status == 200, answer

    async def test_a_stalled_body_of_an_operation_gets_408(self, hub_server: TestServer) -> None:
        reader, writer = await _raw_request(
            hub_server.port, _post_head("/api/v1/test/echo", 100) + b'{"key": "st'
        )
        try:
            status, _, body = await _response(reader)
        finally:
            writer.close()
        assert (status, body["code"]) == (408, "request_timeout")

    async def test_a_slow_worker_is_504_and_the_bus_deadline_keeps_to_the_request(
        self, hub_server: TestServer, settings: Settings, nc: NATS
    ) -> None:
        """test.echo's own timeout is 10 s; the request's 1 s bounds the bus call and
        the deadline the worker is told."""
        envelopes: list[dict[str, Any]] = []

        async def seen(msg: Msg) -> None:
            envelopes.append(orjson.loads(msg.data))

        subject = Subjects(settings.namespace).service(ops.echo.name)
        sub = await nc.subscribe(subject, cb=seen)  # a copy, beside the worker's queue
        await nc.flush()
        try:
            asked_at = time.time()
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    _url(hub_server, "/api/v1/test/echo"), json={"key": "slow", "delay": 5}
                ) as response,
            ):
                body = await response.json()
            assert (response.status, body["code"]) == (504, "timeout")
            assert len(envelopes) == 1
            told = envelopes[0]["deadline"] / 1000 - asked_at
            assert 0 < told < ops.echo.timeout / 2, told  # 1 s, not 10 s (slack for load)
        finally:
            await sub.unsubscribe()

    async def test_websocket_rpcs_keep_their_operations_timeout(
        self, hub_server: TestServer, client: ClientFactory
    ) -> None:
        """A socket outlives the request deadline, and an RPC on it that takes longer
        than HUBBUB_REQUEST_TIMEOUT_S (but not its operation's 10 s) is answered."""
        a = await client("a")
        result = await a.rpc(
            ops.echo.name, {"key": "ws", "seq": 3, "delay": REQUEST_TIMEOUT_S + 0.5}, timeout=20
        )
        assert result["seq"] == 3
