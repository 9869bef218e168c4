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


class _Driver(Coroutine[Any, Any, Any]):
    """What a standby task runs: the coroutine it is handed, from where its eager start
    left it. Until then (if the task gets to run before it is handed one) it waits.

    A coroutine object of its own rather than an ``async def`` awaiting a hand-off
    future: a coroutine handed over before the task's first step (the usual case — a
    standby is made when it is needed) costs the task no step to reach its wait and no
    wake-up to take the coroutine. The task drives it exactly as it drives a coroutine:
    ``send`` and ``throw``; the first ``send`` after the hand-off returns what the
    coroutine last yielded (the future it waits on), and the rest go to the coroutine."""

    __slots__ = ("coro", "first", "parked")

    def __init__(self) -> None:
        self.coro: Coroutine[Any, Any, Any] | None = None
        self.first: Any = _DELIVERED  # the eager part's first yield, until the task has it
        self.parked: asyncio.Future[None] | None = None  # its wait for a coroutine

    def hand(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self.coro = coro
        self.first = first
        parked = self.parked
        if parked is not None:  # the task already waits: wake it
            self.parked = None
            parked.set_result(None)

    def send(self, value: Any) -> Any:
        coro = self.coro
        if coro is None:  # the task runs before it has a coroutine: wait for one
            parked = self.parked = asyncio.get_running_loop().create_future()
            parked._asyncio_future_blocking = True  # what ``Future.__await__`` sets
            return parked
        first = self.first
        if first is not _DELIVERED:
            self.first = _DELIVERED
            return first
        return coro.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        coro = self.coro
        exc = typ if val is None else val
        if coro is None:  # cancelled before it had a coroutine: the task ends so
            self.parked = None
            raise exc
        first, self.first = self.first, _DELIVERED  # the wait ends with this exception
        if isinstance(first, asyncio.Future) and not first.done():
            # Cancelled before the task took the wait over: cancel what it waits on, as
            # a task cancels its waiter (asyncpg, for one, cancels its query on that).
            first.cancel()
        return coro.throw(exc)

    def close(self) -> None:
        if self.coro is not None:
            self.coro.close()

    def __await__(self) -> Generator[Any, Any, Any]:
        raise TypeError("a standby's driver is run by its task, not awaited")

    # For the task's repr and ``get_stack``: the coroutine's.
    @property
    def __name__(self) -> str:
        coro = self.coro
        return "standby" if coro is None else getattr(coro, "__qualname__", "standby")

    @property
    def cr_frame(self) -> Any:
        return getattr(self.coro, "cr_frame", None)


_DELIVERED: Any = object()  # ``_Driver.first`` once the task has the first yield


class _Standby:
    """A task ready for a coroutine to finish; current while that coroutine starts."""

    __slots__ = ("context", "driver", "loop", "task")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.context = contextvars.copy_context()
        self.driver = _Driver()
        self.task: asyncio.Task[Any] = loop.create_task(self.driver, context=self.context)


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
    if (
        standby is None
        or standby.loop is not loop
        or standby.task.done()
        or standby.task.cancelling()
    ):
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
    standby.driver.hand(coro, first)
    if _standby is standby:
        _standby = None
    if name is not None:
        task.set_name(name)
    return task
