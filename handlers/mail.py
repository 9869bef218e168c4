"""Outgoing mail: SMTP when ``HUBBUB_SMTP_HOST`` is set, else the dev mail catcher.

``send_mail(ctx, message)`` writes the message with the request's transaction, so it
exists exactly when the change that sends it committed:

* **SMTP** — a row of ``mail_queue``. The workers' mail senders (``workers/mail_sender.py``;
  woken after the commit, polling otherwise) claim due rows with ``FOR UPDATE SKIP LOCKED``
  and a lease, send them by stdlib ``smtplib`` in a thread, and delete each sent row (its
  body holds a token). The reply never waits for the mail server, so a reset request
  takes as long whether or not the email exists. A temporary failure (no connection, a
  4xx answer, a timeout) is tried again later, with the delay doubling from
  ``HUBBUB_MAIL_RETRY_BASE_S`` up to an hour, ``HUBBUB_MAIL_MAX_ATTEMPTS`` times in all; a
  recipient or message the server refuses for good (5xx) is not retried. Either way the
  row is kept, marked failed with the server's answer, until the janitor prunes it.
  Delivery is at least once: a worker that dies after the server took a message but
  before deleting its row has it sent again when the lease runs out. A send still in
  progress when a worker's stop gives up on it is cut (``cut_smtp_sends``): its
  connection is shut, and the message waits for its lease to run out likewise.
* **Dev mail catcher** — the message is a row of ``dev_mail`` in the same transaction,
  shown by ``hubbub mail``, and logged (outside production) so a developer sees the link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import smtplib
import socket
import ssl
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy import BigInteger, Index, String, Text, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from handlers.context import Context
from handlers.db import Base, Timestamped
from handlers.worker_resources import ResourceKey
from hubbub.config import Settings

log = logging.getLogger(__name__)
MAX_RETRY_DELAY_S = 3600.0


class DevMail(Timestamped, Base):
    """Mail that would have gone out by SMTP."""

    __tablename__ = "dev_mail"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    to_addr: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_dev_mail_created_at", "created_at"),)  # for retention


class QueuedMail(Timestamped, Base):
    """Mail for the SMTP server: waiting, being sent (leased), or failed for good."""

    __tablename__ = "mail_queue"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    to_addr: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    # When a sender may take it: now for new mail, later after a failure, and the end of
    # the lease while a sender has it (so a sender that dies leaves it to the others).
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    failed_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)

    __table_args__ = (
        Index("ix_mail_queue_due", "next_attempt_at", postgresql_where=text("failed_at IS NULL")),
        # What retention looks for (handlers/retention.py): failed for good long ago.
        Index(
            "ix_mail_queue_failed_at", "failed_at", postgresql_where=text("failed_at IS NOT NULL")
        ),
    )


@dataclass(frozen=True, slots=True)
class Mail:
    to: str
    subject: str
    body: str

    def __post_init__(self) -> None:
        # Header values are one line of printable text: a CR or LF would start a header
        # of its own (smtplib's EmailMessage refuses them too, but only at send time).
        for name in ("to", "subject"):
            value = getattr(self, name)
            if any(unicodedata.category(c)[0] == "C" or c in "\u2028\u2029" for c in value):
                raise ValueError(f"mail {name} holds a control character: {value!r}")


# What a mail client turns into a link: a scheme ("https://", "mailto:"), a dot between
# two word characters (a host name, "www.x"), an "@" between two (an address).
_LINKISH = re.compile(
    r"(?i)\b([a-z][a-z0-9+.-]{1,15}:(?=/)|(?:mailto|tel|sms|callto|javascript|data|file):)"
    r"|(?<=\w)([.@])(?=\w)"
)


def mail_text(value: str, *, max_length: int = 100) -> str:
    """Text a user chose (a workspace name), made safe to quote in a mail's subject or
    body: one line (control, format and separator characters — newlines, bidi overrides,
    zero-width — dropped; runs of spaces made one), at most ``max_length`` characters,
    and nothing a mail client would turn into a link — ``evil.example/login`` reads
    ``evil[.]example/login`` — so a name cannot pose as a link next to the real one."""
    kept = "".join(
        " " if unicodedata.category(c) in ("Zl", "Zp") or c in "\t\n\r" else c
        for c in value
        if unicodedata.category(c)[0] != "C" or c in "\t\n\r"
    )
    one_line = " ".join(kept.split())
    if len(one_line) > max_length:
        one_line = one_line[: max_length - 1] + "…"
    return _LINKISH.sub(lambda m: f"{m[1][:-1]}[:]" if m[1] is not None else f"[{m[2]}]", one_line)


class Mailer:
    """The handlers' side of mail for one worker process; see the module docstring."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.wake = asyncio.Event()  # set after a commit that queued mail

    def send(self, ctx: Context, mail: Mail) -> None:
        if self.settings.smtp_host:
            ctx.session.add(QueuedMail(to_addr=mail.to, subject=mail.subject, body=mail.body))
            ctx.after_commit(self._queued)
            return
        ctx.session.add(DevMail(to_addr=mail.to, subject=mail.subject, body=mail.body))
        if self.settings.is_production:
            log.warning("no SMTP server configured: mail kept in dev_mail", extra={"to": mail.to})
        else:
            log.info("dev mail to %s: %s\n%s", mail.to, mail.subject, mail.body)

    async def _queued(self) -> None:
        self.wake.set()


