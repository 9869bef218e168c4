"""CORS for the configured origins: every answer to an allowed origin carries the CORS
headers — failures too, so a single-page app on another origin can read the problem
details (``expired``, a validation error's field, ``Retry-After``)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hubbub.config import Rate, Settings
from tests.support.accounts import make_user

ORIGIN = "https://app.example.com"
ALLOWED = {"Origin": ORIGIN}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"cors_origins": [ORIGIN], "rate_login_account_ip": Rate(1, 300)}
    )


def assert_cors(response: ClientResponse) -> None:
    assert response.headers.get("Access-Control-Allow-Origin") == ORIGIN
    assert response.headers.get("Access-Control-Allow-Credentials") == "true"
    assert "Retry-After" in response.headers.get("Access-Control-Expose-Headers", "")
    assert response.headers.getall("Vary") == ["Origin"]


class TestAnswersToAnAllowedOrigin:
    async def test_a_success_carries_cors(self, hub_client: TestClient[Any, Any]) -> None:
        response = await hub_client.get("/api/v1/health", headers=ALLOWED)
        assert response.status == 200
        assert_cors(response)

    @pytest.mark.parametrize(
        ("method", "path", "body", "headers", "status"),
        [
            ("GET", "/api/v1/users/me", None, {}, 401),
            ("GET", "/api/v1/users/me", None, {"Authorization": "Bearer not-a-token"}, 401),
            ("POST", "/api/v1/test/echo", {"seq": "seven"}, {}, 422),
            ("POST", "/api/v1/test/echo", None, {"Content-Type": "text/plain"}, 400),
            ("GET", "/api/v1/nothing-here", None, {}, 404),
            ("DELETE", "/api/v1/test/echo", None, {}, 405),
            ("POST", "/api/v1/test/crash", {"seq": 0}, {}, 500),
            ("POST", "/api/v1/test/slow", {"delay": 2}, {}, 504),
        ],
    )
    async def test_a_failure_carries_cors(
        self,
        hub_client: TestClient[Any, Any],
        method: str,
        path: str,
        body: Any,
        headers: dict[str, str],
        status: int,
    ) -> None:
        data = b"not json" if headers.get("Content-Type") == "text/plain" else None
        response = await hub_client.request(
            method, path, json=body, data=data, headers={**ALLOWED, **headers}
        )
        assert response.status == status
        assert response.content_type == "application/problem+json"
        assert_cors(response)

    async def test_an_unavailable_answer_carries_cors_and_exposes_retry_after(
        self, hub_without_workers: TestClient[Any, Any]
    ) -> None:
        response = await hub_without_workers.post("/api/v1/test/slow", json={}, headers=ALLOWED)
        assert response.status == 503
        assert response.headers["Retry-After"]
        assert_cors(response)

    async def test_a_rate_limited_answer_carries_cors(
        self, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        guess = {"email": "ann@example.com", "password": "not the password"}
        first = await hub_client.post("/api/v1/auth/login", json=guess, headers=ALLOWED)
        refused = await hub_client.post("/api/v1/auth/login", json=guess, headers=ALLOWED)
        assert (first.status, refused.status) == (401, 429)
        assert refused.headers["Retry-After"]
        assert_cors(first)
        assert_cors(refused)

    async def test_a_preflight_is_answered_once_with_cors(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        response = await hub_client.options(
            "/api/v1/users/me", headers={**ALLOWED, "Access-Control-Request-Method": "PATCH"}
        )
        assert response.status == 204
        assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
        assert "If-Match" in response.headers["Access-Control-Allow-Headers"]
        assert_cors(response)


class TestOtherOrigins:
    async def test_a_failure_to_another_origin_has_no_cors(
        self, hub_client: TestClient[Any, Any]
    ) -> None:
        response = await hub_client.get(
            "/api/v1/users/me", headers={"Origin": "https://evil.example"}
        )
        assert response.status == 401
        assert "Access-Control-Allow-Origin" not in response.headers
