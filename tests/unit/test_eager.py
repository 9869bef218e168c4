"""Eager start: a coroutine runs at once until it first waits, then a task finishes it."""

from __future__ import annotations

import asyncio

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

    async def test_cancelling_the_task_cancels_the_coroutine_and_runs_its_cleanup(self) -> None:
        cleaned = []

        async def long() -> None:
            try:
                await asyncio.sleep(10)
            finally:
                cleaned.append(True)

        task = start_eager(long())
        assert task is not None
        await asyncio.sleep(0)
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
