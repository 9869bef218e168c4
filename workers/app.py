"""A worker process: its connections, the outbox relay, the janitor, the mail sender (with
SMTP) and the service, started in dependency order (engine → NATS → Redis → relay →
janitor → mail sender → service → its /metrics, with HUBBUB_WORKER_METRICS_PORT) and
stopped in the reverse — what has started, also when a later part fails to start.
Traces (OTEL_EXPORTER_OTLP_ENDPOINT) and error reports (SENTRY_DSN) are switched on
first, when configured (workers/telemetry.py), and flushed last.

The stop has one deadline, ``AFTER_DRAIN_S`` past the drain's start plus
HUBBUB_DRAIN_TIMEOUT_S, within the grace ``hubbub up`` gives a worker before it kills
it (cli/supervisor.py, ``STOP_GRACE_S``). The drain and the mail sender's stop each end
by HUBBUB_DRAIN_TIMEOUT_S (closing the service's read connections gets
``workers.service.READ_POOL_CLOSE_S`` more); a mail send still running then is cut
(``handlers.mail.cut_smtp_sends``), so that its thread ends rather than wait out
HUBBUB_SMTP_TIMEOUT_S. Every later step — the heartbeat, the redoer, the resources,
the janitor, the relay's final flush, the outage probes, Redis, NATS, the database
pool, the telemetry flush — is cut off where the deadline ends, less what is kept for
the steps after it, and says so in the log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers import default_registry
from handlers.db import create_engine, session_factory
from handlers.mail import MAILER, cut_smtp_sends
from handlers.registry import Registry
from handlers.resources.listing import LARGEST_REPLY_BYTES
from handlers.worker_resources import Resources
from hubbub.config import ConfigError, Settings
from hubbub.contracts.channels import ChannelKind
from hubbub.contracts.subjects import Subjects
from hubbub.gc_tuning import tune_gc
from hubbub.natsauth import nats_auth
from hubbub.natsconn import connect_nats
from hubbub.redisconn import redis_from_settings
from hubbub.streams import ensure_streams
from workers.heartbeat import Heartbeat
from workers.invalidations import start_redoer
from workers.janitor import Janitor
from workers.mail_sender import MailSender
from workers.metrics import WorkerMetrics
from workers.outages import worker_health
from workers.relay import OutboxRelay
from workers.service import WorkerService
from workers.telemetry import configure as configure_telemetry
from workers.telemetry import instrument_engine
from workers.telemetry import shutdown as shutdown_telemetry

log = logging.getLogger(__name__)


@dataclass
class RunningWorker:
    service: WorkerService
    relay: OutboxRelay
    mail_sender: MailSender | None = None  # only with SMTP configured


# A worker's stop, after its drain (up to HUBBUB_DRAIN_TIMEOUT_S), has this long for the
# rest, telemetry included. ``hubbub up`` allows a worker HUBBUB_DRAIN_TIMEOUT_S +
# ``STOP_GRACE_S`` (cli/supervisor.py) before it kills it; the second left over is the
# process's own exit.
AFTER_DRAIN_S = 4.0
TELEMETRY_S = 0.5  # of that, kept for the last spans and error reports (``serve_worker``)
NATS_CLOSE_S = 1.0  # of that, kept for draining the NATS connection (and what follows)
NATS_FORCE_CLOSE_S = 0.25  # of that, kept for closing it when draining takes too long
RELAY_CLOSE_S = 0.25  # of the relay's share, kept for closing its lock connection


class StopDeadline:
    """One deadline for every step of a worker's stop: ``seconds`` from the first
    step's ``left()``, so that no step's own bound adds to the others'."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._at: float | None = None

    def left(self, keep: float = 0.0) -> float:
        """What is left, less ``keep`` (for the steps after this one)."""
        now = asyncio.get_running_loop().time()
        if self._at is None:
            self._at = now + self.seconds
        return max(0.0, self._at - now - keep)


async def _within(
    stopping: StopDeadline, what: str, step: Callable[[], Awaitable[object]], keep: float
) -> None:
    """``step()``, cut off (cancelled) where the stop's deadline, less ``keep``, ends."""
    try:
        async with asyncio.timeout(stopping.left(keep)) as bound:
            await step()
    except TimeoutError:
        if not bound.expired():
            raise
        log.warning("worker stop: %s cut off at the stop's deadline", what)


