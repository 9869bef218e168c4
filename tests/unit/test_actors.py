"""The actor core, with jobs that record what happened (pure logic: no NATS, no DB)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from hubbub.contracts.errors import HubbubError
from workers.actors import ActorSystem, MailboxFull


@dataclass
class Recorder:
    ran: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)


@dataclass
class FakeJob:
    name: str
    log: Recorder
    delay: float = 0.0
    fail: bool = False
    gate: asyncio.Event | None = None

    async def run(self) -> None:
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.delay:
                await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.log.cancelled.append(self.name)
            raise
        if self.fail:
            raise RuntimeError(f"{self.name} escaped")
        self.log.ran.append(self.name)

    async def reject(self, error: HubbubError) -> None:
        self.log.rejected.append((self.name, error.code.value))


async def settle(system: ActorSystem) -> None:
    assert await system.drain(5.0)


class TestOrdering:
    async def test_jobs_of_one_key_run_in_the_order_they_were_told(self) -> None:
        log = Recorder()
        system = ActorSystem()
        for i, delay in enumerate([0.03, 0.0, 0.02, 0.0, 0.01]):
            system.tell("k", FakeJob(f"j{i}", log, delay=delay))
        await settle(system)
        assert log.ran == ["j0", "j1", "j2", "j3", "j4"]

    async def test_jobs_of_one_key_never_overlap(self) -> None:
        running = 0
        peak = 0

        class Overlap(FakeJob):
            async def run(self) -> None:
                nonlocal running, peak
                running += 1
                peak = max(peak, running)
                await asyncio.sleep(0.005)
                running -= 1

        system = ActorSystem()
        for i in range(10):
            system.tell("k", Overlap(str(i), Recorder()))
        await settle(system)
        assert peak == 1

    async def test_different_keys_run_concurrently(self) -> None:
        log = Recorder()
        gate = asyncio.Event()
        system = ActorSystem()
        system.tell("a", FakeJob("a-blocked", log, gate=gate))
        system.tell("b", FakeJob("b-free", log))
        await asyncio.sleep(0.01)
        assert log.ran == ["b-free"]
        gate.set()
        await settle(system)
        assert log.ran == ["b-free", "a-blocked"]

    async def test_unkeyed_jobs_run_at_once(self) -> None:
        log = Recorder()
        gate = asyncio.Event()
        system = ActorSystem()
        system.tell(None, FakeJob("slow", log, gate=gate))
        system.tell(None, FakeJob("fast", log))
        await asyncio.sleep(0.01)
        assert log.ran == ["fast"]
        gate.set()
        await settle(system)


class TestSupervision:
    async def test_a_job_that_escapes_does_not_stop_its_actor(self) -> None:
        log = Recorder()
        system = ActorSystem()
        system.tell("k", FakeJob("bad", log, fail=True))
        system.tell("k", FakeJob("next", log))
        await settle(system)
        assert log.ran == ["next"]
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


class TestPassivation:
    async def test_idle_actors_are_forgotten_and_busy_ones_kept(self) -> None:
        gate = asyncio.Event()
        system = ActorSystem(idle_timeout=0.05)
        log = Recorder()
        system.tell("idle", FakeJob("i", log))
        system.tell("busy", FakeJob("b", log, gate=gate))
        await asyncio.sleep(0.1)
        assert system.passivate_idle() == 1
        assert set(system.actors) == {"busy"}
        gate.set()
        await settle(system)

    async def test_a_passivated_key_starts_a_fresh_actor(self) -> None:
        system = ActorSystem(idle_timeout=0.0)
        log = Recorder()
        system.tell("k", FakeJob("first", log))
        await settle(system)
        system.passivate_idle()
        system.tell("k", FakeJob("second", log))
        await settle(system)
        assert log.ran == ["first", "second"]

    async def test_the_sweeper_passivates_on_its_own(self) -> None:
        system = ActorSystem(idle_timeout=0.05)
        system.start()
        system.tell("k", FakeJob("x", Recorder()))
        await asyncio.sleep(0.2)
        assert system.actors == {}
        await settle(system)


class TestDrain:
    async def test_drain_waits_for_running_and_queued_jobs(self) -> None:
        log = Recorder()
        system = ActorSystem()
        system.tell("k", FakeJob("1", log, delay=0.05))
        system.tell("k", FakeJob("2", log, delay=0.05))
        assert await system.drain(5.0) is True
        assert log.ran == ["1", "2"]

    async def test_at_the_deadline_queued_jobs_are_rejected_and_running_ones_cancelled(
        self,
    ) -> None:
        """Nothing is dropped: each job either ran, or answered unavailable."""
        log = Recorder()
        gate = asyncio.Event()  # never set
        system = ActorSystem()
        system.tell("k", FakeJob("running", log, gate=gate))
        system.tell("k", FakeJob("queued-1", log))
        system.tell("k", FakeJob("queued-2", log))
        system.tell(None, FakeJob("unkeyed", log, gate=gate))
        assert await system.drain(0.05) is False
        assert log.rejected == [("queued-1", "unavailable"), ("queued-2", "unavailable")]
        assert sorted(log.cancelled) == ["running", "unkeyed"]
        assert system.in_flight == 0

    async def test_an_idle_system_drains_at_once(self) -> None:
        assert await ActorSystem().drain(0.01) is True