MAILER: ResourceKey[Mailer] = ResourceKey("mailer", Mailer)


def send_mail(ctx: Context, mail: Mail) -> None:
    """Send ``mail`` with this request's transaction (see the module docstring)."""
    ctx.resource(MAILER).send(ctx, mail)


# --- the queue, for the senders -----------------------------------------------------------


def retry_delay(settings: Settings, attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones: doubling, capped."""
    return min(settings.mail_retry_base_s * 2.0 ** max(attempts - 1, 0), MAX_RETRY_DELAY_S)


def lease_s(settings: Settings) -> float:
    """How long a sender may hold a message: connecting, TLS and sending each have the
    SMTP timeout, and a margin."""
    return 3 * settings.smtp_timeout_s + 30


async def claim_due(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, limit: int
) -> list[QueuedMail]:
    """Take up to ``limit`` due messages, oldest first, leasing them to this sender."""
    due = (
        select(QueuedMail.id)
        .where(QueuedMail.failed_at.is_(None), QueuedMail.next_attempt_at <= func.now())
        .order_by(QueuedMail.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    async with sessions() as session, session.begin():
        rows = await session.scalars(
            update(QueuedMail)
            .where(QueuedMail.id.in_(due.scalar_subquery()))
            .values(
                attempts=QueuedMail.attempts + 1,
                next_attempt_at=func.now() + timedelta(seconds=lease_s(settings)),
            )
            .returning(QueuedMail)
            .execution_options(synchronize_session=False)
        )
        return sorted(rows.all(), key=lambda m: m.id)


async def mark_sent(sessions: async_sessionmaker[AsyncSession], mail_id: int) -> None:
    async with sessions() as session, session.begin():
        await session.execute(delete(QueuedMail).where(QueuedMail.id == mail_id))


async def mark_failed(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    mail: QueuedMail,
    error: str,
    *,
    permanent: bool,
) -> bool:
    """Record a failed try; returns True when the message is given up on."""
    give_up = permanent or mail.attempts >= settings.mail_max_attempts
    values: dict[str, object] = {"last_error": error[:500]}
    if give_up:
        values["failed_at"] = func.now()
    else:
        delay = timedelta(seconds=retry_delay(settings, mail.attempts))
        values["next_attempt_at"] = func.now() + delay
    async with sessions() as session, session.begin():
        await session.execute(update(QueuedMail).where(QueuedMail.id == mail.id).values(**values))
    return give_up


def describe_failure(exc: BaseException) -> str:
    """The server's answer as it said it ("550 no such mailbox"), else the error."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(
            f"{address}: {code} {_text(message)}"
            for address, (code, message) in exc.recipients.items()
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}"


def _text(message: bytes | str) -> str:
    return message.decode(errors="replace") if isinstance(message, bytes) else message


