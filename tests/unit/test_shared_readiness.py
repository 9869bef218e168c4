"""Readiness checks are shared: ``/ready`` is public, and each check is a worker round
trip (PostgreSQL and Redis) and a Redis ping. Callers that arrive while one runs wait
for it; its answer is reused for ``READY_REUSE_S``; then the next caller checks again."""

from __future__ import annotations

import asyncio

import pytest

from hub.health import READY_REUSE_S, Readiness, SharedCheck
from tests.support.clock import Clock


class Checks:
    """A stand-in for the round trip: counts runs, each held until ``go`` is set."""

    def __init__(self) -> None:
        self.runs = 0
        self.started = asyncio.Event()
        self.go = asyncio.Event()
        self.fail: Exception | None = None

    async def __call__(self, within: float | None) -> Readiness:
        self.runs += 1
        self.started.set()
        await self.go.wait()
        if self.fail is not None:
            raise self.fail
        return Readiness({"nats": {"ok": True}, "run": {"ok": True, "n": self.runs}})


async def test_callers_arriving_while_a_check_runs_share_it() -> None:
    checks = Checks()
    shared = SharedCheck(checks, clock=Clock())
    callers = [asyncio.ensure_future(shared(None)) for _ in range(20)]
    await checks.started.wait()
    checks.go.set()
    answers = await asyncio.gather(*callers)
    assert checks.runs == 1
    assert all(answer is answers[0] for answer in answers)


async def test_an_answer_is_reused_for_a_while_then_checked_again() -> None:
    checks, clock = Checks(), Clock()
    checks.go.set()
    shared = SharedCheck(checks, clock=clock)
    first = await shared(None)
    clock.advance(READY_REUSE_S * 0.9)
    assert await shared(None) is first
    clock.advance(READY_REUSE_S * 0.2)
    assert await shared(None) is not first
    assert checks.runs == 2


async def test_a_caller_that_gives_up_does_not_stop_the_check_for_the_others() -> None:
    checks = Checks()
    shared = SharedCheck(checks, clock=Clock())
    first = asyncio.ensure_future(shared(None))
    await checks.started.wait()
    second = asyncio.ensure_future(shared(None))
    first.cancel()
    checks.go.set()
    assert (await second).components["run"]["n"] == 1
    assert first.cancelled()


async def test_a_check_that_fails_is_not_reused() -> None:
    checks = Checks()
    checks.fail = RuntimeError("a bug")
    checks.go.set()
    shared = SharedCheck(checks, clock=Clock())
    with pytest.raises(RuntimeError):
        await shared(None)
    checks.fail = None
    assert (await shared(None)).ok
    assert checks.runs == 2


async def test_the_check_keeps_to_the_deadline_of_the_caller_that_started_it() -> None:
    seen: list[float | None] = []

    async def check(within: float | None) -> Readiness:
        seen.append(within)
        return Readiness({"nats": {"ok": True}})

    await SharedCheck(check, clock=Clock())(0.5)
    assert seen == [0.5]
