"""A worker that dies holding requests: its reads are answered by another worker once
the hub misses its heartbeats, not at their deadline; its mutations are never sent twice.

Real NATS; the first test kills a real worker process (SIGKILL: no drain, no goodbye).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator

import orjson
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from hub.worker_watch import WorkerWatch
from hubbub.bus import Bus
from hubbub.config import Settings
from hubbub.contracts.subjects import WORKER_QUEUE, Subjects
from tests.support import ops
from tests.support.processes import start_test_worker, wait_exit, wait_until_serving
from tests.support.waiting import wait_for
from workers.app import worker_running


@pytest.fixture
async def watch(nc: NATS, settings: Settings, bus: Bus) -> AsyncIterator[WorkerWatch]:
    watch = WorkerWatch(nc, Subjects(settings.namespace), bus.replies.resend)
    await watch.start()
    yield watch
    await watch.stop()


@pytest.mark.slow
async def test_a_read_held_by_a_killed_worker_is_answered_by_the_next_one(
    settings: Settings, nc: NATS, bus: Bus, watch: WorkerWatch
) -> None:
    first = start_test_worker(settings)
    second = None
    try:
        await wait_until_serving(bus, first)
        await wait_for(lambda: len(watch.alive) == 1, what="the worker's heartbeat")
        [dead] = watch.alive
        held = asyncio.ensure_future(
            bus.request(ops.lookup, {"key": "k", "seq": 7, "delay": 1.0}, caller=None, timeout=30)
        )
        await asyncio.sleep(0)  # the request is published...
        await nc.flush()  # ...and NATS has handed it to the only worker there is
        first.send_signal(signal.SIGKILL)
        assert await wait_exit(first, 10) == -signal.SIGKILL
        second = start_test_worker(settings)
        reply = await held  # without the resend: ``Timeout`` after 30 s
        assert reply.value.seq == 7
        assert dead in watch.lost
        assert watch.resent >= 1
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()


async def test_a_worker_that_stops_gracefully_is_forgotten_not_lost(
    settings: Settings, watch: WorkerWatch
) -> None:
    """Its last beat, after its drain, says it is leaving: nothing is sent again."""
    async with worker_running(settings, ops.registry_with_tests()):
        await wait_for(lambda: len(watch.alive) == 1, what="the worker's heartbeat")
    await wait_for(lambda: not watch.alive, what="the worker's leaving beat")
    assert watch.sweep() == []
    assert not watch.lost
    assert watch.resent == 0


async def test_a_malformed_heartbeat_is_logged_and_ignored(
    nc: NATS, settings: Settings, watch: WorkerWatch, caplog: pytest.LogCaptureFixture
) -> None:
    subjects = Subjects(settings.namespace)
    with caplog.at_level(logging.WARNING, logger="hub.worker_watch"):
        await nc.publish(subjects.worker_beat("w1"), b'{"worker": "w1", "every": -1}')
        await nc.publish(subjects.worker_beat("w2"), b'{"worker": "w2", "every": 1.0}')
        await wait_for(lambda: "w2" in watch.alive, what="the well-formed beat")
    assert list(watch.alive) == ["w2"]
    assert [r.getMessage() for r in caplog.records] == ["ignored a malformed heartbeat"]


class Holder:
    """A worker that takes requests and answers a copy only once it has seen the same
    request twice (the first copy is the one a dead worker held)."""

    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self.seen: list[tuple[str, bytes]] = []

    async def take(self, msg: Msg) -> None:
        self.seen.append((msg.subject, msg.data))
        if [data for _, data in self.seen].count(msg.data) == 2:
            params = orjson.loads(msg.data)["params"]
            result = {"key": params["key"], "seq": params["seq"], "payload": {}}
            await self.nc.publish(msg.reply, orjson.dumps(result))


async def test_only_reads_are_sent_again_and_the_resent_copy_answers(
    nc: NATS, settings: Settings, bus: Bus
) -> None:
    """A mutation, and a write that takes no idempotency key (a POST like
    ``auth.refresh``), are never sent twice; a read is."""
    subjects = Subjects(settings.namespace)
    holder = Holder(nc)
    barrier = asyncio.Event()

    async def take(msg: Msg) -> None:
        if msg.data == b"barrier":
            barrier.set()
        else:
            await holder.take(msg)

    for op in (ops.lookup, ops.echo, ops.emit):
        await nc.subscribe(subjects.service(op.name), queue=WORKER_QUEUE, cb=take)
    writes_answered = asyncio.Event()
    await bus.replies.open()
    bus.start(
        ops.emit,
        {"workspace": "w", "note": "n"},
        lambda reply, error: writes_answered.set(),
        caller=None,
        timeout=30,
    )
    bus.start(
        ops.echo,
        {"key": "w", "seq": 1},
        lambda reply, error: writes_answered.set(),
        caller=None,
        timeout=30,
    )
    read = asyncio.ensure_future(
        bus.request(ops.lookup, {"key": "k", "seq": 5}, caller=None, timeout=30)
    )
    await wait_for(lambda: len(holder.seen) == 3, what="the three requests taken")
    assert bus.replies.resend() == 1  # the read; neither write is resendable
    assert (await asyncio.wait_for(read, 10)).value.seq == 5
    await nc.publish(subjects.service(ops.emit.name), b"barrier")  # after the resend
    await asyncio.wait_for(barrier.wait(), 10)
    taken = [subject for subject, _ in holder.seen]
    assert taken.count(subjects.service(ops.lookup.name)) == 2
    assert taken.count(subjects.service(ops.echo.name)) == 1  # never sent twice
    assert taken.count(subjects.service(ops.emit.name)) == 1
    assert not writes_answered.is_set()  # they wait for their deadline: a timeout
    assert bus.replies.resend() == 0  # an answered read is not sent again


def test_what_the_hub_may_send_again_is_what_only_reads() -> None:
    """The catalog's writes without an idempotency key are not reads: a copy of
    ``auth.refresh`` would find its token used and end the session as stolen."""
    from hubbub.contracts.api import default_catalog

    catalog = default_catalog()
    assert not catalog.get("auth.refresh").reads_only  # type: ignore[union-attr]
    assert not catalog.get("users.change_password").reads_only  # type: ignore[union-attr]
    assert catalog.get("users.me").reads_only  # type: ignore[union-attr]
