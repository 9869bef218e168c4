"""Redis invalidations that cannot be lost: kept in PostgreSQL until they are done.

What Redis holds on the workers' behalf — a workspace's cached reads, the hubs' cached
channel answers, the token deny-list — must follow changes that commit in PostgreSQL.
Each change does its Redis work right after commit (``after_commit``). When that work
fails (Redis unreachable, or the worker dies between the commit and it), a row of
``pending_invalidations`` remains, and every worker's redo loop
(``workers/invalidations.py``) does the work again as soon as Redis answers.

Two ways a row comes to exist, chosen per kind by what a lost invalidation costs:

* **In the change's own transaction** (``durable=True``), for what grants access: the
  channel answers (``handlers/workspaces/acl.py``) and the deny-list
  (``handlers/accounts/revocation.py``). The row commits exactly when the change does,
  so not even a crash right after the commit can lose it. It costs one INSERT on those
  changes, which are rare (membership changes, logouts, deactivations). The row is due
  ``SETTLE_S`` after the commit — by then the after-commit work has normally been done,
  so the loop's redo is a harmless repeat — and is redone and deleted then; when the
  after-commit work fails, the row is made due at once.
* **Only when the after-commit work fails** (``durable=False``), for the read cache
  (``handlers/workspaces/cache.py``), which every write of a workspace bumps: the common
  path gains no round trip. The failure path writes the row in a transaction of its
  own and wakes the loop. A worker that dies in the milliseconds between a commit and
  its bump leaves the old entries until their TTL (``HUBBUB_CACHE_TTL_S``) runs out: a
  read cache may serve a state that old after a crash; versions still guard every write.

Every redo is idempotent and independent of order — a generation bump or a deleted
cache entry only makes the cache miss; a deny-list entry follows the database's current
state — so workers may redo rows concurrently and repeat them safely; ``FOR UPDATE
SKIP LOCKED`` only keeps two workers from doing the same row at the same time. A row is
deleted in the transaction that redid it: done rows never accumulate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from redis.asyncio import Redis
from sqlalchemy import BigInteger, String, delete, func, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from handlers.context import Context
from handlers.db import Base, Timestamped, autocommit_connection
from handlers.worker_resources import ResourceKey
from hubbub.config import Settings
from hubbub.dependencies import REDIS_ERRORS, redis_outage
from hubbub.keys import RedisKeys

log = logging.getLogger(__name__)

SETTLE_S = 2.0  # a durable row is redone this long after its commit
# A row of a kind this version does not know was written by a newer one, during a rolling
# deploy: it is left for a worker that knows it, looked at again this much later…
UNKNOWN_KIND_RETRY_S = 30.0
# …and dropped, with an error, once it is this old: no such worker has come meanwhile.
UNKNOWN_KIND_KEEP_S = 3600.0
# A row whose redo Redis refused for a reason that is no outage (a bug: a key of the wrong
# type, a script error, a missing permission) is set aside as long, tried again as often,
# so that it holds up neither the rows behind it nor the worker's cache.
FAILED_RETRY_S = UNKNOWN_KIND_RETRY_S
FAILED_KEEP_S = UNKNOWN_KIND_KEEP_S
BATCH = 100


class PendingInvalidation(Timestamped, Base):
    __tablename__ = "pending_invalidations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    due_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)


@dataclass(frozen=True, slots=True)
class RedoTarget:
    """What a redo gets: the claiming transaction's session, Redis and the settings."""

    session: AsyncSession
    redis: Redis
    keys: RedisKeys
    settings: Settings


Redo = Callable[[RedoTarget, dict[str, Any]], Awaitable[None]]
_KINDS: dict[str, Redo] = {}


def kind(name: str) -> Callable[[Redo], Redo]:
    """Register how rows of kind ``name`` are redone (idempotent, order-independent)."""

    def register(redo: Redo) -> Redo:
        if _KINDS.get(name, redo) is not redo:
            raise ValueError(f"invalidation kind {name!r} registered twice")
        _KINDS[name] = redo
        return redo

    return register


