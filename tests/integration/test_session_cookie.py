"""The refresh token as an HttpOnly cookie for the SPA, and the guards on its use."""

from __future__ import annotations

from http.cookies import Morsel
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.session_cookie import COOKIE
from hubbub.config import Settings
from tests.support.accounts import PASSWORD, SPA, bearer, make_user

LOGIN = {"email": "ann@example.com", "password": PASSWORD}


class Browser:
    """Sends exactly the cookie it is told to (the test client's jar is emptied)."""

    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client

    async def post(
        self,
        path: str,
        *,
        cookie: str | None = None,
        headers: dict[str, str] | None = None,
        json: Any = None,
    ) -> Any:
        self.client.session.cookie_jar.clear()
        sent = dict(headers or {})
        if cookie is not None:
            sent["Cookie"] = f"{COOKIE}={cookie}"
        response = await self.client.post(f"/api/v1{path}", headers=sent, json=json)
        self.client.session.cookie_jar.clear()
        return response

    async def login(self) -> tuple[Any, dict[str, Any], Morsel[str]]:
        response = await self.post("/auth/login", headers=SPA, json=LOGIN)
        assert response.status == 200, await response.text()
        return response, await response.json(), response.cookies[COOKIE]


@pytest.fixture
async def browser(
    hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
) -> Browser:
    await make_user(db, "ann@example.com")
    return Browser(hub_client)


class TestSettingTheCookie:
    async def test_the_spas_login_sets_a_locked_down_cookie(self, browser: Browser) -> None:
        _, _, cookie = await browser.login()
        assert (
            cookie["httponly"],
            cookie["secure"],
            cookie["samesite"],
            cookie["path"],
            cookie["max-age"],
        ) == (True, True, "Strict", "/api/v1/auth", "1209600")

    async def test_the_spas_login_body_has_no_refresh_token(self, browser: Browser) -> None:
        _, body, _ = await browser.login()
        assert "refresh_token" not in body
        assert body["user"]["email"] == "ann@example.com"

    async def test_a_rest_client_gets_the_token_in_the_body_and_no_cookie(
        self, browser: Browser
    ) -> None:
        response = await browser.post("/auth/login", json=LOGIN)
        assert (COOKIE in response.cookies, "refresh_token" in await response.json()) == (
            False,
            True,
        )

    async def test_secure_can_be_turned_off_for_plain_http_development(
        self, settings: Settings, aiohttp_client: Any, worker: Any, db: Any
    ) -> None:
        from hub.app import create_app
        from tests.support import ops

        await make_user(db, "ann@example.com")
        insecure = settings.model_copy(update={"cookie_secure": False})
        client = await aiohttp_client(create_app(insecure, ops.catalog_with_tests()))
        response = await client.post("/api/v1/auth/login", headers=SPA, json=LOGIN)
        assert response.cookies[COOKIE]["secure"] == ""


