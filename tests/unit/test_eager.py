"""Eager start: a coroutine runs at once until it first waits, then a task finishes it."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from workers.eager import start_eager


class TestEagerStart:
    async def test_a_coroutine_that_never_waits_finishes_before_start_returns(self) -> None:
        ran = []

        async def quick() -> None:
            ran.append("done")

        assert start_eager(quick()) is None
        assert ran == ["done"]

    async def test_the_part_before_the_first_wait_runs_at_once_and_a_task_does_the_rest(
        self,
    ) -> None:
        steps = []

        async def two_halves() -> int:
            steps.append("first")
            await asyncio.sleep(0.01)
            steps.append("second")
            return 42

        task = start_eager(two_halves())
        assert steps == ["first"]
        assert task is not None
        assert await task == 42
        assert steps == ["first", "second"]

    async def test_values_and_exceptions_of_awaited_futures_reach_the_coroutine(self) -> None:
        loop = asyncio.get_running_loop()
        good, bad = loop.create_future(), loop.create_future()

        async def waits() -> tuple[int, str]:
            value = await good
            try:
                await bad
            except KeyError as exc:
                return value, str(exc)
            return value, "no error"

        task = start_eager(waits())
        assert task is not None
        good.set_result(7)
        await asyncio.sleep(0)
        bad.set_exception(KeyError("boom"))
        assert await task == (7, "'boom'")

    async def test_an_error_before_the_first_wait_raises_at_the_call(self) -> None:
        async def fails() -> None:
            raise ValueError("early")

        with pytest.raises(ValueError, match="early"):
            start_eager(fails())

    async def test_an_error_after_a_wait_fails_the_task(self) -> None:
        async def fails_later() -> None:
            await asyncio.sleep(0)
            raise ValueError("late")

        task = start_eager(fails_later())
        assert task is not None
        with pytest.raises(ValueError, match="late"):
            await task

    @pytest.mark.parametrize("stepped", [True, False], ids=["after-its-first-step", "before"])
    async def test_cancelling_the_task_cancels_the_coroutine_and_runs_its_cleanup(
        self, stepped: bool
    ) -> None:
        cleaned = []

        async def long() -> None:
            try:
                await asyncio.sleep(10)
            finally:
                cleaned.append(True)

        task = start_eager(long())
        assert task is not None
        if stepped:
            await asyncio.sleep(0)  # the task has taken the coroutine's first wait over
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert cleaned == [True]

    async def test_many_waits_in_a_row_are_all_driven(self) -> None:
        async def many() -> int:
            total = 0
            for i in range(50):
                await asyncio.sleep(0)
                total += i
            return total

        task = start_eager(many())
        assert task is not None
        assert await task == sum(range(50))

    async def test_the_coroutine_runs_as_the_task_that_finishes_it(self) -> None:
        # asyncio.timeout remembers the current task and cancels it when time is up: a
        # timeout entered before the first wait must cancel the coroutine's own task,
        # never the caller's (in the worker: the NATS subscription's).
        outcome = []

        async def times_out() -> None:
            try:
                async with asyncio.timeout(0.02):
                    await asyncio.sleep(5)
            except TimeoutError:
                outcome.append("timed out")

        task = start_eager(times_out())
        assert task is not None
        await asyncio.sleep(0.1)  # the caller is not cancelled here
        assert outcome == ["timed out"]
        assert task.done()
        assert not task.cancelled()

    async def test_current_task_during_the_eager_part_is_the_returned_task(self) -> None:
        seen: list[asyncio.Task[object] | None] = []
        caller = asyncio.current_task()

        async def look() -> None:
            seen.append(asyncio.current_task())
            await asyncio.sleep(0)
            seen.append(asyncio.current_task())

        task = start_eager(look())
        assert asyncio.current_task() is caller  # given back
        assert task is not None
        await task
        assert seen == [task, task]

    async def test_context_set_before_the_first_wait_is_kept_after_it(self) -> None:
        var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="-")

        async def sets() -> str:
            var.set("mine")
            await asyncio.sleep(0)
            return var.get()

        task = start_eager(sets())
        assert task is not None
        assert await task == "mine"

    async def test_a_start_from_inside_an_eager_start_gets_its_own_task(self) -> None:
        inner_tasks: list[asyncio.Task[None] | None] = []

        async def inner() -> None:
            await asyncio.sleep(0.01)

        async def outer() -> str:
            inner_tasks.append(start_eager(inner()))
            await asyncio.sleep(0)
            return "outer done"

        task = start_eager(outer())
        assert task is not None
        assert inner_tasks[0] is not None
        assert inner_tasks[0] is not task
        assert await task == "outer done"
        await inner_tasks[0]

    async def test_many_coroutines_that_wait_each_get_a_task(self) -> None:
        async def waits(i: int) -> int:
            await asyncio.sleep(0.01)
            return i

        tasks = [start_eager(waits(i)) for i in range(20)]
        assert len({id(t) for t in tasks}) == 20
        assert [await t for t in tasks if t is not None] == list(range(20))
