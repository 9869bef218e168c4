"""Stopping a background task: cancel it, and wait until it has ended."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel each of ``tasks`` (None is skipped) and return once all have ended.

    What a task ended with stays its own: its cancellation is expected, and a failure
    is logged here, once, not raised into the code that is stopping it. The caller's own
    cancellation, while it waits, is raised — which ``contextlib.suppress(CancelledError)``
    around ``await task`` would swallow, leaving the caller running on as if it had
    never been cancelled.
    """
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    if running:
        await asyncio.wait(running)
    for task in running:
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("task %s failed", task.get_name(), exc_info=error)
