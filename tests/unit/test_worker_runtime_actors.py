"""Unkeyed jobs run as their own coroutine: whatever escapes them is logged, and each is
counted out of the process's in-flight total exactly once, however it ends."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hubbub.contracts.errors import HubbubError
from workers.actors import ActorSystem


class Job:
    """Waits for ``gate`` (if any), then fails with ``error`` (if any)."""

    def __init__(self, gate: asyncio.Event | None = None, error: Exception | None = None) -> None:
        self.gate = gate
        self.error = error
        self.rejected: list[str] = []

    async def run(self) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error

    async def reject(self, error: HubbubError) -> None:
        self.rejected.append(error.code.value)


class TestUnkeyedJobs:
    async def test_a_job_that_finishes_at_once_is_counted_out_at_once(self) -> None:
        system = ActorSystem()

        system.tell(None, Job())

        assert system.in_flight == 0

    async def test_a_job_that_escapes_before_it_waits_is_logged_and_counted_out(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        system = ActorSystem()

        with caplog.at_level(logging.ERROR, logger="workers.actors"):
            system.tell(None, Job(error=RuntimeError("early")))

        assert system.in_flight == 0
        assert "escaped its own error handling" in caplog.text

    async def test_a_job_that_escapes_after_it_waits_is_logged_and_counted_out(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        system = ActorSystem()
        gate = asyncio.Event()
        system.tell(None, Job(gate=gate, error=RuntimeError("late")))
        assert system.in_flight == 1

        with caplog.at_level(logging.ERROR, logger="workers.actors"):
            gate.set()
            assert await system.drain(1.0)

        assert system.in_flight == 0
        assert "escaped its own error handling" in caplog.text
        assert "late" in caplog.text

    async def test_a_job_still_running_at_the_drain_deadline_is_cancelled_and_counted_out(
        self,
    ) -> None:
        system = ActorSystem()
        system.tell(None, Job(gate=asyncio.Event()))

        assert not await system.drain(0.01)

        assert system.in_flight == 0
        assert not system._unkeyed
