"""Run one hub process (``hubbub serve``), with traces (``OTEL_EXPORTER_OTLP_ENDPOINT``)
and error reports (``SENTRY_DSN``) when configured."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from hub.admin import admin_listener
from hub.app import create_app
from hub.serving import HubRunner
from hubbub import error_reports, tracing
from hubbub.config import ConfigError, Settings
from hubbub.gc_tuning import SOCKETS, tune_gc

log = logging.getLogger("hubbub.hub")
SERVICE_NAME = "hubbub-hub"


def bad_request_without_traceback(record: logging.LogRecord) -> bool:
    """aiohttp logs a request it cannot parse (a NUL in a header, a broken request line)
    at ERROR with a traceback; it is the client's mistake, answered 400: one INFO line.
    So is a body it fails to read after the answer went out (one that does not decode as
    its ``Content-Encoding`` says, left unread by a handler that refused the request)."""
    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, HttpProcessingError):
        record.msg, record.args = "unparseable request answered 400: %s", (error.message,)
    elif isinstance(error, RequestPayloadError):
        cause = error.__cause__
        reason = cause.message if isinstance(cause, HttpProcessingError) else str(error)
        record.msg, record.args = "unreadable request body left unread: %s", (reason,)
    else:
        return True
    record.levelno, record.levelname = logging.INFO, "INFO"
    record.exc_info, record.exc_text = None, None
    return True


async def _tune_gc(app: web.Application) -> None:
    tune_gc(SOCKETS)  # once start-up is done (see hubbub/gc_tuning.py)


async def _flush_telemetry(app: web.Application) -> None:
    """Batched spans and queued error reports go out before the process ends."""

    def flush() -> None:
        tracing.shutdown()
        error_reports.close()

    await asyncio.to_thread(flush)


def serve_hub(settings: Settings, *, port: int | None = None) -> None:
    logging.getLogger("aiohttp.server").addFilter(bad_request_without_traceback)
    tracing.configure(settings, SERVICE_NAME, edge=True)
    error_reports.configure(settings, SERVICE_NAME)
    app = create_app(settings)
    app.on_startup.append(_tune_gc)
    app.on_cleanup.append(_flush_telemetry)
    port = settings.port if port is None else port
    if settings.admin_port:
        if settings.admin_port == port:
            raise ConfigError(
                f"HUBBUB_ADMIN_PORT ({settings.admin_port}) is the hub's public port: "
                "metrics and readiness details need a port of their own (or 0: none)"
            )
        # After the hub's connections (its last cleanup context): up while they are.
        app.cleanup_ctx.append(admin_listener(settings.admin_host, settings.admin_port))
    log.info("hub listening", extra={"host": settings.host, "port": port})
    run_hub(app, settings, port)


def run_hub(app: web.Application, settings: Settings, port: int) -> None:
    """``web.run_app`` with the hub's runner (``hub/serving.py``): serve until SIGINT or
    SIGTERM, then shut down gracefully (``runner.cleanup``: the sockets drained, the
    connections closed) and cancel whatever tasks are left, as ``run_app`` does."""
    loop = asyncio.new_event_loop()  # uvloop's, when ``hubbub serve`` chose it
    asyncio.set_event_loop(loop)
    main = loop.create_task(_serve(app, settings, port))
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main.done():
                main.cancel()  # its ``finally`` cleans the runner up
                with contextlib.suppress(asyncio.CancelledError, web.GracefulExit):
                    loop.run_until_complete(main)
        finally:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            asyncio.set_event_loop(None)
            loop.close()


async def _serve(app: web.Application, settings: Settings, port: int) -> None:
    runner = HubRunner(
        app,
        handle_signals=True,  # SIGINT and SIGTERM raise GracefulExit
        access_log=None,  # the request_context middleware writes the access log
        shutdown_timeout=settings.shutdown_timeout_s,
    )
    await runner.setup()
    try:
        # A reconnect storm arrives at once: the kernel queues up to this many connections
        # until the hub accepts them (capped by net.core.somaxconn).
        site = web.TCPSite(
            runner, settings.host, port, backlog=settings.listen_backlog, reuse_port=False
        )
        await site.start()
        await asyncio.Event().wait()  # until a signal
    finally:
        await runner.cleanup()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