@contextlib.asynccontextmanager
async def worker_running(
    settings: Settings,
    registry: Registry | None = None,
    *,
    name: str = "worker",
    resources: Resources | None = None,
    stopping: StopDeadline | None = None,
) -> AsyncIterator[RunningWorker]:
    """Start a worker with all it needs; on exit drain it and close everything.

    ``resources`` provides instances of shared resources (tests pass fakes here); the
    rest are built from the settings on first use and closed on exit. What has started
    is stopped, in the reverse order, also when a later part fails to start; the whole
    stop takes at most HUBBUB_DRAIN_TIMEOUT_S + ``AFTER_DRAIN_S`` (``stopping``: that
    deadline, when the caller has more to do within it), ``TELEMETRY_S`` of it left over.
    """
    if not (settings.database_url and settings.nats_url and settings.redis_url):
        raise ConfigError("a worker needs DATABASE_URL, NATS_URL and REDIS_URL")
    registry = registry or default_registry()
    subjects = Subjects(settings.namespace)
    configure_telemetry(settings, name)
    if stopping is None:
        stopping = StopDeadline(settings.drain_timeout_s + AFTER_DRAIN_S)
    # The steps before NATS's close keep its share and telemetry's; those after, telemetry's.
    early = NATS_CLOSE_S + TELEMETRY_S
    async with contextlib.AsyncExitStack() as stack:
        engine = worker_engine(settings)
        stack.push_async_callback(
            _within, stopping, "the database pool", engine.dispose, TELEMETRY_S
        )
        instrument_engine(engine)  # SQL spans, with tracing on
        nc = await connect_nats(
            settings.nats_url, f"hubbub-{name}-{os.getpid()}", auth=nats_auth(settings)
        )
        stack.push_async_callback(_close_nats, nc, stopping)
        check_max_payload(nc.max_payload)
        redis = redis_from_settings(settings)
        stack.push_async_callback(_within, stopping, "closing Redis", redis.aclose, early)
        js = nc.jetstream()
        await ensure_streams(js, subjects, settings.policies())
        # One tracker for the whole process: an outage is logged once, whoever (a
        # request, the relay, the janitor) runs into it first.
        health = worker_health(engine, redis)
        stack.push_async_callback(_within, stopping, "the outage probes", health.close, early)
        relay = OutboxRelay(
            session_factory(engine),
            js,
            subjects,
            poll_interval=settings.outbox_poll_s,
            max_payload=nc.max_payload,
            health=health,
            nats=nc,
        )
        relay.start()
        stack.push_async_callback(_stop_relay, relay, stopping)
        janitor = Janitor(session_factory(engine), settings, health)
        janitor.start()
        stack.push_async_callback(_within, stopping, "the janitor", janitor.stop, early)
        service = WorkerService(
            settings=settings,
            registry=registry,
            nc=nc,
            sessions=session_factory(engine),
            read_sessions=session_factory(engine.execution_options(isolation_level="AUTOCOMMIT")),
            redis=redis,
            on_events=relay.kick,
            resources=resources,
            health=health,
        )
        stack.push_async_callback(
            _within, stopping, "closing the resources", service.resources.aclose, early
        )
        mail_sender = None
        if settings.smtp_host:
            mailer = service.resources.get(MAILER, settings)
            mail_sender = MailSender(session_factory(engine), settings, mailer.wake, health)
            mail_sender.start()
            stack.push_async_callback(_stop_mail, mail_sender)  # if not stopped already
        redoer = start_redoer(session_factory(engine), redis, settings, service.resources)
        stack.push_async_callback(_within, stopping, "the redoer", redoer.stop, early)
        heartbeat = Heartbeat(nc, subjects)
        await heartbeat.start()  # hubs know this worker before it takes requests
        # Once drained: nothing it held is lost.
        stack.push_async_callback(_within, stopping, "the heartbeat", heartbeat.stop, early)
        stack.push_async_callback(_drain, service, mail_sender, stopping)
        await service.start()
        log.info(
            "worker ready",
            extra={"operations": len(registry.handlers), "worker": heartbeat.worker_id},
        )
        if settings.worker_metrics_port:
            metrics = WorkerMetrics(
                service.actors,
                session_factory(engine),
                relay,
                service.timings,
                js=js,
                streams=[subjects.stream(kind) for kind in ChannelKind],
                health=health,
            )
            await stack.enter_async_context(
                metrics.serving(settings.admin_host, settings.worker_metrics_port)
            )
        yield RunningWorker(service, relay, mail_sender)


def check_max_payload(max_payload: int) -> bool:
    """Whether NATS carries the largest answer a worker may send (a page of resources, or
    one resource at its largest: ``LARGEST_REPLY_BYTES``); if not, an error in the log.
    A smaller ``max_payload`` makes such answers ``too_large`` — for a create or an
    update, after its change was applied."""
    if max_payload >= LARGEST_REPLY_BYTES:
        return True
    log.error(
        "NATS's max_payload (%d bytes) is below the largest answer a worker may have to "
        "send (%d bytes: one resource at its largest); such answers will be too_large, "
        "a create's or an update's after its change was applied. Raise max_payload in "
        "the NATS server's configuration to at least %d",
        max_payload,
        LARGEST_REPLY_BYTES,
        LARGEST_REPLY_BYTES,
        extra={"max_payload": max_payload, "largest_reply": LARGEST_REPLY_BYTES},
    )
    return False


