"""Bumps of a workspace's cache generation, shared by the changes committed meanwhile:
each change is followed by a bump that started after it, and no more bumps than that."""

from __future__ import annotations

import asyncio

import pytest

from handlers.workspaces.cache import Bumps


class Redis:
    """Stands in for the INCR: records when each bump starts, and ends it on demand."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.gates: list[asyncio.Event] = []
        self.fail = False

    async def bump(self) -> None:
        gate = asyncio.Event()
        self.started.append(len(self.started))
        self.gates.append(gate)
        await gate.wait()
        if self.fail:
            raise ConnectionError("Redis went away")

    def end(self, n: int) -> None:
        self.gates[n].set()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_bump_with_none_in_flight_starts_at_once() -> None:
    bumps, redis = Bumps(), Redis()
    first = asyncio.create_task(bumps.bump("w", redis.bump))
    await settle()
    assert redis.started == [0]
    redis.end(0)
    await first


async def test_changes_during_a_bump_share_one_next_bump_that_starts_after_it() -> None:
    bumps, redis = Bumps(), Redis()
    first = asyncio.create_task(bumps.bump("w", redis.bump))
    await settle()
    later = [asyncio.create_task(bumps.bump("w", redis.bump)) for _ in range(5)]
    await settle()
    assert redis.started == [0]  # none of them may count on the bump already running
    redis.end(0)
    await first
    await settle()
    assert redis.started == [0, 1]  # one for the five
    assert not any(task.done() for task in later)
    redis.end(1)
    await asyncio.gather(*later)
    assert redis.started == [0, 1]


async def test_a_change_after_the_next_bump_started_gets_its_own() -> None:
    bumps, redis = Bumps(), Redis()
    first = asyncio.create_task(bumps.bump("w", redis.bump))
    await settle()
    second = asyncio.create_task(bumps.bump("w", redis.bump))
    await settle()
    redis.end(0)
    await first
    await settle()  # the second bump runs now
    third = asyncio.create_task(bumps.bump("w", redis.bump))
    await settle()
    assert redis.started == [0, 1]
    redis.end(1)
    await second
    await settle()
    assert redis.started == [0, 1, 2]
    assert not third.done()
    redis.end(2)
    await third


async def test_workspaces_do_not_wait_for_each_other() -> None:
    bumps, redis = Bumps(), Redis()
    tasks = [asyncio.create_task(bumps.bump(w, redis.bump)) for w in ("a", "b")]
    await settle()
    assert redis.started == [0, 1]
    redis.end(0)
    redis.end(1)
    await asyncio.gather(*tasks)


async def test_a_failed_bump_fails_every_change_waiting_for_it() -> None:
    bumps, redis = Bumps(), Redis()
    first = asyncio.create_task(bumps.bump("w", redis.bump))
    await settle()
    waiting = [asyncio.create_task(bumps.bump("w", redis.bump)) for _ in range(2)]
    await settle()
    redis.end(0)
    await first
    await settle()
    redis.fail = True
    redis.end(1)
    for task in waiting:
        with pytest.raises(ConnectionError):
            await task
    # And the next change bumps again.
    redis.fail = False
    again = asyncio.create_task(bumps.bump("w", redis.bump))
    await settle()
    redis.end(2)
    await again
