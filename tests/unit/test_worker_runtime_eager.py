"""Eager start's standby task: handed a coroutine before or after its task first runs,
cancelled before it has one, cancelled before its first step (what the coroutine waits
on is cancelled too), and named after the coroutine it finishes."""

from __future__ import annotations

import asyncio

import pytest

from workers import eager
from workers.eager import start_eager


async def _quick() -> str:
    return "done"


async def _waits_then(value: str) -> str:
    await asyncio.sleep(0)
    return value


class TestStandby:
    async def test_a_standby_whose_task_ran_before_it_had_work_still_finishes_it(
        self,
    ) -> None:
        assert start_eager(_quick()) is None  # leaves its standby for the next start
        await asyncio.sleep(0)  # the standby's task runs and waits for a coroutine
        await asyncio.sleep(0)

        task = start_eager(_waits_then("later"))

        assert task is not None
        assert await task == "later"

    async def test_a_standby_cancelled_before_it_had_work_is_not_handed_any(self) -> None:
        assert start_eager(_quick()) is None
        standby = eager._standby
        assert standby is not None
        standby.task.cancel()  # someone who saw it current cancels it

        task = start_eager(_waits_then("mine"))

        assert task is not None
        assert task is not standby.task
        assert await task == "mine"
        with pytest.raises(asyncio.CancelledError):
            await standby.task

    async def test_cancelling_the_task_before_its_first_step_cancels_what_it_waits_on(
        self,
    ) -> None:
        waited_on: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def job() -> None:
            await waited_on

        task = start_eager(job())
        assert task is not None
        task.cancel()  # before the task has taken the wait over, as a plain task cancels

        with pytest.raises(asyncio.CancelledError):
            await task
        assert waited_on.cancelled()

    async def test_the_task_is_named_after_its_coroutine_and_shows_its_stack(self) -> None:
        task = start_eager(_waits_then("x"))

        assert task is not None
        assert "_waits_then" in repr(task)
        assert task.get_stack()  # the coroutine's frame
        await task
