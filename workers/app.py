"""A worker process: its connections, the outbox relay, the janitor, the mail sender (with
SMTP) and the service, started and stopped in dependency order (engine → NATS → Redis →
relay → janitor → mail sender → service → its /metrics, with HUBBUB_WORKER_METRICS_PORT).
Traces (OTEL_EXPORTER_OTLP_ENDPOINT) and error reports (SENTRY_DSN) are switched on
first, when configured (workers/telemetry.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from handlers import default_registry
from handlers.db import create_engine, session_factory
from handlers.mail import MAILER
from handlers.registry import Registry
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
    rest are built from the settings on first use and closed on exit.
    """
    if not (settings.database_url and settings.nats_url and settings.redis_url):
        raise ConfigError("a worker needs DATABASE_URL, NATS_URL and REDIS_URL")
    registry = registry or default_registry()
    subjects = Subjects(settings.namespace)
    configure_telemetry(settings, name)
    engine = worker_engine(settings)
    instrument_engine(engine)  # SQL spans, with tracing on
    try:
        nc = await connect_nats(
            settings.nats_url, f"hubbub-{name}-{os.getpid()}", auth=nats_auth(settings)
        )
        try:
            redis = redis_from_settings(settings)
            try:
                js = nc.jetstream()
                await ensure_streams(js, subjects, settings.policies())
                # One tracker for the whole process: an outage is logged once, whoever
                # (a request, the relay, the janitor) runs into it first.
                health = worker_health(engine, redis)
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
                janitor = Janitor(session_factory(engine), settings, health)
                janitor.start()
                service = WorkerService(
                    settings=settings,
                    registry=registry,
                    nc=nc,
                    sessions=session_factory(engine),
                    read_sessions=session_factory(
                        engine.execution_options(isolation_level="AUTOCOMMIT")
                    ),
                    redis=redis,
                    on_events=relay.kick,
                    resources=resources,
                    health=health,
                )
                mail_sender = None
                if settings.smtp_host:
                    mailer = service.resources.get(MAILER, settings)
                    mail_sender = MailSender(session_factory(engine), settings, mailer.wake, health)
                    mail_sender.start()
                redoer = start_redoer(session_factory(engine), redis, settings, service.resources)
                heartbeat = Heartbeat(nc, subjects)
                await heartbeat.start()  # hubs know this worker before it takes requests
                await service.start()
                log.info(
                    "worker ready",
                    extra={"operations": len(registry.handlers), "worker": heartbeat.worker_id},
                )
                try:
                    async with contextlib.AsyncExitStack() as metrics_stack:
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
                            await metrics_stack.enter_async_context(
                                metrics.serving(settings.admin_host, settings.worker_metrics_port)
                            )
                        yield RunningWorker(service, relay, mail_sender)
                finally:
                    await service.drain()
                    await heartbeat.stop()  # drained: nothing it held is lost
                    await redoer.stop()
                    await janitor.stop()
                    await relay.stop()
                    if mail_sender is not None:
                        await mail_sender.stop()
                    await service.resources.aclose()
                    await health.close()
            finally:
                await redis.aclose()
        finally:
            try:
                await nc.drain()
            except Exception:  # NATS unreachable (reconnecting): nothing to drain through
                await nc.close()
    finally:
        await engine.dispose()


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
