"""The redo loop: every worker redoes the Redis invalidations that are due
(``handlers/invalidations.py`` has the table and the rules).

It is woken by its own worker's failed after-commit work, and polls otherwise — which
picks up rows of other workers, rows of a worker that died, and durable rows once they
have settled. While Redis fails, it tries again every ``retry_s`` (not at the pace of
the failures handlers report), so a returning Redis gets its pending invalidations
within about that long. Several workers share the table: each claims rows ``FOR UPDATE
SKIP LOCKED``, and every redo is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.accounts import revocation
from handlers.db import postgres_outage
from handlers.invalidations import (
    BATCH,
    REDO_SIGNAL,
    RedoSignal,
    any_due,
    redo_due,
)
from handlers.worker_resources import Resources
from handlers.workspaces import acl, cache
from hubbub.config import Settings
from hubbub.dependencies import redis_outage
from hubbub.keys import RedisKeys
from hubbub.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# The modules whose invalidation kinds this loop redoes (each registers its own on import).
KINDS_FROM = (acl, cache, revocation)

POLL_S = 1.0  # looking for rows that other workers left
RETRY_S = 0.25  # trying Redis again while it fails


class InvalidationRedoer:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        redis: Redis,
        settings: Settings,
        signal: RedoSignal,
        *,
        poll_s: float = POLL_S,
        retry_s: float = RETRY_S,
    ) -> None:
        self.sessions = sessions
        self.redis = redis
        self.settings = settings
        self.keys = RedisKeys(settings.namespace)
        self.signal = signal
        self.poll_s = poll_s
        self.retry_s = retry_s
        self.redone = 0
        self._failing = False  # the last try failed for a bug, logged
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="invalidation-redoer")

    async def stop(self) -> None:
        """Stop at once: what is not redone stays in the table for the other workers."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            if self.signal.redis_down:
                await asyncio.sleep(self.retry_s)
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_s):
                        await self.signal.wake.wait()
            self.signal.wake.clear()
            await self.run_once()

    async def run_once(self) -> int:
        """Redo every due row (while Redis answers); returns how many were redone."""
        redone = 0
        try:
            if self.signal.redis_down:
                await self.redis.ping()
            while True:
                batch = await redo_due(self.sessions, self.redis, self.keys, self.settings)
                redone += batch.done
                if batch.claimed < BATCH:
                    break
            if self.signal.redis_down and await any_due(self.sessions):
                # Rows another worker holds (or claimed since): this worker reads no cache
                # until none is left due; the next try comes ``retry_s`` later.
                return redone
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if postgres_outage(exc) is not None:
                pass  # logged once by the worker's health tracker (the relay meets it too)
            elif redis_outage(exc) is not None:
                self.signal.down(exc)
            elif not self._failing:  # a bug: one traceback, not one per try
                self._failing = True
                log.exception("redoing pending invalidations failed; trying again later")
            return redone
        finally:
            self.redone += redone
        self._failing = False
        self.signal.up(redone)
        return redone


def start_redoer(
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
    resources: Resources,
) -> InvalidationRedoer:
    """A started loop, sharing the worker's ``RedoSignal`` with its handlers."""
    redoer = InvalidationRedoer(sessions, redis, settings, resources.get(REDO_SIGNAL, settings))
    redoer.start()
    return redoer
