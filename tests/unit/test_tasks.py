"""``cancel_and_wait``: a background task is stopped, and its stopper is not."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hubbub.tasks import cancel_and_wait


async def test_the_tasks_have_ended_when_it_returns_and_none_is_skipped() -> None:
    ended: list[str] = []
    waiting = asyncio.Semaphore(0)

    async def forever(name: str) -> None:
        try:
            waiting.release()
            await asyncio.Event().wait()
        finally:
            ended.append(name)

    tasks = [asyncio.create_task(forever(name)) for name in ("a", "b")]
    for _ in tasks:
        await waiting.acquire()  # both are waiting
    await cancel_and_wait(tasks[0], None, tasks[1])
    assert sorted(ended) == ["a", "b"]
    assert all(task.cancelled() for task in tasks)


async def test_the_stoppers_own_cancellation_is_raised_not_swallowed() -> None:
    waiting = asyncio.Event()
    cancelled = asyncio.Event()
    may_end = asyncio.Event()

    async def slow_to_end() -> None:
        try:
            waiting.set()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            await may_end.wait()  # cleaning up takes a while
            raise

    task = asyncio.create_task(slow_to_end())
    await waiting.wait()
    stopper = asyncio.create_task(cancel_and_wait(task))
    await cancelled.wait()  # the stopper now waits for the task to end
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    assert stopper.cancelled()
    may_end.set()
    await asyncio.wait([task])
    assert task.cancelled()


async def test_a_task_that_failed_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def fails() -> None:
        raise ValueError("broken")

    task = asyncio.create_task(fails(), name="the-failing-one")
    await asyncio.wait([task])
    with caplog.at_level(logging.ERROR, logger="hubbub.tasks"):
        await cancel_and_wait(task)
    [record] = caplog.records
    assert record.getMessage() == "task the-failing-one failed"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)
