"""Run one hub process (``hubbub serve``)."""

from __future__ import annotations

import gc
import logging

from aiohttp import web

from hub.app import create_app
from hubbub.config import Settings

log = logging.getLogger("hubbub.hub")


async def _freeze_gc(app: web.Application) -> None:
    # Everything alive after start-up lives as long as the process: keep it out of the
    # cyclic GC's scans, whose pauses otherwise show up as connect-latency spikes.
    gc.collect()
    gc.freeze()


def serve_hub(settings: Settings, *, port: int | None = None) -> None:
    app = create_app(settings)
    app.on_startup.append(_freeze_gc)
    port = settings.port if port is None else port
    log.info("hub listening", extra={"host": settings.host, "port": port})
    web.run_app(
        app,
        host=settings.host,
        port=port,
        shutdown_timeout=settings.shutdown_timeout_s,
        access_log=None,  # the request_context middleware writes the access log
        print=None,
        handle_signals=True,
        reuse_port=False,
    )