def is_permanent(exc: BaseException) -> bool:
    """The server refused this recipient or message for good (5xx). Everything else —
    no connection, a timeout, a 4xx, a refused login or sender (configuration, which
    can be fixed) — is worth another try."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPDataError) and exc.smtp_code >= 500


def smtp_send(settings: Settings, mail: Mail) -> None:
    """Send ``mail`` (blocking: the mail sender runs it in a thread of the event loop's).

    The conversation runs in a daemon thread of its own, which this waits for, so that
    a send a worker's stop gave up on can be let go (``cut_smtp_sends``): the wait ends at
    once and the connection is cut. Otherwise each step of a conversation with a server
    that does not answer waits out ``HUBBUB_SMTP_TIMEOUT_S``, and the thread holds the
    process's exit that long."""
    send = _Send()
    with _SENDS_LOCK:
        _SENDS.add(send)
    try:
        threading.Thread(
            target=send.run, args=(settings, mail), name="smtp-send", daemon=True
        ).start()
        send.done.wait()
    finally:
        with _SENDS_LOCK:
            _SENDS.discard(send)
    if send.error is not None:
        raise send.error


def cut_smtp_sends() -> int:
    """Give up the SMTP sends in progress in this process (all of them: a process runs one
    worker; tests with two workers in one process see both cut) — a worker's stop, once
    its mail sender has stopped waiting for them: each one's wait ends with an error, and its
    connection is cut (or not made, if it is still being made). What was not sent stays
    in the queue, leased, for the next sender once the lease ends. Returns how many."""
    with _SENDS_LOCK:
        sends = list(_SENDS)
    for send in sends:
        send.cut()
    return len(sends)


class _Send:
    """One SMTP conversation, in its own thread, which another thread can cut."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._cut = False
        # A second descriptor of the connection's socket: shutting it down ends any
        # wait on the connection, also once TLS has taken over the first one.
        self._line: socket.socket | None = None

    def run(self, settings: Settings, mail: Mail) -> None:
        try:
            _converse(settings, mail, self)
        except BaseException as exc:
            with self._lock:
                if not self._cut:
                    self.error = exc
        finally:
            with self._lock:
                line, self._line = self._line, None
            if line is not None:
                line.close()
            self.done.set()

    def hold(self, sock: socket.socket) -> None:
        """Keep a way to cut ``sock``, the connection just made; a send already given
        up goes no further."""
        with self._lock:
            if self._cut:
                sock.close()
                raise ConnectionAbortedError("the send was given up: the worker is stopping")
            self._line = socket.fromfd(sock.fileno(), sock.family, sock.type)

    def cut(self) -> None:
        with self._lock:
            if self.done.is_set():
                return
            self._cut = True
            self.error = ConnectionAbortedError("the send was given up: the worker is stopping")
            if self._line is not None:
                with contextlib.suppress(OSError):
                    self._line.shutdown(socket.SHUT_RDWR)
        self.done.set()


_SENDS: set[_Send] = set()
_SENDS_LOCK = threading.Lock()


class _Cuttable(smtplib.SMTP):
    """An SMTP client whose connection its ``_Send`` can cut."""

    conversation: _Send  # not ``send``: SMTP has a method of that name

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock: socket.socket = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        self.conversation.hold(sock)
        return sock


class _CuttableSSL(_Cuttable, smtplib.SMTP_SSL):
    pass


def _converse(settings: Settings, mail: Mail, send: _Send) -> None:
    assert settings.smtp_host
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Message-ID"] = make_msgid(domain="hubbub")
    message.set_content(mail.body)
    timeout = settings.smtp_timeout_s
    client: _Cuttable
    if settings.smtp_tls == "ssl":
        client = _CuttableSSL(timeout=timeout, context=ssl.create_default_context())
    else:
        client = _Cuttable(timeout=timeout)
    client.conversation = send
    client._host = settings.smtp_host  # type: ignore[attr-defined]  # TLS checks this name
    with client:
        # What ``smtplib.SMTP(host, port)`` does, once the client can be cut.
        code, greeting = client.connect(settings.smtp_host, settings.smtp_port)
        if code != 220:
            raise smtplib.SMTPConnectError(code, greeting)
        if settings.smtp_tls == "starttls":
            client.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            client.login(settings.smtp_username, settings.smtp_password or "")
        client.send_message(message)


async def latest_dev_mail(session: AsyncSession, limit: int = 10) -> Sequence[DevMail]:
    """The newest caught messages, newest first."""
    rows = await session.execute(select(DevMail).order_by(DevMail.id.desc()).limit(max(1, limit)))
    return rows.scalars().all()
