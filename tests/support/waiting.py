"""Waiting for something to become true, bounded in time: the one polling helper.

Tests wait for *conditions*, never for a fixed time: ``await eventually(check)`` runs
``check`` until it stops raising ``AssertionError`` (or returns without raising), and
``await wait_for(predicate)`` until the predicate returns a truthy value. Both fail with
the last assertion (or a plain one) once ``timeout`` seconds have passed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 10.0, interval: float = 0.05
) -> Any:
    """Run ``check`` until it passes; return what it returned."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if loop.time() > deadline:
                raise
        await asyncio.sleep(interval)


async def wait_for(
    predicate: Callable[[], Awaitable[object]],
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "condition",
) -> None:
    """Poll ``predicate`` until it returns a truthy value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met within {timeout:g}s")
        await asyncio.sleep(interval)
