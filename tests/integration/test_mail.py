"""Outgoing mail: by SMTP when configured (after the commit, in the background), else
into the dev mail catcher, which ``hubbub mail`` shows."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.mail import Mail, deliver_smtp
from hubbub.accounts_admin import show_mail
from hubbub.config import Settings
from tests.support.accounts import make_user
from tests.support.smtp import SmtpCatcher


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpCatcher]:
    catcher = SmtpCatcher()
    await catcher.start()
    yield catcher
    await catcher.stop()


class TestSmtp:
    @pytest.fixture
    def settings(self, settings: Settings, smtp: SmtpCatcher) -> Settings:
        return settings.model_copy(
            update={
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp.port,
                "smtp_tls": "none",
                "mail_from": "Hubbub <hub@example.com>",
            }
        )

    async def test_a_reset_mail_goes_out_by_smtp_and_not_to_the_catcher(
        self,
        hub_client: TestClient[Any, Any],
        db: async_sessionmaker[AsyncSession],
        smtp: SmtpCatcher,
        settings: Settings,
    ) -> None:
        await make_user(db, "ann@example.com")
        response = await hub_client.post(
            "/api/v1/auth/password-reset/request", json={"email": "ann@example.com"}
        )
        await smtp.wait(1)
        [message] = smtp.messages
        assert (response.status, message["To"], message["From"], message["Subject"]) == (
            202,
            "ann@example.com",
            "Hubbub <hub@example.com>",
            "Reset your Hubbub password",
        )
        assert "#token=" in message.get_payload()
        out = io.StringIO()
        await show_mail(settings, out=out)
        assert out.getvalue().startswith("no mail caught")

    async def test_a_temporary_failure_is_retried(
        self, settings: Settings, smtp: SmtpCatcher
    ) -> None:
        smtp.fail_first = 1
        await deliver_smtp(settings, Mail("ann@example.com", "Hi", "Body"))
        assert [m["Subject"] for m in smtp.messages] == ["Hi"]


class TestDevMailCatcher:
    async def test_hubbub_mail_prints_the_caught_messages_oldest_first(
        self,
        hub_client: TestClient[Any, Any],
        db: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        for email in ("ann@example.com", "bob@example.com"):
            await make_user(db, email)
            await hub_client.post("/api/v1/auth/password-reset/request", json={"email": email})
        out = io.StringIO()
        await show_mail(settings, limit=5, out=out)
        text = out.getvalue()
        assert text.index("To: ann@example.com") < text.index("To: bob@example.com")
        assert "Subject: Reset your Hubbub password" in text

    async def test_the_limit_keeps_the_newest(
        self,
        hub_client: TestClient[Any, Any],
        db: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        for email in ("ann@example.com", "bob@example.com"):
            await make_user(db, email)
            await hub_client.post("/api/v1/auth/password-reset/request", json={"email": email})
        out = io.StringIO()
        await show_mail(settings, limit=1, out=out)
        assert ("bob@" in out.getvalue(), "ann@" in out.getvalue()) == (True, False)