class RedoSignal:
    """A worker's link between its handlers and its redo loop. Handlers report Redis
    failures (``failed``: wakes the loop); the loop reports whether Redis answers. One
    line when this starts, one when it ends — not one per request. (That Redis went
    away is the worker's dependency tracker's to say: ``hubbub/dependencies.py``.)"""

    def __init__(self, _settings: Settings | None = None) -> None:
        self.wake = asyncio.Event()
        self.redis_down = False

    def failed(self, exc: BaseException) -> None:
        """A handler's Redis work failed and was kept: Redis is down if that was an
        outage (``redis_outage``); either way the loop is woken to redo it."""
        if redis_outage(exc) is not None:
            self.down(exc)
        self.wake.set()

    def down(self, exc: BaseException) -> None:
        if not self.redis_down:
            self.redis_down = True
            log.info(
                "Redis failed (%s): the workspace cache is bypassed and invalidations are"
                " kept in PostgreSQL until it answers again",
                type(exc).__name__,
            )

    def up(self, redone: int) -> None:
        if self.redis_down:
            self.redis_down = False
            log.info("Redis answers again: %d kept invalidations redone, cache in use", redone)


REDO_SIGNAL: ResourceKey[RedoSignal] = ResourceKey("redo_signal", RedoSignal)


def after_commit(
    ctx: Context,
    kind_name: str,
    payload: dict[str, Any],
    apply: Callable[[], Awaitable[None]],
    *,
    durable: bool,
) -> None:
    """Run ``apply`` (the Redis work) once the request commits; make sure the work is
    redone later if it does not happen: ``durable`` writes the row in this transaction,
    otherwise a row is written only when ``apply`` fails."""
    if kind_name not in _KINDS:
        raise ValueError(f"unknown invalidation kind {kind_name!r}")
    row: PendingInvalidation | None = None
    if durable:
        row = PendingInvalidation(
            kind=kind_name,
            payload=payload,
            due_at=func.now() + literal(timedelta(seconds=SETTLE_S)),
        )
        ctx.session.add(row)

    async def run() -> None:
        try:
            await apply()
        except REDIS_ERRORS as exc:
            # Kept whatever the failure: the cache may serve the old state until it is
            # redone. Only an outage (``redis_outage``) is not a bug: it is logged once
            # (``RedoSignal``), a bug with its traceback.
            if redis_outage(exc) is None:
                log.error(
                    "an invalidation failed in Redis, not for an outage; kept to be redone",
                    exc_info=exc,
                    extra={"kind": kind_name},
                )
            if row is None:
                await record(ctx.sessions, kind_name, payload)
            else:  # no need to wait for it to settle: it is due as soon as Redis is back
                await _due_now(ctx.sessions, row.id)
            ctx.resource(REDO_SIGNAL).failed(exc)

    ctx.after_commit(run)


async def record(
    sessions: async_sessionmaker[AsyncSession], kind_name: str, payload: dict[str, Any]
) -> None:
    """Keep an invalidation whose after-commit work failed, due at once."""
    try:
        async with sessions() as session, session.begin():
            session.add(PendingInvalidation(kind=kind_name, payload=payload))
    except Exception:
        # PostgreSQL went too, right after the commit: nothing left to keep it in. The
        # entries expire by their TTL.
        log.exception("an invalidation could not be kept", extra={"kind": kind_name})


async def _due_now(sessions: async_sessionmaker[AsyncSession], row_id: int) -> None:
    try:
        async with sessions() as session, session.begin():
            await session.execute(
                update(PendingInvalidation)
                .where(PendingInvalidation.id == row_id)
                .values(due_at=func.now())
            )
    except Exception:  # the row is there all the same, due a moment later
        log.exception("a kept invalidation could not be made due at once")


class Redone(NamedTuple):
    """What one ``redo_due`` did: rows it claimed, and of them, rows redone (or dropped)
    and deleted; the others stayed for a worker that knows their kind."""

    claimed: int
    done: int


