"""Eager start for coroutines on Python 3.11 (3.12 has ``asyncio.eager_task_factory``).

``start_eager(coro)`` runs ``coro`` at once, in the caller's turn of the event loop,
until it first has to wait; only then does it become a task. A request whose handler
answers without waiting on I/O is done before the NATS callback returns — no extra
scheduling hop, which is most of what an actor runtime would otherwise add to a round
trip. The coroutine sees no difference: the task drives it exactly as far as it got.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any


class _Continue:
    """An awaitable that hands the first suspension of an already started coroutine to
    the task, then goes on driving the coroutine (what ``yield from`` does)."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self.coro = coro
        self.first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        to_send: Any = None
        to_throw: BaseException | None = None
        try:
            to_send = yield self.first
        except BaseException as exc:  # the task cancelled or failed the awaited future
            to_throw = exc
        while True:
            try:
                if to_throw is not None:
                    yielded = self.coro.throw(to_throw)
                else:
                    yielded = self.coro.send(to_send)
            except StopIteration as done:
                return done.value
            to_send, to_throw = None, None
            try:
                to_send = yield yielded
            except BaseException as exc:
                to_throw = exc


async def _drive(step: _Continue) -> Any:
    return await step


def start_eager(
    coro: Coroutine[Any, Any, Any], *, name: str | None = None
) -> asyncio.Task[Any] | None:
    """Run ``coro`` now until it waits; return the task that finishes it, or None if it
    finished already. An exception raised before the first wait propagates here."""
    try:
        first = coro.send(None)
    except StopIteration:
        return None
    return asyncio.get_running_loop().create_task(_drive(_Continue(coro, first)), name=name)