class TestRefreshingWithTheCookie:
    async def test_the_cookie_and_the_header_refresh_the_session(self, browser: Browser) -> None:
        _, _, cookie = await browser.login()
        response = await browser.post("/auth/refresh", cookie=cookie.value, headers=SPA)
        body = await response.json()
        assert response.status == 200
        assert "refresh_token" not in body
        assert response.cookies[COOKIE].value != cookie.value  # rotated

    async def test_the_cookie_without_the_header_is_refused(self, browser: Browser) -> None:
        """A cross-site form post carries the cookie but cannot add the header."""
        _, _, cookie = await browser.login()
        response = await browser.post("/auth/refresh", cookie=cookie.value)
        body = await response.json()
        assert (response.status, body["code"]) == (403, "forbidden")
        assert "X-Requested-With" in body["detail"]

    async def test_a_foreign_origin_is_refused(self, browser: Browser) -> None:
        _, _, cookie = await browser.login()
        response = await browser.post(
            "/auth/refresh",
            cookie=cookie.value,
            headers={**SPA, "Origin": "https://evil.example"},
        )
        assert (response.status, (await response.json())["code"]) == (403, "forbidden")

    async def test_the_hubs_own_origin_is_accepted(
        self, browser: Browser, hub_client: TestClient[Any, Any]
    ) -> None:
        _, _, cookie = await browser.login()
        origin = f"http://{hub_client.host}:{hub_client.port}"
        response = await browser.post(
            "/auth/refresh", cookie=cookie.value, headers={**SPA, "Origin": origin}
        )
        assert response.status == 200

    async def test_an_allowed_cors_origin_is_accepted(
        self, settings: Settings, aiohttp_client: Any, worker: Any, db: Any
    ) -> None:
        from hub.app import create_app
        from tests.support import ops

        await make_user(db, "ann@example.com")
        allowed = settings.model_copy(update={"cors_origins": ["http://localhost:3000"]})
        browser = Browser(await aiohttp_client(create_app(allowed, ops.catalog_with_tests())))
        _, _, cookie = await browser.login()
        response = await browser.post(
            "/auth/refresh",
            cookie=cookie.value,
            headers={**SPA, "Origin": "http://localhost:3000"},
        )
        assert response.status == 200

    async def test_the_header_without_a_cookie_means_signed_out(self, browser: Browser) -> None:
        response = await browser.post("/auth/refresh", headers=SPA)
        body = await response.json()
        assert (response.status, body["details"]["reason"]) == (401, "no_session")

    async def test_a_token_in_the_body_wins_over_the_cookie(self, browser: Browser) -> None:
        rest = await (await browser.post("/auth/login", json=LOGIN)).json()
        response = await browser.post(
            "/auth/refresh",
            cookie="stale-cookie-value",
            headers=SPA,
            json={"refresh_token": rest["refresh_token"]},
        )
        assert response.status == 200

    async def test_a_reused_cookie_ends_the_session(self, browser: Browser) -> None:
        _, _, cookie = await browser.login()
        refreshed = await browser.post("/auth/refresh", cookie=cookie.value, headers=SPA)
        await browser.post("/auth/refresh", cookie=refreshed.cookies[COOKIE].value, headers=SPA)
        replay = await browser.post("/auth/refresh", cookie=cookie.value, headers=SPA)
        assert (replay.status, (await replay.json())["details"]["reason"]) == (401, "reused")
        cleared = replay.cookies[COOKIE]  # the dead cookie is dropped, not presented again
        assert (cleared.value, cleared["max-age"], cleared["path"]) == ("", "0", "/api/v1/auth")

    async def test_a_refused_refresh_without_a_cookie_sets_none(self, browser: Browser) -> None:
        response = await browser.post("/auth/refresh", headers=SPA)
        assert response.status == 401
        assert COOKIE not in response.cookies


class TestLoggingOutWithTheCookie:
    async def test_logout_ends_the_session_and_clears_the_cookie(self, browser: Browser) -> None:
        _, body, cookie = await browser.login()
        response = await browser.post("/auth/logout", cookie=cookie.value, headers=SPA)
        cleared = response.cookies[COOKIE]
        assert (response.status, cleared.value, cleared["max-age"], cleared["path"]) == (
            204,
            "",
            "0",
            "/api/v1/auth",
        )
        after = await browser.client.get("/api/v1/users/me", headers=bearer(body["access_token"]))
        assert after.status == 401

    async def test_logout_with_the_cookie_but_without_the_header_is_refused(
        self, browser: Browser
    ) -> None:
        _, _, cookie = await browser.login()
        response = await browser.post("/auth/logout", cookie=cookie.value)
        assert response.status == 403
        still = await browser.post("/auth/refresh", cookie=cookie.value, headers=SPA)
        assert still.status == 200

    async def test_logout_with_a_stale_cookie_ends_the_callers_session_and_clears_it(
        self, browser: Browser
    ) -> None:
        """The cookie names no token any more (pruned, a restored database): the access
        token's session ends instead, and the browser drops the cookie."""
        _, body, _ = await browser.login()
        response = await browser.post(
            "/auth/logout", cookie="stale-cookie-value", headers=SPA | bearer(body["access_token"])
        )
        cleared = response.cookies[COOKIE]
        assert (response.status, cleared.value, cleared["max-age"]) == (204, "", "0")
        after = await browser.client.get("/api/v1/users/me", headers=bearer(body["access_token"]))
        assert after.status == 401

    async def test_a_failed_logout_clears_the_cookie_too(self, browser: Browser) -> None:
        response = await browser.post("/auth/logout", cookie="stale-cookie-value", headers=SPA)
        cleared = response.cookies[COOKIE]
        assert (response.status, cleared.value, cleared["max-age"]) == (401, "", "0")