async def _drain(
    service: WorkerService, mail_sender: MailSender | None, stopping: StopDeadline
) -> None:
    """The service's drain, and the mail sender's stop beside it (each waits for its work
    in progress at most HUBBUB_DRAIN_TIMEOUT_S: together, not one after the other)."""
    stopping.left()  # the stop's deadline counts from here
    stops: list[Awaitable[object]] = [service.drain()]
    if mail_sender is not None:
        stops.append(_stop_mail(mail_sender))
    for result in await asyncio.gather(*stops, return_exceptions=True):
        if isinstance(result, BaseException):
            raise result


async def _stop_mail(mail_sender: MailSender) -> None:
    """The mail sender's stop (at most HUBBUB_DRAIN_TIMEOUT_S for the sends in progress),
    then the sends it gave up on are cut: their threads end now, not after
    HUBBUB_SMTP_TIMEOUT_S for each step of their conversations."""
    try:
        await mail_sender.stop()
    finally:
        if cut := cut_smtp_sends():
            log.warning("worker stop: %d mail send(s) cut off; they stay queued", cut)


async def _stop_relay(relay: OutboxRelay, stopping: StopDeadline) -> None:
    """The relay's final flush, in what is left but for the later steps' share; and its
    lock connection's close, in the same."""
    keep = NATS_CLOSE_S + TELEMETRY_S
    flush_s = stopping.left(keep + RELAY_CLOSE_S)
    await _within(stopping, "the relay", lambda: relay.stop(final_flush_timeout=flush_s), keep)


async def _close_nats(nc: NATS, stopping: StopDeadline) -> None:
    """Drain the connection (what is buffered goes out), within the stop's deadline; else
    close it."""
    try:
        async with asyncio.timeout(stopping.left(TELEMETRY_S + NATS_FORCE_CLOSE_S)):
            await nc.drain()
    except Exception:  # NATS unreachable (reconnecting), or out of time: close instead
        await _within(stopping, "closing NATS", nc.close, TELEMETRY_S)


async def serve_worker(settings: Settings, registry: Registry | None = None) -> None:
    """Run until SIGTERM or SIGINT, then drain: finish in-flight work, then exit.

    A stop while it starts (waiting for NATS, say) cuts the start short: what has
    started is stopped, in the reverse order, as after a start that failed."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stopping = StopDeadline(settings.drain_timeout_s + AFTER_DRAIN_S)
    started = False

    async def run() -> None:
        nonlocal started
        async with worker_running(settings, registry, stopping=stopping):
            started = True
            tune_gc()  # once start-up is done (see hubbub/gc_tuning.py)
            await stop.wait()
            log.info("worker stopping: draining")

    running = asyncio.ensure_future(run())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([running, stopped], return_when=asyncio.FIRST_COMPLETED)
        if not started and not running.done():
            log.info("worker stopping while it starts")
            running.cancel()
        await asyncio.wait([running])
        if not running.cancelled():
            running.result()  # what made it fail, if anything
    finally:
        stopped.cancel()
        running.cancel()  # if this coroutine itself was cancelled: nothing left running
        # Batched spans and queued error reports go out before the process ends.
        await flush_telemetry(max(stopping.left(), TELEMETRY_S))


async def flush_telemetry(seconds: float) -> bool:
    """``shutdown_telemetry`` (the last spans and error reports), waited for at most
    ``seconds``: it runs in a daemon thread, so an exporter that does not answer is left
    behind rather than hold the process's exit. Whether it finished."""
    done = threading.Event()

    def flush() -> None:
        try:
            shutdown_telemetry()
        finally:
            done.set()

    threading.Thread(target=flush, name="telemetry-flush", daemon=True).start()
    if await asyncio.to_thread(done.wait, seconds):
        return True
    log.warning("worker stop: the telemetry flush cut off after %.1fs", seconds)
    return False


def worker_engine(settings: Settings) -> AsyncEngine:
    """The worker's engine. No checkout of its pool waits longer than
    ``HUBBUB_DB_WAIT_S`` (SQLAlchemy's default is 30 s): transaction slots bound the
    writes, but reads, the relay and the background jobs share the pool, and a request
    that cannot get a connection in time is answered 503 (saturated) at once, not half a
    minute after its caller gave up."""
    assert settings.database_url is not None
    return create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_wait_s,
    )
