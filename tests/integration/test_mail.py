"""Outgoing mail: by SMTP when configured (queued in PostgreSQL with the change, sent by
the workers' senders, tried again after temporary failures), else into the dev mail
catcher, which ``hubbub mail`` shows."""

from __future__ import annotations

import asyncio
import io
import smtplib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cli.admin.accounts import show_mail
from handlers.mail import QueuedMail, describe_failure, is_permanent, retry_delay
from hubbub.config import Settings
from tests.support.accounts import make_user
from tests.support.smtp import SmtpCatcher
from tests.support.waiting import eventually, wait_for
from workers.mail_sender import MailSender


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
                # Retries and polls in tens of milliseconds, so the tests see several.
                "mail_poll_s": 0.05,
                "mail_retry_base_s": 0.05,
                "mail_max_attempts": 20,
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
        await eventually(lambda: queue_is(db, []))  # sent: its row (and token) is gone

    async def test_a_temporary_failure_is_tried_again_later(
        self,
        hub_client: TestClient[Any, Any],
        db: async_sessionmaker[AsyncSession],
        smtp: SmtpCatcher,
    ) -> None:
        smtp.fail_first = 2  # 451 twice: the third try gets through
        await make_user(db, "ann@example.com")
        await hub_client.post(
            "/api/v1/auth/password-reset/request", json={"email": "ann@example.com"}
        )
        await smtp.wait(1)
        await eventually(lambda: queue_is(db, []))
        assert [m["To"] for m in smtp.messages] == ["ann@example.com"]

    async def test_mail_queued_while_the_server_is_down_goes_out_once_it_is_back(
        self,
        hub_client: TestClient[Any, Any],
        db: async_sessionmaker[AsyncSession],
        smtp: SmtpCatcher,
    ) -> None:
        """The request is answered at once; the mail waits in PostgreSQL, not in a task."""
        await smtp.stop()
        await make_user(db, "ann@example.com")
        response = await hub_client.post(
            "/api/v1/auth/password-reset/request", json={"email": "ann@example.com"}
        )
        assert response.status == 202

        async def first_try_failed() -> bool:
            rows = await queue(db)
            return bool(rows) and rows[0][1] >= 1 and "Connection refused" in (rows[0][3] or "")

        await wait_for(first_try_failed, what="a refused first try")
        await smtp.start()  # the same port
        await smtp.wait(1)
        assert [m["To"] for m in smtp.messages] == ["ann@example.com"]
        await eventually(lambda: queue_is(db, []))

    async def test_a_recipient_refused_for_good_is_not_tried_again(
        self,
        hub_client: TestClient[Any, Any],
        db: async_sessionmaker[AsyncSession],
        smtp: SmtpCatcher,
    ) -> None:
        """The worker's sender takes due mail oldest first, counting the try as it takes
        it: once a sentinel queued later has been tried, a first message still due would
        have been tried again too."""
        smtp.refuse_recipients = "550 no such mailbox"
        for email in ("ann@example.com", "sentinel@example.com"):
            await make_user(db, email)
        await hub_client.post(
            "/api/v1/auth/password-reset/request", json={"email": "ann@example.com"}
        )

        async def tries() -> list[tuple[str, int, bool]]:
            return [(to, attempts, failed) for to, attempts, failed, _ in await queue(db, True)]

        async def tried(expected: list[tuple[str, int, bool]]) -> None:
            assert await tries() == expected

        await eventually(lambda: tried([("ann@example.com", 1, True)]))
        await due_now(db)  # only being given up on keeps it back, not its next try's time
        await hub_client.post(
            "/api/v1/auth/password-reset/request", json={"email": "sentinel@example.com"}
        )
        await eventually(
            lambda: tried([("ann@example.com", 1, True), ("sentinel@example.com", 1, True)])
        )
        [(_, _, _, error), _] = await queue(db, True)
        assert error == "ann@example.com: 550 no such mailbox"
        assert smtp.messages == []

    async def test_after_the_last_try_the_mail_is_marked_failed_and_kept(
        self, db: async_sessionmaker[AsyncSession], smtp: SmtpCatcher, settings: Settings
    ) -> None:
        smtp.fail_first = 100
        three_tries = settings.model_copy(update={"mail_max_attempts": 3})
        async with db() as session, session.begin():
            session.add(QueuedMail(to_addr="ann@example.com", subject="Hi", body="b"))
        sender = MailSender(db, three_tries, asyncio.Event())

        async def state() -> list[tuple[int, bool]]:
            await sender.send_due()
            return [(attempts, failed) for _, attempts, failed, _ in await queue(db, True)]

        async def given_up() -> None:
            assert await state() == [(3, True)]

        await eventually(given_up)
        [(_, _, _, error)] = await queue(db, True)
        assert error == "451 try again later"
        assert smtp.messages == []
        await due_now(db)
        assert await sender.send_due() == 0
        assert await state() == [(3, True)]  # given up: not taken again, even when due

    async def test_a_message_smtplib_cannot_send_at_all_is_given_up_at_once(
        self, db: async_sessionmaker[AsyncSession], smtp: SmtpCatcher, settings: Settings
    ) -> None:
        """Not a network or server failure (here: a header smtplib refuses to encode): it
        would fail the same way every time, so it is not retried, and the next goes out."""
        async with db() as session, session.begin():
            session.add_all(
                [
                    QueuedMail(to_addr="ann@example.com", subject="bad\nheader", body="b"),
                    QueuedMail(to_addr="bob@example.com", subject="fine", body="b"),
                ]
            )
        assert await MailSender(db, settings, asyncio.Event()).send_due() == 1
        [(_, attempts, failed, error)] = await queue(db, True)
        assert (attempts, failed) == (1, True)
        assert error is not None
        assert error.startswith("ValueError")
        assert [m["Subject"] for m in smtp.messages] == ["fine"]

    async def test_two_senders_send_each_message_once(
        self, db: async_sessionmaker[AsyncSession], smtp: SmtpCatcher, settings: Settings
    ) -> None:
        """Two workers' senders on one queue: each message leaves exactly once."""
        async with db() as session, session.begin():
            session.add_all(
                QueuedMail(to_addr=f"u{i}@example.com", subject=f"m{i}", body="b")
                for i in range(40)
            )
        senders = [MailSender(db, settings, asyncio.Event()) for _ in range(2)]
        sent = await asyncio.gather(*(sender.send_due() for sender in senders))
        assert sum(sent) == 40
        assert sorted(m["Subject"] for m in smtp.messages) == sorted(f"m{i}" for i in range(40))
        assert await queue(db) == []

    async def test_a_message_whose_sender_died_is_sent_when_its_lease_runs_out(
        self, db: async_sessionmaker[AsyncSession], smtp: SmtpCatcher, settings: Settings
    ) -> None:
        """A claimed message is not due until its lease ends; then any sender takes it."""
        now = datetime.now(UTC)
        async with db() as session, session.begin():
            session.add_all(
                [
                    QueuedMail(
                        to_addr="a@example.com",
                        subject="lease over",
                        body="b",
                        attempts=1,
                        next_attempt_at=now - timedelta(seconds=1),
                    ),
                    QueuedMail(
                        to_addr="b@example.com",
                        subject="still leased",
                        body="b",
                        attempts=1,
                        next_attempt_at=now + timedelta(minutes=5),
                    ),
                ]
            )
        assert await MailSender(db, settings, asyncio.Event()).send_due() == 1
        assert [m["Subject"] for m in smtp.messages] == ["lease over"]
        assert [row[0] for row in await queue(db)] == ["b@example.com"]