async def any_due(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """Whether a row is due: one autocommit statement (the table is empty nearly always)."""
    async with sessions() as session:
        conn = await autocommit_connection(session)
        return bool(await conn.fetchval(_ANY_DUE))


async def redo_due(
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    keys: RedisKeys,
    settings: Settings,
    *,
    limit: int = BATCH,
) -> Redone:
    """Redo and delete up to ``limit`` due rows that no other worker holds. A Redis
    outage (``redis_outage``) rolls the batch back (the rows stay) and propagates. A row of
    a kind this version does not know stays, due again ``UNKNOWN_KIND_RETRY_S`` later,
    until it is ``UNKNOWN_KIND_KEEP_S`` old; so does a row whose redo Redis fails for
    another reason (a bug, logged with its traceback the first time), due again
    ``FAILED_RETRY_S`` later until it is ``FAILED_KEEP_S`` old: it holds up neither the
    rows behind it nor the worker's cache. A malformed row is dropped.

    The table is empty nearly always (a row exists while Redis fails, and for a moment
    after a durable invalidation): ``any_due`` looks before a transaction is begun to
    claim them."""
    if not await any_due(sessions):
        return Redone(0, 0)
    async with sessions() as session, session.begin():
        rows = (
            await session.scalars(
                select(PendingInvalidation)
                .where(PendingInvalidation.due_at <= func.now())
                .order_by(PendingInvalidation.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not rows:
            return Redone(0, 0)
        target = RedoTarget(session, redis, keys, settings)
        kept: set[int] = set()
        now = datetime.now(UTC)
        for row in rows:
            redo = _KINDS.get(row.kind)
            if redo is None:  # written by another version of Hubbub that knows it
                age = (now - row.created_at).total_seconds()
                if age < UNKNOWN_KIND_KEEP_S:
                    kept.add(row.id)
                    _note_unknown_kind(row.kind)
                else:
                    log.error(
                        "dropping an invalidation of unknown kind %r after %.0f s: no worker"
                        " that knows it has redone it",
                        row.kind,
                        age,
                    )
                continue
            try:
                await redo(target, row.payload)
            except REDIS_ERRORS as exc:
                if redis_outage(exc) is not None:
                    raise
                if _failed(row, exc, now):
                    kept.add(row.id)
            except (KeyError, TypeError, ValueError):
                log.exception("dropping a malformed invalidation", extra={"kind": row.kind})
        if kept:
            await session.execute(
                update(PendingInvalidation)
                .where(PendingInvalidation.id.in_(sorted(kept)))
                # (FAILED_RETRY_S is the same.)
                .values(due_at=func.now() + timedelta(seconds=UNKNOWN_KIND_RETRY_S))
            )
        done = [r.id for r in rows if r.id not in kept]
        await session.execute(delete(PendingInvalidation).where(PendingInvalidation.id.in_(done)))
    return Redone(len(rows), len(done))


def _failed(row: PendingInvalidation, exc: BaseException, now: datetime) -> bool:
    """Whether a row whose redo failed in Redis, not for an outage, stays to be tried
    again (logged with the traceback the first time, by whichever worker meets it: a row
    never set aside is due at most ``SETTLE_S`` after it was written); once it is
    ``FAILED_KEEP_S`` old, it is dropped with an error."""
    age = (now - row.created_at).total_seconds()
    if age >= FAILED_KEEP_S:
        log.error(
            "dropping an invalidation %.0f s old that Redis still fails, not for an outage (%s)",
            age,
            type(exc).__name__,
            extra={"kind": row.kind},
        )
        return False
    if (row.due_at - row.created_at).total_seconds() < FAILED_RETRY_S:
        log.error(
            "an invalidation failed in Redis, not for an outage; set aside, tried again"
            " every %.0f s (the others are redone meanwhile)",
            FAILED_RETRY_S,
            exc_info=exc,
            extra={"kind": row.kind},
        )
    return True


_unknown_kinds_noted: set[str] = set()


def _note_unknown_kind(kind_name: str) -> None:
    """One line per unknown kind and process: a rolling deploy meets many such rows."""
    if kind_name not in _unknown_kinds_noted:
        _unknown_kinds_noted.add(kind_name)
        log.warning(
            "leaving invalidations of unknown kind %r for a worker of the version that wrote them",
            kind_name,
        )


_ANY_DUE = "SELECT EXISTS (SELECT FROM pending_invalidations WHERE due_at <= now())"

__all__ = [
    "REDIS_ERRORS",
    "REDO_SIGNAL",
    "PendingInvalidation",
    "RedoSignal",
    "RedoTarget",
    "Redone",
    "after_commit",
    "any_due",
    "kind",
    "record",
    "redo_due",
]
