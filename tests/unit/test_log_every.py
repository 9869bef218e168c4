"""A line for something that happens many times a second: at most one per period, with
the count — and a burst that stops is still told, without waiting for a next one."""

from __future__ import annotations

import logging

import pytest

from hubbub.dependencies import Health
from hubbub.log_every import LogEvery
from tests.support.clock import Clock
from tests.support.waiting import wait_for


def test_the_first_occurrence_is_logged_at_once_and_the_next_ones_counted() -> None:
    clock = Clock()
    lines: list[int] = []
    every = LogEvery(10.0, clock=clock)

    every.add(lines.append)
    for _ in range(3):
        clock.advance(1)
        every.add(lines.append)
    assert lines == [1]
    clock.advance(10)
    every.add(lines.append)
    assert lines == [1, 4]  # the three counted meanwhile, and this one


async def test_a_count_is_logged_when_the_period_ends_without_a_next_occurrence() -> None:
    lines: list[tuple[str, int]] = []
    every = LogEvery(0.05)

    every.add(lambda count: lines.append(("first", count)))
    every.add(lambda count: lines.append(("second", count)))
    every.add(lambda count: lines.append(("third", count)))
    assert lines == [("first", 1)]
    await wait_for(lambda: len(lines) == 2, what="the waiting count logged")
    assert lines == [("first", 1), ("third", 2)]  # the latest occurrence's line, both counted


def test_flush_tells_a_waiting_count_now() -> None:
    lines: list[int] = []
    every = LogEvery(10.0, clock=Clock())
    every.add(lines.append)
    every.add(lines.append)
    every.flush()
    every.flush()  # nothing more waits
    assert lines == [1, 1]


async def test_a_saturated_dependency_is_logged_with_its_count_when_the_burst_stops(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Health's "saturated" lines are the same kind of line: the refusals after the first
    line are told once their period ends, not only when another refusal comes."""
    monkeypatch.setattr("hubbub.dependencies.SATURATION_LOG_S", 0.05)
    health = Health()
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            health.saturated("redis", TimeoutError("no connection free"))

        def saturated_lines() -> list[logging.LogRecord]:
            return [r for r in caplog.records if "is saturated" in r.message]

        await wait_for(lambda: len(saturated_lines()) == 2, what="the second line")
    assert [r.__dict__["count"] for r in saturated_lines()] == [1, 2]