async def queue(
    db: async_sessionmaker[AsyncSession], with_failed: bool = False
) -> list[tuple[str, int, bool, str | None]]:
    """The mail queue's rows: (to, attempts, failed, last error), oldest first."""
    async with db() as session:
        statement = select(QueuedMail).order_by(QueuedMail.id)
        if not with_failed:
            statement = statement.where(QueuedMail.failed_at.is_(None))
        rows = (await session.scalars(statement)).all()
    return [(r.to_addr, r.attempts, r.failed_at is not None, r.last_error) for r in rows]


async def queue_is(
    db: async_sessionmaker[AsyncSession], expected: list[tuple[str, int, bool, str | None]]
) -> None:
    assert await queue(db) == expected


async def due_now(db: async_sessionmaker[AsyncSession]) -> None:
    """Every queued message's next try is now, failed or not."""
    async with db() as session, session.begin():
        await session.execute(
            update(QueuedMail).values(next_attempt_at=func.now() - timedelta(seconds=1))
        )


class TestRetryDelay:
    def test_doubles_from_the_base_up_to_an_hour(self, settings: Settings) -> None:
        tuned = settings.model_copy(update={"mail_retry_base_s": 30.0})
        assert [retry_delay(tuned, n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
        assert retry_delay(tuned, 20) == 3600

    def test_only_a_5xx_refusal_of_the_recipient_or_message_is_final(self) -> None:
        assert is_permanent(smtplib.SMTPRecipientsRefused({"a@x": (550, b"no")}))
        assert not is_permanent(smtplib.SMTPRecipientsRefused({"a@x": (450, b"busy")}))
        assert is_permanent(smtplib.SMTPDataError(554, b"rejected"))
        assert not is_permanent(smtplib.SMTPDataError(451, b"later"))
        assert not is_permanent(smtplib.SMTPAuthenticationError(535, b"bad login"))
        assert not is_permanent(ConnectionRefusedError())

    def test_a_failure_is_recorded_as_the_server_said_it(self) -> None:
        refused = smtplib.SMTPRecipientsRefused({"a@x": (550, b"no such mailbox")})
        assert describe_failure(refused) == "a@x: 550 no such mailbox"
        assert describe_failure(smtplib.SMTPDataError(451, b"try again later")) == (
            "451 try again later"
        )
        assert describe_failure(ConnectionRefusedError(111, "Connection refused")) == (
            "ConnectionRefusedError: [Errno 111] Connection refused"
        )


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
