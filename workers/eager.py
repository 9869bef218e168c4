"""Eager start for coroutines on Python 3.11 (3.12 has ``asyncio.eager_task_factory``).

``start_eager(coro)`` runs ``coro`` at once, in the caller's turn of the event loop,
until it first has to wait; only then does a task take it over. A request whose handler
answers without waiting on I/O is done before the NATS callback returns — no extra
scheduling hop, which is most of what an actor runtime would otherwise add to a round
trip. The coroutine sees no difference: the task drives it exactly as far as it got.

It also sees the right task. Code that runs before the first wait may remember the
current task — ``asyncio.timeout`` does (redis-py reads under one, 5 s by default), and
cancels that task when time is up. If that were the caller's task (the NATS
subscription's), a Redis stall would cancel the subscription, and the worker would stop
taking requests. So the eager part runs *as* the task that will finish it: a standby
task, waiting for work, is made the current task (and its context the current context)
for the eager part; a coroutine that then waits is handed to it, and a new standby is
made for the next one. A coroutine that never waits costs two swaps of the current task
and no task at all (what ``asyncio``'s eager tasks do on 3.12, without the task).
"""

from __future__ import annotations

import asyncio
import contextvars
from asyncio import tasks
from asyncio.tasks import _enter_task, _leave_task
from collections.abc import Coroutine, Generator
from typing import Any

# The table ``_enter_task`` and ``_leave_task`` keep, which ``asyncio.current_task(loop)``
# reads (on 3.11 a Python function: reading it here saves that frame).
_current_tasks: dict[asyncio.AbstractEventLoop, asyncio.Task[Any]] = tasks._current_tasks  # type: ignore[attr-defined]


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


class _Standby:
    """A task waiting for a coroutine to finish; current while that coroutine starts."""

    __slots__ = ("context", "handoff", "loop", "task")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.context = contextvars.copy_context()
        self.handoff: asyncio.Future[_Continue] = loop.create_future()
        self.task: asyncio.Task[Any] = loop.create_task(self._finish(), context=self.context)

    async def _finish(self) -> Any:
        return await (await self.handoff)


_standby: _Standby | None = None


def start_eager(
    coro: Coroutine[Any, Any, Any],
    *,
    loop: asyncio.AbstractEventLoop | None = None,
    name: str | None = None,
) -> asyncio.Task[Any] | None:
    """Run ``coro`` now until it waits; return the task that finishes it, or None if it
    finished already. An exception raised before the first wait propagates here.

    ``loop`` is the running loop (a caller that has it saves looking it up)."""
    global _standby
    if loop is None:
        loop = asyncio.get_running_loop()
    standby = _standby
    # A standby is handed one coroutine at most (then it is forgotten); it may also have
    # been cancelled by someone who saw it current, or belong to a loop now closed.
    if standby is None or standby.loop is not loop or standby.task.done():
        standby = _standby = _Standby(loop)
    outer = _current_tasks.get(loop)  # asyncio.current_task(loop)
    if outer is standby.task:  # started by a coroutine that is starting eagerly itself
        standby = _Standby(loop)
    task = standby.task
    if outer is not None:
        _leave_task(loop, outer)
    _enter_task(loop, task)
    try:
        first = standby.context.run(coro.send, None)
    except StopIteration:
        return None
    finally:
        _leave_task(loop, task)
        if outer is not None:
            _enter_task(loop, outer)
    # It waits: the standby task finishes it; the next coroutine gets a new standby.
    standby.handoff.set_result(_Continue(coro, first))
    if _standby is standby:
        _standby = None
    if name is not None:
        task.set_name(name)
    return task
