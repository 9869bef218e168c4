"""Outgoing mail: SMTP when ``HUBBUB_SMTP_HOST`` is set, else the dev mail catcher.

``send_mail(ctx, message)`` queues the message with the request's transaction:

* **SMTP** — sent after the transaction commits (never for a change that rolled back),
  by stdlib ``smtplib`` in a thread, in the background: the reply does not wait for the
  mail server, so a reset request takes as long whether or not the email exists. A
  failed send is retried twice, then logged. The ``MAILER`` resource owns the sends in
  flight, and a stopping worker waits for them (up to ``drain_timeout_s``). A worker
  that dies in between loses the mail; the user asks again. (A durable mail queue is
  future work.)
* **Dev mail catcher** — the message is a row of ``dev_mail`` in the same transaction,
  shown by ``hubbub mail``, and logged (outside production) so a developer sees the link.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy import String, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from handlers.context import Context
from handlers.db import Base, Timestamped
from handlers.worker_resources import ResourceKey
from hubbub.config import Settings

log = logging.getLogger(__name__)
SMTP_ATTEMPTS = 3


class DevMail(Timestamped, Base):
    """Mail that would have gone out by SMTP."""

    __tablename__ = "dev_mail"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    to_addr: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)


@dataclass(frozen=True, slots=True)
class Mail:
    to: str
    subject: str
    body: str


class Mailer:
    """Sends mail for one worker process; see the module docstring."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._sending: set[asyncio.Task[None]] = set()

    def send(self, ctx: Context, mail: Mail) -> None:
        if self.settings.smtp_host:
            ctx.after_commit(lambda: self._send_later(mail))
            return
        ctx.session.add(DevMail(to_addr=mail.to, subject=mail.subject, body=mail.body))
        if self.settings.is_production:
            log.warning("no SMTP server configured: mail kept in dev_mail", extra={"to": mail.to})
        else:
            log.info("dev mail to %s: %s\n%s", mail.to, mail.subject, mail.body)

    async def _send_later(self, mail: Mail) -> None:
        task = asyncio.create_task(deliver_smtp(self.settings, mail))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def aclose(self) -> None:
        """Wait for the sends in flight (bounded), then give up on the rest."""
        if not self._sending:
            return
        _, pending = await asyncio.wait(set(self._sending), timeout=self.settings.drain_timeout_s)
        for task in pending:
            task.cancel()
            log.error("mail not sent: the worker stopped")


MAILER: ResourceKey[Mailer] = ResourceKey("mailer", Mailer)


def send_mail(ctx: Context, mail: Mail) -> None:
    """Send ``mail`` with this request's transaction (see the module docstring)."""
    ctx.resource(MAILER).send(ctx, mail)


async def deliver_smtp(settings: Settings, mail: Mail) -> None:
    """Send by SMTP, retrying with backoff; log (never raise) the final failure."""
    for attempt in range(1, SMTP_ATTEMPTS + 1):
        try:
            await asyncio.to_thread(smtp_send, settings, mail)
            log.info("mail sent", extra={"to": mail.to, "subject": mail.subject})
            return
        except (OSError, smtplib.SMTPException) as exc:
            if attempt == SMTP_ATTEMPTS:
                log.error("mail not sent: %s", exc, extra={"to": mail.to})
                return
            await asyncio.sleep(2**attempt)


def smtp_send(settings: Settings, mail: Mail) -> None:
    assert settings.smtp_host
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Message-ID"] = make_msgid(domain="hubbub")
    message.set_content(mail.body)
    timeout = settings.smtp_timeout_s
    client: smtplib.SMTP
    if settings.smtp_tls == "ssl":
        client = smtplib.SMTP_SSL(
            settings.smtp_host,
            settings.smtp_port,
            timeout=timeout,
            context=ssl.create_default_context(),
        )
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    with client:
        if settings.smtp_tls == "starttls":
            client.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            client.login(settings.smtp_username, settings.smtp_password or "")
        client.send_message(message)


async def latest_dev_mail(session: AsyncSession, limit: int = 10) -> Sequence[DevMail]:
    """The newest caught messages, newest first."""
    rows = await session.execute(select(DevMail).order_by(DevMail.id.desc()).limit(max(1, limit)))
    return rows.scalars().all()
