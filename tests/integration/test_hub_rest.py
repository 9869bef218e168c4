"""The hub's REST edge: routes from the catalog, problem details, health and readiness."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.admin import create_admin_app
from hubbub.config import Settings
from hubbub.contracts.subjects import Subjects
from tests.support.workspaces import Domain

PROBLEM = "application/problem+json"


class TestOperationsOverRest:
    async def test_a_post_reaches_the_worker_and_returns_its_result(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        response = await hub_client.post("/api/v1/test/echo", json={"key": "r", "seq": 3})
        assert response.status == 200
        assert await response.json() == {"key": "r", "seq": 3, "payload": {}}

    async def test_invalid_json_is_a_bad_request_problem(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        response = await hub_client.post(
            "/api/v1/test/echo", data=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert response.status == 400
        assert response.content_type == PROBLEM
        body = await response.json()
        assert body["code"] == "bad_request"
        assert body["title"] == "Bad request"
        assert "not valid JSON" in body["detail"]

    async def test_a_body_that_is_not_utf8_is_a_bad_request_naming_the_byte(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        response = await hub_client.post(
            "/api/v1/test/echo",
            data=b'{"payload": {"x": "caf\xe9"}}',
            headers={"Content-Type": "application/json"},
        )
        body = await response.json()
        assert (response.status, body["code"]) == (400, "bad_request")
        assert body["detail"] == "the body is not UTF-8 (at byte 22)"

    async def test_a_long_query_string_gets_a_problem_not_the_servers_plain_400(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        response = await hub_client.get("/api/v1/workspaces", params={"cursor": "x" * 12_000})
        assert response.status == 401
        assert response.content_type == PROBLEM

    async def test_a_long_header_gets_a_problem_not_the_servers_plain_400(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        """A header as long as the request line may be (a big cookie): the API's answer."""
        response = await hub_client.get("/api/v1/users/me", headers={"X-Big": "a" * 12_000})
        assert response.status == 401
        assert response.content_type == PROBLEM

    async def test_a_json_array_body_is_a_bad_request(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        response = await hub_client.post("/api/v1/test/echo", json=[1, 2])
        assert (response.status, (await response.json())["code"]) == (400, "bad_request")

    async def test_a_wrong_field_type_is_a_validation_problem_naming_the_field(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        response = await hub_client.post("/api/v1/test/echo", json={"seq": "seven"})
        body = await response.json()
        assert response.status == 422
        assert body["code"] == "validation_failed"
        assert body["details"]["errors"][0]["loc"] == ["seq"]

    async def test_a_body_over_the_limit_is_too_large(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        big = b'{"payload": {"x": "' + b"a" * 2_000_000 + b'"}}'
        response = await hub_client.post(
            "/api/v1/test/echo", data=io.BytesIO(big), headers={"Content-Type": "application/json"}
        )
        assert response.status == 413
        assert (await response.json())["code"] == "too_large"

    async def test_a_crash_is_an_internal_problem_without_internals(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        response = await hub_client.post("/api/v1/test/crash", json={"seq": 0})
        body = await response.json()
        assert response.status == 500
        assert body["code"] == "internal"
        assert "boom" not in await response.text()
        assert body["request_id"] == response.headers["X-Request-Id"]

    async def test_a_malformed_worker_reply_is_a_502(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        response = await hub_client.get("/api/v1/test/bad-reply")
        assert (response.status, (await response.json())["code"]) == (502, "bad_gateway")

    async def test_a_slow_worker_is_a_504(self, hub_client: TestClient[Any, Any]) -> None:
        response = await hub_client.post("/api/v1/test/slow", json={"delay": 2})
        assert (response.status, (await response.json())["code"]) == (504, "timeout")

    async def test_an_unknown_route_is_a_not_found_problem(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        response = await hub_client.get("/api/v1/nothing-here")
        assert response.status == 404
        assert response.content_type == PROBLEM

    async def test_a_wrong_method_is_405_naming_the_allowed_ones(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        response = await hub_client.delete("/api/v1/test/echo")
        body = await response.json()
        assert (response.status, body["code"]) == (405, "method_not_allowed")
        assert "POST" in body["details"]["allow"]
        assert "POST" in response.headers["Allow"]

    async def test_every_response_carries_the_security_headers(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        response = await hub_client.get("/api/v1/health")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


class TestHead:
    """HEAD is answered wherever GET is: the same status and headers, no body."""

    @pytest.fixture
    def domain(
        self, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> Domain:
        return Domain(hub_client, db)

    async def test_head_on_an_operation_is_gets_answer_without_the_body(
        self, domain: Domain
    ) -> None:
        ann = await domain.person("ann")
        ws = await domain.workspace(ann)
        path = f"/workspaces/{ws['id']}"
        got = await domain.call("GET", path, ann)
        head = await domain.call("HEAD", path, ann)
        assert (head.status, head.content_type) == (200, "application/json")
        assert head.headers["ETag"] == got.headers["ETag"]
        assert head.headers["Content-Length"] == got.headers["Content-Length"]
        assert await head.read() == b""
        current = await domain.call(
            "HEAD", path, ann, headers={"If-None-Match": got.headers["ETag"]}
        )
        assert current.status == 304

    async def test_head_is_refused_as_get_is(self, hub_client: TestClient[Any, Any]) -> None:
        response = await hub_client.head("/api/v1/users/me")
        assert response.status == 401
        assert response.headers["WWW-Authenticate"]

    async def test_allow_lists_head_beside_get(self, hub_client: TestClient[Any, Any]) -> None:
        response = await hub_client.delete("/api/v1/users/me")
        assert response.status == 405
        assert response.headers["Allow"] == "GET, HEAD, PATCH"

    async def test_head_where_there_is_no_get_is_405(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        response = await hub_client.head("/api/v1/test/echo")
        assert (response.status, response.headers["Allow"]) == (405, "POST")


class TestRequestIds:
    async def test_the_request_id_follows_the_work_into_the_worker_logs(
        self, hub_client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
    ) -> None:
        """The id the client sent is in the hub's access log and in the handler's log line."""
        with caplog.at_level(logging.INFO):
            response = await hub_client.post(
                "/api/v1/test/echo", json={"seq": 1}, headers={"X-Request-Id": "trace-me-12345"}
            )
        assert response.headers["X-Request-Id"] == "trace-me-12345"
        from hubbub.logs import JsonFormatter

        formatter = JsonFormatter("test")
        lines = {r.name: r for r in caplog.records if "trace-me-12345" in formatter.format(r)}
        assert "tests.ops" in lines  # the handler, inside the worker runtime
        assert "hubbub.access" in lines  # the hub's access log

    async def test_an_unsafe_request_id_is_replaced(self, hub_client: TestClient[Any, Any]) -> None:
        response = await hub_client.get(
            "/api/v1/health", headers={"X-Request-Id": "bad id <script>"}
        )
        assert response.headers["X-Request-Id"] != "bad id <script>"
        assert len(response.headers["X-Request-Id"]) == 32


class TestHealthAndReadiness:
    async def test_health_answers_while_the_process_lives(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        response = await hub_client.get("/api/v1/health")
        assert (response.status, await response.json()) == (200, {"status": "ok"})

    async def test_ready_is_a_round_trip_through_a_worker(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        response = await hub_client.get("/api/v1/ready")
        body = await response.json()
        assert response.status == 200
        assert body == {
            "status": "ok",
            "components": {
                "nats": "ok",
                "deny_list": "ok",
                "redis": "ok",
                "workers": "ok",
                "postgres": "ok",
            },
        }

    async def test_readiness_callers_meanwhile_share_one_round_trip(
        self,
        hub_client: TestClient[Any, Any],
        aiohttp_client: Any,
        nc: NATS,
        settings: Settings,
    ) -> None:
        """The public /ready takes anyone's traffic: the public and the admin /ready asked
        at once and right after cost the workers one round trip."""
        asked: list[Msg] = []

        async def count(msg: Msg) -> None:
            asked.append(msg)

        sub = await nc.subscribe(Subjects(settings.namespace).service("system.ready"), cb=count)
        await nc.flush()
        admin = await aiohttp_client(create_admin_app(hub_client.server.app))
        at_once = await asyncio.gather(*(hub_client.get("/api/v1/ready") for _ in range(10)))
        after = [await hub_client.get("/api/v1/ready"), await admin.get("/ready")]
        await nc.flush()
        await sub.unsubscribe()
        assert [r.status for r in [*at_once, *after]] == [200] * 12
        assert len(asked) == 1

    async def test_ready_without_workers_is_503_naming_them(
        self, hub_without_workers: TestClient[Any, Any]
    ) -> None:
        """Named, not explained: the why is on the admin listener only. The deny-list
        too: no worker could say what is revoked but not in Redis yet."""
        response = await hub_without_workers.get("/api/v1/ready")
        body = await response.json()
        assert (response.status, response.headers["Retry-After"]) == (503, "1")
        assert body["failing"] == ["deny_list", "postgres", "workers"]
        assert body["components"]["workers"] == "unavailable"

    async def test_an_operation_without_workers_is_a_503_problem_with_retry_after(
        self, hub_without_workers: TestClient[Any, Any]
    ) -> None:
        """Looked for until shortly before the deadline (test.slow's is 0.5 s), then 503."""
        response = await hub_without_workers.post("/api/v1/test/slow", json={})
        assert (response.status, (await response.json())["code"]) == (503, "unavailable")
        assert response.headers["Retry-After"] == "1"
