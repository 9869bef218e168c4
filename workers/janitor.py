"""The janitor: every worker prunes leftover rows now and then (``handlers/retention.py``).

Several workers may prune at the same time; deleting the same rows twice is harmless
(the second finds them gone), and the rules say what goes, not who does it. The first
pass runs shortly after start, so workers that restart often still prune.
"""

from __future__ import annotations

import asyncio
import logging
import random

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.retention import prune
from hubbub.config import Settings
from hubbub.dependencies import Health
from hubbub.tasks import cancel_and_wait
from workers.outages import classify, record

log = logging.getLogger(__name__)

FIRST_PASS_AFTER_S = 30.0


class Janitor:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        health: Health | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.health = health if health is not None else Health()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="janitor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        # Spread out: workers started together should not all prune at once.
        delay = min(FIRST_PASS_AFTER_S, self.settings.janitor_interval_s) * random.uniform(1, 2)
        while True:
            await asyncio.sleep(delay)
            delay = self.settings.janitor_interval_s
            try:
                deleted = await prune(self.sessions, self.settings)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                outage = classify(exc)
                if outage is None:
                    log.exception("pruning failed; trying again at the next pass")
                else:  # logged once by the worker's Health; the next pass prunes
                    record(self.health, outage, exc)
                continue
            if any(deleted.values()):
                log.info("pruned leftover rows", extra={"deleted": deleted})
