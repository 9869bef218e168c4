"""A worker stops cleanly whatever state its NATS link is in, and what it was sent is
answered: by itself, or (never started when its drain ran out) by another worker."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.db import ReadPool
from handlers.mail import QueuedMail
from handlers.worker_resources import Resources
from hubbub.bus import Bus
from hubbub.config import Settings
from hubbub.contracts.errors import Unavailable
from tests.support import ops
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_for
from workers import app
from workers.app import AFTER_DRAIN_S, worker_running
from workers.execution import TRANSACTION_SLOTS
from workers.heartbeat import Heartbeat
from workers.janitor import Janitor


async def test_a_worker_stops_cleanly_while_nats_is_unreachable(settings: Settings) -> None:
    """Nothing to drain through: the worker's shutdown closes its NATS client instead of
    failing with ConnectionReconnectingError (and leaving it reconnecting forever)."""
    proxy = TcpProxy.to_url(settings.nats_url)
    await proxy.start()
    try:
        own = settings.model_copy(update={"nats_url": proxy.url("nats")})
        running = worker_running(own, ops.registry_with_tests())
        worker = await running.__aenter__()
        nc = worker.service.nc
        await proxy.cut()

        async def link_down() -> bool:
            return not nc.is_connected

        await wait_for(link_down, timeout=10, what="the worker sees NATS gone")
        await running.__aexit__(None, None, None)
        assert nc.is_closed
    finally:
        await proxy.stop()


async def test_requests_on_their_way_to_a_draining_worker_are_answered(
    settings: Settings, nc: NATS, bus: Bus
) -> None:
    """NATS sent them before it saw the worker's UNSUB, and the worker had not read them
    yet when its drain began: the drain takes them. (nats-py's ``unsubscribe`` forgets the
    subscription at once: they would be dropped, each caller waiting out its deadline.)"""
    proxy = TcpProxy.to_url(settings.nats_url)
    await proxy.start()
    try:
        own = settings.model_copy(update={"nats_url": proxy.url("nats")})
        async with worker_running(own, ops.registry_with_tests()) as worker:
            proxy.hold()  # what NATS sends the worker from here on waits in the proxy
            calls = [
                asyncio.ensure_future(
                    bus.request(ops.echo, {"key": f"k{n}", "seq": n}, caller=None, timeout=5)
                )
                for n in range(3)
            ]
            await wait_for(lambda: bus.replies.in_flight == 3, what="the requests sent")
            await nc.flush()  # NATS has sent them to the worker's link, before any UNSUB
            draining = asyncio.ensure_future(worker.service.drain())
            await wait_for(lambda: not worker.service.taking, what="the drain begun")
            proxy.release()
            assert [(await call).value.seq for call in calls] == [0, 1, 2]
            assert await draining  # and everything it took finished in time
    finally:
        await proxy.stop()


async def test_a_request_routed_while_the_unsub_travels_is_answered(
    settings: Settings, nc: NATS, bus: Bus
) -> None:
    """NATS may answer the drain's first PING before it reads the UNSUB behind it, and
    route a request to the worker meanwhile: the worker forgets its subscription only
    after a round trip that follows the UNSUB, so that request is taken too. (After one
    round trip, as nats-py's ``Subscription.drain`` does, it would be dropped.)"""
    proxy = TcpProxy.to_url(settings.nats_url)
    await proxy.start()
    try:
        own = settings.model_copy(update={"nats_url": proxy.url("nats")})
        async with worker_running(own, ops.registry_with_tests()) as worker:
            proxy.hold_upstream_from(b"UNSUB ")
            draining = asyncio.ensure_future(worker.service.drain())
            await wait_for(proxy.upstream_held.is_set, what="the UNSUB on its way")
            call = asyncio.ensure_future(
                bus.request(ops.echo, {"key": "late", "seq": 9}, caller=None, timeout=5)
            )
            await wait_for(lambda: bus.replies.in_flight == 1, what="the request sent")
            await nc.flush()  # NATS has routed it to the worker, whose UNSUB it has not read
            proxy.release_upstream()
            assert (await call).value.seq == 9
            assert await draining
    finally:
        await proxy.stop()


async def test_work_queued_at_the_drain_deadline_is_done_by_another_worker(
    settings: Settings, nc: NATS, bus: Bus
) -> None:
    """The job that runs past the deadline is cancelled (``unavailable``: it may have
    started); the one queued behind it never started, says so, and the hub's bus sends
    it to the next worker instead of answering 503."""
    brief = settings.model_copy(update={"drain_timeout_s": 0.5})
    async with worker_running(brief, ops.registry_with_tests()) as first:
        stuck = asyncio.ensure_future(
            bus.request(ops.echo, {"key": "s", "seq": 1, "delay": 30.0}, caller=None, timeout=20)
        )
        queued = asyncio.ensure_future(
            bus.request(ops.echo, {"key": "s", "seq": 2}, caller=None, timeout=20)
        )
        await wait_for(lambda: bus.replies.in_flight == 2, what="both sent")
        await nc.flush()  # both are the first worker's: it is the only one
        async with worker_running(settings, ops.registry_with_tests()):
            assert await first.service.drain() is False  # the deadline came first
            assert (await queued).value.seq == 2
            with pytest.raises(Unavailable, match="shutting down"):
                await stuck


async def test_work_waiting_for_a_transaction_slot_at_the_drain_deadline_is_done_by_another(
    settings: Settings, nc: NATS, bus: Bus
) -> None:
    """A write waiting for a transaction slot when the drain runs out has not started:
    cancelled there, it says so (reason ``busy``), and the hub's bus sends it to the next
    worker. The one that held the slot may have started: ``unavailable``, for the caller."""
    # db_pool_size 3: one slot for requests (workers/execution.py); a long wait for it.
    one_slot = settings.model_copy(
        update={"drain_timeout_s": 0.5, "db_pool_size": 3, "db_wait_s": 30.0}
    )
    async with worker_running(one_slot, ops.registry_with_tests()) as first:
        slots = first.service.resources.get(TRANSACTION_SLOTS, one_slot)
        stuck = asyncio.ensure_future(
            bus.request(ops.echo, {"key": "a", "seq": 1, "delay": 30.0}, caller=None, timeout=20)
        )
        await wait_for(lambda: slots.free == 0, what="the slot taken")
        waiting = asyncio.ensure_future(
            bus.request(ops.echo, {"key": "b", "seq": 2}, caller=None, timeout=20)
        )
        await wait_for(lambda: slots.waiting == 1, what="the second waiting for the slot")
        async with worker_running(settings, ops.registry_with_tests()):
            assert await first.service.drain() is False  # the deadline came first
            assert (await waiting).value.seq == 2
            with pytest.raises(Unavailable, match="shutting down"):
                await stuck


class SilentSmtp:
    """An SMTP server that takes connections and never says a word: a sender waits on
    each (in a thread) until its SMTP timeout, or until this closes them."""

    def __init__(self) -> None:
        self.clients: list[asyncio.StreamWriter] = []
        self.readers: list[asyncio.StreamReader] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.readers.append(reader)
            self.clients.append(writer)

        self.server = await asyncio.start_server(hold, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        for writer in self.clients:  # the senders' threads end: the server hung up
            writer.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def test_a_worker_stops_within_one_deadline_whatever_its_parts_wait_for(
    settings: Settings, bus: Bus, db: async_sessionmaker[AsyncSession]
) -> None:
    """A request that runs past the drain and a mail send that hangs each take the whole
    drain timeout: side by side, not one after the other, so the stop stays within
    HUBBUB_DRAIN_TIMEOUT_S + AFTER_DRAIN_S — the grace ``hubbub up`` gives before it
    kills the worker (cli/supervisor.py). The send is then cut: no thread of it is
    left to hold the process's exit."""
    smtp = SilentSmtp()
    port = await smtp.start()
    try:
        async with db() as session, session.begin():
            session.add(QueuedMail(to_addr="a@example.com", subject="hello", body="hi"))
        drain_s = 5.5
        own = settings.model_copy(
            update={
                "drain_timeout_s": drain_s,
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "smtp_tls": "none",
                "smtp_timeout_s": 60.0,
                "mail_poll_s": 0.1,
            }
        )
        loop = asyncio.get_running_loop()
        async with worker_running(own, ops.registry_with_tests()):
            stuck = asyncio.ensure_future(
                bus.request(ops.echo, {"key": "s", "delay": 30.0}, caller=None, timeout=20)
            )
            await wait_for(lambda: smtp.clients, what="the mail sender connected")
            await wait_for(lambda: bus.replies.in_flight == 1, what="the request sent")
            stopping_at = loop.time()
        took = loop.time() - stopping_at
        assert took < drain_s + AFTER_DRAIN_S, f"stopped in {took:.1f}s"
        with pytest.raises(Unavailable, match="shutting down"):
            await stuck
        # The send the stop gave up on let go of its connection (its thread has ended),
        # rather than wait out its 60 s SMTP timeout and hold the process's exit.
        async with asyncio.timeout(5):
            assert await smtp.readers[0].read() == b""
    finally:
        await smtp.stop()


async def test_a_worker_that_fails_to_start_stops_what_had_started(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The heartbeat fails to start: the relay, the janitor, the invalidation redoer and
    the mail sender, started before it, are stopped, not left running."""

    async def failing(self: Heartbeat) -> None:
        raise RuntimeError("no heartbeat")

    monkeypatch.setattr(Heartbeat, "start", failing)
    smtp = SilentSmtp()
    own = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": await smtp.start()})
    before = asyncio.all_tasks()
    try:
        with pytest.raises(RuntimeError, match="no heartbeat"):
            async with worker_running(own, ops.registry_with_tests()):
                pass
    finally:
        await smtp.stop()
    running = {task.get_name() for task in asyncio.all_tasks() - before if not task.done()}
    assert not running & {"outbox-relay", "janitor", "invalidation-redoer", "mail-sender"}


@pytest.mark.parametrize(
    ("part", "method", "what"),
    [
        (Janitor, "stop", "the janitor"),
        (Heartbeat, "stop", "the heartbeat"),
        (Resources, "aclose", "closing the resources"),
        (ReadPool, "close", "closing the read connections"),
    ],
)
async def test_a_part_that_hangs_in_its_stop_is_cut_off_at_the_deadline(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    part: type,
    method: str,
    what: str,
) -> None:
    """Every step of the stop is bounded by its one deadline, not only the relay's final
    flush and the NATS close: one that never ends is cut off, and the log says which."""
    original = getattr(part, method)

    async def hanging(self: object) -> None:
        await original(self)
        await asyncio.Event().wait()  # never set

    monkeypatch.setattr(part, method, hanging)
    brief = settings.model_copy(update={"drain_timeout_s": 0.5})
    loop = asyncio.get_running_loop()
    with caplog.at_level(logging.WARNING):
        running = worker_running(brief, ops.registry_with_tests())
        await running.__aenter__()
        stopping_at = loop.time()
        async with asyncio.timeout(brief.drain_timeout_s + AFTER_DRAIN_S + 2):  # not forever
            await running.__aexit__(None, None, None)
        took = loop.time() - stopping_at
    assert took < brief.drain_timeout_s + AFTER_DRAIN_S, f"stopped in {took:.1f}s"
    assert any(what in r.getMessage() and "cut off" in r.getMessage() for r in caplog.records)


async def test_the_telemetry_flush_is_left_behind_when_it_takes_too_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An exporter that does not answer: the flush's thread is a daemon, waited for
    only as long as the stop allows, so it holds neither the stop nor the exit."""
    release = threading.Event()
    monkeypatch.setattr(app, "shutdown_telemetry", lambda: release.wait(30))
    try:
        assert await app.flush_telemetry(0.2) is False
        [flushing] = [t for t in threading.enumerate() if t.name == "telemetry-flush"]
        assert flushing.daemon  # looked at while it still waits
    finally:
        release.set()
    monkeypatch.setattr(app, "shutdown_telemetry", lambda: None)
    assert await app.flush_telemetry(5) is True
