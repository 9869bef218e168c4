"""The admin listener: what operators and Prometheus read, on a port of its own
(``HUBBUB_ADMIN_HOST``, by default loopback; ``HUBBUB_ADMIN_PORT``, 0: none), never on
the public listener, where ``/metrics`` is a 404.

* ``GET /metrics`` — Prometheus text format (hub/metrics.py).
* ``GET /ready`` — readiness with its details: latencies, the worker that answered
  (host:pid), each error text, the outages this hub's requests ran into; 200, or 503
  with ``Retry-After``, exactly when the public ``/api/v1/ready`` is.
* ``GET /health`` — the process is alive.

It is its own small app on its own runner, holding the hub app it reports on; it opens
after the hub's connections and closes before them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from hub import health
from hub.metrics import metrics
from hub.state import HUB_APP

log = logging.getLogger("hubbub.hub")

# A scrape or readiness check still running when the hub stops gets this long.
ADMIN_SHUTDOWN_S = 3.0


async def ready_details(request: web.Request) -> web.Response:
    readiness = await health.check(request.app[HUB_APP])
    return health.readiness_response(readiness, readiness.detailed())


def create_admin_app(hub: web.Application) -> web.Application:
    admin = web.Application()
    admin[HUB_APP] = hub
    admin.router.add_get("/metrics", metrics)
    admin.router.add_get("/ready", ready_details)
    admin.router.add_get("/health", health.health)
    return admin


def admin_listener(host: str, port: int) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context for the hub app that serves its admin app on ``host:port``."""

    async def listening(hub: web.Application) -> AsyncIterator[None]:
        runner = web.AppRunner(
            create_admin_app(hub), access_log=None, shutdown_timeout=ADMIN_SHUTDOWN_S
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        log.info("admin listener", extra={"host": host, "port": port})
        yield
        await runner.cleanup()

    return listening
