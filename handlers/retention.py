"""What is kept, and for how long: the rows that only pile up once their use is over.

* idempotency records — ``idempotency_ttl_s`` after they were written (a retry with the
  same key after that applies again, as Stripe's 24-hour window does);
* refresh, password-reset and email-verification tokens — ``retention_s`` after they
  expired;
* sessions — ``retention_s`` after they were revoked, or after their last refresh
  token could last have been used (their tokens go with them);
* published outbox events — ``retention_s`` after publishing (JetStream keeps the
  history clients replay from);
* captured development mail — ``retention_s`` after it was "sent".

Users, workspaces, resources and the activity journal are data, not leftovers: never
pruned here. Each table is pruned in batches, each its own short transaction, so no
prune holds locks on many rows at once; each rule has an index to find its rows by. Each
DELETE repeats its rule on the rows it deletes: a row changed while the batch waited for
its lock (an idempotency record a retry took over) is deleted only if it still matches. A
table whose pruning fails (a statement timeout, a lock it waited too long for) is left
for the next pass with one error line, and the other tables are pruned all the same;
only PostgreSQL being away ends the pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
from sqlalchemy import ColumnElement, delete, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.accounts.models import (
    AuthSession,
    EmailVerificationToken,
    PasswordResetToken,
    RefreshToken,
)
from handlers.db import postgres_outage
from handlers.idempotency import IdempotencyRecord
from handlers.mail import DevMail, QueuedMail
from handlers.outbox import OutboxEvent
from hubbub.config import Settings
from hubbub.dependencies import causes

log = logging.getLogger(__name__)

BATCH = 1000
# A statement PostgreSQL cancelled: it ran past statement_timeout, or waited past
# lock_timeout for a lock.
_TIMED_OUT = (asyncpg.QueryCanceledError, asyncpg.LockNotAvailableError)


def rules(settings: Settings) -> list[tuple[str, Any, Callable[[], ColumnElement[bool]]]]:
    """(name, primary-key column, condition) for each kind of leftover row."""
    keep = timedelta(seconds=settings.retention_s)
    refresh_lifetime = timedelta(seconds=settings.refresh_token_ttl_s)
    now = func.now
    return [
        (
            "idempotency_keys",
            IdempotencyRecord,
            lambda: (
                IdempotencyRecord.created_at < now() - timedelta(seconds=settings.idempotency_ttl_s)
            ),
        ),
        ("refresh_tokens", RefreshToken, lambda: RefreshToken.expires_at < now() - keep),
        (
            "password_reset_tokens",
            PasswordResetToken,
            lambda: PasswordResetToken.expires_at < now() - keep,
        ),
        (
            "email_verification_tokens",
            EmailVerificationToken,
            lambda: EmailVerificationToken.expires_at < now() - keep,
        ),
        (
            "auth_sessions",
            AuthSession,
            lambda: or_(
                AuthSession.revoked_at < now() - keep,
                func.coalesce(AuthSession.last_refreshed_at, AuthSession.created_at)
                < now() - refresh_lifetime - keep,
            ),
        ),
        (
            "outbox",
            OutboxEvent,
            # Published (JetStream keeps the history), or set aside as unpublishable.
            lambda: or_(
                OutboxEvent.published_at < now() - keep, OutboxEvent.failed_at < now() - keep
            ),
        ),
        ("dev_mail", DevMail, lambda: DevMail.created_at < now() - keep),
        # Sent mail is deleted at once; what failed for good is kept this long to be looked at.
        ("mail_queue", QueuedMail, lambda: QueuedMail.failed_at < now() - keep),
    ]


async def prune(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, *, batch: int = BATCH
) -> dict[str, int]:
    """Delete what has outlived its use; returns the rows deleted per table (up to a
    failure, for a table whose pruning failed). Raises only for an outage of PostgreSQL."""
    deleted: dict[str, int] = {}
    for name, model, condition in rules(settings):
        keys = list(model.__table__.primary_key.columns)
        deleted[name] = 0
        try:
            while True:
                async with sessions() as session, session.begin():
                    doomed = select(*keys).where(condition()).limit(batch)
                    key = keys[0] if len(keys) == 1 else tuple_(*keys)
                    # The condition again, on the row deleted: a row the batch picked and
                    # another transaction changed meanwhile (an idempotency key taken
                    # over, a session refreshed) is waited for, then checked again by
                    # PostgreSQL, but only against the DELETE's own WHERE.
                    result = await session.execute(
                        delete(model).where(key.in_(doomed), condition())
                    )
                count = int(getattr(result, "rowcount", 0) or 0)
                deleted[name] += count
                if count < batch:
                    break
        except Exception as exc:
            if postgres_outage(exc) is not None:
                raise  # nothing else will prune either: the janitor logs it once
            # Ran out of time (statement_timeout, lock_timeout): the error says all. Else
            # a bug: with its traceback.
            chain = list(causes(exc))
            waited = any(isinstance(cause, _TIMED_OUT) for cause in chain)
            cause = chain[-1]  # the driver's error, under SQLAlchemy's
            log.error(
                "pruning %s failed after %d rows (%s: %s); the other tables are pruned all"
                " the same",
                name,
                deleted[name],
                type(cause).__name__,
                str(cause).splitlines()[0] if str(cause) else "",
                exc_info=None if waited else exc,
                extra={"table": name},
            )
    return deleted
