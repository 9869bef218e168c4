"""A worker process: its connections, the outbox relay, the janitor, the mail sender (with
SMTP) and the service, started in dependency order (engine → NATS → Redis → relay →
janitor → mail sender → service → its /metrics, with HUBBUB_WORKER_METRICS_PORT) and
stopped in the reverse — what has started, also when a later part fails to start — all
within one deadline (``AFTER_DRAIN_S`` past the drain's), which ``hubbub up`` waits for
before it kills the process. Traces (OTEL_EXPORTER_OTLP_ENDPOINT) and error reports
(SENTRY_DSN) are switched on first, when configured (workers/telemetry.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers import default_registry
from handlers.db import create_engine, session_factory
from handlers.mail import MAILER
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
# rest: the relay's final flush, closing NATS and the others. ``hubbub up`` allows a
# worker HUBBUB_DRAIN_TIMEOUT_S + ``WORKER_STOP_GRACE_S`` (cli/supervisor.py) before it
# kills it; the second left over is the process's own exit.
AFTER_DRAIN_S = 4.0
FINAL_FLUSH_S = 5.0  # the relay's final flush, at most (``OutboxRelay.stop``)
NATS_CLOSE_S = 1.0  # of that, kept from the final flush for draining the NATS connection


class StopDeadline:
    """One deadline for every step of a worker's stop: ``seconds`` from the first
    step's ``left()``, so that no step's own bound adds to the others'."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._at: float | None = None

    def left(self) -> float:
        now = asyncio.get_running_loop().time()
        if self._at is None:
            self._at = now + self.seconds
        return max(0.0, self._at - now)


@contextlib.asynccontextmanager
async def worker_running(
    settings: Settings,
    registry: Registry | None = None,
    *,
    name: str = "worker",
    resources: Resources | None = None,
) -> AsyncIterator[RunningWorker]:
    """Start a worker with all it needs; on exit drain it and close everything.

    ``resources`` provides instances of shared resources (tests pass fakes here); the
    rest are built from the settings on first use and closed on exit. What has started
    is stopped, in the reverse order, also when a later part fails to start; the whole
    stop takes at most HUBBUB_DRAIN_TIMEOUT_S + ``AFTER_DRAIN_S``.
    """
    if not (settings.database_url and settings.nats_url and settings.redis_url):
        raise ConfigError("a worker needs DATABASE_URL, NATS_URL and REDIS_URL")
    registry = registry or default_registry()
    subjects = Subjects(settings.namespace)
    configure_telemetry(settings, name)
    stopping = StopDeadline(settings.drain_timeout_s + AFTER_DRAIN_S)
    async with contextlib.AsyncExitStack() as stack:
        engine = worker_engine(settings)
        stack.push_async_callback(engine.dispose)
        instrument_engine(engine)  # SQL spans, with tracing on
        nc = await connect_nats(
            settings.nats_url, f"hubbub-{name}-{os.getpid()}", auth=nats_auth(settings)
        )
        stack.push_async_callback(_close_nats, nc, stopping)
        check_max_payload(nc.max_payload)
        redis = redis_from_settings(settings)
        stack.push_async_callback(redis.aclose)
        js = nc.jetstream()
        await ensure_streams(js, subjects, settings.policies())
        # One tracker for the whole process: an outage is logged once, whoever (a
        # request, the relay, the janitor) runs into it first.
        health = worker_health(engine, redis)
        stack.push_async_callback(health.close)
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
        stack.push_async_callback(janitor.stop)
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
        stack.push_async_callback(service.resources.aclose)
        mail_sender = None
        if settings.smtp_host:
            mailer = service.resources.get(MAILER, settings)
            mail_sender = MailSender(session_factory(engine), settings, mailer.wake, health)
            mail_sender.start()
            stack.push_async_callback(mail_sender.stop)  # at once, if not stopped already
        redoer = start_redoer(session_factory(engine), redis, settings, service.resources)
        stack.push_async_callback(redoer.stop)
        heartbeat = Heartbeat(nc, subjects)
        await heartbeat.start()  # hubs know this worker before it takes requests
        stack.push_async_callback(heartbeat.stop)  # once drained: nothing it held is lost
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
        stops.append(mail_sender.stop())
    for result in await asyncio.gather(*stops, return_exceptions=True):
        if isinstance(result, BaseException):
            raise result


async def _stop_relay(relay: OutboxRelay, stopping: StopDeadline) -> None:
    # What is left, but for what closing NATS is kept.
    flush_s = min(FINAL_FLUSH_S, max(0.0, stopping.left() - NATS_CLOSE_S))
    await relay.stop(final_flush_timeout=flush_s)


async def _close_nats(nc: NATS, stopping: StopDeadline) -> None:
    """Drain the connection (what is buffered goes out), within the stop's deadline."""
    try:
        async with asyncio.timeout(stopping.left()):
            await nc.drain()
    except Exception:  # NATS unreachable (reconnecting), or out of time: close instead
        await nc.close()


async def serve_worker(settings: Settings, registry: Registry | None = None) -> None:
    """Run until SIGTERM or SIGINT, then drain: finish in-flight work, then exit."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with worker_running(settings, registry):
            tune_gc()  # once start-up is done (see hubbub/gc_tuning.py)
            await stop.wait()
            log.info("worker stopping: draining")
    finally:
        # Batched spans and queued error reports go out before the process ends.
        await asyncio.to_thread(shutdown_telemetry)


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
