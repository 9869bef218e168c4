"""The actor core, with jobs that record what happened (pure logic: no NATS, no DB)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from hubbub.contracts.errors import NOT_STARTED, HubbubError
from tests.support.clock import Clock
from workers.actors import ActorSystem, MailboxFull


@dataclass
class Recorder:
    ran: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str, str | None]] = field(default_factory=list)  # name, code, reason
    cancelled: list[str] = field(default_factory=list)


@dataclass
class FakeJob:
    """Runs when its ``gate`` (if any) opens, records it, and sets ``done``."""

    name: str
    log: Recorder
    fail: bool = False
    gate: asyncio.Event | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        try:
            if self.gate is not None:
                await self.gate.wait()
        except asyncio.CancelledError:
            self.log.cancelled.append(self.name)
            raise
        self.done.set()
        if self.fail:
            raise RuntimeError(f"{self.name} escaped")
        self.log.ran.append(self.name)

    async def reject(self, error: HubbubError) -> None:
        self.log.rejected.append((self.name, error.code.value, error.details.get("reason")))


async def settle(system: ActorSystem) -> None:
    assert await system.drain(5.0)


async def finished(job: FakeJob) -> None:
    async with asyncio.timeout(5):
        await job.done.wait()


class TestOrdering:
    async def test_jobs_of_one_key_run_in_the_order_they_were_told(self) -> None:
        """Even when the later jobs are free to go first: j0, j2 and j4 wait for their
        gates, which open last-first; j1 and j3 never wait."""
        log = Recorder()
        system = ActorSystem()
        gates = {i: asyncio.Event() for i in (0, 2, 4)}
        for i in range(5):
            system.tell("k", FakeJob(f"j{i}", log, gate=gates.get(i)))
        for i in (4, 2):
            gates[i].set()
            await asyncio.sleep(0)
        assert (log.ran, len(system.actors["k"].mailbox)) == ([], 5)  # all behind j0
        gates[0].set()
        await settle(system)
        assert log.ran == ["j0", "j1", "j2", "j3", "j4"]

    async def test_jobs_of_one_key_never_overlap(self) -> None:
        """Ten jobs queued at once, each waiting on the same gate: one at a time."""
        running = 0
        peak = 0
        gate = asyncio.Event()

        class Overlap(FakeJob):
            async def run(self) -> None:
                nonlocal running, peak
                running += 1
                peak = max(peak, running)
                await gate.wait()
                await asyncio.sleep(0)
                running -= 1

        system = ActorSystem()
        for i in range(10):
            system.tell("k", Overlap(str(i), Recorder()))
        assert (running, len(system.actors["k"].mailbox)) == (1, 10)
        gate.set()
        await settle(system)
        assert peak == 1

    async def test_different_keys_run_concurrently(self) -> None:
        log = Recorder()
        blocked = asyncio.Event()  # never opened until the end
        system = ActorSystem()
        system.tell("a", FakeJob("a-blocked", log, gate=blocked))
        b = FakeJob("b-free", log, gate=asyncio.Event())
        system.tell("b", b)
        assert b.gate is not None
        b.gate.set()
        await finished(b)  # b went on while a was still waiting
        assert log.ran == ["b-free"]
        blocked.set()
        await settle(system)
        assert log.ran == ["b-free", "a-blocked"]

    async def test_unkeyed_jobs_run_at_once(self) -> None:
        log = Recorder()
        blocked = asyncio.Event()
        system = ActorSystem()
        system.tell(None, FakeJob("slow", log, gate=blocked))
        fast = FakeJob("fast", log, gate=asyncio.Event())
        system.tell(None, fast)
        assert fast.gate is not None
        fast.gate.set()
        await finished(fast)  # not behind "slow", which still waits
        assert log.ran == ["fast"]
        blocked.set()
        await settle(system)
        assert log.ran == ["fast", "slow"]


class TestSupervision:
    async def test_a_job_that_escapes_does_not_stop_its_actor(self) -> None:
        log = Recorder()
        system = ActorSystem()
        system.tell("k", FakeJob("bad", log, fail=True))
        system.tell("k", FakeJob("next", log))
        await settle(system)
        assert log.ran == ["next"]
        assert system.in_flight == 0

    @pytest.mark.parametrize("key", ["k", None])
    async def test_an_interrupt_in_a_jobs_eager_start_passes_and_its_actor_goes_on(
        self, key: str | None
    ) -> None:
        """A BaseException (KeyboardInterrupt, SystemExit) raised before the job first
        waits is not the job's to handle: it reaches the caller of ``tell``, and the key
        is left as if the job had ended — counted out, its actor free for the next."""
        log = Recorder()
        system = ActorSystem()

        class Interrupt(BaseException):
            pass

        class Interrupted(FakeJob):
            async def run(self) -> None:
                system.tell(key, FakeJob("told-meanwhile", log))  # re-entrant, same key
                raise Interrupt

        with pytest.raises(Interrupt):
            system.tell(key, Interrupted("interrupted", log))
        after = FakeJob("after", log)
        system.tell(key, after)
        await finished(after)
        await settle(system)
        assert log.ran == ["told-meanwhile", "after"]
        assert system.in_flight == 0


class TestBackpressure:
    async def test_a_full_mailbox_refuses_at_once(self) -> None:
        gate = asyncio.Event()
        system = ActorSystem(mailbox_size=3)
        log = Recorder()
        for i in range(3):
            system.tell("k", FakeJob(str(i), log, gate=gate))
        with pytest.raises(MailboxFull, match="mailbox of 'k' is full"):
            system.tell("k", FakeJob("overflow", log, gate=gate))
        system.tell("other", FakeJob("other-key", log))  # other keys are unaffected
        gate.set()
        await settle(system)
        assert sorted(log.ran) == ["0", "1", "2", "other-key"]

    async def test_the_process_limit_refuses_keyed_and_unkeyed_alike(self) -> None:
        gate = asyncio.Event()
        system = ActorSystem(max_in_flight=2)
        log = Recorder()
        system.tell("a", FakeJob("1", log, gate=gate))
        system.tell(None, FakeJob("2", log, gate=gate))
        with pytest.raises(MailboxFull, match="in flight"):
            system.tell("b", FakeJob("3", log))
        with pytest.raises(MailboxFull):
            system.tell(None, FakeJob("4", log))
        gate.set()
        await settle(system)
        assert system.in_flight == 0


class CountingSweeps(ActorSystem):
    """An actor system that signals each sweep, so a test can wait for the next one."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.swept = asyncio.Event()

    def passivate_idle(self) -> int:
        forgotten = super().passivate_idle()
        self.swept.set()
        return forgotten

    async def next_sweep(self) -> None:
        """Wait for a whole sweep that starts from now."""
        self.swept.clear()
        async with asyncio.timeout(5):
            await self.swept.wait()


