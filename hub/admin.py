"""The admin listener: what operators and Prometheus read, on a port of its own
(``HUBBUB_ADMIN_HOST``, by default loopback; ``HUBBUB_ADMIN_PORT``, 0: none), never on
the public listener, where ``/metrics`` is a 404.

* ``GET /metrics`` — the Prometheus exposition of the hub's registry (hub/metrics.py),
  with what is read at scrape time (``StateCollector``): sockets, subscriptions, feeds,
  connects, the socket counters of hub/ws/connection.py, and which dependencies this hub
  finds up (the workers asked again before a scrape while none answers), and how far its
  channel feeds lag behind JetStream (hub/metrics_jetstream.py, asked before each
  scrape, bounded in time).
* ``GET /ready`` — readiness with its details: latencies, the worker that answered
  (host:pid), each error text, the outages this hub's requests ran into; 200, or 503
  with ``Retry-After``, exactly when the public ``/api/v1/ready`` is.
* ``GET /health`` — the process is alive.

It is its own small app on its own runner, holding the hub app it reports on; it opens
after the hub's connections and closes before them.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import AsyncIterator, Callable, Iterator

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from hub import health
from hub.metrics import metrics_of
from hub.state import BUS, CATALOG, HUB_APP, NATS_CONN, REALTIME, REDIS, WORKER_WATCH
from hub.ws.connection import counters
from hubbub.bus import WORKERS
from hubbub.dependencies import NATS
from hubbub.dependencies import REDIS as REDIS_NAME

log = logging.getLogger("hubbub.hub")

# A scrape or readiness check still running when the hub stops gets this long.
ADMIN_SHUTDOWN_S = 3.0
# A scrape while no worker answers asks for one this long (hub/admin.py's
# ``ask_workers_if_none_answered``); Prometheus waits 10 s for a scrape by default.
WORKERS_ASKED_S = 1.0


async def ready_details(request: web.Request) -> web.Response:
    readiness = await health.check(request.app[HUB_APP])
    return health.readiness_response(readiness, readiness.detailed())


async def metrics(request: web.Request) -> web.Response:
    hub = request.app[HUB_APP]
    measured = metrics_of(hub)
    await ask_workers_if_none_answered(hub)
    if REDIS in hub:
        await health.ping_redis(hub)  # recorded in the bus's Health, read below
    await measured.feed_lag.refresh(hub.get(REALTIME))
    body = measured.exposition()
    response = web.Response(body=body)
    # The classic text format, which every Prometheus reads (what generate_latest writes).
    response.headers["Content-Type"] = CONTENT_TYPE_PLAIN_0_0_4
    return response


async def ask_workers_if_none_answered(hub: web.Application) -> None:
    """While the bus finds no worker, ask for one (``system.ready``, within
    ``WORKERS_ASKED_S``) before the scrape: a worker's answer clears the outage (the
    bus's ``Health``), so the workers' gauge, and HubbubNoWorkersAnswering, follow them
    back at once, not at the next call, which on a quiet hub may be long in coming. A
    heartbeat would not do: it says a worker runs, not that it takes requests."""
    bus = hub.get(BUS)
    if bus is None or not bus.health.is_down(WORKERS):
        return
    try:
        await bus.request(hub[CATALOG]["system.ready"], {}, caller=None, timeout=WORKERS_ASKED_S)
    except Exception as exc:  # none answers yet: the gauge stays 0
        log.debug("no worker answers yet: %s: %s", type(exc).__name__, exc)


def create_admin_app(hub: web.Application) -> web.Application:
    admin = web.Application()
    admin[HUB_APP] = hub
    metrics_of(hub).collect_state(StateCollector(hub))
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


class StateCollector(Collector):
    """What the hub holds, read at scrape time (nothing to keep up to date in between)."""

    def __init__(self, app: web.Application) -> None:
        self._app = weakref.ref(app)

    def describe(self) -> Iterator[Metric]:
        return iter(())  # its series depend on the app's state: not checked for clashes

    def collect(self) -> Iterator[Metric]:
        yield from _socket_counters()
        app = self._app()
        if app is None:
            return
        realtime = app.get(REALTIME)
        if realtime is not None:
            connections = realtime.connections
            yield _gauge("hubbub_ws_connections", "Open, connected sockets.", len(connections))
            yield _gauge(
                "hubbub_ws_subscriptions",
                "Channel subscriptions of open sockets.",
                sum(len(c.subs) for c in connections),
            )
            yield _gauge(
                "hubbub_ws_feeds", "Channels with local subscribers.", len(realtime.fanout.feeds)
            )
            yield _counter("hubbub_ws_connects", "Accepted connects.", realtime.stats["connects"])
            yield _counter(
                "hubbub_ws_invalid_publications",
                "Publications that were not JSON objects (dropped).",
                realtime.fanout.invalid_publications,
            )
        watch = app.get(WORKER_WATCH)
        if watch is not None:
            yield _gauge(
                "hubbub_workers_alive", "Workers whose heartbeats this hub hears.", len(watch.alive)
            )
            yield _counter(
                "hubbub_worker_resent_requests",
                "Reads in flight sent again because a worker went silent.",
                watch.resent,
            )
        yield from _dependencies(app)
        yield from metrics_of(app).feed_lag.collect()


def _socket_counters() -> Iterator[Metric]:
    yield _counter(
        "hubbub_ws_dropped_publications",
        "Publications dropped for slow consumers (drop-oldest, conflate).",
        counters["dropped"],
    )
    yield _counter(
        "hubbub_ws_slow_consumer_closes", "Sockets closed with 4009.", counters["slow_closed"]
    )
    yield _counter(
        "hubbub_ws_frames_in",
        "Text and binary frames received from connected sockets.",
        counters["frames_in"],
    )
    yield _counter(
        "hubbub_ws_frames_out",
        "Frames written to sockets (replies, pushes, publications).",
        counters["frames_out"],
    )
    yield _counter(
        "hubbub_ws_bytes_out",
        "Bytes written to sockets, frame headers included.",
        counters["bytes_out"],
    )


def _dependencies(app: web.Application) -> Iterator[Metric]:
    """1 or 0 for each dependency: NATS by its connection, the workers by whether the
    bus's requests find one, Redis by the ``PING`` before the scrape, and any other the
    bus's health tracker has seen go down."""
    family = GaugeMetricFamily(
        "hubbub_dependency_up",
        "Whether this hub finds a dependency working (1) or down (0).",
        labels=["dependency"],
    )
    nc = app.get(NATS_CONN)
    bus = app.get(BUS)
    down = bus.health.down if bus is not None else {}
    if nc is not None:
        family.add_metric([NATS], 1.0 if nc.is_connected and NATS not in down else 0.0)
    if bus is not None:
        family.add_metric([WORKERS], 0.0 if WORKERS in down else 1.0)
    if REDIS in app:
        family.add_metric([REDIS_NAME], 0.0 if REDIS_NAME in down else 1.0)
    for name in sorted(set(down) - {NATS, WORKERS, REDIS_NAME}):
        family.add_metric([name], 0.0)
    yield family


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


def _counter(name: str, help_text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, help_text, value=value)
