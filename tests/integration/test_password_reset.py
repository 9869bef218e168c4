"""Password reset by mail, end to end: request, the mail in the dev catcher, confirm."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.accounts.models import PasswordResetToken
from handlers.mail import DevMail, latest_dev_mail
from hubbub.config import Settings
from tests.support.accounts import PASSWORD, Api, bearer, make_user

NEW_PASSWORD = "plum-orbit-kettle-42"


@pytest.fixture
def api(hub_client: TestClient[Any, Any]) -> Api:
    return Api(hub_client)


async def request_reset(client: TestClient[Any, Any], email: str) -> Any:
    return await client.post("/api/v1/auth/password-reset/request", json={"email": email})


async def confirm(client: TestClient[Any, Any], token: str, password: str = NEW_PASSWORD) -> Any:
    return await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": password}
    )


async def caught_mail(db: async_sessionmaker[AsyncSession]) -> list[DevMail]:
    async with db() as session:
        return list(await latest_dev_mail(session, 50))


def token_in(mail: DevMail) -> str:
    match = re.search(r"#token=([A-Za-z0-9_-]+)", mail.body)
    assert match is not None, mail.body
    return match[1]


class TestResetFlow:
    async def test_the_full_flow_through_the_dev_mail_catcher(
        self,
        api: Api,
        hub_client: TestClient[Any, Any],
        db: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        """Request → mail with a link to the hub → confirm → the new password signs in."""
        await make_user(db, "ann@example.com")
        requested = await request_reset(hub_client, "Ann@Example.com")
        [mail] = await caught_mail(db)
        assert (requested.status, mail.to_addr, mail.subject) == (
            202,
            "ann@example.com",
            "Reset your Hubbub password",
        )
        assert f"{settings.base_url}/reset-password#token=" in mail.body

        confirmed = await confirm(hub_client, token_in(mail))
        assert confirmed.status == 204
        await api.login("ann@example.com", NEW_PASSWORD)

    async def test_a_reset_token_works_only_once(
        self, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        await request_reset(hub_client, "ann@example.com")
        token = token_in((await caught_mail(db))[0])
        first = await confirm(hub_client, token)
        second = await confirm(hub_client, token, "another-fine-password-7")
        body = await second.json()
        assert (first.status, second.status, body["code"]) == (204, 400, "bad_request")
        assert "invalid, used or expired" in body["detail"]

    async def test_an_expired_token_is_refused(
        self, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        await request_reset(hub_client, "ann@example.com")
        token = token_in((await caught_mail(db))[0])
        async with db() as session, session.begin():
            await session.execute(
                update(PasswordResetToken).values(
                    expires_at=datetime.now(UTC) - timedelta(seconds=1)
                )
            )
        assert (await confirm(hub_client, token)).status == 400

    async def test_confirming_ends_every_session(
        self, api: Api, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        session = await api.login("ann@example.com")
        await request_reset(hub_client, "ann@example.com")
        await confirm(hub_client, token_in((await caught_mail(db))[0]))
        assert (
            (await api.me(session["access_token"])).status,
            (await api.refresh(session["refresh_token"])).status,
        ) == (401, 401)

    async def test_confirming_spends_every_outstanding_token_of_the_user(
        self, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        await request_reset(hub_client, "ann@example.com")
        await request_reset(hub_client, "ann@example.com")
        newer, older = await caught_mail(db)
        await confirm(hub_client, token_in(newer))
        assert (await confirm(hub_client, token_in(older))).status == 400

    async def test_changing_the_password_spends_outstanding_reset_tokens(
        self, api: Api, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        """A link mailed before a password change would undo the change: it stops working."""
        await make_user(db, "ann@example.com")
        await request_reset(hub_client, "ann@example.com")
        session = await api.login("ann@example.com")
        changed = await hub_client.post(
            "/api/v1/users/me/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers=bearer(session["access_token"]),
        )
        late = await confirm(hub_client, token_in((await caught_mail(db))[0]), "x-other-pass-99")
        assert (changed.status, late.status) == (204, 400)
        await api.login("ann@example.com", NEW_PASSWORD)

    async def test_the_new_password_meets_the_policy(
        self, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        await request_reset(hub_client, "ann@example.com")
        token = token_in((await caught_mail(db))[0])
        refused = await confirm(hub_client, token, "ann@example.com")
        assert refused.status == 422
        assert (await confirm(hub_client, token)).status == 204  # not spent by the refusal

    async def test_only_a_digest_of_the_token_is_stored(
        self, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        await request_reset(hub_client, "ann@example.com")
        token = token_in((await caught_mail(db))[0])
        async with db() as session:
            stored = (await session.execute(select(PasswordResetToken.token_hash))).scalar_one()
        assert (len(stored), token.encode() in stored) == (32, False)


class TestSameAnswerForEveryone:
    async def test_an_unknown_email_gets_the_same_answer_and_no_mail(
        self, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        known = await request_reset(hub_client, "ann@example.com")
        unknown = await request_reset(hub_client, "nobody@example.com")
        assert (known.status, await known.json()) == (unknown.status, await unknown.json())
        assert [mail.to_addr for mail in await caught_mail(db)] == ["ann@example.com"]

    async def test_reset_requests_are_rate_limited_per_account(
        self, hub_client: TestClient[Any, Any], db: async_sessionmaker[AsyncSession]
    ) -> None:
        await make_user(db, "ann@example.com")
        statuses = [(await request_reset(hub_client, "ann@example.com")).status for _ in range(6)]
        assert statuses == [202] * 5 + [429]