class TestPassivation:
    async def test_idle_actors_are_forgotten_and_busy_ones_kept(self) -> None:
        clock = Clock()
        gate = asyncio.Event()
        system = ActorSystem(idle_timeout=30.0, clock=clock)
        log = Recorder()
        system.tell("idle", FakeJob("i", log))
        system.tell("busy", FakeJob("b", log, gate=gate))
        clock.advance(29.9)
        assert system.passivate_idle() == 0  # not idle long enough yet
        clock.advance(0.2)
        assert system.passivate_idle() == 1
        assert set(system.actors) == {"busy"}
        gate.set()
        await settle(system)
        assert system.passivate_idle() == 0  # idle since it finished, not since it began
        clock.advance(30.0)
        assert system.passivate_idle() == 1
        assert system.actors == {}

    async def test_a_passivated_key_starts_a_fresh_actor(self) -> None:
        clock = Clock()
        system = ActorSystem(idle_timeout=30.0, clock=clock)
        log = Recorder()
        system.tell("k", FakeJob("first", log))
        await settle(system)
        clock.advance(30.0)
        assert system.passivate_idle() == 1
        assert "k" not in system.actors
        system.tell("k", FakeJob("second", log))
        await settle(system)
        assert log.ran == ["first", "second"]
        assert "k" in system.actors

    async def test_the_sweeper_passivates_on_its_own(self) -> None:
        clock = Clock()
        system = CountingSweeps(idle_timeout=30.0, clock=clock, sweep_interval=0.001)
        system.start()
        system.tell("k", FakeJob("x", Recorder()))
        await system.next_sweep()
        assert set(system.actors) == {"k"}  # swept, but not idle long enough
        clock.advance(30.0)
        await system.next_sweep()
        assert system.actors == {}
        await settle(system)

    def test_the_sweep_runs_at_half_the_idle_timeout_by_default(self) -> None:
        assert ActorSystem(idle_timeout=30.0).sweep_interval == 15.0
        assert ActorSystem(idle_timeout=0.0).sweep_interval == 0.05


class TestDrain:
    async def test_drain_waits_for_running_and_queued_jobs(self) -> None:
        log = Recorder()
        gate = asyncio.Event()
        system = ActorSystem()
        system.tell("k", FakeJob("1", log, gate=gate))
        system.tell("k", FakeJob("2", log, gate=gate))
        draining = asyncio.create_task(system.drain(5.0))
        await asyncio.sleep(0)
        assert not draining.done()  # the jobs cannot finish before the gate opens
        gate.set()
        assert await draining is True
        assert log.ran == ["1", "2"]

    async def test_at_the_deadline_queued_jobs_are_rejected_and_running_ones_cancelled(
        self,
    ) -> None:
        """Nothing is dropped: each job either ran, or answered unavailable. The queued
        ones never started, and say so: the hub sends them to another worker."""
        log = Recorder()
        gate = asyncio.Event()  # never set
        system = ActorSystem()
        system.tell("k", FakeJob("running", log, gate=gate))
        system.tell("k", FakeJob("queued-1", log))
        system.tell("k", FakeJob("queued-2", log))
        system.tell(None, FakeJob("unkeyed", log, gate=gate))
        assert await system.drain(0.05) is False
        assert log.rejected == [
            ("queued-1", "unavailable", NOT_STARTED),
            ("queued-2", "unavailable", NOT_STARTED),
        ]
        assert sorted(log.cancelled) == ["running", "unkeyed"]
        assert system.in_flight == 0

    async def test_an_idle_system_drains_at_once(self) -> None:
        assert await ActorSystem().drain(0.01) is True
