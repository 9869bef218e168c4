"""The mail sender: every worker sends queued mail when SMTP is configured
(``handlers/mail.py`` has the queue and its rules).

Senders in several workers share the queue: each claims due rows under
``FOR UPDATE SKIP LOCKED`` and a lease, so no message goes out twice while its sender
lives. A sender is woken by its own worker's commits that queued mail and polls
otherwise, which picks up mail queued by other workers, mail due for another try, and
mail whose sender died (its lease ran out).
"""

from __future__ import annotations

import asyncio
import logging
import smtplib

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.mail import (
    Mail,
    QueuedMail,
    claim_due,
    describe_failure,
    is_permanent,
    mark_failed,
    mark_sent,
    smtp_send,
)
from hubbub.config import Settings
from hubbub.dependencies import Health
from hubbub.tasks import cancel_and_wait
from workers.outages import classify, record

log = logging.getLogger(__name__)

BATCH = 8  # messages claimed, and sent in parallel (one thread each), at a time


class MailSender:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        wake: asyncio.Event,
        health: Health | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.wake = wake
        self.health = health if health is not None else Health()
        self.sent = 0
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="mail-sender")

    async def stop(self) -> None:
        """Finish the messages being sent (so they are not sent again), within the drain
        timeout; what is left waits in the queue for the next sender."""
        if self._task is None:
            return
        self._stopping = True
        self.wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self.settings.drain_timeout_s)
        except TimeoutError:
            await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.settings.mail_poll_s):
                    await self.wake.wait()
            except TimeoutError:
                pass
            self.wake.clear()
            if self._stopping:
                return
            try:
                await self.send_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next wake-up or poll tries again
                outage = classify(exc)
                if outage is None:
                    log.exception("sending queued mail failed; trying again later")
                else:  # the database is away: logged once by the worker's Health
                    record(self.health, outage, exc)

    async def send_due(self) -> int:
        """Send every message due now; returns how many went out."""
        sent = 0
        while not self._stopping:
            batch = await claim_due(self.sessions, self.settings, BATCH)
            if not batch:
                break
            results = await asyncio.gather(*(self._deliver(mail) for mail in batch))
            sent += sum(results)
            if len(batch) < BATCH:
                break
        self.sent += sent
        return sent

    async def _deliver(self, mail: QueuedMail) -> bool:
        try:
            # Building the message checks its headers: a row that fails that is given
            # up like one smtplib cannot encode.
            message = Mail(mail.to_addr, mail.subject, mail.body)
            await asyncio.to_thread(smtp_send, self.settings, message)
        except Exception as exc:
            error = describe_failure(exc)
            # What is neither the network nor the server (e.g. an address smtplib cannot
            # encode) will fail the same way every time: give up at once.
            expected = isinstance(exc, OSError | smtplib.SMTPException)
            permanent = is_permanent(exc) or not expected
            gave_up = await mark_failed(
                self.sessions, self.settings, mail, error, permanent=permanent
            )
            # The recipient is not logged (an address is personal data, and an error
            # line goes to Sentry too): the mail's id finds it in the mail queue.
            extra = {"attempts": mail.attempts, "mail_id": mail.id}
            if gave_up:
                log.error("mail not sent, given up: %s", error, extra=extra)
            else:
                log.warning("mail not sent, will try again: %s", error, extra=extra)
            return False
        await mark_sent(self.sessions, mail.id)
        log.info("mail sent", extra={"mail_id": mail.id, "subject": mail.subject})
        return True
