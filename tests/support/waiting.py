"""Waiting for something to become true, bounded in time: the one polling helper.

Tests wait for *conditions*, never for a fixed time: ``await eventually(check)`` runs
``check`` until it stops raising ``AssertionError`` (or returns without raising), and
``await wait_for(predicate)`` until the predicate returns a truthy value. Both fail with
the last assertion (or a plain one) once ``timeout`` seconds have passed.

``check`` and ``predicate`` may be plain functions or coroutine functions: what they
return is awaited when it is awaitable.

To show that something did *not* happen, do not wait and look: send a sentinel after
it through the same path, wait for the sentinel, then assert nothing came before it.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any


async def _call(function: Callable[[], Any]) -> Any:
    result = function()
    if inspect.isawaitable(result):
        return await result
    return result


async def eventually(
    check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05
) -> Any:
    """Run ``check`` until it passes; return what it returned."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await _call(check)
        except AssertionError:
            if loop.time() > deadline:
                raise
        await asyncio.sleep(interval)


async def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "condition",
) -> None:
    """Poll ``predicate`` until it returns a truthy value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await _call(predicate):
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met within {timeout:g}s")
        await asyncio.sleep(interval)
